"""`WeakSegmenter`: radio galaxies, their masks, classes and hosts from a trained model.

The segmenter applies the inference of Gupta et al. (2023, PASA, section 3.2) to images of
any size. It is the sum of four parts, each a tool of its own:

- the model's description, `~galcam.models.ModelSpec` (classes, encoding, pixel scale,
  beam, recommended thresholds), read from the model folder;
- its networks, `~galcam.models.ModelNetworks` (class probabilities and multi-scale CAMs,
  IRNet's boundaries and displacements, run once per batch of tiles);
- the instance step, `~galcam.inference.GalaxyGrouper` (galaxies, masks, classes and
  scores from the networks' outputs);
- the host finder, `~galcam.inference.HostFinder`.

What is left here is the engine: each image (or each overlapping tile of a large one,
resampled to the model's pixel scale where needed) is encoded the way the model was
trained, the tiles go through the networks in batches, each tile's outputs through the
grouper, detections of overlapping tiles are merged
(`~galcam.inference.merge_tile_detections`) and mapped back to the image's pixels, and the
host of each galaxy is found.

Unlike the authors' code, the classes come from the model's own classifier (never from
labels), every detection is kept with a score, and an image without galaxies gives an empty
result.
"""

import itertools
import json
import logging
import math
import os
import sys
import time
import warnings
from collections import deque
from pathlib import Path

import numpy as np
from astropy.utils.exceptions import AstropyDeprecationWarning, AstropyUserWarning

from .._validation import check_bool, check_fraction, check_positive_int
from ..io import read_image
from ..models import ModelNetworks, ModelSpec, config_sha256, load_model_folder
from ..models.networks import has_bfloat16_units
from ..preprocessing import EncodedCutout
from .grouping import GalaxyGrouper, TileEvidence
from .hosts import HostFinder
from .planning import plan_image
from .registry import MODEL_REGISTRY, ModelNotInstalledError, models_dir, resolve_model
from .resample import (
    PIXEL_SCALE_RTOL,
    axis_pixel_scales,
    beam_matched_pixel_scale,
    check_beam,
    map_crop_back,
    resample_image,
    resample_noise,
)
from .result import Detection, HostEvidence, SegmentationResult, category_ids
from .tiling import Tile, TileDetection, merge_tile_detections, tile_grid

__all__ = ["WeakSegmenter", "MODEL_REGISTRY", "ModelNotInstalledError", "resolve_model",
           "models_dir", "load_options"]

log = logging.getLogger(__name__)

_PAPER_CHANNELS = ("ir", "radio", "zeros")
#: The host finder of a segmenter unless told otherwise (immutable, shared).
DEFAULT_HOST_FINDER = HostFinder()
#: Margin (working-grid pixels) of the host evidence around a mask's bounding box.
HOST_MARGIN = 6

# Keywords of earlier galcam versions: options of the instance step (now GalaxyGrouper's)
# and of the network pass (now ModelSpec's), with their new names.
_LEGACY_GROUPER = {"class_threshold": "class_threshold", "min_classes": "min_classes",
                   "extractor": "extractor", "radio_weight": "radio_weight",
                   "mask_mode": "method", "island_overlap": "island_overlap",
                   "link_radius": "link_radius", "area_scale": "area_scale",
                   "resolution_scale": "resolution_scale",
                   "unresolved_ratio": "unresolved_ratio"}
_LEGACY_SPEC = {"scales": "cam_scales", "class_scales": "class_scales",
                "class_views": "class_views"}
# `WeakSegmenter.load` keywords of its own that `load_options` passes on as they are
_SEGMENTER_OPTIONS = ("tile_overlap", "merge_iou", "beam_matching", "force", "precision")


def _split_options(options, where):
    """Grouper options, spec changes and ``flip`` from flat keywords (earlier versions, JSON).

    The grouper options are `GalaxyGrouper` keywords (None for "switched off" becomes
    ``'off'``, an `~galcam.models.InstanceExtractor` its options, a string such as
    ``"20 arcsec"`` a Quantity, a plain number for ``link_radius``/``area_scale`` pixels);
    the spec changes are `~galcam.models.ModelSpec` fields.
    """
    import astropy.units as u

    grouper, spec, flip = {}, {}, None
    for key, value in options.items():
        if key in _LEGACY_GROUPER:
            if key in ("resolution_scale", "unresolved_ratio") and value is None:
                value = "off"
            elif key == "radio_weight" and value is None:
                value = "none"
            elif key == "extractor" and value is not None and not isinstance(value, dict):
                value = dict(vars(value))
            elif key in ("link_radius", "area_scale") and isinstance(value, str):
                try:
                    value = u.Quantity(value)
                except (TypeError, ValueError):
                    raise ValueError(f"{key}: expected a quantity such as '20 arcsec', got "
                                     f"{value!r}") from None
            elif key in ("link_radius", "area_scale") and not isinstance(value, u.Quantity) \
                    and isinstance(value, int | float) and not isinstance(value, bool):
                value = value * (u.pix if key == "link_radius" else u.pix ** 2)
            if value is not None:
                grouper[_LEGACY_GROUPER[key]] = value
        elif key in _LEGACY_SPEC:
            if key == "scales" and not isinstance(value, list | tuple):
                raise ValueError(f"scales: expected a sequence of positive numbers, got "
                                 f"{value!r}")
            spec[_LEGACY_SPEC[key]] = value
        elif key == "flip":
            flip = check_bool(value, "flip")
        else:
            valid = sorted([*_LEGACY_GROUPER, *_LEGACY_SPEC, "flip", *_SEGMENTER_OPTIONS])
            raise TypeError(f"{where}: unknown option {key!r} (valid: {', '.join(valid)})")
    return grouper, spec, flip


def load_options(options):
    """`WeakSegmenter.load` keywords from a flat, JSON-serialisable dict of options.

    What ``galcam survey --model-options`` and `~galcam.survey.SurveyRunner` take: the
    segmenter's own options (``tile_overlap``, ``merge_iou``, ``beam_matching``,
    ``force``, ``precision``), the
    grouper's (``class_threshold``, ``min_classes``, ``mask_mode``, ``link_radius`` and
    ``area_scale`` as strings such as ``"20 arcsec"`` or numbers of pixels,
    ``resolution_scale``, ``unresolved_ratio``, ``island_overlap``, ``radio_weight``,
    ``extractor``) and the CAM views (``scales``, ``class_scales``, ``class_views``,
    ``flip``).

    Parameters
    ----------
    options : dict

    Returns
    -------
    kwargs : dict
        For `WeakSegmenter.load`.

    Raises
    ------
    TypeError
        An unknown option (the message lists the valid ones).
    ValueError
        An invalid value.
    """
    if not isinstance(options, dict):
        raise TypeError(f"model options: expected a JSON object, got {type(options).__name__}")
    own = {k: v for k, v in options.items() if k in _SEGMENTER_OPTIONS}
    rest = {k: v for k, v in options.items() if k not in own}
    grouper, spec, flip = _split_options(rest, "model options")
    kwargs = dict(own)
    if grouper:
        kwargs["grouper"] = GalaxyGrouper(**grouper)
    if spec:
        kwargs["spec_changes"] = spec
    if flip is not None:
        kwargs["flip"] = flip
    return kwargs


# ------------------------------------------------------------------------ work items
class _TileInput:
    """One network input: encoded channels and what extraction, scores and hosts need.

    ``snr`` (the radio tile in units of its noise) and ``beam_sigma2`` (the product of the
    beam's standard deviations, square pixels) are None when unknown (a PNG in the paper's
    encoding holds no noise level; an image without a beam and a model without one).
    """

    __slots__ = ("channels", "radio01", "ir01", "valid", "x0", "y0", "snr", "beam_sigma2")

    def __init__(self, channels, radio01, ir01, valid, x0, y0, snr=None, beam_sigma2=None):
        self.channels = channels
        self.radio01 = radio01
        self.ir01 = ir01
        self.valid = valid
        self.x0, self.y0 = int(x0), int(y0)
        self.snr = snr
        self.beam_sigma2 = beam_sigma2


_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def _beam_sigma2(beam, model_beam, wcs):
    """``s_maj * s_min`` of the beam in square pixels of ``wcs``, or None if unknown.

    ``beam`` is the image's `radio_beam.Beam` (or None); without it the model's training
    beam (``{"major_arcsec", "minor_arcsec"}``) is used.
    """
    if wcs is None:
        return None
    if beam is not None:
        major, minor = (float(beam.major.to_value("arcsec")), float(beam.minor.to_value("arcsec")))
    elif model_beam:
        try:
            major, minor = float(model_beam["major_arcsec"]), float(model_beam["minor_arcsec"])
        except (KeyError, TypeError, ValueError):
            return None
    else:
        return None
    sx, sy = axis_pixel_scales(wcs)
    value = (major * _FWHM_TO_SIGMA) * (minor * _FWHM_TO_SIGMA) / (sx * sy)
    return value if math.isfinite(value) and value > 0 else None


class _Job:
    """One image being predicted: its frames, tiles and the detections found so far."""

    def __init__(self, key, shape, wcs, work_shape, work_wcs, meta):
        self.key = key
        self.shape = shape
        self.wcs = wcs
        self.work_shape = work_shape
        self.work_wcs = work_wcs  # None unless resampled
        self.meta = meta
        self.detections = []
        self.pending = 0
        self.closed = False
        self.n_tiles = 0
        self.t0 = time.perf_counter()


def _infrared_overlaps(radio, ir, n=24):
    """Whether any of an ``n`` x ``n`` grid of radio pixels falls on finite infrared data."""
    ny, nx = radio.data.shape
    ys, xs = np.meshgrid(np.linspace(0, ny - 1, n), np.linspace(0, nx - 1, n), indexing="ij")
    with warnings.catch_warnings():  # points far outside a projection give NaN (no match)
        warnings.simplefilter("ignore")
        ix, iy = ir.wcs.world_to_pixel(radio.wcs.pixel_to_world(xs.ravel(), ys.ravel()))
    iy, ix = np.rint(np.asarray(iy)), np.rint(np.asarray(ix))
    h, w = ir.data.shape
    inside = np.isfinite(ix) & np.isfinite(iy) & (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    if not inside.any():
        return False
    return bool(np.isfinite(ir.data[iy[inside].astype(int), ix[inside].astype(int)]).any())


def _pad_slice(array, y0, x0, th, tw, fill=0):
    """``array[..., y0:y0+th, x0:x0+tw]`` with ``fill`` outside the array."""
    h, w = array.shape[-2:]
    out = np.full(array.shape[:-2] + (th, tw), fill, dtype=array.dtype)
    sy0, sx0 = max(y0, 0), max(x0, 0)
    sy1, sx1 = min(y0 + th, h), min(x0 + tw, w)
    if sy1 > sy0 and sx1 > sx0:
        out[..., sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = array[..., sy0:sy1, sx0:sx1]
    return out


def _show_progress(progress):
    if progress is None:
        progress = True
    return bool(progress) and sys.stderr.isatty()


# ------------------------------------------------------------------------ the tool
class WeakSegmenter:
    """Segment, classify and locate the hosts of extended radio galaxies with a trained model.

    Use `WeakSegmenter.load` (a model folder or a registered name); the constructor takes
    networks already built. Configured once, then called on images:
    ``result = segmenter(radio, ir, noise=noise)``.

    Parameters
    ----------
    networks : `~galcam.models.ModelNetworks`
        The model's networks (with its spec, device and CAM views).
    grouper : `~galcam.inference.GalaxyGrouper`, optional
        The instance step: how galaxies, masks, classes and scores are made from the
        networks' outputs. Options it leaves unset take the model folder's recommended
        values (``config.json`` -> ``inference``), else the grouper's defaults.
    host_finder : `~galcam.inference.HostFinder` or None, optional
        Finds the infrared host of every detection (default: ``HostFinder()``); None
        finds no hosts.
    tile_overlap : float, optional
        Overlap of neighbouring tiles as a fraction of the tile size, in [1/3, 0.9)
        (default 1/3, rounded up to whole pixels).
    merge_iou : float, optional
        IoU (restricted to the area two tiles share) above which detections of different
        tiles are the same galaxy (0.5).
    beam_matching : float, optional
        In [0, 1]. An image whose beam (from its header) has more than 1.5 times the area
        of the training beam is resampled onto pixels ``(area ratio) ** (beam_matching /
        2)`` times the model's pixel scale: 1 gives as many pixels per beam as in
        training, 0 keeps the training pixel scale
        (`galcam.inference.beam_matched_pixel_scale`; default 0.5, measured in the docs:
        inference, step 1). Results are mapped back to the image's own pixels.
    name : str, optional
        A name for the model (recorded in results).
    force : bool, optional
        Predict images that the plan refuses (`plan`, `~galcam.inference.plan_image`): an
        undersampled image (fewer than 2 pixels across the beam), one that resampling to
        the model's pixel scale would blow up more than 16 times, or one whose estimated
        memory passes half the machine's; they are warned about instead. Default False:
        such an image raises `~galcam.inference.ImageRefusedError` before any heavy work.

    Notes
    -----
    Every image is planned before any heavy work: its working pixel scale, resampled size,
    number of tiles and an estimate of time and memory are logged (INFO), and a beam more
    than 20 times the training beam or a blank (constant) image is warned about
    (`plan`).

    The classes, tile size, normalisation, pixel scale, beam and the recommended
    catalogue threshold are the spec's (`spec`); the grouping and the score of a galaxy
    are the grouper's strategy (`~galcam.inference.IslandVoteGrouping` by default, whose
    docstring gives the score).
    """

    def __init__(self, networks, *, grouper=None, host_finder=DEFAULT_HOST_FINDER,
                 tile_overlap=1 / 3, merge_iou=0.3, beam_matching=0.5, name=None,
                 force=False):
        if not isinstance(networks, ModelNetworks):
            raise TypeError(f"networks: expected a galcam.models.ModelNetworks (use "
                            f"WeakSegmenter.load for a model folder), got "
                            f"{type(networks).__name__}")
        if grouper is None:
            grouper = GalaxyGrouper()
        if not isinstance(grouper, GalaxyGrouper):
            raise TypeError(f"grouper: expected a GalaxyGrouper, got {type(grouper).__name__}")
        if host_finder is not None and not isinstance(host_finder, HostFinder):
            raise TypeError(f"host_finder: expected a HostFinder or None, got "
                            f"{type(host_finder).__name__}")
        self._networks = networks
        self._device = networks.device
        self._spec = spec = networks.spec
        self._grouper = grouper
        self._grouping = grouper.settings(spec)
        self._host_finder = host_finder
        self._tile = tuple(spec.image_size)
        self._overlap_fraction = check_fraction(tile_overlap, "tile_overlap", 1 / 3 - 1e-9,
                                                0.9, high_open=True)
        self._overlap = tuple(min(n - 1, math.ceil(self._overlap_fraction * n))
                              for n in self._tile)
        self._merge_iou = check_fraction(merge_iou, "merge_iou", 0.0, 1.0, low_open=True)
        self._beam_matching = check_fraction(beam_matching, "beam_matching")
        self._force = check_bool(force, "force")
        self._encoder = spec.encoder()
        self._name = name
        self._model_sha256 = ""  # set by load: the SHA-256 of the folder's config.json

    # --- construction -----------------------------------------------------------------
    @classmethod
    def load(cls, model="default", *, device="auto", grouper=None, host_finder=DEFAULT_HOST_FINDER,
             tile_overlap=1 / 3, merge_iou=0.3, beam_matching=0.5, spec_changes=None,
             flip=True, force=False, precision="float32", **legacy):
        """Load a model folder or a registered model.

        Parameters
        ----------
        model : str or path-like, optional
            A model folder (written by `galcam.training.train_weak_model`) or a name in
            `MODEL_REGISTRY` (``"default"``: the bundled model).
        device : str or `torch.device`, optional
            ``'auto'`` (default), ``'cpu'``, ``'cuda'``, ``'cuda:N'``.
        grouper, host_finder, tile_overlap, merge_iou, beam_matching, force
            As for `WeakSegmenter`.
        spec_changes : dict, optional
            Fields of the model's `~galcam.models.ModelSpec` to change for this run, e.g.
            ``{"cam_scales": [1.0]}`` (fewer CAM scales: faster, measured in the docs).
        flip : bool, optional
            Add the CAMs of mirrored images (default True).
        precision : {'float32', 'bfloat16', 'float16'}, optional
            Arithmetic of the network passes (`~galcam.models.ModelNetworks`): float32 as
            trained (default), or bfloat16 (several times faster on CPUs with bfloat16
            matrix units and on GPUs; float16 on CUDA only); its effect on quality is
            measured in the docs (*Inference*, "Throughput").
        **legacy
            Keywords of earlier versions, deprecated: the grouping options
            (``class_threshold``, ``min_classes``, ``mask_mode``, ``link_radius``,
            ``area_scale``, ``resolution_scale``, ``unresolved_ratio``,
            ``island_overlap``, ``radio_weight``, ``extractor``; now
            `~galcam.inference.GalaxyGrouper`'s) and the CAM views (``scales``,
            ``class_scales``, ``class_views``, ``flip``; now the spec's).

        Raises
        ------
        FileNotFoundError
            No such folder or registered name, or a file of the folder is missing
            (`ModelNotInstalledError` for a registered model that is not installed).
        galcam.models.ModelFolderError
            A truncated, corrupt or incompatible model folder.
        """
        if "hosts" in legacy:  # earlier versions: hosts=False for no host finder
            if not check_bool(legacy.pop("hosts"), "hosts"):
                host_finder = None
            warnings.warn("WeakSegmenter.load: hosts=False is host_finder=None now; the "
                          "keyword will be removed", AstropyDeprecationWarning, stacklevel=2)
        given, changes, legacy_flip = _split_options(legacy, "WeakSegmenter.load")
        if legacy:
            warnings.warn(f"WeakSegmenter.load: {', '.join(sorted(legacy))}: options of the "
                          "instance step now belong to GalaxyGrouper (grouper=GalaxyGrouper("
                          "...)) and the CAM views to spec_changes/flip; these keywords will be "
                          "removed", AstropyDeprecationWarning, stacklevel=2)
        changes = {**changes, **(spec_changes or {})}
        if legacy_flip is not None:
            flip = legacy_flip
        if given:
            if grouper is not None:
                raise TypeError(f"WeakSegmenter.load: give the grouping options "
                                f"{sorted(legacy)} to the grouper, not beside it")
            grouper = GalaxyGrouper(**given)
        path = resolve_model(model)
        config, states, _ = load_model_folder(path, map_location="cpu")
        spec = ModelSpec.from_dict(config, path=path)
        if changes:
            spec = spec.with_options(**changes)
        networks = ModelNetworks.from_states(spec, states, path=path, device=device, flip=flip,
                                             precision=precision)
        log.info("loaded model %s: classes %s, input %dx%d, pixel scale %s arcsec", path,
                 ", ".join(spec.classes), *spec.image_size, spec.pixel_scale)
        if precision == "float32" and has_bfloat16_units(networks.device):
            log.info("%s has bfloat16 units: precision='bfloat16' (--precision bfloat16) "
                     "can run the networks about three times faster; a model whose outputs "
                     "it changes is refused when it loads (docs: Inference, Throughput)",
                     "this CPU" if networks.device.type == "cpu" else networks.device)
        segmenter = cls(networks, grouper=grouper, host_finder=host_finder,
                        tile_overlap=tile_overlap, merge_iou=merge_iou,
                        beam_matching=beam_matching, name=str(model), force=force)
        segmenter._model_sha256 = config_sha256(path)
        return segmenter

    @classmethod
    def train(cls, dataset, *, preset="fast", output_dir, device="auto", **kwargs):
        """Train a model from image-level labels and load it (deprecated).

        Use `galcam.training.train_weak_model` (CAM -> ReCAM -> IRNet, Gupta et al. 2023
        sections 3.2-3.3; only image-level labels are read), then `WeakSegmenter.load` on
        the folder it wrote: training and inference are separate layers.

        Parameters
        ----------
        dataset : `~galcam.datasets.CocoDataset` or `~galcam.datasets.WeakLabelView`
        preset : {'fast', 'paper'}, optional
        output_dir : path-like
            The model folder to write.
        device : str, optional
        **kwargs
            Passed to `~galcam.training.train_weak_model`.

        Returns
        -------
        `WeakSegmenter`
        """
        warnings.warn("WeakSegmenter.train is deprecated: call galcam.training."
                      "train_weak_model, then WeakSegmenter.load(result.path)",
                      AstropyDeprecationWarning, stacklevel=2)
        # deprecated shim: the one import of training from inference (see test_layers)
        from ..training import train_weak_model

        result = train_weak_model(dataset, preset=preset, output_dir=output_dir, device=device,
                                  **kwargs)
        return cls.load(getattr(result, "path", output_dir), device=device)

    def with_options(self, **options):
        """A copy with other options (``grouper``, ``host_finder``, ``tile_overlap``,
        ``merge_iou``, ``beam_matching``, ``name``, ``force``), sharing the loaded
        networks."""
        current = {"grouper": self._grouper, "host_finder": self._host_finder,
                   "tile_overlap": self._overlap_fraction, "merge_iou": self._merge_iou,
                   "beam_matching": self._beam_matching, "name": self._name,
                   "force": self._force}
        unknown = sorted(set(options) - set(current))
        if unknown:
            raise TypeError(f"with_options: unknown option(s) {unknown}; valid: "
                            f"{sorted(current)}")
        current.update(options)
        copy = type(self)(self._networks, **current)
        copy._model_sha256 = self._model_sha256
        return copy

    # --- properties -------------------------------------------------------------------
    spec = property(lambda self: self._spec, doc="The model's `~galcam.models.ModelSpec`.")
    networks = property(lambda self: self._networks,
                        doc="The model's `~galcam.models.ModelNetworks` (run them on encoded "
                            "tiles to reuse their outputs).")
    grouper = property(lambda self: self._grouper,
                       doc="The instance step, a `~galcam.inference.GalaxyGrouper`.")
    grouping = property(lambda self: self._grouping,
                        doc="The grouper's options for this model, in pixels of its grid "
                            "(`~galcam.inference.GroupingSettings`).")
    classes = property(lambda self: self._spec.classes, doc="Class names.")
    tile_size = property(lambda self: self._tile, doc="``(height, width)`` of a tile.")
    tile_overlap = property(lambda self: self._overlap, doc="Tile overlap ``(y, x)`` in pixels.")
    pixel_scale = property(lambda self: self._spec.pixel_scale,
                           doc="Training pixel scale in arcsec (None if unknown).")
    beam = property(lambda self: self._spec.beam_settings(),
                    doc="Training beam (dict) or None.")
    beam_matching = property(lambda self: self._beam_matching,
                             doc="How far images with a much larger beam are resampled towards "
                                 "the training pixels per beam (0: not at all, 1: fully).")
    force = property(lambda self: self._force,
                     doc="Whether images the plan refuses are predicted anyway (`plan`).")
    class_threshold = property(lambda self: self._grouping.class_threshold,
                               doc="Class probability threshold.")
    resolution_scale = property(lambda self: self._grouping.resolution_scale,
                                doc="Scale of the score's resolution term (None: not used).")
    unresolved_ratio = property(lambda self: self._grouping.unresolved_ratio,
                                doc="Area ratio below which an island is not grouped (None: "
                                    "every island is grouped).")
    device = property(lambda self: self._device,
                      doc="The `torch.device` the networks run on.")
    encoder = property(lambda self: self._encoder, doc="The `CutoutEncoder` of the model.")
    host_finder = property(lambda self: self._host_finder,
                           doc="The `HostFinder` (None: no hosts).")
    recommended_score_threshold = property(
        lambda self: self._spec.score_threshold,
        doc="Score threshold recommended for catalogues by the model folder "
            "(``inference.score_threshold`` of config.json, e.g. the value that maximised "
            "F1 on a validation set); 0 when it records none.")

    def __repr__(self):
        return (f"WeakSegmenter(model={self._name!r}, classes={self.classes}, "
                f"tile_size={self._tile}, device='{self.device}')")

    def plan(self, radio, *, batch_size=4):
        """What predicting an image would do, worked out from its header: nothing is run.

        Parameters
        ----------
        radio : str, path-like, HDU or NDData
            The radio image (anything `galcam.io.read_image` reads; a file is memory-mapped
            and only its header and as much data as tells whether it is blank are read).
        batch_size : int, optional
            Tiles per network pass (for the memory estimate).

        Returns
        -------
        `~galcam.inference.ImagePlan`
            The working pixel scale and size, the tiles, estimates of time and memory, and
            what a call would refuse (``plan.refusals``) or warn about. ``plan.check()``
            logs, warns and refuses as a call does.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        image = read_image(radio, memmap=isinstance(radio, (str, os.PathLike)))
        return self._plan(image, type(radio).__name__, batch_size)

    def _plan(self, image, kind, batch_size):
        name = image.meta.get("filename")
        return plan_image(image, tile_size=self._tile, tile_overlap=self._overlap,
                          pixel_scale=self.pixel_scale, model_beam=self.beam,
                          beam_matching=self._beam_matching, batch_size=batch_size,
                          where=f"'{name}'" if name else kind)

    def tile_evidence(self, radio, ir=None, *, noise=None, ir_noise=None, batch_size=4):
        """The networks' outputs on every tile of an image, for the instance step.

        Run the networks once and group their outputs with several groupers
        (``grouper(evidence, grouper.settings(segmenter.spec))``) without running them
        again.

        Parameters
        ----------
        radio, ir, noise, ir_noise
            As for `__call__` (the image is resampled and tiled as there).
        batch_size : int, optional

        Returns
        -------
        tiles : list of (`~galcam.inference.Tile`, `~galcam.inference.TileEvidence`)
            In the order of the tiles; ``tile.x0, tile.y0`` place a tile in the (working)
            image.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        _, items = self._prepare(radio, ir, noise, ir_noise, key=0, batch_size=batch_size)
        out, batch = [], []
        for tile, inp in itertools.chain(items, [(None, None)]):  # a sentinel ends the run
            if batch and (tile is None or len(batch) >= batch_size
                          or inp.channels.shape != batch[0][1].channels.shape):
                outputs = self._networks(np.stack([b.channels for _, b in batch]))
                out.extend((t, self._evidence(outputs, k, b)) for k, (t, b) in enumerate(batch))
                batch = []
            if tile is not None:
                batch.append((tile, inp))
        return out

    # --- prediction -------------------------------------------------------------------
    def __call__(self, radio, ir=None, *, noise=None, ir_noise=None, batch_size=4,
                 progress=None, score_threshold=None):
        """Find the radio galaxies of one image.

        Parameters
        ----------
        radio : str, path-like, HDU, NDData or `~galcam.preprocessing.EncodedCutout`
            The radio image (anything `galcam.io.read_image` reads, any size), or a cutout
            already encoded with the model's channels.
        ir : same types as ``radio`` (not an EncodedCutout), optional
            The infrared image on any grid (ignored for an EncodedCutout).
        noise : `~galcam.preprocessing.NoiseResult`, optional
            Radio noise (scalar, or maps on the radio image's grid). Default: measured on
            each tile, as in training.
        ir_noise : `~galcam.preprocessing.NoiseResult`, optional
            Infrared noise (scalar). Default: measured on each tile.
        batch_size : int, optional
            Tiles per network pass.
        progress : bool or None, optional
            tqdm progress bar over the tiles (only on a terminal); None = True.
        score_threshold : float, optional
            Drop detections scoring below this. Default: the model's recommended catalogue
            threshold (`recommended_score_threshold`, as ``galcam predict`` uses); 0 keeps
            every detection. How many were dropped is ``result.meta["n_below_threshold"]``.

        Returns
        -------
        `~galcam.inference.SegmentationResult`
            Never None; empty when no galaxy is found.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        if score_threshold is None:
            score_threshold = self.recommended_score_threshold
        score_threshold = check_fraction(score_threshold, "score_threshold")
        job, items = self._prepare(radio, ir, noise, ir_noise, key=0, batch_size=batch_size)
        results = list(self._run([(job, items)], batch_size, progress, score_threshold,
                                 total=job.n_tiles))
        return results[0][1]

    def predict_dataset(self, dataset, *, image_dir=None, progress=True, batch_size=4,
                        score_threshold=0.0, plane=None, workers=0):
        """Predict every image of a COCO data set; returns COCO results.

        Only the images are read: a JSON file is loaded with its ``annotations`` dropped
        before anything else looks at it, and a `~galcam.datasets.CocoDataset` is used for
        its image records and category ids only.

        Parameters
        ----------
        dataset : path-like or `~galcam.datasets.CocoDataset`
            The COCO JSON (images with ``file_name``, optional ``ir_file_name``;
            categories matched to the model's classes by name).
        image_dir : path-like, optional
            Folder of the images (default: the JSON's folder).
        progress : bool, optional
            tqdm progress bar (on a terminal).
        batch_size : int, optional
            Tiles per network pass (tiles of consecutive images are batched together).
        score_threshold : float, optional
            Drop detections scoring below this (default 0: COCO results keep every
            detection with its score, so that evaluation ranks them; unlike a call on one
            image, which applies the model's recommended threshold).
        plane : int or dict, optional
            Plane of radio cubes (see `galcam.io.read_image`).
        workers : int, optional
            0 (default): every stage in this process, one after the other. N >= 1: the
            pipelined engine (`galcam.inference.pipeline`): N worker processes read and
            encode the images and run the instance step and the hosts while this process
            runs the networks on batches, so that neither waits for the other. Same
            results, in the same order; workers take a few seconds to start.

        Returns
        -------
        results : list of dict
            COCO results (``image_id``, ``category_id``, ``score``, ``segmentation``,
            ``bbox``, ``keypoints``), ids from the data set.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        score_threshold = check_fraction(score_threshold, "score_threshold")
        workers = check_positive_int(workers, "workers", allow_zero=True)
        ds = self._open_dataset(dataset, image_dir)
        categories = category_ids(self.classes, ds.categories)  # matched by name
        missing = [c for c in self.classes if c not in categories]
        if missing:
            warnings.warn(f"{ds!r}: the data set has no category for the model's class(es) "
                          f"{missing}; detections of these classes are left out of the COCO "
                          "results", AstropyUserWarning, stacklevel=2)
        records = list(ds)
        n_png = sum(1 for rec in records if rec.is_png)
        if n_png and self._uses_resolution:
            log.warning("%d of %d images are PNGs in the paper's encoding, which hold no noise "
                        "level: their galaxies are grouped and scored without the resolution "
                        "term (the model's recommended score threshold assumes it)", n_png,
                        len(records))
        if workers:
            results = self._run_pipelined(records, plane, batch_size, progress,
                                          score_threshold, workers)
        else:
            jobs = (self._prepare_record(rec, plane, batch_size) for rec in records)
            results = self._run(jobs, batch_size, progress, score_threshold, total=None)
        out = []
        for rec, (_, result) in zip(records, results, strict=True):
            keep = [d for d in result if d.class_name in categories]
            sub = SegmentationResult(keep, classes=result.classes, shape=result.shape,
                                     wcs=result.wcs, meta=result.meta, work_wcs=result.work_wcs)
            out.extend(sub.to_coco(rec.image_id, categories))
        log.info("%d detections in %d images", len(out), len(records))
        return out

    def _open_dataset(self, dataset, image_dir):
        from ..datasets import CocoDataset

        if isinstance(dataset, CocoDataset):
            if image_dir is not None:
                raise ValueError("image_dir: only used with a JSON file (a CocoDataset knows "
                                 "its image folder)")
            return dataset
        if not isinstance(dataset, (str, os.PathLike)):
            raise TypeError(f"dataset: expected a COCO JSON path or a CocoDataset, got "
                            f"{type(dataset).__name__}")
        path = Path(dataset)
        if not path.is_file():
            raise FileNotFoundError(f"'{path}': no such COCO JSON file")
        try:
            with open(path, encoding="utf-8") as fh:
                coco = json.load(fh)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"'{path}': not valid JSON ({exc})") from exc
        if isinstance(coco, dict):
            coco.pop("annotations", None)  # truth is never looked at
        # the data set's own categories (any names): they are matched to the model's
        # classes by name afterwards (category_ids), and a class without a category warns
        own = isinstance(coco, dict) and bool(coco.get("categories"))
        return CocoDataset.from_dict(coco, image_dir=path.parent if image_dir is None
                                     else image_dir, classes=None if own else self.classes,
                                     load_annotations=False, source=str(path))

    # --- preparation ----------------------------------------------------------------
    def _prepare_record(self, rec, plane, batch_size=4):
        if rec.is_png:
            radio01, ir01 = rec.read_png()
            bad = [c for c in self._encoder.channels if c not in _PAPER_CHANNELS]
            if bad:
                raise ValueError(f"image {rec.image_id} '{rec.path}': a PNG in the paper's "
                                 f"encoding has no {bad} channel needed by this model")
            planes = {"ir": ir01, "radio": radio01, "zeros": np.zeros_like(radio01)}
            channels = np.stack([planes[c] for c in self._encoder.channels]).astype(np.float32)
            valid = np.ones(radio01.shape, bool)
            job = _Job(rec.image_id, radio01.shape, None, radio01.shape, None,
                       {"input": str(rec.path)})
            return job, self._array_items(job, channels, radio01, ir01, valid)
        radio = rec.read_radio(plane=plane)
        ir = rec.read_ir() if rec.ir_path is not None else None
        return self._prepare(radio, ir, None, None, key=rec.image_id, batch_size=batch_size)

    def _prepare(self, radio, ir, noise, ir_noise, key, batch_size=4):
        """A `_Job` for one image and the generator of its tiles.

        The image is planned first (`plan`): the plan is logged, and an image it refuses
        raises `~galcam.inference.ImageRefusedError` before the infrared image is read or
        anything is resampled (unless ``force``).
        """
        if isinstance(radio, EncodedCutout):
            unused = [n for n, v in (("ir", ir), ("noise", noise), ("ir_noise", ir_noise))
                      if v is not None]
            if unused:
                raise ValueError(f"{', '.join(unused)}: not used with an EncodedCutout, which "
                                 "is already encoded; pass the radio image instead")
            return self._prepare_cutout(radio, key)
        if isinstance(ir, EncodedCutout):
            raise TypeError("ir: expected an infrared image, got an EncodedCutout")
        image = read_image(radio, memmap=isinstance(radio, (str, os.PathLike)))
        shape = tuple(image.data.shape)
        self._plan(image, type(radio).__name__, batch_size).check(force=self._force)
        if ir is not None:
            ir = read_image(ir)
            if not _infrared_overlaps(image, ir):
                log.warning("the infrared image %s does not overlap the radio image %s: "
                            "it is not used, and every host falls back to the radio "
                            "position (host_fallback)",
                            ir.meta.get("filename") or "(given)",
                            image.meta.get("filename") or "(given)")
                ir = None
        if noise is not None and noise.has_maps and noise.shape != shape:
            raise ValueError(f"noise: maps of shape {noise.shape} do not match the radio image "
                             f"{shape}")
        meta = {"model": self._name, "device": str(self._device),
                "input": str(image.meta.get("filename") or type(radio).__name__)}
        beam = image.meta.get("beam")
        target, matched = None, False  # the working pixel scale (None: the image's own)
        if self.pixel_scale is not None:
            target, matched = beam_matched_pixel_scale(beam, self.beam, self.pixel_scale,
                                                       strength=self._beam_matching)
        meta["beam_area_ratio"] = check_beam(beam, self.beam, where=meta["input"],
                                             matched=matched)
        if matched:
            meta["beam_matched"] = True
        work, work_wcs, work_noise = image, None, noise
        if target is not None:
            scales = axis_pixel_scales(image.wcs)
            meta["pixel_scale_arcsec"] = list(scales)
            if any(abs(s / target - 1) > PIXEL_SCALE_RTOL for s in scales):
                work = resample_image(image, target)
                work_wcs = work.wcs
                work_noise = resample_noise(noise, image.wcs, work.wcs, work.data.shape)
                meta["resampled_to_arcsec"] = target
        else:
            log.info("the model records no pixel scale: the image is used on its own grid")
        work_shape = tuple(work.data.shape)
        job = _Job(key, shape, image.wcs, work_shape, work_wcs, meta)
        tiles = tile_grid(work_shape, self._tile, self._overlap)
        job.n_tiles = len(tiles)
        meta.update(tile_size=list(self._tile), tile_overlap=list(self._overlap),
                    n_tiles=len(tiles))
        beam_sigma2 = self._job_beam(beam, work.wcs, meta["input"])
        return job, self._encoded_items(job, work, ir, tiles, work_noise, ir_noise,
                                        beam_sigma2)

    def _prepare_cutout(self, cutout, key):
        if tuple(cutout.channel_names) != tuple(self._encoder.channels):
            raise ValueError(f"radio: the EncodedCutout has channels {cutout.channel_names}, "
                             f"the model needs {self._encoder.channels}")
        meta = {"model": self._name, "device": str(self._device), "input": repr(cutout)}
        meta["beam_area_ratio"] = check_beam(cutout.beam, self.beam, where="cutout")
        if self.pixel_scale is not None and cutout.wcs is not None:
            scales = axis_pixel_scales(cutout.wcs)
            if any(abs(s / self.pixel_scale - 1) > PIXEL_SCALE_RTOL for s in scales):
                warnings.warn(f"the EncodedCutout has pixels of {scales[0]:.3g}\" x "
                              f"{scales[1]:.3g}\", the model was trained at "
                              f"{self.pixel_scale:.3g}\"; an encoded cutout cannot be "
                              "resampled: pass the image itself to predict at the model's "
                              "pixel scale", AstropyUserWarning, stacklevel=4)
        radio01, ir01 = cutout.paper_channels()
        shape = cutout.shape
        job = _Job(key, shape, cutout.wcs, shape, None, meta)
        beam_sigma2 = self._job_beam(cutout.beam, cutout.wcs, "cutout")
        return job, self._array_items(
            job, np.asarray(cutout.channels), radio01, ir01, np.asarray(cutout.valid),
            snr=cutout.radio_snr() if beam_sigma2 is not None else None,
            beam_sigma2=beam_sigma2)

    @property
    def _uses_resolution(self):
        """Whether galaxies are grouped and scored with the islands' resolution."""
        return self._grouping.uses_resolution

    def _job_beam(self, beam, wcs, where):
        """The beam's ``s_maj * s_min`` on ``wcs`` for the tiles of one image, or None.

        None when the resolution is not used, or when neither the image nor the model has
        a beam (logged).
        """
        if not self._uses_resolution:
            return None
        if beam is None and not self.beam:
            log.warning("%s: no beam in the header and none recorded by the model: galaxies "
                        "are grouped and scored without telling unresolved sources apart "
                        "(no resolution term)", where)
        return _beam_sigma2(beam, self.beam, wcs)

    def _array_items(self, job, channels, radio01, ir01, valid, snr=None, beam_sigma2=None):
        tiles = tile_grid(channels.shape[-2:], self._tile, self._overlap)
        job.n_tiles = len(tiles)
        job.meta.update(tile_size=list(self._tile), tile_overlap=list(self._overlap),
                        n_tiles=len(tiles))
        fill = self._encoder.fill_value

        def gen():
            th, tw = self._tile
            for t in tiles:
                v = _pad_slice(valid, t.y0, t.x0, th, tw, False)
                if not v.any():
                    continue
                yield t, _TileInput(_pad_slice(channels, t.y0, t.x0, th, tw, fill),
                                    _pad_slice(radio01, t.y0, t.x0, th, tw),
                                    _pad_slice(ir01, t.y0, t.x0, th, tw), v, t.x0, t.y0,
                                    snr=None if snr is None else _pad_slice(snr, t.y0, t.x0,
                                                                            th, tw),
                                    beam_sigma2=beam_sigma2)
        return gen()

    def _encoded_items(self, job, image, ir, tiles, noise, ir_noise, beam_sigma2):
        th, tw = self._tile
        positions = [(t.x0 + (tw - 1) / 2, t.y0 + (th - 1) / 2) for t in tiles]

        def gen():
            cutouts = self._encoder.encode_many(image, ir, positions, size=(th, tw),
                                                noise=noise, ir_noise=ir_noise, errors="skip")
            for cut in cutouts:
                t = tiles[cut.meta["index"]]
                x0, y0 = cut.origin
                radio01, ir01 = cut.paper_channels()
                yield (Tile(t.index, x0, y0, tw, th),
                       _TileInput(np.asarray(cut.channels), radio01, ir01,
                                  np.asarray(cut.valid), x0, y0,
                                  snr=cut.radio_snr() if beam_sigma2 is not None else None,
                                  beam_sigma2=beam_sigma2))
        return gen()

    # --- the engine -------------------------------------------------------------------
    def _run(self, jobs, batch_size, progress, score_threshold, total):
        """Run the networks over the tiles of ``jobs`` in batches; yield (job, result)."""
        show = _show_progress(progress)
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc="predicting", unit="tile")
        order = deque()
        batch = []
        try:
            for job, items in jobs:
                order.append(job)
                for tile, inp in items:
                    if batch and (inp.channels.shape != batch[0][2].channels.shape
                                  or len(batch) >= batch_size):
                        self._process(batch, bar)
                        batch = []
                        yield from self._finished(order, score_threshold)
                    job.pending += 1
                    batch.append((job, tile, inp))
                job.closed = True
                if bar is not None and total is None:
                    bar.total = (bar.total or 0) + job.n_tiles
                yield from self._finished(order, score_threshold)
            if batch:
                self._process(batch, bar)
            yield from self._finished(order, score_threshold)
        finally:
            if bar is not None:
                bar.close()

    def _run_pipelined(self, records, plane, batch_size, progress, score_threshold, workers):
        """`_run` for image records with worker processes (`galcam.inference.pipeline`)."""
        from .pipeline import run_pipelined

        bar = None
        if _show_progress(progress):
            from tqdm.auto import tqdm

            bar = tqdm(total=0, desc="predicting", unit="tile")
        try:
            yield from run_pipelined(self, records, plane=plane, batch_size=batch_size,
                                     score_threshold=score_threshold, workers=workers,
                                     progress_bar=bar)
        finally:
            if bar is not None:
                bar.close()

    def _finished(self, order, score_threshold):
        while order and order[0].closed and order[0].pending == 0:
            job = order.popleft()
            yield job, self._finalize(job, score_threshold)

    def _evidence(self, outputs, k, inp):
        """The `TileEvidence` of tile ``k`` of a batch's `NetworkOutputs`."""
        return TileEvidence(cams=outputs.cams[k], probabilities=outputs.probabilities[k],
                            edge=outputs.edges[k], displacement=outputs.displacements[k],
                            radio01=inp.radio01, snr=inp.snr, beam_sigma2=inp.beam_sigma2,
                            n_sigma=self._encoder.n_sigma)

    def _process(self, batch, bar):
        outputs = self._networks(np.stack([inp.channels for _, _, inp in batch]))
        for k, (job, tile, inp) in enumerate(batch):
            self._group_tile(job, tile, inp, outputs.tile(k))
            job.pending -= 1
            if bar is not None:
                bar.update(1)

    def _group_tile(self, job, tile, inp, outputs):
        """The instance step on one tile: its galaxies join ``job.detections``.

        ``outputs`` are the networks' outputs of this tile alone (`NetworkOutputs` of one).
        """
        evidence = self._evidence(outputs, 0, inp)
        for galaxy in self._grouper(evidence, self._grouping):
            det = self._tile_detection(job, tile, inp, galaxy, outputs.probabilities[0])
            if det is not None:
                job.detections.append(det)

    def _tile_detection(self, job, tile, inp, galaxy, probs):
        mask = galaxy.mask & inp.valid
        ys, xs = np.nonzero(mask)
        if xs.size == 0:
            return None
        my0, my1, mx0, mx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        th, tw = mask.shape
        # host evidence: the mask's box plus a margin, so that sub-pixel refinement sees the
        # neighbours of a peak on the mask's edge and an infrared source just outside a
        # compact mask can be the host
        m = HOST_MARGIN
        ey0, ey1 = max(my0 - m, 0), min(my1 + m, th)
        ex0, ex1 = max(mx0 - m, 0), min(mx1 + m, tw)
        evidence = HostEvidence(
            x0=inp.x0 + ex0, y0=inp.y0 + ey0, mask=mask[ey0:ey1, ex0:ex1],
            instance_map=galaxy.cam_map[ey0:ey1, ex0:ex1], ir=inp.ir01[ey0:ey1, ex0:ex1],
            radio=inp.radio01[ey0:ey1, ex0:ex1])
        own = galaxy.class_probabilities
        payload = {"class_index": int(galaxy.class_index),
                   "probabilities": probs.copy() if own is None else np.asarray(own),
                   "evidence": evidence}
        return TileDetection(tile, inp.x0 + int(mx0), inp.y0 + int(my0),
                             mask[my0:my1, mx0:mx1].copy(), float(galaxy.score), payload)

    def _finalize(self, job, score_threshold):
        merged = merge_tile_detections(job.detections, job.work_shape,
                                       iou_threshold=self._merge_iou)
        kept = []  # (merged detection, best tile detection, crop, x0, y0, cx, cy)
        below = 0
        for m in merged:
            best = job.detections[m.best]
            if best.score < score_threshold:
                below += 1
                continue
            crop, x0, y0 = m.mask, m.x0, m.y0
            if job.work_wcs is not None:
                back = map_crop_back(crop, x0, y0, job.work_wcs, job.wcs, job.shape)
                if back is None:
                    continue
                crop, x0, y0 = back
            ys, xs = np.nonzero(crop)
            kept.append((m, best, crop, x0, y0, float(xs.mean() + x0), float(ys.mean() + y0)))
        # the sky centroids in one WCS call (one call per detection cost more than the
        # rest of this step)
        sky = None
        if job.wcs is not None and kept:
            sky = job.wcs.pixel_to_world([k[5] for k in kept], [k[6] for k in kept])
        dets = []
        for i, (m, best, crop, x0, y0, cx, cy) in enumerate(kept):
            p = best.payload
            dets.append(Detection(
                id=i, class_name=self.classes[p["class_index"]],
                class_index=p["class_index"], score=float(best.score),
                class_probabilities=tuple(float(v) for v in p["probabilities"]),
                bbox=(int(x0), int(y0), int(crop.shape[1]), int(crop.shape[0])),
                mask_crop=crop, centroid=(cx, cy), sky_centroid=None if sky is None else sky[i],
                tiles=tuple(sorted({job.detections[j].tile.index for j in m.members})),
                evidence=p["evidence"]))
        meta = dict(job.meta)
        meta.update(model_sha256=self._model_sha256,
                    classes=list(self.classes), class_threshold=self._grouping.class_threshold,
                    score_threshold=score_threshold, n_below_threshold=below,
                    n_tile_detections=len(job.detections),
                    time_s=round(time.perf_counter() - job.t0, 3))
        result = SegmentationResult(dets, classes=self.classes, shape=job.shape, wcs=job.wcs,
                                    meta=meta, work_wcs=job.work_wcs)
        job.detections = []
        if self._host_finder is not None:
            result = result.with_hosts(self._host_finder(result))
        log.info("image %s: %d galaxies from %d tiles", job.key, len(result), job.n_tiles)
        return result

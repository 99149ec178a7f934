"""`WeakSegmenter`: radio galaxies, their masks, classes and hosts from a trained model.

The segmenter applies the inference of Gupta et al. (2023, PASA, section 3.2) to images of
any size: each image (or each overlapping tile of a large one) is encoded the way the model
was trained (`~galcam.preprocessing.CutoutEncoder` with the settings recorded in the model
folder), the CAM network gives class probabilities and multi-scale class activation maps,
IRNet gives boundaries and displacements, `~galcam.models.InstanceExtractor` turns them into
one mask per galaxy, tiles are merged (`~galcam.inference.merge_tile_detections`) and the
infrared host of each galaxy is found (`~galcam.inference.HostFinder`).

Unlike the authors' code, the classes come from the model's own classifier (never from
labels), every detection is kept with a score, and an image without galaxies gives an empty
result.
"""

import json
import logging
import math
import numbers
import os
import sys
import time
import warnings
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from astropy.utils.exceptions import AstropyUserWarning

from ..io import read_image
from ..models import (
    DEFAULT_SCALES,
    Backbone,
    CAMNet,
    InstanceExtractor,
    IRNet,
    ModelFolderError,
    load_model_folder,
    resolve_device,
    select_classes,
)
from ..models.cam import CAM_EPS
from ..models.cam_inference import (
    _N_VIEWS,
    CLASS_VIEWS,
    _check_scales,
    _check_views,
    _rescale,
    view_logits,
)
from ..preprocessing import CutoutEncoder, EncodedCutout, NoiseEstimator
from .hosts import HostFinder
from .refine import (
    group_islands,
    island_labels,
    island_resolution,
    island_votes,
    snap_to_islands,
)
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
           "models_dir"]

log = logging.getLogger(__name__)

_DATA_MODELS = Path(__file__).resolve().parent.parent / "data" / "models"

#: Registered model names. An entry is ``{"path": folder}`` for a model shipped with
#: galcam, or ``{"url": ..., "sha256": ..., "description": ...}`` for one that must be
#: fetched (galcam never downloads at prediction time; see `resolve_model`).
MODEL_REGISTRY = {
    "default": {
        "path": _DATA_MODELS / "default",
        "description": "bundled model trained by the galcam developers",
    },
}

_PAPER_CHANNELS = ("ir", "radio", "zeros")
#: Margin (working-grid pixels) of the host evidence around a mask's bounding box.
_HOST_MARGIN = 6
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelNotInstalledError(FileNotFoundError):
    """A registered model name whose files are not on this machine."""


def models_dir():
    """Folder where fetched registered models live: ``$GALCAM_MODELS`` or
    ``~/.cache/galcam/models``."""
    env = os.environ.get("GALCAM_MODELS")
    return Path(env) if env else Path.home() / ".cache" / "galcam" / "models"


def resolve_model(model):
    """The model folder for a path or a registered name.

    Parameters
    ----------
    model : str or path-like
        A model folder, or a name in `MODEL_REGISTRY` (``"default"``).

    Returns
    -------
    path : `pathlib.Path`

    Raises
    ------
    ModelNotInstalledError
        A registered name whose folder is not installed (nothing is downloaded).
    FileNotFoundError
        Neither an existing folder nor a registered name.
    """
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model: expected a folder path or a registered name, got {model!r}")
    path = Path(model)
    if path.is_dir():
        return path
    name = str(model)
    if name in MODEL_REGISTRY and not path.exists():
        entry = MODEL_REGISTRY[name]
        if "path" in entry:
            folder = Path(entry["path"])
            if folder.is_dir():
                return folder
            raise ModelNotInstalledError(
                f"model {name!r}: no bundled model is installed (expected it in '{folder}'); "
                "train one with `galcam train --coco TRAIN.json --image-dir DIR -o MODELDIR` "
                "(or WeakSegmenter.train) and pass that folder instead")
        folder = models_dir() / name
        if folder.is_dir():
            return folder
        raise ModelNotInstalledError(
            f"model {name!r} is not installed and galcam does not download models while "
            f"predicting (offline use): fetch {entry.get('url', 'it')} on a machine with "
            f"network access, unpack it to '{folder}' (or set GALCAM_MODELS), or pass a "
            "model folder")
    if path.exists():
        raise FileNotFoundError(f"model '{path}' is not a folder (a model is a folder with "
                                "config.json and weights)")
    raise FileNotFoundError(
        f"model {name!r}: no such model folder, and not a registered model name (registered: "
        f"{', '.join(sorted(MODEL_REGISTRY))})")


# ------------------------------------------------------------------------ model config
def _bad(path, message):
    return ModelFolderError(f"'{Path(path) / 'config.json'}': incompatible model: {message}")


def _section(config, key, path):
    value = config.get(key, {})
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _bad(path, f"'{key}' must be an object, got {type(value).__name__}")
    return value


def _pair_size(value, path, key):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise _bad(path, f"{key} must be a size in pixels, got {value!r}") from None
    if h < 16 or w < 16:
        raise _bad(path, f"{key} {value!r} is too small (at least 16 pixels)")
    return h, w


def _noise_estimator(settings, default):
    if not settings:
        return default
    keep = {k: v for k, v in settings.items()
            if k in ("method", "n_sigma", "maxiters", "box_size", "filter_size")}
    if isinstance(keep.get("box_size"), list):
        keep["box_size"] = tuple(keep["box_size"])
    return NoiseEstimator(**keep)


def _spec_from_config(config, path):
    """Everything inference needs from a model folder's config.json (validated)."""
    classes = config.get("classes")
    if (not isinstance(classes, list) or not classes
            or not all(isinstance(c, str) and c for c in classes)):
        raise _bad(path, f"'classes' must be a non-empty list of names, got {classes!r}")
    enc = _section(config, "encoding", path)
    if isinstance(config.get("backbone"), str):
        backbone = {"arch": config["backbone"]}
    else:
        backbone = _section(config, "backbone", path)
    thresholds = _section(config, "thresholds", path)
    radio = _section(config, "radio", path)
    inference = _section(config, "inference", path)
    channels = tuple(enc.get("channels", ("ir", "radio", "radio")))
    norm = enc.get("normalization", {}) or {}
    mean = tuple(float(v) for v in norm.get("mean", _IMAGENET_MEAN))
    std = tuple(float(v) for v in norm.get("std", _IMAGENET_STD))
    if not (len(mean) == len(std) == len(channels)) or not all(s > 0 for s in std):
        raise _bad(path, f"normalization mean {mean} / std {std} do not match the "
                         f"{len(channels)} channels {channels}")
    try:
        encoder = CutoutEncoder(
            size=210,
            channels=channels,
            radio_noise=_noise_estimator(enc.get("radio_noise"), None),
            ir_noise=_noise_estimator(enc.get("ir_noise"), None),
            n_sigma=enc.get("n_sigma", 3.0),
            n_pixels=enc.get("n_pixels", 5),
            ir_reproject=enc.get("ir_reproject", "interp"),
            fill_value=enc.get("fill_value", 0.0),
            snr_max=enc.get("snr_max", 1000.0),
        )
    except (TypeError, ValueError) as exc:
        raise _bad(path, f"encoding settings: {exc}") from exc
    size = enc.get("image_size", enc.get("size", 210))
    tile = _pair_size(size, path, "encoding.image_size")
    nets = {}
    for net in ("cam", "irnet"):
        b = backbone.get(net, backbone) if isinstance(backbone.get(net), dict) else backbone
        arch = b.get("arch", config.get("arch", "resnet50"))
        in_channels = int(b.get("in_channels", len(channels)))
        if in_channels != len(channels):
            raise _bad(path, f"backbone.{net}.in_channels {in_channels} != {len(channels)} "
                             "encoded channels")
        nets[net] = {"arch": arch, "in_channels": in_channels,
                     "shared_backbone": b.get("shared_backbone")}
    # the recommended inference value (chosen on a validation set by calibration) wins over
    # the value recorded from the training preset
    if "class_threshold" in inference:
        class_threshold = _from_config(_check_fraction, inference["class_threshold"], path,
                                       "inference.class_threshold", "a number in [0, 1]")
    else:
        class_threshold = _from_config(_check_fraction, thresholds.get("class_threshold", 0.5),
                                       path, "thresholds.class_threshold", "a number in [0, 1]")
    scales = tuple(thresholds.get("cam_scales", DEFAULT_SCALES))
    # without class_scales/class_views: the CAM scales, mirrored
    class_scales = thresholds.get("class_scales")
    if class_scales is not None:
        if (not isinstance(class_scales, list) or not class_scales
                or not all(_positive_number(v) for v in class_scales)):
            raise _bad(path, f"thresholds.class_scales must be a list of positive numbers, got "
                             f"{class_scales!r}")
        class_scales = tuple(float(v) for v in class_scales)
    class_views = thresholds.get("class_views")
    if class_views is not None and class_views not in CLASS_VIEWS:
        raise _bad(path, f"thresholds.class_views must be one of {list(CLASS_VIEWS)}, got "
                         f"{class_views!r}")
    pixel_scale = radio.get("pixel_scale_arcsec")
    beam = _beam_from_config(radio.get("beam"), path)
    spec = {
        "classes": tuple(classes), "encoder": encoder, "mean": mean, "std": std,
        "tile_size": tile, "nets": nets, "class_threshold": class_threshold,
        "scales": scales, "class_scales": class_scales, "class_views": class_views,
        "pixel_scale": None if pixel_scale is None else float(pixel_scale),
        "beam": beam,
        "extractor": dict(inference.get("instances", {}) or {}),
        "score_threshold": _from_config(_check_fraction, inference.get("score_threshold", 0.0),
                                        path, "inference.score_threshold", "a number in [0, 1]"),
    }
    for key in ("resolution_scale", "unresolved_ratio"):
        if key in inference:
            spec[key] = _from_config(_positive_or_none, inference[key], path, f"inference.{key}",
                                     "a positive number or null")
    return spec


def _positive_number(value):
    """A finite real number > 0 (not a bool)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def _beam_from_config(beam, path):
    """``radio.beam`` of config.json checked (None when the training data had no beam)."""
    if beam is None:
        return None
    if not isinstance(beam, dict):
        raise _bad(path, f"radio.beam must be an object or null, got {beam!r}")
    for key in ("major_arcsec", "minor_arcsec"):
        if not _positive_number(beam.get(key)):
            raise _bad(path, f"radio.beam.{key} must be a positive number of arcsec, got "
                             f"{beam.get(key)!r}")
    span = beam.get("area_range_arcsec2")
    if span is not None and not (isinstance(span, list) and len(span) == 2
                                 and all(_positive_number(v) for v in span)
                                 and span[0] <= span[1]):
        raise _bad(path, f"radio.beam.area_range_arcsec2 must be [smallest, largest] beam "
                         f"area in arcsec^2, got {span!r}")
    return dict(beam)


def _from_config(check, value, path, key, expected):
    """``check(value, key)``, its `ValueError` turned into a `ModelFolderError` for ``path``."""
    try:
        return check(value, key)
    except ValueError:
        raise _bad(path, f"{key} must be {expected}, got {value!r}") from None


def _load_state(module, state, what, path):
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFolderError(f"'{path}': the {what} weights do not fit the network described "
                               f"in config.json ({first})") from exc


# ------------------------------------------------------------------------ batched networks
def shares_backbone(cam_net, irnet):
    """True when IRNet's frozen backbone has exactly the CAM network's weights.

    Models trained with ``irnet_backbone='cam'`` (the ``fast`` preset) have one backbone
    for both networks; the segmenter then runs it once per image for the CAMs at scale 1
    and for IRNet, which is how the stored model also keeps it only once.
    """
    a = cam_net.backbone.state_dict()
    b = irnet.backbone.state_dict()
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


@torch.no_grad()
def _batch_forward(cam_net, irnet, x, scales, flip, shared, class_scales=None,
                   class_views=None):
    """CAMs, class probabilities, boundaries and displacements of a batch.

    CAMs as `galcam.models.multiscale_cams`: for each image, the CAMs of every scale in
    ``scales`` and of its mirror image, resized to the stride-4 grid and summed, divided by
    their per-class maximum (+1e-5). Probabilities as `galcam.models.predict_classes`: the
    sigmoid of the logits averaged over the scales ``class_scales`` (default ``scales``)
    and at each of them over the views ``class_views`` (`galcam.models.class_views`;
    default: the mirror image when ``flip``); logits the CAM passes already made are
    reused. Boundaries and displacements as `galcam.models.edge_and_displacement`
    (mirror-averaged edge logits, unflipped displacements). With ``shared`` (see
    `shares_backbone`) the backbone pass of scale 1 serves both networks.

    Returns
    -------
    strided, probs, edge, dp : `numpy.ndarray`
        (B, C, h4, w4), (B, C), (B, h4, w4), (B, 2, h4, w4).
    """
    b, _, h, w = x.shape
    h4, w4 = (h - 1) // 4 + 1, (w - 1) // 4 + 1
    both = torch.cat([x, x.flip(-1)])
    strided = 0
    logits = {}  # scale -> logits (views, B, C) of the first 1 or 2 class views
    ir_out = None
    for s in scales:
        if shared and s == 1.0 and ir_out is None:
            feats = cam_net.backbone.forward_stages(both)
            ir_out = irnet.heads(feats)
            out = cam_net.from_features(feats[-1] if flip else feats[-1][:b])
        else:
            xs = _rescale(x, s)
            if flip:
                xs = torch.cat([xs, xs.flip(-1)])
            out = cam_net.forward_all(xs)
        cam = out.cams[:b]
        if flip:
            cam = cam + out.cams[b:].flip(-1)
        logits.setdefault(s, out.logits.reshape(-1, b, out.logits.shape[-1]))
        strided = strided + F.interpolate(cam, size=(h4, w4), mode="bilinear",
                                          align_corners=False)
    strided = strided / (strided.amax(dim=(2, 3), keepdim=True) + CAM_EPS)
    views = ("flip" if flip else "none") if class_views is None else class_views
    n_views = _N_VIEWS[views]
    parts = []
    for s in (scales if class_scales is None else class_scales):
        have = logits.get(s, x.new_zeros((0, b, cam_net.n_classes)))[:n_views]
        parts.append(have)
        if have.shape[0] < n_views:
            parts.append(view_logits(cam_net, _rescale(x, s), views=views,
                                     start=have.shape[0]))
    prob = torch.sigmoid(torch.cat(parts).mean(dim=0))
    if ir_out is None:
        ir_out = irnet(both)
    edge = torch.sigmoid(ir_out.edge[:b, 0] / 2 + ir_out.edge[b:, 0].flip(-1) / 2)
    edge = edge[:, :h4, :w4]
    dp = ir_out.displacement[:b, :, :h4, :w4]
    return (strided.float().cpu().numpy(), prob.float().cpu().numpy(),
            edge.float().cpu().numpy(), dp.float().cpu().numpy())


class _Grouped:
    """One galaxy of ``mask_mode='grouped'``: what `_tile_detection` reads of an instance."""

    __slots__ = ("class_id", "score", "cam_map")

    def __init__(self, class_id, score, cam_map):
        self.class_id, self.score, self.cam_map = class_id, score, cam_map


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


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return value


def _check_fraction(value, name, low=0.0, high=1.0, low_open=False, high_open=False):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low)
    ok = ok and (value < high if high_open else value <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name}: expected a number in {lo}{low}, {high}{hi}, got {value!r}")
    return float(value)


def _check_positive(value, name, expected):
    if not _positive_number(value):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return float(value)


def _positive_or_none(value, name):
    if value is None:
        return None
    return _check_positive(value, name, "a positive number or None")


def _check_pixels(value, name):
    return _check_positive(value, name, "a positive number of pixels")


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    return int(batch_size)


def _show_progress(progress):
    if progress is None:
        progress = True
    return bool(progress) and sys.stderr.isatty()


# ------------------------------------------------------------------------ the tool
class WeakSegmenter:
    """Segment, classify and locate the hosts of extended radio galaxies with a trained model.

    Use `WeakSegmenter.load` (a model folder or a registered name) or `WeakSegmenter.train`;
    the constructor takes networks already built. Configured once, then called on images:
    ``result = segmenter(radio, ir, noise=noise)``.

    Parameters
    ----------
    cam_net : `~galcam.models.CAMNet`
        The (ReCAM-trained) classification network.
    irnet : `~galcam.models.IRNet`
        The boundary/displacement network.
    classes : sequence of str
        Class names of ``cam_net``'s outputs.
    encoder : `~galcam.preprocessing.CutoutEncoder`
        Encodes images as in training (its ``size`` is replaced by ``tile_size``).
    tile_size : int or (int, int)
        The model's input size (the size of its training images), in pixels.
    mean, std : sequence of float
        Per-channel normalisation of the encoded channels: ``(x - mean) / std``.
    pixel_scale : float, optional
        Pixel scale of the training images in arcsec; images with another scale are
        resampled to it (None: never resample).
    beam : dict, optional
        Training beam ``{"major_arcsec", "minor_arcsec", "pa_deg"}``; images whose beam area
        differs by more than a factor 1.5 give an `~astropy.utils.exceptions.AstropyUserWarning`
        (unless ``beam_matching`` resamples them).
    beam_matching : float, optional
        In [0, 1]. An image whose beam (from its header) has more than 1.5 times the area
        of the training beam is resampled onto pixels ``(area ratio) ** (beam_matching /
        2)`` times ``pixel_scale``: 1 gives as many pixels per beam as in training, 0 keeps
        the training pixel scale (`galcam.inference.beam_matched_pixel_scale`;
        default 0.5, measured in the docs: inference, step 1). Results are mapped back to
        the image's own pixels as for any resampled image.
    class_threshold : float, optional
        A class is present when the classifier's probability reaches it (0.5).
        `WeakSegmenter.load` uses the model folder's recommended value
        (``inference.class_threshold``, chosen on a validation set; 0 for the bundled
        model: with ``mask_mode='grouped'`` every galaxy then chooses among all classes)
        and otherwise the value recorded at training (``thresholds.class_threshold``).
    min_classes : int, optional
        Keep at least this many classes per tile even below the threshold (0: a tile may
        hold no galaxy).
    scales : sequence of float, optional
        Image scales of the multi-scale CAMs.
    flip : bool, optional
        Add the CAMs of mirrored images (True).
    class_scales : sequence of float, optional
        Image scales at which the classifier's probabilities are computed (default:
        ``scales``; a model folder may record others as ``thresholds.class_scales``).
    class_views : {'none', 'flip', 'dihedral'}, optional
        Symmetric views the probabilities are averaged over at each of ``class_scales``
        (`galcam.models.class_views`; default ``'flip'`` with ``flip``, else ``'none'``).
        ``'dihedral'`` (the 8 rotations by multiples of 90 degrees and their mirrors)
        suits a classifier trained with random rotations; measured in the docs
        (inference, step 4).
    tile_overlap : float, optional
        Overlap of neighbouring tiles as a fraction of the tile size, in [1/3, 0.9)
        (default 1/3, rounded up to whole pixels).
    merge_iou : float, optional
        IoU (restricted to the area two tiles share) above which detections of different
        tiles are the same galaxy.
    extractor : `~galcam.models.InstanceExtractor` or dict, optional
        Instance extraction settings (an object, or its keyword arguments).
    radio_weight : {'radio', None}, optional
        Weight of the instance CAMs before the random walk: the pre-processed radio
        channel in [0, 1] (default; zero off the radio islands), or None.
    mask_mode : {'grouped', 'islands', 'walk'}, optional
        How galaxies and their masks are made (see Notes). ``'grouped'`` (default): the
        radio islands (> 3 sigma, >= 5 pixels, the pixels the truth masks of the paper are
        made of) are grouped by where IRNet's displacement field sends them, one galaxy per
        group. ``'islands'``: IRNet's instance step with the random walk decides, every
        island goes to the instance whose random-walk mask claims it most strongly
        (`galcam.inference.refine.snap_to_islands`). ``'walk'``: the random-walk masks as
        they are (the reference code's behaviour).
    island_overlap : float, optional
        With ``mask_mode='islands'``, the smallest fraction of an island that a mask must
        cover to claim it (0.3).
    link_radius : float, optional
        With ``mask_mode='grouped'``, islands whose displacement votes lie within this
        many pixels (of the model's grid) are one galaxy (10 pixels, 20" for the bundled
        model).
    area_scale : float, optional
        With ``mask_mode='grouped'``, the area in pixels (of the model's grid) at which the
        extent term of the score reaches 1 - 1/e (150 pixels, about 3.7 beams of the
        training images).
    resolution_scale : float or None, optional
        With ``mask_mode='grouped'``, the scale of the resolution term of the score
        (Notes, step 5): how many times its point-source area a galaxy must exceed to
        reach 1 - 1/e (1.0). None leaves the term out (also done when the noise level or
        the beam is unknown: a PNG input, an image without a beam and a model without
        one).
    unresolved_ratio : float or None, optional
        With ``mask_mode='grouped'``, an island whose area is less than this many times
        the area of a point source of its peak signal-to-noise is taken as an unresolved
        source and never grouped with other islands (1.5; Notes, step 3). None groups
        every island (also done when the noise level or the beam is unknown).
    hosts : bool, optional
        Find the host of every detection (default True).
    host_finder : `~galcam.inference.HostFinder`, optional
    device : str or `torch.device`, optional
        ``'auto'`` (CUDA if available), ``'cpu'``, ``'cuda'``, ``'cuda:N'``.
    name : str, optional
        A name for the model (recorded in results).
    recommended_score_threshold : float, optional
        The catalogue threshold the model folder recommends (`load` reads it from
        ``inference.score_threshold`` of config.json); 0 by default.

    Notes
    -----
    With ``mask_mode='grouped'`` (default), each tile is processed as follows:

    1. islands: 8-connected components of the non-zero pixels of the pre-processed radio
       channel (> 3 sigma, >= 5 pixels);
    2. votes: IRNet's displacement field moves each pixel to the centre of its instance;
       the vote of an island is the brightness-weighted mean of ``pixel + displacement``
       (`galcam.inference.refine.island_votes`);
    3. galaxies: islands whose votes lie within ``link_radius`` of each other, directly or
       through a chain of islands, form one galaxy, whose mask is the union of its islands
       (`galcam.inference.refine.group_islands`); a core and detached lobes that point at
       the same centre are one galaxy, an unrelated source that points at itself is not.
       An unresolved island (area less than ``unresolved_ratio`` times that of a point
       source of its peak signal-to-noise, `galcam.inference.refine.island_resolution`)
       is a group of its own: compact sources beside a galaxy stay out of its mask;
    4. class: among the classes the classifier finds present (probability >=
       ``class_threshold``, at least the most probable one), the one of largest ``p_c *
       s_c``, with ``p_c`` the class probability and ``s_c`` the maximum of the class's
       max-normalised multi-scale CAM over the galaxy's pixels (with ``class_threshold``
       0, as the bundled model recommends, among all classes: the image-level
       probability of a second galaxy's class may be low in a cutout that one galaxy
       dominates);
    5. score: ``(1 - exp(-A / area_scale)) * (1 - exp(-(R - 1) / resolution_scale)) *
       (1 + p_c * m_c) / 2`` with ``A`` the mask area in pixels, ``m_c`` the mean of that
       CAM over the galaxy's pixels and ``R`` the galaxy's area over the area its
       islands would cover if each were a point source of its peak signal-to-noise (the
       beam above the island threshold; `galcam.inference.refine.island_resolution`;
       the resolution term is 0 for ``R <= 1``): extended emission the network
       attributes to a class throughout scores high; a small island away from the CAMs,
       one that only touches them, or unresolved sources (bright ones have large
       islands too), low. Every group is reported (nothing is dropped), so COCO-style
       evaluation sees every prediction with its score; a catalogue applies a score
       threshold.

    With ``'islands'`` and ``'walk'`` the score of a detection is ``class_score * peak``
    (see `galcam.models.InstanceExtractor`).
    """

    def __init__(self, cam_net, irnet, *, classes, encoder, tile_size, mean=_IMAGENET_MEAN,
                 std=_IMAGENET_STD, pixel_scale=None, beam=None, class_threshold=0.5,
                 min_classes=0, scales=DEFAULT_SCALES, flip=True, class_scales=None,
                 class_views=None, tile_overlap=1 / 3,
                 merge_iou=0.5, extractor=None, radio_weight="radio", mask_mode="grouped",
                 island_overlap=0.3, link_radius=10.0, area_scale=150.0,
                 resolution_scale=1.0, unresolved_ratio=1.5, beam_matching=0.5, hosts=True,
                 host_finder=None, device="auto", name=None,
                 recommended_score_threshold=0.0):
        if not isinstance(cam_net, CAMNet):
            raise TypeError(f"cam_net: expected a galcam.models.CAMNet, got "
                            f"{type(cam_net).__name__}")
        if not isinstance(irnet, IRNet):
            raise TypeError(f"irnet: expected a galcam.models.IRNet, got {type(irnet).__name__}")
        self._classes = tuple(classes)
        if len(self._classes) != cam_net.n_classes:
            raise ValueError(f"classes: {len(self._classes)} names for a network with "
                             f"{cam_net.n_classes} outputs")
        if not isinstance(encoder, CutoutEncoder):
            raise TypeError(f"encoder: expected a CutoutEncoder, got {type(encoder).__name__}")
        th, tw = (tile_size, tile_size) if isinstance(tile_size, numbers.Integral) \
            else tuple(tile_size)
        if min(th, tw) < 16:
            raise ValueError(f"tile_size: expected at least 16 pixels, got {tile_size!r}")
        self._tile = (int(th), int(tw))
        self._mean = np.asarray(mean, dtype=np.float32)
        self._std = np.asarray(std, dtype=np.float32)
        if self._mean.shape != (len(encoder.channels),) or self._std.shape != self._mean.shape:
            raise ValueError(f"mean/std: expected {len(encoder.channels)} values each")
        self._pixel_scale = None if pixel_scale is None else float(pixel_scale)
        self._beam = beam
        self._beam_matching = _check_fraction(beam_matching, "beam_matching")
        self._class_threshold = _check_fraction(class_threshold, "class_threshold")
        if isinstance(min_classes, bool) or not isinstance(min_classes, numbers.Integral) \
                or not 0 <= min_classes <= len(self._classes):
            raise ValueError(f"min_classes: expected an integer in [0, {len(self._classes)}], "
                             f"got {min_classes!r}")
        self._min_classes = int(min_classes)
        self._scales = _check_scales(scales, "scales")
        self._flip = _check_bool(flip, "flip")
        self._class_scales = (None if class_scales is None
                              else _check_scales(class_scales, "class_scales"))
        self._class_views = (None if class_views is None
                             else _check_views(class_views, "class_views"))
        self._overlap_fraction = _check_fraction(tile_overlap, "tile_overlap", 1 / 3 - 1e-9,
                                                 0.9, high_open=True)
        self._overlap = tuple(min(n - 1, math.ceil(self._overlap_fraction * n))
                              for n in self._tile)
        self._merge_iou = _check_fraction(merge_iou, "merge_iou", 0.0, 1.0, low_open=True)
        if extractor is None:
            extractor = InstanceExtractor()
        elif isinstance(extractor, dict):
            extractor = InstanceExtractor(**extractor)
        elif not isinstance(extractor, InstanceExtractor):
            raise TypeError(f"extractor: expected an InstanceExtractor or a dict of its options, "
                            f"got {type(extractor).__name__}")
        self._extractor = extractor
        if radio_weight not in ("radio", None):
            raise ValueError(f"radio_weight: expected 'radio' or None, got {radio_weight!r}")
        self._radio_weight = radio_weight
        if mask_mode not in ("grouped", "islands", "walk"):
            raise ValueError(f"mask_mode: expected 'grouped', 'islands' or 'walk', got "
                             f"{mask_mode!r}")
        self._mask_mode = mask_mode
        self._link_radius = _check_pixels(link_radius, "link_radius")
        self._area_scale = _check_pixels(area_scale, "area_scale")
        self._resolution_scale = _positive_or_none(resolution_scale, "resolution_scale")
        self._unresolved_ratio = _positive_or_none(unresolved_ratio, "unresolved_ratio")
        self._island_overlap = _check_fraction(island_overlap, "island_overlap", 0.0, 1.0,
                                               low_open=True)
        self._hosts = _check_bool(hosts, "hosts")
        if host_finder is None:
            host_finder = HostFinder()
        elif not isinstance(host_finder, HostFinder):
            raise TypeError(f"host_finder: expected a HostFinder, got {type(host_finder).__name__}")
        self._host_finder = host_finder
        self._device = resolve_device(device)
        self._cam = cam_net.to(self._device).eval()
        self._irnet = irnet.to(self._device).eval()
        self._shared = shares_backbone(self._cam, self._irnet)
        self._encoder = encoder
        self._name = name
        self._recommended = _check_fraction(recommended_score_threshold,
                                            "recommended_score_threshold")

    # --- construction -----------------------------------------------------------------
    @classmethod
    def load(cls, model="default", *, device="auto", **options):
        """Load a model folder or a registered model.

        Parameters
        ----------
        model : str or path-like, optional
            A model folder (written by `galcam.training.train_weak_model`) or a name in
            `MODEL_REGISTRY` (``"default"``: the bundled model).
        device : str or `torch.device`, optional
            ``'auto'`` (default), ``'cpu'``, ``'cuda'``, ``'cuda:N'``.
        **options
            Overrides of the segmenter's settings (``class_threshold``, ``min_classes``,
            ``scales``, ``flip``, ``class_scales``, ``class_views``, ``tile_overlap``,
            ``merge_iou``, ``extractor``, ``radio_weight``, ``mask_mode``,
            ``island_overlap``, ``link_radius``, ``area_scale``, ``resolution_scale``,
            ``unresolved_ratio``, ``beam_matching``, ``hosts``, ``host_finder``); by
            default the values recorded in the model folder, else the defaults of the
            class.

        Raises
        ------
        FileNotFoundError
            No such folder or registered name, or a file of the folder is missing
            (`ModelNotInstalledError` for a registered model that is not installed).
        galcam.models.ModelFolderError
            A truncated, corrupt or incompatible model folder.
        """
        allowed = {"class_threshold", "min_classes", "scales", "flip", "class_scales",
                   "class_views", "tile_overlap", "merge_iou", "extractor", "radio_weight",
                   "mask_mode", "island_overlap", "link_radius", "area_scale",
                   "resolution_scale", "unresolved_ratio", "beam_matching", "hosts",
                   "host_finder"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise TypeError(f"WeakSegmenter.load: unknown option(s) {unknown}; valid: "
                            f"{sorted(allowed)}")
        path = resolve_model(model)
        device = resolve_device(device)
        config, states, _ = load_model_folder(path, map_location="cpu")
        spec = _spec_from_config(config, path)
        for net in ("cam", "irnet"):
            if net not in states:
                raise ModelFolderError(f"'{path}': no '{net}' weights in the model folder "
                                       f"(it has {sorted(states)})")
        n_classes = len(spec["classes"])
        cam_net = CAMNet(spec["nets"]["cam"]["arch"], n_classes,
                         in_channels=spec["nets"]["cam"]["in_channels"])
        _load_state(cam_net, states["cam"], "CAM", path)
        irnet = IRNet(Backbone(spec["nets"]["irnet"]["arch"],
                               in_channels=spec["nets"]["irnet"]["in_channels"]))
        irnet_state = dict(states["irnet"])
        if spec["nets"]["irnet"]["shared_backbone"] == "cam":
            # stored once: IRNet's frozen backbone is the CAM network's
            if any(k.startswith("backbone.") for k in irnet_state):
                raise ModelFolderError(f"'{path}': config.json says IRNet shares the CAM "
                                       "backbone, but irnet weights hold a backbone too")
            irnet_state.update({k: v for k, v in states["cam"].items()
                                if k.startswith("backbone.")})
        _load_state(irnet, irnet_state, "IRNet", path)
        settings = {"class_threshold": spec["class_threshold"], "scales": spec["scales"],
                    "class_scales": spec["class_scales"], "class_views": spec["class_views"],
                    "extractor": spec["extractor"] or None}
        for key in ("resolution_scale", "unresolved_ratio"):
            if key in spec:
                settings[key] = spec[key]
        settings.update(options)
        log.info("loaded model %s: classes %s, input %dx%d, pixel scale %s arcsec", path,
                 ", ".join(spec["classes"]), *spec["tile_size"], spec["pixel_scale"])
        return cls(cam_net, irnet, classes=spec["classes"], encoder=spec["encoder"],
                   tile_size=spec["tile_size"], mean=spec["mean"], std=spec["std"],
                   pixel_scale=spec["pixel_scale"], beam=spec["beam"], device=device,
                   name=str(model), recommended_score_threshold=spec["score_threshold"],
                   **settings)

    @classmethod
    def train(cls, dataset, *, preset="fast", output_dir, device="auto", **kwargs):
        """Train a model from image-level labels and load it.

        Delegates to `galcam.training.train_weak_model` (CAM -> ReCAM -> IRNet, Gupta et
        al. 2023 sections 3.2-3.3; only image-level labels are read), then loads the model
        folder it wrote.

        Parameters
        ----------
        dataset : `~galcam.datasets.CocoDataset` or `~galcam.datasets.WeakLabelView`
        preset : {'fast', 'paper'}, optional
        output_dir : path-like
            The model folder to write.
        device : str, optional
        **kwargs
            Passed to `~galcam.training.train_weak_model` (``seed``, ``val_dataset``,
            ``resume``, ``overwrite``, hyper-parameter overrides ...).

        Returns
        -------
        `WeakSegmenter`
        """
        from ..training import train_weak_model

        result = train_weak_model(dataset, preset=preset, output_dir=output_dir, device=device,
                                  **kwargs)
        path = getattr(result, "path", output_dir)
        return cls.load(path, device=device)

    # --- properties -------------------------------------------------------------------
    classes = property(lambda self: self._classes, doc="Class names.")
    tile_size = property(lambda self: self._tile, doc="``(height, width)`` of a tile.")
    tile_overlap = property(lambda self: self._overlap, doc="Tile overlap ``(y, x)`` in pixels.")
    pixel_scale = property(lambda self: self._pixel_scale,
                           doc="Training pixel scale in arcsec (None if unknown).")
    beam = property(lambda self: self._beam, doc="Training beam (dict) or None.")
    beam_matching = property(lambda self: self._beam_matching,
                             doc="How far images with a much larger beam are resampled towards "
                                 "the training pixels per beam (0: not at all, 1: fully).")
    class_threshold = property(lambda self: self._class_threshold,
                               doc="Class probability threshold.")
    resolution_scale = property(lambda self: self._resolution_scale,
                                doc="Scale of the score's resolution term (None: not used).")
    unresolved_ratio = property(lambda self: self._unresolved_ratio,
                                doc="Area ratio below which an island is not grouped (None: "
                                    "every island is grouped).")
    device = property(lambda self: self._device, doc="The `torch.device` the networks run on.")
    encoder = property(lambda self: self._encoder, doc="The `CutoutEncoder` of the model.")
    extractor = property(lambda self: self._extractor, doc="The `InstanceExtractor`.")
    host_finder = property(lambda self: self._host_finder, doc="The `HostFinder`.")
    recommended_score_threshold = property(
        lambda self: self._recommended,
        doc="Score threshold recommended for catalogues by the model folder "
            "(``inference.score_threshold`` of config.json, e.g. the value that maximised "
            "F1 on a validation set); 0 when it records none.")

    def __repr__(self):
        return (f"WeakSegmenter(model={self._name!r}, classes={self._classes}, "
                f"tile_size={self._tile}, device='{self._device}')")

    # --- prediction -------------------------------------------------------------------
    def __call__(self, radio, ir=None, *, noise=None, ir_noise=None, batch_size=4,
                 progress=None, score_threshold=0.0):
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
            Drop detections scoring below this (default 0: keep all).

        Returns
        -------
        `~galcam.inference.SegmentationResult`
            Never None; empty when no galaxy is found.
        """
        batch_size = _check_batch_size(batch_size)
        score_threshold = _check_fraction(score_threshold, "score_threshold")
        job, items = self._prepare(radio, ir, noise, ir_noise, key=0)
        results = list(self._run([(job, items)], batch_size, progress, score_threshold,
                                 total=job.n_tiles))
        return results[0][1]

    def predict_dataset(self, dataset, *, image_dir=None, progress=True, batch_size=4,
                        score_threshold=0.0, plane=None):
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
            Drop detections scoring below this.
        plane : int or dict, optional
            Plane of radio cubes (see `galcam.io.read_image`).

        Returns
        -------
        results : list of dict
            COCO results (``image_id``, ``category_id``, ``score``, ``segmentation``,
            ``bbox``, ``keypoints``), ids from the data set.
        """
        batch_size = _check_batch_size(batch_size)
        score_threshold = _check_fraction(score_threshold, "score_threshold")
        ds = self._open_dataset(dataset, image_dir)
        categories = category_ids(self._classes, ds.categories)  # matched by name
        missing = [c for c in self._classes if c not in categories]
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
        jobs = (self._prepare_record(rec, plane) for rec in records)
        out = []
        for rec, (_, result) in zip(records, self._run(jobs, batch_size, progress,
                                                      score_threshold, total=None),
                                    strict=True):
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
        return CocoDataset.from_dict(coco, image_dir=path.parent if image_dir is None
                                     else image_dir, classes=self._classes,
                                     load_annotations=False, source=str(path))

    # --- preparation ----------------------------------------------------------------
    def _prepare_record(self, rec, plane):
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
        return self._prepare(radio, ir, None, None, key=rec.image_id)

    def _prepare(self, radio, ir, noise, ir_noise, key):
        """A `_Job` for one image and the generator of its tiles."""
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
        if self._pixel_scale is not None:
            target, matched = beam_matched_pixel_scale(beam, self._beam, self._pixel_scale,
                                                       strength=self._beam_matching)
        meta["beam_area_ratio"] = check_beam(beam, self._beam, where=meta["input"],
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
        meta["beam_area_ratio"] = check_beam(cutout.beam, self._beam, where="cutout")
        if self._pixel_scale is not None and cutout.wcs is not None:
            scales = axis_pixel_scales(cutout.wcs)
            if any(abs(s / self._pixel_scale - 1) > PIXEL_SCALE_RTOL for s in scales):
                warnings.warn(f"the EncodedCutout has pixels of {scales[0]:.3g}\" x "
                              f"{scales[1]:.3g}\", the model was trained at "
                              f"{self._pixel_scale:.3g}\"; an encoded cutout cannot be "
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
        return self._mask_mode == "grouped" and (self._resolution_scale is not None
                                                 or self._unresolved_ratio is not None)

    def _job_beam(self, beam, wcs, where):
        """The beam's ``s_maj * s_min`` on ``wcs`` for the tiles of one image, or None.

        None when the resolution is not used, or when neither the image nor the model has
        a beam (logged).
        """
        if not self._uses_resolution:
            return None
        if beam is None and not self._beam:
            log.warning("%s: no beam in the header and none recorded by the model: galaxies "
                        "are grouped and scored without telling unresolved sources apart "
                        "(no resolution term)", where)
        return _beam_sigma2(beam, self._beam, wcs)

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

    def _finished(self, order, score_threshold):
        while order and order[0].closed and order[0].pending == 0:
            job = order.popleft()
            yield job, self._finalize(job, score_threshold)

    def _process(self, batch, bar):
        x = np.stack([inp.channels for _, _, inp in batch]).astype(np.float32)
        x = (x - self._mean[None, :, None, None]) / self._std[None, :, None, None]
        xt = torch.from_numpy(x).to(self._device)
        strided, probs, edges, dps = _batch_forward(
            self._cam, self._irnet, xt, self._scales, self._flip, self._shared,
            class_scales=self._class_scales, class_views=self._class_views)
        th, tw = x.shape[-2:]
        for k, (job, tile, inp) in enumerate(batch):
            if self._mask_mode == "grouped":
                found = self._grouped(strided[k], probs[k], dps[k], inp, (th, tw))
            else:
                found = self._walked(strided[k], probs[k], edges[k], dps[k], inp, (th, tw))
            for inst, mask in found:
                det = self._tile_detection(job, tile, inp, inst, probs[k], mask)
                if det is not None:
                    job.detections.append(det)
            job.pending -= 1
            if bar is not None:
                bar.update(1)

    def _walked(self, strided, probs, edge, dp, inp, size):
        """(instance, mask) pairs of IRNet's instance step (``mask_mode`` 'islands'/'walk')."""
        keys = select_classes(probs, threshold=self._class_threshold,
                              min_classes=self._min_classes)
        if not len(keys):
            return []
        weight = inp.radio01 if self._radio_weight == "radio" else None
        instances = self._extractor(strided[keys], keys, probs[keys], edge, dp, weight, size)
        masks = [inst.mask for inst in instances]
        if self._mask_mode == "islands" and instances:
            labels, n_islands = island_labels(inp.radio01)
            masks = snap_to_islands(masks, [inst.score for inst in instances], labels,
                                    n_islands, min_overlap=self._island_overlap)
        # an instance that claimed no emission above 3 sigma has mask None
        return [(inst, mask) for inst, mask in zip(instances, masks) if mask is not None]

    def _grouped(self, strided, probs, dp, inp, size):
        """Galaxies as groups of radio islands (``mask_mode='grouped'``; see the class notes)."""
        labels, n = island_labels(inp.radio01)
        if n == 0:
            return []
        votes = island_votes(labels, n, inp.radio01, dp)
        area = point = isolated = None
        if self._uses_resolution and inp.snr is not None and inp.beam_sigma2 is not None:
            # island areas against those of point sources of the same peak S/N
            area, point = island_resolution(labels, n, inp.snr, inp.beam_sigma2,
                                            n_sigma=self._encoder.n_sigma)
            if self._unresolved_ratio is not None:
                isolated = area < self._unresolved_ratio * np.maximum(point, 1.0)
        groups = group_islands(votes, link_radius=self._link_radius, isolated=isolated)
        th, tw = size
        cam_up = F.interpolate(torch.from_numpy(np.ascontiguousarray(strided))[None],
                               scale_factor=4, mode="bilinear",
                               align_corners=False)[0, :, :th, :tw].numpy()
        keys = select_classes(probs, threshold=self._class_threshold,
                              min_classes=max(1, self._min_classes))
        key_probs = np.asarray(probs, dtype=np.float64)[keys]
        key_cams = cam_up[keys]
        pixel_group = np.concatenate([[-1], groups])[labels]  # -1 outside the islands
        resolved = None
        if self._resolution_scale is not None and area is not None:
            area_g = np.bincount(groups, weights=area)
            point_g = np.bincount(groups, weights=point)
            ratio = area_g / np.maximum(point_g, 1.0)
            resolved = 1.0 - np.exp(-np.clip(ratio - 1.0, 0.0, None) / self._resolution_scale)
        out = []
        for g in range(int(groups.max()) + 1):
            mask = pixel_group == g
            cams = np.clip(key_cams[:, mask], 0, 1)
            j = int(np.argmax(key_probs * cams.max(axis=1)))
            extent = 1.0 - math.exp(-float(mask.sum()) / self._area_scale)
            if resolved is not None:
                extent *= float(resolved[g])
            score = extent * (1.0 + float(key_probs[j] * cams[j].mean())) / 2.0
            c = int(keys[j])
            out.append((_Grouped(class_id=c, score=score, cam_map=cam_up[c]), mask))
        return out

    def _tile_detection(self, job, tile, inp, inst, probs, mask):
        mask = mask & inp.valid
        ys, xs = np.nonzero(mask)
        if xs.size == 0:
            return None
        my0, my1, mx0, mx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        th, tw = mask.shape
        # host evidence: the mask's box plus a margin, so that sub-pixel refinement sees the
        # neighbours of a peak on the mask's edge and an infrared source just outside a
        # compact mask can be the host
        m = _HOST_MARGIN
        ey0, ey1 = max(my0 - m, 0), min(my1 + m, th)
        ex0, ex1 = max(mx0 - m, 0), min(mx1 + m, tw)
        evidence = HostEvidence(
            x0=inp.x0 + ex0, y0=inp.y0 + ey0, mask=mask[ey0:ey1, ex0:ex1],
            instance_map=inst.cam_map[ey0:ey1, ex0:ex1], ir=inp.ir01[ey0:ey1, ex0:ex1],
            radio=inp.radio01[ey0:ey1, ex0:ex1])
        payload = {"class_index": int(inst.class_id), "probabilities": probs.copy(),
                   "evidence": evidence}
        return TileDetection(tile, inp.x0 + int(mx0), inp.y0 + int(my0),
                             mask[my0:my1, mx0:mx1].copy(), float(inst.score), payload)

    def _finalize(self, job, score_threshold):
        merged = merge_tile_detections(job.detections, job.work_shape,
                                       iou_threshold=self._merge_iou)
        dets = []
        for m in merged:
            best = job.detections[m.best]
            if best.score < score_threshold:
                continue
            crop, x0, y0 = m.mask, m.x0, m.y0
            if job.work_wcs is not None:
                back = map_crop_back(crop, x0, y0, job.work_wcs, job.wcs, job.shape)
                if back is None:
                    continue
                crop, x0, y0 = back
            ys, xs = np.nonzero(crop)
            cx, cy = float(xs.mean() + x0), float(ys.mean() + y0)
            sky = None if job.wcs is None else job.wcs.pixel_to_world(cx, cy)
            p = best.payload
            dets.append(Detection(
                id=len(dets), class_name=self._classes[p["class_index"]],
                class_index=p["class_index"], score=float(best.score),
                class_probabilities=tuple(float(v) for v in p["probabilities"]),
                bbox=(int(x0), int(y0), int(crop.shape[1]), int(crop.shape[0])),
                mask_crop=crop, centroid=(cx, cy), sky_centroid=sky,
                tiles=tuple(sorted({job.detections[i].tile.index for i in m.members})),
                evidence=p["evidence"]))
        meta = dict(job.meta)
        meta.update(classes=list(self._classes), class_threshold=self._class_threshold,
                    score_threshold=score_threshold,
                    n_tile_detections=len(job.detections),
                    time_s=round(time.perf_counter() - job.t0, 3))
        result = SegmentationResult(dets, classes=self._classes, shape=job.shape, wcs=job.wcs,
                                    meta=meta, work_wcs=job.work_wcs)
        job.detections = []
        if self._hosts:
            result = result.with_hosts(self._host_finder(result))
        log.info("image %s: %d galaxies from %d tiles", job.key, len(result), job.n_tiles)
        return result

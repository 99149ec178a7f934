"""`ModelSpec`: the typed, immutable description of a model folder's ``config.json``.

A model folder (see `galcam.models.save_model_folder`) describes its networks and how
images must be prepared for them in ``config.json``. `ModelSpec` is the one reader and
writer of that description: training builds a spec and writes ``spec.to_dict()``;
`galcam.inference.WeakSegmenter.load` reads it with `ModelSpec.from_dict`, which checks
the schema version and every value it uses, and names the file and key of a bad one. The
defaults of missing keys (folders written by earlier galcam versions) are the field
defaults below, and nowhere else.

This module is torch-free: a spec can be read, checked and compared without loading a
network.
"""

import copy
import dataclasses
import hashlib
import math
import numbers
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

__all__ = ["SCHEMA_VERSION", "ModelSpec", "NetworkSpec", "ModelFolderError", "config_sha256",
           "IMAGENET_MEAN", "IMAGENET_STD", "DEFAULT_SCALES", "CLASS_VIEWS"]

#: Version of the model-folder layout written by this galcam.
SCHEMA_VERSION = 1

#: Normalisation of the encoded channels when a folder records none (ImageNet's).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Image scales of the multi-scale CAMs when a folder records none (the paper's).
DEFAULT_SCALES = (1.0, 0.5, 1.5, 2.0)
#: Symmetric views the class probabilities may be averaged over.
CLASS_VIEWS = ("none", "flip", "dihedral")

# settings of a NoiseEstimator that a folder may record
_NOISE_KEYS = ("method", "n_sigma", "maxiters", "box_size", "filter_size")
# keys of the "inference" section that a spec types (the rest, e.g. notes, is kept as is)
_GROUPING_KEYS = ("resolution_scale", "unresolved_ratio", "link_radius_arcsec",
                  "area_scale_arcsec2")


_ABSENT = object()  # a key missing from config.json (None is a value there)


def config_sha256(folder):
    """SHA-256 of a model folder's ``config.json``: it lists every weight file's SHA-256,
    so it identifies the whole model (the ``model_sha256`` of catalogues and surveys)."""
    return hashlib.sha256((Path(folder) / "config.json").read_bytes()).hexdigest()


#: Arithmetic a model's network passes may run in (`~galcam.models.ModelNetworks`
#: ``precision``): float32 as trained, bfloat16, float16 (CUDA only).
PRECISION_NAMES = ("float32", "bfloat16", "float16")


def _rebuild(cls, values):
    """Unpickle a `ModelSpec` (see its ``__reduce__``)."""
    return cls(**values)


class ModelFolderError(ValueError):
    """A model folder is incomplete, corrupt or written by an incompatible galcam."""


def _freeze(value):
    """A read-only copy of JSON-like data: dicts become mapping proxies, lists tuples."""
    if isinstance(value, dict | MappingProxyType):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value):
    """The JSON-serialisable form of `_freeze`'s output (tuples become lists)."""
    if isinstance(value, dict | MappingProxyType):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


def _positive(value):
    """A finite real number > 0 (not a bool)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def _fraction(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= 1)


@dataclass(frozen=True)
class NetworkSpec:
    """One network of a model folder.

    Parameters
    ----------
    arch : str
        Backbone architecture (``'resnet18'``, ``'resnet50'``, ...).
    in_channels : int
        Input channels (the encoded channels).
    shared_backbone : str or None
        ``'cam'`` when IRNet's frozen backbone is the CAM network's and is stored once,
        in the CAM weights; None otherwise.
    """

    arch: str = "resnet50"
    in_channels: int = 3
    shared_backbone: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """What a model folder says about its networks, their input and their inference.

    Build one with `from_dict` (a ``config.json``) or with the constructor (training);
    write one with `to_dict`. Instances are immutable: `with_options` returns a changed
    copy.

    Parameters
    ----------
    classes : tuple of str
        Class names of the classifier's outputs, in order.
    channels : tuple of str
        Encoded channels (`~galcam.preprocessing.CutoutEncoder` names).
    mean, std : tuple of float
        Per-channel normalisation of the encoded channels, ``(x - mean) / std``.
    image_size : (int, int)
        ``(height, width)`` of the training images in pixels: the tile size at inference.
    encoding : mapping
        The other `~galcam.preprocessing.CutoutEncoder` settings (``n_sigma``,
        ``n_pixels``, ``ir_reproject``, ``fill_value``, ``snr_max``, ``radio_noise``,
        ``ir_noise``).
    cam, irnet : `NetworkSpec`
        The classification (CAM/ReCAM) network and IRNet.
    pixel_scale : float or None
        Pixel scale of the training images in arcsec (None: unknown, e.g. PNG data).
    beam : mapping or None
        Training beam: ``major_arcsec``, ``minor_arcsec``, optionally ``pa_deg`` and
        ``area_range_arcsec2`` (the smallest and largest beam area of the training set).
    cam_scales : tuple of float
        Image scales of the multi-scale CAMs.
    class_scales : tuple of float or None
        Image scales of the class probabilities (None: ``cam_scales``).
    class_views : str or None
        Views the probabilities are averaged over (one of `CLASS_VIEWS`; None: the
        mirror image).
    class_threshold : float
        The class threshold the model was trained and validated with (in [0, 1]).
    recommended_class_threshold : float or None
        The class threshold chosen for inference on a validation set (`calibrate`), which
        wins over ``class_threshold`` at inference; None when not calibrated.
    score_threshold : float
        The catalogue score threshold recommended by calibration (0: none recorded).
    grouping : mapping
        Recommended options of the instance step (`galcam.inference.GalaxyGrouper`):
        ``resolution_scale``, ``unresolved_ratio`` (numbers or None),
        ``link_radius_arcsec``, ``area_scale_arcsec2``.
    instances : mapping
        Options of `galcam.models.InstanceExtractor` for the random-walk strategies.
    extra : mapping
        Everything else of ``config.json`` (training provenance, preset, notes, weights
        table), kept as read and written back by `to_dict`.
    """

    classes: tuple
    channels: tuple = ("ir", "radio", "radio")
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    image_size: tuple = (210, 210)
    encoding: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    cam: NetworkSpec = NetworkSpec()
    irnet: NetworkSpec = NetworkSpec()
    pixel_scale: float | None = None
    beam: MappingProxyType | None = None
    cam_scales: tuple = DEFAULT_SCALES
    class_scales: tuple | None = None
    class_views: str | None = None
    class_threshold: float = 0.5
    recommended_class_threshold: float | None = None
    score_threshold: float = 0.0
    grouping: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    instances: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    extra: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self):
        set_ = object.__setattr__
        for name in ("encoding", "grouping", "instances", "extra"):
            set_(self, name, _freeze(dict(getattr(self, name) or {})))
        if self.beam is not None:
            set_(self, "beam", _freeze(dict(self.beam)))
        for name in ("classes", "channels", "mean", "std", "image_size"):
            set_(self, name, tuple(getattr(self, name)))
        for name in ("cam_scales", "class_scales"):
            value = getattr(self, name)
            if isinstance(value, list | tuple):
                value = tuple(value)
                set_(self, name, tuple(float(v) for v in value)
                     if all(_positive(v) for v in value) else value)
        if self.pixel_scale is not None and _positive(self.pixel_scale):
            set_(self, "pixel_scale", float(self.pixel_scale))
        self._check()

    def __reduce__(self):
        # mapping proxies do not pickle: the read-only fields travel as plain dicts and
        # are frozen again by __post_init__ (worker processes receive specs)
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("encoding", "grouping", "instances", "extra", "beam"):
            if values[name] is not None:
                values[name] = _thaw(values[name])
        return (_rebuild, (type(self), values))

    # --- validation -----------------------------------------------------------------
    def _check(self, where="ModelSpec"):
        def bad(key, message):
            raise ModelFolderError(f"{where}: incompatible model: {key} {message}")

        if not self.classes or not all(isinstance(c, str) and c for c in self.classes):
            bad("'classes'", f"must be a non-empty list of names, got {list(self.classes)!r}")
        if len(set(self.classes)) != len(self.classes):
            bad("'classes'", f"holds a name twice: {list(self.classes)!r}")
        n = len(self.channels)
        if not (len(self.mean) == len(self.std) == n) or not all(
                _positive(s) for s in self.std):
            bad("encoding.normalization", f"mean {self.mean} / std {self.std} do not match "
                                          f"the {n} channels {self.channels}")
        h, w = self.image_size
        if h < 16 or w < 16:
            bad("encoding.image_size", f"{list(self.image_size)!r} is too small (at least "
                                       "16 pixels)")
        for name, net in (("cam", self.cam), ("irnet", self.irnet)):
            if net.in_channels != n:
                bad(f"backbone.{name}.in_channels", f"{net.in_channels} != {n} encoded "
                                                    "channels")
        if not _fraction(self.class_threshold):
            bad("thresholds.class_threshold", f"must be a number in [0, 1], got "
                                              f"{self.class_threshold!r}")
        if self.recommended_class_threshold is not None \
                and not _fraction(self.recommended_class_threshold):
            bad("inference.class_threshold", f"must be a number in [0, 1], got "
                                             f"{self.recommended_class_threshold!r}")
        if not _fraction(self.score_threshold):
            bad("inference.score_threshold", f"must be a number in [0, 1], got "
                                             f"{self.score_threshold!r}")
        for key in ("cam_scales", "class_scales"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, tuple) or not value
                                      or not all(_positive(v) for v in value)):
                shown = list(value) if isinstance(value, tuple) else value
                bad(f"thresholds.{key}", f"must be a list of positive numbers, got {shown!r}")
        if self.class_views is not None and self.class_views not in CLASS_VIEWS:
            bad("thresholds.class_views", f"must be one of {list(CLASS_VIEWS)}, got "
                                          f"{self.class_views!r}")
        if self.pixel_scale is not None and not _positive(self.pixel_scale):
            bad("radio.pixel_scale_arcsec", f"must be a positive number or null, got "
                                            f"{self.pixel_scale!r}")
        if self.beam is not None:
            for key in ("major_arcsec", "minor_arcsec"):
                if not _positive(self.beam.get(key)):
                    bad(f"radio.beam.{key}", f"must be a positive number of arcsec, got "
                                             f"{self.beam.get(key)!r}")
            span = self.beam.get("area_range_arcsec2")
            if span is not None and not (len(span) == 2 and all(_positive(v) for v in span)
                                         and span[0] <= span[1]):
                bad("radio.beam.area_range_arcsec2", f"must be [smallest, largest] beam area "
                                                     f"in arcsec^2, got {list(span)!r}")
        for key, value in self.grouping.items():
            if key not in _GROUPING_KEYS:
                bad(f"inference.{key}", "is not a known option of the instance step")
            if value is not None and not _positive(value):
                bad(f"inference.{key}", f"must be a positive number or null, got {value!r}")

    # --- derived values ------------------------------------------------------------
    @property
    def inference_class_threshold(self):
        """The class threshold for inference: the recommended one, else the training one."""
        if self.recommended_class_threshold is not None:
            return self.recommended_class_threshold
        return self.class_threshold

    def beam_settings(self):
        """The training beam as a plain dict (``major_arcsec``, ...), or None."""
        return None if self.beam is None else _thaw(self.beam)

    @property
    def n_classes(self):
        """Number of classes."""
        return len(self.classes)

    def encoder(self):
        """A `~galcam.preprocessing.CutoutEncoder` that encodes images as in training."""
        from ..preprocessing import CutoutEncoder, NoiseEstimator

        def noise(settings):
            if not settings:
                return None
            keep = {k: v for k, v in settings.items() if k in _NOISE_KEYS}
            if isinstance(keep.get("box_size"), tuple | list):
                keep["box_size"] = tuple(keep["box_size"])
            return NoiseEstimator(**keep)

        enc = self.encoding
        try:
            return CutoutEncoder(
                size=210, channels=self.channels,
                radio_noise=noise(enc.get("radio_noise")), ir_noise=noise(enc.get("ir_noise")),
                n_sigma=enc.get("n_sigma", 3.0), n_pixels=enc.get("n_pixels", 5),
                ir_reproject=enc.get("ir_reproject", "interp"),
                fill_value=enc.get("fill_value", 0.0), snr_max=enc.get("snr_max", 1000.0))
        except (TypeError, ValueError) as exc:
            raise ModelFolderError(f"ModelSpec: incompatible model: encoding settings: "
                                   f"{exc}") from exc

    def with_options(self, **changes):
        """A copy with some fields changed (checked like the original)."""
        return replace(self, **changes)

    # --- config.json -----------------------------------------------------------------
    @classmethod
    def from_dict(cls, config, *, path=None):
        """Read the content of a ``config.json``.

        Parameters
        ----------
        config : dict
            The parsed JSON object.
        path : path-like, optional
            The model folder, named in error messages.

        Raises
        ------
        ModelFolderError
            A schema version newer than this galcam's, or a missing or invalid value.
        """
        where = f"'{Path(path) / 'config.json'}'" if path is not None else "config.json"

        def bad(message):
            return ModelFolderError(f"{where}: incompatible model: {message}")

        if not isinstance(config, dict):
            raise bad(f"expected a JSON object, got {type(config).__name__}")
        version = config.get("schema_version", SCHEMA_VERSION)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise bad(f"invalid schema_version {version!r}")
        if version > SCHEMA_VERSION:
            raise bad(f"schema version {version} was written by a newer galcam (this one "
                      f"reads up to {SCHEMA_VERSION}); upgrade galcam")
        extra = copy.deepcopy(config)

        def section(key):
            value = extra.get(key)
            if value is None:
                return {}
            if not isinstance(value, dict):
                raise bad(f"'{key}' must be an object, got {type(value).__name__}")
            return value

        def take(mapping, key, default=None):
            return mapping.pop(key, default) if isinstance(mapping, dict) else default

        classes = extra.pop("classes", None)
        if not isinstance(classes, list) or not classes \
                or not all(isinstance(c, str) and c for c in classes):
            raise bad(f"'classes' must be a non-empty list of names, got {classes!r}")
        enc = section("encoding")
        thresholds = section("thresholds")
        radio = section("radio")
        inference = section("inference")
        if isinstance(extra.get("backbone"), str):
            extra["backbone"] = {"arch": extra["backbone"]}
        backbone = section("backbone")
        channels = tuple(take(enc, "channels", ("ir", "radio", "radio")))
        norm = enc.get("normalization") or {}
        if not isinstance(norm, dict):
            raise bad(f"encoding.normalization must be an object, got {norm!r}")
        mean = norm.pop("mean", IMAGENET_MEAN)
        std = norm.pop("std", IMAGENET_STD)
        try:
            mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        except (TypeError, ValueError):
            raise bad(f"encoding.normalization mean {mean!r} / std {std!r} must be numbers") \
                from None
        size = enc.pop("image_size", enc.get("size", 210))
        if isinstance(size, numbers.Integral) and not isinstance(size, bool):
            size = (size, size)
        try:
            image_size = tuple(int(v) for v in size)
            if len(image_size) != 2:
                raise ValueError
        except (TypeError, ValueError):
            raise bad(f"encoding.image_size must be a size in pixels, got {size!r}") from None
        encoding = {k: enc.pop(k) for k in ("n_sigma", "n_pixels", "ir_reproject",
                                             "fill_value", "snr_max", "radio_noise",
                                             "ir_noise") if k in enc}
        nets = {}
        for net in ("cam", "irnet"):
            own = backbone.get(net)
            b = own if isinstance(own, dict) else backbone
            arch = b.get("arch", config.get("arch", "resnet50"))
            try:
                in_channels = int(b.get("in_channels", len(channels)))
            except (TypeError, ValueError):
                raise bad(f"backbone.{net}.in_channels must be an integer, got "
                          f"{b.get('in_channels')!r}") from None
            shared = b.pop("shared_backbone", None) if isinstance(own, dict) else None
            nets[net] = NetworkSpec(arch=arch, in_channels=in_channels, shared_backbone=shared)
        # no arch/in_channels pop: they stay in extra as written (to_dict writes them again)
        grouping = {k: inference.pop(k) for k in _GROUPING_KEYS if k in inference}
        values = dict(
            classes=tuple(classes), channels=channels, mean=mean, std=std,
            image_size=image_size, encoding=encoding, cam=nets["cam"], irnet=nets["irnet"],
            pixel_scale=take(radio, "pixel_scale_arcsec"),
            beam=take(radio, "beam"),
            cam_scales=take(thresholds, "cam_scales", DEFAULT_SCALES),
            class_scales=take(thresholds, "class_scales"),
            class_views=take(thresholds, "class_views"),
            class_threshold=take(thresholds, "class_threshold", 0.5),
            recommended_class_threshold=take(inference, "class_threshold", _ABSENT),
            score_threshold=take(inference, "score_threshold", 0.0),
            grouping=grouping, instances=take(inference, "instances") or {},
        )
        for key in ("cam_scales", "class_scales"):
            v = values[key]
            if v is not None and not isinstance(v, list | tuple):
                raise bad(f"thresholds.{key} must be a list of positive numbers, got {v!r}")
        if values["beam"] is not None and not isinstance(values["beam"], dict):
            raise bad(f"radio.beam must be an object or null, got {values['beam']!r}")
        if not isinstance(values["instances"], dict):
            raise bad(f"inference.instances must be an object, got {values['instances']!r}")
        if values["pixel_scale"] is not None and not _positive(values["pixel_scale"]):
            raise bad(f"radio.pixel_scale_arcsec must be a positive number or null, got "
                      f"{values['pixel_scale']!r}")
        if values["recommended_class_threshold"] is _ABSENT:
            values["recommended_class_threshold"] = None
        elif values["recommended_class_threshold"] is None:
            raise bad("inference.class_threshold must be a number in [0, 1], got None")
        values["extra"] = extra
        try:
            return cls(**values)
        except ModelFolderError as exc:
            raise bad(str(exc).split("incompatible model: ", 1)[-1]) from None
        except (TypeError, ValueError) as exc:
            raise bad(str(exc)) from exc

    def to_dict(self):
        """The ``config.json`` content (JSON-serialisable; `from_dict` reads it back)."""
        out = _thaw(self.extra)

        def section(key):
            value = out.get(key)
            if not isinstance(value, dict):
                value = out[key] = {}
            return value

        out["classes"] = list(self.classes)
        enc = section("encoding")
        enc["channels"] = list(self.channels)
        enc.update(_thaw(self.encoding))
        norm = enc.get("normalization")
        if not isinstance(norm, dict):
            norm = enc["normalization"] = {}
        norm["mean"], norm["std"] = list(self.mean), list(self.std)
        enc["image_size"] = list(self.image_size)
        backbone = section("backbone")
        for name, net in (("cam", self.cam), ("irnet", self.irnet)):
            b = backbone.get(name)
            if not isinstance(b, dict):
                b = backbone[name] = {}
            b["arch"], b["in_channels"] = net.arch, net.in_channels
            if net.shared_backbone is not None:
                b["shared_backbone"] = net.shared_backbone
        for key in ("arch", "in_channels"):  # a flat backbone section of old folders
            backbone.pop(key, None)
        thresholds = section("thresholds")
        thresholds["class_threshold"] = self.class_threshold
        thresholds["cam_scales"] = list(self.cam_scales)
        if self.class_scales is not None:
            thresholds["class_scales"] = list(self.class_scales)
        if self.class_views is not None:
            thresholds["class_views"] = self.class_views
        radio = section("radio")
        radio["pixel_scale_arcsec"] = self.pixel_scale
        radio["beam"] = _thaw(self.beam)
        inference = section("inference")
        if self.recommended_class_threshold is not None:
            inference["class_threshold"] = self.recommended_class_threshold
        inference["score_threshold"] = self.score_threshold
        inference.update(_thaw(self.grouping))
        if self.instances:
            inference["instances"] = _thaw(self.instances)
        return out

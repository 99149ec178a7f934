"""Training presets: every hyper-parameter of the CAM -> ReCAM -> IRNet pipeline.

Two presets are provided:

``paper``
    The values of Gupta et al. (2023, PASA, section 3.3) and of the authors' code
    (section 12 of the specification of that code): ResNet-50 with ImageNet weights,
    CAM 30 epochs at batch 4 and learning rate 0.01 (classifier 10x), ReCAM 15 epochs
    at 1e-5 (predictor 1e-4), IRNet 3 epochs at batch 16 and learning rate 0.1
    (displacement branch 1.0), weight decay 1e-4 and a poly schedule (power 0.9)
    everywhere, and SGD momentum 1e-4: the reference passes its weight decay
    positionally into SGD's momentum slot, so it trains with effectively no momentum;
    ``paper`` keeps that (``*_momentum = 1e-4``). The reference's crop sizes refer to
    450-pixel images; they are scaled to galcam's 210-pixel cutouts (see `PRESETS`).
``fast``
    A CPU-friendly variant: ResNet-18; CAM and ReCAM see whole cutouts resized to about
    128 pixels (scale 0.55-0.67: the classes are defined by a galaxy's whole extent, which
    the reference's crops cut) for 30 + 3 epochs at batch 8; the CAM classifier, trained
    from random weights, uses AdamW at 1e-3 (on simulated data it classified 5-10 points
    better than SGD, see docs/training.rst), ReCAM SGD with momentum 0.9 (the value the
    reference meant to use); CAMs at scales 0.6 (the training scale) and 1; IRNet labels
    from the CAMs alone (``ir_refine='none'``: with the default ``mask_mode='grouped'`` the
    radio islands draw the masks at inference, and the same classifier with an IRNet
    trained on unrefined labels scored higher, see docs/training.rst, v6); IRNet on the
    CAM backbone.

Any value can be overridden by keyword, with the stage name as prefix for per-stage
values (``cam_epochs=5``, ``irnet_crop_size=160``, ``arch="resnet34"``); see
`resolve_config`.
"""

import dataclasses
import math
from dataclasses import dataclass, field

from .._validation import (
    check_bool,
    check_fraction,
    check_positive,
    check_positive_int,
    is_real,
)

__all__ = [
    "PRESETS",
    "STAGES",
    "CLASS_BALANCES",
    "StageConfig",
    "TrainingConfig",
    "resolve_config",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

#: Training stages, in order.
STAGES = ("cam", "recam", "irnet")

#: Per-channel mean and standard deviation of the ImageNet normalisation used by the
#: reference code for its (IR, radio, radio) images in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Scale of the reference's CAM/ReCAM training images: the long side of its 450-pixel
#: images is resized to 340 pixels.
REFERENCE_CAM_SCALE = 340 / 450

_WEIGHTS = ("torchvision", "auto", None)
_FILL = ("mean", "zero")
_IRNET_INIT = ("imagenet", "cam")
_REFINE = ("islands", "none")
_BATCHNORM = ("auto", "frozen", "train")
#: Values of ``class_balance`` (`galcam.training.class_weights`).
CLASS_BALANCES = ("none", "sqrt", "balanced")
_ARCHS = ("resnet18", "resnet34", "resnet50")
_OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class StageConfig:
    """Hyper-parameters of one training stage (immutable).

    Attributes
    ----------
    epochs : int
        Passes over the training set.
    batch_size : int
        Images per optimisation step (per process under torchrun). The last incomplete
        batch of an epoch is dropped, as in the reference.
    lr : float
        Initial learning rate of the backbone (CAM, ReCAM) or of the boundary branch
        (IRNet).
    head_lr : float
        Initial learning rate of the classifier (CAM, ReCAM) or of the displacement
        branch (IRNet).
    predictor_lr : float or None
        Learning rate of the ReCAM class predictor (ReCAM only).
    weight_decay : float
        L2 weight decay of every group.
    momentum : float
        SGD momentum. The reference effectively uses 1e-4 (a positional-argument bug).
    optimizer : {'sgd', 'adamw'}
        ``'sgd'`` (the paper) or ``'adamw'`` (`torch.optim.AdamW` with the same learning
        rates and weight decay; ``momentum`` is then unused).
    poly_power : float
        The learning rate at step ``t`` of ``T`` is ``lr * (1 - t / T) ** poly_power``.
    crop_size : int
        Side of the square training crops, in pixels (after resizing).
    scale_range : (float, float)
        Training images are resized by a factor drawn uniformly in this range
        (bicubic; a single value when both ends are equal).
    hflip : bool
        Random horizontal flips (p = 0.5).
    rotate : bool
        Random rotations by an integer number of degrees in [0, 360] (bicubic).
    """

    epochs: int
    batch_size: int
    lr: float
    head_lr: float
    predictor_lr: object = None
    weight_decay: float = 1e-4
    momentum: float = 1e-4
    optimizer: str = "sgd"
    poly_power: float = 0.9
    crop_size: int = 128
    scale_range: tuple = (1.0, 1.0)
    hflip: bool = True
    rotate: bool = False

    def validate(self, stage):
        """Check every value; raise `ValueError` naming ``<stage>_<field>``."""
        for name in ("epochs", "batch_size", "crop_size"):
            check_positive_int(getattr(self, name), f"{stage}_{name}")
        for name in ("lr", "head_lr"):
            check_positive(getattr(self, name), f"{stage}_{name}")
        if stage == "recam":
            check_positive(self.predictor_lr, "recam_predictor_lr")
        elif self.predictor_lr is not None:
            raise ValueError(f"{stage}_predictor_lr: only the recam stage has a predictor")
        check_fraction(self.weight_decay, f"{stage}_weight_decay", 0, math.inf, high_open=True)
        check_fraction(self.momentum, f"{stage}_momentum", 0, 1, high_open=True)
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"{stage}_optimizer: expected one of {_OPTIMIZERS}, "
                             f"got {self.optimizer!r}")
        check_positive(self.poly_power, f"{stage}_poly_power")
        sr = self.scale_range
        if (not isinstance(sr, (tuple, list)) or len(sr) != 2 or not all(is_real(s) for s in sr)
                or not 0 < sr[0] <= sr[1] or not math.isfinite(sr[1])):
            raise ValueError(f"{stage}_scale_range: expected (low, high) with 0 < low <= high, "
                             f"got {sr!r}")
        for name in ("hflip", "rotate"):
            check_bool(getattr(self, name), f"{stage}_{name}")

    def to_dict(self):
        """The values as a JSON-serialisable dict."""
        out = dataclasses.asdict(self)
        out["scale_range"] = list(self.scale_range)
        return out


@dataclass(frozen=True)
class TrainingConfig:
    """Every setting of a training run (immutable); built by `resolve_config`.

    Attributes
    ----------
    preset : str
        Name of the preset the values started from.
    arch : {'resnet50', 'resnet34', 'resnet18'}
        Backbone of the CAM network and of IRNet.
    weights : {'torchvision', 'auto'}, path or None
        Initial backbone weights. ``'torchvision'``: torchvision's ImageNet weights from
        the local torch hub cache (an error explains where to put them if they are
        missing); ``'auto'``: those weights if cached, else random initialisation (logged
        as a warning); a path: a torchvision state dict; None: random initialisation.
    mean, std : tuple of float
        Per-channel normalisation applied to the encoded [0, 1] channels:
        ``(x - mean) / std`` (ImageNet values, as the reference).
    fill : {'mean', 'zero'}
        Value of pixels that rotations and padding bring in: ``'mean'`` is 0 after
        normalisation (the channel mean, as the reference, which rotates and pads
        normalised images with 0); ``'zero'`` is an encoded value of 0 (no emission).
    cam, recam, irnet : `StageConfig`
        Per-stage hyper-parameters.
    recam_loss_weight : float
        Weight of the ReCAM softmax cross-entropy term (0.5 as the reference).
    cam_scales : tuple of float
        Image scales of the multi-scale CAMs used for IRNet's labels and at inference.
    fg_threshold, bg_threshold : float
        CAM levels of confident foreground and background in IRNet's labels.
    ir_refine : {'islands', 'none'}
        Refinement of the IRNet labels (see `galcam.models.make_ir_labels`).
    ir_min_size : int
        Smallest foreground fragment kept in the IRNet labels, in pixels.
    class_threshold : float
        Sigmoid probability above which a class is taken as present at inference.
    class_balance : {'none', 'sqrt', 'balanced'}
        Weight of each class's positive term in the CAM and ReCAM classification losses
        (`galcam.training.class_weights`): ``'none'`` (the paper), ``'balanced'``
        (negatives / positives among the training images, so that a rare class weighs
        as much as a common one) or ``'sqrt'`` (its square root).
    irnet_radius : float
        Radius (stride-4 grid pixels) of the pixel pairs IRNet learns from.
    irnet_backbone : {'imagenet', 'cam'}
        Backbone of IRNet: a fresh copy of the initial weights (``'imagenet'``, as the
        reference), or the backbone of the trained CAM network (``'cam'``), which also
        works when no ImageNet weights are available.
    batchnorm : {'auto', 'frozen', 'train'}
        Batch normalisation of the CAM backbone. ``'frozen'`` (the reference): always
        normalise with the stored (ImageNet) statistics, stem frozen. ``'train'``:
        ordinary batch normalisation (batch statistics in training, running statistics
        at inference) and a trainable stem, which a randomly initialised network needs
        (its stored statistics are 0 and 1, i.e. no normalisation at all). ``'auto'``:
        ``'frozen'`` with pretrained weights, ``'train'`` without.
    amp : bool
        Mixed precision (float16 autocast and gradient scaling) on CUDA devices; ignored
        on the CPU.
    num_workers : int or None
        DataLoader worker processes; None picks 0 on the CPU and 4 on a GPU.
    disk_cache : bool
        Keep the encoded images as ``.npy`` files in ``output_dir/cache`` so that a
        resumed run does not encode them again.
    """

    preset: str
    arch: str
    weights: object
    cam: StageConfig
    recam: StageConfig
    irnet: StageConfig
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    fill: str = "mean"
    recam_loss_weight: float = 0.5
    cam_scales: tuple = (1.0, 0.5, 1.5, 2.0)
    fg_threshold: float = 0.35
    bg_threshold: float = 0.1
    ir_refine: str = "islands"
    ir_min_size: int = 5
    class_threshold: float = 0.5
    class_balance: str = "none"
    irnet_radius: float = 10.0
    irnet_backbone: str = "imagenet"
    batchnorm: str = "auto"
    amp: bool = True
    num_workers: object = None
    disk_cache: bool = True
    notes: str = field(default="", compare=False)

    def stage(self, name):
        """The `StageConfig` of ``name`` ('cam', 'recam' or 'irnet')."""
        if name not in STAGES:
            raise ValueError(f"stage: expected one of {STAGES}, got {name!r}")
        return getattr(self, name)

    def validate(self):
        """Check every value; raise `ValueError` naming the offending key."""
        if self.arch not in _ARCHS:
            raise ValueError(f"arch: expected one of {_ARCHS}, got {self.arch!r}")
        if self.weights not in _WEIGHTS and not isinstance(self.weights, str):
            raise ValueError(f"weights: expected 'torchvision', 'auto', None or a file path, "
                             f"got {self.weights!r}")
        for name in STAGES:
            self.stage(name).validate(name)
        for name in ("mean", "std"):
            value = getattr(self, name)
            if (not isinstance(value, (tuple, list)) or not value
                    or not all(is_real(v) and math.isfinite(v) for v in value)):
                raise ValueError(f"{name}: expected a sequence of numbers, got {value!r}")
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean and std: expected the same length, got {len(self.mean)} "
                             f"and {len(self.std)}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std: expected positive values, got {self.std!r}")
        if self.fill not in _FILL:
            raise ValueError(f"fill: expected one of {_FILL}, got {self.fill!r}")
        check_positive(self.recam_loss_weight, "recam_loss_weight", allow_zero=True)
        if (not isinstance(self.cam_scales, (tuple, list)) or not self.cam_scales
                or not all(is_real(s) and 0 < s < math.inf for s in self.cam_scales)):
            raise ValueError(f"cam_scales: expected positive numbers, got {self.cam_scales!r}")
        if not (is_real(self.fg_threshold) and is_real(self.bg_threshold)
                and 0 <= self.bg_threshold <= self.fg_threshold <= 1):
            raise ValueError("fg_threshold, bg_threshold: expected 0 <= bg_threshold <= "
                             f"fg_threshold <= 1, got {self.bg_threshold!r}, {self.fg_threshold!r}")
        if self.ir_refine not in _REFINE:
            raise ValueError(f"ir_refine: expected one of {_REFINE}, got {self.ir_refine!r}")
        check_positive_int(self.ir_min_size, "ir_min_size", minimum=0)
        check_fraction(self.class_threshold, "class_threshold")
        if self.class_balance not in CLASS_BALANCES:
            raise ValueError(f"class_balance: expected one of {CLASS_BALANCES}, "
                             f"got {self.class_balance!r}")
        check_fraction(self.irnet_radius, "irnet_radius", 1, 32, low_open=True)
        rf = math.ceil(self.irnet_radius) - 1
        grid = (self.irnet.crop_size - 1) // 4 + 1
        if grid <= 2 * rf:
            raise ValueError(f"irnet_crop_size: {self.irnet.crop_size} px gives a {grid} x {grid} "
                             f"stride-4 grid, too small for irnet_radius {self.irnet_radius} "
                             f"(needs more than {2 * rf} grid pixels, i.e. a crop of at least "
                             f"{8 * rf + 1} px)")
        if self.irnet_backbone not in _IRNET_INIT:
            raise ValueError(f"irnet_backbone: expected one of {_IRNET_INIT}, "
                             f"got {self.irnet_backbone!r}")
        if self.batchnorm not in _BATCHNORM:
            raise ValueError(f"batchnorm: expected one of {_BATCHNORM}, got {self.batchnorm!r}")
        for name in ("amp", "disk_cache"):
            check_bool(getattr(self, name), name)
        check_positive_int(self.num_workers, "num_workers", allow_zero=True, allow_none=True,
                           expected="None or an integer >= 0")
        return self

    def to_dict(self):
        """All values as a JSON-serialisable dict (stages as nested dicts)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, StageConfig):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def keys(cls):
        """Names accepted as overrides by `resolve_config` (sorted)."""
        top = [f.name for f in dataclasses.fields(cls) if f.name not in STAGES + ("preset",)]
        per_stage = [f"{s}_{f.name}" for s in STAGES for f in dataclasses.fields(StageConfig)]
        return sorted(top + per_stage)


# The reference's crops refer to its 450-pixel images; galcam's cutouts are 210 pixels.
#   CAM/ReCAM: the reference resizes 450 -> 340 (x 0.756) and crops 210 (62 % of the
#   side). The same scale on a 210-pixel cutout gives 159 pixels; a 62 % crop would be
#   98 pixels (a 6 x 6 CAM grid), so galcam keeps 80 %: 128 pixels, an 8 x 8 grid.
#   IRNet: the reference crops 512 from 450-pixel images scaled by 0.5-1.5, i.e. the
#   whole image plus padding most of the time: 512 * 210 / 450 = 239 -> 240 pixels.
_PAPER = TrainingConfig(
    preset="paper",
    arch="resnet50",
    weights="torchvision",
    cam=StageConfig(epochs=30, batch_size=4, lr=0.01, head_lr=0.1, weight_decay=1e-4,
                    momentum=1e-4, crop_size=128,
                    scale_range=(REFERENCE_CAM_SCALE, REFERENCE_CAM_SCALE),
                    hflip=True, rotate=True),
    recam=StageConfig(epochs=15, batch_size=4, lr=1e-5, head_lr=1e-5, predictor_lr=1e-4,
                      weight_decay=1e-4, momentum=1e-4, crop_size=128,
                      scale_range=(REFERENCE_CAM_SCALE, REFERENCE_CAM_SCALE),
                      hflip=True, rotate=False),
    irnet=StageConfig(epochs=3, batch_size=16, lr=0.1, head_lr=1.0, weight_decay=1e-4,
                      momentum=1e-4, crop_size=240, scale_range=(0.5, 1.5),
                      hflip=True, rotate=False),
    irnet_backbone="imagenet",
    notes="Gupta et al. (2023) and the reference code; crops scaled from 450 to 210 px.",
)

#: Scales of the ``fast`` preset's CAM/ReCAM training images: 210-pixel cutouts become
#: 116-141 pixels, so that a 128-pixel crop holds the whole galaxy (lobes included) and
#: the classifier learns from whole galaxies.
FAST_CAM_SCALE_RANGE = (0.55, 0.67)

_FAST = TrainingConfig(
    preset="fast",
    arch="resnet18",
    weights="auto",
    cam=StageConfig(epochs=30, batch_size=8, lr=1e-3, head_lr=1e-3, weight_decay=1e-4,
                    momentum=0.9, optimizer="adamw", crop_size=128,
                    scale_range=FAST_CAM_SCALE_RANGE, hflip=True, rotate=True),
    recam=StageConfig(epochs=3, batch_size=8, lr=1e-5, head_lr=1e-5, predictor_lr=1e-4,
                      weight_decay=1e-4, momentum=0.9, crop_size=128,
                      scale_range=FAST_CAM_SCALE_RANGE, hflip=True, rotate=False),
    irnet=StageConfig(epochs=3, batch_size=16, lr=0.1, head_lr=1.0, weight_decay=1e-4,
                      momentum=1e-4, crop_size=128, scale_range=(0.5, 1.0),
                      hflip=True, rotate=False),
    cam_scales=(0.6, 1.0),
    ir_refine="none",
    irnet_backbone="cam",
    notes="CPU-friendly: ResNet-18, whole cutouts resized to ~128 px for CAM/ReCAM, "
          "AdamW (1e-3) for the CAM classifier, momentum 0.9 for ReCAM, CAMs at the "
          "training scale and at full resolution.",
)

#: The presets by name (validated `TrainingConfig` objects).
PRESETS = {"paper": _PAPER.validate(), "fast": _FAST.validate()}


def resolve_config(preset="fast", **overrides):
    """A validated `TrainingConfig` from a preset and keyword overrides.

    Parameters
    ----------
    preset : str or `TrainingConfig`
        ``'paper'`` or ``'fast'`` (see `PRESETS`), or a configuration to start from.
    **overrides
        Top-level values by name (``arch``, ``weights``, ``cam_scales``, ...) and per-stage
        values prefixed with the stage name (``cam_epochs``, ``recam_predictor_lr``,
        ``irnet_crop_size``, ...). `TrainingConfig.keys` lists them all.

    Returns
    -------
    config : `TrainingConfig`

    Raises
    ------
    ValueError
        Unknown preset, unknown key or invalid value (the message names the key).
    """
    if isinstance(preset, TrainingConfig):
        base = preset
    elif isinstance(preset, str) and preset in PRESETS:
        base = PRESETS[preset]
    else:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)} or a TrainingConfig, "
                         f"got {preset!r}")
    valid = set(TrainingConfig.keys())
    unknown = sorted(k for k in overrides if k not in valid)
    if unknown:
        raise ValueError(f"unknown training option(s) {unknown}; valid options are: "
                         f"{', '.join(TrainingConfig.keys())}")
    top, stages = {}, {s: {} for s in STAGES}
    for key, value in overrides.items():
        stage = next((s for s in STAGES if key.startswith(s + "_")
                      and key[len(s) + 1:] in StageConfig.__dataclass_fields__), None)
        if stage is not None:
            if key[len(stage) + 1:] == "scale_range" and isinstance(value, list):
                value = tuple(value)
            stages[stage][key[len(stage) + 1:]] = value
        else:
            if isinstance(value, list):
                value = tuple(value)
            top[key] = value
    for s in STAGES:
        if stages[s]:
            top[s] = dataclasses.replace(base.stage(s), **stages[s])
    return dataclasses.replace(base, **top).validate()

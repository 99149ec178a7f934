"""Training galcam's networks from image-level labels (imports torch).

`train_weak_model` runs the weakly-supervised pipeline of Gupta et al. (2023, PASA,
sections 3.2-3.3): CAM, ReCAM, IRNet labels from the CAMs, IRNet, and writes a model
folder. Only image-level class labels are read from the data set. Hyper-parameters come
from a preset (`PRESETS`: ``'paper'`` and ``'fast'``) with keyword overrides.
"""

from .augment import make_generator, random_crop, random_hflip, random_rotate, random_scale
from .data import AffinitySet, ClassificationSet, EncodedSet, as_weak_view, encode_view
from .distributed import DistContext
from .presets import CLASS_BALANCES, PRESETS, STAGES, StageConfig, TrainingConfig, resolve_config
from .stages import (
    TrainingResult,
    class_weights,
    classification_metrics,
    retrain_irnet,
    train_weak_model,
)
from .trainer import CheckpointError

__all__ = [
    "AffinitySet",
    "CheckpointError",
    "ClassificationSet",
    "DistContext",
    "EncodedSet",
    "PRESETS",
    "STAGES",
    "CLASS_BALANCES",
    "StageConfig",
    "TrainingConfig",
    "TrainingResult",
    "as_weak_view",
    "class_weights",
    "classification_metrics",
    "encode_view",
    "make_generator",
    "random_crop",
    "random_hflip",
    "random_rotate",
    "random_scale",
    "resolve_config",
    "retrain_irnet",
    "train_weak_model",
]

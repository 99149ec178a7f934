"""Data sets: the COCO data set reader and the simulator of EMU-like data."""

from .coco import (
    DEFAULT_CLASSES,
    CocoDataset,
    CocoImage,
    DatasetError,
    ImageAnnotations,
    WeakLabelView,
    normalize_class_name,
)
from .simulate import (
    Realism,
    SimulatedCutout,
    SimulatedGalaxy,
    simulate_cutout,
    simulate_dataset,
    simulate_mosaic,
)

__all__ = [
    "DEFAULT_CLASSES",
    "CocoDataset",
    "CocoImage",
    "DatasetError",
    "ImageAnnotations",
    "WeakLabelView",
    "normalize_class_name",
    "Realism",
    "SimulatedCutout",
    "SimulatedGalaxy",
    "simulate_cutout",
    "simulate_dataset",
    "simulate_mosaic",
]

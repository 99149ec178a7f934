"""Data sets: the COCO data set reader and the simulator of EMU-like data."""

from .classes import DEFAULT_CLASSES, normalize_class_name
from .coco import (
    CocoDataset,
    CocoImage,
    DatasetError,
    ImageAnnotations,
    WeakLabelView,
    decode_rle,
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
    "decode_rle",
    "Realism",
    "SimulatedCutout",
    "SimulatedGalaxy",
    "simulate_cutout",
    "simulate_dataset",
    "simulate_mosaic",
]

"""Data sets: the COCO data set reader, the simulator of EMU-like data and the FIRST data set."""

from .classes import DEFAULT_CLASSES, normalize_class_name
from .coco import (
    CocoDataset,
    CocoImage,
    DatasetError,
    ImageAnnotations,
    WeakLabelView,
    decode_rle,
)
from .first import (
    FIRST_BEAM,
    FIRST_CLASSES,
    FIRST_N_FOLDS,
    FIRST_PIXEL_SCALE,
    FIRST_PROVENANCE,
    FIRST_RMS,
    FIRST_SPLITS,
    FirstImage,
    FirstSplit,
    first_data_dir,
    read_first,
    write_first_coco,
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
    "FIRST_CLASSES",
    "FIRST_SPLITS",
    "FIRST_N_FOLDS",
    "FIRST_PIXEL_SCALE",
    "FIRST_BEAM",
    "FIRST_RMS",
    "FIRST_PROVENANCE",
    "FirstImage",
    "FirstSplit",
    "first_data_dir",
    "read_first",
    "write_first_coco",
    "Realism",
    "SimulatedCutout",
    "SimulatedGalaxy",
    "simulate_cutout",
    "simulate_dataset",
    "simulate_mosaic",
]

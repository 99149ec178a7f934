"""Prediction with trained models: `WeakSegmenter`, `HostFinder` and their results.

`WeakSegmenter` (imports torch) finds, segments and classifies extended radio galaxies in
images of any size and locates their infrared hosts (Gupta et al. 2023, PASA, section 3.2);
it combines a model's networks (`galcam.models.ModelNetworks`), the instance step
(`GalaxyGrouper` and its strategies) and the host finder (`HostFinder`).
`SegmentationResult`, `Detection`, `Hosts`, `HostFinder`, `GalaxyGrouper` and the tiling and
resampling helpers are torch-free at import. Names are imported lazily, so that
``from galcam.inference import SegmentationResult`` does not load torch.
"""

from .._lazy import lazy_exports as _lazy_exports

_LAZY = {
    "WeakSegmenter": "segmenter",
    "MODEL_REGISTRY": "registry",
    "ModelNotInstalledError": "registry",
    "resolve_model": "registry",
    "models_dir": "registry",
    "calibrate": "calibration",
    "Calibration": "calibration",
    "load_options": "segmenter",
    "GalaxyGrouper": "grouping",
    "GroupingSettings": "grouping",
    "GroupingStrategy": "grouping",
    "IslandVoteGrouping": "grouping",
    "RandomWalkGrouping": "grouping",
    "RuleGrouping": "grouping",
    "galaxies_from_groups": "grouping",
    "TileEvidence": "grouping",
    "TileGalaxy": "grouping",
    "GROUPING_STRATEGIES": "grouping",
    "GROUPER_DEFAULTS": "grouping",
    "register_strategy": "grouping",
    "HostFinder": "hosts",
    "Hosts": "hosts",
    "Detection": "result",
    "SegmentationResult": "result",
    "HostEvidence": "result",
    "crop_to_rle": "result",
    "mask_to_rle": "result",
    "rle_to_mask": "result",
    "category_ids": "result",
    "Tile": "tiling",
    "TileDetection": "tiling",
    "MergedDetection": "tiling",
    "tile_grid": "tiling",
    "merge_tile_detections": "tiling",
    "touches_interior_border": "tiling",
    "working_wcs": "resample",
    "resample_image": "resample",
    "map_crop_back": "resample",
    "check_beam": "resample",
    "beam_matched_pixel_scale": "resample",
    "ImagePlan": "planning",
    "ImageRefusedError": "planning",
    "plan_image": "planning",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)

"""Prediction with trained models: `WeakSegmenter`, `HostFinder` and their results.

`WeakSegmenter` (imports torch) finds, segments and classifies extended radio galaxies in
images of any size and locates their infrared hosts (Gupta et al. 2023, PASA, section 3.2);
`SegmentationResult`, `Detection`, `Hosts`, `HostFinder` and the tiling and resampling
helpers are torch-free at import. Names are imported lazily, so that
``from galcam.inference import SegmentationResult`` does not load torch.
"""

from .._lazy import lazy_exports as _lazy_exports

_LAZY = {
    "WeakSegmenter": "segmenter",
    "MODEL_REGISTRY": "segmenter",
    "ModelNotInstalledError": "segmenter",
    "resolve_model": "segmenter",
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
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)

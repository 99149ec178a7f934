"""Whole mosaics and surveys: `SurveyRunner` on dask.distributed or in one process.

A mosaic is split into work units (overlapping tiles, or cutouts centred on the seeds of a
Selavy, PyBDSF, Aegean or galcam component catalogue); dask workers process them (each
reading only its windows of the memory-mapped mosaic and loading the model once), every
finished unit is saved atomically, and the detections are merged into one catalogue with
a documented rule (`merge_unit_detections`). Reruns resume. ``dask[distributed]`` is an
optional dependency (``pip install "galcam[distributed]"``), imported only when workers
are used. Names are imported lazily: ``import galcam.survey`` loads neither torch nor dask.
"""

from .._lazy import lazy_exports as _lazy_exports

_LAZY = {
    "SurveyRunner": "runner",
    "SurveyResult": "runner",
    "OUTPUT_FILES": "runner",
    "WorkUnit": "units",
    "UnitJob": "units",
    "tile_units": "units",
    "seed_units": "units",
    "process_unit": "units",
    "get_segmenter": "units",
    "read_seeds": "seeds",
    "deduplicate_seeds": "seeds",
    "SEED_FORMATS": "seeds",
    "UnitDetection": "merge",
    "MergedGalaxy": "merge",
    "merge_unit_detections": "merge",
    "same_galaxy": "merge",
    "touches_unit_border": "merge",
    "SurveyMismatchError": "manifest",
    "read_manifest": "manifest",
    "file_fingerprint": "manifest",
    "plot_coverage": "plotting",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)

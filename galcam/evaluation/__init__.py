"""Evaluation of galaxy predictions: COCO mask AP, host-keypoint OKS AP, confusion matrix.

All of it is torch-free. The entry point is `evaluate` (or the `Evaluator`
tool), which scores COCO results against a COCO truth and returns an
`EvaluationResult` with ``metrics`` (the content of ``metrics.json``),
``to_table()``, ``summary()`` and ``write(report_dir)``. See the
"Metrics" page of the documentation for every definition.
"""

from .coco import (
    APResult,
    load_predictions,
    load_truth,
    normalize_class_name,
    remap_categories,
    segm_average_precision,
)
from .confusion import (
    ConfusionMatrix,
    InstanceMatching,
    confusion_matrix,
    detection_curve,
    match_instances,
)
from .keypoints import (
    DEFAULT_ARCSEC_D50,
    DEFAULT_ARCSEC_SIGMA,
    OKS_VARIANTS,
    arcsec_sigma_from_d50,
    keypoint_average_precision,
    oks_arcsec,
    oks_paper,
    oks_refcode,
    resolve_pixel_scales,
)
from .report import METRIC_DEFINITIONS, EvaluationResult, Evaluator, evaluate
from .semantic import cam_miou, semantic_confusion, semantic_iou, semantic_maps_from_coco

__all__ = [
    "APResult",
    "ConfusionMatrix",
    "DEFAULT_ARCSEC_D50",
    "DEFAULT_ARCSEC_SIGMA",
    "EvaluationResult",
    "Evaluator",
    "InstanceMatching",
    "METRIC_DEFINITIONS",
    "OKS_VARIANTS",
    "arcsec_sigma_from_d50",
    "cam_miou",
    "confusion_matrix",
    "detection_curve",
    "evaluate",
    "keypoint_average_precision",
    "load_predictions",
    "load_truth",
    "match_instances",
    "normalize_class_name",
    "oks_arcsec",
    "oks_paper",
    "oks_refcode",
    "remap_categories",
    "resolve_pixel_scales",
    "segm_average_precision",
    "semantic_confusion",
    "semantic_iou",
    "semantic_maps_from_coco",
]

"""Neural networks of galcam and the model-folder format.

Backbones, the CAM and ReCAM classification networks, multi-scale CAM inference,
pseudo-labels for IRNet, the model-folder format and its typed description
(`ModelSpec`). The networks need torch; names are imported lazily, so that the torch-free
parts (`ModelSpec`, the host rules of `galcam.models.host_rules`, the IRNet labels of
`galcam.models.ir_labels`) load without it.
"""

from .._lazy import lazy_exports as _lazy_exports

# public name -> submodule that defines it
_LAZY = {
    "ARCHITECTURES": "backbone",
    "Backbone": "backbone",
    "FixedBatchNorm2d": "backbone",
    "CAMNet": "cam",
    "CAMOutput": "cam",
    "RECAM_LOSS_WEIGHT": "cam",
    "ReCAMHead": "cam",
    "cam_loss": "cam",
    "normalize_cams": "cam",
    "recam_loss": "cam",
    "class_views": "cam_inference",
    "multiscale_cams": "cam_inference",
    "predict_classes": "cam_inference",
    "select_classes": "cam_inference",
    "strided_size": "cam_inference",
    "strided_up_size": "cam_inference",
    "view_logits": "cam_inference",
    "load_model_folder": "folder",
    "resolve_device": "folder",
    "save_model_folder": "folder",
    "HostPeak": "host_rules",
    "find_core_host": "host_rules",
    "find_host": "host_rules",
    "infrared_sources": "host_rules",
    "radio_centroid": "host_rules",
    "radio_rms_radius": "host_rules",
    "Instance": "instances",
    "InstanceExtractor": "instances",
    "cluster_centroids": "instances",
    "extract_instances": "instances",
    "find_centroids": "instances",
    "instance_maps": "instances",
    "IGNORE_INDEX": "ir_labels",
    "make_ir_labels": "ir_labels",
    "AffinityDisplacementLoss": "irnet",
    "AffinityLossTerms": "irnet",
    "IRNet": "irnet",
    "IRNetOutput": "irnet",
    "MeanShift": "irnet",
    "calibrate_mean_shift": "irnet",
    "edge_and_displacement": "irnet",
    "reduce_labels": "irnet",
    "ModelNetworks": "networks",
    "NetworkOutputs": "networks",
    "shares_backbone": "networks",
    "has_bfloat16_units": "networks",
    "PRECISIONS": "networks",
    "PRECISION_LIMITS": "networks",
    "PathIndex": "path_index",
    "propagate": "random_walk",
    "propagate_dense": "random_walk",
    "CLASS_VIEWS": "spec",
    "DEFAULT_SCALES": "spec",
    "ModelFolderError": "spec",
    "RESERVED_KEYS": "folder",
    "config_sha256": "spec",
    "ModelSpec": "spec",
    "NetworkSpec": "spec",
    "SCHEMA_VERSION": "spec",
    "WeightsError": "weights",
    "imagenet_weights_path": "weights",
    "load_imagenet_weights": "weights",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)

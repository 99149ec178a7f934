"""Neural networks of galcam (imports torch).

Backbones, the CAM and ReCAM classification networks, multi-scale CAM inference,
pseudo-labels for IRNet and the model-folder format. This subpackage, like
`galcam.training` and `galcam.inference`, needs torch; the rest of galcam does not.
"""

from .backbone import ARCHITECTURES, Backbone, FixedBatchNorm2d
from .cam import (
    RECAM_LOSS_WEIGHT,
    CAMNet,
    CAMOutput,
    ReCAMHead,
    cam_loss,
    normalize_cams,
    recam_loss,
)
from .cam_inference import (
    CLASS_VIEWS,
    DEFAULT_SCALES,
    class_views,
    multiscale_cams,
    predict_classes,
    select_classes,
    strided_size,
    strided_up_size,
    view_logits,
)
from .folder import (
    SCHEMA_VERSION,
    ModelFolderError,
    load_model_folder,
    resolve_device,
    save_model_folder,
)
from .hosts import (
    HostPeak,
    find_core_host,
    find_host,
    infrared_sources,
    radio_centroid,
    radio_rms_radius,
)
from .instances import (
    Instance,
    InstanceExtractor,
    cluster_centroids,
    extract_instances,
    find_centroids,
    instance_maps,
)
from .ir_labels import IGNORE_INDEX, make_ir_labels
from .irnet import (
    AffinityDisplacementLoss,
    AffinityLossTerms,
    IRNet,
    IRNetOutput,
    MeanShift,
    calibrate_mean_shift,
    edge_and_displacement,
    reduce_labels,
)
from .path_index import PathIndex
from .random_walk import propagate, propagate_dense
from .weights import WeightsError, imagenet_weights_path, load_imagenet_weights

__all__ = [
    # IRNet, random walk, instances, hosts
    "AffinityDisplacementLoss",
    "AffinityLossTerms",
    "HostPeak",
    "IRNet",
    "IRNetOutput",
    "Instance",
    "InstanceExtractor",
    "MeanShift",
    "PathIndex",
    "calibrate_mean_shift",
    "cluster_centroids",
    "edge_and_displacement",
    "extract_instances",
    "find_centroids",
    "find_host",
    "find_core_host",
    "infrared_sources",
    "radio_centroid",
    "radio_rms_radius",
    "instance_maps",
    "propagate",
    "propagate_dense",
    "reduce_labels",
    "ARCHITECTURES",
    "Backbone",
    "CAMNet",
    "CAMOutput",
    "DEFAULT_SCALES",
    "FixedBatchNorm2d",
    "CLASS_VIEWS",
    "IGNORE_INDEX",
    "ModelFolderError",
    "RECAM_LOSS_WEIGHT",
    "ReCAMHead",
    "SCHEMA_VERSION",
    "WeightsError",
    "cam_loss",
    "class_views",
    "imagenet_weights_path",
    "load_imagenet_weights",
    "load_model_folder",
    "make_ir_labels",
    "multiscale_cams",
    "normalize_cams",
    "predict_classes",
    "recam_loss",
    "resolve_device",
    "save_model_folder",
    "select_classes",
    "strided_size",
    "strided_up_size",
    "view_logits",
]

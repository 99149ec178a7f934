"""Neural networks of galcam (imports torch).

Backbones, the CAM and ReCAM classification networks, multi-scale CAM inference,
pseudo-labels for IRNet and the model-folder format. This subpackage, like
`galcam.training` and `galcam.inference`, needs torch; the rest of galcam does not.
"""

from .backbone import ARCHITECTURES, Backbone, FixedBatchNorm2d
from .weights import WeightsError, imagenet_weights_path, load_imagenet_weights

__all__ = [
    "ARCHITECTURES",
    "Backbone",
    "FixedBatchNorm2d",
    "WeightsError",
    "imagenet_weights_path",
    "load_imagenet_weights",
]

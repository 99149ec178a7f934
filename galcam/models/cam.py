"""CAM and ReCAM classification networks (Gupta et al. 2023, section 3.2.1).

A multi-label classifier (backbone, global average pooling, 1x1 convolution
without bias) is trained with image-level labels only; its class activation maps
(CAMs; Zhou et al. 2016) localise each class. ReCAM (Chen et al. 2022) then
fine-tunes the same network with an extra softmax cross-entropy loss on
CAM-weighted class features, which sharpens the maps. The constants follow the
reference code (section 3 and 4 of the specification in the design notes).
"""

from collections import namedtuple

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_positive_int
from .backbone import Backbone

__all__ = ["CAMNet", "CAMOutput", "RECAM_LOSS_WEIGHT", "ReCAMHead", "cam_loss",
           "normalize_cams", "recam_loss"]

#: Weight of the ReCAM softmax cross-entropy term in the reference
#: (``--recam_loss_weight 0.5``; ReCAM's own COCO default is 0.1). Applied by the caller:
#: ``loss = cam_loss(logits, labels) + RECAM_LOSS_WEIGHT * recam_loss(...)``.
RECAM_LOSS_WEIGHT = 0.5

#: Added to the maximum when CAMs are max-normalised, as in the reference.
CAM_EPS = 1e-5

CAMOutput = namedtuple("CAMOutput", ["logits", "cams", "features"])
CAMOutput.__doc__ = """Outputs of `CAMNet.forward_all`.

logits : (B, C) classification scores; cams : (B, C, h, w) non-negative class
activation maps; features : (B, D, h, w) backbone features."""


class CAMNet(nn.Module):
    """Multi-label classifier whose class activation maps localise radio galaxies.

    The network is a `~galcam.models.Backbone` at output stride 16, global average
    pooling, and a 1x1 convolution without bias from the ``D`` backbone channels to
    ``n_classes`` logits, as in the reference ``resnet50_cam.Net``.

    Parameters
    ----------
    arch : {'resnet50', 'resnet34', 'resnet18'}, optional
        Backbone architecture (the paper uses ResNet-50).
    n_classes : int, optional
        Number of classes (4 for FR-I, FR-II, FR-X and R).
    weights : None, 'torchvision' or path-like, optional
        Initial backbone weights, see `~galcam.models.load_imagenet_weights`. The
        classifier is always randomly initialised.
    in_channels : int, optional
        Input channels (3 for the paper's encoding).

    Notes
    -----
    The backbone uses fixed batch normalisation and a frozen stem, as the reference.
    The class activation map of class ``c`` is
    ``relu(sum_d w[c, d] * F[d, y, x])`` (eq. 3 of the paper, followed by a ReLU),
    computed on the stride-16 feature map ``F``.
    """

    def __init__(self, arch="resnet50", n_classes=4, *, weights=None, in_channels=3):
        super().__init__()
        n_classes = check_positive_int(n_classes, "n_classes")
        self.backbone = Backbone(arch, weights=weights, output_stride=16,
                                 frozen_batchnorm=True, in_channels=in_channels)
        self.n_classes = n_classes
        self.feature_dim = self.backbone.stage_channels[-1]
        self.output_stride = self.backbone.output_stride
        self.classifier = nn.Conv2d(self.feature_dim, n_classes, kernel_size=1, bias=False)

    def features(self, x):
        """Backbone features (B, D, H/16, W/16)."""
        return self.backbone(x)

    def forward(self, x):
        """Classification logits (B, C): classifier(GAP(features))."""
        feats = self.backbone(x)
        pooled = feats.mean(dim=(2, 3), keepdim=True)
        return self.classifier(pooled).flatten(1)

    def cams(self, x):
        """Class activation maps ``relu(conv(features, classifier.weight))``, (B, C, h, w)."""
        return F.relu(F.conv2d(self.backbone(x), self.classifier.weight))

    def forward_all(self, x):
        """Logits, CAMs and features from a single pass; returns a `CAMOutput`.

        Because the classifier is linear and has no bias, the logits equal the spatial
        mean of the *un-rectified* maps ``conv(features, weight)``.
        """
        return self.from_features(self.backbone(x))

    def from_features(self, feats):
        """`forward_all` from backbone features already computed (B, D, h, w)."""
        raw = F.conv2d(feats, self.classifier.weight)
        logits = raw.mean(dim=(2, 3))
        return CAMOutput(logits, F.relu(raw), feats)

    def param_groups(self, lr, *, classifier_lr=None, weight_decay=1e-4):
        """Optimiser parameter groups: backbone at ``lr``, classifier at ``classifier_lr``.

        Parameters
        ----------
        lr : float
            Learning rate of the trainable backbone parameters (0.01 for CAM training
            in the reference, 1e-5 for ReCAM).
        classifier_lr : float, optional
            Learning rate of the classifier; default ``10 * lr`` as the reference CAM
            training (ReCAM uses the same rate as the backbone, 1e-5).
        weight_decay : float, optional
            Weight decay of both groups (1e-4 in the reference).

        Returns
        -------
        groups : list of dict
            ``[{'params', 'lr', 'weight_decay'}, ...]`` for `torch.optim.SGD`; frozen
            parameters (the stem) are left out.
        """
        if not lr > 0:
            raise ValueError(f"lr: expected a positive number, got {lr!r}")
        classifier_lr = 10 * lr if classifier_lr is None else classifier_lr
        if not classifier_lr > 0:
            raise ValueError(f"classifier_lr: expected a positive number, got {classifier_lr!r}")
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        head = [p for p in self.classifier.parameters() if p.requires_grad]
        return [
            {"params": backbone, "lr": lr, "weight_decay": weight_decay},
            {"params": head, "lr": classifier_lr, "weight_decay": weight_decay},
        ]


class ReCAMHead(nn.Module):
    """Class predictor of ReCAM: a 1x1 convolution (linear map) without bias.

    It maps a CAM-weighted class feature vector of dimension ``feature_dim`` to
    ``n_classes`` logits. It is used only during ReCAM training (reference
    ``Class_Predictor``), never at inference.

    Parameters
    ----------
    n_classes : int
        Number of classes.
    feature_dim : int
        Dimension of the backbone features (2048 for ResNet-50).
    """

    def __init__(self, n_classes, feature_dim):
        super().__init__()
        n_classes = check_positive_int(n_classes, "n_classes")
        feature_dim = check_positive_int(feature_dim, "feature_dim")
        self.n_classes = n_classes
        self.feature_dim = feature_dim
        self.classifier = nn.Conv2d(feature_dim, n_classes, kernel_size=1, bias=False)

    def forward(self, class_features):
        """Logits (N, C) for class feature vectors (N, D)."""
        if class_features.ndim != 2 or class_features.shape[1] != self.feature_dim:
            raise ValueError(f"class_features: expected shape (N, {self.feature_dim}), "
                             f"got {tuple(class_features.shape)}")
        return F.linear(class_features, self.classifier.weight.flatten(1))


def _check_labels(labels, batch, n_classes, name="labels"):
    if labels.ndim != 2 or labels.shape != (batch, n_classes):
        raise ValueError(f"{name}: expected shape ({batch}, {n_classes}), "
                         f"got {tuple(labels.shape)}")


def cam_loss(logits, labels, pos_weight=None):
    """Multi-label soft-margin loss of the CAM classifier (eq. 1 of the paper).

    The mean over classes of the sigmoid binary cross-entropy, then the mean over
    the batch (`torch.nn.functional.multilabel_soft_margin_loss`).

    Parameters
    ----------
    logits : `torch.Tensor`
        Scores (B, C).
    labels : `torch.Tensor`
        Multi-hot image-level labels (B, C); values > 0 are positives.
    pos_weight : `torch.Tensor`, optional
        Weights (C,) of the positive term of each class (class balancing, see
        `galcam.training.class_weights`); None weighs every term 1, which is the
        paper's loss.

    Returns
    -------
    loss : `torch.Tensor`
        Scalar.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits: expected shape (B, C), got {tuple(logits.shape)}")
    _check_labels(labels, *logits.shape)
    target = (labels > 0).to(logits.dtype)
    if pos_weight is None:
        return F.multilabel_soft_margin_loss(logits, target)
    pos_weight = torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    if pos_weight.shape != (logits.shape[1],):
        raise ValueError(f"pos_weight: expected shape ({logits.shape[1]},), "
                         f"got {tuple(pos_weight.shape)}")
    return F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)


def normalize_cams(cams, eps=CAM_EPS):
    """Divide each (image, class) map by its spatial maximum plus ``eps``.

    Parameters
    ----------
    cams : `torch.Tensor`
        Non-negative maps (B, C, h, w).
    """
    return cams / (cams.amax(dim=(-2, -1), keepdim=True) + eps)


def recam_loss(features, cams, labels, predictor, *, return_accuracy=False):
    """Softmax cross-entropy ("SCE") loss of ReCAM on CAM-weighted class features.

    Follows the reference ``train_recam`` (section 4 of the code specification):

    1. each (image, class) CAM is divided by its spatial maximum + 1e-5;
    2. the class feature vector is the mean over **all** ``h*w`` pixels of
       ``cam_c * F`` (not weighted by the CAM sum), giving (B, C, D);
    3. for every image, the vectors of its positive classes go through
       ``predictor`` and each gets a softmax cross-entropy against its own class;
       these are averaged over the image's positive classes;
    4. the per-image losses are summed and divided by the batch size ``B`` (images
       without positives contribute 0 but still count in ``B``).

    The total ReCAM loss is ``cam_loss + RECAM_LOSS_WEIGHT * recam_loss``; the weight
    is applied by the caller.

    Parameters
    ----------
    features : `torch.Tensor`
        Backbone features (B, D, h, w).
    cams : `torch.Tensor`
        Non-negative, un-normalised CAMs (B, C, h, w) from the same pass
        (`CAMNet.forward_all`).
    labels : `torch.Tensor`
        Multi-hot labels (B, C); values > 0 are positives.
    predictor : `ReCAMHead`
        Maps (N, D) class features to (N, C) logits.
    return_accuracy : bool, optional
        Also return the fraction of positive class vectors the predictor assigns to
        their own class (NaN when the batch has no positive).

    Returns
    -------
    loss : `torch.Tensor`
        Scalar. When no image of the batch has a positive class the loss is 0 (still
        attached to the graph so that ``backward`` works); the reference raises
        ZeroDivisionError in that case.
    accuracy : float
        Only with ``return_accuracy=True``.
    """
    if features.ndim != 4 or cams.ndim != 4:
        raise ValueError("features and cams: expected 4-D tensors (B, D, h, w) and (B, C, h, w), "
                         f"got {tuple(features.shape)} and {tuple(cams.shape)}")
    b, _, h, w = features.shape
    if cams.shape[0] != b or cams.shape[2:] != (h, w):
        raise ValueError(f"cams: shape {tuple(cams.shape)} does not match features "
                         f"{tuple(features.shape)}")
    _check_labels(labels, b, cams.shape[1])
    cams = normalize_cams(cams)
    # (B, C, D): mean over pixels of cam_c(y, x) * F_d(y, x)
    class_features = torch.einsum("bchw,bdhw->bcd", cams, features) / (h * w)
    positive = labels > 0
    total = class_features.sum() * 0.0
    n_pos = int(positive.sum())
    n_correct = 0
    for i in range(b):
        classes = torch.nonzero(positive[i]).flatten()
        if classes.numel() == 0:
            continue
        logits = predictor(class_features[i, classes])
        total = total + F.cross_entropy(logits, classes)
        n_correct += int((logits.argmax(dim=1) == classes).sum())
    loss = total / b
    if return_accuracy:
        return loss, (n_correct / n_pos if n_pos else float("nan"))
    return loss

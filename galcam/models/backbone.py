"""ResNet backbones with the reference's output stride and fixed batch normalisation.

The CAM, ReCAM and IRNet networks of Gupta et al. (2023) all share a ResNet
backbone built the way IRN (Ahn et al. 2019) builds it: torchvision's ResNet
with the stride of ``layer4`` set to 1 (output stride 16, no dilation) and
batch normalisation layers that always use their running statistics.
"""

import logging

import torch.nn.functional as F
from torch import nn
from torchvision import models as tv_models

from .._validation import check_bool, check_positive_int

__all__ = ["ARCHITECTURES", "Backbone", "FixedBatchNorm2d"]

log = logging.getLogger(__name__)

#: Supported architectures: torchvision constructor and channel count of each stage.
ARCHITECTURES = {
    "resnet18": (tv_models.resnet18, (64, 64, 128, 256, 512)),
    "resnet34": (tv_models.resnet34, (64, 64, 128, 256, 512)),
    "resnet50": (tv_models.resnet50, (64, 256, 512, 1024, 2048)),
}


class FixedBatchNorm2d(nn.BatchNorm2d):
    """Batch normalisation that can be switched to always use running statistics.

    When ``fixed`` is true (the default) the layer normalises with its stored
    ``running_mean``/``running_var`` in training and in evaluation mode alike and never
    updates them, while its affine ``weight`` and ``bias`` stay trainable. This is the
    ``FixedBatchNorm`` of the reference code (IRN/ReCAM/Gal-CAM): with batches of 4
    images, batch statistics would be too noisy, so the ImageNet statistics are kept.
    When ``fixed`` is false the layer is an ordinary `torch.nn.BatchNorm2d`.

    The state-dict keys are those of `torch.nn.BatchNorm2d`, so torchvision weights
    load unchanged.
    """

    def __init__(self, num_features, *args, **kwargs):
        super().__init__(num_features, *args, **kwargs)
        self.fixed = True

    def forward(self, x):  # noqa: D102 - documented in the class
        if not self.fixed:
            return super().forward(x)
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            training=False, momentum=0.0, eps=self.eps,
        )

    def extra_repr(self):
        return f"{super().extra_repr()}, fixed={self.fixed}"


class Backbone(nn.Module):
    """A torchvision ResNet truncated before its pooling and classifier.

    Parameters
    ----------
    arch : {'resnet50', 'resnet34', 'resnet18'}, optional
        Architecture. The reference code uses ResNet-50; the smaller ones are for
        quick experiments and tests.
    weights : None, 'torchvision' or path-like, optional
        Initial weights. `None` (default) leaves torchvision's random initialisation.
        ``'torchvision'`` loads torchvision's ``IMAGENET1K_V1`` weights from the local
        torch hub cache (never downloaded), a path loads a torchvision state dict from
        that file; see `galcam.models.load_imagenet_weights`.
    output_stride : {16, 32}, optional
        Ratio between the input size and the size of the last feature map. With 16
        (default, as the reference) the strides of the stages are (2, 2, 2, 1): the
        first block of ``layer4`` keeps stride 1 and, as in the reference, **no
        dilation** is added. 32 gives the standard ResNet.
    frozen_batchnorm : bool, optional
        If true (default, as the reference) every batch-norm layer always uses its
        running statistics (see `FixedBatchNorm2d`) while its affine parameters remain
        trainable, and the stem (``conv1`` and ``bn1``) is frozen
        (``requires_grad=False``). If false, batch normalisation and the stem train
        normally.
    in_channels : int, optional
        Number of input channels (3 for the paper's (IR, radio, radio) encoding). With
        another value ``conv1`` is rebuilt; ImageNet weights are then adapted by
        averaging the RGB filters (see `~galcam.models.load_imagenet_weights`).

    Attributes
    ----------
    stage_channels : tuple of int
        Channels of the five outputs of `forward_stages`, e.g.
        ``(64, 256, 512, 1024, 2048)`` for ResNet-50 and ``(64, 64, 128, 256, 512)``
        for ResNet-18/34.
    strides : tuple of int
        Stride of each output of `forward_stages` relative to the input,
        ``(4, 4, 8, 16, 16)`` at output stride 16 and ``(4, 4, 8, 16, 32)`` at 32.

    Notes
    -----
    The stage split follows IRN: ``x1`` = conv1 + bn1 + relu + maxpool, ``x2`` =
    layer1, ``x3`` = layer2, ``x4`` = layer3, ``x5`` = layer4. The reference CAM
    network groups ``x1`` and ``x2`` into one stage; IRNet uses all five.
    Module names are those of torchvision (``conv1``, ``bn1``, ``layer1`` ...), so a
    torchvision ResNet state dict (without ``fc.*``) loads directly.
    """

    def __init__(self, arch="resnet50", *, weights=None, output_stride=16,
                 frozen_batchnorm=True, in_channels=3):
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"arch: expected one of {sorted(ARCHITECTURES)}, got {arch!r}")
        if output_stride not in (16, 32):
            raise ValueError(f"output_stride: expected 16 or 32, got {output_stride!r}")
        in_channels = check_positive_int(in_channels, "in_channels")
        frozen_batchnorm = check_bool(frozen_batchnorm, "frozen_batchnorm")

        builder, channels = ARCHITECTURES[arch]
        net = builder(weights=None, norm_layer=FixedBatchNorm2d)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3,
                                  bias=False)
        if output_stride == 16:
            # Stride 1 in layer4, no dilation (IRN's resnet50 with strides (2, 2, 2, 1)).
            # torchvision puts the stride of a block on conv2 (Bottleneck) or conv1
            # (BasicBlock) and on the 1x1 conv of the shortcut.
            block = net.layer4[0]
            for conv in (block.conv1, block.conv2):
                conv.stride = (1, 1)
            if block.downsample is not None:
                block.downsample[0].stride = (1, 1)

        self.arch = arch
        self.output_stride = output_stride
        self.in_channels = in_channels
        self.frozen_batchnorm = frozen_batchnorm
        self.stage_channels = tuple(channels)
        self.strides = (4, 4, 8, 16, 16 if output_stride == 16 else 32)

        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4

        for module in self.modules():
            if isinstance(module, FixedBatchNorm2d):
                module.fixed = frozen_batchnorm
        if frozen_batchnorm:
            for param in (*self.conv1.parameters(), *self.bn1.parameters()):
                param.requires_grad_(False)

        if weights is not None:
            from .weights import load_imagenet_weights

            load_imagenet_weights(self, weights)

    def forward_stages(self, x):
        """Run the network and return the output of every stage.

        Parameters
        ----------
        x : `torch.Tensor`
            Images, shape (B, in_channels, H, W).

        Returns
        -------
        x1, x2, x3, x4, x5 : `torch.Tensor`
            Feature maps at strides `strides` with `stage_channels` channels.
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected shape (B, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        x1 = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x2 = self.layer1(x1)
        x3 = self.layer2(x2)
        x4 = self.layer3(x3)
        x5 = self.layer4(x4)
        return x1, x2, x3, x4, x5

    def forward(self, x):
        """Return the last feature map (B, stage_channels[-1], H/os, W/os)."""
        return self.forward_stages(x)[-1]

    def freeze(self):
        """Freeze the whole backbone in place and return it.

        Every parameter gets ``requires_grad=False`` and every batch-norm layer uses
        its running statistics from now on (IRNet trains its branches on top of a
        fully frozen backbone).
        """
        for param in self.parameters():
            param.requires_grad_(False)
        for module in self.modules():
            if isinstance(module, FixedBatchNorm2d):
                module.fixed = True
        return self

    def fold_batchnorm(self):
        """Fold every batch-norm layer into the convolution before it, in place; return self.

        For inference only: each ``conv -> bn`` pair becomes one convolution with a bias,
        ``w' = w * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) + beta``, computed
        from the running statistics ``m, v`` and affine ``g, beta`` that the layer uses in
        evaluation (`FixedBatchNorm2d` always uses them), and the batch-norm layer becomes
        an identity. The outputs are those of the unfolded network to float rounding; the
        network runs one pass less over every feature map. A folded backbone cannot be
        trained further (its batch-norm layers are gone) and is put in evaluation mode.
        """
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        self.eval()
        pairs = [(self, "conv1", "bn1")]
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                pairs += [(block, f"conv{k}", f"bn{k}") for k in (1, 2, 3)
                          if hasattr(block, f"bn{k}")]
                if block.downsample is not None:
                    pairs.append((block.downsample, "0", "1"))
        for parent, conv, bn in pairs:  # names of Sequential members are "0", "1", ...
            norm = getattr(parent, bn)
            if not isinstance(norm, nn.BatchNorm2d):
                continue  # folded already
            folded = fuse_conv_bn_eval(getattr(parent, conv), norm)
            folded.requires_grad_(False)
            setattr(parent, conv, folded)
            setattr(parent, bn, nn.Identity())
        return self

    def extra_repr(self):
        return (f"arch={self.arch!r}, output_stride={self.output_stride}, "
                f"in_channels={self.in_channels}, frozen_batchnorm={self.frozen_batchnorm}")

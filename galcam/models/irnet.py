"""IRNet: class boundaries and instance displacements on a frozen backbone.

The Inter-pixel Relation Network of Ahn, Cho & Kwak (2019), as used by Gupta et al. 2023
(section 3.2.2 and section 3.3: "the ResNet-50 backbone of IRNet remains frozen"), predicts on
the stride-4 grid

* a class-boundary map (edge branch), from which pairwise affinities ``1 - max(boundary on the
  path)`` are derived (`~galcam.models.path_index.PathIndex`);
* a displacement field (displacement branch): for every pixel the vector ``(dy, dx)`` to the
  centroid of its instance, in grid pixels.

Both are trained from pixel-pair labels derived from CAM pseudo-labels
(`AffinityDisplacementLoss`). The layers follow section 8.2 of the specification of the
authors' code; their widths are given for ResNet-50 there and scale with the backbone's
``stage_channels`` here (identical for ResNet-50), so that small backbones work in tests.
"""

import logging
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .path_index import PathIndex

__all__ = [
    "MeanShift",
    "IRNet",
    "IRNetOutput",
    "AffinityDisplacementLoss",
    "AffinityLossTerms",
    "reduce_labels",
    "calibrate_mean_shift",
    "edge_and_displacement",
]

log = logging.getLogger(__name__)

_EPS = 1e-5


class MeanShift(nn.Module):
    """Subtract a calibrated mean from the displacement field in evaluation mode.

    The buffer ``running_mean`` (one value per channel) is set by `calibrate_mean_shift`; in
    training mode the module is the identity.
    """

    def __init__(self, num_features=2):
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x):  # noqa: D102
        if self.training:
            return x
        return x - self.running_mean.view(1, -1, 1, 1)


class IRNetOutput(NamedTuple):
    """Outputs of `IRNet` on the stride-4 grid."""

    #: Boundary logits, shape (B, 1, h4, w4).
    edge: torch.Tensor
    #: Displacement ``(dy, dx)`` in grid pixels, shape (B, 2, h4, w4).
    displacement: torch.Tensor


def _upsample(x, factor):
    if factor == 1:
        return x
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def _crop_to(x, like):
    h, w = like.shape[-2:]
    if x.shape[-2] < h or x.shape[-1] < w:  # cannot happen with ResNet size arithmetic
        raise RuntimeError(f"upsampled map {tuple(x.shape)} is smaller than {tuple(like.shape)}")
    return x[..., :h, :w]


class _ConvGN(nn.Sequential):
    def __init__(self, cin, cout, groups):
        if cout % groups:
            raise ValueError(f"GroupNorm({groups}) needs a width divisible by {groups}, got {cout}")
        super().__init__(nn.Conv2d(cin, cout, 1, bias=False), nn.GroupNorm(groups, cout))


class IRNet(nn.Module):
    """Boundary and displacement branches on a frozen backbone.

    Parameters
    ----------
    backbone : `~galcam.models.Backbone`
        Provides ``forward_stages(x) -> (x1, ..., x5)`` at strides ``(4, 4, 8, 16, 16)`` (or
        ``strides`` attribute), and ``stage_channels``. It is frozen in place
        (``backbone.freeze()``), kept in evaluation mode and its outputs are detached.

    Notes
    -----
    Edge branch: each stage -> 1x1 conv to 32 channels (no bias), GroupNorm(4, 32), bilinear
    upsample to stride 4, ReLU; concatenated (160 channels) -> 1x1 conv to 1 (with bias).

    Displacement branch, with ``c1..c5 = stage_channels``, ``w1 = c1``, ``w2 = c2 // 2``,
    ``w = c3 // 2`` (64, 128, 256 for ResNet-50): dp1 ``c1 -> w1`` GN(8); dp2 ``c2 -> w2``
    GN(16); dp3 ``c3 -> w`` GN(16); dp4 ``c4 -> w`` GN(16) upsampled to stride 8; dp5
    ``c5 -> w`` GN(16) upsampled to stride 8; dp6 ``concat(dp3, dp4, dp5) -> w`` GN(16)
    upsampled to stride 4; dp7 ``concat(dp1, dp2, dp6) -> w`` GN(16), ReLU, 1x1 to 2 (no bias),
    then `MeanShift`. Every block ends with a ReLU after the upsampling.
    """

    def __init__(self, backbone):
        super().__init__()
        for attr in ("forward_stages", "stage_channels"):
            if not hasattr(backbone, attr):
                raise TypeError(f"backbone must provide {attr!r} (a galcam.models.Backbone)")
        channels = tuple(int(c) for c in backbone.stage_channels)
        if len(channels) != 5:
            raise ValueError(f"backbone.stage_channels must have 5 entries, got {channels}")
        strides = tuple(getattr(backbone, "strides", (4, 4, 8, 16, 16)))
        if strides[:3] != (4, 4, 8) or any(s % 8 for s in strides[3:]):
            raise ValueError(f"unsupported backbone strides {strides}")
        if hasattr(backbone, "freeze"):
            backbone.freeze()
        for p in backbone.parameters():
            p.requires_grad_(False)
        self.backbone = backbone.eval()
        self.strides = strides
        self.stage_channels = channels

        c1, c2, c3, c4, c5 = channels
        self.edge_layers = nn.ModuleList([_ConvGN(c, 32, 4) for c in channels])
        self.edge_out = nn.Conv2d(32 * 5, 1, 1, bias=True)

        w1, w2, w = c1, c2 // 2, c3 // 2
        self.dp1 = _ConvGN(c1, w1, 8)
        self.dp2 = _ConvGN(c2, w2, 16)
        self.dp3 = _ConvGN(c3, w, 16)
        self.dp4 = _ConvGN(c4, w, 16)
        self.dp5 = _ConvGN(c5, w, 16)
        self.dp6 = _ConvGN(3 * w, w, 16)
        self.dp7 = nn.Sequential(
            _ConvGN(w1 + w2 + w, w, 16), nn.ReLU(inplace=True), nn.Conv2d(w, 2, 1, bias=False)
        )
        self.mean_shift = MeanShift(2)

    def train(self, mode=True):
        """Set the branches' mode; the backbone always stays in evaluation mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    def edge_parameters(self):
        """Trainable parameters of the boundary branch (a list)."""
        return [*self.edge_layers.parameters(), *self.edge_out.parameters()]

    def displacement_parameters(self):
        """Trainable parameters of the displacement branch (a list)."""
        mods = (self.dp1, self.dp2, self.dp3, self.dp4, self.dp5, self.dp6, self.dp7)
        return [p for m in mods for p in m.parameters()]

    def forward(self, x):
        """Boundary logits and displacements for a batch of images.

        Parameters
        ----------
        x : `torch.Tensor`, shape (B, C, H, W)
            Normalised images.

        Returns
        -------
        `IRNetOutput`
            ``edge`` (B, 1, h4, w4) logits and ``displacement`` (B, 2, h4, w4) in grid
            pixels, with ``h4 = (H - 1) // 4 + 1``.
        """
        with torch.no_grad():
            feats = [f.detach() for f in self.backbone.forward_stages(x)]
        return self.heads(feats)

    def heads(self, feats):
        """Boundary logits and displacements from the backbone's stage features.

        `forward` is ``heads(backbone.forward_stages(x))``; callers that already have the
        stage features of the same (frozen) backbone, e.g. the CAM network's when IRNet
        was trained on the CAM backbone, reuse them instead of running it again.

        Parameters
        ----------
        feats : sequence of 5 `torch.Tensor`
            The outputs of `galcam.models.Backbone.forward_stages`.

        Returns
        -------
        `IRNetOutput`
        """
        if len(feats) != 5:
            raise ValueError(f"feats: expected the 5 stage outputs of the backbone, got "
                             f"{len(feats)}")
        x1, x2, x3, x4, x5 = feats

        edges = []
        for layer, feat, stride in zip(self.edge_layers, feats, self.strides, strict=True):
            e = _upsample(layer(feat), stride // self.strides[1])
            edges.append(F.relu(_crop_to(e, x2)))
        edge = self.edge_out(torch.cat(edges, dim=1))

        d1 = F.relu(self.dp1(x1))
        d2 = F.relu(self.dp2(x2))
        d3 = F.relu(self.dp3(x3))
        d4 = F.relu(_crop_to(_upsample(self.dp4(x4), self.strides[3] // 8), d3))
        d5 = F.relu(_crop_to(_upsample(self.dp5(x5), self.strides[4] // 8), d3))
        d6 = F.relu(_crop_to(_upsample(self.dp6(torch.cat([d3, d4, d5], dim=1)), 2), d1))
        dp = self.mean_shift(self.dp7(torch.cat([d1, d2, d6], dim=1)))
        return IRNetOutput(edge, dp)


def reduce_labels(labels, grid_size=None):
    """Reduce full-resolution label maps to the stride-4 grid by nearest sampling.

    Grid pixel ``(i, j)`` takes the label of image pixel ``(4 i + 2, 4 j + 2)`` (clipped to the
    image), which is what the reference's PIL nearest-neighbour rescaling by 0.25 picks.

    Parameters
    ----------
    labels : `torch.Tensor` or `~numpy.ndarray` of int, shape (..., H, W)
        IRNet labels: class index + 1 for confident foreground, 0 for confident background,
        255 for ignored pixels.
    grid_size : tuple of int, optional
        ``(h4, w4)``; by default ``((H - 1) // 4 + 1, (W - 1) // 4 + 1)``.

    Returns
    -------
    Same type as ``labels``, shape (..., h4, w4).
    """
    is_tensor = isinstance(labels, torch.Tensor)
    lab = labels if is_tensor else torch.as_tensor(labels)
    H, W = lab.shape[-2:]
    h4, w4 = grid_size if grid_size is not None else ((H - 1) // 4 + 1, (W - 1) // 4 + 1)
    ys = torch.clamp(torch.arange(h4) * 4 + 2, max=H - 1).to(lab.device)
    xs = torch.clamp(torch.arange(w4) * 4 + 2, max=W - 1).to(lab.device)
    out = lab.index_select(-2, ys).index_select(-1, xs)
    return out if is_tensor else out.numpy()


class AffinityLossTerms(NamedTuple):
    """The terms of the IRNet loss (scalars)."""

    total: torch.Tensor
    pos_aff: torch.Tensor
    neg_aff: torch.Tensor
    dp_fg: torch.Tensor
    dp_bg: torch.Tensor


class AffinityDisplacementLoss(nn.Module):
    """IRNet's training loss from a pseudo-label map (section 8.4 of the reference spec).

    For every forward pixel pair within ``radius`` on the stride-4 grid (`PathIndex`), with
    ``aff = 1 - max(sigmoid(edge) on the path)`` and ``D`` the displacement field:

    * pairs of two background pixels (``bg_pos``) and of two pixels of the same class
      (``fg_pos``) should have affinity 1: ``-log(aff + 1e-5)``;
    * pairs of different labels (``neg``) should have affinity 0: ``-log(1 + 1e-5 - aff)``;
    * same-class pairs should have ``D(src) - D(dst) = dst - src`` (L1, both components);
      background pairs ``D(src) - D(dst) = 0``.

    The batch aggregation is ``(L_pos + L_neg) / 2 + (L_dpfg + L_dpbg) / 2`` with
    ``L_pos = (mean over bg_pos + mean over fg_pos) / 2`` and the displacement terms averaged
    over pairs and both components. Pairs touching an ignored pixel (255) do not count.

    Parameters
    ----------
    radius : float, optional
        Pair radius in grid pixels (10 in the reference: 152 directions).
    """

    def __init__(self, radius=10):
        super().__init__()
        self.radius = float(radius)
        PathIndex(self.radius, (64, 64))  # validate the radius now
        self._indices = {}

    def path_index(self, grid_size):
        """The (cached) `PathIndex` for a grid size."""
        key = tuple(int(v) for v in grid_size)
        if key not in self._indices:
            self._indices[key] = PathIndex(self.radius, key)
        return self._indices[key]

    def forward(self, edge_logits, displacement, labels):
        """Compute the loss terms.

        Parameters
        ----------
        edge_logits : `torch.Tensor`, shape (B, 1, h, w)
        displacement : `torch.Tensor`, shape (B, 2, h, w)
        labels : `torch.Tensor` of int, shape (B, h, w)
            Labels on the same grid (see `reduce_labels`).

        Returns
        -------
        `AffinityLossTerms`
        """
        if edge_logits.ndim != 4 or edge_logits.shape[1] != 1:
            raise ValueError(f"edge_logits must have shape (B, 1, h, w), got "
                             f"{tuple(edge_logits.shape)}")
        grid = tuple(edge_logits.shape[-2:])
        if displacement.shape != (edge_logits.shape[0], 2, *grid):
            raise ValueError(f"displacement must have shape (B, 2, h, w) = "
                             f"{(edge_logits.shape[0], 2, *grid)}, got {tuple(displacement.shape)}")
        if tuple(labels.shape) != (edge_logits.shape[0], *grid):
            raise ValueError(f"labels must have shape {(edge_logits.shape[0], *grid)} (the "
                             f"stride-4 grid; see reduce_labels), got {tuple(labels.shape)}")
        index = self.path_index(grid)
        bg_pos, fg_pos, neg = (t.to(edge_logits.dtype) for t in index.affinity_labels(labels))

        aff = index.affinity(torch.sigmoid(edge_logits[:, 0]))  # (B, D, S)
        pos_loss = -torch.log(aff + _EPS)
        neg_loss = -torch.log(1.0 + _EPS - aff)
        pos_aff = 0.5 * (bg_pos * pos_loss).sum() / (bg_pos.sum() + _EPS) + 0.5 * (
            fg_pos * pos_loss
        ).sum() / (fg_pos.sum() + _EPS)
        neg_aff = (neg * neg_loss).sum() / (neg.sum() + _EPS)

        src, dst = index.pair_values(displacement)  # (B, 2, 1, S), (B, 2, D, S)
        pair_disp = src - dst
        target = index.displacement_target(displacement.dtype, displacement.device)
        dp_fg = (torch.abs(pair_disp - target) * fg_pos[:, None]).sum() / (
            2 * fg_pos.sum() + _EPS
        )
        dp_bg = (torch.abs(pair_disp) * bg_pos[:, None]).sum() / (2 * bg_pos.sum() + _EPS)
        total = (pos_aff + neg_aff) / 2 + (dp_fg + dp_bg) / 2
        return AffinityLossTerms(total, pos_aff, neg_aff, dp_fg, dp_bg)


def _batch_images(batch):
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, dict):
        for key in ("img", "image", "images"):
            if key in batch:
                return batch[key]
        raise KeyError(f"batch dict has no 'img'/'image'/'images' entry (keys: {list(batch)})")
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    raise TypeError(f"each batch must be an image tensor, a (images, ...) sequence or a dict, "
                    f"got {type(batch).__name__}")


@torch.no_grad()
def calibrate_mean_shift(model, batches, *, device=None):
    """Set IRNet's mean-shift buffer to the mean displacement over a data set.

    As in the reference (section 8.6): in evaluation mode with a zero shift, the mean of the
    displacement over (batch, y, x) is taken for every batch, and the average of these batch
    means is stored in ``model.mean_shift.running_mean``.

    Parameters
    ----------
    model : `IRNet`
    batches : iterable
        Batches of normalised images (tensors of shape (B, C, H, W), or ``(images, ...)``
        sequences, or dicts with an ``'img'`` entry).
    device : str or `torch.device`, optional
        Where to run; by default the device of the model's parameters.

    Returns
    -------
    `torch.Tensor`, shape (2,)
        The stored mean displacement ``(dy, dx)`` in grid pixels.
    """
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    model.mean_shift.running_mean.zero_()
    means = []
    try:
        for batch in batches:
            images = _batch_images(batch).to(device)
            means.append(model(images).displacement.mean(dim=(0, 2, 3)))
    finally:
        model.train(was_training)
    if not means:
        raise ValueError("calibrate_mean_shift: batches is empty")
    mean = torch.stack(means).mean(dim=0)
    model.mean_shift.running_mean.copy_(mean)
    log.info("IRNet mean shift calibrated on %d batches: dy=%.4f dx=%.4f", len(means),
             *mean.tolist())
    return mean.clone()


@torch.no_grad()
def edge_and_displacement(model, image):
    """Boundary probabilities and displacement field of one image (inference).

    As in the reference (section 9.1 step 1): the image and its horizontal flip are run in
    evaluation mode; the boundary map is ``sigmoid`` of the average of the two logit maps (the
    flipped one flipped back), the displacement comes from the unflipped pass only.

    Parameters
    ----------
    model : `IRNet`
    image : `torch.Tensor`, shape (C, H, W) or (1, C, H, W)
        Normalised image.

    Returns
    -------
    edge : `torch.Tensor`, shape (h4, w4)
        Boundary probabilities in [0, 1].
    displacement : `torch.Tensor`, shape (2, h4, w4)
        ``(dy, dx)`` in grid pixels, mean-shift corrected.
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"image must be a single image, got batch shape {tuple(image.shape)}")
        image = image[0]
    if image.ndim != 3:
        raise ValueError(f"image must have shape (C, H, W), got {tuple(image.shape)}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        batch = torch.stack([image, image.flip(-1)]).to(device)
        out = model(batch)
    finally:
        model.train(was_training)
    H, W = image.shape[-2:]
    h4, w4 = (H - 1) // 4 + 1, (W - 1) // 4 + 1
    logits = out.edge[0, 0] / 2 + out.edge[1, 0].flip(-1) / 2
    edge = torch.sigmoid(logits)[:h4, :w4]
    return edge, out.displacement[0, :, :h4, :w4]

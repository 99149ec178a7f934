"""`ModelNetworks`: a model's two networks run once on a batch of encoded tiles.

The classification (CAM/ReCAM) network gives class probabilities and multi-scale class
activation maps, IRNet gives boundaries and displacements (Gupta et al. 2023, PASA,
section 3.2). `ModelNetworks` runs both on a batch and returns their outputs as
`NetworkOutputs`, which the instance step (`galcam.inference.GalaxyGrouper`), the
benchmarks and the tests use without touching the networks again.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import check_bool
from .backbone import Backbone
from .cam import CAM_EPS, CAMNet
from .cam_inference import _N_VIEWS, _rescale, view_logits
from .folder import resolve_device
from .irnet import IRNet
from .spec import PRECISION_NAMES, ModelFolderError

__all__ = ["ModelNetworks", "NetworkOutputs", "shares_backbone", "PRECISIONS",
           "PRECISION_LIMITS", "has_bfloat16_units"]

#: Arithmetic of the network passes (`ModelNetworks` ``precision``) and its torch type.
PRECISIONS = {name: getattr(torch, name) for name in PRECISION_NAMES}
#: Largest differences from float32 that a lower precision may make on the test pattern of
#: `ModelNetworks` (class probabilities; CAMs, each normalised to a maximum of 1). The
#: bundled EMU model makes 0.02 and 0.03 in bfloat16, the bundled FIRST model 0.54 and 1.
PRECISION_LIMITS = {"probabilities": 0.1, "cams": 0.2}


@dataclass(frozen=True, eq=False)
class NetworkOutputs:
    """The outputs of the networks on a batch of ``B`` tiles (numpy, float32).

    Attributes
    ----------
    cams : `~numpy.ndarray` (B, C, h4, w4)
        Multi-scale CAMs on the stride-4 grid, each divided by its maximum.
    probabilities : `~numpy.ndarray` (B, C)
        Class probabilities.
    edges : `~numpy.ndarray` (B, h4, w4)
        IRNet's boundary probabilities (mirror-averaged).
    displacements : `~numpy.ndarray` (B, 2, h4, w4)
        IRNet's displacement field ``(dy, dx)`` in grid pixels.
    """

    cams: np.ndarray
    probabilities: np.ndarray
    edges: np.ndarray
    displacements: np.ndarray

    def __len__(self):
        return len(self.probabilities)

    def tile(self, k):
        """The outputs of tile ``k`` alone, as `NetworkOutputs` of one (views, no copies)."""
        return NetworkOutputs(self.cams[k:k + 1], self.probabilities[k:k + 1],
                              self.edges[k:k + 1], self.displacements[k:k + 1])


def has_bfloat16_units(device):
    """Whether ``device`` computes in bfloat16 natively (then ``precision='bfloat16'`` pays).

    A CPU with Intel AMX tiles or AVX-512 BF16 instructions, or a CUDA GPU that supports
    bfloat16 (Ampere and later). False when torch cannot tell.
    """
    device = torch.device(device)
    try:
        if device.type == "cuda":
            return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        if device.type == "cpu":
            checks = [getattr(torch.cpu, name, None) for name in
                      ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
            return any(bool(check()) for check in checks if check is not None)
    except (RuntimeError, AttributeError):  # private torch helpers: absent or failing
        return False
    return False


def shares_backbone(cam_net, irnet):
    """True when IRNet's frozen backbone has exactly the CAM network's weights.

    Models trained with ``irnet_backbone='cam'`` (the ``fast`` preset) have one backbone
    for both networks; the backbone then runs once per image for the CAMs at scale 1 and
    for IRNet, which is how the stored model also keeps it only once.
    """
    a = cam_net.backbone.state_dict()
    b = irnet.backbone.state_dict()
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


def _load_state(module, state, what, path):
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFolderError(f"'{path}': the {what} weights do not fit the network described "
                               f"in config.json ({first})") from exc


class ModelNetworks:
    """The CAM network and IRNet of a model, on a device, with the views of the spec.

    Parameters
    ----------
    cam_net : `~galcam.models.CAMNet`
        The (ReCAM-trained) classification network.
    irnet : `~galcam.models.IRNet`
        The boundary/displacement network.
    spec : `~galcam.models.ModelSpec`
        The model's description: normalisation, CAM scales, class scales and views.
    device : str or `torch.device`, optional
        ``'auto'`` (CUDA if available), ``'cpu'``, ``'cuda'``, ``'cuda:N'``.
    flip : bool, optional
        Add the CAMs of mirrored images (True).
    precision : {'float32', 'bfloat16', 'float16'}, optional
        Arithmetic of the network passes. ``'float32'`` (default) as trained;
        ``'bfloat16'`` runs the passes under `torch.autocast` in bfloat16, several times
        faster on CPUs with bfloat16 matrix units (Intel AMX, AVX-512 BF16) and on GPUs,
        slower on CPUs without them; ``'float16'`` is for CUDA only. Outputs are returned
        in float32 either way. A lower precision is checked once, here, on a test pattern
        against float32 and refused (`ValueError`) for a model whose outputs it changes
        more than `PRECISION_LIMITS` (``precision_check`` holds the differences); what it
        does to quality is measured in the docs (*Inference*, "Throughput").
    optimize : bool, optional
        Prepare the networks for fast inference, in place: batch-norm layers folded into
        the convolutions (`~galcam.models.Backbone.fold_batchnorm`), IRNet's frozen
        backbone made the CAM network's own when their weights are equal (one copy in
        memory), and channels-last memory layout. The outputs equal those of the networks
        as given to float rounding (about 1e-5; checked by the tests). Default False:
        the networks are used as given; models loaded from a folder
        (`from_states`) are optimised.
    """

    def __init__(self, cam_net, irnet, spec, *, device="auto", flip=True, optimize=False,
                 precision="float32"):
        if not isinstance(cam_net, CAMNet):
            raise TypeError(f"cam_net: expected a galcam.models.CAMNet, got "
                            f"{type(cam_net).__name__}")
        if not isinstance(irnet, IRNet):
            raise TypeError(f"irnet: expected a galcam.models.IRNet, got {type(irnet).__name__}")
        if spec.n_classes != cam_net.n_classes:
            raise ValueError(f"classes: {spec.n_classes} names for a network with "
                             f"{cam_net.n_classes} outputs")
        self.spec = spec
        self.flip = check_bool(flip, "flip")
        self.device = resolve_device(device)
        if precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {sorted(PRECISIONS)}, got "
                             f"{precision!r}")
        if precision == "float16" and self.device.type != "cuda":
            raise ValueError(f"precision='float16' needs a CUDA device (this one is "
                             f"'{self.device}'); on a CPU use 'bfloat16'")
        self.precision = precision
        self.precision_check = None
        self.cam_net = cam_net.to(self.device).eval()
        self.irnet = irnet.to(self.device).eval()
        self.shared = shares_backbone(self.cam_net, self.irnet)
        self.optimized = check_bool(optimize, "optimize")
        if self.optimized:
            if self.shared:
                self.irnet.backbone = self.cam_net.backbone
            for backbone in {id(n.backbone): n.backbone for n in (self.cam_net, self.irnet)
                             }.values():
                backbone.fold_batchnorm()
            self.cam_net.to(memory_format=torch.channels_last)
            self.irnet.to(memory_format=torch.channels_last)
        self._mean = np.asarray(spec.mean, dtype=np.float32)[None, :, None, None]
        self._std = np.asarray(spec.std, dtype=np.float32)[None, :, None, None]
        if precision != "float32":
            self.precision_check = self._check_precision()

    def _check_precision(self):
        """Refuse a lower precision that changes this model's outputs (see `PRECISION_LIMITS`).

        Some models are not stable in bfloat16: batch-norm channels with a small variance
        and a large mean amplify the rounding of the convolution before them (the bundled
        FIRST model's class probabilities move by 0.5 and its CAMs by 1; its validation
        accuracy falls from 0.72 to 0.30). Both precisions are run on a fixed test pattern
        (Gaussian blobs on faint noise, the size of the model's tiles); the largest
        differences are returned, or `ValueError` is raised when they pass the limits.
        """
        h, w = self.spec.image_size
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[:h, :w]
        pattern = np.clip(rng.normal(0, 0.02, (2, len(self.spec.channels), h, w)), 0, None)
        for b in range(2):
            for _ in range(4):
                cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
                sigma, peak = rng.uniform(2, 8), rng.uniform(0.3, 1)
                pattern[b] += peak * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2)
                                            / (2 * sigma**2))
        pattern = np.clip(pattern, 0, 1).astype(np.float32)
        precision = self.precision
        low, ref = self._forward(pattern, precision), self._forward(pattern, "float32")
        diff = {"probabilities": float(np.abs(low.probabilities - ref.probabilities).max()),
                "cams": float(np.abs(low.cams - ref.cams).max())}
        bad = {k: v for k, v in diff.items() if v > PRECISION_LIMITS[k]}
        if bad:
            raise ValueError(
                f"precision={precision!r}: this model's outputs change too much in "
                f"{precision} (largest difference from float32 on a test pattern: "
                + ", ".join(f"{k} {v:.2f} (at most {PRECISION_LIMITS[k]})"
                            for k, v in bad.items())
                + "); use precision='float32'")
        return diff

    @classmethod
    def from_states(cls, spec, states, *, path, device="auto", flip=True, optimize=True,
                    precision="float32"):
        """Build the networks of ``spec`` and load their weights.

        Parameters
        ----------
        spec : `~galcam.models.ModelSpec`
        states : dict
            ``{"cam": state_dict, "irnet": state_dict}`` as read from a model folder.
        path : path-like
            The model folder (named in errors).
        device, flip, optimize, precision
            As for the class (``optimize`` True by default here: these networks are for
            inference).
        """
        for net in ("cam", "irnet"):
            if net not in states:
                raise ModelFolderError(f"'{path}': no '{net}' weights in the model folder "
                                       f"(it has {sorted(states)})")
        cam_net = CAMNet(spec.cam.arch, spec.n_classes, in_channels=spec.cam.in_channels)
        _load_state(cam_net, states["cam"], "CAM", path)
        irnet = IRNet(Backbone(spec.irnet.arch, in_channels=spec.irnet.in_channels))
        irnet_state = dict(states["irnet"])
        if spec.irnet.shared_backbone == "cam":
            # stored once: IRNet's frozen backbone is the CAM network's
            if any(k.startswith("backbone.") for k in irnet_state):
                raise ModelFolderError(f"'{path}': config.json says IRNet shares the CAM "
                                       "backbone, but irnet weights hold a backbone too")
            irnet_state.update({k: v for k, v in states["cam"].items()
                                if k.startswith("backbone.")})
        _load_state(irnet, irnet_state, "IRNet", path)
        return cls(cam_net, irnet, spec, device=device, flip=flip, optimize=optimize,
                   precision=precision)

    def normalize(self, channels):
        """``(x - mean) / std`` of encoded channels (B, C, H, W) in [0, 1], as float32."""
        x = np.asarray(channels, dtype=np.float32)
        return (x - self._mean) / self._std

    def __call__(self, channels):
        """Run both networks on a batch of encoded tiles.

        Parameters
        ----------
        channels : array-like (B, C, H, W)
            Encoded channels in [0, 1] (`~galcam.preprocessing.EncodedCutout.channels`),
            all of one size.

        Returns
        -------
        `NetworkOutputs`
        """
        x = np.asarray(channels)
        if x.ndim != 4 or x.shape[1] != len(self.spec.channels):
            raise ValueError(f"channels: expected an array (B, {len(self.spec.channels)}, H, W), "
                             f"got shape {x.shape}")
        return self._forward(x, self.precision)

    def _forward(self, x, precision):
        """`NetworkOutputs` of a checked batch ``x`` with the passes in ``precision``."""
        xt = torch.from_numpy(self.normalize(x)).to(self.device)
        if self.optimized:
            xt = xt.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=PRECISIONS[precision],
                            enabled=precision != "float32"):
            return NetworkOutputs(*_batch_forward(
                self.cam_net, self.irnet, xt, self.spec.cam_scales, self.flip, self.shared,
                class_scales=self.spec.class_scales, class_views=self.spec.class_views))


@torch.no_grad()
def _batch_forward(cam_net, irnet, x, scales, flip, shared, class_scales=None,
                   class_views=None):
    """CAMs, class probabilities, boundaries and displacements of a normalised batch.

    CAMs as `galcam.models.multiscale_cams`: for each image, the CAMs of every scale in
    ``scales`` and of its mirror image, resized to the stride-4 grid and summed, divided by
    their per-class maximum (+1e-5). Probabilities as `galcam.models.predict_classes`: the
    sigmoid of the logits averaged over the scales ``class_scales`` (default ``scales``)
    and at each of them over the views ``class_views`` (`galcam.models.class_views`;
    default: the mirror image when ``flip``); logits the CAM passes already made are
    reused. Boundaries and displacements as `galcam.models.edge_and_displacement`
    (mirror-averaged edge logits, unflipped displacements). With ``shared`` (see
    `shares_backbone`) the backbone pass of scale 1 serves both networks.

    Returns
    -------
    strided, probs, edge, dp : `numpy.ndarray`
        (B, C, h4, w4), (B, C), (B, h4, w4), (B, 2, h4, w4).
    """
    b, _, h, w = x.shape
    h4, w4 = (h - 1) // 4 + 1, (w - 1) // 4 + 1
    both = torch.cat([x, x.flip(-1)])
    strided = 0
    logits = {}  # scale -> logits (views, B, C) of the first 1 or 2 class views
    ir_out = None
    for s in scales:
        if shared and s == 1.0 and ir_out is None:
            feats = cam_net.backbone.forward_stages(both)
            ir_out = irnet.heads(feats)
            out = cam_net.from_features(feats[-1] if flip else feats[-1][:b])
        else:
            xs = _rescale(x, s)
            if flip:
                xs = torch.cat([xs, xs.flip(-1)])
            out = cam_net.forward_all(xs)
        cams = out.cams.float()  # sums and maxima in float32 under autocast too
        cam = cams[:b]
        if flip:
            cam = cam + cams[b:].flip(-1)
        logits.setdefault(s, out.logits.float().reshape(-1, b, out.logits.shape[-1]))
        strided = strided + F.interpolate(cam, size=(h4, w4), mode="bilinear",
                                          align_corners=False)
    strided = strided / (strided.amax(dim=(2, 3), keepdim=True) + CAM_EPS)
    views = ("flip" if flip else "none") if class_views is None else class_views
    n_views = _N_VIEWS[views]
    parts = []
    for s in (scales if class_scales is None else class_scales):
        have = logits.get(s, x.new_zeros((0, b, cam_net.n_classes)))[:n_views]
        parts.append(have)
        if have.shape[0] < n_views:
            parts.append(view_logits(cam_net, _rescale(x, s), views=views,
                                     start=have.shape[0]).float())
    prob = torch.sigmoid(torch.cat(parts).mean(dim=0))
    if ir_out is None:
        ir_out = irnet(both)
    ir_edge = ir_out.edge.float()
    edge = torch.sigmoid(ir_edge[:b, 0] / 2 + ir_edge[b:, 0].flip(-1) / 2)
    edge = edge[:, :h4, :w4]
    dp = ir_out.displacement[:b, :, :h4, :w4].float()
    return (strided.float().cpu().numpy(), prob.float().cpu().numpy(),
            edge.float().cpu().numpy(), dp.float().cpu().numpy())

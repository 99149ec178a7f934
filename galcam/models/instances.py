"""Instance masks from CAMs, IRNet boundaries and displacements.

This is the instance step of IRNet (Ahn, Cho & Kwak 2019) as used by Gupta et al. 2023
(section 3.2.2; section 9.1 of the specification of the authors' code), with galcam's
corrections:

1. every stride-4 grid pixel follows the predicted displacement field to its centroid
   (`find_centroids`);
2. the centroids are grouped: pixels of weak displacement (``|dp| < 2.5`` grid px) form
   4-connected "centre regions", and every pixel takes the label of the centre region its centroid
   landed in (`cluster_centroids`); the clusters partition the grid (`instance_maps`);
3. instance-wise CAMs: each class CAM times the one-hot map of each cluster, weighted by the radio
   map, propagated by the random walk (`~galcam.models.random_walk.propagate`);
4. the propagated maps are upsampled x4, normalised by their global maximum, compared with a
   background level and the arg-max over planes gives the masks (`InstanceExtractor`).

Differences from the reference code (all deliberate, documented in ``docs/instances.rst``):

* one detection per (class, cluster) plane, holding **all** of the plane's pixels, so a core and
  two detached lobes stay one galaxy; fragments smaller than ``min_area`` are dropped from the
  mask. ``split_components=True`` restores the reference (every 4-connected component is a
  detection; components under ``min_area`` get score 0);
* the radio weight map is resampled directly to the stride-4 grid (block mean), not with the
  reference's ``1/3.95`` scale factor (kept as ``radio_resample="refcode"``);
* the background level is a fixed fraction of the global maximum by default (scale free; IRN's
  original rule); the reference's ``5 * std(instance CAM of class 0, cluster 0)`` is
  ``background="refcode"``;
* the score of a detection is ``class_score * max(normalised random-walk map in the mask)``;
* nothing found gives an empty list (never ``None``); detections are sorted by decreasing score.
"""

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from skimage.measure import label as sk_label

from .._validation import readonly
from .random_walk import propagate

__all__ = [
    "find_centroids",
    "cluster_centroids",
    "instance_maps",
    "Instance",
    "InstanceExtractor",
    "extract_instances",
]

log = logging.getLogger(__name__)

_BACKGROUND_METHODS = ("global", "plane", "refcode")
_RADIO_RESAMPLE = ("exact", "refcode")


def _to_numpy(x, name, ndim=None, dtype=np.float64):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=dtype)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values")
    return arr


def find_centroids(dp, *, n_iter=300):
    """Follow the displacement field from every grid pixel to its centroid.

    Each pixel starts at its own ``(y, x)``; each iteration adds the bilinearly interpolated
    displacement at the current position (`torch.nn.functional.grid_sample`, all pixels at
    once, double precision) and clips to the grid. After ``n_iter`` iterations the
    positions are rounded to the nearest pixel (section 9.1 step 2 of the reference).

    Parameters
    ----------
    dp : array-like, shape (2, h, w)
        Displacement ``(dy, dx)`` in grid pixels (IRNet's output, mean-shift corrected).
    n_iter : int, optional
        Number of iterations (300 in the reference).

    Returns
    -------
    centroids : `~numpy.ndarray` of int, shape (2, h, w)
        ``(y, x)`` grid pixel reached from every pixel.
    """
    dp = _to_numpy(dp, "dp", ndim=3)
    if dp.shape[0] != 2:
        raise ValueError(f"dp must have shape (2, h, w), got {dp.shape}")
    if int(n_iter) != n_iter or n_iter < 0:
        raise ValueError(f"n_iter must be an integer >= 0, got {n_iter!r}")
    _, h, w = dp.shape
    # bilinear sampling with torch's grid_sample (align_corners=True maps -1 and 1 to the
    # centres of the first and last pixels); positions stay inside the grid by clipping
    field = torch.from_numpy(np.ascontiguousarray(dp))[None]  # (1, 2, h, w), float64
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                          torch.arange(w, dtype=torch.float64), indexing="ij")
    sy = 2.0 / (h - 1) if h > 1 else 0.0
    sx = 2.0 / (w - 1) if w > 1 else 0.0
    for _ in range(int(n_iter)):
        grid = torch.stack([x * sx - 1.0, y * sy - 1.0], dim=-1)[None]
        step = F.grid_sample(field, grid, mode="bilinear", padding_mode="border",
                             align_corners=True)[0]
        y = torch.clamp(y + step[0], 0, h - 1)
        x = torch.clamp(x + step[1], 0, w - 1)
    return np.stack([np.rint(y.numpy()), np.rint(x.numpy())]).astype(np.intp)


def cluster_centroids(centroids, dp, *, threshold=2.5):
    """Group pixels whose centroids land in the same centre region.

    Pixels with ``|dp| < threshold`` form the weak-displacement region; its 4-connected
    components are the centre regions (`skimage.measure.label`). Every pixel takes the label of
    the component at its centroid, 0 when the centroid lies in the strong-displacement region.
    The labels that occur are renumbered ``0 .. K-1`` in ascending order, so the
    "strong-displacement" group, if any, is cluster 0 (reference section 9.1 step 3).

    Parameters
    ----------
    centroids : array-like of int, shape (2, h, w)
        Output of `find_centroids`.
    dp : array-like, shape (2, h, w)
        Displacement field in grid pixels.
    threshold : float, optional
        Weak-displacement threshold in grid pixels (2.5 in the reference, ~10 image pixels).

    Returns
    -------
    clusters : `~numpy.ndarray` of int, shape (h, w)
        Cluster index ``0 .. K-1`` of every grid pixel.
    """
    dp = _to_numpy(dp, "dp", ndim=3)
    cen = np.asarray(centroids)
    if cen.shape != dp.shape or dp.shape[0] != 2:
        raise ValueError(
            f"centroids {cen.shape} and dp {dp.shape} must both have shape (2, h, w)"
        )
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0 grid pixels, got {threshold!r}")
    _, h, w = dp.shape
    cy = np.clip(cen[0].astype(np.intp), 0, h - 1)
    cx = np.clip(cen[1].astype(np.intp), 0, w - 1)
    weak = np.hypot(dp[0], dp[1]) < threshold
    regions = sk_label(weak, connectivity=1, background=0)
    pixel_labels = regions[cy, cx]
    _, inverse = np.unique(pixel_labels, return_inverse=True)
    return inverse.reshape(h, w).astype(np.intp)


def instance_maps(clusters):
    """One-hot maps of a cluster label image.

    Parameters
    ----------
    clusters : array-like of int, shape (h, w)
        Cluster indices ``0 .. K-1``.

    Returns
    -------
    `~numpy.ndarray` of bool, shape (K, h, w)
    """
    clusters = np.asarray(clusters)
    if clusters.ndim != 2 or clusters.dtype.kind not in "iu":
        raise ValueError(f"clusters must be a 2-D integer array, got {clusters.dtype} "
                         f"{clusters.shape}")
    if clusters.size == 0:
        return np.zeros((0, *clusters.shape), dtype=bool)
    n = int(clusters.max()) + 1
    return clusters[None] == np.arange(n)[:, None, None]


@dataclass(frozen=True)
class Instance:
    """One detected galaxy: its mask, class and score (immutable).

    Attributes
    ----------
    mask : `~numpy.ndarray` of bool, shape (H, W)
        Pixels of the galaxy (all of its components).
    class_id : int
        The class identifier given for this CAM (``class_ids[class_index]``).
    score : float
        ``class_score * peak``, in [0, 1].
    class_index : int
        Index of the CAM plane (0 .. k-1) that produced the detection.
    cluster : int
        Displacement cluster (0 .. K-1) that produced the detection.
    plane : int
        Index of the (class, cluster) plane, ``class_index * K + cluster``.
    class_score : float
        The classifier's probability for the class.
    peak : float
        Maximum of the globally normalised random-walk map inside the mask, in [0, 1].
    rw_map : `~numpy.ndarray` of float32, shape (H, W)
        The plane's random-walk map, normalised by the maximum over all planes of the image.
    cam_map : `~numpy.ndarray` of float32, shape (H, W)
        The plane's instance-wise CAM (class CAM times the cluster's one-hot map, not radio
        weighted, not propagated), upsampled x4; the map the paper multiplies with the infrared
        image to locate the host (`galcam.models.host_rules.find_host`).
    """

    mask: np.ndarray = field(repr=False)
    class_id: int
    score: float
    class_index: int
    cluster: int
    plane: int
    class_score: float
    peak: float
    rw_map: np.ndarray = field(repr=False)
    cam_map: np.ndarray = field(repr=False)

    @property
    def area(self):
        """Number of mask pixels."""
        return int(self.mask.sum())

    @property
    def bbox(self):
        """``(x_min, y_min, width, height)`` of the mask in pixels (COCO convention)."""
        ys, xs = np.nonzero(self.mask)
        if len(xs) == 0:
            return (0, 0, 0, 0)
        return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                int(ys.max() - ys.min() + 1))


class InstanceExtractor:
    """Turn CAMs, IRNet boundaries and displacements into per-galaxy masks.

    Configure once, call on the outputs of the networks for one image. The algorithm follows
    IRNet's instance step as used by Gupta et al. 2023 (section 3.2.2); see the module
    docstring for the differences from the authors' code.

    Parameters
    ----------
    n_iter : int, optional
        Iterations of the centroid search (`find_centroids`).
    cluster_threshold : float, optional
        Weak-displacement threshold in grid pixels (`cluster_centroids`).
    radius : float, optional
        Random-walk pair radius in grid pixels.
    beta : float, optional
        Random-walk affinity exponent.
    exp_times : int, optional
        The random walk has ``2**exp_times`` steps.
    background : {'global', 'plane', 'refcode'}, optional
        Background rule, applied to the random-walk maps after normalisation by their global
        maximum. ``'global'``: background where every plane is below ``bg_threshold`` (IRN's
        rule; scale free). ``'plane'``: a plane only claims pixels above ``bg_threshold`` times
        its own maximum (lets faint galaxies next to bright ones keep a mask). ``'refcode'``: the
        authors' level ``bg_sigma * std(instance CAM of class 0, cluster 0)`` (unbiased std over
        the stride-4 map, before radio weighting and random walk).
    bg_threshold : float, optional
        Fraction in (0, 1) for ``'global'`` and ``'plane'``.
    bg_sigma : float, optional
        Multiplier for ``'refcode'`` (5 in the reference).
    min_area : int, optional
        Fragments (4-connected parts of a plane's mask) smaller than this many image pixels are
        dropped from the mask. With ``split_components=True`` they are kept as detections with
        score 0 (the reference, which used ``0.01 * H * W``).
    split_components : bool, optional
        If True, every 4-connected component of a plane is a separate detection (the reference
        code); by default a plane gives one detection with all its components.
    radio_resample : {'exact', 'refcode'}, optional
        How a full-resolution radio weight map is brought to the stride-4 grid: ``'exact'``
        averages 4 x 4 blocks (edge-replicated padding), the inverse of the x4 upsampling of the
        masks; ``'refcode'`` uses bilinear interpolation with scale factor ``1/3.95`` and fails
        when that does not give the grid's size.
    """

    def __init__(
        self,
        *,
        n_iter=300,
        cluster_threshold=2.5,
        radius=5,
        beta=10,
        exp_times=8,
        background="global",
        bg_threshold=0.25,
        bg_sigma=5.0,
        min_area=64,
        split_components=False,
        radio_resample="exact",
    ):
        if int(n_iter) != n_iter or n_iter < 0:
            raise ValueError(f"n_iter must be an integer >= 0, got {n_iter!r}")
        if not (np.isfinite(cluster_threshold) and cluster_threshold > 0):
            raise ValueError(
                f"cluster_threshold must be > 0 grid pixels, got {cluster_threshold!r}"
            )
        if not (np.isfinite(radius) and radius > 1):
            raise ValueError(f"radius must be > 1 grid pixel, got {radius!r}")
        if not (np.isfinite(beta) and beta > 0):
            raise ValueError(f"beta must be > 0, got {beta!r}")
        if int(exp_times) != exp_times or not 0 <= exp_times <= 16:
            raise ValueError(f"exp_times must be an integer in 0..16, got {exp_times!r}")
        if background not in _BACKGROUND_METHODS:
            raise ValueError(f"background must be one of {_BACKGROUND_METHODS}, got {background!r}")
        if not (np.isfinite(bg_threshold) and 0 < bg_threshold < 1):
            raise ValueError(f"bg_threshold must be a fraction in (0, 1), got {bg_threshold!r}")
        if not (np.isfinite(bg_sigma) and bg_sigma > 0):
            raise ValueError(f"bg_sigma must be > 0, got {bg_sigma!r}")
        if int(min_area) != min_area or min_area < 0:
            raise ValueError(f"min_area must be an integer >= 0 (pixels), got {min_area!r}")
        if radio_resample not in _RADIO_RESAMPLE:
            raise ValueError(f"radio_resample must be one of {_RADIO_RESAMPLE}, got "
                             f"{radio_resample!r}")
        self.n_iter = int(n_iter)
        self.cluster_threshold = float(cluster_threshold)
        self.radius = float(radius)
        self.beta = float(beta)
        self.exp_times = int(exp_times)
        self.background = background
        self.bg_threshold = float(bg_threshold)
        self.bg_sigma = float(bg_sigma)
        self.min_area = int(min_area)
        self.split_components = bool(split_components)
        self.radio_resample = radio_resample

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"InstanceExtractor({opts})"

    # ------------------------------------------------------------------ helpers
    def _radio_on_grid(self, radio, grid, image_size):
        h4, w4 = grid
        radio = _to_numpy(radio, "radio_weight", ndim=2, dtype=np.float32)
        radio = np.clip(radio, 0, None)
        if radio.shape == (h4, w4):
            return torch.from_numpy(radio.copy())
        if radio.shape != tuple(image_size):
            raise ValueError(
                f"radio_weight must have the grid shape {(h4, w4)} or the image shape "
                f"{tuple(image_size)}, got {radio.shape}"
            )
        t = torch.from_numpy(radio.copy())[None, None]
        if self.radio_resample == "refcode":
            out = F.interpolate(t, scale_factor=1 / 3.95, mode="bilinear",
                                align_corners=False)[0, 0]
            if tuple(out.shape) != (h4, w4):
                raise ValueError(
                    f"radio_resample='refcode' (scale 1/3.95) gives {tuple(out.shape)} for an "
                    f"image of {tuple(image_size)}, not the grid {(h4, w4)}; use 'exact'"
                )
            return out
        H, W = image_size
        t = F.pad(t, (0, 4 * w4 - W, 0, 4 * h4 - H), mode="replicate")
        return F.avg_pool2d(t, 4)[0, 0]

    def _background_planes(self, rw_up, seeds_cam):
        """Return (bg level (scalar), planes to argmax over) per the background rule."""
        if self.background == "global":
            return self.bg_threshold, rw_up
        if self.background == "plane":
            pmax = rw_up.flatten(1).amax(dim=1)[:, None, None]
            return 0.0, torch.where(
                (rw_up >= self.bg_threshold * pmax) & (pmax > 0), rw_up, torch.zeros_like(rw_up)
            )
        ref = seeds_cam[0]
        std = float(ref.std()) if ref.numel() > 1 else 0.0
        return self.bg_sigma * std, rw_up

    # ------------------------------------------------------------------ main
    def __call__(self, cams, class_ids, class_scores, edge, dp, radio_weight, image_size):
        """Extract the instances of one image.

        Parameters
        ----------
        cams : array-like, shape (k, h4, w4)
            Class activation maps on the stride-4 grid (non-negative, usually max-normalised
            per class), one per candidate class; k may be 0.
        class_ids : sequence of int, length k
            Class identifier of each CAM (passed through to `Instance.class_id`).
        class_scores : sequence of float, length k
            Classifier probability of each class, in [0, 1].
        edge : array-like, shape (h4, w4)
            Boundary probabilities in [0, 1].
        dp : array-like, shape (2, h4, w4)
            Displacement field ``(dy, dx)`` in grid pixels.
        radio_weight : array-like of shape (h4, w4) or (H, W), or None
            Radio map used to weight the instance CAMs (negative values are set to 0); None for
            no weighting.
        image_size : tuple of int
            ``(H, W)`` of the image; ``(H - 1) // 4 + 1`` must equal ``h4`` (same for W).

        Returns
        -------
        list of `Instance`
            Sorted by decreasing score; empty when nothing is found.
        """
        cams = _to_numpy(cams, "cams", ndim=3, dtype=np.float32)
        k, h4, w4 = cams.shape
        class_ids = [int(c) for c in np.asarray(class_ids).reshape(-1)]
        class_scores = _to_numpy(class_scores, "class_scores", dtype=np.float64).reshape(-1)
        if len(class_ids) != k or len(class_scores) != k:
            raise ValueError(
                f"class_ids ({len(class_ids)}) and class_scores ({len(class_scores)}) must have "
                f"one entry per CAM ({k})"
            )
        if np.any((class_scores < 0) | (class_scores > 1)):
            raise ValueError("class_scores must be probabilities in [0, 1]")
        edge = _to_numpy(edge, "edge", dtype=np.float32)
        if edge.ndim == 3 and edge.shape[0] == 1:
            edge = edge[0]
        if edge.shape != (h4, w4):
            raise ValueError(f"edge must have the CAM grid shape {(h4, w4)}, got {edge.shape}")
        dp = _to_numpy(dp, "dp", ndim=3, dtype=np.float64)
        if dp.shape != (2, h4, w4):
            raise ValueError(f"dp must have shape {(2, h4, w4)}, got {dp.shape}")
        try:
            H, W = (int(v) for v in image_size)
        except (TypeError, ValueError):
            raise TypeError(f"image_size must be (H, W), got {image_size!r}") from None
        if ((H - 1) // 4 + 1, (W - 1) // 4 + 1) != (h4, w4):
            raise ValueError(
                f"image_size {(H, W)} does not match the stride-4 grid {(h4, w4)}: expected "
                f"(H - 1) // 4 + 1 == h4"
            )
        if k == 0:
            log.debug("no candidate classes: no instances")
            return []

        centroids = find_centroids(dp, n_iter=self.n_iter)
        clusters = cluster_centroids(centroids, dp, threshold=self.cluster_threshold)
        onehot = torch.from_numpy(instance_maps(clusters)).float()  # (K, h4, w4)
        n_clusters = onehot.shape[0]
        cam_t = torch.from_numpy(cams)
        inst_cam = cam_t[:, None] * onehot[None]  # (k, K, h4, w4)
        seeds = inst_cam.reshape(k * n_clusters, h4, w4)
        if radio_weight is not None:
            seeds = seeds * self._radio_on_grid(radio_weight, (h4, w4), (H, W))
        # planes with an all-zero seed stay zero: walk only the others (exact, and much
        # cheaper when many clusters do not overlap a class's CAM)
        active = seeds.flatten(1).amax(dim=1) > 0
        rw = torch.zeros_like(seeds)
        if active.any():
            rw[active] = propagate(seeds[active], torch.from_numpy(edge), radius=self.radius,
                                   beta=self.beta, exp_times=self.exp_times)
        rw_up = F.interpolate(rw[None], scale_factor=4, mode="bilinear",
                              align_corners=False)[0, :, :H, :W]
        gmax = float(rw_up.max())
        if not gmax > 0:
            log.debug("random-walk maps are empty: no instances")
            return []
        rw_up = rw_up / gmax
        bg, planes = self._background_planes(rw_up, inst_cam[0])
        stacked = torch.cat([torch.full((1, H, W), bg, dtype=planes.dtype), planes])
        winner = stacked.argmax(dim=0).numpy()  # 0 = background, p + 1 = plane p

        instances = []
        for p in range(k * n_clusters):
            mask = winner == p + 1
            if not mask.any():
                continue
            key, cluster = divmod(p, n_clusters)
            rw_p = rw_up[p].numpy()
            comps = sk_label(mask, connectivity=1, background=0)
            areas = np.bincount(comps.ravel())
            if self.split_components:
                parts = [(comps == c, areas[c] >= self.min_area) for c in range(1, len(areas))]
            else:
                keep = np.flatnonzero(areas >= self.min_area)
                keep = keep[keep > 0]
                if len(keep) == 0:
                    continue
                parts = [(np.isin(comps, keep), True)]
            cam_up = None
            for part, big in parts:
                peak = float(rw_p[part].max())
                score = float(class_scores[key]) * min(max(peak, 0.0), 1.0) if big else 0.0
                if cam_up is None:
                    cam_up = F.interpolate(inst_cam[key, cluster][None, None], scale_factor=4,
                                           mode="bilinear", align_corners=False)[0, 0, :H, :W]
                    cam_up = readonly(cam_up.numpy().astype(np.float32))
                instances.append(
                    Instance(
                        mask=readonly(np.ascontiguousarray(part)),
                        class_id=class_ids[key],
                        score=score,
                        class_index=key,
                        cluster=cluster,
                        plane=p,
                        class_score=float(class_scores[key]),
                        peak=peak,
                        rw_map=readonly(rw_p.astype(np.float32)),
                        cam_map=cam_up,
                    )
                )
        instances.sort(key=lambda inst: -inst.score)  # stable: ties keep plane order
        log.debug("%d clusters, %d classes -> %d instances", n_clusters, k, len(instances))
        return instances


def extract_instances(cams, class_ids, class_scores, edge, dp, radio_weight, image_size, **kwargs):
    """Extract the instances of one image (functional form of `InstanceExtractor`).

    ``kwargs`` are the options of `InstanceExtractor`; the other parameters and the result are
    those of `InstanceExtractor.__call__`.
    """
    return InstanceExtractor(**kwargs)(cams, class_ids, class_scores, edge, dp, radio_weight,
                                       image_size)

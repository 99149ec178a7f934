"""Infrared host position of a detected galaxy (numpy only).

Gupta et al. 2023, section 3.2.3: "we multiply [the instance-wise CAMs] by the corresponding
pre-processed infrared channel ... At the positions of each instance mask, we find pixels where
the activation maximizes in the infrared-weighted instance-wise CAMs." The authors' code (section
10 of its specification) always used the CAM of cluster 0 of class 0 and took the arg-max of
``CAM * mask * IR`` even when it is not positive, which puts the host at pixel (0, 0) when that
CAM does not overlap the mask. `find_host` uses the instance's own map, refines the peak to
sub-pixel precision and falls back, with a flag, to the CAM peak when the infrared image gives no
positive signal inside the mask.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["HostPeak", "find_host"]


class HostPeak(NamedTuple):
    """Host position of one galaxy (0-based pixel coordinates of the radio image)."""

    #: Column of the host, sub-pixel (0-based).
    x: float
    #: Row of the host, sub-pixel (0-based).
    y: float
    #: ``CAM * IR`` at the peak divided by ``max(CAM in mask) * max(IR in mask)``, in [0, 1];
    #: 1 when the brightest infrared pixel of the mask is also its CAM maximum. 0 for a fallback.
    score: float
    #: True when the infrared image had no positive signal in the mask and the CAM peak was used.
    fallback: bool


def _offset(m, c, p):
    """Vertex offset of a 3-point fit through values at -1, 0, +1 (in [-0.5, 0.5])."""
    if m > 0 and c > 0 and p > 0:  # Gaussian (log-parabola): exact for Gaussian peaks
        m, c, p = np.log(m), np.log(c), np.log(p)
    denom = m - 2 * c + p
    if not denom < 0:  # not a maximum (flat or convex): no refinement
        return 0.0
    return float(np.clip(0.5 * (m - p) / denom, -0.5, 0.5))


def _refine(prod, y, x):
    h, w = prod.shape
    dy = _offset(prod[y - 1, x], prod[y, x], prod[y + 1, x]) if 0 < y < h - 1 else 0.0
    dx = _offset(prod[y, x - 1], prod[y, x], prod[y, x + 1]) if 0 < x < w - 1 else 0.0
    return float(y) + dy, float(x) + dx


def find_host(instance_map, mask, ir, *, refine=True):
    """Locate the infrared host of one galaxy.

    The host is the maximum of ``instance_map * max(ir, 0)`` inside ``mask`` (the paper's
    IR-weighted instance-wise CAM), refined to sub-pixel precision with separable 3-point fits
    along x and y around the peak (a Gaussian fit, i.e. a parabola through the logarithms, when
    the three values are positive, else a parabola; offsets clipped to half a pixel; no
    refinement across the mask or image border). Ties are broken by the first pixel in
    row-major order. When the product is nowhere positive inside the mask (no infrared signal
    there, or the map does not overlap the mask), the peak of ``instance_map`` inside the mask
    is returned instead, with ``fallback=True`` and score 0.

    Parameters
    ----------
    instance_map : array-like of float, shape (H, W)
        The instance's own map (its instance-wise CAM, e.g. `Instance.cam_map`, or its
        random-walk map), non-negative.
    mask : array-like of bool, shape (H, W)
        The galaxy's mask; must not be empty.
    ir : array-like of float, shape (H, W)
        Preprocessed infrared image on the radio grid (background ~0; negative values are
        treated as 0; NaN as 0).
    refine : bool, optional
        Sub-pixel refinement (default True); False returns the integer peak pixel.

    Returns
    -------
    `HostPeak`
        ``(x, y, score, fallback)``, 0-based pixel coordinates.
    """
    cam = np.asarray(instance_map, dtype=np.float64)
    mask = np.asarray(mask)
    ir = np.asarray(ir, dtype=np.float64)
    if cam.ndim != 2:
        raise ValueError(f"instance_map must be 2-D (H, W), got shape {cam.shape}")
    if mask.shape != cam.shape or ir.shape != cam.shape:
        raise ValueError(
            f"instance_map {cam.shape}, mask {mask.shape} and ir {ir.shape} must have the same "
            f"shape"
        )
    if mask.dtype != bool:
        raise TypeError(f"mask must be a boolean array, got dtype {mask.dtype}")
    if not mask.any():
        raise ValueError("mask is empty: a host needs at least one mask pixel")
    if not np.all(np.isfinite(cam[mask])):
        raise ValueError("instance_map has non-finite values inside the mask")

    cam_in = np.where(mask, np.clip(cam, 0, None), 0.0)
    ir_in = np.where(mask & np.isfinite(ir), np.clip(np.nan_to_num(ir), 0, None), 0.0)
    prod = cam_in * ir_in
    if prod.max() > 0:
        surface, fallback = prod, False
        score = float(prod.max() / (cam_in.max() * ir_in.max()))
    else:
        # no positive IR signal under the map: use the instance map itself (mask pixels only;
        # a map that is 0 everywhere in the mask gives its first mask pixel)
        surface, fallback, score = np.where(mask, cam_in, -1.0), True, 0.0
    y, x = np.unravel_index(int(np.argmax(surface)), surface.shape)
    fy, fx = float(y), float(x)
    if refine and surface[y, x] > 0:
        fy, fx = _refine(np.where(mask, surface, 0.0), y, x)
    return HostPeak(x=float(fx), y=float(fy), score=min(max(score, 0.0), 1.0),
                    fallback=bool(fallback))

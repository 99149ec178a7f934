"""Host rules: the infrared host position of a detected galaxy (numpy only; the tool that
applies them to a result is `galcam.inference.HostFinder`).

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

from .._validation import check_positive

__all__ = ["HostPeak", "find_host", "find_core_host", "infrared_sources", "radio_centroid",
           "radio_rms_radius"]


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


def _centroid_and_rms(mask, radio):
    """Brightness-weighted centroid and rms radius of the mask's radio emission (pixels).

    Weights are the radio channel in the mask (NaN and negative values count as 0);
    without positive emission every mask pixel weighs the same.
    """
    mask = np.asarray(mask, dtype=bool)
    radio = np.clip(np.nan_to_num(np.asarray(radio, dtype=np.float64)), 0, None)
    if radio.shape != mask.shape:
        raise ValueError(f"mask {mask.shape} and radio {radio.shape} must have the same shape")
    if not mask.any():
        raise ValueError("mask is empty: a centroid needs at least one mask pixel")
    ys, xs = np.nonzero(mask)
    w = radio[ys, xs]
    if not w.sum() > 0:
        w = np.ones(xs.size)
    cx, cy = (w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()
    rms = np.sqrt((w * ((xs - cx) ** 2 + (ys - cy) ** 2)).sum() / w.sum())
    return float(cx), float(cy), float(rms)


def radio_centroid(mask, radio):
    """Brightness-weighted centroid of a galaxy's radio emission.

    Parameters
    ----------
    mask : bool array (H, W)
        The galaxy's mask (not empty).
    radio : float array (H, W)
        Pre-processed radio channel (>= 0; NaN treated as 0). Without positive emission in
        the mask, the mask's plain centroid is returned.

    Returns
    -------
    x, y : float
        0-based pixel position.
    """
    return _centroid_and_rms(mask, radio)[:2]


def infrared_sources(ir, *, min_pixels=5, smooth=1.0):
    """Infrared sources of a pre-processed infrared channel.

    Sources are the local maxima of the infrared channel, smoothed with a Gaussian of
    ``smooth`` pixels (sigma), that lie in 8-connected islands of positive pixels (the
    paper's infrared preprocessing keeps pixels above 3 sigma) of at least ``min_pixels``
    pixels. Every local maximum is a source, so that blended galaxies sharing one island
    (a host beside a brighter neighbour) are kept apart. The position of a source is the
    brightness-weighted centroid of the 3 x 3 smoothed pixels around its maximum.

    Parameters
    ----------
    ir : array-like of float, shape (H, W)
        Pre-processed infrared channel (background 0; NaN and negative values count as 0).
    min_pixels : int, optional
        Smallest island, in pixels (5, as the paper's preprocessing).
    smooth : float, optional
        Gaussian sigma of the smoothing, in pixels (default 1; 0 for none), which keeps
        noise spikes on a source from counting as sources of their own.

    Returns
    -------
    sources : `~numpy.ndarray`, shape (n, 3)
        ``x, y, peak``: 0-based pixels and the smoothed value at the maximum, brightest
        first.
    """
    from scipy import ndimage
    from skimage.feature import peak_local_max

    if not (np.isfinite(smooth) and smooth >= 0):
        raise ValueError(f"smooth: expected a non-negative number of pixels, got {smooth!r}")
    ir = np.clip(np.nan_to_num(np.asarray(ir, dtype=np.float64)), 0, None)
    if ir.ndim != 2:
        raise ValueError(f"ir must be 2-D (H, W), got shape {ir.shape}")
    labels, n = ndimage.label(ir > 0, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros((0, 3))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_pixels
    keep[0] = False
    labels = np.where(keep[labels], labels, 0)
    surface = ndimage.gaussian_filter(ir, smooth) if smooth > 0 else ir
    surface = np.where(labels > 0, surface, 0.0)
    peaks = peak_local_max(surface, min_distance=1, threshold_abs=0.0, exclude_border=False,
                           labels=labels)
    h, w = ir.shape
    out = []
    for y0, x0 in peaks:  # all > 0 (threshold_abs is a strict bound)
        ya, yb, xa, xb = max(y0 - 1, 0), min(y0 + 2, h), max(x0 - 1, 0), min(x0 + 2, w)
        win = surface[ya:yb, xa:xb]
        gy, gx = np.indices(win.shape)
        out.append((xa + (win * gx).sum() / win.sum(), ya + (win * gy).sum() / win.sum(),
                    surface[y0, x0]))
    out = np.array(out, dtype=np.float64).reshape(-1, 3)
    return out[np.argsort(-out[:, 2], kind="stable")]


def radio_rms_radius(mask, radio):
    """Brightness-weighted rms radius of a galaxy's radio emission about its centroid.

    ``sqrt(sum(w * r^2) / sum(w))`` with ``w`` the radio channel in the mask and ``r`` the
    distance to `radio_centroid`, in pixels: about the beam's sigma for an unresolved
    source, about half the lobe separation for a double.
    """
    return _centroid_and_rms(mask, radio)[2]


def find_core_host(mask, ir, radio, *, max_distance=None, search_scale=1.25, min_search=3.0,
                   min_pixels=5, radio_weight=0.5):
    """The infrared source at the radio centre of a galaxy, favouring one on a radio core.

    The rule an astronomer applies by eye when nothing better is known: the galaxy's
    centre is the brightness-weighted centroid of its radio emission (`radio_centroid`;
    between the lobes of a double, on the core of a compact or core-brightened source),
    and its host is an infrared source (`infrared_sources`) close to that centre. How
    close depends on how well the centre is known: the search radius is ``s = max(min_search,
    search_scale * R)`` with ``R`` the galaxy's brightness-weighted rms radius
    (`radio_rms_radius`), so a compact source only accepts an infrared counterpart within
    a few pixels while a wide double, whose centroid is pulled towards its brighter lobe,
    searches further. Among the sources inside the radius the host minimises

        ``(d / s)^2 - radio_weight * rho``

    with ``d`` the source's distance from the centroid and ``rho`` the radio brightness at
    the source relative to the galaxy's brightest point (the radio channel in the mask,
    smoothed with a Gaussian of 1 pixel; 1 on the radio peak, 0 off the emission): hosts
    of radio galaxies sit on their radio cores, so of two sources at similar distances
    the one on bright radio emission wins, and ``radio_weight=0`` takes the nearest.
    Without an infrared source inside the radius (a host below the infrared threshold)
    the radio centroid itself is returned, with ``fallback=True``.

    Parameters
    ----------
    mask : bool array (H, W)
        The galaxy's mask.
    ir, radio : float arrays (H, W)
        Pre-processed infrared and radio channels on the same grid.
    max_distance : float, optional
        A fixed search radius in pixels instead of the size-dependent one (``numpy.inf``
        for no limit).
    search_scale : float, optional
        Search radius in units of the rms radius (default 1.25). With ``max_distance``
        the size-dependent radius still sets the distance scale ``s`` of the choice.
    min_search : float, optional
        Smallest search radius, in pixels (default 3).
    min_pixels : int, optional
        Smallest infrared island, in pixels (5, as the paper's preprocessing).
    radio_weight : float, optional
        Weight of the radio brightness at a candidate (default 0.5; >= 0).

    Returns
    -------
    `HostPeak`
        ``score = exp(-d^2 / (2 * 3^2))`` with ``d`` the distance to the centroid in
        pixels (1 on the centroid; 0 for a fallback).

    Notes
    -----
    The first defaults (``search_scale=0.75``, nearest source) were chosen on galcam's
    simulated validation set (seed 3003) with the true masks: hosts within 3" of the
    truth for 0.61 of the galaxies, against 0.50 for the nearest source of one position
    per infrared island without a search radius (0.66 and 0.54 on the test set, seed
    2002; ``benchmarks/bench_hosts.py``). The current ones (``search_scale=1.25``,
    ``radio_weight=0.5``) were chosen with the bundled model's own masks on the
    validation sets of 100 and 400 cutouts (seeds 3003 and 4004; hosts within 3" 0.556
    -> 0.586 and 0.535 -> 0.577) and checked on EMU-like cutouts of another generator
    (0.713 -> 0.760); with the true masks 0.610 -> 0.619. See :doc:`/inference`.
    """
    mask = np.asarray(mask, dtype=bool)
    ir = np.asarray(ir, dtype=np.float64)
    if ir.shape != mask.shape:
        raise ValueError(f"mask {mask.shape} and ir {ir.shape} must have the same shape")
    check_positive(max_distance, "max_distance", allow_inf=True, allow_none=True,
                   expected="a positive number of pixels (or inf) or None")
    for name, value in (("search_scale", search_scale), ("min_search", min_search),
                        ("radio_weight", radio_weight)):
        check_positive(value, name, allow_zero=True, expected="a non-negative finite number")
    cx, cy, rms = _centroid_and_rms(mask, radio)
    scale = max(float(min_search), float(search_scale) * rms)
    radius = scale if max_distance is None else float(max_distance)
    sources = infrared_sources(ir, min_pixels=min_pixels)
    if len(sources):
        d = np.hypot(sources[:, 0] - cx, sources[:, 1] - cy)
        inside = np.flatnonzero(d <= radius)
        if inside.size:
            cost = (d[inside] / scale) ** 2
            if radio_weight > 0:
                cost = cost - radio_weight * _radio_at(mask, radio, sources[inside, :2])
            best = int(inside[np.argmin(cost)])
            return HostPeak(x=float(sources[best, 0]), y=float(sources[best, 1]),
                            score=float(np.exp(-d[best] ** 2 / 18.0)), fallback=False)
    return HostPeak(x=float(cx), y=float(cy), score=0.0, fallback=True)


def _radio_at(mask, radio, xy):
    """Radio brightness at positions ``xy`` relative to the galaxy's brightest point.

    The radio channel inside the mask (0 outside), smoothed with a Gaussian of 1 pixel,
    at the nearest pixels of ``xy``, divided by its maximum: 1 on the galaxy's radio peak,
    0 outside its emission.
    """
    from scipy import ndimage

    inside = np.where(mask, np.clip(np.nan_to_num(np.asarray(radio, dtype=np.float64)), 0, None),
                      0.0)
    smooth = ndimage.gaussian_filter(inside, 1.0)
    top = smooth.max()
    if not top > 0:
        return np.zeros(len(xy))
    h, w = smooth.shape
    xi = np.clip(np.rint(xy[:, 0]).astype(int), 0, w - 1)
    yi = np.clip(np.rint(xy[:, 1]).astype(int), 0, h - 1)
    return smooth[yi, xi] / top

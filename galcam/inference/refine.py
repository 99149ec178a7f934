"""Radio islands: snapping instance masks to them, grouping them, telling resolved from not.

`island_votes` and `group_islands` make the galaxies of ``mask_mode='grouped'`` (see
`galcam.inference.WeakSegmenter`); `point_source_area` and `island_resolution` compare an
island with an unresolved source of the same peak signal-to-noise, for the grouping and
the score. The rest of this note is about snapping (``mask_mode='islands'``).

The truth masks of Gupta et al. (2023, section 2.3.3) are the pixels above 3 sigma of a
galaxy's components, and the network input is zero outside the >= 5-pixel islands above
3 sigma (section 3.1). The random-walk masks of IRNet are smooth, stride-4 maps: they
decide *which* emission belongs together, but their edges follow the walk, not the
emission. With ``mask_mode="islands"`` galcam therefore lets the network group and the
islands draw: every island is given to the instance that claims it most strongly, and an
instance's mask becomes the union of its islands.

Rule (deterministic, independent of the order of the instances):

1. islands are the connected components (8-connectivity) of the non-zero pixels of the
   preprocessed radio channel;
2. instance ``i`` claims island ``j`` with strength ``f_ij * s_i``, where ``f_ij`` is the
   fraction of the island's pixels inside the instance's random-walk mask and ``s_i`` its
   score; an island goes to the instance of largest strength, provided ``f_ij >=
   min_overlap`` (islands that no mask covers well enough stay unassigned);
3. an instance left without islands is dropped (it holds no emission above 3 sigma).
"""

import numpy as np
from scipy import ndimage

__all__ = ["island_labels", "snap_to_islands", "island_votes", "group_islands", "island_resolution",
           "point_source_area"]

_EIGHT = np.ones((3, 3), dtype=bool)


def island_labels(radio01):
    """Label the islands (non-zero pixels, 8-connected) of a preprocessed radio channel.

    Parameters
    ----------
    radio01 : array-like (H, W)
        The preprocessed radio channel: > 0 inside islands, 0 elsewhere.

    Returns
    -------
    labels : `~numpy.ndarray` of int32 (H, W)
        0 outside islands, 1..N inside.
    n : int
        The number of islands.
    """
    radio01 = np.asarray(radio01)
    if radio01.ndim != 2:
        raise ValueError(f"radio01: expected a 2-D array, got shape {radio01.shape}")
    inside = np.isfinite(radio01) & (radio01 > 0)
    labels, n = ndimage.label(inside, structure=_EIGHT)
    return labels.astype(np.int32), int(n)


def snap_to_islands(masks, scores, labels, n_islands, *, min_overlap=0.3):
    """Replace instance masks by the union of the radio islands they claim.

    Parameters
    ----------
    masks : sequence of bool arrays (H, W)
        The instances' masks (e.g. from the random walk).
    scores : sequence of float
        The instances' scores, in the same order.
    labels : int array (H, W)
        Island labels from `island_labels`.
    n_islands : int
        Number of islands in ``labels``.
    min_overlap : float, optional
        Smallest fraction of an island's pixels that must lie in a mask for the mask to
        claim the island.

    Returns
    -------
    snapped : list of (bool array or None)
        The new masks, in the input order; None for an instance that claimed no island.
    """
    if not 0.0 < min_overlap <= 1.0:
        raise ValueError(f"min_overlap: expected a number in (0, 1], got {min_overlap!r}")
    masks = [np.asarray(m, dtype=bool) for m in masks]
    scores = np.asarray(scores, dtype=np.float64)
    if len(masks) != len(scores):
        raise ValueError("masks and scores must have the same length")
    if not masks:
        return []
    if n_islands == 0:
        return [None] * len(masks)
    labels = np.asarray(labels)
    sizes = np.bincount(labels.ravel(), minlength=n_islands + 1).astype(np.float64)
    sizes[0] = np.inf  # label 0 is not an island
    # fraction of every island inside every mask: (n_instances, n_islands + 1)
    frac = np.stack(
        [np.bincount(labels[m], minlength=n_islands + 1) / sizes for m in masks]
    )
    frac[:, 0] = 0.0
    strength = np.where(frac >= min_overlap, frac * np.maximum(scores, 1e-12)[:, None], -1.0)
    # ties are broken by the lower instance index: stable and order-documented
    owner = np.argmax(strength, axis=0)
    claimed = strength[owner, np.arange(n_islands + 1)] > 0
    claimed[0] = False
    snapped = []
    for i in range(len(masks)):
        mine = np.flatnonzero(claimed & (owner == i))
        if mine.size == 0:
            snapped.append(None)
        else:
            snapped.append(np.isin(labels, mine))
    return snapped


def island_votes(labels, n_islands, radio01, dp):
    """Where the islands' pixels point: the displacement-field vote of every island.

    IRNet's displacement field (Ahn, Cho & Kwak 2019; Gupta et al. 2023, section 3.2.2)
    moves every pixel to the centroid of the instance it belongs to. The vote of an island
    is the radio-brightness-weighted mean of ``pixel + displacement`` over its pixels.

    Parameters
    ----------
    labels : int array (H, W)
        Island labels from `island_labels`.
    n_islands : int
    radio01 : float array (H, W)
        The preprocessed radio channel (weights).
    dp : float array (2, h4, w4)
        Displacement ``(dy, dx)`` on the stride-4 grid, in grid pixels.

    Returns
    -------
    votes : `~numpy.ndarray` (n_islands, 2)
        ``(x, y)`` in image pixels of island ``1 .. n`` (row ``k`` is island ``k + 1``).
    """
    import torch
    import torch.nn.functional as F

    labels = np.asarray(labels)
    h, w = labels.shape
    dp = np.asarray(dp, dtype=np.float32)
    if dp.ndim != 3 or dp.shape[0] != 2 or dp.shape[1:] != ((h - 1) // 4 + 1, (w - 1) // 4 + 1):
        raise ValueError(f"dp: expected shape (2, {(h - 1) // 4 + 1}, {(w - 1) // 4 + 1}), "
                         f"got {dp.shape}")
    up = F.interpolate(torch.from_numpy(dp)[None], scale_factor=4, mode="bilinear",
                       align_corners=False)[0, :, :h, :w].numpy() * 4.0
    yy, xx = np.indices((h, w))
    wt = np.clip(np.nan_to_num(np.asarray(radio01, dtype=np.float64)), 0, None)
    wt = np.where(labels > 0, np.maximum(wt, 1e-6), 0.0)
    flat = labels.ravel()
    total = np.bincount(flat, weights=wt.ravel(), minlength=n_islands + 1)[1:]
    vx = np.bincount(flat, weights=(wt * (xx + up[1])).ravel(), minlength=n_islands + 1)[1:]
    vy = np.bincount(flat, weights=(wt * (yy + up[0])).ravel(), minlength=n_islands + 1)[1:]
    total = np.where(total > 0, total, 1.0)
    return np.stack([vx / total, vy / total], axis=1)


def group_islands(votes, *, link_radius, isolated=None):
    """Group islands whose displacement votes lie within ``link_radius`` of each other.

    Single linkage: two islands are in one group when a chain of islands connects them,
    each vote within ``link_radius`` pixels of the next
    (`scipy.sparse.csgraph.connected_components`). Islands flagged in ``isolated`` are
    never linked: each is a group of its own.

    Parameters
    ----------
    votes : array-like (n_islands, 2)
        ``(x, y)`` votes of the islands (`island_votes`).
    link_radius : float
        In pixels.
    isolated : array-like of bool (n_islands,), optional
        Islands kept out of every link (e.g. unresolved sources, `island_resolution`).

    Returns
    -------
    groups : `~numpy.ndarray` of int (n_islands,)
        Group index ``0 .. G-1`` of island ``k + 1``.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    votes = np.asarray(votes, dtype=np.float64).reshape(-1, 2)
    if not link_radius > 0:
        raise ValueError(f"link_radius: expected a positive number of pixels, got {link_radius!r}")
    n = len(votes)
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    pairs = cKDTree(votes).query_pairs(link_radius, output_type="ndarray")
    if isolated is not None:
        isolated = np.asarray(isolated, dtype=bool)
        if isolated.shape != (n,):
            raise ValueError(f"isolated: expected {n} flags (one per island), got shape "
                             f"{isolated.shape}")
        pairs = pairs[~(isolated[pairs[:, 0]] | isolated[pairs[:, 1]])]
    graph = csr_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, groups = connected_components(graph, directed=False)
    return groups.astype(np.intp)


def point_source_area(peak_snr, beam_sigma2, *, n_sigma=3.0):
    """Area of the island of an unresolved source: the beam above ``n_sigma``.

    A point source of peak signal-to-noise ``p`` looks like the beam, an elliptical
    Gaussian of standard deviations ``s_maj, s_min`` (pixels); its pixels above
    ``n_sigma`` form an ellipse of area ``2 pi s_maj s_min ln(p / n_sigma)`` (0 for
    ``p <= n_sigma``).

    Parameters
    ----------
    peak_snr : float or array-like
        Peak signal-to-noise of the source(s).
    beam_sigma2 : float
        ``s_maj * s_min`` of the beam in square pixels (``FWHM / (2 sqrt(2 ln 2))`` each).
    n_sigma : float, optional
        Island threshold in units of the noise (3).

    Returns
    -------
    area : float or `~numpy.ndarray`
        In square pixels.
    """
    if not (np.isfinite(beam_sigma2) and beam_sigma2 > 0):
        raise ValueError(f"beam_sigma2: expected a positive number of square pixels, got "
                         f"{beam_sigma2!r}")
    if not (np.isfinite(n_sigma) and n_sigma > 0):
        raise ValueError(f"n_sigma: expected a positive number, got {n_sigma!r}")
    peak = np.asarray(peak_snr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(np.maximum(peak, n_sigma) / n_sigma)
    return 2.0 * np.pi * float(beam_sigma2) * np.nan_to_num(ratio, nan=0.0)


def island_resolution(labels, n_islands, snr, beam_sigma2, *, n_sigma=3.0):
    """How much larger than a point source every island is.

    The classical test of whether a radio source is resolved compares it with the beam
    (e.g. the ratio of integrated to peak flux density in survey catalogues). Here an
    island's area above the island threshold is compared with the area a point source
    of the same peak signal-to-noise would cover (`point_source_area`): about 1 for an
    unresolved source whatever its brightness, more for extended emission.

    Parameters
    ----------
    labels : int array (H, W)
        Island labels from `island_labels`.
    n_islands : int
    snr : float array (H, W)
        The radio image in units of its noise (e.g.
        `galcam.preprocessing.EncodedCutout.radio_snr`).
    beam_sigma2 : float
        ``s_maj * s_min`` of the beam in square pixels.
    n_sigma : float, optional
        The islands' threshold in units of the noise (3).

    Returns
    -------
    area, point_area : `~numpy.ndarray` (n_islands,)
        Each island's area and the area of a point source of its peak signal-to-noise,
        in square pixels (row ``k`` is island ``k + 1``).
    """
    labels = np.asarray(labels)
    snr = np.asarray(snr, dtype=np.float64)
    if snr.shape != labels.shape:
        raise ValueError(f"snr: expected shape {labels.shape} (the labels'), got {snr.shape}")
    if n_islands == 0:
        return np.zeros(0), np.zeros(0)
    idx = np.arange(1, n_islands + 1)
    area = np.bincount(labels.ravel(), minlength=n_islands + 1)[1:].astype(np.float64)
    peak = np.asarray(ndimage.maximum(np.nan_to_num(snr), labels, idx), dtype=np.float64)
    return area, point_source_area(peak, beam_sigma2, n_sigma=n_sigma)

"""The instance step: from the networks' outputs on one tile to galaxies.

`GalaxyGrouper` is the tool: configured once (options in sky units, converted to the
model's pixels inside), it turns the evidence of one tile (`TileEvidence`: the CAMs,
class probabilities, IRNet's boundaries and displacements, the pre-processed radio
channel) into galaxies (`TileGalaxy`: one mask per galaxy over all its components, a
class and a score). How the galaxies are made is a strategy, a plug-in of the grouper
(`GroupingStrategy`; registered by name in `GROUPING_STRATEGIES`):

``'rules'`` (`RuleGrouping`, the default)
    radio islands grouped by the classical finder's rules (resolved islands that nearly
    touch, aligned doubles); classes and scores from the networks as in ``'grouped'``.
``'grouped'`` (`IslandVoteGrouping`)
    radio islands grouped by where IRNet's displacement field sends them.
``'islands'`` / ``'walk'`` (`RandomWalkGrouping`)
    IRNet's instance step with the random walk of the paper (Gupta et al. 2023, section
    3.2.2), its masks snapped to the radio islands or kept as they are.

A new strategy (for example a second-stage model trained on pseudo-labels) is a subclass
of `GroupingStrategy` registered with `register_strategy`; nothing else changes.

The functions below are the building blocks of the island-based strategies.
`island_votes` and `group_islands` make the galaxies of ``'grouped'``;
`point_source_area` and `island_resolution` compare an island with an unresolved source
of the same peak signal-to-noise, for the grouping and the score; `snap_to_islands` is
the last step of ``'islands'``, as follows.

The truth masks of Gupta et al. (2023, section 2.3.3) are the pixels above 3 sigma of a
galaxy's components, and the network input is zero outside the >= 5-pixel islands above
3 sigma (section 3.1). The random-walk masks of IRNet are smooth, stride-4 maps: they
decide *which* emission belongs together, but their edges follow the walk, not the
emission. With ``'islands'`` galcam therefore lets the network group and the
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

import functools
import math
import numbers
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from scipy import ndimage

from .._validation import check_fraction, check_positive, check_positive_int

__all__ = ["GalaxyGrouper", "GROUPER_DEFAULTS", "GroupingSettings", "GroupingStrategy",
           "IslandVoteGrouping", "RandomWalkGrouping", "TileEvidence", "TileGalaxy",
           "GROUPING_STRATEGIES", "register_strategy", "galaxy_class_probabilities",
           "island_labels", "snap_to_islands", "island_votes", "group_islands",
           "island_resolution", "point_source_area", "galaxies_from_groups", "RuleGrouping"]

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


# ------------------------------------------------------------------------ the tool
#: Pixel scale (arcsec) at which sky-unit options are converted for a model that records
#: none: a model trained on PNG cutouts in the paper's encoding, whose EMU images have
#: 2" pixels.
ASSUMED_PIXEL_SCALE = 2.0


@dataclass(frozen=True, eq=False)
class TileEvidence:
    """What the networks and the encoder give the instance step for one tile.

    Parameters
    ----------
    cams : `~numpy.ndarray` (C, h4, w4)
        Multi-scale class activation maps on the stride-4 grid, each divided by its
        maximum (`galcam.models.multiscale_cams`).
    probabilities : `~numpy.ndarray` (C,)
        Class probabilities of the tile.
    edge : `~numpy.ndarray` (h4, w4)
        IRNet's boundary probabilities.
    displacement : `~numpy.ndarray` (2, h4, w4)
        IRNet's displacement field ``(dy, dx)`` in grid pixels.
    radio01 : `~numpy.ndarray` (H, W)
        The pre-processed radio channel in [0, 1]: zero outside the radio islands.
    snr : `~numpy.ndarray` (H, W) or None
        The radio tile in units of its noise (None when unknown: a PNG input).
    beam_sigma2 : float or None
        ``s_maj * s_min`` of the beam's standard deviations in square pixels of the tile
        (None when unknown).
    n_sigma : float
        The islands' threshold in units of the noise.
    """

    cams: np.ndarray
    probabilities: np.ndarray
    edge: np.ndarray
    displacement: np.ndarray
    radio01: np.ndarray
    snr: np.ndarray | None = None
    beam_sigma2: float | None = None
    n_sigma: float = 3.0

    @property
    def size(self):
        """``(height, width)`` of the tile in pixels."""
        return tuple(self.radio01.shape)


@dataclass(frozen=True, eq=False)
class TileGalaxy:
    """One galaxy found in a tile by the instance step.

    Parameters
    ----------
    mask : `~numpy.ndarray` of bool (H, W)
        Its pixels in the tile (all of its components).
    class_index : int
        Index of its class in the model's classes.
    score : float
        Its score in [0, 1] (the strategy's definition).
    cam_map : `~numpy.ndarray` (H, W)
        The instance map the host finder weighs the infrared image with.
    class_probabilities : `~numpy.ndarray` (C,) or None
        The galaxy's probability of every class, summing to one, whose largest is that of
        ``class_index`` (`galaxy_class_probabilities`); None when a strategy gives none
        (the tile's probabilities are then reported).
    """

    mask: np.ndarray
    class_index: int
    score: float
    cam_map: np.ndarray
    class_probabilities: np.ndarray | None = None


def galaxy_class_probabilities(probabilities, cams, mask, keys):
    """The class probabilities of one galaxy, from the tile's and the galaxy's own CAMs.

    The classifier's probabilities ``p_c`` belong to the whole tile (multi-label: a tile
    with an FR-I and an FR-II has both near 1). A galaxy's own evidence for class ``c`` is
    ``s_c``, the largest value of the class's max-normalised CAM (clipped to [0, 1]) over
    its pixels. Its probabilities are ``p_c s_c / sum_k p_k s_k`` over the candidate
    classes ``keys`` (0 for the others): they sum to one and their largest is the class
    galcam gives the galaxy. Without any CAM over the galaxy (all ``s_k`` 0), ``p_c``
    normalised over ``keys``.

    Parameters
    ----------
    probabilities : array-like (C,)
        The tile's class probabilities.
    cams : array-like (C, H, W)
        The CAMs upsampled to the tile's pixels.
    mask : bool array (H, W)
        The galaxy's pixels.
    keys : array-like of int
        The candidate classes (those the classifier finds present).

    Returns
    -------
    probabilities : `~numpy.ndarray` (C,)
    """
    keys = np.asarray(keys, dtype=np.intp)
    p = np.asarray(probabilities, dtype=np.float64)
    out = np.zeros(p.shape, dtype=np.float64)
    if keys.size == 0:
        return out
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size:  # only the mask's bounding box of the CAMs is looked at (same values)
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        support = np.clip(np.asarray(cams)[:, box[0], box[1]][keys][:, mask[box]], 0, 1)
    else:
        support = np.zeros((keys.size, 0))
    evidence = p[keys] * (support.max(axis=1) if support.shape[1] else 0.0)
    total = evidence.sum()
    if not total > 0:
        evidence, total = p[keys], p[keys].sum()
    out[keys] = evidence / total if total > 0 else 1.0 / keys.size
    return out


@dataclass(frozen=True)
class GroupingSettings:
    """The options of a `GalaxyGrouper` in pixels of the model's grid (what strategies read).

    ``link_radius`` in pixels, ``area_scale`` in square pixels; ``resolution_scale`` and
    ``unresolved_ratio`` are None when switched off; ``extractor`` is a
    `galcam.models.InstanceExtractor` options dict (None: its defaults).
    """

    method: str
    link_radius: float
    area_scale: float
    resolution_scale: float | None
    unresolved_ratio: float | None
    class_threshold: float
    min_classes: int
    island_overlap: float
    rule_class_weight: float
    radio_weight: str | None
    extractor: dict | None
    classes: tuple | None = None

    @property
    def uses_resolution(self):
        """Whether the islands' resolution enters the grouping or the score."""
        return GROUPING_STRATEGIES[self.method].uses_resolution and (
            self.resolution_scale is not None or self.unresolved_ratio is not None)


class GroupingStrategy:
    """How galaxies are made from a tile's evidence: the plug-in of a `GalaxyGrouper`.

    A subclass sets ``name`` and implements ``__call__(evidence, settings)``, returning a
    list of `TileGalaxy`; `register_strategy` makes it available as
    ``GalaxyGrouper(method=name)``.
    """

    name = None
    #: Whether the strategy uses the islands' resolution (signal-to-noise and beam).
    uses_resolution = False

    def __call__(self, evidence, settings):  # pragma: no cover - interface
        raise NotImplementedError


def _upsampled_cams(cams, size):
    """The stride-4 CAMs upsampled x4 (bilinear) and cropped to ``size``."""
    import torch
    import torch.nn.functional as F

    th, tw = size
    return F.interpolate(torch.from_numpy(np.ascontiguousarray(cams))[None], scale_factor=4,
                         mode="bilinear", align_corners=False)[0, :, :th, :tw].numpy()


class IslandVoteGrouping(GroupingStrategy):
    """Radio islands grouped by where IRNet's displacement field sends them.

    For one tile (galcam's own rule, built on the paper's IRNet; the steps of the
    inference docs):

    1. islands: 8-connected components of the non-zero pixels of the pre-processed radio
       channel (> 3 sigma, >= 5 pixels; `island_labels`);
    2. votes: the vote of an island is the brightness-weighted mean of ``pixel +
       displacement`` (`island_votes`);
    3. galaxies: islands whose votes lie within ``link_radius`` of each other, directly or
       through a chain of islands, form one galaxy whose mask is the union of its islands
       (`group_islands`); an unresolved island (area below ``unresolved_ratio`` times
       that of a point source of its peak signal-to-noise, `island_resolution`) is a
       group of its own;
    4. class: among the classes the classifier finds present (probability >=
       ``class_threshold``, at least the most probable one), the one of largest ``p_c *
       s_c``, with ``s_c`` the maximum of the class's CAM over the galaxy's pixels (the
       largest ``p_c`` when no CAM reaches the galaxy); the galaxy's class probabilities
       are the ``p_c s_c`` normalised to sum to one (`galaxy_class_probabilities`);
    5. score: ``(1 - exp(-A / area_scale)) * (1 - exp(-(R - 1) / resolution_scale)) *
       (1 + p_c * m_c) / 2``, ``A`` the mask area, ``m_c`` the mean of the CAM over the
       galaxy and ``R`` its area over that of point sources of its islands' peak
       signal-to-noise (the resolution term is left out when the noise level or the
       beam is unknown, or when switched off).

    Every group is reported (nothing is dropped): evaluation sees every prediction with
    its score, and a catalogue applies a score threshold.
    """

    name = "grouped"
    uses_resolution = True

    def __call__(self, evidence, settings):
        labels, n = island_labels(evidence.radio01)
        if n == 0:
            return []
        votes = island_votes(labels, n, evidence.radio01, evidence.displacement)
        area = point = isolated = None
        if settings.uses_resolution and evidence.snr is not None \
                and evidence.beam_sigma2 is not None:
            # island areas against those of point sources of the same peak S/N
            area, point = island_resolution(labels, n, evidence.snr, evidence.beam_sigma2,
                                            n_sigma=evidence.n_sigma)
            if settings.unresolved_ratio is not None:
                isolated = area < settings.unresolved_ratio * np.maximum(point, 1.0)
        groups = group_islands(votes, link_radius=settings.link_radius, isolated=isolated)
        return galaxies_from_groups(evidence, settings, labels, groups, area, point)


@functools.lru_cache(maxsize=8)
def _rule_finder(n_sigma):
    """The classical finder (default rules) at an island threshold, made once, not per tile."""
    from ..baseline import ClassicalFinder

    return ClassicalFinder(n_sigma=n_sigma)


def _beam_fwhm(evidence):
    """The beam's FWHM in tile pixels (geometric mean of the axes) from ``beam_sigma2``."""
    return math.sqrt(float(evidence.beam_sigma2)) * 2.0 * math.sqrt(2.0 * math.log(2.0))


def galaxies_from_groups(evidence, settings, labels, groups, area=None, point=None):
    """Steps 4 and 5 of `IslandVoteGrouping`: the class and score of every group of islands.

    Parameters
    ----------
    evidence : `TileEvidence`
    settings : `GroupingSettings`
    labels : int array (H, W)
        Island labels from `island_labels`.
    groups : int array (n_islands,)
        The group of every island (row ``k`` is island ``k + 1``), numbered from 0.
    area, point : array (n_islands,), optional
        The islands' areas and those of point sources of their peak S/N
        (`island_resolution`); without them the score has no resolution term.

    Returns
    -------
    list of `TileGalaxy`
        One per group, its mask the union of its islands.

    Notes
    -----
    With ``settings.rule_class_weight`` ``w > 0``, the model's class names
    (``settings.classes``) and a known noise level and beam, the class also listens to
    the classical a/b rule
    (`galcam.baseline.ClassicalFinder.classify_snr` on the group's mask): the galaxy's
    probabilities ``q_c`` (over the candidate classes, floored at 0.001) become
    ``q_c exp(w [c = rule class])``, normalised, and the class is their largest. The
    score does not change. ``w = 0.5`` was chosen on validation sets of three generators
    (``benchmarks/bench_class_fusion.py``).
    """
    from ..models import select_classes

    cam_up = _upsampled_cams(evidence.cams, evidence.size)
    keys = select_classes(evidence.probabilities, threshold=settings.class_threshold,
                          min_classes=max(1, settings.min_classes))
    key_probs = np.asarray(evidence.probabilities, dtype=np.float64)[keys]
    key_cams = cam_up[keys]
    pixel_group = np.concatenate([[-1], groups])[labels]  # -1 outside the islands
    resolved = None
    if settings.resolution_scale is not None and area is not None:
        area_g = np.bincount(groups, weights=area)
        point_g = np.bincount(groups, weights=point)
        ratio = area_g / np.maximum(point_g, 1.0)
        resolved = 1.0 - np.exp(-np.clip(ratio - 1.0, 0.0, None)
                                / settings.resolution_scale)
    rules = None
    if (settings.rule_class_weight > 0 and settings.classes is not None
            and evidence.snr is not None and evidence.beam_sigma2 is not None):
        from ..datasets.classes import normalize_class_name

        rules = _rule_finder(evidence.n_sigma)
        fwhm = _beam_fwhm(evidence)
        # the rules' classes matched to the model's by name (a class the rules never
        # give, such as FIRST's Compact or Bent, is never raised)
        index = {normalize_class_name(c): k for k, c in enumerate(settings.classes)}
        names = {c: index[normalize_class_name(c)] for c in rules.classes
                 if normalize_class_name(c) in index}
        compact = None
        if area is not None:  # groups of one island no larger than a point source's
            count = np.bincount(groups)
            small = area < 1.5 * np.maximum(point, 1.0)
            compact = (count == 1) & (np.bincount(groups, weights=small) == 1)
    out = []
    for g in range(int(groups.max()) + 1):
        mask = pixel_group == g
        probs = galaxy_class_probabilities(evidence.probabilities, cam_up, mask, keys)
        if rules is not None:
            if compact is not None and compact[g]:
                rule = "R"  # one unresolved island: a single compact peak, R by the rule
            else:
                rule = rules.classify_snr(evidence.snr, mask, beam_fwhm=fwhm)
            if rule in names and names[rule] in keys:
                fused = np.zeros_like(probs)
                fused[keys] = probs[keys] + 1e-3
                fused[names[rule]] *= math.exp(settings.rule_class_weight)
                probs = fused / fused.sum()
        c = int(np.argmax(probs))  # the largest p_c * s_c (else p_c, without CAM support)
        j = int(np.flatnonzero(keys == c)[0])
        extent = 1.0 - math.exp(-float(mask.sum()) / settings.area_scale)
        if resolved is not None:
            extent *= float(resolved[g])
        cam = np.clip(key_cams[j][mask], 0, 1)
        score = extent * (1.0 + float(key_probs[j] * cam.mean())) / 2.0
        out.append(TileGalaxy(mask=mask, class_index=c, score=score, cam_map=cam_up[c],
                              class_probabilities=probs))
    return out


class RuleGrouping(GroupingStrategy):
    """Radio islands grouped by the classical finder's rules; classes and scores as ``'grouped'``.

    A hybrid of the two methods galcam has: which islands belong together is decided by
    `galcam.baseline.ClassicalFinder.group_islands` (its default rules: resolved islands
    within half a beam of each other, aligned doubles of resolved islands; the S/N-aware
    resolved test), measured on the tile's S/N image and beam, instead of by IRNet's
    displacement votes; the class and the score of each group come from the networks
    exactly as in `IslandVoteGrouping` (steps 4 and 5, `galaxies_from_groups`). The rules
    need the noise level and the beam; for an input without them (a PNG in the paper's
    encoding) the islands are grouped by IRNet's votes, as ``'grouped'`` does.

    Chosen as the default on validation sets of three generators (galcam's simulator,
    ``bench_independent``, ``bench_shifted``; ``benchmarks/bench_views.py --grouping``):
    class-agnostic mask AP50 -0.001, +0.088 and +0.069 against ``'grouped'`` with the
    bundled model, host keypoint AP50 -0.009, +0.052, +0.017.
    """

    name = "rules"
    uses_resolution = True

    def __call__(self, evidence, settings):
        labels, n = island_labels(evidence.radio01)
        if n == 0:
            return []
        if evidence.snr is None or evidence.beam_sigma2 is None:
            # no noise level or beam (a PNG in the paper's encoding): IRNet's votes decide
            return GROUPING_STRATEGIES["grouped"](evidence, settings)
        groups, _ = _rule_finder(evidence.n_sigma).group_islands(
            evidence.snr, labels, beam_fwhm=_beam_fwhm(evidence))
        area = point = None
        if settings.resolution_scale is not None:
            area, point = island_resolution(labels, n, evidence.snr, evidence.beam_sigma2,
                                            n_sigma=evidence.n_sigma)
        return galaxies_from_groups(evidence, settings, labels, groups, area, point)


class RandomWalkGrouping(GroupingStrategy):
    """IRNet's instance step of the paper: centroids, random walk, one mask per instance.

    `galcam.models.InstanceExtractor` (Gupta et al. 2023, section 3.2.2; the reference
    code's behaviour) makes the instances of the classes the classifier finds present;
    with ``snap=True`` (method ``'islands'``) every radio island then goes to the
    instance whose random-walk mask claims it most strongly (`snap_to_islands`), with
    ``snap=False`` (method ``'walk'``) the random-walk masks are kept as they are. The
    score of a galaxy is ``class_score * peak`` (see `galcam.models.InstanceExtractor`).
    """

    def __init__(self, *, snap):
        self.snap = bool(snap)
        self.name = "islands" if self.snap else "walk"

    def __call__(self, evidence, settings):
        from ..models import InstanceExtractor, select_classes

        keys = select_classes(evidence.probabilities, threshold=settings.class_threshold,
                              min_classes=settings.min_classes)
        if not len(keys):
            return []
        extractor = InstanceExtractor(**(settings.extractor or {}))
        weight = evidence.radio01 if settings.radio_weight == "radio" else None
        instances = extractor(evidence.cams[keys], keys, evidence.probabilities[keys],
                              evidence.edge, evidence.displacement, weight, evidence.size)
        masks = [inst.mask for inst in instances]
        if self.snap and instances:
            labels, n_islands = island_labels(evidence.radio01)
            masks = snap_to_islands(masks, [inst.score for inst in instances], labels,
                                    n_islands, min_overlap=settings.island_overlap)
        cam_up = _upsampled_cams(evidence.cams, evidence.size)
        out = []
        for inst, mask in zip(instances, masks):
            if mask is None:  # an instance that claimed no emission above 3 sigma
                continue
            probs = galaxy_class_probabilities(evidence.probabilities, cam_up, mask, keys)
            # the galaxy's class is its most probable one (usually its CAM plane's class)
            out.append(TileGalaxy(mask=mask, class_index=int(np.argmax(probs)),
                                  score=float(inst.score), cam_map=inst.cam_map,
                                  class_probabilities=probs))
        return out


#: Grouping strategies by name (`register_strategy` adds one).
GROUPING_STRATEGIES = {
    "grouped": IslandVoteGrouping(),
    "islands": RandomWalkGrouping(snap=True),
    "walk": RandomWalkGrouping(snap=False),
    "rules": RuleGrouping(),
}


def register_strategy(strategy, *, overwrite=False):
    """Make a `GroupingStrategy` available as ``GalaxyGrouper(method=strategy.name)``.

    Parameters
    ----------
    strategy : `GroupingStrategy`
        An instance with a ``name``.
    overwrite : bool, optional
        Replace a registered strategy of the same name.
    """
    if not isinstance(strategy, GroupingStrategy):
        raise TypeError(f"strategy: expected a GroupingStrategy, got {type(strategy).__name__}")
    name = strategy.name
    if not isinstance(name, str) or not name:
        raise ValueError(f"strategy: its name must be a non-empty string, got {name!r}")
    if name in GROUPING_STRATEGIES and not overwrite:
        raise ValueError(f"strategy {name!r} is registered already (overwrite=True replaces "
                         "it)")
    GROUPING_STRATEGIES[name] = strategy


#: Defaults of `GalaxyGrouper`'s options where neither the user nor the model folder sets
#: one (the one place they are written).
GROUPER_DEFAULTS = {
    "method": "rules",
    "link_radius": 20.0 * u.arcsec,  # 10 pixels of the bundled model's 2" grid
    "area_scale": 600.0 * u.arcsec ** 2,  # 150 pixels of 2", about 3.7 beams of 13" x 11"
    "resolution_scale": 1.0,
    "unresolved_ratio": 1.5,
    "class_threshold": 0.5,
    "min_classes": 0,
    "island_overlap": 0.3,
    "rule_class_weight": 0.5,
    "radio_weight": "radio",
    "extractor": None,
}
# keys of a model folder's recommendations (ModelSpec.grouping) and the options they set
_SPEC_KEYS = {"resolution_scale": "resolution_scale", "unresolved_ratio": "unresolved_ratio",
              "link_radius_arcsec": "link_radius", "area_scale_arcsec2": "area_scale"}


def _length(value, name, power):
    """A positive Quantity of angle**power or pix**power (a plain number: pixels, deprecated)."""
    unit_pix, unit_sky = u.pix ** power, u.arcsec ** power
    what = "a radius" if power == 1 else "an area"
    if isinstance(value, u.Quantity):
        ok = value.isscalar and (value.unit.is_equivalent(unit_pix)
                                 or value.unit.is_equivalent(unit_sky))
        if ok and np.isfinite(value.value) and value.value > 0:
            return value
        raise ValueError(f"{name}: expected {what} as a positive Quantity in {unit_sky} or "
                         f"{unit_pix}, got {value!r}")
    if isinstance(value, numbers.Real) and not isinstance(value, bool) \
            and math.isfinite(value) and value > 0:
        import warnings

        from astropy.utils.exceptions import AstropyDeprecationWarning

        warnings.warn(f"{name}={value!r}: a plain number is taken as pixels of the model's grid; "
                      f"give a Quantity ({value!r} * u.pix, or an angle such as "
                      f"{'20 * u.arcsec' if power == 1 else '600 * u.arcsec**2'})",
                      AstropyDeprecationWarning, stacklevel=4)
        return float(value) * unit_pix
    raise ValueError(f"{name}: expected {what} as a positive Quantity in {unit_sky} or "
                     f"{unit_pix}, got {value!r}")


def _optional_positive(value, name):
    """A positive number, or ``'off'``/None (the term switched off)."""
    if value is None or value == "off":
        return None
    return check_positive(value, name, expected="a positive number or 'off'")


class GalaxyGrouper:
    """The instance step: galaxies (masks, classes, scores) from the networks' outputs.

    Configured once and given to `~galcam.inference.WeakSegmenter` (``grouper=``), which
    calls it on the evidence of every tile (`TileEvidence`). Options left as None take
    the value the model folder recommends (``config.json`` -> ``inference``, written by
    `galcam.inference.calibrate`), else the default of `GROUPER_DEFAULTS`. Sky-unit options
    are converted to the model's pixels (its training pixel scale; images are resampled to
    it, or to coarser pixels in proportion to the beam when the beam is much larger, so a
    radius is the same number of the network's pixels on every image).

    Parameters
    ----------
    method : str, optional
        The strategy (`GROUPING_STRATEGIES`): ``'rules'`` (default; `RuleGrouping`),
        ``'grouped'`` (`IslandVoteGrouping`), ``'islands'`` or ``'walk'``
        (`RandomWalkGrouping`), or a registered one.
    link_radius : `~astropy.units.Quantity`, optional
        ``'grouped'``: islands whose displacement votes lie within this distance are one
        galaxy (angle, or ``u.pix`` of the model's grid; default 20 arcsec).
    area_scale : `~astropy.units.Quantity`, optional
        ``'grouped'``: the area at which the extent term of the score reaches 1 - 1/e
        (solid angle, or ``u.pix**2``; default 600 arcsec^2).
    resolution_scale : float or 'off', optional
        ``'grouped'``: how many times its point-source area a galaxy must exceed for the
        resolution term of the score to reach 1 - 1/e (default 1); ``'off'`` leaves the
        term out.
    unresolved_ratio : float or 'off', optional
        ``'grouped'``: an island whose area is less than this many times that of a point
        source of its peak signal-to-noise is never grouped (default 1.5); ``'off'``
        groups every island.
    class_threshold : float, optional
        A class is present in a tile when its probability reaches this (in [0, 1];
        default: the model's recommendation, else 0.5).
    min_classes : int, optional
        Keep at least this many classes per tile even below the threshold (default 0).
    island_overlap : float, optional
        ``'islands'``: the smallest fraction of an island a mask must cover to claim it
        (default 0.3).
    rule_class_weight : float or 'off', optional
        ``'rules'``/``'grouped'``: weight of the a/b rule in a galaxy's class
        (`galaxies_from_groups`): the log-probability of the class the classical rules
        give its mask is raised by this much before the most probable class is taken
        (default 0.5; ``'off'`` or 0: the networks alone).
    radio_weight : {'radio', None}, optional
        ``'islands'``/``'walk'``: weight of the instance CAMs before the random walk.
    extractor : dict, optional
        ``'islands'``/``'walk'``: options of `galcam.models.InstanceExtractor`.

    Examples
    --------
    >>> import astropy.units as u
    >>> from galcam.inference import GalaxyGrouper
    >>> grouper = GalaxyGrouper(link_radius=30 * u.arcsec)
    >>> grouper.settings(pixel_scale=2.0).link_radius
    15.0
    """

    def __init__(self, method=None, *, link_radius=None, area_scale=None,
                 resolution_scale=None, unresolved_ratio=None, class_threshold=None,
                 min_classes=None, island_overlap=None, rule_class_weight=None,
                 radio_weight=None, extractor=None):
        given = {}
        if method is not None:
            if method not in GROUPING_STRATEGIES:
                raise ValueError(f"method: expected one of {sorted(GROUPING_STRATEGIES)}, got "
                                 f"{method!r}")
            given["method"] = method
        if link_radius is not None:
            given["link_radius"] = _length(link_radius, "link_radius", 1)
        if area_scale is not None:
            given["area_scale"] = _length(area_scale, "area_scale", 2)
        for key, value in (("resolution_scale", resolution_scale),
                           ("unresolved_ratio", unresolved_ratio)):
            if value is not None:
                given[key] = _optional_positive(value, key)
        if class_threshold is not None:
            given["class_threshold"] = check_fraction(class_threshold, "class_threshold")
        if min_classes is not None:
            given["min_classes"] = check_positive_int(min_classes, "min_classes",
                                                      allow_zero=True)
        if island_overlap is not None:
            given["island_overlap"] = check_fraction(island_overlap, "island_overlap",
                                                     low_open=True)
        if rule_class_weight is not None:
            given["rule_class_weight"] = (0.0 if rule_class_weight == "off" else check_positive(
                rule_class_weight, "rule_class_weight", allow_zero=True,
                expected="a number >= 0 or 'off'"))
        if radio_weight is not None:
            if radio_weight not in ("radio", "none"):
                raise ValueError(f"radio_weight: expected 'radio' or 'none', got "
                                 f"{radio_weight!r}")
            given["radio_weight"] = None if radio_weight == "none" else radio_weight
        if extractor is not None:
            from ..models import InstanceExtractor

            if not isinstance(extractor, dict):
                raise TypeError(f"extractor: expected a dict of InstanceExtractor options, got "
                                f"{type(extractor).__name__}")
            InstanceExtractor(**extractor)  # checked now, not at the first tile
            given["extractor"] = dict(extractor)
        self._given = given

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self._given.items())
        return f"GalaxyGrouper({inner})"

    @property
    def given(self):
        """The options set explicitly (a copy): the others come from the model or defaults."""
        return dict(self._given)

    @property
    def strategy(self):
        """The `GroupingStrategy` of ``method``."""
        return GROUPING_STRATEGIES[self.options()["method"]]

    def options(self, spec=None):
        """Every option's value: given, else recommended by ``spec``, else the default.

        Parameters
        ----------
        spec : `~galcam.models.ModelSpec`, optional
            The model whose recommendations (``inference`` of config.json) fill the
            options not given.
        """
        out = dict(GROUPER_DEFAULTS)
        if spec is not None:
            out["class_threshold"] = spec.inference_class_threshold
            for key, option in _SPEC_KEYS.items():
                if key in spec.grouping:
                    value = spec.grouping[key]
                    if option == "link_radius" and value is not None:
                        value = value * u.arcsec
                    elif option == "area_scale" and value is not None:
                        value = value * u.arcsec ** 2
                    out[option] = value
            if spec.instances:
                out["extractor"] = dict(spec.instances)
        out.update(self._given)
        return out

    def settings(self, spec=None, *, pixel_scale=None):
        """The options in pixels of the model's grid (`GroupingSettings`).

        Parameters
        ----------
        spec : `~galcam.models.ModelSpec`, optional
            The model (its recommendations and its pixel scale).
        pixel_scale : float, optional
            Arcsec per pixel of the model's grid (default: the spec's, else
            `ASSUMED_PIXEL_SCALE`).
        """
        opts = self.options(spec)
        if pixel_scale is None and spec is not None:
            pixel_scale = spec.pixel_scale
        if pixel_scale is None:
            pixel_scale = ASSUMED_PIXEL_SCALE

        def pixels(q, power):
            if q.unit.is_equivalent(u.pix ** power):
                value = q.to_value(u.pix ** power)
            else:
                value = q.to_value(u.arcsec ** power) / pixel_scale ** power
            # the recorded pixel scale carries float noise of the WCS (2.000000000000016");
            # a billionth of a pixel is below any meaning
            return round(value, 9)

        if spec is not None and opts["min_classes"] > spec.n_classes:
            raise ValueError(f"min_classes: expected an integer in [0, {spec.n_classes}], got "
                             f"{opts['min_classes']!r}")
        return GroupingSettings(
            method=opts["method"], link_radius=pixels(opts["link_radius"], 1),
            area_scale=pixels(opts["area_scale"], 2),
            resolution_scale=opts["resolution_scale"],
            unresolved_ratio=opts["unresolved_ratio"],
            class_threshold=opts["class_threshold"], min_classes=opts["min_classes"],
            island_overlap=opts["island_overlap"],
            rule_class_weight=opts["rule_class_weight"], radio_weight=opts["radio_weight"],
            extractor=opts["extractor"], classes=None if spec is None else tuple(spec.classes))

    def __call__(self, evidence, settings=None):
        """The galaxies of one tile.

        Parameters
        ----------
        evidence : `TileEvidence`
        settings : `GroupingSettings`, optional
            From `settings` (default: this grouper's for a model with 2" pixels and no
            recommendations); `~galcam.inference.WeakSegmenter` passes its model's.

        Returns
        -------
        galaxies : list of `TileGalaxy`
        """
        if not isinstance(evidence, TileEvidence):
            raise TypeError(f"evidence: expected a TileEvidence, got {type(evidence).__name__}")
        if settings is None:
            settings = self.settings()
        return GROUPING_STRATEGIES[settings.method](evidence, settings)

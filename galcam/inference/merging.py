"""One rule for merging the detections of overlapping views of an image (torch-free).

The tiles of a large image (`galcam.inference.WeakSegmenter`) and the work units of a
survey (`galcam.survey.SurveyRunner`: tiles, or seed cutouts wherever seeds are close)
overlap, so a galaxy is often detected several times, and a galaxy cut by a view's edge
is detected in pieces. `merge_unit_detections` turns the detections of all views, in the
pixels of the whole image (the mosaic), into one detection per galaxy; the tiles of one
image (`galcam.inference.merge_tile_detections`) and the units of a survey use this same
rule (also in ``docs/survey.rst`` and ``docs/inference.rst``). A *unit* below is a view:
a tile or a survey unit.

Two detections are *the same galaxy* when their masks have an intersection over union of
at least ``iou_threshold`` (0.3) or when their intersection covers at least
``containment_threshold`` (0.5) of the smaller mask; in steps 1 and 2, where views of one
galaxy are cut differently by different units, also when their IoU inside the area that
both units cover reaches ``iou_threshold``. A detection is *cut* when its mask
comes within ``border`` pixels (2) of an edge of its unit's window that lies inside the
mosaic (an edge on the mosaic's own border cuts nothing).

1. **Border cuts.** A cut detection is dropped when another detection that is not cut is
   the same galaxy: a unit further away saw it whole.
2. **Pieces.** Cut detections left over (a galaxy larger than the overlap) that are the
   same galaxy are joined (connected groups): the union of their masks, with the class,
   score, probabilities and host of the highest-scoring piece.
3. **Duplicates.** Taking the detections in order of decreasing score, a detection that
   is the same galaxy as one already kept is dropped: of the several views of a galaxy
   (several tiles, several seeds) the most confident one is kept, whole.
4. **Component ownership.** A radio component belongs to at most one galaxy, the more
   confident one. Taking the galaxies in order of decreasing score, each mask is split
   into its 8-connected parts (the radio islands it claimed: unit masks are drawn by the
   > 3 sigma islands); every part that shares a pixel with a galaxy kept before it is
   removed. A galaxy left with fewer than ``min_area`` pixels, or with less than
   ``min_kept_fraction`` (0.25) of its pixels, is dropped.

Ties of score are broken by (unit index, detection index), and the inputs are sorted by
that key first, so the result does not depend on the order in which units finished.
"""

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from galcam._validation import check_fraction, check_positive_int

__all__ = ["UnitDetection", "MergedGalaxy", "merge_unit_detections", "same_galaxy",
           "touches_unit_border"]

_EIGHT = np.ones((3, 3), dtype=bool)


class UnitDetection(NamedTuple):
    """A detection of one unit, in mosaic pixels (input of `merge_unit_detections`)."""

    #: Index of the unit (its position in the run's list of units).
    unit: int
    #: Index of the detection in its unit's result.
    index: int
    #: ``(x0, y0, x1, y1)`` window of the unit (exclusive ends), mosaic pixels.
    window: tuple
    #: Mosaic pixel of ``mask``'s pixel (0, 0).
    x0: int
    y0: int
    #: Boolean mask inside its bounding box.
    mask: np.ndarray
    score: float
    #: Anything carried along (class, probabilities, host ...).
    payload: object = None

    @property
    def key(self):
        """Deterministic ordering key ``(unit, index)``."""
        return (self.unit, self.index)


class MergedGalaxy(NamedTuple):
    """One galaxy after merging."""

    #: Mosaic pixel of ``mask``'s pixel (0, 0).
    x0: int
    y0: int
    #: Boolean mask inside its bounding box (after component ownership).
    mask: np.ndarray
    score: float
    #: The detection whose class, score, probabilities and host are kept.
    best: UnitDetection
    #: ``(unit, index)`` keys of the detections joined into this galaxy (pieces).
    members: tuple
    #: ``(unit, index)`` keys of every detection found to be this galaxy (members, cut
    #: views and duplicates that were dropped).
    seen_by: tuple


def _box(d):
    return (d.x0, d.y0, d.x0 + d.mask.shape[1], d.y0 + d.mask.shape[0])


def _intersection(a, b, region=None):
    ax0, ay0, ax1, ay1 = _box(a)
    bx0, by0, bx1, by1 = _box(b)
    x0, y0, x1, y1 = max(ax0, bx0), max(ay0, by0), min(ax1, bx1), min(ay1, by1)
    if x1 <= x0 or y1 <= y0:
        return 0
    ma = a.mask[y0 - a.y0:y1 - a.y0, x0 - a.x0:x1 - a.x0]
    mb = b.mask[y0 - b.y0:y1 - b.y0, x0 - b.x0:x1 - b.x0]
    if region is None:
        return int(np.count_nonzero(ma & mb))
    inside = _region_mask(region, x0, y0, x1, y1)
    return int(np.count_nonzero(ma & mb & inside))


def _region_mask(region, x0, y0, x1, y1):
    rx0, ry0, rx1, ry1 = region
    out = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    sx0, sy0, sx1, sy1 = max(rx0, x0), max(ry0, y0), min(rx1, x1), min(ry1, y1)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = True
    return out


def _area_in(d, region):
    rx0, ry0, rx1, ry1 = region
    x0, y0, x1, y1 = _box(d)
    sx0, sy0, sx1, sy1 = max(rx0, x0), max(ry0, y0), min(rx1, x1), min(ry1, y1)
    if sx1 <= sx0 or sy1 <= sy0:
        return 0
    return int(np.count_nonzero(d.mask[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0]))


def same_galaxy(a, b, *, iou_threshold=0.3, containment_threshold=0.5, region=None):
    """Whether two detections (mosaic pixels) are the same galaxy (see the module rule).

    Parameters
    ----------
    a, b : `UnitDetection` or `MergedGalaxy`
        Anything with ``x0``, ``y0`` and a boolean ``mask``.
    iou_threshold, containment_threshold : float, optional
    region : (x0, y0, x1, y1), optional
        Also compare the masks inside this window only (the area that two units both
        see): same galaxy when the IoU there reaches ``iou_threshold``.
    """
    inter = _intersection(a, b)
    if inter == 0:
        return False
    na, nb = int(np.count_nonzero(a.mask)), int(np.count_nonzero(b.mask))
    iou = inter / (na + nb - inter)
    if iou >= iou_threshold or inter / min(na, nb) >= containment_threshold:
        return True
    if region is None:
        return False
    inter = _intersection(a, b, region)
    union = _area_in(a, region) + _area_in(b, region) - inter
    return union > 0 and inter / union >= iou_threshold


def _shared_window(a, b):
    """The part of the mosaic that the units of two detections both cover."""
    return (max(a.window[0], b.window[0]), max(a.window[1], b.window[1]),
            min(a.window[2], b.window[2]), min(a.window[3], b.window[3]))


def touches_unit_border(d, mosaic_shape, border=2):
    """Whether a detection's mask comes within ``border`` pixels of an interior edge of its
    unit's window (an edge that is not on the mosaic's border)."""
    H, W = mosaic_shape
    wx0, wy0, wx1, wy1 = d.window
    ys, xs = np.nonzero(d.mask)
    if xs.size == 0:
        return False
    xmin, xmax = d.x0 + xs.min(), d.x0 + xs.max()
    ymin, ymax = d.y0 + ys.min(), d.y0 + ys.max()
    return bool((wx0 > 0 and xmin < wx0 + border) or (wx1 < W and xmax >= wx1 - border)
                or (wy0 > 0 and ymin < wy0 + border) or (wy1 < H and ymax >= wy1 - border))


class _Grid:
    """Bounding boxes hashed on a coarse grid, to find overlapping candidates quickly."""

    def __init__(self, cell=128):
        self.cell = cell
        self.cells = {}

    def _keys(self, box):
        x0, y0, x1, y1 = box
        c = self.cell
        for gy in range(y0 // c, (y1 - 1) // c + 1):
            for gx in range(x0 // c, (x1 - 1) // c + 1):
                yield gx, gy

    def add(self, item, box):
        for k in self._keys(box):
            self.cells.setdefault(k, []).append(item)

    def query(self, box):
        found = {}
        for k in self._keys(box):
            for item in self.cells.get(k, ()):
                found[id(item)] = item
        return list(found.values())


def _union(dets):
    x0 = min(d.x0 for d in dets)
    y0 = min(d.y0 for d in dets)
    x1 = max(d.x0 + d.mask.shape[1] for d in dets)
    y1 = max(d.y0 + d.mask.shape[0] for d in dets)
    mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for d in dets:
        h, w = d.mask.shape
        mask[d.y0 - y0:d.y0 - y0 + h, d.x0 - x0:d.x0 - x0 + w] |= d.mask
    return x0, y0, mask


def _crop(mask):
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return 0, 0, mask[:0, :0]
    return int(xs.min()), int(ys.min()), mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


class _Candidate(NamedTuple):
    x0: int
    y0: int
    mask: np.ndarray
    score: float
    best: UnitDetection
    members: tuple
    seen_by: list


def merge_unit_detections(detections, mosaic_shape, *, iou_threshold=0.3,
                          containment_threshold=0.5, border=2, min_area=5,
                          min_kept_fraction=0.25):
    """One detection per galaxy from the detections of overlapping units.

    See the module docstring for the rule.

    Parameters
    ----------
    detections : iterable of `UnitDetection`
        All detections of all units, in mosaic pixels (any order).
    mosaic_shape : (int, int)
        ``(height, width)`` of the mosaic.
    iou_threshold : float, optional
        Mask IoU from which two detections are the same galaxy (0.3).
    containment_threshold : float, optional
        Fraction of the smaller mask inside the other from which two detections are the
        same galaxy (0.5).
    border : int, optional
        A mask within this many pixels of an interior unit edge is cut (2).
    min_area : int, optional
        Galaxies left with fewer pixels after component ownership are dropped (5, the
        smallest island).
    min_kept_fraction : float, optional
        Galaxies left with less than this fraction of their pixels after component
        ownership are dropped (0.25).

    Returns
    -------
    galaxies : list of `MergedGalaxy`
        Sorted by decreasing score (ties by the best detection's key).
    """
    iou_threshold = check_fraction(iou_threshold, "iou_threshold", low_open=True)
    containment_threshold = check_fraction(containment_threshold, "containment_threshold",
                                           low_open=True)
    min_kept_fraction = check_fraction(min_kept_fraction, "min_kept_fraction")
    border = check_positive_int(border, "border", minimum=0)
    min_area = check_positive_int(min_area, "min_area", minimum=0)
    shape = tuple(int(v) for v in mosaic_shape)

    def same(a, b, shared=False):
        return same_galaxy(a, b, iou_threshold=iou_threshold,
                           containment_threshold=containment_threshold,
                           region=_shared_window(a, b) if shared else None)

    dets = sorted((d for d in detections if np.any(d.mask)), key=lambda d: d.key)
    cut = [touches_unit_border(d, shape, border) for d in dets]
    grid = _Grid()
    for i, d in enumerate(dets):
        grid.add(i, _box(d))
    neighbours = [sorted(j for j in grid.query(_box(d)) if j != i) for i, d in enumerate(dets)]
    seen = {i: [dets[i].key] for i in range(len(dets))}

    # 1. a cut view is dropped when a whole view of the same galaxy exists
    alive = []
    for i, d in enumerate(dets):
        if cut[i]:
            whole = [j for j in neighbours[i] if not cut[j] and same(d, dets[j], True)]
            if whole:
                for j in whole:
                    seen[j].append(d.key)
                continue
        alive.append(i)
    alive_set = set(alive)

    # 2. pieces of galaxies larger than the overlap: join cut views of the same galaxy
    parent = {i: i for i in alive}

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in alive:
        if not cut[i]:
            continue
        for j in neighbours[i]:
            if j > i and j in alive_set and cut[j] and dets[j].unit != dets[i].unit \
                    and same(dets[i], dets[j], True):
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    groups = {}
    for i in alive:
        groups.setdefault(find(i), []).append(i)
    candidates = []
    for members in groups.values():
        members.sort()
        best = max(members, key=lambda i: (dets[i].score, [-k for k in dets[i].key]))
        if len(members) == 1:
            x0, y0, mask = dets[best].x0, dets[best].y0, dets[best].mask
        else:
            x0, y0, mask = _union([dets[i] for i in members])
        candidates.append(_Candidate(x0, y0, mask, float(dets[best].score), dets[best],
                                     tuple(dets[i].key for i in members),
                                     [k for i in members for k in seen[i]]))

    # 3. duplicates: keep the most confident view of each galaxy
    order = sorted(candidates, key=lambda c: (-c.score, c.best.key))
    kept = []
    kept_grid = _Grid()
    for c in order:
        box = (c.x0, c.y0, c.x0 + c.mask.shape[1], c.y0 + c.mask.shape[0])
        dup = next((k for k in kept_grid.query(box) if same(c, kept[k])), None)
        if dup is not None:
            kept[dup].seen_by.extend(c.seen_by)
            continue
        kept_grid.add(len(kept), box)
        kept.append(c)

    # 4. component ownership, most confident first
    out = []
    owned = _Grid()
    for c in kept:
        box = (c.x0, c.y0, c.x0 + c.mask.shape[1], c.y0 + c.mask.shape[0])
        claimed = np.zeros_like(c.mask)
        for k in owned.query(box):
            g = out[k]
            gx1, gy1 = g.x0 + g.mask.shape[1], g.y0 + g.mask.shape[0]
            x0, y0 = max(c.x0, g.x0), max(c.y0, g.y0)
            x1, y1 = min(box[2], gx1), min(box[3], gy1)
            if x1 > x0 and y1 > y0:
                claimed[y0 - c.y0:y1 - c.y0, x0 - c.x0:x1 - c.x0] |= \
                    g.mask[y0 - g.y0:y1 - g.y0, x0 - g.x0:x1 - g.x0]
        mask = c.mask
        if claimed.any() and (claimed & mask).any():
            labels, n = ndimage.label(mask, structure=_EIGHT)
            lost = np.unique(labels[claimed & mask])
            mask = mask & ~np.isin(labels, lost[lost > 0])
        area = int(np.count_nonzero(mask))
        if area < max(min_area, 1) or area < min_kept_fraction * np.count_nonzero(c.mask):
            continue
        dx, dy, mask = _crop(mask)
        g = MergedGalaxy(c.x0 + dx, c.y0 + dy, mask, c.score, c.best, c.members,
                         tuple(sorted(set(c.seen_by))))
        owned.add(len(out), (g.x0, g.y0, g.x0 + mask.shape[1], g.y0 + mask.shape[0]))
        out.append(g)
    return out

"""Tiling large images and merging galaxies cut by tile borders (torch-free).

The network is applied to tiles of the model's input size that overlap by at least a
third of a tile. A galaxy smaller than the overlap is then seen whole by at least one
tile; larger galaxies are seen in pieces. `merge_tile_detections` turns the detections of
all tiles into one list with the rule documented in the inference documentation:

1. two detections from different tiles are the *same galaxy* when their masks, restricted
   to the region that both tiles cover, have an intersection over union of at least
   ``iou_threshold`` (0.5); the relation is closed transitively (connected components);
2. a detection *touches an interior border* when its mask comes within ``border`` pixels
   of an edge of its tile that lies inside the image (an edge at the image's own border
   cuts nothing);
3. in each group, if some members do not touch an interior border (complete views),
   only those are kept; otherwise (a galaxy larger than the overlap) all pieces are kept;
4. the kept members are merged: the union of their masks, with the class, score and class
   probabilities (and host) of the highest-scoring kept member.
"""

import math
from typing import NamedTuple

import numpy as np

from .._validation import check_fraction, check_pair, check_positive_int

__all__ = ["Tile", "tile_grid", "tile_starts", "TileDetection", "MergedDetection",
           "merge_tile_detections", "touches_interior_border"]


class Tile(NamedTuple):
    """One tile: its index and footprint in image pixels (may extend beyond the image)."""

    #: Index of the tile (row-major over the grid).
    index: int
    #: 0-based image pixel of the tile's pixel (0, 0); negative when the tile is padded.
    x0: int
    y0: int
    #: Tile size in pixels.
    width: int
    height: int


def tile_starts(n, size, overlap):
    """Start pixels of the tiles along one axis of ``n`` pixels.

    An axis no longer than ``size`` gets one tile centred on it (starting at a negative
    pixel: the tile is padded). A longer axis gets tiles every ``size - overlap`` pixels
    from 0, the last one ending exactly at the image edge.
    """
    n, size, overlap = int(n), int(size), int(overlap)
    if n < 1 or size < 1:
        raise ValueError(f"n and size must be positive, got {n} and {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in [0, {size}), got {overlap}")
    if n <= size:
        return [-((size - n) // 2)]
    step = size - overlap
    count = math.ceil((n - size) / step) + 1
    starts = [min(k * step, n - size) for k in range(count)]
    return sorted(set(starts))


def tile_grid(shape, tile_size, overlap):
    """Overlapping tiles covering an image.

    Parameters
    ----------
    shape : (int, int)
        ``(height, width)`` of the image.
    tile_size : int or (int, int)
        ``(height, width)`` of a tile (the model's input size).
    overlap : int or (int, int)
        Overlap between neighbouring tiles, in pixels (``(y, x)`` if a pair).

    Returns
    -------
    tiles : list of `Tile`
        Row-major order.
    """
    th, tw = check_pair(tile_size, "tile_size")
    oy, ox = check_pair(overlap, "overlap", minimum=0)
    h, w = (int(v) for v in shape)
    tiles = []
    for y0 in tile_starts(h, th, oy):
        for x0 in tile_starts(w, tw, ox):
            tiles.append(Tile(len(tiles), x0, y0, tw, th))
    return tiles


class TileDetection(NamedTuple):
    """A detection of one tile, in image pixels, as input to `merge_tile_detections`."""

    #: The `Tile` it was found in.
    tile: Tile
    #: 0-based image pixel of ``mask``'s pixel (0, 0).
    x0: int
    y0: int
    #: Boolean mask crop (h, w), inside the image.
    mask: np.ndarray
    #: Detection score (the merged galaxy keeps the best member's).
    score: float
    #: Anything the caller wants carried along (class, probabilities, host evidence ...).
    payload: object = None


class MergedDetection(NamedTuple):
    """One galaxy after merging: a union mask and the members it came from."""

    x0: int
    y0: int
    mask: np.ndarray
    #: Index (into the input list) of the member whose class, score and payload are kept.
    best: int
    #: Indices of the members whose masks were merged.
    members: tuple
    #: Indices of every detection of the group, including discarded border-cut views.
    group: tuple


def touches_interior_border(det, image_shape, border=2):
    """True if the detection's mask comes within ``border`` pixels of an interior tile edge.

    An edge is interior when the image continues beyond it (so the tile may cut a galaxy
    there); tile edges at or beyond the image border are not interior.
    """
    h, w = (int(v) for v in image_shape)
    t = det.tile
    ys, xs = np.nonzero(det.mask)
    if xs.size == 0:
        return False
    xmin, xmax = det.x0 + xs.min(), det.x0 + xs.max()
    ymin, ymax = det.y0 + ys.min(), det.y0 + ys.max()
    return bool((t.x0 > 0 and xmin < t.x0 + border)
                or (t.x0 + t.width < w and xmax >= t.x0 + t.width - border)
                or (t.y0 > 0 and ymin < t.y0 + border)
                or (t.y0 + t.height < h and ymax >= t.y0 + t.height - border))


def _restricted_iou(a, b, region):
    """IoU of two crop masks restricted to ``region`` = (x0, y0, x1, y1) exclusive."""
    rx0, ry0, rx1, ry1 = region
    # region of interest: intersection of region with the union of the two boxes
    ux0 = max(rx0, min(a.x0, b.x0))
    uy0 = max(ry0, min(a.y0, b.y0))
    ux1 = min(rx1, max(a.x0 + a.mask.shape[1], b.x0 + b.mask.shape[1]))
    uy1 = min(ry1, max(a.y0 + a.mask.shape[0], b.y0 + b.mask.shape[0]))
    if ux1 <= ux0 or uy1 <= uy0:
        return 0.0
    ma = _paste(a, ux0, uy0, ux1, uy1)
    mb = _paste(b, ux0, uy0, ux1, uy1)
    union = np.count_nonzero(ma | mb)
    return float(np.count_nonzero(ma & mb) / union) if union else 0.0


def _paste(det, x0, y0, x1, y1):
    """The detection's mask on the window [x0, x1) x [y0, y1)."""
    out = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    h, w = det.mask.shape
    sx0, sy0 = max(x0, det.x0), max(y0, det.y0)
    sx1, sy1 = min(x1, det.x0 + w), min(y1, det.y0 + h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = det.mask[sy0 - det.y0:sy1 - det.y0,
                                                            sx0 - det.x0:sx1 - det.x0]
    return out


def merge_tile_detections(detections, image_shape, *, iou_threshold=0.5, border=2):
    """Merge the detections of overlapping tiles into one detection per galaxy.

    See the module docstring for the rule.

    Parameters
    ----------
    detections : sequence of `TileDetection`
        All detections of all tiles of one image (masks in image pixels).
    image_shape : (int, int)
        ``(height, width)`` of the image.
    iou_threshold : float, optional
        Intersection over union, restricted to the area both tiles cover, above which two
        detections of different tiles are the same galaxy.
    border : int, optional
        A mask within this many pixels of an interior tile edge is cut by the tile.

    Returns
    -------
    merged : list of `MergedDetection`
        One per galaxy, sorted by decreasing score of the best member.
    """
    iou_threshold = check_fraction(iou_threshold, "iou_threshold", low_open=True)
    border = check_positive_int(border, "border", minimum=0)
    dets = list(detections)
    h, w = (int(v) for v in image_shape)
    n = len(dets)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n > 1:
        box = np.array([[d.x0, d.y0, d.x0 + d.mask.shape[1], d.y0 + d.mask.shape[0]]
                        for d in dets])
        tiles = np.array([d.tile.index for d in dets])
        for i in range(n):
            j = np.arange(i + 1, n)
            cand = j[(tiles[j] != tiles[i])
                     & (box[j, 0] < box[i, 2]) & (box[i, 0] < box[j, 2])
                     & (box[j, 1] < box[i, 3]) & (box[i, 1] < box[j, 3])]
            ti = dets[i].tile
            for k in cand:
                tk = dets[k].tile
                region = (max(ti.x0, tk.x0, 0), max(ti.y0, tk.y0, 0),
                          min(ti.x0 + ti.width, tk.x0 + tk.width, w),
                          min(ti.y0 + ti.height, tk.y0 + tk.height, h))
                if _restricted_iou(dets[i], dets[k], region) >= iou_threshold:
                    ri, rk = find(i), find(int(k))
                    if ri != rk:
                        parent[rk] = ri
    groups = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)

    cut = [touches_interior_border(d, (h, w), border) for d in dets]
    merged = []
    for members in groups.values():
        whole = [i for i in members if not cut[i]]
        keep = whole if whole else members
        best = max(keep, key=lambda i: (dets[i].score, -i))
        x0 = min(dets[i].x0 for i in keep)
        y0 = min(dets[i].y0 for i in keep)
        x1 = max(dets[i].x0 + dets[i].mask.shape[1] for i in keep)
        y1 = max(dets[i].y0 + dets[i].mask.shape[0] for i in keep)
        mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        for i in keep:
            mask |= _paste(dets[i], x0, y0, x1, y1)
        merged.append(MergedDetection(x0, y0, mask, best, tuple(sorted(keep)),
                                      tuple(sorted(members))))
    merged.sort(key=lambda m: (-dets[m.best].score, m.best))
    return merged

"""Tiling large images and merging galaxies cut by tile borders (torch-free).

The network is applied to tiles of the model's input size that overlap by at least a
third of a tile. A galaxy smaller than the overlap is then seen whole by at least one
tile; larger galaxies are seen in pieces. `merge_tile_detections` turns the detections of
all tiles into one list with the rule of `galcam.inference.merging` (the same rule merges
the work units of a survey): a view cut by an interior tile edge gives way to a whole view
of the same galaxy, pieces of a galaxy larger than the overlap are joined, of several
whole views the most confident is kept, and a radio component belongs to one galaxy.
"""

import math
from typing import NamedTuple

import numpy as np

from .._validation import check_pair
from .merging import UnitDetection, merge_unit_detections, touches_unit_border

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


def _window(tile):
    return (tile.x0, tile.y0, tile.x0 + tile.width, tile.y0 + tile.height)


def touches_interior_border(det, image_shape, border=2):
    """True if the detection's mask comes within ``border`` pixels of an interior tile edge.

    An edge is interior when the image continues beyond it (so the tile may cut a galaxy
    there); tile edges at or beyond the image border are not interior
    (`galcam.inference.merging.touches_unit_border` on the tile's window).
    """
    view = UnitDetection(det.tile.index, 0, _window(det.tile), det.x0, det.y0, det.mask,
                         det.score)
    return touches_unit_border(view, tuple(int(v) for v in image_shape), border)


def merge_tile_detections(detections, image_shape, *, iou_threshold=0.3,
                          containment_threshold=0.5, border=2):
    """Merge the detections of overlapping tiles into one detection per galaxy.

    The rule of `galcam.inference.merging.merge_unit_detections`, with the tiles as units.

    Parameters
    ----------
    detections : sequence of `TileDetection`
        All detections of all tiles of one image (masks in image pixels).
    image_shape : (int, int)
        ``(height, width)`` of the image.
    iou_threshold : float, optional
        Mask IoU (or IoU inside the area both tiles cover, for views cut by a tile edge)
        from which two detections are the same galaxy (0.3).
    containment_threshold : float, optional
        Fraction of the smaller mask inside the other from which two detections are the
        same galaxy (0.5).
    border : int, optional
        A mask within this many pixels of an interior tile edge is cut by the tile.

    Returns
    -------
    merged : list of `MergedDetection`
        One per galaxy, sorted by decreasing score of the best member; ``best``,
        ``members`` and ``group`` index ``detections``.
    """
    dets = list(detections)
    views = [UnitDetection(d.tile.index, i, _window(d.tile), d.x0, d.y0, d.mask, d.score)
             for i, d in enumerate(dets)]
    galaxies = merge_unit_detections(views, image_shape, iou_threshold=iou_threshold,
                                     containment_threshold=containment_threshold,
                                     border=border)
    return [MergedDetection(g.x0, g.y0, g.mask, g.best.index,
                            tuple(sorted(key[1] for key in g.members)),
                            tuple(sorted(key[1] for key in g.seen_by)))
            for g in galaxies]

"""Tiling and the merging of galaxies cut by tile borders (known answers)."""

import numpy as np
import pytest

from galcam.inference.tiling import (
    Tile,
    TileDetection,
    merge_tile_detections,
    tile_grid,
    tile_starts,
    touches_interior_border,
)


def test_tile_starts():
    assert tile_starts(50, 64, 22) == [-7]          # one centred, padded tile
    assert tile_starts(64, 64, 22) == [0]
    assert tile_starts(150, 64, 22) == [0, 42, 84, 86]
    starts = tile_starts(1000, 210, 70)
    assert starts[0] == 0 and starts[-1] == 1000 - 210
    assert all(b - a <= 210 - 70 for a, b in zip(starts, starts[1:], strict=False))
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 64, 64)


def test_tile_grid_covers_image_with_overlap():
    tiles = tile_grid((150, 170), 64, 22)
    cover = np.zeros((150, 170), int)
    for t in tiles:
        cover[max(t.y0, 0):t.y0 + t.height, max(t.x0, 0):t.x0 + t.width] += 1
    assert cover.min() >= 1
    assert [t.index for t in tiles] == list(range(len(tiles)))
    with pytest.raises(ValueError, match="tile_size"):
        tile_grid((10, 10), 0, 0)


def _disk(cx, cy, r, x0, y0, x1, y1):
    """Mask of a disk clipped to the window [x0, x1) x [y0, y1), as a crop."""
    yy, xx = np.mgrid[y0:y1, x0:x1]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r ** 2


SHAPE = (64, 100)
# two tiles side by side, overlapping in x = 40..59
A = Tile(0, 0, 0, 60, 64)
B = Tile(1, 40, 0, 60, 64)


def test_complete_view_beats_border_cut_view():
    # galaxy centred at x = 52 (r = 6): whole in B, cut by A's right edge (x = 59)
    full = _disk(52, 30, 6, 0, 0, 100, 64)
    in_a = full[:, :60]
    in_b = full[:, 40:]
    det_a = TileDetection(A, 0, 0, in_a, score=0.9)
    det_b = TileDetection(B, 40, 0, in_b, score=0.6)
    assert touches_interior_border(det_a, SHAPE) and not touches_interior_border(det_b, SHAPE)
    merged = merge_tile_detections([det_a, det_b], SHAPE)
    assert len(merged) == 1
    m = merged[0]
    assert m.best == 1 and m.members == (1,) and m.group == (0, 1)
    out = np.zeros(SHAPE, bool)
    out[m.y0:m.y0 + m.mask.shape[0], m.x0:m.x0 + m.mask.shape[1]] = m.mask
    np.testing.assert_array_equal(out, full)


def test_large_galaxy_cut_by_both_tiles_is_united():
    # an elongated galaxy from x = 20 to 80: both views are cut
    yy, xx = np.mgrid[0:64, 0:100]
    full = (np.abs(yy - 30) <= 3) & (xx >= 20) & (xx <= 80)
    det_a = TileDetection(A, 0, 0, full[:, :60], score=0.4)
    det_b = TileDetection(B, 40, 0, full[:, 40:], score=0.7)
    merged = merge_tile_detections([det_a, det_b], SHAPE)
    assert len(merged) == 1
    m = merged[0]
    assert m.best == 1 and m.members == (0, 1)
    out = np.zeros(SHAPE, bool)
    out[m.y0:m.y0 + m.mask.shape[0], m.x0:m.x0 + m.mask.shape[1]] = m.mask
    np.testing.assert_array_equal(out, full)


def test_distinct_galaxies_are_not_merged():
    g1 = _disk(45, 15, 4, 0, 0, 100, 64)
    g2 = _disk(50, 45, 4, 0, 0, 100, 64)
    dets = [TileDetection(A, 0, 0, g1[:, :60], 0.5), TileDetection(B, 40, 0, g2[:, 40:], 0.8),
            TileDetection(A, 0, 0, g2[:, :60], 0.3)]
    merged = merge_tile_detections(dets, SHAPE)
    # g2 seen by A and B (both complete) is one galaxy, the more confident view; g1 alone
    assert len(merged) == 2
    assert merged[0].best == 1 and merged[0].members == (1,) and merged[0].group == (1, 2)
    assert merged[1].best == 0 and merged[1].members == (0,)


def test_duplicates_keep_the_most_confident_view():
    """The shared rule: two views of one galaxy, even of one tile, give one detection."""
    g = _disk(20, 20, 5, 0, 0, 100, 64)
    dets = [TileDetection(A, 0, 0, g[:, :60], 0.4), TileDetection(A, 0, 0, g[:, :60], 0.5)]
    (merged,) = merge_tile_detections(dets, SHAPE)
    assert merged.best == 1 and merged.members == (1,) and merged.group == (0, 1)
    # a disjoint galaxy of the same tile stays apart
    h = _disk(45, 40, 5, 0, 0, 100, 64)
    dets.append(TileDetection(A, 0, 0, h[:, :60], 0.3))
    assert len(merge_tile_detections(dets, SHAPE)) == 2


def test_image_edge_is_not_an_interior_border():
    g = _disk(2, 30, 5, 0, 0, 100, 64)  # touches the image's left edge inside tile A
    assert not touches_interior_border(TileDetection(A, 0, 0, g[:, :60], 1.0), SHAPE)
    padded = Tile(0, -5, -5, 64, 64)  # a single padded tile covering a small image
    small = np.ones((54, 54), bool)
    assert not touches_interior_border(TileDetection(padded, 0, 0, small, 1.0), (54, 54))


def test_merge_validates_options():
    with pytest.raises(ValueError, match="iou_threshold"):
        merge_tile_detections([], SHAPE, iou_threshold=0)
    with pytest.raises(ValueError, match="border"):
        merge_tile_detections([], SHAPE, border=-1)
    assert merge_tile_detections([], SHAPE) == []

"""The merge rule: border cuts, pieces, duplicates, component ownership, order."""

import numpy as np
import pytest

from galcam.survey import UnitDetection, merge_unit_detections, same_galaxy, touches_unit_border

SHAPE = (100, 100)
A = (0, 0, 60, 100)    # unit 0: x in [0, 60)
B = (40, 0, 100, 100)  # unit 1: x in [40, 100); the overlap is x in [40, 60)


def det(unit, index, window, x0, x1, y0, y1, score, holes=()):
    """A rectangular detection [x0, x1) x [y0, y1), mosaic pixels, clipped to its window."""
    x0, x1 = max(x0, window[0]), min(x1, window[2])
    mask = np.ones((y1 - y0, x1 - x0), dtype=bool)
    for hx0, hx1 in holes:  # columns removed (to split a mask into components)
        mask[:, max(hx0 - x0, 0):max(hx1 - x0, 0)] = False
    return UnitDetection(unit, index, window, x0, y0, mask, score, {"name": f"{unit}/{index}"})


def names(merged):
    return [m.best.payload["name"] for m in merged]


def test_border_and_same_galaxy_definitions():
    whole = det(0, 0, A, 45, 55, 10, 20, 0.5)
    cut = det(0, 1, A, 55, 70, 10, 20, 0.5)  # reaches the unit's interior edge x = 60
    assert not touches_unit_border(whole, SHAPE) and touches_unit_border(cut, SHAPE)
    # an edge on the mosaic's border cuts nothing
    assert not touches_unit_border(det(0, 2, A, 0, 10, 0, 10, 0.5), SHAPE)
    assert same_galaxy(whole, det(1, 0, B, 45, 55, 10, 20, 0.1))          # IoU 1
    assert same_galaxy(whole, det(1, 0, B, 40, 70, 0, 40, 0.1))           # contained
    assert not same_galaxy(whole, det(1, 0, B, 54, 70, 10, 20, 0.1))      # 1 column shared


def test_whole_view_wins_over_the_cut_one():
    cut = det(0, 0, A, 50, 66, 10, 20, 0.9)    # unit A sees x 50..59, cut at 60
    whole = det(1, 0, B, 50, 66, 10, 20, 0.4)  # unit B sees it whole
    merged = merge_unit_detections([cut, whole], SHAPE)
    assert names(merged) == ["1/0"]
    assert merged[0].mask.shape == (10, 16) and merged[0].x0 == 50
    assert set(merged[0].seen_by) == {(0, 0), (1, 0)}


def test_duplicates_keep_the_most_confident_view():
    a = det(0, 0, A, 45, 55, 10, 20, 0.3)
    b = det(1, 0, B, 44, 55, 10, 21, 0.8)
    merged = merge_unit_detections([a, b], SHAPE)
    assert names(merged) == ["1/0"] and merged[0].score == 0.8
    assert merged[0].mask.shape == (11, 11)  # the kept view whole, not a union


def test_pieces_of_a_galaxy_larger_than_the_overlap_are_joined():
    left = det(0, 0, A, 20, 80, 40, 50, 0.7)   # x 20..59, cut at 60
    right = det(1, 0, B, 20, 80, 40, 50, 0.6)  # x 40..79, cut at 40
    merged = merge_unit_detections([left, right], SHAPE)
    assert len(merged) == 1 and names(merged) == ["0/0"]
    assert (merged[0].x0, merged[0].mask.shape) == (20, (10, 60)) and merged[0].mask.all()
    assert merged[0].members == ((0, 0), (1, 0))


def test_a_component_belongs_to_the_more_confident_galaxy():
    # P: components at x 0..19 and 30..39; Q: components at 30..39 and 60..89 (another
    # unit); they share one component but are not the same galaxy
    p = det(0, 0, A, 0, 40, 60, 70, 0.9, holes=[(20, 30)])
    q = det(1, 0, (0, 0, 100, 100), 30, 90, 60, 70, 0.5, holes=[(40, 60)])
    assert (p.mask.sum(), q.mask.sum()) == (300, 400) and not same_galaxy(p, q)
    merged = merge_unit_detections([q, p], SHAPE)
    assert names(merged) == ["0/0", "1/0"]
    gp, gq = merged
    assert gp.mask.sum() == 300 and gq.mask.sum() == 300  # q lost its 30..39 component
    assert gq.x0 == 60
    # with too little left, the weaker galaxy is dropped
    merged = merge_unit_detections([q, p], SHAPE, min_kept_fraction=0.8)
    assert names(merged) == ["0/0"]


def test_result_does_not_depend_on_the_order_of_the_units():
    rng = np.random.default_rng(3)
    dets = []
    windows = [(x, y, x + 40, y + 40) for y in (0, 30, 60) for x in (0, 30, 60)]
    for u, w in enumerate(windows):
        for k in range(4):
            x0, y0 = rng.integers(w[0], w[2] - 5), rng.integers(w[1], w[3] - 5)
            dets.append(det(u, k, w, x0, x0 + int(rng.integers(3, 25)), y0,
                            min(y0 + int(rng.integers(3, 25)), w[3]),
                            float(rng.choice([0.2, 0.5, 0.7]))))
    ref = merge_unit_detections(dets, SHAPE)
    assert 0 < len(ref) < len(dets)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(dets))
        again = merge_unit_detections([dets[i] for i in order], SHAPE)
        assert names(again) == names(ref)
        assert all(np.array_equal(a.mask, b.mask) and (a.x0, a.y0) == (b.x0, b.y0)
                   for a, b in zip(again, ref))
    # no pixel belongs to two galaxies
    total = np.zeros(SHAPE, int)
    for g in ref:
        total[g.y0:g.y0 + g.mask.shape[0], g.x0:g.x0 + g.mask.shape[1]] += g.mask
    assert total.max() == 1


def test_bad_options():
    with pytest.raises(ValueError, match="iou_threshold"):
        merge_unit_detections([], SHAPE, iou_threshold=0)
    with pytest.raises(ValueError, match="border"):
        merge_unit_detections([], SHAPE, border=-1)
    assert merge_unit_detections([], SHAPE) == []


def test_pieces_are_compared_where_both_units_see_them():
    # a galaxy spanning x 0..99 cut by both units: the pieces share only x 40..59, an IoU
    # of 0.2 over the whole masks, but they agree exactly where both units see the sky
    left = det(0, 0, A, 0, 100, 40, 50, 0.7)
    right = det(1, 0, B, 0, 100, 40, 50, 0.6)
    assert not same_galaxy(left, right)
    assert same_galaxy(left, right, region=(40, 0, 60, 100))
    merged = merge_unit_detections([left, right], SHAPE)
    assert len(merged) == 1 and merged[0].mask.shape == (10, 100)

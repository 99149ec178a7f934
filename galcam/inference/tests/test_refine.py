"""Known answers of the island snapping of instance masks."""

import numpy as np
import pytest

from galcam.inference.refine import (
    group_islands,
    island_labels,
    island_resolution,
    point_source_area,
    snap_to_islands,
)

from .conftest import gaussian


def _scene():
    """Three islands: two lobes of one galaxy at left, a compact source at right."""
    radio = np.zeros((40, 60), np.float32)
    radio[10:16, 5:12] = 0.8  # lobe 1
    radio[10:16, 20:27] = 0.6  # lobe 2
    radio[25:29, 45:49] = 0.9  # compact source
    return radio


def test_island_labels():
    labels, n = island_labels(_scene())
    assert n == 3 and labels.max() == 3 and (labels > 0).sum() == 42 + 42 + 16
    with pytest.raises(ValueError, match="2-D"):
        island_labels(np.zeros(5))


def test_two_lobes_join_one_instance_and_edges_follow_the_islands():
    radio = _scene()
    labels, n = island_labels(radio)
    walk = np.zeros(radio.shape, bool)
    walk[8:18, 3:30] = True  # a smooth random-walk blob over both lobes and the gap
    (snapped,) = snap_to_islands([walk], [0.9], labels, n)
    np.testing.assert_array_equal(snapped, (radio > 0) & (np.arange(60)[None, :] < 30))
    assert snapped.sum() == 84  # the lobes' pixels exactly, not the gap


def test_contested_island_goes_to_the_stronger_claim():
    radio = _scene()
    labels, n = island_labels(radio)
    a = np.zeros(radio.shape, bool)
    a[8:18, 3:30] = True  # both lobes
    b = np.zeros(radio.shape, bool)
    b[8:18, 18:50] = True  # lobe 2 only partly... and nothing else
    b[24:30, 44:50] = True  # the compact source
    snapped = snap_to_islands([a, b], [0.9, 0.5], labels, n)
    assert snapped[0][12, 22] and not snapped[1][12, 22]  # lobe 2 stays with the stronger
    assert snapped[1][26, 46] and not snapped[0][26, 46]
    # reversing the order of the instances gives the same assignment
    rev = snap_to_islands([b, a], [0.5, 0.9], labels, n)
    np.testing.assert_array_equal(rev[1], snapped[0])
    np.testing.assert_array_equal(rev[0], snapped[1])


def test_weak_overlap_and_empty_cases():
    radio = _scene()
    labels, n = island_labels(radio)
    edge = np.zeros(radio.shape, bool)
    edge[10:16, 5:7] = True  # 2/7 of lobe 1's columns: below the default 0.3
    assert snap_to_islands([edge], [1.0], labels, n) == [None]
    assert snap_to_islands([edge], [1.0], labels, n, min_overlap=0.25)[0].sum() == 42
    assert snap_to_islands([], [], labels, n) == []
    assert snap_to_islands([edge], [1.0], np.zeros_like(labels), 0) == [None]
    with pytest.raises(ValueError, match="min_overlap"):
        snap_to_islands([edge], [1.0], labels, n, min_overlap=0)


# ------------------------------------------------------------------ grouping by votes
def _field(h, w, targets):
    """A stride-4 displacement field sending every grid pixel in each box to a target.

    ``targets``: list of ((y0, y1, x0, x1) image-pixel box, (ty, tx) image-pixel target).
    """
    h4, w4 = (h - 1) // 4 + 1, (w - 1) // 4 + 1
    dp = np.zeros((2, h4, w4), np.float32)
    gy, gx = np.indices((h4, w4))
    cy, cx = gy * 4 + 1.5, gx * 4 + 1.5  # image position of the grid pixels' centres
    for (y0, y1, x0, x1), (ty, tx) in targets:
        inside = (cy >= y0 - 4) & (cy < y1 + 4) & (cx >= x0 - 4) & (cx < x1 + 4)
        dp[0][inside] = (ty - cy[inside]) / 4
        dp[1][inside] = (tx - cx[inside]) / 4
    return dp


def test_lobes_voting_for_one_centre_are_one_galaxy():
    from galcam.inference.refine import group_islands, island_votes

    radio = _scene()
    labels, n = island_labels(radio)
    # both lobes point at the gap between them (y 13, x 16); the compact source at itself
    dp = _field(40, 60, [((10, 16, 5, 12), (13, 16)), ((10, 16, 20, 27), (13, 16))])
    votes = island_votes(labels, n, radio, dp)
    np.testing.assert_allclose(votes[0], [16, 13], atol=1.5)
    np.testing.assert_allclose(votes[1], [16, 13], atol=1.5)
    np.testing.assert_allclose(votes[2], [46.5, 26.5], atol=1.5)  # its own centre
    groups = group_islands(votes, link_radius=5)
    assert groups[0] == groups[1] != groups[2]
    # without the field every island is its own galaxy (lobes 15 px apart)
    flat = island_votes(labels, n, radio, np.zeros_like(dp))
    assert len(set(group_islands(flat, link_radius=5).tolist())) == 3
    with pytest.raises(ValueError, match="link_radius"):
        group_islands(votes, link_radius=0)
    with pytest.raises(ValueError, match="dp"):
        island_votes(labels, n, radio, dp[:, :3])
    assert group_islands(np.zeros((0, 2)), link_radius=3).size == 0


def test_point_source_area_known_answers():
    # a beam of sigmas 2.5 x 2 px: at S/N 3 e its > 3 sigma island is an ellipse of 2 pi 5 px2
    assert point_source_area(3 * np.e, 5.0) == pytest.approx(2 * np.pi * 5.0)
    np.testing.assert_allclose(point_source_area([1.0, 3.0, 30.0], 5.0, n_sigma=3.0),
                               [0.0, 0.0, 2 * np.pi * 5.0 * np.log(10.0)])
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="beam_sigma2: expected a positive"):
            point_source_area(10.0, bad)
    with pytest.raises(ValueError, match="n_sigma"):
        point_source_area(10.0, 5.0, n_sigma=0)


def test_island_resolution_tells_point_sources_from_extended_ones():
    beam = (2.5, 2.0)
    snr = np.zeros((80, 80))
    for peak, x0 in ((10.0, 10), (100.0, 30), (1000.0, 55)):  # point sources, any brightness
        snr += gaussian((80, 80), x0, 15, beam, peak)
    snr += gaussian((80, 80), 40, 55, (3 * beam[0], 3 * beam[1]), 40.0)  # 9 beams of area
    labels, n = island_labels(np.where(snr > 3, snr, 0))
    assert n == 4
    area, point = island_resolution(labels, n, snr, beam[0] * beam[1])
    ratio = area / point
    extended = labels[55, 40] - 1
    for k in range(n):
        if k == extended:
            assert ratio[k] == pytest.approx(9.0, rel=0.1)
        else:
            assert ratio[k] == pytest.approx(1.0, abs=0.15)
    # a bright point source has a large island, but no more than its point-source area
    assert area.max() > 4 * area.min()
    with pytest.raises(ValueError, match="snr: expected shape"):
        island_resolution(labels, n, snr[:10], 5.0)
    assert [len(v) for v in island_resolution(np.zeros((4, 4), int), 0, np.zeros((4, 4)), 5.0)] \
        == [0, 0]


def test_group_islands_keeps_isolated_islands_apart():
    votes = np.array([[10.0, 10.0], [14.0, 10.0], [18.0, 10.0], [60.0, 60.0]])
    np.testing.assert_array_equal(group_islands(votes, link_radius=5), [0, 0, 0, 1])
    # the middle island isolated: the chain through it is broken
    groups = group_islands(votes, link_radius=5, isolated=[False, True, False, False])
    assert len(set(groups.tolist())) == 4
    groups = group_islands(votes, link_radius=9, isolated=[False, True, False, False])
    assert groups[0] == groups[2] != groups[1]
    with pytest.raises(ValueError, match="isolated: expected 4 flags"):
        group_islands(votes, link_radius=5, isolated=[True])

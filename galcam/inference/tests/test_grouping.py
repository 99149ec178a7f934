"""The instance step: known answers of its island helpers, its strategies and its tool."""

import numpy as np
import pytest

from galcam.inference.grouping import (
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
    from galcam.inference.grouping import group_islands, island_votes

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


# ------------------------------------------------------------------ GalaxyGrouper
def _evidence(radio01, cams, probs, dp=None, **kw):
    from galcam.inference import TileEvidence

    h4, w4 = cams.shape[1:]
    if dp is None:
        dp = np.zeros((2, h4, w4), np.float32)
    return TileEvidence(cams=cams, probabilities=probs, edge=np.zeros((h4, w4), np.float32),
                        displacement=dp, radio01=radio01, **kw)


def _gauss(shape, x0, y0, sx, sy, peak):
    yy, xx = np.indices(shape)
    return peak * np.exp(-0.5 * (((xx - x0) / sx) ** 2 + ((yy - y0) / sy) ** 2))


def _cam_up(cams):
    import torch
    import torch.nn.functional as F

    return F.interpolate(torch.from_numpy(cams)[None], scale_factor=4, mode="bilinear",
                         align_corners=False)[0].numpy()


def test_grouper_converts_sky_units_to_the_models_pixels():
    import astropy.units as u

    from galcam.inference import GalaxyGrouper

    grouper = GalaxyGrouper(link_radius=30 * u.arcsec, area_scale=0.25 * u.arcmin ** 2)
    s = grouper.settings(pixel_scale=3.0)
    assert s.link_radius == 10.0 and s.area_scale == pytest.approx(900 / 9.0)
    # pixels stay pixels whatever the scale
    s = GalaxyGrouper(link_radius=7 * u.pix, area_scale=50 * u.pix ** 2).settings(pixel_scale=3.0)
    assert (s.link_radius, s.area_scale) == (7.0, 50.0)
    # the defaults: 20" and 600 arcsec^2, i.e. 10 and 150 pixels of 2" (float noise of a
    # recorded pixel scale is rounded away)
    s = GalaxyGrouper().settings(pixel_scale=2.000000000000016)
    assert (s.link_radius, s.area_scale) == (10.0, 150.0)
    for key, bad in (("link_radius", 0 * u.arcsec), ("link_radius", 3 * u.Jy),
                     ("area_scale", 5 * u.arcsec), ("link_radius", "20 arcsec"),
                     ("area_scale", -1.0), ("method", "pixels"), ("class_threshold", 2),
                     ("resolution_scale", 0), ("unresolved_ratio", "yes"),
                     ("min_classes", True), ("island_overlap", 0)):
        with pytest.raises(ValueError, match=key):
            GalaxyGrouper(**{key: bad})


def test_grouper_options_given_then_model_then_defaults(model_dir):
    import astropy.units as u

    from galcam.inference import GROUPER_DEFAULTS, GalaxyGrouper
    from galcam.models import ModelSpec

    spec = ModelSpec(classes=("A", "B"), pixel_scale=4.0, recommended_class_threshold=0.0,
                     grouping={"resolution_scale": None, "link_radius_arcsec": 40.0})
    opts = GalaxyGrouper().options(spec)
    assert opts["class_threshold"] == 0.0 and opts["resolution_scale"] is None
    assert opts["link_radius"] == 40 * u.arcsec
    assert opts["unresolved_ratio"] == GROUPER_DEFAULTS["unresolved_ratio"]
    s = GalaxyGrouper(class_threshold=0.4, resolution_scale=2.0).settings(spec)
    assert (s.class_threshold, s.resolution_scale, s.link_radius) == (0.4, 2.0, 10.0)
    assert GalaxyGrouper(unresolved_ratio="off").settings(spec).unresolved_ratio is None
    with pytest.raises(ValueError, match=r"min_classes: expected an integer in \[0, 2\]"):
        GalaxyGrouper(min_classes=3).settings(spec)


def test_grouped_score_uses_mean_cam_over_the_galaxy():
    """Score of 'grouped': extent x (1 + p_c x mean of the class CAM) / 2."""
    import math

    import astropy.units as u

    from galcam.inference import GalaxyGrouper

    radio01 = np.zeros((32, 32), np.float32)
    radio01[2:8, 2:8] = 1.0      # island of 36 pixels
    radio01[22:26, 22:26] = 0.5  # island of 16 pixels, 28 px away: its own galaxy
    cams = np.zeros((4, 8, 8), np.float32)
    cams[0] = np.linspace(0.0, 1.0, 8)[None, :]  # a CAM rising from left to right
    probs = np.array([0.9, 0.2, 0.1, 0.1], np.float32)
    grouper = GalaxyGrouper(class_threshold=0.0, area_scale=150 * u.pix ** 2)
    found = grouper(_evidence(radio01, cams, probs))
    cam = _cam_up(cams)[0]
    assert len(found) == 2
    for galaxy in found:
        assert galaxy.class_index == 0
        area = int(galaxy.mask.sum())
        assert area in (36, 16)
        extent = 1 - math.exp(-area / 150.0)
        values = np.clip(cam[galaxy.mask], 0, 1)
        assert galaxy.score == pytest.approx(extent * (1 + 0.9 * values.mean()) / 2, rel=1e-6)
        assert galaxy.score < extent * (1 + 0.9 * values.max()) / 2  # the mean, not the peak
        np.testing.assert_array_equal(galaxy.cam_map, _cam_up(cams)[0])


def test_grouped_score_resolution_term():
    """An unresolved source scores 0; an extended one exp(-(R - 1)) below its old score."""
    import math

    from galcam.inference import GalaxyGrouper

    beam_sigma2 = 2.5 * 2.0
    # a point source (the beam) at S/N 200 and a source 3 x the beam at S/N 50, far apart
    snr = _gauss((64, 64), 14, 14, 2.5, 2.0, 200.0) + _gauss((64, 64), 46, 46, 7.5, 6.0, 50.0)
    radio01 = np.where(snr > 3, np.log10(np.maximum(snr, 3)) / np.log10(200), 0).astype(np.float32)
    cams = np.full((4, 16, 16), 0.5, np.float32)
    probs = np.array([0.9, 0.2, 0.1, 0.1], np.float32)
    grouper = GalaxyGrouper(class_threshold=0.0)
    settings = grouper.settings(pixel_scale=2.0)
    old = {int(g.mask.sum()): g.score for g in grouper(_evidence(radio01, cams, probs), settings)}
    snr32 = snr.astype(np.float32)
    new = grouper(_evidence(radio01, cams, probs, snr=snr32, beam_sigma2=beam_sigma2), settings)
    assert len(new) == 2 and len(old) == 2
    cam = _cam_up(cams)[0]
    for galaxy in new:
        mask = galaxy.mask
        area = int(mask.sum())
        point = 2 * math.pi * beam_sigma2 * math.log(snr[mask].max() / 3.0)
        resolved = 1 - math.exp(-max(area / point - 1, 0.0))
        extent = 1 - math.exp(-area / 150.0)
        expected = extent * resolved * (1 + 0.9 * np.clip(cam[mask], 0, 1).mean()) / 2
        assert galaxy.score == pytest.approx(expected, rel=1e-6)
        assert galaxy.score == pytest.approx(old[area] * resolved, rel=1e-6)
        if mask[14, 14]:  # the point source: its island is the beam above 3 sigma
            assert area / point == pytest.approx(1.0, abs=0.1)
            assert galaxy.score < 0.1 * old[area]
        else:  # 9 beams of area: R ~ 9
            assert area / point > 6
            assert galaxy.score > 0.99 * old[area]
    # the term can be switched off
    off = GalaxyGrouper(class_threshold=0.0, resolution_scale="off")
    evidence = _evidence(radio01, cams, probs, snr=snr32, beam_sigma2=beam_sigma2)
    assert sorted(g.score for g in off(evidence)) == pytest.approx(sorted(old.values()), rel=1e-9)
    for bad in (0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="resolution_scale: expected a positive number"):
            GalaxyGrouper(resolution_scale=bad)


def test_unresolved_islands_are_not_grouped():
    """A point source whose vote falls on a galaxy's stays a group of its own (score 0)."""
    import astropy.units as u

    from galcam.inference import GalaxyGrouper

    # an extended source (3 x the beam) and a point source 30 px away; with a zero
    # displacement field their votes are their centroids, within a 35-pixel link radius
    snr = (_gauss((64, 64), 22, 32, 7.5, 6.0, 50.0)
           + _gauss((64, 64), 52, 32, 2.5, 2.0, 80.0)).astype(np.float32)
    radio01 = np.where(snr > 3, np.log10(np.maximum(snr, 3)) / np.log10(80), 0).astype(np.float32)
    assert island_labels(radio01)[1] == 2
    cams = np.full((4, 16, 16), 0.5, np.float32)
    probs = np.array([0.9, 0.2, 0.1, 0.1], np.float32)
    evidence = _evidence(radio01, cams, probs, snr=snr, beam_sigma2=2.5 * 2.0)
    apart = GalaxyGrouper("grouped", class_threshold=0.0, link_radius=35 * u.pix)
    assert apart.settings().unresolved_ratio == 1.5
    found = apart(evidence)
    assert len(found) == 2
    point = [g for g in found if g.mask[32, 52]][0]
    other = [g for g in found if g.mask[32, 22]][0]
    assert point.score < 0.1 * other.score  # unresolved: a resolution term near 0
    together = GalaxyGrouper("grouped", class_threshold=0.0, link_radius=35 * u.pix,
                             unresolved_ratio="off")
    (one,) = together(evidence)
    assert one.mask[32, 52] and one.mask[32, 22]


def test_random_walk_strategies_and_a_registered_one():
    """'walk'/'islands' run IRNet's instance step; a registered strategy is one name away."""
    from galcam.inference import (
        GROUPING_STRATEGIES,
        GalaxyGrouper,
        GroupingStrategy,
        TileGalaxy,
        register_strategy,
    )

    radio01 = np.zeros((32, 32), np.float32)
    radio01[10:20, 10:20] = 1.0
    cams = np.zeros((4, 8, 8), np.float32)
    cams[1, 2:5, 2:5] = 1.0
    probs = np.array([0.1, 0.9, 0.1, 0.1], np.float32)
    evidence = _evidence(radio01, cams, probs)
    for method in ("walk", "islands"):
        found = GalaxyGrouper(method, class_threshold=0.5)(evidence)
        assert found and all(g.class_index == 1 for g in found)
        if method == "islands":  # snapped: whole islands
            assert all(np.array_equal(g.mask, radio01 > 0) for g in found)
    assert GalaxyGrouper("walk", class_threshold=0.95)(evidence) == []

    class Everything(GroupingStrategy):
        name = "everything-test"

        def __call__(self, evidence, settings):
            mask = evidence.radio01 > 0
            return [TileGalaxy(mask=mask, class_index=0, score=1.0,
                               cam_map=np.zeros(mask.shape, np.float32))]

    register_strategy(Everything())
    try:
        (g,) = GalaxyGrouper("everything-test")(evidence)
        assert g.score == 1.0 and g.mask.sum() == 100
        with pytest.raises(ValueError, match="registered already"):
            register_strategy(Everything())
        with pytest.raises(TypeError, match="GroupingStrategy"):
            register_strategy(object())
    finally:
        GROUPING_STRATEGIES.pop("everything-test")


def test_galaxy_class_probabilities_are_the_galaxys_own():
    """Two galaxies of one tile get different probabilities, each summing to one, each
    largest for its own class (the tile's multi-label probabilities are not theirs)."""
    from galcam.inference import GalaxyGrouper
    from galcam.inference.grouping import galaxy_class_probabilities

    radio01 = np.zeros((32, 32), np.float32)
    radio01[2:8, 2:8] = 1.0      # left galaxy
    radio01[22:28, 22:28] = 1.0  # right galaxy
    cams = np.zeros((4, 8, 8), np.float32)
    cams[0, :, :3] = 1.0  # class 0 on the left
    cams[1, :, 5:] = 1.0  # class 1 on the right
    probs = np.array([0.95, 0.99, 0.2, 0.1], np.float32)  # both present in the tile
    found = GalaxyGrouper(class_threshold=0.0)(_evidence(radio01, cams, probs))
    assert len(found) == 2
    for g in found:
        p = g.class_probabilities
        assert p.sum() == pytest.approx(1.0) and int(np.argmax(p)) == g.class_index
    left = [g for g in found if g.mask[4, 4]][0]
    right = [g for g in found if g.mask[25, 25]][0]
    assert (left.class_index, right.class_index) == (0, 1)
    assert not np.allclose(left.class_probabilities, right.class_probabilities)
    # no CAM over a galaxy: the tile's probabilities, normalised over the candidates
    q = galaxy_class_probabilities(probs, np.zeros((4, 32, 32)), radio01 > 0, [1, 2])
    np.testing.assert_allclose(q, [0, 0.99 / 1.19, 0.2 / 1.19, 0])


def test_galaxy_class_probabilities_known_answer_and_empty_mask():
    from galcam.inference.grouping import galaxy_class_probabilities

    cams = np.zeros((3, 20, 30))
    cams[0, 5, 7] = 0.5   # inside the galaxy
    cams[1, 6, 8] = 2.0   # inside, clipped to 1
    cams[1, 15, 25] = 0.9  # outside: not the galaxy's evidence
    cams[2, 15, 25] = 1.0  # outside
    mask = np.zeros((20, 30), bool)
    mask[4:8, 6:10] = True
    p = np.array([0.8, 0.4, 0.9])
    q = galaxy_class_probabilities(p, cams, mask, [0, 1, 2])
    np.testing.assert_allclose(q, np.array([0.8 * 0.5, 0.4 * 1.0, 0.0]) / 0.8)
    # an empty mask: no evidence, the tile's probabilities over the candidates
    q = galaxy_class_probabilities(p, cams, np.zeros((20, 30), bool), [0, 2])
    np.testing.assert_allclose(q, [0.8 / 1.7, 0, 0.9 / 1.7])


def test_rules_grouping_joins_an_aligned_double():
    """'rules': islands grouped by the classical finder's rules, class and score as 'grouped'."""
    import astropy.units as u

    from galcam.inference import GalaxyGrouper
    from galcam.inference.grouping import galaxies_from_groups

    # two lobes elongated along the line joining them, 60 px apart (far beyond the link
    # radius of their zero-displacement votes), and a point source off the axis
    shape = (96, 128)
    snr = (_gauss(shape, 34, 48, 7.0, 3.0, 15.0) + _gauss(shape, 94, 48, 7.0, 3.0, 15.0)
           + _gauss(shape, 64, 85, 2.5, 2.0, 40.0)).astype(np.float32)
    radio01 = np.where(snr > 3, np.log10(np.maximum(snr, 3)) / np.log10(40), 0).astype(np.float32)
    labels, n = island_labels(radio01)
    assert n == 3
    cams = np.full((4, 24, 32), 0.5, np.float32)
    probs = np.array([0.2, 0.9, 0.1, 0.1], np.float32)
    evidence = _evidence(radio01, cams, probs, snr=snr, beam_sigma2=2.5 * 2.0)
    options = {"class_threshold": 0.0, "link_radius": 10 * u.pix}
    votes = GalaxyGrouper("grouped", **options)(evidence)
    assert len(votes) == 3
    rules = GalaxyGrouper(method="rules", **options)
    found = rules(evidence)
    assert len(found) == 2
    (double,) = [g for g in found if g.mask[48, 34]]
    assert double.mask[48, 94] and not double.mask[85, 64]
    assert double.class_index == 1  # FR-II: the class from the CAMs and probabilities
    # the class and score are those of the shared step on the same groups
    lab_group = np.array([0 if labels[48, 34] == k or labels[48, 94] == k else 1
                          for k in range(1, n + 1)])
    area, point = island_resolution(labels, n, snr, 2.5 * 2.0)
    (same,) = [g for g in galaxies_from_groups(evidence, rules.settings(), labels, lab_group,
                                               area, point) if g.mask[48, 34]]
    assert same.score == pytest.approx(double.score)
    # a PNG input (no noise level, no beam): IRNet's votes decide, as with 'grouped'
    png = _evidence(radio01, cams, probs)
    by_votes = GalaxyGrouper(method="grouped", **options)(png)
    assert [g.mask.sum() for g in rules(png)] == [g.mask.sum() for g in by_votes]
    assert GalaxyGrouper().options()["method"] == "rules"  # the default


def test_rule_class_weight_fuses_the_ab_rule_into_the_class():
    """The a/b rule on a galaxy's mask raises its class's log-probability by the weight."""
    import dataclasses
    import math

    import astropy.units as u

    from galcam.baseline import ClassicalFinder
    from galcam.inference import GalaxyGrouper

    shape = (96, 128)
    # an aligned double with bright hotspots at the ends: FR-II by the a/b rule
    snr = (_gauss(shape, 34, 48, 7.0, 3.0, 15.0) + _gauss(shape, 94, 48, 7.0, 3.0, 15.0)
           + _gauss(shape, 30, 48, 2.0, 2.0, 30.0) + _gauss(shape, 98, 48, 2.0, 2.0, 30.0)
           ).astype(np.float32)
    radio01 = np.where(snr > 3, np.log10(np.maximum(snr, 3)) / np.log10(45), 0).astype(np.float32)
    cams = np.full((4, 24, 32), 0.5, np.float32)
    probs = np.array([0.6, 0.5, 0.1, 0.1], np.float32)  # the networks lean to FR-I
    evidence = _evidence(radio01, cams, probs, snr=snr, beam_sigma2=2.5 * 2.0)
    fwhm = math.sqrt(2.5 * 2.0) * 2.3548
    labels, _ = island_labels(radio01)
    assert ClassicalFinder().classify_snr(snr, labels > 0, beam_fwhm=fwhm) == "FR-II"
    assert ClassicalFinder().classify_snr(snr, np.zeros(shape, bool), beam_fwhm=fwhm) is None
    classes = ("FR-I", "FR-II", "FR-X", "R")

    def galaxy(**options):
        grouper = GalaxyGrouper("rules", class_threshold=0.0, link_radius=10 * u.pix, **options)
        settings = dataclasses.replace(grouper.settings(), classes=classes)
        (g,) = grouper(evidence, settings)
        return g

    off, on = galaxy(rule_class_weight="off"), galaxy()
    assert off.class_index == 0  # the networks alone: FR-I (0.6 x 0.5 against 0.5 x 0.5)
    assert on.class_index == 1  # the rule's FR-II raised by exp(0.5): 0.25 e^0.5 > 0.3
    assert on.class_probabilities.sum() == pytest.approx(1.0)
    # the score keeps its formula, with the chosen class's p_c (CAMs uniformly 0.5)
    assert on.score == pytest.approx(off.score * (1 + 0.5 * 0.5) / (1 + 0.6 * 0.5), rel=1e-6)
    assert galaxy(rule_class_weight=0.1).class_index == 0  # too weak to turn it
    # without the model's class names (no spec) the networks alone decide
    grouper = GalaxyGrouper("rules", class_threshold=0.0, link_radius=10 * u.pix)
    assert grouper(evidence)[0].class_index == 0
    with pytest.raises(ValueError, match="rule_class_weight"):
        GalaxyGrouper(rule_class_weight=-1)

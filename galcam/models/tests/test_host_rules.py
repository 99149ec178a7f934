import numpy as np
import pytest

from galcam.models.host_rules import HostPeak, find_host


def gaussian(x0, y0, sigma, shape=(32, 32), amp=1.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return amp * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))


@pytest.fixture
def mask():
    m = np.zeros((32, 32), dtype=bool)
    m[6:28, 10:30] = True
    return m


@pytest.mark.parametrize("sigma", [1.0, 1.5, 3.0])
def test_subpixel_ir_peak_recovered(mask, sigma):
    ir = gaussian(20.3, 15.7, sigma) + 0.01
    cam = np.where(mask, 0.8, 0.0)  # flat instance CAM
    host = find_host(cam, mask, ir)
    assert isinstance(host, HostPeak)
    assert host.x == pytest.approx(20.3, abs=0.15)
    assert host.y == pytest.approx(15.7, abs=0.15)
    assert host.score == pytest.approx(1.0)
    assert host.fallback is False
    coarse = find_host(cam, mask, ir, refine=False)
    assert (coarse.x, coarse.y) == (20.0, 16.0)


def test_cam_weighting_selects_among_ir_sources(mask):
    # two IR sources in the mask; the CAM peaks near the second one
    ir = gaussian(12, 10, 1.0) + gaussian(24, 22, 1.0, amp=0.7)
    cam = gaussian(23, 21, 3.0)
    host = find_host(cam, mask, ir)
    assert host.x == pytest.approx(24, abs=0.5) and host.y == pytest.approx(22, abs=0.5)
    assert 0 < host.score < 1


def test_peak_outside_mask_ignored(mask):
    ir = gaussian(3, 3, 1.0, amp=10.0) + gaussian(20.3, 15.7, 1.5)
    host = find_host(np.ones((32, 32)), mask, ir)
    assert host.x == pytest.approx(20.3, abs=0.15)
    assert host.y == pytest.approx(15.7, abs=0.15)


def test_fallback_to_cam_peak_when_no_ir(mask):
    cam = gaussian(17, 11, 2.0)
    for ir in (np.zeros((32, 32)), -gaussian(20, 15, 2.0), np.full((32, 32), np.nan)):
        host = find_host(cam, mask, ir)
        assert host.fallback is True and host.score == 0.0
        assert host.x == pytest.approx(17, abs=0.15) and host.y == pytest.approx(11, abs=0.15)
    # a map that does not overlap the mask: first mask pixel, never (0, 0) outside the mask
    host = find_host(gaussian(2, 2, 0.5), mask, np.zeros((32, 32)))
    assert host.fallback and mask[int(host.y), int(host.x)]


def test_refinement_stays_inside_at_borders():
    m = np.zeros((10, 10), dtype=bool)
    m[0:3, 0:3] = True
    ir = gaussian(0, 0, 1.0, shape=(10, 10))
    host = find_host(np.ones((10, 10)), m, ir)
    assert (host.x, host.y) == (0.0, 0.0)


def test_bad_input(mask):
    with pytest.raises(ValueError, match="same shape"):
        find_host(np.ones((32, 32)), mask, np.ones((30, 32)))
    with pytest.raises(TypeError, match="boolean"):
        find_host(np.ones((32, 32)), mask.astype(int), np.ones((32, 32)))
    with pytest.raises(ValueError, match="empty"):
        find_host(np.ones((32, 32)), np.zeros((32, 32), bool), np.ones((32, 32)))
    with pytest.raises(ValueError, match="2-D"):
        find_host(np.ones(32), mask, np.ones(32))


# ------------------------------------------------------------------ the 'core' rule
def test_core_host_is_ir_source_nearest_radio_centroid():
    from galcam.models.host_rules import (
        find_core_host,
        infrared_sources,
        radio_centroid,
        radio_rms_radius,
    )

    shape = (60, 80)
    radio = np.zeros(shape)
    radio[25:35, 5:15] = 1.0  # west lobe
    radio[25:35, 55:65] = 1.0  # east lobe, same brightness: centroid at x 34.5, y 29.5
    mask = radio > 0
    assert radio_centroid(mask, radio) == pytest.approx((34.5, 29.5))
    ir = gaussian(36.3, 29.2, 1.2, shape=shape, amp=0.5)  # faint host near the centre
    ir += gaussian(10.0, 30.0, 1.2, shape=shape, amp=1.0)  # bright star on a lobe
    ir[ir < 0.05] = 0
    sources = infrared_sources(ir)
    assert len(sources) == 2
    host = find_core_host(mask, ir, radio)
    assert not host.fallback
    assert host.x == pytest.approx(36.3, abs=0.3) and host.y == pytest.approx(29.2, abs=0.3)
    # the default search radius follows the galaxy's size: its rms radius (25.3 px:
    # lobes 25 px from the centroid, variance (10^2 - 1) / 12 along x and y within a lobe)
    assert radio_rms_radius(mask, radio) == pytest.approx(np.sqrt(25**2 + 2 * 99 / 12))
    # no infrared source within 1 px: the centroid itself, flagged
    far = find_core_host(mask, ir, radio, max_distance=1.0)
    assert far.fallback and (far.x, far.y) == pytest.approx((34.5, 29.5)) and far.score == 0
    for bad in (-1, 0, float("nan"), True, "5"):
        with pytest.raises(ValueError, match="max_distance"):
            find_core_host(mask, ir, radio, max_distance=bad)
    with pytest.raises(ValueError, match="empty"):
        find_core_host(np.zeros(shape, bool), ir, radio)


def test_core_host_prefers_the_infrared_source_on_the_radio_core():
    from galcam.models.host_rules import find_core_host, radio_centroid

    shape = (60, 80)
    radio = gaussian(30.0, 30.0, 2.0, shape=shape)  # bright core
    radio[27:34, 31:55] += 0.1  # one-sided jet: pulls the centroid east of the core
    mask = radio > 0.02
    cx, cy = radio_centroid(mask, radio)
    assert 34 < cx < 37
    ir = gaussian(30.0, 30.0, 1.2, shape=shape, amp=0.5)  # host, on the radio core
    ir += gaussian(cx + 1.0, cy + 4.5, 1.2, shape=shape, amp=0.5)  # off the emission, nearer
    ir[ir < 0.05] = 0
    nearest = find_core_host(mask, ir, radio, radio_weight=0.0)
    assert nearest.x == pytest.approx(cx + 1.0, abs=0.3)
    host = find_core_host(mask, ir, radio)  # default radio_weight 0.5
    assert (host.x, host.y) == pytest.approx((30.0, 30.0), abs=0.3)
    assert not host.fallback
    # the score stays a function of the distance to the centroid
    d = np.hypot(host.x - cx, host.y - cy)
    assert host.score == pytest.approx(np.exp(-d**2 / 18.0))
    for bad in (-0.5, np.nan, np.inf):
        with pytest.raises(ValueError, match="radio_weight"):
            find_core_host(mask, ir, radio, radio_weight=bad)


def test_infrared_sources_separate_blended_galaxies():
    from galcam.models.host_rules import infrared_sources

    shape = (40, 40)
    ir = gaussian(15.0, 20.0, 1.5, shape=shape, amp=1.0)  # bright neighbour
    ir += gaussian(20.4, 20.3, 1.5, shape=shape, amp=0.4)  # host in the same island
    ir[ir < 0.02] = 0
    from scipy import ndimage

    assert ndimage.label(ir > 0)[1] == 1  # one island, two galaxies
    src = infrared_sources(ir)
    assert len(src) == 2
    assert src[0, 2] > src[1, 2]  # brightest first
    assert src[0, :2] == pytest.approx((15.0, 20.0), abs=0.35)
    assert src[1, :2] == pytest.approx((20.4, 20.3), abs=0.6)
    # islands below min_pixels are not sources; an empty channel has none
    speck = np.zeros(shape)
    speck[5, 5:8] = 1.0
    assert infrared_sources(speck).shape == (0, 3)
    assert infrared_sources(speck, min_pixels=3).shape == (1, 3)
    assert infrared_sources(np.full(shape, np.nan)).shape == (0, 3)
    with pytest.raises(ValueError, match="smooth"):
        infrared_sources(ir, smooth=-1)


def test_core_host_search_radius_follows_the_galaxy_size():
    from galcam.models.host_rules import find_core_host

    shape = (60, 60)
    radio = gaussian(30.0, 30.0, 1.7, shape=shape)  # an unresolved source
    mask = radio > 0.01
    ir = gaussian(36.0, 30.0, 1.2, shape=shape, amp=1.0)  # unrelated galaxy 6 px away
    ir[ir < 0.05] = 0
    host = find_core_host(mask, ir, radio)  # radius max(3, 1.0 x 1.7 px) = 3 px
    assert host.fallback and (host.x, host.y) == pytest.approx((30.0, 30.0), abs=1e-6)
    wide = find_core_host(mask, ir, radio, min_search=8.0)
    assert not wide.fallback and wide.x == pytest.approx(36.0, abs=0.3)
    assert not find_core_host(mask, ir, radio, max_distance=np.inf).fallback
    with pytest.raises(ValueError, match="min_search"):
        find_core_host(mask, ir, radio, min_search=np.nan)

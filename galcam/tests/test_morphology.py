"""Tests of the a/b Fanaroff-Riley rule (Gupta et al. 2023, sec. 2.3.2) on analytic sources."""

import math

import numpy as np
import pytest
from astropy import units as u
from astropy.wcs import WCS

from galcam.morphology import Morphology, NoEmissionError, classify_ab, measure_ab

RMS = 1.0


def gauss(shape, x0, y0, sigma, amp, sigma_y=None):
    y, x = np.mgrid[: shape[0], : shape[1]]
    sy = sigma if sigma_y is None else sigma_y
    return amp * np.exp(-0.5 * (((x - x0) / sigma) ** 2 + ((y - y0) / sy) ** 2))


def double(shape=(128, 160), sep=60, sigma=3.0, amp=200.0, angle_deg=0.0, center=None):
    """Two equal Gaussians ``sep`` px apart along ``angle_deg``; a and b are known."""
    cy, cx = center or ((shape[0] - 1) / 2, (shape[1] - 1) / 2)
    t = math.radians(angle_deg)
    dx, dy = 0.5 * sep * math.cos(t), 0.5 * sep * math.sin(t)
    img = gauss(shape, cx - dx, cy - dy, sigma, amp) + gauss(shape, cx + dx, cy + dy, sigma, amp)
    return img, (cx - dx, cy - dy), (cx + dx, cy + dy)


def expected_b(sep, sigma, amp, n_sigma=5.0):
    """5-sigma extent of a double along its axis: sep + 2 * radius of the 5-sigma contour + 1 px."""
    return sep + 2 * sigma * math.sqrt(2 * math.log(amp / (n_sigma * RMS))) + 1.0


class TestClassifyAB:
    @pytest.mark.parametrize(
        "a, b, label",
        [
            (0.0, 10.0, "R"),
            (-1.0, 10.0, "R"),
            (4.0, 10.0, "FR-I"),
            (4.49, 10.0, "FR-I"),
            (4.5, 10.0, "FR-X"),
            (5.0, 10.0, "FR-X"),
            (5.5, 10.0, "FR-X"),
            (5.51, 10.0, "FR-II"),
            (9.0, 10.0, "FR-II"),
        ],
    )
    def test_thresholds(self, a, b, label):
        assert classify_ab(a, b) == label

    def test_quantities_in_different_units(self):
        assert classify_ab(1 * u.arcmin, 100 * u.arcsec) == "FR-II"  # 60/100
        assert classify_ab(20 * u.arcsec, 1 * u.arcmin) == "FR-I"  # 20/60

    def test_custom_thresholds(self):
        assert classify_ab(4.0, 10.0, fr1_max=0.3, fr2_min=0.35) == "FR-II"

    @pytest.mark.parametrize("b", [0.0, -3.0, float("nan")])
    def test_bad_b(self, b):
        with pytest.raises(ValueError, match="b must be a positive extent"):
            classify_ab(1.0, b)

    def test_bad_thresholds(self):
        with pytest.raises(ValueError, match="fr1_max <= fr2_min"):
            classify_ab(1.0, 2.0, fr1_max=0.6, fr2_min=0.5)


class TestMeasureAB:
    def test_double_known_a_and_b(self):
        img, p1, p2 = double(sep=60, sigma=3.0, amp=200.0)
        m = measure_ab(img, RMS)
        assert isinstance(m, Morphology)
        assert m.n_peaks == 2
        assert m.a == pytest.approx(60, abs=1.0)
        assert m.b == pytest.approx(expected_b(60, 3.0, 200.0), abs=1.5)
        assert m.theta == pytest.approx(0, abs=3) or m.theta == pytest.approx(180, abs=3)
        assert m.center[0] == pytest.approx((p1[0] + p2[0]) / 2, abs=1)
        assert m.label == "FR-II"
        assert m.ratio == pytest.approx(m.a / m.b)

    @pytest.mark.parametrize("angle", [30.0, 75.0, 120.0])
    def test_rotation(self, angle):
        img, _, _ = double(shape=(160, 160), sep=50, sigma=2.5, amp=100.0, angle_deg=angle)
        m = measure_ab(img, RMS)
        assert m.a == pytest.approx(50, abs=1.5)
        assert m.b == pytest.approx(expected_b(50, 2.5, 100.0), abs=2.5)
        assert min(abs(m.theta - angle), 180 - abs(m.theta - angle)) < 4

    def test_fr1_like(self):
        # two jet peaks 16 px apart and a faint, broad plume reaching +-45 px: a/b ~ 0.17
        shape = (100, 140)
        img, _, _ = double(shape=shape, sep=16, sigma=2.5, amp=100.0)
        img += gauss(shape, 69.5, 49.5, 18.0, 15.0, sigma_y=5.0)
        m = measure_ab(img, RMS)
        assert m.n_peaks == 2
        assert m.a == pytest.approx(16, abs=1)
        assert m.ratio < 0.45
        assert m.label == "FR-I"

    def test_per_side_pairing_fanaroff_riley(self):
        # an FR-I: two bright jet knots 16 px apart near the core, and two faint but
        # prominent blobs at the ends of a plume 90 px long. The farthest peaks make it an
        # FR-II; Fanaroff & Riley's brightest peak on each side keep it an FR-I.
        shape = (100, 160)
        img, _, _ = double(shape=shape, sep=16, sigma=2.5, amp=100.0)
        img += gauss(shape, 79.5, 49.5, 22.0, 12.0, sigma_y=4.0)
        img += gauss(shape, 79.5 - 38, 49.5, 2.5, 20.0) + gauss(shape, 79.5 + 38, 49.5, 2.5, 20.0)
        far = measure_ab(img, RMS, peak_fraction=0.1, prominence_fraction=0.02)
        assert far.n_peaks == 4
        assert far.a == pytest.approx(76, abs=1.5)
        assert far.label == "FR-II"
        side = measure_ab(img, RMS, peak_fraction=0.1, prominence_fraction=0.02,
                          pairing="per-side")
        assert side.a == pytest.approx(16, abs=1)
        assert side.label == "FR-I"
        # same peaks and box: only a differs
        assert side.b == far.b and side.n_peaks == far.n_peaks
        # an FR-II (bright hotspots at the ends) is the same either way
        img2, _, _ = double(shape=shape, sep=70, sigma=2.5, amp=100.0)
        assert measure_ab(img2, RMS, pairing="per-side").a == pytest.approx(70, abs=1)
        with pytest.raises(ValueError, match="pairing must be one of"):
            measure_ab(img2, RMS, pairing="nearest")

    def test_fr_x_boundary(self):
        # a/b = 0.5: peaks 40 px apart in emission 80 px long
        shape = (100, 160)
        img, _, _ = double(shape=shape, sep=40, sigma=2.0, amp=50.0)
        img += gauss(shape, 79.5, 49.5, 30.0, 12.0, sigma_y=3.0)
        m = measure_ab(img, RMS)
        assert 0.45 <= m.ratio <= 0.55, m
        assert m.label == "FR-X"

    def test_single_peak_is_r(self):
        img = gauss((64, 64), 31.5, 30.0, 4.0, 80.0, sigma_y=2.0)
        m = measure_ab(img, RMS)
        assert m.a == 0.0
        assert m.n_peaks == 1
        assert m.label == "R"
        assert m.b > m.c

    def test_close_peaks_merge_into_one(self):
        # two Gaussians closer than min_separation count as one peak
        img, _, _ = double(shape=(64, 64), sep=3, sigma=3.0, amp=50.0)
        assert measure_ab(img, RMS, min_separation=5).label == "R"

    def test_faint_and_shallow_peaks_ignored(self):
        img, _, _ = double(sep=60, sigma=3.0, amp=200.0)
        # a third, faint peak far out: below peak_fraction of the brightest
        img += gauss(img.shape, 150, 63.5, 2.0, 12.0)
        m = measure_ab(img, RMS, peak_fraction=0.1)
        assert m.n_peaks == 2
        assert measure_ab(img, RMS, peak_fraction=0.01, prominence_fraction=0.0).n_peaks == 3

    def test_noise(self, rng):
        img, _, _ = double(sep=60, sigma=3.0, amp=200.0)
        noisy = img + rng.normal(0, RMS, img.shape)
        m = measure_ab(noisy, RMS)
        assert m.n_peaks == 2
        assert m.a == pytest.approx(60, abs=1.5)
        assert m.label == "FR-II"

    def test_mask_selects_source(self):
        shape = (100, 200)
        left, _, _ = double(shape=shape, sep=30, sigma=2.0, amp=100.0, center=(50, 50))
        right = gauss(shape, 150, 50, 3.0, 100.0)
        mask = np.zeros(shape, dtype=bool)
        mask[:, 100:] = True
        assert measure_ab(left + right, RMS, mask=mask).label == "R"
        assert measure_ab(left + right, RMS, mask=~mask).a == pytest.approx(30, abs=1)

    def test_rms_map_and_nans(self):
        img, _, _ = double(sep=40, sigma=2.0, amp=100.0)
        img[:, :5] = np.nan
        m1 = measure_ab(img, np.full(img.shape, 2.0))
        m2 = measure_ab(img, 2.0)
        assert m1.a == m2.a and m1.b == m2.b and m1.rms == 2.0

    def test_box_mask_covers_emission(self):
        img, _, _ = double(sep=50, sigma=2.5, amp=100.0, angle_deg=35)
        m = measure_ab(img, RMS)
        box = m.box_mask(img.shape)
        assert box[img > 5 * RMS].all()
        assert box.sum() <= (m.b + 1) * (m.c + 1)
        corners = m.box_corners()
        assert corners.shape == (4, 2)
        assert np.hypot(*(corners[1] - corners[0])) == pytest.approx(m.b)

    def test_sky_position_angle(self):
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [320.0, -55.0]
        w.wcs.crpix = [80.0, 64.0]
        w.wcs.cdelt = [-2 / 3600, 2 / 3600]
        img, _, _ = double(sep=60)  # along x: east-west
        assert measure_ab(img, RMS).sky_position_angle(w).to_value(u.deg) == pytest.approx(
            90, abs=3
        )
        img, _, _ = double(shape=(160, 160), sep=60, angle_deg=90)  # along y: north-south
        pa = measure_ab(img, RMS).sky_position_angle(w).to_value(u.deg)
        assert min(pa, 180 - pa) < 3

    def test_to_table_and_dict(self):
        m = measure_ab(double()[0], RMS)
        t = m.to_table()
        assert len(t) == 1 and t["a"].unit == u.pix and t["label"][0] == "FR-II"
        d = m.to_dict()
        assert d["label"] == "FR-II" and len(d["peaks"]) == 2

    def test_no_emission(self):
        with pytest.raises(NoEmissionError, match="no pixel is above 5"):
            measure_ab(np.zeros((20, 20)), RMS)
        img = gauss((40, 40), 10, 10, 2.0, 50.0)
        mask = np.zeros(img.shape, dtype=bool)
        mask[30:, 30:] = True
        with pytest.raises(NoEmissionError, match="inside the mask"):
            measure_ab(img, RMS, mask=mask)

    def test_bad_input(self):
        img = double()[0]
        with pytest.raises(ValueError, match="2-D image"):
            measure_ab(img[None], RMS)
        with pytest.raises(ValueError, match="rms must be positive"):
            measure_ab(img, 0.0)
        with pytest.raises(ValueError, match="rms must be a scalar or a map"):
            measure_ab(img, np.ones((3, 3)))
        with pytest.raises(ValueError, match="mask shape"):
            measure_ab(img, RMS, mask=np.ones((3, 3), bool))
        with pytest.raises(ValueError, match="min_separation"):
            measure_ab(img, RMS, min_separation=0)

"""Resampling to the model's pixel scale and mapping results back (known sky positions)."""

import logging
import math
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs.utils import pixel_to_pixel

from galcam.inference.resample import (
    axis_pixel_scales,
    beam_matched_pixel_scale,
    check_beam,
    map_crop_back,
    resample_image,
    working_wcs,
)
from galcam.io import Beam

from .conftest import make_radio, make_wcs


def test_working_wcs_geometry():
    wcs = make_wcs((90, 120), pixel_scale=1.8)
    new, shape, factors = working_wcs(wcs, (90, 120), 2.0 * u.arcsec)
    assert shape == (81, 108)
    np.testing.assert_allclose(factors, (2.0 / 1.8, 2.0 / 1.8))
    np.testing.assert_allclose(axis_pixel_scales(new), (2.0, 2.0), rtol=1e-9)
    # same sky at the image centres; linear pixel relation x_old = f x_new + const
    c_old = wcs.pixel_to_world(59.5, 44.5)
    c_new = new.pixel_to_world(53.5, 40.0)
    assert c_old.separation(c_new) < 1e-3 * u.arcsec
    xn = np.array([0.0, 10.0, 50.0])
    xo, yo = pixel_to_pixel(new, wcs, xn, np.full(3, 40.0))
    np.testing.assert_allclose(np.diff(xo) / np.diff(xn), factors[0], rtol=1e-4)
    with pytest.raises(ValueError, match="pixel_scale"):
        working_wcs(wcs, (90, 120), -1)


def test_resample_image_keeps_surface_brightness():
    radio = make_radio((90, 90), pixel_scale=1.8, sources=((45, 45),), seed=3)
    out = resample_image(radio, 2.0)
    assert out.data.shape == (81, 81) and out.unit == radio.unit
    assert out.meta["beam"] == radio.meta["beam"] and out.meta["resampled_from"] == [90, 90]
    # the peak of the central source is at the same sky position, similar brightness
    sky_in = radio.wcs.pixel_to_world(*np.unravel_index(np.argmax(radio.data), (90, 90))[::-1])
    yx = np.unravel_index(np.nanargmax(out.data), out.data.shape)
    sky_out = out.wcs.pixel_to_world(yx[1], yx[0])
    assert sky_in.separation(sky_out) < 2.5 * u.arcsec
    assert np.nanmax(out.data) == pytest.approx(radio.data.max(), rel=0.1)


def test_map_crop_back_lands_on_the_right_pixels():
    """A disk at a known sky position on the working grid maps onto the original grid."""
    image_wcs = make_wcs((100, 100), pixel_scale=1.8)
    work, work_shape, _ = working_wcs(image_wcs, (100, 100), 2.0)
    target = SkyCoord(150.0, 2.0, unit="deg").directional_offset_by(
        40 * u.deg, 30 * u.arcsec)
    radius = 8 * u.arcsec
    # the disk on the working grid (2"/px)
    wx, wy = (float(v) for v in work.world_to_pixel(target))
    yy, xx = np.mgrid[:work_shape[0], :work_shape[1]]
    disk_w = (xx - wx) ** 2 + (yy - wy) ** 2 <= (radius / (2 * u.arcsec)).value ** 2
    ys, xs = np.nonzero(disk_w)
    crop = disk_w[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    mask, x0, y0 = map_crop_back(crop, xs.min(), ys.min(), work, image_wcs, (100, 100))
    ys2, xs2 = np.nonzero(mask)
    ix, iy = (float(v) for v in image_wcs.world_to_pixel(target))
    assert xs2.mean() + x0 == pytest.approx(ix, abs=0.3)
    assert ys2.mean() + y0 == pytest.approx(iy, abs=0.3)
    # area scales with the pixel area: (2 / 1.8)^2
    assert mask.sum() == pytest.approx(disk_w.sum() * (2 / 1.8) ** 2, rel=0.12)
    # every original pixel whose centre is well inside the disk is in the mask
    yy, xx = np.mgrid[:100, :100]
    inside = (xx - ix) ** 2 + (yy - iy) ** 2 <= ((radius - 2.5 * u.arcsec) / (1.8 * u.arcsec)
                                                ).value ** 2
    full = np.zeros((100, 100), bool)
    full[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]] = mask
    assert full[inside].all()


def test_map_crop_back_outside_image_is_none():
    image_wcs = make_wcs((20, 20), pixel_scale=1.8)
    work, _, _ = working_wcs(image_wcs, (20, 20), 2.0)
    assert map_crop_back(np.ones((3, 3), bool), 60, 60, work, image_wcs, (20, 20)) is None


def test_check_beam_warns_for_different_beam():
    model_beam = {"major_arcsec": 10.0, "minor_arcsec": 8.0, "pa_deg": 0.0}
    same = Beam(major=11 * u.arcsec, minor=8 * u.arcsec, pa=0 * u.deg)
    assert check_beam(same, model_beam) == pytest.approx(1.1)
    first = Beam(major=5.4 * u.arcsec, minor=5.4 * u.arcsec, pa=0 * u.deg)
    with pytest.warns(AstropyUserWarning, match="times the area"):
        ratio = check_beam(first, model_beam)
    assert ratio == pytest.approx(5.4 ** 2 / 80)
    assert check_beam(None, model_beam) is None and check_beam(same, None) is None


def _beam(major, minor):
    return Beam(major=major * u.arcsec, minor=minor * u.arcsec, pa=0 * u.deg)


def test_beam_matched_pixel_scale():
    model_beam = {"major_arcsec": 10.0, "minor_arcsec": 8.0, "pa_deg": 0.0}
    # a similar beam (1.1 times the area), a smaller one, or an unknown one: no change
    assert beam_matched_pixel_scale(_beam(11, 8), model_beam, 2.0) == (2.0, False)
    assert beam_matched_pixel_scale(_beam(5, 4), model_beam, 2.0) == (2.0, False)
    assert beam_matched_pixel_scale(None, model_beam, 2.0) == (2.0, False)
    assert beam_matched_pixel_scale(_beam(20, 16), None, 2.0) == (2.0, False)
    # 4 times the area: pixels twice as large give the training beam's 5 x 4 pixels
    scale, matched = beam_matched_pixel_scale(_beam(20, 16), model_beam, 2.0)
    assert matched and scale == pytest.approx(4.0)
    assert (20 / scale, 16 / scale) == pytest.approx((10 / 2.0, 8 / 2.0))
    # half-way: pixels sqrt(2) times as large; strength 0: none
    scale, matched = beam_matched_pixel_scale(_beam(20, 16), model_beam, 2.0, strength=0.5)
    assert matched and scale == pytest.approx(2 * math.sqrt(2))
    assert beam_matched_pixel_scale(_beam(20, 16), model_beam, 2.0, strength=0) == (2.0, False)
    assert beam_matched_pixel_scale(_beam(20, 16), model_beam, 2.0,
                                    strength=np.float32(1))[0] == pytest.approx(4.0)
    for bad in (1.5, -0.1, float("nan"), "1", True):
        with pytest.raises(ValueError, match="strength: expected a number in"):
            beam_matched_pixel_scale(_beam(20, 16), model_beam, 2.0, strength=bad)


def test_check_beam_logs_a_matched_beam(caplog):
    model_beam = {"major_arcsec": 10.0, "minor_arcsec": 8.0, "pa_deg": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the pixels are matched to the beam
        with caplog.at_level(logging.INFO, logger="galcam.inference.resample"):
            ratio = check_beam(_beam(20, 16), model_beam, where="big.fits", matched=True)
    assert ratio == pytest.approx(4.0)
    assert "big.fits" in caplog.text and "coarser pixels" in caplog.text
    with pytest.warns(AstropyUserWarning, match="big.fits: the beam"):
        check_beam(_beam(20, 16), model_beam, where="big.fits")


def test_beam_range_of_the_training_images():
    """A model trained on a range of beams: inside it no warning, outside the nearest end."""
    k = math.pi / (4 * math.log(2))
    model_beam = {"major_arcsec": 15.0, "minor_arcsec": 13.0, "pa_deg": 0.0,
                  "area_range_arcsec2": [k * 12 * 10, k * 20 * 17]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for inside in (_beam(12, 10), _beam(19, 17), _beam(20, 17)):  # 1.9 x the median area
            assert check_beam(inside, model_beam) == 1.0
    assert beam_matched_pixel_scale(_beam(20, 17), model_beam, 2.0, strength=1) == (2.0, False)
    # outside: compared with the largest (or smallest) training beam, not the median
    assert check_beam(_beam(24, 17), model_beam) == pytest.approx(1.2)
    with pytest.warns(AstropyUserWarning, match=r"times the area of the largest beam the model"):
        assert check_beam(_beam(40, 17), model_beam) == pytest.approx(2.0)
    with pytest.warns(AstropyUserWarning, match=r"smallest beam the model was trained on"):
        assert check_beam(_beam(6, 5), model_beam) == pytest.approx(0.25)
    scale, matched = beam_matched_pixel_scale(_beam(40, 17), model_beam, 2.0, strength=1)
    assert matched and scale == pytest.approx(2.0 * math.sqrt(2))
    # a malformed range: the beam is unknown rather than wrong
    bad = dict(model_beam, area_range_arcsec2=[300, 100])
    assert check_beam(_beam(40, 17), bad) is None

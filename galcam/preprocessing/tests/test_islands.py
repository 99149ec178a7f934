"""Tests of find_islands / island_mask on images with known sources."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from galcam.preprocessing import ISLAND_COLUMNS, NoiseEstimator, find_islands, island_mask

from ._synth import as_nddata, correlated_noise, gaussian_source, tan_wcs

RMS = 1e-4
SHAPE = (256, 256)
POSITIONS = [(40.3, 50.7), (200.2, 40.9), (128.6, 128.1), (60.0, 210.4), (210.5, 200.5)]


def _image_with_sources(seed, positions=POSITIONS, snr=30):
    image = correlated_noise(SHAPE, RMS, np.random.default_rng(seed))
    for x, y in positions:
        image = image + gaussian_source(SHAPE, x, y, snr * RMS)
    return image.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_and_centroids_of_isolated_sources(seed):
    image = _image_with_sources(seed)
    noise = NoiseEstimator()(image)
    islands = find_islands(image, noise, n_sigma=5, n_pixels=5)
    assert islands.n_islands == len(POSITIONS) == len(islands)
    np.testing.assert_array_equal(islands.labels, np.arange(1, 6))
    table = islands.to_table()
    assert "sky_centroid" not in table.colnames  # no WCS
    found = np.column_stack([table["xcentroid"], table["ycentroid"]])
    for x, y in POSITIONS:
        assert np.min(np.hypot(found[:, 0] - x, found[:, 1] - y)) < 0.3
    assert np.all(table["area"] > 5 * u.pix**2)
    assert np.all(table["peak"] > 25 * RMS)
    assert islands.mask.sum() == int(table["area"].sum().value)


def test_sky_centroid_of_a_source_at_a_known_position():
    wcs = tan_wcs(SHAPE, ra=150.0, dec=-30.0, pix_arcsec=2.0)
    target = SkyCoord(150.02 * u.deg, -29.985 * u.deg)
    x, y = wcs.world_to_pixel(target)
    image = correlated_noise(SHAPE, RMS, np.random.default_rng(3))
    image = (image + gaussian_source(SHAPE, float(x), float(y), 50 * RMS)).astype(np.float32)
    nd = as_nddata(image, wcs)
    islands = find_islands(nd, NoiseEstimator()(nd), n_sigma=5)
    table = islands.to_table()
    assert len(table) == 1
    assert table["sky_centroid"][0].separation(target) < 0.5 * u.arcsec
    assert table["peak"].unit == u.Jy / u.beam


def test_small_islands_are_removed():
    image = np.zeros((64, 64), dtype=np.float32)
    image[10:12, 10:12] = 10.0  # 4 pixels
    image[40:43, 40:43] = 10.0  # 9 pixels
    assert find_islands(image, 1.0, n_pixels=5).n_islands == 1
    assert find_islands(image, 1.0, n_pixels=4).n_islands == 2
    assert find_islands(image, 1.0, n_pixels=10).n_islands == 0


def test_connectivity():
    image = np.zeros((32, 32), dtype=np.float32)
    image[5:8, 5:8] = 10.0
    image[8:11, 8:11] = 10.0  # touches the first only at a corner
    assert find_islands(image, 1.0, n_pixels=5, connectivity=8).n_islands == 1
    assert find_islands(image, 1.0, n_pixels=5, connectivity=4).n_islands == 2


def test_empty_image_gives_an_empty_table_with_the_same_columns():
    wcs = tan_wcs(SHAPE)
    nd = as_nddata(correlated_noise(SHAPE, RMS, np.random.default_rng(0)).astype(np.float32), wcs)
    islands = find_islands(nd, NoiseEstimator()(nd), n_sigma=50)
    assert islands.n_islands == 0 and islands.segment_image is None and islands.catalog is None
    assert not islands.mask.any() and islands.labels.size == 0
    table = islands.to_table()
    assert len(table) == 0
    assert table.colnames == [c for c in ISLAND_COLUMNS if c != "flux"]  # no beam
    full = find_islands(as_nddata(_image_with_sources(0), wcs), RMS, n_sigma=5).to_table()
    assert len(full) == 5 and full.colnames == table.colnames
    for name in full.colnames:
        assert getattr(table[name], "unit", None) == getattr(full[name], "unit", None)


def test_nan_pixels_are_never_in_islands():
    image = np.zeros((64, 64), dtype=np.float32)
    image[20:30, 20:30] = 10.0
    image[20:30, 25:27] = np.nan  # cuts the square in two
    islands = find_islands(image, 1.0, n_pixels=5, connectivity=4)
    assert islands.n_islands == 2
    assert not islands.mask[~np.isfinite(image)].any()


def test_noise_as_quantity_map_and_unit_conversion():
    image = _image_with_sources(4)
    nd = as_nddata(image, tan_wcs(SHAPE))
    a = find_islands(nd, RMS * u.Jy / u.beam, n_sigma=5)
    b = find_islands(nd, 0.1 * u.mJy / u.beam, n_sigma=5)
    assert a.n_islands == b.n_islands == 5
    np.testing.assert_array_equal(a.mask, b.mask)
    with pytest.raises(u.UnitsError, match="image"):
        find_islands(nd, 1 * u.K, n_sigma=5)
    maps = NoiseEstimator(box_size=64)(nd)
    assert find_islands(nd, maps, n_sigma=5).n_islands == 5
    np.testing.assert_array_equal(island_mask(nd, RMS * u.Jy / u.beam, n_sigma=5), a.mask)


def test_table_columns_and_immutability():
    islands = find_islands(_image_with_sources(1), RMS, n_sigma=5)
    table = islands.to_table(columns=["id", "area"])
    assert table.colnames == ["id", "area"]
    full = islands.to_table()
    assert all(full[c].info.description for c in full.colnames)  # every column described
    assert "not a flux density" in full["segment_flux"].info.description
    with pytest.raises(ValueError, match="unknown island column"):
        islands.to_table(columns=["sky_centroid"])  # no WCS
    with pytest.raises(AttributeError):
        islands.segment_image = None
    assert "n_islands=5" in repr(islands)


def test_input_not_modified_and_bad_arguments():
    image = _image_with_sources(2)
    image[0] = np.nan
    before = image.copy()
    find_islands(image, RMS, n_sigma=5)
    np.testing.assert_array_equal(image, before)
    with pytest.raises(ValueError, match="n_pixels"):
        find_islands(image, RMS, n_pixels=0)
    with pytest.raises(ValueError, match="connectivity"):
        find_islands(image, RMS, connectivity=6)
    with pytest.raises(TypeError, match="noise must be"):
        find_islands(image, "1e-4")
    with pytest.raises(ValueError, match="noise rms"):
        find_islands(image, -1.0)
    with pytest.raises(ValueError, match="2-D"):
        find_islands(image[None], RMS)


@pytest.mark.parametrize("unit, scale", [(u.Jy / u.beam, 1.0), (u.mJy / u.beam, 1e3)])
def test_flux_of_a_point_source_equals_its_peak(unit, scale):
    from radio_beam import Beam

    # a bright point source (the beam itself): integrated flux density = peak brightness
    fwhm = 12.0  # arcsec, 6 pixels of 2"
    sigma_px = fwhm / 2.0 / np.sqrt(2 * np.log(2)) / 2.0
    yy, xx = np.mgrid[:64, :64]
    peak = 0.05 * scale
    data = (peak * np.exp(-((xx - 32.3) ** 2 + (yy - 31.6) ** 2) / (2 * sigma_px**2))
            ).astype(np.float32)
    beam = Beam(major=fwhm * u.arcsec, minor=fwhm * u.arcsec, pa=0 * u.deg)
    islands = find_islands(as_nddata(data, tan_wcs((64, 64)), unit=unit, beam=beam),
                           1e-5 * scale, n_sigma=3)
    assert islands.beam_pixels == pytest.approx(2 * np.pi * sigma_px**2, rel=1e-3)
    table = islands.to_table()
    assert table.colnames == list(ISLAND_COLUMNS)
    assert table["flux"].unit == unit * u.beam
    assert table["flux"][0].to_value(u.Jy) == pytest.approx(0.05, rel=2e-3)
    # segment_flux is the plain sum of the pixels, beam_pixels times larger
    assert table["segment_flux"][0].value == pytest.approx(
        table["flux"][0].value * islands.beam_pixels)
    empty = find_islands(as_nddata(data, tan_wcs((64, 64)), unit=unit, beam=beam), 1.0 * scale,
                         n_sigma=1e3).to_table()
    assert empty.colnames == table.colnames and empty["flux"].unit == table["flux"].unit

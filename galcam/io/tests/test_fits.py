"""Tests of galcam.io.read_image on the image products radio astronomers actually have."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import NDData
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS

from galcam.io import ImageReadError, atomic_write, pixel_scale, read_image, write_image

NY, NX = 40, 50


def celestial_header(proj="TAN", naxis=2, scale_arcsec=2.0, ra=150.0, dec=-30.0):
    h = fits.Header()
    h["NAXIS"] = naxis
    h["NAXIS1"] = NX
    h["NAXIS2"] = NY
    h["CTYPE1"] = f"RA---{proj}"
    h["CTYPE2"] = f"DEC--{proj}"
    h["CRPIX1"] = NX / 2 + 0.5
    h["CRPIX2"] = NY / 2 + 0.5
    h["CRVAL1"] = ra
    h["CRVAL2"] = dec
    h["CDELT1"] = -scale_arcsec / 3600
    h["CDELT2"] = scale_arcsec / 3600
    h["CUNIT1"] = "deg"
    h["CUNIT2"] = "deg"
    return h


def askap_header(nfreq=1, nstokes=1):
    """A header shaped like an ASKAP/EMU continuum product: RA, Dec, FREQ, STOKES."""
    h = celestial_header(proj="SIN", naxis=4)
    h["NAXIS3"] = nfreq
    h["NAXIS4"] = nstokes
    h["CTYPE3"] = "FREQ"
    h["CRPIX3"] = 1.0
    h["CRVAL3"] = 943.5e6
    h["CDELT3"] = 288e6
    h["CUNIT3"] = "Hz"
    h["CTYPE4"] = "STOKES"
    h["CRPIX4"] = 1.0
    h["CRVAL4"] = 1.0
    h["CDELT4"] = 1.0
    h["BUNIT"] = "Jy/beam"
    h["BMAJ"] = 13 / 3600
    h["BMIN"] = 11 / 3600
    h["BPA"] = 45.0
    return h


def test_askap_4d_product_with_degenerate_axes(tmp_path, rng):
    data = rng.normal(size=(1, 1, NY, NX)).astype(">f4")  # FITS is big-endian on disk
    data[..., :3, :] = np.nan  # NaN-blanked border, as mosaics have
    path = tmp_path / "emu.fits"
    fits.PrimaryHDU(data, askap_header()).writeto(path)
    image = read_image(path)
    assert image.data.shape == (NY, NX)
    assert image.data.dtype == np.float32 and image.data.dtype.isnative
    assert image.wcs.naxis == 2 and image.wcs.has_celestial
    assert image.unit == u.Jy / u.beam
    beam = image.meta["beam"]
    assert beam.major.to_value(u.arcsec) == pytest.approx(13)
    assert beam.minor.to_value(u.arcsec) == pytest.approx(11)
    assert beam.pa.to_value(u.deg) == pytest.approx(45)
    np.testing.assert_array_equal(image.data[3:], data[0, 0, 3:])
    assert image.mask[:3].all() and not image.mask[3:].any()
    assert image.meta["blanked_fraction"] == pytest.approx(3 / NY)
    assert image.meta["filename"] == str(path)
    assert pixel_scale(image).to_value(u.arcsec) == pytest.approx(2.0, rel=1e-3)
    assert pixel_scale(image.wcs) == pixel_scale(image)
    with pytest.raises(TypeError, match="pixel_scale expects"):
        pixel_scale(image.data)


def test_known_sky_position_lands_on_known_pixel(tmp_path):
    data = np.zeros((1, 1, NY, NX), dtype=np.float32)
    path = tmp_path / "emu.fits"
    header = askap_header()
    fits.PrimaryHDU(data, header).writeto(path)
    image = read_image(path)
    # CRPIX (1-based) = NX/2 + 0.5 -> 0-based pixel NX/2 - 0.5 is the reference point
    x, y = image.wcs.world_to_pixel(SkyCoord(150.0 * u.deg, -30.0 * u.deg))
    assert x == pytest.approx(NX / 2 - 0.5) and y == pytest.approx(NY / 2 - 0.5)


def test_cube_needs_a_plane(tmp_path, rng):
    data = rng.normal(size=(1, 3, NY, NX)).astype(np.float32)
    path = tmp_path / "cube.fits"
    fits.PrimaryHDU(data, askap_header(nfreq=3)).writeto(path)
    with pytest.raises(ImageReadError, match=r"cube.fits.*FREQ has 3 planes.*plane="):
        read_image(path)
    image = read_image(path, plane=2)
    np.testing.assert_array_equal(image.data, data[0, 2])
    image = read_image(path, plane={"FREQ": 1})
    np.testing.assert_array_equal(image.data, data[0, 1])
    with pytest.raises(ImageReadError, match="outside the FREQ axis"):
        read_image(path, plane=3)
    with pytest.raises(ImageReadError, match="names axis 'VELO'"):
        read_image(path, plane={"VELO": 0})


def test_two_nondegenerate_axes_need_a_dict(tmp_path, rng):
    data = rng.normal(size=(2, 3, NY, NX)).astype(np.float32)
    path = tmp_path / "cube.fits"
    fits.PrimaryHDU(data, askap_header(nfreq=3, nstokes=2)).writeto(path)
    with pytest.raises(ImageReadError, match="ambiguous"):
        read_image(path, plane=0)
    image = read_image(path, plane={"FREQ": 2, "STOKES": 1})
    np.testing.assert_array_equal(image.data, data[1, 2])


def test_three_axis_image(tmp_path, rng):
    header = askap_header()
    for key in ("NAXIS4", "CTYPE4", "CRPIX4", "CRVAL4", "CDELT4"):
        del header[key]
    header["NAXIS"] = 3
    data = rng.normal(size=(1, NY, NX)).astype(np.float32)
    path = tmp_path / "three.fits"
    fits.PrimaryHDU(data, header).writeto(path)
    image = read_image(path)
    np.testing.assert_array_equal(image.data, data[0])


@pytest.mark.parametrize("proj", ["TAN", "SIN", "ZEA", "CAR"])
def test_projections(tmp_path, proj):
    path = tmp_path / f"{proj}.fits"
    fits.PrimaryHDU(np.ones((NY, NX), np.float32), celestial_header(proj)).writeto(path)
    image = read_image(path)
    assert image.wcs.wcs.ctype[0] == f"RA---{proj}"
    centre = image.wcs.pixel_to_world(NX / 2 - 0.5, NY / 2 - 0.5)
    assert centre.separation(SkyCoord(150 * u.deg, -30 * u.deg)).arcsec < 1e-6


def test_galactic_and_swapped_axes(tmp_path, rng):
    header = celestial_header()
    header["CTYPE1"], header["CTYPE2"] = "DEC--TAN", "RA---TAN"
    header["CRVAL1"], header["CRVAL2"] = -30.0, 150.0
    data = rng.normal(size=(NY, NX)).astype(np.float32)
    path = tmp_path / "swapped.fits"
    fits.PrimaryHDU(data, header).writeto(path)
    image = read_image(path)
    assert image.data.shape == (NX, NY)
    assert image.wcs.wcs.lng == 0
    np.testing.assert_array_equal(image.data, data.T)


def test_infrared_image_without_beam(tmp_path, rng):
    header = celestial_header(scale_arcsec=1.375)
    header["BUNIT"] = "DN"
    path = tmp_path / "wise.fits"
    fits.PrimaryHDU(rng.normal(size=(NY, NX)).astype(np.float32), header).writeto(path)
    image = read_image(path)
    assert image.meta["beam"] is None
    assert image.unit == u.dimensionless_unscaled
    assert pixel_scale(image).to_value(u.arcsec) == pytest.approx(1.375, rel=1e-3)


def test_unknown_unit_warns(tmp_path):
    header = celestial_header()
    header["BUNIT"] = "furlongs per fortnight"
    path = tmp_path / "odd.fits"
    fits.PrimaryHDU(np.ones((NY, NX), np.float32), header).writeto(path)
    with pytest.warns(AstropyUserWarning, match="BUNIT"):
        image = read_image(path)
    assert image.unit == u.dimensionless_unscaled
    assert read_image(path, unit="mJy/beam").unit == u.mJy / u.beam


def test_beam_from_aips_history(tmp_path, caplog):
    header = celestial_header()
    header["BUNIT"] = "JY/BEAM"
    header.add_history("AIPS   CLEAN BMAJ=  3.6111E-03 BMIN=  3.0556E-03 BPA=  77.80")
    path = tmp_path / "aips.fits"
    fits.PrimaryHDU(np.ones((NY, NX), np.float32), header).writeto(path)
    with caplog.at_level("INFO", logger="galcam.io.fits"):
        beam = read_image(path).meta["beam"]
    assert beam.major.to_value(u.arcsec) == pytest.approx(13.0, abs=1e-3)
    assert beam.minor.to_value(u.arcsec) == pytest.approx(11.0, abs=1e-3)
    assert beam.pa.to_value(u.deg) == pytest.approx(77.8)
    assert "HISTORY" in caplog.text
    # keywords win over the history
    header["BMAJ"], header["BMIN"] = 20 / 3600, 15 / 3600
    fits.PrimaryHDU(np.ones((NY, NX), np.float32), header).writeto(path, overwrite=True)
    assert read_image(path).meta["beam"].major.to_value(u.arcsec) == pytest.approx(20.0)


def test_beam_in_arcsec_written_as_degrees_is_refused(tmp_path):
    header = celestial_header()
    header["BMAJ"], header["BMIN"] = 13.0, 11.0
    path = tmp_path / "arcsec_beam.fits"
    fits.PrimaryHDU(np.ones((NY, NX), np.float32), header).writeto(path)
    with pytest.raises(ImageReadError, match=r"arcsec_beam.fits.*BMAJ = 13 deg.*BMAJ = 0.00361111"):
        read_image(path)


def test_bscale_bzero_integer_data(tmp_path):
    expected = np.arange(NY * NX, dtype=np.float32).reshape(NY, NX)
    hdu = fits.PrimaryHDU(expected.copy(), celestial_header())
    hdu.scale("int16", bscale=0.5, bzero=10.0)
    path = tmp_path / "scaled.fits"
    hdu.writeto(path)
    image = read_image(path)
    assert image.data.dtype == np.float32
    assert read_image(path, memmap=True).data.dtype == np.float32  # scaled: read in full
    np.testing.assert_allclose(image.data, expected, atol=0.5)


def test_compressed_hdu(tmp_path, rng):
    data = rng.normal(size=(NY, NX)).astype(np.float32)
    hdul = fits.HDUList(
        [fits.PrimaryHDU(), fits.CompImageHDU(data, celestial_header(), quantize_level=64)]
    )
    path = tmp_path / "image.fits.fz"
    hdul.writeto(path)
    image = read_image(path)
    np.testing.assert_allclose(image.data, data, atol=0.05)  # lossy quantisation of floats
    np.testing.assert_allclose(read_image(path, memmap=True).data, image.data)


def test_casa_beam_table(tmp_path, rng):
    header = askap_header(nfreq=2)
    for key in ("BMAJ", "BMIN", "BPA"):
        del header[key]
    header["CASAMBM"] = True
    beams = fits.BinTableHDU.from_columns(
        [
            fits.Column("BMAJ", "E", unit="arcsec", array=[14.0, 12.0]),
            fits.Column("BMIN", "E", unit="arcsec", array=[10.0, 9.0]),
            fits.Column("BPA", "E", unit="deg", array=[30.0, 40.0]),
            fits.Column("CHAN", "J", array=[0, 1]),
            fits.Column("POL", "J", array=[0, 0]),
        ],
        name="BEAMS",
    )
    data = rng.normal(size=(1, 2, NY, NX)).astype(np.float32)
    path = tmp_path / "casa.fits"
    fits.HDUList([fits.PrimaryHDU(data, header), beams]).writeto(path)
    beam = read_image(path, plane=1).meta["beam"]
    assert beam.major.to_value(u.arcsec) == pytest.approx(12.0)
    assert beam.minor.to_value(u.arcsec) == pytest.approx(9.0)
    assert beam.pa.to_value(u.deg) == pytest.approx(40.0)


def test_memmap_reads_lazily(tmp_path, rng):
    data = rng.normal(size=(1, 1, NY, NX)).astype(np.float32)
    path = tmp_path / "mosaic.fits"
    fits.PrimaryHDU(data, askap_header()).writeto(path)
    image = read_image(path, memmap=True)
    assert not image.data.flags.owndata  # a view of the file, not a copy in memory
    assert image.data.dtype.kind == "f" and image.data.dtype.itemsize == 4
    assert image.data.shape == (NY, NX)
    np.testing.assert_array_equal(image.data[5:9, 10:20], data[0, 0, 5:9, 10:20])


def test_hdu_hdulist_and_nddata_inputs(rng):
    data = rng.normal(size=(NY, NX)).astype(np.float64)
    hdu = fits.PrimaryHDU(data, celestial_header())
    for source in (hdu, fits.HDUList([hdu]), fits.ImageHDU(data, celestial_header())):
        image = read_image(source)
        assert image.data.dtype == np.float32
        np.testing.assert_allclose(image.data, data, rtol=1e-6)
    nd = NDData(data, wcs=WCS(celestial_header()), unit="mJy/beam")
    image = read_image(nd)
    assert image.unit == u.mJy / u.beam
    assert np.shares_memory(image.data, data) is False
    assert nd.data.dtype == np.float64  # the input is not modified


def test_write_read_round_trip(tmp_path, rng):
    data = rng.normal(size=(1, 1, NY, NX)).astype(np.float32)
    src = tmp_path / "in.fits"
    fits.PrimaryHDU(data, askap_header()).writeto(src)
    image = read_image(src)
    out = write_image(image, tmp_path / "out.fits")
    again = read_image(out)
    np.testing.assert_array_equal(again.data, image.data)
    assert again.unit == image.unit
    assert again.meta["beam"] == image.meta["beam"]
    with pytest.raises(FileExistsError, match="out.fits"):
        write_image(image, out)
    write_image(image, out, overwrite=True)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    def broken(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "result.txt", broken)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.fits"):
        read_image(tmp_path / "nothere.fits")


def test_not_fits(tmp_path):
    path = tmp_path / "notes.fits"
    path.write_text("this is not a FITS file\n" * 10)
    with pytest.raises(ImageReadError, match="notes.fits.*is not a FITS file"):
        read_image(path)


def test_no_image_hdu(tmp_path):
    table = fits.BinTableHDU.from_columns([fits.Column("A", "E", array=[1.0])])
    path = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    with pytest.raises(ImageReadError, match="table.fits.*no image HDU"):
        read_image(path)


def test_no_celestial_wcs(tmp_path):
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "LINEAR", "LINEAR"
    path = tmp_path / "linear.fits"
    fits.PrimaryHDU(np.ones((NY, NX), np.float32), header).writeto(path)
    with pytest.raises(ImageReadError, match="linear.fits.*no celestial WCS"):
        read_image(path)


def test_all_nan(tmp_path):
    path = tmp_path / "blank.fits"
    fits.PrimaryHDU(np.full((NY, NX), np.nan, np.float32), celestial_header()).writeto(path)
    with pytest.raises(ImageReadError, match="blank.fits.*every pixel is NaN"):
        read_image(path)


def test_truncated_file_is_named(tmp_path):
    path = tmp_path / "cut.fits"
    fits.PrimaryHDU(np.ones((NY, NX), np.float32), celestial_header()).writeto(path)
    whole = path.read_bytes()
    path.write_bytes(whole[: 2880 + 2880])  # the header and part of the data
    with pytest.warns(AstropyUserWarning, match="truncated"), \
            pytest.raises(ImageReadError, match=r"cut.fits.*5760 bytes.*truncated"):
        read_image(path)


def test_zero_size(tmp_path):
    path = tmp_path / "empty.fits"
    header = celestial_header()
    fits.PrimaryHDU(np.zeros((0, NX), np.float32), header).writeto(path)
    with pytest.raises(ImageReadError, match="empty.fits"):
        read_image(path)


def test_wrong_type():
    with pytest.raises(TypeError, match="expects a file path"):
        read_image(42)


def test_nddata_without_wcs():
    with pytest.raises(ImageReadError, match="no wcs"):
        read_image(NDData(np.ones((4, 4))))


# ---------------------------------------------------------------- issue 24: what a user trips on


def test_png_given_as_fits_is_named(tmp_path):
    from PIL import Image

    path = tmp_path / "radio.fits"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path, format="PNG")
    with pytest.raises(ImageReadError, match=r"'.*radio.fits': is a PNG image, not a FITS file"
                       ) as info:
        read_image(path)
    assert "ignore_missing_simple" not in str(info.value)  # astropy's hint, no galcam option


def test_text_given_as_fits_says_what_is_missing(tmp_path):
    path = tmp_path / "notes.fits"
    path.write_text("hello\n")
    with pytest.raises(ImageReadError, match="notes.fits': is not a FITS file: it does not "
                       "start with the FITS card 'SIMPLE  ='") as info:
        read_image(path)
    assert "ignore_missing_simple" not in str(info.value)


def test_two_image_hdus_say_which_is_used(tmp_path, rng):
    first = rng.normal(size=(NY, NX)).astype(np.float32)
    second = np.ones((NY, NX), np.float32)
    path = tmp_path / "two.fits"
    fits.HDUList([fits.PrimaryHDU(first, celestial_header()),
                  fits.ImageHDU(second, celestial_header(), name="RMS")]).writeto(path)
    with pytest.warns(AstropyUserWarning, match=r"two.fits': the file holds 2 images; galcam "
                      r"uses the first, HDU 0 \('PRIMARY', 50 x 40\), not 1 \('RMS', 50 x 40\)"
                      r".*hdu=N.*--hdu N"):
        image = read_image(path)
    np.testing.assert_array_equal(image.data, first)
    np.testing.assert_array_equal(read_image(path, hdu="RMS").data, second)  # no warning
    np.testing.assert_array_equal(read_image(path, hdu=1).data, second)


def test_zero_beam_warns_and_is_no_beam(tmp_path):
    header = celestial_header()
    header["BUNIT"] = "Jy/beam"
    header["BMAJ"] = 0.0
    header["BMIN"] = 0.0
    path = tmp_path / "flagged_plane.fits"
    fits.PrimaryHDU(np.ones((NY, NX), np.float32), header).writeto(path)
    with pytest.warns(AstropyUserWarning, match=r"flagged_plane.fits': the header \(BMAJ, "
                      r"BMIN\) gives a restoring beam of 0\" x 0\", which is no beam"):
        image = read_image(path)
    assert image.meta["beam"] is None


def test_zero_beam_in_a_beam_table_warns(tmp_path, rng):
    header = askap_header(nfreq=2)
    for key in ("BMAJ", "BMIN", "BPA"):
        del header[key]
    beams = fits.BinTableHDU.from_columns(
        [fits.Column("BMAJ", "E", unit="arcsec", array=[14.0, 0.0]),
         fits.Column("BMIN", "E", unit="arcsec", array=[10.0, 0.0]),
         fits.Column("BPA", "E", unit="deg", array=[30.0, 0.0]),
         fits.Column("CHAN", "J", array=[0, 1]), fits.Column("POL", "J", array=[0, 0])],
        name="BEAMS")
    path = tmp_path / "cube.fits"
    fits.HDUList([fits.PrimaryHDU(rng.normal(size=(1, 2, NY, NX)).astype(np.float32), header),
                  beams]).writeto(path)
    assert read_image(path, plane=0).meta["beam"] is not None
    with pytest.warns(AstropyUserWarning, match=r"the BEAMS table \(channel 1, pol 0\) gives "
                      r"a restoring beam of 0\" x 0\""):
        assert read_image(path, plane=1).meta["beam"] is None


@pytest.mark.parametrize("bunit, scale, warns", [
    ("mJy/beam", 1.0, True),       # data in Jy/beam (rms 30 uJy) under a mJy/beam header
    ("Jy/beam", 1.0, False),       # the same data, labelled right
    ("mJy/beam", 1e3, False),      # data really in mJy/beam
    ("uJy/beam", 1e6, False),
])
def test_mjy_header_over_jy_data_is_questioned(tmp_path, rng, bunit, scale, warns):
    data = (rng.normal(0, 30e-6, size=(NY, NX)) * scale).astype(np.float32)
    data[20, 25] = 0.05 * scale  # a bright source does not change the verdict
    header = askap_header()
    header["BUNIT"] = bunit
    path = tmp_path / "img.fits"
    fits.PrimaryHDU(data[None, None], header).writeto(path)
    if warns:
        with pytest.warns(AstropyUserWarning, match=r"img.fits': in mJy/beam the image's "
                          r"robust rms is [23]\d(\.\d)? nJy/beam.*is the unit right\? If the "
                          r"data are in Jy/beam \(an rms of [23]\d(\.\d)? uJy/beam then\)"
                          r".*unit='Jy/beam' \(galcam predict: --unit Jy/beam\)"):
            read_image(path)
        read_image(path, unit="Jy/beam")  # the user's answer: no warning
    else:
        read_image(path)


def test_a_wcs_error_of_several_lines_is_one_line(tmp_path):
    header = celestial_header()
    header["CTYPE1"], header["CTYPE2"] = "FREQ", "VELO"  # with CUNIT deg: wcslib refuses
    path = tmp_path / "spectrum.fits"
    fits.PrimaryHDU(np.ones((NY, NX), np.float32), header).writeto(path)
    with pytest.raises(ImageReadError, match="spectrum.fits': the header's WCS cannot be "
                       "parsed") as info:
        read_image(path)
    assert "\n" not in str(info.value)

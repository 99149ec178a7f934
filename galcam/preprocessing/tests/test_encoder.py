"""Tests of CutoutEncoder / EncodedCutout on synthetic images with known sky positions."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import NDData
from astropy.wcs import WCS

from galcam.preprocessing.encoder import (
    CHANNEL_NAMES,
    CutoutEncoder,
    EmptyCutoutError,
    EncodedCutout,
)
from galcam.preprocessing.noise import NoiseEstimator, NoiseResult
from galcam.preprocessing.png import read_paper_png

RA0, DEC0 = 150.0, -30.0
RMS = 1e-4  # Jy/beam


def tan_wcs(shape, scale_arcsec, *, ra=RA0, dec=DEC0, rot_deg=0.0, crpix=None):
    """A TAN WCS with pixel scale ``scale_arcsec`` rotated by ``rot_deg``."""
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = crpix if crpix is not None else [nx / 2 + 0.5, ny / 2 + 0.5]
    s = scale_arcsec / 3600
    t = np.deg2rad(rot_deg)
    w.wcs.cd = [[-s * np.cos(t), s * np.sin(t)], [s * np.sin(t), s * np.cos(t)]]
    w.wcs.cunit = ["deg", "deg"]
    w.pixel_shape = (nx, ny)
    return w


def gaussian(shape, x0, y0, sigma, amp):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return amp * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))


def radio_image(rng, shape=(160, 160), sources=(), beam=True):
    """Noise plus Gaussian sources at the given SkyCoords, as a 2"/px TAN NDData."""
    wcs = tan_wcs(shape, 2.0)
    data = rng.normal(0.0, RMS, size=shape).astype(np.float32)
    for coord, amp in sources:
        x, y = wcs.world_to_pixel(coord)
        data += gaussian(shape, float(x), float(y), 2.5, amp).astype(np.float32)
    header = wcs.to_header()
    header["BUNIT"] = "Jy/beam"
    if beam:
        header["BMAJ"], header["BMIN"], header["BPA"] = 13 / 3600, 11 / 3600, 30.0
    return fits.PrimaryHDU(data, header)


def ir_image(rng, shape, scale, rot_deg, sources=(), ra=RA0 + 0.002, dec=DEC0 - 0.003):
    wcs = tan_wcs(shape, scale, ra=ra, dec=dec, rot_deg=rot_deg)
    data = (5.0 + rng.normal(0.0, 0.2, size=shape)).astype(np.float32)
    for coord, amp in sources:
        x, y = wcs.world_to_pixel(coord)
        data += gaussian(shape, float(x), float(y), 2.0, amp).astype(np.float32)
    header = wcs.to_header()
    header["BUNIT"] = "DN"
    return fits.PrimaryHDU(data, header)


def offset(dx_arcsec, dy_arcsec):
    """A SkyCoord offset east/north of the reference position."""
    c = SkyCoord(RA0, DEC0, unit="deg")
    return c.spherical_offsets_by(dx_arcsec * u.arcsec, dy_arcsec * u.arcsec)


def centroid(plane, x, y, half=4):
    xi, yi = int(round(x)), int(round(y))
    win = plane[yi - half : yi + half + 1, xi - half : xi + half + 1].astype(float)
    win = np.clip(win - np.median(plane), 0, None)
    yy, xx = np.mgrid[yi - half : yi + half + 1, xi - half : xi + half + 1]
    return (win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()


@pytest.fixture
def src():
    return offset(30.0, -20.0)


@pytest.fixture
def radio(rng, src):
    return radio_image(rng, sources=[(src, 50 * RMS), (offset(-60, 50), 30 * RMS)])


def test_source_at_known_sky_position_lands_on_right_pixel(radio, src):
    enc = CutoutEncoder(size=64)
    cut = enc(radio, position=offset(40.0, -10.0))
    assert isinstance(cut, EncodedCutout)
    assert cut.shape == (64, 64) and cut.channels.shape == (3, 64, 64)
    assert cut.channels.dtype == np.float32
    parent = WCS(radio.header)
    px, py = parent.world_to_pixel(src)
    x0, y0 = cut.origin
    # the source's parent pixel, shifted by the origin, is its cutout pixel ...
    cx, cy = cut.wcs.world_to_pixel(src)
    assert cx == pytest.approx(float(px) - x0, abs=1e-6)
    assert cy == pytest.approx(float(py) - y0, abs=1e-6)
    # ... and the data peak there
    peak = np.unravel_index(np.nanargmax(cut.radio), cut.shape)
    assert abs(peak[0] - cy) <= 1 and abs(peak[1] - cx) <= 1
    mx, my = centroid(cut.radio, float(cx), float(cy))
    assert abs(mx - cx) < 0.2 and abs(my - cy) < 0.2
    np.testing.assert_array_equal(cut.radio, radio.data[y0 : y0 + 64, x0 : x0 + 64])
    # the pre-processed radio channel is non-zero on the source, zero on empty sky
    assert cut["radio"][peak] > 0.9
    assert cut.channels[1:, 2, 2].max() == 0.0
    assert cut.channel_names == ("ir", "radio", "radio")
    assert not cut.partial and cut.overlap_fraction == 1.0 and cut.valid.all()
    assert cut.unit == u.Jy / u.beam
    assert cut.beam.major.to_value(u.arcsec) == pytest.approx(13)
    # the position is the requested one, and sits at the recorded cutout pixel
    assert cut.position.separation(offset(40.0, -10.0)).arcsec < 1e-6
    back = cut.wcs.pixel_to_world(*cut.position_pixel)
    assert back.separation(cut.position).arcsec < 1e-3


def test_cutout_wcs_matches_parent(radio):
    cut = CutoutEncoder(size=(40, 50))(radio, position=(70.3, 90.8))
    parent = WCS(radio.header)
    x0, y0 = cut.origin
    xs, ys = np.array([0, 10, 49]), np.array([0, 33, 39])
    a = cut.wcs.pixel_to_world(xs, ys)
    b = parent.pixel_to_world(xs + x0, ys + y0)
    assert np.all(a.separation(b).arcsec < 1e-6)
    # the requested pixel is near the centre of the cutout
    assert abs(cut.position_pixel[0] - (70.3 - x0)) < 1e-9
    assert abs(cut.position_pixel[1] - (90.8 - y0)) < 1e-9
    assert 24 <= cut.position_pixel[0] <= 26 and 19 <= cut.position_pixel[1] <= 21


def test_size_in_arcsec_and_pixels(radio):
    pos = SkyCoord(RA0, DEC0, unit="deg")
    by_angle = CutoutEncoder(size=128 * u.arcsec)(radio, position=pos)
    by_pixels = CutoutEncoder(size=64)(radio, position=pos)
    assert by_angle.shape == by_pixels.shape == (64, 64)
    np.testing.assert_array_equal(by_angle.channels, by_pixels.channels)
    assert CutoutEncoder(size=u.Quantity([1, 2], u.arcmin))(radio, position=pos).shape == (30, 60)
    assert CutoutEncoder(size=(20, 30))(radio, position=pos).shape == (20, 30)
    # a per-call size overrides the encoder's
    assert CutoutEncoder(size=64)(radio, position=pos, size=1 * u.arcmin).shape == (30, 30)
    assert CutoutEncoder()(radio, position=pos, size=12 * u.pix).shape == (12, 12)


def test_ir_on_rotated_grid_reprojected_to_right_pixel(rng, radio, src):
    host = offset(36.0, -14.0)  # a point source in IR, at a known sky position
    ir = ir_image(rng, (220, 220), 1.375, 17.0, sources=[(host, 40.0)])
    cut = CutoutEncoder(size=70)(radio, ir, position=offset(30, -20))
    assert cut.has_ir and cut.ir.shape == (70, 70) and cut.ir_valid.all()
    hx, hy = cut.wcs.world_to_pixel(host)
    cx, cy = centroid(cut.ir, float(hx), float(hy))
    assert abs(cx - hx) < 0.5 and abs(cy - hy) < 0.5
    # the pre-processed IR channel lights up at the host, and is zero far from it
    assert cut["ir"][round(float(hy)), round(float(hx))] > 0.8
    assert cut.ir_unit == u.dimensionless_unscaled
    assert cut.ir_noise is not None and cut.ir_coverage == 1.0
    assert "ir_partial" not in cut.flags and "no_ir" not in cut.flags


@pytest.mark.parametrize("method", ["adaptive", "exact"])
def test_other_reprojection_methods_agree(rng, radio, method):
    host = offset(36.0, -14.0)
    ir = ir_image(rng, (200, 200), 1.375, 17.0, sources=[(host, 40.0)])
    a = CutoutEncoder(size=40)(radio, ir, position=host)
    b = CutoutEncoder(size=40, ir_reproject=method)(radio, ir, position=host)
    hx, hy = b.wcs.world_to_pixel(host)
    cx, cy = centroid(b.ir, float(hx), float(hy))
    assert abs(cx - hx) < 0.5 and abs(cy - hy) < 0.5
    assert np.nanmedian(np.abs(a.ir - b.ir)) < 0.2


def test_fast_interp_matches_reproject_interp(rng, radio):
    host = offset(36.0, -14.0)
    ir = ir_image(rng, (220, 220), 1.375, 17.0, sources=[(host, 40.0)])
    pos = offset(-40, 30)  # the cutout runs off the IR image on one side
    fast = CutoutEncoder(size=(96, 120))(radio, ir, position=pos)
    ref = CutoutEncoder(size=(96, 120), ir_reproject="reproject_interp")(radio, ir, position=pos)
    both = np.isfinite(fast.ir) & np.isfinite(ref.ir)
    # the same pixels are covered, up to the half-pixel edge convention
    assert (np.isfinite(fast.ir) != np.isfinite(ref.ir)).sum() <= 0.01 * both.size
    assert not fast.ir_valid.all() and fast.ir_valid.any() and "ir_partial" in fast.flags
    np.testing.assert_allclose(fast.ir[both], ref.ir[both], atol=1e-4)


def test_ir_in_another_celestial_frame(rng, radio):
    """A Galactic IR image is placed by sky position too (slow, exact transform path)."""
    host = offset(-20.0, 25.0)
    gal = host.galactic
    shape = (200, 200)
    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-TAN", "GLAT-TAN"]
    w.wcs.crval = [gal.l.deg + 0.003, gal.b.deg - 0.002]
    w.wcs.crpix = [100.5, 100.5]
    w.wcs.cdelt = [-1.375 / 3600, 1.375 / 3600]
    x, y = w.world_to_pixel(gal)
    data = (5.0 + gaussian(shape, float(x), float(y), 2.0, 40.0)).astype(np.float32)
    ir = fits.PrimaryHDU(data, w.to_header())
    cut = CutoutEncoder(size=48)(radio, ir, position=host)
    hx, hy = cut.wcs.world_to_pixel(host)
    cx, cy = centroid(cut.ir, float(hx), float(hy))
    assert abs(cx - hx) < 0.5 and abs(cy - hy) < 0.5
    # tiny cutouts take reproject_interp directly, with the same answer
    small = CutoutEncoder(size=11)(radio, ir, position=host)
    sx, sy = small.wcs.world_to_pixel(host)
    cx, cy = centroid(small.ir, float(sx), float(sy), half=3)
    assert abs(cx - sx) < 0.5 and abs(cy - sy) < 0.5


def test_ir_on_the_radio_grid_is_cut_not_resampled(rng, radio):
    ir_data = rng.normal(size=radio.data.shape).astype(np.float32)
    ir = fits.PrimaryHDU(ir_data, radio.header)
    cut = CutoutEncoder(size=32)(radio, ir, position=(10, 150))
    x0, y0 = cut.origin
    inside = cut.valid
    assert cut.partial
    expected = np.full((32, 32), np.nan, np.float32)
    ys, xs = np.nonzero(inside)
    expected[ys, xs] = ir_data[ys + y0, xs + x0]
    np.testing.assert_array_equal(cut.ir, expected)


def test_partial_overlap_at_the_image_edge(radio):
    enc = CutoutEncoder(size=64, channels=("ir", "radio", "radio_snr"))
    cut = enc(radio, position=(5, 150))  # near the left and top edges
    assert cut.shape == (64, 64)  # the requested size is kept
    assert cut.partial and "partial" in cut.flags
    x0, y0 = cut.origin
    assert x0 < 0 and y0 + 64 > 160
    xs = np.arange(x0, x0 + 64)
    ys = np.arange(y0, y0 + 64)
    inside = ((ys >= 0) & (ys < 160))[:, None] & ((xs >= 0) & (xs < 160))[None, :]
    np.testing.assert_array_equal(cut.valid, inside)
    assert cut.overlap_fraction == pytest.approx(inside.mean())
    assert np.isnan(cut.radio[~inside]).all() and np.isfinite(cut.radio[inside]).all()
    assert np.isfinite(cut.channels).all()
    assert (cut.channels[:, ~inside] == 0).all()
    # the data that are there are where they should be
    np.testing.assert_array_equal(cut.radio[inside], radio.data[max(y0, 0) :, : x0 + 64].ravel())
    # a non-zero fill value is honoured outside
    filled = CutoutEncoder(size=64, fill_value=-1.0)(radio, position=(5, 150))
    assert (filled.channels[:, ~inside] == -1).all()
    np.testing.assert_array_equal(filled.channels[:, inside], cut.channels[:2, inside][[0, 1, 1]])


def test_nan_blanked_border(rng, src):
    hdu = radio_image(rng, sources=[(src, 50 * RMS)])
    hdu.data[:, :30] = np.nan  # a blanked mosaic border
    cut = CutoutEncoder(size=64)(hdu, position=(40, 80))
    assert not cut.partial  # inside the image ...
    assert "blanked" in cut.flags  # ... but partly blanked
    blank = np.zeros((64, 64), bool)
    blank[:, : 30 - cut.origin[0]] = True
    np.testing.assert_array_equal(cut.valid, ~blank)
    assert cut.overlap_fraction == pytest.approx(1 - blank.mean())
    assert np.isfinite(cut.channels).all() and (cut.channels[:, blank] == 0).all()
    assert cut.radio_noise.rms.to_value(u.Jy / u.beam) == pytest.approx(RMS, rel=0.15)
    # wholly blanked, or wholly outside: a clear error
    with pytest.raises(EmptyCutoutError, match="no finite radio data"):
        CutoutEncoder(size=20)(hdu, position=(10, 80))
    with pytest.raises(EmptyCutoutError, match="does not overlap"):
        CutoutEncoder(size=20)(hdu, position=(500, 80))
    with pytest.raises(EmptyCutoutError, match=r"only [1-9] pixels with radio data"):
        CutoutEncoder(size=20)(hdu, position=(168, 80), size=(2, 20))
    with pytest.raises(EmptyCutoutError, match="outside its projection"):
        CutoutEncoder(size=20)(hdu, position=SkyCoord(RA0 + 180, -DEC0, unit="deg"))


def test_no_ir_gives_zero_channel_and_flag(radio):
    cut = CutoutEncoder(size=48)(radio, position=(80, 80))
    assert not cut.has_ir and cut.ir is None and cut.ir_valid is None and cut.ir_noise is None
    assert "no_ir" in cut.flags
    assert (cut["ir"] == 0).all()
    assert cut.ir_coverage == 0.0


def test_ir_not_covering_the_cutout(rng, radio, caplog):
    far = ir_image(rng, (50, 50), 1.375, 0.0, ra=RA0 + 1.0, dec=DEC0)
    with caplog.at_level("WARNING", logger="galcam.preprocessing.encoder"):
        cut = CutoutEncoder(size=32)(radio, far, position=(80, 80))
    assert "the infrared image covers 0 pixels" in caplog.text
    assert cut.has_ir and not cut.ir_valid.any() and (cut["ir"] == 0).all()
    assert "ir_partial" in cut.flags and cut.ir_noise is None and cut.ir_coverage == 0.0
    # many cutouts: one summary line instead of one warning per cutout
    caplog.clear()
    with caplog.at_level("WARNING", logger="galcam.preprocessing.encoder"):
        cuts = list(CutoutEncoder(size=32).encode_many(radio, far, [(40, 40), (80, 80),
                                                                   (120, 80), (80, 120)]))
    lines = [r.getMessage() for r in caplog.records]
    assert len(cuts) == 4 and len(lines) == 1
    assert "of 4 of the 4 cutouts" in lines[0] and "and 1 more" in lines[0]
    snr = CutoutEncoder(size=32, channels=("radio_snr",))(radio, far, position=(80, 80))
    radio01, ir01 = snr.paper_channels()
    assert (ir01 == 0).all() and radio01.max() == 1.0
    with pytest.raises(ValueError, match="read-only"):
        radio01[0, 0] = 0.5


def test_channel_order_honoured(rng, radio, src):
    ir = ir_image(rng, (220, 220), 1.375, 17.0, sources=[(offset(36.0, -14.0), 40.0)])
    names = ("radio", "zeros", "ir", "radio_snr")
    cut = CutoutEncoder(size=48, channels=names)(radio, ir, position=src)
    ref = CutoutEncoder(size=48)(radio, ir, position=src)
    assert cut.channel_names == names and cut.channels.shape == (4, 48, 48)
    np.testing.assert_array_equal(cut.channels[0], ref.channels[1])
    np.testing.assert_array_equal(cut.channels[2], ref.channels[0])
    assert (cut.channels[1] == 0).all()
    snr = cut.channels[3]
    assert 0.0 <= snr.min() and snr.max() <= 1.0
    # the S/N channel keeps absolute brightness: monotonic in the radio data where positive
    r = (cut.radio - cut.radio_noise.background.value) / cut.radio_noise.rms.value
    pos = r > 0
    order = np.argsort(r[pos])
    assert np.all(np.diff(snr[pos][order]) >= -1e-6)
    assert snr[(r > 40) & pos].min() > snr[(r < 3) & pos].max()
    with pytest.raises(KeyError, match="no channel 'blue'"):
        cut["blue"]


def test_radio_snr_is_zero_where_there_is_no_data(radio):
    data = radio.data.copy()
    data[:, :30] = np.nan  # a blanked edge
    nd = NDData(data, wcs=WCS(radio.header), unit="Jy/beam")
    cut = CutoutEncoder(size=60)(nd, position=(40, 50))
    snr = cut.radio_snr()
    assert snr.shape == cut.shape and np.isfinite(snr).all()
    assert (snr[~cut.valid] == 0).all() and (~cut.valid).any()
    rms, bkg = cut.radio_noise.rms.value, cut.radio_noise.background.value
    np.testing.assert_allclose(snr[cut.valid], ((cut.radio - bkg) / rms)[cut.valid], rtol=1e-5,
                               atol=1e-6)


def test_whole_image_when_no_position(radio):
    cut = CutoutEncoder()(radio)
    assert cut.shape == radio.data.shape and cut.origin == (0, 0) and not cut.partial
    np.testing.assert_array_equal(cut.radio, radio.data)
    with pytest.raises(ValueError, match="size= needs a position"):
        CutoutEncoder()(radio, size=10)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 0}, "at least 1 pixel"),
        ({"size": (10, 10, 10)}, "size must be"),
        ({"size": 2.5}, "size must be"),
        ({"size": 3 * u.Jy}, "angle Quantity"),
        ({"size": -1 * u.arcmin}, "positive"),
        ({"channels": "radio"}, "tuple of channel names"),
        ({"channels": ()}, "at least one channel"),
        ({"channels": ("ir", "optical")}, r"unknown channel name\(s\) \['optical'\]"),
        ({"radio_noise": "mad"}, "radio_noise must be a galcam.preprocessing.NoiseEstimator"),
        ({"ir_noise": 3.0}, "ir_noise must be"),
        ({"n_sigma": 0}, "n_sigma: expected a finite positive number"),
        ({"n_sigma": "3"}, "n_sigma: expected a finite positive number"),
        ({"n_pixels": 0}, "n_pixels: expected a positive integer"),
        ({"n_pixels": 2.5}, "n_pixels: expected a positive integer"),
        ({"ir_reproject": "nearest"}, "ir_reproject must be one of"),
        ({"fill_value": np.nan}, "fill_value: expected a finite number"),
        ({"snr_max": -1}, "snr_max: expected a finite positive number"),
    ],
)
def test_bad_options_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CutoutEncoder(**kwargs)


def test_bad_call_arguments(radio):
    enc = CutoutEncoder(size=16)
    with pytest.raises(ValueError, match="position must be a SkyCoord or a 0-based pixel"):
        enc(radio, position=(1, 2, 3))
    with pytest.raises(ValueError, match="single SkyCoord"):
        enc(radio, position=SkyCoord([1, 2], [3, 4], unit="deg"))
    with pytest.raises(ValueError, match="noise must be a galcam.preprocessing.NoiseResult"):
        enc(radio, position=(50, 50), noise=1e-4)
    scalar = NoiseResult(method="mad", rms=1.0 * u.Jy / u.beam, background=0 * u.Jy / u.beam)
    mapped = NoiseResult(
        method="mad",
        rms=scalar.rms,
        background=scalar.background,
        rms_map=np.ones((4, 4)) * u.Jy / u.beam,
    )
    with pytest.raises(ValueError, match="ir_noise with noise maps is not supported"):
        enc(radio, radio, position=(50, 50), ir_noise=mapped)
    assert enc(radio, radio, position=(50, 50), ir_noise=scalar).ir_noise is scalar
    with pytest.raises(TypeError, match="read_image expects"):
        enc(42, position=(50, 50))


def test_inputs_not_mutated(rng, radio, src):
    ir = ir_image(rng, (200, 200), 1.375, 17.0, sources=[(src, 40.0)])
    radio.data[:5] = np.nan
    nd = NDData(radio.data.copy(), wcs=WCS(radio.header), unit="Jy/beam")
    before = (radio.data.copy(), radio.header.copy(), ir.data.copy(), nd.data.copy())
    crpix = nd.wcs.wcs.crpix.copy()
    enc = CutoutEncoder(size=40, channels=("ir", "radio", "radio_snr"))
    enc(radio, ir, position=(10, 3))
    enc(nd, ir, position=src)
    list(enc.encode_many(nd, ir, [(30, 30), (100, 120)]))
    np.testing.assert_array_equal(radio.data, before[0])
    assert radio.header == before[1]
    np.testing.assert_array_equal(ir.data, before[2])
    np.testing.assert_array_equal(nd.data, before[3])
    np.testing.assert_array_equal(nd.wcs.wcs.crpix, crpix)


def test_result_is_immutable(radio):
    cut = CutoutEncoder(size=16)(radio, position=(50, 50))
    with pytest.raises(AttributeError, match="immutable"):
        cut.origin = (1, 1)
    with pytest.raises(ValueError, match="read-only"):
        cut.channels[0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        cut.valid[0, 0] = False
    assert "EncodedCutout 16x16" in repr(cut)


def test_repr_of_a_galactic_cutout_gives_degrees_not_hours():
    from astropy.nddata import NDData
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    wcs.wcs.crval = [18.0, -0.3]
    wcs.wcs.crpix = [32.5, 32.5]
    wcs.wcs.cdelt = [-2 / 3600, 2 / 3600]
    data = np.random.default_rng(1).normal(0, 1e-4, (64, 64)).astype(np.float32)
    data[30:34, 30:34] += 5e-3
    image = NDData(data, wcs=wcs, unit="Jy/beam")
    text = repr(CutoutEncoder(size=16)(image, position=(32, 32)))
    assert "at galactic (17.99" in text and ") deg" in text and "h" not in text.split("at ")[1][:20]


def test_paper_png_round_trip(tmp_path, rng, radio, src):
    ir = ir_image(rng, (220, 220), 1.375, 17.0, sources=[(offset(36.0, -14.0), 40.0)])
    cut = CutoutEncoder(size=64)(radio, ir, position=src)
    path = cut.to_paper_png(tmp_path / "cut.png")
    radio01, ir01 = read_paper_png(path)
    np.testing.assert_allclose(radio01, cut["radio"], atol=1 / 65535 + 1e-7)
    np.testing.assert_allclose(ir01, cut["ir"], atol=1 / 255 + 1e-7)
    with pytest.raises(FileExistsError):
        cut.to_paper_png(path)
    cut.to_paper_png(path, overwrite=True)
    # an encoder without the paper channels still writes them (computed on demand)
    snr_only = CutoutEncoder(size=64, channels=("radio_snr",))(radio, ir, position=src)
    p2 = snr_only.to_paper_png(tmp_path / "snr.png")
    r2, i2 = read_paper_png(p2)
    np.testing.assert_array_equal(r2, radio01)
    np.testing.assert_array_equal(i2, ir01)


def test_to_nddata_and_fits(radio, src):
    cut = CutoutEncoder(size=32)(radio, position=src)
    nd = cut.to_nddata("radio")
    assert nd.unit == u.Jy / u.beam and nd.data.shape == (32, 32)
    assert nd.meta["beam"] is cut.beam
    np.testing.assert_allclose(nd.wcs.world_to_pixel(src), cut.wcs.world_to_pixel(src))
    assert cut.to_nddata("radio").data.flags.writeable
    with pytest.raises(ValueError, match="without an infrared image"):
        cut.to_nddata("ir")
    hdul = cut.to_hdulist()
    assert hdul[0].data.shape == (3, 32, 32)
    assert [hdul[0].header[f"CHNAME{i}"] for i in (1, 2, 3)] == list(cut.channel_names)


def test_encode_many_reads_files_once_and_matches_single_calls(tmp_path, rng, radio, src):
    ir = ir_image(rng, (220, 220), 1.375, 17.0, sources=[(src, 40.0)])
    rpath, ipath = tmp_path / "radio.fits", tmp_path / "ir.fits"
    radio.writeto(rpath)
    ir.writeto(ipath)
    enc = CutoutEncoder(size=40)
    positions = SkyCoord([src, offset(-60, 50), offset(0, 0)])
    many = list(enc.encode_many(rpath, ipath, positions))
    assert [c.meta["index"] for c in many] == [0, 1, 2]
    for pos, c in zip(positions, many, strict=True):
        single = enc(rpath, ipath, position=pos)
        np.testing.assert_array_equal(c.channels, single.channels)
        assert c.origin == single.origin
        assert c.meta["radio_file"] == str(rpath)
    pix = list(enc.encode_many(radio, None, [(80, 80), (1000, 1000), (20, 30)], errors="skip"))
    assert [c.meta["index"] for c in pix] == [0, 2]
    with pytest.raises(EmptyCutoutError):
        list(enc.encode_many(radio, None, [(80, 80), (1000, 1000)]))
    with pytest.raises(ValueError, match="errors must be"):
        enc.encode_many(radio, None, [(80, 80)], errors="ignore")
    with pytest.raises(ValueError, match="positions must be"):
        enc.encode_many(radio, None, np.zeros((3, 3)))


def test_precomputed_noise_map_is_sampled_on_the_cutout(radio):
    rms_map = np.full(radio.data.shape, 2 * RMS, np.float32)
    rms_map[:, 80:] = 4 * RMS
    parent_noise = NoiseResult(
        method="mad",
        rms=3 * RMS * u.Jy / u.beam,
        background=0 * u.Jy / u.beam,
        rms_map=rms_map * u.Jy / u.beam,
        background_map=None,
    )
    enc = CutoutEncoder(size=20, channels=("radio_snr",))
    cut = enc(radio, position=(80, 50), noise=parent_noise)
    x0, y0 = cut.origin
    local = rms_map[y0 : y0 + 20, x0 : x0 + 20]
    assert (local == 2 * RMS).any() and (local == 4 * RMS).any()
    np.testing.assert_array_equal(cut.radio_noise.rms_map.value, local)
    # the S/N channel uses the local noise of the map
    snr = np.clip(cut.radio / local, 0, None)
    expected = np.clip(np.arcsinh(snr / 3) / np.arcsinh(1000 / 3), 0, 1)
    np.testing.assert_allclose(cut["radio_snr"], expected, rtol=1e-5, atol=1e-7)
    # radio_snr(): the same S/N, not compressed, negatives kept, read-only
    plain = cut.radio_snr()
    np.testing.assert_allclose(plain, cut.radio / local, rtol=1e-5, atol=1e-6)
    assert plain.dtype == np.float32 and (plain < 0).any() and not plain.flags.writeable
    wrong = NoiseResult(
        method="mad",
        rms=RMS * u.Jy / u.beam,
        background=0 * u.Jy / u.beam,
        rms_map=np.ones((5, 5)) * u.Jy / u.beam,
        background_map=None,
    )
    with pytest.raises(ValueError, match="noise map on the image's grid"):
        CutoutEncoder(size=20)(radio, position=(80, 50), noise=wrong)
    # a scalar NoiseResult is used as given, not re-estimated
    fixed = NoiseResult(
        method="mad",
        rms=10 * RMS * u.Jy / u.beam,
        background=0 * u.Jy / u.beam,
        rms_map=None,
        background_map=None,
    )
    c2 = CutoutEncoder(size=20)(radio, position=(70, 50), noise=fixed)
    assert c2.radio_noise is fixed


def test_channel_names_constant():
    assert set(CHANNEL_NAMES) == {"ir", "radio", "radio_snr", "zeros"}
    assert NoiseEstimator  # the default estimators come from galcam.preprocessing.noise


def test_askap_4d_mosaic_file_memory_mapped(tmp_path, radio, src):
    """A 4-axis (RA, Dec, FREQ, STOKES) big-endian FITS mosaic, read memory-mapped."""
    header = radio.header.copy()
    header["NAXIS"] = 4
    header["WCSAXES"] = 4
    header["CTYPE3"], header["CRPIX3"], header["CRVAL3"], header["CDELT3"] = "FREQ", 1, 9e8, 1e6
    header["CTYPE4"], header["CRPIX4"], header["CRVAL4"], header["CDELT4"] = "STOKES", 1, 1, 1
    path = tmp_path / "emu.fits"
    fits.PrimaryHDU(radio.data[None, None].astype(">f4"), header).writeto(path)
    enc = CutoutEncoder(size=48)
    [many] = list(enc.encode_many(path, None, src))
    single = enc(radio, position=src)
    np.testing.assert_array_equal(many.radio, single.radio)
    np.testing.assert_array_equal(many.channels, single.channels)
    assert many.radio.dtype == np.float32 and many.radio.dtype.isnative
    assert many.beam.major.to_value(u.arcsec) == pytest.approx(13)

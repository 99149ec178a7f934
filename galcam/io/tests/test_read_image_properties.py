"""Property-based tests of `galcam.io.read_image` over generated FITS files (hypothesis).

Every generated file either reads into the right 2-D image (shape, WCS, unit, beam) or
is refused with one clear error that names the file; nothing else escapes.
"""

import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from galcam.io import ImageReadError, read_image

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

CELESTIAL = [("RA---SIN", "DEC--SIN"), ("RA---TAN", "DEC--TAN"), ("GLON-CAR", "GLAT-CAR"),
             ("RA---NCP", "DEC--NCP")]


@st.composite
def fits_files(draw):
    """A FITS image: celestial axes first, then up to two extra axes, with its truth."""
    nx = draw(st.integers(1, 24))
    ny = draw(st.integers(1, 24))
    lon, lat = draw(st.sampled_from(CELESTIAL))
    extra = draw(st.lists(st.tuples(st.sampled_from(["FREQ", "STOKES"]),
                                    st.sampled_from([1, 1, 1, 2])),
                          max_size=2, unique_by=lambda t: t[0]))
    dtype = draw(st.sampled_from(["float32", "float64", "int16"]))
    blank = draw(st.sampled_from(["none", "none", "edges", "all", "constant"]))
    beam = draw(st.sampled_from(["none", "deg", "deg", "arcsec_as_deg"]))
    bunit = draw(st.sampled_from(["Jy/beam", "mJy/beam", "JY/BEAM", None]))
    scale = draw(st.sampled_from([1.0, 2.0, 1e-4]))
    seed = draw(st.integers(0, 2 ** 16))
    return {"nx": nx, "ny": ny, "lon": lon, "lat": lat, "extra": extra, "dtype": dtype,
            "blank": blank, "beam": beam, "bunit": bunit, "scale": scale, "seed": seed}


def _write(spec, path):
    rng = np.random.default_rng(spec["seed"])
    shape = tuple(n for _, n in reversed(spec["extra"])) + (spec["ny"], spec["nx"])
    data = rng.normal(0.0, 1.0, shape)
    if spec["blank"] == "edges" and spec["nx"] > 2:
        data[..., :, 0] = np.nan
    elif spec["blank"] == "all":
        data[...] = np.nan
    elif spec["blank"] == "constant":
        data[...] = 0.5
    header = fits.Header()
    if spec["dtype"] == "int16":
        # scaled integers: BSCALE/BZERO, NaN has no integer: use BLANK
        header["BSCALE"] = spec["scale"]
        header["BZERO"] = 0.0
        # (finite values saturate at -32767: -32768 is the BLANK value)
        raw = np.clip(np.round(data / spec["scale"] * 100), -32767, 32767)
        array = np.where(np.isfinite(data), raw, -32768).astype(np.int16)
        header["BLANK"] = -32768
    else:
        array = (data * spec["scale"]).astype(spec["dtype"])
    axes = [(spec["lon"], spec["nx"], -2.0 / 3600, 150.0), (spec["lat"], spec["ny"],
                                                           2.0 / 3600, 2.0)]
    axes += [(name, n, 1.0, 1.4e9 if name == "FREQ" else 1.0) for name, n in spec["extra"]]
    for k, (ctype, n, cdelt, crval) in enumerate(axes, start=1):
        header[f"CTYPE{k}"] = ctype
        header[f"CRPIX{k}"] = (n + 1) / 2 if k <= 2 else 1.0
        header[f"CDELT{k}"] = cdelt
        header[f"CRVAL{k}"] = crval
        if k <= 2:
            header[f"CUNIT{k}"] = "deg"
    if spec["bunit"] is not None:
        header["BUNIT"] = spec["bunit"]
    if spec["beam"] == "deg":
        header["BMAJ"], header["BMIN"], header["BPA"] = 13 / 3600, 11 / 3600, 30.0
    elif spec["beam"] == "arcsec_as_deg":
        header["BMAJ"], header["BMIN"], header["BPA"] = 13.0, 11.0, 30.0
    hdu = fits.PrimaryHDU(array, header=header)
    if spec["dtype"] == "int16":
        hdu.header["BSCALE"] = spec["scale"] / 100
        hdu.header["BZERO"] = 0.0
    hdu.writeto(path, overwrite=True)


@hypothesis.settings(max_examples=80, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(spec=fits_files())
def test_every_fits_reads_right_or_is_refused_clearly(spec, tmp_path):
    path = tmp_path / "gen.fits"
    _write(spec, path)
    cube = any(n > 1 for _, n in spec["extra"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)  # noted, not the property
        try:
            image = read_image(path)
        except (ImageReadError, ValueError, u.UnitsError) as exc:
            message = str(exc)
            assert "gen.fits" in message, message  # names the file
            assert "\n" not in message.strip(), message  # one line
            # refused for a reason the file really has
            assert (cube or spec["blank"] in ("all", "constant")
                    or spec["beam"] == "arcsec_as_deg"), message
            hypothesis.event("refused")
            return
    hypothesis.event("read")
    # read: the right 2-D image, its WCS, unit and beam
    assert not cube and spec["blank"] not in ("all",)
    assert image.data.shape == (spec["ny"], spec["nx"]) and image.data.ndim == 2
    assert image.wcs.pixel_n_dim == 2 and image.wcs.has_celestial
    sky = image.wcs.pixel_to_world((spec["nx"] - 1) / 2, (spec["ny"] - 1) / 2)
    if spec["lon"].startswith("RA"):
        assert abs(sky.icrs.ra.deg - 150.0) < 1e-6 and abs(sky.icrs.dec.deg - 2.0) < 1e-6
    else:
        assert abs(sky.galactic.l.deg - 150.0) < 1e-6 and abs(sky.galactic.b.deg - 2.0) < 1e-6
    if spec["bunit"] is not None:
        assert u.Unit(image.unit).is_equivalent(u.Jy / u.beam)
    beam = image.meta.get("beam")
    if spec["beam"] == "deg":
        assert abs(beam.major.to_value(u.arcsec) - 13.0) < 1e-6
    elif spec["beam"] == "none":
        assert beam is None
    if spec["blank"] == "edges" and spec["nx"] > 2:
        assert np.all(np.isnan(image.data[:, 0])) and np.isfinite(image.data[:, 1]).all()

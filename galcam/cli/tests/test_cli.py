"""Tests of the ``galcam`` command line: version, help, islands, error handling."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable

import galcam
from galcam.cli.main import main


def _radio_file(path, rng, *, sources=((30, 40), (80, 70))):
    """A 4-D ASKAP-like image: white noise of rms 1e-4 Jy/beam plus bright Gaussians."""
    ny, nx = 120, 110
    yy, xx = np.mgrid[:ny, :nx]
    data = rng.normal(0, 1e-4, size=(ny, nx))
    for x0, y0 in sources:
        data += 5e-3 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 2.5**2))
    h = fits.Header()
    for key, value in {
        "CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN", "CTYPE3": "FREQ", "CTYPE4": "STOKES",
        "CRPIX1": 55.0, "CRPIX2": 60.0, "CRPIX3": 1.0, "CRPIX4": 1.0,
        "CRVAL1": 330.0, "CRVAL2": -52.0, "CRVAL3": 944e6, "CRVAL4": 1.0,
        "CDELT1": -2 / 3600, "CDELT2": 2 / 3600, "CDELT3": 1e6, "CDELT4": 1.0,
        "CUNIT1": "deg", "CUNIT2": "deg", "BUNIT": "JY/BEAM",
        "BMAJ": 13 / 3600, "BMIN": 11 / 3600, "BPA": 0.0,
    }.items():
        h[key] = value
    fits.PrimaryHDU(data[None, None].astype(np.float32), h).writeto(path)
    return path


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert galcam.__version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "islands" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["islands", "--help"])
    assert exc.value.code == 0
    assert "--n-sigma" in capsys.readouterr().out


def test_islands_on_a_file(tmp_path, rng, capsys):
    image = _radio_file(tmp_path / "emu.fits", rng)
    out = tmp_path / "out"
    assert main(["islands", str(image), "-o", str(out)]) == 0
    table = QTable.read(out / "islands.ecsv")
    assert len(table) == 2
    np.testing.assert_allclose(sorted(table["xcentroid"].value), [30, 80], atol=0.3)
    assert "sky_centroid" in table.colnames
    assert table.meta["n_sigma"] == 3.0
    assert (out / "islands.png").stat().st_size > 10_000
    assert "2 islands" in capsys.readouterr().out
    # existing outputs are kept unless --overwrite
    assert main(["islands", str(image), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["islands", str(image), "-o", str(out), "--overwrite", "--n-sigma", "1000"]) == 0
    assert len(QTable.read(out / "islands.ecsv")) == 0


def test_islands_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.fits"
    bad.write_text("not fits")
    assert main(["islands", str(bad), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "notes.fits" in err and "is not a FITS file" in err
    assert main(["islands", str(tmp_path / "missing.fits"), "-o", str(tmp_path / "o")]) == 2
    assert "missing.fits" in capsys.readouterr().err
    # a constant image: the file is named, and no output folder is left behind
    zero = _radio_file(tmp_path / "zero.fits", np.random.default_rng(0))
    fits.writeto(zero, np.zeros_like(fits.getdata(zero)), fits.getheader(zero), overwrite=True)
    assert main(["islands", str(zero), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "zero.fits" in err and "the image is constant" in err
    for option, value in (("--n-sigma", "-3"), ("--n-pixels", "0"), ("--box-size", "0")):
        assert main(["islands", str(zero), "-o", str(tmp_path / "o"), option, value]) == 2
        assert option in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_islands_example(tmp_path):
    out = tmp_path / "example"
    assert main(["islands", "--example", "-o", str(out), "-q"]) == 0
    table = QTable.read(out / "islands.ecsv")
    assert len(table) >= 3  # the example holds several radio galaxies and compact sources


def test_negative_plane_is_refused_in_one_line(tmp_path, rng, capsys):
    image = _radio_file(tmp_path / "emu.fits", rng)
    assert main(["islands", str(image), "-o", str(tmp_path / "o"), "--plane", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("galcam islands: error: --plane: expected a 0-based plane index (0 is the "
                   "first plane; galcam does not count planes from the end), got -1")
    assert not (tmp_path / "o").exists()


def test_png_given_as_fits_is_one_galcam_line(tmp_path, capsys):
    from PIL import Image

    png = tmp_path / "radio.fits"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(png, format="PNG")
    assert main(["islands", str(png), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "radio.fits': is a PNG image, not a FITS file" in err
    assert "ignore_missing_simple" not in err


def test_islands_reads_the_hdu_asked_for(tmp_path, rng, capsys):
    image = _radio_file(tmp_path / "emu.fits", rng)
    with fits.open(image) as hdul:
        header = hdul[0].header
        blank = fits.PrimaryHDU(np.zeros((4, 4), np.float32))  # no WCS: not an image to use
        fits.HDUList([blank, fits.ImageHDU(hdul[0].data, header, name="SKY")]).writeto(
            tmp_path / "ext.fits")
    assert main(["islands", str(tmp_path / "ext.fits"), "-o", str(tmp_path / "o"),
                 "--hdu", "SKY", "-q"]) == 0
    assert len(QTable.read(tmp_path / "o" / "islands.ecsv")) == 2
    assert main(["islands", str(tmp_path / "ext.fits"), "-o", str(tmp_path / "p"),
                 "--hdu", "-1"]) == 2
    assert "--hdu: expected a 0-based HDU index" in capsys.readouterr().err


def test_islands_records_its_run_and_removes_only_an_earlier_runs_files(tmp_path, rng, capsys):
    import json

    image = _radio_file(tmp_path / "emu.fits", rng)
    out = tmp_path / "o"
    assert main(["islands", str(image), "-o", str(out), "-q"]) == 0
    run = json.loads((out / "galcam-run.json").read_text())
    assert run["command"] == "islands" and sorted(run["files"]) == ["islands.ecsv",
                                                                    "islands.png"]
    # an earlier galcam run (say galcam predict) wrote overview.png: the manifest says so
    (out / "overview.png").write_bytes(b"earlier")
    run["files"]["overview.png"] = {"bytes": 7, "sha256": ""}
    (out / "galcam-run.json").write_text(json.dumps(run))
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["islands", str(image), "-o", str(out)]) == 2
    assert "overview.png (written by 'galcam islands'); use --overwrite" in \
        capsys.readouterr().err
    assert main(["islands", str(image), "-o", str(out), "--overwrite", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["galcam-run.json", "islands.ecsv",
                                                     "islands.png", "notes.txt"]
    assert json.loads((out / "galcam-run.json").read_text())["removed"] == ["overview.png"]

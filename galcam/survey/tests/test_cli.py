"""``galcam survey`` on the command line."""

import json

import pytest
from astropy.table import QTable

from galcam.cli.main import main

from .conftest import FAST, OVERLAP, TILE


def test_survey_command(survey_model, mosaic, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["survey", str(mosaic["radio"]), "-o", str(out), "--model", str(survey_model),
            "--n-workers", "0", "--tile-size", str(TILE), "--overlap", str(OVERLAP),
            "--model-options", json.dumps(FAST), "--formats", "ecsv,fits,votable",
            "--no-progress", "--max-units", "4"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "units -> " in captured.out and "still to do" in captured.err
    assert main(args[:-2]) == 0
    assert "9/9 units" in capsys.readouterr().out
    for name in ("catalog.ecsv", "catalog.fits", "catalog.vot", "galaxies.reg",
                 "coverage.png", "manifest.json", "predictions.json",
                 "predictions.categories.json"):
        assert (out / name).is_file(), name
    named = json.loads((out / "predictions.categories.json").read_text())["categories"]
    assert [c["name"] for c in named] == ["FR-I", "FR-II", "FR-X", "R"]
    ecsv = QTable.read(out / "catalog.ecsv")
    vot = QTable.read(out / "catalog.vot")
    assert len(ecsv) == len(vot) and "sky_centroid_ra" in vot.colnames


@pytest.mark.parametrize("extra, message", [
    (["--seed-columns", "ra"], "--seed-columns"),
    (["--model-options", "[1]"], "JSON object"),
    (["--restart"], "--overwrite"),
    (["--seeds", "/no/such.vot"], "does not exist"),
    (["--plane", "-1"], "--plane: expected a 0-based plane index"),
])
def test_bad_arguments(mosaic, tmp_path, capsys, extra, message):
    args = ["survey", str(mosaic["radio"]), "-o", str(tmp_path / "o"), "--n-workers", "0"]
    assert main(args + extra) == 2
    assert message in capsys.readouterr().err


def test_messages_name_flags_not_keywords(survey_model, mosaic, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "catalog.ecsv").write_text("# not a survey's\n")
    args = ["survey", str(mosaic["radio"]), "-o", str(out), "--model", str(survey_model),
            "--n-workers", "0", "--tile-size", str(TILE), "--no-progress", "-q"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "holds catalog.ecsv but no survey manifest" in err
    assert err.endswith("use another folder or --overwrite") and "overwrite=True" not in err


def test_blank_and_undersampled_mosaics_are_one_line(survey_model, tmp_path, capsys):
    import numpy as np

    from galcam.inference.tests.conftest import make_radio, write_fits

    blank = make_radio(shape=(40, 40), beam=(13.0, 11.0))
    blank.data[...] = np.nan
    lofar = make_radio(shape=(20, 20), pixel_scale=61.0, beam=(27.0, 27.0), sources=())
    base = ["-o", str(tmp_path / "o"), "--model", str(survey_model), "--n-workers", "0",
            "--no-progress", "-q"]
    assert main(["survey", str(write_fits(blank, tmp_path / "blank.fits")), *base]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.endswith("blank.fits': every pixel is NaN or infinite (blank image)")
    assert main(["survey", str(write_fits(lofar, tmp_path / "lofar.fits")), *base]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lofar.fits': pixels of 61\" are coarser" in err
    assert err.endswith("; use --force to run it anyway") and "force=True" not in err
    assert not (tmp_path / "o").exists()

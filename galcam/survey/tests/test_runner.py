"""SurveyRunner: outputs, dask vs one process, resume after a kill, refusals."""

import faulthandler
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.table import QTable

from galcam.inference.result import rle_to_mask
from galcam.survey import SurveyMismatchError, SurveyRunner, read_manifest

from .conftest import FAST, OVERLAP, TILE, make_runner


def _rows(path):
    """The catalogue's rows as text, without the creation date."""
    with open(path, encoding="utf-8") as fh:
        return [line for line in fh.read().splitlines() if "date_created" not in line]


def test_outputs_of_a_single_process_run(sync_run, mosaic):
    out = sync_run.output_dir
    for name in ("catalog.ecsv", "galaxies.reg", "manifest.json", "predictions.json",
                 "coverage.png"):
        assert (out / name).is_file(), name
    # 160 px, 64 px tiles overlapping by 16 px: 3 x 3 tiles
    assert len(sync_run.units) == 9 and sync_run.complete
    assert len(list((out / "units").glob("*.json"))) == 9
    manifest = read_manifest(out)
    assert manifest["status"] == "complete"
    assert manifest["units"] == {"total": 9, "done": 9, "failed": {}}
    assert manifest["inputs"]["mosaic"]["size"] == os.path.getsize(mosaic["radio"])
    assert manifest["settings"]["units"]["unit_size"] == [TILE, TILE]
    table = QTable.read(out / "catalog.ecsv")
    assert len(table) == len(sync_run) > 0
    assert {"class", "score", "sky_centroid", "host_sky", "peak_flux", "total_flux",
            "local_rms", "units", "n_views"} <= set(table.colnames)
    assert np.all(np.isfinite(table["peak_flux"].value))
    assert np.all(table["local_rms"].value > 0)
    assert np.all(np.diff(table["score"]) <= 0)
    # one radio component belongs to at most one galaxy: no pixel is in two masks
    masks = sync_run.result.masks()
    assert masks.sum(axis=0).max() <= 1
    preds = json.loads((out / "predictions.json").read_text())
    assert len(preds) == len(table)
    assert rle_to_mask(preds[0]["segmentation"]).shape == (160, 160)
    from regions import Regions

    assert len(Regions.read(str(out / "galaxies.reg"), format="ds9")) >= len(table)


def _kill_a_worker_when_a_unit_is_done(units_dir, killed, stop):
    """Thread: kill -9 one dask worker process as soon as the first unit file exists."""
    import psutil

    while not stop.is_set():
        if units_dir.is_dir() and any(units_dir.glob("*.json")):
            for child in psutil.Process().children(recursive=True):
                try:
                    if "spawn_main" in " ".join(child.cmdline()):
                        os.kill(child.pid, signal.SIGKILL)
                        killed.append(child.pid)
                        return
                except psutil.Error:
                    continue
        time.sleep(0.01)


def test_two_worker_cluster_gives_the_single_process_catalogue(survey_model, mosaic, sync_run,
                                                               tmp_path):
    """Also when one worker is killed with SIGKILL during the run."""
    pytest.importorskip("distributed")
    import threading

    out = tmp_path / "dask"
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_a_worker_when_a_unit_is_done,
                              args=(out / "units", killed, stop), daemon=True)
    killer.start()
    faulthandler.dump_traceback_later(240, exit=True)  # never hang the test suite
    try:
        result = make_runner(survey_model, n_workers=2).run(
            mosaic["radio"], mosaic["ir"], output_dir=out, progress=False)
    finally:
        faulthandler.cancel_dump_traceback_later()
        stop.set()
        killer.join()
    assert len(killed) == 1  # a worker died mid-run; dask ran its task elsewhere
    assert result.complete and not result.failed
    assert _rows(result.paths["table"]) == _rows(sync_run.paths["table"])
    history = result.manifest["history"][-1]
    assert history["mode"] == "local"
    workers = history["workers"]
    assert sum(w["units"] for w in workers.values()) == 9
    # each worker process loaded the model once, however many units it ran
    assert all(w["model_loads"] == 1 for w in workers.values())
    assert all(w["peak_rss_mb"] > 0 for w in workers.values())


def test_a_running_cluster_by_its_address_gives_the_same_catalogue(survey_model, mosaic,
                                                                    sync_run, tmp_path):
    """What a cluster of batch jobs (dask-jobqueue's SLURMCluster) hands over: an address."""
    distributed = pytest.importorskip("distributed")
    faulthandler.dump_traceback_later(240, exit=True)  # never hang the test suite
    try:
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as cluster:
            result = make_runner(survey_model, n_workers=None,
                                 scheduler=cluster.scheduler_address).run(
                mosaic["radio"], mosaic["ir"], output_dir=tmp_path / "remote", progress=False)
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert result.complete and result.manifest["history"][-1]["mode"] == "remote"
    assert _rows(result.paths["table"]) == _rows(sync_run.paths["table"])


def test_resume_after_a_partial_run(survey_model, mosaic, sync_run, tmp_path):
    out = tmp_path / "partial"
    runner = make_runner(survey_model)
    part = runner.run(mosaic["radio"], mosaic["ir"], output_dir=out, max_units=5,
                      progress=False)
    assert not part.complete and len(part.done) == 5
    assert read_manifest(out)["status"] == "incomplete"
    first = {p.name: p.stat().st_mtime_ns for p in (out / "units").glob("*.json")}
    assert len(first) == 5
    full = runner.run(mosaic["radio"], mosaic["ir"], output_dir=out, progress=False)
    assert full.complete and full.manifest["history"][-1]["units_processed"] == 4
    assert all((out / "units" / n).stat().st_mtime_ns == t for n, t in first.items())
    assert _rows(full.paths["table"]) == _rows(sync_run.paths["table"])


def test_kill_9_of_the_client_then_resume(survey_model, mosaic, sync_run, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "galcam.cli.main", "-q", "survey", str(mosaic["radio"]),
           "--ir", str(mosaic["ir"]), "-o", str(out), "--model", str(survey_model),
           "--n-workers", "0", "--tile-size", str(TILE), "--overlap", str(OVERLAP),
           "--model-options", json.dumps(FAST), "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((out / "units").glob("*.json"))) >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    done = list((out / "units").glob("*.json"))
    assert 3 <= len(done) < 9
    assert not list((out / "units").glob(".*.tmp"))  # no half-written unit file is visible
    assert read_manifest(out)["status"] == "running"
    from galcam.cli.main import main

    assert main(cmd[3:]) == 0
    manifest = read_manifest(out)
    assert manifest["status"] == "complete"
    assert manifest["history"][-1]["units_processed"] == 9 - len(done)
    assert _rows(out / "catalog.ecsv") == _rows(sync_run.paths["table"])


def test_other_settings_are_refused(survey_model, mosaic, sync_run):
    out = sync_run.output_dir
    before = sorted(p.stat().st_mtime_ns for p in (out / "units").glob("*.json"))
    with pytest.raises(SurveyMismatchError, match="other inputs, model or settings"):
        make_runner(survey_model, overlap=0.3).run(mosaic["radio"], mosaic["ir"],
                                                   output_dir=out)
    with pytest.raises(SurveyMismatchError, match="overwrite"):
        make_runner(survey_model).run(mosaic["radio"], None, output_dir=out)
    with pytest.raises(FileExistsError, match="resume=True"):
        make_runner(survey_model).run(mosaic["radio"], mosaic["ir"], output_dir=out,
                                      resume=False)
    assert sorted(p.stat().st_mtime_ns for p in (out / "units").glob("*.json")) == before


def test_seeded_run(survey_model, mosaic, tmp_path):
    truth = QTable.read(mosaic["table"])
    ra, dec = truth["center"].icrs.ra.deg, truth["center"].icrs.dec.deg
    seeds = QTable({"RA": list(ra) + [0.0], "DEC": list(dec) + [-89.0],
                    "Source_id": np.arange(len(ra) + 1), "Peak_flux": np.ones(len(ra) + 1)})
    path = tmp_path / "pybdsf.csv"
    seeds.write(path, format="ascii.csv")
    result = make_runner(survey_model, seeds=path, seed_separation=0).run(
        mosaic["radio"], None, output_dir=tmp_path / "seeded", progress=False)
    assert [u.kind for u in result.units] == ["seed"] * len(ra)  # the far seed is left out
    assert [u.seed_id for u in result.units] == [str(i) for i in range(len(ra))]
    for un in result.units:
        assert un.x0 <= un.seed_x < un.x1 and un.y0 <= un.seed_y < un.y1
        assert un.x1 - un.x0 <= TILE and un.y1 - un.y0 <= TILE
    assert result.complete and result.manifest["settings"]["units"]["seed_format"] == "pybdsf"
    assert result.result.masks().sum(axis=0).max() <= 1


def test_bad_settings():
    with pytest.raises(ValueError, match="tile_size"):
        SurveyRunner("m", tile_size=8, n_workers=0)
    with pytest.raises(ValueError, match="overlap"):
        SurveyRunner("m", overlap=0.95, n_workers=0)
    with pytest.raises(FileNotFoundError, match="seeds"):
        SurveyRunner("m", seeds="/no/such/catalogue.vot", n_workers=0)
    with pytest.raises(ValueError, match="without seeds"):
        SurveyRunner("m", seed_columns={"ra": "x"}, n_workers=0)
    with pytest.raises(ValueError, match="not both"):
        SurveyRunner("m", n_workers=2, scheduler="tcp://localhost:8786")
    with pytest.raises(TypeError, match="model folder"):
        SurveyRunner(object())
    with pytest.raises(ValueError, match="table_formats"):
        SurveyRunner("m", n_workers=0, table_formats=("csv",))
    with pytest.raises(ValueError, match="model_options"):
        SurveyRunner("m", n_workers=0, model_options={"x": object()})


def test_missing_inputs(survey_model, tmp_path):
    runner = make_runner(survey_model)
    with pytest.raises(FileNotFoundError, match="no such file"):
        runner.run(tmp_path / "nothing.fits", output_dir=tmp_path / "o")
    with pytest.raises(TypeError, match="path of a FITS file"):
        runner.run(np.zeros((10, 10)), output_dir=tmp_path / "o")


def test_without_dask_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "galcam\[distributed\]"'):
        SurveyRunner("m", n_workers=2)
    assert SurveyRunner("m", n_workers=0).mode == "synchronous"


def test_mosaic_without_brightness_unit_is_warned_about_up_front(survey_model, mosaic,
                                                                 tmp_path, caplog):
    from astropy.io import fits

    path = tmp_path / "nounit.fits"
    with fits.open(mosaic["radio"]) as hdul:
        header = hdul[0].header.copy()
        del header["BUNIT"]
        fits.writeto(path, hdul[0].data, header)
    with caplog.at_level("WARNING", logger="galcam.survey"):
        result = make_runner(survey_model).run(path, None, output_dir=tmp_path / "out",
                                               progress=False, max_units=1)
    warned = [r.getMessage() for r in caplog.records if "not a brightness per beam" in
              r.getMessage()]
    assert len(warned) == 1 and "no BUNIT" in warned[0] and "nounit.fits" in warned[0]
    assert result is not None


def test_blank_mosaic_is_refused_like_predict_and_islands(survey_model, mosaic, tmp_path):
    from astropy.io import fits

    from galcam.io import ImageReadError

    with fits.open(mosaic["radio"]) as hdul:
        header, data = hdul[0].header.copy(), hdul[0].data
    for name, value, said in (("blank.fits", np.nan, "every pixel is NaN or infinite (blank "
                               "image)"),
                              ("zero.fits", 0.0, "the image is constant (every pixel is 0)")):
        fits.writeto(tmp_path / name, np.full_like(data, value), header)
        with pytest.raises(ImageReadError, match=re.escape(f"{name}': {said}")):
            make_runner(survey_model).run(tmp_path / name, output_dir=tmp_path / "o",
                                          progress=False)
    assert not (tmp_path / "o").exists()  # refused before the output folder is made


def test_fluxes_filled_in_are_not_called_nan(survey_model, mosaic, tmp_path, caplog):
    with caplog.at_level("INFO", logger="galcam"):
        result = make_runner(survey_model).run(mosaic["radio"], output_dir=tmp_path / "o",
                                               progress=False)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("survey complete") for m in messages)  # the log is captured
    assert not [m for m in messages if "no radio image" in m]
    table = result.to_table()
    assert len(table) and np.isfinite(table["peak_flux"]).all()


def test_undersampled_mosaic_is_refused_before_any_unit(survey_model, tmp_path):
    from galcam.inference import ImageRefusedError
    from galcam.inference.tests.conftest import make_radio, write_fits

    lofar = write_fits(make_radio(shape=(20, 20), pixel_scale=61.0, beam=(27.0, 27.0),
                                  sources=()), tmp_path / "lofar.fits")
    with pytest.raises(ImageRefusedError, match="lofar.fits': pixels of 61\" are coarser than "
                       "half the restoring beam.*pass force=True"):
        make_runner(survey_model).run(lofar, output_dir=tmp_path / "o", progress=False)
    assert not (tmp_path / "o" / "units").exists()

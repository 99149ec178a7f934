"""``galcam predict`` and ``galcam train``: outputs, refusal to overwrite, one-line errors."""

import json
import re

import pytest
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning

import galcam.cli.main as cli_main

from .conftest import build_model_folder, make_ir, make_radio, write_fits


@pytest.fixture
def main(monkeypatch):
    names = list(dict.fromkeys([*cli_main.SUBCOMMANDS, "predict", "train"]))
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", names)
    return cli_main.main


@pytest.fixture
def files(tmp_path):
    radio = make_radio()
    return (write_fits(radio, tmp_path / "radio.fits"),
            write_fits(make_ir(radio), tmp_path / "ir.fits"))


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("galcam ") and "error:" in err[0]
    return err[0]


def test_predict_one_image(main, model_dir, files, tmp_path, capsys):
    radio, ir = files
    out = tmp_path / "out"
    args = ["predict", str(radio), "--ir", str(ir), "--model", str(model_dir), "-o", str(out),
            "--device", "cpu", "--no-progress", "-q", "--class-threshold", "0"]
    assert main(args) == 0
    assert re.search(r"\d+ (galaxy|galaxies) in", capsys.readouterr().out)
    preds = json.loads((out / "predictions.json").read_text())
    assert isinstance(preds, list) and preds
    for p in preds:
        assert p["image_id"] == 1 and 1 <= p["category_id"] <= 4
        assert p["segmentation"]["size"] == [64, 64] and p["keypoints"][2] == 2
    table = QTable.read(out / "catalog.ecsv")
    assert len(table) == len(preds) and "host_sky" in table.colnames
    assert json.loads(table.meta["category_ids"])["FR-I"] == 1  # JSON: FITS/VOTable-safe
    # refuses to overwrite, in one line, and leaves the files alone
    before = (out / "predictions.json").read_bytes()
    assert main(args) == 2  # args has -q: only the error on stderr
    assert "--overwrite" in _one_line_error(capsys)
    assert (out / "predictions.json").read_bytes() == before
    assert main([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "catalog.ecsv", "galaxies.crtf", "galaxies.reg", "galcam-run.json", "overview.png",
        "predictions.categories.json", "predictions.json"
    ]


def test_predict_instance_step_options(main, model_dir, files, tmp_path, capsys, monkeypatch):
    """--instance-step and --rule-class-weight reach the grouper the segmenter is given."""
    from galcam.inference import WeakSegmenter

    seen = []
    load = WeakSegmenter.load

    def spy(*args, **kwargs):
        seen.append(kwargs["grouper"].given)
        return load(*args, **kwargs)

    monkeypatch.setattr(WeakSegmenter, "load", spy)
    radio, ir = files
    base = ["predict", str(radio), "--ir", str(ir), "--model", str(model_dir), "--device", "cpu",
            "--no-progress", "-q"]
    assert main([*base, "-o", str(tmp_path / "a"), "--instance-step", "grouped",
                 "--rule-class-weight", "off"]) == 0
    assert seen[-1]["method"] == "grouped" and seen[-1]["rule_class_weight"] == 0.0
    assert main([*base, "-o", str(tmp_path / "b"), "--rule-class-weight", "1.5"]) == 0
    assert seen[-1]["rule_class_weight"] == 1.5 and "method" not in seen[-1]
    assert main([*base, "-o", str(tmp_path / "c"), "--rule-class-weight", "-1"]) == 2
    assert "--rule-class-weight: expected a number >= 0 or 'off'" in _one_line_error(capsys)


def test_predict_errors_are_one_line(main, model_dir, files, tmp_path, capsys):
    radio, _ = files
    out = str(tmp_path / "o")
    main = (lambda m: lambda argv: m([*argv, "-q"]))(main)  # errors only on stderr
    assert main(["predict", str(radio), "--model", str(tmp_path / "nomodel"), "-o", out]) == 2
    assert "no such model folder" in _one_line_error(capsys)
    assert main(["predict", "--model", str(model_dir), "-o", out]) == 2
    assert "exactly one of" in _one_line_error(capsys)
    assert main(["predict", str(tmp_path / "missing.fits"), "--model", str(model_dir),
                 "-o", out]) == 2
    assert "does not exist" in _one_line_error(capsys)
    bad = tmp_path / "bad.fits"
    bad.write_text("not a fits file")
    assert main(["predict", str(bad), "--model", str(model_dir), "-o", out,
                 "--device", "cpu"]) == 2
    _one_line_error(capsys)
    assert main(["predict", str(radio), "--model", str(model_dir), "-o", out,
                 "--score-threshold", "2"]) == 2
    _one_line_error(capsys)
    assert main(["predict", str(radio), "--model", str(model_dir), "-o", out,
                 "--min-classes", "9", "--device", "cpu"]) == 2
    assert "min_classes" in _one_line_error(capsys)
    assert main(["predict", str(radio), "--model", str(model_dir), "-o", out,
                 "--beam-matching", "1.5"]) == 2
    assert "--beam-matching must be in [0, 1]" in _one_line_error(capsys)
    for flag in ("--plane", "--ir-plane"):  # Python's "last plane" is a mistake here
        assert main(["predict", str(radio), "--ir", str(radio), "--model", str(model_dir),
                     "-o", out, flag, "-1"]) == 2
        assert f"{flag}: expected a 0-based plane index (0 is the first plane; galcam does " \
               "not count planes from the end), got -1" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_predict_radio_unit_checked_before_the_model_runs(main, model_dir, tmp_path, capsys):
    import numpy as np
    from astropy.io import fits

    radio = make_radio()
    path = write_fits(radio, tmp_path / "nounit.fits")
    with fits.open(path, mode="update") as hdul:
        del hdul[0].header["BUNIT"]
    kelvin = tmp_path / "kelvin.fits"
    fits.writeto(kelvin, fits.getdata(path), fits.getheader(path))
    fits.setval(kelvin, "BUNIT", value="K")
    out = tmp_path / "o"
    base = ["--model", str(tmp_path / "no-model-here"), "-o", str(out), "-q"]
    # refused on the header alone: the (missing) model is never reached
    assert main(["predict", str(path), *base]) == 2
    line = _one_line_error(capsys)
    assert "nounit.fits" in line and "has no BUNIT" in line and "--unit Jy/beam" in line
    assert main(["predict", str(kelvin), *base]) == 2
    assert "BUNIT = 'K'" in _one_line_error(capsys)
    zero = tmp_path / "zero.fits"
    fits.writeto(zero, np.zeros_like(fits.getdata(path)), fits.getheader(path))
    assert main(["predict", str(zero), *base]) == 2
    assert "zero.fits': the image is constant (every pixel is 0)" in _one_line_error(capsys)
    for bad, said in (("furlong", "is not a unit"), ("Jy", "brightness per beam")):
        assert main(["predict", str(path), *base, "--unit", bad]) == 2
        assert said in _one_line_error(capsys)
    assert not out.exists()
    # with --unit the image is read as given
    args = ["predict", str(path), "--unit", "mJy/beam", "--model", str(model_dir), "-o",
            str(out), "--device", "cpu", "--no-progress", "-q", "--class-threshold", "0"]
    assert main(args) == 0
    table = QTable.read(out / "catalog.ecsv")
    assert len(table) and table["peak_flux"].unit == "mJy / beam"


def test_predict_warns_when_the_infrared_image_looks_like_a_radio_image(main, model_dir, files,
                                                                        tmp_path, capsys):
    radio, ir = files
    args = ["predict", str(radio), "--model", str(model_dir), "--device", "cpu",
            "--no-progress", "--class-threshold", "0", "-q"]
    assert main([*args, "--ir", str(radio), "-o", str(tmp_path / "a")]) == 0
    assert "radio.fits' is in Jy / beam: is it a radio image?" in capsys.readouterr().err
    assert main([*args, "--ir", str(ir), "-o", str(tmp_path / "b")]) == 0
    assert "is it a radio image?" not in capsys.readouterr().err


def test_predict_infrared_cube_plane(main, model_dir, files, tmp_path, capsys):
    import numpy as np
    from astropy.io import fits

    radio, ir = files
    data, header = fits.getdata(ir), fits.getheader(ir)
    header["NAXIS"] = 3
    header["CTYPE3"], header["CRVAL3"], header["CDELT3"], header["CRPIX3"] = "WAVE", 3.4e-6, 1e-6, 1
    cube = tmp_path / "ir_cube.fits"
    fits.writeto(cube, np.stack([data, np.zeros_like(data)]), header)
    args = ["predict", str(radio), "--ir", str(cube), "--model", str(model_dir), "-q",
            "--device", "cpu", "--no-progress", "--class-threshold", "0"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 2
    assert "--ir-plane" in _one_line_error(capsys)
    assert main([*args, "-o", str(tmp_path / "b"), "--ir-plane", "0"]) == 0
    plain = ["predict", str(radio), "--ir", str(ir), "--model", str(model_dir), "-q",
             "--device", "cpu", "--no-progress", "--class-threshold", "0"]
    assert main([*plain, "-o", str(tmp_path / "c")]) == 0
    # plane 0 of the cube is the 2-D image: the same catalogue
    a = QTable.read(tmp_path / "b" / "catalog.ecsv")
    c = QTable.read(tmp_path / "c" / "catalog.ecsv")
    assert len(a) == len(c) and np.allclose(a["host_x"], c["host_x"])
    assert main([*plain, "-o", str(tmp_path / "d"), "--ir-plane", "1"]) == 2
    assert "single plane" in _one_line_error(capsys)


def test_predict_example_without_bundled_model(main, monkeypatch, tmp_path, capsys):
    from galcam.inference import segmenter as segmod

    monkeypatch.setitem(segmod.MODEL_REGISTRY, "default", {"path": tmp_path / "absent"})
    assert main(["predict", "--example", "-o", str(tmp_path / "ex"), "-q"]) == 2
    assert "no bundled model is installed" in _one_line_error(capsys)


def test_predict_coco(main, model_dir, tmp_path, capsys):
    radio = make_radio((48, 48), sources=((24, 24),))
    write_fits(radio, tmp_path / "a.fits")
    coco = {"images": [{"id": 5, "file_name": "a.fits", "width": 48, "height": 48}],
            "categories": [{"id": 3, "name": "FR-I"}, {"id": 1, "name": "FR-II"},
                           {"id": 2, "name": "FR-X"}, {"id": 4, "name": "R"}],
            "annotations": [{"bogus": True}]}
    (tmp_path / "imgs.json").write_text(json.dumps(coco))
    out = tmp_path / "pred"
    assert main(["predict", "--coco", str(tmp_path / "imgs.json"), "--model", str(model_dir),
                 "-o", str(out), "--device", "cpu", "--no-progress", "-q"]) == 0
    preds = json.loads((out / "predictions.json").read_text())
    assert preds and all(p["image_id"] == 5 for p in preds)
    assert not (out / "catalog.ecsv").exists()
    # the data set's ids, named: galcam evaluate matches them by name
    named = json.loads((out / "predictions.categories.json").read_text())["categories"]
    assert named == [{"id": 3, "name": "FR-I"}, {"id": 1, "name": "FR-II"},
                     {"id": 2, "name": "FR-X"}, {"id": 4, "name": "R"}]
    # the pipelined engine (a worker process): the same predictions
    assert main(["predict", "--coco", str(tmp_path / "imgs.json"), "--model", str(model_dir),
                 "-o", str(tmp_path / "piped"), "--device", "cpu", "--no-progress", "-q",
                 "--workers", "1"]) == 0
    assert json.loads((tmp_path / "piped" / "predictions.json").read_text()) == preds
    capsys.readouterr()
    for bad, message in ((["--workers", "-1"], "--workers must be 0 or a positive integer"),
                         (["--workers", "2", str(tmp_path / "a.fits")],
                          "--workers goes with --coco")):
        args = ["predict", "--model", str(model_dir), "-o", str(tmp_path / "x"), *bad]
        if "--coco" not in message:
            args += ["--coco", str(tmp_path / "imgs.json")]
        assert main(args) == 2
        assert message in _one_line_error(capsys)


def test_one_run_per_output_folder(main, model_dir, files, tmp_path, capsys):
    """Issue 24: a --coco run into the folder of a one-image run left that run's catalogue,
    regions and figure beside its predictions, unmarked."""
    import hashlib

    radio, ir = files
    coco = {"images": [{"id": 1, "file_name": radio.name, "width": 64, "height": 64}],
            "categories": [{"id": 1, "name": "FR-I"}, {"id": 2, "name": "FR-II"},
                           {"id": 3, "name": "FR-X"}, {"id": 4, "name": "R"}]}
    (tmp_path / "imgs.json").write_text(json.dumps(coco))
    out = tmp_path / "D"
    base = ["--model", str(model_dir), "-o", str(out), "--device", "cpu", "--no-progress", "-q"]
    assert main(["predict", str(radio), "--ir", str(ir), *base]) == 0
    capsys.readouterr()
    run = json.loads((out / "galcam-run.json").read_text())
    assert run["command"] == "predict" and run["arguments"]["radio"] == str(radio)
    assert run["galcam_version"] and len(run["model_sha256"]) == 64
    assert sorted(run["files"]) == ["catalog.ecsv", "galaxies.crtf", "galaxies.reg",
                                    "overview.png", "predictions.categories.json",
                                    "predictions.json"]
    for name, entry in run["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
    (out / "notes.txt").write_text("mine")  # not galcam's: never touched
    coco_run = ["predict", "--coco", str(tmp_path / "imgs.json"), *base]
    assert main(coco_run) == 2
    line = _one_line_error(capsys)
    assert "already holds predictions.json, predictions.categories.json, catalog.ecsv, " \
           "galaxies.reg, galaxies.crtf, overview.png (written by 'galcam predict'); use " \
           "--overwrite to replace" in line
    assert main([*coco_run, "--overwrite"]) == 0
    assert "removed catalog.ecsv, galaxies.reg, galaxies.crtf, overview.png of the earlier " \
           "run" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "galcam-run.json", "notes.txt", "predictions.categories.json", "predictions.json"]
    run = json.loads((out / "galcam-run.json").read_text())
    assert sorted(run["files"]) == ["predictions.categories.json", "predictions.json"]
    assert run["removed"] == ["catalog.ecsv", "galaxies.reg", "galaxies.crtf", "overview.png"]


def test_train_cli_delegates(main, monkeypatch, tmp_path, capsys):
    import galcam.training as training

    calls = {}

    def fake_train(dataset, *, preset, output_dir, **kwargs):
        calls.update(n=len(dataset), preset=preset, **kwargs)
        build_model_folder(output_dir)

        class Result:
            path = output_dir
            metrics = {"validation": {"top1_accuracy": 0.75}}
        return Result()

    monkeypatch.setattr(training, "train_weak_model", fake_train)
    radio = make_radio((48, 48))
    write_fits(radio, tmp_path / "a.fits")
    coco = {"images": [{"id": 1, "file_name": "a.fits", "width": 48, "height": 48}],
            "categories": [{"id": 1, "name": "FR-I"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                             "segmentation": {"size": [48, 48], "counts": "0PP4"},
                             "bbox": [0, 0, 48, 48], "area": 2304, "iscrowd": 0}]}
    (tmp_path / "train.json").write_text(json.dumps(coco))
    out = tmp_path / "model"
    args = ["train", "-q", "--coco", str(tmp_path / "train.json"), "--preset", "paper",
            "--seed", "4", "--device", "cpu", "--set", "cam_epochs=2", "--set", "arch=resnet18",
            "-o", str(out)]
    assert main(args) == 0
    assert "validation top-1 accuracy 0.750" in capsys.readouterr().out
    assert calls["preset"] == "paper" and calls["seed"] == 4 and calls["n"] == 1
    assert calls["cam_epochs"] == 2 and calls["arch"] == "resnet18"
    assert calls["resume"] is True and calls["overwrite"] is False
    assert main(args) == 2
    assert "already holds a trained model" in _one_line_error(capsys)
    assert main([*args[:-2], "--set", "no-equals", "-o", str(tmp_path / "m2")]) == 2
    assert "KEY=VALUE" in _one_line_error(capsys)


def test_bundled_model_and_predict_example(main, tmp_path, capsys):
    """The README's first command: the bundled model on the bundled example, offline."""
    from galcam.data import example_files
    from galcam.evaluation import evaluate
    from galcam.inference import WeakSegmenter
    from galcam.inference.segmenter import resolve_model
    from galcam.models import load_model_folder

    folder = resolve_model("default")
    config, states, metrics = load_model_folder(folder)
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size <= 30 * 2**20  # the package ships at most 30 MB of model
    assert config["weights_dtype"] == "float16"
    assert config["backbone"]["irnet"]["shared_backbone"] == "cam"
    assert config["training"]["image_level_labels_only"] is True
    assert "segm_mAP50" in metrics["test"]["metrics"] and metrics["test"]["definitions"]
    seg = WeakSegmenter.load("default", device="cpu")
    assert seg.recommended_score_threshold == config["inference"]["score_threshold"] > 0

    out = tmp_path / "ex"
    assert main(["predict", "--example", "-o", str(out), "--no-progress"]) == 0
    for name in ("catalog.ecsv", "galaxies.reg", "galaxies.crtf", "overview.png",
                 "predictions.json"):
        assert (out / name).is_file(), name
    preds = json.loads((out / "predictions.json").read_text())
    assert preds and all(p["score"] >= seg.recommended_score_threshold for p in preds)
    # known answer: the example holds 6 simulated galaxies; at least half are found
    truth = example_files()["radio"].parent / "example_truth.json"
    res = evaluate(truth, preds, image_dir=truth.parent)
    assert res.metrics["n_true"] == 6 and res.metrics["n_matched"] >= 3


def test_predict_says_how_many_detections_the_threshold_left_out(main, model_dir, files,
                                                                  tmp_path, capsys):
    radio, ir = files
    args = ["predict", str(radio), "--ir", str(ir), "--model", str(model_dir), "-o",
            str(tmp_path / "out"), "--device", "cpu", "--no-progress", "-q",
            "--class-threshold", "0", "--score-threshold", "1"]
    with pytest.warns(AstropyUserWarning, match="found no galaxies"):
        assert main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"^0 galaxies in .* \(\d+ detections? below the score threshold 1\.00; "
                     r"use --score-threshold 0 to see (it|them)\)", out)
    table = QTable.read(tmp_path / "out" / "catalog.ecsv")
    assert len(table) == 0 and table.meta["model_sha256"] == _sha(model_dir)
    assert len(_sha(model_dir)) == 64


def _sha(folder):
    import hashlib

    return hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()


def test_predict_refuses_an_undersampled_image_unless_forced(main, model_dir, tmp_path, capsys):
    """Issue 24: a 61"/px image with a 27" beam was blown up 21x and ran out of memory."""
    from .conftest import make_radio

    lofar = write_fits(make_radio(shape=(12, 12), pixel_scale=61.0, beam=(27.0, 27.0),
                                  sources=()), tmp_path / "lofar.fits")
    out = tmp_path / "o"
    args = ["predict", str(lofar), "--model", str(model_dir), "-o", str(out), "--device", "cpu",
            "--no-progress", "-q"]
    assert main(args) == 2
    line = _one_line_error(capsys)
    assert "lofar.fits': pixels of 61\" are coarser than half the restoring beam" in line
    assert line.endswith("use --force to predict it anyway") and "force=True" not in line
    assert not out.exists()
    with pytest.warns(AstropyUserWarning, match="going on, as forced"):
        assert main([*args, "--force"]) == 0
    assert (out / "predictions.json").is_file()

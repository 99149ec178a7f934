"""``galcam data first`` and training on a data set's own classes (``galcam train``).

The FIRST data set is read from a fake package folder in its layout
(`galcam.datasets.tests.fake_first`), so nothing is downloaded and firstgalaxydata is not
needed.
"""

import json

import pytest

import galcam.datasets.first as first_module
from galcam.cli.main import GalcamCLIError, main
from galcam.cli.train import parse_classes, training_classes
from galcam.datasets import DEFAULT_CLASSES, FIRST_CLASSES, CocoDataset
from galcam.datasets.tests.fake_first import make_fake_first

# a whole training run in seconds on a CPU (as galcam.training's tests do)
TINY = {"arch": "resnet18", "weights": None, "cam_epochs": 2, "cam_batch_size": 4,
        "cam_crop_size": 32, "recam_epochs": 1, "recam_batch_size": 4, "recam_crop_size": 32,
        "irnet_epochs": 1, "irnet_batch_size": 4, "irnet_crop_size": 48, "irnet_radius": 5,
        "cam_scales": [1.0, 0.5], "irnet_backbone": "cam", "disk_cache": False}


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return make_fake_first(tmp_path_factory.mktemp("fgd") / "firstgalaxydata", size=48)[0]


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("galcam ") and "error:" in err[0], err
    return err[0]


def test_data_first_writes_a_coco_data_set(fake, tmp_path, capsys):
    out = tmp_path / "train"
    args = ["data", "first", "--split", "train", "-o", str(out), "--data-dir", str(fake),
            "--no-progress", "-q"]
    assert main(args) == 0
    line = capsys.readouterr().out.strip()
    assert line == (f"wrote 8 FIRST train images (FRI 2, FRII 2, Compact 2, Bent 2) to "
                    f"{out / 'annotations.json'}")
    ds = CocoDataset(out / "annotations.json", classes=None)
    assert ds.classes == FIRST_CLASSES and len(ds) == 8
    # refused the second time, one line; --overwrite with another noise level replaces it
    assert main(args) == 2
    assert "holds annotations.json and images already" in _one_line_error(capsys)
    assert main([*args, "--overwrite", "--noise", "1/4", "--seed", "3"]) == 0
    info = json.loads((out / "annotations.json").read_text())["info"]["pseudo_brightness"]
    assert info["noise_fraction"] == 0.25 and info["seed"] == 3
    capsys.readouterr()


@pytest.mark.parametrize("extra, message", [
    (["--noise", "2"], "noise: expected a fraction of the clip level in [0, 1], got 2.0"),
    (["--seed", "-1"], "seed: expected a non-negative integer, got -1"),
])
def test_data_first_bad_options(fake, tmp_path, capsys, extra, message):
    args = ["data", "first", "--split", "test", "-o", str(tmp_path / "o"), "--data-dir",
            str(fake), *extra]
    assert main(args) == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()


def test_data_first_usage_errors(tmp_path, capsys):
    for args in (["data"], ["data", "first", "-o", str(tmp_path)],
                 ["data", "first", "--split", "dev", "-o", str(tmp_path)],
                 ["data", "first", "--split", "test", "--fold", "5", "-o", str(tmp_path)],
                 ["data", "first", "--split", "test", "--noise", "abc", "-o", str(tmp_path)]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
    assert "--noise: expected a number such as 0.25 or 1/3, got 'abc'" in capsys.readouterr().err


def test_data_first_missing_package_or_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(first_module, "_PACKAGE", "galcam_no_such_package_xyz")
    assert main(["data", "first", "--split", "test", "-o", str(tmp_path / "o")]) == 2
    line = _one_line_error(capsys)
    assert "galcam_no_such_package_xyz" in line and 'pip install "galcam[first]"' in line
    assert main(["data", "first", "--split", "test", "-o", str(tmp_path / "o"),
                 "--data-dir", str(tmp_path)]) == 2
    assert "galaxy_data.zip': no such file" in _one_line_error(capsys)


def test_training_classes():
    assert parse_classes(" FRI, FRII,Compact ") == ("FRI", "FRII", "Compact")
    with pytest.raises(GalcamCLIError, match="--classes expects class names separated by commas"):
        parse_classes("FRI,,Bent")


def test_training_classes_default(tmp_path):
    def write(names):
        path = tmp_path / "c.json"
        path.write_text(json.dumps({"categories": [{"id": i, "name": n}
                                                   for i, n in enumerate(names, 1)]}))
        return path

    # galcam's classes (any spelling, any subset): the canonical four, as before
    assert training_classes(write(["FR-II", "fr_i"])) is DEFAULT_CLASSES
    # other names: the data set's own classes (CocoDataset classes=None)
    assert training_classes(write(["FRI", "FRII", "Compact", "Bent"])) is None
    assert training_classes(tmp_path / "missing.json") is None


def test_train_on_first_classes_end_to_end(fake, tmp_path, capsys):
    """A FRI/FRII/Compact/Bent data set trains on a tiny network; the model has its classes."""
    from galcam.inference import WeakSegmenter

    data = tmp_path / "first"
    assert main(["data", "first", "--split", "train", "-o", str(data), "--data-dir",
                 str(fake), "--no-progress", "-q"]) == 0
    assert main(["data", "first", "--split", "valid", "-o", str(tmp_path / "val"),
                 "--data-dir", str(fake), "--no-progress", "-q"]) == 0
    capsys.readouterr()
    model = tmp_path / "model"
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    args = ["train", "--coco", str(data / "annotations.json"), "--val",
            str(tmp_path / "val" / "annotations.json"), "-o", str(model), "--device", "cpu",
            "--no-progress", "-q", *sets]
    assert main(args) == 0
    assert "model written to" in capsys.readouterr().out
    config = json.loads((model / "config.json").read_text())
    assert config["classes"] == list(FIRST_CLASSES)
    assert config["radio"]["pixel_scale_arcsec"] == pytest.approx(1.8)
    segmenter = WeakSegmenter.load(model, device="cpu")
    assert segmenter.classes == FIRST_CLASSES
    # --classes chooses the order (the validation set follows it) ...
    args[args.index(str(model))] = str(tmp_path / "m2")
    assert main([*args, "--classes", "bent,Compact,FRII,FRI"]) == 0
    assert WeakSegmenter.load(tmp_path / "m2", device="cpu").classes == (
        "bent", "Compact", "FRII", "FRI")
    capsys.readouterr()
    # ... and every category of the JSON must be among them
    args[args.index(str(tmp_path / "m2"))] = str(tmp_path / "m3")
    assert main([*args, "--classes", "FRI,FRII"]) == 2
    assert "unknown categories 'Compact', 'Bent'" in _one_line_error(capsys)

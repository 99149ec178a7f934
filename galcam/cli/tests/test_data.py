"""``galcam data first``: the FIRST data set as a COCO data set of FITS images.

The FIRST data set is read from a fake package folder in its layout
(`galcam.datasets.tests.fake_first`), so nothing is downloaded and firstgalaxydata is not
needed.
"""

import json

import pytest

import galcam.datasets.first as first_module
from galcam.cli.main import main
from galcam.datasets import FIRST_CLASSES, CocoDataset
from galcam.datasets.tests.fake_first import make_fake_first


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

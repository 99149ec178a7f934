"""calibrate: thresholds chosen on a validation set and recorded in the model folder."""

import json
import shutil

import pytest

from galcam.inference import Calibration, WeakSegmenter, calibrate


@pytest.fixture(scope="module")
def validation(tmp_path_factory):
    from galcam.datasets import simulate_dataset

    out = tmp_path_factory.mktemp("val")
    simulate_dataset(out, 2, seed=5, overview=False, progress=False)
    return out / "annotations.json"


def test_calibrate_records_what_it_measured(model_dir, validation, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    before = json.loads((folder / "config.json").read_text())
    measured = calibrate(folder, validation, class_thresholds=(0.5, 0.0), device="cpu",
                         write=False)
    assert isinstance(measured, Calibration) and not measured.written
    assert json.loads((folder / "config.json").read_text()) == before  # untouched
    assert set(measured.by_class_threshold) == {"0.0", "0.5"}
    best = max(measured.by_class_threshold.items(),
               key=lambda kv: (kv[1]["segm_mAP50"], float(kv[0])))
    assert float(best[0]) == measured.class_threshold
    assert measured.score_threshold == round(
        best[1]["f1_best"]["score_threshold"], 3)

    written = calibrate(folder, validation, class_thresholds=(0.5, 0.0), device="cpu")
    assert written.written and written.to_dict()["class_threshold"] == measured.class_threshold
    after = json.loads((folder / "config.json").read_text())
    assert after["weights"] == before["weights"]  # no weight changed
    assert after["inference"]["class_threshold"] == measured.class_threshold
    assert after["inference"]["score_threshold"] == measured.score_threshold
    assert "validation set" in after["inference"]["score_threshold_note"]
    seg = WeakSegmenter.load(folder, device="cpu")  # still a valid folder
    assert seg.recommended_score_threshold == measured.score_threshold
    assert seg.class_threshold == measured.class_threshold


def test_calibrate_checks_its_inputs(model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="validation: .* is not a COCO JSON file"):
        calibrate(model_dir, tmp_path / "none.json", device="cpu")
    with pytest.raises(ValueError, match="class_thresholds"):
        calibrate(model_dir, tmp_path / "none.json", class_thresholds=(1.5,), device="cpu")

"""The report folder (EvaluationResult.write) and `galcam evaluate`."""

import json

import pytest

from galcam.cli.main import main
from galcam.evaluation import evaluate
from galcam.evaluation.tests._data import make_truth, perfect_predictions

PNG = b"\x89PNG\r\n\x1a\n"
REQUIRED = (
    "segm_mAP50",
    "segm_mAP",
    "keypoints_mAP50_refcode",
    "keypoints_mAP50_paper",
    "keypoints_mAP50_arcsec",
    "host_offset_median_arcsec",
    "host_within_3arcsec",
    "host_within_5arcsec",
    "class_accuracy",
    "completeness",
    "reliability",
    "per_class",
)


@pytest.fixture
def files(tmp_path):
    truth = make_truth()
    preds = perfect_predictions(truth)
    preds[1]["category_id"] = 1
    for p in preds:
        p["keypoints"][0] += 1
    tpath, ppath = tmp_path / "truth.json", tmp_path / "pred.json"
    tpath.write_text(json.dumps(truth))
    ppath.write_text(json.dumps(preds))
    return tpath, ppath


def test_write_report_folder(files, tmp_path):
    result = evaluate(*files)
    out = tmp_path / "report"
    paths = result.write(out)
    names = sorted(p.name for p in paths)
    assert names == sorted(
        ["metrics.json", "report.txt", "pr_curves.png", "confusion_matrix.png", "host_offsets.png"]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    for key in REQUIRED:
        assert key in metrics
    assert metrics == result.metrics
    assert metrics["per_class"]["FR-I"]["segm_AP50"] == pytest.approx(51 / 101)
    for name in ("pr_curves.png", "confusion_matrix.png", "host_offsets.png"):
        assert (out / name).read_bytes()[:8] == PNG
    text = (out / "report.txt").read_text()
    assert "FR-II" in text and "Definitions" in text and "keypoints_mAP50_paper" in text
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left
    with pytest.raises(FileExistsError, match="already has metrics.json"):
        result.write(out)
    result.write(out, overwrite=True)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        result.write(tmp_path / "afile")


def test_cli_evaluate_writes_and_refuses_to_overwrite(files, tmp_path, capsys):
    tpath, ppath = files
    out = tmp_path / "rep"
    assert main(["evaluate", "--truth", str(tpath), "--pred", str(ppath), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "segmentation mAP50" in captured.out
    assert "FR-II" in captured.out and "keypoints_AP50_arcsec" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_accuracy"] == pytest.approx(5 / 6)
    assert (out / "pr_curves.png").exists()

    assert main(["evaluate", "--truth", str(tpath), "--pred", str(ppath), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already has" in err and "--overwrite" in err
    assert len(err.strip().splitlines()) == 1
    args = ["evaluate", "--truth", str(tpath), "--pred", str(ppath), "-o", str(out)]
    assert main([*args, "--overwrite", "--arcsec-d50", "5"]) == 0
    capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["arcsec_d50"] == pytest.approx(5.0)


def test_cli_bad_input_and_pred_categories(files, tmp_path, capsys):
    tpath, ppath = files
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 99, "category_id": 1, "score": 1.0}]))
    assert main(["evaluate", "--truth", str(tpath), "--pred", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("WARNING: predictions") and "carry no category names" in err[0]
    assert err[1].startswith("galcam evaluate: error:") and "image_id 99" in err[1]
    assert main(["evaluate", "--truth", str(tmp_path / "x.json"), "--pred", str(ppath)]) == 2
    assert "does not exist" in capsys.readouterr().err
    # model ids 0..3 in another order, given as a separate categories file
    truth = json.loads(tpath.read_text())
    preds = perfect_predictions(truth)
    model = [{"id": 0, "name": "R"}, {"id": 1, "name": "FRI"}, {"id": 2, "name": "FRII"}]
    to_model = {4: 0, 2: 1, 1: 2}
    for p in preds:
        p["category_id"] = to_model[p["category_id"]]
    (tmp_path / "p2.json").write_text(json.dumps(preds))
    (tmp_path / "cats.json").write_text(json.dumps(model))
    args = ["evaluate", "--truth", str(tpath), "--pred", str(tmp_path / "p2.json")]
    assert main([*args, "--pred-categories", str(tmp_path / "cats.json")]) == 0
    assert "class accuracy 100.0%" in capsys.readouterr().out
    assert main([*args, "--pixel-scale", "-1"]) == 2
    assert "pixel_scale" in capsys.readouterr().err


def test_cli_semantic_maps(files, tmp_path, capsys):
    import numpy as np

    from galcam.evaluation import semantic_maps_from_coco
    from galcam.evaluation.coco import load_truth

    tpath, ppath = files
    maps = semantic_maps_from_coco(load_truth(tpath))  # labels = ids 1..4 here
    np.savez(tmp_path / "cams.npz", **{str(k): v for k, v in maps.items()})
    args = ["evaluate", "--truth", str(tpath), "--pred", str(ppath)]
    assert main([*args, "--semantic", str(tmp_path / "cams.npz")]) == 0
    assert "CAM mIoU 100.0%" in capsys.readouterr().out
    np.savez(tmp_path / "bad.npz", first=maps[1])
    assert main([*args, "--semantic", str(tmp_path / "bad.npz")]) == 2
    assert "'first' is not an image id" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_text("junk")
    assert main([*args, "--semantic", str(tmp_path / "junk.npz")]) == 2
    assert "not a readable .npz" in capsys.readouterr().err


def test_cli_refuses_other_class_names_in_one_line_unless_mapped(tmp_path, capsys):
    truth = make_truth()  # the authors' numbering; predictions in galcam's, names beside
    model = [{"id": i + 1, "name": n} for i, n in enumerate(("FR-I", "FR-II", "FR-X", "R"))]
    ids = {"FR-II": 2, "FR-I": 1, "FR-X": 3, "R": 4}
    names = {c["id"]: c["name"] for c in truth["categories"]}
    preds = perfect_predictions(truth)
    for p in preds:
        p["category_id"] = ids[names[p["category_id"]]]
    (tmp_path / "predictions.json").write_text(json.dumps(preds))
    (tmp_path / "predictions.categories.json").write_text(json.dumps({"categories": model}))
    args = ["evaluate", "--pred", str(tmp_path / "predictions.json"), "-q"]
    tpath = tmp_path / "truth.json"
    tpath.write_text(json.dumps(truth))
    assert main([*args, "--truth", str(tpath)]) == 0  # 1 = FR-II in the truth: by name
    assert "class accuracy 100.0%" in capsys.readouterr().out
    truth["categories"][3]["name"] = "Compact"
    tpath.write_text(json.dumps(truth))
    assert main([*args, "--truth", str(tpath)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("galcam evaluate: error: the truth's classes")
    assert "galaxies of 'Compact'" in err and "--class-map PRED=TRUTH" in err
    assert "class_map" not in err
    assert main([*args, "--truth", str(tpath), "--class-map", "R=Compact"]) == 0
    assert "class accuracy 100.0%" in capsys.readouterr().out
    assert main([*args, "--truth", str(tpath), "--class-map", "R"]) == 2
    assert "--class-map: expected PRED=TRUTH" in capsys.readouterr().err

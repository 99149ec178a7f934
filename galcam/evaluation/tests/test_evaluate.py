"""End-to-end tests of galcam.evaluation.evaluate on small truths with known answers."""

import copy
import json
import math

import numpy as np
import pytest
from astropy import units as u
from astropy.utils.exceptions import AstropyUserWarning

from galcam.evaluation import Evaluator, evaluate, remap_categories
from galcam.evaluation.tests._data import make_truth, perfect_predictions, rle, shifted, square

TOP_KEYS = (
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
AP_KEYS = (
    "segm_AP50",
    "segm_AP",
    "keypoints_AP50_refcode",
    "keypoints_AP50_paper",
    "keypoints_AP50_arcsec",
)
HALF = 51 / 101  # 101-point interpolated AP of a class with recall 0.5 at precision 1


@pytest.fixture
def truth():
    return make_truth()


def test_self_evaluation_is_perfect(truth):
    result = evaluate(truth, perfect_predictions(truth))
    m = result.metrics
    for key in TOP_KEYS[:-1]:
        assert key in m
    for key in (
        "segm_mAP50",
        "segm_mAP",
        "keypoints_mAP50_refcode",
        "keypoints_mAP50_paper",
        "keypoints_mAP50_arcsec",
        "host_within_3arcsec",
        "host_within_5arcsec",
        "class_accuracy",
        "completeness",
        "reliability",
    ):
        assert m[key] == pytest.approx(1.0), key
    assert m["host_offset_median_arcsec"] == 0.0
    assert m["f1_best"]["f1"] == pytest.approx(1.0)
    assert m["n_true"] == m["n_pred"] == m["n_matched"] == 6
    for name in ("FR-I", "FR-II", "R"):
        for key in AP_KEYS:
            assert m["per_class"][name][key] == pytest.approx(1.0)
    # FR-X has no galaxy in the truth: its values are null, its counts 0
    for key in (*AP_KEYS, "completeness", "class_accuracy", "host_offset_median_arcsec"):
        assert m["per_class"]["FR-X"][key] is None
    assert m["per_class"]["FR-X"]["n_true"] == 0
    counts = np.array(m["confusion_matrix"]["counts"])
    assert m["confusion_matrix"]["rows"] == ["FR-I", "FR-II", "FR-X", "R", "spurious"]
    assert m["confusion_matrix"]["columns"] == ["FR-I", "FR-II", "FR-X", "R", "missed"]
    np.testing.assert_array_equal(np.diag(counts), [2, 2, 0, 2, 0])
    assert counts.sum() == 6
    json.dumps(m, allow_nan=False)  # strictly JSON


def test_result_is_immutable(truth):
    result = evaluate(truth, perfect_predictions(truth))
    m = result.metrics
    m["segm_mAP50"] = -1
    assert result.metrics["segm_mAP50"] == 1.0
    with pytest.raises(ValueError):
        result.confusion.counts[0, 0] = 5
    with pytest.raises(AttributeError):
        result._metrics = {}


def test_shifted_masks_lower_ap_at_the_expected_iou_thresholds(truth):
    # a 20x20 square shifted by 4 px has IoU 16/24 = 0.667: a match at IoU 0.50..0.65
    # (4 of the 10 COCO thresholds), a miss at 0.70..0.95
    preds = [shifted(p, 4) for p in perfect_predictions(truth)]
    m = evaluate(truth, preds).metrics
    assert m["segm_mAP50"] == pytest.approx(1.0)
    for name in ("FR-I", "FR-II"):
        assert m["per_class"][name]["segm_AP50"] == pytest.approx(1.0)
        assert m["per_class"][name]["segm_AP"] == pytest.approx(0.4)
    assert m["per_class"]["R"]["segm_AP"] < 0.4  # the round blob overlaps less
    assert m["completeness"] == m["reliability"] == 1.0
    # keypoints are scored on the keypoints only
    assert m["keypoints_mAP50_refcode"] == 1.0

    # 8 px: IoU 12/28 = 0.43 for squares, 0.34 for the blob -> nothing at IoU 0.5
    preds = [shifted(p, 8) for p in perfect_predictions(truth)]
    m = evaluate(truth, preds).metrics
    assert m["segm_mAP50"] == 0.0
    assert m["completeness"] == 0.0 and m["reliability"] == 0.0
    assert m["class_accuracy"] is None
    assert m["host_offset_median_arcsec"] is None
    counts = np.array(m["confusion_matrix"]["counts"])
    np.testing.assert_array_equal(counts[:4, 4], [2, 2, 0, 2])  # all missed
    np.testing.assert_array_equal(counts[4, :4], [2, 2, 0, 2])  # all spurious
    # ... but the squares match at a lower matching threshold
    m = evaluate(truth, preds, iou_threshold=0.4).metrics
    assert m["completeness"] == pytest.approx(5 / 6)
    assert m["segm_mAP50"] == 0.0  # AP keys stay at IoU 0.5


def test_dropped_instance_reduces_completeness_and_recall_exactly(truth):
    preds = perfect_predictions(truth)
    del preds[2]  # the FR-II galaxy of image 2
    m = evaluate(truth, preds).metrics
    assert m["completeness"] == pytest.approx(5 / 6)
    assert m["reliability"] == 1.0
    assert m["class_accuracy"] == 1.0
    assert m["per_class"]["FR-II"]["segm_AP50"] == pytest.approx(HALF)
    assert m["per_class"]["FR-II"]["keypoints_AP50_refcode"] == pytest.approx(HALF)
    assert m["per_class"]["FR-II"]["completeness"] == 0.5
    assert m["per_class"]["FR-II"]["fn"] == 1
    assert m["per_class"]["FR-I"]["segm_AP50"] == 1.0
    assert m["segm_mAP50"] == pytest.approx((2 + HALF) / 3)
    assert m["host_offset_n"] == 5


def test_swapped_class_reduces_accuracy_and_ap_not_completeness(truth):
    preds = perfect_predictions(truth)
    preds[1]["category_id"] = 1  # the FR-I galaxy of image 1 (score 0.8) called FR-II
    m = evaluate(truth, preds).metrics
    assert m["completeness"] == 1.0
    assert m["reliability"] == 1.0
    assert m["class_accuracy"] == pytest.approx(5 / 6)
    pc = m["per_class"]
    assert pc["FR-I"]["segm_AP50"] == pytest.approx(HALF)
    assert pc["FR-I"]["keypoints_AP50_refcode"] == pytest.approx(HALF)
    assert pc["FR-I"]["misclassified"] == 1 and pc["FR-I"]["class_accuracy"] == 0.5
    # FR-II: TP (0.9), FP (0.8), TP (0.7): precision 1 up to recall 0.5, then 2/3
    expected = (51 + 50 * 2 / 3) / 101
    assert pc["FR-II"]["segm_AP50"] == pytest.approx(expected)
    assert pc["FR-II"]["keypoints_AP50_refcode"] == pytest.approx(expected)
    assert pc["FR-II"]["n_pred"] == 3 and pc["FR-II"]["fp"] == 0
    assert pc["R"]["segm_AP50"] == 1.0
    counts = np.array(m["confusion_matrix"]["counts"])
    assert counts[0, 1] == 1  # true FR-I, predicted FR-II
    assert counts[0, 0] == 1


@pytest.mark.parametrize(
    ("dx", "refcode", "paper", "arcsec", "median", "within3", "within5"),
    [
        # 2 px = 4": fails OKS(d50 = 3"), passes the refcode OKS (area 400 px^2, d50 = 23.5 px)
        # and the paper OKS (d50 = 1.18 * 0.5 * 400 / 64 = 3.7 px)
        (2, 1.0, 1.0, 0.0, 4.0, 0.0, 1.0),
        # 10 px = 20": only the lenient refcode OKS passes
        (10, 1.0, 0.0, 0.0, 20.0, 0.0, 0.0),
    ],
)
def test_moved_hosts(truth, dx, refcode, paper, arcsec, median, within3, within5):
    preds = perfect_predictions(truth)
    for p in preds:
        p["keypoints"][0] += dx
    m = evaluate(truth, preds).metrics
    assert m["keypoints_mAP50_refcode"] == pytest.approx(refcode)
    assert m["keypoints_mAP50_paper"] == pytest.approx(paper)
    assert m["keypoints_mAP50_arcsec"] == pytest.approx(arcsec)
    assert m["host_offset_median_arcsec"] == pytest.approx(median)
    assert m["host_within_3arcsec"] == within3
    assert m["host_within_5arcsec"] == within5
    assert m["segm_mAP50"] == 1.0  # masks untouched


def test_mixed_host_offsets_statistics(truth):
    preds = perfect_predictions(truth)
    for k, p in enumerate(preds):
        p["keypoints"][1] += 2 if k < 3 else 10  # annotations 0-2 by 4", 3-5 by 20"
    result = evaluate(truth, preds)
    m = result.metrics
    assert m["host_offset_median_arcsec"] == pytest.approx(12.0)
    assert m["host_within_5arcsec"] == pytest.approx(0.5)
    assert m["host_within_3arcsec"] == 0.0
    assert m["per_class"]["FR-II"]["host_offset_median_arcsec"] == pytest.approx(4.0)
    assert m["per_class"]["FR-I"]["host_offset_median_arcsec"] == pytest.approx(12.0)
    assert m["per_class"]["R"]["host_offset_median_arcsec"] == pytest.approx(20.0)
    np.testing.assert_allclose(
        np.sort(result.host_offsets.to_value(u.arcsec)), [4, 4, 4, 20, 20, 20]
    )
    # the paper OKS passes the 2 px hosts only: FR-II both, FR-I one (score 0.8 before 0.6)
    assert m["per_class"]["FR-II"]["keypoints_AP50_paper"] == 1.0
    assert m["per_class"]["FR-I"]["keypoints_AP50_paper"] == pytest.approx(HALF)
    assert m["per_class"]["R"]["keypoints_AP50_paper"] == 0.0


def test_spurious_low_score_detection_and_best_f1(truth):
    preds = perfect_predictions(truth)
    extra = dict(preds[0], score=0.05, segmentation=rle(square(30, 40, side=10)))
    extra["bbox"] = [30.0, 40.0, 10.0, 10.0]
    preds.append(extra)
    result = evaluate(truth, preds)
    m = result.metrics
    assert m["completeness"] == 1.0
    assert m["reliability"] == pytest.approx(6 / 7)
    assert m["f1_best"]["reliability"] == 1.0
    assert m["f1_best"]["score_threshold"] == pytest.approx(0.4)
    assert m["f1_best"]["f1"] == 1.0
    assert m["per_class"]["FR-II"]["fp"] == 1
    assert m["segm_mAP50"] == 1.0  # a lower-scored FP does not change AP
    curve = result.detection_curve
    assert curve["reliability"][-1] == pytest.approx(6 / 7)
    assert curve["f1"][-1] == pytest.approx(12 / 13)


def test_agrees_with_plain_pycocotools(truth, tmp_path, rng, capsys):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    preds = perfect_predictions(truth, scores=rng.uniform(0.1, 1.0, 6).tolist())
    preds[0] = shifted(preds[0], 5)
    preds[2] = shifted(preds[2], 3, 2)
    preds[3]["category_id"] = 4
    preds.append(dict(shifted(preds[1], 6), score=0.95))  # duplicate, partly overlapping
    preds.append(dict(preds[5], category_id=2, score=0.3))
    for p in preds:
        p["keypoints"] = [
            p["keypoints"][0] + rng.normal(0, 8),
            p["keypoints"][1] + rng.normal(0, 8),
            1,
        ]
    tpath, ppath = tmp_path / "truth.json", tmp_path / "pred.json"
    tpath.write_text(json.dumps(truth))
    ppath.write_text(json.dumps(preds))

    m = evaluate(tpath, ppath).metrics
    assert m["settings"]["truth"] == str(tpath)

    gt = COCO(str(tpath))
    dt = gt.loadRes(str(ppath))
    ev = COCOeval(gt, dt, "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert m["segm_mAP"] == pytest.approx(ev.stats[0])
    assert m["segm_mAP50"] == pytest.approx(ev.stats[1])
    names = {c["id"]: c["name"] for c in truth["categories"]}
    for k, cid in enumerate(ev.params.catIds):
        p = ev.eval["precision"][0, :, k, 0, -1]
        expected = float(np.mean(p)) if (p > -1).any() else None
        assert m["per_class"][names[cid]]["segm_AP50"] == pytest.approx(expected)

    gt = COCO(str(tpath))
    dt = gt.loadRes(str(ppath))
    ev = COCOeval(gt, dt, "keypoints")
    ev.params.kpt_oks_sigmas = np.array([0.5])  # as the authors' code
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert m["keypoints_mAP_refcode"] == pytest.approx(ev.stats[0])
    assert m["keypoints_mAP50_refcode"] == pytest.approx(ev.stats[1])
    assert 0 < m["keypoints_mAP50_refcode"] < 1  # a non-trivial case
    capsys.readouterr()  # pycocotools' prints


def test_category_names_remapped_with_permuted_ids(truth):
    perfect = evaluate(truth, perfect_predictions(truth)).metrics
    model_cats = [
        {"id": 0, "name": "fr i"},
        {"id": 1, "name": "FRII"},
        {"id": 2, "name": "fr_x"},
        {"id": 3, "name": "r"},
    ]
    to_model = {2: 0, 1: 1, 3: 2, 4: 3}
    preds = perfect_predictions(truth)
    for p in preds:
        p["category_id"] = to_model[p["category_id"]]
    wrapped = {"categories": model_cats, "annotations": preds}
    m = evaluate(truth, wrapped).metrics
    assert m["segm_mAP50"] == perfect["segm_mAP50"] == 1.0
    assert m["per_class"] == perfect["per_class"]
    m = evaluate(truth, preds, pred_categories=model_cats).metrics
    assert m["class_accuracy"] == 1.0
    # without the names, the model's ids are read as truth ids: classes come out wrong
    preds_noid = [dict(p, category_id=p["category_id"] + 1) for p in preds]
    assert evaluate(truth, preds_noid).metrics["class_accuracy"] < 1.0


def test_remap_categories_does_not_confuse_fr_i_and_fr_ii():
    truth_cats = [{"id": 7, "name": "FR-II"}]
    with pytest.raises(ValueError, match="'FR-I' has no category of that name"):
        remap_categories([{"category_id": 1}], [{"id": 1, "name": "FR-I"}], truth_cats)
    out = remap_categories([{"category_id": 1}], [{"id": 1, "name": "fr ii"}], truth_cats)
    assert out == [{"category_id": 7}]
    with pytest.raises(ValueError, match="category_id 5 is not in the prediction categories"):
        remap_categories([{"category_id": 5}], [{"id": 1, "name": "FR-II"}], truth_cats)


def test_pixel_scale_from_option_and_fits(truth, tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    preds = perfect_predictions(truth)
    for p in preds:
        p["keypoints"][0] += 2
    for img in truth["images"]:
        del img["pixel_scale_arcsec"]
    with pytest.raises(ValueError, match="no pixel scale"):
        evaluate(truth, preds)
    m = evaluate(truth, preds, pixel_scale=2.0 * u.arcsec).metrics
    assert m["host_offset_median_arcsec"] == pytest.approx(4.0)
    assert m["settings"]["pixel_scale_sources"] == {"option": 4}
    # from the FITS headers (1.25"/px), which win over the option
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [150.0, -30.0]
    w.wcs.crpix = [32.5, 32.5]
    w.wcs.cdelt = [-1.25 / 3600, 1.25 / 3600]
    for img in truth["images"]:
        fits.PrimaryHDU(np.ones((64, 64), np.float32), header=w.to_header()).writeto(
            tmp_path / img["file_name"]
        )
    m = evaluate(truth, preds, image_dir=tmp_path, pixel_scale=2.0).metrics
    assert m["host_offset_median_arcsec"] == pytest.approx(2.5)
    assert m["host_within_3arcsec"] == 1.0
    assert m["settings"]["pixel_scale_sources"] == {"fits": 4}
    (tmp_path / "img4.fits").unlink()
    with pytest.raises(FileNotFoundError, match="img4.fits"):
        evaluate(truth, preds, image_dir=tmp_path)


def test_empty_predictions_warn(truth):
    with pytest.warns(AstropyUserWarning, match="no predictions"):
        m = evaluate(truth, []).metrics
    assert m["segm_mAP50"] == 0.0
    assert m["keypoints_mAP50_arcsec"] == 0.0
    assert m["completeness"] == 0.0
    assert m["reliability"] is None
    assert m["host_offset_median_arcsec"] is None
    assert m["f1_best"] is None


def _bad(truth, **changes):
    preds = perfect_predictions(truth)
    preds[0].update(changes)
    return preds


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image_id": 99}, "image_id 99 is not in the truth"),
        ({"score": float("nan")}, "'score' must be finite"),
        ({"score": float("inf")}, "'score' must be finite"),
        ({"score": "high"}, "'score' must be a number"),
        ({"category_id": 99}, "category_id 99 is not a truth category id"),
        ({"segmentation": {"size": [64, 64], "counts": "!!!!"}}, "bad RLE"),
        ({"segmentation": {"size": [64, 64], "counts": "0"}}, "add up to"),
        ({"segmentation": rle(np.ones((32, 32), bool))}, "does not match the image"),
        ({"segmentation": "mask"}, "segmentation must be an RLE dict"),
        ({"keypoints": [1, 2]}, r"keypoints must be \[x, y, v\]"),
        ({"keypoints": [1, float("nan"), 1]}, "keypoints must be finite"),
    ],
)
def test_bad_predictions_error_clearly(truth, changes, message):
    with pytest.raises(ValueError, match=message):
        evaluate(truth, _bad(truth, **changes))


def test_bad_inputs_error_clearly(truth, tmp_path):
    preds = perfect_predictions(truth)
    del preds[3]["keypoints"]
    with pytest.raises(ValueError, match="1 of 6 entries have no 'keypoints'"):
        evaluate(truth, preds)
    del preds[3]["segmentation"]
    with pytest.raises(ValueError, match="entry 3: missing 'segmentation'"):
        evaluate(truth, preds)
    with pytest.raises(FileNotFoundError, match="truth file '.*nope.json' does not exist"):
        evaluate(tmp_path / "nope.json", [])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json' is not valid JSON"):
        evaluate(truth, tmp_path / "bad.json")
    with pytest.raises(ValueError, match="expected a COCO results list"):
        evaluate(truth, 42)
    bad_truth = copy.deepcopy(truth)
    del bad_truth["images"]
    with pytest.raises(ValueError, match="missing or non-list 'images'"):
        evaluate(bad_truth, [])
    bad_truth = copy.deepcopy(truth)
    bad_truth["categories"].append({"id": 9, "name": "FR I"})
    with pytest.raises(ValueError, match="duplicates 'FR-I'"):
        evaluate(bad_truth, [])
    for name in (None, " - "):
        bad_truth = copy.deepcopy(truth)
        bad_truth["categories"].append({"id": 9, "name": name})
        with pytest.raises(ValueError, match=r"categories\[\d+\]\.name: .*class name"):
            evaluate(bad_truth, [])
    bad_truth = copy.deepcopy(truth)
    bad_truth["annotations"][0]["image_id"] = 77
    with pytest.raises(ValueError, match=r"annotations\[0\]: image_id 77"):
        evaluate(bad_truth, [])
    with pytest.raises(ValueError, match="iou_threshold"):
        Evaluator(iou_threshold=1.5)
    with pytest.raises(ValueError, match="arcsec_sigma"):
        Evaluator(arcsec_sigma=-1)
    with pytest.raises(ValueError, match="pixel_scale: expected an angle"):
        Evaluator(pixel_scale=2 * u.Jy)
    with pytest.raises(FileNotFoundError, match="image_dir"):
        Evaluator(image_dir=tmp_path / "missing")


def test_truth_without_area_bbox_ids_and_with_polygons(truth):
    t = copy.deepcopy(truth)
    for a in t["annotations"]:
        del a["id"], a["bbox"], a["iscrowd"], a["num_keypoints"]
    # a polygon for a 20x20 square at (2, 2): corners at pixel edges
    t["annotations"][0]["segmentation"] = [[2, 2, 22, 2, 22, 22, 2, 22]]
    m = evaluate(t, perfect_predictions(truth)).metrics
    assert m["segm_mAP50"] == 1.0
    assert m["keypoints_mAP50_paper"] == 1.0


def test_table_summary_and_arcsec_sigma(truth):
    preds = perfect_predictions(truth)
    for p in preds:
        p["keypoints"][0] += 2  # 4"
    res = evaluate(truth, preds, arcsec_sigma=5 / math.sqrt(2 * math.log(2)))
    assert res.metrics["keypoints_mAP50_arcsec"] == 1.0  # d50 = 5" now
    assert res.metrics["settings"]["arcsec_d50"] == pytest.approx(5.0)
    t = res.to_table()
    assert list(t["class"]) == ["FR-I", "FR-II", "FR-X", "R", "all"]
    assert t["segm_AP50"].mask[2] and not t["segm_AP50"].mask[0]
    assert t["host_offset_median_arcsec"].unit == u.arcsec
    assert t["n_true"][-1] == 6
    assert "segmentation mAP50 100.0%" in res.summary()
    assert len(res.to_table(include_all=False)) == 4


# ---------------------------------------------------------- issue 24: names with predictions
MODEL = [{"id": i + 1, "name": n} for i, n in enumerate(("FR-I", "FR-II", "FR-X", "R"))]


def _renumbered(truth, categories):
    """The same truth with its categories numbered as ``categories`` (matched by name)."""
    by_name = {c["name"]: c["id"] for c in categories}
    old = {c["id"]: c["name"] for c in truth["categories"]}
    out = copy.deepcopy(truth)
    out["categories"] = copy.deepcopy(categories)
    for a in out["annotations"]:
        a["category_id"] = by_name[old[a["category_id"]]]
    return out


def _model_predictions(truth, tmp_path, *, sidecar=True):
    """Imperfect predictions in the model's ids (galcam predict's 1..4), written to a file
    with (or without) the categories file galcam predict writes beside it."""
    ids = {c["name"]: c["id"] for c in MODEL}
    names = {c["id"]: c["name"] for c in truth["categories"]}
    preds = perfect_predictions(truth)
    for p in preds:
        p["category_id"] = ids[names[p["category_id"]]]
    preds[0]["category_id"] = ids["FR-I"]  # a misclassified FR-II
    preds[2] = shifted(preds[2], 6)
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(preds))
    if sidecar:
        (tmp_path / "predictions.categories.json").write_text(json.dumps({"categories": MODEL}))
    return path


def test_a_truth_numbering_classes_otherwise_scores_the_same(truth, tmp_path):
    """The authors' numbering (1 = FR-II, 2 = FR-I) and galcam's give the same scores: the
    prediction file's categories are found beside it and matched by name."""
    canonical = _renumbered(truth, MODEL)  # truth uses the authors' numbering
    path = _model_predictions(truth, tmp_path)
    authors = evaluate(truth, path).metrics
    ours = evaluate(canonical, path).metrics
    for key in ("segm_mAP50", "segm_mAP", "class_accuracy", "completeness",
                "keypoints_mAP50_paper"):
        assert authors[key] == ours[key], key
    assert authors["per_class"] == ours["per_class"]
    assert 0 < ours["segm_mAP50"] < 1 and ours["class_accuracy"] == pytest.approx(5 / 6)
    # without the names, ids are read as the truth's: the authors' numbering scores otherwise
    bare = tmp_path / "bare"
    bare.mkdir()
    path = _model_predictions(truth, bare, sidecar=False)
    assert evaluate(truth, path).metrics["class_accuracy"] != ours["class_accuracy"]


def test_a_truth_with_other_class_names_is_refused_unless_mapped(truth, tmp_path):
    other = _renumbered(truth, MODEL)
    other["categories"][3]["name"] = "Compact"  # R -> Compact (FIRST's names)
    path = _model_predictions(truth, tmp_path)
    with pytest.raises(ValueError, match=r"the truth's classes \('FR-I', 'FR-II', 'FR-X', "
                       r"'Compact'\) are not the predictions' \('FR-I', 'FR-II', 'FR-X', 'R'; "
                       r"from '.*predictions.categories.json'\): the truth has galaxies of "
                       r"'Compact', which the predictions cannot have and the predictions "
                       r"have 'R', which the truth does not.*class_map="):
        evaluate(other, path)
    mapped = evaluate(other, path, class_map={"R": "Compact"}).metrics
    assert mapped["segm_mAP50"] == evaluate(_renumbered(truth, MODEL), path).metrics["segm_mAP50"]
    # None leaves a class out: its galaxies are then missed, not wrongly matched
    with pytest.raises(ValueError, match="galaxies of 'Compact'"):
        evaluate(other, path, class_map={"R": None})
    with pytest.raises(ValueError, match="class_map names 'FRZ'"):
        evaluate(other, path, class_map={"R": "Compact", "FRZ": "FR-I"})

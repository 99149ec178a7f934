"""The three OKS variants: pycocotools' computeOks with rewritten areas equals the formulas."""

import copy
import math

import numpy as np
import pytest

from galcam.evaluation import (
    DEFAULT_ARCSEC_SIGMA,
    arcsec_sigma_from_d50,
    evaluate,
    oks_arcsec,
    oks_paper,
    oks_refcode,
)
from galcam.evaluation.coco import build_coco, load_predictions, load_truth, results_dataset
from galcam.evaluation.keypoints import oks_parameters
from galcam.evaluation.tests._data import PIXEL_SCALE, make_truth, perfect_predictions


def test_formulas_at_their_d50():
    ln2 = math.log(2)
    # refcode: OKS = 0.5 at d = sqrt(2 ln2 area)
    assert oks_refcode(math.sqrt(2 * ln2 * 5000), 5000) == pytest.approx(0.5)
    assert math.sqrt(2 * ln2 * 5000) == pytest.approx(83.3, abs=0.1)  # the spec's example
    # paper (galcam's reading): d50 = sqrt(2 ln2) k s L, s = bbox area / L^2
    d50 = math.sqrt(2 * ln2) * 0.5 * (400 / 64**2) * 64
    assert oks_paper(d50, 400, 64 * 64) == pytest.approx(0.5)
    assert oks_arcsec(3.0) == pytest.approx(0.5)
    assert DEFAULT_ARCSEC_SIGMA == pytest.approx(arcsec_sigma_from_d50(3.0))
    assert oks_arcsec(0.0) == 1.0


@pytest.mark.parametrize("variant", ["refcode", "paper", "arcsec"])
def test_pycocotools_computes_the_variant(variant, rng):
    """COCOeval.computeOks with galcam's sigma/area rewrite equals the numpy formula."""
    from pycocotools.cocoeval import COCOeval

    truth = load_truth(make_truth())
    preds = perfect_predictions(truth)
    d = rng.uniform(0, 15, len(preds))
    angle = rng.uniform(0, 2 * np.pi, len(preds))
    for p, dd, a in zip(preds, d, angle):
        p["keypoints"] = [p["keypoints"][0] + dd * np.cos(a), p["keypoints"][1] + dd * np.sin(a), 1]
    preds = load_predictions(preds, truth)
    images = {i["id"]: i for i in truth["images"]}
    sigma = None
    gt = copy.deepcopy(truth)
    for ann in gt["annotations"]:
        sigma, ann["area"] = oks_parameters(
            variant,
            ann,
            images[ann["image_id"]],
            pixel_scale_arcsec=PIXEL_SCALE,
            arcsec_sigma=DEFAULT_ARCSEC_SIGMA,
        )
    ev = COCOeval(build_coco(gt), build_coco(results_dataset(truth, preds)), "keypoints")
    ev.params.kpt_oks_sigmas = np.array([sigma])
    ev.params.imgIds = sorted(images)
    ev.params.catIds = sorted(c["id"] for c in truth["categories"])
    ev._prepare()
    for k, ann in enumerate(truth["annotations"]):
        # the prediction k is the only one of its class in its image except for FR-I/FR-II
        ious = ev.computeOks(ann["image_id"], ann["category_id"])
        gts = ev._gts[ann["image_id"], ann["category_id"]]
        j = [g["id"] for g in gts].index(ann["id"])
        got = np.max(np.asarray(ious)[:, j])
        w, h = images[ann["image_id"]]["width"], images[ann["image_id"]]["height"]
        if variant == "refcode":
            expected = oks_refcode(d[k], ann["area"])
        elif variant == "paper":
            expected = oks_paper(d[k], ann["bbox"][2] * ann["bbox"][3], w * h)
        else:
            expected = oks_arcsec(d[k] * PIXEL_SCALE)
        assert got == pytest.approx(float(expected), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("variant", "d50_px"),
    [
        ("refcode", math.sqrt(2 * math.log(2) * 400)),  # 23.5 px for the 20x20 squares
        ("paper", math.sqrt(2 * math.log(2)) * 0.5 * 400 / 64),  # 3.68 px
        ("arcsec", 3.0 / PIXEL_SCALE),  # 1.5 px
    ],
)
def test_ap50_flips_at_the_d50(variant, d50_px):
    truth = make_truth()
    truth["annotations"] = truth["annotations"][:5]  # the 20x20 squares only
    for factor, expected in ((0.97, 1.0), (1.03, 0.0)):
        preds = perfect_predictions(truth)
        for p in preds:
            p["keypoints"][0] += factor * d50_px
        m = evaluate(truth, preds).metrics
        assert m[f"keypoints_mAP50_{variant}"] == pytest.approx(expected)


def test_invisible_truth_hosts_are_ignored():
    truth = make_truth()
    truth["annotations"][0]["keypoints"][2] = 0  # FR-II of image 1: host not known
    preds = perfect_predictions(truth)
    preds[0]["keypoints"][0] += 30  # its predicted host is far away
    m = evaluate(truth, preds).metrics
    assert m["per_class"]["FR-II"]["keypoints_AP50_refcode"] == pytest.approx(1.0)
    assert m["host_offset_n"] == 5  # no offset for a galaxy without a true host
    # a truth without any host: keypoint metrics are null, masks still scored
    for a in truth["annotations"]:
        del a["keypoints"]
    m = evaluate(truth, preds).metrics
    assert m["keypoints_mAP50_refcode"] is None
    assert m["host_offset_median_arcsec"] is None
    assert m["segm_mAP50"] == 1.0


def test_predictions_without_keypoints():
    truth = make_truth()
    preds = perfect_predictions(truth)
    for p in preds:
        del p["keypoints"]
    m = evaluate(truth, preds).metrics
    assert m["keypoints_mAP50_arcsec"] is None
    assert m["per_class"]["R"]["keypoints_AP50_paper"] is None
    assert m["segm_mAP50"] == 1.0

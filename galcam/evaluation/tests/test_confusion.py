"""Greedy class-agnostic matching, confusion matrix and detection curve."""

import numpy as np
import pytest

from galcam.evaluation import confusion_matrix, detection_curve, match_instances
from galcam.evaluation.coco import load_predictions, load_truth, rle_counts
from galcam.evaluation.tests._data import make_truth, perfect_predictions, rle, shifted, square


def test_greedy_matching_by_score_uses_each_truth_once():
    truth = load_truth(make_truth())
    preds = perfect_predictions(truth)
    # a better-scored but worse-overlapping duplicate of galaxy 0 takes it first
    dup = dict(shifted(preds[0], 4), score=0.99)
    preds = load_predictions([*preds, dup], truth)
    m = match_instances(truth, preds, iou_threshold=0.5)
    assert m.pred_match[-1] == 0  # the duplicate got galaxy 0 (IoU 0.667)
    assert m.pred_iou[-1] == pytest.approx(16 / 24)
    assert m.pred_match[0] == -1  # the exact copy is left over: spurious
    assert m.n_matched == 6 and m.n_true == 6 and m.n_pred == 7
    cm = confusion_matrix(m, truth["categories"])
    assert cm.class_names == ("FR-I", "FR-II", "FR-X", "R")
    assert cm.counts[4, 1] == 1  # one spurious FR-II
    frac = cm.normalized()
    assert frac[1, 1] == 1.0 and frac[4, 1] == pytest.approx(1 / 3)
    assert np.isnan(frac[2]).all() or np.isnan(frac[2, 0])
    t = cm.to_table()
    assert list(t["true_class"]) == ["FR-I", "FR-II", "FR-X", "R", "spurious"]
    assert list(t["missed"]) == [0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="iou_threshold"):
        match_instances(truth, preds, iou_threshold=0)


def test_detection_curve_prefix_property():
    truth = load_truth(make_truth())
    preds = perfect_predictions(truth, scores=[0.9, 0.8, 0.7, 0.6, 0.5, 0.5])
    preds.append(dict(preds[0], score=0.85, segmentation=rle(square(40, 40, side=8))))
    preds = load_predictions(preds, truth)
    curve = detection_curve(match_instances(truth, preds))
    # equal scores (0.5, 0.5) give one row
    np.testing.assert_allclose(curve["score_threshold"], [0.9, 0.85, 0.8, 0.7, 0.6, 0.5])
    np.testing.assert_array_equal(curve["n_pred"], [1, 2, 3, 4, 5, 7])
    np.testing.assert_array_equal(curve["n_matched"], [1, 1, 2, 3, 4, 6])
    np.testing.assert_allclose(curve["completeness"], np.array([1, 1, 2, 3, 4, 6]) / 6)
    np.testing.assert_allclose(curve["reliability"], [1, 0.5, 2 / 3, 0.75, 0.8, 6 / 7])


def test_rle_counts_decoder_matches_pycocotools():
    from pycocotools import mask as mask_utils

    m = square(3, 5, side=7, size=16)
    r = rle(m)
    runs = rle_counts(r["counts"])
    assert sum(runs) == 256
    assert (
        mask_utils.frPyObjects({"size": [16, 16], "counts": runs}, 16, 16)["counts"].decode()
        == r["counts"]
    )
    with pytest.raises(ValueError, match="invalid character"):
        rle_counts("ab~")
    with pytest.raises(ValueError, match="ends in the middle"):
        rle_counts("o")

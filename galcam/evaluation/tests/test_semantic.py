"""CAM mIoU of semantic label maps (background included), as the paper's eq. (4)."""

import numpy as np
import pytest

from galcam.evaluation import (
    cam_miou,
    evaluate,
    semantic_confusion,
    semantic_iou,
    semantic_maps_from_coco,
)
from galcam.evaluation.coco import load_truth
from galcam.evaluation.tests._data import make_truth, perfect_predictions


def test_known_confusion_and_miou():
    true = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 1], [1, 1]])
    conf = semantic_confusion(pred, true, 2)
    np.testing.assert_array_equal(conf, [[1, 1], [0, 2]])
    np.testing.assert_allclose(semantic_iou(pred, true, 2), [0.5, 2 / 3])
    assert cam_miou(pred, true, 2) == pytest.approx((0.5 + 2 / 3) / 2)
    # a label absent from both maps does not count (nanmean)
    assert cam_miou(pred, true, 3) == pytest.approx((0.5 + 2 / 3) / 2)
    # pixels are pooled over images before the ratio
    pooled = cam_miou([pred, true], [true, true], 2)
    conf2 = conf + np.array([[2, 0], [0, 2]])
    iou = np.diag(conf2) / (conf2.sum(0) + conf2.sum(1) - np.diag(conf2))
    assert pooled == pytest.approx(iou.mean())
    assert cam_miou({1: pred, 2: true}, {1: true, 2: true}, 2) == pytest.approx(pooled)


def test_ignore_index_and_errors():
    true = np.array([[0, -1], [1, 1]])
    pred = np.array([[0, 1], [1, 1]])
    assert cam_miou(pred, true, 2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        cam_miou(pred, np.zeros((3, 3), int), 2)
    with pytest.raises(ValueError, match="predicted labels must be in 0..1"):
        cam_miou(pred + 1, true, 2)
    with pytest.raises(ValueError, match="integer labels"):
        cam_miou(pred.astype(float), true, 2)
    with pytest.raises(ValueError, match="no predicted semantic map"):
        cam_miou({1: pred}, {1: true, 2: true}, 2)
    with pytest.raises(ValueError, match="n_classes"):
        cam_miou(pred, true, 1)


def test_truth_maps_and_evaluate_semantic():
    truth = make_truth()
    maps = semantic_maps_from_coco(load_truth(truth))
    assert set(maps) == {1, 2, 3, 4}
    assert maps[1].dtype == np.uint8 and maps[1].shape == (64, 64)
    assert set(np.unique(maps[1])) == {0, 1, 2}  # FR-II (id 1) and FR-I (id 2)
    assert maps[1][2:22, 2:22].all() and maps[1][0, 0] == 0
    # predictions as category-id maps equal to the truth: mIoU 1
    pred = {k: v.copy() for k, v in maps.items()}  # ids 1..4 coincide with labels here
    m = evaluate(truth, perfect_predictions(truth), semantic_predictions=pred).metrics
    assert m["cam_miou"] == pytest.approx(1.0)
    assert m["per_class"]["FR-X"]["cam_iou"] is None
    # all background: background IoU = bg pixels / all pixels, classes 0
    empty = {k: np.zeros_like(v) for k, v in maps.items()}
    n_bg = sum(int((v == 0).sum()) for v in maps.values())
    m = evaluate(truth, perfect_predictions(truth), semantic_predictions=empty).metrics
    assert m["cam_miou"] == pytest.approx((n_bg / (4 * 64 * 64)) / 4)  # bg, FR-II, FR-I, R
    with pytest.raises(ValueError, match="neither 0"):
        evaluate(truth, perfect_predictions(truth), semantic_predictions={1: np.full((64, 64), 9)})

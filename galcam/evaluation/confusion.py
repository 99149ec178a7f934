"""Class-agnostic instance matching, the confusion matrix, completeness and reliability.

Gupta et al. (2023, PASA), Appendix (Figure 6), show a confusion matrix for
instance segmentation: predicted and true galaxies are matched at mask IoU
>= 0.5 regardless of class; matched pairs fill the class-by-class matrix,
unmatched true galaxies are false negatives ("missed") and unmatched
predictions are false positives ("spurious"). galcam matches greedily by
descending score (every prediction is kept, each true galaxy and each
prediction is used at most once), like pycocotools but without the class
condition, and derives from the same matching

* completeness = matched true galaxies / all true galaxies,
* reliability = matched predictions / all predictions,
* class accuracy = matched pairs with the right class / matched pairs,

and the host offsets of matched galaxies.
"""

import logging
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from pycocotools import mask as mask_utils

from .._validation import check_fraction, readonly

__all__ = [
    "InstanceMatching",
    "match_instances",
    "ConfusionMatrix",
    "confusion_matrix",
    "detection_curve",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstanceMatching:
    """Result of `match_instances` (arrays are read-only).

    Attributes
    ----------
    iou_threshold : float
        Minimum mask IoU of a match.
    gt_index : ndarray of int, shape (n_true,)
        Index into ``truth["annotations"]`` of each (non-crowd) true galaxy.
    gt_category : ndarray of int, shape (n_true,)
        True category id of each true galaxy.
    gt_match : ndarray of int, shape (n_true,)
        Index of the matched prediction, or -1.
    pred_category : ndarray of int, shape (n_pred,)
        Predicted category id of each prediction (truth ids).
    pred_score : ndarray of float, shape (n_pred,)
    pred_match : ndarray of int, shape (n_pred,)
        Position (in ``gt_*`` arrays) of the matched true galaxy, or -1.
    pred_iou : ndarray of float, shape (n_pred,)
        Mask IoU with the matched true galaxy (NaN when unmatched).
    """

    iou_threshold: float
    gt_index: np.ndarray
    gt_category: np.ndarray
    gt_match: np.ndarray
    pred_category: np.ndarray
    pred_score: np.ndarray
    pred_match: np.ndarray
    pred_iou: np.ndarray

    @property
    def n_true(self):
        """Number of (non-crowd) true galaxies."""
        return int(self.gt_index.size)

    @property
    def n_pred(self):
        """Number of predictions."""
        return int(self.pred_score.size)

    @property
    def n_matched(self):
        """Number of matched pairs."""
        return int(np.count_nonzero(self.pred_match >= 0))


def match_instances(truth, preds, *, iou_threshold=0.5):
    """Match predictions to true galaxies by mask IoU, ignoring classes.

    In each image the predictions are taken in descending score order (ties
    keep input order); each one is matched to the still unmatched true galaxy
    with the highest IoU, if that IoU is >= ``iou_threshold``. Crowd
    annotations (``iscrowd=1``) are left out of the truth.

    Because matching runs in score order, the matches of the predictions
    above any score threshold are exactly those of this full matching, which
    makes completeness/reliability curves (`detection_curve`) exact.

    Parameters
    ----------
    truth : dict
        From `~galcam.evaluation.load_truth`.
    preds : list of dict
        From `~galcam.evaluation.load_predictions`.
    iou_threshold : float
        Minimum IoU (0 < t <= 1).

    Returns
    -------
    matching : `InstanceMatching`
    """
    iou_threshold = check_fraction(iou_threshold, "iou_threshold", low_open=True)
    gt_index = np.array(
        [i for i, a in enumerate(truth["annotations"]) if not a["iscrowd"]], dtype=int
    )
    anns = truth["annotations"]
    gt_category = np.array([anns[i]["category_id"] for i in gt_index], dtype=int)
    gt_match = np.full(gt_index.size, -1, dtype=int)
    n_pred = len(preds)
    pred_category = np.array([p["category_id"] for p in preds], dtype=int)
    pred_score = np.array([p["score"] for p in preds], dtype=float)
    pred_match = np.full(n_pred, -1, dtype=int)
    pred_iou = np.full(n_pred, np.nan)

    gt_by_image = {}
    for pos, i in enumerate(gt_index):
        gt_by_image.setdefault(anns[i]["image_id"], []).append(pos)
    pred_by_image = {}
    for j, p in enumerate(preds):
        pred_by_image.setdefault(p["image_id"], []).append(j)

    for image_id, pjs in pred_by_image.items():
        gps = gt_by_image.get(image_id, [])
        if not gps:
            continue
        order = np.argsort(-pred_score[pjs], kind="stable")
        pjs = [pjs[o] for o in order]
        ious = np.asarray(
            mask_utils.iou(
                [preds[j]["segmentation"] for j in pjs],
                [anns[gt_index[g]]["segmentation"] for g in gps],
                [0] * len(gps),
            ),
            dtype=float,
        ).reshape(len(pjs), len(gps))
        taken = np.zeros(len(gps), dtype=bool)
        for row, j in enumerate(pjs):
            cand = np.where(taken, -1.0, ious[row])
            best = int(np.argmax(cand))
            if cand[best] >= iou_threshold:
                taken[best] = True
                pred_match[j] = gps[best]
                pred_iou[j] = ious[row, best]
                gt_match[gps[best]] = j
    gt_index, gt_category, gt_match, pred_category, pred_score, pred_match, pred_iou = (
        readonly(a) for a in (gt_index, gt_category, gt_match, pred_category, pred_score,
                              pred_match, pred_iou))
    return InstanceMatching(
        iou_threshold=iou_threshold,
        gt_index=gt_index,
        gt_category=gt_category,
        gt_match=gt_match,
        pred_category=pred_category,
        pred_score=pred_score,
        pred_match=pred_match,
        pred_iou=pred_iou,
    )


@dataclass(frozen=True)
class ConfusionMatrix:
    """Instance confusion matrix of a class-agnostic matching.

    ``counts`` has shape ``(K + 1, K + 1)``: rows are the K true classes and a
    last row ``"spurious"`` (false positives: predictions matching no true
    galaxy, in the column of their predicted class); columns are the K
    predicted classes and a last column ``"missed"`` (false negatives: true
    galaxies matching no prediction, in the row of their true class). The
    corner ``counts[K, K]`` is always 0.

    Attributes
    ----------
    class_names : tuple of str
        The K class names (truth categories, sorted by name).
    cat_ids : tuple of int
        Their truth category ids.
    counts : ndarray of int
    """

    class_names: tuple
    cat_ids: tuple
    counts: np.ndarray

    @property
    def row_labels(self):
        """True classes then ``"spurious"``."""
        return (*self.class_names, "spurious")

    @property
    def column_labels(self):
        """Predicted classes then ``"missed"``."""
        return (*self.class_names, "missed")

    def normalized(self):
        """Fractions as plotted: true-class rows divided by the number of true galaxies of
        that class (so a row sums to 1), the spurious row divided by the number of
        predictions of each class; NaN where the divisor is 0."""
        k = len(self.class_names)
        out = np.full(self.counts.shape, np.nan)
        n_true = self.counts[:k].sum(axis=1)
        n_pred = self.counts[:, :k].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:k] = self.counts[:k] / np.where(n_true > 0, n_true, np.nan)[:, None]
            out[k, :k] = self.counts[k, :k] / np.where(n_pred > 0, n_pred, np.nan)
        out[k, k] = np.nan
        return out

    def per_class(self):
        """Per class name: ``n_true``, ``n_pred``, ``tp`` (right class), ``misclassified``
        (matched with another predicted class), ``fn`` (missed), ``fp`` (spurious
        predictions of this class), ``completeness`` (matched / true, any class) and
        ``reliability`` (matched / predicted, any class); ratios are None for 0/0."""
        k = len(self.class_names)
        c = self.counts
        out = {}
        for i, name in enumerate(self.class_names):
            n_true = int(c[i, : k + 1].sum())
            n_pred = int(c[: k + 1, i].sum())
            matched_true = int(c[i, :k].sum())
            matched_pred = int(c[:k, i].sum())
            out[name] = {
                "n_true": n_true,
                "n_pred": n_pred,
                "tp": int(c[i, i]),
                "misclassified": matched_true - int(c[i, i]),
                "fn": int(c[i, k]),
                "fp": int(c[k, i]),
                "completeness": matched_true / n_true if n_true else None,
                "reliability": matched_pred / n_pred if n_pred else None,
            }
        return out

    def to_table(self):
        """The counts as an `~astropy.table.Table`, one row per true class plus ``spurious``."""
        t = Table()
        t["true_class"] = list(self.row_labels)
        for j, label in enumerate(self.column_labels):
            t[label] = self.counts[:, j]
        return t


def confusion_matrix(matching, categories):
    """Build the `ConfusionMatrix` of a matching.

    Parameters
    ----------
    matching : `InstanceMatching`
    categories : list of dict
        The truth's categories (``id``, ``name``); rows/columns are sorted by name.
    """
    cats = sorted(categories, key=lambda c: (c["name"].lower(), c["id"]))
    cat_ids = tuple(int(c["id"]) for c in cats)
    pos = {cid: i for i, cid in enumerate(cat_ids)}
    k = len(cats)
    counts = np.zeros((k + 1, k + 1), dtype=np.int64)
    for g in range(matching.n_true):
        row = pos[int(matching.gt_category[g])]
        j = matching.gt_match[g]
        col = k if j < 0 else pos[int(matching.pred_category[j])]
        counts[row, col] += 1
    for j in range(matching.n_pred):
        if matching.pred_match[j] < 0:
            counts[k, pos[int(matching.pred_category[j])]] += 1
    counts.setflags(write=False)
    return ConfusionMatrix(
        class_names=tuple(c["name"] for c in cats), cat_ids=cat_ids, counts=counts
    )


def detection_curve(matching):
    """Completeness, reliability and F1 as functions of a score threshold.

    A threshold keeps the predictions with ``score >= threshold``. Because the
    greedy matching runs in score order, the matched predictions above a
    threshold are those of the full matching, so the curve is exact.

    Parameters
    ----------
    matching : `InstanceMatching`

    Returns
    -------
    table : `~astropy.table.Table`
        Columns ``score_threshold`` (descending, one row per distinct score),
        ``n_pred``, ``n_matched``, ``completeness``, ``reliability`` and ``f1``
        (all in 0..1). Empty when there are no predictions.
    """
    scores = matching.pred_score
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    matched = (matching.pred_match[order] >= 0).astype(np.int64)
    cum = np.cumsum(matched)
    # keep the last index of each group of equal scores
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True]) if s.size else np.array([], dtype=int)
    n_pred = last + 1
    n_matched = cum[last] if s.size else np.array([], dtype=np.int64)
    n_true = matching.n_true
    t = Table()
    t["score_threshold"] = s[last] if s.size else np.array([], dtype=float)
    t["n_pred"] = n_pred
    t["n_matched"] = n_matched
    t["completeness"] = n_matched / n_true if n_true else np.full(n_pred.size, np.nan)
    t["reliability"] = n_matched / n_pred if s.size else np.array([], dtype=float)
    denom = n_true + n_pred
    t["f1"] = 2.0 * n_matched / denom if s.size else np.array([], dtype=float)
    return t

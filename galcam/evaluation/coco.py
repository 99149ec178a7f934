"""Reading, checking and normalising COCO ground truth and COCO results.

Ground truth follows galcam's dataset contract (a COCO JSON with ``images``,
``categories`` and ``annotations``); predictions follow the COCO *results*
format (a list of ``{image_id, category_id, score, segmentation, bbox,
keypoints}``), optionally wrapped in a dict ``{"categories": [...],
"annotations": [...]}`` whose categories say what the prediction ids mean.
Categories are always matched by **name**, never by id or order, because
published radio-galaxy data sets number them differently.

Everything here is torch-free; masks are handled with `pycocotools.mask`.
"""

import contextlib
import copy
import io
import json
import logging
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

# one RLE decoder, one class-name rule and one COCO validator for the whole package
from ..datasets.classes import normalize_class_name
from ..datasets.coco import decode_rle
from ..datasets.contract import (
    check_bbox,
    check_keypoints,
    check_truth,
    coco_id,
    rle_counts,
    segmentation_to_rle,
)

__all__ = [
    "normalize_class_name",
    "load_truth",
    "load_predictions",
    "categories_path",
    "CATEGORIES_SUFFIX",
    "remap_categories",
    "rle_counts",
    "decode_rle",
    "build_coco",
    "APResult",
    "run_cocoeval",
    "segm_average_precision",
]

log = logging.getLogger(__name__)


def _describe(source):
    if isinstance(source, (str, os.PathLike)):
        return f"'{os.fspath(source)}'"
    return "<in-memory data>"


def _read_json(path, what):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file '{path}' does not exist")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} file '{path}' is not valid JSON ({exc})") from exc


# ----------------------------------------------------------------------------- truth


def load_truth(truth):
    """Read and check a COCO ground-truth data set.

    Parameters
    ----------
    truth : str, path-like or dict
        A COCO JSON file or its parsed content (galcam's dataset contract).

    Returns
    -------
    dataset : dict
        A checked deep copy: every segmentation is a compressed RLE (``counts``
        a str), every annotation has ``id``, ``area`` (as stored; the mask area
        in pixels when missing), ``bbox`` (from the mask when missing),
        ``iscrowd`` (default 0) and, when it has ``keypoints``,
        ``num_keypoints``. Extra keys (e.g. ``images[].pixel_scale_arcsec``)
        are kept.

    Raises
    ------
    FileNotFoundError, ValueError
        For a missing file, invalid JSON or content that breaks the contract;
        the message names the file and the offending entry. The content is
        checked by `galcam.datasets.contract.check_truth`, with the checks of
        images and categories that `~galcam.datasets.CocoDataset` uses too.
    """
    where = _describe(truth)
    if isinstance(truth, (str, os.PathLike)):
        data = _read_json(truth, "truth")
    elif isinstance(truth, dict):
        data = copy.deepcopy(truth)
    else:
        raise ValueError(f"truth must be a COCO JSON path or dict, got {type(truth).__name__}")
    return check_truth(data, f"truth {where}")


# ----------------------------------------------------------------------------- predictions

#: What `categories_path` appends to a predictions file's stem: ``predictions.json`` ->
#: ``predictions.categories.json``.
CATEGORIES_SUFFIX = ".categories.json"


def categories_path(predictions_path):
    """The file that names the category ids of a COCO results file, beside it.

    ``galcam predict`` writes ``predictions.categories.json`` beside ``predictions.json``
    (``{"categories": [{"id", "name"}, ...], ...}``); `load_predictions` reads it when it
    is given the predictions file and no other categories.

    Parameters
    ----------
    predictions_path : str or path-like

    Returns
    -------
    path : `~pathlib.Path`
    """
    path = Path(predictions_path)
    stem = path.name[:-5] if path.name.lower().endswith(".json") else path.name
    return path.with_name(stem + CATEGORIES_SUFFIX)


def _class_map(class_map):
    """Normalised ``{prediction class: truth class or None}`` from a user's mapping."""
    if class_map is None:
        return {}
    if not isinstance(class_map, dict):
        raise TypeError(f"class_map: expected a dict {{prediction class: truth class}}, got "
                        f"{type(class_map).__name__}")
    out = {}
    for key, value in class_map.items():
        if value is not None and not isinstance(value, str):
            raise TypeError(f"class_map: the truth class of {key!r} must be a name (or None "
                            f"to leave its predictions out), got {value!r}")
        out[normalize_class_name(key)] = (None if value is None or not value.strip()
                                          else value)
    return out


def _check_class_names(categories, truth, class_map, source, predictions):
    """Apply ``class_map`` to the prediction categories; refuse names the truth lacks.

    Refused: a class of the truth's galaxies that no prediction category names, and a
    class of a prediction that the truth has no category for. Returns the categories
    (renamed) and the prediction ids to leave out.
    """
    mapping = _class_map(class_map)
    renamed, dropped = [], set()
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise ValueError(f"prediction categories[{i}] must be an object with 'id' and 'name'")
        key = normalize_class_name(cat["name"])
        if key in mapping:
            if mapping[key] is None:
                dropped.add(coco_id(cat["id"], f"prediction categories[{i}].id"))
                continue
            cat = dict(cat, name=mapping[key])
        renamed.append(cat)
    unused = sorted(set(mapping) - {normalize_class_name(c["name"]) for c in categories})
    if unused:
        raise ValueError(f"class_map names {', '.join(repr(k) for k in unused)}, which the "
                         f"predictions' categories ({_names(categories)}) do not have")
    pred_keys = {normalize_class_name(c["name"]) for c in renamed}
    truth_keys = {normalize_class_name(c["name"]) for c in truth["categories"]}
    annotated = {a.get("category_id") for a in truth.get("annotations", [])}
    used = {p.get("category_id") for p in predictions if isinstance(p, dict)}
    only_truth = [c["name"] for c in truth["categories"] if c["id"] in annotated
                  and normalize_class_name(c["name"]) not in pred_keys]
    only_pred = [c["name"] for c in renamed if c["id"] in used
                 and normalize_class_name(c["name"]) not in truth_keys]
    if only_truth or only_pred:
        parts = []
        if only_truth:
            parts.append(f"the truth has galaxies of {_names(only_truth)}, which the "
                         "predictions cannot have")
        if only_pred:
            parts.append(f"the predictions have {_names(only_pred)}, which the truth does "
                         "not")
        raise ValueError(
            f"the truth's classes ({_names(truth['categories'])}) are not the predictions' "
            f"({_names(renamed)}; {source}): {' and '.join(parts)}. Scores would be "
            "meaningless; say which classes are the same with class_map={'PRED': 'TRUTH'} "
            "(a prediction class mapped to None is left out)")
    return renamed, dropped


def _names(items):
    return ", ".join(repr(c["name"] if isinstance(c, dict) else c) for c in items)


def remap_categories(predictions, pred_categories, truth_categories):
    """Translate prediction category ids into the truth's ids by class name.

    Parameters
    ----------
    predictions : list of dict
        COCO results whose ``category_id`` refers to ``pred_categories``.
    pred_categories : list of dict
        ``[{"id": ..., "name": ...}, ...]`` as used by the model that made the
        predictions.
    truth_categories : list of dict
        The ``categories`` of the ground truth.

    Returns
    -------
    remapped : list of dict
        Shallow copies of the predictions with ``category_id`` replaced by the
        truth's id of the class of the same name (see `normalize_class_name`).

    Raises
    ------
    ValueError
        If a prediction's id is not in ``pred_categories`` or a predicted class
        name has no counterpart in the truth.
    """
    truth_by_name = {}
    for cat in truth_categories:
        truth_by_name[normalize_class_name(cat["name"])] = int(cat["id"])
    mapping = {}
    names = {}
    for i, cat in enumerate(pred_categories):
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise ValueError(f"prediction categories[{i}] must be an object with 'id' and 'name'")
        cid = coco_id(cat["id"], f"prediction categories[{i}].id")
        key = normalize_class_name(cat["name"])
        if key in names:
            raise ValueError(
                f"prediction categories[{i}]: name {cat['name']!r} duplicates {names[key]!r}"
            )
        names[key] = cat["name"]
        if cid in mapping:
            raise ValueError(f"prediction categories[{i}]: duplicate id {cid}")
        mapping[cid] = truth_by_name.get(key)
        if mapping[cid] is None:
            log.debug("predicted class %r is not in the truth", cat["name"])
    out = []
    for i, pred in enumerate(predictions):
        cid = coco_id(pred.get("category_id"), f"predictions[{i}].category_id")
        if cid not in mapping:
            raise ValueError(
                f"predictions[{i}]: category_id {cid} is not in the prediction categories "
                f"(ids {sorted(mapping)})"
            )
        if mapping[cid] is None:
            pname = next(c["name"] for c in pred_categories if int(c["id"]) == cid)
            raise ValueError(
                f"predictions[{i}]: predicted class {pname!r} has no category of that name in "
                f"the truth ({', '.join(repr(c['name']) for c in truth_categories)})"
            )
        new = dict(pred)
        new["category_id"] = mapping[cid]
        out.append(new)
    return out


def load_predictions(predictions, truth, *, pred_categories=None, class_map=None):
    """Read, check and (by class name) re-number COCO results.

    Parameters
    ----------
    predictions : str, path-like, list or dict
        A COCO results JSON file or its content: a list of
        ``{image_id, category_id, score, segmentation, bbox, keypoints}``, or
        a dict ``{"categories": [...], "annotations": [...]}`` whose
        categories give the names of the prediction ids.
    truth : dict
        The checked ground truth from `load_truth`.
    pred_categories : str, path-like or list of dict, optional
        Names of the prediction ids (a JSON file holding a list, or a COCO
        JSON with ``categories``). Overrides categories in a dict input. When
        absent and ``predictions`` is a file holding a plain list, the file
        `categories_path` names beside it (``predictions.categories.json``,
        written by ``galcam predict``) is read; without it the ids are taken
        to be the truth's ids (logged as a warning).
    class_map : dict, optional
        ``{prediction class: truth class}`` for classes named differently
        (e.g. ``{"R": "Compact"}``); a prediction class mapped to None is
        left out. Needed when the predictions' and the truth's class names
        differ: they are matched by name, and different names are refused.

    Returns
    -------
    preds : list of dict
        Checked copies in the truth's category ids; segmentations are
        compressed RLE (``counts`` a str), ``bbox`` is filled from the mask
        when missing, ``score`` is a float and ``keypoints`` (if any) is
        ``[x, y, v]``.

    Raises
    ------
    FileNotFoundError, ValueError
        For unreadable input, unknown image or category ids, non-finite
        scores, malformed RLE, a mix of predictions with and without
        keypoints, or class names of the predictions (known from their
        categories) that are not the truth's. The message names the entry.
    """
    where = _describe(predictions)
    if isinstance(predictions, (str, os.PathLike)):
        data = _read_json(predictions, "predictions")
    else:
        data = predictions
    categories = None
    source = "categories given with them"
    if isinstance(data, dict):
        if not isinstance(data.get("annotations"), list):
            raise ValueError(
                f"predictions {where}: a dict needs an 'annotations' list (COCO results)"
            )
        categories = data.get("categories")
        data = data["annotations"]
    elif not isinstance(data, list):
        raise ValueError(
            f"predictions {where}: expected a COCO results list or a dict with 'annotations', "
            f"got {type(data).__name__}"
        )
    if pred_categories is not None:
        if isinstance(pred_categories, (str, os.PathLike)):
            pc = _read_json(pred_categories, "prediction categories")
            if isinstance(pc, dict):
                pc = pc.get("categories")
            pred_categories = pc
        if not isinstance(pred_categories, list):
            raise ValueError(
                "prediction categories must be a list of {id, name} (or a JSON with 'categories')"
            )
        categories = pred_categories
    elif categories is None and isinstance(predictions, (str, os.PathLike)):
        beside = categories_path(predictions)
        if beside.is_file():
            pc = _read_json(beside, "prediction categories")
            categories = pc.get("categories") if isinstance(pc, dict) else pc
            if not isinstance(categories, list):
                raise ValueError(f"prediction categories file '{beside}': expected "
                                 "{'categories': [{id, name}, ...]}")
            source = f"from '{beside}'"
            log.info("predictions %s: category names from '%s'", where, beside)
        else:
            log.warning("predictions %s carry no category names (no '%s' beside them, no "
                        "prediction categories given): their category ids are taken to be "
                        "the truth's", where, beside.name)
    for i, pred in enumerate(data):
        if not isinstance(pred, dict):
            raise ValueError(f"predictions {where}: entry {i} is not an object")
    if categories is not None:
        categories, dropped = _check_class_names(categories, truth, class_map, source, data)
        if dropped:
            data = [p for p in data if p.get("category_id") not in dropped]
        data = remap_categories(data, categories, truth["categories"])
    elif class_map:
        raise ValueError("class_map: the predictions carry no category names to map (give "
                         "their categories)")

    images = {img["id"]: img for img in truth["images"]}
    cat_ids = {c["id"] for c in truth["categories"]}
    out = []
    n_kp = 0
    for i, pred in enumerate(data):
        w = f"predictions {where}: entry {i}"
        iid = coco_id(pred.get("image_id"), f"{w}: image_id")
        if iid not in images:
            raise ValueError(f"{w}: image_id {iid} is not in the truth's images")
        cid = coco_id(pred.get("category_id"), f"{w}: category_id")
        if cid not in cat_ids:
            raise ValueError(
                f"{w}: category_id {cid} is not a truth category id {sorted(cat_ids)}; give the "
                "prediction categories (names) to remap by name"
            )
        score = pred.get("score")
        if isinstance(score, bool) or not isinstance(score, numbers.Real):
            raise ValueError(f"{w}: 'score' must be a number, got {score!r}")
        if not math.isfinite(score):
            raise ValueError(f"{w}: 'score' must be finite, got {score!r}")
        if "segmentation" not in pred:
            raise ValueError(f"{w}: missing 'segmentation' (compressed RLE)")
        img = images[iid]
        rle = segmentation_to_rle(pred["segmentation"], img["height"], img["width"], w)
        entry = {
            "image_id": iid,
            "category_id": cid,
            "score": float(score),
            "segmentation": rle,
            "area": float(mask_utils.area(rle)),
        }
        if pred.get("bbox") not in (None, []):
            entry["bbox"] = check_bbox(pred["bbox"], w)
        else:
            entry["bbox"] = [float(b) for b in mask_utils.toBbox(rle)]
        if pred.get("keypoints") is not None:
            entry["keypoints"] = check_keypoints(pred["keypoints"], w)
            n_kp += 1
        out.append(entry)
    if 0 < n_kp < len(out):
        raise ValueError(
            f"predictions {where}: {len(out) - n_kp} of {len(out)} entries have no 'keypoints'; "
            "give a host keypoint for every galaxy or for none"
        )
    return out


# ----------------------------------------------------------------------------- pycocotools glue


@contextlib.contextmanager
def _quiet():
    """pycocotools prints progress to stdout; library code must not."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield
    text = buf.getvalue().strip()
    if text:
        log.debug("pycocotools: %s", text.replace("\n", " | "))


def build_coco(dataset):
    """A `pycocotools.coco.COCO` object built from an in-memory data set, silently.

    Parameters
    ----------
    dataset : dict
        COCO content with ``images``, ``categories`` and ``annotations``.

    Returns
    -------
    coco : `pycocotools.coco.COCO`
    """
    coco = COCO()
    coco.dataset = dataset
    with _quiet():
        coco.createIndex()
    return coco


def results_dataset(truth, preds):
    """COCO content for detections: truth's images and categories, numbered predictions."""
    anns = []
    for i, p in enumerate(preds):
        ann = dict(p)
        ann["id"] = i + 1
        ann["iscrowd"] = 0
        anns.append(ann)
    return {"images": truth["images"], "categories": truth["categories"], "annotations": anns}


#: COCO's IoU thresholds 0.50:0.05:0.95 (the "AP" of COCO, averaged over them).
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
#: maxDets of the segmentation evaluation; AP is read at the last one (100).
SEGM_MAX_DETS = (1, 10, 100)


@dataclass(frozen=True)
class APResult:
    """Precision arrays of one COCOeval run (area range "all", the largest maxDets).

    Attributes
    ----------
    iou_type : str
        ``"segm"`` or ``"keypoints"``.
    cat_ids : tuple of int
        Category ids along the class axis (pycocotools sorts them).
    iou_thresholds : ndarray
        IoU (or OKS) thresholds along the first axis.
    recall_thresholds : ndarray
        The 101 recall points 0, 0.01, ..., 1.
    precision : ndarray, shape (T, R, K)
        Interpolated precision; ``-1`` where a class has no ground truth.
    max_dets : int
        The maxDets the precision refers to.
    """

    iou_type: str
    cat_ids: tuple
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    precision: np.ndarray
    max_dets: int

    def _t_index(self, threshold):
        idx = np.flatnonzero(np.isclose(self.iou_thresholds, threshold))
        if idx.size == 0:
            raise ValueError(
                f"threshold {threshold} was not evaluated (have {self.iou_thresholds.tolist()})"
            )
        return int(idx[0])

    def ap(self, cat_id, threshold=None):
        """AP of one class at one threshold (or averaged over all); None without truth.

        Parameters
        ----------
        cat_id : int
            Category id.
        threshold : float, optional
            IoU/OKS threshold; default: the mean over all thresholds (COCO "AP").

        Returns
        -------
        ap : float or None
            Area under the 101-point interpolated precision-recall curve, 0..1.
        """
        k = self.cat_ids.index(cat_id)
        if threshold is None:
            p = self.precision[:, :, k]
        else:
            p = self.precision[self._t_index(threshold), :, k]
        valid = p > -1
        if not valid.any():
            return None
        return float(np.mean(p[valid]))

    def mean_ap(self, threshold=None):
        """Mean of `ap` over the classes that have ground truth (None if none)."""
        aps = [self.ap(c, threshold) for c in self.cat_ids]
        aps = [a for a in aps if a is not None]
        return float(np.mean(aps)) if aps else None

    def curve(self, cat_id, threshold=0.5):
        """(recall, precision) arrays of one class at one threshold, or None without truth."""
        k = self.cat_ids.index(cat_id)
        p = self.precision[self._t_index(threshold), :, k]
        if not (p > -1).any():
            return None
        return self.recall_thresholds.copy(), p.copy()


def run_cocoeval(coco_gt, coco_dt, iou_type, *, max_dets, iou_thresholds=None, kpt_sigma=None):
    """Run `pycocotools.cocoeval.COCOeval` on area range "all" and return an `APResult`.

    Parameters
    ----------
    coco_gt, coco_dt : `pycocotools.coco.COCO`
        Ground truth and detections.
    iou_type : {"segm", "keypoints"}
    max_dets : sequence of int
        pycocotools ``maxDets``; the result uses the last one.
    iou_thresholds : array-like, optional
        Overrides pycocotools' 0.50:0.05:0.95.
    kpt_sigma : float, optional
        The (single) keypoint sigma for ``iou_type="keypoints"``.
    """
    ev = COCOeval(coco_gt, coco_dt, iouType=iou_type)
    ev.params.areaRng = [[0.0, 1e10]]
    ev.params.areaRngLbl = ["all"]
    ev.params.maxDets = list(max_dets)
    if iou_thresholds is not None:
        ev.params.iouThrs = np.asarray(iou_thresholds, dtype=float)
    if kpt_sigma is not None:
        ev.params.kpt_oks_sigmas = np.array([float(kpt_sigma)])
    with _quiet():
        ev.evaluate()
        ev.accumulate()
    precision = np.asarray(ev.eval["precision"])[:, :, :, 0, -1]
    return APResult(
        iou_type=iou_type,
        cat_ids=tuple(int(c) for c in ev.params.catIds),
        iou_thresholds=np.asarray(ev.params.iouThrs, dtype=float),
        recall_thresholds=np.asarray(ev.params.recThrs, dtype=float),
        precision=precision,
        max_dets=int(max_dets[-1]),
    )


def segm_average_precision(truth, preds):
    """COCO instance-segmentation AP of checked predictions against checked truth.

    Every prediction is scored with its own score; classes must match
    (``useCats=1``); IoU thresholds 0.50:0.05:0.95; maxDets (1, 10, 100)
    and the AP read at 100; area range "all".

    Parameters
    ----------
    truth : dict
        From `load_truth`.
    preds : list of dict
        From `load_predictions`.

    Returns
    -------
    result : `APResult`
    """
    # COCOeval writes an 'ignore' flag into the annotations: give it copies
    coco_gt = build_coco(copy.deepcopy(truth))
    coco_dt = build_coco(results_dataset(truth, preds))
    return run_cocoeval(
        coco_gt, coco_dt, "segm", max_dets=SEGM_MAX_DETS, iou_thresholds=COCO_IOU_THRESHOLDS
    )

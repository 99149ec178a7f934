"""Semantic-segmentation scores of class activation maps (CAM mIoU).

Gupta et al. (2023, PASA), Section 4, equation (4), score the class
activation maps of the ReCAM network by the mean intersection over union of
semantic label maps (0 = background, 1..K = classes), summed over all pixels
of all images before the ratio is taken, and averaged over the classes
**including the background** (the authors' ``eval_cam``: a pixel confusion
matrix accumulated over the data set, ``IoU_j = C_jj / (sum_row_j + sum_col_j
- C_jj)``, then the NaN-ignoring mean over all classes, so a class that is
absent from both truth and prediction does not count).
"""

import numpy as np

__all__ = ["semantic_confusion", "semantic_iou", "cam_miou", "semantic_maps_from_coco"]


def _pairs(pred, true):
    if isinstance(pred, np.ndarray) and isinstance(true, np.ndarray):
        return [(pred, true)]
    if isinstance(pred, dict) or isinstance(true, dict):
        if not (isinstance(pred, dict) and isinstance(true, dict)):
            raise ValueError("give both predicted and true maps as dicts (image id -> map)")
        missing = set(true) - set(pred)
        if missing:
            raise ValueError(f"no predicted semantic map for image ids {sorted(missing)[:10]}")
        extra = set(pred) - set(true)
        if extra:
            raise ValueError(f"predicted semantic maps for unknown image ids {sorted(extra)[:10]}")
        return [(pred[k], true[k]) for k in sorted(true)]
    pred, true = list(pred), list(true)
    if len(pred) != len(true):
        raise ValueError(f"got {len(pred)} predicted maps but {len(true)} true maps")
    return list(zip(pred, true))


def semantic_confusion(pred, true, n_classes, *, ignore_index=-1):
    """Pixel confusion matrix of semantic label maps, accumulated over images.

    Parameters
    ----------
    pred, true : ndarray, sequence of ndarray, or dict
        Integer label maps (``data[y, x]``), 0 = background, 1..K = classes;
        one array, equal-length sequences, or dicts keyed by image id. Each
        predicted map must have the shape of its true map.
    n_classes : int
        Number of labels including the background (K + 1).
    ignore_index : int
        True-map value of pixels to leave out (e.g. unlabelled).

    Returns
    -------
    confusion : ndarray of int64, shape (n_classes, n_classes)
        ``confusion[true, pred]`` pixel counts.

    Raises
    ------
    ValueError
        On shape mismatch, non-integer maps or labels outside ``0..n_classes-1``.
    """
    n_classes = int(n_classes)
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2 (background + classes), got {n_classes}")
    conf = np.zeros(n_classes * n_classes, dtype=np.int64)
    for i, (p, t) in enumerate(_pairs(pred, true)):
        p, t = np.asarray(p), np.asarray(t)
        if p.shape != t.shape:
            raise ValueError(f"map {i}: predicted shape {p.shape} != true shape {t.shape}")
        for arr, what in ((p, "predicted"), (t, "true")):
            if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_)):
                raise ValueError(f"map {i}: the {what} map must be integer labels, got {arr.dtype}")
        t = t.astype(np.int64).ravel()
        p = p.astype(np.int64).ravel()
        keep = t != ignore_index
        t, p = t[keep], p[keep]
        if t.size and (t.min() < 0 or t.max() >= n_classes):
            raise ValueError(f"map {i}: true labels must be in 0..{n_classes - 1}")
        if p.size and (p.min() < 0 or p.max() >= n_classes):
            raise ValueError(f"map {i}: predicted labels must be in 0..{n_classes - 1}")
        conf += np.bincount(n_classes * t + p, minlength=n_classes * n_classes)
    return conf.reshape(n_classes, n_classes)


def semantic_iou(pred, true, n_classes, *, ignore_index=-1):
    """Per-label IoU (background first) from `semantic_confusion`; NaN for absent labels."""
    conf = semantic_confusion(pred, true, n_classes, ignore_index=ignore_index)
    inter = np.diag(conf).astype(float)
    union = conf.sum(axis=0) + conf.sum(axis=1) - np.diag(conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)


def cam_miou(pred_semantic_maps, true_semantic_maps, n_classes, *, ignore_index=-1):
    """Mean IoU over all labels including the background (the paper's CAM mIoU).

    Parameters
    ----------
    pred_semantic_maps, true_semantic_maps : ndarray, sequence or dict
        Integer label maps, see `semantic_confusion`.
    n_classes : int
        Number of labels including the background.
    ignore_index : int
        True-map value of pixels to leave out.

    Returns
    -------
    miou : float
        In 0..1; NaN only if no label occurs at all.
    """
    iou = semantic_iou(pred_semantic_maps, true_semantic_maps, n_classes, ignore_index=ignore_index)
    if np.all(np.isnan(iou)):
        return float("nan")
    return float(np.nanmean(iou))


def semantic_maps_from_coco(truth, *, category_ids=None):
    """True semantic label maps from COCO instance annotations.

    As the authors' ``annToMask``: for each image a zero map, then each
    non-crowd annotation in JSON order paints its mask with its label (later
    annotations win where they overlap).

    Parameters
    ----------
    truth : dict
        From `~galcam.evaluation.load_truth`.
    category_ids : sequence of int, optional
        Category ids giving labels 1..K in this order; default: the truth's
        category ids sorted ascending.

    Returns
    -------
    maps : dict
        image id -> uint8 (or int32 for > 255 labels) array of shape (height, width).
    """
    from .coco import decode_rle

    if category_ids is None:
        category_ids = sorted(c["id"] for c in truth["categories"])
    label = {int(c): i + 1 for i, c in enumerate(category_ids)}
    dtype = np.uint8 if len(label) < 255 else np.int32
    maps = {
        img["id"]: np.zeros((img["height"], img["width"]), dtype=dtype) for img in truth["images"]
    }
    for ann in truth["annotations"]:
        if ann.get("iscrowd"):
            continue
        if ann["category_id"] not in label:
            raise ValueError(f"category id {ann['category_id']} is not in category_ids")
        m = decode_rle(ann["segmentation"])
        maps[ann["image_id"]][m] = label[ann["category_id"]]
    return maps

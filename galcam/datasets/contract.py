"""galcam's COCO data set contract, checked in one place.

The data set reader (`~galcam.datasets.CocoDataset`) and the evaluation
(`~galcam.evaluation.load_truth`, `~galcam.evaluation.load_predictions`) check COCO data with
the functions of this module, so that a file is held to the same rules, with the same
messages, wherever galcam reads it (design notes, section 3):

- `check_coco_structure`: a JSON object with ``images`` and ``categories`` lists (and
  ``annotations``);
- `check_images`: ``images[]`` entries with unique integer ``id`` and positive integer
  ``width`` and ``height`` (and ``file_name``, ``ir_file_name`` for a data set);
- `check_categories`: ``categories[]`` entries with unique integer ``id`` and ``name``,
  names unique once compared as class names (`normalize_class_name`);
- `check_truth`: all of that and every annotation of a ground truth (ids, segmentation,
  area, bbox, iscrowd, keypoints), normalised for the evaluation;
- `segmentation_to_rle`, `check_bbox`, `check_keypoints`, `coco_id`, `rle_counts`: the
  checks of single values, shared with the COCO results of the evaluation.

Torch-free; pycocotools is imported where masks are made.
"""

import logging
import math
import numbers

import numpy as np

from .._validation import is_integer
from .classes import normalize_class_name

__all__ = [
    "DatasetError",
    "check_coco_structure",
    "check_images",
    "check_categories",
    "check_truth",
    "segmentation_to_rle",
    "check_bbox",
    "check_keypoints",
    "coco_id",
    "rle_counts",
]

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A data set that galcam cannot use; the message names the file and the problem."""


# ----------------------------------------------------------------------------- values


def rle_counts(counts):
    """Decode the compressed (LEB128-like) counts string of a COCO RLE.

    pycocotools' C decoder does not check that the run lengths add up to the
    image size; this pure-Python decoder lets galcam validate an RLE before
    handing it to pycocotools.

    Parameters
    ----------
    counts : str or bytes
        The ``counts`` entry of a compressed RLE.

    Returns
    -------
    runs : list of int
        Alternating run lengths, starting with a run of zeros.

    Raises
    ------
    ValueError
        If the string contains characters outside the RLE alphabet or ends in
        the middle of a number.
    """
    if isinstance(counts, bytes):
        try:
            counts = counts.decode("ascii")
        except UnicodeDecodeError as exc:
            raise ValueError("RLE counts are not ASCII") from exc
    runs = []
    pos = 0
    n = len(counts)
    while pos < n:
        value = 0
        shift = 0
        more = True
        while more:
            if pos >= n:
                raise ValueError("RLE counts string ends in the middle of a number")
            c = ord(counts[pos]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"RLE counts contain the invalid character {counts[pos]!r}")
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and (c & 0x10):
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def segmentation_to_rle(segmentation, height, width, where):
    """Any COCO segmentation as one checked compressed RLE.

    Parameters
    ----------
    segmentation : dict or list
        A compressed RLE (``counts`` a str or bytes), an uncompressed RLE (``counts`` a
        list of run lengths) or a list of polygons ``[x0, y0, x1, y1, ...]``.
    height, width : int
        The image's size, which the RLE's ``size`` must match.
    where : str
        Names the entry in error messages.

    Returns
    -------
    rle : dict
        ``{"size": [height, width], "counts": str}``.

    Raises
    ------
    DatasetError
        For a malformed RLE (run lengths that do not add up to the image, bad characters)
        or polygon.
    """
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, dict):
        size = segmentation.get("size")
        counts = segmentation.get("counts")
        if counts is None or size is None:
            raise DatasetError(f"{where}: an RLE segmentation needs 'size' and 'counts'")
        if (
            not isinstance(size, (list, tuple))
            or len(size) != 2
            or [int(s) for s in size] != [height, width]
        ):
            raise DatasetError(
                f"{where}: RLE size {size!r} does not match the image's [height, width] = "
                f"[{height}, {width}]"
            )
        if isinstance(counts, list):  # uncompressed RLE
            runs = counts
            if not all(isinstance(c, numbers.Integral) and c >= 0 for c in runs):
                raise DatasetError(
                    f"{where}: uncompressed RLE counts must be non-negative integers"
                )
            if sum(runs) != height * width:
                raise DatasetError(
                    f"{where}: RLE run lengths add up to {sum(runs)} pixels, expected "
                    f"{height}x{width} = {height * width}"
                )
            rle = mask_utils.frPyObjects({"size": [height, width], "counts": runs}, height, width)
        elif isinstance(counts, (str, bytes)):
            try:
                runs = rle_counts(counts)
            except ValueError as exc:
                raise DatasetError(f"{where}: bad RLE ({exc})") from exc
            if any(r < 0 for r in runs) or sum(runs) != height * width:
                raise DatasetError(
                    f"{where}: bad RLE: run lengths add up to {sum(runs)} pixels, expected "
                    f"{height}x{width} = {height * width}"
                )
            rle = {"size": [height, width], "counts": counts}
        else:
            raise DatasetError(f"{where}: RLE counts must be a string or a list of integers")
    elif isinstance(segmentation, list):
        if not segmentation:
            raise DatasetError(f"{where}: empty polygon list")
        try:
            polys = [np.asarray(p, dtype=float) for p in segmentation]
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{where}: polygons must be lists of numbers") from exc
        for p in polys:
            if p.ndim != 1 or p.size < 6 or p.size % 2 or not np.all(np.isfinite(p)):
                raise DatasetError(
                    f"{where}: each polygon must be a flat list [x0, y0, x1, y1, ...] of at "
                    "least 3 finite points"
                )
        rles = mask_utils.frPyObjects([p.tolist() for p in polys], height, width)
        rle = mask_utils.merge(rles)
    else:
        raise DatasetError(f"{where}: segmentation must be an RLE dict or a list of polygons")
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(height), int(width)], "counts": counts}


def check_keypoints(kp, where):
    """One host keypoint ``[x, y, v]`` (finite numbers) as ``[float, float, int]``."""
    if not isinstance(kp, (list, tuple)) or len(kp) != 3:
        raise DatasetError(
            f"{where}: keypoints must be [x, y, v] (one host per galaxy), got {kp!r}"
        )
    try:
        x, y, v = (float(k) for k in kp)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: keypoints must be numbers, got {kp!r}") from exc
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(v)):
        raise DatasetError(f"{where}: keypoints must be finite, got {kp!r}")
    return [x, y, int(v)]


def check_bbox(bbox, where):
    """A box ``[x, y, width, height]`` of finite numbers with a non-negative size."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise DatasetError(f"{where}: bbox must be [x, y, width, height], got {bbox!r}")
    try:
        vals = [float(b) for b in bbox]
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: bbox must be numbers, got {bbox!r}") from exc
    if not all(math.isfinite(b) for b in vals) or vals[2] < 0 or vals[3] < 0:
        raise DatasetError(f"{where}: bbox must be finite with non-negative size, got {bbox!r}")
    return vals


def coco_id(value, where):
    """An id of a COCO entry: an integer (a float with an integral value is accepted)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise DatasetError(f"{where} must be an integer, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- structure


def check_coco_structure(data, where, *, keys=("images", "categories", "annotations")):
    """Check that ``data`` is a COCO dictionary whose ``keys`` hold lists.

    Parameters
    ----------
    data : object
        The parsed JSON.
    where : str
        Names the file (or the data) in error messages.
    keys : tuple of str, optional
        The entries that must be present and be lists.

    Raises
    ------
    DatasetError
        For anything else.
    """
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: expected a COCO JSON object with 'images' and "
                           f"'categories', got {type(data).__name__}")
    for key in keys:
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{where}: missing or non-list '{key}' (the JSON has no "
                               f"'{key}' list)")


def check_images(images, where, *, file_names=False):
    """Check ``images[]``: objects with a unique integer ``id``, positive ``width``, ``height``.

    Parameters
    ----------
    images : list
        The ``images`` of a COCO dictionary. Ids are normalised to `int` in place.
    where : str
        Names the file in error messages.
    file_names : bool, optional
        Also require a non-empty ``file_name`` string and, if given, an ``ir_file_name``
        string (a data set whose files galcam reads).

    Returns
    -------
    images : dict
        Image id -> image entry.

    Raises
    ------
    DatasetError
        For the first entry that breaks the contract, or for an empty list.
    """
    out = {}
    for i, img in enumerate(images):
        w = f"{where}: images[{i}]"
        if not isinstance(img, dict):
            raise DatasetError(f"{w} is not an object")
        required = ("id", "file_name", "width", "height") if file_names else (
            "id", "width", "height")
        missing = [k for k in required if k not in img]
        if missing:
            raise DatasetError(f"{w} lacks {', '.join(missing)}")
        iid = coco_id(img["id"], f"{w}.id")
        if iid in out:
            raise DatasetError(f"{w}: duplicate image id {iid}")
        for dim in ("width", "height"):
            val = img[dim]
            if not is_integer(val) or val <= 0:
                raise DatasetError(f"{w}: '{dim}' must be a positive integer, got {val!r}")
        if file_names:
            name = img["file_name"]
            if not isinstance(name, str) or not name:
                raise DatasetError(f"{w}: 'file_name' must be a non-empty string, got {name!r}")
            ir = img.get("ir_file_name")
            if ir is not None and (not isinstance(ir, str) or not ir):
                raise DatasetError(f"{w}: 'ir_file_name' must be a non-empty string, got "
                                   f"{ir!r}")
        img["id"] = iid
        out[iid] = img
    if not out:
        raise DatasetError(f"{where}: 'images' is empty: the data set holds no images")
    return out


def check_categories(categories, where, *, allow_empty=False):
    """Check ``categories[]``: unique integer ``id``, ``name`` unique as a class name.

    Names are compared with `normalize_class_name` (case, spaces, hyphens and underscores
    ignored), so ``"FR-I"`` and ``"fr_i"`` in one file are an error: both name one class.

    Parameters
    ----------
    categories : list
        The ``categories`` of a COCO dictionary. Ids are normalised to `int` in place.
    where : str
        Names the file in error messages.
    allow_empty : bool, optional
        Accept an empty list.

    Returns
    -------
    categories : dict
        Category id -> category entry.

    Raises
    ------
    DatasetError
        For the first entry that breaks the contract, or for an empty list.
    """
    cats, names = {}, {}
    for i, cat in enumerate(categories):
        w = f"{where}: categories[{i}]"
        if not isinstance(cat, dict):
            raise DatasetError(f"{w} is not an object")
        if "id" not in cat or "name" not in cat:
            raise DatasetError(f"{w} must have an 'id' and a 'name'")
        cid = coco_id(cat["id"], f"{w}.id")
        try:
            key = normalize_class_name(cat["name"])
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{w}.name: {exc}") from None
        if cid in cats:
            raise DatasetError(f"{w}: duplicate category id {cid}")
        if key in names:
            raise DatasetError(
                f"{w}: category name {cat['name']!r} duplicates {names[key]!r}: both name the "
                f"class {names[key]} (names are compared ignoring case, spaces, hyphens and "
                "underscores)"
            )
        cat["id"] = cid
        cats[cid] = cat
        names[key] = cat["name"]
    if not cats and not allow_empty:
        raise DatasetError(f"{where}: 'categories' is empty")
    return cats


# ----------------------------------------------------------------------------- truth


def check_truth(data, where):
    """Check and normalise a COCO ground truth (the evaluation's input), in place.

    Parameters
    ----------
    data : dict
        The parsed JSON (a copy the caller may change).
    where : str
        Names the file in error messages.

    Returns
    -------
    data : dict
        ``data``, checked: every segmentation is a compressed RLE (``counts`` a str), every
        annotation has ``id``, ``area`` (as stored; the mask area in pixels when missing),
        ``bbox`` (from the mask when missing), ``iscrowd`` (default 0) and, when it has
        ``keypoints``, ``num_keypoints``. Extra keys are kept.

    Raises
    ------
    DatasetError
        For content that breaks the contract; the message names the entry.
    """
    from pycocotools import mask as mask_utils

    check_coco_structure(data, where)
    images = check_images(data["images"], where)
    cats = check_categories(data["categories"], where)

    used_ids = {a.get("id") for a in data["annotations"] if isinstance(a, dict)}
    next_id = max([a for a in used_ids if isinstance(a, numbers.Integral)] + [0]) + 1
    seen_ids = set()
    for i, ann in enumerate(data["annotations"]):
        w = f"{where}: annotations[{i}]"
        if not isinstance(ann, dict):
            raise DatasetError(f"{w} is not an object")
        iid = coco_id(ann.get("image_id"), f"{w}.image_id")
        if iid not in images:
            raise DatasetError(f"{w}: image_id {iid} is not in 'images'")
        cid = coco_id(ann.get("category_id"), f"{w}.category_id")
        if cid not in cats:
            raise DatasetError(f"{w}: category_id {cid} is not in 'categories'")
        ann["image_id"], ann["category_id"] = iid, cid
        if "id" in ann:
            aid = coco_id(ann["id"], f"{w}.id")
        else:
            aid = next_id
            next_id += 1
        if aid in seen_ids:
            raise DatasetError(f"{w}: duplicate annotation id {aid}")
        seen_ids.add(aid)
        ann["id"] = aid
        img = images[iid]
        if "segmentation" not in ann:
            raise DatasetError(f"{w}: missing 'segmentation'")
        ann["segmentation"] = segmentation_to_rle(ann["segmentation"], img["height"],
                                                  img["width"], w)
        if "area" in ann:
            area = ann["area"]
            if (
                isinstance(area, bool)
                or not isinstance(area, numbers.Real)
                or not math.isfinite(area)
                or area < 0
            ):
                raise DatasetError(f"{w}: 'area' must be a finite number >= 0, got {area!r}")
            ann["area"] = float(area)
        else:
            ann["area"] = float(mask_utils.area(ann["segmentation"]))
            log.debug("%s: no 'area'; using the mask area %.0f px^2", w, ann["area"])
        if "bbox" in ann:
            ann["bbox"] = check_bbox(ann["bbox"], w)
        else:
            ann["bbox"] = [float(b) for b in mask_utils.toBbox(ann["segmentation"])]
        ann["iscrowd"] = int(bool(ann.get("iscrowd", 0)))
        if ann.get("keypoints") is not None:
            ann["keypoints"] = check_keypoints(ann["keypoints"], w)
            ann["num_keypoints"] = int(ann["keypoints"][2] > 0)
        else:
            ann.pop("keypoints", None)
            ann["num_keypoints"] = 0
    if not any(not a["iscrowd"] for a in data["annotations"]):
        raise DatasetError(f"{where}: there are no (non-crowd) annotations to evaluate against")
    return data

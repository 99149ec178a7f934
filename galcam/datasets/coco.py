"""Reading radio-galaxy data sets in the COCO format.

The data set contract (see the design notes) is a COCO JSON file whose ``images[]`` name a
radio image (a FITS file, or a 3-channel PNG in the encoding of Gupta et al. 2023, section 3.1)
and optionally an infrared FITS image on any grid, whose ``categories[]`` name the classes
(``FR-I``, ``FR-II``, ``FR-X``, ``R``) and whose ``annotations[]`` hold one mask, bounding box
and infrared-host keypoint per radio galaxy.

Published data sets number their categories differently (the authors' code uses
1 = FR-II, 2 = FR-I, 3 = FR-X, 4 = R), so categories are always matched by *name*, never by
id or order. `CocoDataset` checks the whole file up front and fails with one clear error
instead of half-way through a training run.

For weak supervision (the paper's training uses image-level class labels only) the data set
offers `CocoDataset.image_level`, a `WeakLabelView` that holds image paths and image-level
labels and has no way of reaching masks, boxes or keypoints.
"""

import copy
import json
import logging
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from .._validation import readonly
from .classes import DEFAULT_CLASSES, normalize_class_name
from .contract import DatasetError, check_categories, check_coco_structure, check_images

__all__ = [
    "CocoDataset",
    "CocoImage",
    "ImageAnnotations",
    "WeakLabelView",
    "DatasetError",
    "DEFAULT_CLASSES",
    "normalize_class_name",
    "decode_rle",
]

log = logging.getLogger(__name__)

_PNG_SUFFIXES = (".png",)
_MAX_LISTED = 5  # how many offending items an error message lists
_LNG_PREFIXES = ("RA", "GLON", "ELON", "SLON", "HLON")
_LAT_NAMES = ("DEC", "GLAT", "ELAT", "SLAT", "HLAT")


def _listed(items):
    items = list(items)
    shown = ", ".join(str(i) for i in items[:_MAX_LISTED])
    if len(items) > _MAX_LISTED:
        shown += f", ... ({len(items)} in all)"
    return shown


@dataclass(frozen=True)
class CocoImage:
    """One image of a `CocoDataset`: paths, size and image-level labels.

    The record holds no masks, boxes or keypoints and no reference to its data set, so it can
    be handed to a weakly-supervised trainer without leaking pixel-level truth.

    Attributes
    ----------
    image_id : int
        The image's ``id`` in the JSON.
    file_name : str
        The radio image's ``file_name`` as written in the JSON.
    path : `pathlib.Path`
        The radio image (FITS or 3-channel PNG) on disk.
    ir_path : `pathlib.Path` or None
        The infrared FITS image (``ir_file_name``), if the JSON gives one.
    width, height : int
        Image size in pixels, as in the JSON (checked against the file).
    labels : `numpy.ndarray` or None
        Multi-hot image-level labels, float32 of length ``len(classes)``: 1 where the image
        holds at least one annotated galaxy of that class. `None` when the data set was read
        with ``load_annotations=False``.
    classes : tuple of str
        The class names that ``labels`` refers to.
    """

    image_id: int
    file_name: str
    path: Path
    ir_path: object
    width: int
    height: int
    labels: object
    classes: tuple

    @property
    def is_png(self):
        """True if the radio image is a 3-channel PNG in the paper's encoding."""
        return self.path.suffix.lower() in _PNG_SUFFIXES

    @property
    def label_names(self):
        """The class names whose image-level label is set (empty when labels are unknown)."""
        if self.labels is None:
            return ()
        return tuple(c for c, v in zip(self.classes, self.labels) if v > 0)

    def read_radio(self, **kwargs):
        """Read the radio FITS image with `galcam.io.read_image` (2-D data, WCS, unit, beam).

        Parameters
        ----------
        **kwargs
            Passed to `galcam.io.read_image` (``plane``, ``hdu``, ...).

        Returns
        -------
        image : `~astropy.nddata.NDData`
        """
        if self.is_png:
            raise DatasetError(
                f"image {self.image_id}: '{self.path}' is a PNG in the paper's encoding; "
                "use read_png() (PNG data sets carry no WCS)"
            )
        from galcam.io import read_image

        return read_image(self.path, **kwargs)

    def read_ir(self, **kwargs):
        """Read the infrared FITS image with `galcam.io.read_image`.

        Returns
        -------
        image : `~astropy.nddata.NDData`

        Raises
        ------
        DatasetError
            The JSON gives no ``ir_file_name`` for this image.
        """
        if self.ir_path is None:
            raise DatasetError(f"image {self.image_id}: the JSON gives no ir_file_name")
        from galcam.io import read_image

        return read_image(self.ir_path, **kwargs)

    def read_png(self):
        """Decode a 3-channel PNG in the paper's encoding.

        Returns
        -------
        radio01, ir01 : `numpy.ndarray`
            The pre-processed radio and infrared images, scaled to [0, 1], indexed ``[y, x]``.
        """
        if not self.is_png:
            raise DatasetError(
                f"image {self.image_id}: '{self.path}' is not a PNG; use read_radio()/read_ir()"
            )
        from galcam.preprocessing.png import read_paper_png

        return read_paper_png(self.path)


@dataclass(frozen=True)
class ImageAnnotations:
    """The pixel-level truth of one image (read only by evaluation and the baseline's tests).

    Attributes
    ----------
    image_id : int
    annotation_ids : tuple of int
    classes : tuple of str
        Class name of each annotation (in the data set's ``classes`` spelling).
    category_ids : tuple of int
        The JSON's category id of each annotation.
    masks : `numpy.ndarray`
        Boolean masks, shape (N, height, width), read-only.
    keypoints : `numpy.ndarray`
        Infrared host per annotation as (x, y, v) in 0-based pixels of the radio image,
        shape (N, 3); NaN where an annotation has no keypoint. Read-only.
    bboxes : `numpy.ndarray`
        COCO boxes (x, y, width, height) in pixels, shape (N, 4); NaN where absent. Read-only.
    iscrowd : tuple of bool
    """

    image_id: int
    annotation_ids: tuple
    classes: tuple
    category_ids: tuple
    masks: np.ndarray
    keypoints: np.ndarray
    bboxes: np.ndarray
    iscrowd: tuple

    def __len__(self):
        return len(self.annotation_ids)


def _stratified_split(keys, fractions, seed):
    """Assign items to splits, stratified by ``keys``, deterministically for a seed.

    Items of each stratum are shuffled with the seeded generator; the concatenated list
    (strata in sorted order) is then dealt out so that after every item each split holds
    as close to its fraction as possible. Every stratum therefore ends up split in the
    requested proportions to within one item, and so does the whole set.
    """
    rng = np.random.default_rng(seed)
    order = []
    by_key = {}
    for i, key in enumerate(keys):
        by_key.setdefault(key, []).append(i)
    for key in sorted(by_key):
        members = np.array(by_key[key])
        order.extend(members[rng.permutation(len(members))].tolist())
    fractions = np.asarray(fractions, dtype=float)
    assigned = np.zeros(len(fractions))
    out = [[] for _ in fractions]
    for j, i in enumerate(order, start=1):
        k = int(np.argmax(fractions * j - assigned))
        assigned[k] += 1
        out[k].append(i)
    return [sorted(o) for o in out]


def _check_fractions(fractions):
    try:
        fr = np.asarray(fractions, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"fractions must be a sequence of numbers, got {fractions!r}") from exc
    if fr.ndim != 1 or len(fr) == 0:
        raise ValueError(f"fractions must be a non-empty 1-D sequence, got {fractions!r}")
    if np.any(~np.isfinite(fr)) or np.any(fr < 0):
        raise ValueError(f"fractions must be finite and non-negative, got {fractions!r}")
    if not np.isclose(fr.sum(), 1.0, atol=1e-6):
        raise ValueError(f"fractions must sum to 1, got {fractions!r} (sum {fr.sum():g})")
    return fr


class WeakLabelView:
    """Image ids, paths and image-level labels of a data set, and nothing else.

    This is what a weakly-supervised trainer is given: it holds `CocoImage` records (paths,
    sizes, multi-hot class labels) but neither the annotations nor a reference to the data
    set they came from, so masks, boxes and keypoints cannot leak into training.

    Obtain one with `CocoDataset.image_level` (or `CocoDataset.weak_labels`).
    """

    def __init__(self, images, classes, source=None):
        self._images = tuple(images)
        self._classes = tuple(classes)
        self._source = source
        if any(img.labels is None for img in self._images):
            raise DatasetError(
                f"{self._where}: image-level labels are unknown (the data set was read with "
                "load_annotations=False)"
            )

    @property
    def _where(self):
        return f"'{self._source}'" if self._source else "<weak-label view>"

    @property
    def classes(self):
        """Class names, in the order of the label vectors."""
        return self._classes

    @property
    def image_ids(self):
        """Image ids, in data set order."""
        return tuple(img.image_id for img in self._images)

    @property
    def labels(self):
        """All image-level labels, float32 array of shape (N, n_classes)."""
        if not self._images:
            return np.zeros((0, len(self._classes)), dtype=np.float32)
        return np.stack([img.labels for img in self._images])

    def __len__(self):
        return len(self._images)

    def __getitem__(self, index):
        return self._images[index]

    def __iter__(self):
        return iter(self._images)

    def __repr__(self):
        return f"<WeakLabelView {self._where}: {len(self)} images, classes {self._classes}>"

    def split(self, fractions=(0.8, 0.1, 0.1), *, seed=0):
        """Split into disjoint views, stratified by image label; see `CocoDataset.split`."""
        fr = _check_fractions(fractions)
        keys = [tuple(img.labels.tolist()) for img in self._images]
        parts = _stratified_split(keys, fr, seed)
        return tuple(
            WeakLabelView([self._images[i] for i in idx], self._classes, self._source)
            for idx in parts
        )


class CocoDataset:
    """A radio-galaxy data set in the COCO format, checked up front.

    Parameters
    ----------
    annotation_file : str or path-like
        The COCO JSON file (see the data set contract in the documentation).
    image_dir : str or path-like, optional
        Folder that ``file_name`` and ``ir_file_name`` are relative to. Default: the JSON
        file's folder.
    classes : sequence of str or None, optional
        Class names, in the order used for label vectors. The JSON's categories are matched
        to them by normalised name (upper case, spaces, hyphens and underscores dropped), so
        ``"FR-I"``, ``"FR I"`` and ``"fr_i"`` are the same class. Default: galcam's
        `DEFAULT_CLASSES` (FR-I, FR-II, FR-X, R). `None`: the data set's own classes, the
        names of the JSON's ``categories`` in the order of their ids (e.g. FIRST's
        ``('FRI', 'FRII', 'Compact', 'Bent')``).
    load_annotations : bool, optional
        If False, ``annotations[]`` are not read at all (neither validated nor kept): use it
        for prediction, where truth must not be touched. Image-level labels are then `None`.

    Raises
    ------
    FileNotFoundError
        The JSON file does not exist.
    DatasetError
        Malformed JSON or structure, unknown or duplicate categories, duplicate image ids,
        missing image files, an image whose size does not match its ``width``/``height``,
        annotations naming unknown images or categories, keypoints outside the image, or no
        images at all. The message names the file and lists the first few offenders.

    Notes
    -----
    Items are `CocoImage` records (``ds[i]``, iteration); ``ds.annotations(image_id)`` returns
    the pixel-level truth of one image as `ImageAnnotations`.
    """

    def __init__(
        self, annotation_file, *, image_dir=None, classes=DEFAULT_CLASSES, load_annotations=True
    ):
        path = Path(annotation_file)
        if not path.exists():
            raise FileNotFoundError(f"'{path}': no such COCO JSON file")
        if path.is_dir():
            raise DatasetError(f"'{path}': is a directory, expected a COCO JSON file")
        try:
            with open(path, encoding="utf-8") as fh:
                coco = json.load(fh)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"'{path}': not valid JSON ({exc})") from exc
        image_dir = path.parent if image_dir is None else image_dir
        self._setup(coco, image_dir, classes, load_annotations, source=str(path), check_files=True)

    @classmethod
    def from_dict(
        cls, coco, *, image_dir, classes=DEFAULT_CLASSES, load_annotations=True, source=None
    ):
        """Build a data set from a COCO dictionary already in memory.

        Parameters
        ----------
        coco : dict
            A COCO dictionary (``images``, ``categories``, optional ``annotations``). It is
            deep-copied, so later changes to it do not affect the data set.
        image_dir : str or path-like
            Folder that the file names are relative to.
        classes, load_annotations
            As for `CocoDataset`.
        source : str, optional
            A name used in error messages.
        """
        self = cls.__new__(cls)
        self._setup(
            copy.deepcopy(coco),
            image_dir,
            classes,
            load_annotations,
            source=source,
            check_files=True,
        )
        return self

    # ------------------------------------------------------------------ construction
    def _setup(self, coco, image_dir, classes, load_annotations, *, source, check_files):
        self._source = source
        where = self._where
        if image_dir is None:
            raise ValueError("image_dir must be given")
        self._image_dir = Path(image_dir)
        self._load_annotations = bool(load_annotations)
        if classes is not None:
            self._classes = self._check_classes(classes)
        # the checks of the contract shared with the evaluation (galcam.datasets.contract)
        check_coco_structure(coco, where, keys=("images", "categories"))
        skip = ("images", "annotations", "categories")
        self._info = {k: v for k, v in coco.items() if k not in skip}
        self._categories_raw = coco["categories"]
        cats = check_categories(coco["categories"], where, allow_empty=classes is not None)
        if classes is None:  # the data set's own classes, in the order of the category ids
            self._classes = self._check_classes(tuple(cats[i]["name"] for i in sorted(cats)))
        self._cat_to_class = self._match_categories(coco["categories"])
        self._images_raw = check_images(coco["images"], where, file_names=True)
        if self._load_annotations:
            if "annotations" in coco:
                check_coco_structure(coco, where, keys=("annotations",))
            self._anns_by_image = self._check_annotations(coco.get("annotations", []))
        else:
            self._anns_by_image = None
        if check_files:
            self._check_files()
        self._build_records()

    @property
    def _where(self):
        return f"'{self._source}'" if self._source else "<COCO dict>"

    def _check_classes(self, classes):
        if isinstance(classes, str) or not classes:
            raise ValueError(f"classes must be a non-empty sequence of names, got {classes!r}")
        classes = tuple(classes)
        keys = [normalize_class_name(c) for c in classes]
        dup = [c for c, n in Counter(keys).items() if n > 1]
        if dup:
            raise ValueError(f"classes {classes!r} name the same class twice ({_listed(dup)})")
        self._class_keys = dict(zip(keys, classes))
        return classes

    def _match_categories(self, categories):
        """Category id -> class name (categories checked by `check_categories` first)."""
        where = self._where
        cat_to_class = {}
        unknown = []
        for cat in categories:
            key = normalize_class_name(cat["name"])
            if key not in self._class_keys:
                unknown.append(cat["name"])
                continue
            cat_to_class[cat["id"]] = self._class_keys[key]
        if unknown:
            raise DatasetError(
                f"{where}: unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                f"{_listed(repr(u) for u in unknown)}; expected names matching "
                f"{', '.join(self._classes)} (case, spaces, hyphens and underscores ignored)"
            )
        return cat_to_class

    def _check_annotations(self, anns):
        where = self._where
        by_image = {iid: [] for iid in self._images_raw}
        bad_image, bad_cat, bad_kp = [], [], []
        for i, ann in enumerate(anns):
            if not isinstance(ann, dict):
                raise DatasetError(f"{where}: annotations[{i}] is not an object")
            for key in ("image_id", "category_id"):
                if key not in ann:
                    raise DatasetError(f"{where}: annotations[{i}] has no '{key}'")
            aid = ann.get("id", i)
            iid = ann["image_id"]
            if iid not in by_image:
                bad_image.append(f"annotation {aid} -> image {iid!r}")
                continue
            if ann["category_id"] not in self._cat_to_class:
                bad_cat.append(f"annotation {aid} -> category {ann['category_id']!r}")
                continue
            kps = ann.get("keypoints")
            if kps:
                img = self._images_raw[iid]
                arr = np.asarray(kps, dtype=float)
                if arr.ndim != 1 or arr.size % 3:
                    raise DatasetError(
                        f"{where}: annotation {aid}: keypoints must be a flat list of (x, y, v) "
                        f"triplets, got {len(kps)} numbers"
                    )
                for x, y, v in arr.reshape(-1, 3):
                    if v > 0 and not (
                        -0.5 <= x <= img["width"] - 0.5 and -0.5 <= y <= img["height"] - 0.5
                    ):
                        bad_kp.append(
                            f"annotation {aid} (image {iid}, {img['width']}x{img['height']}): "
                            f"({x:g}, {y:g})"
                        )
            by_image[iid].append(ann)
        if bad_image:
            raise DatasetError(f"{where}: annotations name unknown images: {_listed(bad_image)}")
        if bad_cat:
            raise DatasetError(
                f"{where}: annotations name unknown category ids: {_listed(bad_cat)}"
            )
        if bad_kp:
            raise DatasetError(
                f"{where}: keypoints outside the image (0-based pixels): {_listed(bad_kp)}"
            )
        return by_image

    def _file_path(self, name):
        p = Path(name)
        return p if p.is_absolute() else self._image_dir / p

    def _check_files(self):
        where = self._where
        missing, wrong_size = [], []
        for iid, img in self._images_raw.items():
            path = self._file_path(img["file_name"])
            if not path.is_file():
                missing.append(str(path))
            else:
                shape = _image_shape(path, where)
                if shape != (img["height"], img["width"]):
                    wrong_size.append(
                        f"image {iid} '{path.name}' is {shape[1]}x{shape[0]} "
                        f"(JSON: {img['width']}x{img['height']})"
                    )
            ir = img.get("ir_file_name")
            if ir is not None and not self._file_path(ir).is_file():
                missing.append(str(self._file_path(ir)))
        if missing:
            raise DatasetError(
                f"{where}: {len(missing)} image file{'s' if len(missing) > 1 else ''} missing "
                f"under '{self._image_dir}': {_listed(missing)}"
            )
        if wrong_size:
            raise DatasetError(
                f"{where}: image sizes do not match the JSON's width x height: "
                f"{_listed(wrong_size)}"
            )

    def _build_records(self):
        records = []
        for iid in sorted(self._images_raw):
            img = self._images_raw[iid]
            ir = img.get("ir_file_name")
            records.append(
                CocoImage(
                    image_id=iid,
                    file_name=img["file_name"],
                    path=self._file_path(img["file_name"]),
                    ir_path=None if ir is None else self._file_path(ir),
                    width=int(img["width"]),
                    height=int(img["height"]),
                    labels=self._labels_for(iid),
                    classes=self._classes,
                )
            )
        self._records = tuple(records)
        self._index = {r.image_id: i for i, r in enumerate(records)}

    def _labels_for(self, iid):
        if self._anns_by_image is None:
            return None
        labels = np.zeros(len(self._classes), dtype=np.float32)
        for ann in self._anns_by_image[iid]:
            labels[self._classes.index(self._cat_to_class[ann["category_id"]])] = 1.0
        return readonly(labels)

    # ------------------------------------------------------------------ access
    @property
    def classes(self):
        """Class names, in the order of the label vectors."""
        return self._classes

    @property
    def categories(self):
        """The JSON's category ids by class name, e.g. ``{'FR-I': 2, 'FR-II': 1, ...}``.

        Only classes present in the JSON appear.
        """
        return {cls: cid for cid, cls in self._cat_to_class.items()}

    @property
    def image_dir(self):
        """Folder that image file names are relative to."""
        return self._image_dir

    @property
    def image_ids(self):
        """Image ids in ascending order (the order of ``ds[i]``)."""
        return tuple(r.image_id for r in self._records)

    @property
    def has_annotations(self):
        """Whether annotations were read (``load_annotations=True``)."""
        return self._anns_by_image is not None

    @property
    def is_png(self):
        """True if every radio image is a 3-channel PNG in the paper's encoding."""
        return all(r.is_png for r in self._records)

    def __len__(self):
        return len(self._records)

    def __getitem__(self, index):
        return self._records[index]

    def __iter__(self):
        return iter(self._records)

    def __repr__(self):
        return (
            f"<CocoDataset {self._where}: {len(self)} images, classes {self._classes}"
            f"{'' if self.has_annotations else ', annotations not loaded'}>"
        )

    def image(self, image_id):
        """The `CocoImage` with the given id."""
        try:
            return self._records[self._index[image_id]]
        except KeyError:
            raise KeyError(f"{self._where}: no image with id {image_id!r}") from None

    @property
    def labels(self):
        """Image-level labels of all images, float32 array (N, n_classes)."""
        if not self.has_annotations:
            raise DatasetError(f"{self._where}: annotations were not loaded")
        return np.stack([r.labels for r in self._records])

    def image_level(self):
        """A `WeakLabelView`: ids, paths and image-level labels, without any annotations."""
        if not self.has_annotations:
            raise DatasetError(
                f"{self._where}: image-level labels need the annotations "
                "(the data set was read with load_annotations=False)"
            )
        return WeakLabelView(self._records, self._classes, self._source)

    weak_labels = image_level

    def annotations(self, image_id):
        """The pixel-level truth of one image.

        Parameters
        ----------
        image_id : int

        Returns
        -------
        `ImageAnnotations`
            Masks decoded with `pycocotools.mask` (polygons, uncompressed or compressed RLE),
            class names, keypoints and boxes.
        """
        if not self.has_annotations:
            raise DatasetError(
                f"{self._where}: annotations were not loaded (load_annotations=False)"
            )
        rec = self.image(image_id)
        anns = self._anns_by_image[rec.image_id]
        masks = np.zeros((len(anns), rec.height, rec.width), dtype=bool)
        kps = np.full((len(anns), 3), np.nan)
        boxes = np.full((len(anns), 4), np.nan)
        for k, ann in enumerate(anns):
            masks[k] = _decode_segmentation(ann, rec, self._where)
            if ann.get("keypoints"):
                kps[k] = np.asarray(ann["keypoints"], dtype=float)[:3]
            if ann.get("bbox") is not None and len(ann["bbox"]) == 4:
                boxes[k] = np.asarray(ann["bbox"], dtype=float)
        return ImageAnnotations(
            image_id=rec.image_id,
            annotation_ids=tuple(ann.get("id", k) for k, ann in enumerate(anns)),
            classes=tuple(self._cat_to_class[a["category_id"]] for a in anns),
            category_ids=tuple(a["category_id"] for a in anns),
            masks=readonly(masks),
            keypoints=readonly(kps),
            bboxes=readonly(boxes),
            iscrowd=tuple(bool(a.get("iscrowd", 0)) for a in anns),
        )

    def to_coco_dict(self):
        """The data set as a COCO dictionary (a copy; only this data set's images).

        Annotations are included when they were loaded.
        """
        out = copy.deepcopy(self._info)
        out["images"] = [copy.deepcopy(self._images_raw[i]) for i in self.image_ids]
        out["categories"] = copy.deepcopy(self._categories_raw)
        if self.has_annotations:
            out["annotations"] = [
                copy.deepcopy(a) for i in self.image_ids for a in self._anns_by_image[i]
            ]
        return out

    def subset(self, image_ids):
        """A new data set holding only the given images (already validated, not re-checked)."""
        ids = list(image_ids)
        unknown = [i for i in ids if i not in self._index]
        if unknown:
            raise KeyError(f"{self._where}: no images with ids {_listed(unknown)}")
        new = CocoDataset.__new__(CocoDataset)
        new.__dict__.update(self.__dict__)
        new._images_raw = {i: self._images_raw[i] for i in sorted(set(ids))}
        if self._anns_by_image is not None:
            new._anns_by_image = {i: self._anns_by_image[i] for i in new._images_raw}
        new._build_records()
        return new

    def split(self, fractions=(0.8, 0.1, 0.1), *, seed=0):
        """Split into disjoint subsets (e.g. train/val/test), deterministically for a seed.

        When annotations are loaded the split is stratified by image-level label (every
        label combination is divided in the requested proportions, to within one image).

        Parameters
        ----------
        fractions : sequence of float
            Fraction of the images in each subset; non-negative, summing to 1.
        seed : int
            Seed of the shuffle; the same seed gives the same split.

        Returns
        -------
        subsets : tuple of `CocoDataset`
            One per fraction.
        """
        fr = _check_fractions(fractions)
        if self.has_annotations:
            keys = [tuple(r.labels.tolist()) for r in self._records]
        else:
            keys = [()] * len(self._records)
        parts = _stratified_split(keys, fr, seed)
        return tuple(self.subset([self._records[i].image_id for i in idx]) for idx in parts)


def _decode_segmentation(ann, rec, where):
    from pycocotools import mask as mask_utils

    seg = ann.get("segmentation")
    if seg is None or (isinstance(seg, list) and not seg):
        raise DatasetError(
            f"{where}: annotation {ann.get('id', '?')} (image {rec.image_id}) has no segmentation"
        )
    h, w = rec.height, rec.width
    if isinstance(seg, list):  # polygons
        rles = mask_utils.frPyObjects(seg, h, w)
        rle = mask_utils.merge(rles)
    elif isinstance(seg, dict) and "counts" in seg:
        if isinstance(seg["counts"], list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(seg, h, w)
        else:
            counts = seg["counts"]
            if isinstance(counts, str):
                counts = counts.encode()
            rle = {"size": seg["size"], "counts": counts}
        if list(rle["size"]) != [h, w]:
            raise DatasetError(
                f"{where}: annotation {ann.get('id', '?')}: RLE size {list(rle['size'])} does not "
                f"match image {rec.image_id} ({h}x{w})"
            )
    else:
        raise DatasetError(
            f"{where}: annotation {ann.get('id', '?')}: segmentation must be polygons or RLE"
        )
    return decode_rle(rle)


def decode_rle(rle):
    """Decode one COCO compressed RLE into a boolean mask.

    galcam's one RLE decoder, used by the data sets, the evaluation, the survey and
    `galcam.inference.rle_to_mask` (the same function). A thin wrapper of
    `pycocotools.mask.decode` that silences the ``__array__ ... copy`` DeprecationWarning
    that pycocotools 2.0 emits under numpy 2 (a harmless, known issue of its Cython code).

    Parameters
    ----------
    rle : dict
        ``{"size": [height, width], "counts": ...}`` with compressed ``counts`` as a str
        (the form in JSON files) or bytes.

    Returns
    -------
    mask : `numpy.ndarray`
        2-D ``bool`` array of shape ``(height, width)``, indexed ``[y, x]``.
    """
    from pycocotools import mask as mask_utils

    counts = rle["counts"]
    rle = {
        "size": list(rle["size"]),
        "counts": counts.encode() if isinstance(counts, str) else counts,
    }
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="__array__ implementation", category=DeprecationWarning
        )
        return mask_utils.decode([rle])[:, :, 0].astype(bool)


def _image_shape(path, where):
    """(height, width) of an image file, from its header only."""
    if path.suffix.lower() in _PNG_SUFFIXES:
        from PIL import Image

        try:
            with Image.open(path) as im:
                return (im.height, im.width)
        except OSError as exc:
            raise DatasetError(f"{where}: '{path}' is not a readable PNG ({exc})") from exc
    try:
        with fits.open(path, lazy_load_hdus=True) as hdul:
            for hdu in hdul:
                hdr = hdu.header
                if hdu.is_image and hdr.get("NAXIS", 0) >= 2:
                    naxis = hdr["NAXIS"]
                    ctypes = [str(hdr.get(f"CTYPE{i}", "")).upper() for i in range(1, naxis + 1)]
                    lng = next((i for i, c in enumerate(ctypes) if c.startswith(_LNG_PREFIXES)), 0)
                    lat = next(
                        (
                            i
                            for i, c in enumerate(ctypes)
                            if i != lng and c.split("-")[0] in _LAT_NAMES
                        ),
                        1 if lng == 0 else 0,
                    )
                    return (int(hdr[f"NAXIS{lat + 1}"]), int(hdr[f"NAXIS{lng + 1}"]))
    except OSError as exc:
        raise DatasetError(f"{where}: '{path}' is not a readable FITS file ({exc})") from exc
    raise DatasetError(f"{where}: '{path}' has no image HDU with 2 or more axes")

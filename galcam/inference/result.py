"""The result of a prediction: `Detection` and `SegmentationResult` (torch-free).

A `SegmentationResult` holds every galaxy that `~galcam.inference.WeakSegmenter` found in
one image. Masks are stored as bounding-box crops (a galaxy of 100 x 100 pixels in a
10 000 x 10 000 mosaic costs 10 kB, not 100 MB) and converted to COCO compressed RLE on
demand. Pixels are 0-based ``(x, y)`` in the frame of the image that was passed to the
segmenter; arrays are indexed ``[y, x]``.
"""

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_fraction, is_integer, readonly
from ..datasets.classes import normalize_class_name
from ..datasets.coco import decode_rle

__all__ = ["Detection", "SegmentationResult", "mask_to_rle", "crop_to_rle", "rle_to_mask",
           "category_ids"]


# ---------------------------------------------------------------------------------- RLE
def crop_to_rle(crop, x0, y0, shape):
    """COCO compressed RLE of a full-size mask given as a bounding-box crop.

    The runs of the full ``shape`` mask (column-major, as COCO counts pixels) are computed
    from the crop's pixels only, so a small galaxy in a huge mosaic never needs a full-size
    array; `pycocotools.mask.frPyObjects` compresses them.

    Parameters
    ----------
    crop : array-like of bool, shape (h, w)
        The mask inside its bounding box.
    x0, y0 : int
        0-based image pixel of the crop's pixel ``(0, 0)``; the crop must lie inside
        the image.
    shape : (int, int)
        ``(height, width)`` of the image.

    Returns
    -------
    rle : dict
        ``{"size": [height, width], "counts": str}`` (compressed counts as a str, the form
        written to JSON).
    """
    from pycocotools import mask as mask_utils

    crop = np.asarray(crop, dtype=bool)
    height, width = (int(v) for v in shape)
    h, w = crop.shape
    if x0 < 0 or y0 < 0 or x0 + w > width or y0 + h > height:
        raise ValueError(f"crop of shape {crop.shape} at ({x0}, {y0}) is not inside the image "
                         f"of shape {(height, width)}")
    cy, cx = np.nonzero(crop.T)[::-1]  # column-major order: sort by x, then y
    idx = (cx.astype(np.int64) + x0) * height + (cy.astype(np.int64) + y0)
    total = height * width
    if idx.size == 0:
        counts = [total]
    else:
        breaks = np.flatnonzero(np.diff(idx) > 1)
        starts = np.concatenate([[idx[0]], idx[breaks + 1]])
        ends = np.concatenate([idx[breaks] + 1, [idx[-1] + 1]])  # exclusive
        zeros = starts - np.concatenate([[0], ends[:-1]])
        ones = ends - starts
        counts = np.empty(2 * len(starts) + 1, dtype=np.int64)
        counts[0:-1:2] = zeros
        counts[1::2] = ones
        counts[-1] = total - ends[-1]
        counts = counts.tolist()
        if counts[-1] == 0:
            counts.pop()
    rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def mask_to_rle(mask):
    """COCO compressed RLE (counts as str) of a full-size boolean mask."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    return crop_to_rle(mask, 0, 0, mask.shape)


#: Decode a COCO compressed RLE to a boolean array ``[y, x]``: the same function as
#: `galcam.datasets.decode_rle` (galcam's one RLE decoder), kept under this name.
rle_to_mask = decode_rle


def category_ids(classes, categories=None):
    """Map class names to COCO category ids, matching by name.

    Parameters
    ----------
    classes : sequence of str
        The model's class names.
    categories : None, dict or list of dict, optional
        ``{name: id}``, or a COCO ``categories`` list of ``{"id", "name"}``. Names are
        matched ignoring case, spaces, hyphens and underscores (``"FR-I"`` = ``"fri"``).
        `None` numbers the classes 1, 2, ... in the model's order.

    Returns
    -------
    ids : dict
        Class name -> category id, for the classes that the categories name.
    """
    if categories is None:
        return {c: i + 1 for i, c in enumerate(classes)}
    if isinstance(categories, dict):
        pairs = list(categories.items())
    else:
        try:
            pairs = [(c["name"], c["id"]) for c in categories]
        except (TypeError, KeyError):
            raise ValueError("categories: expected a {name: id} dict or a COCO list of "
                             f"{{'id', 'name'}} dicts, got {categories!r}") from None
    by_key = {}
    for name, cid in pairs:
        if not is_integer(cid):
            raise ValueError(f"categories: the id of {name!r} must be an integer, got {cid!r}")
        try:
            by_key[normalize_class_name(name)] = int(cid)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"categories: category id {cid}: {exc}") from None
    keys = {c: normalize_class_name(c) for c in classes}
    return {c: by_key[k] for c, k in keys.items() if k in by_key}


# ---------------------------------------------------------------------------- detection
@dataclass(frozen=True, eq=False)  # holds arrays: compares by identity
class HostEvidence:
    """What the host finder needs for one detection, on the grid the network saw.

    Crops share the bounding box ``(x0, y0, h, w)`` on the *working* grid (the image's own
    grid, or the grid it was resampled to for the model).

    Attributes
    ----------
    x0, y0 : int
        Working-grid pixel of the crops' pixel (0, 0).
    mask : `~numpy.ndarray` of bool
        The detection's mask on the working grid.
    instance_map : `~numpy.ndarray` of float32
        The instance-wise CAM (class CAM times the displacement cluster, upsampled to
        full resolution; Gupta et al. 2023, section 3.2.3).
    ir : `~numpy.ndarray` of float32
        The pre-processed infrared channel (paper section 3.1), 0 without IR.
    radio : `~numpy.ndarray` of float32, optional
        The pre-processed radio channel (0 outside the > 3 sigma islands); needed by the
        ``'core'`` host method.
    """

    x0: int
    y0: int
    mask: np.ndarray = field(repr=False)
    instance_map: np.ndarray = field(repr=False)
    ir: np.ndarray = field(repr=False)
    radio: np.ndarray = field(default=None, repr=False)

    def __post_init__(self):
        shapes = {np.shape(self.mask), np.shape(self.instance_map), np.shape(self.ir)}
        if self.radio is not None:
            shapes.add(np.shape(self.radio))
        if len(shapes) != 1:
            raise ValueError(f"HostEvidence crops must have one shape, got {shapes}")
        for name in ("mask", "instance_map", "ir", "radio"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, readonly(np.ascontiguousarray(getattr(self, name))))


@dataclass(frozen=True, eq=False)  # holds arrays: compares by identity
class Detection:
    """One detected radio galaxy (immutable).

    Attributes
    ----------
    id : int
        Index in the result (detections are sorted by decreasing score).
    class_name : str
        The predicted class (one of the model's classes).
    class_index : int
        Index of ``class_name`` in the model's classes.
    score : float
        Score in [0, 1] that ranks the detections (not a calibrated probability). With the
        segmenter's default ``mask_mode='grouped'``: ``(1 - exp(-A / area_scale)) * (1 -
        exp(-(R - 1) / resolution_scale)) * (1 + p_c * m_c) / 2``, ``A`` the mask area in
        pixels, ``R`` the area over that of point sources of the islands' peak
        signal-to-noise, ``p_c`` the class probability and ``m_c`` the mean of the class's
        normalised CAM over the mask; with ``'islands'`` or
        ``'walk'``: ``p_c`` times the peak, inside the mask, of the galaxy's random-walk
        map normalised by the maximum over all maps of its tile (see the inference
        documentation).
    class_probabilities : tuple of float
        The galaxy's probability of every class of the model: they sum to one and the
        largest is ``class_name`` (the tile's classifier probabilities times the class
        CAMs' support over the galaxy, normalised;
        `galcam.inference.grouping.galaxy_class_probabilities`).
    bbox : tuple of int
        ``(x_min, y_min, width, height)`` of the mask, 0-based image pixels (COCO order).
    mask_crop : `~numpy.ndarray` of bool
        The mask inside ``bbox``: shape ``(height, width)``; read-only.
    centroid : tuple of float
        ``(x, y)`` mean position of the mask pixels (0-based image pixels).
    sky_centroid : `~astropy.coordinates.SkyCoord` or None
        The centroid on the sky (None for images without a WCS).
    host_x, host_y : float
        The infrared host (0-based image pixels, sub-pixel); NaN before hosts are found.
    host_sky : `~astropy.coordinates.SkyCoord` or None
    host_score : float
        In [0, 1], 0 for a fallback: with the default host rule ``'core'``
        ``exp(-d^2 / (2 * 3^2))``, ``d`` the host's distance in pixels of the network's
        grid from the radio centroid; with ``'paper'`` ``CAM * IR`` at the host over
        ``max(CAM) * max(IR)`` inside the mask (`galcam.inference.HostFinder`).
    host_fallback : bool or None
        True when no infrared source qualified and the host is the radio centroid
        (``'core'``) or the CAM peak (``'paper'``).
    tiles : tuple of int
        Indices of the tiles whose detections were merged into this one.
    evidence : `HostEvidence` or None
        The crops from which `~galcam.inference.HostFinder` locates the host (mask,
        instance-wise CAM and pre-processed infrared channel on the grid the network saw).
    """

    id: int
    class_name: str
    class_index: int
    score: float
    class_probabilities: tuple
    bbox: tuple
    mask_crop: np.ndarray = field(repr=False)
    centroid: tuple = (math.nan, math.nan)
    sky_centroid: object = field(default=None, repr=False)
    host_x: float = math.nan
    host_y: float = math.nan
    host_sky: object = field(default=None, repr=False)
    host_score: float = math.nan
    host_fallback: object = None
    tiles: tuple = ()
    evidence: object = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        crop = np.asarray(self.mask_crop, dtype=bool)
        if crop.shape != (self.bbox[3], self.bbox[2]):
            raise ValueError(f"mask_crop shape {crop.shape} does not match bbox {self.bbox}")
        object.__setattr__(self, "mask_crop", readonly(np.ascontiguousarray(crop)))

    @property
    def area(self):
        """Number of mask pixels."""
        return int(self.mask_crop.sum())

    @property
    def has_host(self):
        """Whether a host position was found."""
        return bool(np.isfinite(self.host_x) and np.isfinite(self.host_y))

    def mask(self, shape):
        """The full-size boolean mask for an image of ``shape`` ``(height, width)``."""
        out = np.zeros(shape, dtype=bool)
        x0, y0, w, h = self.bbox
        out[y0:y0 + h, x0:x0 + w] = self.mask_crop
        return out

    def rle(self, shape):
        """COCO compressed RLE of the mask in an image of ``shape`` (counts as str)."""
        x0, y0, _, _ = self.bbox
        return crop_to_rle(self.mask_crop, x0, y0, shape)


def _empty_skycoord():
    from astropy.coordinates import SkyCoord

    return SkyCoord([], [], unit="deg")


class SegmentationResult:
    """Every radio galaxy found in one image (immutable).

    Made by `~galcam.inference.WeakSegmenter`. ``len(result)`` is the number of
    detections, iteration yields the `Detection` objects (by decreasing score) and
    ``result[i]`` is the i-th one.

    Parameters
    ----------
    detections : sequence of `Detection`
    classes : sequence of str
        The model's classes (the order of ``class_probabilities``).
    shape : (int, int)
        ``(height, width)`` of the image.
    wcs : `~astropy.wcs.WCS` or None
        Celestial WCS of the image (None for PNG inputs).
    meta : dict, optional
        Provenance: model, device, tiles, resampling, timing.
    work_wcs : `~astropy.wcs.WCS` or None, optional
        WCS of the grid the model saw when the image was resampled to the model's pixel
        scale (None when the image was used on its own grid); host evidence lives there.
    """

    def __init__(self, detections, *, classes, shape, wcs=None, meta=None, work_wcs=None):
        dets = tuple(detections)
        for d in dets:
            if not isinstance(d, Detection):
                raise TypeError(f"detections: expected Detection objects, got {type(d).__name__}")
        self._detections = dets
        self._classes = tuple(classes)
        self._shape = (int(shape[0]), int(shape[1]))
        self._wcs = wcs
        self._meta = dict(meta or {})
        self._work_wcs = work_wcs

    # --- access ---------------------------------------------------------------------
    detections = property(lambda self: self._detections, doc="Tuple of `Detection`.")
    classes = property(lambda self: self._classes, doc="The model's class names.")
    shape = property(lambda self: self._shape, doc="``(height, width)`` of the image.")
    wcs = property(lambda self: self._wcs, doc="Celestial WCS of the image, or None.")
    work_wcs = property(lambda self: self._work_wcs,
                        doc="WCS of the resampled working grid, or None if not resampled.")
    meta = property(lambda self: dict(self._meta), doc="Provenance (a copy).")

    @property
    def resampled(self):
        """True when the image was resampled to the model's pixel scale for prediction."""
        return self._work_wcs is not None

    @property
    def has_hosts(self):
        """True when every detection carries a host position."""
        return all(d.has_host for d in self._detections)

    def __len__(self):
        return len(self._detections)

    def __iter__(self):
        return iter(self._detections)

    def __getitem__(self, index):
        return self._detections[index]

    def __bool__(self):
        return True  # an empty result is still a result

    def __repr__(self):
        counts = {}
        for d in self._detections:
            counts[d.class_name] = counts.get(d.class_name, 0) + 1
        what = ", ".join(f"{n} {c}" for c, n in counts.items()) or "no galaxies"
        return f"<SegmentationResult {self._shape[0]}x{self._shape[1]}: {what}>"

    def masks(self):
        """Full-size masks of all detections, bool array ``(n, height, width)``."""
        out = np.zeros((len(self), *self._shape), dtype=bool)
        for k, d in enumerate(self._detections):
            x0, y0, w, h = d.bbox
            out[k, y0:y0 + h, x0:x0 + w] = d.mask_crop
        return out

    def with_hosts(self, hosts):
        """A copy of the result whose detections carry the positions in ``hosts``.

        Parameters
        ----------
        hosts : `~galcam.inference.Hosts`
            One host per detection, in the result's order (from `~galcam.inference.HostFinder`).
        """
        if len(hosts) != len(self):
            raise ValueError(f"hosts: {len(hosts)} hosts for {len(self)} detections")
        dets = []
        for k, d in enumerate(self._detections):
            sky = None if hosts.skycoord is None else hosts.skycoord[k]
            dets.append(dataclasses.replace(
                d, host_x=float(hosts.x[k]), host_y=float(hosts.y[k]), host_sky=sky,
                host_score=float(hosts.score[k]), host_fallback=bool(hosts.fallback[k])))
        meta = dict(self._meta)
        meta["hosts"] = hosts.meta
        return SegmentationResult(dets, classes=self._classes, shape=self._shape,
                                  wcs=self._wcs, meta=meta, work_wcs=self._work_wcs)

    def select(self, *, score_threshold=0.0):
        """A copy holding only the detections with ``score >= score_threshold`` (ids kept)."""
        score_threshold = check_fraction(score_threshold, "score_threshold")
        keep = [d for d in self._detections if d.score >= score_threshold]
        return SegmentationResult(keep, classes=self._classes, shape=self._shape, wcs=self._wcs,
                                  meta=self._meta, work_wcs=self._work_wcs)

    # --- conversions ----------------------------------------------------------------------
    def to_coco(self, image_id, categories=None):
        """The detections in the COCO results format.

        Parameters
        ----------
        image_id : int
            The ``id`` of the image in the COCO data set.
        categories : None, dict or list of dict, optional
            Category ids by class name (see `category_ids`); default 1, 2, ... in the
            model's class order. Classes are matched by name, never by position.

        Returns
        -------
        results : list of dict
            One ``{"image_id", "category_id", "score", "segmentation", "bbox",
            "keypoints"}`` per detection: ``segmentation`` a compressed RLE (``counts``
            str), ``bbox`` ``[x, y, width, height]``, ``keypoints`` ``[x, y, 2]`` (the host
            in 0-based image pixels; ``[0, 0, 0]`` when no host is known).

        Raises
        ------
        ValueError
            A detected class has no category id.
        """
        if not is_integer(image_id):
            raise ValueError(f"image_id: expected an integer, got {image_id!r}")
        ids = category_ids(self._classes, categories)
        missing = sorted({d.class_name for d in self._detections} - set(ids))
        if missing:
            raise ValueError(f"categories: no category id for class(es) {missing}; the "
                             f"categories name {sorted(ids)}")
        out = []
        for d in self._detections:
            kp = ([float(d.host_x), float(d.host_y), 2] if d.has_host else [0.0, 0.0, 0])
            out.append({
                "image_id": int(image_id),
                "category_id": ids[d.class_name],
                "score": float(d.score),
                "segmentation": d.rle(self._shape),
                "bbox": [float(v) for v in d.bbox],
                "keypoints": kp,
            })
        return out

    def to_catalog(self, **kwargs):
        """The galaxies as a `~galcam.catalog.GalaxyCatalog` (table, regions, plot).

        Keyword arguments are passed to `~galcam.catalog.GalaxyCatalog`: ``radio`` and
        ``ir`` (the images this result was computed on, for fluxes, sizes and the plot),
        ``noise``, ``hosts``, ``ir_catalog``, ``match_radius``, ``meta``.
        """
        from galcam.catalog import GalaxyCatalog

        return GalaxyCatalog(self, **kwargs)

    def to_table(self, columns=None, **catalog_options):
        """The galaxies as a `~astropy.table.QTable`: the catalogue's table.

        ``result.to_table()`` is ``result.to_catalog(**catalog_options).to_table(columns)``:
        one schema whichever door a user comes in by (the columns of
        `galcam.catalog.CATALOG_COLUMNS`, with units and descriptions). Without the radio
        image (``radio=``) the flux densities are NaN; without a WCS the sky columns are
        left out.

        Parameters
        ----------
        columns : sequence of str, optional
            Columns to keep (default all).
        **catalog_options
            Passed to `to_catalog` (``radio``, ``ir``, ``noise``, ``meta`` ...).
        """
        return self.to_catalog(**catalog_options).to_table(columns)


def _jsonable(value):
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True

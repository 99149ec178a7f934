"""`GalaxyCatalog`: the astronomer-facing catalogue of a prediction (torch-free).

A `GalaxyCatalog` turns a `~galcam.inference.SegmentationResult` (masks, classes, scores,
hosts) and, optionally, the radio and infrared images it was computed on into physical
measurements with units (flux densities, sizes, position angles), sky positions, region
files and a figure. Columns are computed lazily, group by group, the first time a table
asks for them; column definitions live in `galcam.catalog.columns`.
"""

import functools
import logging
import math
import os
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import ICRS, SkyCoord
from astropy.nddata import NDData
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning

from galcam._validation import check_bool, check_quantity
from galcam.io import atomic_write, beam_pixels, pixel_solid_angle

from .columns import (
    BRIGHTNESS_UNIT,
    CATALOG_COLUMNS,
    MATCH_COLUMNS,
    class_column_name,
    column_definition,
)
from .regions import class_color, mask_polygons, write_region_file

__all__ = ["GalaxyCatalog", "TABLE_FORMATS", "TABLE_WRITERS", "mask_photometry",
           "table_format", "write_table"]

log = logging.getLogger(__name__)

#: Table formats of `GalaxyCatalog.write_table`, by file name suffix.
TABLE_FORMATS = {".ecsv": "ascii.ecsv", ".fits": "fits", ".fit": "fits", ".fts": "fits",
                 ".fits.gz": "fits", ".vot": "votable", ".votable": "votable",
                 ".xml": "votable"}
_FORMAT_ALIASES = {"ecsv": "ascii.ecsv", "ascii.ecsv": "ascii.ecsv", "fits": "fits",
                   "votable": "votable"}

#: Files written by `GalaxyCatalog.write`.
OUTPUT_FILES = {"table": "catalog.ecsv", "ds9": "galaxies.reg", "crtf": "galaxies.crtf",
                "figure": "overview.png"}

#: Galaxies closer than this (deg) to the Galactic plane are flagged (flag_galactic_plane).
GALACTIC_PLANE_DEG = 5.0

_ISLAND_SIGMA = 3.0
_ISLAND_PIXELS = 5
_ROUND_TOLERANCE = 1e-3  # relative difference of the second moments below which PA is NaN


def _check_image(image, name, *, shape=None):
    if image is None:
        return None
    if not isinstance(image, NDData):
        raise TypeError(f"{name}: expected an NDData from galcam.io.read_image, got "
                        f"{type(image).__name__}")
    data = np.asarray(image.data)
    if data.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D image, got data of shape {data.shape}")
    wcs = image.wcs
    if wcs is None or not getattr(wcs, "has_celestial", False):
        raise ValueError(f"{name}: the image has no celestial WCS (read it with "
                         "galcam.io.read_image)")
    if shape is not None and data.shape != tuple(shape):
        raise ValueError(f"{name}: the image has shape {data.shape} but the prediction was made "
                         f"on an image of shape {tuple(shape)}; pass the image the result was "
                         "computed on")
    return image


def _is_segmentation_result(obj):
    """Whether ``obj`` is a `~galcam.inference.SegmentationResult`, without importing it.

    The catalogue sits below galcam.inference (design notes, section 2) and must not import
    it. An instance exists only once its class's module has been imported, so the class is
    looked up among the loaded modules.
    """
    module = sys.modules.get("galcam.inference.result")
    return module is not None and isinstance(obj, module.SegmentationResult)


def _frame_name(wcs):
    """The sky frame of a WCS in words: ``icrs``, ``galactic``, ``fk5 (equinox J2000.000)``."""
    from astropy.wcs.utils import wcs_to_celestial_frame

    try:
        frame = wcs_to_celestial_frame(wcs.celestial)
    except ValueError:  # a frame astropy does not know: say what the header says
        return str(wcs.celestial.wcs.radesys or wcs.celestial.wcs.ctype[0])
    equinox = getattr(frame, "equinox", None)
    if equinox is None:
        return frame.name
    epoch = equinox.byear_str if frame.name == "fk4" else equinox.jyear_str
    return f"{frame.name} (equinox {epoch})"


def _chord_max(sky):
    """Largest great-circle distance between the points of a SkyCoord array (arcsec)."""
    xyz = np.asarray(sky.represent_as("unitspherical").to_cartesian().xyz.value).T
    if len(xyz) < 2:
        return 0.0
    diff = xyz[:, None, :] - xyz[None, :, :]
    chord = float(np.sqrt((diff**2).sum(axis=-1)).max())
    return math.degrees(2.0 * math.asin(min(1.0, chord / 2.0))) * 3600.0


def _las(crop, x0, y0, wcs):
    """Largest angular size (arcsec) of a mask crop: hull of its pixel corners on the sky."""
    from scipy import ndimage
    from scipy.spatial import ConvexHull

    edge = crop & ~ndimage.binary_erosion(crop, structure=np.ones((3, 3), bool),
                                          border_value=0)
    ey, ex = np.nonzero(edge)
    px = (ex[:, None] + np.array([-0.5, 0.5, 0.5, -0.5])).ravel()
    py = (ey[:, None] + np.array([-0.5, -0.5, 0.5, 0.5])).ravel()
    points = np.unique(np.column_stack([px, py]), axis=0)
    hull = points[ConvexHull(points).vertices]
    return _chord_max(wcs.pixel_to_world(hull[:, 0] + x0, hull[:, 1] + y0))


def _position_angle(crop, x0, y0, wcs):
    """Major-axis position angle (deg E of N in ICRS, [0, 180)) from second moments."""
    ys, xs = np.nonzero(crop)
    cx, cy = xs.mean(), ys.mean()
    dx, dy = xs - cx, ys - cy
    cov = np.array([[np.mean(dx * dx), np.mean(dx * dy)], [np.mean(dx * dy), np.mean(dy * dy)]])
    evals, evecs = np.linalg.eigh(cov)
    total = evals.sum()
    if total <= 0 or (evals[1] - evals[0]) / total < _ROUND_TOLERANCE:
        return math.nan
    vx, vy = evecs[:, 1]
    ends = wcs.pixel_to_world(np.array([cx - 0.5 * vx, cx + 0.5 * vx]) + x0,
                              np.array([cy - 0.5 * vy, cy + 0.5 * vy]) + y0).transform_to(ICRS())
    pa = ends[0].position_angle(ends[1]).to_value(u.deg)
    return float(pa % 180.0)


class GalaxyCatalog:
    """Catalogue of the radio galaxies of a prediction, with physical measurements.

    Immutable. Columns are computed lazily (group by group) the first time a table asks
    for them; see `galcam.catalog.columns` for every column's definition.

    Parameters
    ----------
    result : `~galcam.inference.SegmentationResult`
        The prediction.
    radio : `~astropy.nddata.NDData`, optional
        The radio image the prediction was made on (from `galcam.io.read_image`; same
        shape), in a brightness unit (Jy/beam or mJy/beam), with its beam in
        ``meta['beam']``. Needed for the peak and integrated flux densities, the local rms,
        the island count and the background of `plot`.
    ir : `~astropy.nddata.NDData`, optional
        The infrared image (any grid), shown by `plot`.
    noise : `~galcam.preprocessing.NoiseResult`, optional
        The noise of ``radio``. Default: ``NoiseEstimator()(radio)``, computed when first
        needed. With a noise map the local rms is the map at the mask centroid.
    hosts : `~galcam.inference.Hosts`, optional
        Host positions to attach to ``result`` (``result.with_hosts(hosts)``) when its
        detections do not carry them yet.
    ir_catalog : `~astropy.table.Table`, optional
        An infrared catalogue (e.g. AllWISE rows the user downloaded) to cross-match the
        hosts with; see `crossmatch`.
    match_radius : `~astropy.units.Quantity`, optional
        Cross-match radius (default 5 arcsec).
    ir_catalog_columns : sequence of str, optional
        Columns of ``ir_catalog`` copied for each matched source (as ``ir_<name>``).
    ir_id_column : str, optional
        Identifier column of ``ir_catalog`` (default: ``designation``, ``source_name``,
        ``id``..., whichever exists first).
    meta : dict, optional
        Extra provenance added to the table's ``meta`` (e.g. the COCO category ids);
        values other than str, int, float and bool are stored as JSON text.

    Notes
    -----
    Without ``radio`` the photometric columns are NaN and ``n_components`` counts the
    connected parts of the mask. Without a WCS (results of PNG inputs) the sky columns are
    left out, the angular columns are NaN, and `to_regions` and `plot` raise.
    """

    def __init__(self, result, *, radio=None, ir=None, noise=None, hosts=None, ir_catalog=None,
                 match_radius=5 * u.arcsec, ir_catalog_columns=None, ir_id_column=None,
                 meta=None):
        if not _is_segmentation_result(result):
            raise TypeError(f"result: expected a SegmentationResult, got {type(result).__name__}")
        if hosts is not None:
            result = result.with_hosts(hosts)
        self._result = result
        self._radio = _check_image(radio, "radio", shape=result.shape)
        self._ir = _check_image(ir, "ir")
        self._wcs = result.wcs if result.wcs is not None else (
            radio.wcs.celestial if radio is not None else None)
        if self._radio is not None:
            unit = self._radio.unit
            if unit is None or not u.Unit(unit).is_equivalent(BRIGHTNESS_UNIT):
                raise u.UnitsError(f"radio: expected a brightness in Jy/beam (or mJy/beam), the "
                                   f"image is in {unit!r}; read it with "
                                   "galcam.io.read_image(..., unit='Jy/beam') if its header "
                                   "lacks BUNIT")
            if result.wcs is not None:
                self._check_same_grid(self._radio.wcs)
            if (self._radio.meta or {}).get("beam") is None:
                warnings.warn("the radio image has no beam (BMAJ/BMIN): the integrated flux "
                              "densities (total_flux) are NaN", AstropyUserWarning, stacklevel=2)
        if noise is not None:
            from galcam.preprocessing import NoiseResult

            if not isinstance(noise, NoiseResult):
                raise TypeError(f"noise: expected a NoiseResult (from NoiseEstimator), got "
                                f"{type(noise).__name__}")
            if self._radio is None:
                raise ValueError("noise: given without the radio image it was measured on "
                                 "(pass radio= too)")
            if noise.has_maps and noise.shape != result.shape:
                raise ValueError(f"noise: maps of shape {noise.shape} do not match the image "
                                 f"shape {result.shape}")
            if not noise.unit.is_equivalent(self._radio.unit):
                raise u.UnitsError(f"noise: in {noise.unit}, the radio image in "
                                   f"{self._radio.unit}")
        self._noise_given = noise
        self._match_radius = check_quantity(match_radius, "match_radius", u.arcsec)
        self._ir_catalog = None
        self._ir_columns = ()
        self._ir_id_column = None
        if ir_catalog is not None:
            from .crossmatch import catalog_positions, find_id_column

            catalog_positions(ir_catalog)  # validates the table and its position columns
            cols = () if ir_catalog_columns is None else tuple(ir_catalog_columns)
            missing = [c for c in cols if c not in ir_catalog.colnames]
            if missing:
                raise ValueError(f"ir_catalog_columns: {missing} not in the infrared catalogue "
                                 f"(columns: {ir_catalog.colnames})")
            if ir_id_column is not None and ir_id_column not in ir_catalog.colnames:
                raise ValueError(f"ir_id_column: the infrared catalogue has no column "
                                 f"{ir_id_column!r}")
            self._ir_catalog = ir_catalog
            self._ir_columns = cols
            self._ir_id_column = ir_id_column or find_id_column(ir_catalog)
        elif ir_catalog_columns is not None or ir_id_column is not None:
            raise ValueError("ir_catalog_columns / ir_id_column given without ir_catalog")
        if meta is not None and not isinstance(meta, dict):
            raise TypeError(f"meta: expected a dict, got {type(meta).__name__}")
        self._extra_meta = {str(k): _meta_value(v) for k, v in (meta or {}).items()}
        self._created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._frozen = True

    def __setattr__(self, name, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"GalaxyCatalog is immutable: cannot set {name!r} (make a new "
                                 "catalogue, e.g. with crossmatch())")
        super().__setattr__(name, value)

    def _check_same_grid(self, wcs):
        h, w = self._result.shape
        x = np.array([0.0, w - 1.0, 0.5 * (w - 1)])
        y = np.array([0.0, h - 1.0, 0.5 * (h - 1)])
        mine = self._result.wcs.pixel_to_world(x, y)
        theirs = wcs.celestial.pixel_to_world(x, y)
        sep = mine.separation(theirs).max()
        from astropy.wcs.utils import proj_plane_pixel_scales

        scale = float(np.min(proj_plane_pixel_scales(self._result.wcs.celestial))) * u.deg
        if not sep <= 0.5 * scale:
            raise ValueError(f"radio: the image's WCS differs from the prediction's by "
                             f"{sep.to(u.arcsec):.3g}; pass the image the result was computed on")

    # --- access -----------------------------------------------------------------------
    result = property(lambda self: self._result, doc="The `SegmentationResult`.")
    radio = property(lambda self: self._radio, doc="The radio image, or None.")
    ir = property(lambda self: self._ir, doc="The infrared image, or None.")
    wcs = property(lambda self: self._wcs, doc="Celestial WCS of the radio grid, or None.")
    ir_catalog = property(lambda self: self._ir_catalog,
                          doc="The infrared catalogue cross-matched, or None.")
    match_radius = property(lambda self: self._match_radius, doc="Cross-match radius.")

    def __len__(self):
        return len(self._result)

    def __repr__(self):
        inputs = [n for n, v in (("radio", self._radio), ("ir", self._ir),
                                 ("ir_catalog", self._ir_catalog)) if v is not None]
        return (f"<GalaxyCatalog: {len(self)} galaxies"
                + (f" ({', '.join(inputs)})" if inputs else "") + ">")

    @property
    def classes(self):
        """The model's class names."""
        return self._result.classes

    @functools.cached_property
    def noise(self):
        """The `~galcam.preprocessing.NoiseResult` of the radio image (None without it)."""
        if self._noise_given is not None:
            return self._noise_given
        if self._radio is None:
            return None
        from galcam.preprocessing import NoiseEstimator

        return NoiseEstimator()(self._radio)

    @functools.cached_property
    def islands(self):
        """Radio islands above 3 sigma (at least 5 pixels), or None without a radio image."""
        if self._radio is None:
            return None
        from galcam.preprocessing import find_islands

        return find_islands(self._radio, self.noise, n_sigma=_ISLAND_SIGMA,
                            n_pixels=_ISLAND_PIXELS)

    # --- column groups ------------------------------------------------------------------
    def _pixel_to_sky(self, x, y):
        return self._wcs.pixel_to_world(np.asarray(x, float), np.asarray(y, float))

    @functools.cached_property
    def _group_detection(self):
        dets = self._result.detections
        n = len(dets)
        ncls = len(self.classes)
        width = max([len(c) for c in self.classes] + [1])
        cols = {"id": np.array([d.id for d in dets], dtype=np.int64),
                "class": np.array([d.class_name for d in dets], dtype=f"U{width}"),
                "score": np.array([d.score for d in dets], dtype=np.float64)}
        probs = np.array([d.class_probabilities for d in dets], dtype=np.float64)
        probs = probs.reshape(n, ncls)
        for k, c in enumerate(self.classes):
            cols[class_column_name(c)] = probs[:, k]
        xc = np.empty(n)
        yc = np.empty(n)
        for k, d in enumerate(dets):
            cx, cy = d.centroid
            if not (np.isfinite(cx) and np.isfinite(cy)):
                ys, xs = np.nonzero(d.mask_crop)
                cx, cy = xs.mean() + d.bbox[0], ys.mean() + d.bbox[1]
            xc[k], yc[k] = cx, cy
        cols["xcentroid"] = xc
        cols["ycentroid"] = yc
        plane = np.zeros(n, dtype=bool)
        if self._wcs is not None:
            cols["sky_centroid"] = sky = self._pixel_to_sky(xc, yc)
            if n:
                plane = np.abs(sky.galactic.b.deg) < GALACTIC_PLANE_DEG
        cols["flag_galactic_plane"] = plane
        box = np.array([d.bbox for d in dets], dtype=np.int64).reshape(n, 4)
        cols["bbox_xmin"] = box[:, 0]
        cols["bbox_xmax"] = box[:, 0] + box[:, 2] - 1
        cols["bbox_ymin"] = box[:, 1]
        cols["bbox_ymax"] = box[:, 1] + box[:, 3] - 1
        return cols

    @functools.cached_property
    def _group_host(self):
        dets = self._result.detections
        hx = np.array([d.host_x for d in dets], dtype=np.float64)
        hy = np.array([d.host_y for d in dets], dtype=np.float64)
        cols = {"host_x": hx, "host_y": hy}
        if self._wcs is not None:
            cols["host_sky"] = self._pixel_to_sky(hx, hy)
        has = np.isfinite(hx) & np.isfinite(hy)
        cols["host_score"] = np.where(
            has, np.array([d.host_score for d in dets], dtype=np.float64), np.nan)
        cols["host_fallback"] = np.array([bool(d.host_fallback) or not h
                                          for d, h in zip(dets, has)], dtype=bool)
        return cols

    @functools.cached_property
    def _group_geometry(self):
        dets = self._result.detections
        n = len(dets)
        area = np.full(n, np.nan)
        las = np.full(n, np.nan)
        pa = np.full(n, np.nan)
        if self._wcs is not None:
            pix_area = pixel_solid_angle(self._wcs).to_value(u.arcsec**2)
            for k, d in enumerate(dets):
                x0, y0 = d.bbox[0], d.bbox[1]
                area[k] = d.area * pix_area
                if d.area:
                    las[k] = _las(d.mask_crop, x0, y0, self._wcs)
                    pa[k] = _position_angle(d.mask_crop, x0, y0, self._wcs)
        else:
            log.info("the result has no WCS: area, las and pa are NaN")
        return {"area": area * u.arcsec**2, "las": las * u.arcsec, "pa": pa * u.deg}

    @functools.cached_property
    def _beam_pixels(self):
        """Beam solid angle in pixels, or None when there is no beam (warned about when the
        catalogue was made)."""
        beam = (self._radio.meta or {}).get("beam")
        return None if beam is None else beam_pixels(beam, self._wcs)

    @functools.cached_property
    def _group_photometry(self):
        dets = self._result.detections
        n = len(dets)
        peak = np.full(n, np.nan)
        total = np.full(n, np.nan)
        rms = np.full(n, np.nan)
        if self._radio is not None:
            data = self._radio.data
            scale = u.Unit(self._radio.unit).to(BRIGHTNESS_UNIT)  # image unit -> mJy/beam
            beam_pix = self._beam_pixels if n else None
            noise = self.noise
            xc = self._group_detection["xcentroid"]
            yc = self._group_detection["ycentroid"]
            local = noise.rms_at(xc, yc).to_value(self._radio.unit) if n else np.zeros(0)
            crops = [(d.bbox[0], d.bbox[1], d.mask_crop) for d in dets]
            peak, total = (q.value for q in mask_photometry(
                data, self._radio.unit, crops, beam_pixels=beam_pix))
            rms = np.asarray(local, dtype=np.float64) * scale
        else:
            log.info("no radio image: peak_flux, total_flux and local_rms are NaN")
        return {"peak_flux": peak * BRIGHTNESS_UNIT, "total_flux": total * u.mJy,
                "local_rms": rms * BRIGHTNESS_UNIT}

    @functools.cached_property
    def _group_components(self):
        from scipy import ndimage

        dets = self._result.detections
        counts = np.zeros(len(dets), dtype=np.int64)
        islands = self.islands
        seg = None
        if islands is not None and islands.segment_image is not None:
            seg = islands.segment_image.data
        for k, d in enumerate(dets):
            x0, y0, w, h = d.bbox
            if islands is not None:
                if seg is not None:
                    labels = seg[y0:y0 + h, x0:x0 + w][d.mask_crop]
                    counts[k] = np.count_nonzero(np.unique(labels))
            else:
                counts[k] = ndimage.label(d.mask_crop, structure=np.ones((3, 3), bool))[1]
        return {"n_components": counts}

    @functools.cached_property
    def _group_match(self):
        from .crossmatch import match_positions

        host = self._group_host
        if "host_sky" not in host:
            raise ValueError("cross-matching needs sky positions: the result has no WCS")
        return match_positions(host["host_sky"], self._ir_catalog, radius=self._match_radius,
                               id_column=self._ir_id_column, columns=self._ir_columns)

    # --- tables ----------------------------------------------------------------------------
    @property
    def colnames(self):
        """Names of all columns `to_table` can give, in table order."""
        names = []
        for col in CATALOG_COLUMNS:
            if col.name == "prob_<class>":
                names += [class_column_name(c) for c in self.classes]
            elif col.dtype == "skycoord" and self._wcs is None:
                continue
            else:
                names.append(col.name)
        if self._ir_catalog is not None:
            names += [c.name for c in MATCH_COLUMNS if not c.is_template]
            names += [f"ir_{c}" for c in self._ir_columns]
        return names

    def _column(self, name):
        group = column_definition(name).group
        return getattr(self, f"_group_{group}")[name]

    @property
    def meta(self):
        """Provenance recorded in the table's ``meta`` (a new dict)."""
        rm = self._result.meta
        radio_file = ""
        if self._radio is not None:
            radio_file = (self._radio.meta or {}).get("filename") or ""
        meta = {
            "galcam_version": _galcam_version(),
            "date_created": self._created,
            "model_name": rm.get("model", ""),
            "model_sha256": rm.get("model_sha256", rm.get("sha256", "")),
            "model_classes": ",".join(self.classes),
            "class_threshold": rm.get("class_threshold", ""),
            "score_threshold": rm.get("score_threshold", ""),
            "compute_device": rm.get("device", ""),
            "radio_image_file": str(radio_file or rm.get("input", "")),
            "ir_image_file": str(((self._ir.meta or {}).get("filename") or "")
                                 if self._ir is not None else ""),
            "image_height": int(self._result.shape[0]),
            "image_width": int(self._result.shape[1]),
            "sky_frame": _frame_name(self._wcs) if self._wcs is not None else "",
            "noise_method": getattr(self.__dict__.get("noise", self._noise_given), "method", ""),
            "island_threshold_sigma": _ISLAND_SIGMA,
        }
        if self._ir_catalog is not None:
            meta["ir_catalog_rows"] = len(self._ir_catalog)
            meta["match_radius_arcsec"] = float(self._match_radius.to_value(u.arcsec))
        meta = {k: _meta_value(v) for k, v in meta.items()}
        meta.update(self._extra_meta)
        return meta

    def to_table(self, columns=None, *, skycoord=True):
        """The catalogue as a `~astropy.table.QTable`, one row per galaxy.

        Parameters
        ----------
        columns : sequence of str, optional
            Columns to include, in this order (default: all of `colnames`). Only the
            measurements these columns need are computed.
        skycoord : bool, optional
            True (default): sky positions are `~astropy.coordinates.SkyCoord` columns.
            False: each is split into ``<name>_ra`` and ``<name>_dec`` columns (deg, ICRS),
            for formats and tools that do not understand SkyCoord (VOTable, pandas).

        Returns
        -------
        table : `~astropy.table.QTable`
            With a unit and a description for every column (see `galcam.catalog.columns`)
            and the provenance in ``meta`` (galcam version, model name and sha256,
            thresholds, device, input files, date). An empty result gives a table with the
            same columns and no rows, with an `~astropy.utils.exceptions.AstropyUserWarning`.
        """
        available = self.colnames
        if columns is None:
            names = available
        else:
            if isinstance(columns, str):
                columns = [columns]
            names = list(columns)
            unknown = [c for c in names if c not in available]
            if unknown:
                raise ValueError(f"columns: unknown column(s) {unknown}; available: {available}")
        if len(self) == 0:
            warnings.warn("the prediction found no galaxies: the catalogue table is empty",
                          AstropyUserWarning, stacklevel=2)
        table = QTable()
        for name in names:
            values = self._column(name)
            definition = column_definition(name)
            if isinstance(values, SkyCoord) and not skycoord:
                icrs = values.transform_to(ICRS())
                for part, angle in (("ra", icrs.ra), ("dec", icrs.dec)):
                    table[f"{name}_{part}"] = u.Quantity(angle.deg, u.deg)
                    table[f"{name}_{part}"].info.description = (
                        f"{'Right ascension' if part == 'ra' else 'Declination'} (ICRS) of "
                        f"{name}: " + definition.description)
                continue
            table[name] = values
            table[name].info.description = self._describe(name, definition)
        table.meta.update(self.meta)  # after the columns: records the noise method used
        return table

    def write_table(self, path, *, format=None, columns=None, overwrite=False):
        """Write the catalogue table to ECSV, FITS or VOTable, atomically.

        Parameters
        ----------
        path : str or path-like
            Output file; the format follows the suffix (``.ecsv``, ``.fits``, ``.vot`` or
            ``.xml``) unless ``format`` is given.
        format : {"ascii.ecsv", "fits", "votable"}, optional
        columns : sequence of str, optional
            Columns to write (default all; see `to_table`).
        overwrite : bool, optional
            Replace an existing file (default: raise `FileExistsError`).

        Notes
        -----
        ECSV keeps everything (SkyCoord columns, units, descriptions, meta). FITS keeps
        SkyCoord columns (astropy's mixin serialisation) and writes the meta as header
        keywords (HIERARCH for names longer than 8 characters; FITS upper-cases shorter
        ones). VOTable has no SkyCoord columns: they are written as ``<name>_ra`` and
        ``<name>_dec`` (deg, ICRS), and the provenance as ``INFO`` elements of the table.
        """
        path = Path(path)
        fmt = table_format(path, format)
        if os.path.lexists(path) and not overwrite:
            raise FileExistsError(f"'{path}': exists already (pass overwrite=True to replace it)")
        table = self.to_table(columns, skycoord=fmt != "votable")
        write_table(table, path, format=fmt, overwrite=True)
        log.info("wrote %d galaxies to %s (%s)", len(table), path, fmt)
        return path

    # --- regions --------------------------------------------------------------------------
    def _require_wcs(self, what):
        if self._wcs is None:
            raise ValueError(f"{what} needs sky coordinates, but the result has no WCS "
                             "(predictions on PNG images)")

    @functools.cached_property
    def _polygons(self):
        """Per detection: list of `~regions.PolygonSkyRegion` (largest part first)."""
        self._require_wcs("to_regions")
        return [mask_polygons(d.mask_crop, self._wcs, origin=d.bbox[:2])
                for d in self._result.detections]

    def to_regions(self, *, include_hosts=True, colors=None):
        """The galaxy masks and hosts as `~regions.Regions` in sky coordinates.

        Parameters
        ----------
        include_hosts : bool, optional
            Add a point (``x`` marker) at each host position (default True).
        colors : dict, optional
            Colour by class name, overriding the defaults (FR-I red, FR-II blue, FR-X green,
            R magenta; other classes cyan).

        Returns
        -------
        regions : `~regions.Regions`
            For each galaxy one `~regions.PolygonSkyRegion` per connected part of its mask
            (see `galcam.catalog.mask_polygons`; holes are not represented), the largest
            labelled ``"FR-II 0.93 #3"`` (class, score, id) and the others ``"#3"``, all
            tagged with the class and ``galaxy <id>``; then a `~regions.PointSkyRegion` for
            the host, when there is one.
        """
        import copy

        from regions import PointSkyRegion, RegionMeta, Regions, RegionVisual

        self._require_wcs("to_regions")
        include_hosts = check_bool(include_hosts, "include_hosts")
        _check_colors(colors)
        host = self._group_host
        out = []
        for k, (d, polys) in enumerate(zip(self._result.detections, self._polygons)):
            color = class_color(d.class_name, colors)
            tags = [d.class_name, f"galaxy {d.id}"]
            for j, poly in enumerate(polys):
                poly = copy.deepcopy(poly)
                label = f"{d.class_name} {d.score:.2f} #{d.id}" if j == 0 else f"#{d.id}"
                poly.meta = RegionMeta({"text": label, "label": label, "tag": tags})
                poly.visual = RegionVisual({"color": color, "linewidth": 1})
                out.append(poly)
            if include_hosts and np.isfinite(host["host_x"][k]):
                out.append(PointSkyRegion(
                    host["host_sky"][k], meta=RegionMeta({"tag": tags}),
                    visual=RegionVisual({"color": color, "marker": "x", "symbol": "x",
                                         "linewidth": 1})))
        return Regions(out)

    def write_regions(self, path, format="ds9", *, overwrite=False, include_hosts=True,
                      colors=None):
        """Write `to_regions` to a DS9 (``.reg``) or CRTF (``.crtf``) file, atomically.

        Parameters
        ----------
        path : str or path-like
        format : {"ds9", "crtf"}, optional
            ``"ds9"`` (ICRS; opens in DS9 and CARTA) or ``"crtf"`` (ICRS; CASA and
            CARTA). See `galcam.catalog.serialize_regions`.
        overwrite : bool, optional
            Replace an existing file (default: raise `FileExistsError`).
        include_hosts, colors
            As for `to_regions`.

        Returns
        -------
        path : `~pathlib.Path`
        """
        regions = self.to_regions(include_hosts=include_hosts, colors=colors)
        return write_region_file(regions, path, format, overwrite=overwrite)

    # --- figure and files -----------------------------------------------------------------
    def plot(self, *, ax=None, show_ir=True, colors=None):
        """A figure of the radio image (and the infrared image) with masks and hosts.

        See `galcam.catalog.plot_catalog`.

        Returns
        -------
        fig : `~matplotlib.figure.Figure`
        """
        from .plotting import plot_catalog

        return plot_catalog(self, ax=ax, show_ir=show_ir, colors=colors)

    def write(self, outdir, *, overwrite=False):
        """Write ``catalog.ecsv``, ``galaxies.reg``, ``galaxies.crtf`` and ``overview.png``.

        Every file is written atomically. Nothing is written when one of the four exists
        already and ``overwrite`` is False.

        Parameters
        ----------
        outdir : str or path-like
            Output folder (created if needed).
        overwrite : bool, optional
            Replace existing files.

        Returns
        -------
        paths : dict
            ``{"table", "ds9", "crtf", "figure"}`` -> `~pathlib.Path`.

        Raises
        ------
        FileExistsError
            One of the files exists and ``overwrite`` is False.
        """
        outdir = Path(outdir)
        paths = {key: outdir / name for key, name in OUTPUT_FILES.items()}
        existing = [str(p) for p in paths.values() if os.path.lexists(p)]
        if existing and not overwrite:
            raise FileExistsError(f"{', '.join(existing)}: exist(s) already (pass "
                                  "overwrite=True to replace)")
        if outdir.exists() and not outdir.is_dir():
            raise NotADirectoryError(f"'{outdir}': is not a folder")
        self.write_table(paths["table"], overwrite=True)
        if self._wcs is not None:
            self.write_regions(paths["ds9"], "ds9", overwrite=True)
            self.write_regions(paths["crtf"], "crtf", overwrite=True)
            fig = self.plot()
            # a tight box: constrained layout leaves the WCSAxes titles partly outside
            atomic_write(paths["figure"], lambda tmp: fig.savefig(
                tmp, format="png", dpi=150, bbox_inches="tight", pad_inches=0.1))
        else:
            log.warning("the result has no WCS: region files and the overview figure are "
                        "not written")
            paths = {"table": paths["table"]}
        return paths

    def crossmatch(self, ir_catalog, *, radius=5 * u.arcsec, columns=None, id_column=None):
        """A new catalogue whose hosts are matched with an infrared catalogue.

        Each host gets the nearest catalogue source within ``radius``
        (`astropy.coordinates.SkyCoord.match_to_catalog_sky`); nothing is looked up on
        the network.

        Parameters
        ----------
        ir_catalog : `~astropy.table.Table`
            The catalogue (e.g. AllWISE or CatWISE rows): a SkyCoord column or ``ra``/
            ``dec`` (``RAJ2000``/``DEJ2000``, ...) columns, in degrees when unitless.
        radius : `~astropy.units.Quantity`, optional
            Match radius (default 5 arcsec).
        columns : sequence of str, optional
            Catalogue columns to copy for the matched source (as ``ir_<name>``, e.g.
            ``["w1mpro", "w2mpro"]``).
        id_column : str, optional
            The identifier column (default: ``designation``, ``source_name``, ... if one
            exists).

        Returns
        -------
        catalog : `GalaxyCatalog`
            With the columns ``ir_match_index``, ``ir_match_id``, ``ir_match_sep``
            (arcsec), ``ir_match_ra``, ``ir_match_dec`` (deg) and ``ir_<name>``; galaxies
            without a host or without a source within ``radius`` have index -1 and NaN
            separation.
        """
        self._require_wcs("crossmatch")
        noise = self.__dict__.get("noise", self._noise_given)
        new = GalaxyCatalog(self._result, radio=self._radio, ir=self._ir, noise=noise,
                            ir_catalog=ir_catalog, match_radius=radius,
                            ir_catalog_columns=columns, ir_id_column=id_column,
                            meta=self._extra_meta)
        for name in ("islands", "_group_detection", "_group_host", "_group_geometry",
                     "_group_photometry", "_group_components", "_polygons"):
            if name in self.__dict__:  # reuse what is computed already
                new.__dict__[name] = self.__dict__[name]
        return new

    def _describe(self, name, definition):
        if definition.name == "prob_<class>":
            cls = {class_column_name(c): c for c in self.classes}[name]
            return f"Classifier probability of class {cls}."
        if definition.name == "ir_<column>":
            return (f"Column {name[3:]!r} of the infrared catalogue for the matched source "
                    "(NaN or masked without a match).")
        return definition.description


def _meta_value(value):
    """A value every table format can store: str, int, finite float or bool ("" if unknown)."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else ""
    if isinstance(value, str):
        return value
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


def _check_colors(colors):
    if colors is None:
        return
    if not isinstance(colors, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                               for k, v in colors.items()):
        raise ValueError(f"colors: expected a dict of class name -> colour name, got {colors!r}")


def _galcam_version():
    from galcam import __version__

    return __version__


def mask_photometry(data, unit, crops, *, beam_pixels=None):
    """Peak and integrated flux densities of masks on a radio image.

    The one photometry of galcam's catalogues (`GalaxyCatalog` and the survey's): the peak
    is the brightest finite pixel of a mask, the integrated flux density the sum of its
    finite pixels over the beam's solid angle in pixels (`galcam.io.beam_pixels`).

    Parameters
    ----------
    data : array-like (H, W)
        The radio image.
    unit : `~astropy.units.Unit` or str
        Its brightness unit (per beam, e.g. Jy/beam).
    crops : iterable of (int, int, bool array)
        ``(x0, y0, mask)``: each mask's crop and the pixel of its (0, 0) in ``data``.
    beam_pixels : float, optional
        The beam's solid angle in pixels; without it the integrated flux densities are NaN.

    Returns
    -------
    peak : `~astropy.units.Quantity` (n,)
        In mJy/beam (NaN for a mask without finite pixels).
    total : `~astropy.units.Quantity` (n,)
        In mJy.
    """
    crops = list(crops)
    scale = u.Unit(unit).to(BRIGHTNESS_UNIT)
    peak = np.full(len(crops), np.nan)
    total = np.full(len(crops), np.nan)
    for k, (x0, y0, mask) in enumerate(crops):
        h, w = mask.shape
        values = np.asarray(data[y0:y0 + h, x0:x0 + w], dtype=np.float64)[mask]
        values = values[np.isfinite(values)]
        if values.size:
            peak[k] = values.max() * scale
            if beam_pixels is not None:
                total[k] = values.sum() * scale / beam_pixels
    return peak * BRIGHTNESS_UNIT, total * u.mJy


def _write_ecsv(table, path):
    table.write(path, format="ascii.ecsv")


def _write_fits(table, path):
    from astropy.io.fits.verify import VerifyWarning

    with warnings.catch_warnings():
        # meta keys longer than 8 characters become HIERARCH cards, as intended
        warnings.filterwarnings("ignore", message="Keyword name", category=VerifyWarning)
        table.write(path, format="fits")


def _write_votable(table, path):
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info

    votable = from_table(table)
    vot_table = votable.get_first_table()
    for key, value in table.meta.items():
        vot_table.infos.append(Info(name=key, value=str(value)))
    votable.to_xml(str(path))


#: Table writers by format name: ``writer(table, path)`` (a VOTable needs plain columns:
#: SkyCoord columns split into RA/Dec first, ``GalaxyCatalog.to_table(skycoord=False)``).
#: A format added here (with its suffixes in `TABLE_FORMATS`) is available to
#: `GalaxyCatalog.write_table`, `write_table` and the survey.
TABLE_WRITERS = {"ascii.ecsv": _write_ecsv, "fits": _write_fits, "votable": _write_votable}


def table_format(path, format=None):
    """The format name of a table file: ``format`` checked, else from the suffix."""
    if format is not None:
        if format not in _FORMAT_ALIASES:
            raise ValueError(f"format: expected one of {sorted(set(_FORMAT_ALIASES))}, "
                             f"got {format!r}")
        return _FORMAT_ALIASES[format]
    name = Path(path).name.lower()
    for suffix in sorted(TABLE_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return TABLE_FORMATS[suffix]
    raise ValueError(f"'{path}': cannot tell the table format from the suffix; use one of "
                     f"{sorted(TABLE_FORMATS)} or pass format=")


def write_table(table, path, *, format=None, overwrite=False):
    """Write a table atomically with galcam's writer for its format.

    Parameters
    ----------
    table : `~astropy.table.Table`
        For VOTable, a table without SkyCoord columns.
    path : path-like
    format : {"ascii.ecsv", "fits", "votable"}, optional
        Default: from the suffix (`TABLE_FORMATS`).
    overwrite : bool, optional
        Replace an existing file (default: raise `FileExistsError`).

    Returns
    -------
    path : `pathlib.Path`
    """
    path = Path(path)
    fmt = table_format(path, format)
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"'{path}': exists already (pass overwrite=True to replace it)")
    writer = TABLE_WRITERS[fmt]
    atomic_write(path, lambda tmp: writer(table, tmp))
    return path

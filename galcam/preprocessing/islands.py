"""Islands: connected groups of pixels above a noise threshold.

An *island* (the radio-astronomy word for a segment) is a connected group of at
least ``n_pixels`` pixels above ``background + n_sigma * rms``. Gupta et al.
(2023, PASA), section 3.1, keep islands above 3 sigma (radio) or above
median + 3 x MAD (infrared) of at least 5 pixels. The detection itself is done by
`photutils.segmentation.detect_sources` and the measurements by
`photutils.segmentation.SourceCatalog`.
"""

import logging
import warnings

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable
from astropy.utils import lazyproperty
from astropy.wcs.utils import wcs_to_celestial_frame

from .._validation import check_positive, check_positive_int
from .noise import NoiseResult, image_arrays

__all__ = ["Islands", "find_islands", "island_mask", "ISLAND_COLUMNS", "ISLAND_DESCRIPTIONS"]

log = logging.getLogger(__name__)

#: What every island column holds (the table's column descriptions, written with it).
ISLAND_DESCRIPTIONS = {
    "id": "Island label (1-based, as in the segmentation image).",
    "xcentroid": "x of the flux-weighted centroid (0-based pixel).",
    "ycentroid": "y of the flux-weighted centroid (0-based pixel).",
    "sky_centroid": "Sky position of the centroid (SkyCoord in the image's frame).",
    "area": "Number of pixels of the island (above n_sigma times the noise).",
    "peak": "Brightest pixel of the island (image unit).",
    "segment_flux": "Sum of the island's pixels (image unit, e.g. Jy/beam: not a flux "
                    "density; see flux).",
    "flux": "Integrated flux density: segment_flux over the beam's solid angle in pixels "
            "(e.g. Jy for an image in Jy/beam).",
    "bbox_xmin": "Smallest x of the island's bounding box (0-based pixel, inclusive).",
    "bbox_xmax": "Largest x of the island's bounding box (0-based pixel, inclusive).",
    "bbox_ymin": "Smallest y of the island's bounding box (0-based pixel, inclusive).",
    "bbox_ymax": "Largest y of the island's bounding box (0-based pixel, inclusive).",
}

#: Columns of `Islands.to_table`, in order (``sky_centroid`` only with a WCS).
ISLAND_COLUMNS = (
    "id",
    "xcentroid",
    "ycentroid",
    "sky_centroid",
    "area",
    "peak",
    "segment_flux",
    "flux",
    "bbox_xmin",
    "bbox_xmax",
    "bbox_ymin",
    "bbox_ymax",
)

# our column name -> photutils 3 SourceCatalog attribute
_CATALOG_NAMES = {
    "id": "label",
    "xcentroid": "x_centroid",
    "ycentroid": "y_centroid",
    "sky_centroid": "sky_centroid",
    "area": "area",
    "peak": "max_value",
    "segment_flux": "segment_flux",
    "bbox_xmin": "bbox_xmin",
    "bbox_xmax": "bbox_xmax",
    "bbox_ymin": "bbox_ymin",
    "bbox_ymax": "bbox_ymax",
}


def _threshold_value(noise, n_sigma, unit, shape):
    """The detection threshold as a float or a float array in the image unit."""
    if isinstance(noise, NoiseResult):
        threshold = noise.threshold(n_sigma)
        if threshold.unit != unit and not threshold.unit.is_equivalent(unit):
            raise u.UnitsError(f"the noise is in {threshold.unit} but the image in {unit}")
        value = threshold.to_value(unit)
        if np.ndim(value) == 2 and value.shape != shape:
            raise ValueError(f"the noise maps have shape {value.shape} but the image {shape}")
        return value
    if isinstance(noise, u.Quantity):
        if not noise.isscalar:
            raise ValueError("noise must be a NoiseResult or a scalar rms")
        try:
            rms = noise.to_value(unit)
        except u.UnitsError:
            raise u.UnitsError(
                f"the noise rms is in {noise.unit} but the image in {unit}"
            ) from None
    elif isinstance(noise, (int, float, np.integer, np.floating)) and not isinstance(noise, bool):
        rms = float(noise)
    else:
        raise TypeError(f"noise must be a NoiseResult, a Quantity or a float rms; got "
                        f"{type(noise).__name__}")
    rms = check_positive(rms, "noise rms")
    return n_sigma * rms


class Islands:
    """Islands found in an image by `find_islands` (immutable).

    Attributes
    ----------
    segment_image : `~photutils.segmentation.SegmentationImage` or None
        Labels 1..N, 0 for the background; `None` when there is no island.
    n_islands : int
        Number of islands.
    labels : `~numpy.ndarray`
        The island labels (empty when there is none).
    threshold : float or `~numpy.ndarray`
        The detection threshold that was used (image unit, without unit).
    """

    def __init__(self, data, segment_image, *, unit, wcs=None, threshold=None, beam=None):
        self._data = data
        self._segment_image = segment_image
        self._unit = unit
        self._wcs = wcs
        self._threshold = threshold
        self._beam = beam

    segment_image = property(lambda self: self._segment_image)
    unit = property(lambda self: self._unit, doc="The image unit.")
    wcs = property(lambda self: self._wcs, doc="The image's celestial WCS, or None.")
    threshold = property(lambda self: self._threshold)
    beam = property(lambda self: self._beam,
                    doc="The image's restoring beam (`radio_beam.Beam`), or None.")

    @property
    def beam_pixels(self):
        """Beam solid angle in pixels, or None without a beam or a celestial WCS."""
        if self._beam is None or self._wcs is None:
            return None
        from galcam.io import beam_pixels

        return beam_pixels(self._beam, self._wcs)

    def _flux_unit(self):
        """Unit of ``flux`` (the image unit times beam, e.g. Jy), or None if not per beam."""
        unit = u.Unit(self._unit)
        if not unit.is_equivalent(u.Jy / u.beam):
            return None
        return unit * u.beam

    @property
    def shape(self):
        """Shape of the image."""
        return self._data.shape

    @property
    def n_islands(self):
        return 0 if self.segment_image is None else int(self.segment_image.n_labels)

    def __len__(self):
        return self.n_islands

    @property
    def labels(self):
        if self.segment_image is None:
            return np.zeros(0, dtype=np.int32)
        return self.segment_image.labels

    @property
    def mask(self):
        """Boolean image: `True` inside islands."""
        if self.segment_image is None:
            return np.zeros(self.shape, dtype=bool)
        return self.segment_image.data > 0

    @lazyproperty
    def catalog(self):
        """`~photutils.segmentation.SourceCatalog` of the islands, or `None` if there is none."""
        if self.segment_image is None:
            return None
        from photutils.segmentation import SourceCatalog

        data = np.asarray(self._data, dtype=np.float32)
        finite = np.isfinite(data)
        return SourceCatalog(u.Quantity(np.where(finite, data, 0.0), self.unit, copy=False),
                             self.segment_image, mask=~finite if not finite.all() else None,
                             wcs=self.wcs)

    def to_table(self, columns=None):
        """The islands as a `~astropy.table.QTable`.

        Parameters
        ----------
        columns : list of str, optional
            Which of `ISLAND_COLUMNS` to include (default: all; ``sky_centroid``
            only when the image has a WCS). ``id`` is the island label,
            ``xcentroid``/``ycentroid`` the 0-based pixel centroid, ``area`` in
            pix2, ``peak`` the highest pixel and ``segment_flux`` the sum of the
            pixels (image unit), ``flux`` the integrated flux density
            ``segment_flux / beam_pixels`` (e.g. Jy for an image in Jy/beam; only when
            the image has a beam and a WCS and its unit is per beam), ``bbox_*`` the
            inclusive 0-based bounding box.

        Returns
        -------
        table : `~astropy.table.QTable`
            One row per island; zero rows (same columns) when there is none.
        """
        flux_ok = self.beam_pixels is not None and self._flux_unit() is not None
        available = [c for c in ISLAND_COLUMNS
                     if (c != "sky_centroid" or self.wcs is not None) and (c != "flux" or flux_ok)]
        if columns is None:
            columns = available
        else:
            columns = list(columns)
            unknown = [c for c in columns if c not in available]
            if unknown:
                raise ValueError(f"unknown island column(s) {unknown}; available: {available}")
        table = QTable()
        cat = self.catalog
        for name in columns:
            if cat is None:
                table[name] = self._empty_column(name)
            elif name == "flux":
                total = u.Quantity(cat.segment_flux, self.unit).value
                table[name] = u.Quantity(total / self.beam_pixels, self._flux_unit())
            else:
                value = getattr(cat, _CATALOG_NAMES[name])
                if name == "area":
                    value = u.Quantity(value).to(u.pix**2)
                elif name == "id" or name.startswith("bbox"):
                    value = np.asarray(value, dtype=np.int64)
                elif name in ("xcentroid", "ycentroid"):
                    value = np.asarray(value, dtype=np.float64)
                table[name] = value
        for name in columns:
            table[name].info.description = ISLAND_DESCRIPTIONS.get(name)
        table.meta["n_islands"] = self.n_islands
        return table

    def _empty_column(self, name):
        if name == "sky_centroid":
            frame = wcs_to_celestial_frame(self.wcs)
            return SkyCoord(np.zeros(0), np.zeros(0), unit=u.deg, frame=frame)
        if name == "id" or name.startswith("bbox"):
            return np.zeros(0, dtype=np.int64)
        if name == "area":
            return u.Quantity(np.zeros(0), u.pix**2)
        if name in ("peak", "segment_flux"):
            return u.Quantity(np.zeros(0, dtype=np.float32), self.unit)
        if name == "flux":
            return u.Quantity(np.zeros(0), self._flux_unit())
        return np.zeros(0, dtype=np.float64)

    def __repr__(self):
        return f"<Islands n_islands={self.n_islands} shape={self.shape}>"


def find_islands(image, noise, *, n_sigma=3.0, n_pixels=5, connectivity=8):
    """Find islands: connected pixels above ``background + n_sigma * rms``.

    Parameters
    ----------
    image : `~astropy.nddata.NDData`, `~astropy.units.Quantity` or 2-D array
        The image (``data[y, x]``). Non-finite and NDData-masked pixels are never
        part of an island. It is not modified.
    noise : `NoiseResult`, `~astropy.units.Quantity` or float
        The noise: a `NoiseResult` (its ``threshold(n_sigma)``, scalar or map, is
        used), or an rms (background 0) in the image unit.
    n_sigma : float, optional
        Threshold in units of the rms (of the MAD for ``method="paper-ir"``).
    n_pixels : int, optional
        Minimum number of connected pixels of an island (5 in the paper).
    connectivity : {4, 8}, optional
        Pixel connectivity.

    Returns
    -------
    islands : `Islands`
        Pixels strictly above the threshold, grouped by
        `~photutils.segmentation.detect_sources`.
    """
    from photutils.segmentation import detect_sources
    from photutils.utils.exceptions import NoDetectionsWarning

    n_sigma = check_positive(n_sigma, "n_sigma", allow_zero=True)
    n_pixels = check_positive_int(n_pixels, "n_pixels")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    data, unit, nd_mask, wcs, beam = image_arrays(image)
    threshold = _threshold_value(noise, n_sigma, unit, data.shape)
    data = np.asarray(data, dtype=np.float32)
    bad = ~np.isfinite(data)
    if nd_mask is not None:
        bad |= nd_mask
    if np.ndim(threshold) == 2:
        bad |= ~np.isfinite(threshold)
        threshold = np.where(np.isfinite(threshold), threshold, np.inf)
    elif not np.isfinite(threshold):
        raise ValueError(f"the detection threshold is not finite ({threshold})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoDetectionsWarning)
        segm = detect_sources(data, threshold, n_pixels=int(n_pixels), connectivity=connectivity,
                              mask=bad if bad.any() else None)
    for w in caught:
        if issubclass(w.category, NoDetectionsWarning):
            log.debug("find_islands: no island above %s sigma", n_sigma)
        else:  # pragma: no cover - pass on anything unexpected
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if wcs is not None and not getattr(wcs, "has_celestial", False):
        wcs = None
    return Islands(data, segm, unit=unit, wcs=wcs,
                   threshold=threshold if np.ndim(threshold) == 0 else None, beam=beam)


def island_mask(image, noise, *, n_sigma=3.0, n_pixels=5, connectivity=8):
    """Boolean mask of the pixels in islands (see `find_islands`)."""
    return find_islands(image, noise, n_sigma=n_sigma, n_pixels=n_pixels,
                        connectivity=connectivity).mask

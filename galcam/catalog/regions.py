"""Galaxy masks as sky polygons, and DS9/CRTF region files that DS9 and CARTA open.

A galaxy mask becomes one polygon per connected part (8-connected pixels): the outer
contour of the part at level 0.5 (`skimage.measure.find_contours` on the part padded with
one blank pixel), slightly simplified (`skimage.measure.approximate_polygon`, tolerance
0.2 pixel, which keeps every pixel centre of the part inside) and converted to the sky with
the image's WCS. The contour runs through the midpoints between mask and non-mask pixel
centres, so it encloses every mask pixel centre and no other pixel centre. Holes inside a
part are not represented (the polygon covers them).
"""

import logging
import os
from pathlib import Path

import numpy as np
from astropy.coordinates import ICRS, SkyCoord

from galcam.datasets.classes import normalize_class_name
from galcam.io import atomic_write

__all__ = ["CLASS_COLORS", "class_color", "mask_polygons", "serialize_regions",
           "write_region_file", "REGION_FORMATS"]

log = logging.getLogger(__name__)

#: Colour of each class in region files and plots (matched by normalised class name).
CLASS_COLORS = {"FR-I": "red", "FR-II": "blue", "FR-X": "green", "R": "magenta"}

#: Region file formats written by galcam: DS9 (``.reg``) and CASA/CARTA CRTF (``.crtf``).
REGION_FORMATS = ("ds9", "crtf")

# colours of classes other than the paper's four, in order of first appearance
_EXTRA_COLORS = ("cyan", "yellow", "orange", "white")

# The DS9 header line that DS9 and CARTA look for, and the global line DS9 writes.
_DS9_HEADER = "# Region file format: DS9 version 4.1"
_DS9_GLOBAL = ('global color=green dashlist=8 3 width=1 font="helvetica 10 normal roman" '
               "select=1 highlite=1 dash=0 fixed=0 edit=1 move=1 delete=1 include=1 source=1")

# Simplification tolerance of the contours (pixels). A contour at level 0.5 passes at least
# 0.35 pixel from every pixel centre, so a tolerance below that keeps the centres inside.
_TOLERANCE = 0.2


def class_color(class_name, colors=None):
    """The colour of a class: ``colors`` first, then `CLASS_COLORS`, else cyan.

    Names are matched ignoring case, spaces, hyphens and underscores (``"FRII"`` is
    ``"FR-II"``).
    """
    key = normalize_class_name(class_name)
    for table in (colors or {}, CLASS_COLORS):
        for name, color in table.items():
            if normalize_class_name(name) == key:
                return color
    return _EXTRA_COLORS[0]


def _outer_contours(mask):
    """Pixel vertex arrays ``(n, 2)`` as ``(x, y)``, one per 8-connected part of ``mask``.

    Sorted by decreasing number of pixels in the part.
    """
    from scipy import ndimage
    from skimage.measure import approximate_polygon, find_contours

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return []
    slices = ndimage.find_objects(labels)
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
    out = []
    for k in np.argsort(-sizes, kind="stable"):
        sl = slices[k]
        part = np.pad(labels[sl] == k + 1, 1).astype(np.float64)
        contours = find_contours(part, 0.5, fully_connected="high")
        # the outer contour encloses the holes' contours: it has the largest area
        areas = [abs(_shoelace(c)) for c in contours]
        contour = contours[int(np.argmax(areas))]
        if len(contour) > 1 and np.allclose(contour[0], contour[-1]):
            contour = contour[:-1]  # find_contours closes the loop; polygons need not
        contour = approximate_polygon(np.vstack([contour, contour[:1]]), _TOLERANCE)[:-1]
        xy = np.column_stack([contour[:, 1] - 1 + sl[1].start, contour[:, 0] - 1 + sl[0].start])
        out.append(xy)
    return out


def _shoelace(rc):
    r, c = rc[:, 0], rc[:, 1]
    return 0.5 * float(np.dot(c, np.roll(r, -1)) - np.dot(r, np.roll(c, -1)))


def mask_polygons(mask, wcs=None, *, origin=(0, 0), meta=None, visual=None):
    """Polygons that outline a mask, one per connected part.

    Parameters
    ----------
    mask : 2-D array of bool
        The mask, indexed ``[y, x]`` (a full image, or a crop placed by ``origin``).
    wcs : `~astropy.wcs.WCS`, optional
        Celestial WCS of the image: the polygons are then
        `~regions.PolygonSkyRegion`; without it, `~regions.PolygonPixelRegion` in 0-based
        pixels.
    origin : (int, int), optional
        ``(x0, y0)``: image pixel of ``mask[0, 0]`` when ``mask`` is a crop.
    meta, visual : dict, optional
        `~regions.RegionMeta` and `~regions.RegionVisual` entries given to every polygon.

    Returns
    -------
    polygons : list of `~regions.PolygonSkyRegion` or `~regions.PolygonPixelRegion`
        One per 8-connected part of the mask, largest part first; empty for an empty mask.
        Each polygon follows the outer boundary of its part between mask and non-mask
        pixel centres (holes are not represented), so it contains the centres of all of
        the part's pixels.
    """
    from regions import PixCoord, PolygonPixelRegion, PolygonSkyRegion, RegionMeta, RegionVisual

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask: expected a 2-D array, got shape {mask.shape}")
    mask = mask.astype(bool, copy=False)
    try:
        x0, y0 = (int(v) for v in origin)
    except (TypeError, ValueError):
        raise ValueError(f"origin: expected (x0, y0) integers, got {origin!r}") from None
    out = []
    for xy in _outer_contours(mask):
        xs, ys = xy[:, 0] + x0, xy[:, 1] + y0
        m = RegionMeta(dict(meta or {}))
        v = RegionVisual(dict(visual or {}))
        if wcs is None:
            out.append(PolygonPixelRegion(PixCoord(xs, ys), meta=m, visual=v))
        else:
            out.append(PolygonSkyRegion(wcs.pixel_to_world(xs, ys), meta=m, visual=v))
    return out


def _to_icrs(region):
    """A copy of a sky region with its coordinates in ICRS."""
    import copy

    def icrs(coord):
        # a new SkyCoord of the ICRS frame alone: a transformed SkyCoord keeps the frame
        # attributes of its origin (e.g. equinox B1950), which a writer may reuse
        return SkyCoord(SkyCoord(coord).transform_to(ICRS()).frame)

    region = copy.deepcopy(region)
    if hasattr(region, "vertices"):
        region.vertices = icrs(region.vertices)
    elif isinstance(getattr(region, "center", None), SkyCoord):
        region.center = icrs(region.center)
    return region


def serialize_regions(regions, format="ds9"):
    """Region file text that DS9 and CARTA (``"ds9"``) or CASA and CARTA (``"crtf"``) read.

    Parameters
    ----------
    regions : `~regions.Regions`
        Sky regions (e.g. from ``GalaxyCatalog.to_regions()``).
    format : {"ds9", "crtf"}
        ``"ds9"``: the file starts with the ``# Region file format: DS9 version 4.1``
        line and a ``global`` line (both needed by DS9 and CARTA to recognise the file),
        followed by the ``icrs`` coordinate system and one region per line (written by
        `regions`). ``"crtf"``: CASA region text format (``global coord=ICRS``), in ICRS
        like the DS9 file and the catalogue, whatever the image's frame.

    Returns
    -------
    text : str
    """
    from regions import Regions

    if format not in REGION_FORMATS:
        raise ValueError(f"format: expected one of {REGION_FORMATS}, got {format!r}")
    # through a plain ICRS SkyCoord for both formats (regions' CRTF writer converts with
    # the equinox an FK4/FK5 coordinate carries), and written as ICRS in both: the DS9
    # file, the CRTF file and the catalogue agree to the last digit
    icrs = Regions([_to_icrs(r) for r in regions])
    if format == "crtf":
        text = icrs.serialize(format="crtf", coordsys="icrs")
        return text if text.endswith("\n") else text + "\n"
    body = icrs.serialize(format="ds9").splitlines() if len(icrs) else []
    body = [line for line in body if not line.startswith("# Region file format")]
    header = [_DS9_HEADER]
    if not any(line.startswith("global ") for line in body):
        header.append(_DS9_GLOBAL)
    if not body:
        body = ["icrs"]
    return "\n".join(header + body) + "\n"


def write_region_file(regions, path, format="ds9", *, overwrite=False):
    """Write regions to a DS9 or CRTF file, atomically (see `serialize_regions`).

    Parameters
    ----------
    regions : `~regions.Regions`
    path : str or path-like
    format : {"ds9", "crtf"}
    overwrite : bool, optional
        Replace an existing file (default: raise `FileExistsError`).

    Returns
    -------
    path : `~pathlib.Path`
    """
    path = Path(path)
    if format not in REGION_FORMATS:
        raise ValueError(f"format: expected one of {REGION_FORMATS}, got {format!r}")
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"'{path}': exists already (pass overwrite=True to replace it)")
    text = serialize_regions(regions, format)

    def writer(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    atomic_write(path, writer)
    log.debug("wrote %d regions to %s (%s)", len(regions), path, format)
    return path

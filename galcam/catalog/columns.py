"""Column definitions of `~galcam.catalog.GalaxyCatalog` tables: one place for code and docs.

Every column of ``GalaxyCatalog.to_table()`` is defined here once, with its name, unit,
type and description. The catalogue code takes units and descriptions from these
definitions, and the table below (and the one in the documentation) is generated from them
when the module is imported, so the documentation cannot drift from the code.

Column names contain only letters, digits and underscores, so that they survive FITS,
VOTable and most databases unchanged (``prob_FR_II``, not ``prob_FR-II``). Pixel
positions are 0-based ``(x, y)`` in the frame of the radio image the prediction was made
on (add 1 for DS9/FITS 1-based pixels). Sky positions are
`~astropy.coordinates.SkyCoord` columns in the frame of the image's WCS; they are split
into ``<name>_ra`` and ``<name>_dec`` (deg) columns for VOTable files and with
``to_table(skycoord=False)``.
"""

import re
from dataclasses import dataclass

from astropy import units as u

__all__ = ["CatalogColumn", "CATALOG_COLUMNS", "MATCH_COLUMNS", "BRIGHTNESS_UNIT",
           "column_definition", "class_column_name", "columns_rst"]

#: Unit of the catalogue's brightnesses (``peak_flux``, ``local_rms``). A radio image must
#: be in a unit equivalent to it (a brightness per beam, such as Jy/beam) for fluxes to be
#: measured.
BRIGHTNESS_UNIT = u.mJy / u.beam


@dataclass(frozen=True)
class CatalogColumn:
    """Definition of one catalogue column.

    Attributes
    ----------
    name : str
        Column name; ``<class>`` or ``<column>`` in a name marks a template that gives one
        column per model class or per copied infrared-catalogue column.
    unit : `~astropy.units.Unit` or None
        Unit of the values (None: a number without unit, a string or a flag).
    dtype : str
        ``"int64"``, ``"float64"``, ``"bool"``, ``"str"`` or ``"skycoord"``.
    group : str
        Which measurement computes the column (the catalogue computes a group the first
        time one of its columns is asked for): ``"detection"``, ``"host"``,
        ``"geometry"``, ``"photometry"``, ``"components"`` or ``"match"``.
    description : str
        What the column holds (written into the table's column descriptions).
    """

    name: str
    unit: object
    dtype: str
    group: str
    description: str

    @property
    def is_template(self):
        """True for a name with a ``<...>`` placeholder."""
        return "<" in self.name


def _c(name, unit, dtype, group, description):
    return CatalogColumn(name, None if unit is None else u.Unit(unit), dtype, group,
                         " ".join(description.split()))


#: The columns of ``GalaxyCatalog.to_table()``, in table order.
CATALOG_COLUMNS = (
    _c("id", None, "int64", "detection",
       "Number of the galaxy in the prediction result (detections are sorted by "
       "decreasing score)."),
    _c("class", None, "str", "detection",
       "Predicted morphological class (FR-I, FR-II, FR-X or R for the paper's classes)."),
    _c("score", None, "float64", "detection",
       "Detection score in [0, 1] that ranks galaxies (not a calibrated probability): with "
       "the default mask_mode='grouped', (1 - exp(-area / area_scale)) x (1 - exp(-(R - "
       "1) / resolution_scale)) x (1 + class probability x mean class CAM over the mask) "
       "/ 2, R the area over that of point sources of the islands' peak S/N (the "
       "resolution term is left out without a noise level or beam); with 'islands' or "
       "'walk', class "
       "probability times the normalised peak of the random-walk map inside the mask."),
    _c("prob_<class>", None, "float64", "detection",
       "Probability of the class for this galaxy (one column per model class; they sum "
       "to one and the largest is the galaxy's class): the classifier's probability of "
       "the class in the tile times the largest value of the class's CAM over the "
       "galaxy's pixels, normalised over the classes. Characters other than letters and "
       "digits become underscores in the name: prob_FR_I, prob_FR_II, prob_FR_X, prob_R."),
    _c("xcentroid", None, "float64", "detection",
       "x of the unweighted mean position of the mask pixels (0-based pixel)."),
    _c("ycentroid", None, "float64", "detection",
       "y of the unweighted mean position of the mask pixels (0-based pixel)."),
    _c("sky_centroid", "deg", "skycoord", "detection",
       "Sky position of the mask centroid (SkyCoord in the image's frame)."),
    _c("bbox_xmin", None, "int64", "detection",
       "Smallest x of the mask's bounding box (0-based pixel, inclusive)."),
    _c("bbox_xmax", None, "int64", "detection",
       "Largest x of the mask's bounding box (0-based pixel, inclusive)."),
    _c("bbox_ymin", None, "int64", "detection",
       "Smallest y of the mask's bounding box (0-based pixel, inclusive)."),
    _c("bbox_ymax", None, "int64", "detection",
       "Largest y of the mask's bounding box (0-based pixel, inclusive)."),
    _c("area", "arcsec2", "float64", "geometry",
       "Solid angle of the mask: number of mask pixels times the pixel solid angle at the "
       "WCS reference point."),
    _c("n_components", None, "int64", "components",
       "Number of radio islands (connected pixels above 3 sigma, at least 5 pixels) that "
       "overlap the mask; without a radio image, the number of 8-connected parts of the "
       "mask."),
    _c("las", "arcsec", "float64", "geometry",
       "Largest angular size: the largest great-circle distance between two corners of "
       "mask pixels (found among the vertices of the mask's convex hull)."),
    _c("pa", "deg", "float64", "geometry",
       "Position angle of the mask's major axis (unweighted second moments of the mask "
       "pixels), east of north, in [0, 180); NaN for a mask without a preferred "
       "direction."),
    _c("peak_flux", "mJy/beam", "float64", "photometry",
       "Peak brightness: the largest radio pixel value inside the mask; NaN without a "
       "radio image."),
    _c("total_flux", "mJy", "float64", "photometry",
       "Integrated flux density: the sum of the radio pixels inside the mask divided by "
       "the beam area in pixels (beam solid angle / pixel solid angle); NaN without a "
       "radio image or without a beam."),
    _c("local_rms", "mJy/beam", "float64", "photometry",
       "Noise of the radio image at the mask centroid (the noise map there, or the global "
       "rms); NaN without a radio image."),
    _c("host_x", None, "float64", "host",
       "x of the infrared host (0-based pixel of the radio image, sub-pixel); NaN when no "
       "host was found."),
    _c("host_y", None, "float64", "host",
       "y of the infrared host (0-based pixel of the radio image, sub-pixel); NaN when no "
       "host was found."),
    _c("host_sky", "deg", "skycoord", "host",
       "Sky position of the infrared host (SkyCoord; NaN when no host was found)."),
    _c("host_score", None, "float64", "host",
       "How close the host lies to where its rule looks, in [0, 1]; 0 for a fallback, NaN "
       "when no host was found. Default rule 'core': exp(-d^2 / (2 x 3^2)), d the distance "
       "in pixels of the network's grid from the galaxy's brightness-weighted radio "
       "centroid (an infrared source far from the centre can score near 0 without being "
       "a fallback). Rule 'paper': CAM x IR at the host over max(CAM) x max(IR) inside "
       "the mask."),
    _c("host_fallback", None, "bool", "host",
       "True when no infrared source qualified (none within the search radius, or no "
       "infrared image) and the host is the radio centroid (rule 'core') or the peak of "
       "the class activation map (rule 'paper'); also when no host was found."),
    _c("flag_galactic_plane", None, "bool", "detection",
       "True when the galaxy's centroid lies within 5 deg of the Galactic plane (Galactic "
       "latitude between -5 and +5 deg), where HII regions, supernova remnants and "
       "diffuse Galactic emission look like the extended sources galcam was trained to "
       "find in extragalactic fields: check such a row by eye. False without a WCS."),
)

#: Columns added by a cross-match with an infrared catalogue (``GalaxyCatalog.crossmatch``).
MATCH_COLUMNS = (
    _c("ir_match_index", None, "int64", "match",
       "Row (0-based) of the nearest infrared-catalogue source within the match radius of "
       "the host; -1 when there is none."),
    _c("ir_match_id", None, "str", "match",
       "Identifier of the matched infrared source (from the catalogue's id column, e.g. "
       "AllWISE 'designation'; empty when there is no match or no id column)."),
    _c("ir_match_sep", "arcsec", "float64", "match",
       "Separation between the host and the matched infrared source; NaN when there is "
       "no match."),
    _c("ir_match_ra", "deg", "float64", "match",
       "Right ascension (ICRS) of the matched infrared source; NaN when there is no "
       "match."),
    _c("ir_match_dec", "deg", "float64", "match",
       "Declination (ICRS) of the matched infrared source; NaN when there is no match."),
    _c("ir_<column>", None, "any", "match",
       "A column of the infrared catalogue copied for the matched source (the names asked "
       "for with ir_catalog_columns; NaN or masked when there is no match)."),
)

_BY_NAME = {c.name: c for c in CATALOG_COLUMNS + MATCH_COLUMNS}


def class_column_name(class_name):
    """The probability column name of a class: ``"FR-II"`` -> ``"prob_FR_II"``.

    Characters other than ASCII letters and digits become underscores, so that the name
    is valid in FITS, VOTable and Python.
    """
    return "prob_" + re.sub(r"[^0-9A-Za-z]", "_", str(class_name))


def column_definition(name):
    """The `CatalogColumn` that defines column ``name`` (templates resolved).

    Parameters
    ----------
    name : str
        A column name such as ``"las"``, ``"prob_FR_II"`` or ``"ir_w1mpro"``.

    Raises
    ------
    KeyError
        No definition matches.
    """
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.startswith("prob_"):
        return _BY_NAME["prob_<class>"]
    if name.startswith("ir_"):
        return _BY_NAME["ir_<column>"]
    raise KeyError(f"no catalogue column named {name!r}")


def _unit_text(column):
    if column.unit is None:
        return ""
    return column.unit.to_string("generic") if column.unit != BRIGHTNESS_UNIT else "mJy / beam"


def columns_rst(columns=CATALOG_COLUMNS + MATCH_COLUMNS):
    """The column definitions as a reStructuredText ``list-table``.

    Used to generate the column table of this module's documentation (and so of the
    catalogue documentation page).

    Parameters
    ----------
    columns : sequence of `CatalogColumn`, optional
        Definitions to list (default: all).

    Returns
    -------
    rst : str
    """
    lines = [".. list-table:: Catalogue columns",
             "   :header-rows: 1",
             "   :widths: 18 12 10 60",
             "",
             "   * - Column",
             "     - Unit",
             "     - Type",
             "     - Description"]
    for col in columns:
        lines += [f"   * - ``{col.name}``",
                  f"     - {_unit_text(col) or '--'}",
                  f"     - {col.dtype}",
                  f"     - {col.description}"]
    return "\n".join(lines) + "\n"


__doc__ += (
    "\n"
    "The columns of ``GalaxyCatalog.to_table()`` (the last six are added by a cross-match "
    "with an infrared catalogue):\n\n" + columns_rst()
)

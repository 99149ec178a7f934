"""Seed catalogues: where to centre survey work units, from a source finder's output.

Survey teams do not search a mosaic blindly: they run a source finder first and look at
what it found. `read_seeds` reads the component (or island) catalogue of the finders that
radio surveys use and returns the seed positions in a common form, so that
`~galcam.survey.SurveyRunner` can centre one cutout of the model's input size on each:

``selavy``
    ASKAP's Selavy (EMU, CASDA): VOTable (or CSV) with ``component_id``, ``ra_deg_cont``,
    ``dec_deg_cont`` and ``flux_peak`` (mJy/beam).
``pybdsf``
    PyBDSF source or Gaussian lists (``write_catalog(format='fits'|'csv')``): ``Source_id``
    (or ``Gaus_id``, ``Isl_id``), ``RA``, ``DEC`` (deg), ``Peak_flux`` (Jy/beam).
``aegean``
    Aegean component tables (FITS, VOTable or CSV): ``island``, ``source``, ``ra``,
    ``dec`` (deg), ``peak_flux`` (Jy/beam); the seed id is ``"<island>_<source>"``.
``galcam``
    The island table of ``galcam islands`` (ECSV): ``id``, ``sky_centroid`` (SkyCoord)
    and ``peak``.

Any other table works with ``columns={"ra": ..., "dec": ..., "id": ..., "flux": ...}``
(``id`` and ``flux`` optional). Positions without a unit are taken in degrees and in the
ICRS frame (FK5 J2000 differs from ICRS by less than 0.03 arcsec, far below a pixel).
This module is torch-free.
"""

import logging
import numbers
import os
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable, Table

__all__ = ["SEED_FORMATS", "read_seeds", "deduplicate_seeds"]

log = logging.getLogger(__name__)

#: Column conventions of the supported seed catalogues (see the module docstring).
#: ``id`` may be a tuple of columns joined with ``_``; ``flux`` is optional.
SEED_FORMATS = {
    "selavy": {"ra": "ra_deg_cont", "dec": "dec_deg_cont", "id": "component_id",
               "flux": "flux_peak"},
    "pybdsf": {"ra": "RA", "dec": "DEC", "id": ("Source_id", "Gaus_id", "Isl_id"),
               "flux": "Peak_flux"},
    "aegean": {"ra": "ra", "dec": "dec", "id": ("island", "source"), "flux": "peak_flux"},
    "galcam": {"ra": "sky_centroid", "dec": "sky_centroid", "id": "id", "flux": "peak"},
}

_TABLE_READERS = {".vot": "votable", ".votable": "votable", ".xml": "votable",
                  ".fits": "fits", ".fit": "fits", ".fts": "fits", ".fits.gz": "fits",
                  ".csv": "ascii.csv", ".ecsv": "ascii.ecsv", ".txt": "ascii"}


def _table_format(path, format):
    if format is not None:
        return format
    name = path.name.lower()
    for suffix in sorted(_TABLE_READERS, key=len, reverse=True):
        if name.endswith(suffix):
            return _TABLE_READERS[suffix]
    raise ValueError(f"'{path}': cannot tell the seed catalogue's file format from its suffix "
                     f"(known: {', '.join(sorted(_TABLE_READERS))}); pass table_format=")


def _read_table(source, table_format):
    if isinstance(source, Table):
        return QTable(source), "<table>"
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"seeds: expected a catalogue file or an astropy Table, got "
                        f"{type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"seeds '{path}': no such file")
    fmt = _table_format(path, table_format)
    try:
        if fmt == "votable":
            from astropy.io.votable import parse_single_table

            # Selavy VOTables carry CASDA-specific UCDs and units; read them leniently
            table = parse_single_table(str(path), verify="ignore").to_table(use_names_over_ids=True)
        elif fmt == "fits":
            table = Table.read(path, format="fits", unit_parse_strict="silent")
        elif fmt == "ascii.csv":
            table = _read_csv(path)
        else:
            table = Table.read(path, format=fmt)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file named
        raise ValueError(f"seeds '{path}': cannot read it as a {fmt} table ({exc})") from exc
    return QTable(table), f"'{path}'"


def _read_csv(path):
    """A CSV table; PyBDSF writes its header as the last ``#`` comment line."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    comments = []
    for line in lines:
        if not line.startswith("#"):
            break
        comments.append(line)
    body = [line for line in lines[len(comments):] if line.strip()]
    header = comments[-1].lstrip("#").strip() if comments else ""
    first = body[0].split(",") if body else []

    def numeric(field):
        try:
            float(field)
        except ValueError:
            return False
        return True

    if header.count(",") and first and all(numeric(f.strip()) or not f.strip()
                                           for f in first[:3]):
        names = [n.strip() for n in header.split(",")]
        return Table.read(body, format="ascii.no_header", delimiter=",", names=names)
    return Table.read(path, format="ascii.csv")


def _find(table, name):
    """The column called ``name`` (exact, else case-insensitive), or None."""
    if name in table.colnames:
        return name
    lower = {c.lower(): c for c in table.colnames}
    return lower.get(str(name).lower())


def _detect_format(table):
    """The finder whose position columns the table has (exact names first)."""
    for exact in (True, False):
        def has(name, exact=exact):
            return name in table.colnames if exact else _find(table, name) is not None

        for fmt in ("selavy", "aegean", "pybdsf", "galcam"):
            cols = SEED_FORMATS[fmt]
            if fmt == "aegean" and not (has("island") and has("source")):
                continue
            if has(cols["ra"]) and has(cols["dec"]):
                return fmt
    return None


def _angles(table, name, where, what):
    col = table[name]
    if isinstance(col, SkyCoord):
        icrs = col.icrs
        return (icrs.ra if what == "ra" else icrs.dec).to_value(u.deg)
    unit = getattr(col, "unit", None)
    values = np.ma.filled(np.ma.asarray(getattr(col, "value", col), dtype=np.float64), np.nan)
    if unit is not None and unit != u.dimensionless_unscaled:
        try:
            values = (values * u.Unit(unit)).to_value(u.deg)
        except u.UnitConversionError as exc:
            raise ValueError(f"seeds {where}: column {name!r} has unit {unit}, not an angle "
                             "(expected degrees)") from exc
    return values


def _ids(table, spec, where):
    if spec is None:
        return None
    names = (spec,) if isinstance(spec, str) else tuple(spec)
    found = [_find(table, n) for n in names]
    if isinstance(spec, str):
        if found[0] is None:
            return None
        return np.array([str(v).strip() for v in np.ma.filled(np.ma.asarray(table[found[0]]),
                                                                  "")], dtype=str)
    if len(names) == 2 and names == ("island", "source"):  # Aegean: both columns
        if None in found:
            return None
        isl, src = (np.ma.filled(np.ma.asarray(table[c]), -1) for c in found)
        return np.array([f"{a}_{b}" for a, b in zip(isl, src)], dtype=str)
    for name in found:  # first of several alternatives (PyBDSF)
        if name is not None:
            return np.array([str(v).strip() for v in np.ma.filled(np.ma.asarray(table[name]),
                                                                      "")], dtype=str)
    return None


def read_seeds(source, *, format="auto", columns=None, table_format=None):
    """Read a component catalogue as survey seeds.

    Parameters
    ----------
    source : str, path-like or `~astropy.table.Table`
        The catalogue: VOTable (``.vot``, ``.xml``), FITS table, CSV or ECSV, or a table
        already read.
    format : {'auto', 'selavy', 'pybdsf', 'aegean', 'galcam'}, optional
        The source finder that wrote it (see `SEED_FORMATS`); ``'auto'`` (default) looks
        for each finder's position columns in turn. Ignored when ``columns`` names the
        position columns.
    columns : dict, optional
        Column names ``{"ra": ..., "dec": ..., "id": ..., "flux": ...}`` overriding those
        of ``format``: any table with positions in degrees (or with angle units) works.
    table_format : str, optional
        astropy table format, when the suffix does not tell it.

    Returns
    -------
    seeds : `~astropy.table.QTable`
        One row per usable seed, in the catalogue's order: ``seed_id`` (str; the row number
        when the catalogue has no id), ``ra``, ``dec`` (deg, ICRS), ``flux`` (the peak
        brightness in the catalogue's unit, NaN when absent) and ``row`` (0-based row of
        the catalogue). ``meta`` holds ``format``, ``source`` and ``n_rejected`` (rows
        without a finite position, which are left out with a log message).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Unreadable file, unknown ``format``, missing or non-angular position columns.
    """
    if format not in ("auto", *SEED_FORMATS):
        raise ValueError(f"format: expected 'auto' or one of {sorted(SEED_FORMATS)}, got "
                         f"{format!r}")
    if columns is not None:
        if not isinstance(columns, dict) or not set(columns) <= {"ra", "dec", "id", "flux"} \
                or not all(isinstance(v, str) and v for v in columns.values()):
            raise ValueError("columns: expected a dict with keys among 'ra', 'dec', 'id', "
                             f"'flux' and column names as values, got {columns!r}")
    table, where = _read_table(source, table_format)
    fmt = format
    if fmt == "auto":
        if columns is not None and {"ra", "dec"} <= set(columns):
            fmt = "custom"
        else:
            fmt = _detect_format(table)
            if fmt is None:
                raise ValueError(
                    f"seeds {where}: not a Selavy, PyBDSF, Aegean or galcam catalogue (no "
                    "position columns " + ", ".join(f"{c['ra']}/{c['dec']}"
                                                    for c in SEED_FORMATS.values())
                    + f" among {table.colnames[:20]}); name them with "
                    "columns={'ra': ..., 'dec': ..., 'id': ...}")
    spec = dict(SEED_FORMATS.get(fmt, {}))
    spec.update(columns or {})
    for key in ("ra", "dec"):
        if key not in spec or _find(table, spec[key]) is None:
            raise ValueError(f"seeds {where}: no {key} column {spec.get(key)!r} (format "
                             f"{fmt!r}; columns: {table.colnames[:30]})")
    ra = _angles(table, _find(table, spec["ra"]), where, "ra")
    dec = _angles(table, _find(table, spec["dec"]), where, "dec")
    ids = _ids(table, spec.get("id"), where)
    if ids is None:
        if columns is not None and "id" in columns:
            raise ValueError(f"seeds {where}: no id column {columns['id']!r}")
        ids = np.array([str(i) for i in range(len(table))], dtype=str)
    flux = np.full(len(table), np.nan)
    fname = spec.get("flux")
    if fname is not None and _find(table, fname) is not None:
        col = table[_find(table, fname)]
        flux = np.ma.filled(np.ma.asarray(getattr(col, "value", col), dtype=np.float64), np.nan)
    elif columns is not None and "flux" in columns:
        raise ValueError(f"seeds {where}: no flux column {columns['flux']!r}")
    good = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    n_bad = int((~good).sum())
    if n_bad:
        log.info("seeds %s: %d row(s) without a valid position left out", where, n_bad)
    rows = np.flatnonzero(good)
    out = QTable(meta={"format": fmt, "source": where.strip("'"), "n_rejected": n_bad})
    out["seed_id"] = ids[rows].astype(str)
    out["ra"] = (ra[rows] % 360.0) * u.deg
    out["dec"] = dec[rows] * u.deg
    out["flux"] = flux[rows]
    out["row"] = rows.astype(np.int64)
    log.info("seeds %s: %d %s seed(s)", where, len(out), fmt)
    return out


def deduplicate_seeds(x, y, flux, separation):
    """Indices of the seeds to keep so that no two are closer than ``separation`` pixels.

    Greedy, brightest first: seeds are taken in order of decreasing ``flux`` (NaN last,
    ties in input order), and a seed closer than ``separation`` to one already kept is
    dropped. A dropped seed lies within ``separation`` of the centre of a kept seed's
    cutout, so with ``separation`` = a quarter of the cutout size its surroundings are in
    the central half of that cutout.

    Parameters
    ----------
    x, y : array-like of float
        Seed positions, 0-based mosaic pixels.
    flux : array-like of float
        Brightness used for the order (NaN allowed).
    separation : float
        Minimum distance between kept seeds, pixels (0: keep all).

    Returns
    -------
    keep : `~numpy.ndarray` of int
        Indices into the inputs, in increasing order.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    if not (isinstance(separation, numbers.Real) and np.isfinite(separation)
            and separation >= 0):
        raise ValueError(f"separation: expected a number of pixels >= 0, got {separation!r}")
    n = x.size
    if separation == 0 or n < 2:
        return np.arange(n)
    key = np.where(np.isfinite(flux), -flux, np.inf)
    order = np.lexsort((np.arange(n), key))
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack([x, y]))
    dropped = np.zeros(n, dtype=bool)
    kept = np.zeros(n, dtype=bool)
    for i in order:
        if dropped[i]:
            continue
        kept[i] = True
        for j in tree.query_ball_point((x[i], y[i]), r=separation * (1 - 1e-12)):
            if j != i and not kept[j]:
                dropped[j] = True
    return np.flatnonzero(kept)

"""Cross-match of infrared hosts with a user's infrared catalogue (no network access).

The user downloads the catalogue (e.g. AllWISE or CatWISE2020 rows around their field, as
a VOTable, FITS or CSV file) and reads it with `astropy.table.Table.read`; each host then
gets the nearest catalogue source within a radius
(`astropy.coordinates.SkyCoord.match_to_catalog_sky`), with its separation.
"""

import numpy as np
from astropy import units as u
from astropy.coordinates import ICRS, SkyCoord
from astropy.table import MaskedColumn, Table

__all__ = ["catalog_positions", "find_id_column", "match_positions"]

# (ra, dec) column pairs looked for, in order, when the table has no SkyCoord column:
# generic names, VizieR's J2000 and ICRS names, then common archive spellings.
_POSITION_PAIRS = (("ra", "dec"), ("RA", "DEC"), ("RA", "Dec"), ("RAJ2000", "DEJ2000"),
                   ("_RAJ2000", "_DEJ2000"), ("RA_ICRS", "DE_ICRS"), ("ra_icrs", "dec_icrs"),
                   ("ra_deg", "dec_deg"), ("RA_deg", "DEC_deg"))

# identifier columns looked for, in order (AllWISE 'designation', CatWISE 'source_name',
# VizieR 'AllWISE' / 'Name', generic names).
_ID_COLUMNS = ("designation", "source_name", "AllWISE", "CatWISE", "Name", "name",
               "source_id", "objid", "id", "ID")


def catalog_positions(table):
    """Sky positions of the rows of a catalogue table.

    Parameters
    ----------
    table : `~astropy.table.Table` or `~astropy.table.QTable`
        A catalogue with a `~astropy.coordinates.SkyCoord` column (the first is used), or
        right ascension and declination columns named ``ra``/``dec``, ``RA``/``DEC``,
        ``RAJ2000``/``DEJ2000``, ``RA_ICRS``/``DE_ICRS`` (and a few other usual spellings).
        Columns without a unit are taken to be in degrees.

    Returns
    -------
    coords : `~astropy.coordinates.SkyCoord`
        In ICRS; rows with a missing (masked or NaN) position are NaN.

    Raises
    ------
    TypeError
        ``table`` is not an astropy table.
    ValueError
        No position columns were found.
    """
    if not isinstance(table, Table):
        raise TypeError(f"ir_catalog: expected an astropy Table or QTable, got "
                        f"{type(table).__name__}")
    for name in table.colnames:
        if isinstance(table[name], SkyCoord):
            return table[name].transform_to(ICRS())
    for ra_name, dec_name in _POSITION_PAIRS:
        if ra_name in table.colnames and dec_name in table.colnames:
            ra = _degrees(table[ra_name], ra_name)
            dec = _degrees(table[dec_name], dec_name)
            return SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
    raise ValueError(f"ir_catalog: no sky position columns found (expected a SkyCoord column or "
                     f"one of the pairs {[p for p in _POSITION_PAIRS[:4]]}...); columns are "
                     f"{table.colnames}")


def _degrees(column, name):
    unit = getattr(column, "unit", None)
    values = column.filled(np.nan) if hasattr(column, "filled") else column
    if not isinstance(values, u.Quantity):
        values = np.asarray(values, dtype=np.float64)
        if unit is None or unit == u.dimensionless_unscaled:
            return values  # unitless: degrees
        values = values * u.Unit(unit)
    try:
        return values.to_value(u.deg)
    except u.UnitsError:
        raise ValueError(f"ir_catalog: column {name!r} has unit {values.unit}, expected an "
                         "angle") from None


def find_id_column(table):
    """Name of the identifier column of a catalogue (e.g. AllWISE ``designation``), or None."""
    for name in _ID_COLUMNS:
        if name in table.colnames:
            return name
    return None


def match_positions(positions, table, *, radius, id_column=None, columns=()):
    """Nearest catalogue source of each position within ``radius``.

    Parameters
    ----------
    positions : `~astropy.coordinates.SkyCoord`
        Positions to match (NaN entries get no match).
    table : `~astropy.table.Table`
        The catalogue (see `catalog_positions`).
    radius : `~astropy.units.Quantity`
        Match radius (angle).
    id_column : str, optional
        Identifier column; default `find_id_column`.
    columns : sequence of str, optional
        Catalogue columns to copy for the matched source (as ``ir_<name>``).

    Returns
    -------
    matches : dict
        Column name -> values, for ``ir_match_index`` (row, -1 without a match),
        ``ir_match_id``, ``ir_match_sep`` (arcsec, NaN without a match),
        ``ir_match_ra``/``ir_match_dec`` (deg, ICRS) and ``ir_<name>`` for each copied
        column (float columns NaN, others masked, without a match).
    """
    cat = catalog_positions(table)
    n = len(positions) if not positions.isscalar else 1
    index = np.full(n, -1, dtype=np.int64)
    sep = np.full(n, np.nan)
    cat_ok = np.isfinite(cat.ra.deg) & np.isfinite(cat.dec.deg)
    if n and cat_ok.any():
        pos = positions.transform_to(ICRS())
        pos_ok = np.isfinite(pos.ra.deg) & np.isfinite(pos.dec.deg)
        good_rows = np.flatnonzero(cat_ok)
        if pos_ok.any():
            idx, d2d, _ = pos[pos_ok].match_to_catalog_sky(cat[good_rows])
            d = d2d.to_value(u.arcsec)
            hit = d <= radius.to_value(u.arcsec)
            rows = np.flatnonzero(pos_ok)
            index[rows[hit]] = good_rows[np.atleast_1d(idx)[hit]]
            sep[rows[hit]] = d[hit]
    matched = index >= 0
    take = np.where(matched, index, 0)
    out = {"ir_match_index": index}
    id_column = find_id_column(table) if id_column is None else id_column
    if id_column is not None:
        if id_column not in table.colnames:
            raise ValueError(f"id_column: the catalogue has no column {id_column!r}")
        ids = np.array([str(v).strip() for v in np.asarray(table[id_column])[take]]
                       if len(table) else [""] * n, dtype=str)
        out["ir_match_id"] = np.where(matched, ids, "").astype(str)
    else:
        out["ir_match_id"] = np.full(n, "", dtype="U1")
    out["ir_match_sep"] = sep * u.arcsec
    ra = np.where(matched, cat.ra.deg[take] if len(cat) else np.nan, np.nan)
    dec = np.where(matched, cat.dec.deg[take] if len(cat) else np.nan, np.nan)
    out["ir_match_ra"] = ra * u.deg
    out["ir_match_dec"] = dec * u.deg
    for name in columns:
        out[f"ir_{name}"] = _copy_column(table[name], take, matched)
    return out


def _copy_column(column, take, matched):
    unit = getattr(column, "unit", None)
    if len(column) == 0:  # an empty catalogue: nothing is matched
        if isinstance(column, u.Quantity) or np.asarray(column).dtype.kind == "f":
            values = np.full(len(take), np.nan)
            return values * u.Unit(unit) if unit is not None else values
        return MaskedColumn(np.zeros(len(take), dtype=np.asarray(column).dtype),
                            mask=np.ones(len(take), bool), unit=unit)
    if isinstance(column, u.Quantity):
        values = column[take].astype(np.float64)
        values[~matched] = np.nan
        return values
    data = column[take]
    if np.asarray(data).dtype.kind == "f":
        values = np.array(data.filled(np.nan) if hasattr(data, "filled") else data,
                          dtype=np.float64)
        values[~matched] = np.nan
        return values * u.Unit(unit) if unit is not None else values
    mask = ~matched
    if hasattr(data, "mask"):
        mask = mask | np.asarray(data.mask, dtype=bool)
    return MaskedColumn(np.asarray(data), mask=mask, unit=unit)

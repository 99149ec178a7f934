"""Cross-match of hosts with a synthetic infrared catalogue."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable, Table

from galcam.catalog import GalaxyCatalog, catalog_positions


def _ir_catalog(host_sky):
    """Sources at 1.5" and 3" from host 0, 7" from host 1, and one far away."""
    h0, h1 = host_sky[0], host_sky[1]
    pos = [h0.directional_offset_by(30 * u.deg, 1.5 * u.arcsec),
           h0.directional_offset_by(200 * u.deg, 3.0 * u.arcsec),
           h1.directional_offset_by(90 * u.deg, 7.0 * u.arcsec),
           h1.directional_offset_by(0 * u.deg, 10 * u.arcmin)]
    t = Table()
    t["designation"] = ["J0", "J1", "J2", "J3"]
    t["ra"] = [p.ra.deg for p in pos]
    t["dec"] = [p.dec.deg for p in pos]
    t["w1mpro"] = [14.1, 15.2, 16.3, 17.4]
    t["w1mpro"].unit = u.mag
    t["ph_qual"] = ["AAA", "AAB", "ABB", "BBB"]
    return t


def test_nearest_source_within_the_radius(catalog):
    hosts = catalog.to_table(["host_sky"])["host_sky"]
    ir = _ir_catalog(hosts)
    matched = catalog.crossmatch(ir, radius=5 * u.arcsec, columns=["w1mpro", "ph_qual"])
    assert matched is not catalog and catalog.ir_catalog is None  # immutable
    t = matched.to_table()
    assert t.colnames[-7:] == ["ir_match_index", "ir_match_id", "ir_match_sep", "ir_match_ra",
                               "ir_match_dec", "ir_w1mpro", "ir_ph_qual"]
    assert t["ir_match_index"].tolist() == [0, -1, -1]  # host 1's source is 7" away; 2 has none
    assert t["ir_match_id"].tolist() == ["J0", "", ""]
    assert t["ir_match_sep"].unit == u.arcsec
    assert t["ir_match_sep"][0].to_value(u.arcsec) == pytest.approx(1.5, abs=1e-4)
    assert np.all(np.isnan(t["ir_match_sep"][1:]))
    assert t["ir_match_ra"][0].to_value(u.deg) == pytest.approx(ir["ra"][0], abs=1e-9)
    assert t["ir_w1mpro"].unit == u.mag and t["ir_w1mpro"][0].value == pytest.approx(14.1)
    assert np.isnan(t["ir_w1mpro"][1])
    assert t["ir_ph_qual"][0] == "AAA" and t["ir_ph_qual"].mask.tolist() == [False, True, True]
    assert t.meta["match_radius_arcsec"] == 5.0 and t.meta["ir_catalog_rows"] == 4
    # a larger radius reaches the source of host 1
    wide = catalog.crossmatch(ir, radius=8 * u.arcsec).to_table(["ir_match_index",
                                                                 "ir_match_sep"])
    assert wide["ir_match_index"].tolist() == [0, 2, -1]
    assert wide["ir_match_sep"][1].to_value(u.arcsec) == pytest.approx(7.0, abs=1e-4)


def test_constructor_keywords_equal_crossmatch(synth, catalog):
    radio, result, _ = synth
    ir = _ir_catalog(catalog.to_table(["host_sky"])["host_sky"])
    a = GalaxyCatalog(result, ir_catalog=ir, match_radius=5 * u.arcsec,
                      ir_catalog_columns=["w1mpro"]).to_table(["ir_match_index", "ir_w1mpro"])
    b = catalog.crossmatch(ir, columns=["w1mpro"]).to_table(["ir_match_index", "ir_w1mpro"])
    assert a["ir_match_index"].tolist() == b["ir_match_index"].tolist()
    with pytest.raises(ValueError, match="not in the infrared catalogue"):
        GalaxyCatalog(result, ir_catalog=ir, ir_catalog_columns=["w4mpro"])
    with pytest.raises(ValueError, match="ir_id_column"):
        GalaxyCatalog(result, ir_catalog=ir, ir_id_column="nope")


def test_written_catalogue_with_matches_round_trips(catalog, tmp_path):
    ir = _ir_catalog(catalog.to_table(["host_sky"])["host_sky"])
    matched = catalog.crossmatch(ir, columns=["w1mpro", "ph_qual"])
    for name in ("m.ecsv", "m.fits", "m.vot"):
        back = QTable.read(matched.write_table(tmp_path / name))
        assert back["ir_match_index"].tolist() == [0, -1, -1]
        sep = back["ir_match_sep"]
        sep = getattr(sep, "unmasked", sep)  # VOTable reads NaN as masked
        assert sep[0].to_value(u.arcsec) == pytest.approx(1.5, abs=1e-4)


def test_catalogue_position_columns():
    sky = SkyCoord([10.0, 20.0] * u.deg, [-5.0, 5.0] * u.deg, frame="fk5")
    t = QTable({"coords": sky, "id": [1, 2]})
    assert np.allclose(catalog_positions(t).ra.deg, sky.icrs.ra.deg)
    vizier = Table({"RAJ2000": [10.0], "DEJ2000": [-5.0]})
    assert catalog_positions(vizier).dec.deg[0] == pytest.approx(-5.0)
    hours = QTable({"ra": [1.0] * u.hourangle, "dec": [2.0] * u.deg})
    assert catalog_positions(hours).ra.deg[0] == pytest.approx(15.0)
    with pytest.raises(ValueError, match="no sky position columns"):
        catalog_positions(Table({"x": [1.0], "y": [2.0]}))
    with pytest.raises(ValueError, match="expected an angle"):
        catalog_positions(QTable({"ra": [1.0] * u.m, "dec": [2.0] * u.deg}))
    with pytest.raises(TypeError, match="Table"):
        catalog_positions({"ra": [1.0], "dec": [2.0]})


def test_empty_infrared_catalogue_matches_nothing(catalog):
    empty = Table({"ra": np.zeros(0), "dec": np.zeros(0), "w1mpro": np.zeros(0)})
    t = catalog.crossmatch(empty, columns=["w1mpro"]).to_table(["ir_match_index", "ir_w1mpro"])
    assert t["ir_match_index"].tolist() == [-1, -1, -1]
    assert np.all(np.isnan(t["ir_w1mpro"]))

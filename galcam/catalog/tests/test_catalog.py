"""GalaxyCatalog: physical columns against known truth, tables, provenance, validation."""

import math

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse
from astropy.nddata import NDData
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning

from galcam.catalog import CATALOG_COLUMNS, GalaxyCatalog, column_definition
from galcam.catalog.columns import columns_rst
from galcam.inference.hosts import Hosts
from galcam.inference.result import SegmentationResult
from galcam.preprocessing import NoiseEstimator, NoiseResult

from . import _synth
from ._synth import CLASSES, SHAPE, detection, make_wcs


def _pa_diff(a, b):
    d = abs((a - b) % 180.0)
    return min(d, 180.0 - d)


# --- physical measurements ------------------------------------------------------------
def test_flux_density_and_peak_of_a_gaussian(catalog, synth):
    _, _, truth = synth
    t = catalog.to_table(["id", "peak_flux", "total_flux", "local_rms"])
    assert t["total_flux"].unit == u.mJy and t["peak_flux"].unit == u.mJy / u.beam
    # 50 mJy Gaussian, mask to 4 sigma (99.97 per cent of the flux), noise 0.1 mJy/beam
    assert t["total_flux"][0].to_value(u.mJy) == pytest.approx(truth["flux0"], rel=0.02)
    assert t["peak_flux"][0].to_value(u.mJy / u.beam) == pytest.approx(truth["peak0"], rel=0.02)
    # three beam-sized 10 mJy components: peak 10 mJy/beam, 3 x 10 mJy within 3 sigma
    assert t["peak_flux"][1].to_value(u.mJy / u.beam) == pytest.approx(10.0, rel=0.03)
    assert t["total_flux"][1].to_value(u.mJy) == pytest.approx(30.0 * (1 - math.exp(-4.3)),
                                                               rel=0.02)
    assert np.allclose(t["local_rms"].to_value(u.mJy / u.beam), _synth.RMS * 1e3, rtol=0.05)


def test_geometry_las_pa_area(catalog):
    t = catalog.to_table(["las", "pa", "area"])
    # double: disks of radius 5 px at x = 70 and 110: pixel corners span 51 x 11 px... the
    # largest distance is between opposite corners of the extreme pixels: sqrt(51^2 + 1) px
    assert t["las"][1].to_value(u.arcsec) == pytest.approx(2.0 * math.hypot(51, 1), abs=0.01)
    assert t["pa"][1].to_value(u.deg) == pytest.approx(90.0, abs=0.05)
    # Gaussian elongated along Dec: PA 0 (mod 180)
    assert _pa_diff(t["pa"][0].to_value(u.deg), 0.0) < 0.05
    # rectangle of 10 x 6 pixels of 2 arcsec
    assert t["area"][2].to_value(u.arcsec**2) == pytest.approx(240.0, rel=1e-6)
    assert t["las"][2].to_value(u.arcsec) == pytest.approx(2.0 * math.hypot(10, 6), rel=1e-5)
    assert t["pa"][2].to_value(u.deg) == pytest.approx(90.0, abs=0.05)  # longer along RA
    assert np.all((t["pa"].value >= 0) & (t["pa"].value < 180))


@pytest.mark.parametrize(("direction", "expected"), [((1, 1), 135.0), ((-1, 1), 45.0)])
def test_position_angle_of_diagonal_masks(direction, expected):
    # east is -x: a mask along (-1, 1) points north-east (PA 45), along (1, 1) north-west
    wcs = make_wcs()
    y, x = np.mgrid[:SHAPE[0], :SHAPE[1]]
    dx, dy = direction
    along = ((x - 80) * dx + (y - 80) * dy) / math.sqrt(2)
    across = ((x - 80) * dy - (y - 80) * dx) / math.sqrt(2)
    mask = (np.abs(along) <= 15) & (np.abs(across) <= 2)
    result = SegmentationResult([detection(0, "FR-II", mask, wcs=wcs)], classes=CLASSES,
                                shape=SHAPE, wcs=wcs)
    pa = GalaxyCatalog(result).to_table(["pa"])["pa"][0].to_value(u.deg)
    assert _pa_diff(pa, expected) < 0.1


def test_position_angle_follows_a_rotated_wcs():
    # PC matrix rotated by 30 deg: the pixel +y axis points to PA 30 on the sky
    wcs = make_wcs()
    theta = math.radians(30.0)
    wcs.wcs.pc = [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]
    mask = np.zeros(SHAPE, bool)
    mask[50:110, 78:83] = True
    result = SegmentationResult([detection(0, "FR-I", mask, wcs=wcs)], classes=CLASSES,
                                shape=SHAPE, wcs=wcs)
    t = GalaxyCatalog(result).to_table(["pa", "las", "area"])
    assert _pa_diff(t["pa"][0].to_value(u.deg), 30.0) < 0.1
    assert t["area"][0].to_value(u.arcsec**2) == pytest.approx(300 * 4.0, rel=1e-6)
    assert t["las"][0].to_value(u.arcsec) == pytest.approx(2 * math.hypot(60, 5), rel=1e-4)


def test_round_mask_has_no_position_angle():
    wcs = make_wcs()
    result = SegmentationResult([detection(0, "R", _synth.disk(SHAPE, 80, 80, 6), wcs=wcs)],
                                classes=CLASSES, shape=SHAPE, wcs=wcs)
    assert np.isnan(GalaxyCatalog(result).to_table(["pa"])["pa"][0])


def test_components_are_islands_in_the_mask(catalog, synth):
    _, result, _ = synth
    # Gaussian: 1 island; core + two lobes: 3; rectangle on pure noise: none
    assert catalog.to_table(["n_components"])["n_components"].tolist() == [1, 3, 0]
    # without a radio image: connected parts of the mask
    t = GalaxyCatalog(result).to_table(["n_components", "peak_flux", "total_flux",
                                        "local_rms"])
    assert t["n_components"].tolist() == [1, 3, 1]
    assert np.all(np.isnan(t["peak_flux"])) and np.all(np.isnan(t["total_flux"]))
    assert np.all(np.isnan(t["local_rms"]))


def test_noise_given_and_noise_maps(synth):
    radio, result, _ = synth
    given = NoiseResult(method="mad", rms=0.2e-3 * u.Jy / u.beam,
                        background=0.0 * u.Jy / u.beam)
    t = GalaxyCatalog(result, radio=radio, noise=given).to_table(["local_rms"])
    assert np.allclose(t["local_rms"].to_value(u.mJy / u.beam), 0.2)
    noise = NoiseEstimator(box_size=40)(radio)
    cat = GalaxyCatalog(result, radio=radio, noise=noise)
    t = cat.to_table(["local_rms", "xcentroid", "ycentroid"])
    expected = noise.rms_at(t["xcentroid"], t["ycentroid"]).to_value(u.mJy / u.beam)
    assert np.allclose(t["local_rms"].to_value(u.mJy / u.beam), expected)
    assert t.meta["noise_method"] == "sigma_clip"


def test_no_beam_gives_nan_flux_and_a_warning(synth):
    radio, result, truth = synth
    nobeam = NDData(radio.data, wcs=radio.wcs, unit=radio.unit, meta={"beam": None})
    with pytest.warns(AstropyUserWarning, match="no beam") as record:
        cat = GalaxyCatalog(result, radio=nobeam)
    assert record[0].filename == __file__  # points at the caller, not at galcam
    t = cat.to_table(["total_flux", "peak_flux"])
    assert np.all(np.isnan(t["total_flux"]))
    assert t["peak_flux"][0].to_value(u.mJy / u.beam) == pytest.approx(truth["peak0"], rel=0.02)


def test_brightness_in_mjy_per_beam_is_converted(synth):
    radio, result, truth = synth
    mjy = NDData(radio.data * 1e3, wcs=radio.wcs, unit=u.mJy / u.beam, meta=radio.meta)
    t = GalaxyCatalog(result, radio=mjy).to_table(["total_flux"])
    assert t["total_flux"][0].to_value(u.mJy) == pytest.approx(truth["flux0"], rel=0.02)


# --- tables --------------------------------------------------------------------------------
def test_table_columns_units_descriptions(catalog):
    t = catalog.to_table()
    assert t.colnames == catalog.colnames
    assert t.colnames[:7] == ["id", "class", "score", "prob_FR_I", "prob_FR_II", "prob_FR_X",
                              "prob_R"]
    assert isinstance(t["sky_centroid"], SkyCoord) and isinstance(t["host_sky"], SkyCoord)
    for name in t.colnames:
        definition = column_definition(name)
        assert t[name].info.description, name
        if definition.dtype == "skycoord":
            continue
        unit = getattr(t[name], "unit", None)
        assert (unit is None and definition.unit is None) or unit == definition.unit, name
    assert t["prob_FR_II"].info.description == "Classifier probability of class FR-II."
    assert t["class"].tolist() == ["FR-I", "FR-II", "R"]
    assert t["prob_FR_II"][1] == pytest.approx(0.9)
    # sky centroid agrees with the pixel centroid through the WCS
    sky = catalog.wcs.pixel_to_world(t["xcentroid"], t["ycentroid"])
    assert np.all(sky.separation(t["sky_centroid"]) < 1 * u.mas)
    # no host for the third galaxy
    assert np.isnan(t["host_x"][2]) and t["host_fallback"][2] and np.isnan(t["host_score"][2])
    assert t["bbox_xmax"][2] - t["bbox_xmin"][2] + 1 == 10


def test_every_defined_column_is_documented():
    text = columns_rst()
    for col in CATALOG_COLUMNS:
        assert f"``{col.name}``" in text
        assert col.description and col.dtype and col.group
    import galcam.catalog.columns as columns_module

    assert "``total_flux``" in columns_module.__doc__


def test_selected_columns_and_errors(catalog):
    t = catalog.to_table(["las", "id"])
    assert t.colnames == ["las", "id"]
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['nope'\]"):
        catalog.to_table(["id", "nope"])
    flat = catalog.to_table(["id", "sky_centroid"], skycoord=False)
    assert flat.colnames == ["id", "sky_centroid_ra", "sky_centroid_dec"]
    assert flat["sky_centroid_ra"].unit == u.deg


def test_only_needed_groups_are_computed(synth):
    radio, result, _ = synth
    cat = GalaxyCatalog(result, radio=radio)
    cat.to_table(["id", "class", "las"])
    assert "_group_geometry" in cat.__dict__
    assert "_group_photometry" not in cat.__dict__ and "islands" not in cat.__dict__


def test_provenance_meta(catalog):
    meta = catalog.to_table(["id"]).meta
    import galcam

    assert meta["galcam_version"] == galcam.__version__
    assert meta["model_name"] == "synthetic" and meta["model_sha256"] == "0" * 64
    assert meta["class_threshold"] == 0.5 and meta["compute_device"] == "cpu"
    assert meta["radio_image_file"] == "synthetic.fits"
    assert meta["model_classes"] == "FR-I,FR-II,FR-X,R"
    assert meta["date_created"].endswith("+00:00")
    assert all(isinstance(v, (str, int, float, bool)) for v in meta.values())
    # values of other types in the result's meta are stored as JSON text
    odd = SegmentationResult([], classes=CLASSES, shape=SHAPE, wcs=make_wcs(),
                             meta={"class_threshold": [0.5, 0.6], "score_threshold": np.nan,
                                   "device": None})
    with pytest.warns(AstropyUserWarning, match="no galaxies"):
        meta = GalaxyCatalog(odd).to_table().meta
    assert meta["class_threshold"] == "[0.5, 0.6]" and meta["score_threshold"] == ""
    assert meta["compute_device"] == ""
    extra = GalaxyCatalog(odd, meta={"category_ids": {"FR-I": 1}, "radio_file": "a.fits"})
    with pytest.warns(AstropyUserWarning, match="no galaxies"):
        meta = extra.to_table().meta
    assert meta["category_ids"] == '{"FR-I": 1}' and meta["radio_file"] == "a.fits"
    with pytest.raises(TypeError, match="meta"):
        GalaxyCatalog(odd, meta=["x"])


def test_empty_result_gives_empty_table_with_same_columns(catalog, tmp_path):
    wcs = make_wcs()
    empty = GalaxyCatalog(SegmentationResult([], classes=CLASSES, shape=SHAPE, wcs=wcs))
    with pytest.warns(AstropyUserWarning, match="no galaxies"):
        t = empty.to_table()
    assert len(t) == 0 and t.colnames == catalog.colnames
    for fmt in ("ecsv", "fits", "vot"):
        with pytest.warns(AstropyUserWarning, match="no galaxies"):
            empty.write_table(tmp_path / f"empty.{fmt}")
    back = QTable.read(tmp_path / "empty.ecsv")
    assert len(back) == 0 and back.colnames == catalog.colnames


def _check_values(back, orig, names):
    for name in names:
        a, b = back[name], orig[name]
        if isinstance(b, SkyCoord):
            a = SkyCoord(a)
            assert np.array_equal(np.isnan(a.ra.deg), np.isnan(b.ra.deg)), name
            finite = np.isfinite(b.ra.deg)
            assert np.all(a[finite].separation(b[finite]) < 1 * u.mas), name
        elif isinstance(b, u.Quantity):
            assert a.unit == b.unit, name
            assert np.allclose(a.value, b.value, equal_nan=True), name
        else:
            a, b = np.asarray(a), np.asarray(b)
            if a.dtype.kind == "S":  # FITS strings come back as bytes
                a = a.astype(str)
            assert np.array_equal(a, b, equal_nan=b.dtype.kind == "f"), name


def test_ecsv_fits_votable_round_trips(catalog, tmp_path):
    orig = catalog.to_table()
    for suffix in ("ecsv", "fits"):
        path = catalog.write_table(tmp_path / f"cat.{suffix}")
        back = QTable.read(path)
        assert back.colnames == orig.colnames
        _check_values(back, orig, orig.colnames)
        assert back["total_flux"].info.description == orig["total_flux"].info.description
        assert back.meta["model_sha256"] == "0" * 64
        assert back.meta["galcam_version"] == orig.meta["galcam_version"]
    path = catalog.write_table(tmp_path / "cat.vot")
    back = QTable.read(path, format="votable")
    flat = catalog.to_table(skycoord=False)
    assert back.colnames == flat.colnames
    _check_values(back, flat, flat.colnames)
    infos = {i.name: i.value for i in parse(str(path)).get_first_table().infos}
    assert infos["model_name"] == "synthetic"
    # VOTable wraps long descriptions over lines
    assert " ".join(back["las"].info.description.split()) == orig["las"].info.description


def test_write_table_refuses_to_overwrite_and_checks_format(catalog, tmp_path):
    path = catalog.write_table(tmp_path / "cat.ecsv")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        catalog.write_table(path)
    assert path.read_bytes() == before
    catalog.write_table(path, overwrite=True, columns=["id"])
    assert QTable.read(path).colnames == ["id"]
    with pytest.raises(ValueError, match="suffix"):
        catalog.write_table(tmp_path / "cat.txt")
    with pytest.raises(ValueError, match="format"):
        catalog.write_table(tmp_path / "cat.txt", format="csv")
    catalog.write_table(tmp_path / "cat.txt", format="fits")
    assert QTable.read(tmp_path / "cat.txt", format="fits").colnames == catalog.colnames
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --- inputs ---------------------------------------------------------------------------------
def test_input_validation(synth):
    radio, result, _ = synth
    with pytest.raises(TypeError, match="SegmentationResult"):
        GalaxyCatalog("result")
    with pytest.raises(ValueError, match="shape"):
        GalaxyCatalog(result, radio=NDData(radio.data[:50], wcs=radio.wcs, unit=radio.unit))
    with pytest.raises(u.UnitsError, match="Jy/beam"):
        GalaxyCatalog(result, radio=NDData(radio.data, wcs=radio.wcs, unit=u.K))
    shifted = make_wcs(center=(150.1, 2.0))
    with pytest.raises(ValueError, match="WCS differs"):
        GalaxyCatalog(result, radio=NDData(radio.data, wcs=shifted, unit=radio.unit))
    with pytest.raises(TypeError, match="NDData"):
        GalaxyCatalog(result, radio=radio.data)
    noise = NoiseResult(method="mad", rms=1e-4 * u.Jy / u.beam, background=0 * u.Jy / u.beam)
    with pytest.raises(ValueError, match="without the radio image"):
        GalaxyCatalog(result, noise=noise)
    with pytest.raises(TypeError, match="NoiseResult"):
        GalaxyCatalog(result, radio=radio, noise=0.1)
    with pytest.raises(ValueError, match="match_radius"):
        GalaxyCatalog(result, match_radius=5)
    with pytest.raises(ValueError, match="without ir_catalog"):
        GalaxyCatalog(result, ir_catalog_columns=["w1mpro"])


def test_hosts_keyword_and_immutability(synth):
    _, result, _ = synth
    wcs = result.wcs
    bare = SegmentationResult([d.__class__(**{**d.__dict__, "host_x": math.nan,
                                                "host_y": math.nan, "host_sky": None})
                               for d in result], classes=CLASSES, shape=SHAPE, wcs=wcs)
    hosts = Hosts([10.0, 20.0, 30.0], [11.0, 21.0, 31.0],
                  skycoord=wcs.pixel_to_world([10.0, 20.0, 30.0], [11.0, 21.0, 31.0]),
                  score=[0.5, 0.6, 0.0], fallback=[False, False, True])
    cat = GalaxyCatalog(bare, hosts=hosts)
    t = cat.to_table(["host_x", "host_y", "host_score", "host_fallback"])
    assert t["host_x"].tolist() == [10.0, 20.0, 30.0]
    assert t["host_fallback"].tolist() == [False, False, True]
    with pytest.raises(AttributeError):
        cat.result = bare
    with pytest.raises(AttributeError, match="immutable"):
        cat.noise = None
    assert "3 galaxies" in repr(cat) and len(cat) == 3


def test_result_without_wcs():
    mask = np.zeros(SHAPE, bool)
    mask[10:20, 10:30] = True
    result = SegmentationResult([detection(0, "FR-I", mask)], classes=CLASSES, shape=SHAPE)
    cat = GalaxyCatalog(result)
    t = cat.to_table()
    assert "sky_centroid" not in t.colnames and "host_sky" not in t.colnames
    assert np.isnan(t["area"][0]) and t["n_components"][0] == 1
    with pytest.raises(ValueError, match="no WCS"):
        cat.to_regions()


def test_images_read_from_fits_files(synth, tmp_path):
    from galcam.io import read_image, write_image

    radio, result, truth = synth
    path = write_image(radio, tmp_path / "radio.fits")
    image = read_image(path, memmap=True)
    t = GalaxyCatalog(result, radio=image).to_table(["total_flux", "peak_flux"])
    assert t["total_flux"][0].to_value(u.mJy) == pytest.approx(truth["flux0"], rel=0.02)
    assert t.meta["radio_image_file"] == str(path)


def test_import_is_torch_free():
    import subprocess
    import sys

    code = ("import sys, galcam.catalog\n"
            "bad = [m for m in ('torch', 'torchvision') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("ctype, radesys, expected", [
    (("RA---SIN", "DEC--SIN"), "ICRS", "icrs"),
    (("RA---SIN", "DEC--SIN"), "FK4", "fk4 (equinox B1950.000)"),
    (("GLON-SIN", "GLAT-SIN"), "", "galactic"),
])
def test_catalogue_names_the_sky_frame(ctype, radesys, expected):
    from astropy.wcs import WCS

    from galcam.catalog.catalog import _frame_name

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = list(ctype)
    wcs.wcs.radesys = radesys
    if radesys == "FK4":
        wcs.wcs.equinox = 1950.0
    assert _frame_name(wcs) == expected


def test_one_table_writer_per_format(tmp_path):
    """write_table: the format from the suffix, atomic, nothing overwritten unasked."""
    import astropy.units as u
    from astropy.table import QTable

    from galcam.catalog import TABLE_WRITERS, mask_photometry, table_format, write_table

    assert set(TABLE_WRITERS) == {"ascii.ecsv", "fits", "votable"}
    table = QTable({"id": [0, 1], "peak_flux": [1.0, 2.0] * u.mJy / u.beam})
    table.meta["model"] = "m"
    for name in ("t.ecsv", "t.fits", "t.vot"):
        path = write_table(table, tmp_path / name)
        back = QTable.read(path)
        assert list(back["id"]) == [0, 1]
        assert back["peak_flux"].unit == u.mJy / u.beam
        with pytest.raises(FileExistsError, match="exists already"):
            write_table(table, path)
    assert table_format("x.FITS.gz") == "fits"
    with pytest.raises(ValueError, match="cannot tell the table format"):
        write_table(table, tmp_path / "t.txt")
    # the photometry: peak and sum over the beam, NaN pixels left out
    data = np.zeros((10, 10))
    data[2:4, 2:4] = [[1.0, 2.0], [np.nan, 3.0]]
    peak, total = mask_photometry(data, "Jy/beam", [(2, 2, np.ones((2, 2), bool))],
                                  beam_pixels=2.0)
    assert peak[0] == 3000 * u.mJy / u.beam and total[0] == 3000 * u.mJy
    _, none = mask_photometry(data, "Jy/beam", [(2, 2, np.ones((2, 2), bool))])
    assert np.isnan(none[0])


def test_galaxies_in_the_galactic_plane_are_flagged():
    """A source within 5 deg of the Galactic plane (HII regions look extended too) is flagged."""
    from galcam.inference.result import SegmentationResult

    from ._synth import SHAPE, detection, disk, make_wcs

    for center, expected in (((272.2, -19.9), True),   # W31, l = 10.3, b = -0.2
                             ((150.0, 2.0), False)):   # COSMOS, b = +42
        wcs = make_wcs(center=center)
        det = detection(0, "FR-II", disk(SHAPE, 60, 60, 6), wcs=wcs)
        result = SegmentationResult([det], classes=("FR-I", "FR-II", "FR-X", "R"),
                                    shape=SHAPE, wcs=wcs)
        table = GalaxyCatalog(result).to_table()
        assert bool(table["flag_galactic_plane"][0]) is expected
        assert "Galactic plane" in table["flag_galactic_plane"].info.description

"""Mask polygons and DS9/CRTF region files: geometry and round trips through regions."""

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from regions import PixCoord, PointSkyRegion, PolygonPixelRegion, PolygonSkyRegion, Regions
from scipy import ndimage

from galcam.catalog import GalaxyCatalog, class_color, mask_polygons, serialize_regions
from galcam.inference.result import SegmentationResult

from ._synth import CLASSES, SHAPE, make_wcs


def _contained(polygons, shape, wcs=None):
    """Boolean image: pixel centres inside any of the polygons."""
    y, x = np.mgrid[:shape[0], :shape[1]]
    pix = PixCoord(x.ravel(), y.ravel())
    inside = np.zeros(x.size, bool)
    for poly in polygons:
        if wcs is not None:
            poly = poly.to_pixel(wcs)
        inside |= poly.contains(pix)
    return inside.reshape(shape)


def test_polygons_of_a_mask_with_parts_and_a_hole():
    mask = np.zeros((40, 50), bool)
    mask[5:20, 5:25] = True
    mask[10:14, 10:15] = False  # hole
    mask[25:35, 30:45] = True  # detached part
    mask[36, 46] = True  # a single-pixel part
    polys = mask_polygons(mask)
    assert all(isinstance(p, PolygonPixelRegion) for p in polys)
    assert len(polys) == 3
    inside = _contained(polys, mask.shape)
    assert np.all(inside[mask])  # every mask pixel centre
    filled = ndimage.binary_fill_holes(mask)
    assert np.array_equal(inside, filled)  # and nothing else but the hole


def test_polygons_of_random_blobs_contain_exactly_the_mask(rng):
    noise = ndimage.gaussian_filter(rng.normal(size=(60, 70)), 2.0)
    mask = noise > 0.1
    polys = mask_polygons(mask[5:55, 3:66], origin=(3, 5))
    inside = _contained(polys, mask.shape)
    sub = np.zeros_like(mask)
    sub[5:55, 3:66] = mask[5:55, 3:66]
    filled = ndimage.binary_fill_holes(sub, structure=np.ones((3, 3)))
    assert np.all(inside[sub])
    assert np.all(~inside[~filled])
    n_parts = ndimage.label(sub, structure=np.ones((3, 3)))[1]
    assert len(polys) == n_parts


def test_mask_polygons_on_the_sky_and_errors():
    wcs = make_wcs()
    mask = np.zeros(SHAPE, bool)
    mask[50:60, 70:90] = True
    (poly,) = mask_polygons(mask, wcs, meta={"text": "x"}, visual={"color": "red"})
    assert isinstance(poly, PolygonSkyRegion) and poly.meta["text"] == "x"
    assert np.array_equal(_contained([poly], SHAPE, wcs), mask)
    assert mask_polygons(np.zeros((5, 5), bool)) == []
    with pytest.raises(ValueError, match="2-D"):
        mask_polygons(np.zeros(5, bool))


def test_ds9_header_and_global_line_are_always_written():
    wcs = make_wcs()
    mask = np.zeros(SHAPE, bool)
    mask[50:60, 70:90] = True
    a = mask_polygons(mask, wcs, visual={"linewidth": 1})
    b = mask_polygons(mask[::-1], wcs, visual={"linewidth": 2})
    text = serialize_regions(Regions(a + b), "ds9")  # no common meta: regions writes no global
    lines = text.splitlines()
    assert lines[0] == "# Region file format: DS9 version 4.1"
    assert lines[1].startswith("global ") and lines[2] == "icrs"
    assert len(Regions.parse(text, format="ds9")) == 2
    with pytest.raises(ValueError, match="format"):
        serialize_regions(Regions(a), "reg")


@pytest.mark.parametrize("frame", ["fk4", "fk5_b1950", "galactic", "icrs"])
def test_region_files_hold_the_right_sky_position_in_any_frame(frame):
    from astropy import units as u
    from astropy.coordinates import FK4, FK5, ICRS, Galactic, SkyCoord
    from regions import CircleSkyRegion

    truth = SkyCoord(150.3, -30.2, unit="deg", frame="icrs")
    target = {"fk4": FK4(equinox="B1950"), "fk5_b1950": FK5(equinox="B1950"),
              "galactic": Galactic(), "icrs": ICRS()}[frame]
    circle = CircleSkyRegion(truth.transform_to(target), 3 * u.arcsec)
    for fmt in ("ds9", "crtf"):
        text = serialize_regions(Regions([circle]), fmt)
        back = Regions.parse(text, format=fmt)[0].center
        assert back.separation(truth) < 0.01 * u.arcsec, (fmt, back)
        # both files in ICRS, as the catalogue (the CRTF file said J2000 before)
        assert ("global coord=ICRS" in text) if fmt == "crtf" else ("\nicrs\n" in text)
        assert back.frame.name == "icrs"


def test_class_colours():
    assert class_color("FR-I") == "red" and class_color("frii") == "blue"
    assert class_color("FR_X") == "green" and class_color("R") == "magenta"
    assert class_color("FR-II", {"FRII": "yellow"}) == "yellow"
    assert class_color("other") == "cyan"


def test_regions_content(catalog):
    regions = catalog.to_regions()
    polys = [r for r in regions if isinstance(r, PolygonSkyRegion)]
    points = [r for r in regions if isinstance(r, PointSkyRegion)]
    assert len(polys) == 1 + 3 + 1  # the double has three detached components
    assert len(points) == 2  # the third galaxy has no host
    assert polys[0].meta["text"] == "FR-I 0.95 #0" and polys[0].visual["color"] == "red"
    assert polys[1].meta["text"] == "FR-II 0.90 #1" and polys[2].meta["text"] == "#1"
    assert polys[1].meta["tag"] == ["FR-II", "galaxy 1"]
    assert points[1].visual["color"] == "blue" and points[1].visual["marker"] == "x"
    assert len(catalog.to_regions(include_hosts=False)) == 5
    recolored = catalog.to_regions(colors={"FR-I": "yellow"})
    assert recolored[0].visual["color"] == "yellow"
    with pytest.raises(ValueError, match="colors"):
        catalog.to_regions(colors=["red"])
    # to_regions returns copies: the catalogue's polygons are not changed by users
    regions[0].meta["text"] = "changed"
    assert catalog.to_regions()[0].meta["text"] == "FR-I 0.95 #0"


@pytest.mark.parametrize("fmt", ["ds9", "crtf"])
def test_region_file_round_trip_encloses_the_masks(catalog, synth, tmp_path, fmt):
    _, result, truth = synth
    path = catalog.write_regions(tmp_path / f"galaxies.{fmt}", fmt)
    text = path.read_text()
    if fmt == "ds9":
        lines = text.splitlines()
        assert lines[0].startswith("# Region file format: DS9")
        assert lines[1].startswith("global ") and lines[2] == "icrs"
        assert "text={FR-II 0.90 #1}" in text and "color=blue" in text and "point=x" in text
    else:
        assert text.startswith("#CRTFv0") and "label='FR-II 0.90 #1'" in text
        assert "symbol[" in text
    back = Regions.read(path, format=fmt)
    assert len(back) == len(catalog.to_regions())
    polys = [r for r in back if isinstance(r, PolygonSkyRegion)]
    # galaxies in order: 1, 3 and 1 polygons
    groups = [polys[0:1], polys[1:4], polys[4:5]]
    for mask, group in zip(truth["masks"], groups):
        inside = _contained(group, SHAPE, result.wcs)
        assert inside[mask].mean() >= 0.99
        assert (inside & ~mask).sum() <= 0.01 * mask.sum()
        # in fact exactly: contours lie >= 0.35 px from every pixel centre
        assert np.array_equal(inside, mask)
    points = [r for r in back if isinstance(r, PointSkyRegion)]
    hx, hy = points[0].center.to_pixel(result.wcs)
    assert hx == pytest.approx(40.3, abs=1e-3) and hy == pytest.approx(40.6, abs=1e-3)


def test_region_files_refuse_to_overwrite(catalog, tmp_path):
    path = catalog.write_regions(tmp_path / "g.reg")
    before = path.read_text()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        catalog.write_regions(path)
    catalog.write_regions(path, overwrite=True, include_hosts=False)
    assert path.read_text() != before
    with pytest.raises(ValueError, match="format"):
        catalog.write_regions(tmp_path / "g.txt", "fits")


def test_empty_catalogue_gives_valid_region_files(tmp_path):
    wcs = make_wcs()
    empty = GalaxyCatalog(SegmentationResult([], classes=CLASSES, shape=SHAPE, wcs=wcs))
    assert len(empty.to_regions()) == 0
    text = serialize_regions(empty.to_regions(), "ds9")
    assert text.splitlines()[0].startswith("# Region file format: DS9")
    for fmt in ("ds9", "crtf"):
        path = empty.write_regions(tmp_path / f"e.{fmt}", fmt)
        assert len(Regions.read(path, format=fmt)) == 0
    with pytest.warns(AstropyUserWarning, match="no galaxies"):
        empty.to_table()

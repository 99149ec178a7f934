"""SegmentationResult, Detection, RLE helpers and HostFinder on hand-made results."""

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.utils.exceptions import AstropyUserWarning
from pycocotools import mask as mask_utils

from galcam.inference.result import (
    Detection,
    HostEvidence,
    SegmentationResult,
    category_ids,
    crop_to_rle,
    mask_to_rle,
    rle_to_mask,
)

from .conftest import CLASSES, make_wcs


def test_modules_import_without_torch():
    code = ("import sys; import galcam.inference.result, galcam.inference.hosts, "
            "galcam.inference.tiling, galcam.inference.resample; "
            "from galcam.inference import SegmentationResult, HostFinder; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crop_rle_matches_pycocotools(seed):
    rng = np.random.default_rng(seed)
    shape = (37, 29)
    crop = rng.random((9, 7)) > 0.5
    x0, y0 = (22, 28) if seed == 2 else (3, 5)  # seed 2: crop in the last row/column
    full = np.zeros(shape, np.uint8)
    full[y0:y0 + 9, x0:x0 + 7] = crop
    expected = mask_utils.encode(np.asfortranarray(full))
    got = crop_to_rle(crop, x0, y0, shape)
    assert got["counts"] == expected["counts"].decode()
    assert got["size"] == [37, 29]
    np.testing.assert_array_equal(rle_to_mask(got), full.astype(bool))


def test_rle_edge_cases():
    empty = mask_to_rle(np.zeros((4, 5), bool))
    assert not rle_to_mask(empty).any()
    full = mask_to_rle(np.ones((4, 5), bool))
    assert rle_to_mask(full).all()
    with pytest.raises(ValueError, match="not inside the image"):
        crop_to_rle(np.ones((3, 3), bool), 3, 0, (4, 5))


def _detection(k, x0, y0, crop, score, cls=1, wcs=None, host=True):
    crop = np.asarray(crop, bool)
    ys, xs = np.nonzero(crop)
    cx, cy = xs.mean() + x0, ys.mean() + y0
    ev = HostEvidence(x0, y0, crop, crop.astype(np.float32), np.ones(crop.shape, np.float32))
    extra = {}
    if host:
        hx, hy = float(xs[0] + x0), float(ys[0] + y0)
        extra = dict(host_x=hx, host_y=hy, host_score=0.5, host_fallback=False,
                     host_sky=None if wcs is None else wcs.pixel_to_world(hx, hy))
    return Detection(id=k, class_name=CLASSES[cls], class_index=cls, score=score,
                     class_probabilities=(0.1, 0.9, 0.2, 0.3),
                     bbox=(x0, y0, crop.shape[1], crop.shape[0]), mask_crop=crop,
                     centroid=(cx, cy),
                     sky_centroid=None if wcs is None else wcs.pixel_to_world(cx, cy),
                     evidence=ev, **extra)


@pytest.fixture
def result():
    wcs = make_wcs((40, 50))
    a = np.zeros((6, 8), bool)
    a[1:5, 2:7] = True
    b = np.ones((3, 3), bool)
    dets = [_detection(0, 10, 12, a, 0.8, 1, wcs), _detection(1, 40, 30, b, 0.3, 3, wcs)]
    return SegmentationResult(dets, classes=CLASSES, shape=(40, 50), wcs=wcs,
                              meta={"model": "test"})


def test_result_basics(result):
    assert len(result) == 2 and [d.id for d in result] == [0, 1]
    assert result[0].area == 20
    masks = result.masks()
    assert masks.shape == (2, 40, 50) and masks[0].sum() == 20
    np.testing.assert_array_equal(result[0].mask((40, 50)), masks[0])
    with pytest.raises(AttributeError):
        result.detections = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result[0].score = 1.0
    with pytest.raises(ValueError):
        result[0].mask_crop[0, 0] = True
    assert "1 FR-II" in repr(result) and "1 R" in repr(result)
    assert len(result.select(score_threshold=0.5)) == 1
    assert result[0] == result[0] and result[0] != result[1]  # identity, no array compare


def test_to_coco_valid_for_pycocotools(result):
    from pycocotools.coco import COCO

    cats = [{"id": 7, "name": "fr_ii"}, {"id": 3, "name": "R"}, {"id": 1, "name": "FR-I"}]
    out = result.to_coco(12, cats)
    assert [o["category_id"] for o in out] == [7, 3]
    for o in out:
        assert set(o) == {"image_id", "category_id", "score", "segmentation", "bbox",
                          "keypoints"}
        assert isinstance(o["segmentation"]["counts"], str)
        assert o["keypoints"][2] == 2
        x, y, w, h = o["bbox"]
        assert x <= o["keypoints"][0] < x + w and y <= o["keypoints"][1] < y + h
    gt = COCO()
    gt.dataset = {"images": [{"id": 12, "width": 50, "height": 40}],
                  "categories": cats, "annotations": []}
    gt.createIndex()
    res = gt.loadRes(out)
    ann = res.loadAnns(res.getAnnIds())[0]
    np.testing.assert_array_equal(res.annToMask(ann).astype(bool), result[0].mask((40, 50)))
    with pytest.raises(ValueError, match="no category id for class"):
        result.to_coco(12, {"FR-II": 1})
    with pytest.raises(ValueError, match="image_id"):
        result.to_coco("12")


def test_category_ids_default_and_errors():
    assert category_ids(CLASSES) == {"FR-I": 1, "FR-II": 2, "FR-X": 3, "R": 4}
    assert category_ids(CLASSES, {"frx": 9}) == {"FR-X": 9}
    with pytest.raises(ValueError, match="categories"):
        category_ids(CLASSES, [1, 2])
    assert category_ids(CLASSES, [{"id": 5, "name": "fr_ii"}, {"id": 6, "name": "Q"}]) == {
        "FR-II": 5}
    with pytest.raises(ValueError, match="category id 7: a class name must be a string"):
        category_ids(CLASSES, {3: 7})


def test_to_table_is_the_catalogue(result):
    """One schema: result.to_table() is the catalogue's table, whichever door."""
    t = result.to_table()
    assert t.colnames == result.to_catalog().to_table().colnames
    assert len(t) == 2
    assert t["area"].unit == u.arcsec ** 2  # the catalogue's unit, not pixels
    assert isinstance(t["sky_centroid"], SkyCoord) and isinstance(t["host_sky"], SkyCoord)
    assert list(t["class"]) == ["FR-II", "R"]
    assert t["bbox_xmax"][0] == 10 + 8 - 1
    np.testing.assert_allclose(t["prob_FR_II"], [0.9, 0.9])
    assert t.meta["model_name"] == "test"
    assert t["score"].info.description  # described, as every catalogue column
    assert np.all(np.isnan(t["peak_flux"]))  # no radio image given
    assert result.to_table(["id", "class"]).colnames == ["id", "class"]


def test_empty_result_is_valid():
    empty = SegmentationResult([], classes=CLASSES, shape=(20, 30), wcs=make_wcs((20, 30)))
    assert len(empty) == 0 and bool(empty)
    assert empty.to_coco(1) == []
    with pytest.warns(AstropyUserWarning, match="found no galaxies"):
        t = empty.to_table()
    assert len(t) == 0 and "sky_centroid" in t.colnames and "prob_R" in t.colnames
    assert empty.masks().shape == (0, 20, 30)


def test_no_wcs_table_has_no_sky_columns():
    d = _detection(0, 0, 0, np.ones((2, 2), bool), 0.5)
    res = SegmentationResult([d], classes=CLASSES, shape=(5, 5))
    t = res.to_table()
    assert "sky_centroid" not in t.colnames and "host_sky" not in t.colnames


def test_host_finder_on_result(result):
    from galcam.inference import HostFinder

    hosts = HostFinder(method="paper")(result)
    assert len(hosts) == 2
    for k, d in enumerate(result):
        x0, y0, w, h = d.bbox
        assert x0 - 0.5 <= hosts.x[k] <= x0 + w - 0.5 and y0 - 0.5 <= hosts.y[k] <= y0 + h - 0.5
    sky = result.wcs.pixel_to_world(hosts.x, hosts.y)
    assert np.all(sky.separation(hosts.skycoord) < 1e-6 * u.arcsec)
    new = result.with_hosts(hosts)
    assert new[0].host_x == hosts.x[0] and new[0].host_sky is not None
    assert hosts.to_table().colnames == ["id", "x", "y", "skycoord", "score", "fallback"]
    with pytest.raises(ValueError, match="refine"):
        HostFinder(refine="yes")
    for bad in (0, -2.0, float("nan"), True, "5"):
        with pytest.raises(ValueError, match="max_distance"):
            HostFinder(max_distance=bad)
    assert "max_distance=inf" in repr(HostFinder(max_distance=np.inf))
    for name in ("search_scale", "radio_weight"):
        for bad in (-1.0, float("nan"), float("inf"), True, "1"):
            with pytest.raises(ValueError, match=name):
                HostFinder(**{name: bad})
    assert "search_scale=1.25, radio_weight=0.0" in repr(HostFinder(radio_weight=0))
    with pytest.raises(TypeError, match="SegmentationResult"):
        HostFinder(method="paper")([1, 2])
    bare = SegmentationResult([dataclasses.replace(result[0], evidence=None)], classes=CLASSES,
                              shape=(40, 50))
    with pytest.raises(ValueError, match="no host evidence"):
        HostFinder(method="paper")(bare)


def test_host_peak_of_ir_weighted_map():
    """The host is the peak of instance map x IR inside the mask (paper 3.2.3)."""
    from galcam.inference import HostFinder

    mask = np.zeros((11, 11), bool)
    mask[2:9, 1:10] = True
    cam = np.ones((11, 11), np.float32)
    yy, xx = np.mgrid[:11, :11]
    ir = np.exp(-((xx - 7.2) ** 2 + (yy - 4.0) ** 2) / 2).astype(np.float32)
    ev = HostEvidence(20, 30, mask, cam, ir)
    d = Detection(id=0, class_name="R", class_index=3, score=0.5,
                  class_probabilities=(0, 0, 0, 0.5), bbox=(21, 32, 9, 7),
                  mask_crop=mask[2:9, 1:10], evidence=ev)
    res = SegmentationResult([d], classes=CLASSES, shape=(60, 60))
    hosts = HostFinder(method="paper")(res)
    assert hosts.x[0] == pytest.approx(27.2, abs=0.02)
    assert hosts.y[0] == pytest.approx(34.0, abs=0.02)
    assert hosts.skycoord is None and not hosts.fallback[0]
    coarse = HostFinder(method="paper", refine=False)(res)
    assert (coarse.x[0], coarse.y[0]) == (27.0, 34.0)
    assert math.isnan(d.host_x) and not d.has_host

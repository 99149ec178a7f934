"""Tests of galcam.datasets.CocoDataset: validation, category matching, labels, masks, splits."""

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from pycocotools import mask as mask_utils

from galcam.datasets import CocoDataset, DatasetError, WeakLabelView, normalize_class_name

H, W = 40, 48


def _radio_header(width=W, height=H, four_d=False):
    w = WCS(naxis=4 if four_d else 2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"] + (["FREQ", "STOKES"] if four_d else [])
    w.wcs.crpix = [width / 2, height / 2] + ([1, 1] if four_d else [])
    w.wcs.crval = [320.0, -55.0] + ([9.44e8, 1] if four_d else [])
    w.wcs.cdelt = [-2 / 3600, 2 / 3600] + ([1e6, 1] if four_d else [])
    hdr = w.to_header()
    hdr["BUNIT"] = "Jy/beam"
    hdr["BMAJ"] = 13 / 3600
    hdr["BMIN"] = 11 / 3600
    hdr["BPA"] = 0.0
    return hdr


def _write_fits(path, width=W, height=H, four_d=False):
    shape = (1, 1, height, width) if four_d else (height, width)
    data = np.zeros(shape, dtype=np.float32)
    data[..., height // 2, width // 2] = 1.0
    fits.writeto(path, data, _radio_header(width, height, four_d))


def _box_rle(x0, y0, x1, y1):
    m = np.zeros((H, W), dtype=np.uint8, order="F")
    m[y0:y1, x0:x1] = 1
    rle = mask_utils.encode(m)
    rle["counts"] = rle["counts"].decode()
    return rle


# categories numbered like the authors' data set: 1 = FR-II, 2 = FR-I, 3 = FR-X, 4 = R
CATEGORIES = [
    {"id": 1, "name": "FR-II"},
    {"id": 2, "name": "FR-I"},
    {"id": 3, "name": "FR-X"},
    {"id": 4, "name": "R"},
]
CLASS_OF_IMAGE = {1: 2, 2: 1, 3: 3, 4: 4, 5: 2, 6: 1, 7: 2, 8: 4, 9: 1, 10: 2}


def _make_coco(tmp_path, n=10, categories=CATEGORIES, four_d=False):
    (tmp_path / "radio").mkdir(exist_ok=True)
    (tmp_path / "ir").mkdir(exist_ok=True)
    images, anns = [], []
    for iid in range(1, n + 1):
        name = f"radio/img{iid}.fits"
        _write_fits(tmp_path / name, four_d=four_d)
        ir = f"ir/img{iid}_w1.fits"
        _write_fits(tmp_path / ir, width=30, height=30)
        images.append({"id": iid, "file_name": name, "ir_file_name": ir, "width": W, "height": H})
        cat = CLASS_OF_IMAGE.get(iid, 1 + iid % 4)
        anns.append(
            {
                "id": 100 + iid,
                "image_id": iid,
                "category_id": cat,
                "segmentation": _box_rle(10, 5, 20, 15),
                "bbox": [10, 5, 10, 10],
                "area": 100,
                "iscrowd": 0,
                "keypoints": [14.5, 9.0, 2],
                "num_keypoints": 1,
            }
        )
    cats = [dict(c) for c in categories]
    coco = {"images": images, "annotations": anns, "categories": cats, "info": {"v": 1}}
    path = tmp_path / "train.json"
    path.write_text(json.dumps(coco))
    return path, coco


def _rewrite(path, coco):
    path.write_text(json.dumps(coco))
    return path


def test_normalize_class_name():
    for name in ("FR-I", "fr_i", "FR I", "FRI", " fr-i "):
        assert normalize_class_name(name) == "FRI"
    assert normalize_class_name("FR-II") == "FRII"
    assert normalize_class_name("fr\ti") == normalize_class_name("Fr__I") == "FRI"
    with pytest.raises(TypeError, match="must be a string"):
        normalize_class_name(1)
    with pytest.raises(ValueError, match="empty once"):
        normalize_class_name(" -_ ")
    # one rule for the whole package: evaluation and the segmenter's output use it too
    from galcam.evaluation import normalize_class_name as evaluation_rule

    assert evaluation_rule is normalize_class_name


def test_read_labels_and_categories(tmp_path):
    path, coco = _make_coco(tmp_path, four_d=True)
    ds = CocoDataset(path)
    assert len(ds) == 10
    assert ds.image_ids == tuple(range(1, 11))
    assert ds.categories == {"FR-II": 1, "FR-I": 2, "FR-X": 3, "R": 4}
    # image 1 has category 2 = FR-I: label vector over (FR-I, FR-II, FR-X, R)
    rec = ds[0]
    assert rec.image_id == 1
    np.testing.assert_array_equal(rec.labels, [1, 0, 0, 0])
    assert rec.labels.dtype == np.float32
    assert rec.label_names == ("FR-I",)
    np.testing.assert_array_equal(ds.image(2).labels, [0, 1, 0, 0])
    np.testing.assert_array_equal(ds.image(4).labels, [0, 0, 0, 1])
    assert ds.labels.shape == (10, 4)
    assert rec.path == tmp_path / "radio" / "img1.fits"
    assert rec.ir_path == tmp_path / "ir" / "img1_w1.fits"
    with pytest.raises(AttributeError):
        rec.labels = None  # records are immutable
    with pytest.raises(ValueError):
        rec.labels[0] = 5


def test_read_radio_and_ir(tmp_path):
    path, _ = _make_coco(tmp_path, n=2, four_d=True)
    ds = CocoDataset(path)
    radio = ds[0].read_radio()
    assert radio.data.shape == (H, W)
    assert radio.wcs.has_celestial
    assert radio.meta["beam"] is not None
    ir = ds[0].read_ir()
    assert ir.data.shape == (30, 30)
    with pytest.raises(DatasetError, match="not a PNG"):
        ds[0].read_png()


def test_category_remapping_by_name(tmp_path):
    """Permuted ids and other spellings give the same labels and masks."""
    path, coco = _make_coco(tmp_path)
    ds1 = CocoDataset(path)
    perm = {1: 7, 2: 3, 3: 11, 4: 5}
    names = {1: "fr_ii", 2: "FR I", 3: "frx", 4: "r"}
    coco2 = json.loads(json.dumps(coco))
    coco2["categories"] = [{"id": perm[c["id"]], "name": names[c["id"]]} for c in CATEGORIES][::-1]
    for a in coco2["annotations"]:
        a["category_id"] = perm[a["category_id"]]
    path2 = _rewrite(tmp_path / "perm.json", coco2)
    ds2 = CocoDataset(path2)
    np.testing.assert_array_equal(ds1.labels, ds2.labels)
    assert ds2.categories == {"FR-II": 7, "FR-I": 3, "FR-X": 11, "R": 5}
    a1, a2 = ds1.annotations(1), ds2.annotations(1)
    assert a1.classes == a2.classes == ("FR-I",)
    assert a2.category_ids == (3,)


def test_annotations_decoding(tmp_path):
    path, coco = _make_coco(tmp_path, n=3)
    # image 2 gets a polygon, image 3 an uncompressed RLE
    coco["annotations"][1]["segmentation"] = [[10, 5, 20, 5, 20, 15, 10, 15]]
    m = np.zeros((H, W), dtype=np.uint8)
    m[5:15, 10:20] = 1
    counts, current, run = [], 0, 0  # uncompressed RLE: alternating runs, zeros first
    for v in m.flatten(order="F"):
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    coco["annotations"][2]["segmentation"] = {"size": [H, W], "counts": counts}
    _rewrite(path, coco)
    ds = CocoDataset(path)
    ann = ds.annotations(1)
    assert ann.masks.shape == (1, H, W)
    assert ann.masks.dtype == bool
    np.testing.assert_array_equal(ann.masks[0], m.astype(bool))
    np.testing.assert_allclose(ann.keypoints[0], [14.5, 9.0, 2])
    np.testing.assert_allclose(ann.bboxes[0], [10, 5, 10, 10])
    poly = ds.annotations(2).masks[0]
    # pycocotools rasterises polygon edges; the box interior must be covered
    assert poly[6:14, 11:19].all() and not poly[:3].any()
    np.testing.assert_array_equal(ds.annotations(3).masks[0], m.astype(bool))
    with pytest.raises(KeyError, match="no image with id 99"):
        ds.annotations(99)


def test_weak_label_view_has_no_annotations(tmp_path):
    path, _ = _make_coco(tmp_path)
    ds = CocoDataset(path)
    view = ds.image_level()
    assert isinstance(view, WeakLabelView)
    assert view.image_ids == ds.image_ids
    np.testing.assert_array_equal(view.labels, ds.labels)
    assert not hasattr(view, "annotations")
    # nothing reachable from the view holds the data set or its annotations
    reachable = [view, *vars(view).values(), *view]
    for obj in reachable:
        assert not isinstance(obj, CocoDataset)
        assert "annotations" not in getattr(obj, "__dict__", {})
    for img in view:
        assert not any(isinstance(v, (CocoDataset, dict)) for v in vars(img).values())
    parts = view.split((0.5, 0.5), seed=1)
    assert sum(len(p) for p in parts) == len(view)
    assert ds.weak_labels().image_ids == view.image_ids


def test_load_annotations_false_ignores_annotations(tmp_path):
    path, coco = _make_coco(tmp_path, n=3)
    coco["annotations"] = "poison"  # not even looked at
    _rewrite(path, coco)
    ds = CocoDataset(path, load_annotations=False)
    assert len(ds) == 3 and ds[0].labels is None
    assert not ds.has_annotations
    with pytest.raises(DatasetError, match="not loaded"):
        ds.annotations(1)
    with pytest.raises(DatasetError, match="load_annotations=False"):
        ds.image_level()
    assert "annotations" not in ds.to_coco_dict()


def test_split_deterministic_disjoint_stratified(tmp_path):
    path, coco = _make_coco(tmp_path, n=40)
    ds = CocoDataset(path)
    a = ds.split((0.5, 0.25, 0.25), seed=3)
    b = ds.split((0.5, 0.25, 0.25), seed=3)
    c = ds.split((0.5, 0.25, 0.25), seed=4)
    assert [p.image_ids for p in a] == [p.image_ids for p in b]
    assert [p.image_ids for p in a] != [p.image_ids for p in c]
    ids = [set(p.image_ids) for p in a]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set().union(*ids) == set(ds.image_ids)
    assert [len(p) for p in a] == [20, 10, 10]
    # stratified: each class is split about in proportion
    for k in range(4):
        total = ds.labels[:, k].sum()
        in_train = a[0].labels[:, k].sum()
        assert abs(in_train - total / 2) <= 1
    # subsets keep annotations and round-trip to a COCO dict
    sub = a[1].to_coco_dict()
    assert {i["id"] for i in sub["images"]} == ids[1]
    assert {x["image_id"] for x in sub["annotations"]} == ids[1]
    assert sub["info"] == {"v": 1}
    with pytest.raises(ValueError, match="sum to 1"):
        ds.split((0.5, 0.4))
    with pytest.raises(ValueError, match="non-negative"):
        ds.split((1.5, -0.5))


def test_from_dict_round_trip(tmp_path):
    path, coco = _make_coco(tmp_path, n=4)
    ds = CocoDataset.from_dict(coco, image_dir=tmp_path)
    again = CocoDataset.from_dict(ds.to_coco_dict(), image_dir=tmp_path)
    assert again.image_ids == ds.image_ids
    np.testing.assert_array_equal(again.labels, ds.labels)


# ---------------------------------------------------------------- validation errors


def test_error_missing_json(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        CocoDataset(tmp_path / "nope.json")


def test_error_bad_json(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        CocoDataset(p)
    p.write_text(json.dumps({"images": []}))
    with pytest.raises(DatasetError, match="no 'categories'"):
        CocoDataset(p)


def test_error_unknown_category(tmp_path):
    path, coco = _make_coco(tmp_path, n=2)
    coco["categories"].append({"id": 9, "name": "Compact"})
    _rewrite(path, coco)
    with pytest.raises(DatasetError, match="unknown category 'Compact'"):
        CocoDataset(path)


def test_error_duplicate_class_category(tmp_path):
    path, coco = _make_coco(tmp_path, n=2)
    coco["categories"].append({"id": 9, "name": "fr_i"})
    _rewrite(path, coco)
    with pytest.raises(DatasetError, match="both name the class FR-I"):
        CocoDataset(path)


def test_error_annotation_unknown_category_id(tmp_path):
    path, coco = _make_coco(tmp_path, n=2)
    coco["annotations"][0]["category_id"] = 42
    _rewrite(path, coco)
    with pytest.raises(DatasetError, match="unknown category ids: annotation 101 -> category 42"):
        CocoDataset(path)


def test_error_duplicate_image_id(tmp_path):
    path, coco = _make_coco(tmp_path, n=2)
    coco["images"][1]["id"] = 1
    _rewrite(path, coco)
    with pytest.raises(DatasetError, match="duplicate image id 1"):
        CocoDataset(path)


def test_error_missing_files_listed(tmp_path):
    path, coco = _make_coco(tmp_path, n=8)
    for iid in range(1, 8):
        (tmp_path / f"radio/img{iid}.fits").unlink()
    (tmp_path / "ir/img8_w1.fits").unlink()
    with pytest.raises(DatasetError, match=r"8 image files missing .*img1\.fits.*\(8 in all\)"):
        CocoDataset(path)


def test_error_size_mismatch(tmp_path):
    path, coco = _make_coco(tmp_path, n=2)
    coco["images"][1]["width"] = W + 2
    _rewrite(path, coco)
    msg = rf"image 2 'img2.fits' is {W}x{H} \(JSON: {W + 2}x{H}\)"
    with pytest.raises(DatasetError, match=msg):
        CocoDataset(path)


def test_error_keypoint_outside(tmp_path):
    path, coco = _make_coco(tmp_path, n=2)
    coco["annotations"][1]["keypoints"] = [W + 3.0, 5.0, 2]
    _rewrite(path, coco)
    with pytest.raises(DatasetError, match=r"keypoints outside the image.*annotation 102"):
        CocoDataset(path)
    # an invisible keypoint (v=0) may sit anywhere
    coco["annotations"][1]["keypoints"] = [0, 0, 0]
    coco["annotations"][0]["keypoints"] = [-1.0, 5.0, 0]
    CocoDataset(_rewrite(path, coco))


def test_error_annotation_unknown_image(tmp_path):
    path, coco = _make_coco(tmp_path, n=2)
    coco["annotations"][0]["image_id"] = 77
    _rewrite(path, coco)
    with pytest.raises(DatasetError, match="unknown images: annotation 101 -> image 77"):
        CocoDataset(path)


def test_error_empty(tmp_path):
    path, coco = _make_coco(tmp_path, n=1)
    coco["images"], coco["annotations"] = [], []
    _rewrite(path, coco)
    with pytest.raises(DatasetError, match="holds no images"):
        CocoDataset(path)


def test_error_bad_image_fields(tmp_path):
    path, coco = _make_coco(tmp_path, n=1)
    del coco["images"][0]["width"]
    _rewrite(path, coco)
    with pytest.raises(DatasetError, match=r"images\[0\] lacks width"):
        CocoDataset(path)
    coco["images"][0]["width"] = -3
    _rewrite(path, coco)
    with pytest.raises(DatasetError, match="'width' must be a positive integer"):
        CocoDataset(path)


def test_classes_none_takes_the_json_categories_in_id_order(tmp_path):
    """classes=None: the data set's own classes, ordered by category id, as written."""
    path, coco = _make_coco(tmp_path)
    coco2 = json.loads(json.dumps(coco))
    names = {1: "FRI", 2: "FRII", 3: "Compact", 4: "Bent"}
    ids = {1: 30, 2: 10, 3: 40, 4: 20}  # listed in another order than their ids
    coco2["categories"] = [{"id": ids[i], "name": names[i]} for i in (1, 2, 3, 4)]
    for a in coco2["annotations"]:
        a["category_id"] = ids[a["category_id"]]
    path2 = _rewrite(tmp_path / "own.json", coco2)
    ds = CocoDataset(path2, classes=None)
    assert ds.classes == ("FRII", "Bent", "FRI", "Compact")
    assert ds.categories == {"FRII": 10, "Bent": 20, "FRI": 30, "Compact": 40}
    # image 1 is category 2 -> FRII, image 4 category 4 -> Bent
    np.testing.assert_array_equal(ds.image(1).labels, [1, 0, 0, 0])
    np.testing.assert_array_equal(ds.image(4).labels, [0, 1, 0, 0])
    assert ds.image_level().classes == ds.classes
    # the same names given explicitly, in another order, reorder the label vectors
    ds2 = CocoDataset(path2, classes=("FRI", "FRII", "Compact", "Bent"))
    np.testing.assert_array_equal(ds2.image(1).labels, [0, 1, 0, 0])
    # from_dict and subsets keep them
    ds3 = CocoDataset.from_dict(coco2, image_dir=tmp_path, classes=None)
    assert ds3.classes == ds.classes and ds3.subset([1, 2]).classes == ds.classes
    # galcam's names are matched as before with the default classes
    assert CocoDataset(path).classes == ("FR-I", "FR-II", "FR-X", "R")
    assert CocoDataset(path, classes=None).classes == ("FR-II", "FR-I", "FR-X", "R")
    # the default refuses the names it does not know
    with pytest.raises(DatasetError, match="unknown categories 'Compact', 'Bent'"):
        CocoDataset(path2)


def test_classes_none_needs_categories(tmp_path):
    path, coco = _make_coco(tmp_path, n=1)
    coco["categories"], coco["annotations"] = [], []
    _rewrite(path, coco)
    assert len(CocoDataset(path)) == 1  # with named classes an empty list is allowed
    with pytest.raises(DatasetError, match="'categories' is empty"):
        CocoDataset(path, classes=None)


def test_error_bad_classes(tmp_path):
    path, _ = _make_coco(tmp_path, n=1)
    with pytest.raises(ValueError, match="name the same class twice"):
        CocoDataset(path, classes=("FR-I", "fri"))
    with pytest.raises(ValueError, match="non-empty sequence"):
        CocoDataset(path, classes="FR-I")


def test_png_dataset(tmp_path):
    from galcam.preprocessing.png import write_paper_png

    y, x = np.mgrid[:H, :W]
    radio01 = (x / (W - 1)).astype(np.float32)
    ir01 = (y / (H - 1)).astype(np.float32)
    write_paper_png(tmp_path / "a.png", radio01, ir01)
    coco = {
        "images": [{"id": 5, "file_name": "a.png", "width": W, "height": H}],
        "categories": [dict(c) for c in CATEGORIES],
        "annotations": [],
    }
    ds = CocoDataset.from_dict(coco, image_dir=tmp_path)
    assert ds.is_png and ds[0].is_png
    np.testing.assert_array_equal(ds[0].labels, [0, 0, 0, 0])
    with pytest.raises(DatasetError, match="use read_png"):
        ds[0].read_radio()
    radio, ir = ds[0].read_png()
    np.testing.assert_allclose(radio, radio01, atol=1e-4)  # 16 bits
    np.testing.assert_allclose(ir, ir01, atol=1 / 255)  # 8 bits
    coco["images"][0]["height"] = H + 1
    with pytest.raises(DatasetError, match="do not match"):
        CocoDataset.from_dict(coco, image_dir=tmp_path)

"""One COCO validator: the data set reader and the evaluation's truth give the same errors."""

import copy

import pytest

from galcam.datasets import CocoDataset, DatasetError
from galcam.datasets.contract import (
    check_categories,
    check_coco_structure,
    check_images,
    check_truth,
    coco_id,
)
from galcam.evaluation import load_truth


def _coco():
    return {
        "images": [{"id": 1, "file_name": "a.fits", "width": 8, "height": 8},
                   {"id": 2, "file_name": "b.fits", "width": 8, "height": 8}],
        "categories": [{"id": 1, "name": "FR-I"}, {"id": 2, "name": "FR-II"}],
        "annotations": [{"id": 10, "image_id": 1, "category_id": 1,
                         "segmentation": [[1, 1, 4, 1, 4, 4, 1, 4]]}],
    }


def _break_width(c):
    c["images"][1]["width"] = -3


def _duplicate_image(c):
    c["images"][1]["id"] = 1


def _duplicate_class(c):
    c["categories"].append({"id": 3, "name": "fr_i"})


def _duplicate_category_id(c):
    c["categories"][1]["id"] = 1


def _no_images(c):
    del c["images"]


def _empty_images(c):
    c["images"] = []
    c["annotations"] = []


def _no_width(c):
    del c["images"][0]["width"]


def _bad_name(c):
    c["categories"][1]["name"] = 5


def _float_image_id(c):
    c["images"][0]["id"] = "one"


@pytest.mark.parametrize(("change", "message"), [
    (_break_width, r"images\[1\]: 'width' must be a positive integer, got -3"),
    (_duplicate_image, r"images\[1\]: duplicate image id 1"),
    (_duplicate_class, r"categories\[2\]: category name 'fr_i' duplicates 'FR-I': both name "
                       "the class FR-I"),
    (_duplicate_category_id, r"categories\[1\]: duplicate category id 1"),
    (_no_images, r"missing or non-list 'images' \(the JSON has no 'images' list\)"),
    (_empty_images, "'images' is empty: the data set holds no images"),
    (_no_width, r"images\[0\] lacks width"),
    (_bad_name, r"categories\[1\]\.name: a class name must be a string"),
    (_float_image_id, r"images\[0\]\.id must be an integer, got 'one'"),
])
def test_reader_and_evaluation_share_the_checks(tmp_path, change, message):
    coco = _coco()
    change(coco)
    with pytest.raises(DatasetError, match=message) as reader:
        CocoDataset.from_dict(copy.deepcopy(coco), image_dir=tmp_path, source="x.json")
    with pytest.raises(DatasetError, match=message) as truth:
        load_truth(copy.deepcopy(coco))
    # the same words after the file's name
    assert str(reader.value).split(": ", 1)[1] == str(truth.value).split(": ", 1)[1]


def test_structure():
    check_coco_structure({"images": [], "categories": []}, "f", keys=("images", "categories"))
    with pytest.raises(DatasetError, match="f: expected a COCO JSON object with 'images' and "
                                           "'categories', got list"):
        check_coco_structure([], "f")
    with pytest.raises(DatasetError, match="missing or non-list 'annotations'"):
        check_coco_structure({"images": [], "categories": [], "annotations": {}}, "f")


def test_images_and_categories_normalise_ids():
    images = [{"id": 3.0, "width": 4, "height": 5}]
    assert check_images(images, "f") == {3: images[0]} and type(images[0]["id"]) is int
    with pytest.raises(DatasetError, match="lacks file_name"):
        check_images([{"id": 1, "width": 4, "height": 5}], "f", file_names=True)
    with pytest.raises(DatasetError, match="'ir_file_name' must be a non-empty string"):
        check_images([{"id": 1, "file_name": "a", "ir_file_name": 3, "width": 4, "height": 5}],
                     "f", file_names=True)
    assert check_categories([], "f", allow_empty=True) == {}
    with pytest.raises(DatasetError, match="'categories' is empty"):
        check_categories([], "f")
    assert coco_id(2.0, "x") == 2
    with pytest.raises(DatasetError, match="x must be an integer, got True"):
        coco_id(True, "x")


def test_check_truth_normalises():
    coco = _coco()
    out = check_truth(coco, "f")
    ann = out["annotations"][0]
    assert isinstance(ann["segmentation"]["counts"], str)
    assert ann["area"] > 0 and len(ann["bbox"]) == 4
    assert ann["iscrowd"] == 0 and ann["num_keypoints"] == 0

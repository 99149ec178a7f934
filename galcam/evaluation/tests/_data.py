"""Small COCO truths with known answers, built in memory for the evaluation tests."""

import copy

import numpy as np
from pycocotools import mask as mask_utils

from galcam.evaluation.coco import decode_rle

SIZE = 64
PIXEL_SCALE = 2.0  # arcsec / px
# the authors' numbering: 1 = FR-II, 2 = FR-I, 3 = FR-X, 4 = R
CATEGORIES = [
    {"id": 1, "name": "FR-II"},
    {"id": 2, "name": "FR-I"},
    {"id": 3, "name": "FR-X"},
    {"id": 4, "name": "R"},
]


def rle(mask):
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    r["counts"] = r["counts"].decode("ascii")
    return r


def square(x0, y0, side=20, size=SIZE):
    m = np.zeros((size, size), dtype=bool)
    m[y0 : y0 + side, x0 : x0 + side] = True
    return m


def blob(cx, cy, r, size=SIZE):
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2


def annotation(mask, category_id, host, *, ann_id, image_id):
    r = rle(mask)
    ys, xs = np.nonzero(mask)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": r,
        "area": float(mask.sum()),
        "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)],
        "iscrowd": 0,
        "keypoints": [float(host[0]), float(host[1]), 2],
        "num_keypoints": 1,
    }


def make_truth():
    """4 images, 6 galaxies of 20x20 squares (plus one round blob); FR-X has no galaxy.

    Classes: FR-II x2 (images 1, 2), FR-I x2 (images 1, 3), R x2 (images 3, 4).
    """
    images = [
        {
            "id": i,
            "file_name": f"img{i}.fits",
            "width": SIZE,
            "height": SIZE,
            "pixel_scale_arcsec": PIXEL_SCALE,
        }
        for i in (1, 2, 3, 4)
    ]
    specs = [
        # image, mask, class, host
        (1, square(2, 2), 1, (12, 12)),
        (1, square(36, 36), 2, (45, 46)),
        (2, square(20, 10), 1, (30, 20)),
        (3, square(4, 30), 2, (14, 40)),
        (3, square(36, 4), 4, (46, 14)),
        (4, blob(32, 32, 10), 4, (32, 32)),
    ]
    anns = [annotation(m, c, h, ann_id=k + 1, image_id=i) for k, (i, m, c, h) in enumerate(specs)]
    return {"images": images, "categories": copy.deepcopy(CATEGORIES), "annotations": anns}


def perfect_predictions(truth, *, scores=None):
    """COCO results identical to the truth (score 0.9 - 0.1 * index unless given)."""
    preds = []
    for k, a in enumerate(truth["annotations"]):
        preds.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "score": 0.9 - 0.1 * k if scores is None else scores[k],
                "segmentation": copy.deepcopy(a["segmentation"]),
                "bbox": list(a["bbox"]),
                "keypoints": list(a["keypoints"]),
            }
        )
    return preds


def shifted(pred, dx, dy=0):
    """A prediction whose mask is shifted by (dx, dy) >= 0 pixels (must stay inside)."""
    m = decode_rle(pred["segmentation"])
    h, w = m.shape
    assert not m[h - dy :, :].any() if dy else True
    assert not m[:, w - dx :].any() if dx else True
    out_m = np.zeros_like(m)
    out_m[dy:, dx:] = m[: h - dy, : w - dx]
    m = out_m
    out = dict(pred)
    out["segmentation"] = rle(m)
    out["bbox"] = [pred["bbox"][0] + dx, pred["bbox"][1] + dy, *pred["bbox"][2:]]
    return out

"""Tiny synthetic data sets for the training tests (PNG in the paper's encoding, or FITS)."""

import json

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from pycocotools import mask as mask_utils

from galcam.preprocessing import write_paper_png

CLASSES = ("FR-I", "FR-II", "FR-X", "R")
# numbered as the authors' data set does: 1 = FR-II, 2 = FR-I, 3 = FR-X, 4 = R
CATEGORIES = [{"id": 1, "name": "FR-II"}, {"id": 2, "name": "FR-I"},
              {"id": 3, "name": "FR-X"}, {"id": 4, "name": "R"}]
CAT_ID = {"FR-II": 1, "FR-I": 2, "FR-X": 3, "R": 4}


def _blob(shape, x, y, sx, sy):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return np.exp(-0.5 * (((xx - x) / sx) ** 2 + ((yy - y) / sy) ** 2))


def galaxy(shape, cls, rng):
    """A [0, 1] radio image with one source whose shape depends on its class index."""
    h, w = shape
    cx, cy = w / 2 + rng.uniform(-2, 2), h / 2 + rng.uniform(-2, 2)
    s = min(h, w) / 16
    if cls == 0:  # FR-I: bright core, fading jets
        img = _blob(shape, cx, cy, 1.2 * s, 1.2 * s) + 0.5 * _blob(shape, cx, cy, 4 * s, s)
    elif cls == 1:  # FR-II: two detached lobes
        img = _blob(shape, cx - 4 * s, cy, s, s) + _blob(shape, cx + 4 * s, cy, s, s)
    elif cls == 2:  # FR-X: two crossed pairs of lobes
        img = (_blob(shape, cx - 4 * s, cy, s, s) + _blob(shape, cx + 4 * s, cy, s, s)
               + 0.7 * _blob(shape, cx, cy - 3 * s, s, s)
               + 0.7 * _blob(shape, cx, cy + 3 * s, s, s))
    else:  # R: compact, resolved
        img = _blob(shape, cx, cy, 2 * s, 2 * s)
    img = img / img.max()
    img[img < 0.1] = 0.0
    return img.astype(np.float32)


def _rle(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode()
    return rle


def make_dataset(root, n=8, size=48, seed=0, kind="png", poison=False, prefix="img"):
    """Write ``n`` images and a COCO JSON; return the JSON path.

    With ``poison=True`` every annotation's mask, box and keypoint are replaced by
    different (still valid) values: image-level labels stay the same.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n):
        cls = i % 4
        radio = galaxy((size, size), cls, rng)
        ir = np.zeros_like(radio)
        ir[size // 2, size // 2] = 1.0
        if kind == "png":
            name = f"{prefix}{i}.png"
            write_paper_png(root / name, radio, ir)
            entry = {"id": 100 + i, "file_name": name, "width": size, "height": size}
        else:
            name = f"{prefix}{i}.fits"
            noise = rng.normal(0, 1e-4, (size, size)).astype(np.float32)
            w = WCS(naxis=2)
            w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
            w.wcs.crpix = [size / 2, size / 2]
            w.wcs.crval = [320.0 + i, -55.0]
            w.wcs.cdelt = [-2 / 3600, 2 / 3600]
            hdr = w.to_header()
            hdr["BUNIT"] = "Jy/beam"
            hdr["BMAJ"], hdr["BMIN"], hdr["BPA"] = 12 / 3600, 10 / 3600, 30.0
            fits.writeto(root / name, radio * 1e-2 + noise, hdr)
            entry = {"id": 100 + i, "file_name": name, "width": size, "height": size}
        images.append(entry)
        mask = radio > 0
        if poison:
            mask = np.zeros_like(mask)
            mask[:4, :4] = True
        ys, xs = np.nonzero(mask)
        kp = [float(xs.mean()), float(ys.mean()), 2] if not poison else [1.0, 1.0, 2]
        anns.append({"id": 1000 + i, "image_id": 100 + i, "category_id": CAT_ID[CLASSES[cls]],
                     "segmentation": _rle(mask),
                     "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1),
                              float(np.ptp(ys) + 1)],
                     "area": float(mask.sum()), "iscrowd": 0, "keypoints": kp,
                     "num_keypoints": 1})
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": CATEGORIES}))
    return path


#: Options that make a whole training run take a few seconds on a CPU.
TINY = dict(arch="resnet18", weights=None, cam_epochs=2, cam_batch_size=4, cam_crop_size=32,
            recam_epochs=1, recam_batch_size=4, recam_crop_size=32,
            irnet_epochs=1, irnet_batch_size=4, irnet_crop_size=48, irnet_radius=5,
            cam_scales=(1.0, 0.5), irnet_backbone="cam", disk_cache=False)

"""Writing the generated benchmark sets (``bench_independent.py``, ``bench_shifted.py``).

One cutout's radio and infrared FITS files, one truth annotation, and the two COCO files
of a set: ``images.json`` (no truth, what a model is given) and ``annotations.json``.
"""

import json
from pathlib import Path

import numpy as np

CLASSES = ("FR-I", "FR-II", "FR-X", "R")


def write_cutout(folder, name, radio, ir, rwcs, iwcs, beam):
    """Write ``radio/NAME.fits`` (Jy/beam, with its beam) and ``ir/NAME_w1.fits``;
    return the COCO image record (without its id)."""
    from astropy.io import fits

    folder = Path(folder)
    (folder / "radio").mkdir(parents=True, exist_ok=True)
    (folder / "ir").mkdir(exist_ok=True)
    header = rwcs.to_header()
    header["BUNIT"] = "Jy/beam"
    header["BMAJ"], header["BMIN"], header["BPA"] = beam[0] / 3600, beam[1] / 3600, beam[2]
    fits.writeto(folder / "radio" / f"{name}.fits", radio, header, overwrite=True)
    ih = iwcs.to_header()
    ih["BUNIT"] = "DN"
    fits.writeto(folder / "ir" / f"{name}_w1.fits", ir, ih, overwrite=True)
    h, w = radio.shape
    return {"file_name": f"radio/{name}.fits", "ir_file_name": f"ir/{name}_w1.fits",
            "width": w, "height": h}


def annotation(ann_id, image_id, klass, mask, host):
    """The COCO annotation of one true galaxy: RLE mask, box, area, host keypoint."""
    from pycocotools import mask as mask_utils

    h, w = mask.shape
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    ys, xs = np.nonzero(mask)
    return {"id": ann_id, "image_id": image_id, "category_id": CLASSES.index(klass) + 1,
            "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
            "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                     float(ys.max() - ys.min() + 1)],
            "area": int(mask.sum()), "iscrowd": 0,
            "keypoints": [round(host[0], 3), round(host[1], 3), 2], "num_keypoints": 1}


def write_coco(folder, images, annotations, info):
    """``images.json`` (images and categories only) and ``annotations.json``, atomically."""
    from galcam.io import atomic_write

    categories = [{"id": i + 1, "name": c, "supercategory": "radio galaxy"}
                  for i, c in enumerate(CLASSES)]
    for name, content in (("images.json", {"info": info, "images": images,
                                            "categories": categories}),
                          ("annotations.json", {"info": info, "images": images,
                                                "annotations": annotations,
                                                "categories": categories})):
        text = json.dumps(content)
        atomic_write(Path(folder) / name, lambda tmp, text=text: Path(tmp).write_text(text))
    return Path(folder)


def write_generated_set(folder, n, seed, cutout, *, prefix, description):
    """Write ``n`` cutouts of a generator and their truth as a COCO data set.

    ``cutout(rng, klass)`` returns ``(radio, ir, radio_wcs, ir_wcs, beam, truth)`` with
    ``truth`` a list of ``(class, mask, host)``, the primary galaxy first. Primary classes
    come in turn (equal numbers); a cutout whose primary galaxy fell below the truth's
    size limit is drawn again. Returns the folder (``images.json`` without annotations,
    ``annotations.json`` with them).
    """
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for k in range(n):
        klass = CLASSES[k % len(CLASSES)]
        while True:
            radio, ir, rwcs, iwcs, beam, truth = cutout(rng, klass)
            if truth and truth[0][0] == klass:
                break
        record = write_cutout(folder, f"{prefix}_{k:05d}", radio, ir, rwcs, iwcs, beam)
        images.append({"id": k + 1, **record})
        for klass_i, mask, host in truth:
            annotations.append(annotation(len(annotations) + 1, k + 1, klass_i, mask, host))
    return write_coco(folder, images, annotations, {"description": description, "seed": seed})

"""Why the lobes of an FR-II stay apart: IRNet's labels and votes on multi-island galaxies.

For every true FR-II or FR-X galaxy of a labelled data set whose truth mask spans two or
more radio islands (each holding at least 15% of the mask), this script reports

* **labels**: whether the foreground IRNet would be trained on for this image (the
  model's multi-scale CAM of the galaxy's class above the model's ``cam_fg`` threshold,
  as `galcam.training.train_weak_model` makes its labels) reaches both islands, and
  whether it joins them in one connected region;
* **votes**: the distance between the displacement votes of the two largest islands
  (`galcam.inference.grouping.island_votes`, as ``mask_mode='grouped'`` uses them) over the
  distance between the islands' centroids: near 0 the votes meet and the islands are
  grouped, near 1 each island points at itself.

The truth masks are read for this diagnosis only; nothing is trained and no catalogue
is made.

    python benchmarks/diagnose_lobes.py --model default --data DIR [--max 50]
"""

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model folder or name")
    parser.add_argument("--data", required=True, help="data set folder (annotations.json)")
    parser.add_argument("--max", type=int, default=50, help="galaxies at most (50)")
    args = parser.parse_args(argv)
    folder = Path(args.data)
    if not (folder / "annotations.json").is_file():
        parser.error(f"--data: '{folder}' has no annotations.json")
    logging.basicConfig(level=logging.WARNING)

    import torch
    from astropy.utils.exceptions import AstropyUserWarning
    from pycocotools import mask as mask_utils
    from scipy import ndimage

    from galcam.datasets import CocoDataset
    from galcam.inference import WeakSegmenter, resolve_model
    from galcam.inference.grouping import island_labels, island_votes
    from galcam.models import multiscale_cams
    from galcam.training import data as tdata

    seg = WeakSegmenter.load(args.model, device="cpu")
    config = json.loads((resolve_model(args.model) / "config.json").read_text())
    fg_threshold = config["thresholds"]["cam_fg"]
    truth = json.loads((folder / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in truth["categories"]}
    by_image = {}
    for ann in truth["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    dataset = CocoDataset(folder / "annotations.json", image_dir=folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        encoded = tdata.encode_view(dataset.image_level(), seg.encoder)
    rows = []
    for i, image_id in enumerate(encoded.image_ids):
        if len(rows) >= args.max:
            break
        for ann in by_image.get(image_id, []):
            klass = names[ann["category_id"]]
            if klass not in ("FR-II", "FR-X") or len(rows) >= args.max:
                continue
            rle = dict(ann["segmentation"])
            if isinstance(rle["counts"], str):
                rle["counts"] = rle["counts"].encode()
            true = mask_utils.decode(rle).astype(bool)
            radio = np.asarray(encoded.radio[i])
            labels, n = island_labels(radio)
            parts = [k for k in range(1, n + 1)
                     if (true & (labels == k)).sum() >= 0.15 * true.sum()]
            if len(parts) < 2:
                continue
            parts = sorted(parts, key=lambda k: -(labels == k).sum())
            image = torch.from_numpy(np.array(encoded.images[i], dtype=np.float32))
            nets = seg.networks
            xt = tdata.normalize(image, seg.spec.mean, seg.spec.std)
            c = list(seg.classes).index(klass)
            cam = multiscale_cams(nets.cam_net, xt, scales=seg.spec.cam_scales)["high_res"][c]
            fg = np.asarray(cam) > fg_threshold
            reached = all((fg & (labels == k)).any() for k in parts)
            regions, _ = ndimage.label(fg)
            ids = {int(v) for k in parts for v in np.unique(regions[(labels == k) & fg]) if v}
            dp = nets(np.asarray(encoded.images[i], dtype=np.float32)[None]).displacements
            votes = island_votes(labels, n, radio, dp[0])
            a, b = parts[:2]
            centre = [np.array(ndimage.center_of_mass(labels == k))[::-1] for k in (a, b)]
            ratio = (np.linalg.norm(votes[a - 1] - votes[b - 1])
                     / np.linalg.norm(centre[0] - centre[1]))
            rows.append((image_id, klass, len(parts), reached, reached and len(ids) == 1, ratio))
            print(f"image {image_id}: {klass}, {len(parts)} islands, labels reach both "
                  f"{reached}, join them {reached and len(ids) == 1}, vote/centroid distance "
                  f"{ratio:.2f}")
    if not rows:
        print("no multi-island FR-II/FR-X galaxy in the data set")
        return 0
    ratios = np.array([r[5] for r in rows])
    print(f"{len(rows)} multi-island FR-II/FR-X: labels reach both islands in "
          f"{sum(r[3] for r in rows)}, join them in {sum(r[4] for r in rows)}; vote/centroid "
          f"distance median {np.median(ratios):.2f} (range {ratios.min():.2f}-"
          f"{ratios.max():.2f}); link radius {seg.grouping.link_radius:g} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())

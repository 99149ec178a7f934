"""Classify real FIRST images with a model: accuracy, per-class recall, confusion matrix.

The FIRST data of the ``firstgalaxydata`` package (``pip install "galcam[first]"``)
written as a COCO data set of FITS images by ``galcam data first --split test -o DIR``
carry one image-level label each (FRI, FRII, Compact, Bent). This script predicts the
images with ``WeakSegmenter.predict_dataset`` (the networks, the grouper and the hosts as
``galcam predict --coco`` runs them; no truth is read while predicting) and gives every
image the class of its highest-scoring detection, as the real-data issue defines the
image's class; an image without a detection counts as wrong. Then it compares with the
labels:

    python benchmarks/bench_first.py --model MODELDIR --data DIR [--map FR-I=FRI ...]
        [--json FILE]

``--map`` maps model classes onto the data set's (a model trained on other classes, e.g.
the bundled one: ``--map FR-I=FRI --map FR-II=FRII``); images whose label has no model
class mapped to it are left out of the accuracy (reported separately), and a prediction
of an unmapped model class counts as wrong.
"""

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

from galcam.models.spec import PRECISION_NAMES


def classify(model, folder, *, device="cpu", batch_size=4, precision="float32",
             link_radius=None, spec_changes=None):
    """``{image_id: (class or None, score)}`` from the highest-scoring detection."""
    import astropy.units as u

    from galcam.inference import GalaxyGrouper, WeakSegmenter

    folder = Path(folder)
    grouper = None if link_radius is None else GalaxyGrouper(link_radius=link_radius * u.arcsec)
    segmenter = WeakSegmenter.load(model, device=device, precision=precision, grouper=grouper,
                                   spec_changes=spec_changes)
    coco = json.loads((folder / "annotations.json").read_text())
    images = {"images": coco["images"],
              "categories": [{"id": k + 1, "name": c} for k, c in enumerate(segmenter.classes)]}
    path = folder / ".bench_first_images.json"  # the images only: no label is passed on
    path.write_text(json.dumps(images))
    t = time.perf_counter()
    try:
        pred = segmenter.predict_dataset(path, image_dir=folder, progress=False,
                                         batch_size=batch_size)
    finally:
        path.unlink()
    seconds = time.perf_counter() - t
    names = {k + 1: c for k, c in enumerate(segmenter.classes)}
    best = {}
    for p in pred:
        if p["image_id"] not in best or p["score"] > best[p["image_id"]][1]:
            best[p["image_id"]] = (names[p["category_id"]], p["score"])
    return {im["id"]: best.get(im["id"], (None, 0.0)) for im in coco["images"]}, seconds


def score(truth, predicted, mapping):
    """Accuracy, per-class recall and the confusion matrix (rows: truth, columns: predicted)."""
    labels = sorted(set(truth.values()))
    covered = set(mapping.values())
    rows = Counter()
    for image_id, label in truth.items():
        cls, _ = predicted[image_id]
        rows[(label, mapping.get(cls, cls) if cls is not None else "none")] += 1
    used = [i for i, lab in truth.items() if lab in covered]
    correct = sum(1 for i in used if predicted[i][0] is not None
                  and mapping.get(predicted[i][0], predicted[i][0]) == truth[i])
    recall = {}
    for lab in labels:
        n = sum(1 for v in truth.values() if v == lab)
        hit = rows[(lab, lab)]
        recall[lab] = hit / n if n else float("nan")
    columns = sorted({c for _, c in rows})
    return {"accuracy": correct / len(used) if used else float("nan"),
            "n_scored": len(used), "n_images": len(truth),
            "per_class_recall": recall,
            "confusion": {lab: {c: rows[(lab, c)] for c in columns} for lab in labels}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model folder or registered name")
    parser.add_argument("--data", required=True, type=Path,
                        help="folder written by `galcam data first`")
    parser.add_argument("--map", action="append", default=[], metavar="MODEL=DATA",
                        help="model class -> data set class (default: the same names)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="float32",
                        choices=PRECISION_NAMES,
                        help="arithmetic of the network passes (WeakSegmenter.load)")
    parser.add_argument("--link-radius", type=float, default=None, metavar="ARCSEC",
                        help="the grouper's link radius (default: the model's)")
    parser.add_argument("--spec-changes", type=json.loads, default=None, metavar="JSON",
                        help="ModelSpec fields to change for this run, e.g. "
                        "'{\"class_views\": \"dihedral\"}' (WeakSegmenter.load)")
    parser.add_argument("--json", type=Path, help="write the numbers to this file")
    args = parser.parse_args(argv)
    mapping = {}
    for item in args.map:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--map: expected MODEL=DATA, got {item!r}")
        mapping[key] = value
    if not (args.data / "annotations.json").is_file():
        parser.error(f"--data: '{args.data}' has no annotations.json")
    logging.basicConfig(level=logging.WARNING)

    coco = json.loads((args.data / "annotations.json").read_text())
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    truth = {a["image_id"]: cats[a["category_id"]] for a in coco["annotations"]}
    predicted, seconds = classify(args.model, args.data, device=args.device,
                                  precision=args.precision, link_radius=args.link_radius,
                                  spec_changes=args.spec_changes)
    if not mapping:
        mapping = {c: c for c in set(cats.values())}
    result = score(truth, predicted, mapping)
    result.update(model=str(args.model), data=str(args.data), seconds=round(seconds, 1),
                  mapping=mapping,
                  definition="class of an image = class of its highest-scoring detection "
                             "(WeakSegmenter.predict_dataset); no detection = wrong")
    print(f"{args.model} on {args.data}: accuracy {result['accuracy']:.3f} over "
          f"{result['n_scored']} images ({result['n_images']} in all), {seconds:.0f} s")
    for lab, rec in result["per_class_recall"].items():
        print(f"  recall {lab:10s} {rec:.3f}")
    columns = sorted({c for row in result["confusion"].values() for c in row})
    print("  truth \\ predicted " + " ".join(f"{c:>8s}" for c in columns))
    for lab, row in result["confusion"].items():
        print(f"  {lab:18s}" + " ".join(f"{row[c]:8d}" for c in columns))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Classes from the network fused with the a/b rule measured on the network's own masks.

Each generator of labelled cutouts turns "FR-I / FR-II / FR-X / R" into pixels its own way,
and the network learns the habit of the one it was trained on. The a/b rule
(`galcam.baseline.ClassicalFinder.classify`, Fanaroff & Riley's peaks on each side of the
centre, single-peaked extended sources FR-I) is a definition rather than a habit. This
script runs the model once on each set, measures the rule's class on every predicted mask
(the radio image and its noise only: no truth is read before scoring), and gives each
galaxy the class

    argmax_c  log(p_c + 0.001) + bonus * [c == rule class]

for a range of ``bonus`` values (0: the network alone; large: the rule alone), scored with
the same scorer as ``bench_views.py`` (class-aware; the masks, scores and hosts do not
change, so the class-agnostic numbers are those of the model). Choose ``bonus`` on
validation sets (the default ``--sets``); score a test set once with the chosen value.

Usage::

    python benchmarks/bench_class_fusion.py [--bonus 0,0.5,1,2,4,100] [--sets ...]
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_views import score, validation_sets  # noqa: E402

DEFAULT_SETS = "galcam:4004:200,independent:37:200,shifted:41:200"


def predictions_with_rule(seg, finder, images, image_dir):
    """COCO results of the model, each with its class probabilities and the rule's class."""
    import warnings

    from astropy.utils.exceptions import AstropyUserWarning
    from pycocotools import mask as mask_utils

    from galcam.datasets.coco import CocoDataset
    from galcam.inference.result import category_ids
    from galcam.morphology import NoEmissionError

    ds = CocoDataset(images, image_dir=image_dir, load_annotations=False)
    cats = category_ids(seg.classes, ds.categories)
    out = []
    for img in ds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyUserWarning)
            result = seg(img.path, img.ir_path, score_threshold=0.0, progress=False)
        entries = result.to_coco(img.image_id, cats)
        for det, entry in zip(result, entries, strict=True):
            mask = mask_utils.decode(entry["segmentation"]).astype(bool)
            try:
                rule, _ = finder.classify(img.path, mask)
            except NoEmissionError:
                rule = None
            entry["probabilities"] = list(det.class_probabilities)
            entry["rule_class"] = rule
            out.append(entry)
    return out


def fuse(preds, classes, cats, bonus):
    """The predictions with each class re-decided by the fusion rule."""
    out = []
    for p in preds:
        logp = np.log(np.asarray(p["probabilities"]) + 1e-3)
        if p["rule_class"] is not None:
            logp[classes.index(p["rule_class"])] += bonus
        q = {k: v for k, v in p.items() if k not in ("probabilities", "rule_class")}
        q["category_id"] = cats[classes[int(np.argmax(logp))]]
        out.append(q)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--bonus", default="0,0.5,1,1.5,2,3,4,100",
                        help="comma-separated values of the rule's log-probability bonus")
    parser.add_argument("--sets", default=DEFAULT_SETS)
    parser.add_argument("--workdir", default="/tmp/galcam-bench-views")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default=None,
                        help="folder to keep the model's predictions per set (reused)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    from galcam import WeakSegmenter
    from galcam.baseline import ClassicalFinder
    from galcam.datasets.coco import CocoDataset
    from galcam.inference.result import category_ids

    torch.set_num_threads(args.threads)
    seg = WeakSegmenter.load(args.model, device="cpu")
    finder = ClassicalFinder(progress=False)
    bonuses = [float(b) for b in args.bonus.split(",")]
    rows = []
    for name, (images, truth, image_dir) in validation_sets(args.workdir, args.sets).items():
        cache = Path(args.cache) / (Path(image_dir).name + ".json") if args.cache else None
        if cache is not None and cache.exists():
            preds = json.loads(cache.read_text())
        else:
            t = time.perf_counter()
            preds = predictions_with_rule(seg, finder, images, image_dir)
            print(f"{name}: {len(preds)} detections in {time.perf_counter() - t:.0f} s",
                  flush=True)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(json.dumps(preds))
        ds = CocoDataset(images, image_dir=image_dir, load_annotations=False)
        cats = category_ids(seg.classes, ds.categories)
        for bonus in bonuses:
            aware, _ = score(truth, fuse(preds, list(seg.classes), cats, bonus), image_dir)
            rows.append({"set": name, "bonus": bonus, "segm_mAP50": aware["segm_mAP50"],
                         "keypoints_mAP50_arcsec": aware["keypoints_mAP50_arcsec"],
                         "class_accuracy": aware["class_accuracy"]})
            r = rows[-1]
            print(f"{name:<30} bonus {bonus:<5g} segm {r['segm_mAP50']:.3f} kp3 "
                  f"{r['keypoints_mAP50_arcsec']:.3f} acc {r['class_accuracy']:.3f}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

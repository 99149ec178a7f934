"""Which CAM views earn their cost: quality and time of cheaper network passes.

A model's networks look at each tile at several CAM scales (the bundled model: 0.6 and
1) and in its mirror image (``flip``). Each view costs a network pass; so does the
arithmetic (``/bfloat16``: the passes in bfloat16, `~galcam.models.ModelNetworks`
``precision``). This benchmark
predicts validation sets with each view setting asked for and scores them with the same
scorer (``galcam.evaluation.evaluate``), class-aware and class-agnostic (every class
merged into one, which measures masks and hosts whatever the class convention):

- ``segm``: COCO mask AP at IoU 0.5 (class-aware: mean over the classes);
- ``kp3``: host keypoint AP50 with a 3" arcsec similarity (``keypoints_mAP50_arcsec``);
- ``acc``: class accuracy of the matched galaxies (IoU >= 0.5);
- ``s/cutout``: wall time per cutout of ``predict_dataset`` (serial, this process).

Validation sets only (the issue's rule: never tune on a test set): by default galcam's
own validation set (``galcam simulate --n 100 --seed 3003``) and a set of another
generator (``bench_independent.make_dataset(..., 100, seed=31)``, which no model was
trained on; its test seeds are 11 and 13).

Usage::

    python benchmarks/bench_views.py                      # the model's views, then 1.0
    python benchmarks/bench_views.py --views '0.6,1.0;1.0;1.0/noflip;0.6,1.0/noflip'
    python benchmarks/bench_views.py --views '0.6,1.0;0.6,1.0/bfloat16'   # arithmetic
"""

import argparse
import copy
import json
import logging
import sys
import time
import warnings
from pathlib import Path

KEYS = ("segm_mAP50", "keypoints_mAP50_arcsec", "class_accuracy")


#: The generators of labelled sets beside galcam's simulator: name -> the module beside
#: this script whose ``make_dataset(folder, n, seed)`` writes them.
GENERATORS = {"independent": "bench_independent", "shifted": "bench_shifted",
              "tailed": "bench_tailed"}


def validation_sets(workdir, spec="galcam:3003:100,independent:31:100"):
    """``{name: (images.json, annotations.json, image_dir)}``, written when missing.

    ``spec``: comma-separated ``GENERATOR:SEED:N``, GENERATOR ``galcam`` (``galcam
    simulate``), ``independent`` (``bench_independent.make_dataset``), ``shifted``
    (``bench_shifted.make_dataset``) or ``tailed`` (``bench_tailed.make_dataset``, a test
    generator only).
    """
    import importlib

    sys.path.insert(0, str(Path(__file__).parent))
    from galcam.datasets import simulate_dataset

    sets = {}
    for item in spec.split(","):
        kind, seed, n = item.split(":")
        seed, n = int(seed), int(n)
        folder = Path(workdir) / f"{kind}-s{seed}-n{n}"
        if kind == "galcam":
            if not (folder / "annotations.json").exists():
                simulate_dataset(folder, n, seed=seed, overview=False, overwrite=True,
                                 progress=False)
            sets[f"galcam simulate {seed} (n={n})"] = (folder / "annotations.json",
                                                       folder / "annotations.json", folder)
        elif kind in GENERATORS:
            if not (folder / "annotations.json").exists():
                importlib.import_module(GENERATORS[kind]).make_dataset(folder, n, seed)
            sets[f"{GENERATORS[kind]} {seed} (n={n})"] = (folder / "images.json",
                                                         folder / "annotations.json", folder)
        else:
            raise SystemExit(f"--sets: unknown generator {kind!r} (galcam, "
                             f"{', '.join(GENERATORS)})")
    return sets


def agnostic(truth_path, preds):
    """Truth and predictions with every class merged into one 'galaxy'."""
    truth = json.loads(Path(truth_path).read_text())
    truth["categories"] = [{"id": 1, "name": "galaxy"}]
    for a in truth["annotations"]:
        a["category_id"] = 1
    preds = copy.deepcopy(preds)
    for p in preds:
        p["category_id"] = 1
    return truth, preds


def score(truth_path, preds, image_dir):
    from astropy.utils.exceptions import AstropyUserWarning

    from galcam.evaluation import evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        aware = evaluate(str(truth_path), preds, image_dir=image_dir).metrics
        truth, merged = agnostic(truth_path, preds)
        flat = evaluate(truth, merged, image_dir=image_dir).metrics
    return aware, flat


def predict_and_score(system, folder):
    """A model's or the classical finder's predictions on ``FOLDER/images.json``, scored.

    Returns ``(class-aware metrics, class-agnostic metrics, seconds per cutout)``; the
    truth is ``FOLDER/annotations.json``, read only by the scorer.
    """
    from astropy.utils.exceptions import AstropyUserWarning

    from galcam.inference import WeakSegmenter

    folder = Path(folder)
    n = len(json.loads((folder / "images.json").read_text())["images"])
    options = {"progress": False} if isinstance(system, WeakSegmenter) else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        t = time.perf_counter()
        pred = system.predict_dataset(folder / "images.json", image_dir=folder, **options)
        seconds = (time.perf_counter() - t) / n
    aware, flat = score(folder / "annotations.json", pred, folder)
    return aware, flat, seconds


def parse_views(text):
    """``[(scales, flip, precision)]`` from 'SCALES[/noflip][/bfloat16|/float16];...'."""
    out = []
    for item in text.split(";"):
        scales, *flags = item.strip().split("/")
        bad = [f for f in flags if f not in ("noflip", "bfloat16", "float16")]
        if bad:
            raise SystemExit(f"--views: unknown flag(s) {bad} in {item!r} (noflip, bfloat16, "
                             "float16)")
        precision = next((f for f in flags if f.endswith("16")), "float32")
        out.append((tuple(float(s) for s in scales.split(",")), "noflip" not in flags,
                    precision))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--views", default=None,
                        help="semicolon-separated 'SCALES[/noflip]' (default: the model's "
                        "own views, then 1.0 alone)")
    parser.add_argument("--workdir", default="/tmp/galcam-bench-views")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sets", default="galcam:3003:100,independent:31:100",
                        help="validation sets, GENERATOR:SEED:N comma-separated (galcam: "
                        "galcam simulate; independent: bench_independent.make_dataset). "
                        "Never a test set (galcam 2002, independent 11 and 13, shifted 21, "
                        "tailed 61)")
    parser.add_argument("--grouping", default=None,
                        help="instance step (GalaxyGrouper method: grouped, rules, islands, "
                        "walk; default: the model's)")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    from galcam import WeakSegmenter

    torch.set_num_threads(args.threads)
    own = WeakSegmenter.load(args.model, device="cpu").spec.cam_scales
    views = (parse_views(args.views) if args.views
             else [(tuple(own), True, "float32"), ((1.0,), True, "float32")])
    sets = validation_sets(args.workdir, args.sets)
    rows = []
    for scales, flip, precision in views:
        extra = {}
        if args.grouping:
            from galcam.inference import GalaxyGrouper

            extra["grouper"] = GalaxyGrouper(method=args.grouping)
        seg = WeakSegmenter.load(args.model, device=args.device,
                                 spec_changes={"cam_scales": list(scales)}, flip=flip,
                                 precision=precision, **extra)
        for name, (images, truth, image_dir) in sets.items():
            n = len(json.loads(Path(images).read_text())["images"])
            t = time.perf_counter()
            preds = seg.predict_dataset(images, image_dir=image_dir, progress=False)
            seconds = (time.perf_counter() - t) / n
            aware, flat = score(truth, preds, image_dir)
            rows.append({"cam_scales": list(scales), "flip": flip, "precision": precision,
                         "set": name,
                         "s_per_cutout": seconds,
                         **{k: aware.get(k) for k in KEYS},
                         "agnostic_segm_AP50": flat["segm_mAP50"],
                         "agnostic_kp3": flat["keypoints_mAP50_arcsec"]})
            r = rows[-1]
            print(f"scales {','.join(f'{s:g}' for s in scales):<8} flip {str(flip):<5} "
                  f"{precision:<8} "
                  f"{name:<32} segm {r['segm_mAP50']:.3f} kp3 "
                  f"{r['keypoints_mAP50_arcsec']:.3f} acc {r['class_accuracy']:.3f} | "
                  f"agnostic segm {r['agnostic_segm_AP50']:.3f} kp3 {r['agnostic_kp3']:.3f} "
                  f"| {seconds:.3f} s/cutout", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

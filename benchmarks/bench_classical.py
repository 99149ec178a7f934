"""The classical finder, rule by rule, on the same sets and with the same scorer as the model.

Runs `galcam.baseline.ClassicalFinder` in named variants (its defaults, and the defaults
with one rule switched off or back to the earlier behaviour) on validation sets of several
generators (`benchmarks/bench_views.validation_sets`: ``galcam simulate``,
``bench_independent`` and ``bench_shifted``), and prints for each variant and set the
class-aware COCO mask AP50 (``segm``), the arcsec host keypoint AP50 (``kp3``: a host counts
within about 3"), the class accuracy of the matched galaxies (``acc``), and the same two AP
with every class merged into one (``agnostic``: masks and hosts whatever the class
convention). What each rule bought is the difference between the defaults and the variant
without it.

Tune on validation sets only (the default ``--sets``); score a test set
(galcam 2002, independent 11 and 13, shifted 21, tailed 61) once per choice, with
``--sets``. ``--try 'NAME:KEY=VALUE;...'`` adds a variant; ``--confusion`` prints the
confusion matrices.

Usage::

    python benchmarks/bench_classical.py                        # every variant, validation sets
    python benchmarks/bench_classical.py --variants "default,no seed threshold"
    python benchmarks/bench_classical.py --variants default --try "r1.3:resolved_ratio=1.3"
    python benchmarks/bench_classical.py --sets independent:13:160,shifted:21:200 \\
        --variants default --json test.json                     # once, at the end
"""

import argparse
import json
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_views import score, validation_sets  # noqa: E402

from galcam.baseline import ClassicalFinder  # noqa: E402

#: name -> options of ClassicalFinder that differ from its defaults
VARIANTS = {
    "default": {},
    "no seed threshold": {"seed_n_sigma": None},
    "S/N-blind resolved test": {"resolved_test": "ratio", "resolved_ratio": 1.5},
    "no touching rule": {"rules": ("double",)},
    "no double rule": {"rules": ("touching",)},
    "with the core rule": {"rules": ("touching", "double", "core")},
    "farthest a/b peaks": {"ab_pairing": "farthest"},
    "single peaks all R": {"single_peak_max_extent": None},
    "brightest IR host": {"host_rule": "brightest"},
    # galcam 0.1.0.dev's defaults, before issue 22
    "earlier defaults": {
        "seed_n_sigma": None, "resolved_test": "ratio", "resolved_ratio": 1.5,
        "touch_distance": 1.0, "core_offset": 1.0, "ab_pairing": "farthest",
        "single_peak_max_extent": None, "host_rule": "brightest",
        "rules": ("touching", "double", "core"),
    },
}

DEFAULT_SETS = "galcam:4004:200,independent:37:200,shifted:41:200"


def _predict_chunk(args):
    options, images, image_dir, ids = args
    from galcam.datasets.coco import CocoDataset

    finder = ClassicalFinder(progress=False, **options)
    ds = CocoDataset(images, image_dir=image_dir, load_annotations=False)
    cats = {name: cid for name, cid in ds.categories.items()}
    out = []
    for img in ds:
        if img.image_id not in ids:
            continue
        for det in finder(img.path, img.ir_path):
            out.append(det.to_coco(img.image_id, cats[det.class_name]))
    return out


def predict(options, images, image_dir, workers):
    """COCO results of the finder on a data set, split over ``workers`` processes."""
    ids = [im["id"] for im in json.loads(Path(images).read_text())["images"]]
    chunks = [set(ids[k::workers]) for k in range(workers)]
    jobs = [(options, str(images), str(image_dir), c) for c in chunks]
    if workers == 1:
        return _predict_chunk(jobs[0])
    with ProcessPoolExecutor(workers) as pool:
        return [p for part in pool.map(_predict_chunk, jobs) for p in part]


def confusion(truth, preds, image_dir):
    """Print the instance confusion matrix (class-agnostic matching at IoU 0.5)."""
    import warnings

    from astropy.utils.exceptions import AstropyUserWarning

    from galcam.evaluation import evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        result = evaluate(str(truth), preds, image_dir=image_dir)
    print("\n".join(result.confusion.to_table().pformat(max_lines=-1, max_width=-1)))


def parse_try(text):
    """``(name, options)`` from 'NAME:KEY=VALUE;KEY=VALUE' (see ``--try``)."""
    import ast

    from astropy import units as u

    name, _, body = text.partition(":")
    options = {}
    for item in filter(None, (b.strip() for b in body.split(";"))):
        key, _, value = item.partition("=")
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError) as exc:
            raise SystemExit(f"--try {text!r}: cannot read {item!r}: {exc}") from None
        options[key.strip()] = u.Quantity(value) if isinstance(value, str) else value
    return name.strip(), options


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated names among {list(VARIANTS)}")
    parser.add_argument("--try", dest="tries", action="append", default=[],
                        metavar="NAME:KEY=VALUE[;KEY=VALUE]",
                        help="an extra variant: options over the defaults, values as Python "
                        "literals, a string is read as a Quantity ('20 arcsec'); repeatable")
    parser.add_argument("--sets", default=DEFAULT_SETS,
                        help="GENERATOR:SEED:N comma-separated (default: validation sets)")
    parser.add_argument("--workdir", default="/tmp/galcam-bench-views")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    parser.add_argument("--confusion", action="store_true",
                        help="also print each confusion matrix (rows: true class)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    variants = dict(VARIANTS)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; choose among {list(VARIANTS)}")
    for text in args.tries:
        name, options = parse_try(text)
        variants[name] = options
        names.append(name)
    sets = validation_sets(args.workdir, args.sets)
    rows = []
    for variant in names:
        for set_name, (images, truth, image_dir) in sets.items():
            n = len(json.loads(Path(images).read_text())["images"])
            t = time.perf_counter()
            preds = predict(variants[variant], images, image_dir, args.workers)
            seconds = (time.perf_counter() - t) / n * args.workers
            aware, flat = score(truth, preds, image_dir)
            if args.confusion:
                confusion(truth, preds, image_dir)
            row = {"variant": variant, "set": set_name, "cpu_s_per_cutout": seconds,
                   "segm_mAP50": aware["segm_mAP50"],
                   "keypoints_mAP50_arcsec": aware["keypoints_mAP50_arcsec"],
                   "class_accuracy": aware["class_accuracy"],
                   "agnostic_segm_AP50": flat["segm_mAP50"],
                   "agnostic_kp3": flat["keypoints_mAP50_arcsec"]}
            rows.append(row)
            print(f"{variant:<24} {set_name:<30} segm {row['segm_mAP50']:.3f} kp3 "
                  f"{row['keypoints_mAP50_arcsec']:.3f} acc {row['class_accuracy']:.3f} | "
                  f"agnostic segm {row['agnostic_segm_AP50']:.3f} kp3 "
                  f"{row['agnostic_kp3']:.3f} | {seconds:.3f} cpu-s/cutout", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Quality, speed and memory of the weak-label model against the classical finder.

Simulates a training set (seed A) and a separate test set (seed B), trains galcam's
weakly-supervised model (CAM -> ReCAM -> IRNet, image-level labels only) with a preset,
predicts the test set, runs the classical reference finder on the same test set, and
scores both with ``galcam.evaluation``. Prints one table and writes everything under
``--workdir`` (rerunning reuses the simulated sets and resumes training).

Usage::

    python benchmarks/bench_weak.py --workdir /tmp/galcam-bench --n-train 600 --n-test 150

Targets of the WeakSegmenter issue (fast preset, 2 CPU cores): segmentation mAP50 >= 0.85,
arcsec host keypoint mAP50 >= 0.80, hosts within 3" for >= 85% of matched galaxies, class
accuracy >= 0.90, training <= 30 min, inference <= 0.5 s per 210 x 210 cutout.
"""

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path

KEYS = (
    "segm_mAP50",
    "segm_mAP",
    "keypoints_mAP50_arcsec",
    "keypoints_mAP50_refcode",
    "keypoints_mAP50_paper",
    "host_within_3arcsec",
    "host_offset_median_arcsec",
    "class_accuracy",
    "completeness",
    "reliability",
)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_metric_table(results, keys):
    """Print one row per metric of ``keys``, one column per evaluation in ``results``."""
    print(f"{'metric':28s}" + "".join(f"{name:>12s}" for name in results))
    for key in keys:
        row = f"{key:28s}"
        for res in results.values():
            value = res.metrics.get(key)
            row += f"{value:12.3f}" if isinstance(value, (int, float)) else f"{'-':>12s}"
        print(row)


def simulate(workdir, name, n, seed, profiles="gaussian"):
    from galcam.datasets import simulate_dataset

    out = workdir / name
    if not (out / "annotations.json").exists():
        t = time.perf_counter()
        simulate_dataset(out, n, seed=seed, overview=False, progress=False, profiles=profiles)
        print(f"simulated {name}: {n} cutouts, seed {seed}, profiles {profiles}, "
              f"{time.perf_counter() - t:.0f} s")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/galcam-bench-weak")
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--n-test", type=int, default=150)
    parser.add_argument("--train-seed", type=int, default=1001)
    parser.add_argument("--test-seed", type=int, default=2002)
    parser.add_argument(
        "--profiles", choices=["gaussian", "varied"], default="gaussian",
        help="source models of the training set (the test set always has the default ones)",
    )
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", default=None, help="use this trained model folder")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a training hyper-parameter (JSON value), e.g. cam_epochs=8",
    )
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from galcam.baseline import ClassicalFinder
    from galcam.datasets import CocoDataset
    from galcam.evaluation import evaluate
    from galcam.inference import WeakSegmenter

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    train_name = "train" if args.profiles == "gaussian" else f"train-{args.profiles}"
    train_dir = simulate(workdir, train_name, args.n_train, args.train_seed, args.profiles)
    test_dir = simulate(workdir, "test", args.n_test, args.test_seed)

    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    model_dir = Path(args.model) if args.model else workdir / f"model-{args.preset}"
    train_s = None
    if args.model is None and not (model_dir / "config.json").exists():
        train = CocoDataset(train_dir / "annotations.json")
        t = time.perf_counter()
        WeakSegmenter.train(
            train, preset=args.preset, output_dir=model_dir, device=args.device, seed=args.seed,
            progress=sys.stderr.isatty(), **overrides,
        )
        train_s = time.perf_counter() - t
        print(f"training ({args.preset}, {args.n_train} cutouts): {train_s / 60:.1f} min, "
              f"peak RSS {peak_rss_mb():.0f} MB")

    segmenter = WeakSegmenter.load(model_dir, device=args.device)
    test_images = test_dir / "images.json"
    t = time.perf_counter()
    predictions = segmenter.predict_dataset(test_images, image_dir=test_dir, progress=False)
    infer_s = (time.perf_counter() - t) / args.n_test
    (workdir / "predictions_weak.json").write_text(json.dumps(predictions))
    print(f"inference: {infer_s:.3f} s per cutout (read, encode, CAMs, IRNet, instances, "
          f"hosts), peak RSS {peak_rss_mb():.0f} MB")

    results = {"weak": evaluate(test_dir / "annotations.json", predictions, image_dir=test_dir)}
    if not args.skip_baseline:
        finder = ClassicalFinder()
        t = time.perf_counter()
        base = finder.predict_dataset(test_images, image_dir=test_dir)
        print(f"classical finder: {(time.perf_counter() - t) / args.n_test:.3f} s per cutout")
        results["classical"] = evaluate(test_dir / "annotations.json", base, image_dir=test_dir)

    print()
    print_metric_table(results, KEYS)
    summary = {
        name: {key: res.metrics.get(key) for key in KEYS} for name, res in results.items()
    }
    summary["timing"] = {"train_s": train_s, "inference_s_per_cutout": infer_s}
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    for name, res in results.items():
        res.write(workdir / f"report-{name}", overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the classical reference finder: tune on one simulated set, report on another.

Two independent EMU-like data sets are simulated with `galcam.datasets.simulate_dataset`
(different seeds). A few options of `galcam.baseline.ClassicalFinder` are tuned on the
first by coordinate descent (one option at a time over a short list of values, keeping the
best), maximising ``segm_mAP50 + keypoints_mAP50_arcsec`` from `galcam.evaluation.evaluate`.
The tuned finder, and the finder with its default options, are then scored on the second
set, which the tuning never saw. Prediction reads ``images.json`` (no annotations); only
the evaluation reads the truth.

Usage::

    python benchmarks/bench_baseline.py                       # 150 + 150 cutouts
    python benchmarks/bench_baseline.py --n 40 --no-tune      # quick look, defaults only
    python benchmarks/bench_baseline.py --workdir /tmp/bench  # keep the data and predictions

It prints the metrics and writes ``WORKDIR/bench_baseline.json``.
"""

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from astropy import units as u

from galcam.baseline import ClassicalFinder
from galcam.datasets import simulate_dataset
from galcam.evaluation import evaluate

REPORTED = (
    "segm_mAP50",
    "keypoints_mAP50_arcsec",
    "keypoints_mAP50_paper",
    "keypoints_mAP50_refcode",
    "host_within_3arcsec",
    "host_offset_median_arcsec",
    "class_accuracy",
    "completeness",
    "reliability",
)

# option -> values tried during tuning (the default is always among them)
GRID = {
    "rules": [
        ("touching", "double", "core"),
        ("touching", "double"),
        ("touching", "core"),
        ("touching",),
        (),
    ],
    "resolved_ratio": [1.2, 1.3, 1.5, 2.0],
    "max_separation": [1 * u.arcmin, 2 * u.arcmin, 4 * u.arcmin],
    "snr_scale": [5.0, 10.0, 30.0, 100.0],
    "extent_scale": [0.5, 1.0, 2.0, 4.0],
    "touch_distance": [0.5, 1.0, 2.0],
    "alignment_angle": [20 * u.deg, 30 * u.deg, 45 * u.deg],
    "core_offset": [0.5, 1.0, 2.0],
    "host_radius": [6 * u.arcsec, 12 * u.arcsec, 20 * u.arcsec],
    "pair_flux_ratio": [3.0, 10.0, 30.0],
}


def _same(a, b):
    if isinstance(a, tuple) or isinstance(b, tuple):
        return tuple(a) == tuple(b)
    return bool(a == b)


def objective(metrics):
    return (metrics.get("segm_mAP50") or 0.0) + (metrics.get("keypoints_mAP50_arcsec") or 0.0)


def run(finder, folder):
    t0 = time.perf_counter()
    preds = finder.predict_dataset(folder / "images.json")
    seconds = time.perf_counter() - t0
    result = evaluate(folder / "annotations.json", preds, image_dir=folder)
    return result.metrics, preds, seconds


def fmt(value):
    return "   n/a" if value is None else f"{value:6.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=150, help="cutouts per simulated set (150)")
    parser.add_argument("--tune-seed", type=int, default=1, help="seed of the tuning set")
    parser.add_argument("--test-seed", type=int, default=2, help="seed of the test set")
    parser.add_argument("--workdir", default=None, help="folder for data and results")
    parser.add_argument("--no-tune", action="store_true", help="score the defaults only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="galcam-bench-baseline-")
        work = Path(tmp.name)
    else:
        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
    sets = {}
    for name, seed in (("tune", args.tune_seed), ("test", args.test_seed)):
        folder = work / f"{name}_seed{seed}_n{args.n}"
        if not (folder / "annotations.json").exists():
            t0 = time.perf_counter()
            simulate_dataset(folder, args.n, seed=seed, overview=False, progress=False)
            print(
                f"simulated {name} set ({args.n} cutouts, seed {seed}) in "
                f"{time.perf_counter() - t0:.0f} s -> {folder}"
            )
        sets[name] = folder

    best = {}
    history = []
    if not args.no_tune:
        metrics, _, secs = run(ClassicalFinder(progress=False), sets["tune"])
        best_score = objective(metrics)
        history.append({"options": {}, "objective": best_score})
        print(f"tune  defaults: objective {best_score:.3f} ({secs:.1f} s)")
        for key, values in GRID.items():
            current = getattr(ClassicalFinder(**best), key)
            for value in values:
                trial = {**best, key: value}
                if _same(value, current):
                    continue  # the current setting, already scored
                metrics, _, secs = run(ClassicalFinder(**trial, progress=False), sets["tune"])
                score = objective(metrics)
                history.append(
                    {"options": {k: str(v) for k, v in trial.items()}, "objective": score}
                )
                print(f"tune  {key}={value}: objective {score:.3f} ({secs:.1f} s)")
                if score > best_score + 1e-9:
                    best_score, best = score, trial
        print(f"tuned options: {best or 'the defaults'} (objective {best_score:.3f})")

    report = {
        "n": args.n,
        "tune_seed": args.tune_seed,
        "test_seed": args.test_seed,
        "tuned_options": {k: str(v) for k, v in best.items()},
        "tuning": history,
    }
    rows = [("defaults", {})] + ([("tuned", best)] if best else [])
    for label, options in rows:
        metrics, preds, secs = run(ClassicalFinder(**options, progress=False), sets["test"])
        report[label] = {k: metrics.get(k) for k in REPORTED}
        report[label]["seconds_per_image"] = secs / args.n
        report[label]["n_predictions"] = len(preds)
        print(
            f"\ntest set (seed {args.test_seed}, {args.n} cutouts), {label} options "
            f"({secs / args.n * 1000:.0f} ms per cutout, {len(preds)} detections):"
        )
        for k in REPORTED:
            print(f"  {k:28s} {fmt(metrics.get(k))}")
    out = work / "bench_baseline.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\n-> {out}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

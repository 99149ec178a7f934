"""Calibrate a trained model folder and record how it scores (used for the bundled model).

Steps 1 and 2 are `galcam.inference.calibrate` (also ``galcam train --calibrate``).

1. Predicts a *validation* set with each class threshold of ``--class-thresholds``
   (the probability at which the classifier takes a class as present; see
   `galcam.inference.WeakSegmenter`) and keeps the one of highest segmentation mAP50
   (the higher threshold on a tie) as the model's recommended value (``config.json`` ->
   ``inference.class_threshold``).
2. With it, stores the score threshold that maximises F1 on the validation set
   (completeness and reliability of class-agnostic matches at IoU 0.5) as the model's
   recommended catalogue threshold (``config.json`` -> ``inference.score_threshold``).
3. Predicts a separate *test* set and stores galcam's evaluation metrics, with their
   definitions and the data they come from, in ``metrics.json`` -> ``test``.

Neither step changes a weight. The validation and test sets must not overlap the
training set (different simulator seeds).

    python benchmarks/calibrate_model.py --model MODELDIR --val VAL_DIR --test TEST_DIR
        [--class-thresholds 0,0.25,0.5]
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

KEYS = ["segm_mAP50", "segm_mAP", "keypoints_mAP50_arcsec", "keypoints_mAP50_refcode",
        "keypoints_mAP50_paper", "host_within_3arcsec", "host_offset_median_arcsec",
        "class_accuracy", "completeness", "reliability", "f1_best", "n_images", "n_true",
        "n_pred"]


def _predict(segmenter, folder):
    from galcam.evaluation import evaluate

    folder = Path(folder)
    t = time.perf_counter()
    pred = segmenter.predict_dataset(folder / "images.json", image_dir=folder, progress=False)
    seconds = time.perf_counter() - t
    return evaluate(folder / "annotations.json", pred, image_dir=folder), seconds


def _describe(folder):
    sim = Path(folder) / "simulation.json"
    if sim.is_file():
        p = json.loads(sim.read_text())["parameters"]
        return (f"galcam simulate --n {p['n']} --seed {p['seed']} "
                f"(class balance {p['class_balance']})")
    return str(folder)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--val", required=True, help="validation data set folder")
    parser.add_argument("--test", required=True, help="test data set folder")
    parser.add_argument("--class-thresholds", default="0,0.25,0.5",
                        help="comma-separated class thresholds to try (default 0,0.25,0.5)")
    args = parser.parse_args(argv)
    try:
        grid = sorted({float(v) for v in args.class_thresholds.split(",")}, reverse=True)
    except ValueError:
        parser.error(f"--class-thresholds: expected comma-separated numbers, got "
                     f"{args.class_thresholds!r}")
    if not grid or not all(0 <= v <= 1 for v in grid):
        parser.error(f"--class-thresholds: expected numbers in [0, 1], got "
                     f"{args.class_thresholds!r}")
    logging.basicConfig(level=logging.WARNING)

    from galcam.inference import WeakSegmenter, calibrate
    from galcam.io import atomic_write

    model = Path(args.model)
    # steps 1 and 2: the library's calibration, recorded in config.json
    cal = calibrate(model, Path(args.val) / "annotations.json", class_thresholds=grid,
                    device="cpu")
    for ct, row in cal.by_class_threshold.items():
        print(f"class threshold {ct}: validation segm_mAP50 {row['segm_mAP50']:.3f}, "
              f"class accuracy {row['class_accuracy']:.3f}")
    best, threshold = cal.class_threshold, cal.score_threshold
    segmenter = WeakSegmenter.load(model, device="cpu")  # with the recorded thresholds
    test, seconds = _predict(segmenter, args.test)
    val_f1 = cal.by_class_threshold[str(best)]["f1_best"]
    metrics = json.loads((model / "metrics.json").read_text())
    metrics["test"] = {
        "data": _describe(args.test),
        "metrics": {k: test.metrics.get(k) for k in KEYS},
        "definitions": test.metrics.get("definitions"),
        "inference_s_per_image_cpu": seconds / max(test.metrics["n_images"], 1),
        "validation_f1_best": dict(val_f1),
        "class_threshold": best,
        "validation_by_class_threshold": {
            ct: {k: row[k] for k in ("segm_mAP50", "class_accuracy")}
            for ct, row in cal.by_class_threshold.items()},
    }
    text = json.dumps(metrics, indent=2) + "\n"
    atomic_write(model / "metrics.json", lambda tmp: Path(tmp).write_text(text))
    print(f"recommended class threshold {best}, score threshold {threshold} (validation "
          f"F1 {cal.f1:.3f})")
    for key in KEYS:
        value = test.metrics.get(key)
        if isinstance(value, float):
            print(f"  {key:28s} {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

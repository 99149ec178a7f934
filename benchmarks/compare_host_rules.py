"""Host finding with a model's own masks: score settings of the 'core' rule on a data set.

Predicts a COCO data set (a ``galcam simulate`` folder, or one of
``bench_independent.py``'s) once per setting of `galcam.inference.HostFinder`'s
``search_scale`` and ``radio_weight`` and prints galcam's evaluation of each: the
fraction of matched galaxies (mask IoU >= 0.5) whose host lies within 3" of the true host,
the median host offset and the arcsec host-keypoint mAP50 (definitions in the docs'
metrics page). The segmentation, classes and scores do not depend on these settings, so
the segmentation mAP50 printed beside them is the same in every row.

    python benchmarks/compare_host_rules.py FOLDER [--model default]
        [--setting 0.75,0] [--setting 1.25,0.5] ...

Each ``--setting`` is ``SEARCH_SCALE,RADIO_WEIGHT``; the defaults compare the first rule
(``0.75,0``: nearest source within 0.75 rms radii) with the current one (``1.25,0.5``).
Choose settings on validation sets, not on the test set.
"""

import argparse
import logging
from pathlib import Path

KEYS = ["segm_mAP50", "host_within_3arcsec", "host_offset_median_arcsec", "keypoints_mAP50_arcsec"]


def _setting(text):
    try:
        scale, weight = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected SEARCH_SCALE,RADIO_WEIGHT (two numbers), got {text!r}") from None
    return scale, weight


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="COCO data set folder (images.json, "
                        "annotations.json, FITS files)")
    parser.add_argument("--model", default="default", help="model folder or name")
    parser.add_argument("--setting", type=_setting, action="append", default=None,
                        help="SEARCH_SCALE,RADIO_WEIGHT (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("images.json", "annotations.json"):
        if not (args.folder / name).is_file():
            parser.error(f"{args.folder / name}: no such file")
    settings = args.setting or [(0.75, 0.0), (1.25, 0.5)]

    from galcam.evaluation import evaluate
    from galcam.inference import HostFinder, WeakSegmenter

    print(f"{args.folder} (model {args.model})")
    print(f"{'search_scale':>12s} {'radio_weight':>12s} " + " ".join(f"{k:>26s}" for k in KEYS))
    for scale, weight in settings:
        finder = HostFinder(search_scale=scale, radio_weight=weight)
        segmenter = WeakSegmenter.load(args.model, host_finder=finder)
        pred = segmenter.predict_dataset(args.folder / "images.json", image_dir=args.folder,
                                         progress=False)
        metrics = evaluate(args.folder / "annotations.json", pred, image_dir=args.folder).metrics
        print(f"{scale:12.2f} {weight:12.2f} " + " ".join(f"{metrics[k]:26.3f}" for k in KEYS),
              flush=True)


if __name__ == "__main__":
    main()

"""How much IRNet's displacement votes change galcam's galaxies: a link-radius sweep.

With ``mask_mode='grouped'`` (the default) the >3 sigma radio islands of a cutout are
grouped into galaxies by where IRNet's displacement field sends their pixels: islands
whose votes lie within ``link_radius`` pixels of each other are one galaxy
(`galcam.inference.grouping.group_islands`). A radius near 0 links no islands, so every
island is a galaxy of its own and IRNet's displacement field plays no part; larger radii
link more. The script predicts each data set once per radius with the same model
(nothing else changes) and scores every prediction with `galcam.evaluation`
(definitions in the docs' metrics page):

    python benchmarks/bench_grouping.py --model default --data VAL_DIR [DIR ...]
        [--link-radii 0.001,10,20]

Each data folder is a COCO data set with ``images.json`` and ``annotations.json`` (e.g.
from ``galcam simulate`` or ``bench_independent.py``).
"""

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

KEYS = ("segm_mAP50", "segm_mAP", "keypoints_mAP50_arcsec", "host_within_3arcsec",
        "class_accuracy", "completeness")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model folder or name")
    parser.add_argument("--data", nargs="+", required=True,
                        help="data set folders (images.json + annotations.json)")
    parser.add_argument("--link-radii", default="0.001,10,20",
                        help="comma-separated link radii in pixels (default 0.001,10,20)")
    args = parser.parse_args(argv)
    try:
        radii = [float(v) for v in args.link_radii.split(",")]
    except ValueError:
        parser.error(f"--link-radii: expected comma-separated numbers, got {args.link_radii!r}")
    if not radii or not all(r > 0 for r in radii):
        parser.error(f"--link-radii: expected positive numbers, got {args.link_radii!r}")
    folders = [Path(d) for d in args.data]
    for folder in folders:
        for name in ("images.json", "annotations.json"):
            if not (folder / name).is_file():
                parser.error(f"--data: '{folder}' has no {name}")
    logging.basicConfig(level=logging.WARNING)

    import astropy.units as u
    from astropy.utils.exceptions import AstropyUserWarning
    from bench_weak import print_metric_table

    from galcam.evaluation import evaluate
    from galcam.inference import GalaxyGrouper, WeakSegmenter

    loaded = WeakSegmenter.load(args.model, device="cpu")
    for folder in folders:
        results = {}
        t = time.perf_counter()
        for radius in radii:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyUserWarning)
                segmenter = loaded.with_options(
                    grouper=GalaxyGrouper(link_radius=radius * u.pix))
                pred = segmenter.predict_dataset(folder / "images.json", image_dir=folder,
                                                 progress=False)
                results[f"r={radius:g}"] = evaluate(folder / "annotations.json", pred,
                                                    image_dir=folder)
        print(f"{folder} ({results[next(iter(results))].metrics['n_images']} images, model "
              f"{args.model}, {time.perf_counter() - t:.0f} s):")
        print_metric_table(results, KEYS)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

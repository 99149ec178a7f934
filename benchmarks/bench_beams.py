"""How a model's quality depends on the beam of the images it is applied to.

Simulates (once, into ``--work``) sets of cutouts like galcam's test set but with other
restoring beams, predicts each with the model and scores every prediction with
`galcam.evaluation` (definitions in the docs' metrics page). Prints one row per set:

    python benchmarks/bench_beams.py --model default [--n 100] [--work /tmp/galcam-beams]
        [--beam-matching 0.5] [--sets 13x11,15x13,18x16,21x19,25x22,8x7,mixed]

The sets (``galcam.datasets.simulate_dataset(DIR, n, seed=S, beam=(major, minor, None))``;
the seeds are those of the tables in the docs, none of them a training seed):

=========  ====  ================================================================
set        seed  beam
=========  ====  ================================================================
13x11      3003  13" x 11" (EMU-PS, the bundled model's training beam until v8)
15x13      8008  15" x 13"
18x16      6006  18" x 16"
21x19      6106  21" x 19"
25x22      9009  25" x 22"
8x7        7007  8" x 7"
mixed      2002  13" x 11" times a factor drawn per cutout in 0.9-1.6 (``beam_scale``)
=========  ====  ================================================================
"""

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

SETS = {
    "13x11": (3003, (13.0, 11.0), (1.0, 1.0)),
    "15x13": (8008, (15.0, 13.0), (1.0, 1.0)),
    "18x16": (6006, (18.0, 16.0), (1.0, 1.0)),
    "21x19": (6106, (21.0, 19.0), (1.0, 1.0)),
    "25x22": (9009, (25.0, 22.0), (1.0, 1.0)),
    "8x7": (7007, (8.0, 7.0), (1.0, 1.0)),
    "mixed": (2002, (13.0, 11.0), (0.9, 1.6)),
}
KEYS = ("segm_mAP50", "keypoints_mAP50_arcsec", "class_accuracy", "host_within_3arcsec")


def _simulated(work, name, n):
    """The folder of set ``name`` with ``n`` cutouts, simulated if not there yet."""
    from galcam.datasets import simulate_dataset

    seed, (major, minor), scale = SETS[name]
    folder = Path(work) / f"{name}_n{n}"
    if (folder / "simulation.json").is_file():
        return folder
    simulate_dataset(folder, n, seed=seed, beam=(major, minor, None), beam_scale=scale,
                     n_workers=2, overview=False, progress=False, overwrite=True)
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model folder or 'default'")
    parser.add_argument("--n", type=int, default=100, help="cutouts per set (100)")
    parser.add_argument("--work", default="galcam-beams",
                        help="folder for the simulated sets (kept and reused)")
    parser.add_argument("--beam-matching", type=float, default=None,
                        help="WeakSegmenter beam_matching (default: the segmenter's)")
    parser.add_argument("--sets", default=",".join(SETS),
                        help=f"comma-separated sets (default all: {','.join(SETS)})")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    names = [s for s in args.sets.split(",") if s]
    unknown = [s for s in names if s not in SETS]
    if unknown:
        parser.error(f"--sets: unknown set(s) {', '.join(unknown)}; known: {', '.join(SETS)}")
    if args.n < 1:
        parser.error(f"--n: expected at least 1, got {args.n}")
    logging.basicConfig(level=logging.WARNING)

    from astropy.utils.exceptions import AstropyUserWarning

    from galcam.evaluation import evaluate
    from galcam.inference import WeakSegmenter

    options = {} if args.beam_matching is None else {"beam_matching": args.beam_matching}
    segmenter = WeakSegmenter.load(args.model, device="cpu", **options)
    beam = segmenter.beam or {}
    print(f"model {args.model}: training beam {beam.get('major_arcsec', float('nan')):.1f}\" x "
          f"{beam.get('minor_arcsec', float('nan')):.1f}\" (area range "
          f"{beam.get('area_range_arcsec2', 'not recorded')}), beam_matching "
          f"{segmenter.beam_matching}; beam warnings are not shown")
    print(f"{'set':8s} {'n':>4s} " + " ".join(f"{k:>24s}" for k in KEYS) + "  s/cutout")
    out = {}
    for name in names:
        folder = _simulated(args.work, name, args.n)
        t = time.perf_counter()
        with warnings.catch_warnings():
            # one beam warning per cutout of a set whose beam is outside the training range
            warnings.simplefilter("ignore", AstropyUserWarning)
            pred = segmenter.predict_dataset(folder / "images.json", image_dir=folder,
                                             progress=False)
        seconds = (time.perf_counter() - t) / args.n
        m = evaluate(folder / "annotations.json", pred, image_dir=folder).metrics
        out[name] = {k: m[k] for k in KEYS}
        out[name]["s_per_cutout"] = seconds
        cells = [f"{'--':>24s}" if m[k] is None else f"{m[k]:24.3f}" for k in KEYS]
        print(f"{name:8s} {args.n:4d} " + " ".join(cells) + f"  {seconds:8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

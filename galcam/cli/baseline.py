"""``galcam baseline``: the classical reference finder on a COCO data set.

Runs `galcam.baseline.ClassicalFinder` (noise, 3-sigma islands, grouping rules, the paper's
a/b class rule, infrared host) on every image of a COCO JSON and writes
``OUTDIR/predictions.json`` in the COCO results format, the same as ``galcam predict``, so
that ``galcam evaluate`` scores both side by side. The JSON's annotations are never read.
"""

import json
import logging
from pathlib import Path

from .main import GalcamCLIError

log = logging.getLogger(__name__)

OUTPUT = "predictions.json"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "baseline",
        help="run the classical (non-deep-learning) reference finder on a COCO data set",
        description=(
            "Find, segment and classify extended radio galaxies with a classical method "
            "(3-sigma islands grouped by documented rules, the a/b class rule, the brightest "
            "infrared source near the core as host) and write COCO results to "
            "OUTDIR/predictions.json. Annotations in the JSON are ignored."
        ),
    )
    parser.add_argument("--coco", required=True, metavar="IMAGES.json", help="COCO JSON")
    parser.add_argument(
        "--image-dir", default=None, metavar="DIR", help="image folder (default: the JSON's)"
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    parser.add_argument("--n-sigma", type=float, default=3.0, help="island threshold (3)")
    parser.add_argument("--n-pixels", type=int, default=5, help="minimum island size (5)")
    parser.add_argument(
        "--noise-method",
        default="sigma_clip",
        choices=["sigma_clip", "paper", "mad"],
        help="radio noise estimator (default: unbiased sigma clipping)",
    )
    parser.add_argument(
        "--host-radius",
        type=float,
        default=None,
        metavar="ARCSEC",
        help="search radius for the infrared host around the core, arcsec",
    )
    parser.add_argument(
        "--host-rule",
        default="likelihood",
        choices=["likelihood", "brightest"],
        help="infrared host among the candidates: largest likelihood ratio (default) or "
        "the brightest",
    )
    parser.add_argument(
        "--ab-pairing",
        default="per-side",
        choices=["per-side", "farthest"],
        help="peaks of the a/b rule: brightest on each side of the centre (default, "
        "Fanaroff & Riley 1974) or the two farthest apart",
    )
    parser.add_argument(
        "--single-peak-max-extent",
        default="6",
        metavar="BEAMS|none",
        help="a single-peaked source longer than this many beams is FR-I, not R (6); "
        "'none': every single-peaked source is R (the paper's rule)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace predictions.json")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def _beams_or_none(text):
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise GalcamCLIError(
            f"--single-peak-max-extent: expected a number of beams or 'none', got {text!r}"
        ) from None
    if not value > 0:
        raise GalcamCLIError(f"--single-peak-max-extent: expected a positive number of beams "
                             f"or 'none', got {text!r}")
    return value


def run(args):
    from astropy import units as u

    from galcam.baseline import ClassicalFinder
    from galcam.io import atomic_write

    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise GalcamCLIError(f"output '{outdir}' exists and is not a folder")
    target = outdir / OUTPUT
    if target.exists() and not args.overwrite:
        raise GalcamCLIError(f"'{outdir}' already holds {OUTPUT}; use --overwrite to replace it")
    options = {"n_sigma": args.n_sigma, "n_pixels": args.n_pixels}
    options["noise_method"] = args.noise_method
    options["host_rule"] = args.host_rule
    options["ab_pairing"] = args.ab_pairing
    options["single_peak_max_extent"] = _beams_or_none(args.single_peak_max_extent)
    if args.host_radius is not None:
        options["host_radius"] = args.host_radius * u.arcsec
    finder = ClassicalFinder(**options, progress=False if args.no_progress else None)
    results = finder.predict_dataset(args.coco, image_dir=args.image_dir)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(results, fh)

    outdir.mkdir(parents=True, exist_ok=True)
    atomic_write(target, write)
    n_images = len({r["image_id"] for r in results})
    log.info("%d detections in %d images -> %s", len(results), n_images, target)
    print(f"{len(results)} detections in {n_images} images -> {target}")
    return 0

"""``galcam evaluate``: score COCO-results predictions against a COCO truth."""

import logging
import sys

from ._options import in_cli_words

log = logging.getLogger(__name__)


def add_parser(subparsers):
    """Register ``galcam evaluate``."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score predictions against a COCO truth (mask AP, host OKS AP, confusion matrix)",
        description=(
            "Score COCO-results predictions (masks, classes, scores, host keypoints) against a "
            "COCO ground truth: mask AP per class and mAP at IoU 0.5 and 0.5:0.95; host-keypoint "
            "OKS AP as the authors' code, as the paper's text and in arcsec; host offsets in "
            "arcsec; class-agnostic confusion matrix, completeness, reliability and class "
            "accuracy. Prints a per-class table and, with -o, writes metrics.json, report.txt "
            "and PNG figures. Categories are matched by name."
        ),
    )
    parser.add_argument("--truth", required=True, metavar="TRUTH.json", help="COCO ground truth")
    parser.add_argument(
        "--pred",
        required=True,
        metavar="PRED.json",
        help="COCO results: a list, or {'categories': [...], 'annotations': [...]}",
    )
    parser.add_argument(
        "-o", "--output", metavar="REPORTDIR", help="report folder to write (optional)"
    )
    parser.add_argument(
        "--pred-categories",
        metavar="CATS.json",
        help="names of the prediction category ids (a list of {id, name} or a COCO JSON); "
        "predictions are remapped to the truth's ids by name (default: the "
        "PRED.categories.json that galcam predict writes beside PRED.json)",
    )
    parser.add_argument(
        "--class-map",
        action="append",
        default=None,
        metavar="PRED=TRUTH",
        help="a predicted class is the truth's class TRUTH (repeatable), e.g. --class-map "
        "R=Compact for a truth that names classes otherwise; PRED= leaves that class's "
        "predictions out. Without it, a truth whose class names are not the predictions' "
        "is refused",
    )
    parser.add_argument(
        "--image-dir", metavar="DIR", help="folder of the truth's FITS files (for pixel scales)"
    )
    parser.add_argument(
        "--pixel-scale",
        type=float,
        metavar="ARCSEC",
        help="pixel scale in arcsec/px, for images without images[].pixel_scale_arcsec or FITS",
    )
    parser.add_argument(
        "--iou-threshold",
        type=float,
        default=0.5,
        metavar="T",
        help="mask IoU of the class-agnostic matching (confusion matrix, completeness, "
        "reliability, host offsets); default 0.5",
    )
    parser.add_argument(
        "--arcsec-d50",
        type=float,
        default=3.0,
        metavar="ARCSEC",
        help="host offset at which the arcsec OKS is 0.5 (default 3)",
    )
    parser.add_argument(
        "--semantic",
        metavar="MAPS.npz",
        help="semantic label maps (e.g. thresholded CAMs) to score by mIoU: one integer array "
        "per image, named by its image id, values = truth category ids (0 = background)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace report files in REPORTDIR"
    )
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Run the evaluation; returns the exit status."""
    from pathlib import Path

    from galcam.evaluation import arcsec_sigma_from_d50, evaluate
    from galcam.evaluation.report import REPORT_FILES

    if not args.arcsec_d50 > 0 or args.arcsec_d50 == float("inf"):
        raise ValueError(f"--arcsec-d50 must be positive, got {args.arcsec_d50}")
    if args.output and not args.overwrite:
        # refuse before the (possibly long) evaluation
        out = Path(args.output)
        existing = [n for n in REPORT_FILES if (out / n).exists()]
        if existing:
            raise FileExistsError(
                f"report folder '{out}' already has {', '.join(existing)}; use --overwrite"
            )
    class_map = _class_map(args.class_map)
    semantic = _read_semantic(args.semantic) if args.semantic else None
    try:
        result = evaluate(
            args.truth,
            args.pred,
            pred_categories=args.pred_categories,
            class_map=class_map,
            image_dir=args.image_dir,
            pixel_scale=args.pixel_scale,
            iou_threshold=args.iou_threshold,
            arcsec_sigma=arcsec_sigma_from_d50(args.arcsec_d50),
            semantic_predictions=semantic,
        )
    except (TypeError, ValueError) as exc:  # one line, in the words of the command line
        raise in_cli_words(exc) from exc
    print(result.summary())
    print()
    result.to_table().pprint(max_lines=-1, max_width=-1)
    if args.output:
        paths = result.write(args.output, overwrite=args.overwrite)
        print(f"\nwrote {len(paths)} files to {args.output}", file=sys.stderr)
    else:
        log.info("no -o REPORTDIR given: nothing written")
    return 0


def _class_map(items):
    """``{PRED: TRUTH or None}`` from repeated ``--class-map PRED=TRUTH``."""
    if not items:
        return None
    out = {}
    for item in items:
        pred, sep, truth = item.partition("=")
        if not sep or not pred.strip():
            raise ValueError(f"--class-map: expected PRED=TRUTH (e.g. R=Compact), got {item!r}")
        out[pred.strip()] = truth.strip() or None
    return out


def _read_semantic(path):
    """image id -> label map from an ``.npz`` whose array names are the image ids."""
    from pathlib import Path

    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--semantic file '{path}' does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            maps = {}
            for key in npz.files:
                try:
                    image_id = int(key)
                except ValueError:
                    raise ValueError(
                        f"--semantic file '{path}': array name {key!r} is not an image id"
                    ) from None
                maps[image_id] = npz[key]
    except (OSError, ValueError) as exc:
        if isinstance(exc, ValueError) and "--semantic" in str(exc):
            raise
        raise ValueError(f"--semantic file '{path}' is not a readable .npz ({exc})") from exc
    return maps

"""``galcam data``: write published data sets as galcam COCO data sets.

``galcam data first --split {train,valid,test} -o DIR`` writes a split of the FIRST radio
galaxy data set (Griese et al. 2023, installed with ``pip install "galcam[first]"``) as
``DIR/annotations.json`` and ``DIR/images/*.fits``; see
`galcam.datasets.write_first_coco`.
"""

import argparse
import logging
import sys
from fractions import Fraction

from .main import GalcamCLIError

log = logging.getLogger(__name__)


def _fraction(text):
    """A number given as ``0.25`` or ``1/3``."""
    try:
        return float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number such as 0.25 or 1/3, got "
                                         f"{text!r}") from None


def add_parser(subparsers):
    """Register ``galcam data`` and its data sets."""
    parser = subparsers.add_parser(
        "data",
        help="write a published data set (FIRST) as a COCO data set of FITS images",
        description="Write a published labelled data set as a galcam COCO data set "
                    "(annotations.json and FITS images) for `galcam train`.",
    )
    sets = parser.add_subparsers(dest="dataset", metavar="DATASET")
    sets.required = True
    first = sets.add_parser(
        "first",
        help="the FIRST radio galaxy data set (FRI, FRII, Compact, Bent; Griese et al. 2023)",
        description=(
            "Write a split of the FIRST radio galaxy data set of Griese et al. (2023): "
            "300 x 300 px VLA FIRST cutouts (1.8\"/px, 5.4\" beam) with one class each "
            "(FRI, FRII, Compact, Bent), read from the installed 'firstgalaxydata' package "
            "(pip install \"galcam[first]\"; nothing is downloaded). The images are 8-bit "
            "and clipped at 3 sigma, not calibrated: they are written in a pseudo-brightness "
            "(clip level 0.45 mJy/beam, one 8-bit step 0.15 mJy/beam) with the clipped "
            "background replaced by Gaussian noise (--noise), and a TAN WCS centred on each "
            "source. Writes DIR/annotations.json (image-level labels only) and DIR/images/."
        ),
    )
    first.add_argument("--split", required=True, choices=["train", "valid", "test"],
                       help="train (1758 images), valid (200) or test (200); with --fold "
                       "the fold's train or valid part, or the folds' test set (400)")
    first.add_argument("--fold", type=int, choices=range(5), metavar="K",
                       help="a cross-validation fold 0-4 instead of the literature split")
    first.add_argument("-o", "--output", required=True, metavar="DIR",
                       help="output folder (annotations.json and images/)")
    first.add_argument("--noise", type=_fraction, default=1 / 3, metavar="FRACTION",
                       help="rms of the restored background noise as a fraction of the clip "
                       "level, in [0, 1] (default 1/3: FIRST's sigma, so galcam's 3-sigma "
                       "islands are the pixels FIRST kept; 0: no noise)")
    first.add_argument("--seed", type=int, default=0,
                       help="seed of the noise (with each image's name; default 0)")
    first.add_argument("--data-dir", metavar="DIR",
                       help="folder of the data set's zip files (default: the installed "
                       "firstgalaxydata package's folder)")
    first.add_argument("--overwrite", action="store_true",
                       help="replace annotations.json and images/ already in DIR")
    first.add_argument("--no-progress", action="store_true", help="no progress bar")
    # -v/-q after the data set's name too (galcam.cli.main adds them to `galcam data`)
    first.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                       help="more log output (-vv for debug)")
    first.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="only warnings and errors")
    first.set_defaults(func=run_first)
    return parser


def run_first(args):
    """Write the FIRST split; returns the exit status."""
    from galcam.datasets import write_first_coco

    progress = not args.no_progress and sys.stderr.isatty()
    try:
        path = write_first_coco(args.split, args.output, fold=args.fold, noise=args.noise,
                                seed=args.seed, overwrite=args.overwrite,
                                data_dir=args.data_dir, progress=progress)
    except ImportError as exc:  # firstgalaxydata (or h5py for the folds) is not installed
        raise GalcamCLIError(str(exc)) from None
    from galcam.datasets import FIRST_CLASSES, CocoDataset

    ds = CocoDataset(path, classes=FIRST_CLASSES)
    counts = ds.labels.sum(axis=0).astype(int)
    split = args.split if args.fold is None else f"fold {args.fold} {args.split}"
    print(f"wrote {len(ds)} FIRST {split} images ("
          + ", ".join(f"{c} {n}" for c, n in zip(ds.classes, counts))
          + f") to {path}")
    return 0

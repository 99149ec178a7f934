"""``galcam simulate``: a simulated EMU-like data set (or mosaic) with COCO truth.

Writes radio and infrared FITS cutouts, ``annotations.json`` (COCO truth),
``images.json``, ``truth.ecsv``, ``overview.png`` and ``simulation.json`` into the output
folder; see `galcam.datasets.simulate_dataset` and `galcam.datasets.simulate_mosaic`.
"""

import json
import logging
import sys

from .main import GalcamCLIError

log = logging.getLogger(__name__)


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "simulate",
        help="simulate EMU-like radio and WISE-like infrared cutouts with COCO truth",
        description=(
            'Simulate a data set of EMU Pilot Survey-like radio cutouts (210 x 210 px, 2"/px, '
            '13" x 11" beam unless --beam / --beam-scale, 25-35 uJy/beam) around FR-I, FR-II, '
            "FR-X and R radio galaxies, "
            "with WISE W1-like infrared cutouts and the truth (masks, classes, host keypoints) "
            "in COCO format; or one large mosaic with --mosaic. The same --seed gives the same "
            "files for any --workers."
        ),
    )
    parser.add_argument(
        "-o", "--output", required=True, help="output folder (must be empty unless --overwrite)"
    )
    parser.add_argument("--n", type=int, default=100, help="number of cutouts (100)")
    parser.add_argument(
        "--seed", type=int, required=True, help="random seed (a non-negative integer)"
    )
    parser.add_argument(
        "--no-realism",
        action="store_true",
        help="clean images: no artefacts, crowding, bent tails, IR confusion, ... "
        "(realism is on by default)",
    )
    parser.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="EFFECT",
        help="switch off one realism effect (repeatable), e.g. --disable artefacts; "
        "effects: artefacts, crowding, compact_pairs, overlapping, bent_tails, one_sided_jets, "
        "detached_lobes, faint_plumes, ir_confusion, blanked_edges",
    )
    parser.add_argument(
        "--balance",
        choices=["paper", "balanced"],
        default="paper",
        help="intended class frequencies: the paper's 328/128/110/196 (default) or equal",
    )
    parser.add_argument(
        "--beam",
        type=float,
        nargs=2,
        default=(13.0, 11.0),
        metavar=("MAJOR", "MINOR"),
        help="restoring beam FWHMs in arcsec (13 11, EMU-PS); the position angle is drawn "
        "per image",
    )
    parser.add_argument(
        "--beam-scale",
        type=float,
        nargs=2,
        default=None,
        metavar=("LOW", "HIGH"),
        help="vary the beam from cutout to cutout: both axes times a factor drawn "
        "log-uniformly in [LOW, HIGH] (e.g. 0.9 1.5 for a training set that covers a range "
        "of beams); cutouts only",
    )
    parser.add_argument(
        "--profiles",
        choices=["gaussian", "varied"],
        default="gaussian",
        help="source models: 'gaussian' (Gaussian clumps and chains, the default) or 'varied' "
        "(also power-law conical jets, smooth Sersic lobes, double hotspots, X-shaped wings, "
        "Sersic discs, drawn per galaxy)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    parser.add_argument(
        "--radio-naxis",
        type=int,
        choices=[2, 4],
        default=4,
        help="axes of the radio FITS files (4, like ASKAP)",
    )
    parser.add_argument(
        "--mosaic",
        type=int,
        default=None,
        metavar="SIZE",
        help="write one SIZE x SIZE px mosaic instead of cutouts (e.g. 3000)",
    )
    parser.add_argument(
        "--n-galaxies", type=int, default=120, help="galaxies in the mosaic (120; with --mosaic)"
    )
    parser.add_argument("--no-overview", action="store_true", help="do not write overview.png")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--overwrite", action="store_true", help="write into a non-empty output folder"
    )
    parser.set_defaults(func=run)
    return parser


def run(args):
    from ..datasets.simulate import Realism, simulate_dataset, simulate_mosaic

    if args.n < 1:
        raise GalcamCLIError(f"--n must be at least 1, got {args.n}")
    if args.seed < 0:
        raise GalcamCLIError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.workers < 1:
        raise GalcamCLIError(f"--workers must be at least 1, got {args.workers}")
    unknown = [e for e in args.disable if e not in Realism.effects()]
    if unknown:
        raise GalcamCLIError(
            f"--disable: unknown effect(s) {', '.join(unknown)}; "
            f"known: {', '.join(Realism.effects())}"
        )
    realism = Realism.off() if args.no_realism else Realism(**{e: False for e in args.disable})
    major, minor = args.beam
    if not 0 < minor <= major:
        raise GalcamCLIError(
            f"--beam: expected 0 < MINOR <= MAJOR (arcsec), got {major:g} {minor:g}"
        )
    beam = (major, minor, None)
    if args.beam_scale is not None and not 0 < args.beam_scale[0] <= args.beam_scale[1]:
        raise GalcamCLIError(
            f"--beam-scale: expected 0 < LOW <= HIGH, got {args.beam_scale[0]:g} "
            f"{args.beam_scale[1]:g}"
        )
    if args.mosaic is not None:
        if args.mosaic < 64:
            raise GalcamCLIError(f"--mosaic must be at least 64 pixels, got {args.mosaic}")
        if args.beam_scale is not None:
            raise GalcamCLIError("--beam-scale applies to cutouts; a mosaic has one beam (--beam)")
        record = simulate_mosaic(
            args.output,
            size=args.mosaic,
            n_galaxies=args.n_galaxies,
            seed=args.seed,
            realism=realism,
            class_balance=args.balance,
            radio_naxis=args.radio_naxis,
            overwrite=args.overwrite,
            overview=not args.no_overview,
            beam=beam,
            profiles=args.profiles,
        )
    else:
        record = simulate_dataset(
            args.output,
            args.n,
            seed=args.seed,
            realism=realism,
            class_balance=args.balance,
            n_workers=args.workers,
            radio_naxis=args.radio_naxis,
            overwrite=args.overwrite,
            overview=not args.no_overview,
            progress=False if args.no_progress else None,
            beam=beam,
            beam_scale=(1.0, 1.0) if args.beam_scale is None else tuple(args.beam_scale),
            profiles=args.profiles,
        )
    st = record["statistics"]
    log.info("class counts: %s", json.dumps(st["class_counts"]))
    print(
        f"wrote {st['n_images']} image(s) with {st['n_galaxies']} galaxies to {args.output} "
        f"(classes {st['class_counts']}; intended class kept for {100 * st['agreement']:.0f} %)",
        file=sys.stdout,
    )
    return 0

"""``galcam survey``: a trained model over a whole mosaic, in parallel and resumably.

``galcam survey MOSAIC.fits [--ir IR.fits] [--seeds CATALOG] -o OUTDIR
[--n-workers N | --scheduler ADDRESS]`` splits the mosaic into work units (overlapping
tiles, or cutouts centred on the seeds of a Selavy, PyBDSF, Aegean or galcam component
catalogue), processes them on dask workers (or in this process with ``--n-workers 0``),
saves each finished unit in ``OUTDIR/units/`` and merges them into ``OUTDIR/catalog.ecsv``,
``OUTDIR/galaxies.reg``, ``OUTDIR/predictions.json`` (its category ids named in
``OUTDIR/predictions.categories.json``) and ``OUTDIR/coverage.png``;
``OUTDIR/manifest.json`` records inputs, model, settings and progress. Rerunning the same
command resumes an interrupted run.
"""

import json
import logging
import sys
from pathlib import Path

from ._options import add_precision_option, check_planes, in_cli_words
from .main import GalcamCLIError

log = logging.getLogger(__name__)


def add_parser(subparsers):
    """Register ``galcam survey``."""
    parser = subparsers.add_parser(
        "survey",
        help="run a model over a whole mosaic on dask workers (resumable)",
        description=(
            "Find the radio galaxies of a whole mosaic: work units (overlapping tiles, or "
            "cutouts centred on the seeds of a component catalogue) are processed by dask "
            "workers, each reading only its part of the memory-mapped mosaic and loading "
            "the model once; every finished unit is saved in OUTDIR/units/, and the "
            "detections are merged (a galaxy seen by several units appears once; a radio "
            "component belongs to the most confident galaxy). Writes OUTDIR/catalog.ecsv, "
            "OUTDIR/galaxies.reg, OUTDIR/predictions.json (and "
            "OUTDIR/predictions.categories.json, the names of its category ids), "
            "OUTDIR/coverage.png and "
            "OUTDIR/manifest.json. Running the same command again resumes an interrupted "
            "run. Several workers need dask: pip install \"galcam[distributed]\"."
        ),
    )
    parser.add_argument("mosaic", metavar="MOSAIC.fits", help="radio mosaic (FITS, 2-4 axes)")
    parser.add_argument("--ir", metavar="IR.fits", help="infrared image (any grid)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    parser.add_argument("--model", default="default", metavar="NAME|DIR",
                        help="model folder or registered model name (default: 'default')")
    seeds = parser.add_argument_group("seeds (cutouts centred on catalogue components)")
    seeds.add_argument("--seeds", metavar="CATALOG",
                       help="component catalogue: Selavy VOTable, PyBDSF, Aegean (FITS, "
                       "VOTable or CSV) or a galcam islands.ecsv")
    seeds.add_argument("--seed-format", default="auto",
                       choices=["auto", "selavy", "pybdsf", "aegean", "galcam"],
                       help="the finder that wrote --seeds (default: recognised by its columns)")
    seeds.add_argument("--seed-columns", metavar="ra=COL,dec=COL[,id=COL,flux=COL]",
                       help="column names of the seed catalogue (overrides --seed-format)")
    seeds.add_argument("--seed-separation", type=float, default=None, metavar="PIX",
                       help="seeds closer than PIX pixels to a brighter seed share its cutout "
                       "(default: a quarter of the cutout)")
    run_group = parser.add_argument_group("execution")
    where = run_group.add_mutually_exclusive_group()
    where.add_argument("--n-workers", type=int, default=None, metavar="N",
                       help="worker processes of a local dask cluster; 0 runs in this process "
                       "without dask (default: one per GPU, else one per CPU core, at most 8)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="address of a running dask scheduler (tcp://host:8786); workers "
                       "must see the same paths")
    run_group.add_argument("--threads-per-worker", type=int, default=1, metavar="N",
                           help="units run at once per local worker (1)")
    run_group.add_argument("--torch-threads", type=int, default=None, metavar="N",
                           help="torch threads per worker (default: cores / workers)")
    run_group.add_argument("--device", default="auto",
                           help="'auto' (each worker's GPU if it has one), 'cpu', 'cuda', "
                           "'cuda:N'")
    run_group.add_argument("--batch-size", type=int, default=4, metavar="N",
                           help="tiles per network pass (4)")
    run_group.add_argument("--max-units", type=int, default=None, metavar="N",
                           help="process at most N pending units now, then merge what is done")
    units = parser.add_argument_group("units and merging")
    units.add_argument("--tile-size", type=int, default=None, metavar="PIX",
                       help="unit size in mosaic pixels (default: the model's input size)")
    units.add_argument("--overlap", type=float, default=1 / 3, metavar="F",
                       help="tile overlap as a fraction of the tile size (default 1/3)")
    units.add_argument("--plane", type=int, default=None, metavar="N",
                       help="0-based plane of radio cubes with a non-degenerate "
                       "spectral/Stokes axis")
    units.add_argument("--score-threshold", type=float, default=None, metavar="S",
                       help="leave out detections scoring below S (default: the model's "
                       "recommended catalogue threshold; 0 keeps all)")
    units.add_argument("--class-threshold", type=float, default=None, metavar="P",
                       help="class probability from which a class is present (default: the "
                       "model's)")
    add_precision_option(run_group, default=None)  # None: as --model-options says
    units.add_argument("--model-options", default=None, metavar="JSON",
                       help="other options of the segmenter as a JSON object, e.g. "
                       "'{\"mask_mode\": \"walk\", \"link_radius\": \"30 arcsec\"}' "
                       "(galcam.inference.segmenter.load_options lists them)")
    out = parser.add_argument_group("outputs")
    out.add_argument("--formats", default="ecsv", metavar="LIST",
                     help="catalogue formats, comma-separated among ecsv, fits, votable "
                     "(default ecsv)")
    out.add_argument("--overwrite", action="store_true",
                     help="replace a run of OUTDIR made with other inputs or settings")
    units.add_argument("--force", action="store_true",
                       help="run on a mosaic galcam refuses: undersampled (fewer than 2 pixels "
                       "across the beam), or one each unit of which would be resampled to more "
                       "than 16 times its pixels (same as --model-options '{\"force\": true}')")
    out.add_argument("--restart", action="store_true",
                     help="start again instead of resuming (with --overwrite)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def _seed_columns(text):
    if text is None:
        return None
    columns = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in ("ra", "dec", "id", "flux") or not value:
            raise GalcamCLIError(f"--seed-columns: expected ra=COL,dec=COL[,id=COL,flux=COL], "
                                 f"got {text!r}")
        columns[key] = value
    return columns


def _model_options(args):
    options = {}
    if args.model_options:
        try:
            options = json.loads(args.model_options)
        except ValueError as exc:
            raise GalcamCLIError(f"--model-options: not valid JSON ({exc})") from exc
        if not isinstance(options, dict):
            raise GalcamCLIError("--model-options: expected a JSON object such as "
                                 "'{\"class_threshold\": 0.4}'")
    if getattr(args, "force", False):
        options["force"] = True
    if getattr(args, "precision", None) is not None:
        options["precision"] = args.precision
    if args.class_threshold is not None:
        if not 0 <= args.class_threshold <= 1:
            raise GalcamCLIError(f"--class-threshold must be in [0, 1], got "
                                 f"{args.class_threshold}")
        options["class_threshold"] = args.class_threshold
    from galcam.inference.segmenter import load_options

    try:  # checked now: a bad option is one line, not a traceback from a worker
        load_options(options)
    except (TypeError, ValueError) as exc:
        raise GalcamCLIError(f"--model-options: {exc}") from exc
    return options


def run(args):
    """Run (or resume) the survey and write its outputs; returns the exit status."""
    for name in ("mosaic", "ir", "seeds"):
        value = getattr(args, name)
        if value is not None and not Path(value).exists():
            flag = "MOSAIC" if name == "mosaic" else f"--{name}"
            raise FileNotFoundError(f"{flag} '{value}' does not exist")
    check_planes(args, "plane")
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    if args.restart and not args.overwrite:
        raise GalcamCLIError("--restart deletes the unit results of OUTDIR: give --overwrite "
                             "too")
    if getattr(args, "verbose", 0) < 2:  # dask's own INFO lines drown galcam's messages
        logging.getLogger("distributed").setLevel(logging.ERROR)
    from galcam.inference import ImageRefusedError
    from galcam.survey import SurveyRunner

    try:
        runner = SurveyRunner(
            args.model, tile_size=args.tile_size, overlap=args.overlap, seeds=args.seeds,
            seed_format=args.seed_format if args.seeds else "auto",
            seed_columns=_seed_columns(args.seed_columns),
            seed_separation=args.seed_separation, n_workers=args.n_workers,
            scheduler=args.scheduler, threads_per_worker=args.threads_per_worker,
            torch_threads=args.torch_threads, device=args.device, batch_size=args.batch_size,
            model_options=_model_options(args), plane=args.plane,
            score_threshold=args.score_threshold, table_formats=formats)
        result = runner.run(args.mosaic, args.ir, output_dir=args.output,
                            resume=not args.restart, overwrite=args.overwrite,
                            progress=not args.no_progress, max_units=args.max_units)
    except ImportError as exc:
        raise GalcamCLIError(str(exc)) from exc
    except ImageRefusedError as exc:  # before any unit runs
        raise GalcamCLIError(f"{exc.reason}; use --force to run it anyway") from None
    except (FileExistsError, ValueError) as exc:  # SurveyMismatchError included
        raise in_cli_words(exc) from exc
    except RuntimeError as exc:  # every unit failed, or a GPU asked for and missing
        raise GalcamCLIError(str(exc).splitlines()[0]) from exc
    manifest = result.manifest
    n_units = len(result.units)
    names = ", ".join(sorted(Path(p).name for p in result.paths.values()))
    print(f"{len(result)} galaxies from {len(result.done)}/{n_units} units -> {args.output} "
          f"({names})", file=sys.stdout)
    link = manifest["history"][-1].get("dashboard") if manifest.get("history") else None
    if link:
        log.info("the run's dask dashboard was %s", link)
    if result.failed:
        print(f"galcam survey: {len(result.failed)} unit(s) failed (see "
              f"{Path(args.output) / 'manifest.json'}); run the same command again to retry "
              "them", file=sys.stderr)
        return 1
    if not result.complete:
        print(f"galcam survey: {n_units - len(result.done)} unit(s) still to do; run the same "
              "command again to go on", file=sys.stderr)
    return 0

"""``galcam predict``: find, segment and classify radio galaxies with a trained model.

One image: ``galcam predict RADIO.fits [--ir IR.fits] [--model NAME|DIR] -o OUTDIR`` writes
``OUTDIR/predictions.json`` (COCO results, image id 1, category ids 1..N in the order of the
model's classes, named in ``OUTDIR/predictions.categories.json``), ``OUTDIR/catalog.ecsv``
(the `~galcam.catalog.GalaxyCatalog`: one row per galaxy with class, score, probabilities,
sky centroid, host, sizes and flux densities),
``OUTDIR/galaxies.reg`` (DS9) and ``OUTDIR/galaxies.crtf`` (CASA/CARTA) region files and
``OUTDIR/overview.png``. A COCO data set:
``galcam predict --coco IMAGES.json [--image-dir DIR] -o OUTDIR`` writes
``OUTDIR/predictions.json`` with the data set's image and category ids (its annotations are
never read; ``predictions.categories.json`` names the ids). ``--example`` runs the bundled
example image pair. ``OUTDIR/galcam-run.json``, written last, records the run and its files
(``galcam.cli._outputs``); with ``--overwrite`` the files of an earlier run that this run does
not write are removed.
"""

import json
import logging
import sys
from pathlib import Path

from ._options import add_hdu_option, add_precision_option, check_planes, hdu_value
from ._outputs import RUN_MANIFEST, OutputFolder, arguments_of
from .main import GalcamCLIError, refuse_constant_image

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.json"
#: Names the category ids of PREDICTIONS (galcam evaluate finds it beside it).
CATEGORIES = "predictions.categories.json"
CATALOG_FILES = ("catalog.ecsv", "galaxies.reg", "galaxies.crtf", "overview.png")


def add_parser(subparsers):
    """Register ``galcam predict``."""
    parser = subparsers.add_parser(
        "predict",
        help="find, segment and classify radio galaxies and their hosts with a trained model",
        description=(
            "Run a trained galcam model (CAM -> IRNet, Gupta et al. 2023) on a radio image "
            "(optionally with an infrared image on any grid) or on every image of a COCO data "
            "set. Images of any size are tiled; images at another pixel scale than the "
            "model's training data are resampled and the results mapped back. Writes "
            f"OUTDIR/{PREDICTIONS} (COCO results: mask, class, score, host keypoint per "
            f"galaxy; OUTDIR/{CATEGORIES} names their category ids) and, for one image, the "
            "catalogue, region files and a figure: "
            + ", ".join(f"OUTDIR/{name}" for name in CATALOG_FILES)
            + f"; OUTDIR/{RUN_MANIFEST} records the run and its files."
        ),
    )
    parser.add_argument("radio", nargs="?", metavar="RADIO.fits",
                        help="radio image (FITS, 2-4 axes)")
    parser.add_argument("--ir", metavar="IR.fits", help="infrared image (any grid)")
    parser.add_argument("--coco", metavar="IMAGES.json",
                        help="predict every image of this COCO JSON instead of one image")
    parser.add_argument("--image-dir", metavar="DIR",
                        help="folder of the --coco images (default: the JSON's folder)")
    parser.add_argument("--example", action="store_true",
                        help="predict the bundled example image pair")
    parser.add_argument("--model", default="default", metavar="NAME|DIR",
                        help="model folder or registered model name (default: 'default', the "
                        "bundled model)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                        help="output folder")
    parser.add_argument("--device", default="auto",
                        help="'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:N'")
    parser.add_argument("--batch-size", type=int, default=4, metavar="N",
                        help="tiles per network pass (default 4)")
    add_precision_option(parser)
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="with --coco: N worker processes read and encode the images and "
                        "find galaxies and hosts while the networks run (the pipelined "
                        "engine; same results). Default 0: one process")
    parser.add_argument("--score-threshold", type=float, default=None, metavar="S",
                        help="drop detections scoring below S (default: for one image the "
                        "model's recommended catalogue threshold, for --coco 0: every "
                        "detection, as COCO evaluation needs)")
    parser.add_argument("--class-threshold", type=float, default=None, metavar="P",
                        help="class probability from which a class is taken as present "
                        "(default: the model's recommended value, 0 for the bundled model)")
    parser.add_argument("--min-classes", type=int, default=0, metavar="K",
                        help="keep the K most probable classes of every tile even below the "
                        "threshold (default 0)")
    parser.add_argument("--instance-step", default=None,
                        choices=["rules", "grouped", "islands", "walk"],
                        help="how islands become galaxies (default 'rules': the classical "
                        "finder's grouping rules; 'grouped': IRNet's displacement votes; "
                        "'islands'/'walk': the paper's random walk)")
    parser.add_argument("--rule-class-weight", default=None, metavar="W|off",
                        help="weight of the a/b rule in each galaxy's class (default 0.5; "
                        "'off': the networks' classes alone)")
    parser.add_argument("--beam-matching", type=float, default=None, metavar="F",
                        help="in [0, 1]: how far an image whose beam is much larger than the "
                        "model's training beam is resampled onto coarser pixels, towards as "
                        "many pixels per beam as in training (1: fully, 0: keep the training "
                        "pixel scale; default 0.5)")
    parser.add_argument("--plane", type=int, default=None, metavar="N",
                        help="0-based plane of radio cubes with a non-degenerate "
                        "spectral/Stokes axis")
    parser.add_argument("--ir-plane", type=int, default=None, metavar="N",
                        help="0-based plane of an infrared cube (default: a 2-D image or a cube "
                        "with degenerate extra axes)")
    add_hdu_option(parser)
    parser.add_argument("--unit", default=None, metavar="UNIT",
                        help="brightness unit of RADIO.fits when its BUNIT is missing or wrong "
                        "(e.g. 'Jy/beam', 'mJy/beam')")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing output files, and remove those of an earlier "
                        f"galcam run in OUTDIR (listed in its {RUN_MANIFEST}) that this run "
                        "does not write")
    parser.add_argument("--force", action="store_true",
                        help="predict an image galcam refuses: undersampled (fewer than 2 "
                        "pixels across the beam), or one whose resampling to the model's "
                        "pixel scale would give more than 16 times its pixels or need more "
                        "than half this machine's memory (galcam says so before any work)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def _check_args(args):
    modes = [m for m, on in (("RADIO", args.radio is not None), ("--coco", args.coco),
                             ("--example", args.example)) if on]
    if len(modes) != 1:
        raise GalcamCLIError("give exactly one of RADIO.fits, --coco IMAGES.json or --example"
                             + (f" (got {' and '.join(modes)})" if modes else ""))
    if args.ir and not (args.radio or args.example):
        raise GalcamCLIError("--ir goes with RADIO.fits (a COCO data set names its IR files)")
    if args.ir_plane is not None and not args.ir:
        raise GalcamCLIError("--ir-plane goes with --ir IR.fits")
    check_planes(args, "plane", "ir_plane")
    if args.hdu is not None and not args.radio:
        raise GalcamCLIError("--hdu goes with RADIO.fits")
    args.hdu = hdu_value(args.hdu)
    if args.unit is not None:
        if args.coco:
            raise GalcamCLIError("--unit goes with RADIO.fits (the images of a COCO data set "
                                 "are read with their own BUNIT)")
        from astropy import units as u

        from galcam.catalog import BRIGHTNESS_UNIT

        try:
            unit = u.Unit(args.unit)
        except ValueError as exc:
            raise GalcamCLIError(f"--unit: {args.unit!r} is not a unit ({exc})") from None
        if not unit.is_equivalent(BRIGHTNESS_UNIT):
            raise GalcamCLIError(f"--unit: expected a brightness per beam such as 'Jy/beam' or "
                                 f"'mJy/beam', got {args.unit!r}")
    if args.image_dir and not args.coco:
        raise GalcamCLIError("--image-dir goes with --coco")
    if args.batch_size < 1:
        raise GalcamCLIError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.workers < 0:
        raise GalcamCLIError(f"--workers must be 0 or a positive integer, got {args.workers}")
    if args.workers and not args.coco:
        raise GalcamCLIError("--workers goes with --coco (a single image is tiled and "
                             "streamed in one process; mosaics: galcam survey --n-workers)")
    if args.class_threshold is not None and not 0 <= args.class_threshold <= 1:
        raise GalcamCLIError(f"--class-threshold must be in [0, 1], got {args.class_threshold}")
    if args.beam_matching is not None and not 0 <= args.beam_matching <= 1:
        raise GalcamCLIError(f"--beam-matching must be in [0, 1], got {args.beam_matching}")
    if args.min_classes < 0:
        raise GalcamCLIError(f"--min-classes must be >= 0, got {args.min_classes}")
    if args.rule_class_weight is not None and args.rule_class_weight != "off":
        try:
            weight = float(args.rule_class_weight)
        except ValueError:
            weight = -1.0
        if not weight >= 0 or weight == float("inf"):
            raise GalcamCLIError(f"--rule-class-weight: expected a number >= 0 or 'off', got "
                                 f"{args.rule_class_weight!r}")
        args.rule_class_weight = weight
    if args.score_threshold is not None and not 0 <= args.score_threshold <= 1:
        raise GalcamCLIError(f"--score-threshold must be in [0, 1], got {args.score_threshold}")
    for name in ("radio", "ir", "coco", "image_dir"):
        value = getattr(args, name)
        if value is not None and not Path(value).exists():
            flag = "RADIO" if name == "radio" else "--" + name.replace("_", "-")
            raise FileNotFoundError(f"{flag} '{value}' does not exist")


def _check_radio(image, radio):
    """Refuse, before the model runs, a constant radio image or one not in Jy/beam."""
    from galcam.catalog import BRIGHTNESS_UNIT

    refuse_constant_image(image, f"RADIO '{radio}'")
    if image.unit is not None and image.unit.is_equivalent(BRIGHTNESS_UNIT):
        return
    bunit = image.meta.get("header", {}).get("BUNIT")
    said = "has no BUNIT" if bunit is None else f"has BUNIT = {bunit!r}"
    raise GalcamCLIError(
        f"RADIO '{radio}' {said}: galcam needs the brightness in Jy/beam (or mJy/beam). If "
        "that is what the image holds, say so with --unit Jy/beam; convert other units "
        "(e.g. brightness temperature in K) to Jy/beam first")


def run(args):
    """Predict and write the outputs; returns the exit status."""
    _check_args(args)
    names = [PREDICTIONS, CATEGORIES] + ([] if args.coco else list(CATALOG_FILES))
    folder = OutputFolder(args.output, "predict", names, args.overwrite,
                          known=[PREDICTIONS, CATEGORIES, *CATALOG_FILES])

    from galcam.inference import GalaxyGrouper, WeakSegmenter

    image = ir_image = None
    radio, ir = args.radio, args.ir
    if not args.coco:  # read the images first: bad input fails before the model loads
        from galcam.io import read_image

        if args.example:
            from galcam.data import example_files

            files = example_files()
            radio, ir = files["radio"], files["ir"]
        image = read_image(radio, plane=args.plane, unit=args.unit, hdu=args.hdu)
        _check_radio(image, radio)
        ir_image = read_image(ir, plane=args.ir_plane) if ir is not None else None
        if ir_image is not None and ir_image.unit is not None:
            from galcam.catalog import BRIGHTNESS_UNIT

            if ir_image.unit.is_equivalent(BRIGHTNESS_UNIT):
                log.warning("--ir '%s' is in %s: is it a radio image? galcam expects an "
                            "infrared (WISE W1-like) image there", ir, ir_image.unit)
    try:
        grouper = GalaxyGrouper(args.instance_step, min_classes=args.min_classes,
                                class_threshold=args.class_threshold,
                                rule_class_weight=args.rule_class_weight)
        options = {} if args.beam_matching is None else {"beam_matching": args.beam_matching}
        segmenter = WeakSegmenter.load(args.model, device=args.device, grouper=grouper,
                                       force=args.force, precision=args.precision, **options)
    except RuntimeError as exc:  # e.g. a GPU requested on a machine without one
        raise GalcamCLIError(str(exc)) from exc
    progress = not args.no_progress
    if args.score_threshold is None:
        args.score_threshold = 0.0 if args.coco else segmenter.recommended_score_threshold
    from galcam.inference import ImageRefusedError

    try:
        results, catalog, summary = _predict(args, segmenter, image, ir_image, radio, ir,
                                             progress)
    except ImageRefusedError as exc:  # before any heavy work: one line naming the flag
        raise GalcamCLIError(f"{exc.reason}; use --force to predict it anyway") from None
    categories = _categories(args, segmenter)
    written = _write(folder.path, results, categories, catalog, summary)
    from galcam.inference import resolve_model
    from galcam.models import config_sha256

    removed = folder.finish(written, arguments=arguments_of(args), model=str(args.model),
                            model_sha256=config_sha256(resolve_model(args.model)))
    if removed:
        summary += f"; removed {', '.join(removed)} of the earlier run"
    print(f"{summary} -> {folder.path} ({', '.join(written)})", file=sys.stdout)
    return 0


def _categories(args, segmenter):
    """``[{"id", "name"}]`` of the category ids in the predictions: the model's classes."""
    from galcam.inference import category_ids

    given = None
    if args.coco:  # the data set's ids, matched by name as predict_dataset matched them
        with open(args.coco, encoding="utf-8") as fh:
            given = json.load(fh).get("categories") or None
    ids = category_ids(segmenter.classes, given)
    return [{"id": ids[c], "name": c} for c in segmenter.classes if c in ids]


def _predict(args, segmenter, image, ir_image, radio, ir, progress):
    """Run the model; returns (COCO results, catalogue or None, summary line)."""
    if args.coco:
        results = segmenter.predict_dataset(args.coco, image_dir=args.image_dir,
                                            progress=progress, batch_size=args.batch_size,
                                            score_threshold=args.score_threshold,
                                            plane=args.plane, workers=args.workers)
        catalog = None
        n_images = len({r["image_id"] for r in results})
        summary = f"{len(results)} detections in {n_images} images with detections"
    else:
        result = segmenter(image, ir_image, batch_size=args.batch_size, progress=progress,
                           score_threshold=args.score_threshold)
        results = result.to_coco(1)
        catalog = result.to_catalog(
            radio=image,
            ir=ir_image,
            meta={
                "radio_file": str(radio),
                "ir_file": None if ir is None else str(ir),
                "category_ids": {c: i + 1 for i, c in enumerate(segmenter.classes)},
            },
        )
        n = len(result)
        if n and catalog.wcs is not None:
            in_plane = int(catalog.to_table(["flag_galactic_plane"])["flag_galactic_plane"].sum())
            if in_plane:
                log.warning("%d of %d galaxies lie within 5 deg of the Galactic plane "
                            "(flag_galactic_plane): HII regions and supernova remnants look "
                            "extended too, and the model was trained on extragalactic "
                            "fields; check them by eye", in_plane, n)
        summary = f"{n} {'galaxy' if n == 1 else 'galaxies'} in {radio}"
        below = result.meta.get("n_below_threshold", 0)
        if below:
            summary += (f" ({below} detection{'' if below == 1 else 's'} below the score "
                        f"threshold {args.score_threshold:.2f}; use --score-threshold 0 to "
                        f"see {'it' if below == 1 else 'them'})")
    return results, catalog, summary


def _write(outdir, results, categories, catalog, summary):
    """Write the outputs of one run into ``outdir``; returns the names written."""
    from galcam.io import write_json

    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    if catalog is not None:
        paths = catalog.write(outdir, overwrite=True)  # existing outputs were refused above
        written.extend(Path(p).name for p in paths.values())

    write_json(outdir / PREDICTIONS, results)
    write_json(outdir / CATEGORIES, {"categories": categories, "predictions": PREDICTIONS})
    written += [PREDICTIONS, CATEGORIES]
    log.info("wrote %s to %s", ", ".join(written), outdir)
    return written

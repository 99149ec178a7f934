"""``galcam islands``: noise, radio islands and a picture of them for one image.

This is the classical first step of every radio source finder, and of galcam's own
preprocessing (Gupta et al. 2023, section 3.1): estimate the noise, keep the connected
islands above ``n_sigma`` times the rms with at least ``n_pixels`` pixels.
"""

import logging
from pathlib import Path

from ._options import add_hdu_option, check_planes, hdu_value
from ._outputs import RUN_MANIFEST, OutputFolder, arguments_of
from .main import GalcamCLIError, refuse_constant_image

log = logging.getLogger(__name__)

OUTPUTS = ("islands.ecsv", "islands.png")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "islands",
        help="estimate the noise and find the radio islands of an image",
        description=(
            "Estimate the rms noise of a radio image, find the islands above N sigma with at "
            "least M pixels, and write a table (ECSV, with sky centroids) and a PNG overlay."
        ),
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("image", nargs="?", help="radio FITS image (2-D, 3-D or 4-D)")
    src.add_argument(
        "--example", action="store_true", help="use the bundled example EMU-like image"
    )
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.add_argument(
        "--plane", type=int, default=None, help="plane index for cubes with several planes"
    )
    add_hdu_option(parser, "the image")
    parser.add_argument("--n-sigma", type=float, default=3.0, help="detection threshold (3)")
    parser.add_argument("--n-pixels", type=int, default=5, help="minimum island size (5)")
    parser.add_argument(
        "--method",
        default="sigma_clip",
        choices=["sigma_clip", "paper", "mad"],
        help="noise estimator: unbiased sigma clipping (default) or the paper's method",
    )
    parser.add_argument(
        "--box-size",
        type=int,
        default=None,
        help="box size in pixels for a 2-D background/rms map (default: one global value)",
    )
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs, and remove those of an earlier galcam "
                        f"run in the folder (listed in its {RUN_MANIFEST}) that this run does "
                        "not write")
    parser.set_defaults(func=run)
    return parser


def run(args):
    from galcam.data import example_files
    from galcam.io import atomic_write, read_image
    from galcam.preprocessing import NoiseEstimator, find_islands
    from galcam.visualization import plot_islands

    if not args.n_sigma > 0:
        raise GalcamCLIError(f"--n-sigma must be a positive number, got {args.n_sigma:g}")
    if args.n_pixels < 1:
        raise GalcamCLIError(f"--n-pixels must be a positive integer, got {args.n_pixels}")
    if args.box_size is not None and args.box_size < 1:
        raise GalcamCLIError(f"--box-size must be a positive number of pixels, got "
                             f"{args.box_size}")
    check_planes(args, "plane")
    hdu = hdu_value(args.hdu)
    folder = OutputFolder(args.output, "islands", OUTPUTS, args.overwrite, known=OUTPUTS)
    outdir = folder.path
    path = example_files()["radio"] if args.example else args.image
    image = read_image(path, plane=args.plane, hdu=hdu)
    refuse_constant_image(image, f"'{path}'")
    try:
        noise = NoiseEstimator(method=args.method, box_size=args.box_size)(image)
    except ValueError as exc:
        raise GalcamCLIError(f"'{path}': {exc}") from None
    outdir.mkdir(parents=True, exist_ok=True)  # only now: a bad input leaves no folder behind
    log.info("%s: rms = %s (%s)", path, noise.rms, args.method)
    islands = find_islands(image, noise, n_sigma=args.n_sigma, n_pixels=args.n_pixels)
    table = islands.to_table()
    table.meta["image"] = str(path)
    table.meta["rms"] = str(noise.rms)
    table.meta["noise_method"] = args.method
    table.meta["n_sigma"] = args.n_sigma
    table.meta["n_pixels"] = args.n_pixels
    atomic_write(outdir / "islands.ecsv", lambda tmp: table.write(tmp, format="ascii.ecsv"))
    fig = plot_islands(image, islands, title=Path(path).name)
    atomic_write(outdir / "islands.png", lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    folder.finish(OUTPUTS, arguments=arguments_of(args))
    log.info("%d islands -> %s", len(table), outdir)
    print(f"{len(table)} islands above {args.n_sigma:g} sigma (rms {noise.rms:.3g}) -> {outdir}")
    return 0

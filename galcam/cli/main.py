"""Entry point of the ``galcam`` command.

Each subcommand lives in its own module ``galcam.cli.<name>`` that defines

* ``add_parser(subparsers)``: registers the subcommand and its options, and
* ``run(args)``: does the work and returns an exit status.

Subcommand modules are imported only when the parser is built; heavy
libraries (torch in particular) are imported inside ``run`` so that
``galcam --help`` stays fast.
"""

import argparse
import importlib
import logging
import sys

from astropy.units import UnitsError

from galcam import __version__

# Subcommands in the order ``galcam --help`` lists them.
SUBCOMMANDS = [
    "islands",
    "evaluate",
    "baseline",
    "simulate",
    "data",
    "predict",
    "train",
    "survey",
]

log = logging.getLogger("galcam")


class GalcamCLIError(Exception):
    """A bad-input error that the CLI reports as one line and exit status 2."""


def refuse_constant_image(image, label):
    """Raise `GalcamCLIError` for an image whose finite pixels all have one value.

    ``label`` names the input in the message (e.g. ``"RADIO 'x.fits'"``). `read_image`
    already refuses images without a finite pixel.
    """
    import numpy as np

    low = np.nanmin(image.data)
    if low == np.nanmax(image.data):
        raise GalcamCLIError(f"{label}: the image is constant (every pixel is "
                             f"{float(low) + 0.0:g}): there is no noise to measure and no "
                             "source to find")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="galcam",
        description=(
            "Find, segment and classify extended radio galaxies and their infrared hosts "
            "(weakly-supervised CAM -> ReCAM -> IRNet, Gupta et al. 2023)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"galcam {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"galcam.cli.{name}").add_parser(sub)
    # -v/-q are accepted after the subcommand too (``galcam predict ... --quiet``)
    for subparser in sub.choices.values():
        options = subparser._option_string_actions
        if "-v" not in options and "--verbose" not in options:
            subparser.add_argument(
                "-v", "--verbose", action="count", default=argparse.SUPPRESS,
                help="more log output (-vv for debug)",
            )
        if "-q" not in options and "--quiet" not in options:
            subparser.add_argument(
                "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                help="only warnings and errors",
            )
    return parser


def setup_logging(verbose=0, quiet=False):
    level = logging.WARNING if quiet else (logging.INFO if verbose < 2 else logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("galcam")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except (GalcamCLIError, FileNotFoundError, FileExistsError, ValueError, OSError,
            UnitsError, MemoryError) as exc:
        # one line, no traceback: the message names the file/parameter and what was expected
        print(f"galcam {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print(f"galcam {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

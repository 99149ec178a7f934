"""Options several ``galcam`` subcommands share: parsing and checking them in one place."""

import re

from galcam._validation import check_positive_int

__all__ = ["add_hdu_option", "add_precision_option", "check_planes", "hdu_value",
           "in_cli_words"]

#: What a plane option expects, in the words of the message that refuses another value.
PLANE_EXPECTED = ("a 0-based plane index (0 is the first plane; galcam does not count planes "
                  "from the end)")


def check_planes(args, *names):
    """Refuse a negative (or otherwise invalid) plane index given on the command line.

    Python would take ``--plane -1`` as the last plane; on the command line a negative index
    is almost always a mistake, so it is refused with a one-line message naming the flag.

    Parameters
    ----------
    args : `argparse.Namespace`
        The parsed arguments.
    *names : str
        Attribute names of the plane options (``"plane"``, ``"ir_plane"``).

    Raises
    ------
    ValueError
        ``--plane: expected a 0-based plane index (...), got -1``.
    """
    for name in names:
        check_positive_int(getattr(args, name, None), "--" + name.replace("_", "-"),
                           allow_zero=True, allow_none=True, expected=PLANE_EXPECTED)


def hdu_value(text):
    """The ``--hdu`` value as `~galcam.io.read_image` takes it: an index or an EXTNAME."""
    if text is None:
        return None
    text = text.strip()
    if text.lstrip("-").isdigit():
        return check_positive_int(int(text), "--hdu", allow_zero=True,
                                  expected="a 0-based HDU index (0 is the primary HDU) or an "
                                  "EXTNAME")
    return text


def add_hdu_option(parser, what="RADIO.fits"):
    """Add ``--hdu N|EXTNAME``: which HDU of a FITS file with several images to read."""
    parser.add_argument("--hdu", default=None, metavar="N|EXTNAME",
                        help=f"HDU of {what} that holds the image, as a 0-based index or an "
                        "EXTNAME (default: the first HDU with an image; galcam warns when a "
                        "file holds several)")


def add_precision_option(parser, default="float32"):
    """Add ``--precision``: the arithmetic of the network passes (``WeakSegmenter.load``)."""
    from galcam.models.spec import PRECISION_NAMES

    parser.add_argument("--precision", default=default, choices=PRECISION_NAMES,
                        help="arithmetic of the network passes (default float32, as "
                        "trained; bfloat16 is several times faster on CPUs with bfloat16 "
                        "units and on GPUs; float16 on CUDA only)")


#: Library keywords in messages and the command-line flags that say the same.
_KEYWORD_FLAGS = (
    (r"overwrite=True(?: \(--overwrite\))?", "--overwrite"),
    (r"resume=True \(the default\) goes on with it", "running the same command again goes on "
     "with it"),
    (r"force=True(?: \(--force\))?", "--force"),
    (r"class_map=\{'PRED': 'TRUTH'\} \(a prediction class mapped to None is left out\)",
     "--class-map PRED=TRUTH (repeatable; PRED= leaves a class's predictions out)"),
    (r"\bclass_map\b", "--class-map"),
)


def in_cli_words(exc):
    """The same exception with library keywords in its message replaced by CLI flags.

    Library messages name keywords (``overwrite=True``); a command's one-line error should
    name its flags (``--overwrite``). Only the keywords of `_KEYWORD_FLAGS` are replaced.

    Parameters
    ----------
    exc : Exception
        Raised by library code a subcommand called.

    Returns
    -------
    Exception
        ``exc`` itself when its message names no keyword, else a new exception of the same
        type (or a `ValueError` when that type cannot be built from a message) whose
        ``__cause__`` is ``exc``.
    """
    text = str(exc)
    new = text
    for pattern, flag in _KEYWORD_FLAGS:
        new = re.sub(pattern, flag, new)
    if new == text:
        return exc
    try:
        out = type(exc)(new)
    except Exception:  # noqa: BLE001 - an exception type with another signature
        out = ValueError(new)
    out.__cause__ = exc
    return out

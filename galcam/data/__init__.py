"""Small data files bundled with galcam: an example radio/infrared image pair.

The example is an EMU-like 2"/px radio image (4-D, like ASKAP products, with a
13" x 11" beam) and a WISE-W1-like infrared image on its own 1.375"/px grid, made with
galcam's simulator (see ``galcam/data/README.md`` for the exact command), so that the
quick start runs offline.
"""

from importlib import resources
from pathlib import Path

__all__ = ["example_files"]


def example_files():
    """Paths of the bundled example images.

    Returns
    -------
    files : dict
        ``{"radio": Path, "ir": Path}``.
    """
    root = Path(resources.files(__name__))
    files = {"radio": root / "example_radio.fits", "ir": root / "example_ir_w1.fits"}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(
            "the bundled example files are missing from this galcam installation: "
            + ", ".join(missing)
        )
    return files

"""Input and output: FITS images with WCS and beam, atomic writes."""

from .fits import (
    Beam,
    ImageReadError,
    atomic_write,
    image_beam,
    pixel_scale,
    read_image,
    write_image,
)

__all__ = [
    "Beam",
    "ImageReadError",
    "atomic_write",
    "image_beam",
    "pixel_scale",
    "read_image",
    "write_image",
]

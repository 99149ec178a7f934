"""Input and output: FITS images with WCS and beam, atomic writes."""

from .fits import (
    GAUSS_AREA,
    Beam,
    ImageReadError,
    atomic_write,
    beam_pixels,
    image_beam,
    pixel_scale,
    pixel_solid_angle,
    read_image,
    write_image,
)

__all__ = [
    "Beam",
    "GAUSS_AREA",
    "ImageReadError",
    "atomic_write",
    "beam_pixels",
    "image_beam",
    "pixel_scale",
    "pixel_solid_angle",
    "read_image",
    "write_image",
]

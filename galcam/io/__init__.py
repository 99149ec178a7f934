"""Input and output: FITS images with WCS and beam, atomic writes."""

from .fits import (
    GAUSS_AREA,
    NO_FINITE_PIXEL,
    Beam,
    ImageReadError,
    atomic_write,
    beam_pixels,
    blank_reason,
    file_sha256,
    image_beam,
    pixel_scale,
    pixel_solid_angle,
    read_image,
    write_image,
    write_json,
)
from .resources import physical_memory

__all__ = [
    "Beam",
    "GAUSS_AREA",
    "NO_FINITE_PIXEL",
    "ImageReadError",
    "atomic_write",
    "beam_pixels",
    "blank_reason",
    "file_sha256",
    "image_beam",
    "pixel_scale",
    "physical_memory",
    "pixel_solid_angle",
    "read_image",
    "write_image",
    "write_json",
]

"""The 3-channel 8-bit PNG encoding of Gupta et al. (2023, PASA), section 3.1.

The paper compresses the preprocessed radio channel to 16 bits and the infrared
channel to 8 bits, and packs them into one RGB image:

- R = infrared, quantised to 8 bits: ``round(ir * 255)``;
- G = low byte (bits 0-7) of the radio quantised to 16 bits;
- B = high byte (bits 8-15) of the radio quantised to 16 bits:
  ``q = round(radio * 65535)``, ``B = q // 256``, ``G = q % 256``.

Decoding inverts this exactly: ``radio = (256 B + G) / 65535`` (within
0.5 / 65535 of the input) and ``ir = R / 255`` (within 0.5 / 255).

Note that the authors' code reads these PNGs as plain 8-bit RGB images and feeds
the three bytes to the network as three channels, so G there is a low byte and
not a second radio image (the specification of that code notes that G and B have
similar statistics, which suggests that some distributed PNGs may hold an 8-bit
radio image in both). ``radio_channels="B"`` in the readers takes the radio from
B alone (8 bits) for such data sets.
"""

import os
from pathlib import Path

import numpy as np

from galcam.io import atomic_write

__all__ = ["encode_paper_png", "decode_paper_png", "write_paper_png", "read_paper_png"]

_RADIO_CHANNELS = ("BG", "B")


def _check_unit_image(array, name):
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D image, got shape {array.shape}")
    if array.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array with values in [0, 1], got dtype "
                        f"{array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values; preprocess it first "
                         "(preprocess_channel sets blank pixels to 0)")
    lo, hi = float(array.min()), float(array.max())
    tol = 1e-6
    if lo < -tol or hi > 1 + tol:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{lo:.6g}, {hi:.6g}]")
    return np.clip(array.astype(np.float64), 0.0, 1.0)


def encode_paper_png(radio01, ir01):
    """Pack a radio and an infrared [0, 1] channel into the paper's RGB encoding.

    Parameters
    ----------
    radio01, ir01 : 2-D float arrays of the same shape, values in [0, 1]
        Preprocessed channels (e.g. from `preprocess_channel`).

    Returns
    -------
    rgb : uint8 array of shape (H, W, 3)
        R = IR (8 bits), G = low byte and B = high byte of the radio (16 bits).
    """
    radio = _check_unit_image(radio01, "radio01")
    ir = _check_unit_image(ir01, "ir01")
    if radio.shape != ir.shape:
        raise ValueError(f"radio01 {radio.shape} and ir01 {ir.shape} must have the same shape")
    q16 = np.rint(radio * 65535.0).astype(np.uint16)
    rgb = np.empty((*radio.shape, 3), dtype=np.uint8)
    rgb[..., 0] = np.rint(ir * 255.0).astype(np.uint8)
    rgb[..., 1] = (q16 & 0xFF).astype(np.uint8)
    rgb[..., 2] = (q16 >> 8).astype(np.uint8)
    return rgb


def decode_paper_png(rgb, *, radio_channels="BG"):
    """Unpack an RGB image in the paper's encoding.

    Parameters
    ----------
    rgb : uint8 array of shape (H, W, 3)
        As returned by `encode_paper_png` or read from a PNG.
    radio_channels : {"BG", "B"}, optional
        ``"BG"`` (default): radio = 16 bits, B high byte and G low byte, as in
        the paper. ``"B"``: radio = B / 255 (8 bits), for data sets that store an
        8-bit radio image in B.

    Returns
    -------
    radio01, ir01 : 2-D float32 arrays in [0, 1]
    """
    if radio_channels not in _RADIO_CHANNELS:
        raise ValueError(f"radio_channels must be 'BG' or 'B', got {radio_channels!r}")
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise TypeError(f"expected an 8-bit (uint8) RGB image, got dtype {rgb.dtype}")
    ir = rgb[..., 0].astype(np.float32) / np.float32(255.0)
    if radio_channels == "BG":
        q16 = rgb[..., 2].astype(np.uint32) * 256 + rgb[..., 1]
        radio = (q16 / 65535.0).astype(np.float32)
    else:
        radio = rgb[..., 2].astype(np.float32) / np.float32(255.0)
    return radio, ir


def write_paper_png(path, radio01, ir01, *, overwrite=False):
    """Write a radio and an infrared channel as an RGB PNG in the paper's encoding.

    The file is written atomically (`galcam.io.atomic_write`).

    Parameters
    ----------
    path : str or path-like
        Output PNG file.
    radio01, ir01 : 2-D float arrays in [0, 1]
        See `encode_paper_png`.
    overwrite : bool, optional
        Replace an existing file; otherwise an existing file raises
        `FileExistsError`.

    Returns
    -------
    path : `pathlib.Path`
    """
    from PIL import Image

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"'{path}': exists already (pass overwrite=True to replace it)")
    rgb = encode_paper_png(radio01, ir01)
    image = Image.fromarray(rgb)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def read_paper_png(path, *, radio_channels="BG"):
    """Read an RGB PNG in the paper's encoding.

    Parameters
    ----------
    path : str or path-like
        An 8-bit RGB PNG (as written by `write_paper_png` or distributed with
        the paper's data sets).
    radio_channels : {"BG", "B"}, optional
        See `decode_paper_png`.

    Returns
    -------
    radio01, ir01 : 2-D float32 arrays in [0, 1]

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Not an image PIL can read, or not an 8-bit RGB image (e.g. greyscale,
        RGBA, 16-bit); the message names the file and its mode.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"'{path}': no such file")
    if path.is_dir():
        raise ValueError(f"'{path}': is a directory, not a PNG file")
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode != "RGB":
                raise ValueError(
                    f"'{path}': expected an 8-bit RGB image in the paper's encoding, got PIL "
                    f"mode {mode!r} (size {image.size[0]}x{image.size[1]})"
                )
            rgb = np.asarray(image, dtype=np.uint8).copy()
    except UnidentifiedImageError as exc:
        raise ValueError(f"'{os.fspath(path)}': not an image file PIL can read") from exc
    return decode_paper_png(rgb, radio_channels=radio_channels)

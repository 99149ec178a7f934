"""Tests of the paper's 3-channel PNG encoding."""

import os

import numpy as np
import pytest
from PIL import Image

from galcam.preprocessing import (
    decode_paper_png,
    encode_paper_png,
    read_paper_png,
    write_paper_png,
)


@pytest.fixture
def channels(rng):
    radio = rng.uniform(0, 1, size=(45, 60)).astype(np.float32)
    radio[0, :3] = [0.0, 1.0, 256 / 65535]
    ir = rng.uniform(0, 1, size=(45, 60)).astype(np.float32)
    return radio, ir


def test_round_trip_in_memory(channels):
    radio, ir = channels
    rgb = encode_paper_png(radio, ir)
    assert rgb.dtype == np.uint8 and rgb.shape == (45, 60, 3)
    radio2, ir2 = decode_paper_png(rgb)
    assert radio2.dtype == np.float32 and ir2.dtype == np.float32
    assert np.max(np.abs(radio2 - radio)) <= 0.5 / 65535 + 1e-7
    assert np.max(np.abs(ir2 - ir)) <= 0.5 / 255 + 1e-7


def test_byte_layout(channels):
    radio, ir = channels
    rgb = encode_paper_png(radio, ir)
    # R = IR, B = high byte, G = low byte
    np.testing.assert_array_equal(rgb[0, 0, 1:], [0, 0])
    np.testing.assert_array_equal(rgb[0, 1, 1:], [255, 255])
    np.testing.assert_array_equal(rgb[0, 2, 1:], [0, 1])
    q = rgb[..., 2].astype(int) * 256 + rgb[..., 1]
    np.testing.assert_array_equal(q, np.rint(radio.astype(np.float64) * 65535))
    np.testing.assert_array_equal(rgb[..., 0], np.rint(ir.astype(np.float64) * 255))
    radio_b, _ = decode_paper_png(rgb, radio_channels="B")
    np.testing.assert_array_equal(radio_b, rgb[..., 2] / np.float32(255))


def test_file_round_trip_overwrite_and_atomicity(tmp_path, channels):
    radio, ir = channels
    path = tmp_path / "sub" / "cutout.png"
    write_paper_png(path, radio, ir)
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.format == "PNG"
    radio2, ir2 = read_paper_png(path)
    assert np.max(np.abs(radio2 - radio)) <= 1 / 65535
    assert np.max(np.abs(ir2 - ir)) <= 1 / 255
    with pytest.raises(FileExistsError, match="overwrite"):
        write_paper_png(path, radio, ir)
    write_paper_png(path, np.zeros_like(radio), ir, overwrite=True)
    assert not read_paper_png(path)[0].any()
    assert os.listdir(path.parent) == ["cutout.png"]  # no temporary file left behind


def test_reading_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_paper_png(tmp_path / "missing.png")
    grey = tmp_path / "grey.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(grey)
    with pytest.raises(ValueError, match="'L'"):
        read_paper_png(grey)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(rgba)
    with pytest.raises(ValueError, match="RGBA"):
        read_paper_png(rgba)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="notes.png"):
        read_paper_png(text)
    with pytest.raises(ValueError, match="directory"):
        read_paper_png(tmp_path)


def test_bad_arrays():
    good = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="same shape"):
        encode_paper_png(good, np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        encode_paper_png(good + 1.5, good)
    with pytest.raises(ValueError, match="NaN"):
        encode_paper_png(np.full((4, 4), np.nan, np.float32), good)
    with pytest.raises(TypeError, match="float"):
        encode_paper_png(np.zeros((4, 4), np.uint8), good)
    with pytest.raises(ValueError, match="2-D"):
        encode_paper_png(good[None], good[None])
    with pytest.raises(TypeError, match="uint8"):
        decode_paper_png(np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        decode_paper_png(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="radio_channels"):
        decode_paper_png(np.zeros((4, 4, 3), np.uint8), radio_channels="G")

"""The bundled FIRST model (``--model first``): its folder, and known answers on images
the test makes in the FIRST data set's format (8-bit, clipped, 1.8" pixels, 5.4" beam)."""

import numpy as np
import pytest

from galcam.datasets.first import FirstImage
from galcam.inference import WeakSegmenter
from galcam.inference.registry import resolve_model
from galcam.models import load_model_folder


@pytest.fixture(scope="module")
def segmenter():
    return WeakSegmenter.load("first", device="cpu")


def _first_image(img):
    """A FIRST-format image (as ``galcam data first`` writes it) of the model ``img``."""
    pixels = np.clip(np.round(img / img.max() * 255), 0, 255).astype(np.uint8)
    image = FirstImage("150.000_30.000_1_Test", "FRII", 150.0, 30.0, "Test", "test", None,
                       pixels)
    return image.to_hdu(noise=1 / 3)


def _gauss(x, y, sx, sy):
    yy, xx = np.mgrid[:300, :300]
    return np.exp(-0.5 * (((xx - x) / sx) ** 2 + ((yy - y) / sy) ** 2))


def test_first_model_folder():
    folder = resolve_model("first")
    config, _, metrics = load_model_folder(folder)
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size <= 30 * 2**20  # the package ships at most 30 MB per model
    assert config["weights_dtype"] == "float16"
    assert config["classes"] == ["FRI", "FRII", "Compact", "Bent"]
    assert config["radio"]["pixel_scale_arcsec"] == 1.8
    assert config["training"]["image_level_labels_only"] is True
    # the test-split numbers ship with the model, with their definition
    assert metrics["test"]["n_images"] == 200 and metrics["test"]["definition"]
    assert 0.6 < metrics["test"]["accuracy"] < 1


@pytest.mark.parametrize("name, img, expected", [
    # an unresolved source: the 5.4" beam (sigma 1.3 px)
    ("point", _gauss(150, 150, 1.4, 1.4), "Compact"),
    # two edge-brightened lobes 72" apart, a faint core between them
    ("double", _gauss(130, 150, 2.5, 1.8) + _gauss(170, 152, 2.5, 1.8)
     + 0.1 * _gauss(150, 151, 1.3, 1.3), "FRII"),
])
def test_first_model_known_answers(segmenter, name, img, expected):
    result = segmenter(_first_image(img), score_threshold=0, progress=False)
    top = max(result, key=lambda g: g.score)
    assert top.class_name == expected, name
    assert max(top.class_probabilities) == top.class_probabilities[
        segmenter.classes.index(expected)] > 0.9
    # a source component is inside the galaxy's mask (mask[y, x], 0-based pixels); the two
    # lobes of the double, 55" apart edge to edge, are not grouped into one galaxy (the
    # grouper's link radius is 20"): a known limit at FIRST's scale, see docs/training.rst
    mask = top.mask((300, 300))
    assert mask[150, 150] if name == "point" else (mask[150, 130] or mask[152, 170])


def test_bfloat16_is_refused_for_the_first_model_and_allowed_for_the_emu_model():
    """Measured: the FIRST model's valid accuracy falls from 0.72 to 0.30 in bfloat16,
    while the EMU model's validation metrics move by less than 0.01 (docs, Inference)."""
    with pytest.raises(ValueError, match="change too much in bfloat16"):
        WeakSegmenter.load("first", device="cpu", precision="bfloat16")
    emu = WeakSegmenter.load("default", device="cpu", precision="bfloat16")
    assert emu.networks.precision == "bfloat16"
    assert emu.networks.precision_check["probabilities"] < 0.05

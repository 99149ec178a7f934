"""Tests of the paper's channel preprocessing (Gupta et al. 2023, section 3.1)."""

import numpy as np
import pytest
from astropy.stats import median_absolute_deviation

from galcam.preprocessing import NoiseEstimator, find_islands, log_minmax, preprocess_channel

from ._synth import correlated_noise, gaussian_source

SHAPE = (128, 128)


def _radio(seed=0):
    image = correlated_noise(SHAPE, 1e-4, np.random.default_rng(seed))
    image = image + gaussian_source(SHAPE, 40.2, 60.7, 5e-3) + gaussian_source(SHAPE, 90, 30, 1e-3)
    return image.astype(np.float32)


def test_known_answer_log_minmax_inside_islands():
    image = np.zeros((20, 20), dtype=np.float32)
    values = np.array([4.0, 10.0, 40.0, 100.0, 8.0, 5.0], dtype=np.float32)
    image[5, 5:11] = values
    out = preprocess_channel(image, 1.0, n_sigma=3, n_pixels=5)
    logv = np.log10(values)
    expected = (logv - logv.min()) / (logv.max() - logv.min())
    np.testing.assert_allclose(out[5, 5:11], expected, rtol=1e-6, atol=1e-7)
    out[5, 5:11] = 0
    assert not out.any()


def test_radio_output_range_zeros_outside_and_monotonic():
    image = _radio()
    image[:4] = np.nan
    before = image.copy()
    out = preprocess_channel(image, kind="radio")
    np.testing.assert_array_equal(image, before)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert out.min() == 0.0 and out.max() == 1.0
    assert np.all(out[:4] == 0)
    noise = NoiseEstimator(method="paper")(image)
    inside = find_islands(image, noise, n_sigma=3, n_pixels=5).mask
    assert np.all(out[~inside] == 0)
    assert np.all(image[inside] > 3 * noise.rms.value)
    order = np.argsort(image[inside], kind="stable")
    assert np.all(np.diff(out[inside][order]) >= 0)


def test_islands_smaller_than_n_pixels_are_removed():
    image = np.zeros((32, 32), dtype=np.float32)
    image[3:5, 3:5] = 50.0  # 4 pixels
    image[20:23, 20:23] = np.arange(9, dtype=np.float32).reshape(3, 3) + 10  # 9 pixels
    out = preprocess_channel(image, 1.0, n_pixels=5)
    assert not out[3:5, 3:5].any()
    assert out[20:23, 20:23].max() == 1.0
    assert np.count_nonzero(out) == 8  # the faintest island pixel is the minimum -> 0


def test_ir_uses_median_plus_3_mad():
    rng = np.random.default_rng(4)
    image = (200 + rng.normal(0, 4, size=SHAPE)).astype(np.float32)
    image += gaussian_source(SHAPE, 64, 64, 100, fwhm=5).astype(np.float32)
    out = preprocess_channel(image, kind="ir")
    threshold = np.median(image) + 3 * median_absolute_deviation(image)
    mask = find_islands(image, NoiseEstimator(method="paper-ir")(image)).mask
    assert np.all(image[mask] > threshold)
    assert np.all(out[~mask] == 0) and out.max() == 1.0
    y, x = np.unravel_index(np.argmax(out), out.shape)
    assert abs(x - 64) <= 1 and abs(y - 64) <= 1
    np.testing.assert_array_equal(out > 0, mask & (image > image[mask].min()))


def test_non_positive_threshold_is_shifted_not_nan():
    rng = np.random.default_rng(5)
    image = (rng.normal(0, 1, size=SHAPE) - 20).astype(np.float32)
    image[50:60, 50:60] = np.linspace(-15, 30, 100, dtype=np.float32).reshape(10, 10)
    noise = NoiseEstimator(method="paper-ir")(image)
    assert noise.threshold(3).value < 0
    out = preprocess_channel(image, noise, kind="ir")
    assert np.all(np.isfinite(out)) and out.min() == 0 and out.max() == 1
    block = out[50:60, 50:60].ravel()
    assert np.all(np.diff(block) > 0)


def test_no_islands_and_bad_kind():
    image = correlated_noise(SHAPE, 1.0, np.random.default_rng(0)).astype(np.float32)
    out = preprocess_channel(image, 1.0, n_sigma=50)
    assert out.dtype == np.float32 and not out.any()
    with pytest.raises(ValueError, match="kind"):
        preprocess_channel(image, kind="optical")
    with pytest.raises(ValueError, match="non-finite"):
        log_minmax(np.full((3, 3), np.nan), np.ones((3, 3), bool))
    constant = np.zeros((8, 8), np.float32)
    constant[2:5, 2:5] = 7.0
    assert preprocess_channel(constant, 1.0).max() == 1.0

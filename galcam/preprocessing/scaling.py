"""The channel preprocessing of Gupta et al. (2023, PASA), section 3.1.

Each channel (radio, or infrared) of a cutout is turned into a [0, 1] image:

1. estimate the noise (radio: the paper's clipped standard deviation sigma;
   infrared: median and MAD);
2. keep the islands above the threshold (radio: 3 sigma; infrared:
   median + 3 x MAD) with at least 5 pixels;
3. take the logarithm of the pixel values in the islands and min-max normalise
   them over all island pixels of the cutout; every other pixel is 0.
"""

import logging

import numpy as np

from .islands import find_islands
from .noise import NoiseEstimator, NoiseResult, image_arrays

__all__ = ["preprocess_channel", "log_minmax", "KINDS"]

log = logging.getLogger(__name__)

#: Channel kinds and the noise method used for them when no noise is given.
KINDS = {"radio": "paper", "ir": "paper-ir"}


def log_minmax(data, mask, *, rms=None):
    """Log-scale the pixels of ``data`` inside ``mask`` and min-max normalise them.

    Parameters
    ----------
    data : 2-D array
        Pixel values.
    mask : 2-D bool array
        Pixels to scale (the islands); all others are 0 in the output.
    rms : float, optional
        Noise of the image (same unit as ``data``), used only when some masked
        pixel is not positive: the values are then shifted by ``rms - min`` so
        that the faintest masked pixel becomes ``rms`` and the logarithm is
        defined. Defaults to the standard deviation of the masked pixels.

    Returns
    -------
    scaled : 2-D float32 array
        ``(log10(v) - min) / (max - min)`` over the masked pixels, in [0, 1]:
        the faintest island pixel is 0 and the brightest 1 (the paper's min-max
        normalisation). If all masked values are equal they are set to 1.
    """
    data = np.asarray(data)
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros(data.shape, dtype=np.float32)
    if not mask.any():
        return out
    values = data[mask].astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("log_minmax: the mask covers non-finite pixels")
    low = values.min()
    if low <= 0:
        if rms is None or not np.isfinite(rms) or rms <= 0:
            rms = values.std() or 1.0
        log.debug("island pixels down to %.4g: shifting by %.4g before the log", low, rms - low)
        values = values - low + rms
    logv = np.log10(values)
    lo, hi = logv.min(), logv.max()
    out[mask] = 1.0 if hi == lo else (logv - lo) / (hi - lo)
    return out


def preprocess_channel(image, noise=None, *, kind="radio", n_sigma=3.0, n_pixels=5,
                       connectivity=8):
    """One channel of a cutout preprocessed as in Gupta et al. (2023), section 3.1.

    Parameters
    ----------
    image : `~astropy.nddata.NDData`, `~astropy.units.Quantity` or 2-D array
        The radio or infrared cutout; not modified.
    noise : `NoiseResult`, `~astropy.units.Quantity`, float or None
        Its noise. `None` measures it the paper's way for ``kind``:
        ``NoiseEstimator(method="paper")`` for radio (threshold
        ``n_sigma`` sigma above zero) and ``NoiseEstimator(method="paper-ir")``
        for infrared (threshold median + ``n_sigma`` x MAD). Give a
        `NoiseResult` from another method (e.g. the unbiased default) to
        threshold differently.
    kind : {"radio", "ir"}, optional
        Which channel this is; only selects the noise method when ``noise`` is
        `None`.
    n_sigma : float, optional
        Island threshold in rms (radio) or MAD (IR); 3 in the paper.
    n_pixels : int, optional
        Minimum island size in pixels; 5 in the paper.
    connectivity : {4, 8}, optional
        Pixel connectivity of islands.

    Returns
    -------
    channel : 2-D float32 array in [0, 1]
        ``log10`` of the pixel values in the islands, min-max normalised over
        all island pixels; 0 outside islands and at non-finite pixels. The log is
        taken of the pixel values themselves, as in the paper (they are positive
        inside islands whenever the threshold is positive); see `log_minmax` for
        the shift applied otherwise.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be 'radio' or 'ir', got {kind!r}")
    if noise is None:
        noise = NoiseEstimator(method=KINDS[kind])(image)
    islands = find_islands(image, noise, n_sigma=n_sigma, n_pixels=n_pixels,
                           connectivity=connectivity)
    data = image_arrays(image)[0]
    if isinstance(noise, NoiseResult):
        rms = noise.rms.value
    else:
        rms = float(getattr(noise, "value", noise))
    return log_minmax(data, islands.mask, rms=rms)

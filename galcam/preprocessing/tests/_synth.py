"""Synthetic images with known noise and sources for the preprocessing tests."""

import numpy as np
from astropy import units as u
from astropy.convolution import Gaussian2DKernel, convolve_fft
from astropy.nddata import NDData
from astropy.stats import gaussian_fwhm_to_sigma
from astropy.wcs import WCS

BEAM_FWHM_PIX = 6.0


def correlated_noise(shape, rms, rng, fwhm=BEAM_FWHM_PIX):
    """White noise convolved with a Gaussian beam, rescaled to sample std ``rms``.

    The realisation is rescaled so that its own standard deviation is exactly
    ``rms``: that is the true rms the estimators must recover.
    """
    pad = int(4 * fwhm)
    white = rng.normal(size=(shape[0] + 2 * pad, shape[1] + 2 * pad))
    kernel = Gaussian2DKernel(fwhm * gaussian_fwhm_to_sigma)
    smooth = convolve_fft(white, kernel, boundary="wrap")[pad:-pad, pad:-pad]
    smooth -= smooth.mean()
    return smooth * (rms / smooth.std())


def gaussian_source(shape, x, y, peak, fwhm=BEAM_FWHM_PIX):
    """A circular Gaussian of the given peak and FWHM (pixels) centred on (x, y)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    s = fwhm * gaussian_fwhm_to_sigma
    return peak * np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / s**2)


def noise_with_sources(shape, rms, rng, n_sources=6, peak_snr=(20, 200)):
    """Beam-correlated noise of known rms plus a few bright unresolved sources."""
    image = correlated_noise(shape, rms, rng)
    xs = rng.uniform(20, shape[1] - 20, n_sources)
    ys = rng.uniform(20, shape[0] - 20, n_sources)
    peaks = rng.uniform(*peak_snr, n_sources) * rms
    for x, y, p in zip(xs, ys, peaks):
        image = image + gaussian_source(shape, x, y, p)
    return image.astype(np.float32)


def tan_wcs(shape, ra=150.0, dec=-30.0, pix_arcsec=2.0):
    """A TAN WCS centred on (ra, dec) degrees with square pixels."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    w.wcs.cdelt = [-pix_arcsec / 3600.0, pix_arcsec / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    return w


def as_nddata(data, wcs, unit=u.Jy / u.beam, beam=None):
    return NDData(data, wcs=wcs, unit=unit, meta={"beam": beam})

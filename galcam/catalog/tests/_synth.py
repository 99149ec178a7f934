"""Synthetic radio images and prediction results with known truth for the catalogue tests."""

import numpy as np
from astropy import units as u
from astropy.nddata import NDData
from astropy.wcs import WCS
from radio_beam import Beam

from galcam.inference.result import Detection, SegmentationResult

CLASSES = ("FR-I", "FR-II", "FR-X", "R")
SHAPE = (160, 160)
PIXEL = 2.0  # arcsec
BEAM_FWHM = 8.0  # arcsec, circular
RMS = 0.1e-3  # Jy/beam


def make_wcs(shape=SHAPE, pixel=PIXEL, center=(150.0, 2.0)):
    """TAN WCS, north up, east left, ``pixel`` arcsec pixels, centred on the image."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(center)
    wcs.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    wcs.wcs.cdelt = [-pixel / 3600.0, pixel / 3600.0]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    return wcs


def gaussian(shape, x0, y0, fwhm_x, fwhm_y, peak):
    """Elliptical Gaussian with axes along x and y (FWHM in pixels)."""
    y, x = np.mgrid[:shape[0], :shape[1]]
    sx, sy = fwhm_x / 2.3548200450309493, fwhm_y / 2.3548200450309493
    return peak * np.exp(-0.5 * (((x - x0) / sx) ** 2 + ((y - y0) / sy) ** 2))


def beam_pixels():
    sigma = BEAM_FWHM / PIXEL / 2.3548200450309493
    return 2 * np.pi * sigma**2


def disk(shape, x0, y0, r):
    y, x = np.mgrid[:shape[0], :shape[1]]
    return (x - x0) ** 2 + (y - y0) ** 2 <= r * r


def ellipse(shape, x0, y0, ax, ay):
    y, x = np.mgrid[:shape[0], :shape[1]]
    return ((x - x0) / ax) ** 2 + ((y - y0) / ay) ** 2 <= 1


def detection(ident, class_name, mask, *, score=0.9, host=None, wcs=None):
    """A `Detection` whose crop is the bounding box of the full-size ``mask``."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    w, h = int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1
    probs = tuple(0.9 if c == class_name else 0.1 / 3 for c in CLASSES)
    kw = {}
    if host is not None:
        kw = {"host_x": float(host[0]), "host_y": float(host[1]), "host_score": 0.8,
              "host_fallback": False,
              "host_sky": None if wcs is None else wcs.pixel_to_world(*host)}
    return Detection(id=ident, class_name=class_name, class_index=CLASSES.index(class_name),
                     score=score, class_probabilities=probs, bbox=(x0, y0, w, h),
                     mask_crop=mask[y0:y0 + h, x0:x0 + w],
                     centroid=(float(xs.mean()), float(ys.mean())),
                     sky_centroid=None if wcs is None else wcs.pixel_to_world(xs.mean(),
                                                                              ys.mean()),
                     **kw)


def scene(seed=1):
    """Radio image and result with three galaxies of known properties.

    0. FR-I: elliptical Gaussian, 50 mJy, FWHM 8" x 16" elongated along Dec (PA 0),
       centred on pixel (40, 40), mask out to 4 sigma.
    1. FR-II: core + two beam-sized lobes along x (PA 90) at (70, 110), (90, 110),
       (110, 110), 10 mJy each; mask: three disks of radius 5 px (LAS 102.02").
    2. R: rectangle of 10 x 6 pixels (area 240 arcsec2) over noise only.
    """
    rng = np.random.default_rng(seed)
    wcs = make_wcs()
    data = rng.normal(0.0, RMS, SHAPE)
    bpix = beam_pixels()
    # source 0: integrated 50 mJy; FWHM in pixels 4 (x) and 8 (y)
    sx, sy = 4.0 / 2.3548200450309493, 8.0 / 2.3548200450309493
    peak0 = 50e-3 * bpix / (2 * np.pi * sx * sy)
    data += gaussian(SHAPE, 40, 40, 4.0, 8.0, peak0)
    mask0 = ellipse(SHAPE, 40, 40, 4 * sx, 4 * sy)
    # source 1: three beam-sized components of 10 mJy (peak 10 mJy/beam)
    mask1 = np.zeros(SHAPE, bool)
    for x in (70, 90, 110):
        data += gaussian(SHAPE, x, 110, BEAM_FWHM / PIXEL, BEAM_FWHM / PIXEL, 10e-3)
        mask1 |= disk(SHAPE, x, 110, 5)
    mask2 = np.zeros(SHAPE, bool)
    mask2[20:26, 120:130] = True
    radio = NDData(data.astype(np.float32), wcs=wcs, unit=u.Jy / u.beam,
                   meta={"beam": Beam(BEAM_FWHM * u.arcsec), "filename": "synthetic.fits"})
    dets = [detection(0, "FR-I", mask0, score=0.95, host=(40.3, 40.6), wcs=wcs),
            detection(1, "FR-II", mask1, score=0.9, host=(90.0, 110.0), wcs=wcs),
            detection(2, "R", mask2, score=0.5, wcs=wcs)]
    result = SegmentationResult(dets, classes=CLASSES, shape=SHAPE, wcs=wcs,
                                meta={"model": "synthetic", "device": "cpu",
                                      "class_threshold": 0.5, "score_threshold": 0.0,
                                      "model_sha256": "0" * 64})
    truth = {"flux0": 50.0, "peak0": peak0 * 1e3, "peak1": 10.0, "masks": [mask0, mask1, mask2]}
    return radio, result, truth

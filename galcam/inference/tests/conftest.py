"""Fixtures for the inference tests: a tiny random model folder and synthetic images."""

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import NDData
from astropy.wcs import WCS

from galcam.io import Beam

CLASSES = ["FR-I", "FR-II", "FR-X", "R"]


def make_wcs(shape, pixel_scale=2.0, centre=(150.0, 2.0)):
    """A TAN WCS centred on ``centre`` (deg) with ``pixel_scale`` arcsec pixels."""
    h, w = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(centre)
    wcs.wcs.crpix = [(w + 1) / 2, (h + 1) / 2]
    wcs.wcs.cdelt = [-pixel_scale / 3600, pixel_scale / 3600]
    return wcs


def gaussian(shape, x, y, sigma, peak):
    """A Gaussian on an image of ``shape``; ``sigma`` in pixels, or ``(sigma_x, sigma_y)``."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    if np.ndim(sigma):
        sx, sy = sigma
        return peak * np.exp(-((xx - x) ** 2 / (2 * sx**2) + (yy - y) ** 2 / (2 * sy**2)))
    return peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))


def make_radio(shape=(64, 64), pixel_scale=2.0, sources=((32, 32),), beam=(10.0, 8.0),
               seed=1, rms=1e-4):
    """NDData radio image: noise plus double-lobed sources at pixel (x, y) centres."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0, rms, shape)
    for x, y in sources:
        data += gaussian(shape, x - 6, y, 2.5, 60 * rms) + gaussian(shape, x + 6, y, 2.5, 50 * rms)
        data += gaussian(shape, x, y, 1.5, 30 * rms)
    meta = {}
    if beam is not None:
        meta["beam"] = Beam(major=beam[0] * u.arcsec, minor=beam[1] * u.arcsec, pa=0 * u.deg)
    return NDData(data.astype(np.float32), wcs=make_wcs(shape, pixel_scale), unit=u.Jy / u.beam,
                  meta=meta)


def make_ir(radio, hosts=((32, 32),), seed=2):
    """IR image on the radio grid with a point-like host at each pixel (x, y)."""
    rng = np.random.default_rng(seed)
    shape = radio.data.shape
    data = 100 + rng.normal(0, 1, shape)
    for x, y in hosts:
        data += gaussian(shape, x, y, 1.2, 80)
    return NDData(data.astype(np.float32), wcs=radio.wcs.deepcopy(), unit=u.dimensionless_unscaled)


def write_fits(nd, path):
    header = nd.wcs.to_header()
    header["BUNIT"] = "Jy/beam" if nd.unit == u.Jy / u.beam else ""
    beam = (nd.meta or {}).get("beam")
    if beam is not None:
        header.update(beam.to_header_keywords())
    fits.PrimaryHDU(np.asarray(nd.data, np.float32), header=header).writeto(path)
    return path


def model_config(size=64, pixel_scale=2.0, beam=(10.0, 8.0), arch="resnet18"):
    """A config.json like the one galcam.training writes (the keys inference reads)."""
    return {
        "classes": list(CLASSES),
        "encoding": {
            "channels": ["ir", "radio", "radio"],
            "n_sigma": 3.0,
            "n_pixels": 5,
            "ir_reproject": "interp",
            "fill_value": 0.0,
            "snr_max": 1000.0,
            "radio_noise": {"method": "sigma_clip", "n_sigma": 3.0, "maxiters": 10,
                            "box_size": None, "filter_size": 3},
            "ir_noise": {"method": "paper-ir", "n_sigma": 3.0, "maxiters": 1,
                         "box_size": None, "filter_size": 3},
            "size": 210,
            "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            "image_size": [size, size],
        },
        "backbone": {
            "cam": {"arch": arch, "output_stride": 16, "in_channels": 3},
            "irnet": {"arch": arch, "output_stride": 16, "in_channels": 3},
        },
        "thresholds": {"class_threshold": 0.5, "cam_scales": [1.0, 0.5, 1.5]},
        "radio": {"pixel_scale_arcsec": pixel_scale,
                  "beam": None if beam is None else {"major_arcsec": beam[0],
                                                      "minor_arcsec": beam[1], "pa_deg": 0.0}},
    }


def build_model_folder(path, *, seed=0, arch="resnet18", **config_kw):
    """Write a model folder with random CAMNet/IRNet weights; returns the path."""
    import torch

    from galcam.models import Backbone, CAMNet, IRNet, save_model_folder

    torch.manual_seed(seed)
    cam = CAMNet(arch, len(CLASSES))
    irnet = IRNet(Backbone(arch))
    return save_model_folder(path, config=model_config(arch=arch, **config_kw),
                             state_dicts={"cam": cam.state_dict(), "irnet": irnet.state_dict()},
                             metrics={"note": "random weights for tests"})


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return build_model_folder(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def segmenter(model_dir):
    from galcam.inference import GalaxyGrouper, WeakSegmenter

    # every class is "present" for a random classifier, so detections are produced
    return WeakSegmenter.load(model_dir, device="cpu",
                              grouper=GalaxyGrouper(class_threshold=0.0))

"""Simulated EMU-like radio cutouts and WISE-W1-like infrared images with truth.

The simulator makes data in the shape of the data set of Gupta et al. (2023, PASA,
section 2): 210 x 210 pixel EMU Pilot Survey cutouts at 2"/px (Jy/beam, 13" x 11" beam,
944 MHz, 25-35 uJy/beam noise) around extended radio galaxies of the four classes FR-I,
FR-II, FR-X and R, the matching AllWISE W1 cutouts (1.375"/px, 6.1" PSF), and the truth the
paper's way: a mask of the pixels above 3 sigma inside each galaxy's rotated 5-sigma box,
unrelated sources removed, and one infrared host keypoint per galaxy. The class of each
galaxy is measured on its noiseless beam-convolved model by the paper's a/b rule
(`galcam.morphology.measure_ab`).

Public functions:

* `simulate_cutout`: one cutout in memory (`SimulatedCutout`).
* `simulate_dataset`: a folder of cutouts with COCO truth (``annotations.json``), an
  image list for prediction (``images.json``), a truth table (``truth.ecsv``), an overview
  figure and the parameters (``simulation.json``).
* `simulate_mosaic`: one large image with many galaxies, for survey tests.

See the "Simulator" page of the documentation for the physical model and what it leaves out.
"""

import concurrent.futures
import json
import logging
import math
import multiprocessing
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import NDData
from astropy.table import QTable
from astropy.wcs import WCS

from .. import __version__
from .._validation import check_positive, check_positive_int
from ..io import physical_memory
from ..io.fits import atomic_write
from ..morphology import CLASS_NAMES
from ._scene import (
    GALAXY_FLAGS,
    IMAGE_FLAGS,
    IR_PSF_FWHM,
    PAPER_CLASS_COUNTS,
    W1_MAGZP,
    Realism,
    SceneConfig,
    SimulatedGalaxy,
    _class_weights,
    simulate_scene,
)

__all__ = [
    "CATEGORIES",
    "PAPER_CLASS_COUNTS",
    "Realism",
    "SimulatedCutout",
    "SimulatedGalaxy",
    "simulate_cutout",
    "simulate_dataset",
    "simulate_mosaic",
]

log = logging.getLogger(__name__)

#: COCO categories written by the simulator (matched by name by readers).
CATEGORIES = [
    {"id": i + 1, "name": name, "supercategory": "radio galaxy"}
    for i, name in enumerate(CLASS_NAMES)
]
_CATEGORY_ID = {c["name"]: c["id"] for c in CATEGORIES}

PROFILES = ("gaussian", "varied")  # source-model families (simulate_cutout's profiles)
FREQUENCY = 944e6  # Hz, EMU-PS band centre
BANDWIDTH = 288e6  # Hz (800-1088 MHz)


def _validate_config(
    *,
    pixel_scale=2.0,
    ir_pixel_scale=1.375,
    beam=(13.0, 11.0, None),
    beam_scale=(1.0, 1.0),
    rms_range=(25e-6, 35e-6),
    class_balance="paper",
    max_tries=6,
    snr_range=(6.0, 3000.0),
    profiles="gaussian",
):
    if profiles not in PROFILES:
        raise ValueError(
            f"profiles must be one of {', '.join(repr(p) for p in PROFILES)}, got {profiles!r}"
        )
    pixel_scale = check_positive(pixel_scale, "pixel_scale",
                                 expected="a finite positive number of arcsec")
    ir_pixel_scale = check_positive(ir_pixel_scale, "ir_pixel_scale",
                                    expected="a finite positive number of arcsec")
    try:
        bmaj, bmin, bpa = beam
    except (TypeError, ValueError):
        raise ValueError(
            f"beam must be (major_arcsec, minor_arcsec, pa_deg or None), got {beam!r}"
        ) from None
    if not (0 < bmin <= bmaj):
        raise ValueError(f"beam: need 0 < minor <= major (arcsec), got {bmaj}, {bmin}")
    try:
        s_lo, s_hi = (float(v) for v in beam_scale)
    except (TypeError, ValueError):
        raise ValueError(f"beam_scale must be (low, high) factors, got {beam_scale!r}") from None
    if not (np.isfinite(s_lo) and np.isfinite(s_hi) and 0 < s_lo <= s_hi):
        raise ValueError(
            f"beam_scale must be (low, high) with 0 < low <= high, got {beam_scale!r}"
        )
    lo, hi = rms_range
    if not (0 < lo <= hi):
        raise ValueError(
            f"rms_range must be (low, high) in Jy/beam with 0 < low <= high, got {rms_range!r}"
        )
    max_tries = check_positive_int(max_tries, "max_tries")
    if not (0 < snr_range[0] <= snr_range[1]):
        raise ValueError(f"snr_range must be (low, high) with 0 < low <= high, got {snr_range!r}")
    return SceneConfig(
        pixel_scale=float(pixel_scale),
        ir_pixel_scale=float(ir_pixel_scale),
        beam_major=float(bmaj),
        beam_minor=float(bmin),
        beam_pa=None if bpa is None else float(bpa),
        beam_scale=(s_lo, s_hi),
        rms_range=(float(lo), float(hi)),
        class_weights=_class_weights(class_balance),
        snr_range=(float(snr_range[0]), float(snr_range[1])),
        max_tries=int(max_tries),
        profiles=profiles,
    )


def _seed_sequence(seed, index=None):
    """The SeedSequence of a cutout: ``(seed, index)`` as in `simulate_dataset`, or ``seed``."""
    if isinstance(seed, np.random.Generator):
        if index is not None:
            raise ValueError("index can only be given with an integer seed")
        return np.random.SeedSequence(seed.integers(2**63, size=4).tolist())
    if isinstance(seed, np.random.SeedSequence):
        if index is not None:
            raise ValueError("index can only be given with an integer seed")
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)) and seed >= 0:
        if index is None:
            return np.random.SeedSequence(int(seed))
        index = check_positive_int(index, "index", minimum=0)
        return np.random.SeedSequence([int(seed), index])
    raise TypeError(
        f"seed must be a non-negative int, a numpy SeedSequence or a Generator, got {seed!r}"
    )


def _radio_wcs(center, crpix, pixel_scale, naxis=2):
    w = WCS(naxis=naxis)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"] + (["FREQ", "STOKES"] if naxis == 4 else [])
    w.wcs.crval = [center[0], center[1]] + ([FREQUENCY, 1.0] if naxis == 4 else [])
    w.wcs.crpix = [crpix[0], crpix[1]] + ([1.0, 1.0] if naxis == 4 else [])
    w.wcs.cdelt = [-pixel_scale / 3600, pixel_scale / 3600] + (
        [BANDWIDTH, 1.0] if naxis == 4 else []
    )
    w.wcs.cunit = ["deg", "deg"] + (["Hz", ""] if naxis == 4 else [])
    w.wcs.radesys = "ICRS"
    if naxis == 4:
        w.wcs.restfrq = FREQUENCY
    return w


@dataclass(frozen=True, eq=False)
class SimulatedCutout:
    """One simulated radio image, its infrared image and the truth of its galaxies.

    Attributes
    ----------
    radio : `~astropy.nddata.NDData`
        Radio image, Jy/beam, 2-D celestial WCS, ``meta['beam']`` a `radio_beam.Beam`,
        ``meta['rms']`` the noise (Jy/beam). NaN where blanked.
    ir : `~astropy.nddata.NDData`
        W1-like image in DN (``MAGZP`` = 20.5) on its own grid.
    galaxies : tuple of `SimulatedGalaxy`
        Truth of each galaxy.
    rms : float
        Noise of the radio image, Jy/beam.
    flags : dict
        Image-level realism effects that happened (``artefacts``, ``crowded``,
        ``compact_pairs``, ``blanked_edges``).
    model : ndarray
        Noiseless model of every source (galaxies and unrelated compact sources), Jy/beam.
    """

    radio: NDData
    ir: NDData
    galaxies: tuple
    rms: float
    flags: dict
    model: np.ndarray = field(repr=False)

    @property
    def shape(self):
        return self.radio.data.shape

    def to_coco(
        self, image_id=1, *, file_name="radio.fits", ir_file_name="ir.fits", first_annotation_id=1
    ):
        """COCO ``image`` entry and ``annotations`` of this cutout (galcam's dataset contract).

        Returns
        -------
        image : dict
        annotations : list of dict
        """
        from pycocotools import mask as mask_util

        ny, nx = self.shape
        image = {
            "id": int(image_id),
            "file_name": file_name,
            "ir_file_name": ir_file_name,
            "width": int(nx),
            "height": int(ny),
            "pixel_scale_arcsec": float(_pixel_scale(self.radio.wcs)),
            "ir_pixel_scale_arcsec": float(_pixel_scale(self.ir.wcs)),
        }
        anns = []
        for k, g in enumerate(self.galaxies):
            m = g.full_mask((ny, nx))
            rle = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
            bbox = [float(v) for v in mask_util.toBbox(rle)]
            rle["counts"] = rle["counts"].decode("ascii")
            anns.append(
                {
                    "id": int(first_annotation_id + k),
                    "image_id": int(image_id),
                    "category_id": _CATEGORY_ID[g.label],
                    "segmentation": rle,
                    "bbox": bbox,
                    "area": int(m.sum()),
                    "iscrowd": 0,
                    "keypoints": [round(float(g.host_xy[0]), 3), round(float(g.host_xy[1]), 3), 2],
                    "num_keypoints": 1,
                }
            )
        return image, anns

    def to_table(self, image_id=1, *, first_annotation_id=1):
        """Truth table: one row per galaxy, with sky positions (`~astropy.table.QTable`)."""
        return _truth_table([_truth_rows(self, image_id, first_annotation_id)])

    def plot(self, ax=None, *, show_ir=False):
        """Show the radio (or IR) image with truth masks, peaks and hosts (matplotlib)."""
        import matplotlib.pyplot as plt

        if ax is None:
            ax = plt.gca()
        _plot_panel(ax, self, show_ir=show_ir)
        return ax


def _pixel_scale(wcs):
    from astropy.wcs.utils import proj_plane_pixel_scales

    s = proj_plane_pixel_scales(wcs.celestial)
    return math.sqrt(s[0] * s[1]) * 3600


def _pack(scene, cfg, seq_info, radio_naxis=2):
    """SimulatedCutout from the dict returned by simulate_scene."""
    from radio_beam import Beam

    bmaj, bmin = scene["beam"]  # this image's beam (cfg.beam_scale may vary it)
    beam = Beam(major=bmaj * u.arcsec, minor=bmin * u.arcsec, pa=scene["bpa"] * u.deg)
    wcs = _radio_wcs(scene["center"], scene["crpix"], cfg.pixel_scale)
    wcs_ir = _radio_wcs(scene["center"], scene["crpix_ir"], cfg.ir_pixel_scale)
    data = scene["observed"]
    radio = NDData(
        data,
        wcs=wcs,
        unit=u.Jy / u.beam,
        mask=~np.isfinite(data),
        meta={"beam": beam, "rms": scene["rms"], "frequency": FREQUENCY * u.Hz, "seed": seq_info},
    )
    ir = NDData(
        scene["ir"],
        wcs=wcs_ir,
        unit=u.dimensionless_unscaled,
        meta={
            "beam": None,
            "magzp": W1_MAGZP,
            "noise": scene["ir_noise"],
            "sky": scene["ir_sky"],
            "bunit": "DN",
        },
    )
    gals = []
    for g in scene["galaxies"]:
        plan = g["plan"]
        named = g["named"]
        comps = tuple((k, float(gs.total_flux), len(gs)) for k, gs in named)
        flags = {name: bool(plan.flags.get(name, False)) for name in GALAXY_FLAGS}
        gals.append(
            SimulatedGalaxy(
                label=g["morph"].label,
                intended_label=plan.klass,
                morphology=g["morph"],
                window=tuple(int(v) for v in g["window"]),
                model=g["model"].astype(np.float32),
                mask=g["mask"],
                core_xy=(float(plan.x), float(plan.y)),
                host_xy=tuple(float(v) for v in g["host"]),
                host_ir_xy=tuple(float(v) for v in g["host_ir"]),
                host_w1_mag=float(g["host_mag"]),
                peak=float(g["model"].max()),
                flux=float(g["gs"].total_flux),
                snr=float(g["model"].max() / scene["rms"]),
                las_intrinsic=float(plan.las_arcsec),
                components=comps,
                flags=flags,
                tries=int(g["tries"]),
            )
        )
    return SimulatedCutout(
        radio=radio,
        ir=ir,
        galaxies=tuple(gals),
        rms=float(scene["rms"]),
        flags=dict(scene["flags"]),
        model=scene["model"].astype(np.float32),
    )


def simulate_cutout(
    seed=None,
    *,
    index=None,
    realism=True,
    size=210,
    class_balance="paper",
    pixel_scale=2.0,
    ir_pixel_scale=1.375,
    beam=(13.0, 11.0, None),
    beam_scale=(1.0, 1.0),
    rms_range=(25e-6, 35e-6),
    snr_range=(6.0, 3000.0),
    max_tries=6,
    profiles="gaussian",
):
    """Simulate one EMU-like radio cutout with its infrared cutout and truth.

    Parameters
    ----------
    seed : int, `~numpy.random.SeedSequence` or `~numpy.random.Generator`
        Source of randomness; the same int gives the same cutout.
    index : int, optional
        With an int ``seed``: make image ``index`` of ``simulate_dataset(..., seed=seed)``
        (identical data and truth when the other options are the defaults).
    realism : bool, dict or `Realism`, optional
        Imperfections of real data (artefacts, crowding, bent tails, ...). ``True`` (default)
        turns all on with their default rates, ``False`` gives clean images; a dict or a
        `Realism` sets each effect's probability.
    size : int, optional
        Width and height of the radio image, pixels (210 = 7' at 2"/px).
    class_balance : {'paper', 'balanced'} or dict, optional
        Intended class frequencies: the paper's (328 FR-I, 128 FR-II, 110 FR-X, 196 R),
        equal, or a dict of weights by class name.
    pixel_scale, ir_pixel_scale : float, optional
        Pixel sizes of the radio and infrared images, arcsec.
    beam : tuple, optional
        ``(major, minor, pa)``: restoring beam FWHMs in arcsec and position angle in deg
        east of north; ``pa=None`` draws it per image.
    beam_scale : tuple of float, optional
        ``(low, high)``: both beam axes are multiplied by a factor drawn per image,
        log-uniformly in this range (default ``(1, 1)``: the beam as given): a training
        set for images that span a range of beams (a survey's beam differs from field to
        field). Measured in the docs (*Training*, v8): a model trained on 0.9-1.6 was
        not better than one trained on the single beam, even on that mix. The images
        with the default are unchanged by this option.
    rms_range : tuple of float, optional
        Range of the image noise, Jy/beam (drawn uniformly per image).
    snr_range : tuple of float, optional
        Limits of a galaxy's peak signal-to-noise (log-normal around ~56).
    max_tries : int, optional
        Draws of a galaxy's components to obtain the intended class.
    profiles : {'gaussian', 'varied'}, optional
        Brightness profiles of the source models. ``'gaussian'`` (default): lobes of
        Gaussian clumps, jets that flare and fade exponentially. ``'varied'``: per galaxy,
        jets that fade as power laws and widen as cones (60%), lobes with most of their
        flux in a smooth Sersic (n = 0.5-1.5) ellipse (70%), double hotspots (25%), X-shaped
        wings of FR-II/FR-X (15%), R sources as Sersic discs (50%): training data that
        span more than one family of models (see *Training* in the docs for what it
        changes). The class of record is measured on the model in both cases; images with
        ``'gaussian'`` are unchanged by this option.

    Returns
    -------
    cutout : `SimulatedCutout`
    """
    if seed is None:
        raise ValueError(
            "simulate_cutout: give a seed (an int) so that the cutout can be reproduced"
        )
    cfg = _validate_config(
        pixel_scale=pixel_scale,
        ir_pixel_scale=ir_pixel_scale,
        beam=beam,
        beam_scale=beam_scale,
        rms_range=rms_range,
        class_balance=class_balance,
        max_tries=max_tries,
        snr_range=snr_range,
        profiles=profiles,
    )
    size = check_positive_int(size, "size", minimum=32)
    realism = Realism.coerce(realism)
    seq = _seed_sequence(seed, index)
    scene = simulate_scene(seq, (size, size), cfg, realism, mode="cutout")
    return _pack(scene, cfg, _seq_info(seq))


def _seq_info(seq):
    ent = seq.entropy
    return {
        "entropy": [int(e) for e in np.atleast_1d(ent)],
        "spawn_key": [int(k) for k in seq.spawn_key],
    }


# ------------------------------------------------------------------------------------------
# FITS writing


_HEADER_CACHE = {}


def _template(kind, naxis, scale):
    """Cached header of a simulator product; per image only a few values change."""
    key = (kind, naxis, scale)
    if key not in _HEADER_CACHE:
        hdr = fits.PrimaryHDU(np.zeros((1,) * naxis, dtype=np.float32)).header
        hdr.update(_radio_wcs((0.0, 0.0), (1.0, 1.0), scale, naxis=naxis).to_header())
        for key_ in ("LATPOLE", "MJDREF"):  # set for the template's (0, 0) centre; not needed
            hdr.remove(key_, ignore_missing=True)
        if kind == "radio":
            hdr["BUNIT"] = "Jy/beam"
            hdr["BMAJ"] = (0.0, "restoring beam major axis FWHM (deg)")
            hdr["BMIN"] = (0.0, "restoring beam minor axis FWHM (deg)")
            hdr["BPA"] = (0.0, "restoring beam position angle (deg)")
            hdr["RESTFRQ"] = (FREQUENCY, "Hz")
            hdr["TELESCOP"] = "ASKAP"
            hdr["SIMRMS"] = (0.0, "[Jy/beam] noise rms of the simulated image")
        else:
            hdr["BUNIT"] = "DN"
            hdr["MAGZP"] = (W1_MAGZP, "W1 mag = MAGZP - 2.5 log10(DN)")
            hdr["TELESCOP"] = "WISE"
            hdr["BAND"] = "W1"
            hdr["PSFFWHM"] = (IR_PSF_FWHM, "[arcsec] PSF FWHM")
        hdr["OBJECT"] = "galcam simulation"
        hdr["ORIGIN"] = f"galcam {__version__} simulator"
        hdr["SIMSEED"] = (0, "galcam simulate seed")
        hdr["SIMINDEX"] = (0, "image index in the data set")
        _HEADER_CACHE[key] = hdr
    return _HEADER_CACHE[key].copy()


def _set_wcs(hdr, wcs):
    hdr["CRVAL1"], hdr["CRVAL2"] = float(wcs.wcs.crval[0]), float(wcs.wcs.crval[1])
    hdr["CRPIX1"], hdr["CRPIX2"] = float(wcs.wcs.crpix[0]), float(wcs.wcs.crpix[1])


def _radio_hdu(cut, naxis, seed=None, index=None):
    """Radio image as a FITS HDU (4-D RA, Dec, FREQ, STOKES like ASKAP products, or 2-D)."""
    data = cut.radio.data.astype(np.float32)
    if naxis == 4:
        data = data[np.newaxis, np.newaxis]
    hdr = _template("radio", naxis, round(_pixel_scale(cut.radio.wcs), 9))
    _set_wcs(hdr, cut.radio.wcs)
    beam = cut.radio.meta["beam"]
    hdr["BMAJ"] = beam.major.to_value(u.deg)
    hdr["BMIN"] = beam.minor.to_value(u.deg)
    hdr["BPA"] = beam.pa.to_value(u.deg)
    hdr["SIMRMS"] = float(cut.rms)
    _set_seed(hdr, seed, index)
    return fits.PrimaryHDU(data, header=hdr)


def _ir_hdu(cut, seed=None, index=None):
    """Infrared image as a 2-D FITS HDU in DN."""
    hdr = _template("ir", 2, round(_pixel_scale(cut.ir.wcs), 9))
    _set_wcs(hdr, cut.ir.wcs)
    _set_seed(hdr, seed, index)
    return fits.PrimaryHDU(cut.ir.data.astype(np.float32), header=hdr)


def _set_seed(hdr, seed, index):
    if seed is None:
        del hdr["SIMSEED"]
    else:
        hdr["SIMSEED"] = int(seed)
    if index is None:
        del hdr["SIMINDEX"]
    else:
        hdr["SIMINDEX"] = int(index)


def _write_fits(hdu, path):
    atomic_write(path, lambda tmp: hdu.writeto(tmp))


def _write_json(obj, path):
    def writer(tmp):
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=1)
            fh.write("\n")

    atomic_write(path, writer)


# ------------------------------------------------------------------------------------------
# truth table


def _truth_rows(cut, image_id, first_annotation_id):
    rows = []
    wcs = cut.radio.wcs
    for k, g in enumerate(cut.galaxies):
        m = g.morphology
        ps = _pixel_scale(wcs)
        rows.append(
            {
                "image_id": int(image_id),
                "galaxy_id": int(first_annotation_id + k),
                "class": g.label,
                "intended_class": g.intended_label,
                "center_xy": m.center,
                "host_xy": g.host_xy,
                "las": m.b * ps,
                "width": m.c * ps,
                "pa": float(m.sky_position_angle(wcs).to_value(u.deg)),
                "a": m.a * ps,
                "b": m.b * ps,
                "a_over_b": m.ratio,
                "n_peaks": m.n_peaks,
                "peak": g.peak * 1e3,
                "flux": g.flux * 1e3,
                "snr": g.snr,
                "rms": cut.rms * 1e6,
                "beam_major": cut.radio.meta["beam"].major.to_value(u.arcsec),
                "beam_minor": cut.radio.meta["beam"].minor.to_value(u.arcsec),
                "las_intrinsic": g.las_intrinsic,
                "host_w1_mag": g.host_w1_mag,
                "mask_area": int(g.mask.sum()),
                "tries": g.tries,
                "wcs": wcs,
                **{f"flag_{k2}": v for k2, v in g.flags.items()},
                **{f"image_{k2}": bool(cut.flags.get(k2, False)) for k2 in IMAGE_FLAGS},
            }
        )
    return rows


_TRUTH_COLUMNS = [
    ("image_id", None, "image id in annotations.json"),
    ("galaxy_id", None, "annotation id in annotations.json"),
    ("class", None, "class measured on the noiseless model by the a/b rule"),
    ("intended_class", None, "class the components were drawn for"),
    ("las", u.arcsec, "largest angular size b: extent of the 5-sigma emission"),
    ("width", u.arcsec, "extent c across the major axis"),
    ("pa", u.deg, "position angle of the major axis, east of north"),
    ("a", u.arcsec, "distance between the two outermost emission peaks"),
    ("b", u.arcsec, "extent of the 5-sigma emission along the major axis"),
    ("a_over_b", None, "a / b"),
    ("n_peaks", None, "number of peaks found on the model"),
    ("peak", u.mJy / u.beam, "peak of the model"),
    ("flux", u.mJy, "total flux density of the model"),
    ("snr", None, "peak / noise rms"),
    ("rms", u.uJy / u.beam, "noise rms of the image"),
    ("beam_major", u.arcsec, "restoring beam FWHM of the image, major axis"),
    ("beam_minor", u.arcsec, "restoring beam FWHM of the image, minor axis"),
    ("las_intrinsic", u.arcsec, "size the components were drawn for"),
    ("host_w1_mag", u.mag, "W1 Vega magnitude of the host"),
    ("mask_area", u.pix, "pixels in the truth mask"),
    ("tries", None, "draws needed for the intended class"),
]


def _truth_table(row_groups):
    rows = [r for group in row_groups for r in group]
    t = QTable()
    for name, unit, desc in _TRUTH_COLUMNS:
        values = [r[name] for r in rows]
        if unit is not None:
            col = u.Quantity(np.asarray(values, dtype=float), unit)
        else:
            col = (
                np.asarray(values) if values else np.zeros(0, dtype=int if "id" in name else float)
            )
        t[name] = col
        t[name].info.description = desc
    # sky positions through each image's WCS
    ra_c, dec_c, ra_h, dec_h = [], [], [], []
    for r in rows:
        w = r["wcs"]
        c = w.pixel_to_world(r["center_xy"][0], r["center_xy"][1])
        h = w.pixel_to_world(r["host_xy"][0], r["host_xy"][1])
        ra_c.append(c.ra.deg)
        dec_c.append(c.dec.deg)
        ra_h.append(h.ra.deg)
        dec_h.append(h.dec.deg)
    t["center"] = SkyCoord(ra_c * u.deg, dec_c * u.deg, frame="icrs")
    t["center"].info.description = "centre of the 5-sigma box"
    t["host"] = SkyCoord(ra_h * u.deg, dec_h * u.deg, frame="icrs")
    t["host"].info.description = "infrared host (keypoint)"
    t["center_x"] = u.Quantity([r["center_xy"][0] for r in rows], u.pix)
    t["center_y"] = u.Quantity([r["center_xy"][1] for r in rows], u.pix)
    t["center_x"].info.description = "centre of the 5-sigma box, 0-based x pixel"
    t["center_y"].info.description = "centre of the 5-sigma box, 0-based y pixel"
    t["host_x"] = u.Quantity([r["host_xy"][0] for r in rows], u.pix)
    t["host_y"] = u.Quantity([r["host_xy"][1] for r in rows], u.pix)
    t["host_x"].info.description = "host, 0-based x pixel of the radio image"
    t["host_y"].info.description = "host, 0-based y pixel of the radio image"
    for name in GALAXY_FLAGS:
        t[f"flag_{name}"] = np.array([bool(r[f"flag_{name}"]) for r in rows], dtype=bool)
    for name in IMAGE_FLAGS:
        t[f"image_{name}"] = np.array([bool(r[f"image_{name}"]) for r in rows], dtype=bool)
    return t


# ------------------------------------------------------------------------------------------
# overview figure


def _plot_panel(ax, cut, *, show_ir=False, title=None):
    from matplotlib.patches import Polygon

    if show_ir:
        d = cut.ir.data
        sky = np.nanmedian(d)
        noise = float(cut.ir.meta.get("noise", np.nanstd(d)))
        img = np.arcsinh((d - sky) / (3 * noise))
        ax.imshow(
            img, origin="lower", cmap="gray", vmin=-1, vmax=max(1.0, np.nanpercentile(img, 99.7))
        )
        for g in cut.galaxies:
            ax.plot(*g.host_ir_xy, marker="o", mfc="none", color="lime", ms=12, mew=1.2)
        ax.set_title(title or "W1-like infrared", fontsize=8)
    else:
        d = cut.radio.data
        img = np.arcsinh(d / (3 * cut.rms))
        vmax = max(2.0, float(np.nanpercentile(img, 99.9)))
        ax.imshow(img, origin="lower", cmap="inferno", vmin=-1, vmax=vmax)
        shape = d.shape
        for g in cut.galaxies:
            ax.contour(g.full_mask(shape), [0.5], colors="cyan", linewidths=0.8)
            ax.add_patch(
                Polygon(
                    g.morphology.box_corners(0.5),
                    closed=True,
                    fill=False,
                    ec="white",
                    lw=0.5,
                    ls="--",
                )
            )
            ax.plot(*g.host_xy, marker="o", mfc="none", color="lime", ms=10, mew=1.0)
            ax.annotate(g.label, g.morphology.endpoints[1], color="white", fontsize=8)
        ax.set_xlim(-0.5, shape[1] - 0.5)
        ax.set_ylim(-0.5, shape[0] - 0.5)
        ax.set_title(title or "radio", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _overview(cuts, titles, path):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    n = len(cuts)
    fig = Figure(figsize=(3.2 * n, 6.6))
    axes = fig.subplots(2, n, squeeze=False)
    for k, (cut, title) in enumerate(zip(cuts, titles)):
        _plot_panel(axes[0, k], cut, title=title)
        _plot_panel(axes[1, k], cut, show_ir=True, title="W1-like infrared, host circled")
    fig.suptitle(
        "galcam simulation: radio (asinh, 3-sigma units) with truth masks (cyan), "
        "5-sigma boxes (dashed), hosts (circles)",
        fontsize=9,
    )
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80))


# ------------------------------------------------------------------------------------------
# data sets


def _prepare_output(output_dir, overwrite):
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"'{out}': exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"'{out}': the output folder is not empty (pass overwrite=True, or --overwrite "
            "on the command line, to write into it)"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _one_image(job):
    """Simulate image ``index`` of a data set and write its FITS files (runs in workers)."""
    (out, seed, index, cfg, realism, radio_naxis) = job
    seq = np.random.SeedSequence([int(seed), int(index)])
    scene = simulate_scene(seq, (210, 210), cfg, realism, mode="cutout")
    cut = _pack(scene, cfg, _seq_info(seq))
    name = f"sim_{index:06d}"
    radio_rel, ir_rel = f"radio/{name}.fits", f"ir/{name}_w1.fits"
    _write_fits(_radio_hdu(cut, radio_naxis, seed, index), Path(out) / radio_rel)
    _write_fits(_ir_hdu(cut, seed, index), Path(out) / ir_rel)
    image_id = index + 1
    first = 1 + index * 100  # room for 100 galaxies per image: ids independent of order
    image, anns = cut.to_coco(
        image_id, file_name=radio_rel, ir_file_name=ir_rel, first_annotation_id=first
    )
    rows = _truth_rows(cut, image_id, first)
    stats = [(g.intended_label, g.label, g.tries) for g in cut.galaxies]
    return index, image, anns, rows, stats


def simulate_dataset(
    output_dir,
    n,
    *,
    seed,
    realism=True,
    class_balance="paper",
    n_workers=1,
    radio_naxis=4,
    overwrite=False,
    overview=True,
    progress=None,
    max_tries=6,
    rms_range=(25e-6, 35e-6),
    beam=(13.0, 11.0, None),
    beam_scale=(1.0, 1.0),
    profiles="gaussian",
):
    """Write a simulated data set of EMU-like cutouts with COCO truth.

    Writes, in ``output_dir``:

    * ``radio/sim_NNNNNN.fits``: radio cutouts (210 x 210 px, 2"/px, Jy/beam, 4-D like
      ASKAP products unless ``radio_naxis=2``);
    * ``ir/sim_NNNNNN_w1.fits``: W1-like cutouts (1.375"/px, DN);
    * ``annotations.json``: COCO truth (masks as compressed RLE, one host keypoint per galaxy,
      categories FR-I, FR-II, FR-X, R);
    * ``images.json``: the same without annotations, for prediction;
    * ``truth.ecsv``: one row per galaxy with sky positions, sizes, a, b, fluxes, flags;
    * ``overview.png``: a few cutouts with their truth;
    * ``simulation.json``: parameters, seed, galcam version and summary statistics.

    Image ``i`` depends only on ``(seed, i)``: the data set is the same for any
    ``n_workers``.

    Parameters
    ----------
    output_dir : str or path-like
        Output folder; created if needed; must be empty unless ``overwrite``.
    n : int
        Number of cutouts.
    seed : int
        Seed of the data set.
    realism : bool, dict or `Realism`, optional
        See `simulate_cutout`. On by default (training data should look like real data).
    class_balance : {'paper', 'balanced'} or dict, optional
        Intended class frequencies, see `simulate_cutout`.
    n_workers : int, optional
        Worker processes (1: in this process).
    radio_naxis : {4, 2}, optional
        Axes of the radio FITS files.
    overwrite : bool, optional
        Write into a non-empty ``output_dir`` (files of the same names are replaced).
    overview : bool, optional
        Write ``overview.png``.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).
    max_tries, rms_range, beam, beam_scale, profiles
        See `simulate_cutout`.

    Returns
    -------
    summary : dict
        The content of ``simulation.json``.
    """
    n = check_positive_int(n, "n", minimum=1)
    seed = check_positive_int(seed, "seed", allow_zero=True)
    n_workers = check_positive_int(n_workers, "n_workers", minimum=1)
    if radio_naxis not in (2, 4):
        raise ValueError(f"radio_naxis must be 2 or 4, got {radio_naxis!r}")
    cfg = _validate_config(
        class_balance=class_balance,
        max_tries=max_tries,
        rms_range=rms_range,
        beam=beam,
        beam_scale=beam_scale,
        profiles=profiles,
    )
    realism = Realism.coerce(realism)
    out = _prepare_output(output_dir, overwrite)
    (out / "radio").mkdir(exist_ok=True)
    (out / "ir").mkdir(exist_ok=True)
    from tqdm.auto import tqdm

    if progress is None:
        progress = sys.stderr.isatty()
    jobs = [(str(out), int(seed), i, cfg, realism, radio_naxis) for i in range(n)]
    results = [None] * n
    t0 = time.perf_counter()
    bar = tqdm(total=n, desc="simulate", unit="img", disable=not progress)
    try:
        if n_workers == 1:
            for job in jobs:
                r = _one_image(job)
                results[r[0]] = r
                bar.update()
        else:
            # 'spawn': no fork of a possibly multi-threaded parent; each image depends only
            # on (seed, index), so the start method cannot change the result
            ctx = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(
                max_workers=n_workers, mp_context=ctx
            ) as pool:
                for r in pool.map(
                    _one_image, jobs, chunksize=max(1, min(16, n // (4 * n_workers)))
                ):
                    results[r[0]] = r
                    bar.update()
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    images = [r[1] for r in results]
    annotations = [a for r in results for a in r[2]]
    coco = {
        "info": {
            "description": "galcam simulation of EMU-PS-like radio and WISE-W1-like IR cutouts",
            "version": __version__,
            "seed": int(seed),
        },
        "images": images,
        "categories": CATEGORIES,
        "annotations": annotations,
    }
    _write_json(coco, out / "annotations.json")
    _write_json({k: v for k, v in coco.items() if k != "annotations"}, out / "images.json")
    table = _truth_table([r[3] for r in results])
    table.meta.update(
        {"seed": int(seed), "galcam_version": __version__, "realism": realism.to_dict()}
    )
    atomic_write(out / "truth.ecsv", lambda tmp: table.write(tmp, format="ascii.ecsv"))
    stats = [s for r in results for s in r[4]]
    summary = _summary(stats, elapsed, n)
    params = {
        "n": n,
        "seed": int(seed),
        "realism": realism.to_dict(),
        "class_balance": class_balance if isinstance(class_balance, (str, dict)) else None,
        "class_weights": dict(zip(CLASS_NAMES, cfg.class_weights)),
        "radio_naxis": radio_naxis,
        "n_workers": n_workers,
        "max_tries": cfg.max_tries,
        "rms_range_jy_beam": list(cfg.rms_range),
        "beam_arcsec_deg": [cfg.beam_major, cfg.beam_minor, cfg.beam_pa],
        "beam_scale": list(cfg.beam_scale),
        "profiles": cfg.profiles,
        "image_size_px": 210,
        "pixel_scale_arcsec": cfg.pixel_scale,
        "ir_pixel_scale_arcsec": cfg.ir_pixel_scale,
    }
    record = {
        "galcam_version": __version__,
        "kind": "cutouts",
        "parameters": params,
        "statistics": summary,
    }
    _write_json(record, out / "simulation.json")
    if overview:
        _write_overview(out, images, _pick_overview([r[4] for r in results], 4), cfg, realism, seed)
    log.info(
        "simulated %d cutouts (%d galaxies) in %.1f s into %s", n, len(annotations), elapsed, out
    )
    return record


def _pick_overview(stats, k):
    """Indices of up to ``k`` images that show as many classes as possible."""
    picked = []
    for klass in CLASS_NAMES:
        for i, st in enumerate(stats):
            if i not in picked and any(label == klass for _, label, _ in st):
                picked.append(i)
                break
    for i in range(len(stats)):
        if len(picked) >= k:
            break
        if i not in picked:
            picked.append(i)
    return sorted(picked[:k])


def _write_overview(out, images, indices, cfg, realism, seed):
    # re-simulate the chosen cutouts in memory (cheap, and identical to the written ones)
    cuts, titles = [], []
    for i in indices:
        seq = np.random.SeedSequence([int(seed), i])
        cut = _pack(
            simulate_scene(seq, (210, 210), cfg, realism, mode="cutout"), cfg, _seq_info(seq)
        )
        cuts.append(cut)
        titles.append(f"{images[i]['file_name']}: " + ", ".join(g.label for g in cut.galaxies))
    _overview(cuts, titles, out / "overview.png")


def _summary(stats, elapsed, n_images):
    counts = {c: 0 for c in CLASS_NAMES}
    intended = {c: 0 for c in CLASS_NAMES}
    confusion = {a: {b: 0 for b in CLASS_NAMES} for a in CLASS_NAMES}
    first_try = 0
    for want, got, tries in stats:
        counts[got] += 1
        intended[want] += 1
        confusion[want][got] += 1
        first_try += int(want == got and tries == 1)
    n = max(len(stats), 1)
    return {
        "n_images": n_images,
        "n_galaxies": len(stats),
        "class_counts": counts,
        "intended_class_counts": intended,
        "intended_vs_measured": confusion,
        "agreement": sum(confusion[c][c] for c in CLASS_NAMES) / n,
        "agreement_first_draw": first_try / n,
        "elapsed_s": round(elapsed, 3),
        "images_per_s": round(n_images / elapsed, 3) if elapsed > 0 else None,
    }


#: Peak memory of `simulate_mosaic` per radio pixel and its fixed part (bytes), measured
#: with ``/usr/bin/time -f %M`` at 1500 and 3000 px (0.58 and 1.85 GB): the whole scene
#: (radio model, noise, the infrared grid with 2.1 times the pixels) is built in memory.
MOSAIC_BYTES_PER_PIXEL = 200
MOSAIC_BASE_BYTES = 150 * 2**20


def _check_mosaic_memory(size):
    """Refuse up front a mosaic whose simulation would not fit in the machine's memory."""
    need = MOSAIC_BASE_BYTES + MOSAIC_BYTES_PER_PIXEL * size**2
    have = physical_memory()
    if have is None or need <= 0.8 * have:
        return
    largest = int(math.sqrt(max(0.8 * have - MOSAIC_BASE_BYTES, 0) / MOSAIC_BYTES_PER_PIXEL))
    raise MemoryError(
        f"size: a {size} x {size} mosaic needs about {need / 1e9:.1f} GB of memory to simulate "
        f"(about {MOSAIC_BYTES_PER_PIXEL} bytes per pixel), more than this machine can give "
        f"({have / 1e9:.1f} GB in all); simulate at most {largest} x {largest} pixels here, or "
        "assemble a larger mosaic from blocks (benchmarks/bench_survey_load.py does)")


def simulate_mosaic(
    output_dir,
    *,
    size=3000,
    n_galaxies=120,
    seed,
    realism=True,
    class_balance="paper",
    radio_naxis=4,
    overwrite=False,
    overview=True,
    max_tries=6,
    rms_range=(25e-6, 35e-6),
    beam=(13.0, 11.0, None),
    profiles="gaussian",
):
    """Write one large EMU-like mosaic with many galaxies, for survey-scale tests.

    Writes ``radio/mosaic.fits``, ``ir/mosaic_w1.fits``, ``annotations.json`` (COCO with a
    single image), ``images.json``, ``truth.ecsv``, ``simulation.json`` and (optionally)
    ``overview.png`` in ``output_dir``.

    Parameters
    ----------
    output_dir : str or path-like
        Output folder; must be empty unless ``overwrite``.
    size : int, optional
        Width and height of the radio mosaic, pixels (3000 px = 1.67 deg at 2"/px). The
        scene is built in memory: about 200 bytes per pixel (1.9 GB at 3000 px); a size
        that would need more than 80% of the machine's memory is refused with
        `MemoryError` before any work.
    n_galaxies : int, optional
        Galaxies to place (fewer when there is no room for them).
    seed : int
        Seed.
    realism, class_balance, radio_naxis, overwrite, overview, max_tries, rms_range, beam, profiles
        As for `simulate_dataset`.

    Returns
    -------
    record : dict
        The content of ``simulation.json``.
    """
    size = check_positive_int(size, "size", minimum=64)
    n_galaxies = check_positive_int(n_galaxies, "n_galaxies", minimum=1)
    seed = check_positive_int(seed, "seed", allow_zero=True)
    _check_mosaic_memory(size)
    if radio_naxis not in (2, 4):
        raise ValueError(f"radio_naxis must be 2 or 4, got {radio_naxis!r}")
    cfg = _validate_config(
        class_balance=class_balance,
        max_tries=max_tries,
        rms_range=rms_range,
        beam=beam,
        profiles=profiles,
    )
    realism = Realism.coerce(realism)
    out = _prepare_output(output_dir, overwrite)
    t0 = time.perf_counter()
    seq = np.random.SeedSequence([int(seed), 2**31 - 1])  # distinct from the cutouts' (seed, i)
    scene = simulate_scene(seq, (size, size), cfg, realism, mode="mosaic", n_galaxies=n_galaxies)
    cut = _pack(scene, cfg, _seq_info(seq))
    elapsed = time.perf_counter() - t0
    _write_fits(_radio_hdu(cut, radio_naxis, seed), out / "radio" / "mosaic.fits")
    _write_fits(_ir_hdu(cut, seed), out / "ir" / "mosaic_w1.fits")
    image, anns = cut.to_coco(1, file_name="radio/mosaic.fits", ir_file_name="ir/mosaic_w1.fits")
    coco = {
        "info": {
            "description": "galcam simulated EMU-PS-like mosaic",
            "version": __version__,
            "seed": int(seed),
        },
        "images": [image],
        "categories": CATEGORIES,
        "annotations": anns,
    }
    _write_json(coco, out / "annotations.json")
    _write_json({k: v for k, v in coco.items() if k != "annotations"}, out / "images.json")
    table = cut.to_table(1)
    table.meta.update(
        {"seed": int(seed), "galcam_version": __version__, "realism": realism.to_dict()}
    )
    atomic_write(out / "truth.ecsv", lambda tmp: table.write(tmp, format="ascii.ecsv"))
    stats = [(g.intended_label, g.label, g.tries) for g in cut.galaxies]
    record = {
        "galcam_version": __version__,
        "kind": "mosaic",
        "parameters": {
            "size": size,
            "n_galaxies_requested": n_galaxies,
            "seed": int(seed),
            "realism": realism.to_dict(),
            "class_weights": dict(zip(CLASS_NAMES, cfg.class_weights)),
            "radio_naxis": radio_naxis,
            "pixel_scale_arcsec": cfg.pixel_scale,
            "ir_pixel_scale_arcsec": cfg.ir_pixel_scale,
            "profiles": cfg.profiles,
        },
        "statistics": _summary(stats, elapsed, 1),
    }
    _write_json(record, out / "simulation.json")
    if overview:
        _mosaic_overview(cut, out / "overview.png")
    log.info(
        "simulated a %d x %d mosaic with %d galaxies in %.1f s",
        size,
        size,
        len(cut.galaxies),
        elapsed,
    )
    return record


def _mosaic_overview(cut, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 8))
    ax = fig.subplots()
    d = cut.radio.data
    step = max(1, d.shape[0] // 1500)
    img = np.arcsinh(d[::step, ::step] / (3 * cut.rms))
    ax.imshow(
        img,
        origin="lower",
        cmap="inferno",
        vmin=-1,
        vmax=max(2.0, float(np.nanpercentile(img, 99.9))),
    )
    for g in cut.galaxies:
        c = g.morphology.box_corners(1.0) / step
        ax.plot(np.r_[c[:, 0], c[0, 0]], np.r_[c[:, 1], c[0, 1]], color="cyan", lw=0.6)
        ax.plot(g.host_xy[0] / step, g.host_xy[1] / step, "+", color="lime", ms=5)
    ax.set_xlim(-0.5, img.shape[1] - 0.5)
    ax.set_ylim(-0.5, img.shape[0] - 0.5)
    ax.set_title(
        f"galcam simulated mosaic: {len(cut.galaxies)} galaxies (5-sigma boxes, hosts)", fontsize=9
    )
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))

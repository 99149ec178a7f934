"""Bringing an image to the model's pixel scale and mapping results back (torch-free).

A model sees galaxies at the pixel scale of its training images (e.g. EMU's 2"/px). An image
from another telescope (FIRST 1.8"/px, MeerKAT 1.1"/px, LOFAR 1.5"/px) is resampled onto a
grid with the training pixel scale, with the same projection, centre and orientation
(`working_wcs`, `resample_image`: `reproject.reproject_interp`, bilinear, which keeps a
surface brightness in Jy/beam unchanged); the model runs there, and its masks and host
positions are mapped back to the image's own pixels through the sky (`map_crop_back`).

An image whose restoring beam is much larger than the training beam (more than
`BEAM_AREA_TOLERANCE` times its area; for a model trained on a range of beams, the
largest of them) can be resampled onto coarser pixels instead, so
that the beam covers about as many pixels as the training beam did
(`beam_matched_pixel_scale`): the network was trained on galaxies and point sources of
that many pixels per beam. An image cannot be sharpened, so a smaller beam keeps the
training pixel scale (with a warning from `check_beam`).
"""

import logging
import math
import warnings

import numpy as np
from astropy import units as u
from astropy.nddata import NDData
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS
from astropy.wcs.utils import pixel_to_pixel, proj_plane_pixel_scales

from .._validation import check_fraction
from ..io import GAUSS_AREA

__all__ = ["axis_pixel_scales", "working_wcs", "resample_image", "resample_noise",
           "map_crop_back", "check_beam", "beam_matched_pixel_scale", "BEAM_AREA_TOLERANCE",
           "PIXEL_SCALE_RTOL"]

log = logging.getLogger(__name__)

#: Relative difference of pixel scales above which an image is resampled.
PIXEL_SCALE_RTOL = 0.02
#: Ratio of beam areas (either way) above which a warning is issued, and (image beam over
#: training beam) above which `beam_matched_pixel_scale` coarsens the working pixels.
BEAM_AREA_TOLERANCE = 1.5

_LINEAR_KEYS = ("CDELT", "PC", "CD", "CROTA")


def axis_pixel_scales(wcs):
    """Pixel scale along each pixel axis ``(x, y)``, in arcsec."""
    # a 2-D celestial WCS is used as it is (`WCS.celestial` deep-copies it every time)
    cel = wcs if wcs.naxis == 2 and wcs.wcs.naxis == 2 and wcs.is_celestial else wcs.celestial
    return tuple(float(v) for v in (proj_plane_pixel_scales(cel) * u.deg).to_value(u.arcsec))


def working_wcs(wcs, shape, pixel_scale):
    """A WCS like ``wcs`` but with square pixels of ``pixel_scale``, covering the same sky.

    The projection, reference point and orientation are kept; each pixel axis is stretched
    by ``pixel_scale / (its scale)`` about the image centre, so that pixel ``x`` of the new
    grid lies at ``x_old = f_x x + c_x - f_x c'_x`` (``c``, ``c'`` the 0-based centres).
    Distortion terms (SIP) are dropped.

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
        Celestial WCS of the image.
    shape : (int, int)
        ``(height, width)`` of the image.
    pixel_scale : `~astropy.units.Quantity` or float
        Target pixel scale (float: arcsec).

    Returns
    -------
    new_wcs : `~astropy.wcs.WCS`
    new_shape : (int, int)
    factors : (float, float)
        ``(f_x, f_y)``: new pixel size over old pixel size along each axis.
    """
    target = u.Quantity(pixel_scale, u.arcsec).to_value(u.arcsec)
    if not (np.isfinite(target) and target > 0):
        raise ValueError(f"pixel_scale: expected a positive angle, got {pixel_scale!r}")
    cel = wcs.celestial
    scales = axis_pixel_scales(cel)
    factors = (target / scales[0], target / scales[1])
    h, w = (int(v) for v in shape)
    new_w = max(1, int(round(w / factors[0])))
    new_h = max(1, int(round(h / factors[1])))
    header = cel.to_header()
    for key in list(header):
        if key.startswith(_LINEAR_KEYS) or key.startswith(("A_", "B_", "AP_", "BP_")):
            del header[key]
    for key in ("A_ORDER", "B_ORDER", "AP_ORDER", "BP_ORDER"):
        header.remove(key, ignore_missing=True)
    header["CTYPE1"] = header["CTYPE1"].replace("-SIP", "")
    header["CTYPE2"] = header["CTYPE2"].replace("-SIP", "")
    cd = np.asarray(cel.pixel_scale_matrix, dtype=float) @ np.diag(factors)
    centres_old = ((w - 1) / 2.0, (h - 1) / 2.0)
    centres_new = ((new_w - 1) / 2.0, (new_h - 1) / 2.0)
    for j in range(2):
        crpix = float(cel.wcs.crpix[j])
        header[f"CRPIX{j + 1}"] = 1 + centres_new[j] + (crpix - 1 - centres_old[j]) / factors[j]
        for i in range(2):
            header[f"CD{i + 1}_{j + 1}"] = float(cd[i, j])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FITSFixedWarning about the header we just wrote
        new = WCS(header, naxis=2)
    return new, (new_h, new_w), factors


def resample_image(image, pixel_scale):
    """Resample a 2-D image (`galcam.io.read_image` output) to ``pixel_scale``.

    Parameters
    ----------
    image : `~astropy.nddata.NDData`
        With a celestial ``wcs``; ``unit`` and ``meta['beam']`` are kept.
    pixel_scale : `~astropy.units.Quantity` or float (arcsec)

    Returns
    -------
    resampled : `~astropy.nddata.NDData`
        float32 data on `working_wcs`, NaN outside the original image; ``meta`` records
        ``resampled_from`` (the original shape) and ``resample_factors``.
    """
    from reproject import reproject_interp

    data = np.asarray(image.data, dtype=np.float32)
    if image.mask is not None:
        data = np.where(np.asarray(image.mask, bool), np.float32(np.nan), data)
    new_wcs, new_shape, factors = working_wcs(image.wcs, data.shape, pixel_scale)
    out, _ = reproject_interp((data, image.wcs.celestial), new_wcs, shape_out=new_shape)
    meta = dict(image.meta or {})
    meta.update(resampled_from=list(data.shape), resample_factors=list(factors))
    log.info("resampled %s image to %s pixels of %.3f arcsec (factors %.3f, %.3f)",
             data.shape, new_shape, u.Quantity(pixel_scale, u.arcsec).value, *factors)
    return NDData(out.astype(np.float32), wcs=new_wcs, unit=image.unit, meta=meta)


def resample_noise(noise, image_wcs, new_wcs, new_shape):
    """A `~galcam.preprocessing.NoiseResult` on the resampled grid (maps reprojected)."""
    import dataclasses

    from reproject import reproject_interp

    if noise is None or not noise.has_maps:
        return noise
    maps = {}
    for name in ("rms_map", "background_map"):
        q = getattr(noise, name)
        arr, _ = reproject_interp((np.asarray(q.value, np.float32), image_wcs.celestial),
                                  new_wcs, shape_out=new_shape)
        maps[name] = u.Quantity(arr.astype(np.float32), q.unit)
    return dataclasses.replace(noise, **maps)


def map_crop_back(crop, x0, y0, work_wcs, image_wcs, image_shape):
    """Map a mask crop on the working grid to the image's own pixels.

    Every image pixel near the crop is transformed to the working grid (through the sky,
    `astropy.wcs.utils.pixel_to_pixel`) and takes the value of the nearest working pixel.

    Parameters
    ----------
    crop : array-like of bool, shape (h, w)
    x0, y0 : int
        Working-grid pixel of the crop's pixel (0, 0).
    work_wcs, image_wcs : `~astropy.wcs.WCS`
    image_shape : (int, int)

    Returns
    -------
    (mask, x0, y0) or None
        The crop on the image grid (clipped to the image and to its True pixels), or None
        when no image pixel falls in the mask.
    """
    crop = np.asarray(crop, dtype=bool)
    h, w = crop.shape
    H, W = (int(v) for v in image_shape)
    cx = np.array([x0 - 1, x0 + w, x0 - 1, x0 + w], dtype=float)
    cy = np.array([y0 - 1, y0 - 1, y0 + h, y0 + h], dtype=float)
    ix, iy = pixel_to_pixel(work_wcs, image_wcs, cx, cy)
    if not (np.all(np.isfinite(ix)) and np.all(np.isfinite(iy))):
        raise ValueError("cannot map the working grid back to the image (outside projection)")
    bx0 = max(0, int(math.floor(ix.min())))
    by0 = max(0, int(math.floor(iy.min())))
    bx1 = min(W, int(math.ceil(ix.max())) + 1)
    by1 = min(H, int(math.ceil(iy.max())) + 1)
    if bx1 <= bx0 or by1 <= by0:
        return None
    gy, gx = np.mgrid[by0:by1, bx0:bx1]
    wx, wy = pixel_to_pixel(image_wcs, work_wcs, gx.ravel().astype(float),
                            gy.ravel().astype(float))
    px = np.rint(np.asarray(wx)).astype(np.int64) - x0
    py = np.rint(np.asarray(wy)).astype(np.int64) - y0
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    values = np.zeros(px.shape, dtype=bool)
    values[inside] = crop[py[inside], px[inside]]
    full = values.reshape(gy.shape)
    ys, xs = np.nonzero(full)
    if xs.size == 0:
        return None
    return (full[ys.min():ys.max() + 1, xs.min():xs.max() + 1].copy(),
            bx0 + int(xs.min()), by0 + int(ys.min()))


def _training_areas(model_beam):
    """Smallest and largest training beam area (arcsec^2), or None if not recorded.

    ``model_beam`` None or empty (no beam recorded) gives None too.

    A model trained on images with a range of beams records it in ``area_range_arcsec2``
    (``major * minor * pi / (4 ln 2)``); otherwise the training beam is one beam.
    """
    try:
        major = float(model_beam["major_arcsec"])
        minor = float(model_beam["minor_arcsec"])
    except (KeyError, TypeError, ValueError):
        return None
    area = GAUSS_AREA * major * minor
    lo, hi = area, area
    span = model_beam.get("area_range_arcsec2")
    if span is not None:
        try:
            lo, hi = (float(v) for v in span)
        except (TypeError, ValueError):
            return None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        return None
    return lo, hi


def _beam_area_ratio(beam, model_beam):
    """Beam area of the image over that of the training beam, or None if either is unknown.

    For a model trained on a range of beams: over the largest training beam when the
    image's is larger, over the smallest when it is smaller, and 1 inside the range.
    """
    return _area_ratio(beam, _training_areas(model_beam))


def _area_ratio(beam, areas):
    """`_beam_area_ratio` given the training areas ``(lo, hi)`` (None: unknown)."""
    if beam is None or areas is None:
        return None
    area = GAUSS_AREA * beam.major.to_value(u.arcsec) * beam.minor.to_value(u.arcsec)
    if not (math.isfinite(area) and area > 0):
        return None
    lo, hi = areas
    return float(area / hi) if area > hi else float(area / lo) if area < lo else 1.0


def beam_matched_pixel_scale(beam, model_beam, pixel_scale, *, strength=1.0):
    """A working pixel scale for an image whose beam is much larger than the training beam.

    With ``strength`` 1, a beam more than `BEAM_AREA_TOLERANCE` times larger (in area)
    than the training beam (the largest one, for a model trained on a range of beams)
    gets pixels ``sqrt(area ratio)`` times the training pixel
    scale: the network then sees point sources and galaxies with as many pixels per beam
    as in training. A smaller ``strength`` goes part of the way (pixels ``area ratio **
    (strength / 2)`` times the training scale): coarser pixels also shrink the galaxies
    and the sky a tile covers, in pixels, away from what the network was trained on.
    Otherwise (a similar or a smaller beam, either beam unknown, or ``strength`` 0) the
    training pixel scale is kept.

    Parameters
    ----------
    beam : `radio_beam.Beam` or None
        The image's restoring beam.
    model_beam : dict or None
        The training beam as recorded in the model folder
        (``{"major_arcsec", "minor_arcsec", "pa_deg"}``, the medians over the training
        images, and for a model trained on several beams ``"area_range_arcsec2"``, the
        smallest and largest beam area: a beam inside that range counts as the training
        beam, one outside it is compared with the nearest end).
    pixel_scale : float
        The training pixel scale, arcsec.
    strength : float, optional
        In [0, 1]: how far the pixels per beam are brought to those of training (1).

    Returns
    -------
    scale : float
        Pixel scale to work at, arcsec.
    matched : bool
        Whether ``scale`` differs from ``pixel_scale`` because of the beam.
    """
    strength = check_fraction(strength, "strength")
    ratio = _beam_area_ratio(beam, model_beam)
    if ratio is None or ratio <= BEAM_AREA_TOLERANCE or strength == 0:
        return float(pixel_scale), False
    return float(pixel_scale) * ratio ** (0.5 * float(strength)), True


def check_beam(beam, model_beam, *, where="image", matched=False):
    """Warn (`~astropy.utils.exceptions.AstropyUserWarning`) if two beams differ a lot.

    Parameters
    ----------
    beam : `radio_beam.Beam` or None
        The image's restoring beam.
    model_beam : dict or None
        The training beam as recorded in the model folder
        (``{"major_arcsec", "minor_arcsec", "pa_deg"}``, the medians over the training
        images, and for a model trained on several beams ``"area_range_arcsec2"``, the
        smallest and largest beam area: a beam inside that range counts as the training
        beam, one outside it is compared with the nearest end).
    where : str, optional
        Names the image in the message.
    matched : bool, optional
        The image is resampled onto coarser pixels because of its beam
        (`beam_matched_pixel_scale`): logged instead of a warning.

    Returns
    -------
    ratio : float or None
        Beam area of the image over that of the training data (None if unknown).
    """
    areas = _training_areas(model_beam)
    ratio = _area_ratio(beam, areas)
    if ratio is None:
        return None
    major, minor = float(model_beam["major_arcsec"]), float(model_beam["minor_arcsec"])
    lo, hi = areas
    image = (f"{where}: the beam ({beam.major.to_value(u.arcsec):.1f}\" x "
             f"{beam.minor.to_value(u.arcsec):.1f}\")")
    if hi > lo * (1 + 1e-6):  # trained on a range of beams
        if ratio == 1.0:
            return ratio
        text = (f"{image} has {ratio:.2f} times the area of the "
                f"{'largest' if ratio > 1 else 'smallest'} beam the model was trained on "
                f"(areas {lo:.0f} to {hi:.0f} arcsec^2; median beam {major:.1f}\" x "
                f"{minor:.1f}\")")
    else:
        text = (f"{image} has {ratio:.2f} times the area of the model's training beam "
                f"({major:.1f}\" x {minor:.1f}\")")
    if matched:
        log.info("%s: the image is resampled onto coarser pixels, closer to as many pixels "
                 "per beam as in training", text)
    elif max(ratio, 1 / ratio) > BEAM_AREA_TOLERANCE:
        warnings.warn(f"{text}; galaxies will look differently resolved than in training and "
                      "the predictions may be less reliable", AstropyUserWarning, stacklevel=3)
    return ratio

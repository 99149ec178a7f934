"""Network inputs from radio and infrared images: `CutoutEncoder` and `EncodedCutout`.

The network of Gupta et al. (2023, PASA, section 3.1) sees a 3-channel image
whose channels are the pre-processed infrared (WISE W1) image and, twice, the
pre-processed radio image, all on the radio pixel grid. `CutoutEncoder` builds
that input for one sky position (a cutout of a larger image or mosaic) or for a
whole image:

1. the radio cutout is taken with `astropy.nddata.Cutout2D` (``mode="partial"``,
   NaN fill), so a cutout hanging over the image edge keeps its requested size
   and the part outside is recorded;
2. the infrared image, which may be on any grid, is reprojected onto the cutout's
   radio grid with the ``reproject`` package (only the part of the infrared image
   around the cutout is read and reprojected);
3. the noise is estimated on each cutout (as in the paper) or taken from a
   precomputed `~galcam.preprocessing.NoiseResult` (e.g. a noise map of a mosaic,
   sampled on the cutout);
4. each channel is pre-processed with `~galcam.preprocessing.preprocess_channel`
   (islands above ``n_sigma`` times the noise with at least ``n_pixels`` pixels,
   log scaling and min-max normalisation inside the islands, zero elsewhere), and
   the channels are stacked in the requested order.
"""

import logging
import os
import sys
from copy import deepcopy

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.nddata import Cutout2D, NDData, NoOverlapError
from astropy.wcs.utils import pixel_to_pixel, proj_plane_pixel_scales, wcs_to_celestial_frame

from .._validation import (
    check_number,
    check_positive,
    check_positive_int,
    is_integer,
    readonly,
)
from ..io import read_image
from .noise import NoiseEstimator, NoiseResult
from .png import write_paper_png
from .scaling import preprocess_channel

__all__ = ["CutoutEncoder", "EncodedCutout", "EmptyCutoutError", "CHANNEL_NAMES"]

log = logging.getLogger(__name__)

#: Channel names understood by `CutoutEncoder`.
CHANNEL_NAMES = ("ir", "radio", "radio_snr", "zeros")

# fewest pixels with data on which a cutout's noise is estimated
_MIN_NOISE_PIXELS = 10

_REPROJECT_METHODS = ("interp", "reproject_interp", "adaptive", "exact")


class EmptyCutoutError(ValueError):
    """A requested cutout has no finite radio data (off the image, or in a blanked region)."""


# --------------------------------------------------------------------------------------------
# option validation
# --------------------------------------------------------------------------------------------


def _check_size(size, name="size"):
    """Validate a cutout size; return it as (ny, nx) ints, or as a Quantity of angle/pixels."""
    if isinstance(size, u.Quantity):
        if size.unit.physical_type != "angle" and size.unit != u.pixel:
            raise ValueError(
                f"{name} must be a number of pixels or an angle Quantity "
                f"(e.g. 7 * u.arcmin), got a Quantity in {size.unit}"
            )
        if size.ndim > 1 or size.size not in (1, 2):
            raise ValueError(f"{name} must be a scalar or a (ny, nx) pair, got shape {size.shape}")
        if not np.all(np.isfinite(size.value)) or np.any(size.value <= 0):
            raise ValueError(f"{name} must be positive and finite, got {size}")
        return u.Quantity([size.ravel()[0]] * 2) if size.size == 1 else size
    if is_integer(size):
        size = (size, size)
    if (
        isinstance(size, (tuple, list, np.ndarray))
        and len(size) == 2
        and all(is_integer(s) for s in size)
    ):
        ny, nx = int(size[0]), int(size[1])
        if ny < 1 or nx < 1:
            raise ValueError(f"{name} must be at least 1 pixel on each axis, got {(ny, nx)}")
        return (ny, nx)
    raise ValueError(
        f"{name} must be an int (pixels), a (ny, nx) pair of ints, or an angle Quantity; "
        f"got {size!r}"
    )


def _size_in_pixels(size, wcs):
    """(ny, nx) pixels of a size checked by `_check_size`, with the radio image's pixel scale."""
    if not isinstance(size, u.Quantity):
        return size
    if size.unit == u.pixel:
        pix = size.value
    else:
        scales = proj_plane_pixel_scales(wcs) * u.Unit(wcs.wcs.cunit[0] or "deg")  # (x, y)
        pix = np.array(
            [(size[0] / scales[1]).decompose().value, (size[1] / scales[0]).decompose().value]
        )
    ny, nx = (max(1, int(np.round(p))) for p in pix)
    return (ny, nx)


def _check_noise_estimator(value, name, default):
    if value is None:
        return default
    if not isinstance(value, NoiseEstimator):
        raise ValueError(
            f"{name} must be a galcam.preprocessing.NoiseEstimator or None, got {value!r}"
        )
    return value


# --------------------------------------------------------------------------------------------
# the result
# --------------------------------------------------------------------------------------------


class EncodedCutout:
    """The network input for one cutout (or one whole image), with where it came from.

    Made by `CutoutEncoder`; immutable (its arrays are read-only).

    Attributes
    ----------
    channels : `~numpy.ndarray`
        float32 array of shape (C, H, W): the encoded channels, in the order of
        `channel_names`; finite, and equal to the encoder's ``fill_value`` outside
        the `valid` pixels.
    channel_names : tuple of str
        Name of each channel (``"ir"``, ``"radio"``, ``"radio_snr"``, ``"zeros"``).
    wcs : `~astropy.wcs.WCS`
        Celestial WCS of the cutout (the radio grid).
    radio : `~numpy.ndarray`
        float32 (H, W): the raw radio cutout in `unit`, NaN outside the parent image
        and where the parent image is blanked.
    unit : `~astropy.units.Unit`
        Brightness unit of `radio` (usually Jy/beam).
    ir : `~numpy.ndarray` or None
        float32 (H, W): the raw infrared image reprojected onto the cutout's radio
        grid, in `ir_unit`; NaN where the infrared image does not cover the cutout.
        None when no infrared image was given.
    ir_unit : `~astropy.units.Unit` or None
    radio_noise, ir_noise : `~galcam.preprocessing.NoiseResult` or None
        The noise used for each channel (maps, if any, are on the cutout grid).
    beam : `radio_beam.Beam` or None
        Restoring beam of the radio image.
    origin : tuple of int
        ``(x0, y0)``: 0-based pixel of the parent radio image at the cutout's pixel
        (0, 0). Negative where the cutout starts beyond the image's lower edge.
    valid : `~numpy.ndarray`
        bool (H, W): True where the radio data are inside the parent image and finite.
    ir_valid : `~numpy.ndarray` or None
        bool (H, W): True where the reprojected infrared image is finite.
    overlap_fraction : float
        Fraction of the cutout's pixels that are `valid`.
    partial : bool
        True when the requested cutout is not wholly inside the parent image (the
        part outside is filled, and flagged in `valid`).
    has_ir : bool
        False when the encoding was made without an infrared image (the ``"ir"``
        channel is then all zeros).
    position : `~astropy.coordinates.SkyCoord`
        Sky position of the requested cutout centre (the image centre for a whole image).
    position_pixel : tuple of float
        The same position in the cutout's 0-based pixel frame ``(x, y)``.
    flags : tuple of str
        Short notes on the encoding: ``"partial"``, ``"blanked"`` (NaN pixels inside
        the image), ``"no_ir"``, ``"ir_partial"`` (the infrared image does not cover all
        valid pixels).
    meta : dict
        Free-form provenance (parent file names, the encoder's options, index in a batch).
    """

    __slots__ = (
        "_channels",
        "_channel_names",
        "_wcs",
        "_radio",
        "_unit",
        "_ir",
        "_ir_unit",
        "_radio_noise",
        "_ir_noise",
        "_beam",
        "_origin",
        "_valid",
        "_ir_valid",
        "_partial",
        "_position",
        "_position_pixel",
        "_meta",
        "_paper",
        "_options",
        "_frozen",
    )

    def __init__(
        self,
        *,
        channels,
        channel_names,
        wcs,
        radio,
        unit,
        ir,
        ir_unit,
        radio_noise,
        ir_noise,
        beam,
        origin,
        valid,
        ir_valid,
        partial,
        position,
        position_pixel,
        meta=None,
        paper=None,
        options=None,
    ):
        set_ = object.__setattr__
        set_(self, "_channels", readonly(np.asarray(channels, dtype=np.float32)))
        set_(self, "_channel_names", tuple(channel_names))
        set_(self, "_wcs", wcs)
        set_(self, "_radio", readonly(np.asarray(radio)))
        set_(self, "_unit", unit)
        set_(self, "_ir", readonly(None if ir is None else np.asarray(ir)))
        set_(self, "_ir_unit", ir_unit)
        set_(self, "_radio_noise", radio_noise)
        set_(self, "_ir_noise", ir_noise)
        set_(self, "_beam", beam)
        set_(self, "_origin", (int(origin[0]), int(origin[1])))
        set_(self, "_valid", readonly(np.asarray(valid, dtype=bool)))
        set_(self, "_ir_valid", readonly(None if ir_valid is None else np.asarray(ir_valid, bool)))
        set_(self, "_partial", bool(partial))
        set_(self, "_position", position)
        set_(self, "_position_pixel", (float(position_pixel[0]), float(position_pixel[1])))
        set_(self, "_meta", dict(meta or {}))
        # pre-processed paper channels (radio01, ir01), kept for to_paper_png
        set_(self, "_paper", dict(paper or {}))
        set_(self, "_options", dict(options or {}))
        if self._channels.ndim != 3 or self._channels.shape[0] != len(self._channel_names):
            raise ValueError(
                f"channels must have shape (C, H, W) with C = {len(self._channel_names)}, "
                f"got {self._channels.shape}"
            )
        set_(self, "_frozen", True)

    def __setattr__(self, name, value):
        raise AttributeError(f"EncodedCutout is immutable; cannot set {name!r}")

    def __delattr__(self, name):
        raise AttributeError(f"EncodedCutout is immutable; cannot delete {name!r}")

    # --- plain attributes ------------------------------------------------------------------
    channels = property(lambda self: self._channels, doc="float32 (C, H, W) encoded channels.")
    channel_names = property(lambda self: self._channel_names, doc="Names of the channels.")
    wcs = property(lambda self: self._wcs, doc="Celestial WCS of the cutout.")
    radio = property(lambda self: self._radio, doc="Raw radio cutout, float32 (H, W), in `unit`.")
    unit = property(lambda self: self._unit, doc="Brightness unit of `radio`.")
    ir = property(lambda self: self._ir, doc="Raw IR reprojected on the radio grid, or None.")
    ir_unit = property(lambda self: self._ir_unit, doc="Brightness unit of `ir`, or None.")
    radio_noise = property(lambda self: self._radio_noise, doc="NoiseResult of the radio cutout.")
    ir_noise = property(lambda self: self._ir_noise, doc="NoiseResult of the IR cutout, or None.")
    beam = property(lambda self: self._beam, doc="Restoring beam of the radio image, or None.")
    origin = property(lambda self: self._origin, doc="(x0, y0) of pixel (0, 0) in the parent.")
    valid = property(lambda self: self._valid, doc="bool (H, W): radio inside parent and finite.")
    ir_valid = property(lambda self: self._ir_valid, doc="bool (H, W): IR finite, or None.")
    partial = property(lambda self: self._partial, doc="True if the cutout leaves the parent.")
    position = property(lambda self: self._position, doc="SkyCoord of the cutout centre.")
    position_pixel = property(
        lambda self: self._position_pixel, doc="(x, y) of `position` in the cutout's pixels."
    )
    meta = property(lambda self: dict(self._meta), doc="Provenance (a copy).")

    @property
    def shape(self):
        """(H, W) of the cutout."""
        return self._channels.shape[1:]

    @property
    def has_ir(self):
        """Whether an infrared image was given."""
        return self._ir is not None

    @property
    def overlap_fraction(self):
        """Fraction of the cutout's pixels inside the parent image and finite."""
        return float(self._valid.mean())

    @property
    def ir_coverage(self):
        """Fraction of the `valid` pixels where the reprojected IR is finite (0 without IR)."""
        if self._ir_valid is None:
            return 0.0
        nvalid = int(self._valid.sum())
        return float((self._ir_valid & self._valid).sum() / nvalid) if nvalid else 0.0

    @property
    def flags(self):
        """Short notes on the encoding (see the class docstring)."""
        flags = []
        if self._partial:
            flags.append("partial")
        inside = self._inside_mask()
        if bool((inside & ~self._valid).any()):
            flags.append("blanked")
        if self._ir is None:
            flags.append("no_ir")
        elif bool((self._valid & ~self._ir_valid).any()):
            flags.append("ir_partial")
        return tuple(flags)

    def _inside_mask(self):
        """bool (H, W): True where the cutout pixel is inside the parent image."""
        h, w = self.shape
        ny, nx = self._meta.get("parent_shape", (None, None))
        if ny is None:
            return np.ones((h, w), bool)
        x0, y0 = self._origin
        ys = np.arange(y0, y0 + h)
        xs = np.arange(x0, x0 + w)
        return ((ys >= 0) & (ys < ny))[:, None] & ((xs >= 0) & (xs < nx))[None, :]

    def __getitem__(self, name):
        """The channel called ``name`` (the first one if it appears more than once)."""
        try:
            return self._channels[self._channel_names.index(name)]
        except ValueError:
            raise KeyError(f"no channel {name!r}; the channels are {self._channel_names}") from None

    def __repr__(self):
        h, w = self.shape
        pos = self._position
        if pos is None:
            where = "?"
        elif pos.frame.name in ("icrs", "fk5", "fk4", "fk4noeterms"):
            where = pos.to_string("hmsdms", precision=1)
        else:  # Galactic, ecliptic ...: longitude and latitude in degrees, never hours
            sph = pos.spherical
            where = f"{pos.frame.name} ({sph.lon.deg:.4f}, {sph.lat.deg:+.4f}) deg"
        return (
            f"<EncodedCutout {h}x{w} channels={self._channel_names} at {where} "
            f"origin={self._origin} overlap={self.overlap_fraction:.3f} flags={self.flags}>"
        )

    # --- conversions ------------------------------------------------------------------------
    def radio_snr(self):
        """The radio cutout in units of its noise: ``(radio - background) / rms``.

        Uses the cutout's `radio_noise` (its maps where it has them). float32 (H, W),
        0 outside `valid` and at non-finite pixels; negative values are kept.
        """
        snr = _snr_plane(self._radio, self._valid, self._radio_noise, self._unit)
        return readonly(np.asarray(snr, dtype=np.float32))

    def paper_channels(self):
        """The paper's pre-processed radio and IR channels, ``(radio01, ir01)``.

        Both are float32 (H, W) in [0, 1] (zero where there is no data). They are
        computed on demand when the encoder's channels did not include them.
        """
        paper = self._paper
        if "radio" not in paper:
            paper["radio"] = _preprocess(
                self._radio, self._valid, self._radio_noise, self._unit, "radio", self._options
            )
        if "ir" not in paper:
            if self._ir is None or self._ir_noise is None:  # no IR, or too little of it
                paper["ir"] = np.zeros(self.shape, np.float32)
            else:
                paper["ir"] = _preprocess(
                    self._ir,
                    self._ir_valid & self._valid,
                    self._ir_noise,
                    self._ir_unit,
                    "ir",
                    self._options,
                )
        return readonly(paper["radio"]), readonly(paper["ir"])

    def to_paper_png(self, path, *, overwrite=False):
        """Write the cutout as a 3-channel PNG in the paper's encoding.

        Uses `galcam.preprocessing.write_paper_png`: the infrared channel in R (8 bit),
        the radio channel as 16 bits split over G (low byte) and B (high byte), as in
        section 3.1 of Gupta et al. (2023). The write is atomic.

        Parameters
        ----------
        path : str or path-like
            Output ``.png`` file.
        overwrite : bool, optional
            Replace an existing file; by default an existing file raises `FileExistsError`.

        Returns
        -------
        path : `pathlib.Path`
        """
        radio01, ir01 = self.paper_channels()
        return write_paper_png(path, radio01, ir01, overwrite=overwrite)

    def to_nddata(self, which="radio"):
        """One plane of the cutout as an `~astropy.nddata.NDData` with the cutout WCS.

        Parameters
        ----------
        which : str, optional
            ``"radio"`` (raw radio, with `unit`, beam in ``meta``), ``"ir"`` (raw reprojected
            IR, with `ir_unit`) or the name of an encoded channel (dimensionless).

        Returns
        -------
        nddata : `~astropy.nddata.NDData`
            ``mask`` is True where the plane has no data.
        """
        meta = {"beam": self._beam, "origin": self._origin, "flags": self.flags}
        if which == "radio":
            return NDData(
                self._radio.copy(),
                wcs=self._wcs.deepcopy(),
                unit=self._unit,
                mask=~self._valid,
                meta=meta,
            )
        if which == "ir":
            if self._ir is None:
                raise ValueError("this cutout was encoded without an infrared image (has_ir=False)")
            return NDData(
                self._ir.copy(),
                wcs=self._wcs.deepcopy(),
                unit=self._ir_unit,
                mask=~self._ir_valid,
                meta=meta,
            )
        data = np.array(self[which])
        return NDData(
            data,
            wcs=self._wcs.deepcopy(),
            unit=u.dimensionless_unscaled,
            mask=~self._valid,
            meta=meta,
        )

    def to_hdulist(self):
        """The encoded channels as a FITS `~astropy.io.fits.HDUList` (a (C, H, W) cube).

        The primary HDU holds the channels with the cutout's celestial WCS; the header
        records the channel names (``CHNAMEi``), the cutout origin and the noise levels.
        """
        from astropy.io import fits

        header = self._wcs.to_header()
        header["NAXIS"] = 3
        for i, name in enumerate(self._channel_names, start=1):
            header[f"CHNAME{i}"] = (name, f"galcam channel {i}")
        header["ORIGINX"] = (self._origin[0], "x of cutout pixel 0 in the parent (0-based)")
        header["ORIGINY"] = (self._origin[1], "y of cutout pixel 0 in the parent (0-based)")
        header["OVERLAP"] = (self.overlap_fraction, "fraction of valid radio pixels")
        if self._radio_noise is not None:
            header["RADRMS"] = (
                float(u.Quantity(self._radio_noise.rms).value),
                f"radio rms [{u.Quantity(self._radio_noise.rms).unit}]",
            )
        if self._ir_noise is not None:
            header["IRRMS"] = (float(u.Quantity(self._ir_noise.rms).value), "IR rms")
        if self._beam is not None:
            header.update(self._beam.to_header_keywords())
        return fits.HDUList([fits.PrimaryHDU(np.array(self._channels), header=header)])


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _preprocess(data, valid, noise, unit, kind, options):
    """Paper pre-processing of one raw plane (in ``unit``); zero where ``valid`` is False."""
    everywhere = bool(valid.all())
    plane = data if everywhere else np.where(valid, data, np.float32(np.nan))
    out = preprocess_channel(
        u.Quantity(plane, unit, copy=False),
        noise,
        kind=kind,
        n_sigma=options["n_sigma"],
        n_pixels=options["n_pixels"],
    )
    out = np.asarray(out, dtype=np.float32)
    if not everywhere:
        out[~valid] = 0.0
    return out


def _value_in(quantity, unit):
    """A noise Quantity (scalar or map) as a plain float array in ``unit``."""
    if quantity is None:
        return None
    q = u.Quantity(quantity)
    if q.unit == u.dimensionless_unscaled or unit is None:
        return np.asarray(q.value, dtype=np.float32)
    try:
        return np.asarray(q.to_value(unit), dtype=np.float32)
    except u.UnitConversionError as exc:
        raise ValueError(
            f"the noise is in {q.unit}, which cannot be converted to the image unit {unit}"
        ) from exc


def _snr_plane(data, valid, noise, unit):
    """``(data - background) / rms`` (maps or scalars of ``noise``); 0 where not valid."""
    rms = _value_in(noise.rms_map if noise.rms_map is not None else noise.rms, unit)
    bkg = noise.background_map if noise.background_map is not None else noise.background
    bkg = _value_in(bkg, unit) if bkg is not None else np.float32(0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = (data - bkg) / rms
    return np.where(valid & np.isfinite(snr), snr, 0.0)


def _snr_channel(data, valid, noise, unit, softening, snr_max):
    """``asinh(max(S/N, 0) / softening) / asinh(snr_max / softening)``, clipped to [0, 1]."""
    snr = _snr_plane(data, valid, noise, unit)
    np.clip(snr, 0.0, None, out=snr)
    out = np.arcsinh(snr / softening) / np.arcsinh(snr_max / softening)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _cut_noise(noise, slices_parent, slices_cut, shape, parent_shape, name):
    """A NoiseResult whose maps (if any) are cut out like the data."""
    rms_map = getattr(noise, "rms_map", None)
    bkg_map = getattr(noise, "background_map", None)
    if rms_map is None and bkg_map is None:
        return noise
    out = {}
    for key, m in (("rms_map", rms_map), ("background_map", bkg_map)):
        if m is None:
            out[key] = None
            continue
        mshape = np.shape(m)
        if tuple(mshape) == tuple(shape) and slices_parent is None:
            out[key] = m
            continue
        if tuple(mshape) != tuple(parent_shape):
            raise ValueError(
                f"{name}: the NoiseResult's {key} has shape {tuple(mshape)}, but the parent "
                f"image has shape {tuple(parent_shape)}; give a noise map on the image's grid"
            )
        q = u.Quantity(m)
        cut = np.full(shape, np.nan, dtype=np.float32)
        cut[slices_cut] = np.asarray(q.value[slices_parent], dtype=np.float32)
        out[key] = cut * q.unit
    return _replace_noise(noise, **out)


def _replace_noise(noise, **changes):
    """A copy of a NoiseResult with some fields replaced."""
    import dataclasses

    if dataclasses.is_dataclass(noise):
        return dataclasses.replace(noise, **changes)
    new = deepcopy(noise)
    for key, value in changes.items():
        object.__setattr__(new, key, value)
    return new


class _Image:
    """An image read once, with what the encoder needs to cut it repeatedly."""

    def __init__(self, source, name, memmap):
        try:
            image = read_image(source, memmap=memmap)
        except TypeError as exc:
            raise TypeError(f"{name}: {exc}") from exc
        self.name = name
        self.image = image
        self.data = image.data
        self.wcs = image.wcs
        self.unit = image.unit if image.unit is not None else u.dimensionless_unscaled
        self.beam = image.meta.get("beam") if image.meta else None
        self.filename = image.meta.get("filename") if image.meta else None
        self.shape = tuple(self.data.shape)
        self._same = None
        self._frame = None

    def same_grid(self, other):
        """Whether this image has exactly the pixel grid of ``other`` (an `_Image`)."""
        if self._same is None or self._same[0] is not other:
            same = self.shape == other.shape and _wcs_equal(self.wcs, other.wcs)
            self._same = (other, same)
        return self._same[1]

    def same_frame(self, other):
        """Whether this image's celestial frame is that of ``other`` (an `_Image`)."""
        if self._frame is None or self._frame[0] is not other:
            try:
                same = (
                    wcs_to_celestial_frame(self.wcs).is_equivalent_frame(
                        wcs_to_celestial_frame(other.wcs)
                    )
                    and self.wcs.wcs.lng == other.wcs.wcs.lng == 0
                )
            except ValueError:  # pragma: no cover - frame not recognised: take the slow path
                same = False
            self._frame = (other, same)
        return self._frame[1]


def _wcs_equal(a, b):
    try:
        return a.wcs.compare(b.wcs, tolerance=1e-10) and (a.sip is None) == (b.sip is None)
    except Exception:  # pragma: no cover - wcslib compare failing means "not the same"
        return False


def _edge_points(h, w):
    """0-based pixel coordinates along the boundary of an (h, w) grid (and its centre)."""
    xs = np.arange(-0.5, w, 1.0)
    ys = np.arange(-0.5, h, 1.0)
    x = np.concatenate([xs, xs, np.full(ys.size, -0.5), np.full(ys.size, w - 0.5), [(w - 1) / 2]])
    y = np.concatenate([np.full(xs.size, -0.5), np.full(xs.size, h - 0.5), ys, ys, [(h - 1) / 2]])
    return x, y


# --------------------------------------------------------------------------------------------
# the tool
# --------------------------------------------------------------------------------------------


class CutoutEncoder:
    """Build the network input (radio and infrared channels on the radio grid) for cutouts.

    Configured once, then called on images. Follows the pre-processing of Gupta et al.
    (2023, PASA), section 3.1: per cutout, the noise is estimated; islands above
    ``n_sigma`` times the noise with at least ``n_pixels`` pixels are kept, log-scaled and
    min-max normalised to [0, 1], everything else set to zero; the infrared (WISE) image
    gets the same treatment with the paper's median + 3 MAD threshold, on the radio grid.
    The paper's network input is (IR, radio, radio) as (R, G, B).

    Parameters
    ----------
    size : int, (int, int) or `~astropy.units.Quantity`, optional
        Cutout size: pixels (square), ``(ny, nx)`` pixels, or an angle (scalar or
        ``(ny, nx)``) converted to pixels with the radio image's pixel scale. Default 210
        pixels. Ignored when the whole image is encoded (``position=None``).
    channels : sequence of str, optional
        The output channels, in order. ``"ir"``: pre-processed infrared (paper);
        ``"radio"``: pre-processed radio (paper); ``"radio_snr"``: radio signal-to-noise
        ``max((S - background) / rms, 0)``, compressed as
        ``asinh(snr / n_sigma) / asinh(snr_max / n_sigma)`` and clipped to [0, 1], so that,
        unlike the min-max normalised ``"radio"`` channel, it keeps the absolute
        brightness (a 3 sigma pixel maps to about 0.14, ``snr_max`` and above to 1);
        ``"zeros"``: a channel of zeros. Default ``("ir", "radio", "radio")``.
    radio_noise : `~galcam.preprocessing.NoiseEstimator`, optional
        Noise estimator for the radio cutouts. Default ``NoiseEstimator()``.
    ir_noise : `~galcam.preprocessing.NoiseEstimator`, optional
        Noise estimator for the infrared cutouts. Default
        ``NoiseEstimator(method="paper-ir")`` (the paper's median + 3 MAD).
    n_sigma : float, optional
        Island threshold in units of the noise. Default 3 (paper).
    n_pixels : int, optional
        Smallest island kept, in radio pixels. Default 5 (paper).
    ir_reproject : {"interp", "reproject_interp", "adaptive", "exact"}, optional
        How the infrared image is resampled onto the radio grid. ``"interp"`` (default):
        bilinear interpolation with the conventions of `reproject.reproject_interp`, but
        with the pixel-to-pixel transform evaluated on a coarse grid (every 8 pixels) and
        interpolated in between, which is several times faster; it is used only where
        it agrees with the exact transform to 0.01 pixel at the centres of the grid
        cells (checked for every cutout), otherwise `reproject.reproject_interp` is
        called. ``"reproject_interp"``, ``"adaptive"`` and ``"exact"`` call
        `reproject.reproject_interp`, `reproject.reproject_adaptive` and
        `reproject.reproject_exact` (flux-conserving, slow). In every case only the part
        of the infrared image under the cutout is read.
    fill_value : float, optional
        Value of the encoded channels at pixels without radio data (outside the parent
        image or blanked). Default 0.
    snr_max : float, optional
        Signal-to-noise ratio mapped to 1 by the ``"radio_snr"`` channel. Default 1000.

    Examples
    --------
    >>> import astropy.units as u
    >>> from astropy.coordinates import SkyCoord
    >>> encoder = CutoutEncoder(size=7 * u.arcmin)  # doctest: +SKIP
    >>> cutout = encoder("emu.fits", "wise_w1.fits",
    ...                  position=SkyCoord(150.1, 2.2, unit="deg"))  # doctest: +SKIP
    >>> cutout.channels.shape  # doctest: +SKIP
    (3, 210, 210)
    """

    def __init__(
        self,
        *,
        size=210,
        channels=("ir", "radio", "radio"),
        radio_noise=None,
        ir_noise=None,
        n_sigma=3.0,
        n_pixels=5,
        ir_reproject="interp",
        fill_value=0.0,
        snr_max=1000.0,
    ):
        self._size = _check_size(size)
        if isinstance(channels, str) or not isinstance(channels, (tuple, list)):
            raise ValueError(
                f"channels must be a tuple of channel names such as ('ir', 'radio', 'radio'), "
                f"got {channels!r}"
            )
        if len(channels) == 0:
            raise ValueError("channels must name at least one channel")
        bad = [c for c in channels if c not in CHANNEL_NAMES]
        if bad:
            raise ValueError(
                f"unknown channel name(s) {bad}; allowed names are {list(CHANNEL_NAMES)}"
            )
        self._channels = tuple(channels)
        self._radio_noise = _check_noise_estimator(radio_noise, "radio_noise", NoiseEstimator())
        self._ir_noise = _check_noise_estimator(
            ir_noise, "ir_noise", NoiseEstimator(method="paper-ir")
        )
        self._n_sigma = check_positive(n_sigma, "n_sigma")
        self._n_pixels = check_positive_int(n_pixels, "n_pixels")
        if ir_reproject not in _REPROJECT_METHODS:
            raise ValueError(
                f"ir_reproject must be one of {list(_REPROJECT_METHODS)}, got {ir_reproject!r}"
            )
        self._ir_reproject = ir_reproject
        self._fill_value = check_number(
            fill_value, "fill_value", expected="a finite number (the network needs finite inputs)"
        )
        self._snr_max = check_positive(snr_max, "snr_max")

    # read-only configuration
    size = property(lambda self: self._size, doc="The default cutout size.")
    channels = property(lambda self: self._channels, doc="Output channel names, in order.")
    radio_noise = property(lambda self: self._radio_noise, doc="Radio noise estimator.")
    ir_noise = property(lambda self: self._ir_noise, doc="Infrared noise estimator.")
    n_sigma = property(lambda self: self._n_sigma, doc="Island threshold (noise units).")
    n_pixels = property(lambda self: self._n_pixels, doc="Smallest island (pixels).")
    ir_reproject = property(lambda self: self._ir_reproject, doc="IR resampling method.")
    fill_value = property(lambda self: self._fill_value, doc="Channel value without data.")
    snr_max = property(lambda self: self._snr_max, doc="S/N mapped to 1 in 'radio_snr'.")

    def __repr__(self):
        return (
            f"CutoutEncoder(size={self._size!r}, channels={self._channels!r}, "
            f"n_sigma={self._n_sigma}, n_pixels={self._n_pixels}, "
            f"ir_reproject={self._ir_reproject!r}, fill_value={self._fill_value})"
        )

    @property
    def _options(self):
        return {"n_sigma": self._n_sigma, "n_pixels": self._n_pixels}

    # --- public calls -----------------------------------------------------------------------
    def __call__(self, radio, ir=None, *, position=None, size=None, noise=None, ir_noise=None):
        """Encode one cutout (or the whole image).

        Parameters
        ----------
        radio : str, path-like, `~astropy.io.fits.HDUList`, HDU or `~astropy.nddata.NDData`
            The radio image; anything `galcam.io.read_image` accepts.
        ir : same types as ``radio``, optional
            The infrared image, on any celestial grid overlapping the radio image. Without
            it the ``"ir"`` channel is all zeros and the result's `~EncodedCutout.has_ir`
            is False.
        position : `~astropy.coordinates.SkyCoord` or (float, float), optional
            Centre of the cutout: a sky position, or a 0-based pixel ``(x, y)`` of the radio
            image. None (default) encodes the whole radio image.
        size : int, (int, int) or `~astropy.units.Quantity`, optional
            Overrides the encoder's ``size`` for this call (needs a ``position``).
        noise : `~galcam.preprocessing.NoiseResult`, optional
            Precomputed radio noise instead of the per-cutout estimate. A noise map (e.g.
            of a whole mosaic) must be on the parent radio image's grid; it is cut out like
            the data.
        ir_noise : `~galcam.preprocessing.NoiseResult`, optional
            Precomputed infrared noise (scalar rms/background, in the IR image's unit).

        Returns
        -------
        cutout : `EncodedCutout`

        Raises
        ------
        EmptyCutoutError
            The cutout does not overlap the radio image, or holds no finite radio data.
        ValueError
            Bad ``position``, ``size`` or noise.
        """
        self._check_call(position, size, noise, ir_noise)
        radio_img = _Image(radio, "radio", memmap=False)
        ir_img = _Image(ir, "ir", memmap=False) if ir is not None else None
        return self._encode(radio_img, ir_img, position, size, noise, ir_noise)

    def encode_many(
        self,
        radio,
        ir,
        positions,
        *,
        size=None,
        noise=None,
        ir_noise=None,
        errors="raise",
        progress=False,
    ):
        """Encode cutouts at many positions of the same images, reading each image once.

        File paths are opened memory-mapped, so mosaics larger than memory are read only
        where the cutouts are.

        Parameters
        ----------
        radio, ir : image (see `__call__`)
            ``ir`` may be None.
        positions : `~astropy.coordinates.SkyCoord` array, or sequence of (x, y) pixels
            Cutout centres.
        size : int, (int, int) or `~astropy.units.Quantity`, optional
            Overrides the encoder's ``size``.
        noise, ir_noise : `~galcam.preprocessing.NoiseResult`, optional
            As in `__call__`; noise maps on the parent grid are cut out for each position.
        errors : {"raise", "skip"}, optional
            What to do with a position whose cutout has no radio data: raise
            ``EmptyCutoutError`` (a `ValueError`), or log it and go on.
        progress : bool, optional
            Show a tqdm progress bar (only on a terminal).

        Yields
        ------
        cutout : `EncodedCutout`
            In the order of ``positions``; ``cutout.meta["index"]`` is the position's index.
        """
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        if isinstance(positions, SkyCoord):
            plist = [positions] if positions.isscalar else list(positions)
        else:
            arr = np.asarray(positions, dtype=float)
            if arr.ndim == 1 and arr.shape == (2,):
                arr = arr[None, :]
            if arr.ndim != 2 or arr.shape[1] != 2:
                raise ValueError(
                    "positions must be a SkyCoord or a sequence of (x, y) pixel pairs, "
                    f"got an array of shape {arr.shape}"
                )
            plist = [tuple(p) for p in arr]
        for p in plist:
            self._check_call(p, size, noise, ir_noise, need_position=True)
        radio_img = _open(radio, "radio")
        ir_img = _open(ir, "ir") if ir is not None else None
        it = enumerate(plist)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, total=len(plist), desc="encoding", disable=not sys.stderr.isatty())
        return self._iter_many(radio_img, ir_img, it, size, noise, ir_noise, errors)

    def _iter_many(self, radio_img, ir_img, it, size, noise, ir_noise, errors):
        short = []  # (IR pixels, position) of cutouts the infrared image barely covers
        n = 0
        try:
            for index, pos in it:
                try:
                    enc = self._encode(radio_img, ir_img, pos, size, noise, ir_noise,
                                       index=index, ir_short=short)
                except EmptyCutoutError as exc:
                    if errors == "raise":
                        raise
                    log.warning("skipping position %d: %s", index, exc)
                    continue
                n += 1
                yield enc
        finally:
            if short:
                shown = "; ".join(f"{where} ({pixels} px)" for pixels, where in short[:3])
                more = f" and {len(short) - 3} more" if len(short) > 3 else ""
                log.warning("the infrared image covers fewer than %d pixels of %d of the %d "
                            "cutouts, whose IR channel is zero: %s%s", _MIN_NOISE_PIXELS,
                            len(short), n, shown, more)

    # --- implementation ---------------------------------------------------------------------
    def _check_call(self, position, size, noise, ir_noise, need_position=False):
        if position is None:
            if need_position:
                raise ValueError("positions must not contain None")
            if size is not None:
                raise ValueError(
                    "size= needs a position=; without a position the whole image is encoded"
                )
        elif isinstance(position, SkyCoord):
            if not position.isscalar:
                raise ValueError(
                    "position must be a single SkyCoord (use encode_many for several positions)"
                )
        else:
            try:
                ok = len(position) == 2 and all(np.isfinite(float(p)) for p in position)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(
                    f"position must be a SkyCoord or a 0-based pixel (x, y) pair of finite "
                    f"numbers, got {position!r}"
                )
        if size is not None:
            _check_size(size)
        for name, value in (("noise", noise), ("ir_noise", ir_noise)):
            if value is not None and not isinstance(value, NoiseResult):
                raise ValueError(
                    f"{name} must be a galcam.preprocessing.NoiseResult or None, got {value!r}"
                )
        if ir_noise is not None and ir_noise.rms_map is not None:
            raise ValueError(
                "ir_noise with noise maps is not supported (the IR image is resampled); "
                "give a NoiseResult with scalar rms and background"
            )

    def _encode(self, radio_img, ir_img, position, size, noise, ir_noise, index=None,
                ir_short=None):
        parent_shape = radio_img.shape
        # ---- radio cutout
        if position is None:
            data = np.array(radio_img.data, dtype=np.float32)
            cut_wcs = radio_img.wcs  # read_image made it: not shared with the caller
            origin = (0, 0)
            partial = False
            slices_parent = slices_cut = None
            ny, nx = data.shape
            pos_pix = ((nx - 1) / 2.0, (ny - 1) / 2.0)
            sky = cut_wcs.pixel_to_world(*pos_pix)
        else:
            shape = _size_in_pixels(
                _check_size(size) if size is not None else self._size, radio_img.wcs
            )
            if isinstance(position, SkyCoord):
                pos_in = tuple(float(p) for p in radio_img.wcs.world_to_pixel(position))
                if not np.all(np.isfinite(pos_in)):
                    raise EmptyCutoutError(
                        f"{_describe_position(position)} cannot be placed on the radio image "
                        "(outside its projection)"
                    )
            else:
                pos_in = (float(position[0]), float(position[1]))
            try:
                cut = Cutout2D(
                    radio_img.data,
                    pos_in,
                    shape,
                    wcs=radio_img.wcs,
                    mode="partial",
                    fill_value=np.nan,
                    copy=False,
                )
            except NoOverlapError as exc:
                raise EmptyCutoutError(
                    f"the {shape[0]}x{shape[1]} cutout at {_describe_position(position)} does "
                    f"not overlap the radio image (shape {parent_shape})"
                ) from exc
            data = np.array(cut.data, dtype=np.float32)  # native byte order, owned copy
            cut_wcs = cut.wcs
            # parent pixel of the cutout's (0, 0), also where the cutout starts outside the
            # image (Cutout2D.to_original_position gives the start of the overlap instead)
            sl_par, sl_cut = cut.slices_original, cut.slices_cutout
            origin = (sl_par[1].start - sl_cut[1].start, sl_par[0].start - sl_cut[0].start)
            partial = data.shape != (
                cut.slices_original[0].stop - cut.slices_original[0].start,
                cut.slices_original[1].stop - cut.slices_original[1].start,
            )
            slices_parent, slices_cut = cut.slices_original, cut.slices_cutout
            pos_pix = tuple(float(p) for p in cut.input_position_cutout)
            sky = position if isinstance(position, SkyCoord) else cut_wcs.pixel_to_world(*pos_pix)
        valid = np.isfinite(data)
        if not valid.any():
            raise EmptyCutoutError(
                f"the cutout at {_describe_position(position)} holds no finite radio data "
                "(blanked region of the image)"
            )
        h, w = data.shape

        # ---- noise
        if noise is not None:
            radio_noise = _cut_noise(
                noise, slices_parent, slices_cut, (h, w), parent_shape, "noise"
            )
        else:
            if valid.sum() < _MIN_NOISE_PIXELS:
                raise EmptyCutoutError(
                    f"the cutout at {_describe_position(position)} has only {int(valid.sum())} "
                    f"pixels with radio data; at least {_MIN_NOISE_PIXELS} are needed to "
                    "estimate its noise"
                )
            # non-finite pixels, the only invalid ones, are ignored by the estimator
            radio_noise = self._radio_noise(_as_quantity(data, radio_img.unit))

        # ---- IR on the radio grid
        ir_data = ir_valid = ir_result = None
        if ir_img is not None:
            ir_data = self._ir_on_grid(
                ir_img, radio_img, cut_wcs, (h, w), slices_parent, slices_cut
            )
            ir_valid = np.isfinite(ir_data)
            ir_both = ir_valid & valid
            if ir_noise is not None:
                ir_result = ir_noise
            elif ir_both.sum() >= _MIN_NOISE_PIXELS:
                ir_result = self._ir_noise(
                    _as_quantity(ir_data, ir_img.unit),
                    mask=None if ir_both.all() else ~ir_both,
                )
            else:
                short = (int(ir_both.sum()), _describe_position(position))
                if ir_short is None:
                    log.warning("the infrared image covers %d pixels of the cutout at %s; the "
                                "IR channel is zero", *short)
                else:  # encode_many: one summary for all its cutouts
                    ir_short.append(short)

        # ---- channels
        options = self._options
        paper = {}
        planes = []
        for name in self._channels:
            if name == "radio":
                if "radio" not in paper:
                    paper["radio"] = _preprocess(
                        data, valid, radio_noise, radio_img.unit, "radio", options
                    )
                plane = paper["radio"]
            elif name == "ir":
                if "ir" not in paper:
                    if ir_result is None:
                        paper["ir"] = np.zeros((h, w), np.float32)
                    else:
                        paper["ir"] = _preprocess(
                            ir_data, ir_valid & valid, ir_result, ir_img.unit, "ir", options
                        )
                plane = paper["ir"]
            elif name == "radio_snr":
                plane = _snr_channel(
                    data, valid, radio_noise, radio_img.unit, self._n_sigma, self._snr_max
                )
            else:  # zeros
                plane = np.zeros((h, w), np.float32)
            planes.append(plane)
        channels = np.stack(planes).astype(np.float32, copy=False)
        if self._fill_value != 0.0:
            channels[:, ~valid] = self._fill_value

        meta = {
            "radio_file": radio_img.filename,
            "ir_file": ir_img.filename if ir_img is not None else None,
            "parent_shape": parent_shape,
            "size": (h, w),
            "n_sigma": self._n_sigma,
            "n_pixels": self._n_pixels,
            "ir_reproject": self._ir_reproject if ir_img is not None else None,
        }
        if index is not None:
            meta["index"] = index
        return EncodedCutout(
            channels=channels,
            channel_names=self._channels,
            wcs=cut_wcs,
            radio=data,
            unit=radio_img.unit,
            ir=ir_data,
            ir_unit=ir_img.unit if ir_img is not None else None,
            radio_noise=radio_noise,
            ir_noise=ir_result,
            beam=radio_img.beam,
            origin=origin,
            valid=valid,
            ir_valid=ir_valid,
            partial=partial,
            position=sky,
            position_pixel=pos_pix,
            meta=meta,
            paper=paper,
            options=options,
        )

    def _ir_on_grid(self, ir_img, radio_img, cut_wcs, shape, slices_parent, slices_cut):
        """The IR image resampled onto the cutout's radio grid (NaN where not covered)."""
        h, w = shape
        # same grid as the radio image: no resampling, cut the same pixels
        if ir_img.same_grid(radio_img):
            if slices_parent is None:
                return np.array(ir_img.data, dtype=np.float32)
            out = np.full((h, w), np.nan, dtype=np.float32)
            out[slices_cut] = np.asarray(ir_img.data[slices_parent], dtype=np.float32)
            return out
        if self._ir_reproject == "interp":
            coords = _fast_pixel_map(cut_wcs, ir_img.wcs, h, w, ir_img.same_frame(radio_img))
            if coords is not None:
                return _bilinear(ir_img.data, *coords)
            log.debug("fast IR pixel map not accurate enough here; using reproject_interp")
        return self._reproject(ir_img, cut_wcs, h, w)

    def _reproject(self, ir_img, cut_wcs, h, w):
        """Resample with the ``reproject`` package, reading only the IR footprint."""
        ex, ey = _edge_points(h, w)
        ix, iy = pixel_to_pixel(cut_wcs, ir_img.wcs, ex, ey)
        out = np.full((h, w), np.nan, dtype=np.float32)
        if not (np.all(np.isfinite(ix)) and np.all(np.isfinite(iy))):
            # the cutout reaches beyond the IR projection's valid domain: use it whole
            x0, x1, y0, y1 = 0, ir_img.shape[1], 0, ir_img.shape[0]
        else:
            margin = 3
            x0 = max(int(np.floor(ix.min())) - margin, 0)
            y0 = max(int(np.floor(iy.min())) - margin, 0)
            x1 = min(int(np.ceil(ix.max())) + margin + 1, ir_img.shape[1])
            y1 = min(int(np.ceil(iy.max())) + margin + 1, ir_img.shape[0])
            if x0 >= x1 or y0 >= y1:
                return out  # no overlap
        sub = np.asarray(ir_img.data[y0:y1, x0:x1], dtype=np.float32)
        sub_wcs = ir_img.wcs.slice((slice(y0, y1), slice(x0, x1)))
        if self._ir_reproject in ("interp", "reproject_interp"):
            from reproject import reproject_interp

            res = reproject_interp(
                (sub, sub_wcs), cut_wcs, shape_out=(h, w), return_footprint=False
            )
        elif self._ir_reproject == "adaptive":
            from reproject import reproject_adaptive

            res = reproject_adaptive(
                (sub, sub_wcs),
                cut_wcs,
                shape_out=(h, w),
                return_footprint=False,
                conserve_flux=False,
            )
        else:
            from reproject import reproject_exact

            res = reproject_exact((sub, sub_wcs), cut_wcs, shape_out=(h, w), return_footprint=False)
        out[...] = res
        return out


# The fast bilinear resampling evaluates the celestial transform on a coarse grid of
# nodes every _GRID_STEP pixels and interpolates it bilinearly in between; it is used
# only when, at the centres of the grid cells, the interpolated transform agrees with
# the exact one to within _GRID_TOL input pixels.
_GRID_STEP = 8
_GRID_TOL = 0.01


def _lin_index(p, nodes):
    """Cell index ``k`` and fraction ``t`` of positions ``p`` between sorted ``nodes``."""
    k = np.clip(np.searchsorted(nodes, p, side="right") - 1, 0, len(nodes) - 2)
    t = (p - nodes[k]) / (nodes[k + 1] - nodes[k])
    return k, t


def _bilinear_nodes(values, ky, ty, kx, tx):
    """Bilinear interpolation of a node grid ``values[j, i]`` at cells (ky, ty) x (kx, tx)."""
    rows = values[:, kx] * (1.0 - tx) + values[:, kx + 1] * tx
    return rows[ky] * (1.0 - ty)[:, None] + rows[ky + 1] * ty[:, None]


def _fast_pixel_map(wcs_out, wcs_in, h, w, same_frame=False):
    """Input pixel coordinates ``(x, y)`` of every output pixel, or None if not smooth.

    The exact per-pixel transform (`astropy.wcs.utils.pixel_to_pixel`, as used by
    `reproject.reproject_interp`) costs a few milliseconds per 10^4 pixels; over a
    cutout it is so smooth that a coarse grid reproduces it to far better than
    ``_GRID_TOL`` pixels, which is checked.
    """
    if h < 2 * _GRID_STEP or w < 2 * _GRID_STEP:
        return None
    xs = np.unique(np.r_[np.arange(0, w, _GRID_STEP), w - 1]).astype(float)
    ys = np.unique(np.r_[np.arange(0, h, _GRID_STEP), h - 1]).astype(float)
    gx, gy = np.meshgrid(xs, ys)
    cxs, cys = 0.5 * (xs[:-1] + xs[1:]), 0.5 * (ys[:-1] + ys[1:])
    cx, cy = np.meshgrid(cxs, cys)
    n = gx.size
    px, py = np.r_[gx.ravel(), cx.ravel()], np.r_[gy.ravel(), cy.ravel()]
    if same_frame:  # skip the SkyCoord round trip of pixel_to_pixel
        ix, iy = wcs_in.world_to_pixel_values(*wcs_out.pixel_to_world_values(px, py))
    else:
        ix, iy = pixel_to_pixel(wcs_out, wcs_in, px, py)
    ix, iy = np.asarray(ix, float), np.asarray(iy, float)
    if not (np.all(np.isfinite(ix)) and np.all(np.isfinite(iy))):
        return None
    node_x, node_y = ix[:n].reshape(gx.shape), iy[:n].reshape(gx.shape)
    cells = (*_lin_index(cys, ys), *_lin_index(cxs, xs))
    err_x = _bilinear_nodes(node_x, *cells) - ix[n:].reshape(cx.shape)
    err_y = _bilinear_nodes(node_y, *cells) - iy[n:].reshape(cx.shape)
    if max(np.abs(err_x).max(), np.abs(err_y).max()) > _GRID_TOL:
        return None
    cells = (*_lin_index(np.arange(h, dtype=float), ys), *_lin_index(np.arange(w, dtype=float), xs))
    return _bilinear_nodes(node_x, *cells), _bilinear_nodes(node_y, *cells)


def _bilinear(data, x, y):
    """Bilinear interpolation of ``data`` at 0-based pixels ``(x, y)``, as reproject does.

    Pixels more than half a pixel outside ``data`` are NaN; those in the outer half of
    a border pixel take that pixel's value (the convention of ``reproject``). Only the
    part of ``data`` under the coordinates is read (memory-mapped mosaics stay on disk).
    """
    from scipy.ndimage import map_coordinates

    ny, nx = data.shape
    out = np.full(x.shape, np.nan, dtype=np.float32)
    inside = (x >= -0.5) & (x <= nx - 0.5) & (y >= -0.5) & (y <= ny - 0.5)
    if not inside.any():
        return out
    xc = np.clip(x, 0, nx - 1)
    yc = np.clip(y, 0, ny - 1)
    everywhere = bool(inside.all())
    if not everywhere:
        xc, yc = xc[inside], yc[inside]
    x0 = max(int(np.floor(xc.min())), 0)
    y0 = max(int(np.floor(yc.min())), 0)
    x1 = min(int(np.floor(xc.max())) + 2, nx)
    y1 = min(int(np.floor(yc.max())) + 2, ny)
    sub = np.asarray(data[y0:y1, x0:x1], dtype=np.float32)
    xc -= x0
    yc -= y0
    vals = map_coordinates(sub, [yc, xc], order=1, mode="nearest", output=np.float32)
    if everywhere:
        return vals
    out[inside] = vals
    return out


def _as_quantity(data, unit):
    """The cutout as a Quantity for the noise estimator (cheaper than an NDData)."""
    return u.Quantity(data, unit, copy=False)


def _describe_position(position):
    if position is None:
        return "the whole image"
    if isinstance(position, SkyCoord):
        return position.to_string("hmsdms", precision=1)
    return f"pixel (x, y) = ({float(position[0]):.1f}, {float(position[1]):.1f})"


def _open(source, name):
    """Read an image once, memory-mapped when it is a file path."""
    return _Image(source, name, memmap=isinstance(source, (str, os.PathLike)))

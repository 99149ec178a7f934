"""What a segmenter will do with an image, said before it does it (torch-free).

A model sees an image at its training pixel scale (resampled where needed, coarser where
the beam is much larger, `~galcam.inference.beam_matched_pixel_scale`), tile by tile. For
an image far from the training data this can mean an undersampled image blown up many
times, or hours of work and tens of GB of memory. `plan_image` works out, from the header
and the model's description alone, the working pixel scale, the resampled size, the number
of tiles and an estimate of the time and memory, and lists what it refuses and what it
warns about; `ImagePlan.check` applies it. `~galcam.inference.WeakSegmenter` plans every
image before any heavy work (`WeakSegmenter.plan` shows the plan without predicting).

The estimates are estimates: `TIME_PER_TILE_S` was measured with the bundled ResNet-18
model on 2 CPU cores (a GPU is tens of times faster); the memory is that of the working
images, the resampling and one batch of tiles, beyond the loaded model (about 0.9 GB with
PyTorch).
"""

import logging
import math
import warnings
from dataclasses import dataclass, field

from astropy import units as u
from astropy.utils.exceptions import AstropyUserWarning

from ..io import NO_FINITE_PIXEL, ImageReadError, blank_reason, physical_memory
from .resample import (
    PIXEL_SCALE_RTOL,
    axis_pixel_scales,
    beam_matched_pixel_scale,
    working_wcs,
)
from .tiling import tile_grid

__all__ = ["ImagePlan", "ImageRefusedError", "plan_image", "memory_budget",
           "TIME_PER_TILE_S", "MAX_UPSAMPLING", "MIN_PIXELS_PER_BEAM", "MAX_BEAM_RATIO"]

log = logging.getLogger(__name__)

#: Seconds per tile of the bundled model (ResNet-18, 210 x 210 px, CAMs at 3 scales with
#: flips, IRNet, grouping) on 2 CPU cores: the basis of `ImagePlan.time_s`.
TIME_PER_TILE_S = 0.24
#: Seconds per million working pixels of the resampling (`reproject.reproject_interp`).
RESAMPLE_S_PER_MPIX = 0.5
#: Peak bytes per working pixel of the resampling (measured: 150 to 170).
RESAMPLE_BYTES_PER_PIXEL = 160
#: Bytes per tile of a batch in the networks (measured: about 200 MB for a batch of 4).
BYTES_PER_BATCH_TILE = 50e6
#: Most working pixels per image pixel that an image is resampled to without ``force``.
MAX_UPSAMPLING = 16.0
#: Fewest pixels across the restoring beam's minor axis (FWHM) of an image that is not
#: refused as undersampled (2, with 5 % leeway).
MIN_PIXELS_PER_BEAM = 1.9
#: Beam FWHM (geometric mean of the axes) over the training beam's above which the beam
#: is taken for a header error and warned about.
MAX_BEAM_RATIO = 20.0


class ImageRefusedError(ValueError):
    """An image the plan refuses (undersampled, or too much work); ``force`` overrides.

    Attributes
    ----------
    reason : str
        What is refused and why, without the hint on overriding it (a command line names
        its own flag).
    plan : `ImagePlan`
        The plan that refused the image.
    """

    def __init__(self, reason, plan=None):
        super().__init__(f"{reason}; pass force=True to predict it anyway")
        self.reason = reason
        self.plan = plan


def memory_budget():
    """Memory (bytes) an image may need before it is refused: half the machine's memory.

    8 GiB where the machine's memory cannot be read.
    """
    total = physical_memory()
    return int(total // 2) if total else 8 * 2**30


def _gb(n_bytes):
    return f"{n_bytes / 1e9:.2g} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.0f} MB"


def _duration(seconds):
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class ImagePlan:
    """What a segmenter will do with one image (`plan_image`).

    Attributes
    ----------
    input : str
        Names the image in messages.
    shape : (int, int)
        ``(height, width)`` of the image, pixels.
    pixel_scale : (float, float)
        The image's pixel scale along x and y, arcsec.
    beam : `radio_beam.Beam` or None
        The image's restoring beam.
    working_pixel_scale : float or None
        Pixel scale the model works at, arcsec (None: the image's own grid).
    working_shape : (int, int)
        ``(height, width)`` of the image on the working grid.
    beam_matched : bool
        Whether the working pixels are coarser than the model's because of the beam.
    tile_size : (int, int)
        The model's ``(height, width)``.
    n_tiles : int
        Network inputs the image is cut into.
    time_s : float
        Estimated time, seconds (``n_tiles * TIME_PER_TILE_S`` and the resampling), on
        2 CPU cores.
    memory_bytes : int
        Estimated peak memory beyond the loaded model: the image, the working image and
        its resampling, one batch of tiles.
    refusals : tuple of str
        Why the image is refused (empty: it is not); `check` raises on them.
    warnings : tuple of str
        What the user should know; `check` warns (`~astropy.utils.exceptions.AstropyUserWarning`).
    notes : tuple of str
        What the user should know but need not act on; `check` logs them as warnings.
    """

    input: str
    shape: tuple
    pixel_scale: tuple
    beam: object
    working_pixel_scale: float | None
    working_shape: tuple
    beam_matched: bool
    tile_size: tuple
    n_tiles: int
    time_s: float
    memory_bytes: int
    refusals: tuple = field(default=())
    warnings: tuple = field(default=())
    notes: tuple = field(default=())

    @property
    def resampled(self):
        """Whether the image is resampled onto another grid."""
        return self.working_pixel_scale is not None

    @property
    def upsampling(self):
        """Working pixels per image pixel (1 when not resampled)."""
        return (self.working_shape[0] * self.working_shape[1]) / (self.shape[0] * self.shape[1])

    def summary(self):
        """One line: the working grid, tiles, time and memory."""
        h, w = self.shape
        text = f"{self.input}: {w} x {h} px of {_scale(self.pixel_scale)}"
        if self.resampled:
            wh, ww = self.working_shape
            text += (f" -> resampled to {ww} x {wh} px of {self.working_pixel_scale:.3g}\""
                     f"{' (matched to the beam)' if self.beam_matched else ''}"
                     f" ({self.upsampling:.3g}x the pixels)")
        th, tw = self.tile_size
        return (f"{text}; {self.n_tiles} tile{'s' if self.n_tiles != 1 else ''} of {tw} x "
                f"{th}; estimated {_duration(self.time_s)} on 2 CPU cores and "
                f"{_gb(self.memory_bytes)} of memory")

    def check(self, *, force=False):
        """Log the plan, warn what it warns about, and refuse what it refuses.

        Parameters
        ----------
        force : bool, optional
            Do not refuse: the refusals are warned about instead.

        Raises
        ------
        ImageRefusedError
            The plan refuses the image and ``force`` is False.
        """
        log.info("%s", self.summary())
        for note in self.notes:
            log.warning("%s", note)
        for text in self.warnings:
            warnings.warn(text, AstropyUserWarning, stacklevel=3)
        if self.refusals:
            reason = "; ".join(self.refusals)
            if not force:
                raise ImageRefusedError(reason, self)
            warnings.warn(f"{reason} (going on, as forced)", AstropyUserWarning, stacklevel=3)


def _scale(scales):
    sx, sy = scales
    if abs(sx / sy - 1) < 1e-3:
        return f"{sx:.3g}\""
    return f"{sx:.3g}\" x {sy:.3g}\""


def plan_image(image, *, tile_size, tile_overlap, pixel_scale, model_beam=None,
               beam_matching=0.5, batch_size=4, memory_budget_bytes=None, where=None,
               look_at_data=True):
    """Plan the prediction of one image: working grid, tiles, estimates, refusals.

    Reads the image's header (shape, WCS, beam) and, with ``look_at_data``, as little of
    its data as tells whether it is blank; never resamples it.

    Parameters
    ----------
    image : `~astropy.nddata.NDData`
        From `galcam.io.read_image` (memory-mapped is fine).
    tile_size : (int, int)
        The model's input ``(height, width)``.
    tile_overlap : (int, int)
        Overlap of neighbouring tiles ``(y, x)``, pixels.
    pixel_scale : float or None
        The model's training pixel scale, arcsec (None: the image is used on its grid).
    model_beam : dict or None
        The training beam as recorded by the model (see
        `~galcam.inference.beam_matched_pixel_scale`).
    beam_matching : float, optional
        As for `~galcam.inference.WeakSegmenter`.
    batch_size : int, optional
        Tiles per network pass (for the memory estimate).
    memory_budget_bytes : float, optional
        Estimated memory above which the image is refused (default: `memory_budget`,
        half the machine's memory; ``math.inf``: never).
    where : str, optional
        Names the image in messages (default: its file name, quoted).
    look_at_data : bool, optional
        Warn about a blank (all-NaN) or constant image (a flagged cube plane).

    Returns
    -------
    `ImagePlan`

    Raises
    ------
    galcam.io.ImageReadError
        With ``look_at_data``, an image without a finite pixel (as `galcam.io.read_image`
        raises for a file it reads in full).
    """
    if where is None:
        name = (image.meta or {}).get("filename")
        where = f"'{name}'" if name else "image"
    shape = tuple(int(n) for n in image.data.shape)
    scales = axis_pixel_scales(image.wcs)
    beam = (image.meta or {}).get("beam")
    refusals, warns, notes = [], [], []
    target, matched = None, False
    if pixel_scale is not None:
        target, matched = beam_matched_pixel_scale(beam, model_beam, pixel_scale,
                                                   strength=beam_matching)
        if not any(abs(s / target - 1) > PIXEL_SCALE_RTOL for s in scales):
            target = None  # the image's own grid is the working grid
    if target is not None:
        _, work_shape, _ = working_wcs(image.wcs, shape, target)
    else:
        work_shape = shape
    tile_size = tuple(int(n) for n in tile_size)
    n_tiles = len(tile_grid(work_shape, tile_size, tuple(tile_overlap)))
    n_in = shape[0] * shape[1]
    n_work = work_shape[0] * work_shape[1]
    time_s = n_tiles * TIME_PER_TILE_S
    memory = 4 * n_in + batch_size * BYTES_PER_BATCH_TILE
    if target is not None:
        time_s += RESAMPLE_S_PER_MPIX * n_work / 1e6
        memory += (4 + RESAMPLE_BYTES_PER_PIXEL) * n_work

    # --- refusals: undersampled, or work that explodes
    if beam is not None:
        minor = beam.minor.to_value(u.arcsec)
        per_beam = minor / max(scales)
        if math.isfinite(per_beam) and per_beam < MIN_PIXELS_PER_BEAM:
            refusals.append(
                f"{where}: pixels of {_scale(scales)} are coarser than half the restoring "
                f"beam ({beam.major.to_value(u.arcsec):.3g}\" x {minor:.3g}\"): the image is "
                f"undersampled ({per_beam:.2g} pixels across the beam's minor axis, fewer "
                f"than 2), and galaxies in it cannot be resolved; use an image with at least "
                f"2 pixels per beam")
    if target is not None and n_work > MAX_UPSAMPLING * n_in:
        refusals.append(
            f"{where}: resampling its {shape[1]} x {shape[0]} pixels of {_scale(scales)} to "
            f"the model's {target:.3g}\" would make a {work_shape[1]} x {work_shape[0]} image, "
            f"{n_work / n_in:.0f} times the pixels (more than {MAX_UPSAMPLING:g}): "
            f"{n_tiles} tiles, about {_duration(time_s)} on 2 CPU cores")
    budget = memory_budget() if memory_budget_bytes is None else memory_budget_bytes
    if memory > budget:
        whose = " (half this machine's memory)" if memory_budget_bytes is None else ""
        refusals.append(
            f"{where}: predicting it would need about {_gb(memory)} of memory, more than "
            f"the budget of {_gb(budget)}{whose}; cut the image into parts (galcam survey "
            "processes a mosaic in units)")

    # --- warnings: a beam that cannot be right, a blank plane
    if beam is not None and model_beam:
        try:
            train = math.sqrt(float(model_beam["major_arcsec"]) * float(model_beam["minor_arcsec"]))
        except (KeyError, TypeError, ValueError):
            train = math.nan
        size = math.sqrt(beam.major.to_value(u.arcsec) * beam.minor.to_value(u.arcsec))
        if math.isfinite(train) and train > 0 and size > MAX_BEAM_RATIO * train:
            warns.append(
                f"{where}: the beam ({beam.major.to_value(u.arcsec):.4g}\" x "
                f"{beam.minor.to_value(u.arcsec):.4g}\") is {size / train:.0f} times the "
                f"model's training beam ({float(model_beam['major_arcsec']):.3g}\" x "
                f"{float(model_beam['minor_arcsec']):.3g}\"), more than {MAX_BEAM_RATIO:g}: is "
                "the header's (or the beam table's) beam right for this plane? The model "
                "cannot find galaxies at this resolution")
    if look_at_data:
        reason = blank_reason(image.data)
        if reason == NO_FINITE_PIXEL:  # as read_image says of a file it reads in full
            raise ImageReadError(f"{where}: {reason}")
        if reason is not None:
            warns.append(f"{where}: {reason}: a blank or flagged plane? There is nothing "
                         "to find in it")

    # --- notes: an image much smaller than what the model sees at once
    th, tw = tile_size
    wh, ww = work_shape
    if wh < th / 2 and ww < tw / 2:
        sky = ww * (target or scales[0]), wh * (target or scales[1])
        notes.append(
            f"{where}: the image ({ww} x {wh} px, {sky[0]:.0f}\" x {sky[1]:.0f}\" at the "
            f"working scale) is much smaller than what the model sees at once (a {tw} x {th} "
            f"tile, {tw * (target or pixel_scale or scales[0]):.0f}\" across): most of the "
            "tile is blank, unlike the training images: scores are lower, and a galaxy may "
            "fall below the score threshold")
    return ImagePlan(input=where, shape=shape, pixel_scale=tuple(scales), beam=beam,
                     working_pixel_scale=target, working_shape=tuple(work_shape),
                     beam_matched=bool(matched and target is not None), tile_size=tile_size,
                     n_tiles=n_tiles, time_s=float(time_s), memory_bytes=int(memory),
                     refusals=tuple(refusals), warnings=tuple(warns), notes=tuple(notes))

"""Infrared hosts of detected galaxies: `HostFinder` and `Hosts`.

The host of a radio galaxy is found as in Gupta et al. (2023, PASA), section 3.2.3: the
galaxy's instance-wise CAM is multiplied by the pre-processed infrared channel, and the host
is the peak of that product inside the galaxy's mask. galcam uses each galaxy's own
instance map (the authors' code used the map of cluster 0 of class 0 for every galaxy,
section 10 of its specification), refines the peak to sub-pixel precision and reports the
position in the image's 0-based pixel frame and on the sky. The computation itself is
`galcam.models.find_host` (numpy only).

This module does not import torch at import time; calling `HostFinder` imports
`galcam.models` (whose package imports torch).
"""

import warnings

import astropy.units as u
import numpy as np
from astropy.utils.exceptions import AstropyDeprecationWarning

__all__ = ["HostFinder", "Hosts"]

_METHODS = {
    "paper": "peak of instance CAM x IR in mask (Gupta+2023 3.2.3)",
    "core": ("IR source near the radio brightness-weighted centroid of the mask, favouring "
             "one on the radio emission"),
}


class Hosts:
    """Host positions of the detections of one `~galcam.inference.SegmentationResult`.

    Immutable; ``len(hosts)`` equals the number of detections and entry ``k`` belongs to
    detection ``k``.

    Attributes
    ----------
    x, y : `~numpy.ndarray` of float
        Host positions, 0-based pixels of the image the segmenter was given (sub-pixel).
    skycoord : `~astropy.coordinates.SkyCoord` or None
        The same positions on the sky (None for images without a WCS).
    score : `~numpy.ndarray` of float
        In [0, 1]. ``method='core'``: ``exp(-d^2 / 18)`` for the host's distance ``d`` from
        the radio centroid in pixels of the network's grid; ``method='paper'``: ``CAM * IR``
        at the host over ``max(CAM) * max(IR)`` in the mask. 0 for a fallback.
    fallback : `~numpy.ndarray` of bool
        True where no infrared source qualified and the radio centroid (``'core'``) or
        the instance-CAM peak (``'paper'``) was used instead.
    meta : dict
        The finder's settings.
    """

    def __init__(self, x, y, *, skycoord=None, score=None, fallback=None, meta=None):
        x = np.array(x, dtype=np.float64).reshape(-1)
        y = np.array(y, dtype=np.float64).reshape(-1)
        if x.shape != y.shape:
            raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
        n = x.size
        score = np.zeros(n) if score is None else np.array(score, dtype=np.float64).reshape(-1)
        fallback = (np.zeros(n, bool) if fallback is None
                    else np.array(fallback, dtype=bool).reshape(-1))
        if score.size != n or fallback.size != n:
            raise ValueError("score and fallback must have one entry per host")
        if skycoord is not None and (skycoord.isscalar or len(skycoord) != n):
            raise ValueError("skycoord must be a SkyCoord array with one entry per host")
        for arr in (x, y, score, fallback):
            arr.flags.writeable = False
        self._x, self._y, self._score, self._fallback = x, y, score, fallback
        self._skycoord = skycoord
        self._meta = dict(meta or {})

    x = property(lambda self: self._x, doc="Host x (0-based image pixels).")
    y = property(lambda self: self._y, doc="Host y (0-based image pixels).")
    skycoord = property(lambda self: self._skycoord, doc="Host sky positions, or None.")
    score = property(lambda self: self._score, doc="Host peak score in [0, 1].")
    fallback = property(lambda self: self._fallback, doc="True where the CAM peak was used.")
    meta = property(lambda self: dict(self._meta), doc="Settings of the finder (a copy).")

    def __len__(self):
        return self._x.size

    def __repr__(self):
        return f"<Hosts: {len(self)} positions, {int(self._fallback.sum())} fallbacks>"

    def to_table(self):
        """A `~astropy.table.QTable`: ``id``, ``x``, ``y``, ``skycoord``, ``score``,
        ``fallback``."""
        from astropy.table import QTable

        t = QTable(meta=dict(self._meta))
        t["id"] = np.arange(len(self), dtype=np.int64)
        t["x"] = self._x
        t["y"] = self._y
        if self._skycoord is not None:
            t["skycoord"] = self._skycoord
        t["score"] = self._score
        t["fallback"] = self._fallback
        return t


def _search_radius(value):
    """``max_distance`` checked: None, inf, or a positive Quantity of angle or pixels."""
    if value is None:
        return None
    if isinstance(value, u.Quantity):
        ok = value.isscalar and (value.unit.is_equivalent(u.pix)
                                 or value.unit.is_equivalent(u.arcsec))
        if ok and not np.isnan(value.value) and value.value > 0:
            return value
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        if np.isinf(value):
            return float(value)
        warnings.warn(f"max_distance={value!r}: a plain number is taken as pixels of the "
                      f"network's grid; give a Quantity ({value!r} * u.pix, or an angle such "
                      "as 10 * u.arcsec)", AstropyDeprecationWarning, stacklevel=3)
        return float(value) * u.pix
    raise ValueError(f"max_distance: expected a positive angle or number of pixels (u.pix), "
                     f"numpy.inf or None, got {value!r}")


class HostFinder:
    """Find the infrared host of every galaxy of a segmentation result.

    Configure once, call on a `~galcam.inference.SegmentationResult`. Hosts are found on
    the grid the network saw and converted to the image's own pixels and to the sky.

    Parameters
    ----------
    method : {'core', 'paper'}, optional
        ``'core'`` (default): an infrared source near the galaxy's radio centroid,
        within a search radius that grows with the galaxy's size, favouring one on
        bright radio emission (`galcam.models.find_core_host`). ``'paper'``: the peak
        of ``instance CAM * max(IR, 0)`` inside the galaxy's mask (Gupta et al. 2023,
        section 3.2.3; `galcam.models.find_host`).
    refine : bool, optional
        ``'paper'`` only: sub-pixel refinement of the peak with separable 3-point
        (Gaussian, i.e. log-parabola, or parabola) fits along x and y (default True).
        False gives the peak pixel.
    max_distance : `~astropy.units.Quantity`, optional
        ``'core'`` only: a fixed search radius (an angle, or ``u.pix`` of the network's
        grid) instead of ``max(3, search_scale x`` the galaxy's brightness-weighted rms
        radius); ``numpy.inf`` for no limit. An angle is converted with the pixel scale of
        the grid the result was made on (the working grid of a resampled image). A plain
        number (pixels) is deprecated.
    search_scale : float, optional
        ``'core'`` only: the search radius in units of the rms radius (default 1.25).
    radio_weight : float, optional
        ``'core'`` only: how much a candidate's radio brightness counts against its
        distance from the centroid (default 0.5; 0 takes the nearest source).

    Notes
    -----
    Without a qualifying infrared source (no infrared image, a host fainter than the
    infrared island threshold, or none inside the search radius) the radio centroid
    (``'core'``) or the instance-CAM peak inside the mask (``'paper'``) is used and
    flagged (``Hosts.fallback``), with score 0.
    """

    def __init__(self, *, method="core", refine=True, max_distance=None, search_scale=1.25,
                 radio_weight=0.5):
        if method not in _METHODS:
            raise ValueError(f"method: expected one of {sorted(_METHODS)}, got {method!r}")
        if not isinstance(refine, bool):
            raise ValueError(f"refine: expected True or False, got {refine!r}")
        max_distance = _search_radius(max_distance)
        for name, value in (("search_scale", search_scale), ("radio_weight", radio_weight)):
            if isinstance(value, bool) or not (isinstance(value, (int, float))
                                               and np.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: expected a non-negative finite number, got {value!r}")
        self._method = method
        self._refine = refine
        self._max_distance = max_distance
        self._search_scale = float(search_scale)
        self._radio_weight = float(radio_weight)

    refine = property(lambda self: self._refine, doc="Whether peaks are refined to sub-pixels.")

    def __repr__(self):
        return (f"HostFinder(method={self._method!r}, refine={self._refine}, "
                f"max_distance={self._max_distance}, search_scale={self._search_scale}, "
                f"radio_weight={self._radio_weight})")

    def __call__(self, result):
        """Host positions of all detections of ``result``.

        Parameters
        ----------
        result : `~galcam.inference.SegmentationResult`

        Returns
        -------
        `Hosts`
            One host per detection, in the result's order.
        """
        from galcam.models.host_rules import find_core_host, find_host

        from .result import SegmentationResult

        if not isinstance(result, SegmentationResult):
            raise TypeError(f"HostFinder expects a SegmentationResult, got {type(result).__name__}")
        max_distance = self._max_distance
        if isinstance(max_distance, u.Quantity):
            if max_distance.unit.is_equivalent(u.pix):
                max_distance = float(max_distance.to_value(u.pix))
            else:
                wcs = result.work_wcs if result.work_wcs is not None else result.wcs
                if wcs is None:
                    raise ValueError(f"max_distance={max_distance}: the result has no WCS to "
                                     "convert an angle to pixels; give it in u.pix")
                from .resample import axis_pixel_scales

                scale = float(np.mean(axis_pixel_scales(wcs)))
                max_distance = float(max_distance.to_value(u.arcsec)) / scale
        xs, ys, scores, falls = [], [], [], []
        for d in result:
            ev = d.evidence
            if ev is None:
                raise ValueError(f"detection {d.id} carries no host evidence (instance map and "
                                 "infrared channel); hosts can only be found for results made "
                                 "by WeakSegmenter")
            if self._method == "core":
                if ev.radio is None:
                    raise ValueError(f"detection {d.id}: method='core' needs the radio channel "
                                     "in the host evidence")
                peak = find_core_host(ev.mask, ev.ir, ev.radio, max_distance=max_distance,
                                      search_scale=self._search_scale,
                                      radio_weight=self._radio_weight)
            else:
                peak = find_host(ev.instance_map, ev.mask, ev.ir, refine=self._refine)
            xs.append(peak.x + ev.x0)
            ys.append(peak.y + ev.y0)
            scores.append(peak.score)
            falls.append(peak.fallback)
        xs = np.array(xs, dtype=np.float64)
        ys = np.array(ys, dtype=np.float64)
        sky = None
        if result.work_wcs is not None:
            # found on the resampled grid: through the sky back to the image's pixels
            sky = result.work_wcs.pixel_to_world(xs, ys)
            xs, ys = (np.asarray(v, dtype=np.float64) for v in result.wcs.world_to_pixel(sky))
        elif result.wcs is not None:
            sky = result.wcs.pixel_to_world(xs, ys)
        if sky is not None and sky.isscalar:
            sky = sky.reshape((1,))
        return Hosts(xs, ys, skycoord=sky, score=scores, fallback=falls,
                     meta={"host_method": _METHODS[self._method], "host_refine": self._refine})

"""Fanaroff-Riley classification by the peak-separation to extent ratio a/b.

Gupta et al. (2023, PASA, section 2.3.2) label the EMU Pilot Survey radio galaxies with
two numbers measured on each source:

* ``a``, the distance between the two emission peaks, and
* ``b``, the length of the rectangular box that just encloses the 5-sigma contour of
  the source, aligned with its major axis (``c`` is the box's width).

The class then follows from ``a / b``: FR-I below 0.45, FR-II above 0.55, FR-X in between
(the ratio is too close to the Fanaroff & Riley (1974) boundary of 0.5 for the class to be
reliable), and R ("resolved") when the source has a single peak (``a = 0``).

The paper measured ``a`` and ``b`` by eye in CARTA. This module makes the rule
reproducible, so that the simulator can label its galaxies by it and the classical
baseline finder can apply it to real images:

* the emission is the set of pixels above ``n_sigma * rms`` (inside an optional mask);
* the peaks are local maxima of the image above ``n_sigma * rms``, at least
  ``min_separation`` pixels apart (about one beam), rising at least
  ``max(prominence * rms, prominence_fraction * peak)`` above the saddle that joins them to
  a brighter peak (so that noise bumps and the clumps of a smooth lobe do not count), and
  at least ``peak_fraction`` of the brightest peak;
* ``a`` is the largest distance between two such peaks (the two lobe or jet peaks on either
  side of the core), or, with ``pairing="per-side"``, Fanaroff & Riley's (1974) distance
  between the brightest peaks on opposite sides of the centre; a single peak gives
  ``a = 0`` and class R;
* the major axis joins those two peaks (the jet axis); for a single peak it is the principal
  axis of the brightness-weighted emission;
* ``b`` is the extent of the emission along the major axis (pixel centres, plus one pixel),
  ``c`` the extent across it: the sides of the paper's rotated box.

A shared helper at the bottom of galcam's layers (see ``galcam/tests/test_layers.py``): it
imports no other galcam module, so that the simulator (datasets) and the baseline may use it.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from astropy import units as u
from astropy.table import QTable

__all__ = [
    "CLASS_NAMES",
    "FR1_MAX",
    "FR2_MIN",
    "Morphology",
    "NoEmissionError",
    "PAIRINGS",
    "classify_ab",
    "measure_ab",
]

#: The four classes of Gupta et al. (2023), in the order of their COCO category ids.
CLASS_NAMES = ("FR-I", "FR-II", "FR-X", "R")
#: a/b below this is FR-I.
FR1_MAX = 0.45
#: a/b above this is FR-II.
FR2_MIN = 0.55
#: How `measure_ab` picks the two peaks whose distance is ``a``.
PAIRINGS = ("farthest", "per-side")


class NoEmissionError(ValueError):
    """No pixel of the image is above the detection threshold, so ``a`` and ``b`` are undefined."""


def classify_ab(a, b, *, fr1_max=FR1_MAX, fr2_min=FR2_MIN):
    """Class of a radio source from its peak separation ``a`` and extent ``b``.

    Parameters
    ----------
    a : float
        Distance between the two emission peaks (any length unit, the same as ``b``);
        0 (or less) when the source has a single peak.
    b : float
        Extent of the 5-sigma emission along the major axis; must be positive.
    fr1_max, fr2_min : float, optional
        Thresholds on ``a / b``: FR-I below ``fr1_max`` (0.45), FR-II above ``fr2_min`` (0.55),
        FR-X from ``fr1_max`` to ``fr2_min`` inclusive.

    Returns
    -------
    label : str
        ``'FR-I'``, ``'FR-II'``, ``'FR-X'`` or ``'R'``.

    Raises
    ------
    ValueError
        ``b`` is not positive, ``a`` is not finite, or the thresholds are not ordered.
    """
    if isinstance(a, u.Quantity) or isinstance(b, u.Quantity):
        a, b = u.Quantity(a), u.Quantity(b)
        a, b = a.to_value(b.unit), b.value
    a, b = float(a), float(b)
    if not (0.0 < fr1_max <= fr2_min):
        raise ValueError(f"classify_ab: need 0 < fr1_max <= fr2_min, got {fr1_max}, {fr2_min}")
    if not math.isfinite(b) or b <= 0:
        raise ValueError(f"classify_ab: b must be a positive extent, got {b}")
    if not math.isfinite(a):
        raise ValueError(f"classify_ab: a must be finite, got {a}")
    if a <= 0:
        return "R"
    ratio = a / b
    if ratio < fr1_max:
        return "FR-I"
    if ratio > fr2_min:
        return "FR-II"
    return "FR-X"


@dataclass(frozen=True, eq=False)
class Morphology:
    """The a/b measurement of one radio source (all lengths in pixels).

    Attributes
    ----------
    a : float
        Distance between the two emission peaks chosen by ``pairing`` (the two farthest
        apart, or the brightest on each side of the centre; 0 for a single peak), pixels.
    b : float
        Extent of the ``n_sigma`` emission along the major axis, pixels.
    c : float
        Extent across the major axis, pixels.
    theta : float
        Direction of the major axis in the pixel frame, degrees counter-clockwise from +x,
        in [0, 180).
    center : tuple of float
        ``(x, y)`` centre of the rotated box, 0-based pixels.
    peaks : ndarray
        ``(n, 3)`` array of ``x, y, value`` of the peaks, brightest first.
    n_pixels : int
        Number of pixels above the threshold.
    label : str
        Class from `classify_ab`.
    rms, n_sigma : float
        Noise level (image units) and threshold used.
    """

    a: float
    b: float
    c: float
    theta: float
    center: tuple
    peaks: np.ndarray = field(repr=False)
    n_pixels: int
    label: str
    rms: float
    n_sigma: float

    @property
    def ratio(self):
        """``a / b``."""
        return self.a / self.b

    @property
    def n_peaks(self):
        """Number of peaks used for ``a``."""
        return len(self.peaks)

    @property
    def axis(self):
        """Unit vector ``(dx, dy)`` along the major axis."""
        t = math.radians(self.theta)
        return np.array([math.cos(t), math.sin(t)])

    @property
    def endpoints(self):
        """``(2, 2)`` array: the two ends ``(x, y)`` of the major axis of the box."""
        c = np.asarray(self.center, dtype=float)
        half = 0.5 * self.b * self.axis
        return np.array([c - half, c + half])

    def box_corners(self, pad=0.0):
        """Corners ``(4, 2)`` of the rotated box, enlarged by ``pad`` pixels on each side."""
        u_ = self.axis
        v_ = np.array([-u_[1], u_[0]])
        hb, hc = 0.5 * self.b + pad, 0.5 * self.c + pad
        c = np.asarray(self.center, dtype=float)
        return np.array(
            [
                c - hb * u_ - hc * v_,
                c + hb * u_ - hc * v_,
                c + hb * u_ + hc * v_,
                c - hb * u_ + hc * v_,
            ]
        )

    def box_mask(self, shape, pad=0.0, origin=(0, 0)):
        """Boolean image of shape ``shape``: True for pixel centres inside the rotated box.

        Parameters
        ----------
        shape : tuple of int
            ``(ny, nx)`` of the output.
        pad : float, optional
            Enlarge the box by this many pixels on every side.
        origin : tuple of int, optional
            ``(x0, y0)`` of the output's first pixel in the frame of the measurement
            (for masks on a sub-window of the measured image).
        """
        ny, nx = shape
        x0, y0 = origin
        y, x = np.mgrid[y0 : y0 + ny, x0 : x0 + nx]
        dx, dy = x - self.center[0], y - self.center[1]
        u_ = self.axis
        pu = dx * u_[0] + dy * u_[1]
        pv = -dx * u_[1] + dy * u_[0]
        return (np.abs(pu) <= 0.5 * self.b + pad) & (np.abs(pv) <= 0.5 * self.c + pad)

    def sky_position_angle(self, wcs):
        """Position angle of the major axis on the sky, east of north, in [0, 180) deg.

        Parameters
        ----------
        wcs : `~astropy.wcs.WCS`
            Celestial WCS of the measured image.
        """
        ends = self.endpoints
        sky = wcs.pixel_to_world(ends[:, 0], ends[:, 1])
        pa = sky[0].position_angle(sky[1]).to(u.deg)
        return (pa % (180 * u.deg)).to(u.deg)

    def to_dict(self):
        """Plain-Python dict of the measurement (JSON-serialisable)."""
        return {
            "a": float(self.a),
            "b": float(self.b),
            "c": float(self.c),
            "ratio": float(self.ratio),
            "theta": float(self.theta),
            "center": [float(self.center[0]), float(self.center[1])],
            "peaks": [[float(v) for v in p] for p in self.peaks],
            "n_pixels": int(self.n_pixels),
            "label": self.label,
            "rms": float(self.rms),
            "n_sigma": float(self.n_sigma),
        }

    def to_table(self):
        """One-row `~astropy.table.QTable` of the measurement (lengths in pixels)."""
        d = self.to_dict()
        row = {k: [d[k]] for k in ("label", "a", "b", "c", "ratio", "theta", "n_pixels")}
        row["n_peaks"] = [self.n_peaks]
        row["x_center"] = [d["center"][0]]
        row["y_center"] = [d["center"][1]]
        t = QTable(row)
        for name in ("a", "b", "c", "x_center", "y_center"):
            t[name].unit = u.pix
        t["theta"].unit = u.deg
        return t


def _as_2d(image):
    data = getattr(image, "data", image)
    data = np.asarray(data, dtype=float)
    if data.ndim != 2:
        raise ValueError(f"measure_ab: expected a 2-D image, got shape {data.shape}")
    return data


def _principal_axis(xs, ys, weights):
    """Direction (deg from +x, [0, 180)) of the major axis of weighted pixel positions."""
    w = np.clip(weights, 0, None) + 1e-300
    mx, my = np.average(xs, weights=w), np.average(ys, weights=w)
    cxx = np.average((xs - mx) ** 2, weights=w)
    cyy = np.average((ys - my) ** 2, weights=w)
    cxy = np.average((xs - mx) * (ys - my), weights=w)
    return math.degrees(0.5 * math.atan2(2 * cxy, cxx - cyy)) % 180.0


def _prominent_peaks(data, above, threshold, min_separation, h):
    """Local maxima above ``threshold``, ``min_separation`` apart, of height >= h."""
    from skimage.feature import peak_local_max
    from skimage.morphology import h_maxima

    work = np.where(above, data, 0.0)
    coords = peak_local_max(
        work,
        min_distance=max(1, int(math.ceil(min_separation))),
        threshold_abs=threshold,
        exclude_border=False,
    )
    if len(coords) == 0:
        return np.empty((0, 3))
    if h > 0:
        # Regional maxima that rise at least h above the saddle to any brighter maximum.
        # h_maxima works on integer images: quantise so that h is ~64 levels.
        scale = 64.0 / h
        q = np.round(np.clip(work, 0, None) * scale).astype(np.int64)
        hm = h_maxima(q, 64)
        keep = hm[coords[:, 0], coords[:, 1]] > 0
        if not keep.any():  # the global maximum is always an h-maximum; keep the brightest
            keep[np.argmax(work[coords[:, 0], coords[:, 1]])] = True
        coords = coords[keep]
    values = work[coords[:, 0], coords[:, 1]]
    order = np.argsort(-values, kind="stable")
    return np.column_stack([coords[order, 1], coords[order, 0], values[order]]).astype(float)


def _per_side_separation(peaks, axis, centre_u, min_separation, farthest):
    """``a`` by Fanaroff & Riley's definition: brightest peak on each side of the centre.

    ``peaks`` are ``(x, y, value)`` brightest first, ``axis`` the unit vector of the major
    axis, ``centre_u`` the centre's coordinate along it; ``farthest`` is the fallback.
    """
    along = peaks[:, 0] * axis[0] + peaks[:, 1] * axis[1] - centre_u
    core_zone = 0.5 * min_separation
    sides = [np.flatnonzero(along < -core_zone), np.flatnonzero(along > core_zone)]
    central = np.flatnonzero(np.abs(along) <= core_zone)
    # peaks are sorted brightest first, so the first index of each set is its brightest
    ends = [s[0] for s in sides if s.size]
    if len(ends) == 2:
        i, j = ends
    elif len(ends) == 1 and central.size:
        i, j = ends[0], central[0]
    else:
        return farthest
    return float(math.hypot(*(peaks[i, :2] - peaks[j, :2])))


def measure_ab(
    image,
    rms,
    *,
    mask=None,
    n_sigma=5.0,
    min_separation=5.0,
    peak_fraction=0.1,
    prominence=3.0,
    prominence_fraction=0.05,
    fr1_max=FR1_MAX,
    fr2_min=FR2_MIN,
    pairing="farthest",
):
    """Measure ``a``, ``b`` and the class of one radio source (Gupta et al. 2023, sec. 2.3.2).

    Parameters
    ----------
    image : array-like or `~astropy.nddata.NDData`
        2-D image ``data[y, x]`` holding the source (a noiseless model or an observed
        image). NaNs are ignored.
    rms : float or array-like
        Noise level in the image's units: a scalar, or a map of the image's shape.
    mask : array-like of bool, optional
        Pixels that belong to the source (True). Without it, every pixel above the
        threshold counts, so pass a mask when the image holds other sources.
    n_sigma : float, optional
        Threshold of the emission whose extent is ``b`` (the paper's 5 sigma).
    min_separation : float, optional
        Minimum distance between two peaks, pixels (about one beam FWHM; 5 px is 10" at
        EMU's 2"/px for its 13" x 11" beam).
    peak_fraction : float, optional
        Peaks fainter than this fraction of the brightest peak are ignored.
    prominence : float, optional
        A peak must rise at least ``prominence * rms`` above the saddle that joins it to a
        brighter peak.
    prominence_fraction : float, optional
        ... and at least this fraction of the brightest peak.
    fr1_max, fr2_min : float, optional
        Class thresholds on ``a / b`` (0.45 and 0.55), see `classify_ab`.
    pairing : {"farthest", "per-side"}, optional
        Which two peaks give ``a``. ``"farthest"`` (the default, as galcam's simulator
        labels its galaxies): the two peaks farthest apart. ``"per-side"``: Fanaroff &
        Riley's (1974) own definition, the distance between the *brightest* peaks on
        opposite sides of the source's centre (the middle of the box along the major axis
        joining the two farthest peaks); peaks within ``min_separation / 2`` of the centre
        along that axis are the core and take no side. A faint noise bump at the end of a
        diffuse FR-I jet then no longer makes it an FR-II. With peaks on one side only,
        ``a`` is measured from the brightest central peak (or, without one, falls back to
        the farthest pair).

    Returns
    -------
    morphology : `Morphology`
        ``a``, ``b``, ``c`` (pixels), major-axis direction, box centre, peaks and class.

    Raises
    ------
    NoEmissionError
        No pixel (inside ``mask``) is above ``n_sigma * rms``.
    ValueError
        The image is not 2-D, ``rms`` is not positive, or the mask does not match the image.
    """
    data = _as_2d(image)
    rms_arr = np.asarray(getattr(rms, "value", rms), dtype=float)
    if rms_arr.ndim not in (0, 2) or (rms_arr.ndim == 2 and rms_arr.shape != data.shape):
        raise ValueError(
            f"measure_ab: rms must be a scalar or a map of the image's shape {data.shape}, "
            f"got shape {rms_arr.shape}"
        )
    if not np.all(np.isfinite(rms_arr) & (rms_arr > 0)):
        raise ValueError("measure_ab: rms must be positive and finite")
    for name, value in (
        ("n_sigma", n_sigma),
        ("min_separation", min_separation),
    ):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"measure_ab: {name} must be positive, got {value}")
    if not 0 <= peak_fraction <= 1:
        raise ValueError(f"measure_ab: peak_fraction must be in [0, 1], got {peak_fraction}")
    if prominence < 0 or not 0 <= prominence_fraction <= 1:
        raise ValueError("measure_ab: prominence must be >= 0 and prominence_fraction in [0, 1]")
    if pairing not in PAIRINGS:
        raise ValueError(f"measure_ab: pairing must be one of {PAIRINGS}, got {pairing!r}")
    valid = np.isfinite(data)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != data.shape:
            raise ValueError(
                f"measure_ab: mask shape {mask.shape} does not match the image shape {data.shape}"
            )
        valid &= mask
    above = np.zeros(data.shape, dtype=bool)
    above[valid] = (
        data[valid] > (n_sigma * rms_arr)[valid]
        if rms_arr.ndim
        else data[valid] > n_sigma * rms_arr
    )
    ys, xs = np.nonzero(above)
    if len(xs) == 0:
        raise NoEmissionError(
            f"measure_ab: no pixel is above {n_sigma} x rms"
            + (" inside the mask" if mask is not None else "")
        )
    # work on the bounding box of the emission (plus a margin for the peak finder)
    y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, data.shape[0])
    x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, data.shape[1])
    sub = np.where(valid[y0:y1, x0:x1], data[y0:y1, x0:x1], 0.0)
    sub_above = above[y0:y1, x0:x1]
    rms_level = float(np.median(rms_arr[above])) if rms_arr.ndim else float(rms_arr)

    thr = n_sigma * rms_level
    brightest = float(sub[sub_above].max())
    h = max(prominence * rms_level, prominence_fraction * brightest)
    peaks = _prominent_peaks(sub, sub_above, thr, min_separation, h)
    if len(peaks):
        peaks = peaks[peaks[:, 2] >= peak_fraction * peaks[0, 2]]
        peaks[:, 0] += x0
        peaks[:, 1] += y0
    a = 0.0
    if len(peaks) >= 2:
        # a: the two most distant peaks; they also fix the direction of the jet axis
        d = peaks[:, None, :2] - peaks[None, :, :2]
        d2 = (d**2).sum(-1)
        i, j = np.unravel_index(np.argmax(d2), d2.shape)
        a = float(math.sqrt(d2[i, j]))
        dx, dy = peaks[j, :2] - peaks[i, :2]
        theta = math.degrees(math.atan2(dy, dx)) % 180.0
    else:
        theta = _principal_axis(xs, ys, data[ys, xs])
    t = math.radians(theta)
    u_ = np.array([math.cos(t), math.sin(t)])
    pu = xs * u_[0] + ys * u_[1]
    pv = -xs * u_[1] + ys * u_[0]
    b = float(pu.max() - pu.min() + 1.0)
    c = float(pv.max() - pv.min() + 1.0)
    mu, mv = 0.5 * (pu.max() + pu.min()), 0.5 * (pv.max() + pv.min())
    if pairing == "per-side" and len(peaks) >= 2:
        a = _per_side_separation(peaks, u_, mu, min_separation, a)
    center = (float(mu * u_[0] - mv * u_[1]), float(mu * u_[1] + mv * u_[0]))
    label = classify_ab(a, b, fr1_max=fr1_max, fr2_min=fr2_min)
    return Morphology(
        a=a,
        b=b,
        c=c,
        theta=float(theta),
        center=center,
        peaks=peaks,
        n_pixels=int(len(xs)),
        label=label,
        rms=rms_level,
        n_sigma=float(n_sigma),
    )

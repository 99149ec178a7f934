"""Scene generation for the simulator: galaxies, unrelated sources, artefacts, noise, IR sky.

`simulate_scene` draws one radio image (a 210 x 210 px cutout or a mosaic) and the
matching WISE-W1-like infrared image from a set of independent random streams, and returns
the noiseless models, the observed images and the truth of each galaxy. The public
entry points are in `galcam.datasets.simulate`.
"""

import logging
import math
from dataclasses import dataclass, field, fields, replace

import numpy as np
from astropy.convolution import Gaussian2DKernel, convolve_fft
from scipy.ndimage import gaussian_filter

from ..morphology import CLASS_NAMES, NoEmissionError, measure_ab
from ._components import (
    GaussianSet,
    beam_covariance,
    build_galaxy,
    draw_profile_style,
    render_gaussians,
)

__all__ = ["Realism", "SimulatedGalaxy", "simulate_scene", "PAPER_CLASS_COUNTS"]

log = logging.getLogger(__name__)

#: Class counts of the paper's data set (Gupta et al. 2023, sec. 2.3.2).
PAPER_CLASS_COUNTS = {"FR-I": 328, "FR-II": 128, "FR-X": 110, "R": 196}

# EMU Pilot Survey footprint (Norris et al. 2021; Gupta et al. 2023 sec. 2.1)
EMU_PS_RA = (301.0, 336.0)
EMU_PS_DEC = (-63.0, -48.0)
W1_MAGZP = 20.5  # AllWISE W1 photometric zero point (Vega mag for 1 DN)
IR_PSF_FWHM = 6.1  # arcsec, W1
IR_NOISE_DN = (0.3, 0.5)  # per-pixel noise of AllWISE W1 atlas images, DN
IR_SKY_DN = (5.0, 15.0)


_REALISM_DEFAULTS = {
    "artefacts": 0.7,
    "crowding": 0.3,
    "compact_pairs": 0.3,
    "overlapping": 0.1,
    "bent_tails": 0.25,
    "one_sided_jets": 0.2,
    "detached_lobes": 0.35,
    "faint_plumes": 0.3,
    "ir_confusion": 0.35,
    "blanked_edges": 0.06,
}


@dataclass(frozen=True)
class Realism:
    """Which imperfections of real EMU/WISE images the simulator adds, and how often.

    Each effect is a probability in [0, 1] (per image, per galaxy or per eligible source,
    see below); ``True`` means its default probability and ``False`` switches it off.
    ``Realism()`` has every effect on with its default; ``Realism.off()`` gives clean images.

    Parameters
    ----------
    artefacts : float or bool
        Per source brighter than 150 sigma: residual sidelobe spokes (six radial spokes at
        the beam's width, oscillating and fading with radius, 0.3-1 % of the peak) and a
        negative bowl around it (missing short spacings). Default 0.7.
    crowding : float or bool
        Per image: 2.5 times the density of unrelated compact sources. Default 0.3.
    compact_pairs : float or bool
        Per image: one or two chance-aligned pairs of similar unrelated compact sources
        15"-60" apart, which look like a double. Default 0.3.
    overlapping : float or bool
        Per image: one more galaxy that touches or overlaps the first. Default 0.1.
    bent_tails : float or bool
        Per galaxy (FR-I, FR-II, FR-X): jets bent to one side (wide/narrow-angle tails,
        head-tails). Default 0.25.
    one_sided_jets : float or bool
        Per galaxy: a Doppler-dimmed counter-jet (FR-I: 4-25 % of the jet) or lobe
        (FR-II/FR-X: 30-60 %). Default 0.2.
    detached_lobes : float or bool
        Per FR-II/FR-X galaxy: lobes with no bridge and a core below 1 %, so the galaxy is
        two or three separate islands. Default 0.35.
    faint_plumes : float or bool
        Per galaxy: diffuse emission 1.5-4 sigma bright around or beyond the source.
        Default 0.3.
    ir_confusion : float or bool
        Per galaxy: one of a brighter IR neighbour 5"-20" from the host, a faint host
        (W1 17-18.5 mag), or a host 1.5"-5" off the radio core. Default 0.35.
    blanked_edges : float or bool
        Per image: a NaN-blanked strip along one edge (mosaic border). Default 0.06.
    """

    artefacts: float = _REALISM_DEFAULTS["artefacts"]
    crowding: float = _REALISM_DEFAULTS["crowding"]
    compact_pairs: float = _REALISM_DEFAULTS["compact_pairs"]
    overlapping: float = _REALISM_DEFAULTS["overlapping"]
    bent_tails: float = _REALISM_DEFAULTS["bent_tails"]
    one_sided_jets: float = _REALISM_DEFAULTS["one_sided_jets"]
    detached_lobes: float = _REALISM_DEFAULTS["detached_lobes"]
    faint_plumes: float = _REALISM_DEFAULTS["faint_plumes"]
    ir_confusion: float = _REALISM_DEFAULTS["ir_confusion"]
    blanked_edges: float = _REALISM_DEFAULTS["blanked_edges"]

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (bool, np.bool_)):
                value = _REALISM_DEFAULTS[f.name] if value else 0.0
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"Realism.{f.name} must be a probability or a bool, got {value!r}"
                ) from None
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Realism.{f.name} must be in [0, 1], got {value}")
            object.__setattr__(self, f.name, value)

    @classmethod
    def off(cls):
        """Every effect switched off (clean images)."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    @classmethod
    def effects(cls):
        """Names of the effects."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def coerce(cls, realism):
        """A `Realism` from ``True``/``False``/a `Realism`/a dict of effect -> probability."""
        if isinstance(realism, cls):
            return realism
        if isinstance(realism, (bool, np.bool_)):
            return cls() if realism else cls.off()
        if isinstance(realism, dict):
            unknown = set(realism) - set(cls.effects())
            if unknown:
                raise ValueError(
                    f"realism: unknown effect(s) {sorted(unknown)}; "
                    f"known: {', '.join(cls.effects())}"
                )
            return cls(**realism)
        raise TypeError(
            f"realism must be a bool, a dict or a Realism, got {type(realism).__name__}"
        )

    def replace(self, **changes):
        """A copy with some effects changed."""
        return replace(self, **changes)

    def to_dict(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, eq=False)
class SimulatedGalaxy:
    """Truth of one simulated radio galaxy (pixel quantities in the radio image's frame).

    Attributes
    ----------
    label : str
        Class measured by `galcam.morphology.measure_ab` on the noiseless beam-convolved
        model (the class of record).
    intended_label : str
        Class the components were drawn for.
    morphology : `~galcam.morphology.Morphology`
        The a/b measurement on the model (image frame).
    window : tuple of int
        ``(y0, y1, x0, x1)`` of the image region holding ``model`` and ``mask``.
    model : ndarray
        Noiseless beam-convolved model of this galaxy on ``window``, Jy/beam.
    mask : ndarray of bool
        Truth mask on ``window``: pixels above 3 sigma inside the (1 px padded) 5-sigma box,
        where this galaxy's model is above 1 sigma and brighter than every other source.
    core_xy, host_xy : tuple of float
        Radio core and infrared host, 0-based radio pixels.
    host_ir_xy : tuple of float
        Host in 0-based pixels of the infrared image.
    host_w1_mag : float
        W1 (Vega) magnitude of the host.
    peak, flux : float
        Peak (Jy/beam) and total flux (Jy) of the model.
    snr : float
        Peak over the image noise.
    las_intrinsic : float
        Size the components were drawn for, arcsec.
    components : tuple
        ``(kind, flux_Jy, n_gaussians)`` of each component.
    flags : dict
        Realism effects applied to this galaxy (and ``off_centre``/``truncated``).
    tries : int
        Draws needed to obtain the intended class (or ``max_tries`` when it was not).
    """

    label: str
    intended_label: str
    morphology: object
    window: tuple
    model: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    core_xy: tuple
    host_xy: tuple
    host_ir_xy: tuple
    host_w1_mag: float
    peak: float
    flux: float
    snr: float
    las_intrinsic: float
    components: tuple = field(repr=False)
    flags: dict = field(repr=False)
    tries: int = 1

    def full_mask(self, shape):
        """The truth mask on an image of ``shape``."""
        out = np.zeros(shape, dtype=bool)
        y0, y1, x0, x1 = self.window
        out[y0:y1, x0:x1] = self.mask
        return out

    def full_model(self, shape):
        """The model on an image of ``shape``, Jy/beam."""
        out = np.zeros(shape, dtype=np.float32)
        y0, y1, x0, x1 = self.window
        out[y0:y1, x0:x1] = self.model
        return out


GALAXY_FLAGS = (
    "bent_tail",
    "one_sided_jet",
    "detached_lobes",
    "faint_plume",
    "overlapping",
    "off_centre",
    "truncated",
    "ir_bright_neighbour",
    "ir_faint_host",
    "ir_host_offset",
)
IMAGE_FLAGS = ("artefacts", "crowded", "compact_pairs", "blanked_edges")

# new streams go last: adding one leaves the first ones (and so the default images) unchanged
STREAMS = ("layout", "galaxies", "compact", "artefacts", "noise", "ir", "beam", "profiles")


@dataclass(frozen=True)
class SceneConfig:
    """Instrument and population parameters shared by cutouts and mosaics."""

    pixel_scale: float = 2.0  # arcsec / px
    ir_pixel_scale: float = 1.375
    beam_major: float = 13.0  # arcsec FWHM
    beam_minor: float = 11.0
    beam_pa: float | None = None  # deg; None: drawn per image
    beam_scale: tuple = (1.0, 1.0)  # per-image beam size factor, log-uniform in this range
    rms_range: tuple = (25e-6, 35e-6)  # Jy/beam
    class_weights: tuple = tuple(PAPER_CLASS_COUNTS[c] for c in CLASS_NAMES)
    snr_range: tuple = (6.0, 3000.0)
    max_tries: int = 6
    compact_density: float = 1500.0  # sources / deg^2 above 0.1 mJy
    second_galaxy: float = 0.08  # probability of a second (separate) galaxy in a cutout
    off_centre: float = 0.2
    profiles: str = "gaussian"  # source models: 'gaussian' (default) or 'varied'


def _class_weights(spec):
    if isinstance(spec, str):
        if spec == "paper":
            return tuple(PAPER_CLASS_COUNTS[c] for c in CLASS_NAMES)
        if spec == "balanced":
            return (1.0, 1.0, 1.0, 1.0)
        raise ValueError(f"class_balance must be 'paper', 'balanced' or a dict, got {spec!r}")
    if isinstance(spec, dict):
        unknown = set(spec) - set(CLASS_NAMES)
        if unknown:
            raise ValueError(
                f"class_balance: unknown class(es) {sorted(unknown)}; use {CLASS_NAMES}"
            )
        w = tuple(float(spec.get(c, 0.0)) for c in CLASS_NAMES)
    else:
        raise TypeError(
            f"class_balance must be 'paper', 'balanced' or a dict, got {type(spec).__name__}"
        )
    if any(v < 0 or not math.isfinite(v) for v in w) or sum(w) <= 0:
        raise ValueError(f"class_balance weights must be >= 0 with a positive sum, got {spec}")
    return w


def _draw_las(rng, klass):
    """Intrinsic largest angular size, arcsec."""
    if klass == "R":
        return rng.uniform(20.0, 60.0)
    median = 130.0 if klass == "FR-I" else 110.0
    return float(np.clip(10 ** rng.normal(math.log10(median), 0.2), 40.0, 390.0))


def _draw_snr(rng, cfg):
    lo, hi = cfg.snr_range
    return float(np.clip(10 ** rng.normal(1.75, 0.5), lo, hi))


def _window(gs, kcov, shape, nsig=4.5):
    x0, x1, y0, y1 = gs.extent(kcov, nsig)
    ny, nx = shape
    xa, xb = max(0, int(math.floor(x0))), min(nx, int(math.ceil(x1)) + 1)
    ya, yb = max(0, int(math.floor(y0))), min(ny, int(math.ceil(y1)) + 1)
    if xa >= xb or ya >= yb:
        return None
    return (ya, yb, xa, xb)


def _render_window(gs, kcov, win, floor):
    ya, yb, xa, xb = win
    return render_gaussians((yb - ya, xb - xa), gs, kcov, origin=(xa, ya), floor=floor)


@dataclass
class _GalaxyPlan:
    klass: str
    las_arcsec: float
    x: float
    y: float
    angle: float
    snr: float
    flags: dict


def _galaxy_model(rng, plan, cfg, kcov, shape, rms, prng=None):
    """Draw components until the measured class is the intended one (or tries run out).

    ``prng`` (``profiles='varied'``) draws each try's profile choices.
    """
    las_px = plan.las_arcsec / cfg.pixel_scale
    min_las = 1.5 * cfg.beam_major  # resolved: 5-sigma extent of at least 1.5 beams
    first_label = None
    for attempt in range(1, cfg.max_tries + 1):
        comps = build_galaxy(
            rng,
            plan.klass,
            las_px,
            bent=plan.flags["bent_tail"],
            one_sided=plan.flags["one_sided_jet"],
            detached=plan.flags["detached_lobes"],
            plume_on=plan.flags["faint_plume"],
            style=None if prng is None else draw_profile_style(prng),
        )
        main = [
            (k, g.transformed(plan.angle, plan.x, plan.y)) for k, g in comps if k != "faint_plume"
        ]
        faint = [
            (k, g.transformed(plan.angle, plan.x, plan.y)) for k, g in comps if k == "faint_plume"
        ]
        gs = GaussianSet.empty()
        for _, g in main:
            gs = gs + g
        win = _window(gs, kcov, shape)
        if win is None:
            continue
        unit_model = _render_window(gs, kcov, win, floor=1e-6 * gs.total_flux)
        peak = unit_model.max()
        if not peak > 0:
            continue
        scale = plan.snr * rms / peak
        named = [(k, g.scaled(scale)) for k, g in main]
        model = unit_model * scale
        if faint:
            # each plume Gaussian peaks at 0.8-2 sigma; together 1.5-4 sigma
            fg = faint[0][1]
            kdet = kcov[0] * kcov[1] - kcov[2] ** 2
            det = (fg.cxx + kcov[0]) * (fg.cyy + kcov[1]) - (fg.cxy + kcov[2]) ** 2
            target = rng.uniform(0.8, 2.0) * rms
            fg = GaussianSet(fg.x, fg.y, target * np.sqrt(det / kdet), fg.cxx, fg.cyy, fg.cxy)
            gs_all = gs.scaled(scale) + fg
            win_all = _window(gs_all, kcov, shape)
            ya, yb, xa, xb = win
            model_all = _render_window(fg, kcov, win_all, floor=1e-3 * rms)
            a0, a1, b0, b1 = win_all
            model_all[ya - a0 : yb - a0, xa - b0 : xb - b0] += model
            model, win = model_all, win_all
            named.append(("faint_plume", fg))
        else:
            gs_all = gs.scaled(scale)
        try:
            morph = measure_ab(model, rms)
        except NoEmissionError:
            plan.snr = min(2.0 * plan.snr, cfg.snr_range[1])
            continue
        if first_label is None:
            first_label = morph.label
        resolved = morph.b * cfg.pixel_scale >= min_las
        if (morph.label == plan.klass and resolved) or (attempt == cfg.max_tries and resolved):
            break
        # a source too faint to show its class (or to be resolved at 5 sigma) would not be
        # in a catalogue of extended radio galaxies: draw again, a little brighter
        plan.snr = min((1.3 if resolved else 2.0) * plan.snr, cfg.snr_range[1])
    else:  # every draw fell outside the image or stayed unresolved
        return None
    ya, yb, xa, xb = win
    morph = replace(
        morph,
        center=(morph.center[0] + xa, morph.center[1] + ya),
        peaks=morph.peaks + np.array([xa, ya, 0.0]) if len(morph.peaks) else morph.peaks,
    )
    return {
        "gs": gs_all,
        "named": named,
        "model": model,
        "window": win,
        "morph": morph,
        "tries": attempt,
        "first_label": first_label,
    }


def _place_cutout_galaxies(rng, cfg, realism, shape, weights):
    """Plans for the galaxies of one cutout: a main one, sometimes companions."""
    ny, nx = shape
    cx, cy = (nx - 1) / 2, (ny - 1) / 2
    plans = []
    p = np.asarray(weights) / np.sum(weights)

    def new_plan(x, y, klass=None, las=None):
        klass = klass or CLASS_NAMES[rng.choice(4, p=p)]
        las = las or _draw_las(rng, klass)
        return _GalaxyPlan(klass, las, x, y, rng.uniform(0, math.pi), _draw_snr(rng, cfg), {})

    off = rng.uniform() < cfg.off_centre
    if off:
        x, y = rng.uniform(12, nx - 13), rng.uniform(12, ny - 13)
    else:
        x, y = cx + rng.normal(0, 2.0), cy + rng.normal(0, 2.0)
    plans.append(new_plan(x, y))
    plans[0].flags["off_centre"] = bool(math.hypot(x - cx, y - cy) > 15)
    # a separate companion (base), or a touching/overlapping one (realism)
    want_overlap = rng.uniform() < realism.overlapping
    want_second = rng.uniform() < cfg.second_galaxy
    extra = []
    if want_second:
        extra.append(False)
        if rng.uniform() < 0.25:
            extra.append(False)
    if want_overlap:
        extra.append(True)
    for touching in extra:
        for _ in range(30):
            klass = CLASS_NAMES[rng.choice(4, p=p)]
            las = min(_draw_las(rng, klass), 200.0)
            r_new = 0.5 * las / cfg.pixel_scale
            if touching:
                ref = plans[0]
                r_ref = 0.5 * ref.las_arcsec / cfg.pixel_scale
                d = (r_ref + r_new) * rng.uniform(0.45, 0.95)
                ang = rng.uniform(0, 2 * math.pi)
                x, y = ref.x + d * math.cos(ang), ref.y + d * math.sin(ang)
            else:
                x, y = rng.uniform(12, nx - 13), rng.uniform(12, ny - 13)
            if not (8 <= x <= nx - 9 and 8 <= y <= ny - 9):
                continue
            clear = all(
                math.hypot(x - q.x, y - q.y) > (0.5 * q.las_arcsec / cfg.pixel_scale + r_new + 4)
                for q in (plans if not touching else plans[1:])
            )
            if clear:
                pl = new_plan(x, y, klass, las)
                pl.flags["overlapping"] = bool(touching)
                pl.flags["off_centre"] = True
                if touching:
                    plans[0].flags["overlapping"] = True
                plans.append(pl)
                break
    return plans


def _place_mosaic_galaxies(rng, cfg, realism, shape, n, weights):
    ny, nx = shape
    p = np.asarray(weights) / np.sum(weights)
    plans = []
    for _ in range(n):
        klass = CLASS_NAMES[rng.choice(4, p=p)]
        las = _draw_las(rng, klass)
        r_new = 0.5 * las / cfg.pixel_scale
        touching = bool(plans) and rng.uniform() < realism.overlapping
        for _ in range(50):
            if touching:
                ref = plans[rng.integers(len(plans))]
                d = (0.5 * ref.las_arcsec / cfg.pixel_scale + r_new) * rng.uniform(0.45, 0.95)
                ang = rng.uniform(0, 2 * math.pi)
                x, y = ref.x + d * math.cos(ang), ref.y + d * math.sin(ang)
                if not (12 <= x <= nx - 13 and 12 <= y <= ny - 13):
                    continue
                ok = True
            else:
                x, y = rng.uniform(12, nx - 13), rng.uniform(12, ny - 13)
                ok = all(
                    math.hypot(x - q.x, y - q.y) > 0.5 * q.las_arcsec / cfg.pixel_scale + r_new + 4
                    for q in plans
                )
            if ok:
                pl = _GalaxyPlan(klass, las, x, y, rng.uniform(0, math.pi), _draw_snr(rng, cfg), {})
                pl.flags["overlapping"] = bool(touching)
                pl.flags["off_centre"] = False
                if touching:
                    ref.flags["overlapping"] = True
                plans.append(pl)
                break
    return plans


def _compact_sources(rng, cfg, realism, shape, area_deg2, rms, crowded, pairs):
    """Unrelated compact radio sources: Euclidean-ish counts, mostly unresolved."""
    ny, nx = shape
    smin, smax = 0.03e-3, 200e-3  # Jy
    slope = 0.6  # N(>S) ~ S^-0.6 (sub-mJy counts flatten below Euclidean 1.5)
    density = cfg.compact_density * (smin / 0.1e-3) ** (-slope)
    if crowded:
        density *= 2.5
    n = rng.poisson(density * area_deg2)
    u_ = rng.uniform(0, 1, n)
    flux = smin * (1 - u_ * (1 - (smax / smin) ** (-slope))) ** (-1 / slope)
    x = rng.uniform(-5, nx + 4, n)
    y = rng.uniform(-5, ny + 4, n)
    resolved = rng.uniform(0, 1, n) < 0.2
    smaj = np.where(resolved, rng.uniform(1.0, 4.0, n) / cfg.pixel_scale, 0.3)
    smin_ = smaj * np.where(resolved, rng.uniform(0.4, 1.0, n), 1.0)
    gs = GaussianSet.make(x, y, flux, smaj, smin_, rng.uniform(0, math.pi, n))
    n_pairs = 0
    if pairs:
        n_pairs = 1 + int(rng.uniform() < 0.4)
        for _ in range(n_pairs):
            f1 = 10 ** rng.uniform(math.log10(10 * rms), math.log10(300 * rms))
            f2 = f1 * rng.uniform(0.5, 1.0)
            sep = rng.uniform(15, 60) / cfg.pixel_scale
            ang = rng.uniform(0, math.pi)
            xc, yc = rng.uniform(10, nx - 11), rng.uniform(10, ny - 11)
            dx, dy = 0.5 * sep * math.cos(ang), 0.5 * sep * math.sin(ang)
            gs = gs + GaussianSet.make(
                [xc - dx, xc + dx], [yc - dy, yc + dy], [f1, f2], 0.3, 0.3, 0.0
            )
    return gs


def _spokes(shape, x0, y0, amp, r0, wavelength, phase, angles, width, core_r):
    """Residual sidelobe pattern around (x0, y0): radial spokes, oscillating and fading."""
    ny, nx = shape
    rad = int(min(4 * r0, max(nx, ny)))
    xa, xb = max(0, int(x0) - rad), min(nx, int(x0) + rad + 1)
    ya, yb = max(0, int(y0) - rad), min(ny, int(y0) + rad + 1)
    if xa >= xb or ya >= yb:
        return None
    y, x = np.mgrid[ya:yb, xa:xb]
    dx, dy = x - x0, y - y0
    r = np.hypot(dx, dy)
    pattern = np.zeros(r.shape)
    for a in angles:  # each line through the source makes two opposite spokes
        d = -dx * math.sin(a) + dy * math.cos(a)
        pattern += np.exp(-0.5 * (d / width) ** 2)
    env = (
        np.exp(-r / r0)
        * np.cos(2 * np.pi * r / wavelength + phase)
        * (1 - np.exp(-0.5 * (r / core_r) ** 2))
    )
    return (ya, yb, xa, xb), amp * env * pattern


def _bowl(shape, x0, y0, depth, sigma):
    ny, nx = shape
    rad = int(4 * sigma)
    xa, xb = max(0, int(x0) - rad), min(nx, int(x0) + rad + 1)
    ya, yb = max(0, int(y0) - rad), min(ny, int(y0) + rad + 1)
    if xa >= xb or ya >= yb:
        return None
    y, x = np.mgrid[ya:yb, xa:xb]
    return (ya, yb, xa, xb), -depth * np.exp(-0.5 * ((x - x0) ** 2 + (y - y0) ** 2) / sigma**2)


def _noise(rng, shape, kernel, rms):
    white = rng.standard_normal(shape)
    field_ = convolve_fft(white, kernel, boundary="wrap", normalize_kernel=False, allow_huge=True)
    return field_ * (rms / field_.std())


def _blank_edge(rng, shape, keep_points):
    """Mask of a NaN-blanked strip along one edge that spares ``keep_points`` (+10 px)."""
    ny, nx = shape
    side = rng.integers(4)
    y, x = np.mgrid[0:ny, 0:nx]
    # distance into the image from the chosen edge
    dist = (x, nx - 1 - x, y, ny - 1 - y)[side].astype(float)
    along = (y, y, x, x)[side].astype(float)
    tilt = rng.uniform(-0.15, 0.15)
    limit = min(
        [
            (kx, nx - 1 - kx, ky, ny - 1 - ky)[side] - 10 - abs(tilt) * max(nx, ny)
            for kx, ky in keep_points
        ]
        + [0.3 * (nx if side < 2 else ny)]
    )
    if limit < 4:
        return None
    depth = rng.uniform(4, limit)
    return dist < depth + tilt * (along - along.mean())


def _ir_scene(rng, cfg, shape_ir, area_arcmin2, hosts, realism_rng_flags):
    """WISE-W1-like image in DN: sky, correlated noise, stars, field galaxies, hosts."""
    ny, nx = shape_ir
    ps = cfg.ir_pixel_scale
    psf_sig = IR_PSF_FWHM / 2.3548 / ps
    kcov = (psf_sig**2, psf_sig**2, 0.0)
    # field counts: ~5 per arcmin^2 brighter than W1 = 18 (AllWISE), dN/dm ~ 10^(0.32 m)
    mmin, mmax, slope = 10.0, 18.8, 0.32
    n_all = 5.0 * area_arcmin2 * 10 ** (slope * (mmax - 18.0))
    n = rng.poisson(n_all)
    u_ = rng.uniform(0, 1, n)
    lo, hi = 10 ** (slope * mmin), 10 ** (slope * mmax)
    mag = np.log10(lo + u_ * (hi - lo)) / slope
    x = rng.uniform(-5, nx + 4, n)
    y = rng.uniform(-5, ny + 4, n)
    star = rng.uniform(0, 1, n) < np.where(mag < 15, 0.35, 0.12)
    size = np.where(star, 0.0, rng.uniform(0.8, 3.0, n) * 10 ** (-0.15 * (mag - 15))) / ps
    size = np.minimum(size, 8.0 / ps)
    q = rng.uniform(0.4, 1.0, n)
    flux = 10 ** (-0.4 * (mag - W1_MAGZP))
    gs = GaussianSet.make(
        x, y, flux, np.maximum(size, 0.05), np.maximum(size * q, 0.05), rng.uniform(0, math.pi, n)
    )
    host_mags = []
    for hx, hy, faint, neighbour in hosts:
        m = rng.uniform(17.0, 18.5) if faint else rng.uniform(14.0, 17.0)
        host_mags.append(m)
        s = rng.uniform(1.5, 3.5) * 10 ** (-0.1 * (m - 15)) / ps
        gs = gs + GaussianSet.make(
            hx,
            hy,
            10 ** (-0.4 * (m - W1_MAGZP)),
            s,
            s * rng.uniform(0.6, 1.0),
            rng.uniform(0, math.pi),
        )
        if neighbour:
            mn = m - rng.uniform(0.5, 3.0)
            d = rng.uniform(5.0, 20.0) / ps
            a = rng.uniform(0, 2 * math.pi)
            sn = 0.05 if rng.uniform() < 0.4 else rng.uniform(1.5, 4.0) / ps
            gs = gs + GaussianSet.make(
                hx + d * math.cos(a),
                hy + d * math.sin(a),
                10 ** (-0.4 * (mn - W1_MAGZP)),
                sn,
                sn,
                0.0,
            )
    noise_dn = rng.uniform(*IR_NOISE_DN)
    sky = rng.uniform(*IR_SKY_DN)
    img = render_gaussians(shape_ir, gs, kcov, norm="pixel", floor=0.02 * noise_dn)
    # extended PSF wings of the brighter sources (10 % of the flux at 3x the core width)
    bright = gs.flux > 10 ** (-0.4 * (15.5 - W1_MAGZP))
    if bright.any():
        wing = GaussianSet(
            gs.x[bright],
            gs.y[bright],
            0.1 * gs.flux[bright],
            gs.cxx[bright],
            gs.cyy[bright],
            gs.cxy[bright],
        )
        img -= render_gaussians(shape_ir, wing, kcov, norm="pixel", floor=0.02 * noise_dn)
        img = render_gaussians(
            shape_ir,
            wing,
            (9 * kcov[0], 9 * kcov[1], 0.0),
            norm="pixel",
            floor=0.02 * noise_dn,
            out=img,
        )
    white = rng.standard_normal(shape_ir)
    corr = gaussian_filter(white, 0.8, mode="wrap")
    noise = corr * (noise_dn / corr.std())
    gy, gx = np.mgrid[0:ny, 0:nx]
    grad = rng.normal(0, 0.2) * (gx / nx - 0.5) + rng.normal(0, 0.2) * (gy / ny - 0.5)
    return (img + noise + sky + grad).astype(np.float32), host_mags, noise_dn, sky


def _image_beam(cfg, rng):
    """The configuration with this image's beam: ``beam_scale`` drawn log-uniformly.

    Both axes are multiplied by the same factor, so the beam keeps its shape. A range of
    zero width does not use ``rng``; a factor of 1 returns the configuration unchanged.
    """
    lo, hi = cfg.beam_scale
    factor = lo if hi <= lo else math.exp(rng.uniform(math.log(lo), math.log(hi)))
    if factor == 1.0:
        return cfg
    return replace(cfg, beam_major=cfg.beam_major * factor, beam_minor=cfg.beam_minor * factor,
                   beam_scale=(factor, factor))


def simulate_scene(seq, shape, cfg, realism, *, mode="cutout", n_galaxies=None, weights=None):
    """Simulate one radio image and its IR counterpart from the seed sequence ``seq``.

    Returns a dict with the radio data, IR data, galaxies, noise and flags; the caller
    adds the WCS and packs the result.
    """
    streams = dict(zip(STREAMS, (np.random.default_rng(s) for s in seq.spawn(len(STREAMS)))))
    lay = streams["layout"]
    ny, nx = shape
    cfg = _image_beam(cfg, streams["beam"])
    weights = weights if weights is not None else cfg.class_weights
    rms = lay.uniform(*cfg.rms_range)
    bpa = lay.uniform(-90, 90) if cfg.beam_pa is None else float(cfg.beam_pa)
    bmaj_px, bmin_px = cfg.beam_major / cfg.pixel_scale, cfg.beam_minor / cfg.pixel_scale
    kcov = beam_covariance(bmaj_px, bmin_px, bpa)
    # sky position of the image centre, uniform on the sphere inside the EMU-PS footprint
    ra = lay.uniform(*EMU_PS_RA)
    sd = lay.uniform(math.sin(math.radians(EMU_PS_DEC[0])), math.sin(math.radians(EMU_PS_DEC[1])))
    dec = math.degrees(math.asin(sd))
    img_flags = {
        "crowded": bool(lay.uniform() < realism.crowding),
        "compact_pairs": bool(lay.uniform() < realism.compact_pairs),
        "blanked_edges": False,
        "artefacts": False,
    }
    want_blank = lay.uniform() < realism.blanked_edges
    if mode == "cutout":
        plans = _place_cutout_galaxies(lay, cfg, realism, shape, weights)
    else:
        plans = _place_mosaic_galaxies(lay, cfg, realism, shape, n_galaxies, weights)
    grng = streams["galaxies"]
    prng = streams["profiles"] if cfg.profiles == "varied" else None
    galaxies = []
    total = np.zeros(shape)
    for plan in plans:
        f = plan.flags
        extended = plan.klass != "R"
        f["bent_tail"] = bool(grng.uniform() < realism.bent_tails and extended)
        f["one_sided_jet"] = bool(grng.uniform() < realism.one_sided_jets and extended)
        f["detached_lobes"] = bool(
            grng.uniform() < realism.detached_lobes and plan.klass in ("FR-II", "FR-X")
        )
        f["faint_plume"] = bool(grng.uniform() < realism.faint_plumes)
        conf = grng.uniform() < realism.ir_confusion
        kind = grng.integers(3)
        f["ir_bright_neighbour"] = bool(conf and kind == 0)
        f["ir_faint_host"] = bool(conf and kind == 1)
        f["ir_host_offset"] = bool(conf and kind == 2)
        res = _galaxy_model(grng, plan, cfg, kcov, shape, rms, prng=prng)
        if res is None:
            continue
        off = (0.0, 0.0)
        if f["ir_host_offset"]:
            d = grng.uniform(1.5, 5.0) / cfg.pixel_scale
            a = grng.uniform(0, 2 * math.pi)
            off = (d * math.cos(a), d * math.sin(a))
        host = (
            float(np.clip(plan.x + off[0], 0, nx - 1)),
            float(np.clip(plan.y + off[1], 0, ny - 1)),
        )
        res.update(plan=plan, host=host)
        ya, yb, xa, xb = res["window"]
        total[ya:yb, xa:xb] += res["model"]
        galaxies.append(res)
    # unrelated compact sources
    area_deg2 = nx * ny * (cfg.pixel_scale / 3600) ** 2
    comp = _compact_sources(
        streams["compact"],
        cfg,
        realism,
        shape,
        area_deg2,
        rms,
        img_flags["crowded"],
        img_flags["compact_pairs"],
    )
    compact_model = render_gaussians(shape, comp, kcov, floor=1e-3 * rms)
    total += compact_model
    # artefacts around bright sources
    arng = streams["artefacts"]
    artefacts = np.zeros(shape)
    bright = [
        (g["morph"].peaks[0][0], g["morph"].peaks[0][1], g["model"].max(), g["morph"].b)
        for g in galaxies
        if len(g["morph"].peaks)
    ]
    kdet = kcov[0] * kcov[1] - kcov[2] ** 2
    cpk = comp.flux * np.sqrt(
        kdet / ((comp.cxx + kcov[0]) * (comp.cyy + kcov[1]) - (comp.cxy + kcov[2]) ** 2)
    )
    for i in np.nonzero(cpk > 150 * rms)[0]:
        bright.append((comp.x[i], comp.y[i], cpk[i], 3.0))
    bright.sort(key=lambda t: -t[2])
    base_angle = arng.uniform(0, math.pi / 3)
    wavelength = arng.uniform(10, 18)
    width = math.sqrt(min(kcov[0], kcov[1]))
    for bx, by, bpeak, bsize in bright[: 3 if mode == "cutout" else 10**6]:
        draw = arng.uniform(0, 1, 6)
        if bpeak < 150 * rms or draw[0] >= realism.artefacts:
            continue
        img_flags["artefacts"] = True
        angles = base_angle + np.arange(3) * math.pi / 3
        sp = _spokes(
            shape,
            bx,
            by,
            bpeak * (0.003 + 0.007 * draw[1]),
            15 + 20 * draw[2],
            wavelength,
            2 * math.pi * draw[3],
            angles,
            width,
            1.5 * bmaj_px,
        )
        if sp is not None:
            (ya, yb, xa, xb), v = sp
            artefacts[ya:yb, xa:xb] += v
        bw = _bowl(
            shape, bx, by, min((1 + 3 * draw[4]) * rms, 0.003 * bpeak), max(10.0, 0.5 * bsize)
        )
        if bw is not None:
            (ya, yb, xa, xb), v = bw
            artefacts[ya:yb, xa:xb] += v
    # noise
    kernel = _beam_kernel(bmaj_px, bmin_px, bpa)
    noise = _noise(streams["noise"], shape, kernel, rms)
    observed = total + artefacts + noise
    blank = None
    if want_blank:
        keep = [g["host"] for g in galaxies] or [((nx - 1) / 2, (ny - 1) / 2)]
        blank = (
            _blank_edge(lay, shape, keep)
            if mode == "cutout"
            else _blank_edge(lay, shape, [((nx - 1) / 2, (ny - 1) / 2)])
        )
        if blank is not None:
            observed[blank] = np.nan
            img_flags["blanked_edges"] = True
    # truth masks
    out_gal = []
    for g in galaxies:
        ya, yb, xa, xb = g["window"]
        model = g["model"]
        obs = observed[ya:yb, xa:xb]
        others = total[ya:yb, xa:xb] - model
        box = g["morph"].box_mask(model.shape, pad=1.0, origin=(xa, ya))
        with np.errstate(invalid="ignore"):
            mask = box & (obs > 3 * rms) & (model > rms) & (model >= others)
        if not mask.any():
            mask = box & (model > 3 * rms) & np.isfinite(obs)
        if not mask.any():
            log.debug(
                "galaxy at (%.1f, %.1f) has no unblanked emission; dropped",
                g["plan"].x,
                g["plan"].y,
            )
            continue
        g["plan"].flags["truncated"] = bool(
            (ya == 0 and (model[0] > 3 * rms).any())
            or (yb == ny and (model[-1] > 3 * rms).any())
            or (xa == 0 and (model[:, 0] > 3 * rms).any())
            or (xb == nx and (model[:, -1] > 3 * rms).any())
        )
        g["mask"] = mask
        out_gal.append(g)
    # infrared image on its own grid, same tangent point, north up
    ratio = cfg.pixel_scale / cfg.ir_pixel_scale
    shape_ir = (int(math.ceil(ny * ratio)), int(math.ceil(nx * ratio)))
    c_r = ((nx - 1) / 2, (ny - 1) / 2)
    c_i = ((shape_ir[1] - 1) / 2, (shape_ir[0] - 1) / 2)
    hosts_ir = []
    for g in out_gal:
        hx, hy = g["host"]
        g["host_ir"] = ((hx - c_r[0]) * ratio + c_i[0], (hy - c_r[1]) * ratio + c_i[1])
        fl = g["plan"].flags
        hosts_ir.append((*g["host_ir"], fl["ir_faint_host"], fl["ir_bright_neighbour"]))
    area_arcmin2 = shape_ir[0] * shape_ir[1] * (cfg.ir_pixel_scale / 60) ** 2
    ir, host_mags, ir_noise, ir_sky = _ir_scene(
        streams["ir"], cfg, shape_ir, area_arcmin2, hosts_ir, None
    )
    for g, m in zip(out_gal, host_mags):
        g["host_mag"] = m
    return {
        "ir": ir,
        "ir_noise": ir_noise,
        "ir_sky": ir_sky,
        "crpix": (c_r[0] + 1, c_r[1] + 1),
        "crpix_ir": (c_i[0] + 1, c_i[1] + 1),
        "streams": streams,
        "rms": rms,
        "bpa": bpa,
        "beam": (cfg.beam_major, cfg.beam_minor),
        "kcov": kcov,
        "center": (ra, dec),
        "observed": observed.astype(np.float32),
        "model": total,
        "galaxies": out_gal,
        "flags": img_flags,
        "n_compact": len(comp),
    }


_KERNELS = {}


def _beam_kernel(bmaj_px, bmin_px, bpa):
    key = (round(bmaj_px, 6), round(bmin_px, 6), round(bpa, 6))
    if key not in _KERNELS:
        f = 1 / math.sqrt(8 * math.log(2))
        # Gaussian2DKernel's theta turns its x axis counter-clockwise from +x; the beam's
        # major axis points along (-sin PA, cos PA), i.e. at PA + 90 deg.
        _KERNELS[key] = Gaussian2DKernel(bmaj_px * f, bmin_px * f, theta=math.radians(bpa + 90.0))
        if len(_KERNELS) > 256:
            _KERNELS.pop(next(iter(_KERNELS)))
    return _KERNELS[key]

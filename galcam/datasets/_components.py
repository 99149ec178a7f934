"""Physical components of simulated radio galaxies, as sums of elliptical Gaussians.

Every emission component (core, jet, lobe, hotspot, plume, bridge) and every unrelated
compact source is a set of elliptical Gaussians. A Gaussian convolved with a Gaussian
beam is again a Gaussian whose covariance is the sum of the two, so the beam convolution
of the sky model is exact and costs nothing: each Gaussian is evaluated once, already
convolved, on a small stamp around its centre. Only what is not a sum of Gaussians (the
noise) is convolved with an FFT.

Smooth profiles that are not Gaussian (the exponential and Sersic profiles of the
``profiles='varied'`` source models) are approximated by mixtures of concentric Gaussians
whose weights are fitted by non-negative least squares (the idea of Hogg & Lang 2013,
PASP 125, 719, "Replacing standard galaxy profiles with mixtures of Gaussians"; the fit
here is galcam's own), so that they too are convolved with the beam exactly.

Coordinates are 0-based pixels ``(x, y)`` of the image being rendered; fluxes are in Jy
(radio) or DN (infrared).
"""

import functools
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "GaussianSet",
    "beam_covariance",
    "render_gaussians",
    "build_galaxy",
    "sersic_mixture",
    "draw_profile_style",
]


@dataclass(frozen=True)
class GaussianSet:
    """A set of elliptical Gaussians: centres, integrated fluxes and covariances (pixels^2)."""

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    cxx: np.ndarray
    cyy: np.ndarray
    cxy: np.ndarray

    @classmethod
    def empty(cls):
        z = np.zeros(0)
        return cls(z, z, z, z, z, z)

    @classmethod
    def make(cls, x, y, flux, sig_major, sig_minor, angle):
        """Gaussians from centres, fluxes, major/minor sigmas (px) and angle (rad from +x)."""
        x, y, flux, sa, sb, ang = np.broadcast_arrays(
            *(
                np.atleast_1d(np.asarray(v, dtype=float))
                for v in (x, y, flux, sig_major, sig_minor, angle)
            )
        )
        c, s = np.cos(ang), np.sin(ang)
        a2, b2 = sa**2, sb**2
        return cls(
            x.copy(),
            y.copy(),
            flux.copy(),
            a2 * c * c + b2 * s * s,
            a2 * s * s + b2 * c * c,
            (a2 - b2) * c * s,
        )

    def __len__(self):
        return len(self.x)

    @property
    def total_flux(self):
        return float(self.flux.sum())

    def __add__(self, other):
        return GaussianSet(
            *(np.concatenate([getattr(self, f), getattr(other, f)]) for f in _FIELDS)
        )

    def scaled(self, factor):
        return GaussianSet(self.x, self.y, self.flux * factor, self.cxx, self.cyy, self.cxy)

    def transformed(self, angle, dx, dy, scale=1.0):
        """Rotate by ``angle`` (rad, about the origin), scale, then shift by ``(dx, dy)``."""
        c, s = math.cos(angle), math.sin(angle)
        x = scale * (c * self.x - s * self.y) + dx
        y = scale * (s * self.x + c * self.y) + dy
        k2 = scale * scale
        cxx = k2 * (c * c * self.cxx - 2 * c * s * self.cxy + s * s * self.cyy)
        cyy = k2 * (s * s * self.cxx + 2 * c * s * self.cxy + c * c * self.cyy)
        cxy = k2 * (c * s * (self.cxx - self.cyy) + (c * c - s * s) * self.cxy)
        return GaussianSet(x, y, self.flux, cxx, cyy, cxy)

    def extent(self, beam_cov, nsig=5.0):
        """Bounding box ``(x0, x1, y0, y1)`` of the convolved Gaussians, ``nsig`` sigma wide."""
        sx = np.sqrt(self.cxx + beam_cov[0])
        sy = np.sqrt(self.cyy + beam_cov[1])
        return (
            float((self.x - nsig * sx).min()),
            float((self.x + nsig * sx).max()),
            float((self.y - nsig * sy).min()),
            float((self.y + nsig * sy).max()),
        )


_FIELDS = ("x", "y", "flux", "cxx", "cyy", "cxy")


def beam_covariance(bmaj_px, bmin_px, bpa_deg):
    """Covariance ``(cxx, cyy, cxy)`` in pixels^2 of a beam given by FWHMs (px) and PA.

    The position angle is east of north on a north-up, east-left image (x grows to the
    west), so the major axis points along ``(-sin PA, cos PA)`` in ``(x, y)``.
    """
    f = 1.0 / math.sqrt(8 * math.log(2))
    sa, sb = bmaj_px * f, bmin_px * f
    pa = math.radians(bpa_deg)
    ux, uy = -math.sin(pa), math.cos(pa)  # major axis
    vx, vy = math.cos(pa), math.sin(pa)  # minor axis
    return (
        sa * sa * ux * ux + sb * sb * vx * vx,
        sa * sa * uy * uy + sb * sb * vy * vy,
        sa * sa * ux * uy + sb * sb * vx * vy,
    )


def render_gaussians(
    shape,
    gs,
    kernel_cov=(0.0, 0.0, 0.0),
    *,
    norm="beam",
    origin=(0, 0),
    nsig=5.0,
    floor=None,
    out=None,
):
    """Add the Gaussians of ``gs``, convolved with a Gaussian kernel, to an image.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image.
    gs : `GaussianSet`
        The sources (fluxes in Jy or DN).
    kernel_cov : tuple of float
        ``(cxx, cyy, cxy)`` of the beam or PSF, pixels^2.
    norm : {'beam', 'pixel'}
        ``'beam'``: the image is in flux per beam (a point source of flux S peaks at S);
        ``'pixel'``: flux per pixel (the image sums to the total flux).
    origin : tuple of int
        ``(x0, y0)``: the image's first pixel in the frame of ``gs``.
    nsig : float
        Largest half-size of a stamp, in sigmas of the convolved Gaussian.
    floor : float, optional
        Level (image units) below which a Gaussian's wings may be cut: each stamp is just
        large enough for its Gaussian to fall below ``floor`` at its edge (at most ``nsig``
        sigmas). Without it, every stamp is ``nsig`` sigmas.
    out : ndarray, optional
        Image to add to (float64); a new one by default.

    Returns
    -------
    image : ndarray
    """
    ny, nx = shape
    if out is None:
        out = np.zeros(shape)
    if len(gs) == 0:
        return out
    kxx, kyy, kxy = kernel_cov
    cxx, cyy, cxy = gs.cxx + kxx, gs.cyy + kyy, gs.cxy + kxy
    det = cxx * cyy - cxy * cxy
    if norm == "beam":
        kdet = kxx * kyy - kxy * kxy
        peak = gs.flux * np.sqrt(kdet / det)
    else:
        peak = gs.flux / (2 * np.pi * np.sqrt(det))
    x = gs.x - origin[0]
    y = gs.y - origin[1]
    smax = np.sqrt(0.5 * (cxx + cyy) + np.sqrt((0.5 * (cxx - cyy)) ** 2 + cxy * cxy))
    if floor is not None and floor > 0:
        ratio = np.maximum(np.abs(peak) / floor, 1.0)
        nsig_i = np.clip(np.sqrt(2 * np.log(ratio)), 1.0, nsig)
    else:
        nsig_i = nsig
    half = np.ceil(nsig_i * smax)
    keep = (
        (x + half >= 0)
        & (x - half <= nx - 1)
        & (y + half >= 0)
        & (y - half <= ny - 1)
        & (peak != 0)
    )
    if not keep.any():
        return out
    # group the stamps by size (steps of sqrt(2)) to evaluate them vectorised
    sizes = np.ceil(2 ** (0.5 * np.ceil(2 * np.log2(np.maximum(half, 2))))).astype(int)
    ixx, iyy, ixy = cyy / det, cxx / det, -cxy / det
    flat = out.reshape(-1)
    for h in np.unique(sizes[keep]):
        sel = np.nonzero(keep & (sizes == h))[0]
        # limit the stamp to the image
        off = np.arange(-h, h + 1)
        xc = np.round(x[sel]).astype(int)
        yc = np.round(y[sel]).astype(int)
        X = xc[:, None] + off[None, :]
        Y = yc[:, None] + off[None, :]
        dx = X - x[sel, None]
        dy = Y - y[sel, None]
        q = (
            ixx[sel, None, None] * dx[:, None, :] ** 2
            + 2 * ixy[sel, None, None] * dx[:, None, :] * dy[:, :, None]
            + iyy[sel, None, None] * dy[:, :, None] ** 2
        )
        v = peak[sel, None, None] * np.exp(-0.5 * q)
        ok = ((X >= 0) & (X < nx))[:, None, :] & ((Y >= 0) & (Y < ny))[:, :, None]
        idx = (Y[:, :, None] * nx + X[:, None, :])[ok]
        flat += np.bincount(idx, weights=v[ok], minlength=flat.size)
    return out


# ---------------------------------------------------------------------------------------
# galaxy components, in the galaxy frame: core at the origin, jet axis along +x, pixels


def _path(rng, length, direction, bend, n):
    """Points along a jet of ``length`` px leaving the core at angle ``direction`` (rad).

    ``bend`` (rad) is the total turn of the jet; the turn grows as t^2 along it (jets
    stay straight near the core and bend in the intracluster medium).
    """
    t = (np.arange(n) + 0.5) / n
    ang = direction + bend * t**2
    ds = length / n
    x = np.cumsum(ds * np.cos(ang)) - 0.5 * ds * np.cos(ang[0])
    y = np.cumsum(ds * np.sin(ang)) - 0.5 * ds * np.sin(ang[0])
    return t, x, y, ang


def core(flux):
    """Unresolved core (the AGN), at the origin."""
    return GaussianSet.make(0.0, 0.0, flux, 0.3, 0.3, 0.0)


def jet(
    rng,
    length,
    direction,
    bend,
    flux,
    *,
    t_peak,
    width0=0.6,
    width1=4.0,
    n=None,
    alpha=None,
    opening=None,
):
    """A jet: a chain of Gaussians along a (possibly bent) path.

    The brightness rises from the core to a flaring point at ``t_peak`` (fraction of the
    length), then fades as the jet widens from ``width0`` to ``width1`` px (sigma). With
    ``alpha`` (``profiles='varied'``) it fades instead as a power law, ``(t / t_peak) **
    -alpha``, and with ``opening`` (rad) it widens as a cone of that half-opening angle.
    Both draw the same random numbers as the default jet.
    """
    n = n or max(6, int(length / 1.5))
    t, x, y, ang = _path(rng, length, direction, bend, n)
    wobble = np.exp(rng.normal(0, 0.15, n))
    if alpha is None:
        prof = ((t / t_peak) * np.exp(1.0 - t / t_peak)) ** 2 * wobble
    else:
        prof = np.where(t < t_peak, (t / t_peak) ** 2, (t / t_peak) ** -alpha) * wobble
    prof /= prof.sum()
    if opening is None:
        width = width0 + (width1 - width0) * t
    else:
        width = width0 + math.tan(opening) * length * t
    step = length / n
    return GaussianSet.make(x, y, flux * prof, np.maximum(0.8 * step, width * 0.8), width, ang)


def plume(rng, length, direction, bend, flux, *, t0, width0, width1, n=8):
    """A diffuse plume: a few broad, overlapping Gaussians from ``t0`` to the jet end."""
    t, x, y, ang = _path(rng, length, direction, bend, 4 * n)
    pick = t >= t0
    t, x, y, ang = t[pick][::4], x[pick][::4], y[pick][::4], ang[pick][::4]
    w = width0 + (width1 - width0) * (t - t0) / max(1e-6, 1 - t0)
    f = np.exp(-((t - t0) / 0.6)) * np.exp(rng.normal(0, 0.1, len(t)))
    f = flux * f / f.sum()
    return GaussianSet.make(x, y, f, np.maximum(w * 1.3, 1.0), w, ang)


def lobe(rng, center, length, width, angle, flux, *, n_clumps=10):
    """A lobe: clumpy emission filling an ellipse (semi-axes length/2, width/2) at ``center``."""
    r = np.sqrt(rng.uniform(0, 1, n_clumps))
    phi = rng.uniform(0, 2 * np.pi, n_clumps)
    lx = 0.5 * length * 0.75 * r * np.cos(phi)
    ly = 0.5 * width * 0.75 * r * np.sin(phi)
    c, s = math.cos(angle), math.sin(angle)
    x = center[0] + c * lx - s * ly
    y = center[1] + s * lx + c * ly
    sig = rng.uniform(0.18, 0.32, n_clumps) * width
    ell = rng.uniform(1.0, 1.8, n_clumps)
    f = rng.lognormal(0, 0.4, n_clumps)
    f = flux * f / f.sum()
    return GaussianSet.make(x, y, f, sig * ell, sig, angle + rng.normal(0, 0.3, n_clumps))


def hotspot(x, y, flux, size=0.8):
    """A compact hotspot (the jet's termination shock)."""
    return GaussianSet.make(x, y, flux, size * 1.2, size, 0.0)


def bridge(rng, start, end, width, flux, n=8):
    """Faint backflow emission between a lobe and the core, fading towards the core."""
    t = np.linspace(0, 1, n)
    x = start[0] + (end[0] - start[0]) * t
    y = start[1] + (end[1] - start[1]) * t
    f = np.exp(-2.5 * t) * np.exp(rng.normal(0, 0.1, n))
    f = flux * f / f.sum()
    ang = math.atan2(end[1] - start[1], end[0] - start[0])
    step = math.hypot(end[0] - start[0], end[1] - start[1]) / max(n - 1, 1)
    w = width * (1 - 0.5 * t)
    return GaussianSet.make(x, y, f, np.maximum(step, w), w, ang)


# ---------------------------------------------------------------------------------------
# smooth profiles as Gaussian mixtures, and the per-galaxy draws of profiles='varied'

_MIX_SIGMAS = np.geomspace(0.02, 3.0, 14)  # widths, in units of the effective radius


def _sersic_b(n):
    """b_n of the Sersic profile (asymptotic series of Ciotti & Bertin 1999)."""
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)


@functools.lru_cache(maxsize=64)
def sersic_mixture(n):
    """A mixture of concentric Gaussians that approximates a Sersic profile of index ``n``.

    The surface brightness ``I(r) = exp(-b_n ((r / R_e) ** (1 / n) - 1))`` (``R_e`` the
    half-light radius) is fitted out to 4 ``R_e``, each radius weighted by ``r`` (the
    flux of its annulus), by Gaussians of fixed widths and non-negative amplitudes
    (`scipy.optimize.nnls`).

    Parameters
    ----------
    n : float
        Sersic index, 0.3-4 (0.5: a Gaussian, 1: an exponential disc).

    Returns
    -------
    sigmas, fractions : tuple of ndarray
        Gaussian widths in units of ``R_e``, and the fraction of the total flux in each
        (summing to 1); Gaussians with no flux are left out.
    """
    from scipy.optimize import nnls

    n = float(n)
    if not 0.3 <= n <= 4.0:
        raise ValueError(f"sersic_mixture: n must be in [0.3, 4], got {n}")
    r = np.linspace(0.0, 4.0, 801)
    target = np.exp(-_sersic_b(n) * (r ** (1.0 / n) - 1.0))
    w = np.sqrt(r + 1e-3)
    basis = np.exp(-0.5 * (r[:, None] / _MIX_SIGMAS[None, :]) ** 2)
    amp, _ = nnls(basis * w[:, None], target * w)
    flux = amp * _MIX_SIGMAS**2  # integrated flux of a peak-normalised 2-D Gaussian / 2 pi
    keep = flux > 1e-6 * flux.sum()
    return _MIX_SIGMAS[keep], flux[keep] / flux[keep].sum()


def sersic(x, y, flux, re_major, re_minor, angle, n):
    """An elliptical Sersic component (Gaussian mixture) of total ``flux`` at ``(x, y)``."""
    sig, frac = sersic_mixture(round(float(n), 2))
    return GaussianSet.make(x, y, flux * frac, sig * re_major, sig * re_minor, angle)


def draw_profile_style(prng):
    """The profile choices of one galaxy for ``profiles='varied'``, drawn from ``prng``.

    The same number of values is drawn for every class, so that the draws of one galaxy do
    not depend on the choices of another. Keys:

    * ``jet_alpha``: power-law index of the jets' fading (60%; else the default profile);
    * ``jet_opening``: half-opening angle (rad) of conical jets (with ``jet_alpha``);
    * ``lobe_smooth``: fraction of a lobe's flux in a smooth Sersic ellipse rather than in
      clumps (70% of the galaxies, 0.4-1), ``lobe_n`` its index (0.5-1.5), ``lobe_re`` its
      half-light radius as a fraction of the lobe's semi-axes, ``lobe_shift`` its offset
      towards the lobe's outer end (fraction of the lobe's length);
    * ``hotspot2``: a second, fainter hotspot (25%): (flux fraction, offset across the
      jet axis in px, offset back towards the core in px);
    * ``wings``: a pair of diffuse wings through the core (FR-II/FR-X, 15%): (angle to the
      jet axis in rad, length as a fraction of the largest size, flux relative to a lobe);
    * ``disc``: an R source's resolved blob drawn as a Sersic ellipse (50%).
    """
    u = prng.uniform(size=5)
    alpha, opening = prng.uniform(0.8, 2.5), prng.uniform(0.05, 0.25)
    smooth, lobe_n = prng.uniform(0.4, 1.0), prng.uniform(0.5, 1.5)
    lobe_re, shift = prng.uniform(0.35, 0.6), prng.uniform(0.0, 0.15)
    hs2 = (prng.uniform(0.2, 0.5), prng.uniform(1.5, 4.0), prng.uniform(0.0, 3.0))
    wings = (math.radians(prng.uniform(30, 80)), prng.uniform(0.25, 0.45), prng.uniform(0.05, 0.3))
    return {
        "jet_alpha": alpha if u[0] < 0.6 else None,
        "jet_opening": opening if u[0] < 0.6 else None,
        "lobe_smooth": smooth if u[1] < 0.7 else 0.0,
        "lobe_n": lobe_n,
        "lobe_re": lobe_re,
        "lobe_shift": shift,
        "hotspot2": hs2 if u[2] < 0.25 else None,
        "wings": wings if u[3] < 0.15 else None,
        "disc": bool(u[4] < 0.5),
    }


def _smooth_lobe(clumps, style, center, llen, lwid, angle, flux):
    """A lobe's clumps with part of its flux moved into a smooth Sersic ellipse."""
    s = style["lobe_smooth"]
    if s <= 0:
        return clumps
    c, sn = math.cos(angle), math.sin(angle)
    d = style["lobe_shift"] * llen
    smooth = sersic(
        center[0] + d * c,
        center[1] + d * sn,
        flux * s,
        style["lobe_re"] * 0.5 * llen,
        style["lobe_re"] * 0.5 * lwid,
        angle,
        style["lobe_n"],
    )
    return clumps.scaled(1.0 - s) + smooth


def _jet_style(style):
    if style is None or style["jet_alpha"] is None:
        return {}
    return {"alpha": style["jet_alpha"], "opening": style["jet_opening"]}


def _arm_lengths(rng, half):
    r2 = half * rng.uniform(0.7, 1.0)
    return (half, r2) if rng.uniform() < 0.5 else (r2, half)


def build_galaxy(
    rng,
    klass,
    las_px,
    *,
    bent=False,
    one_sided=False,
    detached=False,
    plume_on=False,
    style=None,
):
    """Components of one radio galaxy of intended class ``klass``, in the galaxy frame.

    Parameters
    ----------
    rng : `numpy.random.Generator`
    klass : {'FR-I', 'FR-II', 'FR-X', 'R'}
        Intended class; the class of record is measured on the rendered model.
    las_px : float
        Intended largest (intrinsic) size, pixels.
    bent, one_sided, detached, plume_on : bool
        Realism effects: bent tails (WAT/NAT, head-tail), a one-sided (Doppler-boosted)
        jet, lobes without a bridge, faint diffuse plumes.
    style : dict, optional
        Profile choices of `draw_profile_style` (``profiles='varied'``); `None` gives the
        default Gaussian-clump models. ``rng`` is used in the same way either way.

    Returns
    -------
    components : list of (str, GaussianSet)
        Named components; fluxes are relative (the caller scales them).
    """
    half = 0.5 * las_px
    comps = []
    mis = rng.normal(0, math.radians(6))  # misalignment of the counter-arm
    dirs = (0.0, math.pi + mis)
    if bent:
        # both arms turn towards +y (wide- and narrow-angle tails, head-tails)
        turn = rng.uniform(0.4, 1.0) * (math.pi * 0.75 if klass == "FR-I" else math.pi * 0.35)
        bends = (turn, -turn)
    else:
        s = rng.normal(0, math.radians(8))
        bends = (s, s)  # mild S-symmetry
    if klass == "FR-I":
        arms = _arm_lengths(rng, half)
        comps.append(("core", core(rng.uniform(0.02, 0.15))))
        t_peak = rng.uniform(0.25, 0.4)
        w1 = rng.uniform(0.1, 0.25) * half
        for i, (length, d, bnd) in enumerate(zip(arms, dirs, bends)):
            f = 1.0 if i == 0 else rng.uniform(0.6, 1.0)
            if one_sided and i == 1:
                f *= rng.uniform(0.04, 0.25)
            comps.append(
                (
                    "jet",
                    jet(
                        rng,
                        length,
                        d,
                        bnd,
                        f,
                        t_peak=t_peak * rng.uniform(0.85, 1.15),
                        width1=w1,
                        **_jet_style(style),
                    ),
                )
            )
            comps.append(
                (
                    "plume",
                    plume(rng, length, d, bnd, 0.35 * f, t0=0.45, width0=0.5 * w1, width1=1.3 * w1),
                )
            )
    elif klass in ("FR-II", "FR-X"):
        arms = _arm_lengths(rng, half)
        if detached:
            comps.append(("core", core(rng.uniform(0.0, 0.01))))
        else:
            comps.append(("core", core(rng.uniform(0.0, 0.08))))
        for i, (length, d, bnd) in enumerate(zip(arms, dirs, bends)):
            f = 1.0 if i == 0 else rng.uniform(0.5, 1.0)
            if one_sided and i == 1:
                f *= rng.uniform(0.3, 0.6)
            ang = d + bnd
            ux, uy = math.cos(ang), math.sin(ang)
            if klass == "FR-II":
                llen = length * (rng.uniform(0.25, 0.45) if detached else rng.uniform(0.35, 0.65))
                lc = length - 0.5 * llen
                hs = length - rng.uniform(0.5, 2.0)
                hfrac = rng.uniform(0.2, 0.5)
            else:  # FR-X: the brightest region half way out, diffuse emission beyond it
                llen = length * rng.uniform(0.55, 0.75)
                lc = length - 0.5 * llen
                hs = length * rng.uniform(0.42, 0.6)
                hfrac = rng.uniform(0.2, 0.45)
            lwid = llen * rng.uniform(0.45, 0.9)
            lobe_flux, centre = f * (1 - hfrac), (lc * ux, lc * uy)
            clumps = lobe(rng, centre, llen, lwid, ang, lobe_flux)
            if style is not None:
                clumps = _smooth_lobe(clumps, style, centre, llen, lwid, ang, lobe_flux)
            comps.append(("lobe", clumps))
            spot = hotspot(hs * ux, hs * uy, f * hfrac, rng.uniform(0.5, 1.5))
            if style is not None and style["hotspot2"] is not None:
                frac, across, back = style["hotspot2"]
                side = 1.0 if i == 0 else -1.0
                x2 = (hs - back) * ux - side * across * uy
                y2 = (hs - back) * uy + side * across * ux
                spot = spot.scaled(1.0 - frac) + hotspot(x2, y2, f * hfrac * frac, 0.8)
            comps.append(("hotspot", spot))
            if not detached:
                start = ((lc - 0.3 * llen) * ux, (lc - 0.3 * llen) * uy)
                end = (0.15 * length * ux, 0.15 * length * uy)
                comps.append(
                    ("bridge", bridge(rng, start, end, 0.3 * lwid, f * rng.uniform(0.05, 0.15)))
                )
                if rng.uniform() < 0.3:
                    comps.append(
                        (
                            "jet",
                            jet(
                                rng,
                                0.8 * length,
                                d,
                                bnd,
                                0.02 * f,
                                t_peak=0.5,
                                width0=0.5,
                                width1=1.0,
                            ),
                        )
                    )
    elif klass == "R":
        kind = rng.integers(3)
        if kind == 0:  # core with short, unresolved jets
            comps.append(("core", core(rng.uniform(0.3, 1.0))))
            for d in dirs:
                comps.append(
                    (
                        "jet",
                        jet(
                            rng,
                            half,
                            d,
                            0.0,
                            rng.uniform(0.2, 0.5),
                            t_peak=0.3,
                            width1=1.5,
                            **_jet_style(style),
                        ),
                    )
                )
        elif kind == 1:  # compact double, closer than the beam
            sep = min(half, rng.uniform(1.5, 3.0))
            comps.append(
                (
                    "lobe",
                    GaussianSet.make(
                        [sep, -sep], [0, 0], [1.0, rng.uniform(0.6, 1.0)], 1.5, 1.0, 0.0
                    ),
                )
            )
            comps.append(("core", core(rng.uniform(0.0, 0.2))))
        else:  # a single resolved blob (core-jet seen at an angle)
            if style is not None and style["disc"]:
                # the Gaussian blob's half-light radii (R_e = 1.177 sigma), another profile
                k = math.sqrt(2 * math.log(2))
                blob = sersic(
                    0.3 * half, 0.0, 1.0, 0.4 * half * k, 0.2 * half * k, 0.0, style["lobe_n"]
                )
            else:
                blob = GaussianSet.make(0.3 * half, 0.0, 1.0, 0.4 * half, 0.2 * half, 0.0)
            comps.append(("lobe", blob))
            comps.append(("core", core(rng.uniform(0.1, 0.5))))
    else:  # pragma: no cover - checked by the caller
        raise ValueError(f"unknown class {klass!r}")
    if style is not None and style["wings"] is not None and klass in ("FR-II", "FR-X"):
        # an X-shaped pair of diffuse wings through the core, at an angle to the jet axis
        tilt, length, flux = style["wings"]
        wlen = length * las_px
        for ang in (tilt, tilt + math.pi):
            c, sn = math.cos(ang), math.sin(ang)
            comps.append(
                (
                    "wing",
                    sersic(
                        0.5 * wlen * c, 0.5 * wlen * sn, flux, 0.3 * wlen, 0.12 * wlen, ang, 0.7
                    ),
                )
            )
    if plume_on:
        # diffuse emission near the noise, around/beyond the source; flux set by the caller
        # relative to the noise (tagged 'faint_plume')
        ang = (
            rng.uniform(0, 2 * np.pi) if klass == "R" else (0.0 if rng.uniform() < 0.5 else math.pi)
        )
        r = half * rng.uniform(0.6, 1.2)
        w = max(4.0, half * rng.uniform(0.3, 0.6))
        n = 5
        t = np.linspace(0, 1, n)
        x = r * t * math.cos(ang) + rng.normal(0, 0.2 * w, n)
        y = r * t * math.sin(ang) + rng.normal(0, 0.2 * w, n)
        comps.append(("faint_plume", GaussianSet.make(x, y, np.full(n, 1.0 / n), 1.3 * w, w, ang)))
    return comps

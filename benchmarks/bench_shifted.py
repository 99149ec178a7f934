"""Score a model on a third kind of radio cutout: other pixels, beams, sources, artefacts.

A second independent generator beside ``bench_independent.py`` (issue 22: evidence of
quality is a cross-source matrix, with sets from generators the model was not trained
on). It shares no source model with galcam's simulator or with ``bench_independent``,
and it moves what a survey moves:

- **Pixels and beams**: each cutout has its own restoring beam, major axis FWHM 8-24",
  axis ratio 0.5-1, so both sides of the bundled model's 13" x 11" beam are sampled,
  and its own pixel scale, 1.2-3.0" with at least 2.2 pixels across the beam's minor
  axis (galcam resamples to its model's 2"). Each cutout covers about
  7' x 7' (its size in pixels follows from the scale).
- **Sources** are built from clumps: an FR-II is two lobes of 3-7 Gaussian clumps strewn
  along the jet axis, a hotspot on the outer edge of each, sometimes a faint bridge and a
  core; an FR-I is a core with two plumes of clumps whose brightness falls steeply and
  whose size grows away from the core, the plumes curving with a common bend (head-tail
  sources when both bend by more than 60 degrees); an FR-X is an FR-II with a second,
  shorter and fainter pair of clumpy wings; an R is two to three clumps within about a
  beam (a barely resolved source).
- **Artefacts and crowding**: the noise is white noise convolved with the beam; around
  every source brighter than 200 sigma a ring pattern of the dirty beam's sidelobes
  (radial ripples at 1-3 % of the peak, decaying outward) remains; a second galaxy
  shares the cutout in 30 % of them (a galaxy in the truth too), and 2-15 unrelated
  point sources.
- **Infrared** on a 1.0" grid of its own (not WISE's 1.375"), PSF 5-7", 120-260 field
  sources, a brighter neighbour within 6" of the host in 25 % of cutouts, and a host
  below the noise in 10 % (its keypoint is still the truth).

Truth: each galaxy's noiseless beam-convolved model above 3 times the noise (pixels
claimed by two galaxies go to the brighter), its class by construction, the host at the
core. Classes in turn (equal numbers of primary galaxies).

Usage::

    python benchmarks/bench_shifted.py --model default [--n 200] [--seed 21] [--json F]

Seeds: 21 is the test set of the cross-source matrix; use 41 or others for tuning.
"""

import argparse
import json
import logging
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # _coco_writer, bench_views beside this

CLASSES = ("FR-I", "FR-II", "FR-X", "R")
FIELD = 420.0  # arcsec across a cutout
IR_PIXEL = 1.0
FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))
KEYS = ["segm_mAP50", "segm_mAP", "keypoints_mAP50_arcsec", "host_within_3arcsec",
        "class_accuracy", "completeness", "reliability"]


def _gauss(xx, yy, x, y, sx, sy, pa):
    c, s = math.cos(pa), math.sin(pa)
    u = (xx - x) * c + (yy - y) * s
    v = -(xx - x) * s + (yy - y) * c
    return np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))


def _clumps(rng, xx, yy, pts, size_arcsec, scale):
    """Sum of Gaussian clumps at ``pts`` ((x, y, amplitude), pixels), sizes in arcsec."""
    img = np.zeros(xx.shape)
    for x, y, amp in pts:
        s = size_arcsec * rng.uniform(0.6, 1.4) / scale
        img += amp * _gauss(xx, yy, x, y, s, s * rng.uniform(0.5, 1.0), rng.uniform(0, np.pi))
    return img


def _galaxy(rng, klass, xx, yy, x0, y0, scale):
    """Extended emission (arbitrary units, peak about 1) of one galaxy, in pixels."""
    pa = rng.uniform(0.0, math.pi)
    if klass == "R":
        d = rng.uniform(3.0, 9.0) / scale
        pts = [(x0 + d * t * math.cos(pa), y0 + d * t * math.sin(pa), rng.uniform(0.5, 1.0))
               for t in rng.uniform(-0.5, 0.5, rng.integers(2, 4))]
        return _clumps(rng, xx, yy, pts, 3.0, scale)
    las = float(np.clip(10 ** rng.normal(math.log10(120.0), 0.2), 50.0, 300.0)) / scale
    img = np.zeros(xx.shape)
    if klass == "FR-I":
        bend = rng.uniform(-1.2, 1.2) if rng.random() < 0.4 else rng.uniform(-0.3, 0.3)
        for side in (1, -1):
            pts = []
            for t in np.linspace(0.08, 0.5, rng.integers(5, 10)):
                ang = pa + (0 if side > 0 else math.pi) + side * bend * t
                d = t * las
                pts.append((x0 + d * math.cos(ang), y0 + d * math.sin(ang),
                            (1 + 8 * t) ** -1.5))
            img += _clumps(rng, xx, yy, pts, 0.08 * las * scale, scale)
        img += 1.5 * _gauss(xx, yy, x0, y0, 1.0, 1.0, 0.0)  # core
        return img
    for side, ratio in ((1, 1.0), (-1, 1.0 / rng.uniform(1.0, 2.5))):
        ang = pa + (0 if side > 0 else math.pi) + rng.normal(0, 0.06)
        pts = [(x0 + t * las * math.cos(ang), y0 + t * las * math.sin(ang),
                ratio * rng.uniform(0.3, 0.8)) for t in rng.uniform(0.25, 0.48,
                                                                   rng.integers(3, 8))]
        img += _clumps(rng, xx, yy, pts, 0.06 * las * scale, scale)
        r = 0.5 * las
        img += ratio * rng.uniform(0.8, 1.6) * _gauss(
            xx, yy, x0 + r * math.cos(ang), y0 + r * math.sin(ang), 1.2, 1.0, ang)  # hotspot
    if rng.random() < 0.3:  # a faint bridge
        img += 0.08 * _gauss(xx, yy, x0, y0, 0.4 * las, 0.04 * las, pa)
    if klass == "FR-X":
        wing = pa + rng.choice([-1, 1]) * rng.uniform(math.radians(35), math.radians(85))
        for side in (1, -1):
            pts = [(x0 + side * t * las * math.cos(wing), y0 + side * t * las * math.sin(wing),
                    rng.uniform(0.1, 0.3)) for t in rng.uniform(0.1, 0.32, rng.integers(3, 6))]
            img += _clumps(rng, xx, yy, pts, 0.07 * las * scale, scale)
    if klass == "FR-X" or rng.random() < 0.6:
        img += rng.uniform(0.1, 0.5) * _gauss(xx, yy, x0, y0, 1.0, 1.0, 0.0)  # core
    return img


def _kernel(bmaj, bmin, bpa, scale):
    from astropy.convolution import Gaussian2DKernel

    k = Gaussian2DKernel(bmaj / scale / FWHM, bmin / scale / FWHM, theta=bpa + math.pi / 2,
                         x_size=int(4 * bmaj / scale) | 1, y_size=int(4 * bmaj / scale) | 1)
    return k.array / k.array.max()


def _convolve(img, kernel):
    from astropy.convolution import convolve_fft

    return convolve_fft(img, kernel, normalize_kernel=False, boundary="fill", fill_value=0.0)


def _sidelobes(xx, yy, x, y, peak, scale, bmaj, rng):
    """A dirty-beam ring pattern left around a bright source (1-3 % of its peak)."""
    r = np.hypot(xx - x, yy - y) * scale / bmaj
    ripple = np.cos(2 * np.pi * r / rng.uniform(1.5, 2.5)) * np.exp(-r / rng.uniform(4, 8))
    ripple[r < 1.0] = 0.0
    return rng.uniform(0.01, 0.03) * peak * ripple


def _wcs(rng, size, scale, projection="SIN", rotate=False, centre=None):
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = [f"RA---{projection}", f"DEC--{projection}"]
    w.wcs.crval = centre if centre is not None else [rng.uniform(0.0, 60.0),
                                                      rng.uniform(-70.0, -30.0)]
    w.wcs.crpix = [size / 2 + 0.5, size / 2 + 0.5]
    if rotate:
        rot = rng.uniform(0.0, 2.0 * math.pi)
        c, s = math.cos(rot), math.sin(rot)
        w.wcs.cd = np.array([[-c, s], [s, c]]) * scale / 3600.0
    else:
        w.wcs.cdelt = [-scale / 3600.0, scale / 3600.0]
    return w


def _cutout(rng, klass):
    bmaj = rng.uniform(8.0, 24.0)
    bmin = bmaj * rng.uniform(0.5, 1.0)
    bpa = rng.uniform(0.0, math.pi)
    # pixels of 1.2-3.0", but at least 2.2 across the beam's minor axis (as a survey
    # image is sampled; galcam refuses undersampled images)
    scale = rng.uniform(1.2, max(1.2, min(3.0, bmin / 2.2)))
    size = int(round(FIELD / scale))
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    kernel = _kernel(bmaj, bmin, bpa, scale)
    rms = rng.uniform(15e-6, 45e-6)
    galaxies = [(klass, size / 2 + rng.uniform(-0.06, 0.06) * size,
                 size / 2 + rng.uniform(-0.06, 0.06) * size)]
    if rng.random() < 0.3:
        ang = rng.uniform(0, 2 * math.pi)
        d = rng.uniform(0.25, 0.4) * size
        galaxies.append((CLASSES[rng.integers(4)], size / 2 + d * math.cos(ang),
                         size / 2 + d * math.sin(ang)))
    models = []
    for k, x0, y0 in galaxies:
        m = _convolve(_galaxy(rng, k, xx, yy, x0, y0, scale), kernel)
        snr = 10 ** rng.uniform(math.log10(10.0), math.log10(400.0))
        models.append(m * snr * rms / m.max())
    radio = np.sum(models, axis=0)
    for _ in range(rng.integers(2, 16)):
        x, y = rng.uniform(4, size - 4, 2)
        radio += rms * 10 ** rng.uniform(math.log10(3.0), math.log10(300.0)) * _gauss(
            xx, yy, x, y, bmaj / scale / FWHM, bmin / scale / FWHM, bpa + math.pi / 2)
    artefacts = np.zeros_like(radio)
    peaks = [(m.max(), *np.unravel_index(np.argmax(m), m.shape)[::-1]) for m in models]
    for peak, x, y in peaks:
        if peak > 200 * rms:
            artefacts += _sidelobes(xx, yy, x, y, peak, scale, bmaj, rng)
    noise = _convolve(rng.normal(size=(size, size)), kernel)
    radio = (radio + artefacts + noise * rms / noise.std()).astype(np.float32)
    # truth: each galaxy above 3 sigma; shared pixels to the brighter
    masks = []
    stack = np.array(models)
    owner = np.argmax(stack, axis=0)
    for i, m in enumerate(models):
        masks.append((m > 3 * rms) & (owner == i))

    rwcs = _wcs(rng, size, scale)
    ir_size = int(FIELD / IR_PIXEL * 1.1)
    centre = rwcs.pixel_to_world_values(size / 2 - 0.5 + rng.uniform(-8, 8),
                                        size / 2 - 0.5 + rng.uniform(-8, 8))
    iwcs = _wcs(rng, ir_size, IR_PIXEL, projection="TAN", rotate=True,
                centre=[float(v) for v in centre])
    iyy, ixx = np.mgrid[:ir_size, :ir_size].astype(np.float64)
    psf = rng.uniform(5.0, 7.0) / IR_PIXEL / FWHM
    ir_noise = rng.uniform(0.2, 0.5)
    ir = rng.normal(0.0, ir_noise, (ir_size, ir_size)) + rng.uniform(2.0, 6.0)
    hosts = []
    sources = []
    for _, x0, y0 in galaxies:
        ra, dec = rwcs.pixel_to_world_values(x0, y0)
        hx, hy = iwcs.world_to_pixel_values(ra, dec)
        hosts.append((x0, y0))
        snr = 0.8 if rng.random() < 0.1 else 10 ** rng.uniform(math.log10(3.0), math.log10(50))
        sources.append((hx, hy, ir_noise * snr))
        if rng.random() < 0.25:  # a brighter neighbour within 6"
            ang, d = rng.uniform(0, 2 * math.pi), rng.uniform(3.0, 6.0) / IR_PIXEL
            sources.append((hx + d * math.cos(ang), hy + d * math.sin(ang),
                            ir_noise * snr * rng.uniform(1.5, 4.0)))
    for _ in range(rng.integers(120, 261)):
        sources.append((rng.uniform(0, ir_size), rng.uniform(0, ir_size),
                        ir_noise * 10 ** rng.uniform(math.log10(2.0), math.log10(200.0))))
    for sx, sy, amp in sources:
        ir += amp * np.exp(-((ixx - sx) ** 2 + (iyy - sy) ** 2) / (2 * psf ** 2))
    beam = (bmaj, bmin, math.degrees(bpa))
    truth = [(k, mask, host) for (k, _, _), mask, host in zip(galaxies, masks, hosts,
                                                                strict=True)
             if mask.sum() >= 10]
    return radio, ir.astype(np.float32), rwcs, iwcs, beam, truth


def make_dataset(folder, n, seed):
    """Write ``n`` cutouts and their truth as a COCO data set (``images.json`` without
    annotations, ``annotations.json`` with them)."""
    from _coco_writer import write_generated_set

    return write_generated_set(
        folder, n, seed, _cutout, prefix="shift",
        description="bench_shifted.py: radio cutouts of other pixel scales, beams, clumpy "
                    "sources, sidelobes and crowding")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model folder or name")
    parser.add_argument("--n", type=int, default=200, help="cutouts (default 200)")
    parser.add_argument("--seed", type=int, default=21, help="generator seed (default 21)")
    parser.add_argument("--work", default="/tmp/galcam-shifted")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from bench_views import predict_and_score

    from galcam.baseline import ClassicalFinder
    from galcam.inference import WeakSegmenter

    folder = Path(args.work) / f"n{args.n}_seed{args.seed}"
    if not (folder / "annotations.json").is_file():
        t = time.perf_counter()
        make_dataset(folder, args.n, args.seed)
        print(f"wrote {args.n} cutouts to {folder} ({time.perf_counter() - t:.0f} s)")
    truth = folder / "annotations.json"
    n_gal = len(json.loads(truth.read_text())["annotations"])
    out = {}
    systems = {"model": WeakSegmenter.load(args.model, device="cpu")}
    if not args.skip_baseline:
        systems["classical"] = ClassicalFinder(progress=False)
    for name, system in systems.items():
        aware, flat, seconds = predict_and_score(system, folder)
        out[name] = {**{k: aware.get(k) for k in KEYS},
                     "agnostic_segm_AP50": flat["segm_mAP50"],
                     "agnostic_kp3": flat["keypoints_mAP50_arcsec"],
                     "s_per_cutout": seconds}
    print(f"{args.n} cutouts, {n_gal} galaxies (seed {args.seed}); peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    for name, r in out.items():
        print(f"{name:>10}: segm {r['segm_mAP50']:.3f} kp3 {r['keypoints_mAP50_arcsec']:.3f} "
              f"acc {r['class_accuracy']:.3f} | agnostic segm {r['agnostic_segm_AP50']:.3f} "
              f"kp3 {r['agnostic_kp3']:.3f} | completeness {r['completeness']:.3f} "
              f"reliability {r['reliability']:.3f} | {r['s_per_cutout']:.3f} s/cutout")
    if args.json:
        Path(args.json).write_text(json.dumps({"data": {"n": args.n, "seed": args.seed,
                                                        "galaxies": n_gal}, **out},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

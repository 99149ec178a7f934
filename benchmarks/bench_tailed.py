"""Score on a fourth kind of radio cutout: LOFAR-like beams, tailed sources, stripes.

A third generator that galcam never trained on, beside ``bench_independent.py`` and
``bench_shifted.py`` (issue 22: quality is a cross-source matrix). It shares no source
model with them or with galcam's simulator, and moves what they keep fixed:

- **Beams and pixels**: a LoTSS-like 5-9" beam (axis ratio 0.7-1) on 1.5" pixels (galcam
  resamples to its model's 2"), noise 50-150 uJy/beam that grows across the field by up
  to 50 per cent (a primary-beam-like gradient).
- **Sources** are smooth-edged shapes (soft top-hats), not Gaussians or exponentials: an
  FR-II is two lobes of uniform brightness with a bright compact hotspot at the outer end
  and, in half of them, a thin jet; an FR-I is a core with two jets that fade
  exponentially and bend to the same side (narrow- and wide-angle tails, 20-160 degrees
  of bending: the tailed sources of clusters); an FR-X is an FR-II with a second pair of
  lobes, 60-100 per cent as long, at 45-90 degrees (a classic X); an R is a Sersic blob
  (index 0.5-2, effective radius 0.3-1 beam) with a core.
- **Artefacts and crowding**: calibration stripes (two to four plane waves of 0.5-1.5
  sigma, wavelengths 30-90") over the whole cutout in half of them; a second galaxy in
  40 per cent; 5-25 point sources with power-law fluxes.
- **Infrared**: WISE-like (1.375" pixels, rotated, 6" PSF), 80-250 field sources with
  power-law fluxes, the host at the radio core (0.5" scatter) with S/N 2-80.

Truth: each galaxy's noiseless beam-convolved model above 3 times the *local* noise
(pixels claimed by two galaxies go to the brighter), its class by construction, the host
at the core. Classes in turn (equal numbers of primary galaxies). Only a test set: no
choice of galcam's was made on this generator (seed 61 is its test seed).

Usage::

    python benchmarks/bench_tailed.py --model default [--n 200] [--seed 61] [--json F]
"""

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # _coco_writer, bench_views beside this

CLASSES = ("FR-I", "FR-II", "FR-X", "R")
SCALE = 1.5  # arcsec per radio pixel
SIZE = 280  # pixels: 7' across
IR_PIXEL = 1.375
FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _soft_ellipse(xx, yy, x, y, a, b, pa, edge=1.5):
    """A uniform ellipse (semi-axes a, b pixels) whose edge falls off over ``edge`` px."""
    c, s = math.cos(pa), math.sin(pa)
    u = ((xx - x) * c + (yy - y) * s) / a
    v = (-(xx - x) * s + (yy - y) * c) / b
    r = np.sqrt(u * u + v * v)
    return 0.5 * (1.0 - np.tanh((r - 1.0) * min(a, b) / edge))


def _point(xx, yy, x, y, sigma):
    return np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2.0 * sigma ** 2))


def _lobes(rng, xx, yy, x0, y0, las, pa, img, brightness=1.0):
    for side in (1.0, -1.0):
        ang = pa + (0.0 if side > 0 else math.pi) + rng.normal(0.0, 0.05)
        arm = 0.5 * las * rng.uniform(0.8, 1.0)
        length = arm * rng.uniform(0.35, 0.6)
        mid = arm - 0.5 * length
        cx, cy = x0 + mid * math.cos(ang), y0 + mid * math.sin(ang)
        width = length * rng.uniform(0.3, 0.6)
        level = brightness * rng.uniform(0.15, 0.35)
        img += level * _soft_ellipse(xx, yy, cx, cy, 0.5 * length, 0.5 * width, ang)
        hx, hy = x0 + arm * math.cos(ang), y0 + arm * math.sin(ang)
        img += brightness * rng.uniform(0.7, 1.3) * _point(xx, yy, hx, hy, 1.0)


def _galaxy(rng, klass, xx, yy, x0, y0):
    img = np.zeros(xx.shape)
    pa = rng.uniform(0.0, math.pi)
    if klass == "R":
        re = rng.uniform(0.3, 1.0) * 7.0 / SCALE
        n = rng.uniform(0.5, 2.0)
        q = rng.uniform(0.5, 1.0)
        c, s = math.cos(pa), math.sin(pa)
        u = (xx - x0) * c + (yy - y0) * s
        v = (-(xx - x0) * s + (yy - y0) * c) / q
        bn = 2.0 * n - 1.0 / 3.0
        img += np.exp(-bn * ((np.hypot(u, v) / re) ** (1.0 / n) - 1.0))
        img /= img.max()
        img += rng.uniform(0.3, 1.0) * _point(xx, yy, x0, y0, 0.8)
        return img
    las = float(np.clip(10 ** rng.normal(math.log10(100.0), 0.2), 40.0, 220.0)) / SCALE
    if klass == "FR-I":
        bend = math.radians(rng.uniform(20.0, 160.0)) * rng.choice([-1, 1])
        for side in (1.0, -1.0):
            ang = pa + (0.0 if side > 0 else math.pi)
            x, y = x0, y0
            steps = 60
            length = 0.5 * las * rng.uniform(0.7, 1.0)
            for k in range(steps):
                t = (k + 0.5) / steps
                # both jets turn towards the same direction: a tail
                target = pa + 0.5 * math.pi + 0.5 * bend
                turn = (target - ang + math.pi) % (2 * math.pi) - math.pi
                heading = ang + turn * min(1.0, 1.8 * t) * abs(bend) / math.pi
                x += length / steps * math.cos(heading)
                y += length / steps * math.sin(heading)
                width = 0.8 + 0.12 * length * t
                amp = math.exp(-3.0 * t) * 0.35 / steps * 20
                img += amp * _point(xx, yy, x, y, width)
        img += rng.uniform(1.0, 2.5) * _point(xx, yy, x0, y0, 0.8)  # bright core
        return img
    _lobes(rng, xx, yy, x0, y0, las, pa, img)
    if rng.random() < 0.5:  # a thin jet to one side
        ang = pa + rng.choice([0.0, math.pi])
        for t in np.linspace(0.05, 0.4, 12):
            img += 0.05 * _point(xx, yy, x0 + t * las * math.cos(ang),
                                 y0 + t * las * math.sin(ang), 0.8)
    if klass == "FR-X":
        wing = pa + rng.choice([-1, 1]) * math.radians(rng.uniform(45.0, 90.0))
        _lobes(rng, xx, yy, x0, y0, las * rng.uniform(0.6, 1.0), wing, img,
               brightness=rng.uniform(0.3, 0.6))
    img += rng.uniform(0.05, 0.4) * _point(xx, yy, x0, y0, 0.8)  # core
    return img


def _cutout(rng, klass):
    from astropy.convolution import Gaussian2DKernel, convolve_fft

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_shifted import _wcs

    bmaj = rng.uniform(5.0, 9.0)
    bmin = bmaj * rng.uniform(0.7, 1.0)
    bpa = rng.uniform(0.0, math.pi)
    k = Gaussian2DKernel(bmaj / SCALE / FWHM, bmin / SCALE / FWHM, theta=bpa + math.pi / 2,
                         x_size=31, y_size=31).array
    kernel = k / k.max()

    def convolve(img):
        return convolve_fft(img, kernel, normalize_kernel=False, boundary="fill",
                            fill_value=0.0)

    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    rms0 = rng.uniform(50e-6, 150e-6)
    grad = rng.uniform(0.0, 0.5)
    ang = rng.uniform(0, 2 * math.pi)
    rms_map = rms0 * (1.0 + grad * (0.5 + ((xx - SIZE / 2) * math.cos(ang)
                                           + (yy - SIZE / 2) * math.sin(ang)) / SIZE))
    galaxies = [(klass, SIZE / 2 + rng.uniform(-10, 10), SIZE / 2 + rng.uniform(-10, 10))]
    if rng.random() < 0.4:
        a, d = rng.uniform(0, 2 * math.pi), rng.uniform(0.25, 0.4) * SIZE
        galaxies.append((CLASSES[rng.integers(4)], SIZE / 2 + d * math.cos(a),
                         SIZE / 2 + d * math.sin(a)))
    models = []
    for kl, x0, y0 in galaxies:
        m = convolve(_galaxy(rng, kl, xx, yy, x0, y0))
        snr = 10 ** rng.uniform(math.log10(12.0), math.log10(500.0))
        models.append(m * snr * rms0 / m.max())
    radio = np.sum(models, axis=0)
    sig = bmaj / SCALE / FWHM
    for _ in range(rng.integers(5, 26)):
        x, y = rng.uniform(4, SIZE - 4, 2)
        radio += rms0 * 3.0 * (1.0 - rng.random()) ** (-1.0 / 1.2) * _point(xx, yy, x, y, sig)
    noise = convolve(rng.normal(size=(SIZE, SIZE)))
    noise *= rms_map / noise.std()
    if rng.random() < 0.5:  # calibration stripes
        for _ in range(rng.integers(2, 5)):
            wl = rng.uniform(30.0, 90.0) / SCALE
            t = rng.uniform(0, math.pi)
            noise += rms_map * rng.uniform(0.5, 1.5) * np.cos(
                2 * math.pi * ((xx * math.cos(t) + yy * math.sin(t)) / wl) + rng.uniform(0, 6.3))
    radio = (radio + noise).astype(np.float32)
    owner = np.argmax(np.array(models), axis=0)
    masks = [(m > 3 * rms_map) & (owner == i) for i, m in enumerate(models)]

    rwcs = _wcs(rng, SIZE, SCALE)
    ir_size = int(SIZE * SCALE / IR_PIXEL * 1.1)
    centre = rwcs.pixel_to_world_values(SIZE / 2 - 0.5, SIZE / 2 - 0.5)
    iwcs = _wcs(rng, ir_size, IR_PIXEL, projection="TAN", rotate=True,
                centre=[float(v) for v in centre])
    iyy, ixx = np.mgrid[:ir_size, :ir_size].astype(np.float64)
    psf = 6.0 / IR_PIXEL / FWHM
    ir_noise = rng.uniform(0.3, 0.6)
    ir = rng.normal(0.0, ir_noise, (ir_size, ir_size)) + rng.uniform(3.0, 8.0)
    hosts, sources = [], []
    for _, x0, y0 in galaxies:
        hosts.append((x0, y0))
        ra, dec = rwcs.pixel_to_world_values(x0, y0)
        hx, hy = iwcs.world_to_pixel_values(ra, dec)
        hx, hy = hx + rng.normal(0, 0.5 / IR_PIXEL), hy + rng.normal(0, 0.5 / IR_PIXEL)
        sources.append((hx, hy, ir_noise * 10 ** rng.uniform(math.log10(2.0), math.log10(80))))
    for _ in range(rng.integers(80, 251)):
        sources.append((rng.uniform(0, ir_size), rng.uniform(0, ir_size),
                        ir_noise * 2.0 * (1.0 - rng.random()) ** (-1.0 / 0.9)))
    for sx, sy, amp in sources:
        x0, x1 = int(max(sx - 4 * psf, 0)), int(min(sx + 4 * psf + 1, ir_size))
        y0, y1 = int(max(sy - 4 * psf, 0)), int(min(sy + 4 * psf + 1, ir_size))
        if x1 > x0 and y1 > y0:
            ir[y0:y1, x0:x1] += amp * np.exp(-((ixx[y0:y1, x0:x1] - sx) ** 2
                                               + (iyy[y0:y1, x0:x1] - sy) ** 2) / (2 * psf ** 2))
    beam = (bmaj, bmin, math.degrees(bpa))
    truth = [(kl, mask, host) for (kl, _, _), mask, host in zip(galaxies, masks, hosts,
                                                                 strict=True)
             if mask.sum() >= 10]
    return radio, ir.astype(np.float32), rwcs, iwcs, beam, truth


def make_dataset(folder, n, seed):
    """Write ``n`` cutouts and their truth as a COCO data set (``images.json`` without
    annotations, ``annotations.json`` with them)."""
    from _coco_writer import write_generated_set

    return write_generated_set(
        folder, n, seed, _cutout, prefix="tail",
        description="bench_tailed.py: LOFAR-like beams, tailed sources, stripes")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model folder or name")
    parser.add_argument("--n", type=int, default=200, help="cutouts (default 200)")
    parser.add_argument("--seed", type=int, default=61, help="generator seed (default 61)")
    parser.add_argument("--work", default="/tmp/galcam-tailed")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from bench_classical import VARIANTS
    from bench_views import predict_and_score

    from galcam.baseline import ClassicalFinder
    from galcam.inference import GalaxyGrouper, WeakSegmenter

    folder = Path(args.work) / f"n{args.n}_seed{args.seed}"
    if not (folder / "annotations.json").is_file():
        t = time.perf_counter()
        make_dataset(folder, args.n, args.seed)
        print(f"wrote {args.n} cutouts to {folder} ({time.perf_counter() - t:.0f} s)")
    truth = folder / "annotations.json"
    n_gal = len(json.loads(truth.read_text())["annotations"])
    earlier = ClassicalFinder(progress=False, **VARIANTS["earlier defaults"])
    systems = {
        "model 'rules'": WeakSegmenter.load(args.model, device="cpu"),
        "model 'grouped'": WeakSegmenter.load(args.model, device="cpu",
                                              grouper=GalaxyGrouper("grouped")),
        "classical": ClassicalFinder(progress=False),
        "classical, earlier": earlier,
    }
    out = {}
    for name, system in systems.items():
        aware, flat, seconds = predict_and_score(system, folder)
        out[name] = {"segm_mAP50": aware["segm_mAP50"],
                     "keypoints_mAP50_arcsec": aware["keypoints_mAP50_arcsec"],
                     "class_accuracy": aware["class_accuracy"],
                     "agnostic_segm_AP50": flat["segm_mAP50"],
                     "agnostic_kp3": flat["keypoints_mAP50_arcsec"],
                     "s_per_cutout": seconds}
        r = out[name]
        print(f"{name:>18}: segm {r['segm_mAP50']:.3f} kp3 "
              f"{r['keypoints_mAP50_arcsec']:.3f} acc {r['class_accuracy']:.3f} | "
              f"agnostic segm {r['agnostic_segm_AP50']:.3f} kp3 {r['agnostic_kp3']:.3f} | "
              f"{seconds:.3f} s/cutout", flush=True)
    print(f"{args.n} cutouts, {n_gal} galaxies (seed {args.seed})")
    if args.json:
        Path(args.json).write_text(json.dumps({"data": {"n": args.n, "seed": args.seed,
                                                        "galaxies": n_gal}, **out},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

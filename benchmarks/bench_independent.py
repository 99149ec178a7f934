"""Score a model on EMU-like cutouts that galcam's simulator did not make.

galcam's own test sets come from `galcam.datasets.simulate_dataset`, the same generator
that made the training data, so their numbers can reward habits of that generator. This
script writes a small COCO data set with source models of its own, deliberately built
differently, and scores a model (and the classical finder) on it with
`galcam.evaluation` (every prediction scored with its score; definitions in the docs'
metrics page):

    python benchmarks/bench_independent.py --model default [--n 120] [--seed 11]
        [--work /tmp/galcam-independent] [--beam-range LOW HIGH] [--json FILE]

What differs from galcam's simulator (which builds galaxies from Gaussian components):

- **FR-II**: two lobes, each an elliptical exponential disc elongated along the jet axis
  with a compact hotspot at its outer end, brightness ratio 1-3, no bridge; a faint core
  in half of them.
- **FR-I**: a core and two (one in a fifth) jets, each a ridge whose brightness falls as a
  power law of the distance from the core and whose width grows with it (a cone),
  bent by up to 40 degrees in half of them (wide-angle tails).
- **FR-X**: an FR-II plus a second, fainter and more diffuse pair of wings through the
  core at 30-80 degrees to the main axis.
- **R**: a barely resolved elliptical exponential disc (intrinsic FWHM 4-12") with a core.
- Sky: one galaxy per cutout (classes in equal numbers), 0-8 unrelated point sources,
  white noise convolved with a restoring beam drawn per cutout (major axis FWHM 12"-18"
  unless ``--beam-range``, axis ratio
  0.75-1) and scaled to 20-40 uJy/beam; pixels 2", SIN projection.
- Infrared: a W1-like image on its own TAN grid (1.375" pixels, rotated by a random
  angle, centre offset by up to 20"), 6.1" PSF, the host at the radio core with S/N
  3-60, 60-140 field sources.

Truth: the galaxy's noiseless beam-convolved model above 3 times the noise (as in the
issue's definition), its class by construction, the host keypoint at the core. The data
are written once into ``--work`` (reused when present).
"""

import argparse
import json
import logging
import math
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # _coco_writer, beside this script

CLASSES = ("FR-I", "FR-II", "FR-X", "R")
SIZE = 210
PIXEL = 2.0  # arcsec
IR_PIXEL = 1.375
IR_SIZE = 320
IR_PSF = 6.1  # arcsec FWHM
FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))
KEYS = ["segm_mAP50", "segm_mAP", "keypoints_mAP50_arcsec", "host_within_3arcsec",
        "host_offset_median_arcsec", "class_accuracy", "completeness", "reliability"]


def _grid(shape):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return xx.astype(np.float64), yy.astype(np.float64)


def _disc(xx, yy, x0, y0, a, b, pa):
    """Elliptical exponential disc of scale lengths a, b (px), peak 1."""
    c, s = math.cos(pa), math.sin(pa)
    u = (xx - x0) * c + (yy - y0) * s
    v = -(xx - x0) * s + (yy - y0) * c
    return np.exp(-np.sqrt((u / a) ** 2 + (v / b) ** 2))


def _lobes(rng, xx, yy, x0, y0, las, pa, img, points):
    for side, ratio in ((1, 1.0), (-1, 1.0 / rng.uniform(1.0, 3.0))):
        r = las / 2.0 * rng.uniform(0.8, 1.0)
        ang = pa + rng.normal(0.0, 0.08)
        a = r * rng.uniform(0.12, 0.25)
        b = a * rng.uniform(0.4, 0.8)
        cx = x0 + side * (r - 1.5 * a) * math.cos(ang)
        cy = y0 + side * (r - 1.5 * a) * math.sin(ang)
        img += ratio * _disc(xx, yy, cx, cy, a, b, ang)
        # a hotspot at the outer end of the lobe
        points.append((x0 + side * r * math.cos(ang), y0 + side * r * math.sin(ang),
                       ratio * rng.uniform(0.3, 1.2)))


def _jets(rng, xx, yy, x0, y0, las, pa, img):
    sides = (1,) if rng.random() < 0.2 else (1, -1)
    bend = rng.uniform(-0.7, 0.7) if rng.random() < 0.5 else 0.0
    length = las / (2.0 if len(sides) == 2 else 1.0)
    for side in sides:
        n = max(int(length * 2), 4)
        for k in range(1, n + 1):
            t = k / n
            ang = pa + (math.pi if side < 0 else 0.0) + side * bend * t * t
            # position along a bent ridge
            d = t * length
            x = x0 + d * math.cos(ang)
            y = y0 + d * math.sin(ang)
            width = 1.0 + 0.18 * d
            amp = (1.0 + d / 6.0) ** -1.2 * (length / n)
            img += amp * _disc(xx, yy, x, y, width, width, 0.0)


def _galaxy(rng, klass, xx, yy, x0, y0):
    """Extended emission (arbitrary units) and point sources ``(x, y, peak)``.

    A point's peak is relative to the peak of the beam-convolved extended emission.
    """
    img = np.zeros(xx.shape)
    points = []
    pa = rng.uniform(0.0, math.pi)
    if klass == "R":
        fwhm = rng.uniform(4.0, 12.0) / PIXEL
        a = fwhm / (2.0 * math.log(2.0))
        img += _disc(xx, yy, x0, y0, a, a * rng.uniform(0.5, 1.0), pa)
        points.append((x0, y0, rng.uniform(0.2, 1.0)))
        return img, points
    las = float(np.clip(10 ** rng.normal(math.log10(110.0), 0.18), 50.0, 260.0)) / PIXEL
    if klass == "FR-I":
        _jets(rng, xx, yy, x0, y0, las, pa, img)
        points.append((x0, y0, rng.uniform(1.0, 3.0)))  # core-brightened
        return img, points
    _lobes(rng, xx, yy, x0, y0, las, pa, img, points)
    if klass == "FR-X":
        wing_pa = pa + rng.choice([-1, 1]) * rng.uniform(math.radians(30), math.radians(80))
        for side in (1, -1):
            r = las * rng.uniform(0.25, 0.4)
            a = r * 0.5
            img += rng.uniform(0.15, 0.4) * _disc(
                xx, yy, x0 + side * r * math.cos(wing_pa), y0 + side * r * math.sin(wing_pa),
                a, a * rng.uniform(0.3, 0.6), wing_pa)
    if klass == "FR-X" or rng.random() < 0.5:
        points.append((x0, y0, rng.uniform(0.1, 0.5)))  # a faint core
    return img, points


def _beam_image(xx, yy, x, y, bmaj, bmin, bpa):
    """Peak-1 elliptical Gaussian beam centred at (x, y); ``bpa`` east of north, radians."""
    from astropy.modeling.models import Gaussian2D

    return Gaussian2D(1.0, x, y, bmaj / PIXEL / FWHM, bmin / PIXEL / FWHM,
                      theta=bpa + math.pi / 2)(xx, yy)


def _beam_kernel(bmaj, bmin, bpa):
    from astropy.convolution import Gaussian2DKernel

    return Gaussian2DKernel(bmaj / PIXEL / FWHM, bmin / PIXEL / FWHM, theta=bpa + math.pi / 2,
                            x_size=61, y_size=61)


def _convolve(img, kernel):
    """Convolve with the beam; the kernel is scaled to peak 1 (Jy/pixel -> Jy/beam)."""
    from astropy.convolution import convolve_fft

    k = kernel.array / kernel.array.max()
    return convolve_fft(img, k, normalize_kernel=False, boundary="fill", fill_value=0.0)


def _radio_wcs(rng):
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [rng.uniform(300.0, 360.0), rng.uniform(-60.0, -45.0)]
    w.wcs.crpix = [SIZE / 2 + 0.5, SIZE / 2 + 0.5]
    w.wcs.cdelt = [-PIXEL / 3600.0, PIXEL / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    return w


def _ir_wcs(rng, radio_wcs):
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    ra, dec = radio_wcs.wcs.crval
    off = rng.uniform(-20.0, 20.0, 2) / 3600.0
    w.wcs.crval = [ra + off[0] / math.cos(math.radians(dec)), dec + off[1]]
    w.wcs.crpix = [IR_SIZE / 2 + 0.5, IR_SIZE / 2 + 0.5]
    rot = rng.uniform(0.0, 2.0 * math.pi)
    c, s = math.cos(rot), math.sin(rot)
    w.wcs.cd = np.array([[-c, s], [s, c]]) * IR_PIXEL / 3600.0
    return w


def _cutout(rng, klass, beam_range=(12.0, 18.0)):
    """One cutout: radio image, IR image, their WCS, beam, truth mask and host pixel."""
    xx, yy = _grid((SIZE, SIZE))
    x0, y0 = SIZE / 2 + rng.uniform(-8, 8), SIZE / 2 + rng.uniform(-8, 8)
    bmaj = rng.uniform(*beam_range)
    bmin = bmaj * rng.uniform(0.75, 1.0)
    bpa = rng.uniform(0.0, math.pi)
    kernel = _beam_kernel(bmaj, bmin, bpa)
    rms = rng.uniform(20e-6, 40e-6)
    extended, points = _galaxy(rng, klass, xx, yy, x0, y0)
    model = _convolve(extended, kernel)
    peak = model.max()
    for px, py, rel in points:
        model += rel * peak * _beam_image(xx, yy, px, py, bmaj, bmin, bpa)
    snr = 10 ** rng.uniform(math.log10(12.0), math.log10(300.0))
    model *= snr * rms / model.max()
    mask = model > 3.0 * rms
    others = np.zeros((SIZE, SIZE))
    for _ in range(rng.integers(0, 9)):
        others += rms * 10 ** rng.uniform(math.log10(4.0), math.log10(200.0)) * _beam_image(
            xx, yy, rng.uniform(5, SIZE - 5), rng.uniform(5, SIZE - 5), bmaj, bmin, bpa)
    noise = _convolve(rng.normal(size=(SIZE, SIZE)), kernel)
    noise *= rms / noise.std()
    radio = (model + others + noise).astype(np.float32)

    rwcs = _radio_wcs(rng)
    iwcs = _ir_wcs(rng, rwcs)
    ra, dec = rwcs.pixel_to_world_values(x0, y0)
    hx, hy = iwcs.world_to_pixel_values(ra, dec)
    ixx, iyy = _grid((IR_SIZE, IR_SIZE))
    sig = IR_PSF / IR_PIXEL / FWHM
    ir_noise = rng.uniform(0.3, 0.5)
    ir = rng.normal(0.0, ir_noise, (IR_SIZE, IR_SIZE)) + rng.uniform(3.0, 8.0)
    # peak S/N of the host, then the field sources
    sources = [(hx, hy, ir_noise * 10 ** rng.uniform(math.log10(3.0), math.log10(60.0)))]
    for _ in range(rng.integers(60, 141)):
        sources.append((rng.uniform(0, IR_SIZE), rng.uniform(0, IR_SIZE),
                        ir_noise * 10 ** rng.uniform(math.log10(2.0), math.log10(150.0))))
    for sx, sy, amp in sources:
        ir += amp * np.exp(-((ixx - sx) ** 2 + (iyy - sy) ** 2) / (2 * sig ** 2))
    beam = (bmaj, bmin, math.degrees(bpa))
    return radio, ir.astype(np.float32), rwcs, iwcs, beam, mask, (x0, y0)


def make_dataset(folder, n, seed, *, beam_range=(12.0, 18.0)):
    """Write ``n`` cutouts (classes in turn) and their truth as a COCO data set."""
    from _coco_writer import annotation, write_coco, write_cutout

    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for k in range(n):
        klass = CLASSES[k % len(CLASSES)]
        while True:
            radio, ir, rwcs, iwcs, beam, mask, host = _cutout(rng, klass, beam_range)
            if mask.sum() >= 10:
                break
        record = write_cutout(folder, f"ind_{k:05d}", radio, ir, rwcs, iwcs, beam)
        images.append({"id": k + 1, **record})
        annotations.append(annotation(k + 1, k + 1, klass, mask, host))
    info = {"description": "bench_independent.py: EMU-like cutouts not made by galcam's "
                           "simulator", "seed": seed}
    return write_coco(folder, images, annotations, info)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model folder or name")
    parser.add_argument("--n", type=int, default=120, help="cutouts (default 120)")
    parser.add_argument("--seed", type=int, default=11, help="generator seed (default 11)")
    parser.add_argument("--work", default="/tmp/galcam-independent")
    parser.add_argument("--beam-range", type=float, nargs=2, default=(12.0, 18.0),
                        metavar=("LOW", "HIGH"),
                        help="range of the beam's major-axis FWHM in arcsec (12 18)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.n < 4:
        parser.error(f"--n: expected at least 4 cutouts (one per class), got {args.n}")
    if not 0 < args.beam_range[0] <= args.beam_range[1]:
        parser.error(f"--beam-range: expected 0 < LOW <= HIGH arcsec, got {args.beam_range}")
    logging.basicConfig(level=logging.WARNING)

    from astropy.utils.exceptions import AstropyUserWarning
    from bench_weak import print_metric_table

    from galcam.baseline import ClassicalFinder
    from galcam.evaluation import evaluate
    from galcam.inference import WeakSegmenter

    folder = Path(args.work) / f"n{args.n}_seed{args.seed}"
    if tuple(args.beam_range) != (12.0, 18.0):
        low, high = args.beam_range
        folder = folder.with_name(f"{folder.name}_beam{low:g}-{high:g}")
    if not (folder / "annotations.json").is_file():
        t = time.perf_counter()
        make_dataset(folder, args.n, args.seed, beam_range=tuple(args.beam_range))
        print(f"wrote {args.n} cutouts to {folder} ({time.perf_counter() - t:.0f} s)")
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        segmenter = WeakSegmenter.load(args.model, device="cpu")
        t = time.perf_counter()
        pred = segmenter.predict_dataset(folder / "images.json", image_dir=folder,
                                         progress=False)
        seconds = (time.perf_counter() - t) / args.n
        results["model"] = evaluate(folder / "annotations.json", pred, image_dir=folder)
        if not args.skip_baseline:
            base = ClassicalFinder().predict_dataset(folder / "images.json", image_dir=folder)
            results["classical"] = evaluate(folder / "annotations.json", base,
                                            image_dir=folder)
    print(f"model {args.model}: {seconds:.3f} s per cutout, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print_metric_table(results, KEYS)
    per_class = results["model"].metrics.get("per_class", {})
    print("model AP50 per class: " + ", ".join(
        f"{c} {per_class[c]['segm_AP50']:.3f}" for c in CLASSES if c in per_class))
    print("model confusion matrix (IoU >= 0.5 matches; rows true, columns predicted):")
    results["model"].confusion.to_table().pprint(max_width=-1)
    if args.json:
        out = {name: {k: r.metrics.get(k) for k in KEYS} for name, r in results.items()}
        out["model"]["per_class_segm_AP50"] = {c: per_class[c]["segm_AP50"]
                                               for c in CLASSES if c in per_class}
        out["data"] = {"n": args.n, "seed": args.seed, "beam_range": list(args.beam_range),
                       "folder": str(folder)}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

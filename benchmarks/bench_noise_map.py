"""Peak memory and time of a 2-D noise map of a large mosaic.

Generates a float32 mosaic (beam-correlated noise whose rms rises from 1 to 2
times 100 uJy/beam across the field, bright sources, NaN-blanked borders) as a
FITS file in a temporary directory, written strip by strip so that generating it
needs little memory. A child process then opens it memory-mapped with
`galcam.io.read_image` and computes `NoiseEstimator(box_size=...)` maps; the child
reports its wall time, the peak of Python/numpy allocations (tracemalloc) and its
peak resident memory (``resource.getrusage(...).ru_maxrss``, which also counts the
pages of the memory-mapped file that were read).

Usage::

    python benchmarks/bench_noise_map.py                # 10k x 10k
    python benchmarks/bench_noise_map.py --size 2000    # quicker
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np
from astropy.io import fits
from scipy.ndimage import gaussian_filter

RMS = 1e-4
BEAM_FWHM_PIX = 6.0
PIX_ARCSEC = 2.0


def _header(size):
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = size
    header["NAXIS2"] = size
    header["CTYPE1"], header["CTYPE2"] = "RA---SIN", "DEC--SIN"
    header["CRVAL1"], header["CRVAL2"] = 150.0, -30.0
    header["CRPIX1"] = header["CRPIX2"] = size / 2 + 0.5
    header["CDELT1"], header["CDELT2"] = -PIX_ARCSEC / 3600, PIX_ARCSEC / 3600
    header["CUNIT1"] = header["CUNIT2"] = "deg"
    header["BUNIT"] = "Jy/beam"
    header["BMAJ"] = header["BMIN"] = BEAM_FWHM_PIX * PIX_ARCSEC / 3600
    header["BPA"] = 0.0
    return header


def true_rms(x, size):
    """The rms the mosaic was made with, at column x."""
    return RMS * (1.0 + np.asarray(x) / size)


def make_mosaic(path, size, seed=0, strip=512):
    """Write the mosaic strip by strip into a memory-mapped FITS file."""
    header = _header(size)
    header_bytes = header.tostring().encode("ascii")
    data_bytes = size * size * 4
    with open(path, "wb") as f:
        f.write(header_bytes)
        f.seek(len(header_bytes) + data_bytes + (-data_bytes) % 2880 - 1)
        f.write(b"\0")
    out = np.memmap(path, dtype=">f4", mode="r+", offset=len(header_bytes), shape=(size, size))
    rng = np.random.default_rng(seed)
    sigma = BEAM_FWHM_PIX / 2.3548
    margin = int(4 * sigma) + 1
    gain = 2 * np.sqrt(np.pi) * sigma  # 1 / std of Gaussian-smoothed unit white noise
    profile = true_rms(np.arange(size), size)[None, :].astype(np.float32)
    border = size // 30
    yy = np.arange(size)
    for r0 in range(0, size, strip):
        r1 = min(size, r0 + strip)
        white = rng.normal(size=(r1 - r0 + 2 * margin, size)).astype(np.float32)
        block = gaussian_filter(white, sigma, mode="wrap")[margin:-margin] * np.float32(gain)
        block *= profile
        # a few bright unresolved sources
        for _ in range(max(1, (r1 - r0) * size // 400_000)):
            x, y = rng.uniform(0, size), rng.uniform(0, r1 - r0)
            x0, x1 = int(max(0, x - 15)), int(min(size, x + 16))
            y0, y1 = int(max(0, y - 15)), int(min(r1 - r0, y + 16))
            gy, gx = np.mgrid[y0:y1, x0:x1]
            block[y0:y1, x0:x1] += rng.uniform(10, 300) * RMS * np.exp(
                -0.5 * ((gx - x) ** 2 + (gy - y) ** 2) / sigma**2
            )
        # NaN-blanked border, wider at the top, as in mosaics
        rows = yy[r0:r1]
        block[(rows < 2 * border) | (rows >= size - border)] = np.nan
        block[:, :border] = np.nan
        block[:, size - border :] = np.nan
        out[r0:r1] = block
    out.flush()
    del out


def measure(path, box):
    """Run in a child process: time and memory of the noise map of ``path``."""
    from galcam.io import read_image
    from galcam.preprocessing import NoiseEstimator

    tracemalloc.start()
    t0 = time.perf_counter()
    image = read_image(path, memmap=True)
    result = NoiseEstimator(box_size=box)(image)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = image.data.shape[1]
    rng = np.random.default_rng(1)
    ys = rng.integers(size // 10, size - size // 10, 2000)
    xs = rng.integers(size // 10, size - size // 10, 2000)
    ratio = result.rms_map.value[ys, xs] / true_rms(xs, size)
    return {
        "shape": list(image.data.shape),
        "box_size": list(result.box_size),
        "seconds": round(elapsed, 1),
        "tracemalloc_peak_MB": round(peak / 2**20, 1),
        "maxrss_MB": round(maxrss_kb / 1024, 1),
        "rms_map_over_truth_median": round(float(np.median(ratio)), 4),
        "rms_map_over_truth_p5_p95": [round(float(v), 4) for v in np.percentile(ratio, [5, 95])],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10_000, help="mosaic side in pixels")
    parser.add_argument("--box", type=int, default=128, help="box size in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: child process
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.box)))
        return 0
    if args.size < 4 * args.box:
        parser.error(f"--size must be at least 4 x --box ({4 * args.box})")
    with tempfile.TemporaryDirectory(prefix="galcam-bench-") as tmp:
        path = os.path.join(tmp, "mosaic.fits")
        t0 = time.perf_counter()
        make_mosaic(path, args.size, seed=args.seed)
        print(f"generated {args.size} x {args.size} float32 mosaic "
              f"({os.path.getsize(path) / 2**20:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        child = subprocess.run(
            [sys.executable, __file__, "--measure", path, "--box", str(args.box)],
            check=True, capture_output=True, text=True,
        )
        numbers = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"noise map, box {numbers['box_size']} px, of a {numbers['shape']} mosaic:")
    print(f"  wall time          {numbers['seconds']} s")
    print(f"  tracemalloc peak   {numbers['tracemalloc_peak_MB']} MB")
    print(f"  ru_maxrss          {numbers['maxrss_MB']} MB")
    print(f"  rms map / truth    median {numbers['rms_map_over_truth_median']}, "
          f"5-95%: {numbers['rms_map_over_truth_p5_p95']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

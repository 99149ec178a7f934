"""Benchmark of `galcam.preprocessing.CutoutEncoder`: encoded radio+IR cutout pairs per second.

Two scenarios, both reading from FITS files written into a temporary directory:

``files``
    One radio FITS file (210 x 210, 2"/px TAN, 13" x 11" beam, Jy/beam) and one IR FITS
    file (its own 1.375"/px TAN grid, rotated by 7 degrees and offset, covering the radio
    cutout) per pair, as in a data set of cutouts; each pair is read and encoded
    (``encoder(radio_path, ir_path)``).
``mosaic``
    One larger radio mosaic and one IR mosaic on their own grid; 210 x 210 cutouts at
    random sky positions are encoded with ``encoder.encode_many`` (each file opened once,
    memory-mapped).

With ``--workers N`` (N > 1) the pairs are spread over N processes.

Usage::

    python benchmarks/bench_encoder.py                 # both scenarios, 1 process
    python benchmarks/bench_encoder.py --workers 2 --pairs 400
    python benchmarks/bench_encoder.py --profile       # cProfile of the files scenario

The target is at least 100 pairs/s on 2 cores. Besides the wall-clock rate, the CPU time
of the encoding processes is reported (pairs per CPU-second, and twice that as the rate on
two otherwise idle cores), which is what to compare on a shared, busy machine.
"""

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from galcam.preprocessing.encoder import CutoutEncoder

SIZE = 210
RADIO_SCALE = 2.0  # arcsec / px
IR_SCALE = 1.375  # arcsec / px (WISE)
IR_ROT = 7.0  # deg
RMS = 3e-5  # Jy/beam


def tan_header(shape, scale, ra, dec, rot=0.0):
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    s = scale / 3600
    t = np.deg2rad(rot)
    w.wcs.cd = [[-s * np.cos(t), s * np.sin(t)], [s * np.sin(t), s * np.cos(t)]]
    return w.to_header()


def beam_kernel(sigma_px):
    r = int(4 * sigma_px)
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    k = np.exp(-(x**2 + y**2) / (2 * sigma_px**2))
    return k / np.sqrt((k**2).sum())


def sky(rng, shape, n_sources, noise, amp_range, sigma_px):
    """Correlated noise plus Gaussian blobs, float32."""
    from scipy.signal import fftconvolve

    white = rng.normal(0.0, noise, size=shape)
    data = fftconvolve(white, beam_kernel(sigma_px), mode="same")
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(n_sources):
        x0, y0 = rng.uniform(0, shape[1]), rng.uniform(0, shape[0])
        s = rng.uniform(1.0, 4.0) * sigma_px
        amp = rng.uniform(*amp_range)
        box = (
            slice(max(0, int(y0 - 5 * s)), int(y0 + 5 * s) + 1),
            slice(max(0, int(x0 - 5 * s)), int(x0 + 5 * s) + 1),
        )
        data[box] += amp * np.exp(-((xx[box] - x0) ** 2 + (yy[box] - y0) ** 2) / (2 * s**2))
    return data.astype(np.float32)


def radio_hdu(data, ra, dec):
    header = tan_header(data.shape, RADIO_SCALE, ra, dec)
    header["BUNIT"] = "Jy/beam"
    header["BMAJ"], header["BMIN"], header["BPA"] = 13 / 3600, 11 / 3600, 40.0
    return fits.PrimaryHDU(data, header)


def ir_hdu(data, ra, dec):
    header = tan_header(data.shape, IR_SCALE, ra, dec, rot=IR_ROT)
    header["BUNIT"] = "DN"
    return fits.PrimaryHDU(data, header)


def make_pair_files(directory, n, seed=0):
    """``n`` radio/IR FITS file pairs; returns a list of (radio_path, ir_path)."""
    rng = np.random.default_rng(seed)
    pairs = []
    # the IR image covers the 420" radio cutout with a margin, on its own grid
    n_ir = int(np.ceil(SIZE * RADIO_SCALE * 1.25 / IR_SCALE))
    for i in range(n):
        ra, dec = rng.uniform(0, 360), rng.uniform(-60, 0)
        r = radio_hdu(sky(rng, (SIZE, SIZE), 6, RMS, (5 * RMS, 200 * RMS), 2.5), ra, dec)
        d_ra = rng.uniform(-20, 20) / 3600 / np.cos(np.deg2rad(dec))
        d_dec = rng.uniform(-20, 20) / 3600
        ir = ir_hdu(5.0 + sky(rng, (n_ir, n_ir), 30, 0.3, (2.0, 50.0), 1.2), ra + d_ra, dec + d_dec)
        rp, ip = directory / f"radio_{i:04d}.fits", directory / f"ir_{i:04d}.fits"
        r.writeto(rp)
        ir.writeto(ip)
        pairs.append((rp, ip))
    return pairs


def make_mosaics(directory, n_radio=3000, seed=1):
    rng = np.random.default_rng(seed)
    ra, dec = 150.0, -30.0
    r = radio_hdu(sky(rng, (n_radio, n_radio), 4000, RMS, (5 * RMS, 200 * RMS), 2.5), ra, dec)
    n_ir = int(np.ceil(n_radio * RADIO_SCALE * 1.1 / IR_SCALE))
    ir = ir_hdu(5.0 + sky(rng, (n_ir, n_ir), 20000, 0.3, (2.0, 50.0), 1.2), ra + 0.003, dec - 0.002)
    rp, ip = directory / "radio_mosaic.fits", directory / "ir_mosaic.fits"
    r.writeto(rp)
    ir.writeto(ip)
    return rp, ip


def _encode_files(pairs):
    """Encode file pairs; return the CPU seconds this process spent on it."""
    encoder = CutoutEncoder(size=SIZE)
    c0 = time.process_time()
    for rp, ip in pairs:
        enc = encoder(rp, ip)
        assert enc.channels.shape == (3, SIZE, SIZE) and enc.has_ir
    return time.process_time() - c0


def _run(func, jobs, workers):
    """Run ``func`` on each job (in ``workers`` processes); return (wall s, summed CPU s)."""
    t0 = time.perf_counter()
    if workers <= 1:
        cpu = sum(func(job) for job in jobs)
    else:
        with ProcessPoolExecutor(workers) as pool:
            cpu = sum(pool.map(func, jobs))
    return time.perf_counter() - t0, cpu


def run_files(pairs, workers):
    jobs = [pairs[i::workers] for i in range(max(workers, 1))]
    return _run(_encode_files, jobs, workers)


def _encode_mosaic(args):
    rp, ip, coords = args
    encoder = CutoutEncoder(size=SIZE)
    c0 = time.process_time()
    n = 0
    for enc in encoder.encode_many(rp, ip, SkyCoord(coords, unit="deg")):
        assert enc.channels.shape == (3, SIZE, SIZE) and enc.has_ir
        n += 1
    assert n == len(coords)
    return time.process_time() - c0


def run_mosaic(rp, ip, n, workers, seed=2):
    rng = np.random.default_rng(seed)
    header = fits.getheader(rp)
    w = WCS(header)
    margin = SIZE // 2
    xs = rng.uniform(margin, header["NAXIS1"] - margin, n)
    ys = rng.uniform(margin, header["NAXIS2"] - margin, n)
    c = w.pixel_to_world(xs, ys)
    coords = np.column_stack([c.ra.deg, c.dec.deg])
    jobs = [(rp, ip, coords[i::workers]) for i in range(max(workers, 1))]
    return _run(_encode_mosaic, jobs, workers)


def report(name, n, wall, cpu, workers, what):
    print(
        f"  {name:7s}: {n / wall:7.1f} pairs/s wall-clock with {workers} process(es); "
        f"{n / cpu:7.1f} pairs per CPU-second ({1e3 * cpu / n:.1f} ms CPU per pair; "
        f"{2 * n / cpu:.0f} pairs/s on 2 free cores)  [{what}]"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=300, help="number of cutout pairs")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--scenario", choices=["files", "mosaic", "both"], default="both")
    parser.add_argument("--mosaic-size", type=int, default=3000, help="radio mosaic side (px)")
    parser.add_argument("--profile", action="store_true", help="cProfile the files scenario")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="galcam-bench-") as tmp:
        tmp = Path(tmp)
        print(
            f'CutoutEncoder benchmark: {SIZE}x{SIZE} px radio (2"/px, 13"x11" beam) + IR '
            f'(1.375"/px, rotated {IR_ROT} deg), workers={args.workers}, '
            f"cpus={os.cpu_count()}"
        )
        if args.scenario in ("files", "both"):
            t0 = time.perf_counter()
            pairs = make_pair_files(tmp, args.pairs)
            print(f"  wrote {len(pairs)} FITS pairs in {time.perf_counter() - t0:.1f} s")
            _encode_files(pairs[:3])  # warm-up (imports, caches)
            if args.profile:
                prof = cProfile.Profile()
                prof.enable()
                wall, cpu = run_files(pairs, 1)
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            else:
                wall, cpu = run_files(pairs, args.workers)
            report(
                "files",
                len(pairs),
                wall,
                cpu,
                args.workers,
                "read + encode, a file pair per cutout",
            )
        if args.scenario in ("mosaic", "both"):
            t0 = time.perf_counter()
            rp, ip = make_mosaics(tmp, args.mosaic_size)
            print(
                f"  wrote {args.mosaic_size}^2 radio + IR mosaics in "
                f"{time.perf_counter() - t0:.1f} s"
            )
            wall, cpu = run_mosaic(rp, ip, args.pairs, args.workers)
            report(
                "mosaic", args.pairs, wall, cpu, args.workers, "encode_many, memory-mapped mosaics"
            )
        print(f"  (load average during the run: {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

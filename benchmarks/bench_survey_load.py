"""Load test of ``galcam survey``: a large mosaic, 2 workers, ``kill -9`` and resume.

Issue 24's load target: ``galcam survey`` on a simulated 16,000 x 16,000 pixel mosaic
(about 80 deg2 at 2"/px) with 2 workers finishes with a peak memory per worker under
2 GB and a complete catalogue, and a run killed with SIGKILL at random moments and rerun
gives the same catalogue as an uninterrupted run.

What the script does, with the CLI a user runs (``galcam survey ... --n-workers N``):

1. builds the mosaic once, in ``--workdir``: `galcam.datasets.simulate_mosaic` holds a
   whole mosaic in memory (a 16,000 px one needs more than 20 GB), so mosaics larger than
   ``--block`` pixels are assembled from independently simulated blocks (seeds
   ``seed * 1000 + k``) written into one memory-mapped FITS file per band, on the WCS of
   the first block extended to the whole mosaic; blocks are a multiple of 11 pixels so
   that the infrared grid (1.375"/px, 16/11 pixels per radio pixel) stays aligned with the
   radio grid everywhere. The galaxy density is that of ``bench_survey.py`` (120 galaxies
   per 3000 x 3000 pixels);
2. **reference run**: one uninterrupted survey; its wall time ``T``;
3. **killed run**: the same command in a fresh folder, killed with SIGKILL (the whole
   process group: the client, the dask scheduler, nannies and workers) at ``--kills``
   moments drawn uniformly in ``(0, T)`` of cumulative run time (seeded, sorted), rerun
   after each kill, then run to the end;
4. compares the two catalogues (same galaxies: class, bounding box and area identical,
   scores to 1e-4, see ``bench_survey.same_catalogue``), scores both against the
   mosaic's truth (one simulated mosaic: completeness and reliability, class agnostic,
   mask IoU >= 0.5; an assembled one: the fraction of true galaxies whose 5-sigma box
   centre lies within ``--match-radius`` pixels of a catalogue galaxy's centroid), and
   prints the peak resident memory of every process of each run (sampled every 0.5 s
   with psutil, and the workers' own high-water marks from the survey manifest).

Usage::

    python benchmarks/bench_survey_load.py                       # the issue's 16,000 px
    python benchmarks/bench_survey_load.py --size 4000 --kills 5   # quicker (5 deg2)
    python benchmarks/bench_survey_load.py --kills 0               # reference run only
    python benchmarks/bench_survey_load.py --memory-only 2000      # 2000 units, memory

The script exits 1 when a check fails (catalogues differ, a run incomplete, a worker
over ``--max-worker-gb``).
"""

import argparse
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_survey import mosaic_area_deg2, quality, same_catalogue  # noqa: E402

GALAXIES_PER_PIXEL = 120 / 3000**2
#: radio pixels per infrared pixel of `simulate_mosaic` (2" / 1.375")
IR_PER_RADIO = 16 / 11


def _blank_fits(path, header, shape):
    """A FITS file of ``shape`` float32 zeros (sparse), and a writable memmap of its data."""

    header = header.copy()
    header["BITPIX"] = -32
    for k, n in enumerate(reversed(shape), start=1):
        header[f"NAXIS{k}"] = n
    text = header.tostring().encode("ascii")
    nbytes = int(np.prod(shape)) * 4
    padded = nbytes + (-nbytes) % 2880
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(text)
        fh.seek(len(text) + padded - 1)
        fh.write(b"\0")
    return np.memmap(path, dtype=">f4", mode="r+", offset=len(text), shape=shape)


def assemble_mosaic(folder, size, n_galaxies, seed, block):
    """Simulate ``ceil(size / block)**2`` blocks and write them as one radio and one IR mosaic.

    Writes ``radio/mosaic.fits``, ``ir/mosaic_w1.fits``, ``truth_xy.txt`` (the 5-sigma box
    centres of the true galaxies, 0-based radio pixels of the whole mosaic) and
    ``assembled.json`` in ``folder``; returns the mosaic's side in pixels.
    """
    from astropy.io import fits
    from astropy.table import QTable

    from galcam.datasets import simulate_mosaic

    n = math.ceil(size / block)
    block = 11 * math.ceil(size / n / 11)
    ir_block = round(block * IR_PER_RADIO)
    total, ir_total = n * block, n * ir_block
    per_block = max(1, round(n_galaxies / n**2))
    parts = folder / "blocks"
    radio = ir = None
    truth = []
    for k in range(n * n):
        j, i = divmod(k, n)  # row j, column i
        sub = parts / f"b{k}"
        t = time.perf_counter()
        simulate_mosaic(sub, size=block, n_galaxies=per_block, seed=seed * 1000 + k,
                        overview=False, overwrite=True)
        with fits.open(sub / "radio" / "mosaic.fits") as hr, \
                fits.open(sub / "ir" / "mosaic_w1.fits") as hi:
            if radio is None:
                radio = _blank_fits(folder / "radio" / "mosaic.fits", hr[0].header,
                                    (1, 1, total, total))
                ir = _blank_fits(folder / "ir" / "mosaic_w1.fits", hi[0].header,
                                 (ir_total, ir_total))
            radio[0, 0, j * block:(j + 1) * block, i * block:(i + 1) * block] = hr[0].data[0, 0]
            ir[j * ir_block:(j + 1) * ir_block, i * ir_block:(i + 1) * ir_block] = hi[0].data
        table = QTable.read(sub / "truth.ecsv")
        truth += [(float(x) + i * block, float(y) + j * block)
                  for x, y in zip(table["center_x"].value, table["center_y"].value)]
        print(f"  block {k + 1}/{n * n}: {len(table)} galaxies, "
              f"{time.perf_counter() - t:.0f} s", flush=True)
        for f in sorted(sub.rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        sub.rmdir()
    radio.flush()
    ir.flush()
    del radio, ir
    np.savetxt(folder / "truth_xy.txt", np.array(truth), header="x y (0-based radio pixels)")
    (folder / "assembled.json").write_text(json.dumps(
        {"size": total, "block": block, "blocks": n * n, "n_galaxies": len(truth),
         "seed": seed}))
    return total


def positional_completeness(outdir, truth_xy, radius):
    """Fraction of true galaxies within ``radius`` px of a catalogue centroid; catalogue size."""
    from astropy.table import QTable
    from scipy.spatial import cKDTree

    cat = QTable.read(Path(outdir) / "catalog.ecsv")
    xy = np.column_stack([np.asarray(cat["xcentroid"], float), np.asarray(cat["ycentroid"], float)])
    if len(xy) == 0:
        return 0.0, 0
    d, _ = cKDTree(xy).query(truth_xy)
    return float(np.mean(d <= radius)), len(cat)


class TreeMemory:
    """Peak RSS of a process and its descendants, sampled in a background thread."""

    def __init__(self, pid, interval=0.5):
        self.pid = pid
        self.interval = interval
        self.peaks = {}  # pid -> (peak MB, command line)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root] + root.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for p in procs:
                try:
                    rss = p.memory_info().rss / 2**20
                    old = self.peaks.get(p.pid)
                    if old is None or rss > old[0]:
                        name = " ".join(p.cmdline()[:4])[-60:]
                        self.peaks[p.pid] = (rss, name)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peaks


def survey_command(args, mosaic, ir, outdir):
    cmd = [sys.executable, "-c", "from galcam.cli.main import main; main()", "survey",
           str(mosaic), "-o", str(outdir), "--model", args.model,
           "--n-workers", str(args.workers), "--no-progress", "-q"]
    if ir is not None:
        cmd += ["--ir", str(ir)]
    return cmd


def run_once(cmd, kill_after=None):
    """Run ``cmd`` in its own session; SIGKILL its process group after ``kill_after`` s.

    Returns (return code or 'killed', wall seconds, peaks {pid: (MB, name)}).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    mem = TreeMemory(proc.pid)
    try:
        proc.wait(timeout=kill_after)
        outcome = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        outcome = "killed"
    wall = time.perf_counter() - t0
    peaks = mem.stop()
    out = proc.stdout.read()
    if outcome not in ("killed", 0):
        print(out[-3000:])
    # no process of the group may outlive the run (zombies waiting to be reaped aside)
    deadline = time.monotonic() + 10
    while (left := _alive_in_group(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if left:
        print(f"WARNING: {len(left)} processes of the run's group still run 10 s after it "
              f"ended ({', '.join(p.name() for p in left)}); killing them")
        for p in left:
            p.kill()
    return outcome, wall, peaks


def _alive_in_group(pgid):
    alive = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(p.pid) == pgid:
                alive.append(p)
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            pass
    return alive


def units_done(outdir):
    folder = Path(outdir) / "units"
    return len(list(folder.glob("*.json"))) if folder.is_dir() else 0


def worker_peaks(outdir):
    """Peak RSS (MB) per worker of each run recorded in the survey manifest."""
    manifest = json.loads((Path(outdir) / "manifest.json").read_text())
    return [sorted(round(w["peak_rss_mb"]) for w in h["workers"].values())
            for h in manifest["history"]]


def describe_quality(outdir, sim, radius):
    if (sim / "assembled.json").exists():
        truth = np.loadtxt(sim / "truth_xy.txt", ndmin=2)
        frac, n_cat = positional_completeness(outdir, truth, radius)
        return (f"{n_cat} galaxies, {len(truth)} true; {frac:.3f} of the true galaxies have "
                f"a catalogue centroid within {radius:g} px of their centre")
    classes = json.loads((outdir / "predictions.categories.json").read_text())
    classes = [c["name"] for c in sorted(classes["categories"], key=lambda c: c["id"])]
    q = quality(outdir, sim / "annotations.json", classes)
    return (f"{q['n_pred']} galaxies, {q['n_true']} true; completeness "
            f"{q['completeness']:.3f}, reliability {q['reliability']:.3f} "
            f"(class agnostic, mask IoU >= 0.5)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model name or folder")
    parser.add_argument("--workdir", default="/tmp/galcam-bench-survey-load")
    parser.add_argument("--size", type=int, default=16000, help="mosaic side, pixels")
    parser.add_argument("--n-galaxies", type=int, default=None,
                        help="default: the density of bench_survey.py (120 per 3000^2 px)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=5,
                        help="SIGKILLs of the second run (0: the reference run only)")
    parser.add_argument("--kill-seed", type=int, default=0)
    parser.add_argument("--no-ir", action="store_true", help="radio only")
    parser.add_argument("--block", type=int, default=4000,
                        help="mosaics larger than this are assembled from blocks of about "
                        "this size (pixels)")
    parser.add_argument("--match-radius", type=float, default=10.0,
                        help="pixels, for the completeness of an assembled mosaic")
    parser.add_argument("--max-worker-gb", type=float, default=2.0)
    parser.add_argument("--memory-only", type=int, default=None, metavar="N",
                        help="only measure memory: one run of N units (--max-units N) in "
                        "the reference folder, no kills (for mosaics whose full run takes too "
                        "long here); a later run without it resumes that folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from galcam.datasets import simulate_mosaic

    workdir = Path(args.workdir)
    n_gal = args.n_galaxies or max(1, round(GALAXIES_PER_PIXEL * args.size**2))
    sim = workdir / f"mosaic{args.size}-s{args.seed}"
    assembled = args.size > args.block
    marker = sim / ("assembled.json" if assembled else "simulation.json")
    if not marker.exists():
        t = time.perf_counter()
        if assembled:
            total = assemble_mosaic(sim, args.size, n_gal, args.seed, args.block)
            print(f"assembled a {total} x {total} mosaic from blocks")
        else:
            simulate_mosaic(sim, size=args.size, n_galaxies=n_gal, seed=args.seed,
                            overview=False, overwrite=True)
        print(f"simulated a {args.size} px mosaic ({n_gal} galaxies requested) in "
              f"{time.perf_counter() - t:.0f} s")
    mosaic = sim / "radio" / "mosaic.fits"
    ir = None if args.no_ir else sim / "ir" / "mosaic_w1.fits"
    area, _ = mosaic_area_deg2(mosaic)
    print(f"mosaic {mosaic}: {area:.2f} deg2 with data; {args.workers} workers, "
          f"{os.cpu_count()} cores")

    ok = True
    if args.memory_only:
        out = workdir / f"ref-{args.size}-w{args.workers}"  # a later full run resumes it
        cmd = survey_command(args, mosaic, ir, out) + ["--max-units", str(args.memory_only)]
        rc, wall, peaks = run_once(cmd)
        manifest = json.loads((out / "manifest.json").read_text())
        history = manifest["history"][-1]
        n = history["units_processed"]
        print(f"memory-only run: exit {rc}, {n} of {manifest['units']['total']} units in "
              f"{history['units_wall_s']:.0f} s ({history['units_wall_s'] / max(n, 1):.2f} s "
              f"per unit with {args.workers} workers), {wall:.0f} s wall")
        top = sorted(peaks.values(), reverse=True)[:4]
        print("peak resident memory (MB), sampled every 0.5 s: "
              + "; ".join(f"{mb:.0f} ({name})" for mb, name in top))
        worst = max((mb for run in worker_peaks(out) for mb in run), default=math.nan)
        print(f"workers' own high-water marks: {worker_peaks(out)}; largest "
              f"{worst / 1024:.2f} GB (target < {args.max_worker_gb} GB)")
        ok = rc == 0 and worst < args.max_worker_gb * 1024
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    ref_dir = workdir / f"ref-{args.size}-w{args.workers}"
    if ((ref_dir / "manifest.json").exists()
            and json.loads((ref_dir / "manifest.json").read_text())["status"] == "complete"):
        ref_wall = json.loads((ref_dir / "manifest.json").read_text())["history"][-1][
            "units_wall_s"]
        print(f"reference run found in {ref_dir} (units wall time {ref_wall:.0f} s)")
        ref_peaks = {}
    else:  # (an incomplete reference, e.g. of --memory-only, is resumed)
        rc, ref_wall, ref_peaks = run_once(survey_command(args, mosaic, ir, ref_dir))
        print(f"reference run: exit {rc}, {ref_wall:.0f} s wall, {units_done(ref_dir)} units")
        ok &= rc == 0

    runs = [("reference", ref_dir, ref_peaks)]
    if args.kills:
        kill_dir = workdir / f"killed-{args.size}-w{args.workers}-k{args.kill_seed}"
        rng = np.random.default_rng(args.kill_seed)
        moments = np.sort(rng.uniform(0, ref_wall, args.kills))
        durations = np.diff(np.r_[0.0, moments])
        all_peaks = {}
        for i, d in enumerate(durations):
            before = units_done(kill_dir)
            outcome, wall, peaks = run_once(survey_command(args, mosaic, ir, kill_dir),
                                            kill_after=max(d, 0.5))
            all_peaks.update(peaks)
            print(f"kill {i + 1}/{args.kills} after {wall:6.1f} s (cumulative moment "
                  f"{moments[i]:6.0f} s): {outcome}; units on disk {before} -> "
                  f"{units_done(kill_dir)}", flush=True)
        rc, wall, peaks = run_once(survey_command(args, mosaic, ir, kill_dir))
        all_peaks.update(peaks)
        print(f"final rerun: exit {rc}, {wall:.0f} s wall, {units_done(kill_dir)} units")
        ok &= rc == 0
        same = same_catalogue(ref_dir / "catalog.ecsv", kill_dir / "catalog.ecsv")
        print(f"\nkilled-and-resumed catalogue identical to the reference (class, box, area; "
              f"scores to 1e-4): {same}")
        ok &= bool(same)
        runs.append(("killed", kill_dir, all_peaks))
    status = json.loads((ref_dir / "manifest.json").read_text())["status"]
    print(f"reference run status: {status}")
    ok &= status == "complete"
    for name, d, _ in runs:
        print(f"{name:>9}: {describe_quality(d, sim, args.match_radius)}")
    print("\npeak resident memory (MB), sampled every 0.5 s:")
    for name, _, peaks in runs:
        top = sorted(peaks.values(), reverse=True)[:6]
        print(f"  {name}: " + "; ".join(f"{mb:.0f} ({cmd})" for mb, cmd in top))
    recorded = [(name, worker_peaks(d)) for name, d, _ in runs]
    print("workers' own high-water marks (manifest history, per call that finished): "
          + "; ".join(f"{name} {peaks}" for name, peaks in recorded))
    worst = max((mb for _, peaks in recorded for run in peaks for mb in run), default=math.nan)
    print(f"largest worker peak {worst / 1024:.2f} GB (target < {args.max_worker_gb} GB)")
    ok &= worst < args.max_worker_gb * 1024
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

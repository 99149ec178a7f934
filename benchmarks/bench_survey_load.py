"""Load test of ``galcam survey``: a large mosaic, 2 workers, ``kill -9`` and resume.

Issue 24's load target: ``galcam survey`` on a simulated 16,000 x 16,000 pixel mosaic
(about 80 deg2 at 2"/px) with 2 workers finishes with a peak memory per worker under
2 GB and a complete catalogue, and a run killed with SIGKILL at random moments and rerun
gives the same catalogue as an uninterrupted run.

What the script does, with the CLI a user runs (``galcam survey ... --n-workers N``):

1. simulates the mosaic once (`galcam.datasets.simulate_mosaic`, the galaxy density of
   ``bench_survey.py``: 120 galaxies per 3000 x 3000 pixels), in ``--workdir``;
2. **reference run**: one uninterrupted survey; its wall time ``T``;
3. **killed run**: the same command in a fresh folder, killed with SIGKILL (the whole
   process group: the client, the dask scheduler, nannies and workers) at ``--kills``
   moments drawn uniformly in ``(0, T)`` of cumulative run time (seeded, sorted), rerun
   after each kill, then run to the end;
4. compares the two catalogues (same galaxies: class, bounding box and area identical,
   scores to 1e-4, see ``bench_survey.same_catalogue``), scores both against the
   mosaic's truth (completeness and reliability, class agnostic, mask IoU >= 0.5), and
   prints the peak resident memory of every process of each run (sampled every 0.5 s
   with psutil, and the workers' own high-water marks from the survey manifest).

Usage::

    python benchmarks/bench_survey_load.py                      # the issue's 16,000 px
    python benchmarks/bench_survey_load.py --size 6000 --kills 5  # quicker (11 deg2)

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model name or folder")
    parser.add_argument("--workdir", default="/tmp/galcam-bench-survey-load")
    parser.add_argument("--size", type=int, default=16000, help="mosaic side, pixels")
    parser.add_argument("--n-galaxies", type=int, default=None,
                        help="default: the density of bench_survey.py (120 per 3000^2 px)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--kill-seed", type=int, default=0)
    parser.add_argument("--no-ir", action="store_true", help="radio only")
    parser.add_argument("--max-worker-gb", type=float, default=2.0)
    parser.add_argument("--memory-only", type=int, default=None, metavar="N",
                        help="only measure memory: one run of N units (--max-units N), no "
                        "kills (for mosaics whose full run takes too long on this machine)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from galcam.datasets import simulate_mosaic

    workdir = Path(args.workdir)
    n_gal = args.n_galaxies or max(1, round(GALAXIES_PER_PIXEL * args.size**2))
    sim = workdir / f"mosaic{args.size}-s{args.seed}"
    if not (sim / "simulation.json").exists():
        t = time.perf_counter()
        simulate_mosaic(sim, size=args.size, n_galaxies=n_gal, seed=args.seed,
                        overview=False, overwrite=True)
        print(f"simulated a {args.size} x {args.size} mosaic ({n_gal} galaxies requested) "
              f"in {time.perf_counter() - t:.0f} s")
    mosaic = sim / "radio" / "mosaic.fits"
    ir = None if args.no_ir else sim / "ir" / "mosaic_w1.fits"
    area, _ = mosaic_area_deg2(mosaic)
    print(f"mosaic {mosaic}: {area:.2f} deg2 with data; {args.workers} workers, "
          f"{os.cpu_count()} cores")

    ok = True
    if args.memory_only:
        out = workdir / f"memory-{args.size}-w{args.workers}"
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
    if (ref_dir / "manifest.json").exists() and (ref_dir / "catalog.ecsv").exists():
        ref_wall = json.loads((ref_dir / "manifest.json").read_text())["history"][-1][
            "units_wall_s"]
        print(f"reference run found in {ref_dir} (units wall time {ref_wall:.0f} s)")
        ref_peaks = {}
    else:
        rc, ref_wall, ref_peaks = run_once(survey_command(args, mosaic, ir, ref_dir))
        print(f"reference run: exit {rc}, {ref_wall:.0f} s wall, {units_done(ref_dir)} units")
        ok &= rc == 0

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
              f"{units_done(kill_dir)}")
    rc, wall, peaks = run_once(survey_command(args, mosaic, ir, kill_dir))
    all_peaks.update(peaks)
    print(f"final rerun: exit {rc}, {wall:.0f} s wall, {units_done(kill_dir)} units")
    ok &= rc == 0

    same = same_catalogue(ref_dir / "catalog.ecsv", kill_dir / "catalog.ecsv")
    print(f"\nkilled-and-resumed catalogue identical to the reference (class, box, area; "
          f"scores to 1e-4): {same}")
    ok &= bool(same)
    classes = json.loads((ref_dir / "predictions.categories.json").read_text())
    classes = [c["name"] for c in sorted(classes["categories"], key=lambda c: c["id"])]
    for name, d in (("reference", ref_dir), ("killed", kill_dir)):
        q = quality(d, sim / "annotations.json", classes)
        print(f"{name:>9}: {q['n_pred']} galaxies, {q['n_true']} true; completeness "
              f"{q['completeness']:.3f}, reliability {q['reliability']:.3f} "
              f"(class agnostic, mask IoU >= 0.5)")
    print("\npeak resident memory (MB), sampled every 0.5 s:")
    for label, peaks in (("reference", ref_peaks), ("killed runs", all_peaks)):
        top = sorted(peaks.values(), reverse=True)[:6]
        print(f"  {label}: " + "; ".join(f"{mb:.0f} ({name})" for mb, name in top))
    recorded = worker_peaks(kill_dir)
    print(f"workers' own high-water marks (manifest history, per run that finished): "
          f"{recorded}; reference: {worker_peaks(ref_dir)}")
    worst = max((mb for run in recorded + worker_peaks(ref_dir) for mb in run), default=math.nan)
    print(f"largest worker peak {worst / 1024:.2f} GB (target < {args.max_worker_gb} GB)")
    ok &= worst < args.max_worker_gb * 1024
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of galcam's predictor: cutouts per second, per stage, serial and pipelined.

What it measures, on a set of EMU-like cutouts (``galcam simulate``: 210 x 210 pixels of
2", with a WISE W1 image each; or any ``--coco`` set):

1. **Where the time goes** in the serial engine (`WeakSegmenter.predict_dataset` with
   ``workers=0``): reading and encoding, the networks, the instance step, the merge and
   hosts, each as seconds per cutout (wall time of that stage in this process).
2. **End to end** for each configuration asked for (``--configs``): serial with N torch
   threads (``serial:N``) and the pipelined engine with W worker processes
   (``piped:W``, the networks on this process's torch threads): cutouts per second,
   seconds per cutout, peak memory of this process and of the workers, and whether the
   predictions are the same as those of the first configuration (COCO results: identical,
   or the same detections, classes, boxes and masks with scores within 1e-4).
3. **Survey rates**, extrapolated from cutouts per second: a survey unit is one
   210-pixel tile, and with the survey's default overlap of 1/3 each unit adds
   (140 x 2")^2 = 0.00605 deg2 of sky; EMU-PS (270 deg2) and full EMU (20,000 deg2).

The quality and cost of cheaper CAM views and of bfloat16 are measured by
``benchmarks/bench_views.py`` on validation sets.

Usage::

    python benchmarks/bench_throughput.py                       # 64 cutouts, CPU
    python benchmarks/bench_throughput.py --n 200 --configs serial:1,serial:2,piped:1,piped:2
    python benchmarks/bench_throughput.py --device cuda --batch-size 32 --configs serial:16,piped:8

Prints a table; exits 1 when a configuration's predictions differ from the first one's by
more than float noise (the same detections, classes, boxes and masks, scores within 1e-4:
another number of torch threads sums in another order).
"""

import argparse
import json
import logging
import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

from galcam.models.spec import PRECISION_NAMES

UNIT_DEG2 = (140 * 2.0 / 3600.0) ** 2  # new sky per 210-px unit at overlap 1/3, 2"/px
EMU_PILOT_DEG2 = 270.0
EMU_FULL_DEG2 = 20000.0


def make_cutouts(workdir, n, seed):
    """A simulated set of ``n`` cutouts (``galcam simulate``; reused when it is there)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_views import validation_sets

    (images, _, _), = validation_sets(workdir, f"galcam:{seed}:{n}").values()
    return images


class StageClock:
    """Wall time per stage of one segmenter, by wrapping its stages (this benchmark only)."""

    def __init__(self, seg):
        self.seconds = defaultdict(float)
        self.seg = seg
        clock = self
        prepare, finalize, group = seg._prepare_record, seg._finalize, seg._group_tile
        networks, hosts = seg._networks, seg._host_finder

        def timed(name, fn):
            def call(*args, **kwargs):
                t = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    clock.seconds[name] += time.perf_counter() - t
            return call

        def prepare_record(*args, **kwargs):
            t = time.perf_counter()
            job, items = prepare(*args, **kwargs)
            clock.seconds["read + plan"] += time.perf_counter() - t

            def gen():
                it = iter(items)
                while True:
                    t = time.perf_counter()
                    try:
                        item = next(it)
                    except StopIteration:
                        clock.seconds["encode tiles"] += time.perf_counter() - t
                        return
                    clock.seconds["encode tiles"] += time.perf_counter() - t
                    yield item
            return job, gen()

        class Networks:
            spec, device = networks.spec, networks.device
            __call__ = staticmethod(timed("networks", networks))

        seg._prepare_record = prepare_record
        seg._networks = Networks()
        seg._group_tile = timed("instance step", group)
        seg._finalize = timed("merge + hosts", finalize)
        if hosts is not None:
            seg._host_finder = timed("  of which hosts", hosts)


def child_peak_mb():
    """Largest resident set of a finished child process (workers), MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def own_peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compare(results, reference):
    """'identical', 'float noise (scores to X)' or 'DIFFER (...)' for two COCO result lists.

    Float noise: the same detections (image, class, box, mask) with scores within 1e-4
    (torch sums in another order with another number of threads).
    """
    import numpy as np

    if json.dumps(results, sort_keys=True) == json.dumps(reference, sort_keys=True):
        return "identical"
    if len(results) != len(reference):
        return f"DIFFER ({len(results)} vs {len(reference)} detections)"

    def key(r):
        return (r["image_id"], r["category_id"], tuple(r["bbox"]),
                json.dumps(r["segmentation"], sort_keys=True))

    a, b = sorted(results, key=key), sorted(reference, key=key)
    if [key(r) for r in a] != [key(r) for r in b]:
        n = sum(key(x) != key(y) for x, y in zip(a, b, strict=True))
        return f"DIFFER ({n} of {len(a)} detections: class, box or mask)"
    diff = max(abs(x["score"] - y["score"]) for x, y in zip(a, b, strict=True))
    hosts = max((float(np.abs(np.subtract(x["keypoints"], y["keypoints"])).max())
                 for x, y in zip(a, b, strict=True) if "keypoints" in x), default=0.0)
    if diff <= 1e-4:
        return f"float noise (scores to {diff:.0e}, hosts to {hosts:.0e} px)"
    return f"DIFFER (scores by up to {diff:.2g})"


def run_config(model, coco, config, *, device, batch_size, precision, workdir):
    """Predict the set once (after a warm-up on its first images); seconds and results.

    The warm-up set is written into ``workdir``, never beside the user's data set.
    """
    import torch

    from galcam import WeakSegmenter

    kind, _, rest = config.partition(":")
    n, _, threads = rest.partition(":")
    n = int(n or 1)
    seg = WeakSegmenter.load(model, device=device, precision=precision)
    workers = 0
    if kind == "serial":
        torch.set_num_threads(n)
    elif kind == "piped":
        workers = n
        torch.set_num_threads(int(threads) if threads
                              else max(1, (os.cpu_count() or 1) - n))
    else:
        raise SystemExit(f"--configs: unknown configuration {config!r} (serial:N or piped:W)")
    warm = json.loads(Path(coco).read_text())
    warm["images"] = warm["images"][:batch_size]
    warm.pop("annotations", None)
    warm_path = Path(workdir) / "warmup.json"
    warm_path.parent.mkdir(parents=True, exist_ok=True)
    warm_path.write_text(json.dumps(warm))
    seg.predict_dataset(warm_path, image_dir=Path(coco).parent, progress=False,
                        batch_size=batch_size)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    results = seg.predict_dataset(coco, progress=False, batch_size=batch_size, workers=workers)
    seconds = time.perf_counter() - t
    gpu_mb = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
              else float("nan"))
    return seconds, results, torch.get_num_threads(), gpu_mb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model name or folder")
    parser.add_argument("--coco", default=None, help="a COCO set of FITS images "
                        "(default: simulated cutouts)")
    parser.add_argument("--n", type=int, default=64, help="simulated cutouts (default 64)")
    parser.add_argument("--seed", type=int, default=5005)
    parser.add_argument("--workdir", default="/tmp/galcam-bench-throughput")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--precision", default="float32",
                        choices=PRECISION_NAMES,
                        help="arithmetic of the network passes in every configuration "
                        "(predictions are compared within one precision)")
    parser.add_argument("--configs", default="serial:1,serial:2,piped:1",
                        help="comma-separated serial:THREADS / piped:WORKERS[:THREADS] "
                        "(piped: torch threads default to the cores less the workers)")
    parser.add_argument("--profile-threads", type=int, default=1,
                        help="torch threads for the per-stage profile (default 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    from galcam import WeakSegmenter

    coco = Path(args.coco) if args.coco else make_cutouts(args.workdir, args.n, args.seed)
    n_images = len(json.loads(coco.read_text())["images"])
    print(f"{n_images} images from {coco}; device {args.device}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, batch size {args.batch_size}, {args.precision}")

    # 1. per stage, serial engine
    torch.set_num_threads(args.profile_threads)
    seg = WeakSegmenter.load(args.model, device=args.device, precision=args.precision)
    clock = StageClock(seg)
    seg.predict_dataset(coco, progress=False, batch_size=args.batch_size)  # warm-up
    clock.seconds.clear()
    t = time.perf_counter()
    seg.predict_dataset(coco, progress=False, batch_size=args.batch_size)
    total = time.perf_counter() - t
    print(f"\nwhere the time goes (serial engine, {args.profile_threads} torch thread(s)), "
          "seconds per cutout:")
    stages = ("read + plan", "encode tiles", "networks", "instance step", "merge + hosts",
              "  of which hosts")
    for name in stages:
        print(f"  {name:<18} {clock.seconds[name] / n_images:7.4f}")
    rest = total - sum(clock.seconds[s] for s in stages[:-1])
    print(f"  {'rest':<18} {rest / n_images:7.4f}\n  {'total':<18} {total / n_images:7.4f}")

    # 2. end to end
    ok = True
    reference = None
    print(f"\n{'configuration':<16} {'threads':>7} {'s/cutout':>9} {'cutouts/s':>10} "
          f"{'deg2/h':>8} {'EMU-PS h':>9} {'EMU h':>8} {'peak MB':>8} {'workers MB':>10} "
          f"{'GPU MB':>7}  predictions")
    for config in args.configs.split(","):
        seconds, results, threads, gpu_mb = run_config(
            args.model, coco, config, device=args.device, batch_size=args.batch_size,
            precision=args.precision, workdir=args.workdir)
        rate = n_images / seconds
        # the largest finished child so far (getrusage keeps no per-run figure): only
        # meaningful for the pipelined configurations
        workers_mb = f"{child_peak_mb():.0f}" if config.startswith("piped") else "-"
        deg2_h = rate * 3600 * UNIT_DEG2
        same = "reference" if reference is None else compare(results, reference)
        if reference is None:
            reference = results
        ok &= not same.startswith("DIFFER")
        print(f"{config:<16} {threads:>7} {seconds / n_images:9.4f} {rate:10.2f} "
              f"{deg2_h:8.2f} {EMU_PILOT_DEG2 / deg2_h:9.2f} {EMU_FULL_DEG2 / deg2_h:8.0f} "
              f"{own_peak_mb():8.0f} {workers_mb:>10} {gpu_mb:7.0f}  {same}",
              flush=True)

    print("\nunit = one 210-px tile; deg2/h counts the new sky of a unit at the survey's "
          f"overlap of 1/3 ({UNIT_DEG2:.5f} deg2); peaks are resident set high-water marks "
          "(workers: the largest worker process so far)")
    print("PASS" if ok else "FAIL: predictions differ between configurations beyond float "
          "noise")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Survey-scale throughput, memory and quality of `galcam.survey.SurveyRunner`.

Simulates one EMU-like mosaic (`galcam.datasets.simulate_mosaic`, 3000 x 3000 pixels of
2 arcsec by default, i.e. 2.8 deg2), runs a trained model over it with the
`~galcam.survey.SurveyRunner` in one process and on local dask clusters of 1 and 2
workers, and reports for each run:

* throughput in deg2 per hour (mosaic area with data / wall time of the units) and the
  measured cost per unit (worker-busy seconds per unit);
* the peak resident memory of each worker process (VmHWM);
* completeness and reliability of the merged catalogue against the mosaic's truth (class
  agnostic, mask IoU >= 0.5, `galcam.evaluation.match_instances`), and whether the runs
  give identical catalogues;

then extrapolates the wall time of the EMU pilot survey (270 deg2) and of the full EMU
survey (20 000 deg2) from the measured cost per unit, for N workers of the kind measured
(run it with ``--device cuda`` on a GPU machine for GPU figures; the estimate assumes the
per-unit cost stays the same and that the workers scale linearly, as the 1 -> 2 worker
measurement checks).

Usage::

    python benchmarks/bench_survey.py --model MODELDIR --workdir /tmp/galcam-bench-survey
    python benchmarks/bench_survey.py --model MODELDIR --size 1000 --workers 0,2  # quicker
"""

import argparse
import json
import logging
import math
import os
import time
from pathlib import Path

from galcam.models.spec import PRECISION_NAMES

EMU_PILOT_DEG2 = 270.0
EMU_FULL_DEG2 = 20000.0


def mosaic_area_deg2(path):
    import numpy as np
    from astropy.wcs.utils import proj_plane_pixel_area

    from galcam.io import read_image

    image = read_image(path, memmap=True)
    finite = 0
    for y0 in range(0, image.data.shape[0], 512):
        finite += int(np.isfinite(image.data[y0:y0 + 512]).sum())
    return finite * proj_plane_pixel_area(image.wcs.celestial), image


def quality(outdir, truth_path, classes):
    from galcam.evaluation import load_predictions, load_truth, match_instances

    truth = load_truth(str(truth_path))
    preds = json.loads((outdir / "predictions.json").read_text())
    image_id = truth["images"][0]["id"]
    for p in preds:
        p["image_id"] = image_id
    cats = [{"id": i + 1, "name": c} for i, c in enumerate(classes)]
    preds = load_predictions(preds, truth, pred_categories=cats)
    m = match_instances(truth, preds, iou_threshold=0.5)
    return {"n_true": m.n_true, "n_pred": m.n_pred, "n_matched": m.n_matched,
            "completeness": m.n_matched / m.n_true if m.n_true else math.nan,
            "reliability": m.n_matched / m.n_pred if m.n_pred else math.nan}


def one_run(args, mosaic, ir, outdir, n_workers, area, max_units):
    from galcam.survey import SurveyRunner

    options = {} if args.precision == "float32" else {"precision": args.precision}
    runner = SurveyRunner(args.model, n_workers=n_workers, device=args.device,
                          batch_size=args.batch_size, model_options=options,
                          torch_threads=args.torch_threads
                          or max(1, args.cores // max(n_workers, 1)))
    if n_workers == 0:
        import torch

        torch.set_num_threads(args.torch_threads or args.cores)
    t0 = time.perf_counter()
    # resumes a run of the same settings: throughput counts the units of this call only
    result = runner.run(mosaic, ir, output_dir=outdir, progress=False, max_units=max_units)
    wall = time.perf_counter() - t0
    hist = result.manifest["history"][-1]
    workers = hist["workers"]
    n_done = hist["units_processed"]
    busy = sum(w["busy_s"] for w in workers.values())
    deg2_per_unit = area / len(result.units)
    units_wall = hist["units_wall_s"]
    return {
        "n_workers": n_workers, "mode": hist["mode"], "units_total": len(result.units),
        "units_this_call": n_done, "complete": result.complete, "galaxies": len(result),
        "wall_s": round(wall, 1), "units_wall_s": units_wall,
        "deg2_per_hour": round(n_done * deg2_per_unit / units_wall * 3600, 3)
        if n_done else math.nan,
        "busy_s_per_unit": round(busy / n_done, 3) if n_done else math.nan,
        "peak_rss_mb_per_worker": sorted(round(w["peak_rss_mb"]) for w in workers.values()),
        "devices": hist["devices"],
        "catalog": str(result.paths["table"]),
        "classes": list(result.result.classes),
    }


def same_catalogue(path_a, path_b, score_atol=1e-4):
    """Same galaxies (class, bounding box, area) with scores equal to ``score_atol``.

    Runs with different numbers of torch threads differ in the last bits of the network
    outputs (float32 sums in another order), hence the tolerance on the scores.
    """
    import numpy as np
    from astropy.table import QTable

    a, b = QTable.read(path_a), QTable.read(path_b)
    if len(a) != len(b):
        return False
    keys = ("class", "bbox_xmin", "bbox_ymin", "bbox_xmax", "bbox_ymax")
    return (all(np.array_equal(a[k], b[k]) for k in keys)
            and np.array_equal(a["area"].value, b["area"].value)
            and bool(np.allclose(a["score"], b["score"], atol=score_atol)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained model folder")
    parser.add_argument("--workdir", default="/tmp/galcam-bench-survey")
    parser.add_argument("--size", type=int, default=3000, help="mosaic side, pixels")
    parser.add_argument("--n-galaxies", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", default="1,2",
                        help="comma-separated worker counts (0 = in process, no dask)")
    parser.add_argument("--cores", type=int, default=2, help="CPU cores shared by the workers")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch threads per worker (default: --cores divided among the "
                        "workers; 1 measures how the workers scale)")
    parser.add_argument("--precision", default="float32",
                        choices=PRECISION_NAMES,
                        help="arithmetic of the network passes (a model option)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--no-ir", action="store_true", help="radio only")
    parser.add_argument("--max-units", default=None,
                        help="comma-separated: at most this many units per run (one value per "
                        "--workers entry; 0 = all); partial runs give throughput only, and a "
                        "rerun resumes them")
    parser.add_argument("--tag", default="", help="suffix of the run folders (a fresh set)")
    parser.add_argument("--gpus", default="1,4,16,64",
                        help="worker counts for the EMU wall-time estimate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("distributed").setLevel(logging.ERROR)

    from galcam.datasets import simulate_mosaic

    workdir = Path(args.workdir)
    sim = workdir / f"mosaic{args.size}-s{args.seed}"
    if not (sim / "simulation.json").exists():
        t = time.perf_counter()
        simulate_mosaic(sim, size=args.size, n_galaxies=args.n_galaxies, seed=args.seed,
                        overview=False, overwrite=True)
        print(f"simulated {args.size} x {args.size} mosaic in {time.perf_counter() - t:.0f} s")
    mosaic = sim / "radio" / "mosaic.fits"
    ir = None if args.no_ir else sim / "ir" / "mosaic_w1.fits"
    area, _ = mosaic_area_deg2(mosaic)
    print(f"mosaic: {mosaic} ({area:.3f} deg2 with data), IR: {ir}")

    runs = []
    counts = [int(v) for v in args.workers.split(",")]
    limits = ([int(v) or None for v in args.max_units.split(",")] if args.max_units
              else [None] * len(counts))
    for n, limit in zip(counts, limits, strict=True):
        out = workdir / f"run-{args.size}-w{n}{args.tag}"
        r = one_run(args, mosaic, ir, out, n, area, limit)
        classes = r.pop("classes")
        if r["complete"]:
            r.update(quality(out, sim / "annotations.json", classes))
        runs.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "catalog"}))
    full = [r for r in runs if r["complete"]]
    same = all(same_catalogue(r["catalog"], full[0]["catalog"]) for r in full)
    print(f"\nsame catalogue in every complete run (scores to 1e-4): {same} ({len(full)} runs)")
    print(f"\n{'workers':>8} {'units':>9} {'galaxies':>8} {'deg2/h':>8} {'s/unit':>7} "
          f"{'peak MB/worker':>16} {'complete':>8} {'reliable':>8}")
    for r in runs:
        print(f"{r['n_workers']:>8} {r['units_this_call']:>4}/{r['units_total']:<4} "
              f"{r['galaxies']:>8} {r['deg2_per_hour']:>8.3f} {r['busy_s_per_unit']:>7.2f} "
              f"{str(r['peak_rss_mb_per_worker']):>16} "
              f"{r.get('completeness', math.nan):>8.2f} {r.get('reliability', math.nan):>8.2f}")
    best = max(runs, key=lambda r: r["deg2_per_hour"])
    units_per_deg2 = best["units_total"] / area
    cost = best["busy_s_per_unit"]
    device = ",".join(best["devices"]) or args.device
    print(f"\nestimate from {best['units_total']} units on {area:.2f} deg2 ({units_per_deg2:.0f} "
          f"units/deg2) at {cost:.2f} s per unit per worker ({device}):")
    for n in (int(v) for v in args.gpus.split(",")):
        for name, deg2 in (("EMU pilot", EMU_PILOT_DEG2), ("EMU full", EMU_FULL_DEG2)):
            hours = deg2 * units_per_deg2 * cost / n / 3600
            print(f"  {name:9} {deg2:>7.0f} deg2 on {n:>3} workers: {hours:10.1f} h "
                  f"({hours / 24:.1f} d)")
    (workdir / "bench_survey.json").write_text(json.dumps(
        {"runs": runs, "area_deg2": area, "identical": same, "cpu_count": os.cpu_count()},
        indent=1))


if __name__ == "__main__":
    main()

"""Time the instance step alone: each grouping method on the same networks' outputs.

The networks run once per cutout (`WeakSegmenter.tile_evidence`); then every method of
``--methods`` groups the same tile evidence (`galcam.inference.GalaxyGrouper`), twice in
turn, on one thread, and the script prints milliseconds per tile and the number of
galaxies each made.

    python benchmarks/bench_instance_step.py --data DIR [--n 60] [--methods grouped,rules]
"""

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder with images.json")
    parser.add_argument("--model", default="default")
    parser.add_argument("--n", type=int, default=60, help="cutouts (default 60)")
    parser.add_argument("--methods", default="grouped,rules")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    import torch

    from galcam import WeakSegmenter
    from galcam.inference import GalaxyGrouper

    torch.set_num_threads(1)
    seg = WeakSegmenter.load(args.model, device="cpu")
    folder = Path(args.data)
    images = json.loads((folder / "images.json").read_text())["images"][:args.n]
    evidence = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for im in images:
            ir = folder / im["ir_file_name"] if im.get("ir_file_name") else None
            evidence.extend(e for _, e in seg.tile_evidence(folder / im["file_name"], ir))
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for _ in range(2):
        for method in methods:
            grouper = GalaxyGrouper(method)
            settings = grouper.settings(seg.spec)
            t = time.perf_counter()
            n = sum(len(grouper(e, settings)) for e in evidence)
            ms = (time.perf_counter() - t) / len(evidence) * 1000
            print(f"{method:<8} {ms:6.1f} ms per tile, {n} galaxies in {len(evidence)} tiles",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

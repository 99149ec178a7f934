"""Host finding with the true masks: how often the 'core' rule lands within 3" of the truth.

Runs `galcam.models.find_core_host` on the window around every true mask of a simulated
data set (the mask's bounding box plus the margin `galcam.inference.WeakSegmenter`
uses, 6 pixels) and prints, per class, the fraction of hosts within 3" of the true host
keypoint. This isolates the host rule from the segmentation: the masks are the truth, the
infrared and radio channels are the paper's pre-processed ones.

    python benchmarks/bench_hosts.py VAL_DIR [--n 150] [--max-distance PIXELS]
        [--search-scale 1.25] [--min-search 3] [--radio-weight 0.5]

``VAL_DIR`` is a folder written by ``galcam simulate`` (``annotations.json`` with masks
and host keypoints). Use a validation set for choosing settings, not the test set.
"""

import argparse
import collections
import logging
import math
from pathlib import Path

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="data set folder (galcam simulate output)")
    parser.add_argument("--n", type=int, default=None, help="first N images only")
    parser.add_argument("--max-distance", type=float, default=None,
                        help="fixed search radius in pixels ('inf' for none); default: "
                             "the size-dependent radius")
    parser.add_argument("--search-scale", type=float, default=1.25)
    parser.add_argument("--radio-weight", type=float, default=0.5,
                        help="weight of the radio brightness at a candidate (0: nearest source)")
    parser.add_argument("--min-search", type=float, default=3.0)
    parser.add_argument("--tolerance", type=float, default=3.0, help="arcsec (3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from astropy import units as u
    from astropy.wcs.utils import proj_plane_pixel_scales

    from galcam.datasets import CocoDataset
    from galcam.inference.segmenter import HOST_MARGIN as margin
    from galcam.models.host_rules import find_core_host
    from galcam.preprocessing import CutoutEncoder

    annotations = args.folder / "annotations.json"
    if not annotations.is_file():
        parser.error(f"{annotations}: no such file (expected a galcam simulate folder)")
    ds = CocoDataset(annotations)
    encoder = CutoutEncoder()
    hits = collections.defaultdict(list)
    for k, rec in enumerate(ds):
        if args.n is not None and k >= args.n:
            break
        cut = encoder(rec.read_radio(), rec.read_ir())
        radio, ir = cut.paper_channels()
        arcsec_per_px = float((proj_plane_pixel_scales(cut.wcs.celestial)[0] * u.deg).to(u.arcsec)
                              .value)
        truth = ds.annotations(rec.image_id)
        for mask, kp, cls in zip(truth.masks, truth.keypoints, truth.classes):
            ys, xs = np.nonzero(mask)
            ya, yb = max(ys.min() - margin, 0), min(ys.max() + 1 + margin, mask.shape[0])
            xa, xb = max(xs.min() - margin, 0), min(xs.max() + 1 + margin, mask.shape[1])
            host = find_core_host(mask[ya:yb, xa:xb], ir[ya:yb, xa:xb], radio[ya:yb, xa:xb],
                                  max_distance=args.max_distance,
                                  search_scale=args.search_scale, min_search=args.min_search,
                                  radio_weight=args.radio_weight)
            offset = math.hypot(host.x + xa - kp[0], host.y + ya - kp[1]) * arcsec_per_px
            hits[cls].append(offset < args.tolerance)
    every = np.concatenate([np.asarray(v) for v in hits.values()])
    print(f"{args.folder}: {every.size} galaxies, hosts within {args.tolerance:g}\" of the truth "
          f"(true masks): {every.mean():.3f}")
    for cls in sorted(hits):
        print(f"  {cls:6s} {len(hits[cls]):4d}  {np.mean(hits[cls]):.3f}")


if __name__ == "__main__":
    main()

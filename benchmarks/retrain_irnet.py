"""Retrain only the IRNet of a model folder, keeping its classifier, with other IRNet settings.

A command-line front end of `galcam.training.retrain_irnet`. An experiment tool for the
instance step: the CAM/ReCAM classifier of ``--model`` is kept bit for bit, IRNet's
labels are made from its CAMs on ``--train`` exactly as `galcam.training.train_weak_model`
makes them (image-level labels only), and IRNet is trained again with the model's
recorded hyper-parameters, changed by ``--set``. The new model folder (``-o``) holds the
same ``cam.pt`` and a new ``irnet.pt``; its ``config.json`` records the new IRNet
settings and ``metrics.json`` the new IRNet losses. Score it with ``calibrate_model.py``,
``bench_independent.py`` or ``bench_grouping.py``.

    python benchmarks/retrain_irnet.py --model default --train TRAIN_DIR -o OUT
        [--set irnet_epochs=10] [--set 'irnet_scale_range=[0.9,1.1]'] [--seed 0]

``TRAIN_DIR`` is a COCO data set (``annotations.json``; only its image-level classes are
read), ideally the model's own training set.
"""

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model folder or name")
    parser.add_argument("--train", required=True, help="training data set folder")
    parser.add_argument("-o", "--output", required=True, help="new model folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="IRNet hyper-parameter (irnet_*, irnet_radius), JSON value")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("irnet_"):
            parser.error(f"--set: expected irnet_KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    out = Path(args.output)
    if out.exists():
        parser.error(f"-o: '{out}' exists; choose a new folder")
    train_dir = Path(args.train)
    if not (train_dir / "annotations.json").is_file():
        parser.error(f"--train: '{train_dir}' has no annotations.json")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")

    from galcam.datasets import CocoDataset
    from galcam.inference import resolve_model
    from galcam.training import retrain_irnet

    dataset = CocoDataset(train_dir / "annotations.json", image_dir=train_dir)
    result = retrain_irnet(resolve_model(args.model), dataset, output_dir=out, seed=args.seed,
                           **overrides)
    print(f"IRNet labels: {result.metrics['ir_labels']}")
    for row in result.history:
        print(f"epoch {row['epoch']}: loss {row['train_loss']:.3f}, displacement (fg) "
              f"{row.get('train_dp_fg', float('nan')):.3f}, {row['seconds']:.0f} s")
    print(f"IRNet retrained in {result.config['irnet_retrained']['seconds']:.0f} s; model "
          f"folder {result.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

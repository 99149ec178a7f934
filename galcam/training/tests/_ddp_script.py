"""Run by test_distributed under torchrun: train a tiny model with 2 processes."""

import json
import logging
import os
import sys
from pathlib import Path

import torch

from galcam.datasets import CocoDataset
from galcam.training import train_weak_model
from galcam.training.tests._tiny import TINY


def main():
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO)
    annotations, out = Path(sys.argv[1]), Path(sys.argv[2])
    result = train_weak_model(CocoDataset(annotations), output_dir=out, seed=1, device="cpu",
                              progress=False, **{**TINY, "cam_epochs": 1})
    summary = {"rank": int(os.environ["RANK"]), "world_size": result.world_size,
               "epochs": len(result.history)}
    print("RESULT " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()

"""train_weak_model under torchrun with 2 CPU processes (gloo)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

from galcam.models import load_model_folder

from ._tiny import make_dataset

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available")


def test_torchrun_two_cpu_processes(tmp_path):
    annotations = make_dataset(tmp_path / "data", n=8, size=40)
    out = tmp_path / "model"
    script = Path(__file__).with_name("_ddp_script.py")
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(annotations), str(out)],
        capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the two processes share stdout, so their lines may run together
    results = [json.loads(m) for m in re.findall(r"RESULT (\{[^}]*\})", proc.stdout)]
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["world_size"] == 2 and r["epochs"] == 3 for r in results)
    config, states, metrics = load_model_folder(out)
    assert config["training"]["world_size"] == 2
    assert set(states) == {"cam", "irnet"}
    # only rank 0 logs the per-epoch lines (once per epoch and stage)
    assert proc.stderr.count("trainer:cam epoch 1/1") == 1
    assert not list(out.glob(".model-staging*"))

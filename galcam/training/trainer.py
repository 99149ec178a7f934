"""The training loop shared by the CAM, ReCAM and IRNet stages.

`run_stage` trains one network for a number of epochs with SGD and the poly learning
rate schedule of the reference (``lr * (1 - t / T) ** power`` before step ``t`` of
``T``), mixed precision on CUDA, DistributedDataParallel under torchrun, a tqdm bar on
rank 0, and a checkpoint after every epoch. A run that is killed resumes from its last
checkpoint and ends with the same weights as an uninterrupted one: the shuffling of
epoch ``e`` and the augmentation of every image depend only on ``(seed, stage, e)``,
and the checkpoint holds the model, the optimiser (momentum buffers), the scheduler
step, the gradient scaler and the random-number generator states.
"""

import hashlib
import json
import logging
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_write

__all__ = ["StageRun", "run_stage", "load_checkpoint", "save_checkpoint", "fingerprint",
           "rng_state", "set_rng_state", "seed_everything", "CheckpointError"]

log = logging.getLogger(__name__)

#: Version of the checkpoint layout.
CHECKPOINT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used to resume this run."""


def fingerprint(obj):
    """A short SHA-256 of a JSON-serialisable description (identifies a run's setup)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def seed_everything(seed):
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_state():
    """The global RNG states as tensors and numbers (loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": gauss},
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restore states saved by `rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state(("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path, payload):
    """Write a checkpoint atomically (temporary file in the same folder, then rename)."""
    atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path, *, expected_fingerprint=None):
    """Read a checkpoint written by `run_stage` (``torch.load(weights_only=True)``).

    Raises
    ------
    CheckpointError
        The file cannot be read, has another layout version, or belongs to a run with
        another configuration or data set (``expected_fingerprint``).
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several exception types for bad files
        raise CheckpointError(f"'{path}': unreadable checkpoint ({type(exc).__name__}: {exc}); "
                              "delete it or pass resume=False") from exc
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"'{path}': not a galcam training checkpoint of version "
                              f"{CHECKPOINT_VERSION}")
    if expected_fingerprint is not None and ckpt.get("fingerprint") != expected_fingerprint:
        raise CheckpointError(
            f"'{path}': written by a run with another configuration, data set, seed or number "
            "of processes; use another output_dir, or resume=False to start again")
    return ckpt


class StageRun:
    """What `run_stage` needs to train one network.

    Parameters
    ----------
    name : str
        Stage name (``'cam'``, ``'recam'``, ``'irnet'``), used for the checkpoint file and
        the log.
    module : `torch.nn.Module`
        The trainable module; ``loss_fn(module_or_ddp, batch)`` is called with it (wrapped
        in DistributedDataParallel when distributed).
    param_groups : list of dict
        Optimiser groups (``params``, ``lr``, ``weight_decay``).
    dataset : `torch.utils.data.Dataset`
        Has ``set_epoch(epoch)`` (seeded augmentation).
    stage : `~galcam.training.StageConfig`
    loss_fn : callable
        ``loss_fn(model, batch) -> (loss tensor, dict of float metrics)``.
    validate : callable, optional
        ``validate(module) -> dict of float`` run on rank 0 after every epoch.
    find_unused_parameters : bool
        Passed to DistributedDataParallel.
    """

    def __init__(self, name, module, param_groups, dataset, stage, loss_fn, *, validate=None,
                 find_unused_parameters=False):
        self.name = name
        self.module = module
        self.param_groups = param_groups
        self.dataset = dataset
        self.stage = stage
        self.loss_fn = loss_fn
        self.validate = validate
        self.find_unused_parameters = find_unused_parameters


def _worker_init(worker_id):
    # torch seeds each worker with base_seed + worker_id; derive numpy/random from it
    seed = torch.initial_seed() % (2**32)
    np.random.seed(seed)
    random.seed(seed)


def _progress_enabled(progress, ctx):
    return bool(progress) and ctx.is_main and sys.stderr.isatty()


def _step_schedule(scheduler):
    """Advance the poly schedule by one step, also when the optimizer skipped it.

    The gradient scaler skips the optimizer on its first steps while it calibrates; the
    schedule still counts those steps. torch warns about that on a scheduler's first
    step only, so the warning filter is set there and nowhere else (setting filters
    resets the once-per-location registries of every other warning).
    """
    if scheduler.last_epoch > 0:
        scheduler.step()
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler",
                                category=UserWarning)
        scheduler.step()


def run_stage(run, ctx, *, seed, checkpoint_path, run_fingerprint, resume=True, progress=True,
              amp=True, num_workers=0):
    """Train one stage, checkpointing every epoch; resume from a checkpoint if present.

    Parameters
    ----------
    run : `StageRun`
    ctx : `~galcam.training.distributed.DistContext`
    seed : int
        Seed of the shuffling (the sampler's ``seed``) and of the DataLoader.
    checkpoint_path : path-like
        ``output_dir/checkpoints/<stage>.pt``; written by rank 0 after every epoch.
    run_fingerprint : str
        Identifies the configuration and data; a checkpoint with another one is refused.
    resume : bool
        Continue from ``checkpoint_path`` if it exists (else start again and overwrite it).
    progress : bool
        tqdm bar over the batches (rank 0, terminals only).
    amp : bool
        float16 autocast and gradient scaling on CUDA (ignored on the CPU).
    num_workers : int
        DataLoader worker processes.

    Returns
    -------
    history : list of dict
        One row per epoch: ``stage``, ``epoch`` (1-based), ``train_loss``, extra training
        metrics, validation metrics (``val_*``), ``seconds``.
    """
    from torch.utils.data import DataLoader, DistributedSampler

    st = run.stage
    device = ctx.device
    module = run.module.to(device)
    checkpoint_path = Path(checkpoint_path)
    sampler = DistributedSampler(run.dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                 shuffle=True, seed=seed, drop_last=True)
    steps_per_epoch = len(sampler) // st.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{run.name}: {len(run.dataset)} training images give no complete batch "
                         f"of {st.batch_size} per process ({ctx.world_size} process(es)); "
                         f"lower {run.name}_batch_size or add images")
    max_step = steps_per_epoch * st.epochs
    if st.optimizer == "adamw":
        optimizer = torch.optim.AdamW(run.param_groups, lr=st.lr, weight_decay=st.weight_decay)
    else:
        optimizer = torch.optim.SGD(run.param_groups, lr=st.lr, momentum=st.momentum,
                                    weight_decay=st.weight_decay)
    power = st.poly_power
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - step / max_step) ** power)
    use_amp = bool(amp) and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start_epoch, history = 0, []
    if resume and checkpoint_path.is_file():
        ckpt = load_checkpoint(checkpoint_path, expected_fingerprint=run_fingerprint)
        module.load_state_dict(ckpt["model"])
        if ckpt["complete"]:
            module.eval()
            if ctx.is_main:
                log.info("%s: already trained (checkpoint %s)", run.name, checkpoint_path)
            return list(ckpt["history"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        start_epoch = int(ckpt["epoch"])
        history = list(ckpt["history"])
        if ctx.is_main:
            log.info("%s: resuming after epoch %d of %d from %s", run.name, start_epoch,
                     st.epochs, checkpoint_path)
    elif ctx.is_main:
        log.info("%s: %d epochs of %d steps (batch %d x %d process(es)), device %s%s",
                 run.name, st.epochs, steps_per_epoch, st.batch_size, ctx.world_size, device,
                 ", mixed precision" if use_amp else "")

    model = ctx.wrap(module, find_unused_parameters=run.find_unused_parameters)
    generator = torch.Generator()
    for epoch in range(start_epoch, st.epochs):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        run.dataset.set_epoch(epoch)
        generator.manual_seed(seed * 1000003 + epoch)
        loader = DataLoader(run.dataset, batch_size=st.batch_size, sampler=sampler,
                            drop_last=True, num_workers=num_workers,
                            worker_init_fn=_worker_init if num_workers else None,
                            generator=generator, pin_memory=device.type == "cuda",
                            persistent_workers=False)
        module.train()
        sums, count = {}, 0
        it = loader
        bar = None
        if _progress_enabled(progress, ctx):
            from tqdm.auto import tqdm

            bar = it = tqdm(loader, total=steps_per_epoch, leave=False,
                            desc=f"{run.name} {epoch + 1}/{st.epochs}")
        for batch in it:
            batch = [b.to(device, non_blocking=True) if isinstance(b, torch.Tensor) else b
                     for b in batch]
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                loss, metrics = run.loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{run.name}: the loss became {float(loss)} at epoch "
                                         f"{epoch + 1}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            _step_schedule(scheduler)
            n = batch[0].shape[0]
            count += n
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) * n
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
            if bar is not None:
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        if bar is not None:
            bar.close()
        keys = sorted(sums)
        totals = ctx.all_reduce_sum([sums[k] for k in keys] + [count])
        n_total = totals[-1]
        row = {"stage": run.name, "epoch": epoch + 1}
        for k, v in zip(keys, totals[:-1], strict=True):
            row["train_" + k] = v / n_total
        row["lr_end"] = float(scheduler.get_last_lr()[0])
        if run.validate is not None and ctx.is_main:
            module.eval()
            row.update({f"val_{k}": v for k, v in run.validate(module).items()})
            module.train()
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        done = epoch + 1 == st.epochs
        if ctx.is_main:
            save_checkpoint(checkpoint_path, {
                "version": CHECKPOINT_VERSION,
                "stage": run.name,
                "fingerprint": run_fingerprint,
                "epoch": epoch + 1,
                "complete": done,
                "model": module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_state(),
                "history": history,
            })
            log.info("%s epoch %d/%d: %s (%.1f s)", run.name, epoch + 1, st.epochs,
                     ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                               if isinstance(v, float) and k not in ("seconds",)),
                     row["seconds"])
        ctx.barrier()
    module.eval()
    return history

"""The weakly-supervised training pipeline: CAM -> ReCAM -> IRNet labels -> IRNet.

This follows Gupta et al. (2023, PASA, sections 3.2 and 3.3) and the authors' code
(sections 3, 4, 7 and 8 of its specification):

1. **CAM**: a multi-label classifier (`~galcam.models.CAMNet`) is trained with the
   multi-label soft-margin loss on image-level labels;
2. **ReCAM**: the same network is fine-tuned with the extra softmax cross-entropy of
   ReCAM on CAM-weighted class features (`~galcam.models.recam_loss`, weight 0.5);
3. **IRNet labels**: multi-scale CAMs (`~galcam.models.multiscale_cams`) of the classes
   in each training image's label are thresholded into confident foreground,
   confident background and ignored pixels (`~galcam.models.make_ir_labels`, refined
   with the radio islands instead of the reference's dense CRF);
4. **IRNet**: boundary and displacement branches on a frozen backbone are trained with
   `~galcam.models.irnet.AffinityDisplacementLoss`, then the mean displacement is
   calibrated (`~galcam.models.irnet.calibrate_mean_shift`).

Only image-level labels are read from the data set (`galcam.training.data.as_weak_view`).
The result is a model folder (`~galcam.models.save_model_folder`) with the weights
``cam`` (the ReCAM-fine-tuned CAM network) and ``irnet``.
"""

import dataclasses
import datetime
import functools
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..models import (
    Backbone,
    CAMNet,
    ModelSpec,
    NetworkSpec,
    ReCAMHead,
    WeightsError,
    cam_loss,
    make_ir_labels,
    multiscale_cams,
    recam_loss,
)
from ..models.irnet import AffinityDisplacementLoss, IRNet, calibrate_mean_shift
from . import data as tdata
from .distributed import DistContext
from .presets import CLASS_BALANCES, STAGES, resolve_config
from .trainer import (
    StageRun,
    fingerprint,
    run_stage,
    seed_everything,
)

__all__ = ["train_weak_model", "TrainingResult", "classification_metrics", "class_weights"]

log = logging.getLogger(__name__)

# distinct random streams of the stages (any fixed integers)
_STAGE_KEYS = {"cam": 11, "recam": 23, "irnet": 37}
# settings that do not change the trained weights
_RUNTIME_ONLY = ("num_workers", "disk_cache", "notes")


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """What `train_weak_model` produced.

    Attributes
    ----------
    path : `pathlib.Path`
        The model folder (``output_dir``).
    config : dict
        The content of its ``config.json`` (without the fields added on writing).
    metrics : dict
        The content of its ``metrics.json``.
    history : tuple of dict
        One row per stage and epoch (``stage``, ``epoch``, ``train_loss``, ``val_*``,
        ``lr``, ``seconds``).
    device : str
        Device of the training (of rank 0 under torchrun).
    world_size : int
        Number of processes.
    """

    path: Path
    config: dict
    metrics: dict
    history: tuple
    device: str
    world_size: int

    def to_table(self):
        """The per-epoch history as an `astropy.table.Table` (missing values masked)."""
        from astropy.table import MaskedColumn, Table

        names = []
        for row in self.history:
            names.extend(k for k in row if k not in names)
        cols = []
        for name in names:
            values = [row.get(name) for row in self.history]
            mask = [v is None for v in values]
            if all(isinstance(v, str) or v is None for v in values):
                filled = ["" if v is None else v for v in values]
            else:
                filled = [np.nan if v is None else v for v in values]
            cols.append(MaskedColumn(filled, name=name, mask=mask))
        return Table(cols, meta={"path": str(self.path)})

    def __repr__(self):
        acc = self.metrics.get("validation", {}).get("top1_accuracy")
        extra = f", val top-1 accuracy {acc:.3f}" if isinstance(acc, float) else ""
        return (f"<TrainingResult {self.path}: preset {self.config['preset']['name']!r}, "
                f"{len(self.history)} epochs on {self.device} x {self.world_size}{extra}>")


# ----------------------------------------------------------------------------- helpers
def _initial_backbone(config, n_channels):
    """State dict of the initial backbone, and a description of where it came from."""
    weights = config.weights
    if weights == "auto":
        try:
            bb = Backbone(config.arch, weights="torchvision", in_channels=n_channels)
            return bb.state_dict(), "torchvision-imagenet"
        except (WeightsError, FileNotFoundError) as exc:
            log.warning("no ImageNet weights for %s in the local torch cache; training from a "
                        "random initialisation (%s)", config.arch, exc)
            return None, "random"
    if weights is None:
        return None, "random"
    bb = Backbone(config.arch, weights=weights, in_channels=n_channels)
    return bb.state_dict(), ("torchvision-imagenet" if weights == "torchvision"
                             else f"file:{weights}")


def _batchnorm_mode(config, init_state):
    if config.batchnorm != "auto":
        return config.batchnorm
    return "frozen" if init_state is not None else "train"


def trainable_batchnorm(backbone):
    """Switch a `~galcam.models.Backbone` to ordinary, trainable batch normalisation.

    Every `~galcam.models.FixedBatchNorm2d` uses batch statistics in training mode (and
    updates its running statistics, used in evaluation mode and by a network loaded for
    inference) and the stem (``conv1``, ``bn1``) becomes trainable. Needed when the
    backbone starts from random weights, whose stored statistics (0 and 1) would leave
    the activations unnormalised.
    """
    from ..models import FixedBatchNorm2d

    for module in backbone.modules():
        if isinstance(module, FixedBatchNorm2d):
            module.fixed = False
    for param in (*backbone.conv1.parameters(), *backbone.bn1.parameters()):
        param.requires_grad_(True)
    return backbone


class _ReCAMModule(nn.Module):
    """The CAM network and the ReCAM predictor; ``forward`` returns the loss terms."""

    def __init__(self, net, head, weight, pos_weight=None):
        super().__init__()
        self.net = net
        self.head = head
        self.weight = float(weight)
        self.pos_weight = pos_weight

    def forward(self, images, labels):
        out = self.net.forward_all(images)
        bce = cam_loss(out.logits.float(), labels, self.pos_weight)
        sce = recam_loss(out.features.float(), out.cams.float(), labels, self.head)
        # a batch without any positive label leaves the predictor unused; touching its
        # weights keeps every parameter in the graph (DistributedDataParallel needs that)
        sce = sce + 0.0 * self.head.classifier.weight.sum()
        return bce + self.weight * sce, bce.detach(), sce.detach()


def _top1(logits, labels):
    """Fraction of images whose highest-scoring class is one of their labels."""
    pos = labels > 0
    has = pos.any(dim=1)
    if not bool(has.any()):
        return float("nan")
    hit = pos.gather(1, logits.argmax(dim=1, keepdim=True))[:, 0]
    return float(hit[has].float().mean())


def class_weights(labels, mode="balanced"):
    """Weights of the positive term of each class for a class-balanced loss.

    Computed from image-level labels only. A class present in ``n_pos`` of ``n``
    training images gets ``(n - n_pos) / n_pos`` (``'balanced'``: positives and
    negatives of every class weigh the same in total) or its square root (``'sqrt'``);
    a class with no positive image gets 1.

    Parameters
    ----------
    labels : array-like, shape (N, C)
        Multi-hot image-level labels; values > 0 are positives.
    mode : {'balanced', 'sqrt', 'none'}
        ``'none'`` returns ones.

    Returns
    -------
    weights : `numpy.ndarray`, shape (C,)
    """
    y = np.asarray(labels) > 0
    if y.ndim != 2 or len(y) == 0:
        raise ValueError(f"labels: expected a non-empty (N, C) array, got shape {y.shape}")
    if mode not in CLASS_BALANCES:
        raise ValueError(f"mode: expected one of {CLASS_BALANCES}, got {mode!r}")
    n_pos = y.sum(axis=0).astype(float)
    w = np.ones(y.shape[1])
    if mode != "none":
        has = n_pos > 0
        w[has] = (len(y) - n_pos[has]) / n_pos[has]
        if mode == "sqrt":
            w = np.sqrt(w)
    return w


def _cam_loss_fn(model, batch, pos_weight=None):
    images, labels, _ = batch
    logits = model(images)
    return (cam_loss(logits.float(), labels, pos_weight),
            {"accuracy": _top1(logits.detach(), labels)})


def _recam_loss_fn(model, batch):
    images, labels, _ = batch
    loss, bce, sce = model(images, labels)
    return loss, {"bce": float(bce), "sce": float(sce)}


def _irnet_loss_fn(loss_module):
    def fn(model, batch):
        images, labels, _ = batch
        out = model(images)
        terms = loss_module(out.edge.float(), out.displacement.float(), labels)
        t = [float(v.detach()) for v in terms[1:]]
        return terms.total, {"pos_aff": t[0], "neg_aff": t[1],
                             "dp_fg": t[2], "dp_bg": t[3]}
    return fn


def classification_metrics(probabilities, labels, threshold=0.5):
    """Accuracy of image-level class predictions.

    Parameters
    ----------
    probabilities : array-like, shape (N, C)
        Predicted class probabilities.
    labels : array-like, shape (N, C)
        Multi-hot true labels.
    threshold : float
        Probability at which a class counts as predicted.

    Returns
    -------
    dict
        ``top1_accuracy`` (the most probable class is one of the image's classes, over
        images with at least one class), ``exact_match_accuracy`` (the thresholded set of
        classes equals the true set), ``per_class_recall`` (top-1 hits per true class,
        for single-class images) and ``n_images``.
    """
    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(labels) > 0
    has = y.any(axis=1)
    top = p.argmax(axis=1)
    hits = y[np.arange(len(p)), top]
    out = {"n_images": len(p),
           "top1_accuracy": float(hits[has].mean()) if has.any() else float("nan"),
           "exact_match_accuracy": float(((p >= threshold) == y).all(axis=1).mean())}
    single = y.sum(axis=1) == 1
    recall = {}
    for c in range(y.shape[1]):
        sel = single & y[:, c]
        recall[c] = float(hits[sel].mean()) if sel.any() else None
    out["per_class_recall"] = recall
    return out


def _validator(encoded, config, stage):
    """Per-epoch validation on images resized like the training images (single scale)."""
    scale = float(np.mean(stage.scale_range))
    plain = tdata.PlainSet(encoded, config, scale=scale)

    @torch.no_grad()
    def validate(module):
        net = module.net if isinstance(module, _ReCAMModule) else module
        device = next(net.parameters()).device
        logits = []
        for i in range(len(plain)):
            img, _, _ = plain[i]
            logits.append(net(img[None].to(device)).float().cpu())
        logits = torch.cat(logits)
        labels = torch.from_numpy(encoded.labels)
        loss = float(cam_loss(logits, labels))
        m = classification_metrics(torch.sigmoid(logits).numpy(), encoded.labels,
                                   config.class_threshold)
        return {"loss": loss, "accuracy": m["top1_accuracy"],
                "exact_match": m["exact_match_accuracy"]}
    return validate


@torch.no_grad()
def _inference_probabilities(net, encoded, config, progress):
    """Class probabilities as at inference: multi-scale, mirrored (predict_classes)."""
    from ..models import predict_classes

    out = []
    it = range(len(encoded))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="validation", leave=False)
    for i in it:
        img = tdata.normalize(torch.from_numpy(np.array(encoded.images[i])), config.mean,
                              config.std)
        _, prob = predict_classes(net, img, threshold=config.class_threshold,
                                  scales=config.cam_scales)
        out.append(prob)
    return np.array(out)


def _ir_labels(net, encoded, config, ctx, progress):
    """IRNet labels of the training images (shared out over the processes)."""
    net.eval()
    mine = {}
    idx = range(ctx.rank, len(encoded), ctx.world_size)
    it = idx
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(idx, desc="IRNet labels", leave=False)
    for i in it:
        img = tdata.normalize(torch.from_numpy(np.array(encoded.images[i])), config.mean,
                              config.std)
        maps = multiscale_cams(net, img, scales=config.cam_scales)
        # the training set's image-level labels choose the classes (weak labels only)
        keys = np.flatnonzero(encoded.labels[i] > 0)
        mine[i] = make_ir_labels(maps["high_res"][keys], keys, fg_threshold=config.fg_threshold,
                                 bg_threshold=config.bg_threshold, radio=encoded.radio[i],
                                 refine=config.ir_refine, min_size=config.ir_min_size)
    merged = {}
    for part in ctx.all_gather_object(mine):
        merged.update(part)
    return [merged[i] for i in range(len(encoded))]


def _label_stats(labels):
    total = sum(lab.size for lab in labels)
    fg = sum(int(((lab > 0) & (lab < 255)).sum()) for lab in labels)
    bg = sum(int((lab == 0).sum()) for lab in labels)
    return {"foreground_fraction": fg / total, "background_fraction": bg / total,
            "ignored_fraction": (total - fg - bg) / total}


def _save_labels(path, labels, fp):
    from ..io import atomic_write

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, fingerprint=np.array(fp),
                                **{f"l{i}": lab for i, lab in enumerate(labels)})
    atomic_write(path, write)


def _load_labels(path, fp, n):
    try:
        with np.load(path) as z:
            if str(z["fingerprint"]) != fp:
                return None
            return [z[f"l{i}"] for i in range(n)]
    except (OSError, KeyError, ValueError) as exc:
        log.warning("ignoring unreadable IRNet label file %s (%s)", path, exc)
        return None


def _data_fingerprint(encoded):
    import hashlib

    h = hashlib.sha256()
    for iid, img in zip(encoded.image_ids, encoded.images, strict=True):
        h.update(str(iid).encode())
        h.update(np.ascontiguousarray(img).tobytes())
    h.update(encoded.labels.tobytes())
    return h.hexdigest()[:20]


def _num_workers(config, device):
    if config.num_workers is not None:
        return config.num_workers
    return 0 if device.type == "cpu" else min(4, os.cpu_count() or 1)


def _encode(view, encoder, cache_dir, ctx, progress):
    """Encode a view; processes share the work through the disk cache when there is one."""
    if ctx.distributed and cache_dir is not None:
        tdata.encode_view(view, encoder, cache_dir=cache_dir, progress=progress,
                          shard=(ctx.rank, ctx.world_size))
        ctx.barrier()
    return tdata.encode_view(view, encoder, cache_dir=cache_dir, progress=progress)


def _write_model(output_dir, config_json, states, metrics):
    """Write the model folder files into output_dir (config.json last)."""
    from ..models import save_model_folder

    staging = output_dir / ".model-staging"
    if staging.exists():
        shutil.rmtree(staging)
    save_model_folder(staging, config=config_json, state_dicts=states, metrics=metrics)
    names = sorted(p.name for p in staging.iterdir())
    for name in [n for n in names if n != "config.json"] + ["config.json"]:
        os.replace(staging / name, output_dir / name)
    staging.rmdir()


# ----------------------------------------------------------------------------- pipeline
def train_weak_model(dataset, *, preset="fast", output_dir, seed=0, device="auto",
                     val_dataset=None, resume=True, progress=True, encoder=None,
                     overwrite=False, weights_dtype="float32", **overrides):
    """Train the CAM, ReCAM and IRNet networks from image-level labels.

    Runs the pipeline of Gupta et al. (2023, sections 3.2-3.3) and writes a model folder.
    Works unchanged as a single process or under ``torchrun --nproc_per_node N``
    (DistributedDataParallel; only rank 0 writes files and shows progress).

    Parameters
    ----------
    dataset : `~galcam.datasets.CocoDataset` or `~galcam.datasets.WeakLabelView`
        Training images. Only their image-level class labels are read: a COCO data set is
        reduced to `~galcam.datasets.CocoDataset.image_level`, and masks, boxes and
        keypoints are never touched.
    preset : {'fast', 'paper'} or `~galcam.training.TrainingConfig`
        Starting hyper-parameters (`~galcam.training.PRESETS`).
    output_dir : path-like
        The model folder to write: ``config.json``, ``cam.pt``, ``irnet.pt``,
        ``metrics.json``; plus ``checkpoints/`` (one per stage, rewritten every epoch)
        and ``cache/`` (encoded images).
    seed : int
        Seeds everything (model initialisation, shuffling, augmentation).
    device : str or `torch.device`
        ``'auto'`` (CUDA when present, else the CPU), ``'cpu'``, ``'cuda'``, ``'cuda:N'``.
    val_dataset : `~galcam.datasets.CocoDataset` or `~galcam.datasets.WeakLabelView`, optional
        Images on which the classification loss and accuracy are measured after every
        CAM/ReCAM epoch and, at the end, with the inference procedure (multi-scale
        CAMs, ``class_threshold``). Only image-level labels are read.
    resume : bool
        Continue from the checkpoints in ``output_dir/checkpoints`` when they exist and
        belong to the same configuration and data (else an error says so). With False,
        existing checkpoints are discarded and training starts again.
    progress : bool
        tqdm progress bars (on terminals only, rank 0 only).
    encoder : `~galcam.preprocessing.CutoutEncoder`, optional
        Encodes the FITS images (default ``CutoutEncoder()``: channels (ir, radio,
        radio) as the paper). Its settings are recorded in ``config.json``; inference
        must encode images the same way.
    overwrite : bool
        Replace a model already in ``output_dir`` when not resuming.
    weights_dtype : {'float32', 'float16'}
        Precision of the stored weights. ``'float16'`` halves the folder (galcam's bundled
        model is stored so); networks always run in float32 after loading. Training and
        its checkpoints are float32 either way.
    **overrides
        Hyper-parameters replacing the preset's (``cam_epochs=5``, ``arch='resnet18'``,
        ...; see `~galcam.training.resolve_config`).

    Returns
    -------
    `TrainingResult`

    Raises
    ------
    TypeError
        ``dataset`` is not a COCO data set or weak-label view.
    ValueError
        Unknown or invalid hyper-parameters (before any work is done).
    FileExistsError
        ``output_dir`` holds a model and neither ``resume`` nor ``overwrite`` is set.
    """
    t_start = time.perf_counter()
    view = tdata.as_weak_view(dataset, "dataset")
    val_view = None if val_dataset is None else tdata.as_weak_view(val_dataset, "val_dataset")
    if val_view is not None and tuple(val_view.classes) != tuple(view.classes):
        raise ValueError(f"val_dataset: classes {val_view.classes} differ from the training "
                         f"set's {view.classes}")
    config = resolve_config(preset, **overrides)
    if weights_dtype not in ("float32", "float16"):
        raise ValueError(f"weights_dtype: expected 'float32' or 'float16', got {weights_dtype!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    seed = int(seed)
    if encoder is None:
        from ..preprocessing import CutoutEncoder

        encoder = CutoutEncoder()
    elif not all(hasattr(encoder, a) for a in ("channels", "n_sigma", "n_pixels")):
        raise TypeError(f"encoder: expected a galcam.preprocessing.CutoutEncoder, "
                        f"got {type(encoder).__name__}")
    if len(config.mean) != len(encoder.channels):
        raise ValueError(f"mean/std: {len(config.mean)} values for the encoder's "
                         f"{len(encoder.channels)} channels {encoder.channels}")
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"output_dir '{output_dir}': exists and is not a folder")
    if (output_dir / "config.json").exists() and not resume and not overwrite:
        raise FileExistsError(f"output_dir '{output_dir}': holds a trained model already; pass "
                              "overwrite=True to replace it or resume=True to continue its run")

    ctx = DistContext.from_env(device)
    try:
        return _train(view, val_view, config, encoder, output_dir, seed, ctx, resume,
                      progress, t_start, weights_dtype)
    finally:
        ctx.close()


def _train_irnet(net, train_set, labels, config, ctx, *, init_state, seed, checkpoint_path,
                 run_fingerprint, **common):
    """Stage 4: IRNet on a frozen backbone, then its mean-shift calibration.

    The backbone is the classifier's (``irnet_backbone='cam'``) or the initial weights.
    Returns ``(irnet, history, shift)``; ``common`` is passed on to `run_stage`.
    """
    torch.manual_seed(seed * 7919 + _STAGE_KEYS["irnet"])
    st = config.irnet
    backbone = Backbone(config.arch, in_channels=train_set.n_channels)
    if config.irnet_backbone == "cam":
        backbone.load_state_dict(net.backbone.state_dict())
    elif init_state is not None:
        backbone.load_state_dict(init_state)
    irnet = IRNet(backbone)
    loss_module = AffinityDisplacementLoss(radius=config.irnet_radius)
    groups = [{"params": irnet.edge_parameters(), "lr": st.lr, "weight_decay": st.weight_decay},
              {"params": irnet.displacement_parameters(), "lr": st.head_lr,
               "weight_decay": st.weight_decay}]
    ds = tdata.AffinitySet(train_set, labels, st, config, seed=seed, key=_STAGE_KEYS["irnet"])
    run = StageRun("irnet", irnet, groups, ds, st, _irnet_loss_fn(loss_module))
    history = run_stage(run, ctx, seed=seed + _STAGE_KEYS["irnet"],
                        checkpoint_path=checkpoint_path, run_fingerprint=run_fingerprint,
                        **common)
    calib = tdata.PlainSet(train_set, config, size=st.crop_size)
    loader = torch.utils.data.DataLoader(calib, batch_size=st.batch_size, shuffle=False)
    shift = calibrate_mean_shift(irnet, loader, device=ctx.device) if ctx.is_main else None
    shift = torch.as_tensor(ctx.broadcast_object(None if shift is None else shift.tolist()))
    irnet.mean_shift.running_mean.copy_(shift)
    return irnet, history, shift


def _train(view, val_view, config, encoder, output_dir, seed, ctx, resume, progress, t_start,
           weights_dtype):
    show = bool(progress) and ctx.is_main and sys.stderr.isatty()
    ckpt_dir = output_dir / "checkpoints"
    cache_dir = output_dir / "cache" if config.disk_cache else None
    if ctx.is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            for name in (*STAGES, "ir_labels"):
                for f in ckpt_dir.glob(f"{name}.*"):
                    f.unlink()
        log.info("training preset %r on %d images (%d classes: %s), device %s, %d process(es)",
                 config.preset, len(view), len(view.classes), ", ".join(view.classes),
                 ctx.device, ctx.world_size)
    ctx.barrier()
    seed_everything(seed)
    timing = {}

    # initial weights first: a missing weights file fails before the slow encoding
    init_state, init_desc = _initial_backbone(config, len(encoder.channels))
    t0 = time.perf_counter()
    train_set = _encode(view, encoder, cache_dir, ctx, show)
    val_set = None if val_view is None else _encode(val_view, encoder, cache_dir, ctx, show)
    timing["encode"] = time.perf_counter() - t0
    n_channels = train_set.n_channels
    if config.irnet_backbone == "imagenet" and init_state is None:
        log.warning("irnet_backbone='imagenet' without ImageNet weights: IRNet trains on a "
                    "frozen, randomly initialised backbone; irnet_backbone='cam' is better")

    hyper = {k: v for k, v in config.to_dict().items() if k not in _RUNTIME_ONLY}
    base = {"config": hyper, "data": _data_fingerprint(train_set), "seed": seed,
            "world_size": ctx.world_size, "init": init_desc,
            "val": None if val_set is None else list(val_set.image_ids)}
    fps = {}
    prev = fingerprint(base)
    for name in (*STAGES[:2], "ir_labels", "irnet"):
        prev = fps[name] = fingerprint({"previous": prev, "stage": name})
    workers = _num_workers(config, ctx.device)
    common = dict(resume=resume, progress=show, amp=config.amp, num_workers=workers)
    history = []

    pos_weight = None
    if config.class_balance != "none":
        w = class_weights(train_set.labels, config.class_balance)
        pos_weight = torch.as_tensor(w, dtype=torch.float32, device=ctx.device)
        if ctx.is_main:
            log.info("class-balanced losses (%s): positive weights %s", config.class_balance,
                     ", ".join(f"{c} {v:.2f}" for c, v in zip(view.classes, w)))

    # ---- 1. CAM
    t0 = time.perf_counter()
    torch.manual_seed(seed * 7919 + _STAGE_KEYS["cam"])
    net = CAMNet(config.arch, len(view.classes), in_channels=n_channels)
    if init_state is not None:
        net.backbone.load_state_dict(init_state)
    bn_mode = _batchnorm_mode(config, init_state)
    if bn_mode == "train":
        trainable_batchnorm(net.backbone)
    st = config.cam
    ds = tdata.ClassificationSet(train_set, st, config, seed=seed, key=_STAGE_KEYS["cam"])
    run = StageRun("cam", net, net.param_groups(st.lr, classifier_lr=st.head_lr,
                                                weight_decay=st.weight_decay),
                   ds, st, functools.partial(_cam_loss_fn, pos_weight=pos_weight),
                   validate=None if val_set is None else _validator(val_set, config, st))
    history += run_stage(run, ctx, seed=seed + _STAGE_KEYS["cam"],
                         checkpoint_path=ckpt_dir / "cam.pt", run_fingerprint=fps["cam"],
                         **common)
    timing["cam"] = time.perf_counter() - t0

    # ---- 2. ReCAM
    t0 = time.perf_counter()
    torch.manual_seed(seed * 7919 + _STAGE_KEYS["recam"])
    st = config.recam
    head = ReCAMHead(len(view.classes), net.feature_dim)
    module = _ReCAMModule(net, head, config.recam_loss_weight, pos_weight)
    groups = net.param_groups(st.lr, classifier_lr=st.head_lr, weight_decay=st.weight_decay)
    groups.append({"params": list(head.parameters()), "lr": st.predictor_lr,
                   "weight_decay": st.weight_decay})
    ds = tdata.ClassificationSet(train_set, st, config, seed=seed, key=_STAGE_KEYS["recam"])
    run = StageRun("recam", module, groups, ds, st, _recam_loss_fn,
                   validate=None if val_set is None else _validator(val_set, config, st))
    history += run_stage(run, ctx, seed=seed + _STAGE_KEYS["recam"],
                         checkpoint_path=ckpt_dir / "recam.pt", run_fingerprint=fps["recam"],
                         **common)
    net.eval()
    timing["recam"] = time.perf_counter() - t0

    # ---- 3. IRNet labels from the ReCAM maps
    t0 = time.perf_counter()
    label_file = ckpt_dir / "ir_labels.npz"
    labels = None
    if resume and label_file.is_file():
        labels = _load_labels(label_file, fps["ir_labels"], len(train_set))
    if labels is None:
        labels = _ir_labels(net, train_set, config, ctx, show)
        if ctx.is_main:
            _save_labels(label_file, labels, fps["ir_labels"])
    ctx.barrier()
    label_stats = _label_stats(labels)
    if ctx.is_main:
        log.info("IRNet labels: %.1f%% foreground, %.1f%% background, %.1f%% ignored",
                 100 * label_stats["foreground_fraction"],
                 100 * label_stats["background_fraction"], 100 * label_stats["ignored_fraction"])
    timing["ir_labels"] = time.perf_counter() - t0

    # ---- 4. IRNet
    t0 = time.perf_counter()
    irnet, irnet_history, shift = _train_irnet(
        net, train_set, labels, config, ctx, init_state=init_state, seed=seed,
        checkpoint_path=ckpt_dir / "irnet.pt", run_fingerprint=fps["irnet"], **common)
    history += irnet_history
    timing["irnet"] = time.perf_counter() - t0

    # ---- metrics and model folder
    metrics = {"train": {}, "ir_labels": label_stats,
               "mean_shift": [float(v) for v in shift.tolist()]}
    for name in STAGES:
        rows = [r for r in history if r["stage"] == name]
        metrics["train"][name] = {"final_loss": rows[-1]["train_loss"], "epochs": rows}
    if val_set is not None and ctx.is_main:
        t0 = time.perf_counter()
        probs = _inference_probabilities(net, val_set, config, show)
        m = classification_metrics(probs, val_set.labels, config.class_threshold)
        m["per_class_recall"] = {view.classes[c]: v for c, v in m["per_class_recall"].items()}
        logits = torch.logit(torch.from_numpy(probs).double().clamp(1e-7, 1 - 1e-7))
        m["loss"] = float(cam_loss(logits, torch.from_numpy(val_set.labels).double()))
        m["method"] = ("multi-scale CAM classifier as at inference: scales "
                       f"{list(config.cam_scales)} with mirror images, threshold "
                       f"{config.class_threshold}")
        metrics["validation"] = m
        timing["validation"] = time.perf_counter() - t0
        log.info("validation on %d images: top-1 accuracy %.3f, exact-match accuracy %.3f",
                 m["n_images"], m["top1_accuracy"], m["exact_match_accuracy"])
    timing["total"] = time.perf_counter() - t_start
    metrics["timing_s"] = timing

    config_json = _config_json(config, encoder, train_set, val_set, init_desc, seed, ctx, timing,
                               bn_mode)
    states = {"cam": net.state_dict(), "irnet": irnet.state_dict()}
    if config.irnet_backbone == "cam":
        # IRNet's frozen backbone is the CAM network's: store it once (lossless; the spec
        # says so with irnet.shared_backbone)
        states["irnet"] = {k: v for k, v in states["irnet"].items()
                           if not k.startswith("backbone.")}
    if weights_dtype == "float16":
        states = {name: {k: v.half() if v.is_floating_point() else v for k, v in st.items()}
                  for name, st in states.items()}
    config_json["weights_dtype"] = weights_dtype
    if ctx.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        _write_model(output_dir, config_json, states, metrics)
        log.info("model written to %s (%.0f s)", output_dir, timing["total"])
    ctx.barrier()
    return TrainingResult(path=output_dir, config=config_json, metrics=metrics,
                          history=tuple(history), device=str(ctx.device),
                          world_size=ctx.world_size)


def _config_json(config, encoder, train_set, val_set, init_desc, seed, ctx, timing, bn_mode):
    """The model folder's config.json: a `~galcam.models.ModelSpec` and the provenance."""
    from .. import __version__

    sizes = np.array(train_set.image_sizes())
    settings = tdata.encoder_settings(encoder)
    radio = train_set.radio_summary()
    n_channels = train_set.n_channels
    provenance = {  # what the spec does not type: kept as written, read back as spec.extra
        "encoding": {
            "size": settings.pop("size"),
            "source": train_set.source,
            "normalization": {"formula": "(x - mean) / std per channel, x in [0, 1]"},
            "train_scale": list(config.cam.scale_range),
            "train_crop": config.cam.crop_size,
            "irnet_crop": config.irnet.crop_size,
        },
        "backbone": {
            "cam": {"output_stride": 16,
                    "batchnorm": ("frozen (stored statistics)" if bn_mode == "frozen"
                                  else "trained (running statistics at inference)"),
                    "init": init_desc},
            "irnet": {"output_stride": 16,
                      "init": ("cam-backbone" if config.irnet_backbone == "cam" else init_desc),
                      "frozen": True, "radius": config.irnet_radius},
        },
        "thresholds": {
            "cam_fg": config.fg_threshold,
            "cam_bg": config.bg_threshold,
            "ir_refine": config.ir_refine,
            "ir_min_size": config.ir_min_size,
        },
        "radio": {k: v for k, v in radio.items() if k not in ("pixel_scale_arcsec", "beam")},
        "preset": {"name": config.preset, "hyperparameters": config.to_dict()},
        "training": {
            "seed": seed,
            "n_train": len(train_set),
            "n_val": 0 if val_set is None else len(val_set),
            "device": str(ctx.device),
            "world_size": ctx.world_size,
            "torch_version": torch.__version__,
            "galcam_version": __version__,
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "duration_s": round(timing.get("total", 0.0), 1),
            "image_level_labels_only": True,
        },
    }
    spec = ModelSpec(
        classes=tuple(train_set.classes), channels=tuple(settings.pop("channels")),
        mean=tuple(config.mean), std=tuple(config.std),
        image_size=(int(np.median(sizes[:, 0])), int(np.median(sizes[:, 1]))),
        encoding=settings,
        cam=NetworkSpec(config.arch, n_channels),
        irnet=NetworkSpec(config.arch, n_channels,
                          shared_backbone="cam" if config.irnet_backbone == "cam" else None),
        pixel_scale=radio["pixel_scale_arcsec"], beam=radio["beam"],
        cam_scales=tuple(config.cam_scales), class_threshold=config.class_threshold,
        extra=provenance)
    return spec.to_dict()


def _flat_hyperparameters(hyper):
    """A folder's recorded hyper-parameters as `resolve_config` keywords."""
    out = {}
    for key, value in hyper.items():
        if key in STAGES:
            out.update({f"{key}_{k}": v for k, v in value.items()})
        elif key != "preset":
            out[key] = value
    return out


def retrain_irnet(model, dataset, *, output_dir, seed=0, device="auto", progress=False,
                  **overrides):
    """Train the IRNet of a model folder again, keeping its classifier bit for bit.

    IRNet's labels are made from the kept classifier's CAMs on ``dataset`` exactly as
    `train_weak_model` makes them (image-level labels only), and IRNet is trained with the
    folder's recorded hyper-parameters changed by ``overrides`` (``irnet_epochs``,
    ``irnet_crop_size``, ``irnet_scale_range``, ``irnet_radius``, ...). The new folder
    holds the same CAM weights and a new IRNet; its ``config.json`` records the new IRNet
    settings (``irnet_retrained``: from where, on what, how long) and ``metrics.json`` the
    new IRNet losses.

    Parameters
    ----------
    model : path-like
        The model folder to start from.
    dataset : `~galcam.datasets.CocoDataset` or `~galcam.datasets.WeakLabelView`
        Training images (only their image-level classes are read), ideally the model's own
        training set.
    output_dir : path-like
        The new model folder (must not exist).
    seed : int, optional
    device : str, optional
    progress : bool, optional
    **overrides
        IRNet hyper-parameters (names starting with ``irnet_``).

    Returns
    -------
    `TrainingResult`
    """
    from ..models import (
        RESERVED_KEYS,
        ModelNetworks,
        ModelSpec,
        load_model_folder,
        save_model_folder,
    )

    bad = sorted(k for k in overrides if not k.startswith("irnet_"))
    if bad:
        raise TypeError(f"retrain_irnet: only IRNet settings (irnet_*) can change, got {bad}")
    output_dir = Path(output_dir)
    if output_dir.exists():
        raise FileExistsError(f"output_dir: '{output_dir}' exists; choose a new folder")
    model_dir = Path(model)
    config_json, states, metrics = load_model_folder(model_dir)
    spec = ModelSpec.from_dict(config_json, path=model_dir)
    hyper = config_json["preset"]["hyperparameters"]
    config = resolve_config(hyper["preset"], **{**_flat_hyperparameters(hyper), **overrides})
    ctx = DistContext.from_env(device)
    net = ModelNetworks.from_states(spec, states, path=model_dir, device=ctx.device,
                                   optimize=False).cam_net  # trained on: not folded

    t0 = time.perf_counter()
    train_set = tdata.encode_view(tdata.as_weak_view(dataset, "dataset"), spec.encoder())
    labels = _ir_labels(net, train_set, config, ctx, progress)
    label_stats = _label_stats(labels)
    log.info("IRNet labels of %d images: %s (%.0f s)", len(train_set), label_stats,
             time.perf_counter() - t0)
    t1 = time.perf_counter()
    work = output_dir.with_name(output_dir.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    irnet, history, shift = _train_irnet(
        net, train_set, labels, config, ctx, init_state=None, seed=seed,
        checkpoint_path=work / "irnet.pt",
        run_fingerprint=json.dumps(config.to_dict(), sort_keys=True),
        progress=progress, amp=config.amp, num_workers=0)
    seconds = time.perf_counter() - t1

    dtype = config_json.get("weights_dtype", "float32")
    new = {k: v.cpu() for k, v in irnet.state_dict().items() if not k.startswith("backbone.")}
    if dtype == "float16":
        new = {k: v.half() if v.is_floating_point() else v for k, v in new.items()}
    config_json = {k: v for k, v in config_json.items() if k not in RESERVED_KEYS}
    config_json["preset"]["hyperparameters"] = {
        k: v for k, v in config.to_dict().items() if k not in _RUNTIME_ONLY}
    config_json["backbone"]["irnet"]["radius"] = config.irnet_radius
    config_json["irnet_retrained"] = {
        "from": str(model_dir), "images": len(train_set), "seed": seed,
        "overrides": overrides, "seconds": round(seconds, 1)}
    metrics = dict(metrics or {})
    metrics.setdefault("train", {})["irnet"] = {"final_loss": history[-1]["train_loss"],
                                                "epochs": history}
    metrics["ir_labels"] = label_stats
    metrics["mean_shift"] = [float(v) for v in shift.tolist()]
    if ctx.is_main:
        save_model_folder(output_dir, config=config_json,
                          state_dicts={"cam": states["cam"], "irnet": new}, metrics=metrics)
    shutil.rmtree(work)  # the stage checkpoint, kept only while the run could be resumed
    return TrainingResult(path=output_dir, config=config_json, metrics=metrics,
                          history=tuple(history), device=str(ctx.device),
                          world_size=ctx.world_size)

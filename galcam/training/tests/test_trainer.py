"""The training loop: poly schedule, checkpoints, resume to identical weights."""

import pytest
import torch

from galcam.datasets import CocoDataset
from galcam.models import CAMNet
from galcam.preprocessing import CutoutEncoder
from galcam.training import CheckpointError, DistContext, class_weights, resolve_config, trainer
from galcam.training import data as tdata
from galcam.training.stages import _cam_loss_fn

from ._tiny import make_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    return tdata.encode_view(CocoDataset(make_dataset(root, n=8, size=40)), CutoutEncoder())


def _run(encoded, cfg, path, *, resume=True, fp="x"):
    torch.manual_seed(0)
    net = CAMNet("resnet18", 4)
    st = cfg.cam
    ds = tdata.ClassificationSet(encoded, st, cfg, seed=1, key=2)
    run = trainer.StageRun("cam", net, net.param_groups(st.lr, classifier_lr=st.head_lr), ds,
                           st, _cam_loss_fn)
    hist = trainer.run_stage(run, DistContext(torch.device("cpu")), seed=5, checkpoint_path=path,
                             run_fingerprint=fp, resume=resume, progress=False)
    return net, hist


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_killed_run_resumes_to_identical_weights(encoded, tmp_path, monkeypatch, optimizer):
    cfg = resolve_config("fast", cam_epochs=2, cam_batch_size=4, cam_crop_size=32,
                         cam_optimizer=optimizer)
    straight, hist = _run(encoded, cfg, tmp_path / "a" / "cam.pt")
    assert [r["epoch"] for r in hist] == [1, 2]
    assert hist[-1]["lr_end"] == 0.0  # poly schedule ends at zero

    original = trainer.save_checkpoint
    calls = []

    def save_then_die(path, payload):
        original(path, payload)
        calls.append(payload["epoch"])
        raise KeyboardInterrupt("killed after epoch 1")

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _run(encoded, cfg, tmp_path / "b" / "cam.pt")
    monkeypatch.setattr(trainer, "save_checkpoint", original)
    assert calls == [1]
    ckpt = trainer.load_checkpoint(tmp_path / "b" / "cam.pt")  # weights_only=True
    assert ckpt["epoch"] == 1 and not ckpt["complete"]
    # the optimizer's own state travels with the checkpoint (Adam's moments, SGD's momentum)
    state = next(iter(ckpt["optimizer"]["state"].values()))
    assert ("exp_avg" in state) == (optimizer == "adamw")

    resumed, hist_b = _run(encoded, cfg, tmp_path / "b" / "cam.pt")
    assert [r["epoch"] for r in hist_b] == [1, 2]
    assert hist_b[1]["train_loss"] == pytest.approx(hist[1]["train_loss"], rel=1e-6)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k

    # a complete checkpoint is loaded, not trained again
    again, hist_c = _run(encoded, cfg, tmp_path / "b" / "cam.pt")
    assert hist_c == hist_b
    assert torch.equal(again.classifier.weight, straight.classifier.weight)

    # a checkpoint of another configuration is refused
    with pytest.raises(CheckpointError, match="another configuration"):
        _run(encoded, cfg, tmp_path / "b" / "cam.pt", fp="y")


def test_poly_schedule_and_batch_errors(encoded, tmp_path):
    cfg = resolve_config("fast", cam_epochs=1, cam_batch_size=16, cam_crop_size=32)
    with pytest.raises(ValueError, match="no complete batch"):
        _run(encoded, cfg, tmp_path / "c.pt")
    cfg = resolve_config("fast", cam_epochs=1, cam_batch_size=2, cam_crop_size=32,
                         cam_poly_power=1.0)
    _, hist = _run(encoded, cfg, tmp_path / "d.pt")
    assert hist[0]["lr_end"] == 0.0


def test_rng_state_round_trip():
    import random

    import numpy as np

    trainer.seed_everything(7)
    state = trainer.rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    trainer.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_unreadable_checkpoint(tmp_path):
    bad = tmp_path / "cam.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        trainer.load_checkpoint(bad)


def test_training_time_estimate_counts_steps():
    from galcam.training.benchmark import estimate_training_time

    est = estimate_training_time("fast", n_images=20, image_size=40, repeats=1, cam_crop_size=32,
                                 recam_crop_size=32, irnet_crop_size=48, irnet_radius=5,
                                 cam_scales=(1.0,), cam_epochs=2, recam_epochs=1, irnet_epochs=1,
                                 irnet_batch_size=8)
    per = est["seconds_per_image"]
    assert all(v > 0 for v in per.values())
    # 20 images in batches of 8: 16 used per epoch
    assert est["seconds"]["cam"] == pytest.approx(16 * 2 * per["cam"])
    assert est["seconds"]["irnet"] == pytest.approx(16 * per["irnet"])
    assert est["seconds"]["ir_labels"] == pytest.approx(20 * per["ir_labels"])
    assert est["total_seconds"] == pytest.approx(sum(est["seconds"].values()))


def test_classification_metrics():
    import numpy as np

    from galcam.training import classification_metrics

    p = np.array([[0.9, 0.1, 0.2, 0.1], [0.2, 0.7, 0.6, 0.1], [0.1, 0.2, 0.3, 0.4]])
    y = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
    m = classification_metrics(p, y)
    assert m["top1_accuracy"] == pytest.approx(2 / 3)
    assert m["exact_match_accuracy"] == pytest.approx(1 / 3)
    assert m["per_class_recall"] == {0: 1.0, 1: 1.0, 2: 0.0, 3: None}


def test_worker_processes_give_the_same_weights(encoded, tmp_path):
    """Augmentation is seeded per image, so DataLoader workers change nothing."""
    cfg = resolve_config("fast", cam_epochs=1, cam_batch_size=4, cam_crop_size=32)

    def run(workers, path):
        torch.manual_seed(0)
        net = CAMNet("resnet18", 4)
        st = cfg.cam
        ds = tdata.ClassificationSet(encoded, st, cfg, seed=1, key=2)
        run = trainer.StageRun("cam", net, net.param_groups(st.lr, classifier_lr=st.head_lr),
                               ds, st, _cam_loss_fn)
        trainer.run_stage(run, DistContext(torch.device("cpu")), seed=5, checkpoint_path=path,
                          run_fingerprint="x", progress=False, num_workers=workers)
        return net.state_dict()

    a, b = run(0, tmp_path / "a.pt"), run(2, tmp_path / "b.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_single_process_context(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    ctx = DistContext.from_env("cpu")
    assert not ctx.distributed and ctx.is_main and ctx.world_size == 1
    assert ctx.all_reduce_sum([1.5, 2]) == [1.5, 2.0]
    assert ctx.all_gather_object({"a": 1}) == [{"a": 1}]
    assert ctx.broadcast_object(3) == 3
    module = torch.nn.Linear(2, 2)
    assert ctx.wrap(module) is module
    ctx.barrier()
    ctx.close()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(RuntimeError, match="WORLD_SIZE"):
        DistContext.from_env("cpu")


def test_trainable_batchnorm():
    from galcam.models import Backbone, FixedBatchNorm2d
    from galcam.training.stages import trainable_batchnorm

    bb = Backbone("resnet18")
    assert not bb.conv1.weight.requires_grad
    trainable_batchnorm(bb)
    assert bb.conv1.weight.requires_grad and bb.bn1.weight.requires_grad
    bns = [m for m in bb.modules() if isinstance(m, FixedBatchNorm2d)]
    assert bns and not any(m.fixed for m in bns)
    bb.train()
    bb(torch.randn(2, 3, 32, 32))
    assert not torch.equal(bb.bn1.running_mean, torch.zeros_like(bb.bn1.running_mean))


def test_class_weights_from_image_level_labels():
    labels = [[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]
    # class 0 in 3 of 4 images, class 1 in 2 of 4, class 2 in none
    assert class_weights(labels).tolist() == pytest.approx([1 / 3, 1.0, 1.0])
    assert class_weights(labels, "sqrt").tolist() == pytest.approx([(1 / 3) ** 0.5, 1.0, 1.0])
    assert class_weights(labels, "none").tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="mode"):
        class_weights(labels, "inverse")
    with pytest.raises(ValueError, match="labels"):
        class_weights([1, 0, 1])


def test_schedule_steps_quietly_when_the_scaler_skipped_the_optimizer():
    """A first optimizer step skipped by the gradient scaler still advances the schedule."""
    def fresh():
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / 4)

    with pytest.warns(UserWarning, match="Detected call of `lr_scheduler"):
        fresh().step()  # what torch says without the helper
    scheduler = fresh()
    trainer._step_schedule(scheduler)  # no optimizer.step() before it; warnings are errors
    assert scheduler.last_epoch == 1 and scheduler.get_last_lr() == [0.75]
    trainer._step_schedule(scheduler)
    assert scheduler.last_epoch == 2 and scheduler.get_last_lr() == [0.5]

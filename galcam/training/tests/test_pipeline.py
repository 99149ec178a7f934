"""train_weak_model end to end on a tiny data set: model folder, weak labels only, resume."""

import json

import numpy as np
import pytest
import torch

from galcam.datasets import CocoDataset
from galcam.models import load_model_folder
from galcam.training import train_weak_model
from galcam.training import trainer as trainer_module

from ._tiny import TINY, make_dataset

torch.set_num_threads(1)


class NoAnnotations(CocoDataset):
    """A data set that fails on any access to its pixel-level annotations."""

    def annotations(self, image_id):
        raise AssertionError("training read pixel-level annotations")

    def to_coco_dict(self):
        raise AssertionError("training read the COCO dictionary")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    clean = make_dataset(root / "clean", n=8, size=40)
    poisoned = make_dataset(root / "poisoned", n=8, size=40, poison=True)
    val = make_dataset(root / "val", n=4, size=40, seed=1, prefix="val")
    return root, clean, poisoned, val


@pytest.fixture(scope="module")
def reference_run(data):
    root, clean, _, val = data
    # on the CPU: bit-identical resumption is a CPU guarantee (cuDNN and atomic additions
    # make CUDA runs equal only to rounding)
    result = train_weak_model(CocoDataset(clean), output_dir=root / "run_a", seed=3,
                              val_dataset=CocoDataset(val), progress=False, device="cpu",
                              **TINY)
    return result


def _weights(path):
    return load_model_folder(path)[1]


def _assert_same(a, b):
    for net in ("cam", "irnet"):
        assert a[net].keys() == b[net].keys()
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)


def test_model_folder_contents(reference_run):
    path = reference_run.path
    config, states, metrics = load_model_folder(path)
    assert set(states) == {"cam", "irnet"}
    assert config["classes"] == ["FR-I", "FR-II", "FR-X", "R"]
    enc = config["encoding"]
    assert enc["channels"] == ["ir", "radio", "radio"] and enc["source"] == "png"
    assert enc["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert enc["image_size"] == [40, 40] and enc["train_crop"] == 32
    assert config["backbone"]["cam"]["arch"] == "resnet18"
    assert config["backbone"]["irnet"]["init"] == "cam-backbone"
    # random initial weights: ordinary batch normalisation was trained
    assert config["backbone"]["cam"]["init"] == "random"
    assert config["backbone"]["cam"]["batchnorm"].startswith("trained")
    assert not torch.equal(states["cam"]["backbone.bn1.running_var"],
                           torch.ones_like(states["cam"]["backbone.bn1.running_var"]))
    th = config["thresholds"]
    assert (th["cam_fg"], th["cam_bg"], th["class_threshold"]) == (0.35, 0.1, 0.5)
    assert th["cam_scales"] == [1.0, 0.5]
    assert config["radio"]["pixel_scale_arcsec"] is None  # PNG data carry no WCS
    assert config["preset"]["name"] == "fast"
    assert config["preset"]["hyperparameters"]["cam"]["epochs"] == 2
    assert config["training"]["seed"] == 3 and config["training"]["n_train"] == 8
    assert config["training"]["image_level_labels_only"] is True
    assert "galcam_version" in config
    # metrics: losses per epoch, validation accuracy of the final classifier
    assert [r["epoch"] for r in metrics["train"]["cam"]["epochs"]] == [1, 2]
    assert np.isfinite(metrics["train"]["irnet"]["final_loss"])
    val = metrics["validation"]
    assert val["n_images"] == 4 and 0 <= val["top1_accuracy"] <= 1
    assert set(val["per_class_recall"]) == {"FR-I", "FR-II", "FR-X", "R"}
    assert "val_loss" in metrics["train"]["cam"]["epochs"][0]
    fr = metrics["ir_labels"]
    assert sum(fr.values()) == pytest.approx(1.0)
    assert len(metrics["mean_shift"]) == 2
    # the IRNet mean shift is stored in its weights
    np.testing.assert_allclose(states["irnet"]["mean_shift.running_mean"].numpy(),
                               metrics["mean_shift"], rtol=1e-6)
    table = reference_run.to_table()
    assert len(table) == 4 and list(table["stage"]) == ["cam", "cam", "recam", "irnet"]
    assert (path / "checkpoints" / "irnet.pt").is_file()
    json.loads((path / "metrics.json").read_text())


def test_poisoned_annotations_and_a_killed_run_change_nothing(data, reference_run, monkeypatch):
    """Masks, boxes and keypoints are never read, and a killed run resumes exactly.

    The run is killed after its first CAM epoch and resumed, on a copy of the data set
    whose masks, boxes and keypoints are all different and whose annotation accessors
    raise: the model must equal the uninterrupted run on the clean data set.
    """
    root, _, poisoned, val = data
    ds = NoAnnotations(poisoned)
    assert ds.labels.tolist() == CocoDataset(data[1]).labels.tolist()
    original = trainer_module.save_checkpoint

    def die_after_first_epoch(path, payload):
        original(path, payload)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(trainer_module, "save_checkpoint", die_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_weak_model(ds, output_dir=root / "run_b", seed=3, device="cpu",
                         val_dataset=NoAnnotations(val), progress=False, **TINY)
    monkeypatch.undo()
    assert not (root / "run_b" / "config.json").exists()
    assert trainer_module.load_checkpoint(root / "run_b" / "checkpoints" / "cam.pt")["epoch"] == 1
    result = train_weak_model(ds, output_dir=root / "run_b", seed=3, device="cpu",
                              val_dataset=NoAnnotations(val), progress=False, **TINY)
    _assert_same(_weights(reference_run.path), _weights(result.path))
    assert [r["train_loss"] for r in result.history] == pytest.approx(
        [r["train_loss"] for r in reference_run.history], rel=1e-6)


def test_bad_arguments(data, reference_run, tmp_path):
    root, clean, _, _ = data
    ds = CocoDataset(clean)
    with pytest.raises(TypeError, match="image-level"):
        train_weak_model(list(ds), output_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="unknown training option"):
        train_weak_model(ds, output_dir=tmp_path / "x", cam_epoch=1)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        train_weak_model(ds, output_dir=reference_run.path, resume=False, **TINY)
    with pytest.raises(ValueError, match="seed"):
        train_weak_model(ds, output_dir=tmp_path / "x", seed=-1)
    other = CocoDataset(clean, classes=("FR-I", "FR-II", "FR-X", "R", "X"))
    with pytest.raises(ValueError, match="classes"):
        train_weak_model(ds, output_dir=tmp_path / "x", val_dataset=other)
    with pytest.raises(ValueError, match="weights_dtype"):
        train_weak_model(ds, output_dir=tmp_path / "x", weights_dtype="int8")


def test_shared_backbone_stored_once_and_float16(data, reference_run, tmp_path):
    """IRNet's backbone is the CAM one: stored once; float16 weights load as float32."""
    import shutil

    from galcam.inference import WeakSegmenter

    root, clean, _, val = data
    config, states, _ = load_model_folder(reference_run.path)
    assert config["backbone"]["irnet"]["shared_backbone"] == "cam"
    assert config["weights_dtype"] == "float32"
    assert not any(k.startswith("backbone.") for k in states["irnet"])
    # the finished checkpoints of the reference run, written again in float16
    half_dir = tmp_path / "half"
    shutil.copytree(reference_run.path / "checkpoints", half_dir / "checkpoints")
    train_weak_model(CocoDataset(clean), output_dir=half_dir, seed=3,
                     val_dataset=CocoDataset(val), progress=False, weights_dtype="float16",
                     **TINY)
    hconfig, hstates, _ = load_model_folder(half_dir)
    assert hconfig["weights_dtype"] == "float16"
    assert hstates["cam"]["classifier.weight"].dtype == torch.float16
    full_bytes = sum(e["bytes"] for e in config["weights"].values())
    half_bytes = sum(e["bytes"] for e in hconfig["weights"].values())
    assert half_bytes < 0.6 * full_bytes
    n32 = WeakSegmenter.load(reference_run.path, device="cpu").networks
    n16 = WeakSegmenter.load(half_dir, device="cpu").networks
    assert n16.shared and n32.shared
    assert next(n16.cam_net.parameters()).dtype == torch.float32
    for a, b in zip(n32.irnet.state_dict().values(), n16.irnet.state_dict().values()):
        if a.is_floating_point():
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=2e-3, atol=1e-4)


def test_retrain_irnet_keeps_the_classifier(data, reference_run, tmp_path):
    """retrain_irnet: same CAM weights, a new IRNet, the new settings recorded."""
    from galcam.models import load_model_folder
    from galcam.training import retrain_irnet

    ds = CocoDataset(data[1])
    out = tmp_path / "retrained"
    result = retrain_irnet(reference_run.path, ds, output_dir=out, device="cpu",
                           irnet_epochs=1)
    _, old, _ = load_model_folder(reference_run.path)
    config, new, metrics = load_model_folder(out)
    assert all(torch.equal(old["cam"][k], new["cam"][k]) for k in old["cam"])
    assert config["irnet_retrained"]["overrides"] == {"irnet_epochs": 1}
    assert config["preset"]["hyperparameters"]["irnet"]["epochs"] == 1
    assert len(result.history) == 1 and "ir_labels" in metrics
    with pytest.raises(FileExistsError, match="exists"):
        retrain_irnet(reference_run.path, ds, output_dir=out, device="cpu")
    with pytest.raises(TypeError, match="only IRNet settings"):
        retrain_irnet(reference_run.path, ds, output_dir=tmp_path / "x", cam_epochs=1)

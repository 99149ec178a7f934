"""Presets and overrides of galcam.training."""

import pytest

from galcam.training import PRESETS, TrainingConfig, resolve_config
from galcam.training.presets import REFERENCE_CAM_SCALE


def test_paper_preset_matches_the_reference():
    cfg = PRESETS["paper"]
    assert cfg.arch == "resnet50" and cfg.weights == "torchvision"
    cam, recam, irn = cfg.cam, cfg.recam, cfg.irnet
    assert (cam.epochs, cam.batch_size, cam.lr, cam.head_lr) == (30, 4, 0.01, 0.1)
    assert (recam.epochs, recam.batch_size, recam.lr, recam.head_lr, recam.predictor_lr) == (
        15, 4, 1e-5, 1e-5, 1e-4)
    assert (irn.epochs, irn.batch_size, irn.lr, irn.head_lr) == (3, 16, 0.1, 1.0)
    for st in (cam, recam, irn):
        # the reference's positional-argument bug: weight decay lands in SGD's momentum
        assert st.momentum == 1e-4 and st.weight_decay == 1e-4 and st.poly_power == 0.9
        assert st.hflip
    assert cam.rotate and not recam.rotate and not irn.rotate
    assert cam.scale_range == (REFERENCE_CAM_SCALE,) * 2 == recam.scale_range
    assert abs(REFERENCE_CAM_SCALE - 0.7556) < 1e-4
    assert irn.scale_range == (0.5, 1.5)
    assert cfg.recam_loss_weight == 0.5 and cfg.irnet_radius == 10
    assert (cfg.fg_threshold, cfg.bg_threshold) == (0.35, 0.1)
    assert cfg.cam_scales == (1.0, 0.5, 1.5, 2.0)
    assert cfg.irnet_backbone == "imagenet"


def test_fast_preset_is_small_and_uses_adamw_for_the_classifier():
    cfg = PRESETS["fast"]
    assert cfg.arch == "resnet18"
    assert cfg.cam.optimizer == "adamw" and cfg.cam.lr == cfg.cam.head_lr == 1e-3
    assert cfg.recam.optimizer == "sgd" and cfg.recam.momentum == 0.9
    assert cfg.class_balance == "none"
    assert cfg.cam.crop_size <= 160 and cfg.irnet.crop_size <= 160
    assert cfg.cam.epochs * cfg.cam.batch_size <= 30 * 8
    # whole cutouts: a 210-pixel cutout at the largest scale fits in the crop
    assert round(210 * cfg.cam.scale_range[1]) <= cfg.cam.crop_size + 16
    # scale 1 is among the CAM scales, so the segmenter runs the shared backbone once
    assert 1.0 in cfg.cam_scales and cfg.irnet_backbone == "cam"


def test_overrides_by_stage_prefix_and_top_level():
    cfg = resolve_config("paper", cam_epochs=2, irnet_crop_size=96, arch="resnet18",
                         recam_scale_range=[0.5, 1.0], cam_scales=[1.0], irnet_radius=5)
    assert cfg.cam.epochs == 2 and cfg.recam.epochs == 15
    assert cfg.irnet.crop_size == 96 and cfg.arch == "resnet18"
    assert cfg.recam.scale_range == (0.5, 1.0) and cfg.cam_scales == (1.0,)
    assert cfg.irnet_radius == 5
    assert PRESETS["paper"].cam.epochs == 30  # presets are immutable
    assert resolve_config(cfg) == cfg
    assert "cam_momentum" in TrainingConfig.keys() and "irnet_radius" in TrainingConfig.keys()


@pytest.mark.parametrize("kwargs, match", [
    ({"cam_epoch": 3}, "unknown training option"),
    ({"cam_epochs": 0}, "cam_epochs"),
    ({"recam_lr": -1.0}, "recam_lr"),
    ({"irnet_momentum": 1.0}, "irnet_momentum"),
    ({"cam_scale_range": (1.5, 1.0)}, "cam_scale_range"),
    ({"arch": "vgg16"}, "arch"),
    ({"fg_threshold": 0.05}, "bg_threshold"),
    ({"irnet_crop_size": 64}, "irnet_crop_size"),
    ({"fill": "nan"}, "fill"),
    ({"mean": (0.5,), "std": (0.2, 0.2)}, "same length"),
    ({"cam_predictor_lr": 0.1}, "cam_predictor_lr"),
    ({"cam_optimizer": "adam"}, "cam_optimizer: expected one of"),
    ({"class_balance": "yes"}, "class_balance: expected one of"),
])
def test_invalid_values_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        resolve_config("paper", **kwargs)


def test_unknown_preset():
    with pytest.raises(ValueError, match="preset"):
        resolve_config("slow")


def test_to_dict_is_json_serialisable():
    import json

    d = PRESETS["paper"].to_dict()
    assert json.loads(json.dumps(d))["cam"]["lr"] == 0.01

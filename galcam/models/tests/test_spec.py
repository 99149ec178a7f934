"""ModelSpec: the one reader and writer of a model folder's config.json."""

import json
from importlib import resources

import pytest

from galcam.models import SCHEMA_VERSION, ModelFolderError, ModelSpec, NetworkSpec


def _bundled_config():
    path = resources.files("galcam") / "data" / "models" / "default" / "config.json"
    return json.loads(path.read_text())


def test_bundled_config_round_trips_exactly():
    config = _bundled_config()
    spec = ModelSpec.from_dict(config, path="default")
    assert spec.classes == ("FR-I", "FR-II", "FR-X", "R")
    assert spec.image_size == (210, 210) and spec.cam_scales == (0.6, 1.0)
    assert spec.cam == NetworkSpec("resnet18", 3, None)
    assert spec.irnet == NetworkSpec("resnet18", 3, "cam")
    # the recommended class threshold wins over the training one
    assert spec.class_threshold == 0.5 and spec.inference_class_threshold == 0.0
    assert spec.score_threshold == 0.535
    assert dict(spec.grouping) == {"resolution_scale": 1.0, "unresolved_ratio": 1.5}
    assert spec.to_dict() == config  # nothing lost, nothing added
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_spec_pickles_and_stays_read_only():
    import pickle

    spec = ModelSpec.from_dict(_bundled_config(), path="default")
    back = pickle.loads(pickle.dumps(spec))  # worker processes receive specs
    assert back == spec and back.to_dict() == spec.to_dict()
    with pytest.raises(TypeError):
        back.encoding["n_sigma"] = 5


def test_spec_is_immutable_and_with_options_checks():
    spec = ModelSpec(classes=("A", "B"))
    with pytest.raises(AttributeError):
        spec.classes = ("C",)
    with pytest.raises(TypeError):
        spec.extra["x"] = 1
    changed = spec.with_options(cam_scales=[1.0, 0.5])
    assert changed.cam_scales == (1.0, 0.5) and spec.cam_scales == (1.0, 0.5, 1.5, 2.0)
    with pytest.raises(ModelFolderError, match="class_threshold must be a number in"):
        spec.with_options(class_threshold=1.5)


def test_defaults_fill_an_old_minimal_config():
    spec = ModelSpec.from_dict({"classes": ["FR-I", "FR-II"], "backbone": "resnet18"})
    assert spec.cam.arch == spec.irnet.arch == "resnet18"
    assert spec.channels == ("ir", "radio", "radio") and spec.image_size == (210, 210)
    assert spec.pixel_scale is None and spec.beam is None
    assert spec.recommended_class_threshold is None and spec.inference_class_threshold == 0.5
    assert spec.encoder().channels == ("ir", "radio", "radio")


@pytest.mark.parametrize("edit, match", [
    (lambda c: c.update(schema_version=SCHEMA_VERSION + 1), "written by a newer galcam"),
    (lambda c: c.update(schema_version="1"), "invalid schema_version"),
    (lambda c: c.update(classes=[]), "'classes' must be a non-empty list"),
    (lambda c: c.update(classes=["A", "A", "B", "C"]), "holds a name twice"),
    (lambda c: c["encoding"]["normalization"].update(std=[0.2, 0.2]), "do not match"),
    (lambda c: c["encoding"].update(image_size=[8, 8]), "too small"),
    (lambda c: c["backbone"]["cam"].update(in_channels=4), r"in_channels 4 != 3"),
    (lambda c: c["radio"].update(pixel_scale_arcsec=-2), "pixel_scale_arcsec must be"),
    (lambda c: c["radio"]["beam"].update(major_arcsec=0), "beam.major_arcsec must be"),
    (lambda c: c["inference"].update(class_threshold=None), r"inference.class_threshold must"),
    (lambda c: c["inference"].update(score_threshold=2), r"inference.score_threshold must"),
    (lambda c: c["inference"].update(unresolved_ratio=-1), "positive number or null"),
    (lambda c: c["thresholds"].update(class_views="all"), "class_views must be one of"),
])
def test_bad_configs_name_the_file_and_key(edit, match):
    config = _bundled_config()
    edit(config)
    with pytest.raises(ModelFolderError, match=match) as info:
        ModelSpec.from_dict(config, path="/models/m1")
    assert "'/models/m1/config.json': incompatible model" in str(info.value)

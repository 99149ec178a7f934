import json
import logging

import pytest
import torch

import galcam
from galcam.models.folder import (
    SCHEMA_VERSION,
    ModelFolderError,
    load_model_folder,
    resolve_device,
    save_model_folder,
)

torch.set_num_threads(1)

CONFIG = {"classes": ["FR-I", "FR-II", "FR-X", "R"], "encoding": "paper",
          "backbone": "resnet18", "thresholds": {"class": 0.5}, "pixel_scale_arcsec": 2.0,
          "beam": {"major_arcsec": 18.0, "minor_arcsec": 18.0, "pa_deg": 0.0}}


@pytest.fixture
def states():
    torch.manual_seed(0)
    return {"cam": {"w": torch.randn(4, 8), "b.running_mean": torch.zeros(3)},
            "irn": {"x": torch.arange(6).view(2, 3)}}


def test_round_trip(tmp_path, states):
    path = save_model_folder(tmp_path / "m", config=CONFIG, state_dicts=states,
                             metrics={"mAP50": 0.5})
    assert sorted(p.name for p in path.iterdir()) == ["cam.pt", "config.json", "irn.pt",
                                                      "metrics.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp left
    config, loaded, metrics = load_model_folder(path)
    assert config["schema_version"] == SCHEMA_VERSION
    assert config["galcam_version"] == galcam.__version__
    assert config["classes"] == CONFIG["classes"] and config["beam"] == CONFIG["beam"]
    assert set(config["weights"]) == {"cam", "irn"}
    assert len(config["weights"]["cam"]["sha256"]) == 64
    assert metrics == {"mAP50": 0.5}
    for name, state in states.items():
        assert state.keys() == loaded[name].keys()
        for key in state:
            assert torch.equal(state[key], loaded[name][key])
    # plain tensor files
    raw = torch.load(path / "cam.pt", weights_only=True)
    assert torch.equal(raw["w"], states["cam"]["w"])


def test_overwrite(tmp_path, states):
    path = save_model_folder(tmp_path / "m", config=CONFIG, state_dicts=states)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_model_folder(path, config=CONFIG, state_dicts=states)
    save_model_folder(path, config={"classes": ["R"]}, state_dicts={"cam": states["cam"]},
                      overwrite=True)
    config, loaded, metrics = load_model_folder(path)
    assert config["classes"] == ["R"] and set(loaded) == {"cam"} and metrics == {}
    assert not (path / "irn.pt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_truncated_file(tmp_path, states):
    path = save_model_folder(tmp_path / "m", config=CONFIG, state_dicts=states)
    data = (path / "cam.pt").read_bytes()
    (path / "cam.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFolderError, match=r"cam\.pt.*truncated"):
        load_model_folder(path)


def test_missing_file(tmp_path, states):
    path = save_model_folder(tmp_path / "m", config=CONFIG, state_dicts=states)
    (path / "irn.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"irn\.pt.*missing"):
        load_model_folder(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model_folder(tmp_path / "nothing")
    (path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model_folder(path)


def test_bad_config(tmp_path, states):
    path = save_model_folder(tmp_path / "m", config=CONFIG, state_dicts=states)
    config = json.loads((path / "config.json").read_text())
    config["schema_version"] = SCHEMA_VERSION + 1
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="newer galcam"):
        load_model_folder(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match="not valid JSON"):
        load_model_folder(path)


def test_non_tensor_content(tmp_path, states):
    with pytest.raises(TypeError, match=r"state_dicts\['cam'\]\['n'\]: expected a tensor"):
        save_model_folder(tmp_path / "a", config=CONFIG, state_dicts={"cam": {"n": 3}})
    with pytest.raises(ValueError, match="reserved"):
        save_model_folder(tmp_path / "a", config={"weights": 1}, state_dicts=states)
    with pytest.raises(TypeError, match="JSON"):
        save_model_folder(tmp_path / "a", config={"x": object()}, state_dicts=states)
    with pytest.raises(ValueError, match="invalid network name"):
        save_model_folder(tmp_path / "a", config=CONFIG, state_dicts={"../x": states["cam"]})
    assert not (tmp_path / "a").exists()
    # a weights file with the right checksum but non-tensor content is rejected on load
    path = save_model_folder(tmp_path / "m", config=CONFIG, state_dicts=states)
    torch.save({"w": [1, 2, 3]}, path / "cam.pt")
    config = json.loads((path / "config.json").read_text())
    import hashlib
    config["weights"]["cam"]["sha256"] = hashlib.sha256((path / "cam.pt").read_bytes()).hexdigest()
    config["weights"]["cam"]["bytes"] = (path / "cam.pt").stat().st_size
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="expected a tensor"):
        load_model_folder(path)


def test_resolve_device(caplog, monkeypatch):
    with caplog.at_level(logging.INFO, logger="galcam.models.folder"):
        dev = resolve_device("auto")
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert "device auto" in caplog.text
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda:0")
    assert resolve_device("auto") == torch.device("cpu")

"""Registered model names and where their folders are (galcam never downloads a model)."""

import os
from pathlib import Path

__all__ = ["MODEL_REGISTRY", "ModelNotInstalledError", "models_dir", "resolve_model"]

_DATA_MODELS = Path(__file__).resolve().parent.parent / "data" / "models"

#: Registered model names. An entry is ``{"path": folder}`` for a model shipped with
#: galcam, or ``{"url": ..., "sha256": ..., "description": ...}`` for one that must be
#: fetched (galcam never downloads at prediction time; see `resolve_model`).
MODEL_REGISTRY = {
    "default": {
        "path": _DATA_MODELS / "default",
        "description": "bundled model trained by the galcam developers",
    },
    "first": {
        "path": _DATA_MODELS / "first",
        "description": ("FIRST (1.4 GHz, 1.8\" pixels, 5.4\" beam) model trained on the real "
                        "images of the firstgalaxydata train split from their image-level "
                        "labels (FRI, FRII, Compact, Bent); test accuracy 0.695"),
    },
}


class ModelNotInstalledError(FileNotFoundError):
    """A registered model name whose files are not on this machine."""


def models_dir():
    """Folder where fetched registered models live: ``$GALCAM_MODELS`` or
    ``~/.cache/galcam/models``."""
    env = os.environ.get("GALCAM_MODELS")
    return Path(env) if env else Path.home() / ".cache" / "galcam" / "models"


def resolve_model(model):
    """The model folder for a path or a registered name.

    Parameters
    ----------
    model : str or path-like
        A model folder, or a name in `MODEL_REGISTRY` (``"default"``).

    Returns
    -------
    path : `pathlib.Path`

    Raises
    ------
    ModelNotInstalledError
        A registered name whose folder is not installed (nothing is downloaded).
    FileNotFoundError
        Neither an existing folder nor a registered name.
    """
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model: expected a folder path or a registered name, got {model!r}")
    path = Path(model)
    if path.is_dir():
        return path
    name = str(model)
    if name in MODEL_REGISTRY and not path.exists():
        entry = MODEL_REGISTRY[name]
        if "path" in entry:
            folder = Path(entry["path"])
            if folder.is_dir():
                return folder
            raise ModelNotInstalledError(
                f"model {name!r}: no bundled model is installed (expected it in '{folder}'); "
                "train one with `galcam train --coco TRAIN.json --image-dir DIR -o MODELDIR` "
                "(or WeakSegmenter.train) and pass that folder instead")
        folder = models_dir() / name
        if folder.is_dir():
            return folder
        raise ModelNotInstalledError(
            f"model {name!r} is not installed and galcam does not download models while "
            f"predicting (offline use): fetch {entry.get('url', 'it')} on a machine with "
            f"network access, unpack it to '{folder}' (or set GALCAM_MODELS), or pass a "
            "model folder")
    if path.exists():
        raise FileNotFoundError(f"model '{path}' is not a folder (a model is a folder with "
                                "config.json and weights)")
    raise FileNotFoundError(
        f"model {name!r}: no such model folder, and not a registered model name (registered: "
        f"{', '.join(sorted(MODEL_REGISTRY))})")

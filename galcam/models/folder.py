"""The model folder: a trained galcam model on disk, and device selection.

A model folder (design contract) holds

``config.json``
    ``schema_version``, ``galcam_version``, ``created`` (ISO 8601, UTC), everything
    the caller supplies (classes, encoding, backbone, thresholds, pixel scale, beam,
    ...) and a ``weights`` table: for each network ``name``, its file ``<name>.pt``,
    byte size and SHA-256.
``<name>.pt``
    One file per network: a plain ``{parameter name: tensor}`` dict written with
    `torch.save`, so it loads with ``torch.load(weights_only=True)`` (no pickled code).
``metrics.json``
    How the model scored and on what (``{}`` when nothing was measured).

Folders are written atomically: everything goes to a hidden temporary folder beside
the target, which is then renamed into place.
"""

import datetime
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch

from ..io import file_sha256
from .spec import SCHEMA_VERSION, ModelFolderError, config_sha256

__all__ = ["RESERVED_KEYS", "SCHEMA_VERSION", "ModelFolderError", "config_sha256",
           "load_model_folder", "resolve_device", "save_model_folder"]

log = logging.getLogger(__name__)

#: Keys of config.json that `save_model_folder` adds itself (a caller must not give them).
RESERVED_KEYS = ("schema_version", "galcam_version", "created", "weights")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _check_state_dict(name, state):
    if not isinstance(state, dict):
        raise TypeError(f"state_dicts[{name!r}]: expected a dict of tensors, "
                        f"got {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"state_dicts[{name!r}]: keys must be str, got {key!r}")
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"state_dicts[{name!r}][{key!r}]: expected a tensor, "
                            f"got {type(value).__name__}")


def save_model_folder(path, *, config, state_dicts, metrics=None, overwrite=False):
    """Write a model folder atomically.

    Parameters
    ----------
    path : str or path-like
        Folder to create.
    config : dict
        JSON-serialisable description of the model (classes, encoding, backbone,
        thresholds, pixel scale, beam, ...). The keys ``schema_version``,
        ``galcam_version``, ``created`` and ``weights`` are reserved (added here).
    state_dicts : dict of str to dict of `torch.Tensor`
        Network name (letters, digits, ``_ . -``) to state dict; each is written to
        ``<name>.pt`` as CPU tensors.
    metrics : dict, optional
        JSON-serialisable scores, written to ``metrics.json`` (``{}`` if `None`).
    overwrite : bool, optional
        Replace an existing folder. By default an existing path raises
        `FileExistsError`.

    Returns
    -------
    path : `pathlib.Path`
    """
    path = Path(path)
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict, got {type(config).__name__}")
    clash = [k for k in RESERVED_KEYS if k in config]
    if clash:
        raise ValueError(f"config: keys {clash} are reserved and written by save_model_folder")
    if metrics is not None and not isinstance(metrics, dict):
        raise TypeError(f"metrics: expected a dict or None, got {type(metrics).__name__}")
    if not isinstance(state_dicts, dict) or not state_dicts:
        raise ValueError("state_dicts: expected a non-empty dict of name -> state dict")
    for name, state in state_dicts.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"state_dicts: invalid network name {name!r} "
                             "(letters, digits, '_', '.', '-' only)")
        _check_state_dict(name, state)
    for what, value in (("config", config), ("metrics", metrics or {})):
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{what}: not JSON-serialisable ({exc})") from exc
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise FileExistsError(f"'{path}': exists already (pass overwrite=True to replace it)")
        if not path.is_dir():
            raise FileExistsError(f"'{path}': exists and is not a folder; not replacing it")

    from .. import __version__

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        table = {}
        for name, state in state_dicts.items():
            file = tmp / f"{name}.pt"
            torch.save({k: v.detach().to("cpu").clone() for k, v in state.items()}, file)
            table[name] = {"file": file.name, "bytes": file.stat().st_size,
                           "sha256": file_sha256(file)}
        full = {
            "schema_version": SCHEMA_VERSION,
            "galcam_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **config,
            "weights": table,
        }
        (tmp / "config.json").write_text(json.dumps(full, indent=2) + "\n")
        (tmp / "metrics.json").write_text(json.dumps(metrics or {}, indent=2) + "\n")
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "model")
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old / "model", path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote model folder %s (%s)", path, ", ".join(table))
    return path


def load_model_folder(path, *, map_location="cpu"):
    """Read and check a model folder.

    Parameters
    ----------
    path : str or path-like
        The folder written by `save_model_folder`.
    map_location : str or `torch.device`, optional
        Where to put the tensors (passed to `torch.load`).

    Returns
    -------
    config : dict
        The content of ``config.json`` (with ``schema_version``, ``weights`` ...).
    state_dicts : dict of str to dict of `torch.Tensor`
        One state dict per network named in ``config['weights']``.
    metrics : dict or None
        The content of ``metrics.json``, `None` if the file is absent.

    Raises
    ------
    FileNotFoundError
        The folder, ``config.json`` or a weights file is missing.
    ModelFolderError
        ``config.json`` does not parse, the schema version is not supported, a weights
        file is truncated or corrupt (SHA-256 mismatch) or does not hold tensors only.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model folder '{path}' does not exist or is not a folder")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"'{path}': not a galcam model folder (no config.json)")
    try:
        config = json.loads(config_file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFolderError(f"'{config_file}': not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ModelFolderError(f"'{config_file}': expected a JSON object")
    version = config.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFolderError(f"'{config_file}': missing or invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise ModelFolderError(
            f"'{path}': model folder schema version {version} was written by a newer galcam "
            f"({config.get('galcam_version', 'unknown')}); this galcam reads versions up to "
            f"{SCHEMA_VERSION}. Upgrade galcam to use this model.")
    table = config.get("weights")
    if not isinstance(table, dict) or not table:
        raise ModelFolderError(f"'{config_file}': no 'weights' table")

    state_dicts = {}
    for name, entry in table.items():
        if (not isinstance(entry, dict) or not isinstance(entry.get("file"), str)
                or not isinstance(entry.get("sha256"), str)):
            raise ModelFolderError(f"'{config_file}': bad weights entry {name!r}: {entry!r}")
        file = path / entry["file"]
        if file.resolve().parent != path.resolve():
            raise ModelFolderError(f"'{config_file}': weights file {entry['file']!r} is "
                                   "outside the model folder")
        if not file.is_file():
            raise FileNotFoundError(f"'{file}': weights file of {name!r} is missing from the "
                                    "model folder")
        digest = file_sha256(file)
        if digest != entry["sha256"]:
            size = file.stat().st_size
            expected = entry.get("bytes")
            hint = (f"{size} bytes instead of {expected}: truncated?"
                    if expected is not None and size != expected else "content changed")
            raise ModelFolderError(f"'{file}': corrupt weights file ({hint}; SHA-256 "
                                   f"{digest[:12]}... does not match config.json)")
        try:
            state = torch.load(file, map_location=map_location, weights_only=True)
        except Exception as exc:  # torch raises several exception types here
            raise ModelFolderError(f"'{file}': cannot load with torch.load(weights_only=True) "
                                   f"({type(exc).__name__}: {exc})") from exc
        try:
            _check_state_dict(name, state)
        except TypeError as exc:
            raise ModelFolderError(f"'{file}': {exc}") from None
        state_dicts[name] = state

    metrics = None
    metrics_file = path / "metrics.json"
    if metrics_file.is_file():
        try:
            metrics = json.loads(metrics_file.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelFolderError(f"'{metrics_file}': not valid JSON ({exc})") from exc
    else:
        log.info("model folder %s has no metrics.json", path)
    log.info("loaded model folder %s (schema %d, written by galcam %s)", path, version,
             config.get("galcam_version", "unknown"))
    return config, state_dicts, metrics


def resolve_device(device="auto"):
    """Turn a device request into a `torch.device`, checking that it exists.

    Parameters
    ----------
    device : str or `torch.device`, optional
        ``'auto'`` (default): the first CUDA GPU if torch sees one, else the CPU.
        ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'mps'`` (Apple GPUs) are taken as
        given and checked.

    Returns
    -------
    device : `torch.device`

    Raises
    ------
    RuntimeError
        A GPU is requested but not available.
    ValueError
        The request is not a device name.
    """
    if isinstance(device, str) and device.strip().lower() == "auto":
        if torch.cuda.is_available():
            dev = torch.device("cuda", torch.cuda.current_device())
            log.info("device auto: using %s (%s)", dev, torch.cuda.get_device_name(dev))
        else:
            dev = torch.device("cpu")
            log.info("device auto: no CUDA GPU available, using the CPU")
        return dev
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', "
                         f"got {device!r}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} requested but CUDA is not available "
                               f"(torch {torch.__version__}, built with CUDA "
                               f"{torch.version.cuda or 'no'}); use device='cpu' or 'auto'")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise RuntimeError(f"device {device!r} requested but only {count} CUDA device(s) "
                               "are visible")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise RuntimeError(f"device {device!r} requested but MPS is not available")
    elif dev.type != "cpu":
        raise ValueError(f"device: unsupported device type {dev.type!r} "
                         "(expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps')")
    log.info("using device %s", dev)
    return dev

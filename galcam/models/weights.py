"""Loading ImageNet weights into a `~galcam.models.Backbone`, without network access.

The reference code downloads torchvision's original ResNet-50 ImageNet weights
when the network is built. galcam never downloads anything by itself: the weights
are read from a file the user provides, or from torch's local hub cache if
torchvision already placed them there.
"""

import hashlib
import logging
import os
from pathlib import Path

import torch
from torchvision import models as tv_models

__all__ = ["WeightsError", "imagenet_weights_path", "load_imagenet_weights"]

log = logging.getLogger(__name__)

_TORCHVISION_WEIGHTS = {
    "resnet18": tv_models.ResNet18_Weights.IMAGENET1K_V1,
    "resnet34": tv_models.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": tv_models.ResNet50_Weights.IMAGENET1K_V1,
}


# File names of the same ImageNet weights under torchvision's older URLs; the reference
# code downloads resnet50-19c8e357.pth. Accepted from the hub cache as well.
_LEGACY_FILES = {
    "resnet18": "resnet18-5c106cde.pth",
    "resnet34": "resnet34-333f7ec4.pth",
    "resnet50": "resnet50-19c8e357.pth",
}


class WeightsError(ValueError):
    """A weights file is missing, unreadable or does not fit the network."""


def imagenet_weights_path(arch):
    """Path where torchvision caches the ``IMAGENET1K_V1`` weights of ``arch``.

    This is ``torch.hub.get_dir()/checkpoints/<file name of the torchvision URL>``
    (``$TORCH_HOME/hub/checkpoints/...``); the file may or may not exist.

    Parameters
    ----------
    arch : {'resnet18', 'resnet34', 'resnet50'}
        Architecture name.

    Returns
    -------
    path : `pathlib.Path`
    url : str
        Where torchvision would download the file from.
    """
    if arch not in _TORCHVISION_WEIGHTS:
        raise ValueError(f"arch: expected one of {sorted(_TORCHVISION_WEIGHTS)}, got {arch!r}")
    url = _TORCHVISION_WEIGHTS[arch].url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url), url


def _check_hash_prefix(path):
    """Compare a torchvision file's SHA-256 with the prefix in its name (e.g. -0676ba61.)."""
    match = torch.hub.HASH_REGEX.search(path.name)
    if match is None:
        return
    prefix = match.group(1)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if not digest.hexdigest().startswith(prefix):
        raise WeightsError(
            f"'{path}': SHA-256 {digest.hexdigest()[:12]}... does not start with {prefix!r} "
            "as the file name says; the file is corrupt or not the torchvision weights. "
            "Delete it and provide the original file.")


def _read_state_dict(path):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for bad files
        raise WeightsError(f"'{path}': cannot read a torch state dict "
                           f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"'{path}': expected a state dict (a dict of tensors), "
                           f"got {type(state).__name__}")
    return state


def load_imagenet_weights(backbone, source):
    """Load ImageNet-pretrained torchvision ResNet weights into a backbone, in place.

    Parameters
    ----------
    backbone : `~galcam.models.Backbone`
        The network to initialise; its ``arch`` must match the weights.
    source : 'torchvision' or path-like
        ``'torchvision'``: torchvision's ``IMAGENET1K_V1`` weights for the backbone's
        architecture (the original weights that the reference code downloads), read
        **only** from the local torch hub cache (see `imagenet_weights_path`; the file
        name of torchvision's older URL, e.g. ``resnet50-19c8e357.pth`` as used by the
        reference, is accepted too); their SHA-256 is checked against the prefix in the
        file name. Nothing is downloaded:
        if the file is not there, a `FileNotFoundError` explains how to provide it.
        A path: a file holding a torchvision ResNet state dict, saved with
        ``torch.save(model.state_dict(), path)``.

    Returns
    -------
    backbone : `~galcam.models.Backbone`
        The same object.

    Raises
    ------
    FileNotFoundError
        The file (or the cached torchvision weights) does not exist.
    WeightsError
        The file is unreadable, not a state dict, or does not fit the architecture.

    Notes
    -----
    The classifier (``fc.*``) entries are ignored; every other entry must match the
    backbone exactly. If the backbone has ``in_channels != 3``, the 3-channel
    ``conv1`` filters are averaged over their input channels and repeated, scaled by
    ``3 / in_channels`` so that a constant image gives the same response.
    """
    if isinstance(source, str) and source == "torchvision":
        path, url = imagenet_weights_path(backbone.arch)
        legacy = path.with_name(_LEGACY_FILES[backbone.arch])
        if not path.is_file() and legacy.is_file():
            path = legacy
        if not path.is_file():
            raise FileNotFoundError(
                f"torchvision ImageNet weights for {backbone.arch} are not in the local "
                f"torch hub cache (expected '{path}'); galcam never downloads them. "
                f"Download {url} on a machine with network access and copy it to that "
                "path (or set TORCH_HOME), or pass the file's path as weights=...")
        _check_hash_prefix(path)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"weights file '{path}' does not exist")
    else:
        raise TypeError(f"source: expected 'torchvision' or a file path, got {source!r}")

    state = _read_state_dict(path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}

    conv1 = state.get("conv1.weight")
    n_in = backbone.in_channels
    if conv1 is not None and conv1.ndim == 4 and conv1.shape[1] == 3 and n_in != 3:
        state["conv1.weight"] = conv1.mean(dim=1, keepdim=True).repeat(1, n_in, 1, 1) * (3 / n_in)

    own = backbone.state_dict()
    # old torchvision files lack num_batches_tracked; BatchNorm fills it in itself
    missing = sorted(k for k in set(own) - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        def _few(keys):
            return ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else "")
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys ({_few(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
        if wrong:
            problems.append(f"{len(wrong)} keys with the wrong shape ({_few(wrong)})")
        raise WeightsError(f"'{path}': does not fit a {backbone.arch} backbone: "
                           + "; ".join(problems))
    backbone.load_state_dict(state, strict=True)
    log.info("loaded %s weights from %s", backbone.arch, path)
    return backbone

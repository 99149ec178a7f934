"""The manifest of a survey run: inputs, model, settings and progress (torch-free).

``OUTDIR/manifest.json`` is rewritten atomically as a run progresses. It records

* ``inputs``: for the mosaic, the infrared image and the seed catalogue, the path, byte
  size, modification time and the SHA-256 of the first and last MiB (`file_fingerprint`:
  cheap for a 10 GB mosaic, and it changes when the file is replaced or rewritten);
* ``model``: the model folder and the SHA-256 of its ``config.json`` (which records the
  SHA-256 of every weights file);
* ``settings``: everything that changes a unit's result (unit size, overlap, seeds and
  their columns, model options, plane) and, separately, the merge settings;
* ``units``: how many there are, how many are done and which failed (with the error);
* ``fingerprint``: SHA-256 of the inputs' contents, the model and the unit settings.
  Paths are not part of it, so a run can be moved; every unit file carries it, and a
  rerun with another fingerprint is refused unless ``overwrite`` is given.
"""

import hashlib
import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

from galcam.io import atomic_write

__all__ = ["MANIFEST_NAME", "MANIFEST_SCHEMA", "file_fingerprint", "model_fingerprint",
           "run_fingerprint", "read_manifest", "write_manifest", "SurveyMismatchError"]

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = "galcam.survey.manifest/1"
_CHUNK = 1 << 20


class SurveyMismatchError(ValueError):
    """An output folder holds a run made with other inputs, model or settings."""


def file_fingerprint(path):
    """Identity of a (possibly huge) file without reading all of it.

    Returns
    -------
    fingerprint : dict
        ``{"path", "size", "mtime", "sha256_head_tail"}``: the resolved path, the size in
        bytes, the modification time (ISO 8601) and the SHA-256 of the size followed by the
        first and the last MiB.
    """
    path = Path(path)
    st = path.stat()
    digest = hashlib.sha256(str(st.st_size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(_CHUNK))
        if st.st_size > _CHUNK:
            fh.seek(max(st.st_size - _CHUNK, _CHUNK))
            digest.update(fh.read(_CHUNK))
    mtime = datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat(timespec="seconds")
    return {"path": str(path.resolve()), "size": int(st.st_size), "mtime": mtime,
            "sha256_head_tail": digest.hexdigest()}


def model_fingerprint(folder):
    """``{"path", "config_sha256"}`` of a model folder."""
    from galcam.models.spec import config_sha256  # torch-free

    folder = Path(folder)
    return {"path": str(folder.resolve()), "config_sha256": config_sha256(folder)}


def _canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def run_fingerprint(inputs, model, settings):
    """SHA-256 of what determines the units' results (contents, not paths).

    Parameters
    ----------
    inputs : dict
        Name -> `file_fingerprint` (or None).
    model : dict
        `model_fingerprint`.
    settings : dict
        The unit settings (JSON-serialisable).
    """
    content = {
        "inputs": {k: None if v is None else {"size": v["size"],
                                              "sha256_head_tail": v["sha256_head_tail"]}
                   for k, v in sorted(inputs.items())},
        "model": model["config_sha256"],
        "settings": settings,
    }
    return hashlib.sha256(_canonical(content).encode()).hexdigest()


def read_manifest(output_dir):
    """The manifest of an output folder as a dict, or None when there is none.

    Raises
    ------
    ValueError
        The file exists but is not a galcam survey manifest.
    """
    path = Path(output_dir) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ValueError(f"'{path}': unreadable survey manifest ({exc}); remove it or use "
                         "overwrite") from exc
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise ValueError(f"'{path}': not a galcam survey manifest (schema "
                         f"{manifest.get('schema') if isinstance(manifest, dict) else None!r})")
    return manifest


def write_manifest(output_dir, manifest):
    """Write ``manifest`` (a dict) to ``<output_dir>/manifest.json`` atomically."""
    manifest = dict(manifest)
    manifest["schema"] = MANIFEST_SCHEMA
    manifest["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    text = json.dumps(manifest, indent=1, sort_keys=False, default=str)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    atomic_write(Path(output_dir) / MANIFEST_NAME, write)
    return manifest

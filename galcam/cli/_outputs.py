"""One run's files in an output folder: refusing, replacing and recording them.

A ``galcam`` command that writes into a folder (``predict``, ``islands``) records what it
wrote in ``OUTDIR/galcam-run.json``, written last and atomically: the command, its
arguments, the galcam version, the model and its checksum, and each file with its size
and SHA-256. The next run into the same folder reads it: without ``--overwrite`` it refuses
to touch the earlier run's files; with ``--overwrite`` it replaces them and removes those
it does not write itself (e.g. ``catalog.ecsv`` of a one-image run when a ``--coco`` run
follows), so that the folder holds one run's files. Files that no manifest lists are
never removed: galcam did not write them, or cannot tell.
"""

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

from galcam.io import file_sha256

from .main import GalcamCLIError

__all__ = ["RUN_MANIFEST", "OutputFolder", "arguments_of", "read_run_manifest"]

log = logging.getLogger(__name__)

#: The manifest of the run that wrote an output folder.
RUN_MANIFEST = "galcam-run.json"


def _jsonable(value):
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def read_run_manifest(outdir):
    """The manifest of the run that wrote ``outdir``, or None (none, or unreadable)."""
    path = Path(outdir) / RUN_MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("'%s' cannot be read (%s): the files of the run that wrote it are left in "
                    "place", path, exc)
        return None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        log.warning("'%s' lists no files: the files of the run that wrote it are left in "
                    "place", path)
        return None
    return manifest


class OutputFolder:
    """The output folder of one run of a ``galcam`` command.

    Made before any work: refuses a path that is a file, and files of this run or of an
    earlier galcam run (its manifest) that are there already, unless ``overwrite``.

    Parameters
    ----------
    path : path-like
        The folder (made when the outputs are written).
    command : str
        The subcommand, e.g. ``"predict"``.
    names : sequence of str
        Every file this run may write (file names in ``path``).
    overwrite : bool
        ``--overwrite`` was given.
    known : sequence of str, optional
        Files the command writes in other modes (e.g. ``galcam predict --coco`` writes no
        catalogue): found in a folder without a manifest, they are said to be left there.
    """

    def __init__(self, path, command, names, overwrite, *, known=()):
        self.path = Path(path)
        self.command = command
        self.names = list(names)
        if self.path.exists() and not self.path.is_dir():
            raise GalcamCLIError(f"output '{self.path}' exists and is not a folder")
        previous = read_run_manifest(self.path) if self.path.is_dir() else None
        self.earlier = [n for n in (previous or {}).get("files", {})
                        if isinstance(n, str) and n == Path(n).name and n != RUN_MANIFEST]
        here = [n for n in self.names if (self.path / n).exists()]
        theirs = [n for n in self.earlier if n not in self.names and (self.path / n).exists()]
        if (here or theirs) and not overwrite:
            said = f"{', '.join(here + theirs)}"
            if previous is not None:
                said += f" (written by 'galcam {previous.get('command', '?')}')"
            raise FileExistsError(f"'{self.path}' already holds {said}; use --overwrite to "
                                  "replace")
        self.unlisted = [] if previous is not None else [
            n for n in known if n not in self.names and (self.path / n).exists()]

    def finish(self, written, *, arguments, model=None, model_sha256=None):
        """Remove the earlier run's files this run did not write; write the manifest last.

        Parameters
        ----------
        written : sequence of str
            The files this run wrote.
        arguments : dict
            The command's arguments (made JSON-safe).
        model, model_sha256 : str, optional
            The model (name or folder) and the SHA-256 of its ``config.json``.

        Returns
        -------
        removed : list of str
            Files of the earlier run that were removed.
        """
        from galcam import __version__
        from galcam.io import atomic_write

        written = list(written)
        removed = []
        for name in self.earlier:
            target = self.path / name
            if name in written or not target.is_file() or target.is_symlink():
                continue
            target.unlink()
            removed.append(name)
        if removed:
            log.info("removed %s of the earlier run in %s", ", ".join(removed), self.path)
        if self.unlisted:
            log.warning("'%s' also holds %s, which this run did not write (no %s says which "
                        "run did): left in place", self.path, ", ".join(self.unlisted),
                        RUN_MANIFEST)
        manifest = {
            "command": self.command,
            "arguments": {k: _jsonable(v) for k, v in sorted(arguments.items())},
            "galcam_version": __version__,
            "model": model,
            "model_sha256": model_sha256,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": {name: {"bytes": (self.path / name).stat().st_size,
                             "sha256": file_sha256(self.path / name)} for name in written},
            "removed": removed,
        }
        text = json.dumps(manifest, indent=2) + "\n"

        def write(tmp):
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)

        atomic_write(self.path / RUN_MANIFEST, write)
        return removed


def arguments_of(args):
    """The parsed arguments of a subcommand, without argparse's bookkeeping."""
    return {k: v for k, v in vars(args).items() if k not in ("func", "command")}

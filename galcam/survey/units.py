"""Work units of a survey run and their processing on a worker.

A unit is one window of the mosaic, in 0-based mosaic pixels: either one tile of an
overlapping grid (`tile_units`) or one cutout of the model's input size centred on a seed
(`seed_units`). Units have deterministic ids (``t<row>_<col>`` for tiles, ``s<index>`` for
seeds) so that a rerun finds the results of the units it has done already.

`process_unit` is what a worker runs for one unit: it opens the mosaic memory-mapped and
copies only the unit's window, reads only the part of the infrared image that covers it,
runs the `~galcam.inference.WeakSegmenter` (loaded once per worker process and cached, see
`get_segmenter`) and writes the unit's detections, in mosaic pixels, to
``<output_dir>/units/<id>.json`` atomically.
"""

import dataclasses
import json
import logging
import math
import os
import resource
import socket
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

__all__ = ["WorkUnit", "UnitJob", "tile_units", "seed_units", "process_unit",
           "get_segmenter", "model_loads", "read_unit_file", "unit_path", "UNIT_SCHEMA"]

log = logging.getLogger(__name__)

#: Schema tag of the unit result files.
UNIT_SCHEMA = "galcam.survey.unit/1"


class WorkUnit(NamedTuple):
    """One work unit: a window of the mosaic.

    The window is ``[x0, x1) x [y0, y1)`` in 0-based mosaic pixels, inside the mosaic.
    """

    #: Deterministic id, used as the file name of the unit's result.
    id: str
    #: Position of the unit in the run's list of units.
    index: int
    #: ``'tile'`` or ``'seed'``.
    kind: str
    x0: int
    y0: int
    x1: int
    y1: int
    #: Seed id from the catalogue (seed units), else ``''``.
    seed_id: str = ""
    #: Seed position in mosaic pixels (seed units), else NaN.
    seed_x: float = math.nan
    seed_y: float = math.nan

    @property
    def window(self):
        """``(x0, y0, x1, y1)``."""
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def shape(self):
        """``(height, width)`` of the window."""
        return (self.y1 - self.y0, self.x1 - self.x0)

    def to_dict(self):
        d = self._asdict()
        for k in ("seed_x", "seed_y"):
            d[k] = None if not math.isfinite(d[k]) else float(d[k])
        return d


def _clip_window(x0, y0, w, h, shape):
    H, W = shape
    return max(int(x0), 0), max(int(y0), 0), min(int(x0) + w, W), min(int(y0) + h, H)


def tile_units(shape, size, overlap):
    """Overlapping tiles covering a mosaic, row-major.

    Parameters
    ----------
    shape : (int, int)
        ``(height, width)`` of the mosaic.
    size : (int, int)
        ``(height, width)`` of a tile, mosaic pixels.
    overlap : (int, int)
        Overlap of neighbouring tiles ``(y, x)``, pixels.

    Returns
    -------
    units : list of `WorkUnit`
        Tiles as in `galcam.inference.tile_grid` (the last one of a row or column ends at
        the mosaic's edge), clipped to the mosaic; ids ``t<row>_<col>``.
    """
    from galcam.inference.tiling import tile_starts

    th, tw = size
    oy, ox = overlap
    ys = tile_starts(shape[0], th, oy)
    xs = tile_starts(shape[1], tw, ox)
    units = []
    for r, y0 in enumerate(ys):
        for c, x0 in enumerate(xs):
            x0c, y0c, x1c, y1c = _clip_window(x0, y0, tw, th, shape)
            units.append(WorkUnit(f"t{r:04d}_{c:04d}", len(units), "tile", x0c, y0c, x1c, y1c))
    return units


def seed_units(seeds, wcs, shape, size, separation):
    """Cutouts of ``size`` centred on the seeds that fall on the mosaic.

    Parameters
    ----------
    seeds : `~astropy.table.QTable`
        From `~galcam.survey.read_seeds` (``seed_id``, ``ra``, ``dec``, ``flux``).
    wcs : `~astropy.wcs.WCS`
        Celestial WCS of the mosaic.
    shape : (int, int)
        ``(height, width)`` of the mosaic.
    size : (int, int)
        ``(height, width)`` of a cutout, mosaic pixels.
    separation : float
        Seeds closer than this (pixels) to a brighter kept seed are dropped
        (`~galcam.survey.deduplicate_seeds`).

    Returns
    -------
    units : list of `WorkUnit`
        In catalogue order; ids ``s<n>`` numbered over the kept seeds. Seeds off the
        mosaic are left out (logged).
    """
    from astropy.coordinates import SkyCoord

    from .seeds import deduplicate_seeds

    th, tw = size
    H, W = shape
    if len(seeds) == 0:
        return []
    sky = SkyCoord(seeds["ra"], seeds["dec"], frame="icrs")
    x, y = (np.asarray(v, dtype=np.float64) for v in wcs.world_to_pixel(sky))
    inside = np.isfinite(x) & np.isfinite(y) & (x > -0.5) & (x < W - 0.5) & (y > -0.5) \
        & (y < H - 0.5)
    n_out = int((~inside).sum())
    if n_out:
        log.info("%d of %d seeds are outside the mosaic and are left out", n_out, len(seeds))
    idx = np.flatnonzero(inside)
    keep = idx[deduplicate_seeds(x[idx], y[idx], np.asarray(seeds["flux"], float)[idx],
                                 float(separation))]
    if len(keep) < len(idx):
        log.info("%d seeds closer than %.1f px to a brighter seed share its cutout",
                 len(idx) - len(keep), separation)
    units = []
    for n, i in enumerate(keep):
        cx, cy = int(np.round(x[i])), int(np.round(y[i]))
        x0, y0 = cx - (tw - 1) // 2, cy - (th - 1) // 2
        x0c, y0c, x1c, y1c = _clip_window(x0, y0, tw, th, shape)
        units.append(WorkUnit(f"s{n:06d}", n, "seed", x0c, y0c, x1c, y1c,
                              str(seeds["seed_id"][i]), float(x[i]), float(y[i])))
    return units


@dataclasses.dataclass(frozen=True)
class UnitJob:
    """What every task of a run needs besides its unit (small: paths and settings).

    Attributes
    ----------
    mosaic : str
        Path of the radio mosaic (read memory-mapped by each task).
    ir : str or None
        Path of the infrared image.
    plane : int, dict or None
        Plane of radio cubes (`galcam.io.read_image`).
    model : str
        Model folder.
    model_options : str
        JSON of the `~galcam.inference.WeakSegmenter.load` overrides.
    device : str
        ``'auto'``, ``'cpu'``, ``'cuda'``, ``'cuda:N'``.
    batch_size : int
        Tiles per network pass.
    torch_threads : int or None
        Threads torch may use in a worker (None: leave torch's setting).
    output_dir : str
        The run's output folder (results go to ``units/``).
    fingerprint : str
        The run's fingerprint (written into each unit file).
    """

    mosaic: str
    ir: object
    plane: object
    model: str
    model_options: str
    device: str
    batch_size: int
    torch_threads: object
    output_dir: str
    fingerprint: str


# ------------------------------------------------------------------ worker-side model cache
_LOCK = threading.Lock()
_CACHE = {}
_LOADS = [0]


def _worker_device(device):
    """``'auto'`` in a dask worker of a multi-GPU machine: one GPU per worker."""
    if device != "auto":
        return device
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return device
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return device
    if isinstance(name, int):
        return f"cuda:{name % torch.cuda.device_count()}"
    return device


def get_segmenter(model, model_options="{}", device="auto"):
    """The `~galcam.inference.WeakSegmenter` of this process for a model folder (cached).

    Each worker process loads a model once and keeps it for all its tasks: tasks carry
    only the model's path, never the networks. ``device='auto'`` uses the worker's GPU
    when it has one (on a machine with several GPUs, dask worker ``k`` of a
    `~distributed.LocalCluster` takes GPU ``k`` modulo their number).

    Parameters
    ----------
    model : str
        Model folder.
    model_options : str, optional
        JSON object of `~galcam.inference.WeakSegmenter.load` overrides.
    device : str, optional
    """
    key = (str(model), model_options, device)
    with _LOCK:
        seg = _CACHE.get(key)
        if seg is None:
            from galcam.inference.segmenter import WeakSegmenter, load_options

            seg = WeakSegmenter.load(model, device=_worker_device(device),
                                     **load_options(json.loads(model_options)))
            _LOADS[0] += 1
            if len(_CACHE) >= 2:  # a worker serves one run at a time: keep memory bounded
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = seg
    return seg


def _put_segmenter(seg, model, model_options, device):
    """Put a segmenter the caller loaded already into this process's cache."""
    with _LOCK:
        _CACHE[(str(model), model_options, device)] = seg


def model_loads():
    """How many times this process has loaded a model through `get_segmenter`."""
    return _LOADS[0]


# ------------------------------------------------------------------ reading the windows
_IMAGES = {}  # (path, plane, mtime, size) -> [memory-mapped image, uses] of this process
#: Units served by one opening of a mosaic in a worker (see `_open_image`).
REOPEN_AFTER = 32
_IMAGES_LOCK = threading.Lock()


def _open_image(path, plane=None):
    """A mosaic read memory-mapped, kept open for the next units of this process.

    Reading the header, the WCS and the beam cost about a tenth of a unit's time when
    done for every unit. Only memory-mapped images are kept (at most two: the radio
    mosaic and the infrared image); scaled or compressed files, which are read whole,
    are read again for each unit rather than held in memory. An image is opened afresh
    after `REOPEN_AFTER` units, so that the pages of the file a worker has read do not
    pile up in its resident memory over a long survey, and when the file changed on
    disk (its modification time or size).
    """
    from galcam.io import read_image

    try:
        st = os.stat(path)
    except OSError:  # read_image says what is wrong with the path
        return read_image(path, memmap=True, plane=plane)
    key = (os.fspath(path), json.dumps(plane, sort_keys=True, default=str), st.st_mtime_ns,
           st.st_size)
    with _IMAGES_LOCK:
        entry = _IMAGES.get(key)
        if entry is not None:
            entry[1] += 1
            if entry[1] > REOPEN_AFTER:
                del _IMAGES[key]
                entry = None
    if entry is not None:
        return entry[0]
    image = read_image(path, memmap=True, plane=plane)
    if _memory_mapped(image.data):
        with _IMAGES_LOCK:
            while len(_IMAGES) >= 2:
                _IMAGES.pop(next(iter(_IMAGES)))
            _IMAGES[key] = [image, 1]
    return image


def _memory_mapped(array):
    """Whether an array is a view of a memory-mapped file (not data held in memory)."""
    import mmap

    base = array
    while base is not None:
        if isinstance(base, np.memmap | mmap.mmap):
            return True
        base = getattr(base, "base", None)
    return False


def _window_image(path, plane, unit):
    """The unit's window of the mosaic as an NDData (only the window is read)."""
    from astropy.nddata import NDData

    image = _open_image(path, plane)
    data = np.array(image.data[unit.y0:unit.y1, unit.x0:unit.x1], dtype=np.float32)
    wcs = image.wcs.slice((slice(unit.y0, unit.y1), slice(unit.x0, unit.x1)))
    # the mosaic's beam: for the resolution of islands and the working pixel scale; the
    # client compares it with the model's once (`galcam.inference.check_beam`), and the
    # units do not repeat its warning (`_run_unit`)
    meta = {"filename": str(path), "beam": image.meta.get("beam")}
    return NDData(data, wcs=wcs, unit=image.unit, meta=meta)


def _ir_window(path, radio_wcs, shape, pad=3):
    """The part of the infrared image covering a radio window (None if they do not meet)."""
    from astropy.nddata import NDData

    ir = _open_image(path)
    h, w = shape
    ex = np.linspace(-0.5, w - 0.5, 9)
    ey = np.linspace(-0.5, h - 0.5, 9)
    xs = np.concatenate([ex, ex, np.full(9, -0.5), np.full(9, w - 0.5)])
    ys = np.concatenate([np.full(9, -0.5), np.full(9, h - 0.5), ey, ey])
    sky = radio_wcs.pixel_to_world(xs, ys)
    ix, iy = (np.asarray(v, dtype=np.float64) for v in ir.wcs.world_to_pixel(sky))
    if not (np.isfinite(ix).all() and np.isfinite(iy).all()):
        return None
    H, W = ir.data.shape
    x0 = max(int(math.floor(ix.min())) - pad, 0)
    y0 = max(int(math.floor(iy.min())) - pad, 0)
    x1 = min(int(math.ceil(ix.max())) + pad + 1, W)
    y1 = min(int(math.ceil(iy.max())) + pad + 1, H)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    data = np.array(ir.data[y0:y1, x0:x1], dtype=np.float32)
    if not np.isfinite(data).any():
        return None
    wcs = ir.wcs.slice((slice(y0, y1), slice(x0, x1)))
    return NDData(data, wcs=wcs, unit=ir.unit, meta={"filename": str(path)})


# ------------------------------------------------------------------ unit results
def unit_path(output_dir, unit_id):
    """``<output_dir>/units/<unit_id>.json``."""
    return Path(output_dir) / "units" / f"{unit_id}.json"


def _detection_record(d, x0, y0):
    from galcam.inference.result import mask_to_rle

    bx, by, bw, bh = d.bbox
    host = None
    if d.has_host:
        host = [float(d.host_x) + x0, float(d.host_y) + y0]
    return {
        "category": d.class_name,
        "class_index": int(d.class_index),
        "score": float(d.score),
        "probabilities": [float(p) for p in d.class_probabilities],
        "bbox": [int(bx) + x0, int(by) + y0, int(bw), int(bh)],
        "segmentation": mask_to_rle(d.mask_crop),
        "host": host,
        "host_score": None if not np.isfinite(d.host_score) else float(d.host_score),
        "host_fallback": None if d.host_fallback is None else bool(d.host_fallback),
    }


def _peak_rss_mb():
    """Peak resident memory of this process in MiB (VmHWM on Linux, else ru_maxrss)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def process_unit(unit, job):
    """Run the model on one unit and write its result file (what a worker task does).

    Parameters
    ----------
    unit : `WorkUnit`
    job : `UnitJob`

    Returns
    -------
    summary : dict
        ``{"id", "status" ('done' or 'failed'), "n_detections", "time_s", "device",
        "peak_rss_mb", "error"}``. A failure (any exception) is reported, not raised, so
        that one bad unit does not stop a survey; its file is not written and a rerun
        tries it again.
    """
    t0 = time.perf_counter()
    summary = {"id": unit.id, "status": "failed", "n_detections": 0, "time_s": 0.0,
               "device": "", "peak_rss_mb": math.nan, "error": None,
               "worker": f"{socket.gethostname()}:{os.getpid()}"}
    try:
        record = _run_unit(unit, job)
        summary.update(status="done", n_detections=len(record["detections"]),
                       device=record["device"])
    except Exception as exc:  # noqa: BLE001 - reported to the client with the traceback
        log.error("unit %s failed: %s", unit.id, exc)
        summary["error"] = f"{type(exc).__name__}: {exc}"
        summary["traceback"] = traceback.format_exc(limit=8)
    summary["time_s"] = round(time.perf_counter() - t0, 4)
    summary["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    summary["model_loads"] = model_loads()
    return summary


def _run_unit(unit, job):
    from galcam.io import atomic_write

    t0 = time.perf_counter()
    if job.torch_threads:
        import torch

        if torch.get_num_threads() != job.torch_threads:
            torch.set_num_threads(int(job.torch_threads))
    radio = _window_image(job.mosaic, job.plane, unit)
    blank = not np.isfinite(radio.data).any()
    record = {"schema": UNIT_SCHEMA, "fingerprint": job.fingerprint, "unit": unit.to_dict(),
              "blank": bool(blank), "rms": None, "rms_unit": str(radio.unit),
              "device": "", "detections": []}
    if not blank:
        seg = get_segmenter(job.model, job.model_options, job.device)
        record["device"] = str(seg.device)
        ir = None
        if job.ir is not None:
            ir = _ir_window(job.ir, radio.wcs, radio.data.shape)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*model's training beam",
                                    category=AstropyUserWarning)
            result = seg(radio, ir, batch_size=job.batch_size, progress=False)
        record["detections"] = [_detection_record(d, unit.x0, unit.y0) for d in result]
        from galcam.preprocessing import NoiseEstimator

        rms = NoiseEstimator()(radio).rms
        record["rms"] = float(np.asarray(getattr(rms, "value", rms)).mean())
    record["time_s"] = round(time.perf_counter() - t0, 4)
    text = json.dumps(record, separators=(",", ":"))

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    atomic_write(unit_path(job.output_dir, unit.id), write)
    return record


def read_unit_file(path, fingerprint=None):
    """Read a unit result file; None when it is missing, unreadable or of another run.

    Parameters
    ----------
    path : path-like
    fingerprint : str, optional
        The run's fingerprint; a file written by a run with other inputs or settings is
        not taken (None: any).
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("'%s': unreadable unit result (%s); the unit is done again", path, exc)
        return None
    if not isinstance(record, dict) or record.get("schema") != UNIT_SCHEMA:
        log.warning("'%s': not a galcam unit result; the unit is done again", path)
        return None
    if fingerprint is not None and record.get("fingerprint") != fingerprint:
        log.warning("'%s': written by a run with other inputs or settings; the unit is done "
                    "again", path)
        return None
    return record

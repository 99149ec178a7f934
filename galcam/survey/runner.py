"""`SurveyRunner`: a trained model over a whole mosaic, on one process or a dask cluster.

The mosaic is split into work units (overlapping tiles, or cutouts centred on the seeds
of a component catalogue); each unit is processed independently by a worker
(`~galcam.survey.units.process_unit`), which writes its detections to
``OUTDIR/units/<id>.json`` atomically; the detections of all units are then merged
(`~galcam.survey.merge_unit_detections`) into one `~galcam.catalog.GalaxyCatalog` for the
mosaic. A rerun with the same inputs, model and settings skips the units whose files
exist, so a run killed at any point (client or workers, even with ``kill -9``) resumes
where it stopped and gives the same final catalogue as an uninterrupted run.
"""

import contextlib
import importlib.util
import json
import logging
import math
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from astropy import units as u

from galcam._validation import check_bool, check_fraction, check_pair, check_positive_int
from galcam.catalog import BRIGHTNESS_UNIT, mask_photometry, write_table
from galcam.io import (
    ImageReadError,
    atomic_write,
    beam_pixels,
    blank_reason,
    read_image,
    write_json,
)

from .manifest import (
    MANIFEST_NAME,
    SurveyMismatchError,
    file_fingerprint,
    model_fingerprint,
    read_manifest,
    run_fingerprint,
    write_manifest,
)
from .merge import UnitDetection, merge_unit_detections
from .units import (
    UnitJob,
    _put_segmenter,
    process_unit,
    read_unit_file,
    seed_units,
    tile_units,
    unit_path,
)

__all__ = ["SurveyRunner", "SurveyResult", "OUTPUT_FILES", "DASK_MISSING"]

log = logging.getLogger(__name__)

#: Files a run writes in its output folder (besides ``units/``).
OUTPUT_FILES = {"table": "catalog.ecsv", "fits": "catalog.fits", "votable": "catalog.vot",
                "regions": "galaxies.reg", "predictions": "predictions.json",
                "categories": "predictions.categories.json", "figure": "coverage.png",
                "manifest": MANIFEST_NAME}
# Columns whose meaning differs from GalaxyCatalog's in a survey catalogue.
_SURVEY_DESCRIPTIONS = {
    "local_rms": "Noise around the galaxy: the rms (galcam.preprocessing.NoiseEstimator, "
                 "sigma clipping) of the window of the work unit in which it was found.",
}
_TABLE_FORMATS = {"ecsv": "table", "fits": "fits", "votable": "votable"}

#: Message of the ImportError raised when dask.distributed is needed but missing.
DASK_MISSING = ('galcam.survey: running on dask workers needs dask.distributed, which is '
                'not installed: pip install "galcam[distributed]" (or run in one process '
                'with n_workers=0 / --n-workers 0)')


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(DASK_MISSING) from exc
    return distributed


class SurveyRunner:
    """Find the radio galaxies of a whole mosaic, in parallel and resumably.

    Configured once, then ``runner.run(mosaic, ir, output_dir=...)``.

    Parameters
    ----------
    model : str or path-like, optional
        Model folder or registered model name (default ``'default'``). Only the path
        travels to the workers; each worker loads the model once.
    tile_size : int or (int, int), optional
        Unit size in mosaic pixels. Default: the model's input size, converted to the
        mosaic's pixels when the model records another pixel scale (so that one unit is
        one network input).
    overlap : float, optional
        Overlap of neighbouring tiles as a fraction of ``tile_size``, in [0, 0.9)
        (default 1/3: a galaxy smaller than a third of a tile is seen whole by some tile).
    seeds : str, path-like or `~astropy.table.Table`, optional
        A component catalogue (Selavy, PyBDSF, Aegean, galcam islands, or any table with
        ``seed_columns``): units are then cutouts of ``tile_size`` centred on the seeds
        instead of tiles (see `~galcam.survey.read_seeds`).
    seed_format : {'auto', 'selavy', 'pybdsf', 'aegean', 'galcam'}, optional
    seed_columns : dict, optional
        ``{"ra": ..., "dec": ..., "id": ..., "flux": ...}`` column names.
    seed_separation : float, optional
        Seeds closer than this many pixels to a brighter seed share its cutout
        (default a quarter of the smaller side of ``tile_size``; 0 keeps every seed).
    n_workers : int, optional
        0: run in this process, without dask. N >= 1: a `distributed.LocalCluster` of N
        worker processes. Default: a LocalCluster with one worker per GPU, or one
        single-threaded worker per CPU core (at most 8) when there is no GPU; in this
        process when dask is not installed.
    scheduler : str, optional
        ``'synchronous'`` (same as ``n_workers=0``) or the address of a running dask
        scheduler (``'tcp://host:8786'``); the workers must see the same file paths.
    threads_per_worker : int, optional
        Tasks run at once by each LocalCluster worker (1).
    torch_threads : int, optional
        Threads torch uses in each worker; default: the CPU cores divided among the
        LocalCluster workers (left as it is for a remote scheduler and in-process runs).
    device : str, optional
        ``'auto'`` (each worker uses its GPU when it has one), ``'cpu'``, ``'cuda'``,
        ``'cuda:N'``.
    batch_size : int, optional
        Tiles per network pass within a unit (4).
    model_options : dict, optional
        Overrides passed to `~galcam.inference.WeakSegmenter.load` (``class_threshold``,
        ``min_classes``, ``mask_mode`` ...); JSON-serialisable values.
    plane : int or dict, optional
        Plane of radio cubes (see `galcam.io.read_image`).
    score_threshold : float or None, optional
        Detections scoring below this are left out before merging. None (default): the
        model's recommended catalogue threshold
        (`~galcam.inference.WeakSegmenter.recommended_score_threshold`; 0 = keep all).
    iou_threshold, containment_threshold, border, min_area, min_kept_fraction
        The merge rule (see `~galcam.survey.merge_unit_detections`).
    table_formats : sequence of {'ecsv', 'fits', 'votable'}, optional
        Catalogue files to write (``catalog.ecsv`` always).
    """

    def __init__(self, model="default", *, tile_size=None, overlap=1 / 3, seeds=None,
                 seed_format="auto", seed_columns=None, seed_separation=None, n_workers=None,
                 scheduler=None, threads_per_worker=1, torch_threads=None, device="auto",
                 batch_size=4, model_options=None, plane=None, score_threshold=None,
                 iou_threshold=0.3, containment_threshold=0.5, border=2, min_area=5,
                 min_kept_fraction=0.25, table_formats=("ecsv",)):
        if not isinstance(model, (str, os.PathLike)):
            raise TypeError(f"model: expected a model folder or a registered name, got "
                            f"{type(model).__name__} (the workers load the model themselves)")
        self._model = model
        self._tile_size = check_pair(
            tile_size, "tile_size", minimum=16, allow_none=True,
            expected="a size of at least 16 pixels (an integer or a (height, width) pair)")
        self._overlap = check_fraction(overlap, "overlap", 0, 0.9, high_open=True)
        if seeds is not None and not isinstance(seeds, (str, os.PathLike)):
            from astropy.table import Table

            if not isinstance(seeds, Table):
                raise TypeError(f"seeds: expected a catalogue file or an astropy Table, got "
                                f"{type(seeds).__name__}")
        if isinstance(seeds, (str, os.PathLike)) and not Path(seeds).is_file():
            raise FileNotFoundError(f"seeds '{seeds}': no such file")
        from .seeds import SEED_FORMATS

        if seed_format not in ("auto", *SEED_FORMATS):
            raise ValueError(f"seed_format: expected 'auto' or one of {sorted(SEED_FORMATS)}, "
                             f"got {seed_format!r}")
        if seed_columns is not None and not isinstance(seed_columns, dict):
            raise ValueError(f"seed_columns: expected a dict, got {seed_columns!r}")
        if seeds is None and (seed_columns is not None or seed_separation is not None
                              or seed_format != "auto"):
            raise ValueError("seed_format / seed_columns / seed_separation given without seeds")
        self._seeds = seeds
        self._seed_format = seed_format
        self._seed_columns = None if seed_columns is None else dict(seed_columns)
        if seed_separation is not None:
            seed_separation = check_fraction(seed_separation, "seed_separation", 0, math.inf,
                                             high_open=True)
        self._seed_separation = seed_separation
        if scheduler is not None and not isinstance(scheduler, str):
            raise ValueError(f"scheduler: expected 'synchronous' or a scheduler address, got "
                             f"{scheduler!r}")
        self._n_workers = check_positive_int(n_workers, "n_workers", allow_zero=True,
                                             allow_none=True)
        if scheduler is not None and scheduler != "synchronous" and self._n_workers:
            raise ValueError("give either n_workers (a local cluster) or scheduler (a running "
                             "cluster), not both")
        self._scheduler = scheduler
        if self.mode == "local" and n_workers is not None:
            _import_distributed()  # explicit request for workers: fail now if dask is missing
        if scheduler not in (None, "synchronous"):
            _import_distributed()
        self._threads_per_worker = check_positive_int(threads_per_worker, "threads_per_worker")
        self._torch_threads = check_positive_int(torch_threads, "torch_threads", allow_none=True)
        if not isinstance(device, str):
            raise ValueError(f"device: expected a string such as 'auto', 'cpu', 'cuda:0', "
                             f"got {device!r}")
        self._device = device
        self._batch_size = check_positive_int(batch_size, "batch_size")
        options = dict(model_options or {})
        try:
            self._model_options = json.dumps(options, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model_options: values must be JSON-serialisable ({exc})") from exc
        self._plane = plane
        self._score_threshold = (None if score_threshold is None
                                 else check_fraction(score_threshold, "score_threshold"))
        self._merge = {"iou_threshold": check_fraction(iou_threshold, "iou_threshold",
                                                       low_open=True),
                       "containment_threshold": check_fraction(containment_threshold,
                                                               "containment_threshold",
                                                               low_open=True),
                       "border": check_positive_int(border, "border", allow_zero=True),
                       "min_area": check_positive_int(min_area, "min_area", allow_zero=True),
                       "min_kept_fraction": check_fraction(min_kept_fraction,
                                                           "min_kept_fraction")}
        formats = (table_formats,) if isinstance(table_formats, str) else tuple(table_formats)
        bad = [f for f in formats if f not in _TABLE_FORMATS]
        if bad:
            raise ValueError(f"table_formats: unknown {bad}; expected some of "
                             f"{sorted(_TABLE_FORMATS)}")
        self._formats = tuple(dict.fromkeys(("ecsv", *formats)))

    @property
    def mode(self):
        """``'synchronous'`` (this process), ``'local'`` (a LocalCluster) or ``'remote'``."""
        if self._scheduler == "synchronous" or self._n_workers == 0:
            return "synchronous"
        if self._scheduler is not None:
            return "remote"
        if self._n_workers is None and importlib.util.find_spec("distributed") is None:
            return "synchronous"
        return "local"

    def __repr__(self):
        what = f"seeds={self._seeds!r}" if self._seeds is not None else "tiles"
        return (f"SurveyRunner(model={str(self._model)!r}, {what}, mode={self.mode!r}, "
                f"device={self._device!r})")

    # ------------------------------------------------------------------ planning
    def _load_model(self, mode):
        from galcam.inference.segmenter import WeakSegmenter, load_options, resolve_model

        folder = resolve_model(self._model)
        device = self._device if mode == "synchronous" else "cpu"
        seg = WeakSegmenter.load(folder, device=device,
                                 **load_options(json.loads(self._model_options)))
        if mode == "synchronous":
            _put_segmenter(seg, str(folder), self._model_options, self._device)
        return folder, seg

    def _unit_size(self, seg, mosaic, scale):
        """Units of one network input at the working pixel ``scale`` (None: the mosaic's)."""
        if self._tile_size is not None:
            return self._tile_size
        th, tw = seg.tile_size
        if scale is None:
            return th, tw
        from galcam.inference.resample import axis_pixel_scales

        sx, sy = axis_pixel_scales(mosaic.wcs)
        # rounded down: a unit rounded up would be resampled to one pixel more than a tile,
        # and predicted as 2 x 2 overlapping tiles
        return (max(16, math.floor(th * scale / sy + 1e-6)),
                max(16, math.floor(tw * scale / sx + 1e-6)))

    @staticmethod
    def _working_scale(seg, mosaic):
        """(pixel scale the units are predicted at or None, whether matched to the beam)."""
        if seg.pixel_scale is None:
            return None, False
        from galcam.inference.resample import beam_matched_pixel_scale

        return beam_matched_pixel_scale((mosaic.meta or {}).get("beam"), seg.beam,
                                        seg.pixel_scale, strength=seg.beam_matching)

    def _plan(self, mosaic, size):
        shape = mosaic.data.shape
        if self._seeds is None:
            overlap = tuple(min(n - 1, math.ceil(self._overlap * n)) for n in size)
            return tile_units(shape, size, overlap), None
        from .seeds import read_seeds

        seeds = read_seeds(self._seeds, format=self._seed_format, columns=self._seed_columns)
        sep = self._seed_separation if self._seed_separation is not None else min(size) / 4
        return seed_units(seeds, mosaic.wcs, shape, size, sep), seeds

    def _seeds_fingerprint(self, seeds):
        if self._seeds is None:
            return None
        if isinstance(self._seeds, (str, os.PathLike)):
            return file_fingerprint(self._seeds)
        import hashlib

        text = json.dumps([list(map(str, seeds["seed_id"])),
                           np.round(seeds["ra"].to_value(u.deg), 9).tolist(),
                           np.round(seeds["dec"].to_value(u.deg), 9).tolist()])
        return {"path": "<table>", "size": len(seeds), "mtime": "",
                "sha256_head_tail": hashlib.sha256(text.encode()).hexdigest()}

    # ------------------------------------------------------------------ running
    def run(self, mosaic, ir=None, *, output_dir, resume=True, overwrite=False, progress=True,
            max_units=None):
        """Process every unit of a mosaic (skipping those done already) and merge them.

        Parameters
        ----------
        mosaic : str or path-like
            The radio mosaic (FITS, 2-4 axes); workers read it memory-mapped, each only
            its units' windows.
        ir : str or path-like, optional
            The infrared image on any grid; workers read only the part covering a unit.
        output_dir : str or path-like
            Output folder: ``units/``, ``manifest.json``, ``catalog.ecsv`` (and
            ``catalog.fits`` / ``catalog.vot`` if asked), ``galaxies.reg``,
            ``predictions.json`` (COCO results in mosaic pixels; ``predictions.categories.json``
            names their category ids) and ``coverage.png``.
        resume : bool, optional
            Skip the units done by an earlier run with the same fingerprint (default).
            False: start again (needs ``overwrite`` if the folder holds a run).
        overwrite : bool, optional
            Allow replacing a run made with other inputs, model or settings (its unit
            files are deleted).
        progress : bool, optional
            tqdm progress bar over the units (on a terminal).
        max_units : int, optional
            Process at most this many pending units in this call, then merge what is done
            (the manifest then says the run is not complete; run again to go on).

        Returns
        -------
        `SurveyResult`

        Raises
        ------
        SurveyMismatchError
            ``output_dir`` holds a run with other inputs, model or settings and
            ``overwrite`` is False.
        FileExistsError
            ``resume=False`` on a folder that holds a run, without ``overwrite``; or
            catalogue files of something else are in the folder.
        RuntimeError
            Every unit processed in this call failed (the first error is given).
        """
        t_start = time.perf_counter()
        resume = check_bool(resume, "resume")
        overwrite = check_bool(overwrite, "overwrite")
        max_units = check_positive_int(max_units, "max_units", allow_none=True)
        if not isinstance(mosaic, (str, os.PathLike)):
            raise TypeError("mosaic: expected the path of a FITS file (workers read it "
                            f"themselves), got {type(mosaic).__name__}")
        if ir is not None and not isinstance(ir, (str, os.PathLike)):
            raise TypeError(f"ir: expected the path of a FITS file, got {type(ir).__name__}")
        mosaic = Path(mosaic).resolve() if Path(mosaic).exists() else Path(mosaic)
        image = read_image(mosaic, memmap=True, plane=self._plane)  # header + WCS only
        blank = blank_reason(image.data)  # reads up to the first data (all of a blank one)
        if blank is not None:  # refused as galcam predict and galcam islands refuse it
            raise ImageReadError(f"'{mosaic}': {blank}")
        if image.unit is None or not u.Unit(image.unit).is_equivalent(BRIGHTNESS_UNIT):
            bunit = image.meta.get("header", {}).get("BUNIT")
            log.warning("the mosaic %s has %s, not a brightness per beam: galaxies are found "
                        "(on signal-to-noise), but the catalogue's peak_flux, total_flux and "
                        "local_rms will be NaN", mosaic,
                        "no BUNIT" if bunit is None else f"BUNIT = {bunit!r}")
        if ir is not None:
            ir = Path(ir).resolve() if Path(ir).exists() else Path(ir)
            read_image(ir, memmap=True)
        outdir = Path(output_dir)
        if outdir.exists() and not outdir.is_dir():
            raise NotADirectoryError(f"output_dir '{outdir}': exists and is not a folder")
        mode = self.mode
        folder, seg = self._load_model(mode)
        from galcam.inference.resample import check_beam

        scale, matched = self._working_scale(seg, image)
        check_beam(image.meta.get("beam"), seg.beam, where=str(mosaic),  # warns once
                   matched=matched)
        self._check_plan(seg, image, mosaic)
        size = self._unit_size(seg, image, scale)
        units, seeds = self._plan(image, size)
        unit_settings = {
            "kind": "seeds" if seeds is not None else "tiles",
            "unit_size": list(size),
            "overlap": self._overlap if seeds is None else None,
            "seed_format": seeds.meta["format"] if seeds is not None else None,
            "seed_columns": self._seed_columns,
            "seed_separation": self._seed_separation,
            "model_options": json.loads(self._model_options),
            "plane": self._plane,
            "n_units": len(units),
        }
        inputs = {"mosaic": file_fingerprint(mosaic),
                  "ir": None if ir is None else file_fingerprint(ir),
                  "seeds": self._seeds_fingerprint(seeds)}
        model_fp = model_fingerprint(folder)
        fingerprint = run_fingerprint(inputs, model_fp, unit_settings)
        self._prepare_output(outdir, fingerprint, resume, overwrite)

        records = {}
        for unit in units:
            rec = read_unit_file(unit_path(outdir, unit.id), fingerprint)
            if rec is not None:
                records[unit.id] = rec
        pending = [un for un in units if un.id not in records]
        if records:
            log.info("resuming: %d of %d units are done already", len(records), len(units))
        todo = pending if max_units is None else pending[:max_units]
        threshold = (seg.recommended_score_threshold if self._score_threshold is None
                     else self._score_threshold)
        manifest = {
            "galcam_version": _galcam_version(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "fingerprint": fingerprint,
            "inputs": inputs,
            "model": {**model_fp, "name": str(self._model), "classes": list(seg.classes),
                      "tile_size": list(seg.tile_size), "pixel_scale_arcsec": seg.pixel_scale},
            "settings": {"units": unit_settings,
                         "merge": {**self._merge, "score_threshold": threshold},
                         "execution": {"mode": mode, "n_workers": self._n_workers,
                                       "scheduler": self._scheduler, "device": self._device,
                                       "batch_size": self._batch_size}},
            "mosaic_shape": list(image.data.shape),
            "units": {"total": len(units), "done": len(records), "failed": {}},
            "status": "running",
        }
        previous = read_manifest(outdir)
        if previous is not None and previous.get("fingerprint") == fingerprint:
            manifest["created"] = previous.get("created", manifest["created"])
            manifest["history"] = list(previous.get("history", []))
        manifest.setdefault("history", [])
        write_manifest(outdir, manifest)
        del seg, image

        job = UnitJob(mosaic=str(mosaic), ir=None if ir is None else str(ir),
                      plane=self._plane, model=str(folder), model_options=self._model_options,
                      device=self._device, batch_size=self._batch_size,
                      torch_threads=self._torch_threads, output_dir=str(outdir),
                      fingerprint=fingerprint)
        summaries = []
        dashboard = None
        t_units = time.perf_counter()
        if todo:
            summaries, dashboard = self._execute(mode, todo, job, progress, records,
                                                 manifest, outdir)
        wall_units = time.perf_counter() - t_units
        failed = {s["id"]: s["error"] for s in summaries if s["status"] != "done"}
        if todo and len(failed) == len(todo):
            first = next(s for s in summaries if s["status"] != "done")
            manifest["units"].update(done=len(records), failed=failed)
            manifest["status"] = "failed"
            write_manifest(outdir, manifest)
            raise RuntimeError(f"every unit failed ({len(todo)}); the first: {first['id']}: "
                               f"{first['error']}\n{first.get('traceback', '')}")
        if failed:
            log.warning("%d units failed (listed in %s); run again to retry them",
                        len(failed), outdir / MANIFEST_NAME)
        complete = len(records) == len(units)
        result = self._finish(outdir, units, records, failed, manifest, mosaic, ir,
                              complete)
        workers = {}
        for s in summaries:
            w = workers.setdefault(s.get("worker", "?"), {"units": 0, "busy_s": 0.0,
                                                           "peak_rss_mb": 0.0,
                                                           "model_loads": 0})
            w["units"] += 1
            w["model_loads"] = max(w["model_loads"], s.get("model_loads", 0))
            w["busy_s"] = round(w["busy_s"] + s["time_s"], 3)
            if np.isfinite(s["peak_rss_mb"]):
                w["peak_rss_mb"] = max(w["peak_rss_mb"], s["peak_rss_mb"])
        manifest["history"].append({
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "mode": mode, "units_processed": len(summaries), "units_failed": len(failed),
            "wall_s": round(time.perf_counter() - t_start, 3),
            "units_wall_s": round(wall_units, 3), "workers": workers,
            "devices": sorted({s["device"] for s in summaries if s["device"]}),
            "dashboard": dashboard})
        manifest["units"].update(done=len(records), failed=failed)
        manifest["status"] = "complete" if complete else "incomplete"
        manifest["n_galaxies"] = len(result)
        manifest["outputs"] = {k: str(Path(p).name) for k, p in result.paths.items()}
        result._manifest = write_manifest(outdir, manifest)
        log.info("survey %s: %d galaxies from %d/%d units -> %s", manifest["status"],
                 len(result), len(records), len(units), outdir)
        return result

    @staticmethod
    def _check_plan(seg, image, mosaic):
        """Refuse (unless the segmenter's ``force``) a mosaic every unit would refuse.

        An undersampled mosaic, or one that the units would blow up more than
        `~galcam.inference.planning.MAX_UPSAMPLING` times, is refused here once, before any
        unit runs; memory is not a concern (a unit is small). Warnings (a beam far larger
        than the training beam) are given once here too.
        """
        import warnings

        from astropy.utils.exceptions import AstropyUserWarning

        from galcam.inference import ImageRefusedError, plan_image

        plan = plan_image(image, tile_size=seg.tile_size, tile_overlap=seg.tile_overlap,
                          pixel_scale=seg.pixel_scale, model_beam=seg.beam,
                          beam_matching=seg.beam_matching, memory_budget_bytes=math.inf,
                          where=f"'{mosaic}'", look_at_data=False)
        for text in plan.warnings:
            warnings.warn(text, AstropyUserWarning, stacklevel=3)
        if plan.refusals:
            reason = "; ".join(plan.refusals)
            if not seg.force:
                raise ImageRefusedError(reason, plan)
            warnings.warn(f"{reason} (going on, as forced)", AstropyUserWarning, stacklevel=3)

    def _prepare_output(self, outdir, fingerprint, resume, overwrite):
        previous = read_manifest(outdir) if outdir.is_dir() else None
        ours = [outdir / n for n in OUTPUT_FILES.values() if n != MANIFEST_NAME]
        if previous is None:
            existing = [p.name for p in ours if p.exists()]
            if existing and not overwrite:
                raise FileExistsError(f"'{outdir}' holds {', '.join(existing)} but no survey "
                                      "manifest; use another folder or overwrite=True")
            stale = sorted((outdir / "units").glob("*.json")) if outdir.is_dir() else []
            if stale and not overwrite:
                raise FileExistsError(f"'{outdir}/units' holds {len(stale)} unit files but "
                                      "there is no manifest; use another folder or "
                                      "overwrite=True")
            if stale:
                self._clear(outdir)
            return
        if previous.get("fingerprint") != fingerprint:
            if not overwrite:
                raise SurveyMismatchError(_mismatch_message(outdir, previous))
            log.warning("'%s': replacing a run made with other inputs or settings", outdir)
            self._clear(outdir)
        elif not resume:
            if not overwrite:
                raise FileExistsError(f"'{outdir}' holds a run of this survey; resume=True "
                                      "(the default) goes on with it, overwrite=True starts "
                                      "again")
            self._clear(outdir)

    @staticmethod
    def _clear(outdir):
        units = outdir / "units"
        if units.is_dir():
            for p in units.glob("*.json"):
                p.unlink()
        for name in OUTPUT_FILES.values():
            p = outdir / name
            if p.exists():
                p.unlink()

    def _execute(self, mode, todo, job, progress, records, manifest, outdir):
        show = bool(progress) and sys.stderr.isatty()
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="survey units", unit="unit", disable=not show)
        summaries = []
        last_write = [time.monotonic()]

        def handle(summary):
            summaries.append(summary)
            if summary["status"] == "done":
                rec = read_unit_file(unit_path(outdir, summary["id"]), job.fingerprint)
                if rec is None:
                    summary.update(status="failed", error="the unit's result file is missing "
                                   "or unreadable after the task (is OUTDIR shared with the "
                                   "workers?)")
                else:
                    records[summary["id"]] = rec
            if summary["status"] != "done":
                log.warning("unit %s failed: %s", summary["id"], summary["error"])
                manifest["units"]["failed"][summary["id"]] = summary["error"]
            else:
                manifest["units"]["failed"].pop(summary["id"], None)
            bar.update(1)
            if time.monotonic() - last_write[0] > 10:
                manifest["units"]["done"] = len(records)
                write_manifest(outdir, manifest)
                last_write[0] = time.monotonic()

        dashboard = None
        try:
            if mode == "synchronous":
                for unit in todo:
                    handle(process_unit(unit, job))
            else:
                dashboard = self._execute_dask(mode, todo, job, handle)
        finally:
            bar.close()
        return summaries, dashboard

    def _cluster(self, mode):
        distributed = _import_distributed()
        if mode == "remote":
            client = distributed.Client(self._scheduler)
            return client, None, None
        n = self._n_workers
        ncpu = os.cpu_count() or 1
        if n is None:
            ngpu = 0
            if self._device != "cpu":
                import torch

                ngpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
            # CPU: one single-threaded worker per core (at most 8): measured faster and far
            # less sensitive to other load than fewer workers with several torch threads
            n = ngpu or max(1, min(ncpu, 8))
        threads = self._torch_threads or max(1, ncpu // (n * self._threads_per_worker))
        # a free port for the scheduler's web server (the dashboard when bokeh is there):
        # the fixed default (8787) is taken as soon as another cluster runs on the machine
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=self._threads_per_worker,
                                           processes=True, dashboard_address=":0",
                                           silence_logs=logging.ERROR)
        client = distributed.Client(cluster)
        return client, cluster, threads

    def _execute_dask(self, mode, todo, job, handle):
        import dataclasses

        distributed = _import_distributed()
        client, cluster, threads = self._cluster(mode)
        try:
            if threads is not None and job.torch_threads is None:
                job = dataclasses.replace(job, torch_threads=threads)
            link = _dashboard_link(client, cluster)
            if link:
                log.info("dask dashboard: %s", link)
            nthreads = sum(client.nthreads().values()) or 1
            window = max(4, 2 * nthreads)
            queue = list(todo)
            futures = distributed.as_completed()
            by_future = {}

            def submit():
                unit = queue.pop(0)
                fut = client.submit(process_unit, unit, job, pure=False,
                                    key=f"galcam-unit-{unit.id}-{os.urandom(4).hex()}")
                by_future[fut.key] = unit
                futures.add(fut)

            for _ in range(min(window, len(queue))):
                submit()
            for fut in futures:
                unit = by_future.pop(fut.key)
                try:
                    summary = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: record, go on
                    summary = {"id": unit.id, "status": "failed", "n_detections": 0,
                               "time_s": 0.0, "device": "", "peak_rss_mb": math.nan,
                               "error": f"{type(exc).__name__}: {exc}", "worker": "?"}
                fut.release()
                handle(summary)
                if queue:
                    submit()
            return link
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    # ------------------------------------------------------------------ merging, outputs
    def _finish(self, outdir, units, records, failed, manifest, mosaic, ir, complete):
        from galcam.inference.result import rle_to_mask

        image = read_image(mosaic, memmap=True, plane=self._plane)
        shape = tuple(image.data.shape)
        by_id = {un.id: un for un in units}
        threshold = manifest["settings"]["merge"]["score_threshold"]
        dets = []
        for uid in sorted(records, key=lambda k: by_id[k].index):
            unit, rec = by_id[uid], records[uid]
            for k, d in enumerate(rec["detections"]):
                if d["score"] < threshold:
                    continue
                x, y, w, h = d["bbox"]
                mask = rle_to_mask(d["segmentation"])
                payload = dict(d, rms=rec.get("rms"), rms_unit=rec.get("rms_unit"),
                               unit_id=uid)
                dets.append(UnitDetection(unit.index, k, unit.window, int(x), int(y), mask,
                                          float(d["score"]), payload))
        galaxies = merge_unit_detections(dets, shape, **self._merge)
        classes = tuple(manifest["model"]["classes"])
        result = _segmentation_result(galaxies, classes, shape, image.wcs, units, {
            "model": str(self._model), "model_sha256": manifest["model"]["config_sha256"],
            "input": str(mosaic), "score_threshold": threshold,
            "class_threshold": json.loads(self._model_options).get("class_threshold", ""),
            "device": ",".join(sorted({r.get("device", "") for r in records.values()
                                       if r.get("device")})),
        })
        catalog = result.to_catalog(meta={
            "survey_fingerprint": manifest["fingerprint"],
            "radio_file": str(mosaic), "ir_file": "" if ir is None else str(ir),
            "seeds_file": (manifest["inputs"]["seeds"] or {}).get("path", ""),
            "units_total": len(units), "units_done": len(records),
            "survey_complete": bool(complete),
            "category_ids": {c: i + 1 for i, c in enumerate(classes)},
        })
        import warnings

        from astropy.utils.exceptions import AstropyUserWarning

        with warnings.catch_warnings(), _photometry_filled_here():
            if not len(result):  # an empty catalogue is a valid survey outcome
                warnings.simplefilter("ignore", AstropyUserWarning)
            table = catalog.to_table()
            vo_table = catalog.to_table(skycoord=False) if "votable" in self._formats else None
        phot = _photometry(galaxies, image)
        for t in (table, vo_table):
            if t is not None:
                for name, values in phot.items():
                    description = t[name].info.description
                    t[name] = values.to(t[name].unit) if t[name].unit is not None else values
                    t[name].info.description = _SURVEY_DESCRIPTIONS.get(name, description)
                t["units"] = np.array([",".join(sorted({_unit_name(units, k[0])
                                                        for k in g.members}))
                                       for g in galaxies], dtype=str)
                t["units"].info.description = ("Ids of the work units whose detections make "
                                               "up the galaxy.")
                t["n_views"] = np.array([len(g.seen_by) for g in galaxies], dtype=np.int64)
                t["n_views"].info.description = ("Number of unit detections found to be this "
                                                 "galaxy (kept, cut and duplicate views).")
        paths = self._write_outputs(outdir, catalog, table, vo_table, result, units, records,
                                    failed, image)
        return SurveyResult(catalog=catalog, table=table, result=result, units=units,
                            done=frozenset(records), failed=dict(failed), paths=paths,
                            output_dir=outdir, manifest=manifest, complete=complete)

    def _write_outputs(self, outdir, catalog, table, vo_table, result, units, records, failed,
                       image):
        paths = {}
        paths["table"] = outdir / OUTPUT_FILES["table"]
        write_table(table, paths["table"], format="ascii.ecsv", overwrite=True)
        if "fits" in self._formats:
            paths["fits"] = outdir / OUTPUT_FILES["fits"]
            write_table(table, paths["fits"], format="fits", overwrite=True)
        if vo_table is not None:
            paths["votable"] = outdir / OUTPUT_FILES["votable"]
            write_table(vo_table, paths["votable"], format="votable", overwrite=True)
        paths["regions"] = catalog.write_regions(outdir / OUTPUT_FILES["regions"], "ds9",
                                                 overwrite=True)
        paths["predictions"] = outdir / OUTPUT_FILES["predictions"]
        write_json(paths["predictions"], result.to_coco(1))
        # the names of its category ids (1..N in the model's order), which galcam evaluate
        # finds beside it
        paths["categories"] = outdir / OUTPUT_FILES["categories"]
        write_json(paths["categories"], {
            "categories": [{"id": i + 1, "name": c} for i, c in enumerate(result.classes)],
            "predictions": OUTPUT_FILES["predictions"]})
        from .plotting import plot_coverage

        fig = plot_coverage(units, done=set(records), failed=set(failed), result=result,
                            wcs=image.wcs, shape=image.data.shape)
        paths["figure"] = outdir / OUTPUT_FILES["figure"]
        atomic_write(paths["figure"], lambda tmp: fig.savefig(tmp, format="png", dpi=120))
        import matplotlib.pyplot as plt

        plt.close(fig)
        paths["manifest"] = outdir / MANIFEST_NAME
        return paths


def _dashboard_link(client, cluster):
    """The dashboard address, or None when the scheduler serves none (bokeh missing)."""
    if cluster is not None and importlib.util.find_spec("bokeh") is None:
        return None
    try:
        services = client.scheduler_info().get("services", {})
    except Exception:  # noqa: BLE001 - the link is a convenience only
        return None
    return client.dashboard_link if "dashboard" in services else None


def _unit_name(units, index):
    return units[index].id


def _mismatch_message(outdir, previous):
    return (f"'{outdir}' holds a survey run with other inputs, model or settings (its "
            f"fingerprint {str(previous.get('fingerprint'))[:12]}... ; mosaic "
            f"{(previous.get('inputs', {}).get('mosaic') or {}).get('path')}, model "
            f"{previous.get('model', {}).get('path')}, settings "
            f"{json.dumps(previous.get('settings', {}).get('units'))}); use another output "
            "folder, or overwrite=True (--overwrite) to delete its unit results and start "
            "again")


def _segmentation_result(galaxies, classes, shape, wcs, units, meta):
    from galcam.inference.result import Detection, SegmentationResult

    dets = []
    host_xy = [(g.best.payload.get("host") or [math.nan, math.nan]) for g in galaxies]
    cents = []
    for g in galaxies:
        ys, xs = np.nonzero(g.mask)
        cents.append((float(xs.mean() + g.x0), float(ys.mean() + g.y0)))
    sky = wcs.pixel_to_world(np.array([c[0] for c in cents]), np.array([c[1] for c in cents])) \
        if galaxies else None
    hx = np.array([h[0] for h in host_xy], dtype=float)
    hy = np.array([h[1] for h in host_xy], dtype=float)
    host_sky = wcs.pixel_to_world(hx, hy) if galaxies else None
    for k, g in enumerate(galaxies):
        p = g.best.payload
        has_host = np.isfinite(hx[k]) and np.isfinite(hy[k])
        dets.append(Detection(
            id=k, class_name=p["category"], class_index=int(p["class_index"]),
            score=float(g.score), class_probabilities=tuple(float(v) for v in p["probabilities"]),
            bbox=(int(g.x0), int(g.y0), int(g.mask.shape[1]), int(g.mask.shape[0])),
            mask_crop=g.mask, centroid=cents[k], sky_centroid=sky[k],
            host_x=float(hx[k]), host_y=float(hy[k]),
            host_sky=host_sky[k] if has_host else None,
            host_score=math.nan if p.get("host_score") is None else float(p["host_score"]),
            host_fallback=p.get("host_fallback"),
            tiles=tuple(sorted({key[0] for key in g.members}))))
    return SegmentationResult(dets, classes=classes, shape=shape, wcs=wcs, meta=meta)


class _DropMessage(logging.Filter):
    def __init__(self, start):
        super().__init__()
        self.start = start

    def filter(self, record):
        return not record.getMessage().startswith(self.start)


@contextlib.contextmanager
def _photometry_filled_here():
    """Silence the catalogue's "no radio image: ... NaN" while a survey builds its table.

    The survey's catalogue is made without the mosaic (the catalogue would read all of it
    to measure the noise); `_photometry` fills peak_flux, total_flux and local_rms in from
    the units, so the message would be wrong.
    """
    logger = logging.getLogger("galcam.catalog.catalog")
    drop = _DropMessage("no radio image: peak_flux, total_flux and local_rms are NaN")
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _photometry(galaxies, image):
    """Peak and integrated flux densities (`galcam.catalog.mask_photometry` on the mosaic)
    and the local rms each unit measured."""
    n = len(galaxies)
    rms = np.full(n, np.nan)
    unit = u.Unit(image.unit) if image.unit is not None else None
    if unit is None or not unit.is_equivalent(BRIGHTNESS_UNIT):
        log.info("the mosaic is in %s, not Jy/beam: flux densities are NaN", unit)
        nan = np.full(n, np.nan)
        return {"peak_flux": nan * BRIGHTNESS_UNIT, "total_flux": nan * u.mJy,
                "local_rms": rms * BRIGHTNESS_UNIT}
    beam = (image.meta or {}).get("beam")
    beam_pix = None if beam is None else beam_pixels(beam, image.wcs)
    peak, total = mask_photometry(image.data, unit, [(g.x0, g.y0, g.mask) for g in galaxies],
                                  beam_pixels=beam_pix)
    for k, g in enumerate(galaxies):
        p = g.best.payload
        if p.get("rms") is not None:
            try:
                rms[k] = p["rms"] * u.Unit(p.get("rms_unit") or unit).to(BRIGHTNESS_UNIT)
            except (ValueError, u.UnitConversionError):
                rms[k] = np.nan
    return {"peak_flux": peak, "total_flux": total, "local_rms": rms * BRIGHTNESS_UNIT}


def _galcam_version():
    from galcam import __version__

    return __version__


class SurveyResult:
    """The outcome of `SurveyRunner.run` (immutable).

    ``len(result)`` is the number of galaxies.

    Attributes
    ----------
    catalog : `~galcam.catalog.GalaxyCatalog`
        The merged catalogue on the mosaic's grid (regions, cross-match, plot).
    result : `~galcam.inference.SegmentationResult`
        The merged detections in mosaic pixels.
    units : tuple of `~galcam.survey.WorkUnit`
    done : frozenset of str
        Ids of the units with a result.
    failed : dict
        Unit id -> error, for the units that failed in this run.
    complete : bool
        Whether every unit is done.
    paths : dict
        Output files by kind (``table``, ``regions``, ``predictions``, ``figure``,
        ``manifest``, and ``fits``/``votable`` when asked).
    output_dir : `~pathlib.Path`
    manifest : dict
        The content of ``manifest.json``.
    """

    def __init__(self, *, catalog, table, result, units, done, failed, paths, output_dir,
                 manifest, complete):
        self._catalog = catalog
        self._table = table
        self._result = result
        self._units = tuple(units)
        self._done = frozenset(done)
        self._failed = dict(failed)
        self._paths = dict(paths)
        self._output_dir = Path(output_dir)
        self._manifest = manifest
        self._complete = bool(complete)

    catalog = property(lambda self: self._catalog)
    result = property(lambda self: self._result)
    units = property(lambda self: self._units)
    done = property(lambda self: self._done)
    failed = property(lambda self: dict(self._failed))
    complete = property(lambda self: self._complete)
    paths = property(lambda self: dict(self._paths))
    output_dir = property(lambda self: self._output_dir)
    manifest = property(lambda self: json.loads(json.dumps(self._manifest, default=str)))

    def __len__(self):
        return len(self._result)

    def __repr__(self):
        state = "complete" if self._complete else (
            f"incomplete: {len(self._done)}/{len(self._units)} units")
        return f"<SurveyResult: {len(self)} galaxies, {state}, '{self._output_dir}'>"

    def to_table(self):
        """The catalogue table (a copy): the `~galcam.catalog.GalaxyCatalog` columns with
        flux densities measured on the mosaic, plus ``units`` and ``n_views``."""
        return self._table.copy()

    def to_coco(self, image_id=1, categories=None):
        """COCO results of the galaxies in mosaic pixels (see
        `~galcam.inference.SegmentationResult.to_coco`)."""
        return self._result.to_coco(image_id, categories)

    def to_regions(self, **kwargs):
        """`~regions.Regions` of the galaxies (see `~galcam.catalog.GalaxyCatalog.to_regions`)."""
        return self._catalog.to_regions(**kwargs)

    def plot_coverage(self):
        """Figure of the units (done, failed, pending) and of the galaxy density per deg2."""
        from .plotting import plot_coverage

        return plot_coverage(self._units, done=self._done, failed=set(self._failed),
                             result=self._result, wcs=self._result.wcs,
                             shape=self._result.shape)

"""`calibrate`: choose a trained model's inference thresholds on a labelled validation set.

A model folder written by training records no catalogue threshold. Calibration predicts a
*validation* set (never the training set, never a test set) and records in the folder's
``config.json`` (``inference``):

1. ``class_threshold``: of the candidate class thresholds, the one of highest
   class-aware segmentation mAP50 (the higher threshold on a tie);
2. ``score_threshold``: with it, the score threshold that maximises F1 (completeness and
   reliability of class-agnostic matches at IoU 0.5; `galcam.evaluation.evaluate`),
   rounded to 0.001 -- the threshold `galcam predict` applies by default;
3. the grouping options the thresholds were chosen with (``resolution_scale``,
   ``unresolved_ratio``), so that the score they refer to is the one used later.

Unlike training, calibration reads the validation set's truth masks (to score
predictions); no weight changes, and the model's predictions stay truth-free.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .._validation import check_fraction
from ..models import ModelSpec
from .grouping import GalaxyGrouper
from .registry import resolve_model

__all__ = ["Calibration", "calibrate"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    """What `calibrate` chose and measured (immutable).

    Attributes
    ----------
    model : str
        The model folder.
    class_threshold : float
        The chosen class threshold.
    score_threshold : float
        The score threshold of best validation F1 with it.
    f1 : float
        That F1.
    by_class_threshold : mapping
        Validation ``segm_mAP50``, ``class_accuracy`` and ``f1_best`` of every candidate.
    validation : str
        The validation set.
    written : bool
        Whether the folder's config.json was updated.
    """

    model: str
    class_threshold: float
    score_threshold: float
    f1: float
    by_class_threshold: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    validation: str = ""
    written: bool = False

    def to_dict(self):
        """A JSON-serialisable dict."""
        return {"model": self.model, "class_threshold": self.class_threshold,
                "score_threshold": self.score_threshold, "f1": self.f1,
                "by_class_threshold": {k: dict(v) for k, v in self.by_class_threshold.items()},
                "validation": self.validation, "written": self.written}


def _describe(path):
    """A data set folder as the `galcam simulate` command that made it, where known."""
    sim = Path(path).parent / "simulation.json"
    if sim.is_file():
        try:
            p = json.loads(sim.read_text())["parameters"]
            return (f"galcam simulate --n {p['n']} --seed {p['seed']} "
                    f"(class balance {p['class_balance']})")
        except (ValueError, KeyError, TypeError):
            pass
    return str(path)


def calibrate(model, validation, *, image_dir=None, class_thresholds=(0.0, 0.25, 0.5),
              device="auto", batch_size=4, write=True, progress=False):
    """Choose and record a model's class and score thresholds on a validation set.

    Parameters
    ----------
    model : str or path-like
        A model folder (or registered name; ``write=False`` for a bundled model you do
        not want to change).
    validation : path-like
        COCO JSON of a labelled validation set (masks), disjoint from the training set.
    image_dir : path-like, optional
        Folder of its images (default: the JSON's folder).
    class_thresholds : sequence of float, optional
        Candidate class thresholds in [0, 1].
    device : str, optional
    batch_size : int, optional
    write : bool, optional
        Record the choice in the folder's config.json (atomically); False only measures.
    progress : bool, optional

    Returns
    -------
    `Calibration`
    """
    from ..evaluation import evaluate
    from ..io import atomic_write
    from .segmenter import WeakSegmenter

    grid = sorted({check_fraction(v, "class_thresholds") for v in class_thresholds},
                  reverse=True)
    if not grid:
        raise ValueError("class_thresholds: expected at least one number in [0, 1]")
    validation = Path(validation)
    if not validation.is_file():
        raise FileNotFoundError(f"validation: '{validation}' is not a COCO JSON file")
    folder = resolve_model(model)
    tried, best, chosen = {}, None, None
    for ct in grid:  # highest first: a tie keeps the higher threshold
        seg = WeakSegmenter.load(folder, device=device,
                                 grouper=GalaxyGrouper(class_threshold=ct))
        pred = seg.predict_dataset(validation, image_dir=image_dir, progress=progress,
                                   batch_size=batch_size)
        report = evaluate(validation, pred, image_dir=image_dir or validation.parent)
        m = report.metrics
        tried[ct] = {"segm_mAP50": m["segm_mAP50"], "class_accuracy": m["class_accuracy"],
                     "f1_best": m["f1_best"]}
        log.info("class threshold %g: validation segm_mAP50 %.3f, class accuracy %.3f", ct,
                 m["segm_mAP50"], m["class_accuracy"])
        if best is None or m["segm_mAP50"] > tried[best]["segm_mAP50"]:
            best, chosen = ct, seg
    f1 = tried[best]["f1_best"]
    threshold = round(float(f1["score_threshold"]), 3)
    if write:
        spec = chosen.spec
        grouping = dict(spec.grouping, resolution_scale=chosen.resolution_scale,
                        unresolved_ratio=chosen.unresolved_ratio)
        extra = json.loads(json.dumps(spec.to_dict()))  # notes live beside the values
        notes = extra.setdefault("inference", {})
        notes["class_threshold_note"] = (
            f"of {sorted(grid)}, the highest segmentation mAP50 on the validation set "
            f"{_describe(validation)}")
        notes["score_threshold_note"] = (
            f"maximises F1 on the validation set {_describe(validation)} (class threshold "
            f"{best}, instance step {chosen.grouping.method!r})")
        new = ModelSpec.from_dict(extra, path=folder).with_options(
            recommended_class_threshold=best, score_threshold=threshold, grouping=grouping)
        text = json.dumps(new.to_dict(), indent=2) + "\n"
        atomic_write(folder / "config.json", lambda tmp: Path(tmp).write_text(text))
        log.info("recorded class threshold %g and score threshold %g in %s", best, threshold,
                 folder / "config.json")
    return Calibration(model=str(folder), class_threshold=best, score_threshold=threshold,
                       f1=float(f1["f1"]),
                       by_class_threshold=MappingProxyType({str(k): MappingProxyType(v)
                                                            for k, v in sorted(tried.items())}),
                       validation=str(validation), written=bool(write))

"""`evaluate`: every galcam metric of COCO results against a COCO truth, and its report.

The metrics follow Gupta et al. (2023, PASA), Section 4 and Appendix: COCO
instance-segmentation AP (Lin et al. 2014), OKS keypoint AP of the infrared
hosts (three named variants, see `galcam.evaluation.keypoints`), the
class-agnostic confusion matrix at IoU 0.5, precision-recall curves, and the
CAM mIoU; galcam adds completeness, reliability, classification accuracy and
host offsets in arcsec.
"""

import json
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import MaskedColumn, Table
from astropy.utils.exceptions import AstropyUserWarning

from .._validation import check_fraction
from .coco import (
    COCO_IOU_THRESHOLDS,
    SEGM_MAX_DETS,
    load_predictions,
    load_truth,
    segm_average_precision,
)
from .confusion import confusion_matrix, detection_curve, match_instances
from .keypoints import (
    DEFAULT_ARCSEC_SIGMA,
    KEYPOINT_MAX_DETS,
    OKS_VARIANTS,
    PAPER_K,
    REFCODE_SIGMA,
    _as_arcsec,
    keypoint_average_precision,
    resolve_pixel_scales,
)
from .semantic import cam_miou, semantic_iou, semantic_maps_from_coco

__all__ = ["Evaluator", "EvaluationResult", "evaluate", "METRIC_DEFINITIONS", "REPORT_FILES"]

log = logging.getLogger(__name__)

#: Files written by `EvaluationResult.write` (host_offsets.png only when there are offsets).
REPORT_FILES = (
    "metrics.json",
    "report.txt",
    "pr_curves.png",
    "confusion_matrix.png",
    "host_offsets.png",
)

#: Order of the per-class entries of metrics.json.
PER_CLASS_KEYS = (
    "segm_AP50",
    "segm_AP",
    "keypoints_AP50_refcode",
    "keypoints_AP50_paper",
    "keypoints_AP50_arcsec",
    "n_true",
    "n_pred",
    "tp",
    "misclassified",
    "fn",
    "fp",
    "completeness",
    "reliability",
    "class_accuracy",
    "host_offset_median_arcsec",
    "cam_iou",
)

#: Host-offset radii (arcsec) reported as fractions.
OFFSET_RADII_ARCSEC = (3.0, 5.0)

#: One-line definitions written next to the numbers (metrics.json and report.txt).
METRIC_DEFINITIONS = {
    "segm_mAP50": "mean over classes with truth of the COCO mask AP at IoU 0.5 (pycocotools, "
    "useCats=1, area all, maxDets 100, 101-point interpolated PR); every prediction scored "
    "with its score",
    "segm_mAP": "the same averaged over IoU 0.50:0.05:0.95 (COCO AP)",
    "keypoints_mAP50_refcode": "mean over classes of the host-keypoint OKS AP at OKS 0.5 as the "
    "authors' code: pycocotools sigma 0.5, OKS = exp(-d^2 / (2 area)), d in px, area = the "
    "truth annotation's stored 'area' (px^2); maxDets 20, classes must match",
    "keypoints_mAP50_paper": "as above with the paper's eq. (5) OKS = exp(-(d/L)^2 / (2 s^2 k^2)),"
    " k = 0.5, s = bbox area / cutout area, d in units of the cutout side L = sqrt(W H)",
    "keypoints_mAP50_arcsec": "as above with OKS = exp(-d''^2 / (2 sigma''^2)), d'' the offset in "
    "arcsec and a fixed sigma'' (settings.arcsec_sigma; OKS = 0.5 at settings.arcsec_d50)",
    "host_offset_median_arcsec": "median distance (arcsec) between predicted and true host of "
    "galaxies matched at mask IoU >= settings.iou_threshold (class-agnostic)",
    "host_within_3arcsec": "fraction of those matched galaxies with host offset <= 3 arcsec",
    "host_within_5arcsec": "fraction of those matched galaxies with host offset <= 5 arcsec",
    "completeness": "true galaxies matched by a prediction / all true galaxies (class-agnostic "
    "greedy matching by descending score at mask IoU >= settings.iou_threshold, every "
    "prediction kept)",
    "reliability": "predictions matched to a true galaxy / all predictions (same matching)",
    "class_accuracy": "matched pairs whose predicted class is the true class / matched pairs",
    "f1_best": "completeness, reliability and F1 = 2 matched / (n_true + n_pred) at the score "
    "threshold (keep score >= threshold) that maximises F1",
    "confusion_matrix": "counts; rows = true class then 'spurious' (unmatched predictions, FP, in "
    "the column of their predicted class); columns = predicted class then 'missed' (unmatched "
    "true galaxies, FN)",
    "cam_miou": "semantic mIoU of class-activation label maps over background and all classes, "
    "pixels summed over images (paper eq. 4)",
}


def _none_if_nan(x):
    if x is None:
        return None
    x = float(x)
    return None if not math.isfinite(x) else x


@dataclass(frozen=True)
class EvaluationResult:
    """All metrics of one evaluation, with the arrays needed for its figures.

    Use `metrics` (the content of ``metrics.json``), `to_table` (one row per
    class), `summary`, and `write` (the report folder).
    """

    _metrics: dict
    _pr_curves: dict = field(repr=False)
    _confusion: object = field(repr=False)
    _offsets_arcsec: np.ndarray = field(repr=False)
    _detection: Table = field(repr=False)

    @property
    def metrics(self):
        """The metrics as a JSON-ready dict (a deep copy: the result is immutable)."""
        return json.loads(json.dumps(self._metrics))

    @property
    def confusion(self):
        """The `~galcam.evaluation.ConfusionMatrix`."""
        return self._confusion

    @property
    def host_offsets(self):
        """Host offsets (arcsec) of matched galaxies, as an angle Quantity array."""
        return self._offsets_arcsec.copy() * u.arcsec

    @property
    def detection_curve(self):
        """Completeness/reliability/F1 versus score threshold (`~astropy.table.Table`)."""
        return self._detection.copy()

    def to_table(self, *, include_all=True):
        """Per-class metrics as an `~astropy.table.Table` (missing values masked).

        Parameters
        ----------
        include_all : bool
            Append a row ``"all"`` with the mean APs and totals.
        """
        m = self._metrics
        names = list(m["per_class"])
        cols = [
            ("n_true", int, None),
            ("n_pred", int, None),
            ("segm_AP50", float, None),
            ("segm_AP", float, None),
            ("keypoints_AP50_refcode", float, None),
            ("keypoints_AP50_paper", float, None),
            ("keypoints_AP50_arcsec", float, None),
            ("tp", int, None),
            ("misclassified", int, None),
            ("fn", int, None),
            ("fp", int, None),
            ("completeness", float, None),
            ("reliability", float, None),
            ("class_accuracy", float, None),
            ("host_offset_median_arcsec", float, u.arcsec),
        ]
        rows = [m["per_class"][n] for n in names]
        if include_all:
            cm = self._confusion.counts
            k = len(self._confusion.class_names)
            total = {
                "n_true": m["n_true"],
                "n_pred": m["n_pred"],
                "segm_AP50": m["segm_mAP50"],
                "segm_AP": m["segm_mAP"],
                "keypoints_AP50_refcode": m["keypoints_mAP50_refcode"],
                "keypoints_AP50_paper": m["keypoints_mAP50_paper"],
                "keypoints_AP50_arcsec": m["keypoints_mAP50_arcsec"],
                "tp": int(np.trace(cm[:k, :k])),
                "misclassified": int(cm[:k, :k].sum() - np.trace(cm[:k, :k])),
                "fn": int(cm[:k, k].sum()),
                "fp": int(cm[k, :k].sum()),
                "completeness": m["completeness"],
                "reliability": m["reliability"],
                "class_accuracy": m["class_accuracy"],
                "host_offset_median_arcsec": m["host_offset_median_arcsec"],
            }
            rows = rows + [total]
            names = names + ["all"]
        t = Table()
        t["class"] = names
        for name, dtype, unit in cols:
            vals = [r.get(name) for r in rows]
            mask = [v is None for v in vals]
            data = np.array([0 if v is None else v for v in vals], dtype=dtype)
            col = MaskedColumn(data, name=name, mask=mask, unit=unit)
            if dtype is float:
                col.format = ".3f"
            t[name] = col
        t.meta["iou_threshold"] = m["settings"]["iou_threshold"]
        return t

    def summary(self):
        """A few lines with the headline numbers."""
        m = self._metrics

        def f(x, pct=True):
            if x is None:
                return "n/a"
            return f"{100 * x:.1f}%" if pct else f"{x:.2f}"

        lines = [
            f"{m['n_images']} images, {m['n_true']} true galaxies, {m['n_pred']} predictions, "
            f"{m['n_matched']} matched at IoU >= {m['settings']['iou_threshold']:g}",
            f"segmentation mAP50 {f(m['segm_mAP50'])}, mAP50:95 {f(m['segm_mAP'])}",
            f"host keypoint mAP50: refcode {f(m['keypoints_mAP50_refcode'])}, paper "
            f"{f(m['keypoints_mAP50_paper'])}, arcsec {f(m['keypoints_mAP50_arcsec'])}",
            f'host offset median {f(m["host_offset_median_arcsec"], False)} arcsec, within 3" '
            f'{f(m["host_within_3arcsec"])}, within 5" {f(m["host_within_5arcsec"])}',
            f"completeness {f(m['completeness'])}, reliability {f(m['reliability'])}, "
            f"class accuracy {f(m['class_accuracy'])}",
        ]
        best = m["f1_best"]
        if best is not None:
            lines.append(
                f"best F1 {f(best['f1'])} at score >= {best['score_threshold']:.4g} "
                f"(completeness {f(best['completeness'])}, reliability "
                f"{f(best['reliability'])})"
            )
        if m.get("cam_miou") is not None:
            lines.append(f"CAM mIoU {f(m['cam_miou'])}")
        return "\n".join(lines)

    def __str__(self):
        return self.summary()

    # ------------------------------------------------------------------ figures

    def plot_pr_curves(self):
        """A `~matplotlib.figure.Figure` of precision-recall curves at IoU/OKS 0.5, one line
        per class, one panel per task (segmentation, then the keypoint variants)."""
        from matplotlib.figure import Figure

        panels = [(k, v) for k, v in self._pr_curves.items() if v]
        n = max(len(panels), 1)
        fig = Figure(figsize=(4.0 * n, 4.0), layout="constrained")
        axes = fig.subplots(1, n, squeeze=False)[0]
        if not panels:
            axes[0].text(0.5, 0.5, "no curves", ha="center", va="center")
        for ax, (title, curves) in zip(axes, panels):
            for name, (recall, precision, ap) in curves.items():
                ax.plot(recall, precision, label=f"{name} (AP50 {100 * ap:.1f}%)")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            ax.set_title(title, fontsize="medium")
            ax.legend(loc="lower left", fontsize="small")
            ax.grid(alpha=0.3)
        return fig

    def plot_confusion_matrix(self):
        """A `~matplotlib.figure.Figure` of the confusion matrix (fractions and counts)."""
        from matplotlib.figure import Figure

        cm = self._confusion
        frac = cm.normalized()
        k = len(cm.class_names)
        fig = Figure(figsize=(1.2 * (k + 1) + 2.5, 1.0 * (k + 1) + 1.5), layout="constrained")
        ax = fig.subplots()
        im = ax.imshow(np.ma.masked_invalid(frac), vmin=0, vmax=1, cmap="Blues")
        for i in range(k + 1):
            for j in range(k + 1):
                if i == k and j == k:
                    continue
                val = frac[i, j]
                text = (
                    f"{cm.counts[i, j]}"
                    if not np.isfinite(val)
                    else (f"{val:.2f}\n({cm.counts[i, j]})")
                )
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="white" if np.isfinite(val) and val > 0.6 else "black",
                )
        ax.set_xticks(range(k + 1), labels=list(cm.column_labels))
        ax.set_yticks(range(k + 1), labels=list(cm.row_labels))
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(
            f"instances matched at mask IoU >= {self._metrics['settings']['iou_threshold']:g}",
            fontsize="medium",
        )
        fig.colorbar(im, ax=ax, label="fraction of true class (rows) / of predictions (spurious)")
        return fig

    def plot_host_offsets(self):
        """A `~matplotlib.figure.Figure`: histogram and cumulative fraction of host offsets."""
        from matplotlib.figure import Figure

        d = np.sort(self._offsets_arcsec)
        fig = Figure(figsize=(5.0, 4.0), layout="constrained")
        ax = fig.subplots()
        if d.size:
            hi = max(float(d[-1]), 6.0)
            ax.hist(d, bins=np.linspace(0, hi, 31), color="0.7", label="galaxies")
            ax2 = ax.twinx()
            ax2.plot(d, np.arange(1, d.size + 1) / d.size, color="C0", label="cumulative")
            ax2.set_ylim(0, 1.02)
            ax2.set_ylabel("cumulative fraction")
        for r in OFFSET_RADII_ARCSEC:
            ax.axvline(r, color="C3", ls="--", lw=1)
        ax.set_xlabel("host offset (arcsec)")
        ax.set_ylabel("number of matched galaxies")
        return fig

    # ------------------------------------------------------------------ report folder

    def report_text(self):
        """The text of ``report.txt``: summary, per-class table, confusion matrix, definitions."""
        lines = ["galcam evaluation", "=================", "", self.summary(), ""]
        lines += self.to_table().pformat(max_lines=-1, max_width=-1)
        lines += ["", "Confusion matrix (counts)", ""]
        lines += self._confusion.to_table().pformat(max_lines=-1, max_width=-1)
        lines += ["", "Definitions", ""]
        for key, text in self._metrics["definitions"].items():
            lines.append(f"- {key}: {text}")
        return "\n".join(lines) + "\n"

    def write(self, report_dir, *, overwrite=False):
        """Write the report folder.

        Files: ``metrics.json``, ``report.txt`` (table and definitions),
        ``pr_curves.png``, ``confusion_matrix.png`` and, when there are matched
        hosts, ``host_offsets.png``. Each file is written atomically.

        Parameters
        ----------
        report_dir : str or path-like
            Folder (created if needed).
        overwrite : bool
            Replace report files that already exist there.

        Returns
        -------
        paths : list of `~pathlib.Path`

        Raises
        ------
        FileExistsError
            If a report file exists and ``overwrite`` is False.
        """
        from galcam.io import atomic_write

        report_dir = Path(report_dir)
        if report_dir.exists() and not report_dir.is_dir():
            raise FileExistsError(f"report folder '{report_dir}' exists and is not a folder")
        names = list(REPORT_FILES)
        if self._offsets_arcsec.size == 0:
            names.remove("host_offsets.png")
        existing = [n for n in names if (report_dir / n).exists()]
        if existing and not overwrite:
            raise FileExistsError(
                f"report folder '{report_dir}' already has {', '.join(existing)}; "
                "use overwrite=True (--overwrite) to replace them"
            )
        report_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self._metrics, indent=2, allow_nan=False) + "\n"
        report = self.report_text()

        def write_text(content):
            def writer(tmp):
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.write(content)

            return writer

        def write_fig(fig):
            return lambda tmp: fig.savefig(tmp, format="png", dpi=120)

        paths = []
        jobs = {
            "metrics.json": write_text(text),
            "report.txt": write_text(report),
            "pr_curves.png": write_fig(self.plot_pr_curves()),
            "confusion_matrix.png": write_fig(self.plot_confusion_matrix()),
        }
        if "host_offsets.png" in names:
            jobs["host_offsets.png"] = write_fig(self.plot_host_offsets())
        for name, writer in jobs.items():
            paths.append(atomic_write(report_dir / name, writer))
            log.info("wrote %s", report_dir / name)
        return paths


class Evaluator:
    """Score galcam (or any COCO-results) predictions against a COCO truth.

    Configure once, then call on data::

        result = Evaluator(pixel_scale=2.0)(truth, predictions)

    Parameters
    ----------
    image_dir : str or path-like, optional
        Folder of the truth's FITS ``file_name`` s, read for pixel scales when
        ``images[].pixel_scale_arcsec`` is absent.
    pixel_scale : float or `~astropy.units.Quantity`, optional
        Fallback pixel scale (arcsec/px, or an angle Quantity per pixel).
    iou_threshold : float
        Mask IoU of the class-agnostic matching behind completeness,
        reliability, class accuracy, the confusion matrix and host offsets.
        (The AP keys are always at IoU 0.5 and 0.50:0.95, as named.)
    arcsec_sigma : float or `~astropy.units.Quantity`
        Tolerance of the arcsec OKS (arcsec); default 3 / sqrt(2 ln 2), i.e.
        OKS = 0.5 at a 3 arcsec offset.
    """

    def __init__(
        self,
        *,
        image_dir=None,
        pixel_scale=None,
        iou_threshold=0.5,
        arcsec_sigma=DEFAULT_ARCSEC_SIGMA,
    ):
        if image_dir is not None:
            image_dir = Path(image_dir)
            if not image_dir.is_dir():
                raise FileNotFoundError(f"image_dir '{image_dir}' is not an existing folder")
        if pixel_scale is not None:
            pixel_scale = _as_arcsec(pixel_scale, "pixel_scale", per_pixel=True)
        self.image_dir = image_dir
        self.pixel_scale = pixel_scale
        self.iou_threshold = check_fraction(iou_threshold, "iou_threshold", low_open=True)
        self.arcsec_sigma = _as_arcsec(arcsec_sigma, "arcsec_sigma")

    def __repr__(self):
        return (
            f"Evaluator(image_dir={self.image_dir!r}, pixel_scale={self.pixel_scale!r}, "
            f"iou_threshold={self.iou_threshold!r}, arcsec_sigma={self.arcsec_sigma!r})"
        )

    def __call__(self, truth, predictions, *, pred_categories=None, class_map=None,
                 semantic_predictions=None):
        """Evaluate.

        Parameters
        ----------
        truth : str, path-like or dict
            COCO ground truth.
        predictions : str, path-like, list or dict
            COCO results (a list, or ``{"categories", "annotations"}``).
        pred_categories : str, path-like or list of dict, optional
            Names of the prediction category ids (remapped to the truth by name). By
            default those of the predictions (a dict with ``categories``) or of the file
            beside a predictions file (``predictions.categories.json``, see
            `~galcam.evaluation.load_predictions`).
        class_map : dict, optional
            ``{prediction class: truth class}`` for a truth that names classes otherwise
            (``{"R": "Compact"}``; None leaves a class's predictions out). Without it,
            predictions and truth with different class names are refused.
        semantic_predictions : dict, optional
            image id -> integer label map whose values are truth category ids
            (0 = background), e.g. thresholded CAMs; adds ``cam_miou``.

        Returns
        -------
        result : `EvaluationResult`
        """
        truth_src = os.fspath(truth) if isinstance(truth, (str, os.PathLike)) else None
        pred_src = os.fspath(predictions) if isinstance(predictions, (str, os.PathLike)) else None
        truth = load_truth(truth)
        preds = load_predictions(predictions, truth, pred_categories=pred_categories,
                                 class_map=class_map)
        if not preds:
            warnings.warn(
                "there are no predictions: every AP, completeness and the host statistics are "
                "0 or null",
                AstropyUserWarning,
                stacklevel=2,
            )
        cats = sorted(truth["categories"], key=lambda c: (c["name"].lower(), c["id"]))
        images = {img["id"]: img for img in truth["images"]}

        # ---- segmentation AP
        segm = segm_average_precision(truth, preds)
        per_class = {c["name"]: {} for c in cats}
        for c in cats:
            per_class[c["name"]]["segm_AP50"] = segm.ap(c["id"], 0.5)
            per_class[c["name"]]["segm_AP"] = segm.ap(c["id"])
        pr_curves = {"segmentation (mask IoU 0.5)": self._curves(segm, cats)}

        # ---- matching, confusion, completeness, reliability
        matching = match_instances(truth, preds, iou_threshold=self.iou_threshold)
        confusion = confusion_matrix(matching, truth["categories"])
        for name, vals in confusion.per_class().items():
            per_class[name].update(vals)
        matched = matching.pred_match >= 0
        right = matched & (
            matching.pred_category
            == np.where(matched, matching.gt_category[np.maximum(matching.pred_match, 0)], -1)
        )
        n_matched = int(matched.sum())
        for c in cats:
            sel = matched & (matching.gt_category[np.maximum(matching.pred_match, 0)] == c["id"])
            n = int(sel.sum())
            per_class[c["name"]]["class_accuracy"] = int((sel & right).sum()) / n if n else None
        curve = detection_curve(matching)
        f1_best = None
        if len(curve) and matching.n_true:
            i = int(np.argmax(curve["f1"]))
            f1_best = {
                "score_threshold": float(curve["score_threshold"][i]),
                "n_pred": int(curve["n_pred"][i]),
                "completeness": float(curve["completeness"][i]),
                "reliability": float(curve["reliability"][i]),
                "f1": float(curve["f1"][i]),
            }

        # ---- keypoints
        truth_has_kp = any(
            a.get("num_keypoints", 0) > 0 and not a["iscrowd"] for a in truth["annotations"]
        )
        preds_have_kp = all("keypoints" in p for p in preds)
        kp_results = {}
        offsets = np.array([], dtype=float)
        offset_cats = np.array([], dtype=int)
        scale_sources = {}
        if not truth_has_kp:
            log.warning("the truth has no visible host keypoints: keypoint metrics are null")
        elif not preds_have_kp:
            log.warning("the predictions have no keypoints: keypoint metrics are null")
        else:
            anns = truth["annotations"]
            pairs = [
                (j, anns[matching.gt_index[g]])
                for j, g in enumerate(matching.pred_match)
                if g >= 0 and anns[matching.gt_index[g]].get("num_keypoints", 0) > 0
            ]
            need = {
                a["image_id"] for a in anns if a.get("num_keypoints", 0) > 0 and not a["iscrowd"]
            }
            scales = None
            if preds:
                scales, scale_sources = resolve_pixel_scales(
                    truth, need, image_dir=self.image_dir, pixel_scale=self.pixel_scale
                )
            for variant in OKS_VARIANTS:
                kp_results[variant] = keypoint_average_precision(
                    truth,
                    preds,
                    variant,
                    pixel_scales=scales,
                    arcsec_sigma=self.arcsec_sigma,
                )
            offsets = np.array(
                [
                    math.hypot(
                        preds[j]["keypoints"][0] - a["keypoints"][0],
                        preds[j]["keypoints"][1] - a["keypoints"][1],
                    )
                    * scales[a["image_id"]]
                    for j, a in pairs
                ],
                dtype=float,
            )
            offset_cats = np.array([a["category_id"] for _, a in pairs], dtype=int)
            for variant, res in kp_results.items():
                pr_curves[f"host keypoints, OKS {variant} (OKS 0.5)"] = self._curves(res, cats)
        for c in cats:
            for variant in OKS_VARIANTS:
                res = kp_results.get(variant)
                per_class[c["name"]][f"keypoints_AP50_{variant}"] = (
                    res.ap(c["id"], 0.5) if res is not None else None
                )
            sel = offsets[offset_cats == c["id"]]
            per_class[c["name"]]["host_offset_median_arcsec"] = (
                float(np.median(sel)) if sel.size else None
            )

        # ---- semantic maps
        cam = None
        if semantic_predictions is not None:
            cam, cam_iou = self._semantic(truth, semantic_predictions, images)
            for c, iou in zip(sorted(truth["categories"], key=lambda c: c["id"]), cam_iou[1:]):
                per_class[c["name"]]["cam_iou"] = _none_if_nan(iou)

        def frac_within(r):
            return float(np.mean(offsets <= r)) if offsets.size else None

        metrics = {
            "segm_mAP50": segm.mean_ap(0.5),
            "segm_mAP": segm.mean_ap(),
        }
        for variant in OKS_VARIANTS:
            res = kp_results.get(variant)
            metrics[f"keypoints_mAP50_{variant}"] = res.mean_ap(0.5) if res else None
        for variant in OKS_VARIANTS:
            res = kp_results.get(variant)
            metrics[f"keypoints_mAP_{variant}"] = res.mean_ap() if res else None
        metrics.update(
            {
                "host_offset_median_arcsec": float(np.median(offsets)) if offsets.size else None,
                "host_offset_n": int(offsets.size),
                "host_within_3arcsec": frac_within(3.0),
                "host_within_5arcsec": frac_within(5.0),
                "class_accuracy": int(right.sum()) / n_matched if n_matched else None,
                "completeness": n_matched / matching.n_true if matching.n_true else None,
                "reliability": n_matched / matching.n_pred if matching.n_pred else None,
                "f1_best": f1_best,
                "n_images": len(truth["images"]),
                "n_true": matching.n_true,
                "n_pred": matching.n_pred,
                "n_matched": n_matched,
            }
        )
        if cam is not None:
            metrics["cam_miou"] = cam
        metrics["confusion_matrix"] = {
            "rows": list(confusion.row_labels),
            "columns": list(confusion.column_labels),
            "counts": confusion.counts.tolist(),
        }
        order = {k: i for i, k in enumerate(PER_CLASS_KEYS)}
        metrics["per_class"] = {
            name: {
                k: _none_if_nan(v) if isinstance(v, float) else v
                for k, v in sorted(d.items(), key=lambda kv: order.get(kv[0], len(order)))
            }
            for name, d in per_class.items()
        }
        from galcam import __version__

        metrics["settings"] = {
            "truth": truth_src,
            "predictions": pred_src,
            "iou_threshold": self.iou_threshold,
            "arcsec_sigma": self.arcsec_sigma,
            "arcsec_d50": self.arcsec_sigma * math.sqrt(2.0 * math.log(2.0)),
            "segm_max_dets": list(SEGM_MAX_DETS),
            "segm_iou_thresholds": [round(float(t), 2) for t in COCO_IOU_THRESHOLDS],
            "keypoints_max_dets": list(KEYPOINT_MAX_DETS),
            "oks_refcode": {"kpt_oks_sigma": REFCODE_SIGMA, "area": "annotation area as stored"},
            "oks_paper": {
                "k": PAPER_K,
                "kpt_oks_sigma": PAPER_K / 2,
                "area": "bbox_area**2 / (width*height)",
            },
            "oks_arcsec": {"kpt_oks_sigma": 0.5, "area": "(arcsec_sigma / pixel_scale)**2"},
            "pixel_scale_sources": {
                s: sum(1 for v in scale_sources.values() if v == s)
                for s in sorted(set(scale_sources.values()))
            },
            "galcam_version": __version__,
        }
        metrics["definitions"] = dict(METRIC_DEFINITIONS)
        for key in list(metrics):
            if isinstance(metrics[key], float):
                metrics[key] = _none_if_nan(metrics[key])
        offsets.setflags(write=False)
        return EvaluationResult(
            _metrics=metrics,
            _pr_curves=pr_curves,
            _confusion=confusion,
            _offsets_arcsec=offsets,
            _detection=curve,
        )

    @staticmethod
    def _curves(res, cats):
        out = {}
        for c in cats:
            cur = res.curve(c["id"], 0.5)
            if cur is not None:
                out[c["name"]] = (cur[0], cur[1], res.ap(c["id"], 0.5))
        return out

    @staticmethod
    def _semantic(truth, semantic_predictions, images):
        if not isinstance(semantic_predictions, dict) or not semantic_predictions:
            raise ValueError("semantic_predictions must be a non-empty dict image id -> label map")
        ids = sorted(c["id"] for c in truth["categories"])
        lut = {0: 0, **{cid: i + 1 for i, cid in enumerate(ids)}}
        true_maps = semantic_maps_from_coco(truth, category_ids=ids)
        pred, true = {}, {}
        for iid, m in semantic_predictions.items():
            if iid not in images:
                raise ValueError(f"semantic_predictions: image id {iid!r} is not in the truth")
            m = np.asarray(m)
            if m.shape != true_maps[iid].shape:
                raise ValueError(
                    f"semantic_predictions[{iid}]: shape {m.shape} != image shape "
                    f"{true_maps[iid].shape}"
                )
            if not np.issubdtype(m.dtype, np.integer):
                raise ValueError(
                    f"semantic_predictions[{iid}]: expected integer category ids, got {m.dtype}"
                )
            values = np.unique(m)
            bad = [int(v) for v in values if int(v) not in lut]
            if bad:
                raise ValueError(
                    f"semantic_predictions[{iid}]: values {bad} are neither 0 (background) nor "
                    f"truth category ids {ids}"
                )
            table = np.zeros(int(values.max()) + 1, dtype=np.int64)
            for v in values:
                table[int(v)] = lut[int(v)]
            pred[iid] = table[m]
            true[iid] = true_maps[iid]
        n = len(ids) + 1
        return _none_if_nan(cam_miou(pred, true, n)), semantic_iou(pred, true, n)


def evaluate(
    truth,
    predictions,
    *,
    pred_categories=None,
    class_map=None,
    image_dir=None,
    pixel_scale=None,
    iou_threshold=0.5,
    arcsec_sigma=DEFAULT_ARCSEC_SIGMA,
    semantic_predictions=None,
):
    """Score predictions against a COCO truth: ``Evaluator(...)(truth, predictions)``.

    See `Evaluator` for the parameters and the metric definitions in
    `~galcam.evaluation.METRIC_DEFINITIONS` (also in the docs, ``metrics.rst``).

    Returns
    -------
    result : `EvaluationResult`
    """
    tool = Evaluator(
        image_dir=image_dir,
        pixel_scale=pixel_scale,
        iou_threshold=iou_threshold,
        arcsec_sigma=arcsec_sigma,
    )
    return tool(
        truth,
        predictions,
        pred_categories=pred_categories,
        class_map=class_map,
        semantic_predictions=semantic_predictions,
    )

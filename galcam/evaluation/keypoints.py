"""Host-keypoint metrics: OKS average precision in three named variants, host offsets.

Gupta et al. (2023, PASA), Section 4, score infrared host positions with the
COCO Object Keypoint Similarity (OKS) average precision. The paper's text and
the authors' code define OKS differently, and neither is expressed in sky
units, so galcam reports three variants, all computed by
`pycocotools.cocoeval.COCOeval` (``iouType="keypoints"``, one keypoint per
galaxy, classes must match). pycocotools computes

.. math:: \\mathrm{OKS} = \\exp\\left(-\\frac{d^2}{2\\,A\\,(2\\sigma)^2}\\right)

with ``d`` the pixel distance, ``A`` the ground-truth annotation's ``area``
and ``sigma`` the keypoint sigma. Each variant sets ``sigma`` and rewrites the
``area`` fed to COCOeval (on a copy) so that pycocotools' own code computes it:

``refcode``
    As the authors' code: ``sigma = 0.5`` and ``A`` = the annotation ``area``
    exactly as stored in the truth JSON (px^2), i.e. ``OKS = exp(-d^2 / (2 A))``.
``paper``
    The paper's equation (5), ``OKS = exp(-d^2 / (2 s^2 k^2))`` with ``k = 0.5``
    and ``s`` = bbox area / cutout area. Read literally with ``d`` in pixels
    the equation mixes a length with a pure number, so galcam measures ``d``
    in units of the cutout side ``L = sqrt(width * height)`` (normalised
    coordinates), which makes both sides dimensionless and keeps ``s``, ``k``
    and the ``s^2`` exactly as printed: ``OKS = exp(-(d/L)^2 / (2 s^2 k^2))``.
    In pycocotools terms: ``sigma = k / 2 = 0.25`` and
    ``A = s^2 L^2 = bbox_area^2 / (width * height)``.
``arcsec``
    A size-independent astronomer's criterion: ``OKS = exp(-d''^2 / (2
    sigma''^2))`` with ``d''`` the offset in arcsec and a fixed ``sigma''``
    (default ``3 / sqrt(2 ln 2)`` = 2.548 arcsec, so that OKS = 0.5 at 3 arcsec).
    In pycocotools terms: ``sigma = 0.5`` and ``A = (sigma'' / pixel_scale)^2``.
"""

import copy
import logging
import math
from pathlib import Path

import numpy as np
from astropy import units as u

from .._validation import check_positive, check_quantity
from .coco import build_coco, results_dataset, run_cocoeval

__all__ = [
    "OKS_VARIANTS",
    "REFCODE_SIGMA",
    "PAPER_K",
    "DEFAULT_ARCSEC_D50",
    "DEFAULT_ARCSEC_SIGMA",
    "KEYPOINT_MAX_DETS",
    "oks_refcode",
    "oks_paper",
    "oks_arcsec",
    "arcsec_sigma_from_d50",
    "oks_parameters",
    "keypoint_average_precision",
    "resolve_pixel_scales",
]

log = logging.getLogger(__name__)

#: Names of the OKS variants, in report order.
OKS_VARIANTS = ("refcode", "paper", "arcsec")
#: pycocotools keypoint sigma used by the authors' code (effective k = 2 sigma = 1).
REFCODE_SIGMA = 0.5
#: The paper's keypoint constant k in equation (5).
PAPER_K = 0.5
#: Offset (arcsec) at which the arcsec OKS equals 0.5, by default.
DEFAULT_ARCSEC_D50 = 3.0
#: The arcsec-OKS sigma (arcsec) giving OKS = 0.5 at `DEFAULT_ARCSEC_D50`.
DEFAULT_ARCSEC_SIGMA = DEFAULT_ARCSEC_D50 / math.sqrt(2.0 * math.log(2.0))
#: maxDets of the keypoint evaluation (pycocotools' keypoint default, as the authors' code).
KEYPOINT_MAX_DETS = (20,)


def arcsec_sigma_from_d50(d50):
    """The arcsec-OKS sigma (arcsec) for which OKS = 0.5 at offset ``d50`` (arcsec)."""
    return float(d50) / math.sqrt(2.0 * math.log(2.0))


def oks_refcode(d, area):
    """OKS of the authors' code: ``exp(-d^2 / (2 area))``.

    Parameters
    ----------
    d : float or array
        Keypoint offset in pixels.
    area : float or array
        The ground truth's stored ``area`` in px^2.
    """
    d = np.asarray(d, dtype=float)
    return np.exp(-(d**2) / (2.0 * np.asarray(area, dtype=float)))


def oks_paper(d, bbox_area, image_area, k=PAPER_K):
    """OKS of the paper's equation (5), galcam's reading: ``exp(-(d/L)^2 / (2 s^2 k^2))``.

    Parameters
    ----------
    d : float or array
        Keypoint offset in pixels.
    bbox_area : float or array
        Ground-truth bounding-box area in px^2.
    image_area : float or array
        Cutout area ``width * height`` in px^2; ``L = sqrt(image_area)``.
    k : float
        Keypoint constant (0.5 in the paper).
    """
    d = np.asarray(d, dtype=float)
    image_area = np.asarray(image_area, dtype=float)
    s = np.asarray(bbox_area, dtype=float) / image_area
    dn2 = d**2 / image_area
    return np.exp(-dn2 / (2.0 * s**2 * k**2))


def oks_arcsec(d_arcsec, sigma_arcsec=DEFAULT_ARCSEC_SIGMA):
    """Size-independent OKS in sky units: ``exp(-d^2 / (2 sigma^2))``.

    Parameters
    ----------
    d_arcsec : float or array
        Host offset in arcsec.
    sigma_arcsec : float
        Tolerance in arcsec (default: OKS = 0.5 at 3 arcsec).
    """
    d = np.asarray(d_arcsec, dtype=float)
    return np.exp(-(d**2) / (2.0 * float(sigma_arcsec) ** 2))


def oks_parameters(variant, ann, image, *, pixel_scale_arcsec=None, arcsec_sigma=None):
    """pycocotools keypoint sigma and rewritten ``area`` that realise one OKS variant.

    Parameters
    ----------
    variant : {"refcode", "paper", "arcsec"}
    ann : dict
        Ground-truth annotation (``area`` and ``bbox`` in pixels).
    image : dict
        Its image entry (``width``, ``height``).
    pixel_scale_arcsec : float, optional
        Pixel scale (arcsec/px); required for ``"arcsec"``.
    arcsec_sigma : float, optional
        Tolerance (arcsec) of the ``"arcsec"`` variant.

    Returns
    -------
    sigma : float
        Value for ``COCOeval.params.kpt_oks_sigmas``.
    area : float
        Value to put in the annotation's ``area`` (px^2).
    """
    if variant == "refcode":
        return REFCODE_SIGMA, float(ann["area"])
    if variant == "paper":
        bbox_area = float(ann["bbox"][2]) * float(ann["bbox"][3])
        return PAPER_K / 2.0, bbox_area**2 / (float(image["width"]) * float(image["height"]))
    if variant == "arcsec":
        if pixel_scale_arcsec is None or arcsec_sigma is None:
            raise ValueError("the arcsec OKS needs pixel_scale_arcsec and arcsec_sigma")
        return 0.5, (float(arcsec_sigma) / float(pixel_scale_arcsec)) ** 2
    raise ValueError(f"unknown OKS variant {variant!r}; expected one of {OKS_VARIANTS}")


def keypoint_average_precision(
    truth, preds, variant, *, pixel_scales=None, arcsec_sigma=DEFAULT_ARCSEC_SIGMA
):
    """OKS average precision of host keypoints in one variant, with pycocotools.

    Ground-truth galaxies without a visible keypoint (``v = 0`` or none) are
    ignored, as pycocotools does; classes must match (``useCats=1``); OKS
    thresholds 0.50:0.05:0.95; ``maxDets = 20`` (pycocotools' keypoint
    default, as in the authors' code); area range "all".

    Parameters
    ----------
    truth : dict
        From `~galcam.evaluation.load_truth`.
    preds : list of dict
        From `~galcam.evaluation.load_predictions`, all with ``keypoints``.
    variant : {"refcode", "paper", "arcsec"}
    pixel_scales : dict, optional
        image id -> pixel scale in arcsec/px (needed for ``"arcsec"``).
    arcsec_sigma : float
        Tolerance of the ``"arcsec"`` variant in arcsec.

    Returns
    -------
    result : `~galcam.evaluation.APResult`
    """
    if variant not in OKS_VARIANTS:
        raise ValueError(f"unknown OKS variant {variant!r}; expected one of {OKS_VARIANTS}")
    images = {img["id"]: img for img in truth["images"]}
    if variant == "arcsec" and pixel_scales is None and preds:
        raise ValueError("the arcsec OKS needs pixel_scales (image id -> arcsec/px)")
    rewrite = not (variant == "arcsec" and pixel_scales is None)  # no predictions: AP is 0
    sigma = {"refcode": REFCODE_SIGMA, "paper": PAPER_K / 2.0, "arcsec": 0.5}[variant]
    anns = []
    for ann in truth["annotations"]:
        new = copy.deepcopy(ann)
        if "keypoints" not in new:
            new["keypoints"] = [0.0, 0.0, 0]
            new["num_keypoints"] = 0
        if rewrite and new["num_keypoints"] > 0 and not new["iscrowd"]:
            # ignored galaxies (no visible host, crowd) keep their area: it is never used
            ps = pixel_scales[new["image_id"]] if variant == "arcsec" else None
            _, new["area"] = oks_parameters(
                variant,
                new,
                images[new["image_id"]],
                pixel_scale_arcsec=ps,
                arcsec_sigma=arcsec_sigma,
            )
        anns.append(new)
    gt = dict(truth, annotations=anns)
    coco_gt = build_coco(gt)
    coco_dt = build_coco(results_dataset(truth, preds))
    return run_cocoeval(
        coco_gt,
        coco_dt,
        "keypoints",
        max_dets=KEYPOINT_MAX_DETS,
        iou_thresholds=np.linspace(0.5, 0.95, 10),
        kpt_sigma=sigma,
    )


_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz", ".fz")


def _as_arcsec(value, name, *, per_pixel=False):
    """A positive angle in arcsec (float) from an angle Quantity or a number of arcsec."""
    unit = "arcsec per pixel" if per_pixel else "arcsec"
    if isinstance(value, u.Quantity):
        kind = "an angle Quantity" + (" (per pixel)" if per_pixel else "")
        return float(check_quantity(value, name, u.arcsec,
                                    expected=f"{kind} or a number of {unit}").value)
    return check_positive(value, name,
                          expected=f"a finite positive number of {unit} or an angle Quantity")


def resolve_pixel_scales(truth, image_ids, *, image_dir=None, pixel_scale=None):
    """Pixel scale (arcsec/px) of each image, for arcsec offsets and the arcsec OKS.

    For each image the first available source wins:

    1. ``images[].pixel_scale_arcsec`` in the truth JSON;
    2. the WCS of the FITS file ``image_dir / file_name`` (via
       `galcam.io.read_image` and `galcam.io.pixel_scale`);
    3. the ``pixel_scale`` argument.

    Parameters
    ----------
    truth : dict
        From `~galcam.evaluation.load_truth`.
    image_ids : iterable of int
        Images that need a scale.
    image_dir : str or path-like, optional
        Folder of the images' ``file_name``.
    pixel_scale : float or `~astropy.units.Quantity`, optional
        Fallback, arcsec per pixel.

    Returns
    -------
    scales : dict
        image id -> arcsec per pixel.
    sources : dict
        image id -> ``"json"``, ``"fits"`` or ``"option"``.

    Raises
    ------
    ValueError
        If an image has no pixel scale from any source.
    FileNotFoundError
        If ``image_dir`` is given but an image's FITS file is missing.
    """
    fallback = (None if pixel_scale is None
                else _as_arcsec(pixel_scale, "pixel_scale", per_pixel=True))
    images = {img["id"]: img for img in truth["images"]}
    scales, sources = {}, {}
    for iid in sorted(set(image_ids)):
        img = images[iid]
        if img.get("pixel_scale_arcsec") is not None:
            scales[iid] = _as_arcsec(
                img["pixel_scale_arcsec"], f"images[id={iid}].pixel_scale_arcsec", per_pixel=True
            )
            sources[iid] = "json"
            continue
        name = img.get("file_name")
        if (
            image_dir is not None
            and isinstance(name, str)
            and name.lower().endswith(_FITS_SUFFIXES)
        ):
            path = Path(image_dir) / name
            if not path.is_file():
                raise FileNotFoundError(
                    f"image id {iid}: FITS file '{path}' (needed for its pixel scale) is missing"
                )
            from galcam.io import pixel_scale as wcs_pixel_scale
            from galcam.io import read_image

            scales[iid] = float(wcs_pixel_scale(read_image(path)).to_value(u.arcsec))
            sources[iid] = "fits"
            continue
        if fallback is not None:
            scales[iid] = fallback
            sources[iid] = "option"
            continue
        raise ValueError(
            f"image id {iid} ({name!r}): no pixel scale for arcsec offsets; add "
            "images[].pixel_scale_arcsec to the truth JSON, give image_dir (--image-dir) with "
            "its FITS file, or give pixel_scale (--pixel-scale, arcsec/px)"
        )
    return scales, sources

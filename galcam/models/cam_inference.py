"""Multi-scale class activation maps of one image (reference ``make_recam``).

The CAMs of a trained `~galcam.models.CAMNet` are computed at several image
scales, each with its horizontal mirror, and summed, as in IRN/ReCAM/Gal-CAM
(Ahn et al. 2019; Chen et al. 2022; Gupta et al. 2023, section 3.2). Unlike the
reference code, the classes present are *not* read from the ground truth: the
maps of every class are returned together with the classifier's own
probabilities, and the caller selects classes from those.
"""

import contextlib
import logging

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import check_fraction, check_positive_int
from .cam import CAM_EPS
from .folder import resolve_device
from .spec import CLASS_VIEWS, DEFAULT_SCALES

__all__ = ["CLASS_VIEWS", "DEFAULT_SCALES", "class_views", "multiscale_cams", "predict_classes",
           "select_classes", "strided_size", "strided_up_size", "view_logits"]

log = logging.getLogger(__name__)

# DEFAULT_SCALES (the inference scales of the reference ``make_recam``) and CLASS_VIEWS (the
# sets of views of an image that class probabilities are averaged over, see `class_views`)
# are defined once, with the model spec.

#: How many images each set of `CLASS_VIEWS` holds.
_N_VIEWS = {"none": 1, "flip": 2, "dihedral": 8}


def strided_size(size, stride=4):
    """Size of the stride-``stride`` grid of an image: ``(n - 1) // stride + 1`` per axis.

    For a 450 x 450 image and stride 4 this is (113, 113).
    """
    return tuple((int(n) - 1) // stride + 1 for n in size)


def strided_up_size(size, stride=16):
    """``size`` rounded up to a multiple of ``stride``: 450 -> 464 for stride 16."""
    return tuple(((int(n) - 1) // stride + 1) * stride for n in size)


def _as_image(image):
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image))
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image: expected a (C, H, W) numpy array or tensor, "
                        f"got {type(image).__name__}")
    if image.ndim != 3 or min(image.shape) < 1:
        raise ValueError(f"image: expected shape (C, H, W), got {tuple(image.shape)}")
    image = image.float()
    if not torch.isfinite(image).all():
        raise ValueError("image: contains NaN or infinite values; fill blanked pixels "
                         "(e.g. with 0) before inference")
    return image


def _check_scales(value, name="scales"):
    """A non-empty tuple of positive finite floats, or a ValueError naming ``name``."""
    try:
        out = () if isinstance(value, str) else tuple(float(s) for s in value)
    except (TypeError, ValueError):
        out = ()
    if not out or any(not (np.isfinite(s) and s > 0) for s in out):
        raise ValueError(f"{name}: expected a sequence of positive numbers, got {value!r}")
    return out


def _model_device(model, device):
    """The device to run ``model`` on (its own for None; else resolved, model moved)."""
    if not hasattr(model, "forward_all"):
        raise TypeError("model: expected a CAMNet (a module with forward_all)")
    if device is None:
        return next(model.parameters()).device
    device = resolve_device(device)
    model.to(device)
    return device


@contextlib.contextmanager
def _evaluating(model):
    """Run a block with ``model`` in evaluation mode and without gradients; restore its mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _rescale(x, s):
    """A batch (B, C, H, W) resized by ``s`` as the reference does (bicubic, PIL-like)."""
    if s == 1.0:
        return x
    h, w = x.shape[-2:]
    size = (int(np.round(h * s)), int(np.round(w * s)))
    if min(size) < 1:
        raise ValueError(f"scales: scale {s} makes the {h} x {w} image empty")
    # bicubic as the reference (PIL), antialiased when shrinking as PIL does
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=s < 1)


def _passes(model, image, scales, flip, device):
    """Yield (logits (n, C), summed CAM (C, h, w)) for each scale; n = 2 with flip."""
    image = image[None].to(_model_device(model, device))
    for s in scales:
        x = _rescale(image, s)
        if flip:
            x = torch.cat([x, x.flip(-1)])
        out = model.forward_all(x)
        cam = out.cams[0]
        if flip:
            cam = cam + out.cams[1].flip(-1)
        yield out.logits, cam


def _check_views(views, name="views"):
    if not isinstance(views, str) or views not in CLASS_VIEWS:
        raise ValueError(f"{name}: expected one of {list(CLASS_VIEWS)}, got {views!r}")
    return views


def class_views(x, views="flip"):
    """Symmetric views of a batch of images, for class probabilities.

    Parameters
    ----------
    x : `torch.Tensor`
        Images (B, C, H, W).
    views : {'none', 'flip', 'dihedral'}, optional
        ``'none'``: the images; ``'flip'``: the images and their horizontal mirrors;
        ``'dihedral'``: the eight symmetries of the pixel grid (the images rotated by 0,
        90, 180 and 270 degrees, each also mirrored). The first views of ``'dihedral'``
        are those of ``'flip'``, and those of ``'flip'`` start with ``'none'``.

    Returns
    -------
    views : list of `torch.Tensor`
        1, 2 or 8 tensors; rotations by 90 and 270 degrees are (B, C, W, H).
    """
    views = _check_views(views)
    out = [x]
    if views != "none":
        out.append(x.flip(-1))
    if views == "dihedral":
        t = x.transpose(-1, -2)
        out += [x.flip(-2), x.flip(-1).flip(-2), t, t.flip(-1), t.flip(-2), t.flip(-1).flip(-2)]
    return out


def view_logits(model, x, *, views="flip", start=0):
    """Classifier logits of the `class_views` of a batch.

    Parameters
    ----------
    model : `~galcam.models.CAMNet`
        The network, in evaluation mode, on the device of ``x``.
    x : `torch.Tensor`
        Normalised images (B, C, H, W).
    views : {'none', 'flip', 'dihedral'}, optional
        See `class_views`.
    start : int, optional
        Skip the first ``start`` views (those a caller already has the logits of).

    Returns
    -------
    logits : `torch.Tensor`
        (n_views - start, B, n_classes); views of equal shape share one network pass.
    """
    b = x.shape[0]
    todo = class_views(x, views)[start:]
    out = []
    for shape in dict.fromkeys(tuple(v.shape) for v in todo):
        same = [v for v in todo if tuple(v.shape) == shape]
        logits = model.forward_all(torch.cat(same)).logits
        out.append(logits.reshape(len(same), b, logits.shape[-1]))
    if not out:
        return x.new_zeros((0, b, getattr(model, "n_classes", 0)))
    return torch.cat(out)


def multiscale_cams(model, image, *, scales=DEFAULT_SCALES, flip=True, device=None):
    """Class activation maps of all classes, summed over scales and mirror images.

    Follows the reference ``make_recam`` (section 5 of the code specification):

    1. for each scale ``s`` the image is resized bicubically to
       ``round(H s) x round(W s)``; with ``flip`` it is stacked with its horizontal
       mirror, and the mirror's CAM is flipped back and **added**;
    2. each scale's CAM is resized bilinearly (``align_corners=False``) to the
       stride-4 grid ``((H-1)//4+1, (W-1)//4+1)`` and summed over scales: ``strided``;
    3. each scale's CAM is resized bilinearly to the size rounded up to a multiple of
       the output stride (16), summed over scales and cropped at the top left to
       ``H x W``: ``high_res``;
    4. each class map is divided by its own maximum + 1e-5, separately in
       ``strided`` and ``high_res`` (an all-zero map stays zero).

    The reference resizes the uint8 image and then normalises it; here the image is
    already normalised (resizing is linear, so only the uint8 rounding differs).

    Parameters
    ----------
    model : `~galcam.models.CAMNet`
        Trained network. It is put in evaluation mode for the call (and restored).
    image : `numpy.ndarray` or `torch.Tensor`
        One normalised image (C, H, W), as fed to the network.
    scales : sequence of float, optional
        Image scales; default (1.0, 0.5, 1.5, 2.0).
    flip : bool, optional
        Add the CAMs of the horizontally mirrored image (default true).
    device : None, str or `torch.device`, optional
        `None` (default) runs on the model's device; otherwise the device is resolved
        with `~galcam.models.resolve_device` and the model is moved there.

    Returns
    -------
    result : dict
        ``'strided'``: float32 array (n_classes, (H-1)//4+1, (W-1)//4+1);
        ``'high_res'``: float32 array (n_classes, H, W);
        ``'probabilities'``: float32 array (n_classes,), the sigmoid of the logits
        averaged over all scales and mirror images.
    """
    image = _as_image(image)
    scales = _check_scales(scales)
    _, h, w = image.shape
    stride = getattr(model, "output_stride", 16)
    small = strided_size((h, w), 4)
    up = strided_up_size((h, w), stride)
    with _evaluating(model):
        strided = high = None
        logits = []
        for lg, cam in _passes(model, image, scales, flip, device):
            logits.append(lg)
            cam = cam[None]
            s = F.interpolate(cam, size=small, mode="bilinear", align_corners=False)[0]
            u = F.interpolate(cam, size=up, mode="bilinear", align_corners=False)[0]
            strided = s if strided is None else strided + s
            high = u if high is None else high + u
        high = high[:, :h, :w]
        strided = strided / (strided.amax(dim=(1, 2), keepdim=True) + CAM_EPS)
        high = high / (high.amax(dim=(1, 2), keepdim=True) + CAM_EPS)
        prob = torch.sigmoid(torch.cat(logits).mean(dim=0))
    return {
        "strided": strided.cpu().numpy().astype(np.float32, copy=False),
        "high_res": high.cpu().numpy().astype(np.float32, copy=False),
        "probabilities": prob.cpu().numpy().astype(np.float32, copy=False),
    }


def _check_selection(threshold, min_classes, n_classes):
    check_fraction(threshold, "threshold", expected="a value in [0, 1]")
    expected = f"an integer in [0, {n_classes}]"
    if check_positive_int(min_classes, "min_classes", minimum=0, expected=expected) > n_classes:
        raise ValueError(f"min_classes: expected {expected}, got {min_classes!r}")


def select_classes(probabilities, *, threshold=0.5, min_classes=0):
    """Indices of the classes whose probability reaches ``threshold``.

    Parameters
    ----------
    probabilities : array-like
        Class probabilities (n_classes,).
    threshold : float, optional
        Minimum probability in [0, 1].
    min_classes : int, optional
        Keep at least this many classes (the most probable ones) even if they are
        below the threshold; 0 (default) lets the classifier decide that an image
        holds no galaxy, 1 forces one class per image (the reference always had one,
        taken from the ground truth).

    Returns
    -------
    keys : `numpy.ndarray`
        int64 class indices (0-based), in increasing order.
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"probabilities: expected a 1-D array, got shape {p.shape}")
    _check_selection(threshold, min_classes, p.size)
    keep = set(np.flatnonzero(p >= threshold).tolist())
    if len(keep) < min_classes:
        keep |= set(np.argsort(-p, kind="stable")[:min_classes].tolist())
    return np.array(sorted(keep), dtype=np.int64)


def predict_classes(model, image, *, threshold=0.5, min_classes=0, scales=DEFAULT_SCALES,
                    views="flip", device=None):
    """Classes present in an image according to the model's own classifier.

    The probabilities are the sigmoid of the logits averaged over the image scales
    ``scales`` and, at each scale, over the `class_views` ``views``. The reference code
    instead took the classes from the ground-truth labels (section 14 of the
    specification), which leaks the answer into the evaluation.

    Parameters
    ----------
    model : `~galcam.models.CAMNet`
    image : `numpy.ndarray` or `torch.Tensor`
        One normalised image (C, H, W).
    threshold, min_classes
        See `select_classes`.
    scales : sequence of float, optional
        Image scales (default those of the reference's CAMs).
    views : {'none', 'flip', 'dihedral'}, optional
        Symmetric views averaged at each scale (see `class_views`; default the image
        and its mirror, as `multiscale_cams`).
    device : None, str or `torch.device`, optional
        See `multiscale_cams`.

    Returns
    -------
    keys : `numpy.ndarray`
        Selected 0-based class indices (int64).
    probabilities : `numpy.ndarray`
        float32 probabilities of all classes.
    """
    _check_selection(threshold, min_classes, getattr(model, "n_classes", min_classes))
    image = _as_image(image)
    scales = _check_scales(scales)
    views = _check_views(views)
    batch = image[None].to(_model_device(model, device))
    with _evaluating(model):
        logits = [view_logits(model, _rescale(batch, s), views=views)[:, 0] for s in scales]
        prob = torch.sigmoid(torch.cat(logits).mean(dim=0)).cpu().numpy().astype(np.float32)
    return select_classes(prob, threshold=threshold, min_classes=min_classes), prob

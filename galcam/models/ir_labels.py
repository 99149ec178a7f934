"""Pseudo-labels for IRNet from class activation maps (reference ``cam_to_ir_label``).

IRNet (Ahn et al. 2019) learns inter-pixel relations from pixels whose class is
certain: confident foreground (high CAM), confident background (low CAM), and an
ignored band in between. Gupta et al. (2023, section 3.2.2) use the ReCAM maps
for this, with foreground threshold 0.35 and background threshold 0.1.

The reference refines both thresholded maps with a dense CRF (pydensecrf, whose
bilateral term snaps labels to edges of the colour image). pydensecrf is not
maintained and does not build on current Python, so galcam replaces it with a
refinement suited to radio images (``refine='islands'``): the preprocessed radio
channel is zero outside the >3 sigma islands (paper section 3.1), so pixels
outside the islands are confident background, foreground exists only inside
islands, and tiny foreground fragments are marked uncertain. This module uses
numpy and scipy only.
"""

import numpy as np
from scipy import ndimage

__all__ = ["IGNORE_INDEX", "make_ir_labels"]

#: Label value of uncertain pixels (ignored when training IRNet).
IGNORE_INDEX = 255

_REFINE = ("islands", "none")


def _threshold_labels(cams, keys_padded, threshold):
    """Label map: argmax over [constant threshold plane, cams], mapped to class ids."""
    bg = np.full((1, *cams.shape[1:]), threshold, dtype=cams.dtype)
    return keys_padded[np.argmax(np.concatenate([bg, cams]), axis=0)]


def _island_mask(radio, shape):
    radio = np.asarray(radio)
    if radio.shape != shape:
        raise ValueError(f"radio: expected shape {shape} (the CAMs' H, W), got {radio.shape}")
    if radio.dtype == bool:
        return radio
    if not np.issubdtype(radio.dtype, np.number):
        raise TypeError(f"radio: expected a numeric or boolean array, got dtype {radio.dtype}")
    with np.errstate(invalid="ignore"):
        return np.isfinite(radio) & (radio > 0)


def make_ir_labels(high_res_cams, keys, *, fg_threshold=0.35, bg_threshold=0.1, radio=None,
                   refine="islands", min_size=5, ignore_index=IGNORE_INDEX):
    """Turn max-normalised CAMs into an IRNet training label map.

    Without refinement (``refine='none'``) this is the reference procedure minus the
    CRF (section 7 of the code specification):

    1. ``fg``: argmax over [a plane of value ``fg_threshold``, the k CAMs], mapped
       to ``keys + 1`` (0 where the threshold plane wins);
    2. ``bg``: the same with ``bg_threshold``;
    3. label = ``fg``; pixels with ``fg == 0`` become ``ignore_index``; pixels with
       ``fg == 0`` and ``bg == 0`` (every CAM at most ``bg_threshold``) become 0.

    With ``refine='islands'`` (default), replacing the reference's dense CRF:

    4. every pixel outside the radio islands (``radio <= 0``, NaN, or False) is
       confident background (0), whatever its CAM: the preprocessed radio channel
       holds no emission there, which is the edge the CRF's bilateral term snapped
       the labels to;
    5. connected (8-connectivity) foreground fragments of one class smaller than
       ``min_size`` pixels become ``ignore_index``.

    Parameters
    ----------
    high_res_cams : array-like
        Max-normalised CAMs (k, H, W) of the k selected classes, values in [0, 1]
        (``multiscale_cams(...)['high_res'][keys]``).
    keys : array-like of int
        The k 0-based class indices of the maps.
    fg_threshold, bg_threshold : float, optional
        CAM levels of confident foreground (0.35) and of confident background (0.1),
        ``0 <= bg_threshold <= fg_threshold``.
    radio : array-like, optional
        (H, W) radio channel of the encoded image (positive inside the islands, zero
        outside) or a boolean island mask. Required by ``refine='islands'``.
    refine : {'islands', 'none'}, optional
        Refinement replacing the reference's dense CRF.
    min_size : int, optional
        With ``refine='islands'``: smallest foreground fragment kept, in pixels
        (5, the paper's minimum island size). 0 or 1 keeps everything.
    ignore_index : int, optional
        Value of uncertain pixels (255).

    Returns
    -------
    labels : `numpy.ndarray`
        uint8 (H, W): ``key + 1`` for confident foreground, 0 for confident
        background, ``ignore_index`` for uncertain pixels. With k = 0 every pixel is
        background, as in the reference.
    """
    if refine not in _REFINE:
        raise ValueError(f"refine: expected one of {_REFINE}, got {refine!r}")
    cams = np.asarray(high_res_cams, dtype=np.float32)
    if cams.ndim != 3:
        raise ValueError(f"high_res_cams: expected shape (k, H, W), got {cams.shape}")
    if not np.isfinite(cams).all():
        raise ValueError("high_res_cams: contains NaN or infinite values")
    keys = np.asarray(keys)
    if keys.ndim != 1 or keys.size != cams.shape[0]:
        raise ValueError(f"keys: expected {cams.shape[0]} class indices (one per CAM), "
                         f"got shape {keys.shape}")
    if keys.size and (not np.issubdtype(keys.dtype, np.integer) or keys.min() < 0
                      or keys.max() > 253):
        raise ValueError(f"keys: expected integer class indices in [0, 253], got {keys.tolist()}")
    if len(set(keys.tolist())) != keys.size:
        raise ValueError(f"keys: duplicated class indices {keys.tolist()}")
    if not (0 <= bg_threshold <= fg_threshold):
        raise ValueError("thresholds: expected 0 <= bg_threshold <= fg_threshold, got "
                         f"bg_threshold={bg_threshold!r}, fg_threshold={fg_threshold!r}")
    if (not isinstance(ignore_index, (int, np.integer)) or not 1 <= ignore_index <= 255
            or ignore_index in (keys + 1).tolist()):
        raise ValueError(f"ignore_index: expected an integer in [1, 255] that is not a class "
                         f"label (keys + 1), got {ignore_index!r}")
    if not isinstance(min_size, (int, np.integer)) or min_size < 0:
        raise ValueError(f"min_size: expected a non-negative integer, got {min_size!r}")
    shape = cams.shape[1:]
    islands = None
    if refine == "islands":
        if radio is None:
            raise ValueError("radio: refine='islands' needs the radio channel or island mask; "
                             "pass radio=... or refine='none'")
        islands = _island_mask(radio, shape)

    if keys.size == 0:
        return np.zeros(shape, np.uint8)

    keys_padded = np.concatenate([[0], keys.astype(np.int64) + 1])
    fg = _threshold_labels(cams, keys_padded, fg_threshold)
    bg = _threshold_labels(cams, keys_padded, bg_threshold)
    labels = fg.astype(np.uint8)
    labels[fg == 0] = ignore_index
    labels[(fg == 0) & (bg == 0)] = 0

    if refine == "islands":
        labels[~islands] = 0
        if min_size > 1:
            structure = np.ones((3, 3), bool)
            for value in keys_padded[1:]:
                components, n = ndimage.label(labels == value, structure=structure)
                if n == 0:
                    continue
                sizes = np.bincount(components.ravel())
                small = sizes < min_size
                small[0] = False
                labels[small[components]] = ignore_index
    return labels

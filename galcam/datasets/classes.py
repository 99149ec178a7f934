"""Class names: galcam's default classes and the one rule by which names are matched.

The module imports nothing of galcam (nor torch), so that every layer that matches classes
by name (data sets, catalogue, evaluation, baseline, inference) uses the same rule.
"""

import re

__all__ = ["DEFAULT_CLASSES", "normalize_class_name"]

#: The four morphological classes of Gupta et al. (2023), in galcam's canonical order.
DEFAULT_CLASSES = ("FR-I", "FR-II", "FR-X", "R")

_NAME_SEPARATORS = re.compile(r"[\s\-_]+")


def normalize_class_name(name):
    """Canonical form of a class name, used wherever galcam matches classes by name.

    Case, white space, hyphens and underscores are ignored, so ``"FR-I"``, ``"fr_i"``,
    ``"FR I"`` and ``"FRI"`` are the same class (``"FRI"``) while ``"FR-I"`` and
    ``"FR-II"`` stay different. Data sets, the evaluation, the catalogue's region colours
    and the COCO output of the segmenter all use this one function
    (`galcam.evaluation.normalize_class_name` is the same object).

    Parameters
    ----------
    name : str
        A category name.

    Returns
    -------
    key : str
        The upper-case name without separators.

    Raises
    ------
    TypeError
        ``name`` is not a string.
    ValueError
        ``name`` is empty once the separators are removed.
    """
    if not isinstance(name, str):
        raise TypeError(f"a class name must be a string, got {type(name).__name__} {name!r}")
    key = _NAME_SEPARATORS.sub("", name).upper()
    if not key:
        raise ValueError(f"class name {name!r} is empty once spaces, hyphens and underscores "
                         "are removed")
    return key

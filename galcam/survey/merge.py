"""Merging the detections of overlapping work units: the rule of `galcam.inference.merging`.

A survey's units and the tiles of one image are merged by the same rule; it lives in
`galcam.inference.merging` and is re-exported here for the survey's users.
"""

from galcam.inference.merging import (
    MergedGalaxy,
    UnitDetection,
    merge_unit_detections,
    same_galaxy,
    touches_unit_border,
)

__all__ = ["UnitDetection", "MergedGalaxy", "merge_unit_detections", "same_galaxy",
           "touches_unit_border"]

"""A classical (non-machine-learning) reference finder of extended radio galaxies."""

from .finder import ClassicalDetection, ClassicalFinder, detections_to_table

__all__ = ["ClassicalDetection", "ClassicalFinder", "detections_to_table"]

"""galcam: weakly-supervised segmentation of extended radio galaxies.

galcam finds extended radio galaxies (FR-I, FR-II, FR-X and barely resolved
"R" sources) in radio continuum images, segments each galaxy into a single
mask covering all of its components, classifies it and locates its infrared
host, following Gupta et al. 2023 (PASA), "Deep learning for morphological
identification of extended radio galaxies using weak labels".

The public names are imported lazily, so that ``import galcam`` stays fast
and never imports torch; torch is only loaded when a deep-learning tool
(``WeakSegmenter``, ``HostFinder``) is used.
"""

from ._lazy import lazy_exports as _lazy_exports

try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover - only when running from a source tree without a build
    __version__ = "0.0.0.unknown"

# public name -> module that defines it
_LAZY = {
    "read_image": "galcam.io",
    "write_image": "galcam.io",
    "Beam": "galcam.io",
    "NoiseEstimator": "galcam.preprocessing",
    "NoiseResult": "galcam.preprocessing",
    "find_islands": "galcam.preprocessing",
    "Islands": "galcam.preprocessing",
    "preprocess_channel": "galcam.preprocessing",
    "CutoutEncoder": "galcam.preprocessing",
    "EncodedCutout": "galcam.preprocessing",
    "simulate_cutout": "galcam.datasets",
    "simulate_dataset": "galcam.datasets",
    "CocoDataset": "galcam.datasets",
    "ClassicalFinder": "galcam.baseline",
    "WeakSegmenter": "galcam.inference",
    "HostFinder": "galcam.inference",
    "GalaxyCatalog": "galcam.catalog",
    "SurveyRunner": "galcam.survey",
    "evaluate": "galcam.evaluation",
    "Evaluator": "galcam.evaluation",
}

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, relative=False)

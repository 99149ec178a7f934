"""Preprocessing: noise, islands and the channel encoding of Gupta et al. (2023).

Torch-free: nothing here imports torch.
"""

from .encoder import CHANNEL_NAMES, CutoutEncoder, EmptyCutoutError, EncodedCutout
from .islands import ISLAND_COLUMNS, Islands, find_islands, island_mask
from .noise import METHODS, NoiseEstimator, NoiseResult
from .png import decode_paper_png, encode_paper_png, read_paper_png, write_paper_png
from .scaling import log_minmax, preprocess_channel

__all__ = [
    "CHANNEL_NAMES",
    "CutoutEncoder",
    "EmptyCutoutError",
    "EncodedCutout",
    "ISLAND_COLUMNS",
    "Islands",
    "METHODS",
    "NoiseEstimator",
    "NoiseResult",
    "decode_paper_png",
    "encode_paper_png",
    "find_islands",
    "island_mask",
    "log_minmax",
    "preprocess_channel",
    "read_paper_png",
    "write_paper_png",
]

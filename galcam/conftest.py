"""pytest configuration shared by all galcam tests."""

import os

import numpy as np
import pytest

# Tests must not reach the network and must be reproducible on 2 CPU cores.
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def rng():
    """A seeded random generator, fresh for each test."""
    return np.random.default_rng(20231)

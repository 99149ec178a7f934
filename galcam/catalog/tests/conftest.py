"""Fixtures of the catalogue tests: one synthetic scene with known truth per module."""

import pytest

from galcam.catalog import GalaxyCatalog

from ._synth import scene


@pytest.fixture(scope="module")
def synth():
    """``(radio, result, truth)`` of `_synth.scene`."""
    return scene()


@pytest.fixture(scope="module")
def catalog(synth):
    """A `GalaxyCatalog` of the synthetic scene with its radio image (shared, immutable)."""
    radio, result, _ = synth
    return GalaxyCatalog(result, radio=radio)

"""Package-level contracts: import cost, lazy public names, version."""

import subprocess
import sys

import pytest

import galcam


def test_import_galcam_does_not_import_torch():
    # run in a fresh interpreter: this test process may have imported torch already
    code = (
        "import sys, galcam\n"
        "from galcam import read_image, NoiseEstimator, find_islands, CutoutEncoder\n"
        "import galcam.io, galcam.preprocessing, galcam.datasets, galcam.evaluation\n"
        "import galcam.catalog, galcam.baseline, galcam.morphology, galcam.visualization\n"
        "bad = [m for m in ('torch', 'torchvision') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_public_names():
    from galcam.io import read_image
    from galcam.preprocessing import CutoutEncoder, NoiseEstimator

    assert galcam.read_image is read_image
    assert galcam.NoiseEstimator is NoiseEstimator
    assert galcam.CutoutEncoder is CutoutEncoder
    assert "NoiseEstimator" in dir(galcam)
    with pytest.raises(AttributeError, match="no attribute 'Nonsense'"):
        galcam.Nonsense  # noqa: B018


def test_version():
    assert isinstance(galcam.__version__, str) and galcam.__version__[0].isdigit()

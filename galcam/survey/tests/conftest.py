"""Fixtures of the survey tests: a tiny random model folder and a small simulated mosaic."""

import pytest

from galcam.inference.tests.conftest import build_model_folder

#: Model settings that keep the tests fast (one CAM scale, no mirror, a short random walk);
#: class_threshold 0 makes a random classifier detect something in every tile.
FAST = {"class_threshold": 0.0, "scales": [1.0], "flip": False, "extractor": {"exp_times": 5}}
TILE = 64
OVERLAP = 0.25


@pytest.fixture(scope="session")
def survey_model(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    # the simulator's beam, so that no beam-mismatch warning is raised
    return build_model_folder(tmp_path_factory.mktemp("survey_models") / "tiny", size=TILE,
                              beam=(13.0, 11.0))


@pytest.fixture(scope="session")
def mosaic(tmp_path_factory):
    from galcam.datasets import simulate_mosaic

    out = tmp_path_factory.mktemp("survey_mosaic")
    simulate_mosaic(out, size=160, n_galaxies=3, seed=5, overview=False)
    return {"radio": out / "radio" / "mosaic.fits", "ir": out / "ir" / "mosaic_w1.fits",
            "truth": out / "annotations.json", "table": out / "truth.ecsv", "dir": out}


def make_runner(model, **kwargs):
    from galcam.survey import SurveyRunner

    kwargs.setdefault("n_workers", 0)
    kwargs.setdefault("tile_size", TILE)
    kwargs.setdefault("overlap", OVERLAP)
    kwargs.setdefault("model_options", FAST)
    return SurveyRunner(model, **kwargs)


@pytest.fixture(scope="session")
def sync_run(survey_model, mosaic, tmp_path_factory):
    """The single-process run every other run is compared with."""
    out = tmp_path_factory.mktemp("survey_sync") / "out"
    result = make_runner(survey_model).run(mosaic["radio"], mosaic["ir"], output_dir=out,
                                           progress=False)
    return result

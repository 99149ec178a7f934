"""What a segmenter says (and refuses) before any heavy work: `plan_image`, `WeakSegmenter.plan`
(issue 24: images whose sampling is far from the model's)."""

import logging

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import NDData
from astropy.utils.exceptions import AstropyUserWarning

from galcam.inference import ImagePlan, ImageRefusedError, plan_image
from galcam.inference import segmenter as segmenter_module
from galcam.io import Beam, ImageReadError

from .conftest import make_radio, make_wcs, write_fits

TILE = (64, 64)
OVERLAP = (22, 22)
MODEL_BEAM = {"major_arcsec": 10.0, "minor_arcsec": 8.0, "pa_deg": 0.0}


def _image(shape, pixel_scale, beam, value=None, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(0, 1e-4, shape) if value is None else np.full(shape, value)
    meta = {"filename": "sky.fits"}
    if beam is not None:
        meta["beam"] = Beam(major=beam[0] * u.arcsec, minor=beam[1] * u.arcsec, pa=0 * u.deg)
    return NDData(data.astype(np.float32), wcs=make_wcs(shape, pixel_scale),
                  unit=u.Jy / u.beam, meta=meta)


def _plan(image, **kw):
    kw = {"tile_size": TILE, "tile_overlap": OVERLAP, "pixel_scale": 2.0,
          "model_beam": MODEL_BEAM, **kw}
    return plan_image(image, **kw)


def test_an_image_like_the_training_data_is_planned_quietly():
    plan = _plan(_image((150, 200), 2.0, (10, 8)))
    assert isinstance(plan, ImagePlan)
    assert not plan.resampled and plan.working_shape == (150, 200) and plan.upsampling == 1
    assert plan.n_tiles == 5 * 4  # the tile grid of tiling.tile_grid (stride 42)
    assert plan.time_s == pytest.approx(20 * 0.24)
    assert plan.refusals == () and plan.warnings == () and plan.notes == ()
    assert plan.summary() == ("'sky.fits': 200 x 150 px of 2\"; 20 tiles of 64 x 64; estimated "
                              "5 s on 2 CPU cores and 0.2 GB of memory")


def test_undersampled_image_that_would_explode_is_refused():
    """The LOFAR image of the issue: 61"/px, a 27" beam, 21x upsampling after 17 minutes."""
    plan = _plan(_image((60, 60), 61.0, (27, 27)))
    assert plan.resampled and plan.beam_matched
    assert plan.working_pixel_scale == pytest.approx(2 * (27 * 27 / 80) ** 0.25)  # 3.47"
    assert plan.upsampling > 100
    undersampled, explodes = plan.refusals
    assert undersampled == ("'sky.fits': pixels of 61\" are coarser than half the restoring beam "
                            "(27\" x 27\"): the image is undersampled (0.44 pixels across the "
                            "beam's minor axis, fewer than 2), and galaxies in it cannot be "
                            "resolved; use an image with at least 2 pixels per beam")
    assert explodes == ("'sky.fits': resampling its 60 x 60 pixels of 61\" to the model's 3.47\" "
                        "would make a 1053 x 1053 image, 308 times the pixels (more than 16): "
                        "625 tiles, about 3 min on 2 CPU cores")
    with pytest.raises(ImageRefusedError, match="undersampled.*pass force=True") as info:
        plan.check()
    assert info.value.reason == "; ".join(plan.refusals) and info.value.plan is plan


def test_upsampling_alone_and_memory_are_refused():
    plan = _plan(_image((40, 40), 30.0, (70, 70)))  # 2.3 pixels per beam: sampled well enough
    assert len(plan.refusals) == 1 and "times the pixels (more than 16)" in plan.refusals[0]
    plan = _plan(_image((150, 200), 2.0, (10, 8)), memory_budget_bytes=10**6)
    assert plan.refusals == ("'sky.fits': predicting it would need about 0.2 GB of memory, more "
                             "than the budget of 1 MB; cut the image into parts (galcam survey "
                             "processes a mosaic in units)",)


def test_absurd_beam_blank_plane_and_small_image_are_said(caplog):
    plan = _plan(_image((64, 64), 2.0, (2781, 693)))  # an ASKAP beam table's bad plane
    assert plan.warnings == (
        "'sky.fits': the beam (2781\" x 693\") is 155 times the model's training beam (10\" x "
        "8\"), more than 20: is the header's (or the beam table's) beam right for this plane? "
        "The model cannot find galaxies at this resolution",)
    plan = _plan(_image((64, 64), 2.0, (10, 8), value=0.0))
    assert plan.warnings == ("'sky.fits': the image is constant (every pixel is 0): a blank or "
                             "flagged plane? There is nothing to find in it",)
    with pytest.raises(ImageReadError, match=r"'sky.fits': every pixel is NaN or infinite"):
        _plan(_image((64, 64), 2.0, (10, 8), value=np.nan))
    plan = _plan(_image((30, 30), 1.8, (5.4, 5.4)))  # the 33 x 33 FIRST cutout of the issue
    assert plan.refusals == () and plan.warnings == ()
    (note,) = plan.notes
    assert note.startswith("'sky.fits': the image (27 x 27 px, 54\" x 54\" at the working "
                           "scale) is much smaller than what the model sees at once (a 64 x 64 "
                           "tile, 128\" across)")
    with caplog.at_level(logging.INFO, logger="galcam"):
        plan.check()
    assert [r.levelname for r in caplog.records] == ["INFO", "WARNING"]
    assert caplog.records[1].getMessage() == note


def test_segmenter_refuses_before_resampling_and_force_goes_on(segmenter, monkeypatch,
                                                                tmp_path, caplog):
    radio = _image((12, 12), 61.0, (27, 27))
    calls = []
    real = segmenter_module.resample_image
    monkeypatch.setattr(segmenter_module, "resample_image",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.raises(ImageRefusedError, match="'sky.fits': pixels of 61\" are coarser"):
        segmenter(radio, progress=False)
    assert calls == []  # refused before any heavy work
    plan = segmenter.plan(radio)
    assert plan.refusals and plan.tile_size == segmenter.tile_size
    forced = segmenter.with_options(force=True)
    assert forced.force and not segmenter.force
    with pytest.warns(AstropyUserWarning, match=r"undersampled.*\(going on, as forced\)"):
        result = forced(radio, progress=False)
    assert calls == [1] and result.shape == (12, 12)
    # the plan is logged at INFO before the work, for a file as well
    path = write_fits(make_radio(), tmp_path / "emu.fits")
    caplog.clear()  # records of the calls above (kept when another test left INFO on)
    with caplog.at_level(logging.INFO, logger="galcam.inference"):
        segmenter(path, progress=False)
    first = next(r for r in caplog.records if "estimated" in r.getMessage())
    assert first.levelname == "INFO" and "emu.fits': 64 x 64 px of 2\"; 1 tile of 64 x 64" in \
        first.getMessage()
    assert segmenter_module.load_options({"force": True}) == {"force": True}

"""Work units: tile and seed windows, and what a task reads."""

import numpy as np
import pytest
from astropy import units as u
from astropy.table import QTable

from galcam.inference.tests.conftest import make_wcs
from galcam.io import Beam
from galcam.survey import seed_units, tile_units
from galcam.survey import units as units_module


def test_tiles_cover_the_mosaic_with_the_overlap():
    tiles = tile_units((100, 130), (40, 40), (10, 10))
    assert [t.id for t in tiles[:3]] == ["t0000_0000", "t0000_0001", "t0000_0002"]
    covered = np.zeros((100, 130), int)
    for t in tiles:
        assert t.shape == (40, 40) and t.kind == "tile"
        covered[t.y0:t.y1, t.x0:t.x1] += 1
    assert covered.min() >= 1
    assert max(t.x1 for t in tiles) == 130 and max(t.y1 for t in tiles) == 100
    # a mosaic smaller than a tile is one clipped unit
    (only,) = tile_units((30, 20), (64, 64), (16, 16))
    assert only.window == (0, 0, 20, 30)


def test_seed_cutouts_are_centred_and_clipped():
    wcs = make_wcs((100, 100))
    sky = wcs.pixel_to_world([50, 3, 52, 500], [50, 40, 50, 50])
    seeds = QTable({"seed_id": ["a", "b", "c", "far"], "ra": sky.ra, "dec": sky.dec,
                    "flux": [1.0, 2.0, 0.5, 9.0]})
    units = seed_units(seeds, wcs, (100, 100), (21, 21), separation=5)
    # 'far' is off the mosaic; 'c' is 2 px from the brighter 'a' and shares its cutout
    assert [(un.id, un.seed_id) for un in units] == [("s000000", "a"), ("s000001", "b")]
    a, b = units
    assert a.window == (40, 40, 61, 61) and a.kind == "seed"
    assert b.window == (0, 30, 14, 51)  # clipped at the mosaic's left edge
    assert abs(b.seed_x - 3) < 1e-6 and abs(b.seed_y - 40) < 1e-6


class _Recorder:
    """A stand-in for a memory-mapped array that records what is sliced from it."""

    def __init__(self, array):
        self.array = array
        self.shape = array.shape
        self.slices = []

    def __getitem__(self, index):
        self.slices.append(index)
        return self.array[index]

    def __array__(self, *args, **kwargs):  # pragma: no cover - must never happen
        raise AssertionError("the whole mosaic was read")


def test_a_task_reads_only_its_window(monkeypatch):
    from astropy.nddata import NDData

    wcs = make_wcs((300, 400))
    beam = Beam(major=13 * u.arcsec, minor=11 * u.arcsec, pa=0 * u.deg)
    data = _Recorder(np.arange(300 * 400, dtype=np.float32).reshape(300, 400))
    calls = []

    def fake_read_image(path, **kwargs):
        calls.append(kwargs)
        image = NDData(np.zeros((1, 1)), wcs=wcs, unit=u.Jy / u.beam, meta={"beam": beam})
        image._data = data  # what read_image(memmap=True) hands out: a lazy view
        return image

    monkeypatch.setattr("galcam.io.read_image", fake_read_image)
    unit = units_module.WorkUnit("t0001_0002", 0, "tile", 100, 50, 164, 114)
    window = units_module._window_image("mosaic.fits", None, unit)
    assert calls == [{"memmap": True, "plane": None}]
    assert data.slices == [(slice(50, 114), slice(100, 164))]
    assert window.data.shape == (64, 64) and window.data[0, 0] == 50 * 400 + 100
    assert window.meta["beam"] == beam  # the mosaic's beam goes with every window
    # the window's WCS puts its pixel (0, 0) where the mosaic has pixel (100, 50)
    sky = wcs.pixel_to_world(100, 50)
    assert window.wcs.pixel_to_world(0, 0).separation(sky) < 1e-6 * u.deg
    # the infrared image: only the part under the window (plus a margin) is read
    data.slices.clear()
    ir = units_module._ir_window("ir.fits", window.wcs, window.data.shape)
    (ys, xs), = data.slices
    assert 100 - 5 <= xs.start <= 100 and 163 < xs.stop <= 164 + 5
    assert 50 - 5 <= ys.start <= 50 and 113 < ys.stop <= 114 + 5
    assert ir.wcs.pixel_to_world(0, 0).separation(
        wcs.pixel_to_world(xs.start, ys.start)) < 1e-6 * u.deg


@pytest.mark.parametrize("text", ["{", "[]", '{"schema": "other"}'])
def test_unit_files_that_are_not_ours_are_redone(tmp_path, text):
    path = tmp_path / "u.json"
    path.write_text(text)
    assert units_module.read_unit_file(path) is None
    path.write_text('{"schema": "galcam.survey.unit/1", "fingerprint": "a"}')
    assert units_module.read_unit_file(path, "a") is not None
    assert units_module.read_unit_file(path, "b") is None  # another run's
    assert units_module.read_unit_file(tmp_path / "missing.json") is None


def test_units_are_sized_for_the_beam_matched_pixels():
    from types import SimpleNamespace

    from astropy.nddata import NDData

    from galcam.survey import SurveyRunner

    model = SimpleNamespace(tile_size=(64, 64), pixel_scale=2.0, beam_matching=1.0,
                            beam={"major_arcsec": 10.0, "minor_arcsec": 8.0, "pa_deg": 0.0})
    mosaic = NDData(np.zeros((2, 2)), wcs=make_wcs((2, 2)), meta={
        "beam": Beam(major=20 * u.arcsec, minor=16 * u.arcsec, pa=0 * u.deg)})
    runner = SurveyRunner.__new__(SurveyRunner)
    runner._tile_size = None
    # 4 times the training beam's area: 4"/px working pixels, a 64 px tile covers 128 px
    def unit_size():
        return runner._unit_size(model, mosaic, runner._working_scale(model, mosaic)[0])

    assert runner._working_scale(model, mosaic) == (pytest.approx(4.0), True)
    assert unit_size() == (128, 128)
    model.beam_matching = 0.0
    assert runner._working_scale(model, mosaic) == (2.0, False)
    assert unit_size() == (64, 64)
    mosaic.meta["beam"] = None
    model.beam_matching = 1.0
    assert unit_size() == (64, 64)


def test_a_unit_at_another_pixel_scale_is_one_tile():
    from types import SimpleNamespace

    from astropy.nddata import NDData

    from galcam.inference.resample import working_wcs
    from galcam.survey import SurveyRunner

    runner = SurveyRunner.__new__(SurveyRunner)
    runner._tile_size = None
    model = SimpleNamespace(tile_size=(64, 64), pixel_scale=2.0, beam_matching=0.5, beam=None)
    for mosaic_scale in (1.8, 1.1, 1.5, 2.5):
        wcs = make_wcs((2, 2), pixel_scale=mosaic_scale)
        mosaic = NDData(np.zeros((2, 2)), wcs=wcs, meta={})
        size = runner._unit_size(model, mosaic, runner._working_scale(model, mosaic)[0])
        # resampled to 2"/px, a unit is one 64 px network input, not 65 px (2 x 2 tiles)
        _, shape, _ = working_wcs(make_wcs(size, pixel_scale=mosaic_scale), size, 2.0)
        assert shape == (64, 64), (mosaic_scale, size, shape)


def test_mosaic_is_opened_once_per_process_and_reread_when_it_changes(tmp_path, monkeypatch):
    import os

    from astropy.io import fits

    monkeypatch.setattr(units_module, "_IMAGES", {})
    header = make_wcs((40, 50)).to_header()
    header["BUNIT"] = "Jy/beam"
    data = np.arange(2000, dtype=np.float32).reshape(40, 50)
    path = tmp_path / "mosaic.fits"
    fits.writeto(path, data, header)
    first = units_module._open_image(path)
    assert units_module._memory_mapped(first.data)
    assert units_module._open_image(path) is first  # kept: not read again
    monkeypatch.setattr(units_module, "REOPEN_AFTER", 3)
    assert units_module._open_image(path) is first  # third use
    assert units_module._open_image(path) is not first  # opened afresh after 3 units
    unit = units_module.WorkUnit("u0", 0, "tile", 10, 5, 30, 20)
    window = units_module._window_image(path, None, unit)
    np.testing.assert_array_equal(window.data, data[5:20, 10:30])
    # the file replaced (new content, new time): read again, never stale data
    fits.writeto(path, data + 1, header, overwrite=True)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = units_module._open_image(path)
    assert again is not first and again.data[0, 0] == 1
    # scaled integers are read whole (not memory-mapped): not held by the process
    scaled = tmp_path / "scaled.fits"
    hdu = fits.PrimaryHDU((data / 10).astype(np.float32), header)
    hdu.scale("int16", bscale=0.1)
    hdu.writeto(scaled)
    image = units_module._open_image(scaled)
    assert not units_module._memory_mapped(image.data)
    assert units_module._open_image(scaled) is not image
    assert len(units_module._IMAGES) <= 2

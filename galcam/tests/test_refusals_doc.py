"""docs/refusals.rst gives each refusal and warning with the exact message galcam gives.

Every message of the page (a ``.. message: ID`` comment followed by a ``text`` code block)
is produced here by running galcam on a small input made for it, and compared with the
page: the folder of the test's files is left out of the produced message, and ``…`` in the
page stands for any text (a number that depends on the machine). So the page cannot drift
from the code, and every refusal listed here is on the page.

Run ``python galcam/tests/test_refusals_doc.py`` to print every message (to write the page).
"""

import contextlib
import io
import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

DOC = Path(__file__).resolve().parents[2] / "docs" / "refusals.rst"


# ------------------------------------------------------------------ inputs
def _header(shape, pixel_scale=2.0, beam=(13.0, 11.0), bunit="Jy/beam"):
    h = fits.Header()
    ny, nx = shape
    for key, value in {"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN", "CRPIX1": nx / 2,
                       "CRPIX2": ny / 2, "CRVAL1": 150.0, "CRVAL2": 2.0,
                       "CDELT1": -pixel_scale / 3600, "CDELT2": pixel_scale / 3600,
                       "CUNIT1": "deg", "CUNIT2": "deg"}.items():
        h[key] = value
    if bunit is not None:
        h["BUNIT"] = bunit
    if beam is not None:
        h["BMAJ"], h["BMIN"], h["BPA"] = beam[0] / 3600, beam[1] / 3600, 0.0
    return h


def _fits(path, shape=(64, 64), *, value=None, rms=3e-5, **header):
    rng = np.random.default_rng(1)
    data = np.full(shape, value)
    if value is None:
        data = rng.normal(0, rms, shape)
        data[shape[0] // 2, shape[1] // 2] += 100 * rms
    fits.PrimaryHDU(data.astype(np.float32), _header(shape, **header)).writeto(path)
    return path


def _cli(argv, folder):
    """The last line ``galcam`` writes to stderr (its one-line error), folder left out."""
    from galcam.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main([*argv, "-q"])
    assert status != 0, f"galcam {' '.join(argv)} did not refuse"
    return _local(err.getvalue().strip().splitlines()[-1], folder)


def _warning(call, folder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    texts = [str(w.message) for w in caught]
    assert texts, "no warning"
    return _local(texts[-1], folder)


def _local(text, folder):
    return text.replace(f"{folder}/", "").replace(f"'{folder}'", "'.'")


def _in(folder):
    import os

    @contextlib.contextmanager
    def cwd():
        old = os.getcwd()
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(old)
    return cwd()


# ------------------------------------------------------------------ the messages
def not_fits(d):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(d / "photo.fits", format="PNG")
    return _cli(["islands", str(d / "photo.fits"), "-o", str(d / "out")], d)


def blank(d):
    return _cli(["islands", str(_fits(d / "blank.fits", value=np.nan)), "-o", str(d / "o")], d)


def constant(d):
    return _cli(["islands", str(_fits(d / "zero.fits", value=0.0)), "-o", str(d / "o")], d)


def no_celestial_wcs(d):
    path = _fits(d / "spectrum.fits")
    for key, value in (("CTYPE1", "FREQ"), ("CUNIT1", "Hz"), ("CTYPE2", "VELO"),
                       ("CUNIT2", "m/s")):
        fits.setval(path, key, value=value)
    return _cli(["islands", str(path), "-o", str(d / "o")], d)


def cube_without_plane(d):
    h = _header((32, 32))
    h["CTYPE3"], h["CRPIX3"], h["CRVAL3"], h["CDELT3"] = "FREQ", 1.0, 944e6, 1e6
    fits.PrimaryHDU(np.ones((3, 32, 32), np.float32), h).writeto(d / "cube.fits")
    return _cli(["islands", str(d / "cube.fits"), "-o", str(d / "o")], d)


def negative_plane(d):
    return _cli(["islands", str(_fits(d / "emu.fits")), "-o", str(d / "o"), "--plane", "-1"], d)


def beam_in_arcsec(d):
    path = _fits(d / "emu.fits")
    fits.setval(path, "BMAJ", value=13.0)
    fits.setval(path, "BMIN", value=11.0)
    return _cli(["islands", str(path), "-o", str(d / "o")], d)


def no_brightness_unit(d):
    return _cli(["predict", str(_fits(d / "nounit.fits", bunit=None)), "-o", str(d / "o")], d)


def undersampled(d):
    lofar = _fits(d / "lofar.fits", (40, 40), pixel_scale=61.0, beam=(27.0, 27.0))
    return _cli(["predict", str(lofar), "-o", str(d / "o"), "--device", "cpu"], d)


def too_many_pixels(d):
    nvss = _fits(d / "coarse.fits", (40, 40), pixel_scale=30.0, beam=(70.0, 70.0))
    return _cli(["predict", str(nvss), "-o", str(d / "o"), "--device", "cpu"], d)


def too_much_memory(d, monkeypatch):
    from galcam.inference import planning
    from galcam.io import read_image

    monkeypatch.setattr(planning, "memory_budget", lambda: 10**6)
    plan = planning.plan_image(read_image(_fits(d / "big.fits", (400, 400))),
                               tile_size=(210, 210), tile_overlap=(70, 70), pixel_scale=2.0,
                               where="'big.fits'")
    return plan.refusals[0]


def simulate_too_big(d, monkeypatch):
    from galcam.datasets import simulate

    monkeypatch.setattr(simulate, "physical_memory", lambda: 2 * 10**9)
    return _cli(["simulate", "-o", str(d / "sim"), "--mosaic", "4000", "--seed", "3"], d)


def survey_blank(d):
    return _cli(["survey", str(_fits(d / "mosaic.fits", value=np.nan)), "-o", str(d / "o"),
                 "--n-workers", "0"], d)


def outputs_exist(d):
    _cli_ok(["islands", str(_fits(d / "emu.fits")), "-o", str(d / "out")])
    return _cli(["islands", str(d / "emu.fits"), "-o", str(d / "out")], d)


def earlier_run(d):
    out = d / "out"
    _cli_ok(["islands", str(_fits(d / "emu.fits")), "-o", str(out)])
    run = json.loads((out / "galcam-run.json").read_text())
    run["command"] = "predict"  # as if galcam predict had written the folder
    run["files"]["catalog.ecsv"] = {}
    (out / "galcam-run.json").write_text(json.dumps(run))
    (out / "catalog.ecsv").write_text("")
    return _cli(["islands", str(d / "emu.fits"), "-o", str(out)], d)


def other_class_names(d):
    truth = {"images": [{"id": 1, "file_name": "a.fits", "width": 8, "height": 8}],
             "categories": [{"id": 1, "name": "FRI"}, {"id": 2, "name": "FRII"},
                            {"id": 3, "name": "Compact"}, {"id": 4, "name": "Bent"}],
             "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 2, 2],
                              "segmentation": [[1, 1, 3, 1, 3, 3, 1, 3]], "area": 4,
                              "iscrowd": 0}]}
    (d / "first.json").write_text(json.dumps(truth))
    (d / "predictions.json").write_text("[]")
    (d / "predictions.categories.json").write_text(json.dumps({"categories": [
        {"id": i + 1, "name": n} for i, n in enumerate(("FR-I", "FR-II", "FR-X", "R"))]}))
    return _cli(["evaluate", "--truth", str(d / "first.json"), "--pred",
                 str(d / "predictions.json")], d)


def two_image_hdus(d):
    from galcam.io import read_image

    h = _header((16, 16))
    fits.HDUList([fits.PrimaryHDU(np.ones((16, 16), np.float32), h),
                  fits.ImageHDU(np.ones((16, 16), np.float32), h, name="RMS")]).writeto(
        d / "two.fits")
    return _warning(lambda: read_image(d / "two.fits"), d)


def zero_beam(d):
    from galcam.io import read_image

    return _warning(lambda: read_image(_fits(d / "plane.fits", beam=(0.0, 0.0))), d)


def unit_off_by_1000(d):
    from galcam.io import read_image

    return _warning(lambda: read_image(_fits(d / "emu.fits", bunit="mJy/beam")), d)


def _bundled_plan(image):
    from galcam.inference import WeakSegmenter

    return WeakSegmenter.load("default", device="cpu").plan(image)


def absurd_beam(d):
    return _local(_bundled_plan(_fits(d / "plane.fits", beam=(2781.0, 693.0))).warnings[0], d)


def blank_plane(d):
    return _local(_bundled_plan(_fits(d / "plane.fits", value=0.0)).warnings[0], d)


def smaller_than_a_tile(d):
    first = _fits(d / "first.fits", (33, 33), pixel_scale=1.8, beam=(5.4, 5.4))
    return _local(_bundled_plan(first).notes[0], d)


def _cli_ok(argv):
    from galcam.cli.main import main

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main([*argv, "-q"]) == 0


MESSAGES = {
    "not-fits": not_fits, "blank": blank, "constant": constant,
    "no-celestial-wcs": no_celestial_wcs, "cube-without-plane": cube_without_plane,
    "negative-plane": negative_plane, "beam-in-arcsec": beam_in_arcsec,
    "no-brightness-unit": no_brightness_unit, "undersampled": undersampled,
    "too-many-pixels": too_many_pixels, "too-much-memory": too_much_memory,
    "simulate-too-big": simulate_too_big,
    "survey-blank": survey_blank, "outputs-exist": outputs_exist, "earlier-run": earlier_run,
    "other-class-names": other_class_names, "two-image-hdus": two_image_hdus,
    "zero-beam": zero_beam, "unit-off-by-1000": unit_off_by_1000, "absurd-beam": absurd_beam,
    "blank-plane": blank_plane, "smaller-than-a-tile": smaller_than_a_tile,
}


def documented():
    """``{ID: message}`` of docs/refusals.rst (wrapped lines joined with a space)."""
    text = DOC.read_text(encoding="utf-8")
    found = {}
    for match in re.finditer(r"^\.\. message: ([\w-]+)\n\n\.\. code-block:: text\n\n"
                             r"((?:   .*\n|\n)+)", text, flags=re.M):
        lines = [ln.strip() for ln in match.group(2).splitlines() if ln.strip()]
        found[match.group(1)] = " ".join(lines)
    return found


def _produce(name, tmp_path, monkeypatch):
    producer = MESSAGES[name]
    with _in(tmp_path):
        if "monkeypatch" in producer.__code__.co_varnames:
            return producer(tmp_path, monkeypatch)
        return producer(tmp_path)


needs_docs = pytest.mark.skipif(not DOC.is_file(), reason="docs/ is not installed")


@needs_docs
def test_every_refusal_is_on_the_page():
    assert sorted(documented()) == sorted(MESSAGES)


@needs_docs
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_the_page_gives_the_message_galcam_gives(name, tmp_path, monkeypatch):
    page = documented()[name]
    message = _produce(name, tmp_path, monkeypatch)
    pattern = "".join(".*?" if part == "…" else re.escape(part)
                      for part in re.split("(…)", page))
    assert re.fullmatch(pattern, message), f"\npage:    {page}\ngalcam:  {message}"


if __name__ == "__main__":  # print every message, to write the page
    import tempfile

    class _Patch:
        def setattr(self, obj, name, value):
            setattr(obj, name, value)

    for key in (sys.argv[1:] or MESSAGES):
        with tempfile.TemporaryDirectory() as tmp:
            print(f".. message: {key}\n\n.. code-block:: text\n\n   "
                  f"{_produce(key, Path(tmp), _Patch())}\n")


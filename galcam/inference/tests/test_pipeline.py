"""The pipelined engine of predict_dataset: same results as the serial one, in order."""

import json
import pickle

import pytest

from galcam.inference import pipeline

from .conftest import make_ir, make_radio, write_fits


def _dataset(tmp_path, broken=None):
    """Images of several sizes (one needing several tiles), in an order that mixes them."""
    entries = []
    specs = [((64, 64), [(32, 32)]), ((150, 120), [(30, 40), (100, 110)]),
             ((48, 56), [(28, 24)]), ((64, 64), []), ((80, 64), [(40, 30)])]
    for k, (shape, sources) in enumerate(specs):
        radio = make_radio(shape, sources=tuple(sources) or ((5, 5),), seed=20 + k)
        write_fits(radio, tmp_path / f"r{k}.fits")
        write_fits(make_ir(radio, tuple(sources) or ((5, 5),)), tmp_path / f"ir{k}.fits")
        entries.append({"id": 70 + k, "file_name": f"r{k}.fits", "ir_file_name": f"ir{k}.fits",
                        "width": shape[1], "height": shape[0]})
    if broken is not None:  # truncated in its data
        data = (tmp_path / f"r{broken}.fits").read_bytes()
        (tmp_path / f"r{broken}.fits").write_bytes(data[:len(data) // 2])
    coco = {"images": entries, "categories": [{"id": 1, "name": "FR-I"},
                                              {"id": 2, "name": "FR-II"},
                                              {"id": 3, "name": "FR-X"}, {"id": 4, "name": "R"}]}
    path = tmp_path / "images.json"
    path.write_text(json.dumps(coco))
    return path


@pytest.mark.parametrize("workers, batch_size", [(1, 3), (2, 2)])
def test_pipelined_predictions_equal_the_serial_ones(segmenter, tmp_path, workers, batch_size):
    path = _dataset(tmp_path)
    serial = segmenter.predict_dataset(path, progress=False, batch_size=batch_size)
    piped = segmenter.predict_dataset(path, progress=False, batch_size=batch_size,
                                      workers=workers)
    assert len({p["image_id"] for p in serial}) >= 3  # detections in several images
    # the same detections, in the same (image) order, to the last bit
    assert json.dumps(piped, sort_keys=True) == json.dumps(serial, sort_keys=True)


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_an_error_in_a_worker_is_raised_as_in_the_serial_engine(segmenter, tmp_path):
    path = _dataset(tmp_path, broken=2)
    with pytest.raises(Exception) as serial:
        segmenter.predict_dataset(path, progress=False)
    with pytest.raises(type(serial.value)) as piped:
        segmenter.predict_dataset(path, progress=False, workers=2)
    assert str(piped.value) == str(serial.value) and "r2.fits" in str(piped.value)


def test_workers_option_is_checked(segmenter, tmp_path):
    path = _dataset(tmp_path)
    for bad in (-1, 1.5, "2"):
        with pytest.raises(ValueError, match="workers"):
            segmenter.predict_dataset(path, progress=False, workers=bad)


def test_worker_shell_has_everything_but_the_networks(segmenter):
    shell = pickle.loads(pipeline.worker_shell(segmenter))
    assert shell._networks is None and segmenter.networks is not None
    assert shell.spec == segmenter.spec and shell.classes == segmenter.classes
    assert shell.grouping == segmenter.grouping and str(shell.device) == "cpu"

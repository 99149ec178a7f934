import numpy as np
import pytest

from galcam.models.ir_labels import make_ir_labels


def gaussian(shape, y0, x0, sigma):
    y, x = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((y - y0) ** 2 + (x - x0) ** 2) / (2 * sigma ** 2))


@pytest.fixture
def cams():
    shape = (40, 60)
    return np.stack([gaussian(shape, 20, 15, 6), gaussian(shape, 20, 45, 6)]).astype(np.float32)


def test_thresholds_without_refinement(cams):
    keys = np.array([1, 3])
    labels = make_ir_labels(cams, keys, refine="none")
    assert labels.dtype == np.uint8 and labels.shape == (40, 60)
    a, b = cams
    expected = np.full((40, 60), 255, np.uint8)
    expected[(a <= 0.1) & (b <= 0.1)] = 0
    expected[(a > 0.35) & (a >= b)] = 2
    expected[(b > 0.35) & (b > a)] = 4
    assert np.array_equal(labels, expected)
    assert set(np.unique(labels)) == {0, 2, 4, 255}
    # the blob centres are foreground of their own class, the corners background
    assert labels[20, 15] == 2 and labels[20, 45] == 4 and labels[0, 0] == 0
    # radius where the Gaussian drops to 0.35 and 0.1: uncertain ring in between
    r_fg, r_bg = 6 * np.sqrt(-2 * np.log(0.35)), 6 * np.sqrt(-2 * np.log(0.1))
    assert labels[20, 15 + int(r_fg) + 1] == 255 and labels[20, 15 + int(r_bg) + 1] == 0


def test_no_classes_gives_background(cams):
    labels = make_ir_labels(np.zeros((0, 40, 60)), [], refine="none")
    assert labels.shape == (40, 60) and not labels.any()


def test_island_refinement(cams):
    radio = np.zeros((40, 60), np.float32)
    radio[14:27, 9:22] = 1.0            # island covering part of blob 0
    radio[17:24, 40:44] = 0.5           # island inside blob 1 (28 px)
    radio[5, 5:8] = 2.0                 # 3-px island, far from any blob
    radio[14, 48:50] = 0.2              # 2-px island inside blob 1 fg -> small fragment
    radio[0, 0] = np.nan
    labels = make_ir_labels(cams, [0, 1], radio=radio)
    plain = make_ir_labels(cams, [0, 1], refine="none")
    islands = radio > 0
    assert not labels[~islands].any()                       # outside islands: background
    big = np.zeros_like(islands)
    big[14:27, 9:22] = True
    big[17:24, 40:44] = True
    # inside the large islands, labels are those of the thresholds
    assert np.array_equal(labels[big], plain[big])
    assert labels[20, 15] == 1 and labels[20, 42] == 2
    # the 2-px fragment of class 2 is too small to be trusted
    assert plain[14, 48] == 2 and np.all(labels[14, 48:50] == 255)
    # the 3-px island far from blobs keeps its background label
    assert np.all(labels[5, 5:8] == plain[5, 5:8])
    # a boolean mask gives the same answer; min_size=0 keeps the small fragment
    assert np.array_equal(make_ir_labels(cams, [0, 1], radio=islands), labels)
    assert np.all(make_ir_labels(cams, [0, 1], radio=radio, min_size=0)[14, 48:50] == 2)


def test_errors(cams):
    with pytest.raises(ValueError, match="refine='islands' needs"):
        make_ir_labels(cams, [0, 1])
    with pytest.raises(ValueError, match="radio: expected shape"):
        make_ir_labels(cams, [0, 1], radio=np.ones((5, 5)))
    with pytest.raises(ValueError, match="keys"):
        make_ir_labels(cams, [0])
    with pytest.raises(ValueError, match="duplicated"):
        make_ir_labels(cams, [2, 2], refine="none")
    with pytest.raises(ValueError, match="thresholds"):
        make_ir_labels(cams, [0, 1], refine="none", fg_threshold=0.1, bg_threshold=0.3)
    with pytest.raises(ValueError, match="refine"):
        make_ir_labels(cams, [0, 1], refine="crf")
    with pytest.raises(ValueError, match="ignore_index"):
        make_ir_labels(cams, [0, 1], refine="none", ignore_index=2)
    with pytest.raises(ValueError, match="high_res_cams"):
        make_ir_labels(cams[0], [0], refine="none")

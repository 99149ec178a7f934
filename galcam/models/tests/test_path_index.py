import numpy as np
import pytest
import torch

from galcam.models.path_index import PathIndex, direction_path, search_directions

torch.set_num_threads(1)


def test_direction_counts_reference():
    assert len(search_directions(10)) == 152
    assert len(search_directions(5)) == 34
    # every direction is forward: downward, or rightward on the same row
    d = search_directions(10)
    assert np.all((d[:, 0] > 0) | ((d[:, 0] == 0) & (d[:, 1] > 0)))
    assert len({tuple(v) for v in d.tolist()}) == 152


def test_source_grid_and_path_lengths_reference():
    index = PathIndex(10, (128, 128))
    assert index.n_directions == 152
    assert index.radius_floor == 9
    assert index.source_shape == (119, 110)
    assert index.n_sources == 13090
    assert index.path_lengths.min() == 2
    assert index.path_lengths.max() == 22
    assert np.all(np.diff(index.path_lengths) >= 0)  # sorted by length
    # groups of the offset index cover the directions in order
    assert sum(len(g) for g in index.path_offset_index) == 152
    # destinations stay inside the grid
    assert index.dst_indices.min() >= 0 and index.dst_indices.max() < 128 * 128


def test_paths_hand_computed():
    assert direction_path(0, 3).tolist() == [[0, 3], [0, 2], [0, 1], [0, 0]]
    assert direction_path(1, 1).tolist() == [[1, 1], [0, 1], [1, 0], [0, 0]]
    # (2, 1): distance^2 of (y, x) to the line is (2x - y)^2 / 5 < 1: the whole 3x2 box
    assert direction_path(2, 1).tolist() == [[2, 1], [1, 1], [2, 0], [0, 1], [1, 0], [0, 0]]
    p = direction_path(3, -2)
    assert p[0].tolist() == [3, -2] and p[-1].tolist() == [0, 0]


def test_path_max_and_pair_values_match_loops(rng):
    index = PathIndex(3, (9, 11))
    edge = torch.as_tensor(rng.random((9, 11)))
    pm = index.path_max(edge)
    src, dst = index.pair_values(edge)
    rf = index.radius_floor
    hs, ws = index.source_shape
    for d, ((dy, dx), path) in enumerate(zip(index.directions, index.paths)):
        for s in (0, 7, index.n_sources - 1):
            y, x = divmod(s, ws)
            x += rf
            expected = max(float(edge[y + py, x + px]) for py, px in path)
            assert float(pm[d, s]) == pytest.approx(expected)
            assert float(dst[d, s]) == float(edge[y + dy, x + dx])
            assert float(src[0, s]) == float(edge[y, x])
            assert index.src_indices[s] == y * 11 + x
            assert index.dst_indices[d, s] == (y + dy) * 11 + x + dx


def test_affinity_labels_hand_computed():
    index = PathIndex(2, (3, 4))  # rf = 1: directions (0,1), (1,-1), (1,0), (1,1)
    assert index.source_shape == (2, 2)
    label = np.array([[0, 0, 1, 1],
                      [0, 255, 1, 2],
                      [0, 0, 2, 2]])
    bg, fg, neg = index.affinity_labels(label)
    dirs = [tuple(d) for d in index.directions.tolist()]
    # source (0, 1) (label 0) is flat source index 0
    col = {d: (bool(bg[i, 0]), bool(fg[i, 0]), bool(neg[i, 0])) for i, d in enumerate(dirs)}
    assert col[(0, 1)] == (False, False, True)  # 0 -> 1
    assert col[(1, -1)] == (True, False, False)  # 0 -> 0
    assert col[(1, 0)] == (False, False, False)  # 0 -> 255 ignored
    assert col[(1, 1)] == (False, False, True)  # 0 -> 1
    # source (1, 2) (label 1) is flat source index 3
    col = {d: (bool(bg[i, 3]), bool(fg[i, 3]), bool(neg[i, 3])) for i, d in enumerate(dirs)}
    assert col[(0, 1)] == (False, False, True)  # 1 -> 2
    assert col[(1, -1)] == (False, False, True)  # 1 -> 0
    assert col[(1, 0)] == (False, False, True)  # 1 -> 2
    # torch input gives torch output
    tbg, tfg, tneg = index.affinity_labels(torch.as_tensor(label))
    assert torch.equal(tbg, torch.as_tensor(bg)) and torch.equal(tneg, torch.as_tensor(neg))


def test_path_max_is_differentiable():
    index = PathIndex(3, (8, 8))
    edge = torch.rand(2, 8, 8, requires_grad=True)
    index.affinity(edge).sum().backward()
    assert edge.grad is not None and torch.isfinite(edge.grad).all()


def test_bad_input():
    with pytest.raises(ValueError, match="radius"):
        PathIndex(1, (10, 10))
    with pytest.raises(ValueError, match="too small"):
        PathIndex(10, (8, 30))
    with pytest.raises(TypeError, match="grid_size"):
        PathIndex(5, 12)
    index = PathIndex(3, (8, 8))
    with pytest.raises(ValueError, match="grid shape"):
        index.path_max(torch.zeros(8, 9))
    with pytest.raises(TypeError, match="integer"):
        index.affinity_labels(np.zeros((8, 8)))

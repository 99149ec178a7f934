import pytest
import torch

from galcam.models.random_walk import pair_affinities, propagate, propagate_dense

torch.set_num_threads(1)


@pytest.mark.parametrize("exp_times", [3, 4])
def test_sparse_equals_dense(rng, exp_times):
    edge = torch.as_tensor(rng.random((8, 9)) * 0.9)
    seeds = torch.as_tensor(rng.random((3, 8, 9)))
    sparse = propagate(seeds, edge, radius=5, beta=10, exp_times=exp_times)
    dense = propagate_dense(seeds, edge, radius=5, beta=10, exp_times=exp_times)
    assert sparse.shape == (3, 8, 9)
    assert torch.allclose(sparse, dense, atol=1e-12, rtol=1e-10)
    # float32 within 1e-5 of the float64 dense oracle
    sparse32 = propagate(seeds.float(), edge.float(), exp_times=exp_times)
    assert sparse32.dtype == torch.float32
    assert float((sparse32.double() - dense).abs().max()) < 1e-5


def test_sparse_equals_dense_other_radius(rng):
    edge = torch.as_tensor(rng.random((7, 6)) * 0.5)
    seeds = torch.as_tensor(rng.random((2, 7, 6)))
    a = propagate(seeds, edge, radius=3, beta=4, exp_times=2)
    b = propagate_dense(seeds, edge, radius=3, beta=4, exp_times=2)
    assert torch.allclose(a, b, atol=1e-12)


def test_pair_affinities_hand_computed():
    edge = torch.zeros(4, 5, dtype=torch.float64)
    edge[:, 2] = 0.8  # a vertical boundary in column 2
    src, dst, aff = pair_affinities(edge, radius=2)  # rf = 1: 4 directions
    pairs = {(int(s), int(d)): float(a) for s, d, a in zip(src, dst, aff)}
    # (0,0)-(0,1): no boundary on the path; (0,1)-(0,2): boundary pixel is an endpoint
    assert pairs[(0, 1)] == pytest.approx(1.0)
    assert pairs[(1, 2)] == pytest.approx(0.2)
    assert pairs[(5 * 1 + 3, 5 * 2 + 4)] == pytest.approx(1.0)
    # pairs leaving the grid do not exist: 4 rows x 4 horizontal + 3 x 5 vertical
    # + 2 x 3 x 4 diagonal
    assert len(pairs) == 16 + 15 + 24
    assert all(0 <= s < 20 and 0 <= d < 20 for s, d in pairs)


def test_boundary_blocks_propagation():
    edge = torch.zeros(12, 12)
    edge[:, 6] = 1.0  # impassable wall
    seeds = torch.zeros(1, 12, 12)
    seeds[0, 5, 2] = 1.0
    rw = propagate(seeds, edge, exp_times=5)[0]
    assert float(rw[:, 7:].abs().max()) == 0.0
    assert float(rw[:, :6].min()) > 0
    # every output pixel is a weighted average of its inputs: bounded by the seed's maximum
    assert float(rw.max()) <= 1.0


def test_empty_and_bad_input():
    edge = torch.zeros(6, 6)
    out = propagate(torch.zeros(0, 6, 6), edge)
    assert out.shape == (0, 6, 6)
    with pytest.raises(ValueError, match="seeds"):
        propagate(torch.zeros(2, 5, 6), edge)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        propagate(torch.zeros(1, 6, 6), edge + 2)
    with pytest.raises(ValueError, match="exp_times"):
        propagate(torch.zeros(1, 6, 6), edge, exp_times=1.5)
    with pytest.raises(ValueError, match="tiny"):
        propagate_dense(torch.zeros(1, 70, 70), torch.zeros(70, 70))


def test_full_size_grid_smoke(rng):
    # the reference's 450-px image gives a 113 x 113 grid; exp_times = 8 (256 steps)
    edge = torch.as_tensor(rng.random((113, 113)), dtype=torch.float32) * 0.3
    seeds = torch.zeros(2, 113, 113)
    seeds[0, 30, 30] = 1.0
    seeds[1, 80, 90] = 1.0
    rw = propagate(seeds, edge, radius=5, beta=10, exp_times=8)
    assert rw.shape == (2, 113, 113)
    assert torch.isfinite(rw).all() and float(rw.min()) >= 0
    assert float(rw.max()) <= 1.0
    # the two seeds spread around their own positions
    assert float(rw[0, 25:36, 25:36].sum()) > float(rw[0, 75:86, 85:96].sum())
    assert float(rw[1, 75:86, 85:96].sum()) > float(rw[1, 25:36, 25:36].sum())
    # without boundaries a constant map is a fixed point of the walk
    flat = propagate(torch.full((1, 113, 113), 0.5), torch.zeros(113, 113), exp_times=8)
    assert torch.allclose(flat, torch.full_like(flat, 0.5), atol=1e-5)

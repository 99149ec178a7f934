"""Random-walk propagation of seed maps under boundary-derived affinities.

IRNet (Ahn, Cho & Kwak 2019), as used by Gupta et al. 2023 (section 3.2.2), spreads the
attention of each instance-wise CAM to neighbouring pixels that are not separated from it by a
class boundary. With ``edge`` the boundary probability on the stride-4 grid, the reference code
(section 9.1 step 6 of the specification) does:

1. affinity of every pixel pair within ``radius`` (forward pairs of `PathIndex`, pairs leaving the
   grid dropped): ``a = 1 - max(edge on the straight path)``; symmetric, self-affinity 1;
2. element-wise power ``A**beta``, then column normalisation ``T = A / A.sum(axis=0)``;
3. ``T**(2**exp_times)`` by repeated squaring of the *dense* ``n x n`` matrix (n = h w);
4. ``rw = (seed * (1 - edge)) @ T**(2**exp_times)`` with the seeds as row vectors.

Step 3 costs several minutes and gigabytes per 450-px image. Because ``x T**(2**e)`` is the same
as applying ``x <- x T`` ``2**e`` times, `propagate` does that instead. ``T`` is sparse with a
fixed stencil (column ``p`` has non-zeros only at ``p`` and its ``2 D`` neighbours within the
radius: 69 for radius 5), so each product ``x T`` is computed as a 69-point, spatially varying
stencil on the grid (shifted views and multiply-adds, on any torch device). This is mathematically
identical to the dense power and takes a fraction of a second for a 113 x 113 grid on one CPU
core. `propagate_dense` keeps the reference's dense construction as a test oracle for tiny grids.
"""

import numpy as np
import torch
import torch.nn.functional as F

from .path_index import PathIndex

__all__ = ["pair_affinities", "propagate", "propagate_dense"]


def _validate(seeds, edge, radius, beta, exp_times):
    if not isinstance(seeds, torch.Tensor):
        seeds = torch.as_tensor(np.asarray(seeds))
    if not isinstance(edge, torch.Tensor):
        edge = torch.as_tensor(np.asarray(edge))
    if edge.ndim == 3 and edge.shape[0] == 1:
        edge = edge[0]
    if edge.ndim != 2:
        raise ValueError(f"edge must have shape (h, w), got {tuple(edge.shape)}")
    if seeds.ndim == 2:
        seeds = seeds[None]
    if seeds.ndim != 3 or tuple(seeds.shape[-2:]) != tuple(edge.shape):
        raise ValueError(
            f"seeds must have shape (N, h, w) matching edge {tuple(edge.shape)}, "
            f"got {tuple(seeds.shape)}"
        )
    if not seeds.dtype.is_floating_point:
        seeds = seeds.float()
    edge = edge.to(device=seeds.device, dtype=seeds.dtype)
    if not torch.isfinite(edge).all() or edge.min() < 0 or edge.max() > 1:
        raise ValueError("edge must be finite boundary probabilities in [0, 1]")
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a positive number, got {beta!r}")
    if int(exp_times) != exp_times or exp_times < 0:
        raise ValueError(f"exp_times must be an integer >= 0, got {exp_times!r}")
    if not np.isfinite(radius) or radius <= 1:
        raise ValueError(f"radius must be a number > 1 (grid pixels), got {radius!r}")
    return seeds, edge, int(exp_times)


def pair_affinities(edge, radius=5):
    """Affinities of all forward pixel pairs inside a grid.

    The edge map is padded with boundary probability 1 (5 columns left and right and 5 rows at
    the bottom for radius 5), exactly as in the reference; pairs leaving the original grid are
    then dropped, so the padding only decides which pairs exist.

    Parameters
    ----------
    edge : `torch.Tensor`, shape (h, w)
        Boundary probabilities in [0, 1].
    radius : float, optional
        Pair radius in grid pixels.

    Returns
    -------
    src, dst : `torch.Tensor` of int64, shape (P,)
        Flat (row-major) indices of the two pixels of each pair in the ``h x w`` grid.
    aff : `torch.Tensor`, shape (P,)
        ``1 - max(edge on the path)`` of each pair.
    """
    h, w = edge.shape
    pad = int(np.ceil(radius))
    hp, wp = h + pad, w + 2 * pad
    index = PathIndex(radius=radius, grid_size=(hp, wp))
    edge_p = F.pad(edge[None, None], (pad, pad, 0, pad), mode="constant", value=1.0)[0, 0]
    aff = index.affinity(edge_p)  # (D, S)
    src = torch.as_tensor(np.broadcast_to(index.src_indices, index.dst_indices.shape).copy())
    dst = torch.as_tensor(index.dst_indices)
    sy, sx = src // wp, src % wp - pad
    dy, dx = dst // wp, dst % wp - pad
    keep = (sy < h) & (sx >= 0) & (sx < w) & (dy < h) & (dx >= 0) & (dx < w)
    keep_d = keep.to(aff.device)
    return (
        (sy * w + sx)[keep].to(aff.device),
        (dy * w + dx)[keep].to(aff.device),
        aff[keep_d],
    )


def _forward_affinity_maps(edge, radius):
    """Affinity of each pixel with its forward neighbour in every direction.

    Returns the `PathIndex` directions (D, 2) and maps (D, h, w): ``maps[d, y, x]`` is the
    affinity of ``(y, x)`` with ``(y + dy, x + dx)``, 0 where that neighbour is off the grid.
    """
    h, w = edge.shape
    pad = int(np.ceil(radius))
    index = PathIndex(radius=radius, grid_size=(h + pad, w + 2 * pad))
    rf = index.radius_floor
    edge_p = F.pad(edge[None, None], (pad, pad, 0, pad), mode="constant", value=1.0)[0, 0]
    aff = index.affinity(edge_p).reshape(index.n_directions, *index.source_shape)
    aff = aff[:, :h, pad - rf : pad - rf + w]
    yy = torch.arange(h, device=edge.device)[:, None]
    xx = torch.arange(w, device=edge.device)[None, :]
    dirs = index.directions
    valid = torch.stack(
        [((yy + dy) < h) & ((xx + dx) >= 0) & ((xx + dx) < w) for dy, dx in dirs.tolist()]
    )
    return dirs, aff * valid


def _stencil(edge, radius, beta):
    """Offsets (K, 2) and weights (K, h, w) of one random-walk step ``x <- x T``.

    ``x_new[p] = sum_k weights[k, p] * x[p + offsets[k]]`` with
    ``weights[k, p] = A[p + o_k, p]**beta / sum_q A[q, p]**beta`` (column normalisation).
    """
    h, w = edge.shape
    dirs, fwd = _forward_affinity_maps(edge, radius)
    fwd = fwd**beta
    rf = int(np.abs(dirs).max())
    # the backward weight of pixel q towards q - d is the forward weight of q - d towards q
    padded = F.pad(fwd[None], (rf, rf, rf, rf))[0]
    bwd = torch.stack(
        [padded[k, rf - dy : rf - dy + h, rf - dx : rf - dx + w] for k, (dy, dx) in
         enumerate(dirs.tolist())]
    )
    weights = torch.cat([torch.ones_like(edge)[None], fwd, bwd])
    weights = weights / weights.sum(dim=0, keepdim=True)
    offsets = np.concatenate([np.zeros((1, 2), dtype=np.int64), dirs, -dirs])
    return offsets, weights


@torch.no_grad()
def propagate(seeds, edge, *, radius=5, beta=10, exp_times=8):
    """Random-walk propagation of seed maps (sparse; IRNet's ``propagate_to_edge``).

    Computes ``(seed * (1 - edge)) T**(2**exp_times)`` as ``2**exp_times`` sparse
    matrix-vector products ``x <- x T``, each evaluated as a stencil on the grid, where ``T`` is
    the column-normalised ``A**beta`` (``A``: symmetric pair affinities within ``radius`` and
    ones on the diagonal). The result equals the reference's dense matrix power up to
    floating-point rounding (see `propagate_dense`).

    Parameters
    ----------
    seeds : `torch.Tensor` or `~numpy.ndarray`, shape (N, h, w)
        Seed maps on the stride-4 grid (instance-wise CAMs), N >= 0.
    edge : `torch.Tensor` or `~numpy.ndarray`, shape (h, w)
        Boundary probabilities in [0, 1] on the same grid.
    radius : float, optional
        Pair radius in grid pixels (5 in the reference).
    beta : float, optional
        Affinity exponent (10 in the reference).
    exp_times : int, optional
        The walk has ``2**exp_times`` steps (8, i.e. 256 steps, in the reference).

    Returns
    -------
    `torch.Tensor`, shape (N, h, w)
        Propagated maps, same dtype and device as ``seeds`` (float32 for integer input).
    """
    seeds, edge, exp_times = _validate(seeds, edge, radius, beta, exp_times)
    n_maps, h, w = seeds.shape
    if n_maps == 0:
        return seeds.clone()
    offsets, weights = _stencil(edge, radius, beta)
    r = int(np.abs(offsets).max())
    shifts = [(r + dy, r + dx) for dy, dx in offsets.tolist()]
    # x lives in the interior of a zero-padded buffer; the centre weight (offset 0) starts
    # each new accumulation, the 2 D neighbour terms are added in place
    xp = F.pad(seeds * (1.0 - edge), (r, r, r, r))
    interior = xp[:, r : r + h, r : r + w]
    rest = list(enumerate(shifts))[1:]  # offsets[0] is (0, 0)
    acc = torch.empty_like(interior)
    for _ in range(2**exp_times):
        torch.mul(weights[0], interior, out=acc)
        for k, (oy, ox) in rest:
            acc.addcmul_(weights[k], xp[:, oy : oy + h, ox : ox + w])
        interior.copy_(acc)
    return interior.clone()


@torch.no_grad()
def propagate_dense(seeds, edge, *, radius=5, beta=10, exp_times=8):
    """Reference random walk with a dense transition matrix and repeated squaring.

    Builds the dense ``n x n`` matrix as the reference code does and squares it ``exp_times``
    times. Memory and time grow as ``n**2`` and ``n**3`` (n = h w): for tests on tiny grids only.
    Parameters and result as for `propagate`.
    """
    seeds, edge, exp_times = _validate(seeds, edge, radius, beta, exp_times)
    n_maps, h, w = seeds.shape
    n = h * w
    if n > 4096:
        raise ValueError(f"propagate_dense is a test oracle for tiny grids; got {h}x{w} pixels")
    src, dst, aff = pair_affinities(edge, radius)
    a = torch.eye(n, dtype=seeds.dtype, device=seeds.device)
    a[src, dst] = aff
    a[dst, src] = aff
    a = a**beta
    t = a / a.sum(dim=0, keepdim=True)
    for _ in range(exp_times):
        t = t @ t
    x = (seeds * (1.0 - edge)).reshape(n_maps, n)
    return (x @ t).reshape(n_maps, h, w)

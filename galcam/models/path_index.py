"""Pixel pairs and the straight paths between them (IRNet's ``PathIndex``).

IRNet (Ahn, Cho & Kwak 2019), used by Gupta et al. 2023 (section 3.2.2), relates every pixel of
the stride-4 feature grid to its neighbours within a radius ``r``.  Two pixels have a high
*affinity* when no class boundary lies on the straight segment joining them, so every pixel pair
comes with the list of grid pixels on that segment (its *path*).

Only "forward" pairs are stored (the neighbour lies below, or to the right on the same row); the
backward pair is the same pair seen from the other end.  Sources are restricted to the part of the
grid from which every forward neighbour is inside the grid.  The definitions follow section 8.1 of
the specification of the authors' code:

* directions ``(dy, dx)``: ``(0, dx)`` for ``dx = 1 .. rf`` and ``(dy, dx)`` for ``dy = 1 .. rf``,
  ``dx = -rf .. rf`` with ``dy**2 + dx**2 < r**2``, where ``rf = ceil(r) - 1`` (152 directions for
  ``r = 10``, 34 for ``r = 5``);
* path of a direction: every integer ``(y, x)`` in the bounding box of ``(0, 0)`` and
  ``(dy, dx)`` whose squared perpendicular distance to the line, ``(dy*x - dx*y)**2 /
  (dy**2 + dx**2)``, is below 1 (both end points included), sorted by decreasing ``|y| + |x|``;
* sources: rows ``0 .. H - rf - 1`` and columns ``rf .. W - rf - 1``.

Directions are ordered by path length (ascending) and, within one length, in the order in which
they are generated above; the order is the same everywhere in galcam (labels, affinities,
displacement targets).
"""

import math

import numpy as np
import torch

__all__ = ["PathIndex", "search_directions", "direction_path"]


def search_directions(radius):
    """Forward neighbour directions within ``radius``.

    Parameters
    ----------
    radius : float
        Search radius in grid pixels (> 1).

    Returns
    -------
    directions : `~numpy.ndarray` of int, shape (D, 2)
        The ``(dy, dx)`` offsets in generation order (not sorted by path length).
    """
    radius = float(radius)
    if not np.isfinite(radius) or radius <= 1:
        raise ValueError(f"radius must be a finite number > 1 (grid pixels), got {radius!r}")
    rf = math.ceil(radius) - 1
    dirs = [(0, dx) for dx in range(1, rf + 1)]
    for dy in range(1, rf + 1):
        for dx in range(-rf, rf + 1):
            if dy * dy + dx * dx < radius * radius:
                dirs.append((dy, dx))
    return np.asarray(dirs, dtype=np.int64).reshape(-1, 2)


def direction_path(dy, dx):
    """Grid pixels on the straight path from ``(0, 0)`` to ``(dy, dx)``.

    Parameters
    ----------
    dy, dx : int
        The direction (not both zero).

    Returns
    -------
    path : `~numpy.ndarray` of int, shape (L, 2)
        ``(y, x)`` offsets of the pixels whose perpendicular distance to the segment is below one
        pixel, both end points included, sorted by decreasing ``|y| + |x|`` (element 0 is the
        destination, the last element the source ``(0, 0)``).
    """
    dy, dx = int(dy), int(dx)
    if dy == 0 and dx == 0:
        raise ValueError("a direction must not be (0, 0)")
    norm2 = dy * dy + dx * dx
    ys = np.arange(min(0, dy), max(0, dy) + 1)
    xs = np.arange(min(0, dx), max(0, dx) + 1)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    on_path = (dy * xx - dx * yy) ** 2 < norm2  # squared distance * norm2 < norm2
    pts = np.stack([yy[on_path], xx[on_path]], axis=1)
    key = np.abs(pts).sum(axis=1)
    # stable sort by decreasing |y|+|x|; ties broken by the (y, x) raster order for determinism
    order = np.lexsort((pts[:, 1], pts[:, 0], -key))
    return pts[order].astype(np.int64)


class PathIndex:
    """Forward pixel pairs of a grid, the paths between them and their index arrays.

    Parameters
    ----------
    radius : float, optional
        Neighbourhood radius in grid pixels (10 for IRNet training, 5 for the random walk).
    grid_size : tuple of int, optional
        ``(h, w)`` of the grid (the stride-4 feature grid; 128 x 128 for 512-px training crops).

    Attributes
    ----------
    radius : float
    radius_floor : int
        ``ceil(radius) - 1``, the largest offset along either axis.
    grid_size : tuple of int
    directions : `~numpy.ndarray` of int, shape (D, 2)
        ``(dy, dx)`` of each direction, sorted by path length.
    paths : tuple of `~numpy.ndarray`
        For each direction, its path as an ``(L, 2)`` array of ``(y, x)`` offsets
        (destination first, source last).
    path_lengths : `~numpy.ndarray` of int, shape (D,)
    offsets : `~numpy.ndarray` of int, shape (U, 2)
        All distinct ``(y, x)`` offsets occurring on any path.
    path_offset_index : tuple of `~numpy.ndarray`
        For each distinct path length ``L`` (ascending), an ``(n_L, L)`` array of indices into
        `offsets`, one row per direction of that length (directions of the same length are
        contiguous in `directions`).
    source_shape : tuple of int
        ``(h - rf, w - 2 rf)``, the shape of the source sub-grid.
    src_indices : `~numpy.ndarray` of int, shape (S,)
        Flat (row-major) grid index of every source pixel.
    dst_indices : `~numpy.ndarray` of int, shape (D, S)
        Flat grid index of the destination ``source + direction``.
    """

    def __init__(self, radius=10, grid_size=(128, 128)):
        dirs = search_directions(radius)
        try:
            h, w = (int(v) for v in grid_size)
        except (TypeError, ValueError):
            raise TypeError(f"grid_size must be a pair of ints (h, w), got {grid_size!r}") from None
        self.radius = float(radius)
        self.radius_floor = rf = math.ceil(self.radius) - 1
        if h <= rf or w <= 2 * rf:
            raise ValueError(
                f"grid_size {grid_size!r} is too small for radius {radius}: need h > {rf} and "
                f"w > {2 * rf} grid pixels"
            )
        self.grid_size = (h, w)

        paths = [direction_path(dy, dx) for dy, dx in dirs]
        lengths = np.array([len(p) for p in paths])
        order = np.argsort(lengths, kind="stable")
        self.directions = dirs[order]
        self.paths = tuple(paths[i] for i in order)
        self.path_lengths = lengths[order]
        for arr in (self.directions, self.path_lengths):
            arr.flags.writeable = False

        all_pts = np.concatenate(self.paths, axis=0)
        self.offsets = np.unique(all_pts, axis=0)
        lookup = {tuple(p): i for i, p in enumerate(self.offsets.tolist())}
        groups = []
        for length in np.unique(self.path_lengths):
            sel = np.flatnonzero(self.path_lengths == length)
            groups.append(
                np.array([[lookup[tuple(p)] for p in self.paths[i].tolist()] for i in sel])
            )
        self.path_offset_index = tuple(groups)

        hs, ws = h - rf, w - 2 * rf
        self.source_shape = (hs, ws)
        ys, xs = np.meshgrid(np.arange(hs), np.arange(rf, rf + ws), indexing="ij")
        self.src_indices = (ys * w + xs).ravel()
        self.dst_indices = self.src_indices[None, :] + (
            self.directions[:, 0:1] * w + self.directions[:, 1:2]
        )
        self._torch_cache = {}

    @property
    def n_directions(self):
        """Number of forward directions D."""
        return len(self.directions)

    @property
    def n_sources(self):
        """Number of source pixels S."""
        return self.source_shape[0] * self.source_shape[1]

    def __repr__(self):
        return (
            f"PathIndex(radius={self.radius:g}, grid_size={self.grid_size}, "
            f"n_directions={self.n_directions}, source_shape={self.source_shape})"
        )

    # ------------------------------------------------------------------ torch helpers
    def _check_grid(self, x, name):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if tuple(x.shape[-2:]) != self.grid_size:
            raise ValueError(
                f"{name} has grid shape {tuple(x.shape[-2:])}, but this PathIndex was built for "
                f"{self.grid_size}"
            )

    def _shifted(self, x, offsets):
        """Stack of source-grid crops of x shifted by each (y, x) offset: (..., n, hs, ws)."""
        rf = self.radius_floor
        hs, ws = self.source_shape
        crops = [x[..., oy : oy + hs, rf + ox : rf + ox + ws] for oy, ox in offsets.tolist()]
        return torch.stack(crops, dim=-3)

    def path_max(self, edge):
        """Maximum of a map along the path of every forward pair.

        Parameters
        ----------
        edge : `torch.Tensor`, shape (..., h, w)
            A map on the grid (boundary probabilities in [0, 1]).

        Returns
        -------
        `torch.Tensor`, shape (..., D, S)
            ``max(edge[p] for p on the path of direction d from source s)``. Differentiable.
        """
        self._check_grid(edge, "edge")
        stack = self._shifted(edge, self.offsets)  # (..., U, hs, ws)
        lead = stack.shape[:-3]
        stack = stack.reshape(*lead, len(self.offsets), self.n_sources)
        out = []
        for group in self.path_offset_index:
            idx = self._index_tensor(group, stack.device)  # (n_L, L)
            gathered = stack[..., idx, :]  # (..., n_L, L, S)
            # max(dim) keeps only the arg-max indices for backward (amax would keep `gathered`)
            out.append(gathered.max(dim=-2).values)
        return torch.cat(out, dim=-2)

    def affinity(self, edge):
        """Pair affinities ``1 - max(edge on path)``, shape (..., D, S)."""
        return 1.0 - self.path_max(edge)

    def pair_values(self, x):
        """Values of a map at the sources and at their forward neighbours.

        Parameters
        ----------
        x : `torch.Tensor`, shape (..., h, w)

        Returns
        -------
        src : `torch.Tensor`, shape (..., 1, S)
        dst : `torch.Tensor`, shape (..., D, S)
        """
        self._check_grid(x, "x")
        zero = np.zeros((1, 2), dtype=np.int64)
        src = self._shifted(x, zero)
        dst = self._shifted(x, self.directions)
        lead = src.shape[:-3]
        return (
            src.reshape(*lead, 1, self.n_sources),
            dst.reshape(*lead, self.n_directions, self.n_sources),
        )

    def displacement_target(self, dtype=torch.float32, device=None):
        """Ideal ``D(src) - D(dst)`` within one object: ``(dy, dx)``, shape (2, D, 1)."""
        return torch.tensor(self.directions.T[:, :, None].copy(), dtype=dtype, device=device)

    def _index_tensor(self, arr, device):
        key = (id(arr), str(device))
        if key not in self._torch_cache:
            self._torch_cache[key] = torch.as_tensor(arr, dtype=torch.long, device=device)
        return self._torch_cache[key]

    # ------------------------------------------------------------------ labels
    def affinity_labels(self, label):
        """Pair labels from a label map on the grid (IRNet's training targets).

        Parameters
        ----------
        label : array-like of int, shape (..., h, w)
            Label map on the grid: ``0`` confident background, ``1..254`` a class (class index
            + 1), ``255`` ignored. A `torch.Tensor` or a `numpy.ndarray`.

        Returns
        -------
        bg_pos, fg_pos, neg : same type as ``label``, bool, shape (..., D, S)
            ``bg_pos``: both pixels background; ``fg_pos``: both pixels of the same class;
            ``neg``: both pixels valid with different labels. Pairs touching an ignored pixel
            are in none of the three.
        """
        is_numpy = not isinstance(label, torch.Tensor)
        lab = torch.as_tensor(np.asarray(label) if is_numpy else label)
        if lab.dtype.is_floating_point or lab.dtype == torch.bool:
            raise TypeError(f"label must be an integer array, got dtype {lab.dtype}")
        lab = lab.long()
        src, dst = self.pair_values(lab)
        valid = (src < 255) & (dst < 255)
        same = src == dst
        bg_pos = valid & same & (src == 0)
        fg_pos = valid & same & (src > 0)
        neg = valid & ~same
        if is_numpy:
            return bg_pos.numpy(), fg_pos.numpy(), neg.numpy()
        return bg_pos, fg_pos, neg

"""Seeded data augmentation with torch operations.

The augmentations of the reference training (Gupta et al. 2023, section 3.3; section
3.2 and 8.3 of the specification of the authors' code): resizing, horizontal flips,
rotations by a random integer number of degrees and random crops. Every function takes
an explicit `torch.Generator`, so an image's augmentation depends only on the seed it
was given, not on the order in which worker processes run.

Images are float tensors (C, H, W); label maps (IRNet) are integer tensors (H, W)
transformed with the same geometry (nearest-neighbour resampling).
"""

import math

import torch
import torch.nn.functional as F

__all__ = [
    "make_generator",
    "resize",
    "random_scale",
    "random_hflip",
    "random_rotate",
    "random_crop",
    "rotate",
]

_MASK64 = (1 << 63) - 1


def make_generator(*keys):
    """A CPU `torch.Generator` seeded from a tuple of integers.

    The seed is a hash (splitmix64-style mixing) of the keys, e.g.
    ``(seed, stage, epoch, index)``, so that every image of every epoch gets its own
    reproducible stream.
    """
    state = 0x9E3779B97F4A7C15
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, int):
            raise TypeError(f"generator keys must be integers, got {key!r}")
        state = (state ^ (key & _MASK64)) * 0xBF58476D1CE4E5B9 & _MASK64
        state ^= state >> 31
        state = state * 0x94D049BB133111EB & _MASK64
        state ^= state >> 29
    return torch.Generator().manual_seed(state)


def _uniform(generator, low, high):
    if low == high:
        return float(low)
    return float(low + (high - low) * torch.rand((), generator=generator))


def resize(image, scale, *, label=None):
    """Resize by ``scale``: bicubic for the image, nearest for an optional label map.

    The output size is ``round(H * scale) x round(W * scale)`` (at least 1 pixel);
    shrinking is antialiased, as PIL's bicubic resize of the reference is.

    Parameters
    ----------
    image : `torch.Tensor`
        (C, H, W) float image.
    scale : float
        Positive factor.
    label : `torch.Tensor`, optional
        (H, W) integer label map.

    Returns
    -------
    image : `torch.Tensor`
    label : `torch.Tensor` or None
    """
    if scale == 1.0:
        return image, label
    h, w = image.shape[-2:]
    size = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
    out = F.interpolate(image[None], size=size, mode="bicubic", align_corners=False,
                        antialias=scale < 1)[0]
    if label is not None:
        label = F.interpolate(label[None, None].float(), size=size, mode="nearest-exact")[0, 0]
        label = label.to(torch.uint8)
    return out, label


def random_scale(image, scale_range, generator, *, label=None):
    """Resize by a factor drawn uniformly in ``scale_range`` (see `resize`)."""
    return resize(image, _uniform(generator, *scale_range), label=label)


def random_hflip(image, generator, *, label=None, p=0.5):
    """Mirror left-right with probability ``p`` (image and label together)."""
    if float(torch.rand((), generator=generator)) < p:
        image = image.flip(-1)
        if label is not None:
            label = label.flip(-1)
    return image, label


def rotate(image, angle, *, fill=0.0):
    """Rotate a (C, H, W) image about its centre by ``angle`` degrees (counter-clockwise).

    Bicubic interpolation (`torch.nn.functional.grid_sample`) without changing the
    image size; pixels that come from outside the image take the value ``fill``
    (a number or one value per channel). Like the reference's cubic-spline rotation,
    bicubic interpolation can overshoot slightly near sharp edges.
    """
    if angle % 360 == 0:
        return image
    c, h, w = image.shape
    fill = torch.as_tensor(fill, dtype=image.dtype).reshape(-1, 1, 1)
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    # affine_grid maps output coordinates (normalised to [-1, 1]) to input coordinates;
    # scale by the aspect ratio so that non-square images rotate rigidly.
    mat = torch.tensor([[cos, sin * h / w, 0.0], [-sin * w / h, cos, 0.0]],
                       dtype=image.dtype)[None]
    grid = F.affine_grid(mat, (1, c, h, w), align_corners=False)
    shifted = (image - fill)[None]
    out = F.grid_sample(shifted, grid, mode="bicubic", padding_mode="zeros",
                        align_corners=False)[0]
    return out + fill


def random_rotate(image, generator, *, fill=0.0):
    """Rotate by a random integer angle in [0, 360] degrees (inclusive), as the reference."""
    angle = int(torch.randint(0, 361, (), generator=generator))
    return rotate(image, angle, fill=fill)


def random_crop(image, size, generator, *, label=None, fill=0.0, label_fill=255):
    """Random ``size x size`` window, padding where the image is smaller.

    Follows the reference ``random_crop``: along each axis, if the image is larger than
    ``size`` a random window of the image is taken; if it is smaller, the whole image is
    placed at a random offset in a ``size`` canvas filled with ``fill`` (image) and
    ``label_fill`` (label).

    Parameters
    ----------
    image : `torch.Tensor`
        (C, H, W).
    size : int
        Output side in pixels.
    generator : `torch.Generator`
    label : `torch.Tensor`, optional
        (H, W) label map, cropped with the same window.
    fill : float or sequence of float
        Image padding value (per channel allowed).
    label_fill : int
        Label padding value (255: ignored by IRNet).

    Returns
    -------
    image : `torch.Tensor`
        (C, size, size).
    label : `torch.Tensor` or None
        (size, size).
    """
    c, h, w = image.shape
    fill = torch.as_tensor(fill, dtype=image.dtype).reshape(-1, 1, 1)
    out = fill.expand(c, size, size).clone()
    out_label = None
    if label is not None:
        out_label = torch.full((size, size), label_fill, dtype=label.dtype)

    def offsets(n):
        space = n - size
        r = int(torch.randint(0, abs(space) + 1, (), generator=generator))
        if space > 0:  # window inside the image
            return r, 0, size
        return 0, r, n  # image inside the canvas

    src_y, dst_y, len_y = offsets(h)
    src_x, dst_x, len_x = offsets(w)
    out[:, dst_y:dst_y + len_y, dst_x:dst_x + len_x] = \
        image[:, src_y:src_y + len_y, src_x:src_x + len_x]
    if label is not None:
        out_label[dst_y:dst_y + len_y, dst_x:dst_x + len_x] = \
            label[src_y:src_y + len_y, src_x:src_x + len_x]
    return out, out_label

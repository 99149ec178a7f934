"""Seeded torch augmentations."""

import numpy as np
import pytest
import torch

from galcam.training import augment


def test_generator_is_a_function_of_its_keys():
    a = torch.rand(5, generator=augment.make_generator(1, 2, 3))
    b = torch.rand(5, generator=augment.make_generator(1, 2, 3))
    c = torch.rand(5, generator=augment.make_generator(1, 2, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(TypeError):
        augment.make_generator(1.5)


def test_rotation_by_90_degrees_is_exact_and_fills_outside():
    img = torch.rand(2, 9, 9)
    rot = augment.rotate(img, 90, fill=0.0)
    ref = torch.rot90(img, 1, dims=(1, 2))
    assert torch.allclose(rot, ref, atol=1e-5) or torch.allclose(
        rot, torch.rot90(img, -1, dims=(1, 2)), atol=1e-5)
    # 45 degrees: the corners come from outside the image and take the fill value
    out = augment.rotate(torch.ones(3, 21, 21), 45, fill=torch.tensor([0.1, 0.2, 0.3]))
    assert torch.allclose(out[:, 0, 0], torch.tensor([0.1, 0.2, 0.3]), atol=1e-5)
    assert torch.allclose(out[:, 10, 10], torch.ones(3), atol=1e-5)
    assert torch.equal(augment.rotate(img, 360), img)


def test_random_rotate_uses_integer_degrees():
    g = augment.make_generator(0)
    img = torch.zeros(1, 8, 8)
    assert augment.random_rotate(img, g).shape == img.shape


def test_random_crop_window_and_padding():
    img = torch.arange(100.0).reshape(1, 10, 10)
    lab = torch.arange(100).reshape(10, 10).to(torch.uint8)
    out, olab = augment.random_crop(img, 4, augment.make_generator(3), label=lab)
    assert out.shape == (1, 4, 4) and olab.shape == (4, 4)
    # the same window for image and label
    assert torch.equal(out[0].to(torch.uint8), olab)
    # smaller image: placed whole in a padded canvas
    out, olab = augment.random_crop(img, 14, augment.make_generator(5), label=lab, fill=-1.0)
    assert out.shape == (1, 14, 14)
    assert int((out >= 0).sum()) == 100 and int((olab != 255).sum()) == 100
    assert float(out.min()) == -1.0


def test_resize_and_flip_keep_labels_aligned():
    img = torch.zeros(1, 20, 20)
    img[0, 5:10, 2:6] = 1
    lab = (img[0] > 0).to(torch.uint8)
    big, blab = augment.resize(img, 1.5, label=lab)
    assert big.shape == (1, 30, 30) and blab.shape == (30, 30) and blab.dtype == torch.uint8
    assert set(np.unique(blab.numpy())) == {0, 1}
    overlap = ((big[0] > 0.5) & (blab > 0)).sum() / (blab > 0).sum()
    assert overlap > 0.8
    flipped, flab = augment.random_hflip(img, augment.make_generator(0), label=lab, p=1.0)
    assert torch.equal(flipped[0], img[0].flip(-1)) and torch.equal(flab, lab.flip(-1))
    same, _ = augment.random_scale(img, (1.0, 1.0), augment.make_generator(0))
    assert same is img

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from galcam.models.cam import CAMNet, CAMOutput
from galcam.models.cam_inference import (
    class_views,
    multiscale_cams,
    predict_classes,
    select_classes,
    strided_size,
    strided_up_size,
    view_logits,
)

torch.set_num_threads(1)


class PoolModel(nn.Module):
    """Stub CAM model: the CAM of class c is the 16x16 mean of input channel c."""

    output_stride = 16

    def __init__(self, bias=(0.0, 0.0)):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(bias))
        self.n_classes = len(bias)

    def forward_all(self, x):
        raw = F.avg_pool2d(x[:, : self.n_classes], 16, ceil_mode=True)
        logits = raw.mean(dim=(2, 3)) + self.bias
        return CAMOutput(logits, F.relu(raw), raw)


def blob_image(h=48, w=48):
    img = np.zeros((2, h, w), np.float32)
    img[0, 4:12, 32:44] = 1.0           # class 0: top right
    img[1, 30:40, 2:10] = 2.0           # class 1: bottom left
    return img


def test_grid_sizes():
    assert strided_size((450, 450)) == (113, 113)
    assert strided_up_size((450, 450)) == (464, 464)
    assert strided_size((210, 37)) == (53, 10)


def test_localisation_and_normalisation():
    img = blob_image()
    out = multiscale_cams(PoolModel(), img)
    assert out["strided"].shape == (2, 12, 12) and out["high_res"].shape == (2, 48, 48)
    assert out["strided"].dtype == np.float32
    for maps in (out["strided"], out["high_res"]):
        assert np.allclose(maps.max(axis=(1, 2)), 1, atol=1e-4)
        assert maps.min() >= 0
    y0, x0 = np.unravel_index(out["high_res"][0].argmax(), (48, 48))
    y1, x1 = np.unravel_index(out["high_res"][1].argmax(), (48, 48))
    assert y0 < 16 and x0 >= 24          # top right
    assert y1 >= 24 and x1 < 16          # bottom left
    ys, xs = np.unravel_index(out["strided"][0].argmax(), (12, 12))
    assert ys < 4 and xs >= 6


def test_flip_is_undone():
    # the stub model is exactly mirror-equivariant, so adding the un-flipped mirror CAM
    # doubles the map and the normalised result is unchanged (a missing flip-back would
    # put a copy of each blob on the other side). Sizes multiple of 16 keep the
    # pooling grid symmetric.
    img = blob_image()
    a = multiscale_cams(PoolModel(), img, flip=True, scales=(1.0, 2.0))
    b = multiscale_cams(PoolModel(), img, flip=False, scales=(1.0, 2.0))
    assert np.allclose(a["high_res"], b["high_res"], atol=1e-5)
    assert a["high_res"][0][:, :16].max() < 0.05


def test_single_scale_matches_definition():
    torch.manual_seed(0)
    model = CAMNet("resnet18", n_classes=4).eval()
    img = torch.randn(3, 40, 36)
    out = multiscale_cams(model, img, scales=(1.0,), flip=False)
    with torch.no_grad():
        cam = model.cams(img[None])                         # (1, 4, 3, 3)
    high = F.interpolate(cam, size=(48, 48), mode="bilinear", align_corners=False)[0, :, :40, :36]
    high = high / (high.amax(dim=(1, 2), keepdim=True) + 1e-5)
    low = F.interpolate(cam, size=(10, 9), mode="bilinear", align_corners=False)[0]
    low = low / (low.amax(dim=(1, 2), keepdim=True) + 1e-5)
    assert np.allclose(out["high_res"], high.numpy(), atol=1e-5)
    assert np.allclose(out["strided"], low.numpy(), atol=1e-5)
    with torch.no_grad():
        p = torch.sigmoid(model(img[None])[0]).numpy()
    assert np.allclose(out["probabilities"], p, atol=1e-5)


def test_real_model_multiscale_and_mode_restored():
    torch.manual_seed(0)
    model = CAMNet("resnet18", n_classes=4).train()
    out = multiscale_cams(model, np.random.default_rng(1).normal(size=(3, 33, 47)))
    assert model.training
    assert out["high_res"].shape == (4, 33, 47) and out["strided"].shape == (4, 9, 12)
    assert out["probabilities"].shape == (4,)
    assert np.all((out["probabilities"] > 0) & (out["probabilities"] < 1))


def test_probabilities_and_predict_classes():
    # logits = mean of the 16x16 pooled channel + bias; the image is constant
    img = np.zeros((2, 32, 32), np.float32)
    img[0] = 1.0
    model = PoolModel(bias=(0.0, -3.0))
    out = multiscale_cams(model, img, scales=(1.0, 0.5))
    expected = 1 / (1 + np.exp(-np.array([1.0, -3.0])))
    assert np.allclose(out["probabilities"], expected, atol=1e-5)
    assert np.all(out["high_res"][1] == 0)                   # an empty class stays 0
    keys, prob = predict_classes(model, img, scales=(1.0, 0.5))
    assert keys.tolist() == [0] and np.allclose(prob, expected, atol=1e-5)
    keys, _ = predict_classes(model, img, threshold=0.9)
    assert keys.tolist() == []


def test_select_classes():
    p = np.array([0.2, 0.7, 0.55, 0.1])
    assert select_classes(p).tolist() == [1, 2]
    assert select_classes(p, threshold=0.6).tolist() == [1]
    assert select_classes(p, threshold=0.99, min_classes=1).tolist() == [1]
    assert select_classes(p, threshold=0.99, min_classes=2).tolist() == [1, 2]
    with pytest.raises(ValueError, match="threshold"):
        select_classes(p, threshold=1.5)
    with pytest.raises(ValueError, match="min_classes"):
        select_classes(p, min_classes=5)


def test_bad_input():
    model = PoolModel()
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        multiscale_cams(model, np.zeros((32, 32)))
    bad = blob_image()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        multiscale_cams(model, bad)
    with pytest.raises(ValueError, match="scales"):
        multiscale_cams(model, blob_image(), scales=(1.0, -1))
    with pytest.raises(TypeError, match="CAMNet"):
        multiscale_cams(nn.Linear(2, 2), blob_image())
    with pytest.raises(ValueError, match="threshold"):
        predict_classes(model, blob_image(), threshold=2)


class CornerModel(nn.Module):
    """Stub classifier that is not rotation invariant: logits from the top-left quadrant."""

    output_stride = 16

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[1.0, -0.5], [0.3, 2.0]]))
        self.n_classes = 2

    def forward_all(self, x):
        h, w = x.shape[-2:]
        q = x[:, :2, : h // 2, : w // 2].mean(dim=(2, 3))
        logits = q @ self.w
        return CAMOutput(logits, F.relu(x[:, :2]), x[:, :2])


def test_class_views_are_the_symmetries_of_the_grid():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    assert len(class_views(x, "none")) == 1 and torch.equal(class_views(x, "none")[0], x)
    flip = class_views(x, "flip")
    assert len(flip) == 2 and torch.equal(flip[1], x.flip(-1))
    d8 = class_views(x, "dihedral")
    assert len(d8) == 8
    assert all(torch.equal(a, b) for a, b in zip(d8[:2], flip, strict=True))
    assert sorted(tuple(v.shape) for v in d8) == [(2, 3, 4, 5)] * 4 + [(2, 3, 5, 4)] * 4
    # eight different images: every symmetry of an image without symmetry
    flat = {tuple(v.flatten().tolist()) for v in d8}
    assert len(flat) == 8
    # closed under rotation by 90 degrees: rotating every view permutes the set
    rotated = {tuple(torch.rot90(v, 1, dims=(-2, -1)).flatten().tolist()) for v in d8}
    assert rotated == flat
    from galcam.models.cam_inference import _N_VIEWS

    assert {v: len(class_views(x, v)) for v in ("none", "flip", "dihedral")} == _N_VIEWS
    with pytest.raises(ValueError, match="views"):
        class_views(x, "all")


def test_view_logits_match_single_passes_and_skip():
    model = CornerModel()
    torch.manual_seed(0)
    x = torch.rand(3, 2, 16, 24)
    out = view_logits(model, x, views="dihedral")
    assert out.shape == (8, 3, 2)
    for k, v in enumerate(class_views(x, "dihedral")):
        torch.testing.assert_close(out[k], model.forward_all(v).logits)
    torch.testing.assert_close(view_logits(model, x, views="dihedral", start=2), out[2:])
    assert view_logits(model, x, views="flip", start=2).shape == (0, 3, 2)


def test_dihedral_probabilities_are_rotation_invariant():
    model = CornerModel()
    rng = np.random.default_rng(1)
    img = rng.random((2, 32, 32)).astype(np.float32)
    rot = np.ascontiguousarray(np.rot90(img, 1, axes=(1, 2)))
    _, p = predict_classes(model, img, scales=(1.0,), views="dihedral")
    _, p_rot = predict_classes(model, rot, scales=(1.0,), views="dihedral")
    np.testing.assert_allclose(p, p_rot, atol=1e-6)
    # the mirrored views alone do not make it invariant to a rotation
    _, f = predict_classes(model, img, scales=(1.0,), views="flip")
    _, f_rot = predict_classes(model, rot, scales=(1.0,), views="flip")
    assert np.abs(f - f_rot).max() > 1e-3
    # 'none' is the single pass
    _, n = predict_classes(model, img, scales=(1.0,), views="none")
    expected = torch.sigmoid(model.forward_all(torch.from_numpy(img)[None]).logits)[0]
    np.testing.assert_allclose(n, expected.detach().numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="views"):
        predict_classes(model, img, views=True)


def test_mode_restored_by_predict_classes_even_on_error():
    torch.manual_seed(0)
    model = CAMNet("resnet18", n_classes=4).train()
    keys, prob = predict_classes(model, np.random.default_rng(2).normal(size=(3, 40, 40)))
    assert model.training and prob.shape == (4,)

    class Failing(CAMNet):
        def forward_all(self, x):
            assert not self.training and not torch.is_grad_enabled()
            raise RuntimeError("boom")

    bad = Failing("resnet18", n_classes=4).train()
    for call in (predict_classes, multiscale_cams):
        with pytest.raises(RuntimeError, match="boom"):
            call(bad, np.zeros((3, 40, 40)) + 0.5)
        assert bad.training and torch.is_grad_enabled()

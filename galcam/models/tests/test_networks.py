"""ModelNetworks: one batched pass of both networks, as the single-image functions give."""

import copy

import numpy as np
import pytest
import torch

from galcam.models import (
    CAMNet,
    IRNet,
    ModelNetworks,
    ModelSpec,
    NetworkOutputs,
    edge_and_displacement,
    multiscale_cams,
    predict_classes,
    shares_backbone,
)
from galcam.models.backbone import Backbone


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return CAMNet("resnet18", 4).eval(), IRNet(Backbone("resnet18")).eval()


def _spec(**kw):
    return ModelSpec(classes=("A", "B", "C", "D"), image_size=(40, 52), cam_scales=(1.0, 0.5),
                     **kw)


@pytest.mark.parametrize("shared", [False, True])
def test_batched_networks_match_single_image_functions(nets, shared):
    cam, irnet = nets
    if shared:  # IRNet on the CAM network's backbone, as the fast preset trains it
        irnet = copy.deepcopy(irnet)
        irnet.backbone.load_state_dict(cam.backbone.state_dict())
    assert shares_backbone(cam, irnet) is shared
    networks = ModelNetworks(cam, irnet, _spec(), device="cpu")
    assert networks.shared is shared
    torch.manual_seed(3)
    channels = torch.rand(2, 3, 40, 52).numpy()
    out = networks(channels)
    assert isinstance(out, NetworkOutputs) and len(out) == 2
    x = torch.from_numpy(networks.normalize(channels))
    for k in range(2):
        ref = multiscale_cams(cam, x[k], scales=(1.0, 0.5))
        np.testing.assert_allclose(out.cams[k], ref["strided"], atol=2e-5)
        np.testing.assert_allclose(out.probabilities[k], ref["probabilities"], atol=1e-6)
        edge, dp = edge_and_displacement(irnet, x[k])
        np.testing.assert_allclose(out.edges[k], edge.numpy(), atol=1e-5)
        np.testing.assert_allclose(out.displacements[k], dp.numpy(), atol=1e-4)


def test_batched_class_probabilities_at_their_own_scales_and_views(nets):
    cam, irnet = nets
    torch.manual_seed(4)
    channels = torch.rand(2, 3, 40, 40).numpy()
    base = ModelNetworks(cam, irnet, _spec(), device="cpu")(channels).cams
    for class_scales, views in [((0.5,), "dihedral"), ((1.0, 0.75), "flip"), ((0.5,), "none")]:
        networks = ModelNetworks(cam, irnet, _spec(class_scales=class_scales, class_views=views),
                                 device="cpu")
        out = networks(channels)
        x = torch.from_numpy(networks.normalize(channels))
        for k in range(2):
            _, ref = predict_classes(cam, x[k], scales=class_scales, views=views)
            np.testing.assert_allclose(out.probabilities[k], ref, atol=1e-6)
        # the CAMs do not depend on how the classes are asked
        np.testing.assert_allclose(out.cams, base, atol=1e-6)


def test_networks_check_their_inputs(nets):
    cam, irnet = nets
    with pytest.raises(ValueError, match="2 names for a network with 4 outputs"):
        ModelNetworks(cam, irnet, ModelSpec(classes=("A", "B")), device="cpu")
    with pytest.raises(TypeError, match="cam_net: expected a galcam.models.CAMNet"):
        ModelNetworks(irnet, irnet, _spec(), device="cpu")
    networks = ModelNetworks(cam, irnet, _spec(), device="cpu")
    with pytest.raises(ValueError, match=r"channels: expected an array \(B, 3, H, W\)"):
        networks(np.zeros((3, 40, 40), np.float32))


def _randomise_batchnorm(module, seed):
    """Running statistics and affine parameters far from the identity (a trained look)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.2)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.3)
    return module


def test_fold_batchnorm_keeps_every_stage_output():
    torch.manual_seed(1)
    backbone = _randomise_batchnorm(Backbone("resnet18"), 2).eval()
    x = torch.rand(2, 3, 48, 40)
    with torch.no_grad():
        before = backbone.forward_stages(x)
        backbone.fold_batchnorm()
        after = backbone.forward_stages(x)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
        assert backbone.fold_batchnorm() is backbone  # folding again changes nothing
        again = backbone.forward_stages(x)
    for a, b, c in zip(before, after, again, strict=True):
        scale = float(a.abs().max())
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=2e-5 * scale)
        np.testing.assert_array_equal(c.numpy(), b.numpy())


@pytest.mark.parametrize("shared", [False, True])
def test_optimized_networks_give_the_same_outputs(shared):
    torch.manual_seed(5)
    cam = _randomise_batchnorm(CAMNet("resnet18", 4), 6).eval()
    irnet = IRNet(Backbone("resnet18"))
    if shared:
        irnet.backbone.load_state_dict(cam.backbone.state_dict())
    else:
        _randomise_batchnorm(irnet.backbone, 7)
    irnet.eval()
    plain = ModelNetworks(copy.deepcopy(cam), copy.deepcopy(irnet), _spec(), device="cpu")
    fast = ModelNetworks(cam, irnet, _spec(), device="cpu", optimize=True)
    assert fast.optimized and not plain.optimized
    assert (fast.irnet.backbone is fast.cam_net.backbone) is shared  # one copy when equal
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.cam_net.modules())
    channels = torch.rand(3, 3, 40, 52).numpy()
    a, b = plain(channels), fast(channels)
    for name in ("cams", "probabilities", "edges", "displacements"):
        ref, got = getattr(a, name), getattr(b, name)
        np.testing.assert_allclose(got, ref, atol=1e-4 * max(1.0, float(np.abs(ref).max())),
                                   err_msg=name)


def test_bfloat16_passes_are_close_and_returned_in_float32(nets):
    cam, irnet = nets
    plain = ModelNetworks(cam, irnet, _spec(), device="cpu")
    low = ModelNetworks(cam, irnet, _spec(), device="cpu", precision="bfloat16")
    torch.manual_seed(8)
    channels = torch.rand(2, 3, 40, 52).numpy()
    a, b = plain(channels), low(channels)
    for name in ("cams", "probabilities", "edges", "displacements"):
        ref, got = getattr(a, name), getattr(b, name)
        assert got.dtype == np.float32, name
        assert not np.array_equal(got, ref) or name == "probabilities"  # it did run in bf16
        np.testing.assert_allclose(got, ref, atol=0.05 * max(1.0, float(np.abs(ref).max())),
                                   err_msg=name)
    # the CAMs still reach 1 (normalised in float32)
    assert np.allclose(b.cams.max(axis=(2, 3)), a.cams.max(axis=(2, 3)), atol=1e-3)


def test_precision_is_checked(nets):
    cam, irnet = nets
    with pytest.raises(ValueError, match="precision: expected one of"):
        ModelNetworks(cam, irnet, _spec(), device="cpu", precision="half")
    with pytest.raises(ValueError, match="needs a CUDA device.*use 'bfloat16'"):
        ModelNetworks(cam, irnet, _spec(), device="cpu", precision="float16")


def test_a_model_unstable_in_bfloat16_is_refused(nets):
    cam, irnet = nets
    stable = ModelNetworks(cam, irnet, _spec(), device="cpu", precision="bfloat16")
    assert set(stable.precision_check) == {"probabilities", "cams"}
    assert max(stable.precision_check.values()) < 0.1
    # batch norms with a tiny variance after a large mean amplify the bfloat16 rounding of
    # the convolution (what the bundled FIRST model has, in milder form): the same network
    # in float32, but its first convolution adds 300 that its batch norm takes away again,
    # and that batch norm divides by a tiny deviation (its scale shrunk to match);
    # bfloat16 keeps 300 to within about 1, which the division amplifies
    fragile = copy.deepcopy(cam)
    conv, bn = fragile.backbone.conv1, fragile.backbone.bn1
    with torch.no_grad():
        conv.bias = torch.nn.Parameter(torch.full((conv.out_channels,), 300.0))
        bn.running_mean += 300.0
        shrink = torch.sqrt((bn.running_var + bn.eps) / (1e-4 + bn.eps))
        bn.running_var.fill_(1e-4)
        bn.weight /= shrink
    with pytest.raises(ValueError, match=r"change too much in bfloat16.*use precision='float32'"):
        ModelNetworks(fragile, irnet, _spec(), device="cpu", precision="bfloat16")
    # float32 is never checked
    assert ModelNetworks(fragile, irnet, _spec(), device="cpu").precision_check is None

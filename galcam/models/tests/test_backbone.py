import hashlib

import pytest
import torch
from torchvision import models as tv_models

from galcam.models import (
    Backbone,
    FixedBatchNorm2d,
    WeightsError,
    imagenet_weights_path,
    load_imagenet_weights,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def net18():
    torch.manual_seed(0)
    return Backbone("resnet18")


def test_stage_shapes_os16(net18):
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        stages = net18.forward_stages(x)
    assert net18.stage_channels == (64, 64, 128, 256, 512)
    assert net18.strides == (4, 4, 8, 16, 16)
    expected = [(16, 12), (16, 12), (8, 6), (4, 3), (4, 3)]
    for out, ch, hw in zip(stages, net18.stage_channels, expected):
        assert out.shape == (2, ch, *hw)
    with torch.no_grad():
        assert torch.equal(net18(x), stages[-1])


def test_os32_and_resnet50_channels():
    net = Backbone("resnet18", output_stride=32)
    with torch.no_grad():
        out = net(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 512, 2, 2)
    assert Backbone("resnet50").stage_channels == (64, 256, 512, 1024, 2048)


def test_resnet50_os16_no_dilation():
    net = Backbone("resnet50")
    block = net.layer4[0]
    assert block.conv2.stride == (1, 1) and block.downsample[0].stride == (1, 1)
    assert all(m.dilation == (1, 1) for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    # 210 px crop -> 14 x 14 as in the reference (spec 15)
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 210, 210)).shape == (1, 2048, 14, 14)


def test_frozen_batchnorm_uses_running_stats(net18):
    net18.train()
    bns = [m for m in net18.modules() if isinstance(m, FixedBatchNorm2d)]
    assert bns and all(m.fixed for m in bns)
    before = [m.running_mean.clone() for m in bns]
    x = torch.randn(2, 3, 32, 32) * 5 + 3
    out_train = net18(x)
    net18.eval()
    with torch.no_grad():
        out_eval = net18(x)
    assert torch.allclose(out_train, out_eval, atol=1e-5)
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, bns))
    # stem frozen, affine BN parameters elsewhere trainable
    assert not net18.conv1.weight.requires_grad and not net18.bn1.weight.requires_grad
    assert net18.layer1[0].bn1.weight.requires_grad
    out_train.sum().backward()
    assert net18.layer1[0].bn1.weight.grad is not None
    assert net18.conv1.weight.grad is None
    net18.zero_grad(set_to_none=True)


def test_normal_batchnorm_and_freeze():
    net = Backbone("resnet18", frozen_batchnorm=False).train()
    assert net.conv1.weight.requires_grad
    before = net.bn1.running_mean.clone()
    net(torch.randn(2, 3, 32, 32) + 1)
    assert not torch.equal(before, net.bn1.running_mean)   # batch statistics updated
    assert net.freeze() is net
    assert not any(p.requires_grad for p in net.parameters())
    before = net.bn1.running_mean.clone()
    net.train()(torch.randn(2, 3, 32, 32) + 1)
    assert torch.equal(before, net.bn1.running_mean)


def test_in_channels_and_bad_arguments():
    net = Backbone("resnet18", in_channels=1)
    with torch.no_grad():
        assert net(torch.randn(1, 1, 32, 32)).shape == (1, 512, 2, 2)
    with pytest.raises(ValueError, match=r"expected shape \(B, 1, H, W\)"):
        net(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="arch"):
        Backbone("vgg16")
    with pytest.raises(ValueError, match="output_stride"):
        Backbone("resnet18", output_stride=8)
    with pytest.raises(ValueError, match="in_channels"):
        Backbone("resnet18", in_channels=0)


def test_load_weights_from_file(tmp_path):
    torch.manual_seed(1)
    ref = tv_models.resnet18(weights=None)
    with torch.no_grad():
        for m in ref.modules():   # make BN statistics non-trivial too
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    net = Backbone("resnet18", weights=path)
    own = net.state_dict()
    for key, value in ref.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(own[key], value), key
    # same weights and OS32, eval mode: identical features to torchvision's net
    net32 = Backbone("resnet18", weights=str(path), output_stride=32).eval()
    ref.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        tv_feat = ref.layer4(ref.layer3(ref.layer2(ref.layer1(
            ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))))))
        assert torch.allclose(net32(x), tv_feat, atol=1e-5)
    # adapted to 2 input channels: a constant image gives the same response
    net2 = Backbone("resnet18", weights=path, in_channels=2).eval()
    with torch.no_grad():
        a = net2.conv1(torch.ones(1, 2, 16, 16))
        b = ref.conv1(torch.ones(1, 3, 16, 16))
    assert torch.allclose(a, b, atol=1e-5)


def test_load_weights_errors(tmp_path, monkeypatch):
    net = Backbone("resnet18")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_imagenet_weights(net, tmp_path / "nope.pth")
    path = tmp_path / "r34.pth"
    torch.save(tv_models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(WeightsError, match="does not fit a resnet18"):
        load_imagenet_weights(net, path)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="cannot read"):
        load_imagenet_weights(net, bad)
    with pytest.raises(TypeError, match="source"):
        load_imagenet_weights(net, 3)


def test_torchvision_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path, url = imagenet_weights_path("resnet18")
    assert path == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert url.endswith("resnet18-f37072fd.pth")
    with pytest.raises(FileNotFoundError, match="never downloads"):
        Backbone("resnet18", weights="torchvision")
    # a file with the right name but the wrong content fails the checksum
    path.parent.mkdir(parents=True)
    torch.save(tv_models.resnet18(weights=None).state_dict(), path)
    assert not hashlib.sha256(path.read_bytes()).hexdigest().startswith("f37072fd")
    with pytest.raises(WeightsError, match="SHA-256"):
        load_imagenet_weights(Backbone("resnet18"), "torchvision")
    # the reference's older file name is found too
    path.rename(path.with_name("resnet18-5c106cde.pth"))
    with pytest.raises(WeightsError, match="resnet18-5c106cde.pth"):
        load_imagenet_weights(Backbone("resnet18"), "torchvision")

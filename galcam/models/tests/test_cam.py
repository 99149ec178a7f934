import math

import numpy as np
import pytest
import torch

from galcam.models.cam import (
    RECAM_LOSS_WEIGHT,
    CAMNet,
    ReCAMHead,
    cam_loss,
    normalize_cams,
    recam_loss,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CAMNet("resnet18", n_classes=4)


def test_shapes_and_consistency(model):
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        logits = model(x)
        cams = model.cams(x)
        out = model.forward_all(x)
    assert logits.shape == (2, 4)
    assert cams.shape == (2, 4, 4, 3)               # stride 16
    assert out.features.shape == (2, 512, 4, 3)
    assert torch.allclose(out.logits, logits, atol=1e-5)
    assert torch.allclose(out.cams, cams, atol=1e-6)
    assert (cams >= 0).all()
    # CAM definition: relu(sum_d w_cd F_d)
    w = model.classifier.weight[:, :, 0, 0]
    manual = torch.relu(torch.einsum("cd,bdhw->bchw", w, out.features))
    assert torch.allclose(manual, cams, atol=1e-5)
    assert model.classifier.bias is None


def test_cam_loss_known_value():
    logits = torch.tensor([[0.0, 2.0, -1.0, 1.0], [0.5, -0.5, 3.0, 0.0]])
    labels = torch.tensor([[1, 0, 0, 1], [0, 0, 1, 0]])

    def sig(v):
        return 1 / (1 + math.exp(-v))

    expected = 0.0
    for row, lab in zip(logits.tolist(), labels.tolist()):
        terms = [-(math.log(sig(v)) if y else math.log(1 - sig(v))) for v, y in zip(row, lab)]
        expected += sum(terms) / 4
    expected /= 2
    assert cam_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="labels"):
        cam_loss(logits, labels[:, :3])


def test_cam_loss_with_positive_weights():
    logits = torch.tensor([[0.0, 2.0, -1.0, 1.0], [0.5, -0.5, 3.0, 0.0]])
    labels = torch.tensor([[1, 0, 0, 1], [0, 0, 1, 0]])
    w = [3.0, 1.0, 0.5, 2.0]

    def sig(v):
        return 1 / (1 + math.exp(-v))

    expected = 0.0
    for row, lab in zip(logits.tolist(), labels.tolist()):
        expected += sum(-(wc * math.log(sig(v)) if y else math.log(1 - sig(v)))
                        for v, y, wc in zip(row, lab, w)) / 4
    expected /= 2
    assert cam_loss(logits, labels, torch.tensor(w)).item() == pytest.approx(expected, rel=1e-6)
    # unit weights are the paper's loss
    assert cam_loss(logits, labels, torch.ones(4)).item() == pytest.approx(
        cam_loss(logits, labels).item(), rel=1e-6)
    with pytest.raises(ValueError, match="pos_weight"):
        cam_loss(logits, labels, torch.ones(3))


def _recam_reference(features, cams, labels, weight):
    """Plain-loop computation of the ReCAM loss, written independently."""
    b, d, h, w = features.shape
    total = 0.0
    for i in range(b):
        pos = [c for c in range(labels.shape[1]) if labels[i, c] > 0]
        if not pos:
            continue
        losses = []
        for c in pos:
            m = cams[i, c] / (cams[i, c].max() + 1e-5)
            vec = np.array([sum(m[y, x] * features[i, k, y, x] for y in range(h) for x in range(w))
                            / (h * w) for k in range(d)])
            z = weight @ vec
            losses.append(-(z[c] - math.log(np.exp(z).sum())))
        total += sum(losses) / len(losses)
    return total / b


def test_recam_loss_known_value():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(3, 2, 2, 3))
    cams = np.abs(rng.normal(size=(3, 4, 2, 3)))
    labels = np.array([[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]])
    head = ReCAMHead(4, 2)
    weight = rng.normal(size=(4, 2))
    with torch.no_grad():
        head.classifier.weight.copy_(torch.tensor(weight).view(4, 2, 1, 1))
    loss, acc = recam_loss(torch.tensor(features, dtype=torch.float32),
                           torch.tensor(cams, dtype=torch.float32),
                           torch.tensor(labels), head, return_accuracy=True)
    assert loss.item() == pytest.approx(_recam_reference(features, cams, labels, weight), rel=1e-5)
    assert 0.0 <= acc <= 1.0


def test_recam_loss_no_positives():
    head = ReCAMHead(4, 8)
    feats = torch.randn(2, 8, 3, 3, requires_grad=True)
    cams = torch.rand(2, 4, 3, 3)
    loss, acc = recam_loss(feats, cams, torch.zeros(2, 4), head, return_accuracy=True)
    assert loss.item() == 0.0 and math.isnan(acc)
    loss.backward()                                  # attached to the graph, no error
    assert torch.equal(feats.grad, torch.zeros_like(feats))


def test_normalize_cams():
    cams = torch.tensor([[[[0.0, 2.0], [1.0, 0.5]]]])
    out = normalize_cams(cams)
    assert out.max().item() == pytest.approx(2 / (2 + 1e-5))
    assert torch.allclose(out, cams / (2 + 1e-5))


def test_gradients_flow(model):
    model.train()
    model.zero_grad(set_to_none=True)
    head = ReCAMHead(4, model.feature_dim)
    x = torch.randn(2, 3, 32, 32)
    labels = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1, 1]])
    out = model.forward_all(x)
    loss = cam_loss(out.logits, labels) + RECAM_LOSS_WEIGHT * recam_loss(
        out.features, out.cams, labels, head)
    loss.backward()
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.backbone.layer4[0].conv1.weight.grad.abs().sum() > 0
    assert head.classifier.weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad is None          # frozen stem
    model.zero_grad(set_to_none=True)
    model.eval()


def test_param_groups(model):
    groups = model.param_groups(0.01)
    assert [g["lr"] for g in groups] == [0.01, pytest.approx(0.1)]
    assert groups[1]["params"] == [model.classifier.weight]
    ids = {id(p) for g in groups for p in g["params"]}
    assert id(model.backbone.conv1.weight) not in ids
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert ids == trainable
    recam = model.param_groups(1e-5, classifier_lr=1e-5)
    assert [g["lr"] for g in recam] == [1e-5, 1e-5]
    opt = torch.optim.SGD(groups, lr=0.01, momentum=1e-4)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="lr"):
        model.param_groups(0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_classes"):
        CAMNet("resnet18", n_classes=0)
    with pytest.raises(ValueError, match="feature_dim"):
        ReCAMHead(4, 0)
    with pytest.raises(ValueError, match="class_features"):
        ReCAMHead(4, 8)(torch.zeros(2, 7))

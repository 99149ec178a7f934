import numpy as np
import pytest
import torch

from galcam.models.backbone import Backbone
from galcam.models.irnet import (
    AffinityDisplacementLoss,
    IRNet,
    MeanShift,
    calibrate_mean_shift,
    edge_and_displacement,
    reduce_labels,
)
from galcam.models.path_index import PathIndex

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return IRNet(Backbone("resnet18"))


@pytest.mark.parametrize("size", [64, 128, 61])
def test_output_shapes(net, size):
    with torch.no_grad():
        out = net(torch.randn(2, 3, size, size))
    h4 = (size - 1) // 4 + 1
    assert out.edge.shape == (2, 1, h4, h4)
    assert out.displacement.shape == (2, 2, h4, h4)


def test_backbone_frozen_and_in_eval(net):
    assert not any(p.requires_grad for p in net.backbone.parameters())
    net.train()
    assert net.training and not net.backbone.training
    n_edge = sum(p.numel() for p in net.edge_parameters())
    n_dp = sum(p.numel() for p in net.displacement_parameters())
    n_train = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert n_edge + n_dp == n_train
    net.eval()


def test_resnet50_widths_follow_reference():
    net = IRNet(Backbone("resnet50"))
    assert net.dp7[0][0].in_channels == 448
    assert net.dp6[0].in_channels == 768
    assert net.edge_out.in_channels == 160


def test_mean_shift():
    ms = MeanShift(2)
    ms.running_mean.copy_(torch.tensor([1.0, -2.0]))
    x = torch.zeros(1, 2, 3, 3)
    assert torch.equal(ms.train()(x), x)
    assert torch.equal(ms.eval()(x)[0, :, 0, 0], torch.tensor([-1.0, 2.0]))


def test_reduce_labels_picks_4i_plus_2():
    lab = np.arange(16 * 12).reshape(16, 12)
    red = reduce_labels(lab)
    assert red.shape == (4, 3)
    assert red[1, 2] == lab[6, 10]
    assert reduce_labels(np.zeros((13, 9), int)).shape == (4, 3)  # last index clipped
    t = reduce_labels(torch.as_tensor(lab)[None])
    assert isinstance(t, torch.Tensor) and t.shape == (1, 4, 3)


def test_loss_hand_computed_on_tiny_grid():
    # grid 3 x 4, radius 2 (directions (0,1), (1,-1), (1,0), (1,1); 2 x 2 sources)
    loss_fn = AffinityDisplacementLoss(radius=2)
    labels = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]]])
    index = PathIndex(2, (3, 4))
    bg, fg, neg = index.affinity_labels(labels)
    # by hand: sources (0,1) 0, (0,2) 1, (1,1) 0, (1,2) 1, each with 4 neighbours
    assert int(bg.sum()) == 4 and int(fg.sum()) == 6 and int(neg.sum()) == 6
    # zero logits: boundary 0.5 everywhere, affinity 0.5 for every pair
    edge = torch.zeros(1, 1, 3, 4)
    # displacement: foreground pixels point to (1, 2.5), background ones are 0
    yy, xx = torch.meshgrid(torch.arange(3.0), torch.arange(4.0), indexing="ij")
    dp = torch.stack([1 - yy, 2.5 - xx])[None] * (labels == 1)
    terms = loss_fn(edge, dp, labels)
    log_half = -np.log(0.5 + 1e-5)
    assert float(terms.pos_aff) == pytest.approx(log_half, rel=1e-4)
    assert float(terms.neg_aff) == pytest.approx(-np.log(1 + 1e-5 - 0.5), rel=1e-4)
    assert float(terms.dp_fg) == pytest.approx(0.0, abs=1e-6)  # ideal displacements
    assert float(terms.dp_bg) == pytest.approx(0.0, abs=1e-6)
    expected = (float(terms.pos_aff) + float(terms.neg_aff)) / 2
    assert float(terms.total) == pytest.approx(expected, rel=1e-6)
    # a field with the wrong slope is penalised: compare with an explicit computation
    terms2 = loss_fn(edge, dp * 2, labels)
    src, dst = index.pair_values(dp[0] * 2)
    target = index.displacement_target()
    manual = ((src - dst - target).abs() * fg).sum() / (2 * fg.sum() + 1e-5)
    assert float(terms2.dp_fg) == pytest.approx(float(manual), rel=1e-6)
    assert float(terms2.dp_fg) > 0.1


def test_losses_finite_and_decreasing(net):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 64)
    full = torch.zeros(2, 64, 64, dtype=torch.long)
    full[:, 8:40, 6:30] = 1
    full[:, 44:60, 36:60] = 2
    full[:, 40:44] = 255
    labels = reduce_labels(full)
    loss_fn = AffinityDisplacementLoss(radius=5)
    opt = torch.optim.Adam(
        [{"params": net.edge_parameters(), "lr": 1e-2},
         {"params": net.displacement_parameters(), "lr": 1e-2}])
    net.train()
    history = []
    for _ in range(6):
        out = net(x)
        terms = loss_fn(out.edge, out.displacement, labels)
        assert all(torch.isfinite(t) for t in terms)
        opt.zero_grad()
        terms.total.backward()
        opt.step()
        history.append(float(terms.total.detach()))
    assert history[-1] < history[0]
    net.eval()


def test_bad_loss_input(net):
    loss_fn = AffinityDisplacementLoss(radius=5)
    with pytest.raises(ValueError, match="labels"):
        loss_fn(torch.zeros(1, 1, 16, 16), torch.zeros(1, 2, 16, 16),
                torch.zeros(1, 64, 64, dtype=torch.long))
    with pytest.raises(ValueError, match="displacement"):
        loss_fn(torch.zeros(1, 1, 16, 16), torch.zeros(1, 2, 8, 8),
                torch.zeros(1, 16, 16, dtype=torch.long))


def test_calibration_and_inference(net):
    torch.manual_seed(2)
    batches = [torch.randn(2, 3, 64, 64), (torch.randn(2, 3, 64, 64), "labels")]
    net.train()
    mean = calibrate_mean_shift(net, batches)
    assert net.training  # mode restored
    assert mean.shape == (2,)
    assert torch.equal(net.mean_shift.running_mean, mean)
    net.eval()
    with torch.no_grad():
        raw = [net(b if isinstance(b, torch.Tensor) else b[0]).displacement + mean.view(1, 2, 1, 1)
               for b in batches]
    expected = torch.stack([r.mean(dim=(0, 2, 3)) for r in raw]).mean(dim=0)
    assert torch.allclose(mean, expected, atol=1e-5)

    image = torch.randn(3, 61, 70)
    edge, dp = edge_and_displacement(net, image)
    assert edge.shape == (16, 18) and dp.shape == (2, 16, 18)
    assert float(edge.min()) >= 0 and float(edge.max()) <= 1
    with torch.no_grad():
        out = net(torch.stack([image, image.flip(-1)]))
    assert torch.allclose(dp, out.displacement[0])
    logits = (out.edge[0, 0] + out.edge[1, 0].flip(-1)) / 2
    assert torch.allclose(edge, torch.sigmoid(logits))
    with pytest.raises(ValueError, match="empty"):
        calibrate_mean_shift(net, [])
    with pytest.raises(ValueError, match="single image"):
        edge_and_displacement(net, torch.randn(2, 3, 32, 32))

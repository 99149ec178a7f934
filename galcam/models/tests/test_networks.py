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

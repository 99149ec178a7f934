"""How long a training run takes on this machine, from timed steps.

`estimate_training_time` times one optimisation step of each stage (and one
multi-scale CAM of a whole image, which the IRNet labels need) on random inputs of the
preset's sizes, takes the fastest of a few repeats (other processes on a shared
machine only ever slow a step down), and multiplies by the number of steps a run on
``n_images`` images makes. Encoding the images is not included (it depends on the
files; it is done once and cached).

Run it as ``python -m galcam.training.benchmark --preset fast --n-images 600``.
"""

import argparse
import json
import time

import torch

from ..models import CAMNet, ReCAMHead, cam_loss, multiscale_cams, recam_loss
from ..models.backbone import Backbone
from ..models.irnet import AffinityDisplacementLoss, IRNet
from .presets import resolve_config

__all__ = ["estimate_training_time"]


def _best_time(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def estimate_training_time(preset="fast", *, n_images=600, image_size=210, n_val=0,
                           repeats=3, n_classes=4, device="cpu", **overrides):
    """Estimate the duration of `~galcam.training.train_weak_model` from timed steps.

    Parameters
    ----------
    preset : str or `~galcam.training.TrainingConfig`
        Preset (and ``overrides``) whose sizes, batch sizes and epochs are timed.
    n_images : int
        Training images.
    image_size : int
        Side of the (square) training images in pixels (210 for galcam's cutouts).
    n_val : int
        Validation images (timed with the per-epoch single-scale pass and the final
        multi-scale pass).
    repeats : int
        Timed repeats of every step; the fastest is used.
    n_classes : int
    device : str
        Device to time on.

    Returns
    -------
    dict
        ``seconds_per_image`` of each stage (``cam``, ``recam``, ``irnet`` training;
        ``ir_labels`` and ``val_final`` multi-scale CAMs; ``val_epoch``), ``seconds`` per
        stage for the run, ``total_seconds``, ``threads`` and the settings used.
    """
    cfg = resolve_config(preset, **overrides)
    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)
    c = len(cfg.mean)
    per_image = {}

    net = CAMNet(cfg.arch, n_classes, in_channels=c).to(dev).train()
    st = cfg.cam
    x = torch.randn(st.batch_size, c, st.crop_size, st.crop_size, generator=g).to(dev)
    y = torch.zeros(st.batch_size, n_classes, device=dev)
    y[:, 0] = 1
    opt = torch.optim.SGD(net.param_groups(st.lr), lr=st.lr, momentum=st.momentum)

    def cam_step():
        loss = cam_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    per_image["cam"] = _best_time(cam_step, repeats) / st.batch_size

    st = cfg.recam
    head = ReCAMHead(n_classes, net.feature_dim).to(dev)
    x = torch.randn(st.batch_size, c, st.crop_size, st.crop_size, generator=g).to(dev)
    y = torch.zeros(st.batch_size, n_classes, device=dev)
    y[:, 1] = 1
    opt = torch.optim.SGD(net.param_groups(st.lr) + [{"params": head.parameters()}],
                          lr=st.lr, momentum=st.momentum)

    def recam_step():
        out = net.forward_all(x)
        loss = cam_loss(out.logits, y) + cfg.recam_loss_weight * recam_loss(
            out.features, out.cams, y, head)
        opt.zero_grad()
        loss.backward()
        opt.step()

    per_image["recam"] = _best_time(recam_step, repeats) / st.batch_size

    image = torch.randn(c, image_size, image_size, generator=g)
    per_image["ir_labels"] = _best_time(
        lambda: multiscale_cams(net, image, scales=cfg.cam_scales, device=dev), repeats)
    scale = sum(cfg.cam.scale_range) / 2
    side = max(1, round(image_size * scale))
    small = torch.randn(1, c, side, side, generator=g).to(dev)
    net.eval()
    with torch.no_grad():
        per_image["val_epoch"] = _best_time(lambda: net(small), repeats)

    st = cfg.irnet
    irnet = IRNet(Backbone(cfg.arch, in_channels=c)).to(dev).train()
    loss_mod = AffinityDisplacementLoss(radius=cfg.irnet_radius)
    x = torch.randn(st.batch_size, c, st.crop_size, st.crop_size, generator=g).to(dev)
    grid = (st.crop_size - 1) // 4 + 1
    lab = torch.randint(0, 3, (st.batch_size, grid, grid), generator=g).to(dev)
    opt = torch.optim.SGD([{"params": irnet.edge_parameters()},
                           {"params": irnet.displacement_parameters()}], lr=st.lr,
                          momentum=st.momentum)

    def irnet_step():
        out = irnet(x)
        loss = loss_mod(out.edge, out.displacement, lab).total
        opt.zero_grad()
        loss.backward()
        opt.step()

    per_image["irnet"] = _best_time(irnet_step, repeats) / st.batch_size

    seconds = {}
    for name in ("cam", "recam", "irnet"):
        stage = cfg.stage(name)
        used = (n_images // stage.batch_size) * stage.batch_size
        seconds[name] = used * stage.epochs * per_image[name]
    seconds["ir_labels"] = n_images * per_image["ir_labels"]
    seconds["validation"] = n_val * ((cfg.cam.epochs + cfg.recam.epochs) * per_image["val_epoch"]
                                     + per_image["ir_labels"])
    return {
        "preset": cfg.preset,
        "arch": cfg.arch,
        "n_images": n_images,
        "image_size": image_size,
        "n_val": n_val,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "seconds_per_image": per_image,
        "seconds": seconds,
        "total_seconds": sum(seconds.values()),
    }


def main(argv=None):
    """Command-line entry point: print the estimate as JSON."""
    parser = argparse.ArgumentParser(prog="python -m galcam.training.benchmark",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--n-images", type=int, default=600)
    parser.add_argument("--n-val", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=210)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = estimate_training_time(args.preset, n_images=args.n_images, n_val=args.n_val,
                                    image_size=args.image_size, repeats=args.repeats,
                                    device=args.device)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Retrain only the IRNet of a model folder, keeping its classifier, with other IRNet settings.

An experiment tool for the instance step: the CAM/ReCAM classifier of ``--model`` is kept
bit for bit, IRNet's labels are made from its CAMs on ``--train`` exactly as
`galcam.training.train_weak_model` makes them (image-level labels only), and IRNet is
trained again with the model's recorded hyper-parameters, changed by ``--set``. The new
model folder (``-o``) holds the same ``cam.pt`` and a new ``irnet.pt``; its
``config.json`` records the new IRNet settings and ``metrics.json`` the new IRNet losses.
Score it with ``calibrate_model.py``, ``bench_independent.py`` or ``bench_grouping.py``.

    python benchmarks/retrain_irnet.py --model default --train TRAIN_DIR -o OUT
        [--set irnet_epochs=10] [--set 'irnet_scale_range=[0.9,1.1]'] [--seed 0]

``TRAIN_DIR`` is a COCO data set (``annotations.json``; only its image-level classes are
read), ideally the model's own training set.
"""

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path


def _flat_hyperparameters(hyper):
    """The folder's recorded hyper-parameters as `resolve_config` keywords."""
    from galcam.training import STAGES

    out = {}
    for key, value in hyper.items():
        if key in STAGES:
            out.update({f"{key}_{k}": v for k, v in value.items()})
        elif key != "preset":
            out[key] = value
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model folder or name")
    parser.add_argument("--train", required=True, help="training data set folder")
    parser.add_argument("-o", "--output", required=True, help="new model folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="IRNet hyper-parameter (irnet_*, irnet_radius), JSON value")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("irnet_"):
            parser.error(f"--set: expected irnet_KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    out = Path(args.output)
    if out.exists():
        parser.error(f"-o: '{out}' exists; choose a new folder")
    train_dir = Path(args.train)
    if not (train_dir / "annotations.json").is_file():
        parser.error(f"--train: '{train_dir}' has no annotations.json")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")


    from galcam.datasets import CocoDataset
    from galcam.inference import WeakSegmenter
    from galcam.inference.segmenter import resolve_model
    from galcam.models import load_model_folder, save_model_folder
    from galcam.models.folder import _RESERVED
    from galcam.training import DistContext, resolve_config, stages
    from galcam.training import data as tdata

    model_dir = resolve_model(args.model)
    config_json, states, metrics = load_model_folder(model_dir)
    hyper = config_json["preset"]["hyperparameters"]
    config = resolve_config(hyper["preset"], **{**_flat_hyperparameters(hyper), **overrides})
    segmenter = WeakSegmenter.load(model_dir, device="cpu")
    net = segmenter.networks.cam_net  # the classifier, unchanged
    ctx = DistContext.from_env("auto")
    net.to(ctx.device)

    t0 = time.perf_counter()
    view = CocoDataset(train_dir / "annotations.json", image_dir=train_dir).image_level()
    train_set = tdata.encode_view(view, segmenter.encoder)
    labels = stages._ir_labels(net, train_set, config, ctx, False)
    label_stats = stages._label_stats(labels)
    print(f"IRNet labels of {len(train_set)} images: {label_stats} "
          f"({time.perf_counter() - t0:.0f} s)")

    t1 = time.perf_counter()
    work = out.with_name(out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    irnet, history, shift = stages._train_irnet(
        net, train_set, labels, config, ctx, init_state=None, seed=args.seed,
        checkpoint_path=work / "irnet.pt",
        run_fingerprint=json.dumps(config.to_dict(), sort_keys=True),
        progress=False, amp=config.amp, num_workers=0)
    seconds = time.perf_counter() - t1

    dtype = config_json.get("weights_dtype", "float32")
    new = {k: v.cpu() for k, v in irnet.state_dict().items() if not k.startswith("backbone.")}
    if dtype == "float16":
        new = {k: v.half() if v.is_floating_point() else v for k, v in new.items()}
    config_json = {k: v for k, v in config_json.items() if k not in _RESERVED}
    config_json["preset"]["hyperparameters"] = {
        k: v for k, v in config.to_dict().items() if k not in stages._RUNTIME_ONLY}
    config_json["backbone"]["irnet"]["radius"] = config.irnet_radius
    config_json["irnet_retrained"] = {
        "from": str(model_dir), "train": str(train_dir), "images": len(train_set),
        "seed": args.seed, "overrides": overrides, "seconds": round(seconds, 1)}
    metrics = dict(metrics or {})
    metrics.setdefault("train", {})["irnet"] = {"final_loss": history[-1]["train_loss"],
                                                "epochs": history}
    metrics["ir_labels"] = label_stats
    metrics["mean_shift"] = [float(v) for v in shift.tolist()]
    save_model_folder(out, config=config_json, state_dicts={"cam": states["cam"], "irnet": new},
                      metrics=metrics)
    shutil.rmtree(work)  # the stage checkpoint, kept only while the run could be resumed
    for row in history:
        print(f"epoch {row['epoch']}: loss {row['train_loss']:.3f}, displacement (fg) "
              f"{row.get('train_dp_fg', float('nan')):.3f}, {row['seconds']:.0f} s")
    print(f"IRNet retrained in {seconds:.0f} s; model folder {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

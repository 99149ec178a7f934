"""``galcam train``: train a model from image-level labels and write a model folder.

Delegates to `galcam.training.train_weak_model` (CAM -> ReCAM -> IRNet, Gupta et al. 2023,
sections 3.2-3.3). Only the image-level classes of the training images are read; masks,
boxes and keypoints are never used. The model's classes are ``--classes``, else galcam's
four (FR-I, FR-II, FR-X, R) when the data set's categories are among them, else the data
set's own categories in the order of their ids (`training_classes`).
"""

import json
import logging
import re
from pathlib import Path

from .main import GalcamCLIError

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


def add_parser(subparsers):
    """Register ``galcam train``."""
    parser = subparsers.add_parser(
        "train",
        help="train a model from image-level labels (CAM -> ReCAM -> IRNet)",
        description=(
            "Train galcam's networks from the image-level classes of a COCO data set (weak "
            "labels: masks, boxes and keypoints are never read) and write a model folder "
            "(config.json, cam.pt, irnet.pt, metrics.json) for `galcam predict --model`. "
            "An interrupted run resumes from MODELDIR/checkpoints."
        ),
    )
    parser.add_argument("--coco", required=True, metavar="TRAIN.json", help="training set")
    parser.add_argument("--image-dir", metavar="DIR",
                        help="folder of the images of TRAIN.json and VAL.json "
                        "(default: each JSON's folder)")
    parser.add_argument("--val", metavar="VAL.json",
                        help="validation set (classification loss and accuracy)")
    parser.add_argument("--classes", metavar="A,B,C",
                        help="the model's classes, in order, matched to the category names "
                        "of TRAIN.json (case, spaces, hyphens and underscores ignored); "
                        "every category must be among them. Default: galcam's "
                        "FR-I,FR-II,FR-X,R when every category of TRAIN.json is one of "
                        "them, else TRAIN.json's own categories in the order of their ids "
                        "(e.g. FRI,FRII,Compact,Bent for `galcam data first`)")
    parser.add_argument("--calibrate", metavar="LABELLED_VAL.json",
                        help="after training, choose the class and score thresholds on this "
                        "validation set with truth masks (galcam.inference.calibrate; its "
                        "masks are read for scoring only, never for training) and record "
                        "them in MODELDIR/config.json")
    parser.add_argument("--preset", default="fast", choices=["fast", "paper"],
                        help="hyper-parameters: 'paper' (ResNet-50, the paper's schedule) or "
                        "'fast' (ResNet-18, CPU friendly; default)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="auto",
                        help="'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:N'")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="overrides",
                        help="override a hyper-parameter of the preset, e.g. --set "
                        "cam_epochs=5 --set arch=resnet34 (VALUE is read as JSON if it "
                        "parses, else as a string); repeatable")
    parser.add_argument("-o", "--output", required=True, metavar="MODELDIR",
                        help="model folder to write")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a trained model already in MODELDIR")
    parser.add_argument("--no-resume", action="store_true",
                        help="discard checkpoints of an interrupted run and start again")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--weights-dtype", default="float32", choices=["float32", "float16"],
                        help="precision of the stored weights (float16 halves the model "
                             "folder; networks run in float32 either way)")
    parser.set_defaults(func=run)
    return parser


def parse_overrides(items):
    """``["cam_epochs=5", "arch=resnet34"]`` -> ``{"cam_epochs": 5, "arch": "resnet34"}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise GalcamCLIError(f"--set expects KEY=VALUE with a hyper-parameter name as KEY, "
                                 f"got {item!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def parse_classes(text):
    """``"FRI, FRII,Compact"`` -> ``("FRI", "FRII", "Compact")``."""
    names = tuple(n.strip() for n in text.split(","))
    if not names or not all(names):
        raise GalcamCLIError(f"--classes expects class names separated by commas, e.g. "
                             f"FRI,FRII,Compact,Bent, got {text!r}")
    return names


def training_classes(path):
    """The classes to train on TRAIN.json when ``--classes`` is not given.

    galcam's `~galcam.datasets.DEFAULT_CLASSES` (FR-I, FR-II, FR-X, R, in that order) when
    every category of the JSON names one of them; else `None`: the JSON's own categories
    in the order of their ids (`~galcam.datasets.CocoDataset` with ``classes=None``). A
    JSON that cannot be read gives `None` too, and `CocoDataset` reports the problem.
    """
    from galcam.datasets import DEFAULT_CLASSES, normalize_class_name

    try:
        with open(path, encoding="utf-8") as fh:
            names = [c["name"] for c in json.load(fh)["categories"]]
        known = {normalize_class_name(c) for c in DEFAULT_CLASSES}
        if names and all(normalize_class_name(n) in known for n in names):
            return DEFAULT_CLASSES
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return None


def run(args):
    """Train and write the model folder; returns the exit status."""
    overrides = parse_overrides(args.overrides)
    classes = None if args.classes is None else parse_classes(args.classes)
    for flag, value in (("--coco", args.coco), ("--val", args.val),
                        ("--calibrate", args.calibrate), ("--image-dir", args.image_dir)):
        if value is not None and not Path(value).exists():
            raise FileNotFoundError(f"{flag} '{value}' does not exist")
    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise GalcamCLIError(f"output '{outdir}' exists and is not a folder")
    if (outdir / "config.json").exists() and not args.overwrite:
        raise FileExistsError(f"'{outdir}' already holds a trained model; use --overwrite to "
                              "replace it")

    from galcam.datasets import CocoDataset
    from galcam.training import train_weak_model

    if classes is None:
        classes = training_classes(args.coco)
    train = CocoDataset(args.coco, image_dir=args.image_dir, classes=classes)
    unused = [c for c in train.classes if c not in train.categories]
    if unused and args.classes is not None:
        log.warning("--classes: TRAIN.json has no category for %s: no training image is "
                    "labelled with %s", ", ".join(unused), "it" if len(unused) == 1 else "them")
    log.info("training classes: %s", ", ".join(train.classes))
    val = None if args.val is None else CocoDataset(args.val, image_dir=args.image_dir,
                                                    classes=train.classes)
    try:
        result = train_weak_model(train, preset=args.preset, output_dir=outdir, seed=args.seed,
                                  device=args.device, val_dataset=val,
                                  resume=not args.no_resume, overwrite=args.overwrite,
                                  progress=not args.no_progress,
                                  weights_dtype=args.weights_dtype, **overrides)
    except RuntimeError as exc:  # e.g. a GPU requested on a machine without one
        raise GalcamCLIError(str(exc)) from exc
    path = getattr(result, "path", outdir)
    metrics = getattr(result, "metrics", None) or {}
    val_metrics = metrics.get("validation") or {}
    line = f"model written to {path}"
    if "top1_accuracy" in val_metrics:
        line += f" (validation top-1 accuracy {val_metrics['top1_accuracy']:.3f})"
    print(line)
    if args.calibrate is not None:
        from galcam.inference import calibrate

        cal = calibrate(path, args.calibrate, image_dir=args.image_dir, device=args.device,
                        progress=not args.no_progress)
        print(f"calibrated on {args.calibrate}: class threshold {cal.class_threshold:g}, "
              f"score threshold {cal.score_threshold:g} (validation F1 {cal.f1:.3f})")
    return 0

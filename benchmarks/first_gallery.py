"""A gallery of a model's masks and classes on real FIRST test images, for the docs.

Takes the first ``--per-class`` images of every class of a FIRST split written by
``galcam data first --split test -o DIR`` (sorted by image id, i.e. by name: no choice
by outcome), finds their galaxies with ``WeakSegmenter`` exactly as ``galcam predict``
does on an image (the model's recommended score threshold; FIRST has no infrared image, so
every host is the radio fallback), and draws one panel per image: the radio image, the
mask outline and class of every galaxy, the literature label in the title. The labels are
read for the titles only, after prediction.

Usage::

    python benchmarks/first_gallery.py --model MODELDIR --data DIR -o docs/_static/first_gallery.png
"""

import argparse
import json
import logging
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="folder of `galcam data first`")
    parser.add_argument("--per-class", type=int, default=3)
    parser.add_argument("--half-width", type=int, default=60,
                        help="half side of the shown window around the image centre, pixels")
    parser.add_argument("--score-threshold", type=float, default=None,
                        help="default: the model's recommended catalogue threshold")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from skimage.measure import find_contours

    from galcam.inference import WeakSegmenter
    from galcam.io import read_image
    from galcam.visualization import radio_norm

    folder = Path(args.data)
    coco = json.loads((folder / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    label = {a["image_id"]: names[a["category_id"]] for a in coco["annotations"]}
    classes = [names[k] for k in sorted(names)]
    chosen = []
    for c in classes:
        ids = sorted(i["id"] for i in coco["images"] if label[i["id"]] == c)[:args.per_class]
        chosen += [(c, i) for i in ids]
    by_id = {i["id"]: i for i in coco["images"]}

    segmenter = WeakSegmenter.load(args.model, device="cpu")
    colors = dict(zip(segmenter.classes,
                      ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange")))
    ncol = args.per_class
    fig = Figure(figsize=(2.6 * ncol, 2.75 * len(classes)))
    axes = fig.subplots(len(classes), ncol, squeeze=False)
    n_right = 0
    for ax, (truth, image_id) in zip(axes.flat, chosen):
        path = folder / by_id[image_id]["file_name"]
        image = read_image(path)
        result = segmenter(path, score_threshold=args.score_threshold)
        data = image.data
        h = args.half_width
        cy, cx = data.shape[0] // 2, data.shape[1] // 2
        window = (slice(cy - h, cy + h), slice(cx - h, cx + h))
        ax.imshow(data[window], origin="lower", cmap="gray_r",
                  norm=radio_norm(data[window], percentile=99.9))
        top = max(result, key=lambda g: g.score, default=None)
        for g in result:
            mask = g.mask(data.shape)[window]
            for contour in find_contours(mask.astype(float), 0.5):
                ax.plot(contour[:, 1], contour[:, 0], color=colors.get(g.class_name, "w"),
                        lw=1.0)
            x, y = g.centroid
            ax.text(x - (cx - h), y - (cy - h) + 8, f"{g.class_name} {g.score:.2f}",
                    color=colors.get(g.class_name, "k"), fontsize=7, ha="center",
                    clip_on=True, fontweight="bold")
        guess = "none" if top is None else top.class_name
        n_right += guess == truth
        ax.set_title(f"{Path(by_id[image_id]['file_name']).stem[:22]}\nlabel {truth}, "
                     f"top {guess}", fontsize=7,
                     color="black" if guess == truth else "firebrick")
        ax.set_xlim(-0.5, 2 * h - 0.5)
        ax.set_ylim(-0.5, 2 * h - 0.5)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{Path(args.model).name} on FIRST {folder.name} images "
                 f"({n_right} of {len(chosen)} top classes right; "
                 f"{2 * h * 1.8 / 60:.1f}' windows)", fontsize=9)
    fig.tight_layout()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(f"wrote {out}: {n_right} of {len(chosen)} top classes right")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

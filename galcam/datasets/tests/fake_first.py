"""A fake ``firstgalaxydata`` folder for the tests: tiny zips in the package's layout.

``galaxy_data.zip`` holds ``galaxy_data/{train,valid,test,all}/CLASS/RA_DEC_LABEL_CAT.png``
(8-bit grey PNGs, background 0, brightest pixel 255) as the real package does; with
``folds=True`` (needs h5py) ``galaxy_data_crossvalid_0_h5.zip`` and
``galaxy_data_crossvalid_test_h5.zip`` hold the same images in the HDF5 layout. Used by the
tests of `galcam.datasets.first` and of ``galcam data first``; nothing is downloaded.
"""

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("FRI", "FRII", "Compact", "Bent")
CATALOGUES = ("MiraBest", "Gendre", "Proctor_Tab1", "Capetti2017a")


def fake_pixels(label, size, rng):
    """An 8-bit image of one source whose shape depends on ``label`` (0-3), clipped at 0."""
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2 + rng.uniform(-1, 1, 2)
    s = size / 20

    def blob(dx, dy, w):
        return np.exp(-0.5 * ((xx - c[0] - dx) ** 2 + (yy - c[1] - dy) ** 2) / w ** 2)

    if label == 0:  # FRI: core and fading jets
        img = blob(0, 0, s) + 0.4 * blob(3 * s, 0, 2 * s) + 0.4 * blob(-3 * s, 0, 2 * s)
    elif label == 1:  # FRII: two lobes
        img = blob(-4 * s, 0, s) + blob(4 * s, 0, s)
    elif label == 2:  # compact
        img = blob(0, 0, 0.7 * s)
    else:  # bent: lobes bent down
        img = blob(-3 * s, 2 * s, s) + blob(3 * s, 2 * s, s) + blob(0, 0, 0.8 * s)
    img = img / img.max()
    v = np.clip(np.round((img - 0.05) / 0.95 * 255), 0, 255).astype(np.uint8)
    return v


def fake_entries(n_train=2, seed=0):
    """``[(split, label, ra, dec, catalogue)]``: ``n_train`` per class in train, 1 in
    valid and test."""
    rng = np.random.default_rng(seed)
    out = []
    for split, n in (("train", n_train), ("valid", 1), ("test", 1)):
        for label in range(4):
            for _ in range(n):
                ra = round(float(rng.uniform(0, 360)), 3)
                dec = round(float(rng.uniform(-10, 60)), 3)
                out.append((split, label, ra, dec, CATALOGUES[len(out) % 4]))
    return out


def _name(label, ra, dec, catalogue):
    return f"{ra:g}_{dec:g}_{label}_{catalogue}"


def make_fake_first(root, *, size=64, n_train=2, folds=False, seed=0):
    """Write a fake package folder under ``root``; returns ``(folder, {name: (split, class)})``.

    The images of a split are ``n_train`` per class (train) or one per class (valid,
    test), ``size`` x ``size`` pixels. With ``folds``, fold 0 puts the first train image of
    every class into its valid part and the rest (train and valid) into its train part.
    """
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    entries = fake_entries(n_train, seed)
    pixels, truth = {}, {}
    with zipfile.ZipFile(folder / "galaxy_data.zip", "w") as zf:
        for split in ("test", "train", "valid", "all"):
            zf.writestr(f"galaxy_data/{split}/", "")
        for split, label, ra, dec, cat in entries:
            name = _name(label, ra, dec, cat)
            v = fake_pixels(label, size, rng)
            pixels[name] = v
            truth[name] = (split, CLASSES[label])
            buf = io.BytesIO()
            Image.fromarray(v).save(buf, format="PNG")
            for where in (split, "all"):
                zf.writestr(f"galaxy_data/{where}/{CLASSES[label]}/{name}.png", buf.getvalue())
    if folds:
        _write_folds(folder, entries, pixels)
    return folder, truth


def _write_h5_zip(path, member, rows):
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as fh:
        for i, (name, split, label, ra, dec, cat, v) in enumerate(rows):
            g = fh.create_group(f"data_{i * 7 + 3}")  # keys differ between the real files
            img = g.create_dataset("Img", data=v)
            # the real attributes are the file name's values up to float rounding
            img.attrs["RA"] = ra + 1e-13
            img.attrs["DEC"] = dec - 1e-13
            img.attrs["Source"] = cat
            img.attrs["Filepath_literature"] = f"{CLASSES[label]}/{name}.png"
            g.create_dataset("Label_literature", data=float(label))
            g.create_dataset("Split_literature", data=split)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, buf.getvalue())


def _write_folds(folder, entries, pixels):
    rows, test, seen = [], [], set()
    for split, label, ra, dec, cat in entries:
        name = _name(label, ra, dec, cat)
        row = (name, label, ra, dec, cat, pixels[name])
        if split == "test":
            test.append((name, "test", *row[1:]))
        else:
            fold_split = "valid" if split == "train" and label not in seen else "train"
            seen.add(label)
            rows.append((name, fold_split, *row[1:]))
    _write_h5_zip(folder / "galaxy_data_crossvalid_0_h5.zip", "galaxy_data_crossvalid_0_h5.h5",
                  rows)
    _write_h5_zip(folder / "galaxy_data_crossvalid_test_h5.zip",
                  "galaxy_data_crossvalid_test_h5.h5", test)

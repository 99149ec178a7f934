"""Tests of galcam.datasets.first: the FIRST data set read from a fake package folder.

The fake folder (`fake_first.make_fake_first`) has the real package's layout with a few
tiny images, so these tests need neither firstgalaxydata nor a download. The cross-
validation folds need h5py (skipped without it); one smoke test reads the real files when
firstgalaxydata is installed.
"""

import importlib.util
import json
import zipfile

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits

import galcam.datasets.first as first_module
from galcam.datasets import (
    FIRST_CLASSES,
    CocoDataset,
    DatasetError,
    FirstSplit,
    read_first,
    write_first_coco,
)
from galcam.datasets.first import FIRST_RMS
from galcam.preprocessing import NoiseEstimator, find_islands

from .fake_first import make_fake_first

RMS = FIRST_RMS.to_value(u.Jy / u.beam)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A fake package folder (64 px images) and its truth ``{name: (split, class)}``."""
    return make_fake_first(tmp_path_factory.mktemp("fgd") / "firstgalaxydata")


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """Larger images (160 px), for statistics of the restored noise."""
    return make_fake_first(tmp_path_factory.mktemp("fgd_big") / "pkg", size=160, n_train=1)[0]


# ----------------------------------------------------------------------------- reading


def test_read_split(fake):
    folder, truth = fake
    train = read_first("train", data_dir=folder)
    assert isinstance(train, FirstSplit) and len(train) == 8
    assert train.classes == FIRST_CLASSES == ("FRI", "FRII", "Compact", "Bent")
    assert train.counts == {"FRI": 2, "FRII": 2, "Compact": 2, "Bent": 2}
    assert "FirstSplit train: 8 images (FRI 2, FRII 2, Compact 2, Bent 2)" in repr(train)
    names = [im.name for im in train]
    assert names == sorted(names)
    assert {n: truth[n] for n in names} == {im.name: ("train", im.label) for im in train}
    img = train[0]
    ra, dec, label, catalogue = img.name.split("_", 3)
    assert (img.ra, img.dec) == (float(ra), float(dec))
    assert FIRST_CLASSES[int(label)] == img.label and img.label_index == int(label)
    assert img.catalogue == catalogue and img.split == "train" and img.fold is None
    assert img.data.dtype == np.uint8 and img.shape == (64, 64)
    assert img.data.min() == 0 and img.data.max() == 255
    with pytest.raises(ValueError):
        img.data[0, 0] = 1  # read-only
    assert [len(read_first(s, data_dir=folder)) for s in ("valid", "test")] == [4, 4]
    # the 'all' folder of the archive is not a split
    assert {im.split for im in train} == {"train"}


def test_wcs_of_an_image(fake):
    img = read_first("test", data_dir=fake[0])[0]
    w = img.wcs
    assert list(w.wcs.ctype) == ["RA---TAN", "DEC--TAN"]
    assert w.wcs.radesys == "ICRS"
    # the image centre, 0-based ((n - 1) / 2, (n - 1) / 2), is the data set's position
    centre = w.pixel_to_world(31.5, 31.5)
    assert centre.separation(img.position) < 1e-6 * u.arcsec
    assert img.position.ra.deg == img.ra and img.position.dec.deg == img.dec
    # 1.8"/px: 10 pixels up is 18" to the north, 10 pixels to the left 18" to the east
    north = w.pixel_to_world(31.5, 41.5)
    east = w.pixel_to_world(21.5, 31.5)
    for p, pa in ((north, 0), (east, 90)):
        assert centre.separation(p).to_value(u.arcsec) == pytest.approx(18.0, rel=1e-6)
        assert centre.position_angle(p).to_value(u.deg) == pytest.approx(pa, abs=1e-3)
    # and back: 9" south of the centre is 5 pixels down
    target = SkyCoord(img.ra * u.deg, img.dec * u.deg).directional_offset_by(
        180 * u.deg, 9 * u.arcsec)
    x, y = w.world_to_pixel(target)
    assert (float(x), float(y)) == pytest.approx((31.5, 26.5), abs=1e-4)


def test_nddata_and_hdu(fake):
    img = read_first("valid", data_dir=fake[0])[1]
    nd = img.to_nddata()
    assert nd.unit == u.Jy / u.beam and nd.data.dtype == np.float32
    beam = nd.meta["beam"]
    assert beam.major.to_value(u.arcsec) == pytest.approx(5.4)
    assert beam.minor.to_value(u.arcsec) == pytest.approx(5.4)
    assert beam.pa.to_value(u.deg) == 0
    assert nd.meta["label"] == img.label
    assert nd.wcs.pixel_to_world(31.5, 31.5).separation(img.position) < 1e-6 * u.arcsec
    h = img.to_hdu(noise=0.25, seed=5).header
    assert h["BUNIT"] == "Jy/beam" and h["PSEUDOBR"] is True
    assert h["BMAJ"] == h["BMIN"] == pytest.approx(5.4 / 3600) and h["BPA"] == 0
    assert h["FGCLIP"] == pytest.approx(3 * RMS) and h["FGSTEP"] == pytest.approx(RMS)
    assert h["FGNOISE"] == pytest.approx(0.25 * 3 * RMS) and h["FGNFRAC"] == 0.25
    assert h["FGSEED"] == 5 and h["FGCLASS"] == img.label and h["FGLABEL"] == img.label_index
    assert h["FGNAME"] == img.name and h["FGSPLIT"] == "valid" and h["FGFOLD"] == -1
    assert "Provenance: The FIRST project team" in str(h["COMMENT"])


# ----------------------------------------------------------------------------- pseudo-brightness


@pytest.mark.parametrize("noise", [1 / 3, 0.2])
def test_restored_noise_level(big, noise):
    clip = 3 * RMS
    for img in read_first("train", data_dir=big):
        data = img.pseudo_brightness(noise=noise).to_value(u.Jy / u.beam)
        kept = img.data > 0
        assert (~kept).sum() > 15000
        background = data[~kept]
        # Gaussian of the requested rms (truncation at 0.97 of the clip: -1 per cent)
        assert np.std(background) == pytest.approx(noise * clip, rel=0.03)
        assert abs(np.mean(background)) < 0.03 * noise * clip
        assert background.max() < 0.97 * clip
        # kept pixels are the clip level plus one rms per 8-bit step, exactly
        np.testing.assert_allclose(data[kept], (3.0 + img.data[kept]) * RMS, rtol=1e-6)
        # galcam's noise estimator sees the requested level
        measured = NoiseEstimator()(img.to_nddata(noise=noise)).rms.to_value(u.Jy / u.beam)
        assert measured == pytest.approx(noise * clip, rel=0.03)


def test_islands_are_the_kept_pixels(big):
    """At the default noise, galcam's 3-sigma islands are what FIRST's clipping kept."""
    for img in read_first("train", data_dir=big):
        nd = img.to_nddata()
        noise = NoiseEstimator()(nd)
        islands = find_islands(nd, noise, n_sigma=3, n_pixels=1)
        np.testing.assert_array_equal(islands.mask, img.data > 0)


def test_noise_is_deterministic_per_image(fake):
    folder = fake[0]
    a, b = read_first("train", data_dir=folder)[:2]
    one = a.pseudo_brightness()
    assert np.array_equal(one, a.pseudo_brightness())
    # read again, from another split object: the same noise
    again = next(im for im in read_first("train", data_dir=folder) if im.name == a.name)
    assert np.array_equal(one, again.pseudo_brightness())
    # another seed, another image: other noise
    assert not np.array_equal(one, a.pseudo_brightness(seed=1))
    bg = (a.data == 0) & (b.data == 0)
    assert not np.array_equal(one[bg], b.pseudo_brightness()[bg])
    # noise=0: the clipped background stays 0
    zero = a.pseudo_brightness(noise=0).value
    assert np.all(zero[a.data == 0] == 0)
    # rms scales everything
    twice = a.pseudo_brightness(rms=0.3 * u.mJy / u.beam)
    np.testing.assert_allclose(twice.value, 2 * one.value, rtol=1e-6)


def test_bad_options_are_refused(fake):
    img = read_first("test", data_dir=fake[0])[0]
    for noise in (-0.1, 1.5, float("nan"), "0.3", True):
        with pytest.raises(ValueError, match=r"noise: expected a fraction of the clip level"):
            img.pseudo_brightness(noise=noise)
    with pytest.raises(ValueError, match=r"rms: expected a brightness Quantity .*plain number"):
        img.to_hdu(rms=0.15)
    with pytest.raises(ValueError, match="rms: expected a brightness Quantity"):
        img.to_nddata(rms=3 * u.arcsec)
    for seed in (-1, 1.5, "1"):
        with pytest.raises(ValueError, match="seed: expected a non-negative integer"):
            img.pseudo_brightness(seed=seed)
    with pytest.raises(ValueError, match="split: expected one of 'train', 'valid', 'test'"):
        read_first("validation", data_dir=fake[0])
    with pytest.raises(ValueError, match="fold: expected None .* integer 0 to 4"):
        read_first("train", fold=5, data_dir=fake[0])


# ----------------------------------------------------------------------------- errors


def test_missing_package(monkeypatch):
    monkeypatch.setattr(first_module, "_PACKAGE", "galcam_no_such_package_xyz")
    with pytest.raises(ModuleNotFoundError,
                       match=r"needs the package 'galcam_no_such_package_xyz', which is not "
                             r'installed; install it with: pip install "galcam\[first\]"'):
        read_first("test")


def test_missing_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"galaxy_data.zip': no such file in the "
                                                r"data_dir folder .*galcam never downloads"):
        read_first("test", data_dir=tmp_path)
    # in the installed package's folder
    monkeypatch.setattr(first_module, "first_data_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match=r"in the installed 'firstgalaxydata' folder "
                                                r".*needs 'galaxy_data.zip'.*--force-reinstall"):
        read_first("train")
    with pytest.raises(FileNotFoundError, match="galaxy_data_crossvalid_3_h5.zip"):
        read_first("valid", fold=3)
    with pytest.raises(FileNotFoundError, match="galaxy_data_crossvalid_test_h5.zip"):
        read_first("test", fold=1)


def _zip_with(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_broken_archives(tmp_path, fake):
    import io

    from PIL import Image

    (tmp_path / "galaxy_data.zip").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="galaxy_data.zip': not a readable zip file"):
        read_first("test", data_dir=tmp_path)

    def png(arr):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        return buf.getvalue()

    grey = np.zeros((8, 8), np.uint8)
    _zip_with(tmp_path / "galaxy_data.zip",
              {"galaxy_data/test/FRI/12.5_3.1_0_Gendre.png": png(grey),
               "galaxy_data/test/FRII/nonsense.png": png(grey)})
    with pytest.raises(DatasetError, match="'galaxy_data/test/FRII/nonsense.png'.*not "
                                           "RA_DEC_LABEL_CATALOGUE"):
        read_first("test", data_dir=tmp_path)
    _zip_with(tmp_path / "galaxy_data.zip",
              {"galaxy_data/test/Bent/12.5_3.1_0_Gendre.png": png(grey)})
    with pytest.raises(DatasetError, match="label FRI in the file name, folder 'Bent'"):
        read_first("test", data_dir=tmp_path)
    _zip_with(tmp_path / "galaxy_data.zip",
              {"galaxy_data/test/FRI/12.5_3.1_0_Gendre.png": png(np.zeros((8, 8, 3), np.uint8))})
    with pytest.raises(DatasetError, match="is a RGB PNG, expected 8-bit grey"):
        read_first("test", data_dir=tmp_path)
    _zip_with(tmp_path / "galaxy_data.zip",
              {"galaxy_data/test/FRI/12.5_3.1_7_Gendre.png": png(grey)})
    with pytest.raises(DatasetError, match="label 7 .* is not one of 0-3"):
        read_first("test", data_dir=tmp_path)
    _zip_with(tmp_path / "galaxy_data.zip",
              {"galaxy_data/train/FRI/12.5_3.1_0_Gendre.png": png(grey)})
    with pytest.raises(DatasetError, match="holds no image of split 'test'"):
        read_first("test", data_dir=tmp_path)


# ----------------------------------------------------------------------------- COCO


def test_write_coco_round_trip(fake, tmp_path):
    folder, truth = fake
    path = write_first_coco("train", tmp_path / "out", data_dir=folder)
    assert path == tmp_path / "out" / "annotations.json"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["annotations.json", "images"]
    coco = json.loads(path.read_text())
    assert coco["categories"] == [{"id": 1, "name": "FRI"}, {"id": 2, "name": "FRII"},
                                  {"id": 3, "name": "Compact"}, {"id": 4, "name": "Bent"}]
    # image-level labels only: no mask, box or keypoint
    assert all(set(a) == {"id", "image_id", "category_id"} for a in coco["annotations"])
    assert len(coco["annotations"]) == len(coco["images"]) == 8
    info = coco["info"]
    assert info["split"] == "train" and info["fold"] is None
    assert info["pseudo_brightness"]["noise_fraction"] == pytest.approx(1 / 3)
    assert info["licence"].startswith("Provenance: The FIRST project team")

    for classes in (FIRST_CLASSES, None):
        ds = CocoDataset(path, classes=classes)
        assert ds.classes == FIRST_CLASSES
        for rec in ds:
            entry = next(i for i in coco["images"] if i["id"] == rec.image_id)
            assert rec.label_names == (truth[entry["first_name"]][1],)
    rec = ds[0]
    radio = rec.read_radio()
    entry = next(i for i in coco["images"] if i["id"] == rec.image_id)
    img = next(im for im in read_first("train", data_dir=folder)
               if im.name == entry["first_name"])
    assert radio.unit == u.Jy / u.beam and radio.meta["beam"] is not None
    np.testing.assert_array_equal(radio.data, img.pseudo_brightness().value)
    assert radio.wcs.pixel_to_world(31.5, 31.5).separation(img.position) < 1e-6 * u.arcsec
    assert (entry["ra"], entry["dec"], entry["catalogue"]) == (img.ra, img.dec, img.catalogue)


def test_write_coco_refuses_to_overwrite(fake, tmp_path):
    folder = fake[0]
    out = tmp_path / "out"
    write_first_coco("test", out, data_dir=folder)
    with pytest.raises(FileExistsError, match=r"holds annotations.json and images already; "
                                              r"pass overwrite=True"):
        write_first_coco("test", out, data_dir=folder)
    # a split already read, with other options, replaces it
    valid = read_first("valid", data_dir=folder)
    write_first_coco(valid, out, noise=0.1, overwrite=True)
    ds = CocoDataset(out / "annotations.json", classes=None)
    assert len(ds) == 4 and {fits.getheader(r.path)["FGSPLIT"] for r in ds} == {"valid"}
    assert {fits.getheader(r.path)["FGNFRAC"] for r in ds} == {0.1}
    assert sorted(p.name for p in out.iterdir()) == ["annotations.json", "images"]
    assert len(list((out / "images").iterdir())) == 4  # the test images are gone
    with pytest.raises(ValueError, match="fold, data_dir: only with a split name"):
        write_first_coco(valid, out, data_dir=folder, overwrite=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="exists and is not a folder"):
        write_first_coco("test", tmp_path / "file", data_dir=folder)
    # options are checked before anything is read or written
    with pytest.raises(ValueError, match="noise"):
        write_first_coco("test", tmp_path / "new", noise=2, data_dir=folder)
    assert not (tmp_path / "new").exists()


def test_interrupted_write_leaves_the_folder_as_it_was(fake, tmp_path, monkeypatch):
    folder = fake[0]
    out = tmp_path / "out"
    write_first_coco("test", out, data_dir=folder)
    before = sorted(p.name for p in (out / "images").iterdir())
    calls = []
    real = first_module._header

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(first_module, "_header", failing)
    with pytest.raises(KeyboardInterrupt):
        write_first_coco("train", out, data_dir=folder, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["annotations.json", "images"]
    assert sorted(p.name for p in (out / "images").iterdir()) == before
    assert len(CocoDataset(out / "annotations.json", classes=None)) == 4


# ----------------------------------------------------------------------------- folds


def test_cross_validation_folds(tmp_path):
    pytest.importorskip("h5py")
    folder, truth = make_fake_first(tmp_path / "pkg", folds=True)
    train = read_first("train", fold=0, data_dir=folder)
    valid = read_first("valid", fold=0, data_dir=folder)
    test = read_first("test", fold=0, data_dir=folder)
    assert (len(train), len(valid), len(test)) == (8, 4, 4)
    assert train.description == "fold 0 train" and train[0].fold == 0
    assert {im.name for im in train} | {im.name for im in valid} == {
        n for n, (s, _) in truth.items() if s in ("train", "valid")}
    # the same image as in the literature split: same position, pixels and noise
    lit = {im.name: im for im in read_first("test", data_dir=folder)}
    for im in test:
        other = lit[im.name]
        assert (im.ra, im.dec, im.label, im.catalogue) == (other.ra, other.dec, other.label,
                                                            other.catalogue)
        assert np.array_equal(im.data, other.data)
        assert np.array_equal(im.pseudo_brightness(), other.pseudo_brightness())
    path = write_first_coco("valid", tmp_path / "cv", fold=0, data_dir=folder)
    coco = json.loads(path.read_text())
    assert coco["info"]["fold"] == 0 and len(coco["images"]) == 4
    assert fits.getheader(tmp_path / "cv" / coco["images"][0]["file_name"])["FGFOLD"] == 0


def test_folds_need_h5py(tmp_path, monkeypatch):
    import builtins

    folder, _ = make_fake_first(tmp_path / "pkg")
    (folder / "galaxy_data_crossvalid_0_h5.zip").write_bytes(b"")
    real_import = builtins.__import__

    def no_h5py(name, *args, **kwargs):
        if name == "h5py":
            raise ImportError("No module named 'h5py'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_h5py)
    with pytest.raises(ModuleNotFoundError, match=r"need the package 'h5py'; install it "
                                                  r'with: pip install "galcam\[first\]"'):
        read_first("train", fold=0, data_dir=folder)


# ----------------------------------------------------------------------------- real data


@pytest.mark.skipif(importlib.util.find_spec("firstgalaxydata") is None,
                    reason="firstgalaxydata is not installed")
def test_real_test_images():
    """Three images of the real test split, from the installed package (no download)."""
    test = read_first("test")
    assert len(test) == 200 and test.counts == {c: 50 for c in FIRST_CLASSES}
    for img in test[:3]:
        assert img.shape == (300, 300) and img.data.max() == 255
        assert (img.data == 0).mean() > 0.9  # clipped background
        nd = img.to_nddata()
        assert nd.wcs.pixel_to_world(149.5, 149.5).separation(img.position) < 1e-6 * u.arcsec
        noise = NoiseEstimator()(nd)
        assert noise.rms.to_value(u.Jy / u.beam) == pytest.approx(RMS, rel=0.03)
        islands = find_islands(nd, noise, n_sigma=3, n_pixels=1)
        np.testing.assert_array_equal(islands.mask, img.data > 0)

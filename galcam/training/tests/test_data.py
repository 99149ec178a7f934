"""Weak-label views, encoding and the training datasets."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from galcam.datasets import CocoDataset, DatasetError
from galcam.preprocessing import CutoutEncoder
from galcam.training import data as tdata
from galcam.training import resolve_config

from ._tiny import make_dataset


@pytest.fixture(scope="module")
def png_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("png")
    return CocoDataset(make_dataset(root, n=4, size=40))


def test_only_weak_label_views_are_accepted(png_set):
    view = tdata.as_weak_view(png_set)
    assert len(view) == 4 and not hasattr(view, "annotations")
    assert tdata.as_weak_view(view) is view
    for bad in (list(view), png_set.annotations(100), {"images": []}):
        with pytest.raises(TypeError, match="image-level"):
            tdata.as_weak_view(bad)
    with pytest.raises(DatasetError, match="no images"):
        tdata.as_weak_view(view.split((1.0, 0.0))[1])


def test_encode_png(png_set):
    enc = tdata.encode_view(png_set.image_level(), CutoutEncoder())
    assert len(enc) == 4 and enc.n_channels == 3 and enc.source == "png"
    assert enc.images[0].shape == (3, 40, 40) and enc.images[0].dtype == np.float32
    # channels (ir, radio, radio) and the radio plane kept for the IRNet labels
    np.testing.assert_allclose(enc.images[0][1], enc.radio[0], atol=1e-4)
    np.testing.assert_array_equal(enc.labels, png_set.labels)
    assert enc.radio_summary()["pixel_scale_arcsec"] is None
    with pytest.raises(DatasetError, match="radio_snr"):
        tdata.encode_view(png_set.image_level(), CutoutEncoder(channels=("radio_snr",)))


def test_encode_fits_records_scale_and_beam_and_caches(tmp_path, monkeypatch):
    ds = CocoDataset(make_dataset(tmp_path / "fits", n=2, size=40, kind="fits"))
    cache = tmp_path / "cache"
    enc = tdata.encode_view(ds, CutoutEncoder(), cache_dir=cache)
    assert enc.source == "fits" and enc.images[0].shape == (3, 40, 40)
    summary = enc.radio_summary()
    assert summary["pixel_scale_arcsec"] == pytest.approx(2.0, rel=1e-3)
    assert summary["beam"]["major_arcsec"] == pytest.approx(12.0)
    assert summary["beam"]["minor_arcsec"] == pytest.approx(10.0)
    area = math.pi / (4 * math.log(2)) * 12.0 * 10.0
    assert summary["beam"]["area_range_arcsec2"] == pytest.approx([area, area])
    # images with different beams: the medians, and the range for check_beam
    mixed = dataclasses.replace(enc, beams=((12.0, 10.0, 0.0), (18.0, 15.0, 30.0), None))
    beam = mixed.radio_summary()["beam"]
    assert beam["major_arcsec"] == pytest.approx(15.0)
    assert beam["major_range_arcsec"] == [12.0, 18.0]
    assert beam["minor_range_arcsec"] == [10.0, 15.0]
    assert beam["area_range_arcsec2"] == pytest.approx([area, area * 18 * 15 / 120])
    assert len(list(cache.glob("*.npy"))) == 2
    assert enc.radio[0].max() == pytest.approx(1.0) and enc.radio[0].min() == 0.0

    def boom(*args, **kwargs):
        raise AssertionError("encoded again instead of reading the cache")

    monkeypatch.setattr(tdata, "_encode_fits", boom)
    again = tdata.encode_view(ds, CutoutEncoder(), cache_dir=cache)
    np.testing.assert_array_equal(again.images[1], enc.images[1])
    assert again.beams == enc.beams
    # other encoder settings -> another fingerprint -> encoded again
    with pytest.raises(AssertionError, match="encoded again"):
        tdata.encode_view(ds, CutoutEncoder(n_sigma=4.0), cache_dir=cache)


def test_classification_set_is_seeded_per_epoch_and_item(png_set):
    enc = tdata.encode_view(png_set, CutoutEncoder())
    cfg = resolve_config("fast", cam_crop_size=24)
    ds = tdata.ClassificationSet(enc, cfg.cam, cfg, seed=3, key=1)
    a, la, i = ds[2]
    assert a.shape == (3, 24, 24) and i == 2 and torch.equal(la, torch.from_numpy(enc.labels[2]))
    assert torch.equal(ds[2][0], a)
    ds.set_epoch(1)
    assert not torch.equal(ds[2][0], a)
    ds.set_epoch(0)
    assert torch.equal(ds[2][0], a)
    other = tdata.ClassificationSet(enc, cfg.cam, cfg, seed=4, key=1)
    assert not torch.equal(other[2][0], a)
    # normalised with the ImageNet statistics; padding is 0 after normalisation
    assert abs(float(a.mean())) < 5


def test_affinity_set_reduces_labels_to_the_grid(png_set):
    enc = tdata.encode_view(png_set, CutoutEncoder())
    cfg = resolve_config("fast", irnet_crop_size=48, irnet_radius=5)
    labels = [np.where(r > 0, 1, 0).astype(np.uint8) for r in enc.radio]
    ds = tdata.AffinitySet(enc, labels, cfg.irnet, cfg, seed=0, key=2)
    img, lab, _ = ds[0]
    assert img.shape == (3, 48, 48) and lab.shape == (12, 12) and lab.dtype == torch.int64
    assert set(lab.unique().tolist()) <= {0, 1, 255}
    with pytest.raises(ValueError, match="ir_labels"):
        tdata.AffinitySet(enc, labels[:2], cfg.irnet, cfg, seed=0, key=2)
    plain = tdata.PlainSet(enc, cfg, size=48)
    x, _, _ = plain[0]
    assert x.shape == (3, 48, 48)
    assert torch.allclose(x[:, 45, 45], torch.zeros(3), atol=1e-6)  # padded with the mean

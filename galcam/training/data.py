"""Training data: weak labels only, encoded once, augmented on the fly.

A weakly-supervised trainer may see image-level class labels and nothing else
(Gupta et al. 2023, section 3.2: "no additional supervision, besides image-level
class labels"). `as_weak_view` therefore accepts only a
`~galcam.datasets.WeakLabelView` (or a `~galcam.datasets.CocoDataset`, from which
it takes `~galcam.datasets.CocoDataset.image_level`): masks, boxes and keypoints are
out of reach of everything in this module.

Each image is encoded once with a `~galcam.preprocessing.CutoutEncoder` (radio and
infrared FITS) or decoded from the paper's 3-channel PNG encoding, and the float
channels are kept in memory (`EncodedSet`), optionally also as ``.npy`` files in a
cache folder so that a resumed run does not encode again. The torch datasets
`ClassificationSet` (CAM, ReCAM) and `AffinitySet` (IRNet) augment them with seeded
torch operations (`galcam.training.augment`).
"""

import hashlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._validation import readonly
from ..datasets.coco import CocoDataset, DatasetError, WeakLabelView
from ..io import GAUSS_AREA, atomic_write
from . import augment

__all__ = [
    "as_weak_view",
    "EncodedSet",
    "encode_view",
    "ClassificationSet",
    "AffinitySet",
    "normalize",
    "fill_values",
]

log = logging.getLogger(__name__)

_PNG_CHANNELS = ("ir", "radio", "zeros")


def as_weak_view(dataset, name="dataset"):
    """The image-level view of a training data set; nothing else is accepted.

    Parameters
    ----------
    dataset : `~galcam.datasets.WeakLabelView` or `~galcam.datasets.CocoDataset`
        A COCO data set is reduced to its `~galcam.datasets.CocoDataset.image_level`
        view (image ids, paths and multi-hot class labels; no annotations).
    name : str
        Parameter name used in error messages.

    Returns
    -------
    view : `~galcam.datasets.WeakLabelView`

    Raises
    ------
    TypeError
        Any other object (a trainer must not be handed something that could reach
        masks or keypoints).
    DatasetError
        An empty data set.
    """
    if isinstance(dataset, CocoDataset):
        dataset = dataset.image_level()
    if not isinstance(dataset, WeakLabelView):
        raise TypeError(f"{name}: expected a galcam.datasets.CocoDataset or its image_level() "
                        f"WeakLabelView, got {type(dataset).__name__}; training reads image-level "
                        "labels only")
    if len(dataset) == 0:
        raise DatasetError(f"{name}: {dataset!r} holds no images")
    return dataset


@dataclass(frozen=True)
class EncodedSet:
    """Encoded images of a data set, in memory.

    Attributes
    ----------
    image_ids : tuple of int
    images : tuple of `numpy.ndarray`
        float32 (C, H, W) encoded channels in [0, 1] (before normalisation), read-only.
    radio : tuple of `numpy.ndarray`
        float32 (H, W) pre-processed radio channel in [0, 1], zero outside the islands
        (used to refine IRNet's labels), read-only.
    labels : `numpy.ndarray`
        float32 (N, n_classes) image-level labels.
    classes : tuple of str
    channel_names : tuple of str
    source : {'fits', 'png'}
    pixel_scales : tuple of float or None
        Radio pixel scale of each image in arcsec (None for PNG data).
    beams : tuple of (float, float, float) or None
        Radio beam (major, minor in arcsec; position angle in degrees) of each image,
        None where unknown.
    """

    image_ids: tuple
    images: tuple
    radio: tuple
    labels: np.ndarray
    classes: tuple
    channel_names: tuple
    source: str
    pixel_scales: tuple
    beams: tuple

    def __len__(self):
        return len(self.image_ids)

    @property
    def n_channels(self):
        """Number of encoded channels C."""
        return self.images[0].shape[0]

    def radio_summary(self):
        """Median pixel scale and beam of the radio images (JSON-serialisable dict)."""
        scales = [s for s in self.pixel_scales if s is not None]
        beams = [b for b in self.beams if b is not None]
        out = {"pixel_scale_arcsec": None, "beam": None}
        if scales:
            out["pixel_scale_arcsec"] = float(np.median(scales))
            spread = (max(scales) - min(scales)) / out["pixel_scale_arcsec"]
            out["pixel_scale_range_arcsec"] = [float(min(scales)), float(max(scales))]
            if spread > 0.01:
                log.warning("training images have different pixel scales (%.3g to %.3g arcsec)",
                            min(scales), max(scales))
        if beams:
            arr = np.array(beams, dtype=float)
            area = GAUSS_AREA * arr[:, 0] * arr[:, 1]
            out["beam"] = {"major_arcsec": float(np.median(arr[:, 0])),
                           "minor_arcsec": float(np.median(arr[:, 1])),
                           "pa_deg": float(np.median(arr[:, 2])),
                           # the beams the model saw, for check_beam and beam matching
                           "major_range_arcsec": [float(arr[:, 0].min()),
                                                  float(arr[:, 0].max())],
                           "minor_range_arcsec": [float(arr[:, 1].min()),
                                                  float(arr[:, 1].max())],
                           "area_range_arcsec2": [float(area.min()), float(area.max())]}
        out["n_images_with_wcs"] = len(scales)
        return out

    def image_sizes(self):
        """(H, W) of every image."""
        return [tuple(int(v) for v in im.shape[1:]) for im in self.images]


def encoder_settings(encoder):
    """The settings of a `~galcam.preprocessing.CutoutEncoder` as a JSON-serialisable dict."""
    def noise(est):
        return {k: getattr(est, k) for k in ("method", "n_sigma", "maxiters", "box_size",
                                               "filter_size") if hasattr(est, k)}
    size = encoder.size
    return {
        "channels": list(encoder.channels),
        "n_sigma": encoder.n_sigma,
        "n_pixels": encoder.n_pixels,
        "ir_reproject": encoder.ir_reproject,
        "fill_value": encoder.fill_value,
        "snr_max": encoder.snr_max,
        "radio_noise": noise(encoder.radio_noise),
        "ir_noise": noise(encoder.ir_noise),
        "size": size if isinstance(size, (int, tuple, list)) else str(size),
    }


def _file_stamp(path):
    if path is None:
        return None
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def _fingerprint(record, settings):
    blob = json.dumps({"radio": _file_stamp(record.path), "ir": _file_stamp(record.ir_path),
                       "encoder": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _encode_png(record, channels):
    bad = [c for c in channels if c not in _PNG_CHANNELS]
    if bad:
        raise DatasetError(f"image {record.image_id} '{record.path}': a PNG in the paper's "
                           f"encoding has no {bad} channel; use channels made of "
                           f"{_PNG_CHANNELS}")
    radio01, ir01 = record.read_png()
    planes = {"ir": ir01, "radio": radio01, "zeros": np.zeros_like(radio01)}
    stack = np.stack([planes[c] for c in channels]).astype(np.float32)
    return stack, radio01.astype(np.float32), None, None


def _encode_fits(record, encoder):
    from ..io import pixel_scale

    ir = record.ir_path if record.ir_path is not None else None
    try:
        enc = encoder(record.path, ir)
    except (ValueError, OSError) as exc:
        raise DatasetError(f"image {record.image_id} '{record.path}': cannot encode it "
                           f"({exc})") from exc
    radio01, _ = enc.paper_channels()
    scale = float(pixel_scale(enc.wcs).value)
    beam = None
    if enc.beam is not None:
        b = enc.beam
        beam = (float(b.major.to_value("arcsec")), float(b.minor.to_value("arcsec")),
                float(b.pa.to_value("deg")))
    return (np.array(enc.channels, dtype=np.float32), np.array(radio01, dtype=np.float32),
            scale, beam)


def encode_view(view, encoder, *, cache_dir=None, progress=False, shard=None):
    """Encode every image of a weak-label view once.

    Parameters
    ----------
    view : `~galcam.datasets.WeakLabelView`
        Image paths and image-level labels (see `as_weak_view`).
    encoder : `~galcam.preprocessing.CutoutEncoder`
        Encodes FITS images (the whole image; radio and, when the data set names one,
        infrared). For PNG data sets in the paper's encoding its ``channels`` choose
        the planes (``'ir'``, ``'radio'``, ``'zeros'``).
    cache_dir : path-like, optional
        Folder of ``.npy`` files (one per image, named by image id and a fingerprint of
        the files and the encoder's settings); images found there are not encoded again.
    progress : bool, optional
        tqdm progress bar (only on a terminal).
    shard : (int, int), optional
        ``(rank, world_size)``: encode only images ``rank::world_size`` and return
        `None` for the others (used to split the work between processes).

    Returns
    -------
    `EncodedSet`, or with ``shard`` a list of per-image tuples (None where skipped).
    """
    view = as_weak_view(view, "view")
    settings = encoder_settings(encoder)
    cache_dir = None if cache_dir is None else Path(cache_dir)
    items = list(view)
    rank, world = shard if shard is not None else (0, 1)
    it = range(len(items))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="encoding", disable=not sys.stderr.isatty(), leave=False)
    out = []
    n_cached = 0
    for i in it:
        if i % world != rank:
            out.append(None)
            continue
        rec = items[i]
        cached = None
        if cache_dir is not None:
            stem = f"{rec.image_id}-{_fingerprint(rec, settings)}"
            npy, meta = cache_dir / f"{stem}.npy", cache_dir / f"{stem}.json"
            if npy.is_file() and meta.is_file():
                try:
                    arr = np.load(npy)
                    info = json.loads(meta.read_text())
                    cached = (arr[:-1], arr[-1], info["pixel_scale"],
                              None if info["beam"] is None else tuple(info["beam"]))
                    n_cached += 1
                except (OSError, ValueError, KeyError) as exc:
                    log.warning("ignoring unreadable cache file %s (%s)", npy, exc)
        if cached is None:
            if rec.is_png:
                cached = _encode_png(rec, encoder.channels)
            else:
                cached = _encode_fits(rec, encoder)
            if cache_dir is not None:
                stack = np.concatenate([cached[0], cached[1][None]])
                atomic_write(npy, lambda p, a=stack: _save_npy(p, a))
                info = {"image_id": rec.image_id, "pixel_scale": cached[2],
                        "beam": None if cached[3] is None else list(cached[3])}
                text = json.dumps(info)
                atomic_write(meta, lambda p, t=text: Path(p).write_text(t))
        channels, radio01 = cached[0], cached[1]
        if not np.isfinite(channels).all():
            raise DatasetError(f"image {rec.image_id} '{rec.path}': encoded channels are not "
                               "finite")
        out.append((rec.image_id, readonly(np.ascontiguousarray(channels, np.float32)),
                    readonly(np.ascontiguousarray(radio01, np.float32)), cached[2], cached[3]))
    if n_cached:
        log.info("read %d encoded images from the cache %s", n_cached, cache_dir)
    if shard is not None:
        return out
    return assemble(view, out, encoder.channels, source=_source(view))


def _source(view):
    kinds = {rec.is_png for rec in view}
    if len(kinds) > 1:
        raise DatasetError(f"{view!r}: mixes PNG and FITS images; use one kind per data set")
    return "png" if kinds.pop() else "fits"


def _save_npy(path, array):
    with open(path, "wb") as fh:
        np.save(fh, array)


def assemble(view, items, channel_names, *, source):
    """Build an `EncodedSet` from the per-image tuples of `encode_view`."""
    if any(item is None for item in items):
        raise ValueError("assemble: some images were not encoded")
    shapes = {item[1].shape[0] for item in items}
    if len(shapes) != 1:
        raise DatasetError(f"{view!r}: images have different numbers of channels {shapes}")
    return EncodedSet(
        image_ids=tuple(item[0] for item in items),
        images=tuple(item[1] for item in items),
        radio=tuple(item[2] for item in items),
        labels=np.array(view.labels, dtype=np.float32),
        classes=tuple(view.classes),
        channel_names=tuple(channel_names),
        source=source,
        pixel_scales=tuple(item[3] for item in items),
        beams=tuple(item[4] for item in items),
    )


def fill_values(config, n_channels):
    """Per-channel encoded value of pixels brought in by rotations and padding."""
    if config.fill == "mean":
        return torch.tensor(config.mean[:n_channels], dtype=torch.float32)
    return torch.zeros(n_channels)


def normalize(image, mean, std):
    """``(image - mean) / std`` per channel for a (C, H, W) or (B, C, H, W) tensor."""
    mean = torch.as_tensor(mean, dtype=image.dtype, device=image.device).reshape(-1, 1, 1)
    std = torch.as_tensor(std, dtype=image.dtype, device=image.device).reshape(-1, 1, 1)
    return (image - mean) / std


def _check_channels(encoded, config):
    if len(config.mean) != encoded.n_channels:
        raise ValueError(f"mean/std: {len(config.mean)} values for {encoded.n_channels} encoded "
                         f"channels {encoded.channel_names}; pass mean=..., std=... with one "
                         "value per channel")


class _AugmentedSet(torch.utils.data.Dataset):
    """Encoded images with seeded augmentations: item i of epoch e draws from (seed, key, e, i)."""

    def __init__(self, encoded, stage, config, *, seed, key):
        _check_channels(encoded, config)
        self.encoded = encoded
        self.stage = stage
        self.mean, self.std = config.mean, config.std
        self.fill = fill_values(config, encoded.n_channels)
        self.seed = int(seed)
        self.key = int(key)
        self.epoch = 0

    def __len__(self):
        return len(self.encoded)

    def set_epoch(self, epoch):
        """Select the epoch whose augmentations `__getitem__` draws."""
        self.epoch = int(epoch)

    def generator(self, index):
        return augment.make_generator(self.seed, self.key, self.epoch, int(index))


class ClassificationSet(_AugmentedSet):
    """Augmented images and image-level labels for CAM and ReCAM training.

    Per item, as the reference (section 3.2 of its specification) but with torch
    operations: resize by a factor drawn in ``scale_range`` (bicubic), horizontal flip,
    optional rotation by a random integer angle (bicubic, fill value per
    ``config.fill``), random crop of ``crop_size`` (padded with the fill value where
    the image is smaller), normalisation.

    Parameters
    ----------
    encoded : `EncodedSet`
    stage : `~galcam.training.StageConfig`
    config : `~galcam.training.TrainingConfig`
    seed : int
    key : int
        Distinguishes the stages' random streams.

    Items are ``(image (C, S, S) float32, labels (n_classes,) float32, index)``.
    """

    def __getitem__(self, index):
        g = self.generator(index)
        img = torch.from_numpy(np.array(self.encoded.images[index]))
        st = self.stage
        img, _ = augment.random_scale(img, st.scale_range, g)
        if st.hflip:
            img, _ = augment.random_hflip(img, g)
        if st.rotate:
            img = augment.random_rotate(img, g, fill=self.fill)
        img, _ = augment.random_crop(img, st.crop_size, g, fill=self.fill)
        img = normalize(img, self.mean, self.std)
        return img, torch.from_numpy(self.encoded.labels[index].copy()), index


class AffinitySet(_AugmentedSet):
    """Augmented images and IRNet labels on the stride-4 grid.

    Per item, as the reference ``COCOAffinityDataset`` (section 8.3 of its
    specification): random scale in ``scale_range`` (bicubic image, nearest labels),
    horizontal flip of both, random crop of ``crop_size`` (image padded with the fill
    value, labels with 255), normalisation, and labels reduced to the stride-4 grid
    (`galcam.models.irnet.reduce_labels`).

    Items are ``(image (C, S, S) float32, labels (S4, S4) int64, index)`` with
    ``S4 = (S - 1) // 4 + 1``.
    """

    def __init__(self, encoded, ir_labels, stage, config, *, seed, key):
        super().__init__(encoded, stage, config, seed=seed, key=key)
        if len(ir_labels) != len(encoded):
            raise ValueError(f"ir_labels: expected {len(encoded)} label maps, got {len(ir_labels)}")
        self.ir_labels = ir_labels

    def __getitem__(self, index):
        from ..models.irnet import reduce_labels

        g = self.generator(index)
        img = torch.from_numpy(np.array(self.encoded.images[index]))
        lab = torch.from_numpy(np.array(self.ir_labels[index], dtype=np.uint8))
        st = self.stage
        img, lab = augment.random_scale(img, st.scale_range, g, label=lab)
        if st.hflip:
            img, lab = augment.random_hflip(img, g, label=lab)
        img, lab = augment.random_crop(img, st.crop_size, g, label=lab, fill=self.fill)
        img = normalize(img, self.mean, self.std)
        return img, reduce_labels(lab).long(), index


class PlainSet(torch.utils.data.Dataset):
    """Normalised images without augmentation, cropped or padded at the top left.

    Used for IRNet's mean-shift calibration (reference: top-left crop or pad to the
    training crop size, pad value 0 after normalisation) and for validation.
    Items are ``(image (C, S, S), labels, index)``; with ``size=None`` and ``scale``
    the whole resized image is returned (sizes may then differ between items).
    """

    def __init__(self, encoded, config, *, size=None, scale=1.0):
        _check_channels(encoded, config)
        self.encoded = encoded
        self.size = size
        self.scale = float(scale)
        self.mean, self.std = config.mean, config.std
        self.fill = fill_values(config, encoded.n_channels)

    def __len__(self):
        return len(self.encoded)

    def __getitem__(self, index):
        img = torch.from_numpy(np.array(self.encoded.images[index]))
        img, _ = augment.resize(img, self.scale)
        if self.size is not None:
            c, h, w = img.shape
            s = self.size
            out = self.fill.reshape(-1, 1, 1).expand(c, s, s).clone()
            out[:, :min(h, s), :min(w, s)] = img[:, :s, :s]
            img = out
        img = normalize(img, self.mean, self.std)
        return img, torch.from_numpy(self.encoded.labels[index].copy()), index

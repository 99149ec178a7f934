"""The FIRST radio galaxy data set of Griese et al. (2023) as galcam data.

The PyPI package ``firstgalaxydata`` (MIT licence; Griese et al. 2023, Data in Brief 47,
108974, doi:10.5281/zenodo.7120632) ships inside its wheel 2,158 cutouts of the VLA FIRST
survey (1.4 GHz, 1.8 arcsec pixels, 5.4 arcsec beam), 300 x 300 pixels each, with one
morphological class per image (``FRI``, ``FRII``, ``Compact``, ``Bent``) and the sky
position of the source. This module reads them from the installed package's folder (it
never imports the package, which imports torch, and never downloads anything) and turns
them into galcam data: FITS images with a celestial WCS and a beam, and a COCO data set
with one image-level label per image.

What the package holds (version 0.2.1)
--------------------------------------
Zip files next to its module:

- ``galaxy_data.zip``: ``galaxy_data/{train,valid,test,all}/{FRI,FRII,Compact,Bent}/``
  ``RA_DEC_LABEL_CATALOGUE.png``: 8-bit grey PNGs; the file name holds the position (J2000
  degrees, to 0.001 deg), the label (0 = FRI, 1 = FRII, 2 = Compact, 3 = Bent) and the
  catalogue the label comes from (MiraBest, Gendre, Capetti2017a, Capetti2017b, Baldi2018,
  Proctor_Tab1). The literature split: train 1758, valid 200, test 200 images.
- ``galaxy_data_h5.zip``: the same images, labels and positions in one HDF5 file (one group
  per image: ``Img`` uint8 (300, 300) with attributes ``RA``, ``DEC``, ``Source``,
  ``Filepath_literature``; ``Label_literature``; ``Split_literature``). Pixel for pixel
  the same as the PNGs.
- ``galaxy_data_crossvalid_{0..4}_h5.zip``: five cross-validation folds of the 1758 images
  of train + valid (about 1405 train / 353 valid each), and
  ``galaxy_data_crossvalid_test_h5.zip``: their test set of 400 images (100 per class).

The literature split is read from the PNGs (Pillow, a galcam dependency), the folds from
the HDF5 files (``h5py``, installed with ``firstgalaxydata``).

The clipping, and galcam's pseudo-brightness
--------------------------------------------
The images are not in Jy/beam. Griese et al. set every pixel below three times the local
rms of the noise to that threshold and scaled each image linearly to 0-255 (every image has
minimum 0 and maximum 255; 99.6 per cent of the pixels of a typical image are 0). The
background is therefore exactly 0: an image as stored has no measurable noise, so galcam's
noise estimate would be 0 and its 3-sigma islands undefined. The peak brightness of each
image is not recorded, so the brightness cannot be restored either.

galcam says so instead of pretending the data are calibrated. It writes a
*pseudo-brightness* in Jy/beam (FITS keyword ``PSEUDOBR = T``): with ``rms`` FIRST's
typical noise, 0.15 mJy/beam,

- a kept pixel of 8-bit value ``v >= 1`` becomes ``(3 + v) * rms``: the clip level,
  ``3 * rms`` (value 0), plus one ``rms`` per 8-bit step. Brightness ratios inside an
  image are FIRST's (linear, up to the 8-bit quantisation) relative to the clip level,
  but the contrast assumes a peak of 258 rms, whatever the source's real peak was;
- a clipped pixel (``v = 0``) gets Gaussian noise of rms ``noise`` times the clip level
  (default 1/3, i.e. ``rms`` itself: FIRST's clip was at 3 sigma), truncated at 97 per
  cent of the clip level (every clipped pixel was below the clip; the 3 per cent margin,
  2.91 sigma at the default, keeps restored noise out of galcam's 3-sigma islands although
  the measured sigma scatters by about 1 per cent from image to image), drawn with a
  generator seeded per image (``seed`` and the image's name), so the same image always
  gets the same noise. The noise is white (uncorrelated between pixels).

With the default ``noise=1/3`` galcam's noise estimator measures ``rms`` to about one per
cent (on the 200 test images: median 0.998, range 0.990 to 1.005 of ``rms``; the
truncation narrows the Gaussian by 0.9 per cent) and its 3-sigma islands are exactly the
pixels that FIRST's clipping kept (checked on all 200 test images with islands of any
size). A larger ``noise`` puts
galcam's 3-sigma threshold above the clip level (faint kept pixels are lost), a smaller
one below it (nothing more is found: the clipped pixels are gone); ``noise=0`` writes
the clipped background as 0, which galcam's noise estimator cannot measure. Fluxes in a
galcam catalogue of these images are pseudo-fluxes.

Sky coordinates: the position in the data set is taken as the centre of the image
(pixel ``((n - 1) / 2, (n - 1) / 2)``, 0-based, the SkyView convention; the median
centroid of the compact sources is at 149.5 +- 0.1 px in both axes), in a gnomonic (TAN)
projection with 1.8 arcsec pixels, north up and east to the left. The positions are
rounded to 0.001 deg (3.6 arcsec, 2 pixels) in the data set, so a pixel's sky position is
uncertain by up to about 1 pixel. The arrays are taken in the order they are stored
(row 0 as FITS row 1, i.e. south at the bottom when RA decreases with x), as a direct
conversion of SkyView's FITS images to PNG leaves them; the data set does not record its
orientation.
"""

import importlib.util
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from .._validation import (
    OptionTypeError,
    check_bool,
    check_fraction,
    check_quantity,
    is_integer,
    readonly,
)
from .contract import DatasetError

__all__ = [
    "FIRST_CLASSES",
    "FIRST_SPLITS",
    "FIRST_N_FOLDS",
    "FIRST_PIXEL_SCALE",
    "FIRST_BEAM",
    "FIRST_RMS",
    "FIRST_PROVENANCE",
    "FirstImage",
    "FirstSplit",
    "first_data_dir",
    "read_first",
    "write_first_coco",
]

log = logging.getLogger(__name__)

#: The classes of the data set, in the order of its numeric labels 0, 1, 2, 3.
FIRST_CLASSES = ("FRI", "FRII", "Compact", "Bent")

#: The splits of the data set.
FIRST_SPLITS = ("train", "valid", "test")

#: Number of cross-validation folds (``fold=0`` to ``fold=4``).
FIRST_N_FOLDS = 5

#: Pixel scale of the FIRST cutouts.
FIRST_PIXEL_SCALE = 1.8 * u.arcsec

#: FWHM of FIRST's (circular) restoring beam.
FIRST_BEAM = 5.4 * u.arcsec

#: FIRST's typical noise, the scale of galcam's pseudo-brightness (see the module notes).
FIRST_RMS = 0.15 * u.mJy / u.beam

#: The provenance and copyright line of the FIRST images, as the data set's README gives it.
FIRST_PROVENANCE = (
    "Provenance: The FIRST project team: R.J. Becker, D.H. Helfand, R.L. White M.D. Gregg. "
    "S.A. Laurent-Muehleisen. Copyright: 1994, University of California. Permission is "
    "granted for publication and reproduction of this material for scholarly, educational, "
    "and private non-commercial use. Inquiries for potential commercial uses should be "
    "addressed to: Robert Becker, Physics Dept, University of California, Davis, CA 95616"
)

_REFERENCE = ("Griese et al. 2023, Data in Brief 47, 108974: FIRST radio galaxy data set "
              "containing curated labels of classes FRI, FRII, compact and bent")
_DOI = "https://doi.org/10.5281/zenodo.7120632"
_PACKAGE = "firstgalaxydata"
_INSTALL_HINT = 'pip install "galcam[first]"'
_CLIP_SIGMA = 3.0  # Griese et al. clipped at 3 x the local rms
_TRUNCATE = 0.97  # restored noise stays below this fraction of the clip level
_PNG_ZIP = "galaxy_data.zip"
_FOLD_ZIP = "galaxy_data_crossvalid_{}_h5.zip"
_FOLD_TEST_ZIP = "galaxy_data_crossvalid_test_h5.zip"
_NAME = re.compile(r"^(?P<ra>[-+]?\d+(?:\.\d*)?)_(?P<dec>[-+]?\d+(?:\.\d*)?)_(?P<label>\d)_"
                   r"(?P<catalogue>.+)$")


# ----------------------------------------------------------------------------- options


def _check_options(noise, rms, seed):
    """The pseudo-brightness options, checked: ``(noise, rms in Jy/beam, seed)``."""
    noise = check_fraction(noise, "noise", expected="a fraction of the clip level in [0, 1]")
    rms = check_quantity(rms, "rms", u.Jy / u.beam,
                         expected="a brightness Quantity such as 0.15 * u.mJy / u.beam")
    if not is_integer(seed) or seed < 0:
        raise OptionTypeError(f"seed: expected a non-negative integer, got {seed!r}")
    return float(noise), float(rms.to_value(u.Jy / u.beam)), int(seed)


def _check_split(split, fold):
    if not isinstance(split, str) or split not in FIRST_SPLITS:
        raise ValueError(f"split: expected one of {', '.join(map(repr, FIRST_SPLITS))}, "
                         f"got {split!r}")
    if fold is not None and (not is_integer(fold) or not 0 <= fold < FIRST_N_FOLDS):
        raise ValueError(f"fold: expected None (the literature split) or an integer 0 to "
                         f"{FIRST_N_FOLDS - 1} (a cross-validation fold), got {fold!r}")
    return split, None if fold is None else int(fold)


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FirstImage:
    """One image of the FIRST data set: its 8-bit pixels, label and sky position.

    Attributes
    ----------
    name : str
        The data set's name of the image, ``RA_DEC_LABEL_CATALOGUE`` (e.g.
        ``"116.785_17.291_0_MiraBest"``), unique in the data set.
    label : str
        Its class, one of `FIRST_CLASSES`.
    ra, dec : float
        The source's position (J2000, taken as ICRS), in degrees, to 0.001 deg as the data
        set records it; the centre of the image.
    catalogue : str
        The catalogue the label comes from (``"MiraBest"``, ``"Gendre"``, ...).
    split : str
        ``"train"``, ``"valid"`` or ``"test"``.
    fold : int or None
        The cross-validation fold, or `None` for the literature split.
    data : `numpy.ndarray`
        The image as stored, uint8 of shape (300, 300), indexed ``[y, x]``; read-only.
        0 is the clip level (3 x the local rms), 255 the brightest pixel.
    """

    name: str
    label: str
    ra: float
    dec: float
    catalogue: str
    split: str
    fold: object
    data: np.ndarray

    @property
    def label_index(self):
        """The data set's numeric label: 0 FRI, 1 FRII, 2 Compact, 3 Bent."""
        return FIRST_CLASSES.index(self.label)

    @property
    def shape(self):
        """``(ny, nx)`` in pixels."""
        return self.data.shape

    @property
    def position(self):
        """The image centre as a `~astropy.coordinates.SkyCoord` (ICRS)."""
        return SkyCoord(self.ra * u.deg, self.dec * u.deg, frame="icrs")

    @property
    def wcs(self):
        """The celestial WCS: TAN, centred on (``ra``, ``dec``), 1.8 arcsec pixels.

        The reference pixel is the image centre, ``((n - 1) / 2, (n - 1) / 2)`` 0-based
        (``CRPIX = (n + 1) / 2``); north is up and east to the left (``CDELT1 < 0``).
        """
        ny, nx = self.shape
        scale = FIRST_PIXEL_SCALE.to_value(u.deg)
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.cunit = ["deg", "deg"]
        w.wcs.crval = [self.ra, self.dec]
        w.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
        w.wcs.cdelt = [-scale, scale]
        w.wcs.radesys = "ICRS"
        return w

    def pseudo_brightness(self, *, noise=1 / 3, rms=FIRST_RMS, seed=0):
        """The image in galcam's pseudo-brightness, with the clipped background restored.

        Parameters
        ----------
        noise : float, optional
            Rms of the restored background noise as a fraction of the clip level, in
            [0, 1]. Default 1/3: the clip was at 3 sigma, so the restored noise has FIRST's
            sigma and galcam's 3-sigma islands are the pixels the clipping kept.
        rms : `~astropy.units.Quantity`, optional
            The brightness scale (Jy/beam or equivalent): the clip level is ``3 * rms``
            and one 8-bit step is ``rms``. Default `FIRST_RMS` (0.15 mJy/beam).
        seed : int, optional
            Seed of the noise; combined with the image's ``name``, so each image has its
            own noise and the same image always the same.

        Returns
        -------
        data : `~astropy.units.Quantity`
            float32 array in Jy/beam, indexed ``[y, x]``: ``(3 + v) * rms`` where the 8-bit
            value ``v`` is at least 1; Gaussian noise of rms ``noise * 3 * rms``, truncated
            at 97 per cent of the clip level ``3 * rms``, where ``v == 0`` (0 there if
            ``noise == 0``).
        """
        noise, rms_jy, seed = _check_options(noise, rms, seed)
        return _pseudo_brightness(self, noise, rms_jy, seed) * (u.Jy / u.beam)

    def to_hdu(self, *, noise=1 / 3, rms=FIRST_RMS, seed=0):
        """The image as a FITS primary HDU in pseudo-brightness (see `pseudo_brightness`).

        The header has the celestial WCS (`wcs`), ``BUNIT = 'Jy/beam'``, the beam
        (``BMAJ = BMIN = 5.4"``, ``BPA = 0``), ``PSEUDOBR = T`` and the conversion
        (``FGCLIP`` clip level and ``FGSTEP`` 8-bit step in Jy/beam, ``FGNOISE`` rms of
        the restored noise, ``FGNFRAC``, ``FGSEED``), and the image's label, catalogue,
        name, split and fold (``FGCLASS``, ``FGLABEL``, ``FGCAT``, ``FGNAME``,
        ``FGSPLIT``, ``FGFOLD``).

        Returns
        -------
        hdu : `~astropy.io.fits.PrimaryHDU`
        """
        noise, rms_jy, seed = _check_options(noise, rms, seed)
        data = _pseudo_brightness(self, noise, rms_jy, seed)
        return fits.PrimaryHDU(data, header=_header(self, noise, rms_jy, seed))

    def to_nddata(self, *, noise=1 / 3, rms=FIRST_RMS, seed=0):
        """The image as galcam reads a FITS image (`galcam.io.read_image`).

        Parameters as for `pseudo_brightness`.

        Returns
        -------
        image : `~astropy.nddata.NDData`
            float32 pseudo-brightness in Jy/beam with the celestial ``wcs`` and, in
            ``meta``, the ``beam``, the FITS ``header`` and the ``label``.
        """
        from ..io import read_image

        image = read_image(self.to_hdu(noise=noise, rms=rms, seed=seed))
        image.meta["label"] = self.label
        return image


class FirstSplit:
    """The images of one split of the FIRST data set (a read-only sequence of `FirstImage`).

    Obtain one with `read_first`.

    Attributes
    ----------
    split : str
    fold : int or None
    source : `pathlib.Path`
        The zip file the images were read from.
    """

    def __init__(self, images, *, split, fold, source):
        self._images = tuple(images)
        self.split, self.fold, self.source = split, fold, Path(source)

    @property
    def classes(self):
        """The data set's class names, in the order of its numeric labels."""
        return FIRST_CLASSES

    @property
    def labels(self):
        """The class of every image, in order."""
        return tuple(img.label for img in self._images)

    @property
    def counts(self):
        """Number of images per class, ``{'FRI': ..., 'FRII': ..., ...}``."""
        return {c: sum(img.label == c for img in self._images) for c in FIRST_CLASSES}

    @property
    def description(self):
        """``"test"``, or ``"fold 2 train"`` for a cross-validation split."""
        return self.split if self.fold is None else f"fold {self.fold} {self.split}"

    def __len__(self):
        return len(self._images)

    def __getitem__(self, index):
        return self._images[index]

    def __iter__(self):
        return iter(self._images)

    def __repr__(self):
        counts = ", ".join(f"{c} {n}" for c, n in self.counts.items())
        return f"<FirstSplit {self.description}: {len(self)} images ({counts})>"


# ----------------------------------------------------------------------------- finding files


def first_data_dir():
    """The folder of the installed ``firstgalaxydata`` package, which holds its zip files.

    The package is located without importing it (importing it imports torch).

    Returns
    -------
    path : `pathlib.Path`

    Raises
    ------
    ModuleNotFoundError
        ``firstgalaxydata`` is not installed; the message says how to install it.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModuleNotFoundError(
            f"the FIRST data set needs the package '{_PACKAGE}', which is not installed; "
            f"install it with: {_INSTALL_HINT}", name=_PACKAGE)
    return Path(locations[0])


def _archive(split, fold, data_dir):
    """``(zip path, member)`` of a split; the member is None for the PNG archive."""
    folder = first_data_dir() if data_dir is None else Path(data_dir)
    if fold is None:
        name, member = _PNG_ZIP, None
    elif split == "test":
        name, member = _FOLD_TEST_ZIP, _FOLD_TEST_ZIP.replace(".zip", ".h5")
    else:
        name = _FOLD_ZIP.format(fold)
        member = name.replace(".zip", ".h5")
    path = folder / name
    if not path.is_file():
        where = "the data_dir" if data_dir is not None else f"the installed '{_PACKAGE}'"
        raise FileNotFoundError(
            f"'{path}': no such file in {where} folder '{folder}'; the FIRST "
            f"{'split' if fold is None else 'fold'} needs '{name}' (reinstall it with "
            f"pip install --force-reinstall {_PACKAGE}; galcam never downloads it)")
    return path, member


def _parse_name(stem, where):
    m = _NAME.match(stem)
    if m is None:
        raise DatasetError(f"{where}: the file name {stem!r} is not RA_DEC_LABEL_CATALOGUE")
    label = int(m["label"])
    if label >= len(FIRST_CLASSES):
        raise DatasetError(f"{where}: label {label} of {stem!r} is not one of 0-3 "
                           f"({', '.join(FIRST_CLASSES)})")
    ra, dec = float(m["ra"]), float(m["dec"])
    if not (0 <= ra < 360 and -90 <= dec <= 90):
        raise DatasetError(f"{where}: position ({ra}, {dec}) of {stem!r} is not on the sky")
    return ra, dec, FIRST_CLASSES[label], m["catalogue"]


def _check_pixels(arr, where):
    if arr.ndim != 2 or arr.dtype != np.uint8 or min(arr.shape) < 2:
        raise DatasetError(f"{where}: expected a 2-D 8-bit grey image, got "
                           f"{arr.dtype} of shape {arr.shape}")
    return readonly(arr)


def _read_png_split(path, split, where):
    from PIL import Image

    prefix = f"galaxy_data/{split}/"
    images = []
    with zipfile.ZipFile(path) as zf:
        members = sorted(n for n in zf.namelist()
                         if n.startswith(prefix) and n.lower().endswith(".png"))
        for member in members:
            parts = member[len(prefix):].split("/")
            if len(parts) != 2:
                raise DatasetError(f"{where}: '{member}' is not in {prefix}CLASS/NAME.png")
            folder, file_name = parts
            stem = file_name[:-4]
            ra, dec, label, catalogue = _parse_name(stem, f"{where}: '{member}'")
            if folder != label:
                raise DatasetError(f"{where}: '{member}': label {label} in the file name, "
                                   f"folder {folder!r}")
            with zf.open(member) as fh, Image.open(fh) as im:
                if im.mode != "L":
                    raise DatasetError(f"{where}: '{member}' is a {im.mode} PNG, expected "
                                       "8-bit grey (mode L)")
                arr = np.array(im)
            images.append(FirstImage(stem, label, ra, dec, catalogue, split, None,
                                     _check_pixels(arr, f"{where}: '{member}'")))
    return sorted(images, key=lambda im: im.name)


def _import_h5py():
    try:
        import h5py
    except ImportError as exc:
        raise ModuleNotFoundError(
            "the cross-validation folds of the FIRST data set are HDF5 files, which need "
            f"the package 'h5py'; install it with: {_INSTALL_HINT}", name="h5py") from exc
    return h5py


def _read_h5_split(path, member, split, fold, where):
    h5py = _import_h5py()
    with zipfile.ZipFile(path) as zf:
        try:
            blob = zf.read(member)
        except KeyError:
            raise DatasetError(f"{where}: the archive holds no '{member}'") from None
    images = []
    try:
        fh = h5py.File(io.BytesIO(blob), "r")
    except OSError as exc:
        raise DatasetError(f"{where}: '{member}' is not a readable HDF5 file ({exc})") from exc
    with fh:
        for key in fh:
            group = fh[key]
            try:
                if group["Split_literature"].asstr()[()] != split:
                    continue
                img = group["Img"]
                stem = Path(str(img.attrs["Filepath_literature"])).stem
                label = int(group["Label_literature"][()])
                ra, dec = float(img.attrs["RA"]), float(img.attrs["DEC"])
                catalogue = str(img.attrs["Source"])
                arr = np.array(img)
            except KeyError as exc:
                raise DatasetError(f"{where}: group '{key}' of '{member}' lacks {exc} (expected "
                                   "Img with RA, DEC, Source and Filepath_literature, "
                                   "Label_literature, Split_literature)") from None
            name_ra, name_dec, name_label, _ = _parse_name(stem, f"{where}: group '{key}'")
            if not 0 <= label < len(FIRST_CLASSES) or FIRST_CLASSES[label] != name_label:
                raise DatasetError(f"{where}: group '{key}': Label_literature {label} "
                                   f"disagrees with its file name {stem!r}")
            # the attributes are the file name's 3-decimal values up to float rounding
            ra, dec = round(ra, 6), round(dec, 6)
            if abs(ra - name_ra) > 1e-6 or abs(dec - name_dec) > 1e-6:
                raise DatasetError(f"{where}: group '{key}': RA/DEC ({ra}, {dec}) disagree "
                                   f"with its file name {stem!r}")
            images.append(FirstImage(stem, name_label, ra, dec, catalogue, split, fold,
                                     _check_pixels(arr, f"{where}: group '{key}'")))
    return sorted(images, key=lambda im: im.name)


def read_first(split="train", *, fold=None, data_dir=None):
    """Read a split of the FIRST data set (Griese et al. 2023) from its installed files.

    Parameters
    ----------
    split : {'train', 'valid', 'test'}
        Which split.
    fold : int, optional
        `None` (default): the literature split (train 1758, valid 200, test 200 images,
        from ``galaxy_data.zip``). 0 to 4: a cross-validation fold (train about 1405,
        valid about 353; ``'test'`` is then the folds' common test set of 400 images).
    data_dir : path-like, optional
        The folder that holds the data set's zip files. Default: the folder of the
        installed ``firstgalaxydata`` package (found without importing it). Nothing is
        ever downloaded.

    Returns
    -------
    `FirstSplit`
        The images, sorted by name.

    Raises
    ------
    ModuleNotFoundError
        ``firstgalaxydata`` is not installed (and no ``data_dir`` was given), or a fold was
        asked for and ``h5py`` is not installed; the message says what to install.
    FileNotFoundError
        The zip file of the split is missing.
    DatasetError
        A zip file that does not hold the data set's layout; the message names the file and
        the entry.
    """
    split, fold = _check_split(split, fold)
    path, member = _archive(split, fold, data_dir)
    where = f"'{path}'"
    try:
        if member is None:
            images = _read_png_split(path, split, where)
        else:
            images = _read_h5_split(path, member, split, fold, where)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{where}: not a readable zip file ({exc})") from exc
    if not images:
        raise DatasetError(f"{where}: holds no image of split {split!r}")
    names = [im.name for im in images]
    if len(set(names)) != len(names):
        raise DatasetError(f"{where}: image names repeat in split {split!r}")
    result = FirstSplit(images, split=split, fold=fold, source=path)
    log.info("read %r from %s", result, path)
    return result


# ----------------------------------------------------------------------------- conversion


def _noise_rng(name, seed):
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def _pseudo_brightness(image, noise, rms_jy, seed):
    v = image.data
    clip = _CLIP_SIGMA * rms_jy
    out = np.zeros(v.shape, dtype=np.float32)
    kept = v > 0
    out[kept] = clip + v[kept].astype(np.float64) * rms_jy
    if noise > 0:
        sigma = noise * clip
        rng = _noise_rng(image.name, seed)
        n_bg = int((~kept).sum())
        values = rng.normal(0.0, sigma, n_bg)
        top = _TRUNCATE * clip  # every clipped pixel was below the clip level
        redo = values >= top
        while redo.any():
            values[redo] = rng.normal(0.0, sigma, int(redo.sum()))
            redo = values >= top
        out[~kept] = values
    return out


def _header(image, noise, rms_jy, seed):
    header = image.wcs.to_header()
    beam = FIRST_BEAM.to_value(u.deg)
    clip = _CLIP_SIGMA * rms_jy
    cards = [
        ("BUNIT", "Jy/beam", "pseudo-brightness: see PSEUDOBR"),
        ("BMAJ", beam, "[deg] FIRST restoring beam FWHM"),
        ("BMIN", beam, "[deg] FIRST restoring beam FWHM"),
        ("BPA", 0.0, "[deg]"),
        ("TELESCOP", "VLA", ""),
        ("SURVEY", "FIRST", "1.4 GHz, Becker, White & Helfand 1995"),
        ("OBJECT", image.name, ""),
        ("PSEUDOBR", True, "not calibrated: 8-bit clipped image, see FGCLIP"),
        ("FGCLIP", clip, "[Jy/beam] clip level (3 rms): 8-bit value 0"),
        ("FGSTEP", rms_jy, "[Jy/beam] one 8-bit step"),
        ("FGNOISE", noise * clip, "[Jy/beam] rms of the restored background noise"),
        ("FGNFRAC", noise, "restored noise rms / clip level"),
        ("FGSEED", seed, "noise seed (with the image name)"),
        ("FGCLASS", image.label, "class in the FIRST data set"),
        ("FGLABEL", image.label_index, "0 FRI, 1 FRII, 2 Compact, 3 Bent"),
        ("FGCAT", image.catalogue, "catalogue of the label"),
        ("FGNAME", image.name, "name in the data set"),
        ("FGSPLIT", image.split, ""),
        ("FGFOLD", -1 if image.fold is None else image.fold, "-1: literature split"),
    ]
    for key, value, comment in cards:
        header[key] = (value, comment)
    header.add_comment("FIRST radio galaxy data set, " + _REFERENCE + ", " + _DOI)
    header.add_comment("Pixels above FIRST's 3-sigma clip are (3 + v) x FGSTEP for the 8-bit "
                       "value v; clipped pixels (v = 0) hold Gaussian noise of rms FGNOISE "
                       "truncated at 0.97 FGCLIP. The true brightness scale is not recorded.")
    header.add_comment(FIRST_PROVENANCE)
    return header


# ----------------------------------------------------------------------------- COCO


def _package_version():
    from importlib import metadata

    try:
        return metadata.version(_PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def write_first_coco(split, output_dir, *, fold=None, noise=1 / 3, rms=FIRST_RMS, seed=0,
                     overwrite=False, data_dir=None, progress=False):
    """Write a split of the FIRST data set as a COCO data set of FITS images.

    Writes ``output_dir/annotations.json`` and ``output_dir/images/NAME.fits`` (one
    pseudo-brightness image per entry, see `FirstImage.to_hdu`). The JSON follows galcam's
    data set contract with image-level labels only: ``categories`` are the data set's
    names (1 FRI, 2 FRII, 3 Compact, 4 Bent), and every image has one annotation with
    ``image_id`` and ``category_id`` and no mask, box or keypoint. Images carry their
    ``ra``, ``dec`` (degrees), ``catalogue`` and ``first_name`` as extra keys; ``info``
    records the source, the provenance line of the FIRST images and the pseudo-brightness
    options. Read it with ``CocoDataset(path, classes=FIRST_CLASSES)`` (or
    ``classes=None``).

    Everything is written to a hidden folder inside ``output_dir`` first and moved into
    place at the end, so an interrupted run leaves the folder as it was.

    Parameters
    ----------
    split : {'train', 'valid', 'test'} or `FirstSplit`
        The split to write (read with `read_first`), or one already read.
    output_dir : path-like
        The folder to write; created if needed.
    fold : int, optional
        Cross-validation fold (see `read_first`); only with a split name.
    noise, rms, seed
        The pseudo-brightness (see `FirstImage.pseudo_brightness`).
    overwrite : bool, optional
        Replace an ``annotations.json`` and ``images/`` already in ``output_dir``. By
        default they are refused with `FileExistsError`.
    data_dir : path-like, optional
        Folder of the zip files (see `read_first`); only with a split name.
    progress : bool, optional
        A tqdm progress bar on standard error.

    Returns
    -------
    path : `pathlib.Path`
        ``output_dir/annotations.json``.

    Raises
    ------
    FileExistsError
        ``output_dir`` holds a data set and ``overwrite`` is False, or is a file.
    ModuleNotFoundError, FileNotFoundError, DatasetError
        As `read_first`.
    """
    noise, rms_jy, seed = _check_options(noise, rms, seed)
    overwrite = check_bool(overwrite, "overwrite")
    progress = check_bool(progress, "progress")
    if isinstance(split, FirstSplit):
        if fold is not None or data_dir is not None:
            raise ValueError("fold, data_dir: only with a split name (a FirstSplit has been "
                             "read already)")
    else:
        _check_split(split, fold)
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output_dir '{out}': exists and is not a folder")
    json_path, image_dir = out / "annotations.json", out / "images"
    present = [p.name for p in (json_path, image_dir) if p.exists()]
    if present and not overwrite:
        raise FileExistsError(f"output_dir '{out}': holds {' and '.join(present)} already; "
                              "pass overwrite=True (--overwrite) to replace them")
    first = split if isinstance(split, FirstSplit) else read_first(split, fold=fold,
                                                                   data_dir=data_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".first-", dir=out))
    try:
        coco = _write_images(first, staging / "images", noise, rms_jy, seed, progress)
        with open(staging / "annotations.json", "w", encoding="utf-8") as fh:
            json.dump(coco, fh, indent=1)
        if image_dir.exists():
            os.replace(image_dir, staging / "replaced-images")
        os.replace(staging / "images", image_dir)
        os.replace(staging / "annotations.json", json_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("wrote %d FIRST images (%s) to %s", len(first), first.description, out)
    return json_path


def _write_images(first, folder, noise, rms_jy, seed, progress):
    folder.mkdir()
    categories = [{"id": i + 1, "name": c} for i, c in enumerate(FIRST_CLASSES)]
    images, annotations = [], []
    it = first
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(first, desc=f"FIRST {first.description}", unit="image", file=sys.stderr)
    for image_id, image in enumerate(it, start=1):
        file_name = f"images/{image.name}.fits"
        data = _pseudo_brightness(image, noise, rms_jy, seed)
        hdu = fits.PrimaryHDU(data, header=_header(image, noise, rms_jy, seed))
        hdu.writeto(folder / f"{image.name}.fits")
        ny, nx = image.shape
        images.append({"id": image_id, "file_name": file_name, "width": nx, "height": ny,
                       "ra": image.ra, "dec": image.dec, "catalogue": image.catalogue,
                       "first_name": image.name})
        annotations.append({"id": image_id, "image_id": image_id,
                            "category_id": image.label_index + 1})
    from galcam import __version__

    info = {
        "description": f"FIRST radio galaxy data set, {first.description} split, as FITS "
                       "images in galcam's pseudo-brightness (image-level labels only)",
        "reference": _REFERENCE,
        "url": _DOI,
        "source": {"package": _PACKAGE, "version": _package_version(),
                   "file": first.source.name},
        "split": first.split,
        "fold": first.fold,
        "licence": FIRST_PROVENANCE,
        "pseudo_brightness": {
            "unit": "Jy/beam",
            "clip_level": _CLIP_SIGMA * rms_jy,
            "step": rms_jy,
            "noise_fraction": noise,
            "noise_rms": noise * _CLIP_SIGMA * rms_jy,
            "seed": seed,
            "note": "not calibrated: pixels above FIRST's 3-sigma clip are (3 + v) x step "
                    "for the 8-bit value v; clipped pixels hold Gaussian noise of rms "
                    "noise_rms truncated at 0.97 clip_level",
        },
        "galcam_version": __version__,
    }
    return {"info": info, "images": images, "categories": categories,
            "annotations": annotations}

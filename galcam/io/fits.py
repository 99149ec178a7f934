"""Reading radio and infrared images from FITS into 2-D `~astropy.nddata.NDData`.

Real survey products come in many shapes: ASKAP/EMU images have four axes
(RA, Dec, FREQ, STOKES) with length-1 spectral and Stokes axes, CASA images
may carry their restoring beam in a ``BEAMS`` binary table instead of the
header, mosaics have NaN-blanked borders, WISE images have no beam at all,
and some archives distribute tile-compressed ``.fits.fz`` files.
`read_image` turns all of them into the same thing: a 2-D float32 image on a
2-D celestial WCS, with its unit and (for radio images) its beam.
"""

import hashlib
import json
import logging
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import NDData
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, FITSFixedWarning
from radio_beam import Beam

__all__ = ["read_image", "write_image", "Beam", "ImageReadError", "image_beam", "pixel_scale",
           "pixel_solid_angle", "beam_pixels", "GAUSS_AREA", "blank_reason",
           "NO_FINITE_PIXEL", "atomic_write", "write_json", "file_sha256"]

log = logging.getLogger(__name__)

# Unit spellings found in real headers that astropy's FITS unit parser does not accept.
_UNIT_ALIASES = {
    "JY/BEAM": u.Jy / u.beam,
    "JY/BM": u.Jy / u.beam,
    "JANSKY/BEAM": u.Jy / u.beam,
    "MJY/BEAM": u.mJy / u.beam,
    "DN": u.dimensionless_unscaled,  # WISE data numbers: a relative brightness scale
    "": u.dimensionless_unscaled,
}


_NON_WCS_CARDS = frozenset({"HISTORY", "COMMENT", ""})

#: Solid angle of an elliptical Gaussian beam in units of the product of its FWHMs,
#: ``pi / (4 ln 2)`` (about 1.1331): a beam of FWHMs ``major`` and ``minor`` covers
#: ``GAUSS_AREA * major * minor``.
GAUSS_AREA = math.pi / (4 * math.log(2))


class ImageReadError(ValueError):
    """An image that galcam cannot use; the message names the file and the problem."""


# Leading bytes of the formats most often given where a FITS file is expected.
_NOT_FITS_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x89HDF", "an HDF5 file"),
    (b"<?xml", "an XML file (a VOTable?)"),
)
#: Leading bytes of FITS files, plain or compressed as astropy reads them.
_FITS_MAGIC = (b"SIMPLE", b"\x1f\x8b", b"BZh", b"\xfd7zXZ")


def _not_fits_reason(path):
    """Why ``path`` is not a FITS file, from its first bytes, or None if it may be one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return None  # astropy's own error says more
    if head.startswith(_FITS_MAGIC):
        return None
    for magic, kind in _NOT_FITS_MAGIC:
        if head.startswith(magic):
            return f"is {kind}, not a FITS file"
    if not head:
        return "is empty (0 bytes), not a FITS file"
    return ("is not a FITS file: it does not start with the FITS card 'SIMPLE  =' "
            f"(its first bytes are {head[:8]!r})")


def _describe(source):
    if isinstance(source, (str, os.PathLike)):
        return f"'{os.fspath(source)}'"
    name = getattr(source, "filename", None)
    if callable(name):
        name = name()
    return f"'{name}'" if name else f"<{type(source).__name__}>"


def _parse_unit(bunit, where):
    key = (bunit or "").strip()
    if key.upper() in _UNIT_ALIASES:
        return _UNIT_ALIASES[key.upper()]
    for fmt in ("fits", None):
        try:
            return u.Unit(key, format=fmt) if fmt else u.Unit(key)
        except ValueError:
            continue
    warnings.warn(
        f"{where}: BUNIT {bunit!r} is not a unit astropy understands; "
        "treating the data as dimensionless",
        AstropyUserWarning,
        stacklevel=3,
    )
    return u.dimensionless_unscaled


def _make_wcs(header, where):
    # HISTORY/COMMENT cards (hundreds in ASKAP and CASA products) mean nothing to the WCS
    # but dominate the cost of parsing it: leave them out.
    header = fits.Header([card for card in header.cards if card.keyword not in _NON_WCS_CARDS])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception as exc:
            detail = " ".join(str(exc).split())  # wcslib's messages span several lines
            raise ImageReadError(f"{where}: the header's WCS cannot be parsed ({detail})"
                                 ) from exc
    for w in caught:
        if issubclass(w.category, FITSFixedWarning):
            log.debug("%s: %s", where, w.message)
        else:  # pragma: no cover - re-emit anything that is not a routine header fix
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return wcs


def _first_image_hdu(hdul, where, hdu_index):
    if hdu_index is not None:
        try:
            hdu = hdul[hdu_index]
        except (IndexError, KeyError) as exc:
            raise ImageReadError(f"{where}: there is no HDU {hdu_index!r}") from exc
        if not hdu.is_image or hdu.header.get("NAXIS", 0) < 2:
            raise ImageReadError(f"{where}: HDU {hdu_index!r} is not an image with 2 or more axes")
        return hdu
    images = [(i, h) for i, h in enumerate(hdul)
              if h.is_image and h.header.get("NAXIS", 0) >= 2]
    if len(images) > 1:
        names = ", ".join(_hdu_name(i, h) for i, h in images[1:])
        warnings.warn(
            f"{where}: the file holds {len(images)} images; galcam uses the first, "
            f"HDU {_hdu_name(*images[0])}, not {names}. To read another, give its index or "
            "EXTNAME: read_image(..., hdu=N), or --hdu N on the command line",
            AstropyUserWarning, stacklevel=4)
    if images:
        return images[0][1]
    raise ImageReadError(
        f"{where}: no image HDU with 2 or more axes was found "
        f"(HDUs: {', '.join(type(h).__name__ for h in hdul)})"
    )


def _hdu_name(index, hdu):
    """``1 ('RMS', 300 x 200)``: an HDU as a user would look for it."""
    name = hdu.header.get("EXTNAME", hdu.name if index else "PRIMARY")
    shape = " x ".join(str(n) for n in reversed(hdu.shape or ()))
    return f"{index} ({name!r}, {shape})" if shape else f"{index} ({name!r})"


def _beam_from_table(hdul, chan, pol, where):
    """The beam of one plane from a CASA ``BEAMS`` binary table, or None."""
    if "BEAMS" not in hdul:
        return None
    table = hdul["BEAMS"].data
    names = [n.upper() for n in table.columns.names]
    if not {"BMAJ", "BMIN", "BPA"} <= set(names):
        raise ImageReadError(f"{where}: the BEAMS table lacks BMAJ/BMIN/BPA columns")
    units = {}
    for col in hdul["BEAMS"].columns:
        units[col.name.upper()] = u.Unit(col.unit) if col.unit else u.arcsec
    rows = np.arange(len(table))
    if "CHAN" in names and len(table) > 1:
        rows = rows[np.asarray(table["CHAN"]) == chan]
    if "POL" in names and len(rows) > 1:
        rows = rows[np.asarray(table["POL"])[rows] == pol]
    if len(rows) == 0:
        raise ImageReadError(f"{where}: the BEAMS table has no row for channel {chan}, pol {pol}")
    row = table[rows[0]]
    major = float(row["BMAJ"]) * units["BMAJ"]
    minor = float(row["BMIN"]) * units["BMIN"]
    if not _usable_beam(major.to_value(u.deg), minor.to_value(u.deg), where,
                        f"the BEAMS table (channel {chan}, pol {pol})"):
        return None
    return Beam(major=major, minor=minor, pa=float(row["BPA"]) * units["BPA"])


def _usable_beam(bmaj_deg, bmin_deg, where, source):
    """False, with a warning, for a beam of zero, negative or non-finite size."""
    if np.isfinite(bmaj_deg) and np.isfinite(bmin_deg) and bmaj_deg > 0 and bmin_deg > 0:
        return True
    warnings.warn(
        f"{where}: {source} gives a restoring beam of {bmaj_deg * 3600:g}\" x "
        f"{bmin_deg * 3600:g}\", which is no beam (a flagged or blank plane?); the image is "
        "treated as having none (no integrated flux densities)", AstropyUserWarning,
        stacklevel=5)
    return False


def image_beam(image):
    """The restoring beam of an image returned by `read_image`, or `None` (e.g. WISE)."""
    return image.meta.get("beam")


def pixel_scale(image_or_wcs):
    """Pixel scale of a celestial image (geometric mean of the two axes) as an angle Quantity.

    Parameters
    ----------
    image_or_wcs : `~astropy.nddata.NDData` or `~astropy.wcs.WCS`
        An image with a celestial WCS, or the WCS itself.
    """
    wcs = image_or_wcs if isinstance(image_or_wcs, WCS) else getattr(image_or_wcs, "wcs", None)
    if not isinstance(wcs, WCS):
        raise TypeError("pixel_scale expects an NDData with a WCS or an astropy WCS")
    from astropy.wcs.utils import proj_plane_pixel_scales

    scales = proj_plane_pixel_scales(wcs.celestial)
    return (np.sqrt(scales[0] * scales[1]) * u.deg).to(u.arcsec)


def pixel_solid_angle(wcs):
    """Solid angle of one pixel of a celestial WCS.

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
        A WCS with celestial axes (other axes are ignored). Axes without a ``CUNIT`` are
        taken to be in degrees, as the FITS standard says.

    Returns
    -------
    area : `~astropy.units.Quantity`
        In arcsec^2, at the reference pixel.
    """
    from astropy.wcs.utils import proj_plane_pixel_area

    cel = wcs.celestial
    units = [u.Unit(cel.wcs.cunit[i]) if str(cel.wcs.cunit[i]) else u.deg for i in (0, 1)]
    return (proj_plane_pixel_area(cel) * units[0] * units[1]).to(u.arcsec**2)


def beam_pixels(beam, wcs):
    """Solid angle of a beam in pixels of a celestial WCS: the pixels per beam.

    A flux density is the sum of an image in Jy/beam over a source divided by this
    number.

    Parameters
    ----------
    beam : `radio_beam.Beam`
        The restoring beam.
    wcs : `~astropy.wcs.WCS`
        The image's WCS (see `pixel_solid_angle`).

    Returns
    -------
    n_pixels : float
    """
    return float((beam.sr.to(u.arcsec**2) / pixel_solid_angle(wcs)).decompose())


def _select_plane(data_shape, wcs, plane, where):
    """Index tuple that picks the 2-D celestial plane out of an N-D array."""
    naxis = len(data_shape)
    lng, lat = wcs.wcs.lng, wcs.wcs.lat
    if lng < 0 or lat < 0:
        raise ImageReadError(
            f"{where}: the image has no celestial WCS (CTYPEs: {list(wcs.wcs.ctype)}); "
            "galcam needs RA/Dec (or Galactic) axes to place sources on the sky"
        )
    extra = [i for i in range(naxis) if i not in (lng, lat)]  # FITS (WCS) axis numbers, 0-based
    # numpy axis of WCS axis i is naxis - 1 - i
    lengths = {i: data_shape[naxis - 1 - i] for i in extra}
    ctypes = {i: (wcs.wcs.ctype[i] or f"AXIS{i + 1}").split("-")[0].upper() for i in extra}
    nondeg = [i for i in extra if lengths[i] > 1]
    chosen = {i: 0 for i in extra}
    if isinstance(plane, dict):
        for key, index in plane.items():
            matches = [
                i
                for i in extra
                if (isinstance(key, str) and ctypes[i] == key.upper()) or key == i + 1
            ]
            if not matches:
                raise ImageReadError(
                    f"{where}: plane={plane!r} names axis {key!r}, but the non-celestial axes are "
                    + ", ".join(f"{ctypes[i]} (axis {i + 1}, length {lengths[i]})" for i in extra)
                )
            chosen[matches[0]] = int(index)
    elif plane is not None:
        if len(nondeg) > 1:
            raise ImageReadError(
                f"{where}: plane={plane!r} is ambiguous: more than one non-celestial axis has "
                "several planes; give a dict such as plane={'FREQ': 0, 'STOKES': 0}"
            )
        if nondeg:
            chosen[nondeg[0]] = int(plane)
        elif int(plane) != 0:
            raise ImageReadError(f"{where}: plane={plane!r} but the image has a single plane")
    else:
        if nondeg:
            desc = ", ".join(f"{ctypes[i]} has {lengths[i]} planes" for i in nondeg)
            raise ImageReadError(
                f"{where}: the image is a cube ({desc}); galcam needs one 2-D plane. "
                "Pick one with plane=INDEX (or a dict such as plane={'FREQ': 0, 'STOKES': 0}); "
                "on the command line use --plane (radio image) or --ir-plane (galcam predict's "
                "infrared image)"
            )
    for i, index in chosen.items():
        if not -lengths[i] <= index < lengths[i]:
            raise ImageReadError(
                f"{where}: plane index {index} is outside the {ctypes[i]} axis "
                f"of length {lengths[i]}"
            )
    index = [slice(None)] * naxis
    for i, k in chosen.items():
        index[naxis - 1 - i] = k % lengths[i]
    stokes_axis = next((i for i in extra if ctypes[i] == "STOKES"), None)
    spec_axis = next((i for i in extra if ctypes[i] != "STOKES"), None)
    return (
        tuple(index),
        chosen.get(spec_axis, 0) if spec_axis is not None else 0,
        chosen.get(stokes_axis, 0) if stokes_axis is not None else 0,
        (lng, lat),
    )


def read_image(source, *, hdu=None, plane=None, memmap=False, unit=None):
    """Read a radio or infrared image as a 2-D image on a celestial WCS.

    Parameters
    ----------
    source : str, path-like, `~astropy.io.fits.HDUList`, image HDU or `~astropy.nddata.NDData`
        A FITS file (``.fits``, ``.fits.gz``, tile-compressed ``.fits.fz``), an open HDU list,
        a single image HDU, or an `~astropy.nddata.NDData` with a celestial ``wcs``.
    hdu : int or str, optional
        Which HDU holds the image. By default the first HDU with 2 or more axes (compressed
        image HDUs included).
    plane : int or dict, optional
        For cubes with a non-degenerate spectral or Stokes axis: the plane to use, as a
        0-based index along the single non-degenerate extra axis, or a dict mapping CTYPE
        (``'FREQ'``, ``'STOKES'``, ...) or 1-based FITS axis number to a 0-based index.
        Length-1 axes (as in ASKAP/EMU products) are dropped without asking.
    memmap : bool, optional
        Memory-map the file instead of reading it. The returned data is then a read-only view
        of the selected plane in the file's byte order, read from disk only where sliced:
        use it for mosaics larger than memory. Not possible for compressed or scaled
        (BSCALE/BZERO) data, which are read in full.
    unit : `~astropy.units.Unit` or str, optional
        Override the unit given by the header's ``BUNIT``.

    Returns
    -------
    image : `~astropy.nddata.NDData`
        ``data`` is a 2-D float32 array indexed ``data[y, x]`` (NaN where the image is
        blanked), ``wcs`` a 2-D celestial `~astropy.wcs.WCS`, ``unit`` the brightness unit,
        ``mask`` is `True` where the data are not finite. ``meta`` holds ``'header'`` (the
        original header), ``'filename'``, ``'beam'`` (a `radio_beam.Beam`, or `None` when
        the image has none, as for WISE), ``'plane'`` (the indices used along the
        non-celestial axes) and ``'blanked_fraction'``.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ImageReadError
        Not a FITS file, no image HDU, no celestial WCS, a cube without ``plane``, data that
        are empty or all blank. The message names the file and the problem.
    """
    if isinstance(source, NDData):
        return _from_nddata(source, unit=unit)
    where = _describe(source)
    hdul = None
    close = False
    try:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.exists():
                raise FileNotFoundError(f"{where}: no such file")
            if path.is_dir():
                raise ImageReadError(f"{where}: is a directory, not a FITS file")
            reason = _not_fits_reason(path)
            if reason is not None:
                raise ImageReadError(f"{where}: {reason}; galcam reads radio and infrared "
                                     "images from FITS files")
            try:
                hdul = fits.open(path, memmap=memmap, lazy_load_hdus=False)
            except OSError as exc:
                raise ImageReadError(f"{where}: not a readable FITS file ({exc})") from exc
            close = True
        elif isinstance(source, fits.HDUList):
            hdul = source
        elif isinstance(source, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
            hdul = fits.HDUList([fits.PrimaryHDU(source.data, source.header)])
        else:
            raise TypeError(
                "read_image expects a file path, an HDUList, an image HDU or an NDData, "
                f"got {type(source).__name__}"
            )
        image_hdu = _first_image_hdu(hdul, where, hdu)
        header = image_hdu.header.copy()
        scaled = any(k in header for k in ("BSCALE", "BZERO", "BLANK"))
        if memmap and close and (scaled or isinstance(image_hdu, fits.CompImageHDU)):
            # astropy cannot memory-map scaled or compressed data: read it in full instead
            log.info("%s: scaled or compressed data cannot be memory-mapped; reading it", where)
            hdul.close()
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            image_hdu = _first_image_hdu(hdul, where, hdu)
            memmap = False
        try:
            raw = image_hdu.data
        except (ValueError, OSError, TypeError) as exc:
            size = f"; the file has {path.stat().st_size} bytes" if close else ""
            raise ImageReadError(
                f"{where}: the image data cannot be read ({exc}){size}: is the file "
                "truncated (an incomplete download or copy)?") from exc
        if raw is None or raw.size == 0:
            shape = None if raw is None else raw.shape
            raise ImageReadError(f"{where}: the image HDU holds no data (shape {shape})")
        wcs = _make_wcs(header, where)
        if wcs.naxis != raw.ndim:
            # e.g. NAXIS=4 but WCSAXES=2; treat the extra data axes as degenerate
            wcs = _make_wcs(_pad_header_axes(header, raw.ndim), where)
        index, chan, pol, (lng, lat) = _select_plane(raw.shape, wcs, plane, where)
        data2d = raw[index]
        if lng > lat:  # images stored as (RA, Dec) with RA the 2nd FITS axis: make RA x
            data2d = data2d.T
        wcs2d = wcs.celestial
        if wcs2d.wcs.lng == 1:
            wcs2d = wcs2d.swapaxes(0, 1)
        # a memory-mapped float plane is handed out as a view of the file (no copy)
        direct_memmap = memmap and close and data2d.dtype.kind == "f" and not data2d.flags.owndata
        if not direct_memmap:
            data2d = np.asarray(data2d, dtype=np.float32)
        beam = _beam_from_header(header, where)
        if beam is None:
            beam = _beam_from_table(hdul, chan, pol, where)
        image = _finish(
            data2d,
            wcs2d,
            unit if unit is not None else _parse_unit(header.get("BUNIT", ""), where),
            beam,
            where,
            meta={
                "header": header,
                "filename": os.fspath(source) if close else None,
                "plane": {"chan": chan, "pol": pol},
            },
            check_blank=not direct_memmap,
        )
        return image
    finally:
        # Memory-mapped arrays that were handed out stay valid after close: the map is
        # released when the last array referencing it is deleted.
        if close and hdul is not None:
            hdul.close()


def _pad_header_axes(header, ndim):
    header = header.copy()
    header["WCSAXES"] = ndim
    return header


#: Largest restoring beam (major axis, degrees) read from a header without complaint: larger
#: values are almost always arcseconds written as degrees.
_MAX_BEAM_DEG = 1.0


def _beam_from_header(header, where):
    if "BMAJ" not in header or "BMIN" not in header:
        return _beam_from_history(header, where)
    try:
        bmaj, bmin = float(header["BMAJ"]), float(header["BMIN"])
        bpa = float(header.get("BPA", 0.0))
    except (TypeError, ValueError) as exc:
        raise ImageReadError(f"{where}: BMAJ/BMIN/BPA are not numbers ({exc})") from exc
    if not _usable_beam(bmaj, bmin, where, "the header (BMAJ, BMIN)"):
        return None
    if bmin > bmaj:
        bmaj, bmin, bpa = bmin, bmaj, bpa + 90.0
    if bmaj > _MAX_BEAM_DEG:
        raise ImageReadError(
            f"{where}: BMAJ = {bmaj:g} deg is not a plausible restoring beam (FITS gives BMAJ "
            f"and BMIN in degrees; if {bmaj:g} x {bmin:g} are arcseconds, the header should say "
            f"BMAJ = {bmaj / 3600:.6g}, BMIN = {bmin / 3600:.6g})")
    return Beam(major=bmaj * u.deg, minor=bmin * u.deg, pa=bpa * u.deg)


def _beam_from_history(header, where):
    """The beam of an AIPS (or CASA) image that records it only in ``HISTORY`` cards."""
    if "HISTORY" not in header:
        return None
    try:
        beam = Beam.from_fits_history(header)
    except (ValueError, IndexError, TypeError) as exc:
        log.warning("%s: a HISTORY card mentions the beam but could not be read (%s); "
                    "the image is treated as having no beam", where, exc)
        return None
    if beam is not None:
        log.info("%s: no BMAJ/BMIN keywords; beam read from the HISTORY cards: %.2f\" x "
                 "%.2f\" (PA %.1f deg)", where, beam.major.to_value(u.arcsec),
                 beam.minor.to_value(u.arcsec), beam.pa.to_value(u.deg))
    return beam


def _from_nddata(nd, *, unit=None):
    where = f"<{type(nd).__name__}>"
    wcs = nd.wcs
    if wcs is None:
        raise ImageReadError(f"{where}: the NDData has no wcs; galcam needs a celestial WCS")
    if not isinstance(wcs, WCS):
        raise ImageReadError(f"{where}: wcs must be an astropy.wcs.WCS, got {type(wcs).__name__}")
    data = np.asarray(nd.data)
    if data.ndim != 2:
        if data.ndim > 2 and all(n == 1 for n in data.shape[:-2]):
            data = data.reshape(data.shape[-2:])
        else:
            raise ImageReadError(f"{where}: expected 2-D data, got shape {data.shape}")
    if not wcs.has_celestial:
        raise ImageReadError(f"{where}: the NDData's WCS has no celestial axes")
    meta = dict(nd.meta or {})
    beam = meta.get("beam")
    if beam is None and "header" in meta:
        beam = _beam_from_header(meta["header"], where)
    nd_unit = unit if unit is not None else (nd.unit or u.dimensionless_unscaled)
    data = np.asarray(data, dtype=np.float32)
    if nd.mask is not None:
        data = np.where(np.asarray(nd.mask, dtype=bool), np.float32(np.nan), data)
    return _finish(data, wcs.celestial, nd_unit, beam, where, meta=meta)


#: What `blank_reason` says of an image without a finite pixel (`read_image` refuses one).
NO_FINITE_PIXEL = "every pixel is NaN or infinite (blank image)"


def blank_reason(data, *, chunk_pixels=1 << 22):
    """Why an image holds nothing to measure, or None when it holds data.

    Reads the image in blocks of rows and stops at the first block with two different
    finite values, so a memory-mapped mosaic is read no further than its first data; only
    a blank or constant image is read in full.

    Parameters
    ----------
    data : array-like, 2-D
        The image (e.g. ``read_image(path, memmap=True).data``).
    chunk_pixels : int, optional
        Pixels read at once.

    Returns
    -------
    reason : str or None
        ``"every pixel is NaN or infinite (blank image)"``, ``"the image is constant
        (every pixel is 0)"``, or None.
    """
    data = np.asarray(data) if not hasattr(data, "shape") else data
    if data.size == 0:
        return "the image is empty"
    rows = max(1, int(chunk_pixels) // max(1, data.shape[-1]))
    value = None
    for r0 in range(0, data.shape[0], rows):
        block = np.asarray(data[r0:r0 + rows])
        finite = block[np.isfinite(block)]
        if finite.size == 0:
            continue
        low, high = finite.min(), finite.max()
        if value is None:
            value = low
        if low != high or low != value:
            return None
    if value is None:
        return NO_FINITE_PIXEL
    return f"the image is constant (every pixel is {float(value) + 0.0:g})"


def _finish(data, wcs, unit, beam, where, *, meta, check_blank=True):
    if data.size == 0:
        raise ImageReadError(f"{where}: the image plane is empty (shape {data.shape})")
    if check_blank:
        finite = np.isfinite(data)
        nfinite = int(finite.sum())
        if nfinite == 0:
            raise ImageReadError(f"{where}: {NO_FINITE_PIXEL}")
        mask = ~finite
        blanked = 1.0 - nfinite / data.size
    else:
        mask = None
        blanked = None
    meta = dict(meta)
    meta.update(beam=beam, blanked_fraction=blanked)
    if isinstance(unit, str):
        unit = u.Unit(unit)
    if check_blank:
        _check_brightness_scale(data, unit, where)
    return NDData(data, wcs=wcs, unit=unit, mask=mask, meta=meta)


#: Robust rms (Jy/beam) below which a radio image's unit is questioned: 50 nJy/beam is ten
#: times deeper than the deepest radio continuum images made so far (about 0.5 uJy/beam).
IMPLAUSIBLE_RMS_JY = 5e-8


def _robust_rms(data, *, max_samples=1_000_000):
    """Robust rms of an image's finite pixels: 1.4826 times their median absolute deviation.

    Read on an even subsample of at most ``max_samples`` pixels (a quick look, not a noise
    measurement: use `~galcam.preprocessing.NoiseEstimator` for that).

    Parameters
    ----------
    data : array-like
        Image data.
    max_samples : int, optional
        Largest number of pixels looked at.

    Returns
    -------
    rms : float
        In the unit of ``data``; NaN when there is no finite pixel.
    """
    flat = np.asarray(data).reshape(-1)
    step = max(1, flat.size // int(max_samples))
    values = flat[::step].astype(np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _check_brightness_scale(data, unit, where):
    """Warn when a radio image's noise in its stated unit is implausibly low.

    The case it catches: a header that says mJy/beam over data in Jy/beam (an rms of
    30 uJy/beam read as 30 nJy/beam).
    """
    if unit is None or not unit.is_equivalent(u.Jy / u.beam):
        return
    rms = _robust_rms(data)
    if not (math.isfinite(rms) and rms > 0):
        return
    rms_jy = rms * unit.to(u.Jy / u.beam)
    if rms_jy >= IMPLAUSIBLE_RMS_JY:
        return
    # the usual unit under which the rms becomes plausible
    names = {u.Jy / u.beam: "Jy/beam", u.mJy / u.beam: "mJy/beam"}
    guess = next((g for g in names
                  if rms * g.to(u.Jy / u.beam) >= IMPLAUSIBLE_RMS_JY and g != unit), None)
    hint = ""
    if guess is not None:
        hint = (f" If the data are in {names[guess]} (an rms of "
                f"{rms * guess.to(u.uJy / u.beam):.3g} uJy/beam then), read the image with "
                f"unit='{names[guess]}' (galcam predict: --unit {names[guess]})")
    warnings.warn(
        f"{where}: in {names.get(unit, unit.to_string())} the image's robust rms is "
        f"{rms_jy * 1e9:.3g} nJy/beam, "
        f"more than ten times deeper than any radio continuum image; is the unit right?{hint}",
        AstropyUserWarning, stacklevel=5)


def write_image(image, path, *, overwrite=False):
    """Write a 2-D image (as returned by `read_image`) to a FITS file, atomically.

    The header gets the celestial WCS, ``BUNIT`` and, when the image has a beam,
    ``BMAJ``/``BMIN``/``BPA``. The file is written to a temporary name in the same
    directory and renamed into place, so an interrupted write never leaves a partial file.

    Parameters
    ----------
    image : `~astropy.nddata.NDData`
        A 2-D image with a celestial WCS.
    path : str or path-like
        Output file.
    overwrite : bool, optional
        Replace an existing file. By default an existing file raises `FileExistsError`.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"'{path}': exists already (pass overwrite=True to replace it)")
    header = image.wcs.to_header()
    if image.unit is not None:
        header["BUNIT"] = image.unit.to_string("fits") if image.unit != u.Jy / u.beam else "Jy/beam"
    beam = image.meta.get("beam") if image.meta else None
    if beam is not None:
        header.update(beam.to_header_keywords())
    hdu = fits.PrimaryHDU(np.asarray(image.data, dtype=np.float32), header=header)
    atomic_write(path, lambda tmp: hdu.writeto(tmp))
    return path


def write_json(path, content, *, indent=None):
    """Write ``content`` as JSON (UTF-8) to ``path``, atomically (`atomic_write`)."""
    text = json.dumps(content, indent=indent)
    if indent is not None:
        text += "\n"

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return atomic_write(path, write)


def file_sha256(path):
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path, writer):
    """Call ``writer(tmp_path)`` then rename ``tmp_path`` onto ``path``.

    The temporary file lives in the same directory (so the rename is atomic) and is
    removed if ``writer`` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers such as astropy refuse to write over an existing file
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path

"""A classical finder of extended radio galaxies: what radio astronomers do without deep learning.

`ClassicalFinder` is galcam's reference method. It follows the steps of a careful visual
and catalogue-based search, made explicit and reproducible:

1. **Noise and islands.** Measure the rms with `galcam.preprocessing.NoiseEstimator` and
   find the islands above ``n_sigma`` (3) times the rms with at least ``n_pixels`` (5)
   pixels with `galcam.preprocessing.find_islands`, as in Gupta et al. (2023), section 3.1;
   seed and flood: an island counts when its peak reaches ``seed_n_sigma`` (5). Each island
   is *resolved* or not by a test that compares its flux with that of a point source of
   the same peak cut at the same threshold, with a margin for the noise (so it holds at
   any S/N).
2. **Grouping.** Join islands that belong to one galaxy by three rules (documented in
   ``docs/baseline.rst``): *nearly touching* resolved islands, *aligned doubles* (two
   resolved islands of similar flux whose elongations point at each other), and *a core
   between two lobes*. Groups made of a single unresolved island are point sources and are
   dropped.
3. **Class.** The paper's rule on the ratio a/b of the peak separation to the 5-sigma
   extent (section 2.3.2) with `galcam.morphology.measure_ab`, ``a`` measured as Fanaroff &
   Riley (1974) did, between the brightest peaks on opposite sides of the centre; a
   single-peaked source much larger than the beam is FR-I (edge darkened), not R.
4. **Host.** Among the infrared islands (above median + 3 MAD, at least 5 pixels, the
   paper's infrared preprocessing) within ``host_radius`` of the radio core (the brightest
   compact peak between the lobes) or, without a core, of the geometric centre, the one of
   largest likelihood ratio (distance against the infrared source counts, Sutherland &
   Saunders 1992); failing that, the infrared island inside the radio emission nearest
   that point.
5. **Score.** ``(1 - exp(-peak_snr / snr_scale)) * (1 - exp(-(extent - 1) / extent_scale))``:
   how significant the emission is (peak signal-to-noise) times how clearly it is extended
   (``extent``, the integrated over the peak flux density in beams, is 1 for a point source).

Its predictions have the same COCO results format as the deep model's, so
``galcam evaluate`` scores both side by side.
"""

import logging
import math
from dataclasses import dataclass

import numpy as np
from astropy import units as u
from scipy import ndimage
from scipy.spatial import cKDTree

from galcam._validation import (
    check_fraction,
    check_positive,
    check_positive_int,
    check_quantity,
    readonly,
)

__all__ = [
    "ClassicalFinder",
    "ClassicalDetection",
    "detections_to_table",
    "HOST_RULES",
    "RESOLVED_TESTS",
    "RULES",
]

log = logging.getLogger(__name__)

#: The grouping rules of `ClassicalFinder`, see ``docs/baseline.rst``.
RULES = ("touching", "double", "core")
#: Resolved/unresolved tests of `ClassicalFinder` (``resolved_test``).
RESOLVED_TESTS = ("snr", "ratio")
#: Infrared host rules of `ClassicalFinder` (``host_rule``).
HOST_RULES = ("likelihood", "brightest")

_FWHM_TO_SIGMA = 1.0 / np.sqrt(8.0 * np.log(2.0))


@dataclass(frozen=True, eq=False)
class ClassicalDetection:
    """One radio galaxy found by `ClassicalFinder` (immutable).

    Attributes
    ----------
    mask : `numpy.ndarray`
        Boolean mask on the radio image's pixel grid, ``mask[y, x]`` (read-only): the union
        of the galaxy's islands.
    class_name : str
        ``"FR-I"``, ``"FR-II"``, ``"FR-X"`` or ``"R"`` by the paper's a/b rule.
    score : float
        Confidence in [0, 1): ``(1 - exp(-peak_snr / snr_scale)) *
        (1 - exp(-max(extent - 1, 0.01) / extent_scale))``.
    host : tuple of float
        Host position ``(x, y)`` in 0-based radio pixels.
    host_sky : `~astropy.coordinates.SkyCoord` or None
        Host position on the sky (None when the radio image has no celestial WCS).
    host_method : str
        ``"ir"`` (the infrared source within ``host_radius`` of the radio core or, without a
        core, of the geometric centre picked by ``host_rule``), ``"ir-in-source"`` (none there: the
        infrared source inside the radio mask nearest that point), ``"core"`` (no infrared
        source: the radio core) or ``"centre"`` (no core and no infrared source: the
        geometric centre, the centre of the box enclosing the 5-sigma emission).
    core : tuple of float or None
        Radio core ``(x, y)``, if one was found.
    centre : tuple of float
        Flux-weighted centre ``(x, y)`` of the galaxy.
    peak_snr : float
        Highest pixel of the galaxy over the rms.
    extent : float
        Integrated flux density (in beams) over the peak: 1 for a point source, larger the
        more extended the emission.
    flux : `~astropy.units.Quantity`
        Integrated flux density: the sum of the pixels divided by the beam area in pixels
        (Jy for a Jy/beam image), or the plain pixel sum when the image has no beam.
    n_islands : int
        Number of islands grouped into this galaxy.
    a, b : float
        Peak separation and 5-sigma extent in pixels (see `galcam.morphology.measure_ab`).
    rules : tuple of str
        Grouping rules that joined its islands (``"touching"``, ``"double"``, ``"core"``),
        empty for a single island.
    """

    mask: np.ndarray
    class_name: str
    score: float
    host: tuple
    host_sky: object
    host_method: str
    core: object
    centre: tuple
    peak_snr: float
    extent: float
    flux: u.Quantity
    n_islands: int
    a: float
    b: float
    rules: tuple

    @property
    def area(self):
        """Number of pixels in the mask."""
        return int(self.mask.sum())

    @property
    def bbox(self):
        """COCO box ``[x, y, width, height]`` of the mask in pixels."""
        ys, xs = np.nonzero(self.mask)
        return [
            float(xs.min()),
            float(ys.min()),
            float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1),
        ]

    def to_coco(self, image_id, category_id):
        """This detection as one entry of a COCO results list.

        Parameters
        ----------
        image_id : int
            The image's id in the data set's JSON.
        category_id : int
            The JSON's category id of ``class_name``.

        Returns
        -------
        dict
            ``image_id``, ``category_id``, ``score``, ``segmentation`` (compressed RLE with
            ``counts`` as str), ``bbox``, ``area`` and ``keypoints`` ``[x, y, 2]``.
        """
        from pycocotools import mask as mask_utils

        rle = mask_utils.encode(np.asfortranarray(self.mask.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        return {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "score": float(self.score),
            "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"]},
            "bbox": self.bbox,
            "area": float(self.area),
            "keypoints": [float(self.host[0]), float(self.host[1]), 2],
        }


def detections_to_table(detections):
    """The detections of one image as a `~astropy.table.QTable` (one row per galaxy).

    Columns: ``class``, ``score``, ``peak_snr``, ``flux``, ``n_islands``, ``a``, ``b``,
    ``host_x``, ``host_y``, ``host_method``, ``centre_x``, ``centre_y``, ``area`` and, when
    the detections have sky positions, ``host_sky``.
    """
    from astropy.coordinates import SkyCoord
    from astropy.table import QTable

    t = QTable()
    t["class"] = [d.class_name for d in detections]
    t["score"] = np.array([d.score for d in detections], dtype=float)
    t["peak_snr"] = np.array([d.peak_snr for d in detections], dtype=float)
    t["extent"] = np.array([d.extent for d in detections], dtype=float)
    if detections:
        t["flux"] = u.Quantity([d.flux for d in detections])
    t["n_islands"] = np.array([d.n_islands for d in detections], dtype=int)
    t["a"] = np.array([d.a for d in detections], dtype=float) * u.pix
    t["b"] = np.array([d.b for d in detections], dtype=float) * u.pix
    t["host_x"] = np.array([d.host[0] for d in detections], dtype=float)
    t["host_y"] = np.array([d.host[1] for d in detections], dtype=float)
    t["host_method"] = [d.host_method for d in detections]
    t["centre_x"] = np.array([d.centre[0] for d in detections], dtype=float)
    t["centre_y"] = np.array([d.centre[1] for d in detections], dtype=float)
    t["area"] = np.array([d.area for d in detections], dtype=int) * u.pix**2
    if detections and all(d.host_sky is not None for d in detections):
        t["host_sky"] = SkyCoord([d.host_sky for d in detections])
    return t


@dataclass
class _Island:
    label: int
    ys: np.ndarray
    xs: np.ndarray
    values: np.ndarray
    peak: float
    peak_xy: tuple
    flux: float
    centroid: tuple
    sigma_major: float
    sigma_minor: float
    theta: float  # major-axis angle from +x, radians
    resolved: bool
    peak_snr: float


class _LabelImage:
    """Islands 1..n of a label image, as the finder reads a photutils SegmentationImage."""

    def __init__(self, labels, n):
        self.data = labels
        found = ndimage.find_objects(labels, max_label=n)
        self.labels = [k + 1 for k, slc in enumerate(found) if slc is not None]
        self.slices = [slc for slc in found if slc is not None]


class _UnionFind:
    def __init__(self, n):
        self.parent = list(range(n))

    def find(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i, j):
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


class ClassicalFinder:
    """Find, segment and classify extended radio galaxies without machine learning.

    Written for galcam from the published rules it cites (Gupta et al. 2023; Fanaroff &
    Riley 1974; Sutherland & Saunders 1992) and the practice of PyBDSF and Aegean (seed
    and flood islands); no code of those projects is used.

    Configure once, then call on images: ``ClassicalFinder()(radio, ir)``. The steps and
    the grouping rules are described in the module docstring and in ``docs/baseline.rst``.

    Parameters
    ----------
    n_sigma : float, optional
        Island threshold in units of the rms (3, as in Gupta et al. 2023).
    n_pixels : int, optional
        Minimum island size in pixels (5, as in the paper).
    noise_method : str, optional
        Method of `galcam.preprocessing.NoiseEstimator` for the radio image
        (``"sigma_clip"``, unbiased, or the paper's ``"paper"``).
    seed_n_sigma : float or None, optional
        Seed-and-flood islands: an island (flooded down to ``n_sigma``) counts only when its
        peak reaches ``seed_n_sigma`` times the rms (5, as PyBDSF and Aegean seed); a group
        of islands is reported only when one of them does. Fainter islands can still join
        a galaxy as its core or a piece of it. None: every island counts.
    resolved_test : {"snr", "ratio"}, optional
        How an island is found *resolved* (extended) or not. ``"snr"`` (default): its
        integrated flux is compared with that of a point source of the same peak cut at
        the same threshold (``beam_area * (peak - threshold)``, exact for a Gaussian beam
        at any S/N), and the ratio must exceed ``resolved_ratio`` plus
        ``resolved_n_sigma`` times its own noise, so that faint point sources are not
        called resolved by chance and bright, barely resolved ones are. ``"ratio"``: the
        earlier test, integrated flux over peak (both per beam) at least
        ``resolved_ratio``, blind to the S/N. Either way an island whose flux-weighted rms
        size along its major axis exceeds ``resolved_ratio`` times the beam's is resolved.
    resolved_ratio : float, optional
        Threshold of the resolved test (see ``resolved_test``).
    resolved_n_sigma : float, optional
        Margin of the ``"snr"`` resolved test, in units of the noise of the flux ratio.
    touch_distance : float, optional
        Rule 1: two resolved islands whose nearest pixels are at most this many beam
        major-axis FWHMs apart are one galaxy (emission broken up by the 3-sigma cut).
    max_separation : `~astropy.units.Quantity`, optional
        Rules 2 and 3: the largest distance between the centroids of two lobes (angle).
    pair_flux_ratio : float, optional
        Rules 2 and 3: the largest ratio of the fluxes of two lobes.
    alignment_angle : `~astropy.units.Quantity`, optional
        Rule 2: the largest angle between an elongated lobe's major axis and the line joining
        the two lobes.
    elongation : float, optional
        Rule 2: an island is elongated when its major/minor rms size ratio is at least this.
    core_offset : float, optional
        Rule 3: the largest distance of a core from the line joining two lobes, in beam
        major-axis FWHMs.
    snr_scale : float, optional
        Signal-to-noise scale of the score (see `ClassicalDetection.score`).
    extent_scale : float, optional
        Extent scale of the score: a galaxy whose integrated flux is ``1 + extent_scale``
        times its peak (in beams) gets 63 per cent of the score's S/N term.
    morphology_n_sigma : float, optional
        Level (in rms) of the contour whose extent is ``b`` in the a/b rule (5 in the paper).
    peak_separation : float, optional
        Minimum distance between two emission peaks in the a/b rule, in beam major-axis
        FWHMs.
    ab_pairing : {"per-side", "farthest"}, optional
        Which peaks give ``a`` in the a/b rule (see `galcam.morphology.measure_ab`):
        ``"per-side"`` (default), Fanaroff & Riley's brightest peak on each side of the
        centre; ``"farthest"``, the two peaks farthest apart.
    single_peak_max_extent : float or None, optional
        A source with a single peak is R (``a = 0``) in the paper's rule. With this set (in
        beam major-axis FWHMs), a single-peaked source whose extent ``b`` is larger is
        FR-I instead: its brightest emission is at its centre and fades outwards (edge
        darkened, ``a / b`` near 0), as a core-dominated FR-I with faint jets. None: the
        paper's rule.
    host_rule : {"likelihood", "brightest"}, optional
        How the infrared host is picked among the candidates near the radio core or
        centre. ``"likelihood"`` (default): the largest likelihood ratio
        ``exp(-r^2 / 2 sigma^2) / n(>S)`` (Sutherland & Saunders 1992, with the source
        counts ``n(>S)`` of the infrared image itself), which weighs the distance ``r``
        against how common a source as bright as the candidate is, with ``sigma =
        host_sigma``. ``"brightest"``: the brightest candidate within ``host_radius``.
    host_radius : `~astropy.units.Quantity`, optional
        Infrared candidates are searched within this angle of the radio core or centre
        (and, with ``host_rule="likelihood"``, within three ``sigma`` when that is larger).
    host_sigma : `~astropy.units.Quantity`, optional
        Uncertainty of the anchor's position as seen from the infrared (the radio and
        infrared positions' errors together), for ``host_rule="likelihood"``.
    ir_n_sigma : float, optional
        Infrared islands are above median + ``ir_n_sigma`` x MAD (the paper: 3).
    ir_n_pixels : int, optional
        Minimum infrared island size in infrared pixels (the paper: 5).
    rules : sequence of str, optional
        Which grouping rules to apply: any of ``"touching"`` (rule 1), ``"double"`` (rule 2)
        and ``"core"`` (rule 3). Default: rules 1 and 2; rule 3 joined as many unrelated
        triples as real ones on the validation sets of every generator
        (``benchmarks/bench_classical.py``).
    classes : sequence of str, optional
        The class names used in the output (galcam's four by default).
    progress : bool or None, optional
        Show a tqdm progress bar in `predict_dataset` (`None`: only on a terminal).

    Notes
    -----
    The radio image needs a restoring beam (``BMAJ``/``BMIN`` in its header, as read by
    `galcam.io.read_image`): the grouping rules and the resolved/unresolved test are in
    units of the beam.
    """

    def __init__(
        self,
        *,
        n_sigma=3.0,
        n_pixels=5,
        noise_method="sigma_clip",
        seed_n_sigma=5.0,
        resolved_test="snr",
        resolved_ratio=1.2,
        resolved_n_sigma=2.0,
        touch_distance=0.5,
        max_separation=4.0 * u.arcmin,
        pair_flux_ratio=10.0,
        alignment_angle=30.0 * u.deg,
        elongation=1.3,
        core_offset=0.5,
        snr_scale=10.0,
        extent_scale=1.0,
        morphology_n_sigma=5.0,
        peak_separation=1.0,
        ab_pairing="per-side",
        single_peak_max_extent=6.0,
        host_rule="likelihood",
        host_radius=12.0 * u.arcsec,
        host_sigma=3.0 * u.arcsec,
        ir_n_sigma=3.0,
        ir_n_pixels=5,
        rules=("touching", "double"),
        classes=("FR-I", "FR-II", "FR-X", "R"),
        progress=None,
    ):
        from galcam.preprocessing.noise import METHODS

        self.n_sigma = check_positive(n_sigma, "n_sigma")
        self.n_pixels = check_positive_int(n_pixels, "n_pixels")
        if noise_method not in METHODS or noise_method == "paper-ir":
            raise ValueError(
                f"noise_method must be one of 'sigma_clip', 'paper', 'mad'; got {noise_method!r}"
            )
        self.noise_method = noise_method
        self.seed_n_sigma = check_positive(seed_n_sigma, "seed_n_sigma", allow_none=True)
        if resolved_test not in RESOLVED_TESTS:
            raise ValueError(f"resolved_test must be one of {RESOLVED_TESTS}, got "
                             f"{resolved_test!r}")
        self.resolved_test = resolved_test
        self.resolved_ratio = check_positive(resolved_ratio, "resolved_ratio")
        self.resolved_n_sigma = check_positive(resolved_n_sigma, "resolved_n_sigma",
                                               allow_zero=True)
        self.touch_distance = check_positive(touch_distance, "touch_distance", allow_zero=True)
        self.max_separation = check_quantity(max_separation, "max_separation", u.arcsec)
        self.pair_flux_ratio = check_fraction(pair_flux_ratio, "pair_flux_ratio", 1, math.inf,
                                              high_open=True, expected="a finite number >= 1")
        self.alignment_angle = check_quantity(alignment_angle, "alignment_angle", u.deg)
        if not self.alignment_angle.value <= 90:
            raise ValueError(f"alignment_angle: expected an angle in (0, 90] deg, got "
                             f"{alignment_angle!r}")
        self.elongation = check_fraction(elongation, "elongation", 1, math.inf, high_open=True,
                                         expected="a finite number >= 1")
        self.core_offset = check_positive(core_offset, "core_offset")
        self.snr_scale = check_positive(snr_scale, "snr_scale")
        self.extent_scale = check_positive(extent_scale, "extent_scale")
        self.morphology_n_sigma = check_positive(morphology_n_sigma, "morphology_n_sigma")
        self.peak_separation = check_positive(peak_separation, "peak_separation")
        from galcam.morphology import PAIRINGS

        if ab_pairing not in PAIRINGS:
            raise ValueError(f"ab_pairing must be one of {PAIRINGS}, got {ab_pairing!r}")
        self.ab_pairing = ab_pairing
        self.single_peak_max_extent = check_positive(
            single_peak_max_extent, "single_peak_max_extent", allow_none=True
        )
        if host_rule not in HOST_RULES:
            raise ValueError(f"host_rule must be one of {HOST_RULES}, got {host_rule!r}")
        self.host_rule = host_rule
        self.host_radius = check_quantity(host_radius, "host_radius", u.arcsec)
        self.host_sigma = check_quantity(host_sigma, "host_sigma", u.arcsec)
        self.ir_n_sigma = check_positive(ir_n_sigma, "ir_n_sigma")
        self.ir_n_pixels = check_positive_int(ir_n_pixels, "ir_n_pixels")
        if isinstance(classes, str) or len(tuple(classes)) != 4:
            raise ValueError(
                f"classes must name the four classes FR-I, FR-II, FR-X, R; got {classes!r}"
            )
        self.classes = tuple(classes)
        if isinstance(rules, str) or not set(rules) <= set(RULES):
            raise ValueError(f"rules must be a subset of {RULES}, got {rules!r}")
        self.rules = tuple(r for r in RULES if r in set(rules))
        self.progress = progress

    def __repr__(self):
        keys = (
            "n_sigma",
            "n_pixels",
            "noise_method",
            "seed_n_sigma",
            "resolved_test",
            "resolved_ratio",
            "resolved_n_sigma",
            "touch_distance",
            "max_separation",
            "pair_flux_ratio",
            "alignment_angle",
            "elongation",
            "core_offset",
            "snr_scale",
            "extent_scale",
            "rules",
            "ab_pairing",
            "single_peak_max_extent",
            "host_rule",
            "host_radius",
            "host_sigma",
        )
        return "ClassicalFinder(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in keys) + ")"

    # ------------------------------------------------------------------ one image
    def __call__(self, radio, ir=None, *, noise=None):
        """Find the extended radio galaxies of one image.

        Parameters
        ----------
        radio : str, path-like or `~astropy.nddata.NDData`
            The radio image (read with `galcam.io.read_image`); it needs a beam.
        ir : str, path-like or `~astropy.nddata.NDData`, optional
            An infrared image (e.g. WISE W1) on any grid overlapping the radio image.
        noise : `~galcam.preprocessing.NoiseResult`, optional
            A noise measurement to use instead of measuring it.

        Returns
        -------
        detections : list of `ClassicalDetection`
            Ordered by decreasing score.
        """
        from galcam.preprocessing.islands import find_islands

        radio, where, geom = self._read_radio(radio)
        noise, rms_map, data = self._noise_and_data(radio, noise)
        islands = find_islands(radio, noise, n_sigma=self.n_sigma, n_pixels=self.n_pixels)
        if islands.segment_image is None:
            log.debug("%s: no island above %g sigma", where, self.n_sigma)
            return []
        snr = data / rms_map
        isl = self._measure_islands(data, rms_map, islands.segment_image, geom)
        groups, rules = self._group(isl, geom)
        ir_sources = self._ir_sources(ir, radio) if ir is not None else None
        detections = []
        for members in groups:
            if len(members) == 1 and not isl[members[0]].resolved:
                continue  # an unresolved single island: a point source, not a radio galaxy
            if self.seed_n_sigma is not None and all(
                isl[k].peak_snr < self.seed_n_sigma for k in members
            ):
                continue  # no island of the group reaches the seed threshold: noise
            detections.append(
                self._describe(
                    [isl[k] for k in members],
                    rules.get(members[0], ()),
                    data,
                    snr,
                    rms_map,
                    radio,
                    geom,
                    ir_sources,
                )
            )
        detections.sort(key=lambda d: -d.score)
        log.debug("%s: %d islands -> %d extended radio galaxies", where, len(isl), len(detections))
        return detections

    def group_islands(self, snr, labels, *, beam_fwhm, beam_minor_fwhm=None, pixel_scale=None):
        """Group labelled islands of an image by the finder's rules (step 2).

        The finder's grouping on islands found elsewhere (for example by the model's
        encoder): the rules ``rules`` with their options, and the resolved test, measured
        on ``snr``.

        Parameters
        ----------
        snr : array-like (H, W)
            The image in units of its noise (background subtracted).
        labels : int array-like (H, W)
            The islands, labelled 1 to n (0: no island).
        beam_fwhm : float
            The beam's major-axis FWHM in pixels.
        beam_minor_fwhm : float, optional
            The beam's minor-axis FWHM in pixels (default: ``beam_fwhm``).
        pixel_scale : `~astropy.units.Quantity`, optional
            Angle per pixel, for ``max_separation``; without it the separation of two
            lobes is not limited.

        Returns
        -------
        groups : `~numpy.ndarray` of int (n,)
            The group of island ``k + 1`` in row ``k``, numbered from 0 in the order of
            their first island.
        resolved : `~numpy.ndarray` of bool (n,)
            Whether each island is resolved.
        """
        snr = np.nan_to_num(np.asarray(snr, dtype=np.float64))
        labels = np.asarray(labels)
        if snr.shape != labels.shape or snr.ndim != 2:
            raise ValueError(f"snr and labels: expected two 2-D arrays of one shape, got "
                             f"{snr.shape} and {labels.shape}")
        beam_fwhm = check_positive(beam_fwhm, "beam_fwhm")
        minor = beam_fwhm if beam_minor_fwhm is None else check_positive(beam_minor_fwhm,
                                                                         "beam_minor_fwhm")
        n = int(labels.max()) if labels.size else 0
        if n == 0:
            return np.zeros(0, dtype=int), np.zeros(0, dtype=bool)
        scale = None
        if pixel_scale is not None:
            scale = check_quantity(pixel_scale, "pixel_scale", u.arcsec).to_value(u.arcsec)
        geom = self._pixel_geometry(beam_fwhm, minor, scale)
        segm = _LabelImage(labels, n)
        isl = self._measure_islands(snr, np.ones(snr.shape), segm, geom)
        groups, _ = self._group(isl, geom)
        out = np.full(n, -1, dtype=int)  # -1: a label without pixels
        resolved = np.zeros(n, dtype=bool)
        for g, members in enumerate(sorted(groups, key=min)):
            for k in members:
                out[isl[k].label - 1] = g
                resolved[isl[k].label - 1] = isl[k].resolved
        return out, resolved

    def _read_radio(self, radio):
        """The radio image read, its name for messages, and its geometry in pixels."""
        from galcam.io import read_image

        radio = read_image(radio)
        where = radio.meta.get("filename") or "radio image"
        beam = radio.meta.get("beam")
        if beam is None:
            raise ValueError(
                f"{where}: the radio image has no restoring beam (BMAJ/BMIN); the classical "
                "finder measures sizes and peak separations in beams"
            )
        return radio, where, self._geometry(radio, beam)

    def _noise_and_data(self, radio, noise):
        """The noise (measured unless given), the rms map and the background-free data."""
        from galcam.preprocessing.noise import NoiseEstimator

        if noise is None:
            noise = NoiseEstimator(method=self.noise_method)(radio)
        rms_map = self._as_map(noise.rms_map if noise.has_maps else noise.rms, radio)
        bkg_map = self._as_map(noise.background_map if noise.has_maps else noise.background, radio)
        data = np.where(np.isfinite(radio.data), radio.data, 0.0).astype(np.float64) - bkg_map
        return noise, rms_map, data

    @staticmethod
    def _as_map(value, radio):
        value = np.asarray(u.Quantity(value).to_value(radio.unit or u.dimensionless_unscaled))
        if value.ndim == 0:
            return np.full(radio.data.shape, float(value))
        return np.where(np.isfinite(value), value, np.inf)

    def _geometry(self, radio, beam):
        from galcam.io import pixel_scale

        scale = pixel_scale(radio).to_value(u.arcsec)
        return self._pixel_geometry(beam.major.to_value(u.arcsec) / scale,
                                    beam.minor.to_value(u.arcsec) / scale, scale)

    def _pixel_geometry(self, fwhm_major, fwhm_minor, scale=None):
        """Beam and options in pixels; ``scale`` (arcsec per pixel) None: angles unlimited."""
        return {
            "scale": scale,  # arcsec per pixel
            "fwhm": fwhm_major,  # beam major FWHM in pixels
            "sigma": fwhm_major * _FWHM_TO_SIGMA,
            "beam_area": 2 * np.pi * fwhm_major * fwhm_minor * _FWHM_TO_SIGMA**2,  # pixels
            "max_sep": math.inf if scale is None else self.max_separation.to_value(u.arcsec)
            / scale,
            "host_radius": math.inf if scale is None else self.host_radius.to_value(u.arcsec)
            / scale,
        }

    def _measure_islands(self, data, rms_map, segm, geom):
        out = []
        labels = segm.data
        for label, slc in zip(segm.labels, segm.slices):
            sub = labels[slc] == label
            ys, xs = np.nonzero(sub)
            ys = ys + slc[0].start
            xs = xs + slc[1].start
            values = data[ys, xs]
            w = np.clip(values, 0, None)
            total = w.sum() if w.sum() > 0 else 1.0
            cx, cy = (w * xs).sum() / total, (w * ys).sum() / total
            dx, dy = xs - cx, ys - cy
            cov = (
                np.array(
                    [
                        [(w * dx * dx).sum(), (w * dx * dy).sum()],
                        [(w * dx * dy).sum(), (w * dy * dy).sum()],
                    ]
                )
                / total
            )
            evals, evecs = np.linalg.eigh(cov)
            evals = np.clip(evals, 0, None)
            major, minor = np.sqrt(evals[1]), np.sqrt(evals[0])
            theta = float(np.arctan2(evecs[1, 1], evecs[0, 1]))
            k = int(np.argmax(values))
            peak = float(values[k])
            flux = float(values.sum())
            rms = float(rms_map[ys[k], xs[k]])
            resolved = self._is_resolved(peak, flux, rms, len(values), geom)
            resolved = resolved or major >= self.resolved_ratio * geom["sigma"]
            out.append(
                _Island(
                    label=int(label),
                    ys=ys,
                    xs=xs,
                    values=values,
                    peak=peak,
                    peak_xy=(float(xs[k]), float(ys[k])),
                    flux=flux,
                    centroid=(cx, cy),
                    sigma_major=major,
                    sigma_minor=minor,
                    theta=theta,
                    resolved=bool(resolved),
                    peak_snr=peak / rms if rms > 0 else 0.0,
                )
            )
        return out

    def _is_resolved(self, peak, flux, rms, n_pixels, geom):
        """The resolved test on an island's peak, flux (pixel sums), rms and size."""
        omega = geom["beam_area"]
        if peak <= 0:
            return False
        if self.resolved_test == "ratio":
            return flux / omega / peak >= self.resolved_ratio
        # a point source of this peak cut at the island threshold holds omega * (peak - cut)
        cut = self.n_sigma * rms
        point = omega * max(peak - cut, rms)
        ratio = flux / point
        # noise of a sum of n beam-correlated pixels: rms * sqrt(n * min(n, omega))
        noise = rms * math.sqrt(n_pixels * min(n_pixels, omega)) / point
        return ratio >= self.resolved_ratio + self.resolved_n_sigma * noise

    # ------------------------------------------------------------------ grouping
    def _group(self, isl, geom):
        n = len(isl)
        uf = _UnionFind(n)
        joined_by = {i: set() for i in range(n)}
        if n < 2:
            return [[i] for i in range(n)], {}
        cent = np.array([i.centroid for i in isl])
        resolved_flags = np.array([i.resolved for i in isl])
        flux = np.array([max(i.flux, 1e-30) for i in isl])

        def join(members, rule):
            for a in members[1:]:
                uf.union(members[0], a)
            for m in members:
                joined_by[m].add(rule)

        # Rule 1: nearly touching resolved islands
        touch = self.touch_distance * geom["fwhm"]
        resolved = [k for k in range(n) if isl[k].resolved]
        trees = {k: cKDTree(np.column_stack([isl[k].xs, isl[k].ys])) for k in resolved}
        for ii, a in enumerate(resolved if "touching" in self.rules else ()):
            for b in resolved[ii + 1 :]:
                if self._bbox_gap(isl[a], isl[b]) > touch + 1:
                    continue
                d, _ = trees[b].query(np.column_stack([isl[a].xs, isl[a].ys]), k=1)
                if d.min() <= touch + 1:  # +1: pixels that touch are 1 apart
                    join([a, b], "touching")

        # candidate lobe pairs for rules 2 and 3
        pairs = []
        for a in range(n):
            for b in range(a + 1, n):
                d = float(np.hypot(*(cent[a] - cent[b])))
                ratio = max(flux[a], flux[b]) / min(flux[a], flux[b])
                if d <= geom["max_sep"] and ratio <= self.pair_flux_ratio and d > 0:
                    pairs.append((d, a, b))
        pairs.sort()

        # Rule 3: a core between two lobes (checked first: a triple is the strongest evidence).
        # Lobes are resolved; every island is a lobe of at most one triple or double, and
        # each pair takes only its best core (nearest the lobe axis), so nothing chains up.
        tol = self.core_offset * geom["fwhm"]
        paired = set()
        for d, a, b in pairs if "core" in self.rules else ():
            if a in paired or b in paired or not (isl[a].resolved and isl[b].resolved):
                continue
            u_ab = (cent[b] - cent[a]) / d
            rel = cent - cent[a]
            t = (rel @ u_ab) / d
            perp = np.abs(rel[:, 0] * u_ab[1] - rel[:, 1] * u_ab[0])
            ok = (t >= 0.25) & (t <= 0.75) & (perp <= tol) & (flux <= min(flux[a], flux[b]))
            ok &= ~resolved_flags
            ok[[a, b]] = False
            ok[list(paired)] = False
            if ok.any():
                c = int(np.flatnonzero(ok)[np.argmin(perp[ok])])
                join([a, b, c], "core")
                paired.update((a, b, c))

        # Rule 2: aligned doubles of resolved islands, each island in at most one double
        max_angle = np.deg2rad(self.alignment_angle.value)
        for _d, a, b in pairs if "double" in self.rules else ():
            if a in paired or b in paired or not (isl[a].resolved and isl[b].resolved):
                continue
            if uf.find(a) == uf.find(b):
                continue
            axis = np.arctan2(cent[b][1] - cent[a][1], cent[b][0] - cent[a][0])
            elongated, aligned = 0, True
            for k in (a, b):
                if isl[k].sigma_major >= self.elongation * max(isl[k].sigma_minor, 1e-6):
                    elongated += 1
                    diff = abs((isl[k].theta - axis + np.pi / 2) % np.pi - np.pi / 2)
                    aligned &= bool(diff <= max_angle)
            if elongated and aligned:
                join([a, b], "double")
                paired.update((a, b))

        groups = {}
        for k in range(n):
            groups.setdefault(uf.find(k), []).append(k)
        rules = {}
        for members in groups.values():
            r = set().union(*(joined_by[m] for m in members))
            rules[members[0]] = tuple(sorted(r))
        return list(groups.values()), rules

    @staticmethod
    def _bbox_gap(a, b):
        gx = max(a.xs.min() - b.xs.max(), b.xs.min() - a.xs.max(), 0)
        gy = max(a.ys.min() - b.ys.max(), b.ys.min() - a.ys.max(), 0)
        return float(np.hypot(gx, gy))

    # ------------------------------------------------------------------ one galaxy
    def _describe(self, members, rules, data, snr, rms_map, radio, geom, ir_sources):
        mask = np.zeros(data.shape, dtype=bool)
        for m in members:
            mask[m.ys, m.xs] = True
        values = data[mask]
        w = np.clip(values, 0, None)
        ys, xs = np.nonzero(mask)
        total = w.sum() if w.sum() > 0 else 1.0
        centre = (float((w * xs).sum() / total), float((w * ys).sum() / total))
        peak_snr = float(np.max(snr[mask]))
        peak = float(np.max(values))
        extent = float(values.sum() / geom["beam_area"] / peak) if peak > 0 else 0.0
        score = float(
            (1.0 - np.exp(-peak_snr / self.snr_scale))
            * (1.0 - np.exp(-max(extent - 1.0, 0.01) / self.extent_scale))
        )
        rms = float(np.median(rms_map[mask]))
        morph = self._morphology(data, rms, mask, geom)
        class_name = self._class_name(self._rule_label(morph, geom))
        core = self._find_core(members, morph, geom)
        geometric = (float(morph.center[0]), float(morph.center[1]))
        anchor = core if core is not None else geometric
        sigma = self.host_sigma.to_value(u.arcsec) / geom["scale"]
        host, method = self._host(anchor, mask, ir_sources, geom, sigma)
        if host is None:
            host, method = anchor, ("core" if core is not None else "centre")
        host_sky = None
        if radio.wcs is not None and radio.wcs.has_celestial:
            host_sky = radio.wcs.pixel_to_world(host[0], host[1])
        unit = radio.unit or u.dimensionless_unscaled
        flux = float(values.sum()) / geom["beam_area"]
        flux_q = flux * (unit * u.beam if unit.is_equivalent(u.Jy / u.beam) else unit)
        return ClassicalDetection(
            mask=readonly(mask),
            class_name=class_name,
            score=score,
            host=host,
            host_sky=host_sky,
            host_method=method,
            core=core,
            centre=centre,
            peak_snr=peak_snr,
            extent=extent,
            flux=flux_q,
            n_islands=len(members),
            a=float(morph.a),
            b=float(morph.b),
            rules=tuple(rules),
        )

    def _host(self, anchor, mask, ir_sources, geom, sigma):
        """The infrared host near the anchor (by ``host_rule``), else the nearest inside.

        ``ir_sources`` rows are ``(x, y, peak, n_brighter)`` with ``n_brighter`` the
        surface density (per radio pixel) of infrared sources at least that bright;
        ``sigma`` is the anchor's position uncertainty in radio pixels.
        """
        if ir_sources is None or not len(ir_sources):
            return None, None
        d = np.hypot(ir_sources[:, 0] - anchor[0], ir_sources[:, 1] - anchor[1])
        if self.host_rule == "likelihood":
            near = np.flatnonzero(d <= max(geom["host_radius"], 3.0 * sigma))
            if near.size:
                # log of the likelihood ratio f(r) / n(>S) (Sutherland & Saunders 1992)
                log_lr = -0.5 * (d[near] / sigma) ** 2 - np.log(ir_sources[near, 3])
                best = near[np.argmax(log_lr)]
                return (float(ir_sources[best, 0]), float(ir_sources[best, 1])), "ir"
        else:
            near = np.flatnonzero(d <= geom["host_radius"])
            if near.size:
                best = near[np.argmax(ir_sources[near, 2])]
                return (float(ir_sources[best, 0]), float(ir_sources[best, 1])), "ir"
        ny, nx = mask.shape
        ix = np.rint(ir_sources[:, 0]).astype(int)
        iy = np.rint(ir_sources[:, 1]).astype(int)
        inside = np.flatnonzero((ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny))
        inside = inside[mask[iy[inside], ix[inside]]]
        if inside.size:
            best = inside[np.argmin(d[inside])]
            return (float(ir_sources[best, 0]), float(ir_sources[best, 1])), "ir-in-source"
        return None, None

    def _morphology(self, data, rms, mask, geom):
        """The paper's a/b measurement; at the island threshold if nothing reaches 5 sigma."""
        from galcam.morphology import NoEmissionError, measure_ab

        options = {
            "mask": mask,
            "min_separation": max(self.peak_separation * geom["fwhm"], 1.0),
            "pairing": self.ab_pairing,
        }
        try:
            return measure_ab(data, rms, n_sigma=self.morphology_n_sigma, **options)
        except NoEmissionError:
            return measure_ab(
                data, rms, n_sigma=min(self.n_sigma, self.morphology_n_sigma), **options
            )

    def _rule_label(self, morph, geom):
        """The class of an a/b measurement, single-peaked extended sources made FR-I."""
        if (
            morph.label == "R"
            and self.single_peak_max_extent is not None
            and morph.b > self.single_peak_max_extent * geom["fwhm"]
        ):
            return "FR-I"  # one peak, but extended far beyond the beam: edge-darkened
        return morph.label

    def classify(self, radio, mask, *, noise=None):
        """The class of a given galaxy mask by the finder's rules (step 3).

        The same a/b measurement as for the finder's own galaxies, on any mask: a model's
        prediction, a mask drawn by hand.

        Parameters
        ----------
        radio : str, path-like or `~astropy.nddata.NDData`
            The radio image (read with `galcam.io.read_image`); it needs a beam.
        mask : array-like of bool
            The galaxy's pixels, ``mask[y, x]`` on the radio image's grid.
        noise : `~galcam.preprocessing.NoiseResult`, optional
            A noise measurement to use instead of measuring it.

        Returns
        -------
        class_name : str
            One of ``classes``.
        morphology : `~galcam.morphology.Morphology`
            The measurement (``a``, ``b``, peaks, ...).

        Raises
        ------
        galcam.morphology.NoEmissionError
            No pixel of the mask is above the island threshold.
        ValueError
            The image has no beam, or the mask does not match the image.
        """
        radio, where, geom = self._read_radio(radio)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != radio.data.shape:
            raise ValueError(f"mask: expected the radio image's shape {radio.data.shape}, got "
                             f"{mask.shape}")
        _, rms_map, data = self._noise_and_data(radio, noise)
        inside = mask & np.isfinite(rms_map)
        if not inside.any():
            from galcam.morphology import NoEmissionError

            raise NoEmissionError(f"{where}: the mask holds no pixel with a noise level")
        morph = self._morphology(data, float(np.median(rms_map[inside])), mask, geom)
        return self._class_name(self._rule_label(morph, geom)), morph

    def classify_snr(self, snr, mask, *, beam_fwhm):
        """The rules' class of a mask on an image in units of its noise (step 3), or None.

        The array version of `classify`, for an image already divided by its noise
        (background subtracted), as the model's instance step has it.

        Parameters
        ----------
        snr : array-like (H, W)
            The image in units of its noise.
        mask : bool array-like (H, W)
            The galaxy's pixels.
        beam_fwhm : float
            The beam's major-axis FWHM in pixels.

        Returns
        -------
        str or None
            One of ``classes``; None when no pixel of the mask is above the island
            threshold.
        """
        from galcam.morphology import NoEmissionError

        mask = np.asarray(mask, dtype=bool)
        ys, xs = np.nonzero(mask)
        if xs.size == 0:
            return None
        y0, x0 = max(int(ys.min()) - 2, 0), max(int(xs.min()) - 2, 0)
        box = (slice(y0, int(ys.max()) + 3), slice(x0, int(xs.max()) + 3))
        data = np.nan_to_num(np.asarray(snr, dtype=np.float64)[box])
        geom = {"fwhm": check_positive(beam_fwhm, "beam_fwhm")}
        try:
            morph = self._morphology(data, 1.0, mask[box], geom)
        except NoEmissionError:
            return None
        return self._class_name(self._rule_label(morph, geom))

    def _class_name(self, label):
        from galcam.datasets.classes import normalize_class_name

        key = normalize_class_name(str(label))
        for name in self.classes:
            if normalize_class_name(name) == key:
                return name
        raise RuntimeError(f"measure_ab returned an unknown class {label!r}")

    def _find_core(self, members, morph, geom):
        """The radio core: the brightest compact peak between the two lobe peaks, or None.

        The lobes are the two peaks of the a/b measurement farthest apart (``a``). Candidate
        cores are those peaks and the peaks of unresolved islands of the galaxy (a detached
        core); a core must project onto the middle half of the lobe axis and lie within
        ``core_offset`` beams of it. A galaxy with a single peak has that peak as its core.
        """
        peaks = np.asarray(morph.peaks, dtype=float).reshape(-1, 3)
        if len(peaks) == 0:
            return None
        if len(peaks) == 1:
            return (float(peaks[0, 0]), float(peaks[0, 1]))
        xy = peaks[:, :2]
        dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        i, j = np.unravel_index(np.argmax(dist), dist.shape)
        d = dist[i, j]
        compact = [(m.peak_xy[0], m.peak_xy[1], m.peak) for m in members if not m.resolved]
        cand = np.vstack([peaks, np.array(compact).reshape(-1, 3)])
        u_ab = (xy[j] - xy[i]) / d
        rel = cand[:, :2] - xy[i]
        t = rel @ u_ab / d
        perp = np.abs(rel[:, 0] * u_ab[1] - rel[:, 1] * u_ab[0])
        ok = (t >= 0.25) & (t <= 0.75) & (perp <= self.core_offset * geom["fwhm"])
        if not ok.any():
            return None
        best = np.flatnonzero(ok)[np.argmax(cand[ok, 2])]
        return (float(cand[best, 0]), float(cand[best, 1]))

    # ------------------------------------------------------------------ infrared
    def _ir_sources(self, ir, radio):
        """Infrared islands (median + ir_n_sigma x MAD, >= ir_n_pixels) as (x, y, peak, n).

        Positions are the flux-weighted centroids of a 5 x 5 box around each island's peak on
        the infrared image's own grid, converted to radio pixels through the sky. ``n`` is
        the surface density, per radio pixel, of the infrared sources at least as bright
        (one more than counted, over the infrared image's valid area): the source counts
        ``n(>S)`` of the likelihood ratio.
        """
        from galcam.io import read_image
        from galcam.preprocessing.islands import find_islands
        from galcam.preprocessing.noise import NoiseEstimator

        ir = read_image(ir)
        if ir.wcs is None or radio.wcs is None:
            raise ValueError("both images need a celestial WCS to match infrared hosts")
        noise = NoiseEstimator(method="paper-ir")(ir)
        islands = find_islands(ir, noise, n_sigma=self.ir_n_sigma, n_pixels=self.ir_n_pixels)
        if islands.segment_image is None:
            return np.zeros((0, 4))
        data = np.where(np.isfinite(ir.data), ir.data, 0.0).astype(np.float64)
        data = data - float(noise.background.to_value(ir.unit or u.dimensionless_unscaled))
        segm = islands.segment_image
        rows = []
        ny, nx = data.shape
        for label, slc in zip(segm.labels, segm.slices):
            sub = np.where(segm.data[slc] == label, data[slc], -np.inf)
            py, px = np.unravel_index(np.argmax(sub), sub.shape)
            py += slc[0].start
            px += slc[1].start
            y0, y1 = max(py - 2, 0), min(py + 3, ny)
            x0, x1 = max(px - 2, 0), min(px + 3, nx)
            box = np.clip(data[y0:y1, x0:x1], 0, None)
            if box.sum() > 0:
                cy, cx = ndimage.center_of_mass(box)
                cx, cy = cx + x0, cy + y0
            else:  # pragma: no cover - a peak above threshold always has positive flux
                cx, cy = float(px), float(py)
            rows.append((cx, cy, data[py, px]))
        rows = np.array(rows)
        from galcam.io import pixel_scale

        area = np.count_nonzero(np.isfinite(ir.data)) * (
            pixel_scale(ir) / pixel_scale(radio)
        ).to_value(u.dimensionless_unscaled) ** 2
        brighter = (rows[None, :, 2] >= rows[:, None, 2]).sum(axis=1)
        density = (brighter + 1.0) / max(area, 1.0)
        sky = ir.wcs.pixel_to_world(rows[:, 0], rows[:, 1])
        rx, ry = radio.wcs.world_to_pixel(sky)
        ok = np.isfinite(rx) & np.isfinite(ry)
        return np.column_stack([rx[ok], ry[ok], rows[ok, 2], density[ok]])

    # ------------------------------------------------------------------ data sets
    def predict_dataset(self, dataset, *, image_dir=None):
        """Run the finder on every image of a COCO data set.

        The annotations of the data set are never read: a JSON file is opened with
        ``load_annotations=False``, and of a `~galcam.datasets.CocoDataset` only the image
        paths are used.

        Parameters
        ----------
        dataset : str, path-like or `~galcam.datasets.CocoDataset`
            A COCO JSON (``images[]`` with FITS ``file_name`` and optional ``ir_file_name``,
            and ``categories[]``) or a data set.
        image_dir : str or path-like, optional
            Folder of the images (default: the JSON's folder).

        Returns
        -------
        results : list of dict
            COCO results (see `ClassicalDetection.to_coco`), with category ids taken from the
            data set's categories by name, every detection kept with its score.
        """
        from galcam.datasets.coco import CocoDataset

        if isinstance(dataset, CocoDataset):
            if image_dir is not None:
                raise ValueError("image_dir is only used with a JSON file, not a CocoDataset")
            ds = dataset
        else:
            ds = CocoDataset(
                dataset, image_dir=image_dir, classes=self.classes, load_annotations=False
            )
        from galcam.datasets.classes import normalize_class_name

        by_key = {normalize_class_name(k): v for k, v in ds.categories.items()}
        cats = {
            c: by_key[normalize_class_name(c)]
            for c in self.classes
            if normalize_class_name(c) in by_key
        }
        missing = [c for c in self.classes if c not in cats]
        if missing:
            raise ValueError(
                f"the data set's categories lack {', '.join(missing)}: predictions need a "
                "category id for every class (categories are matched by name)"
            )
        pngs = [img.file_name for img in ds if img.is_png]
        if pngs:
            raise ValueError(
                "the classical finder needs FITS radio images with a WCS and a beam, "
                f"but the data set holds PNG images ({', '.join(pngs[:3])}, ...)"
            )
        from tqdm.auto import tqdm

        log.info("classical finder: %d images of %s", len(ds), ds)
        results = []
        disable = self.progress is False or (self.progress is None and not _isatty())
        for img in tqdm(ds, desc="classical finder", unit="image", disable=disable):
            detections = self(img.path, img.ir_path)
            for det in detections:
                results.append(det.to_coco(img.image_id, cats[det.class_name]))
        return results


def _isatty():
    import sys

    return bool(getattr(sys.stderr, "isatty", lambda: False)())

"""Known-answer tests of the classical reference finder on small synthetic images."""

import json

import numpy as np
import pytest
from astropy import units as u
from astropy.convolution import Gaussian2DKernel, convolve_fft
from astropy.io import fits
from astropy.nddata import NDData
from astropy.wcs import WCS
from radio_beam import Beam

from galcam.baseline import ClassicalDetection, ClassicalFinder, detections_to_table
from galcam.datasets.coco import decode_rle

RMS = 1e-4  # Jy/beam
SHAPE = (128, 128)
BEAM_SIGMA = 13 / 2 / 2.3548  # pixels: 13" FWHM beam on a 2"/px grid


def _gauss(x0, y0, peak, sx, sy=None, theta=0.0, shape=SHAPE):
    sy = sx if sy is None else sy
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    c, s = np.cos(theta), np.sin(theta)
    dx, dy = x - x0, y - y0
    along, across = c * dx + s * dy, -s * dx + c * dy
    return peak * np.exp(-0.5 * (along**2 / sx**2 + across**2 / sy**2))


def _wcs(shape, scale_arcsec, crval=(320.0, -55.0)):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    w.wcs.crval = list(crval)
    w.wcs.cdelt = [-scale_arcsec / 3600, scale_arcsec / 3600]
    return w


def radio_image(components, *, seed=0, shape=SHAPE):
    """Beam-correlated noise (rms RMS) plus Gaussian components given in units of the rms."""
    rng = np.random.default_rng(seed)
    noise = convolve_fft(rng.normal(0, 1, shape), Gaussian2DKernel(2.5))
    data = noise * (RMS / noise.std())
    for comp in components:
        data = data + _gauss(*comp, shape=shape) * RMS
    return NDData(
        data.astype(np.float32),
        wcs=_wcs(shape, 2.0),
        unit=u.Jy / u.beam,
        meta={"beam": Beam(13 * u.arcsec, 13 * u.arcsec, 0 * u.deg)},
    )


def ir_image(sources, *, seed=1, shape=(186, 186)):
    """WISE-like image on a 1.375"/px grid; sources as (ra, dec, peak) with a 6" PSF."""
    rng = np.random.default_rng(seed)
    wcs = _wcs(shape, 1.375)
    data = rng.normal(100.0, 1.0, shape)
    for ra, dec, peak in sources:
        x, y = wcs.world_to_pixel_values(ra, dec)
        data = data + _gauss(x, y, peak, 6 / 2.3548 / 1.375, shape=shape)
    return NDData(data.astype(np.float32), wcs=wcs, unit=u.dimensionless_unscaled)


# an FR-II: two elongated lobes and a compact core between them, plus unrelated point sources
FR2 = [
    (40, 64, 20, 7, 3.5),
    (88, 64, 18, 7, 3.5),
    (64, 64, 10, BEAM_SIGMA),
]
POINTS = [(20, 110, 15, BEAM_SIGMA), (105, 20, 12, BEAM_SIGMA)]
# an FR-I: bright core, two jet knots close to it and diffuse emission well beyond them
FR1 = [
    (64, 64, 80, BEAM_SIGMA),
    (51, 64, 16, BEAM_SIGMA * 1.2),
    (77, 64, 16, BEAM_SIGMA * 1.2),
    (64, 64, 14, 26, 4),
]


@pytest.fixture(scope="module")
def finder():
    return ClassicalFinder()


@pytest.fixture(scope="module")
def finder_core():
    return ClassicalFinder(rules=("touching", "double", "core"))


def test_lobes_and_core_grouped(finder_core, finder):
    # by default (no core rule) the aligned lobes are a double and the core stays alone
    (det,) = finder(radio_image(FR2 + POINTS))
    assert det.n_islands == 2 and det.rules == ("double",)
    # the core island is not part of it: the host falls back to the geometric centre
    assert det.core is None and det.host_method == "centre"
    assert det.host == pytest.approx((64, 64), abs=2)
    dets = finder_core(radio_image(FR2 + POINTS))
    assert len(dets) == 1  # the point sources are not extended radio galaxies
    det = dets[0]
    assert isinstance(det, ClassicalDetection)
    assert det.n_islands == 3
    assert "core" in det.rules
    assert det.class_name == "FR-II"
    assert det.mask[64, 40] and det.mask[64, 88] and det.mask[64, 64]
    assert not det.mask[110, 20]
    assert det.core == pytest.approx((64, 64), abs=1)
    assert det.host_method == "core"
    assert det.host == pytest.approx((64, 64), abs=1)
    # sky position of the host through the WCS
    ra, dec = _wcs(SHAPE, 2.0).pixel_to_world_values(64, 64)
    assert det.host_sky.ra.deg == pytest.approx(ra, abs=1e-6)
    assert det.host_sky.dec.deg == pytest.approx(dec, abs=1e-6)
    assert det.peak_snr == pytest.approx(20, rel=0.2)
    assert det.extent > 2  # integrated over peak flux density, in beams
    expected = (1 - np.exp(-det.peak_snr / 10)) * (1 - np.exp(-(det.extent - 1) / 1.0))
    assert det.score == pytest.approx(expected)
    with pytest.raises(ValueError):
        det.mask[0, 0] = True


def test_unrelated_sources_not_grouped(finder):
    # two slightly resolved round sources 30 px apart, with nothing between them
    blobs = [(40, 40, 12, BEAM_SIGMA * 1.8), (70, 40, 12, BEAM_SIGMA * 1.8)]
    dets = finder(radio_image(blobs + POINTS, seed=2))
    assert len(dets) == 2
    assert all(d.n_islands == 1 and d.rules == () for d in dets)
    xs = sorted(d.centre[0] for d in dets)
    assert xs == pytest.approx([40, 70], abs=1.5)


def test_point_sources_alone_give_nothing(finder):
    assert finder(radio_image(POINTS, seed=3)) == []
    assert finder(radio_image([], seed=3)) == []


def test_nearly_touching_resolved_islands():
    # two resolved blobs elongated across the line joining them, a ~5 px gap apart:
    # joined within one beam FWHM (6.5 px), not within half of one (the default)
    blobs = [(52, 64, 10, 4, 8), (70, 64, 10, 4, 8)]
    img = radio_image(blobs, seed=4)
    dets = ClassicalFinder(touch_distance=1.0)(img)
    assert len(dets) == 1
    assert dets[0].n_islands == 2 and dets[0].rules == ("touching",)
    assert len(ClassicalFinder()(img)) == 2


def test_aligned_double(finder):
    lobes = [(34, 64, 15, 7, 3), (94, 64, 15, 7, 3)]
    dets = finder(radio_image(lobes, seed=5))
    assert len(dets) == 1 and dets[0].rules == ("double",)
    assert dets[0].class_name == "FR-II"
    # the same lobes elongated across the line joining them are two sources
    crossed = [(34, 64, 15, 3, 7), (94, 64, 15, 3, 7)]
    assert len(finder(radio_image(crossed, seed=5))) == 2
    # and beyond max_separation they are not joined
    near = ClassicalFinder(max_separation=1 * u.arcmin)
    assert len(near(radio_image(lobes, seed=5))) == 2


def test_class_by_ab_rule(finder):
    (fr1,) = finder(radio_image(FR1, seed=6))
    assert fr1.class_name == "FR-I"
    assert fr1.a / fr1.b < 0.45
    assert fr1.host == pytest.approx((64, 64), abs=1)
    # a single slightly resolved peak is R
    (r,) = finder(radio_image([(64, 64, 20, BEAM_SIGMA * 2, BEAM_SIGMA * 1.5)], seed=7))
    assert r.class_name == "R" and r.a == 0


def test_host_from_infrared(finder_core):
    finder = finder_core
    radio = radio_image(FR2, seed=8)
    ra0, dec0 = radio.wcs.pixel_to_world_values(65.5, 63.0)  # 3.4" from the core
    ra1, dec1 = radio.wcs.pixel_to_world_values(90.0, 90.0)  # brighter, but far away
    ra2, dec2 = radio.wcs.pixel_to_world_values(60.0, 66.0)  # fainter, 9" from the core
    ir = ir_image([(ra0, dec0, 30.0), (ra1, dec1, 80.0), (ra2, dec2, 15.0)])
    (det,) = finder(radio, ir)
    assert det.host_method == "ir"
    assert det.host == pytest.approx((65.5, 63.0), abs=0.3)
    # no infrared source near the core: the core is the host
    far = ir_image([(ra1, dec1, 80.0)])
    (det2,) = finder(radio, far)
    assert det2.host_method == "core"
    # none near the core, but one on the radio emission (a lobe): that one
    ra3, dec3 = radio.wcs.pixel_to_world_values(84.0, 64.0)
    on_lobe = ir_image([(ra1, dec1, 80.0), (ra3, dec3, 30.0)])
    (det3,) = finder(radio, on_lobe)
    assert det3.host_method == "ir-in-source"
    assert det3.host == pytest.approx((84.0, 64.0), abs=0.3)


def test_host_likelihood_ratio_not_brightest():
    # a faint infrared source 1" from the radio core, a bright one 14" away, and a field
    # of faint sources: the likelihood ratio takes the near one (a faint source that close
    # is rarely there by chance), the brightest-neighbour rule the bright one
    radio = radio_image(FR2, seed=8)
    near = radio.wcs.pixel_to_world_values(64.5, 64.0)  # 1" from the core
    bright = radio.wcs.pixel_to_world_values(71.0, 64.0)  # 14" from the core
    field = [radio.wcs.pixel_to_world_values(x, y) for x, y in
             ((10, 10), (120, 12), (15, 118), (118, 118), (30, 100), (100, 30))]
    ir = ir_image([(*near, 10.0), (*bright, 40.0)] + [(*c, 18.0) for c in field])
    radius = {"host_radius": 15 * u.arcsec}
    (det,) = ClassicalFinder(**radius)(radio, ir)
    assert det.host_method == "ir"
    assert det.host == pytest.approx((64.5, 64.0), abs=0.4)
    (det2,) = ClassicalFinder(host_rule="brightest", **radius)(radio, ir)
    assert det2.host == pytest.approx((71.0, 64.0), abs=0.4)


@pytest.mark.parametrize("peak", [6.0, 20.0, 100.0, 1000.0])
def test_point_sources_unresolved_at_any_snr(finder, peak):
    # a point source is never resolved, however bright; the S/N-blind ratio test at a
    # threshold low enough to keep barely resolved sources calls the bright ones resolved
    img = radio_image([(64, 64, peak, BEAM_SIGMA)], seed=12)
    assert finder(img) == []
    if peak >= 100:
        assert len(ClassicalFinder(resolved_test="ratio", resolved_ratio=0.95)(img)) == 1


def test_barely_resolved_bright_source(finder):
    # 1.2 times the beam along each axis at 100 sigma: resolved by the S/N-aware test,
    # which knows how much flux a point source of that peak keeps above the cut; the
    # S/N-blind integrated-over-peak test at its threshold of 1.5 misses it
    img = radio_image([(64, 64, 100, BEAM_SIGMA * 1.2)], seed=13)
    (det,) = finder(img)
    assert det.class_name == "R"
    assert ClassicalFinder(resolved_test="ratio", resolved_ratio=1.5)(img) == []


def test_seed_threshold():
    # a faint, diffuse source whose peak stays below 5 sigma: an island at 3 sigma, but
    # no seed; reported only without the seed test
    img = radio_image([(64, 64, 4.5, 8.0)], seed=14)
    assert ClassicalFinder()(img) == []
    (det,) = ClassicalFinder(seed_n_sigma=None)(img)
    assert 3 < det.peak_snr < 5
    # the same source on another noise draw reaches 5 sigma: reported either way
    brighter = radio_image([(64, 64, 4.5, 8.0)], seed=15)
    assert len(ClassicalFinder()(brighter)) == 1


def test_classify_a_given_mask(finder):
    # the rules' class of any mask: the finder's own masks give its own classes
    for components, seed in ((FR2, 8), (FR1, 6)):
        img = radio_image(components, seed=seed)
        (det,) = finder(img)
        name, morph = finder.classify(img, det.mask)
        assert name == det.class_name
        assert (morph.a, morph.b) == pytest.approx((det.a, det.b))
    # a box drawn by hand around the FR-I
    box = np.zeros(SHAPE, dtype=bool)
    box[50:79, 30:99] = True
    assert finder.classify(radio_image(FR1, seed=6), box)[0] == "FR-I"
    with pytest.raises(ValueError, match="expected the radio image's shape"):
        finder.classify(img, box[:10])
    from galcam.morphology import NoEmissionError

    empty = np.zeros(SHAPE, dtype=bool)
    empty[0:3, 0:3] = True
    with pytest.raises(NoEmissionError):
        finder.classify(radio_image([], seed=3), empty)


def test_table(finder):
    dets = finder(radio_image(FR2 + FR1[:0], seed=9))
    t = detections_to_table(dets)
    assert len(t) == 1 and t["class"][0] == "FR-II"
    assert t["flux"].unit == u.Jy
    assert "host_sky" in t.colnames
    assert len(detections_to_table([])) == 0


def test_options_validated():
    with pytest.raises(ValueError, match="n_sigma"):
        ClassicalFinder(n_sigma=-1)
    with pytest.raises(ValueError, match="n_pixels"):
        ClassicalFinder(n_pixels=0)
    with pytest.raises(TypeError, match="max_separation: expected an angle"):
        ClassicalFinder(max_separation=30)
    with pytest.raises(TypeError, match="host_radius"):
        ClassicalFinder(host_radius=5 * u.m)
    with pytest.raises(ValueError, match="alignment_angle"):
        ClassicalFinder(alignment_angle=120 * u.deg)
    with pytest.raises(ValueError, match="noise_method"):
        ClassicalFinder(noise_method="paper-ir")
    with pytest.raises(ValueError, match="pair_flux_ratio"):
        ClassicalFinder(pair_flux_ratio=0.5)
    with pytest.raises(ValueError, match="resolved_test must be one of"):
        ClassicalFinder(resolved_test="size")
    with pytest.raises(ValueError, match="host_rule must be one of"):
        ClassicalFinder(host_rule="nearest")
    with pytest.raises(ValueError, match="ab_pairing must be one of"):
        ClassicalFinder(ab_pairing="brightest")
    with pytest.raises(ValueError, match="seed_n_sigma"):
        ClassicalFinder(seed_n_sigma=0)
    with pytest.raises(TypeError, match="host_sigma"):
        ClassicalFinder(host_sigma=3)
    with pytest.raises(ValueError, match="rules must be a subset"):
        ClassicalFinder(rules=("touching", "bridge"))
    assert ClassicalFinder(rules=["core", "touching"]).rules == ("touching", "core")


def test_rules_can_be_switched_off():
    img = radio_image(FR2)
    (det,) = ClassicalFinder(rules=("core",))(img)
    assert det.n_islands == 3
    # without the core rule the lobes are two separate sources and the core is dropped
    dets = ClassicalFinder(rules=("touching",))(img)
    assert len(dets) == 2 and all(d.n_islands == 1 for d in dets)


def test_score_ranks_extended_above_compact(finder):
    # same peak S/N: a clearly extended source scores higher than a barely resolved one
    ext = finder(radio_image([(64, 64, 30, BEAM_SIGMA * 3, BEAM_SIGMA * 2)], seed=11))
    small = finder(radio_image([(64, 64, 30, BEAM_SIGMA * 1.6, BEAM_SIGMA * 1.4)], seed=11))
    assert len(ext) == len(small) == 1
    assert ext[0].extent > small[0].extent > 1
    assert ext[0].score > small[0].score


def test_needs_a_beam(finder):
    img = radio_image(FR2)
    no_beam = NDData(img.data, wcs=img.wcs, unit=img.unit)
    with pytest.raises(ValueError, match="no restoring beam"):
        finder(no_beam)


# ---------------------------------------------------------------- data sets and COCO output


def _write_dataset(tmp_path, *, categories=None, annotations=None):
    images = []
    scenes = [FR2 + POINTS, FR1, [(40, 40, 12, BEAM_SIGMA * 1.8), (70, 40, 12, BEAM_SIGMA * 1.8)]]
    (tmp_path / "radio").mkdir()
    (tmp_path / "ir").mkdir()
    for k, comps in enumerate(scenes):
        img = radio_image(comps, seed=20 + k)
        hdr = img.wcs.to_header()
        hdr.update(BUNIT="Jy/beam", BMAJ=13 / 3600, BMIN=13 / 3600, BPA=0.0)
        name = f"radio/s{k}.fits"
        fits.writeto(tmp_path / name, img.data[None, None], _as_4d(hdr))
        ra, dec = img.wcs.pixel_to_world_values(65.0, 63.0)
        ir = ir_image([(ra, dec, 30.0)], seed=30 + k)
        irname = f"ir/s{k}_w1.fits"
        fits.writeto(tmp_path / irname, ir.data, ir.wcs.to_header())
        images.append(
            {
                "id": 10 + k,
                "file_name": name,
                "ir_file_name": irname,
                "width": SHAPE[1],
                "height": SHAPE[0],
            }
        )
    coco = {
        "images": images,
        "categories": categories
        or [
            {"id": 1, "name": "FR-II"},
            {"id": 2, "name": "FR-I"},
            {"id": 3, "name": "FR-X"},
            {"id": 4, "name": "R"},
        ],
        "annotations": annotations if annotations is not None else [],
    }
    path = tmp_path / "images.json"
    path.write_text(json.dumps(coco))
    return path, coco


def _as_4d(hdr2d):
    w = WCS(hdr2d)
    w4 = WCS(naxis=4)
    w4.wcs.ctype = list(w.wcs.ctype) + ["FREQ", "STOKES"]
    w4.wcs.crpix = list(w.wcs.crpix) + [1, 1]
    w4.wcs.crval = list(w.wcs.crval) + [9.44e8, 1]
    w4.wcs.cdelt = list(w.wcs.cdelt) + [1e6, 1]
    hdr = w4.to_header()
    for key in ("BUNIT", "BMAJ", "BMIN", "BPA"):
        hdr[key] = hdr2d[key]
    return hdr


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return _write_dataset(tmp_path_factory.mktemp("ds"))


@pytest.fixture(scope="module")
def predictions(dataset, finder):
    path, _ = dataset
    return finder.predict_dataset(path)


def test_predictions_format(dataset, predictions):
    from pycocotools.coco import COCO

    path, coco = dataset
    assert {p["image_id"] for p in predictions} == {10, 11, 12}
    by_image = {}
    for p in predictions:
        by_image.setdefault(p["image_id"], []).append(p)
        assert set(p) >= {"image_id", "category_id", "score", "segmentation", "bbox", "keypoints"}
        assert isinstance(p["segmentation"]["counts"], str)
        assert p["segmentation"]["size"] == list(SHAPE)
        assert len(p["keypoints"]) == 3 and p["keypoints"][2] == 2
        mask = decode_rle(p["segmentation"])
        x, y, w, h = p["bbox"]
        ys, xs = np.nonzero(mask)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
        assert 0 < p["score"] < 1
    # ids by name: this JSON has 1 = FR-II, 2 = FR-I
    assert [p["category_id"] for p in by_image[10]] == [1]
    assert [p["category_id"] for p in by_image[11]] == [2]
    assert len(by_image[12]) == 2
    assert by_image[10][0]["keypoints"][:2] == pytest.approx([65.0, 63.0], abs=0.5)
    # pycocotools accepts them as results
    gt = COCO()
    gt.dataset = json.loads(json.dumps(coco))
    gt.dataset["annotations"] = []
    gt.createIndex()
    res = gt.loadRes(json.loads(json.dumps(predictions)))
    assert len(res.getAnnIds()) == len(predictions)


def test_permuted_category_ids(tmp_path, finder, predictions):
    cats = [
        {"id": 7, "name": "r"},
        {"id": 5, "name": "fr_i"},
        {"id": 9, "name": "FR II"},
        {"id": 8, "name": "FRX"},
    ]
    path, _ = _write_dataset(tmp_path, categories=cats)
    remapped = finder.predict_dataset(path)
    ids = {1: 9, 2: 5, 3: 8, 4: 7}
    assert [p["category_id"] for p in remapped] == [ids[p["category_id"]] for p in predictions]


def test_annotations_never_read(tmp_path, dataset, finder, predictions, monkeypatch):
    # poisoned annotations in the JSON: garbage that any reader would choke on
    poison = [{"image_id": 10, "category_id": 999, "segmentation": "x", "keypoints": [1e9]}]
    path, _ = _write_dataset(tmp_path, annotations=poison)
    assert finder.predict_dataset(path) == predictions
    # a data set object whose annotation access explodes gives the same predictions
    from galcam.datasets import CocoDataset

    def boom(*args, **kwargs):
        raise AssertionError("annotations were read at prediction")

    monkeypatch.setattr(CocoDataset, "annotations", boom)
    ds = CocoDataset(dataset[0], load_annotations=False)
    assert finder.predict_dataset(ds) == predictions


def test_predict_dataset_needs_all_categories(tmp_path, finder):
    path, _ = _write_dataset(tmp_path, categories=[{"id": 1, "name": "FR-I"}])
    with pytest.raises(ValueError, match="categories lack FR-II, FR-X, R"):
        finder.predict_dataset(path)


def test_cli(dataset, predictions, tmp_path, capsys):
    from galcam.cli.main import main

    path, _ = dataset
    out = tmp_path / "out"
    assert main(["baseline", "--coco", str(path), "-o", str(out)]) == 0
    written = json.loads((out / "predictions.json").read_text())
    assert written == json.loads(json.dumps(predictions))
    # refuses to overwrite
    assert main(["baseline", "--coco", str(path), "-o", str(out)]) == 2
    assert "already holds predictions.json" in capsys.readouterr().err
    assert main(["baseline", "--coco", str(path), "-o", str(out), "--overwrite"]) == 0
    # the rules' options reach the finder: the earlier rules give other predictions
    earlier = ["--host-rule", "brightest", "--ab-pairing", "farthest",
               "--single-peak-max-extent", "none"]
    out2 = tmp_path / "out2"
    assert main(["baseline", "--coco", str(path), "-o", str(out2), *earlier]) == 0
    finder = ClassicalFinder(host_rule="brightest", ab_pairing="farthest",
                             single_peak_max_extent=None, progress=False)
    assert json.loads((out2 / "predictions.json").read_text()) == json.loads(
        json.dumps(finder.predict_dataset(path)))
    assert main(["baseline", "--coco", str(path), "-o", str(out2), "--overwrite",
                 "--single-peak-max-extent", "-2"]) == 2
    assert "--single-peak-max-extent: expected a positive number" in capsys.readouterr().err
    # a missing JSON is a one-line error
    assert main(["baseline", "--coco", str(tmp_path / "no.json"), "-o", str(out)]) == 2

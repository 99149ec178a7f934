"""WeakSegmenter: loading, end-to-end prediction, tiling, resampling, data sets."""

import copy
import json
import shutil
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.utils.exceptions import AstropyDeprecationWarning, AstropyUserWarning

from galcam.inference import GalaxyGrouper, SegmentationResult, WeakSegmenter
from galcam.inference import segmenter as segmod
from galcam.models import ModelFolderError

from .conftest import CLASSES, build_model_folder, make_ir, make_radio, write_fits


# ------------------------------------------------------------------ loading
def test_load_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        WeakSegmenter.load(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        WeakSegmenter.load(tmp_path / "file")


def test_load_truncated_weights(model_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    data = (bad / "irnet.pt").read_bytes()
    (bad / "irnet.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFolderError, match="truncated"):
        WeakSegmenter.load(bad, device="cpu")


def _edit_config(model_dir, tmp_path, edit):
    bad = tmp_path / "edited"
    shutil.copytree(model_dir, bad)
    config = json.loads((bad / "config.json").read_text())
    edit(config)
    (bad / "config.json").write_text(json.dumps(config))
    return bad


def test_load_wrong_schema_and_incompatible_config(model_dir, tmp_path):
    newer = _edit_config(model_dir, tmp_path, lambda c: c.update(schema_version=99))
    with pytest.raises(ModelFolderError, match="newer galcam"):
        WeakSegmenter.load(newer, device="cpu")
    shutil.rmtree(newer)
    no_classes = _edit_config(model_dir, tmp_path, lambda c: c.pop("classes"))
    with pytest.raises(ModelFolderError, match="incompatible model: 'classes'"):
        WeakSegmenter.load(no_classes, device="cpu")
    shutil.rmtree(no_classes)
    wrong_arch = _edit_config(model_dir, tmp_path,
                              lambda c: c["backbone"]["cam"].update(arch="resnet34"))
    with pytest.raises(ModelFolderError, match="CAM weights do not fit"):
        WeakSegmenter.load(wrong_arch, device="cpu")
    shutil.rmtree(wrong_arch)
    bad_norm = _edit_config(model_dir, tmp_path,
                            lambda c: c["encoding"]["normalization"].update(mean=[0.5]))
    with pytest.raises(ModelFolderError, match="normalization"):
        WeakSegmenter.load(bad_norm, device="cpu")


def test_load_registered_names(monkeypatch, tmp_path):
    monkeypatch.setitem(segmod.MODEL_REGISTRY, "default", {"path": tmp_path / "absent"})
    with pytest.raises(segmod.ModelNotInstalledError, match="no bundled model is installed"):
        WeakSegmenter.load("default")
    monkeypatch.setenv("GALCAM_MODELS", str(tmp_path / "cache"))
    monkeypatch.setitem(segmod.MODEL_REGISTRY, "remote",
                        {"url": "https://example.org/remote.zip"})
    with pytest.raises(segmod.ModelNotInstalledError, match="does not download"):
        WeakSegmenter.load("remote")
    build_model_folder(tmp_path / "cache" / "remote")
    assert WeakSegmenter.load("remote", device="cpu").classes == tuple(CLASSES)


def test_load_options_validated(model_dir):
    with pytest.raises(TypeError, match="unknown option"):
        WeakSegmenter.load(model_dir, device="cpu", colour="red")
    with pytest.raises(ValueError, match="tile_overlap"):
        WeakSegmenter.load(model_dir, device="cpu", tile_overlap=0.1)
    with pytest.raises(TypeError, match="grouper: expected a GalaxyGrouper"):
        WeakSegmenter.load(model_dir, device="cpu", grouper={"class_threshold": 0.2})


def test_legacy_keywords_still_work_with_a_deprecation(model_dir):
    """Keywords of earlier versions reach the grouper and the spec, with a warning."""
    with pytest.warns(AstropyDeprecationWarning, match="GalaxyGrouper"):
        seg = WeakSegmenter.load(model_dir, device="cpu", class_threshold=0.6,
                                 resolution_scale=None, scales=(1.0,))
    assert seg.class_threshold == 0.6 and seg.resolution_scale is None
    assert seg.spec.cam_scales == (1.0,)
    with pytest.warns(AstropyDeprecationWarning, match="GalaxyGrouper"):
        seg = WeakSegmenter.load(model_dir, device="cpu", link_radius=12.0)
    assert seg.grouping.link_radius == 12.0
    with pytest.warns(AstropyDeprecationWarning), \
            pytest.raises(ValueError, match="class_threshold"):
        WeakSegmenter.load(model_dir, device="cpu", class_threshold=2)
    with pytest.warns(AstropyDeprecationWarning, match="host_finder=None"):
        assert WeakSegmenter.load(model_dir, device="cpu", hosts=False).host_finder is None
    with pytest.raises(TypeError, match="not beside it"), pytest.warns(AstropyDeprecationWarning):
        WeakSegmenter.load(model_dir, device="cpu", grouper=GalaxyGrouper(), min_classes=1)


def test_segmenter_reads_config(segmenter):
    assert segmenter.classes == tuple(CLASSES)
    assert segmenter.tile_size == (64, 64)
    assert segmenter.tile_overlap == (22, 22)  # ceil(64 / 3)
    assert segmenter.pixel_scale == 2.0
    assert segmenter.encoder.channels == ("ir", "radio", "radio")
    assert segmenter.device.type == "cpu"


def test_class_settings_read_from_the_model_folder(model_dir, tmp_path):
    def edit(c):
        c["thresholds"].update(class_scales=[0.6], class_views="dihedral")

    folder = _edit_config(model_dir, tmp_path, edit)
    seg = WeakSegmenter.load(folder, device="cpu")
    assert seg.spec.class_scales == (0.6,) and seg.spec.class_views == "dihedral"
    # a changed spec wins over the folder
    assert seg.spec.with_options(class_views="none").class_views == "none"
    shutil.rmtree(folder)
    # without the settings: CAM scales, mirrored (the default)
    old = WeakSegmenter.load(model_dir, device="cpu")
    assert old.spec.class_scales is None and old.spec.class_views is None
    for bad, match in [({"class_scales": [0.6, -1]}, "class_scales must be a list"),
                       ({"class_scales": 0.6}, "class_scales must be a list"),
                       ({"class_views": "all"}, "class_views must be one of")]:
        folder = _edit_config(model_dir, tmp_path, lambda c, b=bad: c["thresholds"].update(b))
        with pytest.raises(ModelFolderError, match=match):
            WeakSegmenter.load(folder, device="cpu")
        shutil.rmtree(folder)
    with pytest.raises(ValueError, match="class_views must be one of"):
        old.spec.with_options(class_views="eight")
    for bad in ([], 0.6, "0.6", [0.6, float("nan")], ["a"]):
        with pytest.raises(ValueError, match="class_scales must be a list of positive"):
            old.spec.with_options(class_scales=bad)
    with pytest.raises(ValueError, match="cam_scales must be a list of positive"):
        old.spec.with_options(cam_scales=1.0)


def test_tiles_carry_the_noise_level_and_the_beam(segmenter, model_dir, tmp_path, caplog):
    """The resolution term needs S/N and the beam: from the image, else the model's beam."""
    import math

    radio = make_radio(beam=(10.0, 8.0))
    sigma = 1 / (2 * math.sqrt(2 * math.log(2)))
    inputs = [ev for _, ev in segmenter.tile_evidence(radio)]
    assert inputs and all(inp.snr is not None for inp in inputs)
    # 10" x 8" at 2"/px
    assert inputs[0].beam_sigma2 == pytest.approx(5 * sigma * 4 * sigma, rel=1e-6)
    noise = float(np.std(radio.data[:8, :8]))
    assert inputs[0].snr.max() == pytest.approx(radio.data.max() / noise, rel=0.3)
    # no beam in the image: the model's training beam (10" x 8" as well in the test model)
    evidence = segmenter.tile_evidence(make_radio(beam=None))
    assert evidence[0][1].beam_sigma2 == pytest.approx(20 * sigma ** 2, rel=1e-6)
    # neither: no resolution term, and the log says so
    folder = _edit_config(model_dir, tmp_path, lambda c: c["radio"].update(beam=None))
    seg = WeakSegmenter.load(folder, device="cpu", grouper=GalaxyGrouper(class_threshold=0.0))
    with caplog.at_level("WARNING", logger="galcam.inference.segmenter"):
        evidence = seg.tile_evidence(make_radio(beam=None))
        assert all(ev.beam_sigma2 is None for _, ev in evidence)
    assert "no resolution term" in caplog.text
    shutil.rmtree(folder)


def test_png_data_sets_are_scored_without_the_resolution_term(segmenter, tmp_path, caplog):
    from galcam.preprocessing.png import write_paper_png

    radio01 = np.zeros((64, 64), np.float32)
    radio01[20:30, 20:34] = np.linspace(0.2, 1.0, 14)[None, :]
    write_paper_png(tmp_path / "a.png", radio01, np.zeros_like(radio01))
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 64}],
            "categories": [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)]}
    (tmp_path / "images.json").write_text(json.dumps(coco))
    with caplog.at_level("WARNING", logger="galcam.inference.segmenter"):
        pred = segmenter.predict_dataset(tmp_path / "images.json", progress=False)
    assert "1 of 1 images are PNGs" in caplog.text and "without the resolution term" in caplog.text
    # the term is left out, not taken as 0: the island keeps a non-zero score
    assert pred and all(p["score"] > 0 for p in pred)
    # PNG records go through the pipelined engine's workers as well
    assert segmenter.predict_dataset(tmp_path / "images.json", progress=False,
                                     workers=1) == pred


@pytest.mark.parametrize("key, default", [("resolution_scale", 1.0),
                                          ("unresolved_ratio", 1.5)])
def test_resolution_settings_read_from_the_model_folder(model_dir, tmp_path, key, default):
    assert getattr(WeakSegmenter.load(model_dir, device="cpu"), key) == default
    for value in (2.0, None):
        folder = _edit_config(model_dir, tmp_path, lambda c, v=value: c.setdefault(
            "inference", {}).update({key: v}))
        assert getattr(WeakSegmenter.load(folder, device="cpu"), key) == value
        assert getattr(WeakSegmenter.load(folder, device="cpu",
                                          grouper=GalaxyGrouper(**{key: 0.5})), key) == 0.5
        shutil.rmtree(folder)
    for bad in (0, -1, "1", True):
        folder = _edit_config(model_dir, tmp_path, lambda c, b=bad: c.setdefault(
            "inference", {}).update({key: b}))
        with pytest.raises(ModelFolderError, match=f"inference.{key} must be a "
                                                   "positive number or null"):
            WeakSegmenter.load(folder, device="cpu")
        shutil.rmtree(folder)


def test_class_threshold_recommended_by_the_model_folder(model_dir, tmp_path):
    def edit(c):
        c["thresholds"]["class_threshold"] = 0.3
        c.setdefault("inference", {})["class_threshold"] = 0.0

    folder = _edit_config(model_dir, tmp_path, edit)
    # the calibrated inference value wins over the one recorded from the training preset
    assert WeakSegmenter.load(folder, device="cpu").class_threshold == 0.0
    # a call-time override wins over both
    assert WeakSegmenter.load(folder, device="cpu", grouper=GalaxyGrouper(
        class_threshold=0.6)).class_threshold == 0.6
    shutil.rmtree(folder)
    folder = _edit_config(model_dir, tmp_path, lambda c: (
        c["thresholds"].update(class_threshold=0.3), c.get("inference", {}).pop(
            "class_threshold", None)))
    assert WeakSegmenter.load(folder, device="cpu").class_threshold == 0.3
    shutil.rmtree(folder)
    for section, bad in [("inference", "0.2"), ("inference", 1.5), ("inference", True),
                         ("inference", None), ("thresholds", -0.1)]:
        def edit_bad(c, section=section, bad=bad):
            c.setdefault(section, {})["class_threshold"] = bad
            if section == "thresholds":
                c.get("inference", {}).pop("class_threshold", None)

        folder = _edit_config(model_dir, tmp_path, edit_bad)
        with pytest.raises(ModelFolderError,
                           match=rf"{section}\.class_threshold must be a number in \[0, 1\]"):
            WeakSegmenter.load(folder, device="cpu")
        shutil.rmtree(folder)


def test_load_checks_the_training_beam(model_dir, tmp_path):
    def edit(c):
        c["radio"]["beam"] = {"major_arcsec": 15.5, "minor_arcsec": 13.1, "pa_deg": 0.0,
                              "area_range_arcsec2": [131.7, 414.6]}

    folder = _edit_config(model_dir, tmp_path, edit)
    assert WeakSegmenter.load(folder, device="cpu").beam["area_range_arcsec2"] == [131.7, 414.6]
    shutil.rmtree(folder)
    for key, bad, match in [
            ("major_arcsec", "13", r"radio\.beam\.major_arcsec must be a positive number"),
            ("minor_arcsec", -1.0, r"radio\.beam\.minor_arcsec must be a positive number"),
            ("area_range_arcsec2", [400.0, 100.0], r"area_range_arcsec2 must be \[smallest"),
            ("area_range_arcsec2", [100.0], r"area_range_arcsec2 must be \[smallest")]:
        def edit_bad(c, key=key, bad=bad):
            c["radio"]["beam"] = {"major_arcsec": 15.5, "minor_arcsec": 13.1, key: bad}

        folder = _edit_config(model_dir, tmp_path, edit_bad)
        with pytest.raises(ModelFolderError, match=match):
            WeakSegmenter.load(folder, device="cpu")
        shutil.rmtree(folder)


# ------------------------------------------------------------------ end to end
def _check_result(result, shape):
    assert isinstance(result, SegmentationResult)
    assert result.shape == shape
    for d in result:
        x0, y0, w, h = d.bbox
        assert x0 >= 0 and y0 >= 0 and x0 + w <= shape[1] and y0 + h <= shape[0]
        assert d.mask_crop.any()
        assert 0 <= d.score <= 1
        assert d.class_name in CLASSES
        assert len(d.class_probabilities) == len(CLASSES)
        m = segmod.HOST_MARGIN  # the host may be an infrared source just off the mask
        assert x0 - m - 0.5 <= d.host_x <= x0 + w + m - 0.5
        assert y0 - m - 0.5 <= d.host_y <= y0 + h + m - 0.5
        assert d.host_sky is not None and d.sky_centroid is not None


def test_predict_small_image(segmenter):
    radio = make_radio()
    result = segmenter(radio, make_ir(radio))
    _check_result(result, (64, 64))
    assert len(result) >= 1
    assert result.meta["n_tiles"] == 1 and not result.resampled
    scores = [d.score for d in result]
    assert scores == sorted(scores, reverse=True)
    # the host follows the infrared source at (32, 32), inside the galaxy
    best = result[0]
    assert best.host_fallback is False
    assert abs(best.host_x - 32) < 2 and abs(best.host_y - 32) < 2
    sky = radio.wcs.pixel_to_world(best.host_x, best.host_y)
    assert sky.separation(best.host_sky) < 1e-6 * u.arcsec
    assert len(result.to_coco(5)) == len(result)


def test_predict_fits_files_and_no_ir(segmenter, tmp_path):
    radio = make_radio((50, 60), sources=((30, 25),))
    path = write_fits(radio, tmp_path / "radio.fits")
    result = segmenter(str(path), progress=False)
    _check_result(result, (50, 60))
    assert all(d.host_fallback for d in result)  # no infrared: CAM peak, flagged


def test_nothing_found_gives_empty_result(model_dir):
    seg = WeakSegmenter.load(model_dir, device="cpu",
                             grouper=GalaxyGrouper(class_threshold=1.0))
    radio = make_radio(sources=())
    result = seg(radio)
    assert isinstance(result, SegmentationResult) and len(result) == 0
    assert result.to_coco(1) == []
    with pytest.warns(AstropyUserWarning, match="found no galaxies"):
        assert len(result.to_table()) == 0


def test_score_threshold(segmenter):
    radio = make_radio()
    result = segmenter(radio, score_threshold=1.0)
    assert len(result) == 0
    with pytest.raises(ValueError, match="score_threshold"):
        segmenter(radio, score_threshold=-0.1)
    with pytest.raises(ValueError, match="batch_size"):
        segmenter(radio, batch_size=0)


def test_large_image_is_tiled(segmenter):
    radio = make_radio((64, 100), sources=((50, 32),))
    result = segmenter(radio, make_ir(radio, ((50, 32),)), batch_size=2)
    assert result.meta["n_tiles"] == 2
    _check_result(result, (64, 100))
    # the galaxy in the overlap is reported once per connected region, never twice
    masks = result.masks()
    assert masks.sum(axis=0).max() <= 1 or len(result) == 1


def test_other_pixel_scale_is_resampled_and_mapped_back(segmenter):
    radio = make_radio((72, 72), pixel_scale=1.8, sources=((36, 36),))
    ir = make_ir(radio, ((36, 36),))
    result = segmenter(radio, ir)
    assert result.resampled and result.meta["resampled_to_arcsec"] == 2.0
    _check_result(result, (72, 72))
    best = result[0]
    # the host is found on the 2"/px grid and mapped back to the 1.8"/px pixels
    assert abs(best.host_x - 36) < 2.5 and abs(best.host_y - 36) < 2.5
    sky = radio.wcs.pixel_to_world(best.host_x, best.host_y)
    assert sky.separation(best.host_sky) < 1e-3 * u.arcsec


def test_infrared_image_elsewhere_on_the_sky_is_dropped_with_one_warning(segmenter, caplog):
    from astropy.nddata import NDData

    radio = make_radio((64, 100), sources=((50, 32),))
    ir = make_ir(radio, ((50, 32),))
    wcs = ir.wcs.deepcopy()
    wcs.wcs.crval[1] += 5.0  # 5 degrees north of the radio image
    far = NDData(ir.data, wcs=wcs, unit=ir.unit)
    with caplog.at_level("WARNING", logger="galcam"):
        result = segmenter(radio, far, batch_size=2)
    lines = [r for r in caplog.records if "infrared" in r.getMessage()]
    assert len(lines) == 1 and "does not overlap the radio image" in lines[0].getMessage()
    assert result.meta["n_tiles"] == 2 and len(result)
    assert all(d.host_fallback for d in result)
    # the same as no infrared image at all
    plain = segmenter(radio, batch_size=2)
    assert [(d.class_name, d.score, d.host_x) for d in result] == [
        (d.class_name, d.score, d.host_x) for d in plain]
    # an image that overlaps is used
    caplog.clear()
    with caplog.at_level("WARNING", logger="galcam"):
        segmenter(radio, ir, batch_size=2)
    assert not [r for r in caplog.records if "infrared" in r.getMessage()]


def test_smaller_beam_warns(segmenter):
    # an image cannot be sharpened: a much smaller beam is only warned about (one of fewer
    # than 2 pixels, 4" x 3" at 2"/px, is refused as undersampled: test_planning)
    radio = make_radio(beam=(5.0, 4.0))
    with pytest.warns(AstropyUserWarning, match="training beam"):
        result = segmenter(radio)
    assert result.meta["beam_area_ratio"] == pytest.approx(20 / 80)
    assert not result.resampled and "beam_matched" not in result.meta


def test_larger_beam_is_resampled_towards_the_training_pixels_per_beam(segmenter, model_dir):
    radio = make_radio((72, 72), beam=(30.0, 25.0), sources=((36, 36),))
    ir = make_ir(radio, ((36, 36),))
    assert segmenter.beam_matching == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyUserWarning)
        result = segmenter(radio, ir)
    # 9.4 times the training beam's area: pixels 9.4 ** 0.25 times the training 2"
    ratio = 750 / 80
    assert result.meta["beam_area_ratio"] == pytest.approx(ratio)
    assert result.meta["beam_matched"] is True and result.resampled
    assert result.meta["resampled_to_arcsec"] == pytest.approx(2.0 * ratio ** 0.25)
    _check_result(result, (72, 72))  # mapped back to the image's own 2" pixels
    full = WeakSegmenter.load(model_dir, device="cpu", beam_matching=1,
                              grouper=GalaxyGrouper(class_threshold=0.0))
    assert full(radio).meta["resampled_to_arcsec"] == pytest.approx(2.0 * ratio ** 0.5)
    off = WeakSegmenter.load(model_dir, device="cpu", beam_matching=0,
                             grouper=GalaxyGrouper(class_threshold=0.0))
    with pytest.warns(AstropyUserWarning, match="training beam"):
        result = off(radio)
    assert not result.resampled and "beam_matched" not in result.meta
    for bad in (1.5, -1, True, "0.5"):
        with pytest.raises(ValueError, match="beam_matching: expected a number in"):
            WeakSegmenter.load(model_dir, device="cpu", beam_matching=bad)


def test_encoded_cutout_input(segmenter):
    from galcam.preprocessing import CutoutEncoder

    radio = make_radio()
    cutout = CutoutEncoder()(radio, make_ir(radio))
    result = segmenter(cutout)
    _check_result(result, (64, 64))
    wrong = CutoutEncoder(channels=("radio", "radio", "radio"))(radio)
    with pytest.raises(ValueError, match="channels"):
        segmenter(wrong)
    with pytest.raises(ValueError, match="ir: not used with an EncodedCutout"):
        segmenter(cutout, radio)


def test_noise_map_must_match_image(segmenter):
    from galcam.preprocessing import NoiseEstimator

    noise = NoiseEstimator(box_size=16)(make_radio((48, 48)))
    with pytest.raises(ValueError, match="do not match the radio image"):
        segmenter(make_radio(), noise=noise)
    # a matching noise map is used (cut out per tile)
    radio = make_radio()
    result = segmenter(radio, noise=NoiseEstimator(box_size=16)(radio))
    _check_result(result, (64, 64))


# ------------------------------------------------------------------ data sets
def _dataset(tmp_path, poison=True):
    entries = []
    for k, (shape, src) in enumerate([((64, 64), (32, 32)), ((48, 56), (28, 24))]):
        radio = make_radio(shape, sources=(src,), seed=10 + k)
        write_fits(radio, tmp_path / f"r{k}.fits")
        write_fits(make_ir(radio, (src,)), tmp_path / f"ir{k}.fits")
        entries.append({"id": 40 + k, "file_name": f"r{k}.fits", "ir_file_name": f"ir{k}.fits",
                        "width": shape[1], "height": shape[0]})
    coco = {"images": entries,
            "categories": [{"id": 11, "name": "R"}, {"id": 12, "name": "FR-II"},
                           {"id": 13, "name": "FR-I"}, {"id": 14, "name": "FR-X"}]}
    if poison:  # annotations that would break anything that reads them
        coco["annotations"] = [{"image_id": 999, "category_id": "poison", "segmentation": 7}]
    path = tmp_path / "images.json"
    path.write_text(json.dumps(coco))
    return path


def test_predict_dataset_never_reads_annotations(segmenter, tmp_path, monkeypatch):
    from pycocotools.coco import COCO

    from galcam.datasets import CocoDataset

    path = _dataset(tmp_path)

    def forbidden(*args, **kwargs):
        raise AssertionError("annotations were read")

    monkeypatch.setattr(CocoDataset, "annotations", forbidden)
    monkeypatch.setattr(CocoDataset, "_check_annotations", forbidden)
    out = segmenter.predict_dataset(path, progress=False, batch_size=2)
    assert {o["image_id"] for o in out} <= {40, 41} and len(out) >= 2
    assert {o["category_id"] for o in out} <= {11, 12, 13, 14}
    gt = COCO()
    coco = json.loads(path.read_text())
    coco["annotations"] = []
    gt.dataset = coco
    gt.createIndex()
    res = gt.loadRes(copy.deepcopy(out))  # loadRes adds keys to the dicts
    for ann in res.loadAnns(res.getAnnIds()):
        img = gt.imgs[ann["image_id"]]
        assert res.annToMask(ann).shape == (img["height"], img["width"])
    # the same through a CocoDataset read without annotations
    ds = CocoDataset(path, load_annotations=False)
    assert segmenter.predict_dataset(ds, progress=False) == out


def test_predict_dataset_missing_category_warns(segmenter, tmp_path):
    path = _dataset(tmp_path, poison=False)
    coco = json.loads(path.read_text())
    coco["categories"] = [c for c in coco["categories"] if c["name"] != "FR-X"]
    path.write_text(json.dumps(coco))
    with pytest.warns(AstropyUserWarning, match="no category"):
        out = segmenter.predict_dataset(path, progress=False)
    assert 14 not in {o["category_id"] for o in out}
    with pytest.raises(FileNotFoundError):
        segmenter.predict_dataset(tmp_path / "none.json")
    # a data set with classes of its own (FIRST's Compact, Bent): the shared names are
    # matched, the others warned about, nothing refused
    coco["categories"] = [{"id": 1, "name": "FRI"}, {"id": 2, "name": "Compact"}]
    path.write_text(json.dumps(coco))
    with pytest.warns(AstropyUserWarning, match="no category"):
        out = segmenter.predict_dataset(path, progress=False)
    assert {o["category_id"] for o in out} <= {1}


def test_train_delegates_to_training(monkeypatch, tmp_path):
    import galcam.training as training

    calls = {}

    def fake_train(dataset, *, preset, output_dir, device, **kwargs):
        calls.update(dataset=dataset, preset=preset, device=device, **kwargs)
        build_model_folder(output_dir)

        class Result:
            path = output_dir
        return Result()

    monkeypatch.setattr(training, "train_weak_model", fake_train)
    with pytest.warns(AstropyDeprecationWarning, match="train_weak_model"):
        seg = WeakSegmenter.train("DATA", preset="paper", output_dir=tmp_path / "m",
                                  device="cpu", seed=3)
    assert isinstance(seg, WeakSegmenter)
    assert calls == {"dataset": "DATA", "preset": "paper", "device": "cpu", "seed": 3}


def test_no_warnings_for_matching_image(segmenter):
    radio = make_radio()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        segmenter(radio, make_ir(radio))


def test_grouped_masks_are_whole_disjoint_islands(segmenter):
    """mask_mode='grouped': every radio island belongs to exactly one galaxy."""
    from galcam.inference.grouping import island_labels

    radio = make_radio()
    cut = segmenter.encoder(radio, make_ir(radio))
    result = segmenter(cut)
    radio01, _ = cut.paper_channels()
    labels, n = island_labels(radio01)
    assert len(result) >= 1
    owner = np.zeros(n + 1, int)
    for d in result:
        full = np.zeros(result.shape, bool)
        x0, y0, w, h = d.bbox
        full[y0:y0 + h, x0:x0 + w] = d.mask_crop
        ids = np.unique(labels[full])
        assert 0 not in ids  # only island pixels
        np.testing.assert_array_equal(full, np.isin(labels, ids))  # whole islands
        owner[ids] += 1
    assert np.all(owner[1:] == 1)  # every island in exactly one galaxy
    assert all(0 <= d.score <= 1 for d in result)


def test_host_search_radius_in_sky_units(segmenter):
    """HostFinder(max_distance) as an angle is converted with the result's pixel scale."""
    from galcam.inference import HostFinder

    radio = make_radio()  # 2"/px
    result = segmenter(radio, make_ir(radio))
    assert len(result)
    sky = HostFinder(max_distance=6 * u.arcsec)(result)
    pix = HostFinder(max_distance=3 * u.pix)(result)
    np.testing.assert_array_equal(sky.x, pix.x)
    np.testing.assert_array_equal(sky.fallback, pix.fallback)
    with pytest.warns(AstropyDeprecationWarning, match="plain number is taken as pixels"):
        old = HostFinder(max_distance=3.0)(result)
    np.testing.assert_array_equal(old.x, pix.x)
    with pytest.raises(ValueError, match="max_distance"):
        HostFinder(max_distance=3 * u.Jy)


def test_detections_carry_their_own_class_probabilities(segmenter):
    """Each galaxy's probabilities sum to one and their largest is its class."""
    radio = make_radio(shape=(64, 96), sources=((20, 32), (70, 30)))
    result = segmenter(radio, make_ir(radio), score_threshold=0)
    assert len(result)
    for d in result:
        p = np.asarray(d.class_probabilities)
        assert p.sum() == pytest.approx(1.0)
        assert result.classes[int(np.argmax(p))] == d.class_name


def test_precision_option_reaches_the_networks(model_dir):
    assert segmod.load_options({"precision": "bfloat16"}) == {"precision": "bfloat16"}
    seg = WeakSegmenter.load(model_dir, device="cpu", **segmod.load_options(
        {"precision": "bfloat16"}))
    assert seg.networks.precision == "bfloat16"
    assert WeakSegmenter.load(model_dir, device="cpu").networks.precision == "float32"
    with pytest.raises(ValueError, match="precision"):
        WeakSegmenter.load(model_dir, device="cpu", precision="int8")
    with pytest.raises(TypeError, match="unknown option 'precison'.*precision"):
        segmod.load_options({"precison": "bfloat16"})


def test_a_machine_with_bfloat16_units_is_told_about_the_faster_precision(model_dir, caplog,
                                                                          monkeypatch):
    import logging

    monkeypatch.setattr(segmod, "has_bfloat16_units", lambda device: True)
    with caplog.at_level(logging.INFO, logger="galcam.inference.segmenter"):
        WeakSegmenter.load(model_dir, device="cpu")
    assert "this CPU has bfloat16 units: precision='bfloat16'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="galcam.inference.segmenter"):
        WeakSegmenter.load(model_dir, device="cpu", precision="bfloat16")
    assert "bfloat16 units" not in caplog.text
    monkeypatch.setattr(segmod, "has_bfloat16_units", lambda device: False)
    with caplog.at_level(logging.INFO, logger="galcam.inference.segmenter"):
        WeakSegmenter.load(model_dir, device="cpu")
    assert "bfloat16 units" not in caplog.text


def test_bfloat16_units_are_detected_without_failing():
    import torch

    from galcam.models.networks import has_bfloat16_units

    assert isinstance(has_bfloat16_units("cpu"), bool)
    if not torch.cuda.is_available():
        assert has_bfloat16_units("cuda") is False

"""Tests of the EMU-like simulator: determinism, truth, noise, beam, realism, mosaic, CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.table import QTable

from galcam.cli.main import main
from galcam.datasets._components import build_galaxy, draw_profile_style, sersic_mixture
from galcam.datasets.simulate import (
    CATEGORIES,
    Realism,
    SimulatedCutout,
    simulate_cutout,
    simulate_dataset,
    simulate_mosaic,
)
from galcam.io import read_image
from galcam.morphology import CLASS_NAMES, measure_ab

N_IMAGES = 5
SEED = 123


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "serial"
    record = simulate_dataset(out, N_IMAGES, seed=SEED, progress=False)
    return out, record


def test_layout(dataset):
    out, record = dataset
    names = {p.name for p in out.iterdir()}
    assert {
        "annotations.json",
        "images.json",
        "truth.ecsv",
        "overview.png",
        "simulation.json",
        "radio",
        "ir",
    } <= names
    assert len(list((out / "radio").glob("sim_*.fits"))) == N_IMAGES
    assert len(list((out / "ir").glob("sim_*_w1.fits"))) == N_IMAGES
    sim = json.loads((out / "simulation.json").read_text())
    assert sim["parameters"]["seed"] == SEED and sim["parameters"]["n"] == N_IMAGES
    assert sim["galcam_version"]
    assert sim == json.loads(json.dumps(record))
    assert not any(p.name.endswith(".tmp") for p in out.rglob("*"))  # atomic writes left nothing


def test_worker_independent(dataset, tmp_path):
    out1, _ = dataset
    out2 = tmp_path / "parallel"
    simulate_dataset(out2, N_IMAGES, seed=SEED, n_workers=2, progress=False, overview=False)
    for sub in ("radio", "ir"):
        for f in sorted((out1 / sub).glob("*.fits")):
            assert f.read_bytes() == (out2 / sub / f.name).read_bytes(), f.name
    a1 = json.loads((out1 / "annotations.json").read_text())
    a2 = json.loads((out2 / "annotations.json").read_text())
    assert a1["images"] == a2["images"] and a1["annotations"] == a2["annotations"]


def test_cutout_determinism_and_index():
    c1 = simulate_cutout(11, realism=True)
    c2 = simulate_cutout(11, realism=True)
    assert np.array_equal(c1.radio.data, c2.radio.data, equal_nan=True)
    assert np.array_equal(c1.ir.data, c2.ir.data)
    assert [g.label for g in c1.galaxies] == [g.label for g in c2.galaxies]
    g1 = simulate_cutout(np.random.default_rng(5))
    g2 = simulate_cutout(np.random.default_rng(5))
    assert np.array_equal(g1.radio.data, g2.radio.data, equal_nan=True)
    t = c1.to_table(7)
    assert len(t) == len(c1.galaxies) and set(t["image_id"]) == {7}
    assert t["center_x"].unit == u.pix
    c3 = simulate_cutout(12)
    assert not np.array_equal(c1.radio.data, c3.radio.data, equal_nan=True)
    with pytest.raises(TypeError, match="seed must be"):
        simulate_cutout("abc")
    with pytest.raises(ValueError, match="give a seed"):
        simulate_cutout()


def test_index_reproduces_dataset_image(dataset):
    out, _ = dataset
    cut = simulate_cutout(SEED, index=2)
    img = read_image(out / "radio" / "sim_000002.fits")
    np.testing.assert_array_equal(img.data, cut.radio.data.astype(np.float32))


def test_coco_contract(dataset):
    from pycocotools import mask as mask_util
    from pycocotools.coco import COCO

    out, _ = dataset
    coco = COCO(str(out / "annotations.json"))
    assert [c["name"] for c in coco.dataset["categories"]] == list(CLASS_NAMES)
    assert {c["name"] for c in CATEGORIES} == set(CLASS_NAMES)
    assert len(coco.imgs) == N_IMAGES
    ids = [a["id"] for a in coco.dataset["annotations"]]
    assert len(ids) == len(set(ids)) >= N_IMAGES
    for img in coco.dataset["images"]:
        assert img["file_name"].startswith("radio/") and (out / img["file_name"]).exists()
        assert (out / img["ir_file_name"]).exists()
        assert (img["width"], img["height"]) == (210, 210)
        assert img["pixel_scale_arcsec"] == 2.0 and img["ir_pixel_scale_arcsec"] == 1.375
        masks = []
        for ann in coco.imgToAnns[img["id"]]:
            m = coco.annToMask(ann)
            assert m.sum() == ann["area"] > 0
            assert isinstance(ann["segmentation"]["counts"], str)
            x, y, v = ann["keypoints"]
            assert 0 <= x <= img["width"] - 1 and 0 <= y <= img["height"] - 1 and v == 2
            assert ann["num_keypoints"] == 1 and ann["iscrowd"] == 0
            bx, by, bw, bh = ann["bbox"]
            ys, xs = np.nonzero(m)
            assert (bx, by, bw, bh) == (
                xs.min(),
                ys.min(),
                xs.max() - xs.min() + 1,
                ys.max() - ys.min() + 1,
            )
            rle = dict(ann["segmentation"], counts=ann["segmentation"]["counts"].encode())
            assert mask_util.area(rle) == ann["area"]
            masks.append(m.astype(bool))
        if len(masks) > 1:  # one galaxy per pixel
            assert np.sum(masks, axis=0).max() == 1
    images_only = json.loads((out / "images.json").read_text())
    assert "annotations" not in images_only
    assert images_only["images"] == coco.dataset["images"]


def test_coco_dataset_reader(dataset):
    from galcam.datasets import CocoDataset

    out, _ = dataset
    ds = CocoDataset(out / "annotations.json")
    assert len(ds) == N_IMAGES


def test_truth_table(dataset):
    out, _ = dataset
    t = QTable.read(out / "truth.ecsv")
    coco = json.loads((out / "annotations.json").read_text())
    assert len(t) == len(coco["annotations"])
    assert set(t["class"]) <= set(CLASS_NAMES)
    assert t["las"].unit == u.arcsec and t["peak"].unit == u.mJy / u.beam
    assert t["flux"].unit == u.mJy
    np.testing.assert_allclose(t["a_over_b"], (t["a"] / t["b"]).value, rtol=1e-6)
    ann = {a["id"]: a for a in coco["annotations"]}
    for row in t:
        a = ann[int(row["galaxy_id"])]
        assert a["keypoints"][0] == pytest.approx(row["host_x"].value, abs=1e-3)
        assert CATEGORIES[a["category_id"] - 1]["name"] == row["class"]
        # the host sits near the radio core (at most ~5" off)
        assert row["host"].separation(row["center"]) < row["las"] + 10 * u.arcsec
    # sky positions agree with each image's WCS
    row = t[0]
    img = read_image(out / coco["images"][int(row["image_id"]) - 1]["file_name"])
    sky = img.wcs.pixel_to_world(row["host_x"].value, row["host_y"].value)
    assert sky.separation(row["host"]) < 0.01 * u.arcsec
    assert {f"flag_{n}" for n in ("bent_tail", "detached_lobes", "ir_host_offset")} <= set(
        t.colnames
    )


def test_radio_header_and_beam(dataset, tmp_path):
    out, _ = dataset
    path = out / "radio" / "sim_000000.fits"
    hdr = fits.getheader(path)
    assert hdr["NAXIS"] == 4 and hdr["NAXIS3"] == 1 and hdr["NAXIS4"] == 1
    assert hdr["CTYPE3"] == "FREQ" and hdr["CRVAL3"] == pytest.approx(944e6)
    assert hdr["RESTFRQ"] == pytest.approx(944e6)
    assert hdr["BUNIT"] == "Jy/beam"
    assert hdr["BMAJ"] * 3600 == pytest.approx(13.0)
    assert hdr["BMIN"] * 3600 == pytest.approx(11.0)
    assert -90 <= hdr["BPA"] <= 90
    img = read_image(path)
    assert img.unit == u.Jy / u.beam
    assert img.meta["beam"].major.to_value(u.arcsec) == pytest.approx(13.0)
    ra, dec = hdr["CRVAL1"], hdr["CRVAL2"]
    assert 301 <= ra <= 336 and -63 <= dec <= -48  # EMU-PS footprint
    ir = read_image(out / "ir" / "sim_000000_w1.fits")
    assert ir.data.shape == (306, 306)
    assert fits.getheader(out / "ir" / "sim_000000_w1.fits")["BUNIT"] == "DN"
    assert ir.meta["beam"] is None
    # 2-D radio files on request
    out2 = tmp_path / "two"
    simulate_dataset(out2, 1, seed=1, radio_naxis=2, overview=False, progress=False)
    assert fits.getheader(out2 / "radio" / "sim_000000.fits")["NAXIS"] == 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noise_rms(seed):
    cut = simulate_cutout(seed, realism=False)
    assert 25e-6 <= cut.rms <= 35e-6
    data = cut.radio.data
    free = np.abs(cut.model) < 0.01 * cut.rms  # source-free pixels
    assert free.mean() > 0.2
    _, _, std = sigma_clipped_stats(data[free], sigma=4)
    assert 24e-6 <= std <= 36e-6
    assert std == pytest.approx(cut.rms, rel=0.1)
    assert fits.Header  # noqa: B018 - keep the import used in all parametrizations


def test_noise_is_beam_correlated():
    cut = simulate_cutout(4, realism=False)
    d = np.where(np.abs(cut.model) < 0.01 * cut.rms, cut.radio.data, np.nan)
    # neighbouring pixels of beam-convolved noise are strongly correlated (beam ~ 6 px)
    a, b = d[:, :-1].ravel(), d[:, 1:].ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    assert np.corrcoef(a[ok], b[ok])[0, 1] > 0.8


def test_classes_and_truth_consistency():
    labels = []
    for seed in range(16):
        cut = simulate_cutout(seed, class_balance="balanced")
        assert isinstance(cut, SimulatedCutout)
        for g in cut.galaxies:
            labels.append(g.label)
            # the class of record is the a/b rule applied to the noiseless model
            m = measure_ab(g.model, cut.rms)
            assert m.label == g.label
            assert g.morphology.a == pytest.approx(m.a)
            # masks: inside the 5-sigma box (+1 px), above 3 sigma in the image
            full = g.full_mask(cut.shape)
            assert full.any()
            assert np.all(g.morphology.box_mask(cut.shape, pad=1.0)[full])
            assert np.all(cut.radio.data[full] > 3 * cut.rms)
            assert g.snr >= 5
            hx, hy = g.host_xy
            assert 0 <= hx <= cut.shape[1] - 1 and 0 <= hy <= cut.shape[0] - 1
    assert len(set(labels)) >= 3, labels


@pytest.mark.parametrize(
    "effect, options",
    [
        ("artefacts", {"snr_range": (800.0, 3000.0)}),
        ("crowding", {}),
        ("compact_pairs", {}),
        ("overlapping", {}),
        ("bent_tails", {"class_balance": {"FR-I": 1}}),
        ("one_sided_jets", {"class_balance": {"FR-I": 1}}),
        ("detached_lobes", {"class_balance": {"FR-II": 1}}),
        ("faint_plumes", {}),
        ("ir_confusion", {}),
        ("blanked_edges", {}),
    ],
)
def test_realism_switches(effect, options):
    clean = simulate_cutout(5, realism=False, **options)
    on = simulate_cutout(5, realism=Realism.off().replace(**{effect: 1.0}), **options)
    changed = not np.array_equal(
        clean.radio.data, on.radio.data, equal_nan=True
    ) or not np.array_equal(clean.ir.data, on.ir.data)
    assert changed, effect
    flags = {**on.flags, **{k: v for g in on.galaxies for k, v in g.flags.items() if v}}
    name = {
        "artefacts": "artefacts",
        "crowding": "crowded",
        "compact_pairs": "compact_pairs",
        "overlapping": "overlapping",
        "bent_tails": "bent_tail",
        "one_sided_jets": "one_sided_jet",
        "detached_lobes": "detached_lobes",
        "faint_plumes": "faint_plume",
        "blanked_edges": "blanked_edges",
    }.get(effect)
    if name is not None:
        assert flags.get(name), (effect, flags)
    else:
        assert any(flags.get(k) for k in ("ir_bright_neighbour", "ir_faint_host", "ir_host_offset"))
    assert not any(clean.flags.values())


def test_realism_validation():
    assert Realism(artefacts=False).artefacts == 0.0
    assert Realism(artefacts=True).artefacts == Realism().artefacts
    with pytest.raises(ValueError, match="Realism.crowding must be in"):
        Realism(crowding=1.5)
    with pytest.raises(ValueError, match="unknown effect"):
        Realism.coerce({"sidelobes": True})
    assert Realism.coerce(False) == Realism.off()
    with pytest.raises(TypeError, match="realism must be"):
        Realism.coerce("yes")


def test_bad_arguments(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("user file")
    with pytest.raises(FileExistsError, match="not empty"):
        simulate_dataset(tmp_path / "x", 1, seed=1)
    assert (tmp_path / "x" / "keep.txt").read_text() == "user file"
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        simulate_dataset(tmp_path / "y", 0, seed=1)
    with pytest.raises(ValueError, match="seed: expected a non-negative integer"):
        simulate_dataset(tmp_path / "y", 1, seed=-1)
    with pytest.raises(ValueError, match="radio_naxis must be 2 or 4"):
        simulate_dataset(tmp_path / "y", 1, seed=1, radio_naxis=3)
    with pytest.raises(ValueError, match="class_balance"):
        simulate_cutout(1, class_balance="weird")
    with pytest.raises(ValueError, match="unknown class"):
        simulate_cutout(1, class_balance={"FR-III": 1})
    with pytest.raises(ValueError, match="beam"):
        simulate_cutout(1, beam=(10.0, 12.0, 0.0))
    for bad in [(0.0, 1.0), (1.5, 1.2), (1.0, np.inf), "wide", (1.0,)]:
        with pytest.raises(ValueError, match="beam_scale"):
            simulate_cutout(1, beam_scale=bad)
    with pytest.raises(ValueError, match="beam_scale"):
        simulate_dataset(tmp_path / "y", 1, seed=1, beam_scale=(2.0, 1.0))
    assert not (tmp_path / "y").exists()


def test_beam_scale():
    """Each cutout's beam is the given one times a factor drawn in the range."""
    base = simulate_cutout(SEED, index=2, realism=False)
    assert base.radio.meta["beam"].major.to_value(u.arcsec) == pytest.approx(13.0)
    # a fixed factor: both axes scaled, the noise level and the position angle kept
    wide = simulate_cutout(SEED, index=2, realism=False, beam_scale=(1.5, 1.5))
    beam = wide.radio.meta["beam"]
    assert beam.major.to_value(u.arcsec) == pytest.approx(19.5)
    assert beam.minor.to_value(u.arcsec) == pytest.approx(16.5)
    assert beam.pa == base.radio.meta["beam"].pa
    assert wide.rms == base.rms
    # the noise is correlated over the larger beam: a point source's peak stays at its
    # flux (Jy/beam) while extended emission gets brighter per beam
    d = np.where(np.abs(wide.model) < 0.01 * wide.rms, wide.radio.data, np.nan)
    a, b = d[:, :-3].ravel(), d[:, 3:].ravel()
    d0 = np.where(np.abs(base.model) < 0.01 * base.rms, base.radio.data, np.nan)
    a0, b0 = d0[:, :-3].ravel(), d0[:, 3:].ravel()
    ok, ok0 = np.isfinite(a) & np.isfinite(b), np.isfinite(a0) & np.isfinite(b0)
    assert np.corrcoef(a[ok], b[ok])[0, 1] > np.corrcoef(a0[ok0], b0[ok0])[0, 1] + 0.05
    t = wide.to_table(1)
    assert np.all(t["beam_major"] == 19.5 * u.arcsec) and np.all(t["beam_minor"] > 16 * u.arcsec)
    # a range: factors inside it, different from image to image, reproducible
    majors = [simulate_cutout(SEED, index=i, realism=False, beam_scale=(0.9, 1.6))
              .radio.meta["beam"].major.to_value(u.arcsec) for i in range(6)]
    assert all(0.9 * 13.0 <= m <= 1.6 * 13.0 for m in majors)
    assert len(set(np.round(majors, 6))) == 6
    again = simulate_cutout(SEED, index=3, realism=False, beam_scale=(0.9, 1.6))
    assert again.radio.meta["beam"].major.to_value(u.arcsec) == majors[3]


def test_mosaic(tmp_path):
    out = tmp_path / "mosaic"
    record = simulate_mosaic(out, size=600, n_galaxies=5, seed=3, overview=True)
    hdr = fits.getheader(out / "radio" / "mosaic.fits")
    assert (hdr["NAXIS1"], hdr["NAXIS2"], hdr["NAXIS3"], hdr["NAXIS4"]) == (600, 600, 1, 1)
    coco = json.loads((out / "annotations.json").read_text())
    assert len(coco["images"]) == 1 and coco["images"][0]["width"] == 600
    assert 3 <= len(coco["annotations"]) <= 5 + 1
    assert record["statistics"]["n_galaxies"] == len(coco["annotations"])
    t = QTable.read(out / "truth.ecsv")
    assert len(t) == len(coco["annotations"])
    ir = read_image(out / "ir" / "mosaic_w1.fits")
    assert ir.data.shape == (873, 873)
    assert (out / "overview.png").stat().st_size > 0
    with pytest.raises(FileExistsError):
        simulate_mosaic(out, size=600, n_galaxies=5, seed=3)


def test_mosaic_too_large_for_memory_is_refused_up_front(tmp_path, monkeypatch, capsys):
    import galcam.datasets.simulate as sim

    monkeypatch.setattr(sim, "physical_memory", lambda: 2 * 10**9)
    out = tmp_path / "big"
    with pytest.raises(MemoryError, match=r"a 4000 x 4000 mosaic needs about 3\.4 GB .* "
                       r"at most 2685 x 2685 pixels here"):
        simulate_mosaic(out, size=4000, n_galaxies=5, seed=3)
    assert not out.exists()  # refused before anything was written
    assert main(["simulate", "-o", str(out), "--mosaic", "4000", "--seed", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("galcam simulate: error: size: a 4000 x 4000")
    # an unknown machine memory refuses nothing (the small mosaic of test_mosaic runs)
    monkeypatch.setattr(sim, "physical_memory", lambda: None)
    sim._check_mosaic_memory(4000)


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["simulate", "-o", str(out), "--n", "2", "--seed", "9", "--no-progress", "--no-overview"]
    assert main(args) == 0
    assert (out / "annotations.json").exists() and (out / "truth.ecsv").exists()
    assert len(list(Path(out, "radio").glob("*.fits"))) == 2
    first = (out / "radio" / "sim_000000.fits").read_bytes()
    capsys.readouterr()
    assert main(args) == 2  # refuses a non-empty folder
    assert "not empty" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--disable", "artefacts"]) == 0
    assert main(args + ["--overwrite", "--disable", "sidelobes"]) == 2
    assert "unknown effect" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert (out / "radio" / "sim_000000.fits").read_bytes() == first
    # the beam, fixed or varied from cutout to cutout
    assert main(args + ["--overwrite", "--beam", "18", "16"]) == 0
    assert fits.getheader(out / "radio" / "sim_000000.fits")["BMAJ"] * 3600 == pytest.approx(18)
    assert main(args + ["--overwrite", "--beam-scale", "1.2", "1.4"]) == 0
    majors = [fits.getheader(out / "radio" / f"sim_00000{i}.fits")["BMAJ"] * 3600
              for i in range(2)]
    assert all(13 * 1.2 <= m <= 13 * 1.4 for m in majors)
    record = json.loads((out / "simulation.json").read_text())
    assert record["parameters"]["beam_scale"] == [1.2, 1.4]
    capsys.readouterr()
    assert main(args + ["--overwrite", "--beam", "10", "12"]) == 2
    assert "--beam: expected 0 < MINOR <= MAJOR" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--beam-scale", "1.4", "1.2"]) == 2
    assert "--beam-scale: expected 0 < LOW <= HIGH" in capsys.readouterr().err
    assert main(["simulate", "-o", str(tmp_path / "m"), "--seed", "1", "--mosaic", "200",
                 "--beam-scale", "1", "2"]) == 2
    assert "a mosaic has one beam" in capsys.readouterr().err


@pytest.mark.parametrize("n", [0.5, 1.0, 1.5, 4.0])
def test_sersic_mixture_half_light_radius(n):
    """The Gaussian mixture of a Sersic profile holds half its flux inside R_e = 1."""
    sig, frac = sersic_mixture(n)
    assert frac.sum() == pytest.approx(1.0) and np.all(frac > 0)

    def enclosed(r):
        return float(np.sum(frac * (1 - np.exp(-0.5 * (r / sig) ** 2))))

    # a truncated profile (fitted to 4 R_e) holds a little more inside R_e for large n
    assert enclosed(1.0) == pytest.approx(0.5, abs=0.02 if n <= 1.5 else 0.08)
    assert enclosed(0.5) < enclosed(1.0) < enclosed(2.0)
    if n == 0.5:  # a Gaussian of sigma = R_e / sqrt(2 ln 2), to 4% of the peak
        r = np.linspace(0, 3, 61)
        mix = np.sum(frac / sig**2 * np.exp(-0.5 * (r[:, None] / sig) ** 2), axis=1)
        s0 = 1 / np.sqrt(2 * np.log(2))
        exact = np.exp(-0.5 * (r / s0) ** 2) / s0**2
        assert np.max(np.abs(mix / mix[0] - exact / exact[0])) < 0.04
    with pytest.raises(ValueError, match="n must be in"):
        sersic_mixture(0.1)


def test_varied_profiles_use_the_galaxy_draws_unchanged():
    """A galaxy's shape draws are the same with and without the 'varied' profile choices."""
    style = draw_profile_style(np.random.default_rng(4))
    style.update(
        jet_alpha=1.5, jet_opening=0.1, lobe_smooth=0.8, hotspot2=(0.3, 2.0, 1.0),
        wings=(0.8, 0.3, 0.2),
    )
    for klass in CLASS_NAMES:
        a, b = np.random.default_rng(11), np.random.default_rng(11)
        plain = build_galaxy(a, klass, 60.0)
        varied = build_galaxy(b, klass, 60.0, style=style)
        assert a.bit_generator.state == b.bit_generator.state
        names = [k for k, _ in varied]
        assert [k for k, _ in plain] == [k for k in names if k != "wing"]
        assert ("wing" in names) == (klass in ("FR-II", "FR-X"))
        # the jets, lobes and hotspots are built differently, fluxes kept
        for (k, g0), (_, g1) in zip(plain, varied):
            assert g1.total_flux == pytest.approx(g0.total_flux), k
        if klass == "FR-I":  # power-law jets carry more flux far from the core
            j0, j1 = plain[1][1], varied[1][1]
            far0 = j0.flux[np.hypot(j0.x, j0.y) > 20].sum() / j0.total_flux
            far1 = j1.flux[np.hypot(j1.x, j1.y) > 20].sum() / j1.total_flux
            assert far1 > far0


def test_profiles_option(tmp_path):
    """'varied' keeps the layout, noise and classes' frequencies but changes the sources."""
    base = simulate_cutout(SEED, index=1)
    again = simulate_cutout(SEED, index=1, profiles="gaussian")
    assert np.array_equal(base.radio.data, again.radio.data, equal_nan=True)
    varied = simulate_cutout(SEED, index=1, profiles="varied")
    assert varied.rms == base.rms
    assert not np.array_equal(varied.radio.data, base.radio.data, equal_nan=True)
    assert [g.intended_label for g in varied.galaxies] == [
        g.intended_label for g in base.galaxies
    ]
    for g in varied.galaxies:  # truth made the same way: the model above 3 sigma
        assert g.mask.sum() > 0 and g.label in CLASS_NAMES
    with pytest.raises(ValueError, match="profiles must be one of 'gaussian', 'varied'"):
        simulate_cutout(1, profiles="sersic")
    with pytest.raises(ValueError, match="profiles"):
        simulate_mosaic(tmp_path / "m", size=100, seed=1, profiles=None)
    out = tmp_path / "v"
    args = ["simulate", "-o", str(out), "--n", "2", "--seed", "9", "--no-progress",
            "--no-overview", "--profiles", "varied"]
    assert main(args) == 0
    record = json.loads((out / "simulation.json").read_text())
    assert record["parameters"]["profiles"] == "varied"
    with pytest.raises(SystemExit):  # argparse refuses other choices
        main(args[:-1] + ["exponential"])

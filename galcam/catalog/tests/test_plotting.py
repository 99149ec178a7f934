"""Overview figure and GalaxyCatalog.write."""

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import NDData
from astropy.table import QTable
from matplotlib.figure import Figure
from regions import Regions

from galcam.catalog import GalaxyCatalog

from ._synth import SHAPE, gaussian, make_wcs

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ir_image():
    """A WISE-like image on its own grid (2.75"/px, 120 x 120), with point sources."""
    shape = (120, 120)
    rng = np.random.default_rng(3)
    data = 100 + rng.normal(0, 1, shape)
    for x, y in ((30, 30), (60, 70), (90, 40)):
        data += gaussian(shape, x, y, 2.5, 2.5, 50.0)
    return NDData(data.astype(np.float32), wcs=make_wcs(shape, pixel=2.75),
                  unit=u.dimensionless_unscaled, meta={"beam": None, "filename": "w1.fits"})


def test_plot_with_infrared_panel(synth, ir_image, tmp_path):
    radio, result, _ = synth
    cat = GalaxyCatalog(result, radio=radio, ir=ir_image)
    fig = cat.plot()
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if hasattr(ax, "coords")]
    assert len(panels) == 2 and len(fig.axes) == 4  # two panels, two colour bars
    radio_ax, ir_ax = panels
    assert len(radio_ax.images) == 1 and len(ir_ax.images) == 1
    bars = [ax.get_ylabel() for ax in fig.axes if not hasattr(ax, "coords")]
    assert str(radio.unit) in bars  # the radio colour bar says its unit
    assert radio_ax.get_title().startswith("radio: 3 galaxies")
    # 5 outlines (1 + 3 + 1 parts) and the beam, 2 host markers, 3 labels on the radio panel
    from matplotlib.patches import Ellipse

    beams = [p for p in radio_ax.patches if isinstance(p, Ellipse)]
    assert len(beams) == 1 and len(radio_ax.patches) == 6
    major = radio.meta["beam"].major.to_value("arcsec") / 2.0  # 2"/px
    assert beams[0].width == pytest.approx(major, rel=0.05)
    assert sum(len(line.get_xdata()) for line in radio_ax.lines) == 2
    texts = [t.get_text() for t in radio_ax.texts]
    assert "FR-II 0.90 #1" in texts and len(texts) == 3
    colors = {p.get_edgecolor()[:3] for p in radio_ax.patches if not isinstance(p, Ellipse)}
    assert (1.0, 0.0, 0.0) in colors and (0.0, 0.0, 1.0) in colors  # FR-I red, FR-II blue
    path = tmp_path / "overview.png"
    fig.savefig(path, format="png")
    assert path.read_bytes()[:8] == PNG
    assert cat.to_table(["id"]).meta["ir_image_file"] == "w1.fits"


def test_plot_options(catalog, synth):
    radio, result, _ = synth
    panels = [a for a in catalog.plot(show_ir=True).axes if hasattr(a, "coords")]
    assert len(panels) == 1  # no infrared image given
    fig = Figure()
    ax = fig.add_subplot(projection=catalog.wcs)
    assert catalog.plot(ax=ax) is fig and len(ax.patches) == 6  # 5 outlines, the beam
    bare = GalaxyCatalog(result).plot()  # no radio image: outlines only
    assert len(bare.axes[0].images) == 0 and len(bare.axes[0].patches) == 5
    with pytest.raises(TypeError, match="WCSAxes"):
        catalog.plot(ax=Figure().add_subplot())
    with pytest.raises(ValueError, match="show_ir"):
        catalog.plot(show_ir="yes")


def test_write_all_files_and_refuse_to_overwrite(catalog, tmp_path):
    paths = catalog.write(tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == ["catalog.ecsv", "galaxies.crtf",
                                                      "galaxies.reg", "overview.png"]
    assert len(QTable.read(paths["table"])) == 3
    assert len(Regions.read(paths["ds9"], format="ds9")) == 7
    assert len(Regions.read(paths["crtf"], format="crtf")) == 7
    assert paths["figure"].read_bytes()[:8] == PNG
    stamps = {p: p.stat().st_mtime_ns for p in paths.values()}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        catalog.write(tmp_path / "out")
    assert {p: p.stat().st_mtime_ns for p in paths.values()} == stamps
    # one existing file is enough to refuse, and nothing else is written then
    other = tmp_path / "other"
    other.mkdir()
    (other / "galaxies.reg").write_text("mine")
    with pytest.raises(FileExistsError, match="galaxies.reg"):
        catalog.write(other)
    assert sorted(p.name for p in other.iterdir()) == ["galaxies.reg"]
    catalog.write(other, overwrite=True)
    assert (other / "galaxies.reg").read_text().startswith("# Region file format: DS9")
    assert not [p for p in other.iterdir() if p.name.startswith(".")]  # no temporary files


def test_write_without_wcs_writes_the_table_only(tmp_path):
    from galcam.inference.result import SegmentationResult

    from ._synth import CLASSES, detection

    mask = np.zeros(SHAPE, bool)
    mask[10:20, 10:30] = True
    cat = GalaxyCatalog(SegmentationResult([detection(0, "FR-I", mask)], classes=CLASSES,
                                           shape=SHAPE))
    paths = cat.write(tmp_path)
    assert list(paths) == ["table"] and paths["table"].exists()
    with pytest.raises(ValueError, match="no WCS"):
        cat.plot()


@pytest.mark.parametrize("ctype, radesys, labels", [
    (("RA---SIN", "DEC--SIN"), "ICRS", ("Right Ascension", "Declination")),
    (("RA---SIN", "DEC--SIN"), "FK4", ("Right Ascension (FK4)", "Declination (FK4)")),
    (("GLON-SIN", "GLAT-SIN"), "", ("Galactic Longitude", "Galactic Latitude")),
])
def test_sky_axes_are_named_after_the_image_frame(ctype, radesys, labels):
    import matplotlib.pyplot as plt

    from galcam.visualization import label_sky_axes

    wcs = make_wcs(SHAPE)
    wcs.wcs.ctype = list(ctype)
    wcs.wcs.radesys = radesys
    ax = plt.figure().add_subplot(projection=wcs)
    label_sky_axes(ax)
    assert (ax.coords[0].get_axislabel(), ax.coords[1].get_axislabel()) == labels
    plt.close(ax.figure)

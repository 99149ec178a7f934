"""Overview figure of a `~galcam.catalog.GalaxyCatalog` (matplotlib + WCSAxes).

The figure is a `matplotlib.figure.Figure` built without pyplot, so nothing touches
pyplot's global state (safe in scripts, notebooks and on machines without a display).
"""

import numpy as np
from astropy.visualization import AsinhStretch

from galcam._validation import check_bool
from galcam.visualization import label_sky_axes, radio_norm

from .regions import CLASS_COLORS, class_color

__all__ = ["plot_catalog", "ir_norm"]


def ir_norm(data, *, percentile=99.5, stretch=None):
    """An `~astropy.visualization.ImageNormalize` for infrared (WISE) images.

    Parameters
    ----------
    data : array-like
        The image (NaNs are ignored).
    percentile : float, optional
        Central percentile of the finite pixels mapped onto the colour range.
    stretch : `~astropy.visualization.BaseStretch`, optional
        Defaults to ``AsinhStretch(0.1)``: the sky background stays dark grey and faint
        hosts are visible next to bright stars (a ``LogStretch`` is another good choice).
    """
    return radio_norm(data, percentile=percentile,
                      stretch=stretch if stretch is not None else AsinhStretch(0.1))


def _panel(fig, position, wcs, shape, image, norm, cmap, title):
    ax = fig.add_subplot(*position, projection=wcs)
    if image is not None:
        data = np.asarray(image.data, dtype=np.float32)
        shown = ax.imshow(data, origin="lower", cmap=cmap, norm=norm(data),
                          interpolation="nearest")
        unit = getattr(image, "unit", None)
        bar = fig.colorbar(shown, ax=ax, shrink=0.8, pad=0.01)
        bar.set_label(str(unit) if unit is not None else "pixel value", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    ax.set_xlim(-0.5, shape[1] - 0.5)
    ax.set_ylim(-0.5, shape[0] - 0.5)
    label_sky_axes(ax)
    ax.set_title(title, fontsize=10)
    return ax


def _draw_beam(ax, image, wcs):
    """The restoring beam as a hatched ellipse in the lower left corner (if known)."""
    from astropy.wcs.utils import proj_plane_pixel_scales
    from matplotlib.patches import Ellipse

    beam = (getattr(image, "meta", None) or {}).get("beam") if image is not None else None
    if beam is None:
        return None
    scale = float(np.mean(proj_plane_pixel_scales(wcs.celestial))) * 3600.0  # arcsec/px
    major = float(beam.major.to_value("arcsec")) / scale
    minor = float(beam.minor.to_value("arcsec")) / scale
    pa = float(beam.pa.to_value("deg")) if getattr(beam, "pa", None) is not None else 0.0
    pad = 0.6 * major + 3
    # PA east of north; with north up and east left the major axis is at 90 + PA from +x
    ellipse = Ellipse((pad, pad), width=major, height=minor, angle=90.0 + pa,
                      facecolor="none", edgecolor="white", hatch="////", linewidth=1.0)
    ax.add_patch(ellipse)
    return ellipse


def _draw(ax, catalog, wcs, colors, *, labels=True):
    """Mask outlines, host markers and labels of every galaxy on ``ax`` (pixels of ``wcs``)."""
    host = catalog._group_host
    for k, (d, polys) in enumerate(zip(catalog.result.detections, catalog._polygons)):
        color = class_color(d.class_name, colors)
        xs, ys = [], []
        for poly in polys:
            x, y = wcs.world_to_pixel(poly.vertices)
            ax.fill(x, y, facecolor="none", edgecolor=color, linewidth=1.0)
            xs.append(x)
            ys.append(y)
        if np.isfinite(host["host_x"][k]):
            hx, hy = wcs.world_to_pixel(host["host_sky"][k])
            ax.plot(hx, hy, marker="x", color=color, markersize=7, markeredgewidth=1.5,
                    linestyle="none")
        if labels and xs:
            x, y = np.concatenate(xs), np.concatenate(ys)
            ax.text(0.5 * (x.min() + x.max()), y.max() + 1.5,
                    f"{d.class_name} {d.score:.2f} #{d.id}", color="white", fontsize=7,
                    ha="center", va="bottom", clip_on=True,
                    bbox={"facecolor": color, "alpha": 0.6, "pad": 1, "linewidth": 0})


def _legend(ax, catalog, colors):
    from matplotlib.lines import Line2D

    present = []
    for d in catalog.result.detections:
        if d.class_name not in present:
            present.append(d.class_name)
    names = [c for c in catalog.classes if c in present] or list(CLASS_COLORS)
    handles = [Line2D([], [], color=class_color(c, colors), label=c) for c in names]
    handles.append(Line2D([], [], color="white", marker="x", linestyle="none", label="host"))
    ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.5,
              facecolor="grey")


def plot_catalog(catalog, *, ax=None, show_ir=True, colors=None, figsize=None):
    """Radio image (and infrared image) with the galaxy masks, hosts and labels.

    The radio image is shown with an asinh stretch (`galcam.visualization.radio_norm`) and
    the infrared image with an asinh stretch (`ir_norm`), each on its own grid with
    sky axes (WCSAxes) and a colour bar in the image's unit; the radio panel shows the
    restoring beam (hatched ellipse, lower left) when the header gives one. Mask outlines
    (the polygons of `galcam.catalog.mask_polygons`) and host markers (``x``) are coloured
    by class (FR-I red, FR-II blue, FR-X green, R magenta) and labelled
    ``"class score #id"``.

    Parameters
    ----------
    catalog : `~galcam.catalog.GalaxyCatalog`
    ax : `~astropy.visualization.wcsaxes.WCSAxes`, optional
        Draw the radio panel into these axes (made with ``projection=catalog.wcs``);
        no infrared panel is drawn then. Default: a new figure.
    show_ir : bool, optional
        Add an infrared panel on the right when the catalogue has an infrared image
        (default True).
    colors : dict, optional
        Colour by class name, overriding the defaults.
    figsize : (float, float), optional
        Size of a new figure in inches.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
    """
    from matplotlib.figure import Figure

    catalog._require_wcs("plot")
    show_ir = check_bool(show_ir, "show_ir")
    wcs = catalog.wcs
    shape = catalog.result.shape
    radio = catalog.radio
    n = len(catalog)
    title = f"{n} {'galaxy' if n == 1 else 'galaxies'}" + (
        f" ({catalog.result.meta['model']})" if catalog.result.meta.get("model") else "")
    if ax is not None:
        if not hasattr(ax, "coords"):
            raise TypeError("ax: expected WCSAxes (add_subplot(projection=catalog.wcs))")
        if radio is not None:
            data = np.asarray(radio.data, dtype=np.float32)
            ax.imshow(data, origin="lower", cmap="inferno", norm=radio_norm(data),
                      interpolation="nearest")
        _draw(ax, catalog, wcs, colors)
        _draw_beam(ax, radio, wcs)
        _legend(ax, catalog, colors)
        return ax.figure
    with_ir = show_ir and catalog.ir is not None
    if figsize is None:
        figsize = (13, 6.2) if with_ir else (7, 6.5)
    fig = Figure(figsize=figsize, layout="constrained")
    ax_radio = _panel(fig, (1, 2 if with_ir else 1, 1), wcs, shape, radio, radio_norm,
                      "inferno", "radio: " + title)
    _draw(ax_radio, catalog, wcs, colors)
    _draw_beam(ax_radio, radio, wcs)
    _legend(ax_radio, catalog, colors)
    if with_ir:
        ir = catalog.ir
        ax_ir = _panel(fig, (1, 2, 2), ir.wcs, ir.data.shape, ir, ir_norm, "gray",
                       "infrared")
        _draw(ax_ir, catalog, ir.wcs.celestial, colors, labels=False)
    return fig

"""Figures of radio images and what galcam finds in them (matplotlib + WCSAxes).

The functions build a `matplotlib.figure.Figure` without touching pyplot's global state,
so they are safe in scripts, notebooks, and on machines without a display.

A shared helper at the bottom of galcam's layers (see ``galcam/tests/test_layers.py``): it
imports no other galcam module, so that every layer (the catalogue's and the survey's
figures, the CLI) may use it.
"""

import numpy as np
from astropy.visualization import AsinhStretch, ImageNormalize, PercentileInterval

__all__ = ["radio_norm", "plot_islands", "label_sky_axes"]


def radio_norm(data, *, percentile=99.5, stretch=None):
    """An asinh `~astropy.visualization.ImageNormalize` suited to radio continuum images.

    Parameters
    ----------
    data : array-like
        The image (NaNs are ignored).
    percentile : float, optional
        Central percentile of the finite pixels mapped onto the colour range.
    stretch : `~astropy.visualization.BaseStretch`, optional
        Defaults to ``AsinhStretch(0.02)``, which shows faint lobes and bright cores at once.
    """
    finite = np.asarray(data)[np.isfinite(data)]
    return ImageNormalize(
        finite,
        interval=PercentileInterval(percentile),
        stretch=stretch if stretch is not None else AsinhStretch(0.02),
    )


_AXIS_NAMES = {
    "RA": ("Right Ascension", "Declination"),
    "GLON": ("Galactic Longitude", "Galactic Latitude"),
    "ELON": ("Ecliptic Longitude", "Ecliptic Latitude"),
    "SLON": ("Supergalactic Longitude", "Supergalactic Latitude"),
}


def label_sky_axes(ax):
    """Name the two sky axes of a WCSAxes plot after its WCS's coordinate system.

    Right Ascension / Declination for equatorial images (with the frame, e.g. ``(FK4)``,
    when it is not ICRS or FK5), Galactic, ecliptic or supergalactic longitude / latitude
    otherwise. Axes without a WCS are left alone.

    Parameters
    ----------
    ax : `~astropy.visualization.wcsaxes.WCSAxes` or `~matplotlib.axes.Axes`
        The axes to label (in place).
    """
    wcs = getattr(ax, "wcs", None)
    if wcs is None or not hasattr(ax, "coords"):
        return
    celestial = wcs.celestial
    lng = celestial.wcs.ctype[0].split("-")[0].strip().upper()
    names = _AXIS_NAMES.get(lng)
    if names is None:
        return
    frame = (celestial.wcs.radesys or "").strip().upper()
    if lng == "RA" and frame and frame not in ("ICRS", "FK5"):
        names = tuple(f"{n} ({frame})" for n in names)
    ax.coords[0].set_axislabel(names[0])
    ax.coords[1].set_axislabel(names[1])


def plot_islands(image, islands, *, title=None, figsize=(7, 6.5), cmap="inferno"):
    """Radio image with the outlines of its islands, on sky axes.

    Parameters
    ----------
    image : `~astropy.nddata.NDData`
        The radio image, as returned by `galcam.read_image`.
    islands : `galcam.preprocessing.Islands`
        The islands found on it by `galcam.find_islands`.
    title : str, optional
        Figure title.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
    """
    from matplotlib.figure import Figure

    data = np.asarray(image.data, dtype=np.float32)
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot(projection=image.wcs)
    im = ax.imshow(data, origin="lower", cmap=cmap, norm=radio_norm(data))
    segm = islands.segment_image
    if segm is not None and islands.n_islands > 0:
        ax.contour(segm.data > 0, levels=[0.5], colors="cyan", linewidths=0.7)
        table = islands.to_table()
        for row in table:
            ax.text(
                float(row["xcentroid"]),
                float(row["ycentroid"]),
                str(row["id"]),
                color="white",
                fontsize=6,
                ha="center",
                va="center",
            )
    label_sky_axes(ax)
    unit = image.unit.to_string() if image.unit is not None else ""
    fig.colorbar(im, ax=ax, shrink=0.8, label=unit)
    if title:
        # above the tick labels that WCSAxes may draw along the top edge
        ax.set_title(title, pad=14)
    return fig

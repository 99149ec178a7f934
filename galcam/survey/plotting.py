"""The coverage and density figure of a survey run (torch-free, matplotlib Agg)."""

import numpy as np
from astropy import units as u

from galcam.visualization import label_sky_axes

__all__ = ["plot_coverage", "STATUS_COLORS"]

#: Face colours of the units by status.
STATUS_COLORS = {"done": "#4daf4a", "failed": "#e41a1c", "pending": "#bbbbbb"}


def _density(result, wcs, shape, n_bins):
    from astropy.wcs.utils import proj_plane_pixel_area

    h, w = shape
    step = max(h, w) / n_bins
    ny, nx = max(1, int(np.ceil(h / step))), max(1, int(np.ceil(w / step)))
    xs = np.array([d.centroid[0] for d in result], dtype=float)
    ys = np.array([d.centroid[1] for d in result], dtype=float)
    counts, _, _ = np.histogram2d(ys, xs, bins=(ny, nx), range=((-0.5, ny * step - 0.5),
                                                                (-0.5, nx * step - 0.5)))
    pix_deg2 = proj_plane_pixel_area(wcs.celestial) * (u.deg**2)
    bin_deg2 = (step * step * pix_deg2).to_value(u.deg**2)
    return counts / bin_deg2, step


def plot_coverage(units, *, done, failed, result, wcs, shape, n_bins=12):
    """Two panels: the units coloured by status, and galaxies per square degree.

    Parameters
    ----------
    units : sequence of `~galcam.survey.WorkUnit`
    done, failed : set of str
        Unit ids done / failed; the others are pending.
    result : `~galcam.inference.SegmentationResult`
        The merged galaxies (mosaic pixels).
    wcs : `~astropy.wcs.WCS`
        Celestial WCS of the mosaic.
    shape : (int, int)
        ``(height, width)`` of the mosaic.
    n_bins : int, optional
        Bins of the density map along the longer side.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        Made without pyplot's global state (Agg canvas).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    h, w = shape
    fig = Figure(figsize=(12, 5))
    fig.subplots_adjust(wspace=0.45, left=0.08, right=0.95)
    FigureCanvasAgg(fig)
    ax1 = fig.add_subplot(1, 2, 1, projection=wcs.celestial)
    ax2 = fig.add_subplot(1, 2, 2, projection=wcs.celestial)
    ax1.set_xlim(-0.5, w - 0.5)
    ax1.set_ylim(-0.5, h - 0.5)
    for un in units:
        status = "done" if un.id in done else ("failed" if un.id in failed else "pending")
        ax1.add_patch(Rectangle((un.x0 - 0.5, un.y0 - 0.5), un.x1 - un.x0, un.y1 - un.y0,
                                facecolor=STATUS_COLORS[status], edgecolor="k", alpha=0.35,
                                linewidth=0.4))
    n = {s: sum(1 for un in units if (un.id in done if s == "done" else
                                      un.id in failed if s == "failed" else
                                      un.id not in done and un.id not in failed))
         for s in STATUS_COLORS}
    ax1.legend(handles=[Patch(facecolor=c, alpha=0.6, label=f"{s} ({n[s]})")
                        for s, c in STATUS_COLORS.items()], loc="upper right", fontsize=8)
    ax1.set_title(f"work units ({len(units)})")
    density, step = _density(result, wcs, shape, n_bins)
    im = ax2.imshow(density, origin="lower", cmap="viridis", interpolation="nearest",
                    extent=(-0.5, density.shape[1] * step - 0.5, -0.5,
                            density.shape[0] * step - 0.5))
    ax2.set_xlim(-0.5, w - 0.5)
    ax2.set_ylim(-0.5, h - 0.5)
    fig.colorbar(im, ax=ax2, label="galaxies per deg$^2$", shrink=0.85)
    n = len(result)
    ax2.set_title(f"{n} {'galaxy' if n == 1 else 'galaxies'}")
    for ax in (ax1, ax2):
        label_sky_axes(ax)
    return fig

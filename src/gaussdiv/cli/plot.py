"""The pairwise-divergence heatmap, drawn with matplotlib's Agg canvas (no display needed).

The figure is built with ``matplotlib.figure.Figure`` rather than pyplot, so no global state
or GUI backend is touched, and rendered at a fixed size: :data:`WIDTH` × :data:`HEIGHT` pixels,
as PNG bytes that the command writes with its other files.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

DPI = 100
WIDTH, HEIGHT = 800, 700
#: Cells are annotated with their value up to this many groups.
ANNOTATE_MAX = 12


def heatmap(matrix: np.ndarray, names: Sequence[str], title: str, value_label: str,
            row_label: str = "P", col_label: str = "Q") -> bytes:
    """An N×N heatmap of ``matrix`` (row i = P, column j = Q) as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="viridis", interpolation="nearest")
    colorbar = fig.colorbar(image, ax=ax, shrink=0.85)
    colorbar.set_label(value_label)
    ticks = np.arange(len(names))
    crowded = len(names) * max(len(n) for n in names) > 40
    ax.set_xticks(ticks, labels=list(names), rotation=45 if crowded else 0,
                  ha="right" if crowded else "center")
    ax.set_yticks(ticks, labels=list(names))
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.set_title(title)
    if len(names) <= ANNOTATE_MAX:
        finite = matrix[np.isfinite(matrix)]
        top = finite.max() if finite.size else 0.0
        for i, j in np.ndindex(matrix.shape):
            value = matrix[i, j]  # an infinite cell is left blank by imshow: write ∞ in black
            text = "∞" if np.isinf(value) else (
                f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}")
            ax.text(j, i, text, ha="center", va="center", fontsize=8 if len(names) > 6 else 10,
                    color="black" if not value <= 0.6 * top else "white")
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()

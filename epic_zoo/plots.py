"""Velocity-map panels: prediction, truth and error side by side.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no display),
so it works in DataLoader workers, DDP ranks and headless machines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from epic_zoo.data.geometry import DX, NX, NZ, V_MAX, V_MIN
from epic_zoo.tables import LEARNS_RATIO


def velocity_panels(
    pred_ms: np.ndarray,
    true_ms: np.ndarray,
    titles: list[str] | None = None,
) -> Figure:
    """One row per sample: predicted velocity, true velocity, error (prediction - truth).

    Args:
        pred_ms, true_ms: velocity maps ``[sample, depth, offset]`` (or
            ``[sample, 1, depth, offset]``) in m/s, on the 70 x 70 OpenFWI grid.
        titles: optional label per row (e.g. the sample index).

    Returns:
        A matplotlib ``Figure`` on an Agg canvas; axes in km, velocities in
        km/s on a shared colour scale (1.5-4.5 km/s), error on a symmetric scale.
    """
    pred = np.asarray(pred_ms, dtype=np.float32).reshape(-1, NZ, NX)
    true = np.asarray(true_ms, dtype=np.float32).reshape(-1, NZ, NX)
    if pred.shape != true.shape:
        raise ValueError(f"prediction {pred.shape} and truth {true.shape} must have the same shape")
    rows = pred.shape[0]
    error = pred - true
    err_lim = max(float(np.abs(error).max()), 1.0) / 1000.0
    extent = (0.0, NX * DX / 1000.0, NZ * DX / 1000.0, 0.0)

    fig = Figure(figsize=(9.0, 2.6 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 3, squeeze=False)
    for r in range(rows):
        label = f"{titles[r]}: " if titles else ""
        panels = (
            (pred[r] / 1000.0, "prediction", "viridis", V_MIN / 1000.0, V_MAX / 1000.0),
            (true[r] / 1000.0, "truth", "viridis", V_MIN / 1000.0, V_MAX / 1000.0),
            (error[r] / 1000.0, "error", "RdBu_r", -err_lim, err_lim),
        )
        for c, (image, name, cmap, lo, hi) in enumerate(panels):
            ax = axes[r, c]
            shown = ax.imshow(image, cmap=cmap, vmin=lo, vmax=hi, extent=extent, aspect="equal")
            ax.set_title(f"{label}{name}", fontsize=9)
            ax.set_xlabel("offset (km)", fontsize=8)
            if c == 0:
                ax.set_ylabel("depth (km)", fontsize=8)
            ax.tick_params(labelsize=7)
            bar = fig.colorbar(shown, ax=ax, shrink=0.8)
            bar.set_label("km/s", fontsize=8)
            bar.ax.tick_params(labelsize=7)
    return fig


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render a figure to an RGB image ``[height, width, 3]`` uint8."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write a figure as PNG, creating parent folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def learning_curve_figure(
    curves: dict[str, list[tuple[float, float]]],
    mean_map_mae_ms: float | None = None,
    title: str = "",
    spread: dict[str, list[tuple[float, float, float]]] | None = None,
) -> Figure:
    """MAE (m/s) against training samples seen, one line per curve.

    Args:
        curves: ``{label: [(samples_seen, mae_ms), ...]}`` (validation MAE per
            run; a run's training MAE may sit beside it); empty curves are skipped.
        mean_map_mae_ms: the input-free mean-map MAE on the same data, drawn
            as a dashed line with the "learns" threshold (0.6 x) beside it.
        title: figure title.
        spread: ``{label: [(samples_seen, low, high), ...]}``: a shaded band
            around the curve of the same label (e.g. the range over seeds).
    """

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for label, points in curves.items():
        if points:
            x, y = zip(*points, strict=True)
            (line,) = ax.plot(x, y, marker="o", markersize=3, label=label)
            band = (spread or {}).get(label) or []
            if any(lo != hi for _, lo, hi in band):
                bx, lo, hi = zip(*band, strict=True)
                ax.fill_between(bx, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    if mean_map_mae_ms:
        ax.axhline(mean_map_mae_ms, color="0.3", linestyle="--", label="mean map (input-free)")
        ax.axhline(
            LEARNS_RATIO * mean_map_mae_ms,
            color="0.6",
            linestyle=":",
            label=f"learns threshold ({LEARNS_RATIO} x mean map)",
        )
    ax.set_xlabel("training samples seen")
    ax.set_ylabel("MAE (m/s)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=10)
    return fig

"""Plots of a sweep: fidelity vs payload, latency and energy breakdowns, sample panels.

One colour per dataset and one marker per model throughout; legends sit
outside the axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
PLOTS_DIR: str = "plots"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _styles(rows: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Colour per dataset (tab10) and marker per model, in first-seen order."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    colours = {d: cmap(i % 10) for i, d in enumerate(datasets)}
    markers = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(models)}
    return colours, markers


def plot_fidelity_vs_payload(rows: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """SSIM (OpenFWI) against payload bytes per sample (log x), one point per (model, dataset)."""
    points = {(r["model"], r["dataset"]): r for r in rows if r.get("ssim_openfwi") is not None}
    if not points:
        return None
    from matplotlib.lines import Line2D

    colours, markers = _styles(list(points.values()))
    fig = _figure(8.0, 4.5)
    ax = fig.subplots()
    for (model, dataset), r in points.items():
        ax.scatter(
            r["payload_bytes_per_sample"],
            r["ssim_openfwi"],
            color=colours[dataset],
            marker=markers[model],
            s=36,
            edgecolor="black",
            linewidth=0.4,
        )
    handles = [Line2D([], [], color=c, marker="o", ls="", label=d) for d, c in colours.items()]
    handles += [Line2D([], [], color="grey", marker=m, ls="", label=n) for n, m in markers.items()]
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False
    )
    ax.set_xscale("log")
    ax.set_xlabel("payload per sample, all devices (bytes)")
    ax.set_ylabel("SSIM (OpenFWI)")
    ax.set_title("Fidelity against bytes sent (colour: dataset, marker: model)")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    return path


LATENCY_PARTS: tuple[tuple[str, str], ...] = (
    ("device_compute_s_measured", "device compute"),
    ("promotion_s", "radio promotion"),
    ("comm_s", "transmission"),
    ("propagation_s", "propagation"),
    ("central_compute_s_measured", "central compute"),
)
ENERGY_PARTS: tuple[tuple[str, str], ...] = (
    ("device_compute_j_measured", "device compute"),
    ("energy_tx_j", "radio transmit"),
    ("energy_listen_j", "radio listen"),
    ("energy_state_j", "radio promotion + tail"),
    ("central_compute_j_measured", "central compute"),
)


def plot_breakdown(
    rows: Sequence[dict[str, Any]],
    parts: Sequence[tuple[str, str]],
    unit: str,
    scale: float,
    title: str,
    path: Path,
) -> Path:
    """Stacked bars per model (mean over datasets, log y), one panel per link (measured compute)."""
    links = list(dict.fromkeys(r["link"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    cols = min(3, len(links))
    nrows = -(-len(links) // cols)
    fig = _figure(2.2 + 3.0 * cols, 0.6 + 3.2 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False)).ravel()
    for ax, link in zip(axes, links, strict=False):
        bottom = np.zeros(len(models))
        for key, label in parts:
            values = np.array(
                [
                    scale * np.mean([r[key] for r in rows if r["link"] == link and r["model"] == m])
                    for m in models
                ]
            )
            ax.bar(models, values, bottom=bottom, label=label)
            bottom += values
        ax.set_title(link, fontsize=9)
        ax.set_ylabel(unit, fontsize=8)
        ax.set_yscale("log")
        ax.tick_params(axis="x", rotation=70, labelsize=7)
    for ax in axes[len(links) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7, frameon=False)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return path


def plot_panels(panel_dir: Path, dataset: str, path: Path) -> Path | None:
    """Truth, every model's prediction and its error (prediction - truth) for the first test samples."""
    from epic_zoo.data.geometry import DX, NX, NZ, V_MAX, V_MIN

    folder = panel_dir / dataset
    truth_file = folder / "truth.npy"
    if not truth_file.is_file():
        return None
    truth = np.load(truth_file).reshape(-1, NZ, NX)
    preds = [
        (p.stem, np.load(p).reshape(-1, NZ, NX))
        for p in sorted(folder.glob("*.npy"))
        if p.stem != "truth"
    ]
    samples = truth.shape[0]
    cols = 1 + 2 * len(preds)
    fig = _figure(1.6 * cols + 1.2, 1.7 * samples + 0.8)
    axes = fig.subplots(samples, cols, squeeze=False)
    extent = (0.0, NX * DX / 1000.0, NZ * DX / 1000.0, 0.0)
    limit = 0.5 * (V_MAX - V_MIN) / 1000
    shown = error = None
    for i in range(samples):
        panels = [("truth", truth[i] / 1000, "velocity")]
        for name, pred in preds:
            panels += [
                (name, pred[i] / 1000, "velocity"),
                (f"{name} error", (pred[i] - truth[i]) / 1000, "error"),
            ]
        for ax, (label, image, kind) in zip(axes[i], panels, strict=True):
            if kind == "velocity":
                shown = ax.imshow(
                    image, vmin=V_MIN / 1000, vmax=V_MAX / 1000, cmap="viridis", extent=extent
                )
            else:
                error = ax.imshow(image, vmin=-limit, vmax=limit, cmap="RdBu_r", extent=extent)
            if i == 0:
                ax.set_title(label, fontsize=7)
            ax.tick_params(labelsize=6)
        axes[i][0].set_ylabel(f"sample {i}\ndepth (km)", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("offset (km)", fontsize=7)
    fig.colorbar(shown, ax=list(axes[:, 0]), label="velocity (km/s)", shrink=0.8, location="left")
    if error is not None:
        fig.colorbar(error, ax=list(axes[:, -1]), label="error (km/s)", shrink=0.8)
    fig.suptitle(f"{dataset}: first {samples} test samples, predictions and errors")
    fig.savefig(path, dpi=110)
    return path


def write_plots(rows: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """Every plot of the sweep under ``out/plots``; returns the files written."""
    if not rows:
        return []
    plots = out / PLOTS_DIR
    plots.mkdir(parents=True, exist_ok=True)
    written = [
        plot_fidelity_vs_payload(rows, plots / "fidelity_vs_payload.png"),
        plot_breakdown(
            rows,
            LATENCY_PARTS,
            "ms per sample",
            1e3,
            "Latency per sample by link (mean over datasets)",
            plots / "latency_per_link.png",
        ),
        plot_breakdown(
            rows,
            ENERGY_PARTS,
            "mJ per sample",
            1e3,
            "Energy per sample by link (mean over datasets)",
            plots / "energy_per_link.png",
        ),
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        written.append(plot_panels(out / "panels", dataset, plots / f"panels_{dataset}.png"))
    return [p for p in written if p is not None]

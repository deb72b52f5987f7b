"""Markdown tables of metrics: one cell format per column kind, shared by the CLIs.

Library layer (no CLI, no Lightning): ``python -m epic_zoo.run`` prints a
finished run's test metrics with :func:`format_table`, ``python -m
epic_zoo.compare`` its run and seed-group tables (:class:`Stat` cells, mean
+- sample standard deviation).

Precision follows the column name: ``*_ms`` (m/s) one decimal, ``*ratio*`` two,
other floats four; NaN and ``None`` print ``-``, booleans ``yes``/``no``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence

LEARNS_RATIO: float = 0.6
"""A model learns where its test MAE <= this x the input-free mean-map MAE on the same data."""


def learns(mae: float, mean_map_mae: float) -> bool:
    """Whether ``mae`` is at most :data:`LEARNS_RATIO` x ``mean_map_mae`` (same scale)."""
    return float(mae) <= LEARNS_RATIO * float(mean_map_mae)


LEAD_METRICS: tuple[str, ...] = ("mae_ms", "ssim_openfwi", "ssim", "rmse_ms", "mae", "rmse")
"""Metric columns shown first, in this order: MAE in m/s, then SSIM (then the rest)."""


def ordered_metrics(metrics: Mapping[str, float], prefix: str = "test/") -> dict[str, float]:
    """``metrics`` with :data:`LEAD_METRICS` first (MAE in m/s, then SSIM), the rest after."""
    lead = [f"{prefix}{k}" for k in LEAD_METRICS if f"{prefix}{k}" in metrics]
    return {k: metrics[k] for k in [*lead, *(k for k in metrics if k not in lead)]}


class Stat:
    """Mean and sample standard deviation (``n - 1``) of one metric over a group's runs."""

    def __init__(self, values: Iterable[float]) -> None:
        self.values = [float(v) for v in values if not math.isnan(float(v))]
        self.mean = statistics.fmean(self.values) if self.values else math.nan
        self.std = statistics.stdev(self.values) if len(self.values) > 1 else math.nan

    def format(self, key: str) -> str:
        """``mean ± std`` (just the mean for one run) in the column's precision."""
        if not self.values:
            return "-"
        mean = format_value(key, self.mean)
        return mean if len(self.values) == 1 else f"{mean} ± {format_value(key, self.std)}"


def format_value(key: str, value: object) -> str:
    """One table cell: ``value`` in the precision of column ``key``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if key.endswith("_ms"):
            return f"{value:.1f}"
        return f"{value:.2f}" if "ratio" in key else f"{value:.4f}"
    if isinstance(value, Stat):
        return value.format(key)
    return "-" if value is None else str(value)


def format_table(
    runs: Mapping[str, Mapping[str, object]],
    columns: Sequence[str] | None = None,
    transpose: bool = False,
    first: str = "run",
) -> str:
    """A Markdown table: one row per run (``transpose``: one row per metric).

    Args:
        runs: ``{run label: {column: value}}``; values may be :class:`Stat`.
        columns: columns to show, in order (default: every key, first seen first).
        transpose: metrics as rows and runs as columns (handy for one run).
        first: header of the label column.
    """
    if columns is None:
        columns = list(dict.fromkeys(k for values in runs.values() for k in values))
    header = [first, *columns]
    rows = [
        [label, *(format_value(c, values.get(c)) for c in columns)]
        for label, values in runs.items()
    ]
    if transpose:
        header = ["metric", *runs]
        rows = [[c, *(format_value(c, values.get(c)) for values in runs.values())] for c in columns]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return (
            "| " + " | ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)) + " |"
        )

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])

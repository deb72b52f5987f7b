"""Sweep output: the conditions columns, ``bench.csv`` and the Markdown table ``bench.md``."""

from __future__ import annotations

import csv
import datetime
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import epic_zoo
from epic_zoo.bench.settings import Hardware, Settings
from epic_zoo.data.profiles import get_profile
from epic_zoo.hardware.timing import CLOCK_NAME
from epic_zoo.provenance import cpu_name, git_commit

CSV_NAME, MD_NAME, RUN_NAME = "bench.csv", "bench.md", "run.json"

STABILITY_NOTE: str = (
    "Stable (bit-for-bit on rerun with the same test data): payload bytes, FLOPs, and every "
    "`flops` latency / energy and its ratios (network FLOPs at the profile's FLOP/s plus the "
    "codec's bytes at its byte rates; nothing timed). Measured (steady to a few per cent, not "
    "bit-stable): every `measured` figure, from this machine's thread CPU time at one pinned "
    "thread, each call timed in interleaved rounds right after a reference probe, the median "
    "of its per-round probe multiples scaled by the probe's FLOP/s to the profile; "
    "`timing_spread` is the interquartile spread of those multiples (the `±` below). "
    "`benchmarks/bench_stability.py` compares two runs."
)


def conditions(settings: Settings, hardware: Hardware) -> dict[str, Any]:
    """Columns that say how the numbers were made (same in every row of a sweep)."""
    prof = get_profile(settings.profile)
    return {
        "device_profile": hardware.device.name,
        "central_profile": hardware.central.name,
        "fidelity_source": settings.fidelity,
        # with --data the profile does not describe the test data: see test_data
        "data_profile": None if settings.data else prof.name,
        "train_samples": None if settings.data else prof.train,
        "val_samples": None if settings.data else prof.val,
        "test_samples_profile": None if settings.data else prof.test,
        "data_dtype": None if settings.data else prof.dtype,
        "seed": settings.seed,
        "commit": git_commit() or "unknown",
        "epic_zoo_version": epic_zoo.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "timing_threads": 1,
        "timing_clock": CLOCK_NAME,
        "timing_rounds": settings.repeats,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Write ``rows`` atomically (columns in first-seen order)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
    tmp.replace(path)


def _parse(value: str) -> Any:
    if value == "":
        return None
    if value in ("True", "False"):
        return value == "True"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``bench.csv`` with numbers parsed back (empty cells -> ``None``)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def gmean(values: Sequence[float]) -> float:
    """Geometric mean of positive numbers."""
    return float(np.exp(np.mean(np.log(np.asarray(values, dtype=float)))))


def summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per (model, link): means over datasets (ratios: geometric means)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["link"]), []).append(row)
    out = []
    for (model, link), group in groups.items():
        ssim = [r["ssim_openfwi"] for r in group if r.get("ssim_openfwi") is not None]
        line: dict[str, Any] = {"model": model, "link": link, "datasets": len(group)}
        line["ssim_openfwi"] = float(np.mean(ssim)) if ssim else None
        for key in (
            "payload_bytes_per_device",
            "latency_s_measured",
            "latency_s_flops",
            "energy_tx_j",
            "energy_radio_j",
            "energy_total_j_measured",
            "energy_total_j_flops",
            "timing_spread",
        ):
            line[key] = float(np.mean([r[key] for r in group]))
        for key in group[0]:
            if "_x" in key and isinstance(group[0][key], float):
                line[key] = gmean([r[key] for r in group])
            elif key.startswith("strongest_ref_"):
                line[key] = "/".join(dict.fromkeys(r[key] for r in group))
        out.append(line)
    return out


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The sweep as Markdown: conditions, a summary per (model, link) and every row."""
    lines = ["# epic_zoo benchmark", ""]
    if not rows:
        return "\n".join(lines) + "\n"
    c = rows[0]
    data = (
        f"data profile `{c['data_profile']}`"
        if c["data_profile"]
        else f"test data `{Path(str(c['test_data'])).name}`"
    )
    lines += [
        f"Conditions: {data}, weights `{c['fidelity_source']}`; devices `{c['device_profile']}`, "
        f"centre `{c['central_profile']}`; commit `{c['commit']}`, torch {c['torch_version']}, "
        f"{c['cpu']} ({c['cpu_count']} cores; timing in {c.get('timing_clock') or 'wall time'} "
        f"at 1 pinned thread, {c['timing_rounds']} interleaved rounds; reference probe "
        f"{c['host_gflops_1thread']:.1f} GFLOP/s).",
        "",
        "Ratios (`x`) are centralised InversionNet divided by the model (> 1: the model is "
        "faster / spends less), against the strongest of InversionNet's raw baselines (float32, "
        "float16, and zlib of each, at the model's time sampling) for each quantity; summary "
        "ratios are geometric means over datasets. Energy: tx = radio transmit (the paper's "
        "communication energy), radio = tx + listen + LTE promotion/tail, total = radio + compute.",
        "",
        STABILITY_NOTE,
        "",
        "## Summary",
        "",
        "| model | link | T | SSIM | B/device | payload x | latency ms (meas ± spread / FLOPs) "
        "| latency x (meas / FLOPs) | tx energy x | radio energy x | total energy x (meas / FLOPs) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    times = {(r["model"], r["link"]): r["time_samples"] for r in rows}
    for s in summary(rows):
        lat = 1e3 * s["latency_s_measured"]
        lines.append(
            f"| {s['model']} | {s['link']} | {times[(s['model'], s['link'])]} "
            f"| {_fmt(s['ssim_openfwi'])} | {s['payload_bytes_per_device']:,.0f} "
            f"| {_fmt(s.get('payload_x'))} "
            f"| {lat:.1f} ± {lat * s['timing_spread']:.1f} / {1e3 * s['latency_s_flops']:.1f} "
            f"| {_fmt(s.get('latency_x_measured'))} / {_fmt(s.get('latency_x_flops'))} "
            f"| {_fmt(s.get('energy_tx_x'))} | {_fmt(s.get('energy_radio_x'))} "
            f"| {_fmt(s.get('energy_total_x_measured'))} / {_fmt(s.get('energy_total_x_flops'))} |"
        )
    lines += [
        "",
        "## All rows",
        "",
        "| model | dataset | link | SSIM (OpenFWI) | MAE m/s | B/device | latency ms (meas / FLOPs) "
        "| tx / listen / state / total energy mJ (meas) | latency x (meas) | total energy x (meas) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['link']} | {_fmt(r.get('ssim_openfwi'))} "
            f"| {_fmt(r.get('mae_ms'))} | {r['payload_bytes_per_device']:,.0f} "
            f"| {1e3 * r['latency_s_measured']:.2f} / {1e3 * r['latency_s_flops']:.2f} "
            f"| {1e3 * r['energy_tx_j']:.3g} / {1e3 * r['energy_listen_j']:.3g} / "
            f"{1e3 * r['energy_state_j']:.3g} / {1e3 * r['energy_total_j_measured']:.3g} "
            f"| {_fmt(r.get('latency_x_measured'))} | {_fmt(r.get('energy_total_x_measured'))} |"
        )
    return "\n".join(lines) + "\n"

"""Rows of the sweep: one per (model, dataset, link), with ratios to every raw baseline.

Column groups (``SRC`` is ``measured`` or ``flops``, see
:mod:`epic_zoo.hardware.simulator`; ``F`` a raw format ``f32``, ``f16``,
``f32-zlib``, ``f16-zlib``):

- latency: ``latency_s_SRC`` = ``device_compute_s_SRC`` + ``promotion_s`` +
  ``comm_s`` + ``propagation_s`` + ``central_compute_s_SRC``;
- energy, J per sample: ``energy_tx_j`` (radio transmit, the paper's
  communication energy), ``energy_listen_j``, ``energy_state_j`` (LTE
  promotion + tail), ``energy_radio_j`` (their sum), ``energy_total_j_SRC``
  (radio + compute);
- ratios to centralised InversionNet sending its records in format ``F``
  (``X_x_F`` = baseline / model, > 1: the model is faster or spends less):
  ``latency_x_F_SRC``, ``energy_tx_x_F``, ``energy_listen_x_F``,
  ``energy_radio_x_F``, ``energy_total_x_F_SRC``, ``payload_x_F``;
- headline ratios against the *strongest* baseline for each quantity (the
  smallest ratio over formats): the same names without ``_F``, with the
  format in ``strongest_ref_latency_SRC`` / ``strongest_ref_energy_total_SRC``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from epic_zoo.bench.settings import Hardware
from epic_zoo.hardware.simulator import SOURCES, Estimate, ModelCost, simulate, speed_ratio

RATIOS_PER_SOURCE: tuple[str, ...] = ("latency", "energy_total")
RATIOS_LINK_ONLY: tuple[str, ...] = ("energy_tx", "energy_listen", "energy_radio", "payload")


def _quantities(est: dict[str, Estimate], cost: ModelCost) -> dict[str, float]:
    out = {}
    for s in SOURCES:
        out[f"latency_{s}"] = est[s].latency_s
        out[f"energy_total_{s}"] = est[s].energy_j
    m = est["measured"]
    out.update(
        energy_tx=m.radio_tx_j,
        energy_listen=m.radio_listen_j,
        energy_radio=m.radio_energy_j,
        payload=float(sum(cost.payload_bytes)),
    )
    return out


def _ratio(ref: float, value: float) -> float:
    return ref / value if value > 0 else float("inf")


def link_rows(
    name: str,
    dataset: str,
    facts: dict[str, Any],
    cost: ModelCost,
    refs: Sequence[ModelCost],
    hardware: Hardware,
    links: Sequence[str],
) -> list[dict[str, Any]]:
    """One row per link of ``links``: ``facts`` + simulated latency/energy + ratios to each of ``refs``."""
    rows = []
    for link_name in links:
        link = hardware.links[link_name]

        def run(c: ModelCost, link=link) -> dict[str, Estimate]:
            return {
                s: simulate(c, link, hardware.device, hardware.central, source=s) for s in SOURCES
            }

        est = run(cost)
        mine = _quantities(est, cost)
        row: dict[str, Any] = {"model": name, "dataset": dataset, "link": link_name, **facts}
        for s in SOURCES:
            row[f"latency_s_{s}"] = est[s].latency_s
            row[f"device_compute_s_{s}"] = est[s].device_compute_s
            row[f"central_compute_s_{s}"] = est[s].central_compute_s
        m = est["measured"]
        row.update(comm_s=m.comm_s, promotion_s=m.promotion_s, propagation_s=m.propagation_s)
        row.update(
            energy_tx_j=m.radio_tx_j,
            energy_listen_j=m.radio_listen_j,
            energy_state_j=m.radio_state_j,
            energy_radio_j=m.radio_energy_j,
        )
        for s in SOURCES:
            row[f"energy_total_j_{s}"] = est[s].energy_j
            row[f"device_compute_j_{s}"] = est[s].device_compute_j
            row[f"central_compute_j_{s}"] = est[s].central_compute_j
        ratios: dict[str, dict[str, float]] = {}
        for ref in refs:
            theirs = _quantities(run(ref), ref)
            ratios[ref.raw_format] = {k: _ratio(theirs[k], mine[k]) for k in mine}
        for fmt, values in ratios.items():
            for q in RATIOS_PER_SOURCE:
                for s in SOURCES:
                    row[f"{q}_x_{fmt}_{s}"] = values[f"{q}_{s}"]
            for q in RATIOS_LINK_ONLY:
                row[f"{q}_x_{fmt}"] = values[q]
        if ratios:
            for q in RATIOS_PER_SOURCE:
                for s in SOURCES:
                    fmt = min(ratios, key=lambda f, k=f"{q}_{s}": ratios[f][k])
                    row[f"{q}_x_{s}"] = ratios[fmt][f"{q}_{s}"]
                    row[f"strongest_ref_{q}_{s}"] = fmt
            for q in RATIOS_LINK_ONLY:
                row[f"{q}_x"] = min(v[q] for v in ratios.values())
        row["timing_spread"] = cost.timing_spread
        row["host_gflops_1thread"] = cost.host_flops / 1e9
        row["device_speed_ratio"] = speed_ratio(hardware.device, cost.host_flops)
        row["central_speed_ratio"] = speed_ratio(hardware.central, cost.host_flops)
        rows.append(row)
    return rows

"""Hardware costs of a sweep: every architecture timed once per run, interleaved.

Costs depend on the architecture and its configuration (record length,
latent size), not on the weights, so one model per configuration is timed.
They are cached in ``OUT/costs.json``: a resumed sweep reuses them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from epic_zoo.hardware.simulator import ModelCost, measure_costs

COSTS_NAME: str = "costs.json"
COSTS_VERSION: int = 2
"""Layout of ``costs.json`` (2: CPU-time timings against a probe run before every call, codec work)."""


def cost_key(model: nn.Module) -> str:
    """``NAME-T{time_samples}-{hash of the config}``: models sharing it cost the same."""
    config = dict(model.config)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    return f"{config['name']}-T{int(config['time_samples'])}-{digest[:8]}"


@dataclass
class ToMeasure:
    """A model to time, with one sample ``[1, 5, T, 70]`` (normalised and raw)."""

    model: nn.Module
    seismic: torch.Tensor
    raw: np.ndarray


def load_costs(out: Path) -> dict[str, list[ModelCost]]:
    """Cached costs of a sweep folder (empty if none or written by another version)."""
    path = out / COSTS_NAME
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("version") != COSTS_VERSION:
        return {}
    try:
        return {
            key: [ModelCost.from_dict(c) for c in costs] for key, costs in data["costs"].items()
        }
    except (TypeError, KeyError):
        return {}


def ensure_costs(
    out: Path,
    todo: dict[str, ToMeasure],
    *,
    warmup: int,
    repeats: int,
    cpu: int | None,
) -> dict[str, list[ModelCost]]:
    """Costs of every key in ``todo``: cached ones reused, the others timed together."""
    costs = load_costs(out)
    missing = [k for k in todo if k not in costs]
    if missing:
        entries = [(k, todo[k].model, todo[k].seismic, todo[k].raw) for k in missing]
        costs.update(measure_costs(entries, warmup=warmup, repeats=repeats, cpu=cpu))
        data = {
            "version": COSTS_VERSION,
            "costs": {k: [c.as_dict() for c in v] for k, v in costs.items()},
        }
        (out / COSTS_NAME).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return costs


def with_payloads(costs: Sequence[ModelCost], sizes: dict[str, tuple[int, ...]]) -> list[ModelCost]:
    """``costs`` with data-dependent payload sizes (zlib formats) replaced by ``sizes[raw_format]``."""
    return [
        replace(c, payload_bytes=sizes[c.raw_format]) if c.raw_format in sizes else c for c in costs
    ]

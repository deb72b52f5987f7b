"""OpenFWI normalisation, exactly as its training code does it (docs/data.md, "Normalisation").

- seismic: ``sign(x) log1p(|x|)``, then min-max to ``[-1, 1]`` with the log of
  the dataset's ``data_min`` / ``data_max`` (:mod:`epic_zoo.data.catalog`);
- velocity: ``2 (v - 1500) / 3000 - 1`` in ``[-1, 1]`` (m/s in, unitless out).

All functions accept numpy arrays or torch tensors and return the same kind.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from epic_zoo.data.catalog import get_dataset
from epic_zoo.data.geometry import V_MAX, V_MIN

ArrayLike = np.ndarray | torch.Tensor


def _log(x: ArrayLike) -> ArrayLike:
    if isinstance(x, torch.Tensor):
        return torch.sign(x) * torch.log1p(torch.abs(x))
    return np.sign(x) * np.log1p(np.abs(x))


def _exp(y: ArrayLike) -> ArrayLike:
    if isinstance(y, torch.Tensor):
        return torch.sign(y) * torch.expm1(torch.abs(y))
    return np.sign(y) * np.expm1(np.abs(y))


def log_range(dataset: str) -> tuple[float, float]:
    """``(log_min, log_max)``: the dataset's raw min/max after the signed log."""
    info = get_dataset(dataset)
    return _log_bounds(info.data_min, info.data_max)


def _log_bounds(data_min: float, data_max: float) -> tuple[float, float]:
    lo = math.copysign(math.log1p(abs(data_min)), data_min)
    hi = math.copysign(math.log1p(abs(data_max)), data_max)
    return lo, hi


def normalize_seismic(seismic: ArrayLike, dataset: str) -> ArrayLike:
    """Raw records (any shape) -> normalised records in ``[-1, 1]`` (inside the stats' range)."""
    lo, hi = log_range(dataset)
    return 2.0 * (_log(seismic) - lo) / (hi - lo) - 1.0


def normalize_seismic_in(seismic: ArrayLike, data_min: float, data_max: float) -> ArrayLike:
    """:func:`normalize_seismic` with the raw range given (an input contract's ``seismic_min/max``)."""
    lo, hi = _log_bounds(data_min, data_max)
    return 2.0 * (_log(seismic) - lo) / (hi - lo) - 1.0


def denormalize_seismic(seismic: ArrayLike, dataset: str) -> ArrayLike:
    """Inverse of :func:`normalize_seismic`."""
    lo, hi = log_range(dataset)
    return _exp((seismic + 1.0) * 0.5 * (hi - lo) + lo)


def normalize_velocity(velocity: ArrayLike) -> ArrayLike:
    """Velocity in m/s -> ``[-1, 1]``."""
    return 2.0 * (velocity - V_MIN) / (V_MAX - V_MIN) - 1.0


def denormalize_velocity(velocity: ArrayLike) -> ArrayLike:
    """``[-1, 1]`` -> velocity in m/s."""
    return (velocity + 1.0) * 0.5 * (V_MAX - V_MIN) + V_MIN


VELOCITY_SCALE_MS: float = (V_MAX - V_MIN) / 2.0
"""Multiply an error on the normalised scale by this to get m/s (1500)."""

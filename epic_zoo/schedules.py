"""Warmup-stable-decay (WSD) learning-rate factors and the steps they are sized from.

WSD (Hu et al. 2024, "MiniCPM", arXiv:2404.06395; Hägele et al. 2024,
"Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations",
arXiv:2405.18392) keeps the learning rate at its peak after the warm-up and
decays it only over the last ``decay_steps`` optimiser steps. A checkpoint
taken in the stable phase can therefore be "branched": a short decay from it
gives a finished model at that budget, so one long run yields a whole scaling
curve (:mod:`epic_zoo.branch`).

Pure functions of integers (no torch, no Lightning): the task's
:class:`~epic_zoo.tasks.inversion.LRSchedule` multiplies them with its warm-up.
"""

from __future__ import annotations

import math

WSD_SHAPES: tuple[str, ...] = ("linear", "1-sqrt")
"""Decay shapes: ``linear`` (1 -> 0) and ``1-sqrt`` (``1 - sqrt(progress)``, Hägele et al.)."""


def decay_steps_for(total_steps: int, decay_fraction: float, decay_steps: int = 0) -> int:
    """Optimiser steps of the decay phase: the larger of ``decay_steps`` and ``decay_fraction x total``.

    Raises ``ValueError`` naming the option when the fraction is outside
    ``[0, 1]`` or the decay would be longer than the run.
    """
    fraction = float(decay_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(
            f"task.decay_fraction={decay_fraction} must be in [0, 1] (share of the run's "
            "optimiser steps spent decaying; e.g. 0.2)"
        )
    steps = max(int(decay_steps), round(fraction * int(total_steps)))
    if steps > int(total_steps):
        raise ValueError(
            f"task.decay_steps={decay_steps} is longer than the run ({total_steps} optimiser "
            "steps); lower it or use task.decay_fraction"
        )
    return steps


def decay_start(total_steps: int, decay_steps: int) -> int:
    """First optimiser step of the decay phase (the stable phase is ``[warm-up end, decay_start)``)."""
    return int(total_steps) - int(decay_steps)


def wsd_factor(step: int, total_steps: int, decay_steps: int, shape: str = "linear") -> float:
    """Learning-rate factor of optimiser step ``step`` (0-based) after the warm-up: 1, then decay.

    The decay runs over steps ``decay_start .. total_steps - 1`` and reaches 0
    at ``total_steps``; ``decay_steps = 0`` keeps 1 throughout.
    """
    if shape not in WSD_SHAPES:
        raise ValueError(f"unknown decay shape {shape!r}; choose one of: {', '.join(WSD_SHAPES)}")
    start = decay_start(total_steps, decay_steps)
    if decay_steps <= 0 or step < start:
        return 1.0
    progress = min(1.0, (int(step) - start) / int(decay_steps))
    return 1.0 - progress if shape == "linear" else 1.0 - math.sqrt(progress)

"""Timing and FLOP counting on this machine, made to survive a busy host.

- :func:`time_interleaved` times several calls in rounds (each call once per
  round, the order rotating), so that a change in the host's load during the
  run slows every call alike; a reference conv stack (:func:`reference_probe`)
  runs in every round, and each call's time is expressed per round as a
  multiple of the probe's (:func:`probe_relative`).
- :func:`pinned` runs a block with one torch thread on one CPU core.
- :func:`count_flops` counts with autograd enabled and scaled dot-product
  attention forced to its math backend: in inference mode
  ``nn.TransformerEncoderLayer`` / ``nn.MultiheadAttention`` take a fused
  fast path, and the CPU's fused attention kernel, whose FLOPs
  :class:`~torch.utils.flop_counter.FlopCounterMode` does not see (about a
  fifth of EPIC's decoder).

Stable figures: FLOP counts (deterministic). Less stable: wall times, even as
probe multiples from the fastest rounds (they still move with cache and
frequency effects); their per-round spread is reported beside them.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

PROBE: str = "__probe__"
"""Key of the reference probe in :func:`time_interleaved`'s results."""


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, restoring the previous value."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run the block with one torch thread, on core ``cpu`` if given (Linux affinity).

    The previous thread count and affinity are restored afterwards.
    """
    affinity = getattr(os, "sched_getaffinity", None)
    previous = affinity(0) if affinity and cpu is not None else None
    if previous is not None and cpu not in previous:
        raise ValueError(f"cpu={cpu} is not one this process may use ({sorted(previous)})")
    with torch_threads(1):
        if previous is not None:
            os.sched_setaffinity(0, {cpu})
        try:
            yield
        finally:
            if previous is not None:
                os.sched_setaffinity(0, previous)


def default_cpu() -> int | None:
    """The highest-numbered core this process may use (``None`` where affinity is unsupported)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return max(affinity(0)) if affinity else None


def time_call(
    fn: Callable[[], object], *, warmup: int = 2, repeats: int = 5, threads: int = 1
) -> float:
    """Median wall time of ``fn()`` in s, after ``warmup`` untimed calls, with ``threads`` torch threads."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats={repeats} must be >= 1 and warmup={warmup} >= 0")
    with torch_threads(threads), torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_interleaved(
    calls: Mapping[str, Callable[[], object]], *, warmup: int = 2, repeats: int = 15
) -> dict[str, list[float]]:
    """Wall times in s of every call, ``repeats`` rounds of one call each, order rotating.

    Each call runs ``warmup`` times untimed first. Run it inside :func:`pinned`.
    Returns ``{key: [time of round 0, round 1, ...]}``.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats={repeats} must be >= 1 and warmup={warmup} >= 0")
    keys = list(calls)
    times: dict[str, list[float]] = {k: [] for k in keys}
    with torch.inference_mode():
        for key in keys:
            for _ in range(warmup):
                calls[key]()
        for r in range(repeats):
            shift = r % len(keys)
            for key in keys[shift:] + keys[:shift]:
                start = time.perf_counter()
                calls[key]()
                times[key].append(time.perf_counter() - start)
    return times


@dataclass(frozen=True)
class Relative:
    """A call's time as a multiple of the probe's, over the rounds of :func:`time_interleaved`.

    Attributes:
        fastest: the call's fastest round over the probe's fastest round. On a
            shared machine the noise is additive (preemption, cache eviction),
            so the fastest rounds are the steadiest estimate (timeit's
            convention); this is the figure the simulator uses.
        median: median over rounds of ``t_call / t_probe`` (same round).
        spread: interquartile range of that per-round ratio divided by its
            median (0 = steady): how loaded the machine was.
    """

    fastest: float
    median: float
    spread: float


def probe_relative(times: Mapping[str, list[float]], key: str) -> Relative:
    """``times[key]`` relative to the probe: fastest over fastest, and per round."""
    call, probe = np.asarray(times[key]), np.asarray(times[PROBE])
    ratio = call / probe
    q25, med, q75 = np.percentile(ratio, [25, 50, 75])
    spread = float((q75 - q25) / med) if med > 0 else 0.0
    return Relative(float(call.min() / probe.min()), float(med), spread)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one ``fn()`` call (a multiply-add counts 2), from :class:`FlopCounterMode`.

    Counted with autograd enabled and the math attention backend, so attention
    runs unfused and every matmul is seen; the outputs are discarded.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with (
        torch.enable_grad(),
        sdpa_kernel(SDPBackend.MATH),
        FlopCounterMode(display=False) as counter,
    ):
        fn()
    return int(counter.get_total_flops())


def reference_probe() -> tuple[Callable[[], object], int]:
    """Small conv stack (16 -> 64 channels, 64x64 -> 32x32) at batch 1: ``(call, FLOPs)``."""
    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1),
    ).eval()
    x = torch.randn(1, 16, 64, 64, generator=gen)

    def call() -> object:
        return net(x)

    return call, count_flops(call)


def host_reference_flops(repeats: int = 9) -> float:
    """FLOP/s this machine sustains now on small convs at batch 1 and 1 thread."""
    call, flops = reference_probe()
    return flops / time_call(call, warmup=3, repeats=repeats)

"""Timing and FLOP counting on this machine, made to survive a busy host.

- :func:`time_interleaved` times several calls in rounds (each call once per
  round, the order rotating) and runs a reference conv stack (the *probe*,
  :func:`reference_probe`) right before every call. Each call's time is then
  read per round as a multiple of the probe run just before it
  (:func:`probe_relative`), so a change in the host's speed during the run
  slows both alike and cancels.
- Times are the calling thread's **CPU time** (``time.thread_time``), not wall
  time: while another process holds the core, the thread is not running and
  its clock stops. On a shared machine that removes preemption, the largest
  noise in wall times; what is left (caches, memory bandwidth shared with
  other processes) is much smaller and symmetric, so the **median** over
  rounds is the estimate, with the interquartile spread beside it.
- :func:`pinned` runs a block with one torch thread on one CPU core: one
  thread does all the work, so its CPU time is the work's.
- :func:`count_flops` counts with autograd enabled and scaled dot-product
  attention forced to its math backend: in inference mode
  ``nn.TransformerEncoderLayer`` / ``nn.MultiheadAttention`` take a fused
  fast path, and the CPU's fused attention kernel, whose FLOPs
  :class:`~torch.utils.flop_counter.FlopCounterMode` does not see (about a
  fifth of EPIC's decoder).

Stable figures: FLOP counts (deterministic). Measured: CPU times as probe
multiples (steady to a few per cent between runs on this 2-core machine,
not bit-stable); their per-round spread is reported beside them.
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

CLOCK: Callable[[], float] = time.thread_time
"""Clock of :func:`time_interleaved`: CPU seconds of the calling thread."""
CLOCK_NAME: str = "thread CPU time"


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
    fn: Callable[[], object],
    *,
    warmup: int = 2,
    repeats: int = 5,
    threads: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median time of ``fn()`` in s (wall by default), after ``warmup`` untimed calls, with
    ``threads`` torch threads."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats={repeats} must be >= 1 and warmup={warmup} >= 0")
    with torch_threads(threads), torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            start = clock()
            fn()
            times.append(clock() - start)
    return statistics.median(times)


@dataclass(frozen=True)
class Timings:
    """What :func:`time_interleaved` measured, CPU seconds per round.

    Attributes:
        calls: ``{key: [time of round 0, round 1, ...]}``.
        probes: ``{key: [...]}``, the probe's time right before each of those calls.
    """

    calls: dict[str, list[float]]
    probes: dict[str, list[float]]

    def probe_seconds(self) -> float:
        """Median of every probe run, s: this machine's speed on the probe during the timings."""
        return float(np.median(np.concatenate([np.asarray(v) for v in self.probes.values()])))


def time_interleaved(
    calls: Mapping[str, Callable[[], object]],
    probe: Callable[[], object],
    *,
    warmup: int = 2,
    repeats: int = 60,
    clock: Callable[[], float] = CLOCK,
) -> Timings:
    """Time every call once per round, ``repeats`` rounds, order rotating, ``probe`` before each.

    Every call and the probe first run ``warmup`` times untimed. Run it inside
    :func:`pinned` (one thread: the thread's CPU time is the work's).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats={repeats} must be >= 1 and warmup={warmup} >= 0")
    keys = list(calls)
    out = Timings({k: [] for k in keys}, {k: [] for k in keys})
    with torch.inference_mode():
        for fn in (probe, *calls.values()):
            for _ in range(warmup):
                fn()
        for r in range(repeats):
            shift = r % len(keys)
            for key in keys[shift:] + keys[:shift]:
                start = clock()
                probe()
                middle = clock()
                calls[key]()
                end = clock()
                out.probes[key].append(middle - start)
                out.calls[key].append(end - middle)
    return out


@dataclass(frozen=True)
class Relative:
    """A call's time as a multiple of the probe's, over the rounds of :func:`time_interleaved`.

    Attributes:
        median: median over rounds of ``t_call / t_probe`` (the probe run just
            before the call): the figure the simulator uses.
        spread: interquartile range of that per-round ratio divided by its
            median (0 = steady): how disturbed the timings were.
    """

    median: float
    spread: float


def probe_relative(timings: Timings, key: str) -> Relative:
    """``timings.calls[key]`` per round relative to the probe run before it."""
    ratio = np.asarray(timings.calls[key]) / np.asarray(timings.probes[key])
    q25, med, q75 = np.percentile(ratio, [25, 50, 75])
    spread = float((q75 - q25) / med) if med > 0 else 0.0
    return Relative(float(med), spread)


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
    """Small conv stack (16 -> 64 channels, 64x64 -> 32x32) at batch 1: ``(call, FLOPs)``.

    Small convs at batch 1 are what the device profiles' ``effective_flops``
    describe (:mod:`epic_zoo.hardware.profiles`), so this probe's speed is the
    host's counterpart of that figure.
    """
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
    """FLOP/s this machine sustains now on the probe (batch 1, 1 thread, CPU time)."""
    call, flops = reference_probe()
    return flops / time_call(call, warmup=3, repeats=repeats, clock=CLOCK)

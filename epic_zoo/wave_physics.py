"""Wave-equation consistency: a data-misfit metric, a physics loss and FWI refinement.

A velocity map explains the recorded waves if the records simulated from it
(:func:`epic_zoo.data.forward.simulate`, deepwave backend, differentiable)
match the observed ones. Three uses:

- :func:`data_misfit`: relative L2 misfit ``||d_sim - d_obs|| / ||d_obs||`` of
  raw (un-normalised) records, per sample and per end device (the receivers
  of :func:`~epic_zoo.data.geometry.receiver_split`). A metric: no gradients.
- :func:`physics_loss`: the squared relative misfit on a subset of shots and
  time samples, differentiable with respect to the velocity. Training
  (:class:`epic_zoo.tasks.physics_inversion.PhysicsInversionTask`) adds it to, or
  (unlabelled samples) uses it instead of, the supervised loss.
- :func:`refine`: plain projected Adam on the velocity in m/s (optional
  total-variation regularisation), kept as the simple reference. The
  refinement ``evaluate --refine`` runs is :func:`epic_zoo.refine.refine_maps`
  (frequency continuation, L-BFGS, per-family priors, a default schedule).

Time sampling: stored records keep every ``data_time_stride``-th ms of the
1 ms simulation, sample ``j`` holding simulation sample ``j * data_time_stride``
(:func:`epic_zoo.data.generate.generate_split`). Simulations here always run at
the full 1 ms step (the grid is not stable at coarser steps) and are
decimated the same way before comparing. The cost is set by the number of
maps times shots times simulated steps ``nt``; comparing fewer of the
simulated samples (``time_stride``) changes which samples count, not the cost.

Comparison spaces of :func:`physics_loss`:

- ``"log"`` (default): on ``sign(d) log(1 + |d|)`` (the compression of the
  OpenFWI normalisation, docs/data.md), so reflections count next
  to the much stronger direct wave, as in the data the networks see;
- ``"raw"``: on the amplitudes themselves, the classic FWI least-squares misfit.

Units: velocity m/s ``[N, 1, depth z=70, offset x=70]`` (``[N, 70, 70]``
accepted); records ``[N, shot=5, time, receiver=70]`` raw amplitude as
:func:`~epic_zoo.data.forward.simulate` makes them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from epic_zoo.data.forward import simulate, validate_velocity
from epic_zoo.data.geometry import (
    DEFAULT_NUM_DEVICES,
    NUM_RECEIVERS,
    NUM_SOURCES,
    NX,
    NZ,
    V_MAX,
    V_MIN,
    receiver_split,
)
from epic_zoo.data.timeaxis import time_samples_for

Space = Literal["log", "raw"]
SPACES: tuple[str, ...] = ("log", "raw")
ArrayLike = np.ndarray | torch.Tensor

REFINE_LR_MS: float = 5.0
"""Default Adam step of :func:`refine`, m/s per iteration."""


# --------------------------------------------------------------------- helpers
def signed_log(seismic: torch.Tensor) -> torch.Tensor:
    """``sign(d) log(1 + |d|)`` elementwise, with derivative ``1 / (1 + |d|)`` everywhere.

    The same values as the OpenFWI compression; unlike ``sign(d) * log1p(|d|)``
    in autograd, the gradient at ``d = 0`` is 1, not 0, so a simulated record
    that is still silent where the observed one has an arrival gets a gradient.
    """
    positive = torch.log1p(seismic.clamp(min=0.0))
    negative = -torch.log1p((-seismic).clamp(min=0.0))
    return torch.where(seismic >= 0, positive, negative)


def _as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, torch.Tensor):
        return x
    raise ValueError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")


def _check_records(seismic: torch.Tensor, num_maps: int, name: str = "seismic") -> None:
    if seismic.ndim != 4 or seismic.shape[1] != NUM_SOURCES or seismic.shape[3] != NUM_RECEIVERS:
        raise ValueError(
            f"{name} must be raw records [N, {NUM_SOURCES}, time, {NUM_RECEIVERS}] "
            f"(sample, shot, time, receiver), got {list(seismic.shape)}"
        )
    if seismic.shape[0] != num_maps:
        raise ValueError(
            f"{name} holds {seismic.shape[0]} samples but velocity holds {num_maps}; "
            "pass one record per velocity map"
        )


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise ValueError(f"space={space!r} is not one of {SPACES}")


def _check_shots(shots: Sequence[int] | None) -> list[int]:
    if shots is None:
        return list(range(NUM_SOURCES))
    out = [int(s) for s in shots]
    if not out or any(not 0 <= s < NUM_SOURCES for s in out) or len(set(out)) != len(out):
        raise ValueError(
            f"shots={list(shots)!r} must be distinct source indices in 0..{NUM_SOURCES - 1}"
        )
    return out


@dataclass(frozen=True)
class TimeSubset:
    """Which observed samples are compared and how to simulate them.

    Attributes:
        observed: slice of the observed records' time axis to compare.
        nt: simulation steps (1 ms each) that cover those samples.
        stride: take every ``stride``-th simulated sample (ms between compared samples).
    """

    observed: slice
    nt: int
    stride: int

    @classmethod
    def make(
        cls,
        observed_samples: int,
        data_time_stride: int = 1,
        time_stride: int | None = None,
        nt: int | None = None,
    ) -> TimeSubset:
        """Subset of ``observed_samples`` records stored every ``data_time_stride`` ms.

        Args:
            observed_samples: time samples of the observed records.
            data_time_stride: ms between stored samples (the data's time stride).
            time_stride: ms between compared samples, a multiple of
                ``data_time_stride``; ``None`` compares every stored sample.
            nt: compare only samples before ``nt`` ms; ``None`` keeps all.

        Raises:
            ValueError: a stride that is not a positive multiple of the data's,
                or a window that holds no sample.
        """
        data_time_stride = int(data_time_stride)
        if data_time_stride < 1:
            raise ValueError(f"data_time_stride={data_time_stride} must be at least 1 (ms)")
        stride = data_time_stride if time_stride is None else int(time_stride)
        if stride < 1 or stride % data_time_stride:
            raise ValueError(
                f"time_stride={time_stride} must be a positive multiple of the data's "
                f"time stride {data_time_stride} ms (records hold every "
                f"{data_time_stride}-th ms); use e.g. {data_time_stride} or {2 * data_time_stride}"
            )
        available = (int(observed_samples) - 1) * data_time_stride + 1
        window = available if nt is None else min(int(nt), available)
        if window < 1:
            raise ValueError(f"nt={nt} leaves no time sample to compare; use nt >= 1")
        count = time_samples_for(stride, window)
        step = stride // data_time_stride
        return cls(slice(0, count * step, step), (count - 1) * stride + 1, stride)


def simulate_subset(
    velocity: torch.Tensor,
    subset: TimeSubset,
    shots: Sequence[int] | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Records of ``velocity`` (m/s) on a time subset: ``[N, len(shots), count, 70]``.

    Differentiable when ``velocity.requires_grad`` (deepwave backend).
    """
    records = simulate(velocity, shots=_check_shots(shots), nt=subset.nt, batch_size=batch_size)
    return records[:, :, :: subset.stride]


def relative_misfit(
    simulated: torch.Tensor, observed: torch.Tensor, receivers: Sequence[int] | None = None
) -> torch.Tensor:
    """``||simulated - observed|| / ||observed||`` per sample, ``[N]`` float64 (unitless).

    Args:
        simulated, observed: ``[N, shot, time, receiver]`` records of the same shape.
        receivers: receiver indices to compare (default all).
    """
    if simulated.shape != observed.shape:
        raise ValueError(
            f"simulated {list(simulated.shape)} and observed {list(observed.shape)} records "
            "must have the same [N, shot, time, receiver] shape"
        )
    sim, obs = simulated.double(), observed.double()
    if receivers is not None:
        index = torch.as_tensor(np.asarray(receivers), device=sim.device)
        sim, obs = sim.index_select(-1, index), obs.index_select(-1, index)
    diff = (sim - obs).flatten(1).norm(dim=1)
    return diff / obs.flatten(1).norm(dim=1).clamp_min(torch.finfo(torch.float64).tiny)


# ---------------------------------------------------------------------- metric
@dataclass(frozen=True)
class Misfit:
    """Relative L2 data misfit (unitless; 0.1 = 10 %).

    Attributes:
        sample: ``[N]`` over all shots, time samples and receivers.
        device: ``[N, D]`` over the receivers of each of the ``D`` end devices.
    """

    sample: torch.Tensor
    device: torch.Tensor


@torch.no_grad()
def data_misfit(
    velocity: ArrayLike,
    seismic: ArrayLike,
    *,
    data_time_stride: int = 1,
    num_devices: int = DEFAULT_NUM_DEVICES,
    shots: Sequence[int] | None = None,
    nt: int | None = None,
    batch_size: int = 16,
) -> Misfit:
    """How well velocity maps explain observed records: relative L2 misfit per sample and device.

    Records are simulated from ``velocity`` (deepwave, all 5 shots unless
    ``shots``), decimated like the observed records and compared with them.

    Args:
        velocity: ``[N, 1, 70, 70]`` or ``[N, 70, 70]`` m/s within 1500..4500
            (``denormalize_velocity`` of a model's output).
        seismic: observed raw records ``[N, 5, T, 70]`` (un-normalised:
            ``denormalize_seismic`` of a batch, or a store's samples), one
            sample every ``data_time_stride`` ms.
        data_time_stride: ms between the observed samples (the data's time stride).
        num_devices: end devices the 70 receivers are split over.
        shots: source indices to compare (default all 5).
        nt: compare only the first ``nt`` ms (default the whole record).
        batch_size: maps per deepwave call.

    Returns:
        :class:`Misfit` of float64 tensors on the CPU.
    """
    maps = validate_velocity(_as_tensor(velocity, "velocity"))
    observed = _as_tensor(seismic, "seismic")
    _check_records(observed, maps.shape[0])
    shot_list = _check_shots(shots)
    subset = TimeSubset.make(observed.shape[2], data_time_stride, None, nt)
    observed = observed[:, shot_list, subset.observed].to(maps.device, torch.float32)
    simulated = simulate_subset(maps.detach().float(), subset, shot_list, batch_size)
    devices = receiver_split(num_devices)
    per_device = torch.stack([relative_misfit(simulated, observed, r) for r in devices], dim=1)
    return Misfit(relative_misfit(simulated, observed).cpu(), per_device.cpu())


# ------------------------------------------------------------------------ loss
def physics_loss(
    velocity: torch.Tensor,
    seismic: torch.Tensor,
    *,
    data_time_stride: int = 1,
    shots: Sequence[int] | None = (2,),
    time_stride: int | None = None,
    nt: int | None = None,
    space: Space = "log",
    batch_size: int = 64,
) -> torch.Tensor:
    """Squared relative misfit per sample between simulated and observed records, ``[N]``.

    ``||f(d_sim) - f(d_obs)||^2 / ||f(d_obs)||^2`` with ``f`` = :func:`signed_log`
    (``space="log"``) or the identity (``"raw"``), over the chosen shots and
    time samples; differentiable with respect to ``velocity`` through deepwave.
    Cost: about ``N * len(shots) * nt`` propagator steps forward and twice
    that backward.

    Args:
        velocity: ``[N, 1, 70, 70]`` or ``[N, 70, 70]`` m/s within 1500..4500.
        seismic: observed raw records ``[N, 5, T, 70]``, a sample every
            ``data_time_stride`` ms (no gradient flows into them).
        data_time_stride: ms between the observed samples.
        shots: source indices simulated (default the centre shot; ``None`` = all 5).
        time_stride: ms between compared samples, a multiple of
            ``data_time_stride`` (default every stored sample).
        nt: simulate and compare only the first ``nt`` ms (default the whole record).
        space: ``"log"`` or ``"raw"`` (see the module docstring).
        batch_size: maps per deepwave call.

    Returns:
        ``[N]`` float32 tensor on ``velocity``'s device.
    """
    _check_space(space)
    maps = validate_velocity(velocity)
    _check_records(seismic, maps.shape[0])
    shot_list = _check_shots(shots)
    subset = TimeSubset.make(seismic.shape[2], data_time_stride, time_stride, nt)
    observed = seismic[:, shot_list, subset.observed].detach().to(maps.device, torch.float32)
    return _squared_misfit(simulate_subset(maps, subset, shot_list, batch_size), observed, space)


def _squared_misfit(simulated: torch.Tensor, observed: torch.Tensor, space: str) -> torch.Tensor:
    """``||f(simulated) - f(observed)||^2 / ||f(observed)||^2`` per sample, ``[N]``."""
    if space == "log":
        simulated, observed = signed_log(simulated), signed_log(observed)
    residual = (simulated - observed).flatten(1).square().sum(1)
    return residual / observed.flatten(1).square().sum(1).clamp_min(torch.finfo(torch.float32).tiny)


def total_variation(velocity: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation per map, ``[N]``: mean of ``|dv/dz| + |dv/dx|``.

    Differences between neighbouring cells, in units of the velocity range
    ``V_MAX - V_MIN`` (3000 m/s), so the value is unitless (0 for a constant map).

    Args:
        velocity: ``[N, 1, 70, 70]`` or ``[N, 70, 70]`` m/s.
    """
    maps = velocity.reshape(velocity.shape[0], NZ, NX) / (V_MAX - V_MIN)
    dz = (maps[:, 1:] - maps[:, :-1]).abs().flatten(1).sum(1)
    dx = (maps[:, :, 1:] - maps[:, :, :-1]).abs().flatten(1).sum(1)
    return (dz + dx) / (NZ * NX)


# ------------------------------------------------------------------ refinement
@dataclass(frozen=True)
class Refinement:
    """Result of :func:`refine`.

    Attributes:
        velocity: refined maps ``[N, 1, 70, 70]`` m/s (CPU, float32).
        misfit: ``[iterations + 1, N]`` raw relative L2 misfit on the compared
            shots and samples: row 0 before the first update, row ``i`` after
            ``i`` updates (float64).
        seconds: wall-clock time of the whole refinement.
    """

    velocity: torch.Tensor
    misfit: torch.Tensor
    seconds: float


def refine(
    velocity: ArrayLike,
    seismic: ArrayLike,
    iterations: int,
    *,
    data_time_stride: int = 1,
    lr: float = REFINE_LR_MS,
    tv_weight: float = 0.0,
    shots: Sequence[int] | None = None,
    time_stride: int | None = None,
    nt: int | None = None,
    space: Space = "raw",
    batch_size: int = 4,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> Refinement:
    """Full-waveform inversion from a starting map: ``iterations`` Adam steps through deepwave.

    Minimises, for each map independently, :func:`physics_loss` ``+ tv_weight *``
    :func:`total_variation` with Adam on the velocity in m/s; after every
    step the velocity is clipped to 1500..4500 m/s (projected gradient).

    Args:
        velocity: starting maps ``[N, 1, 70, 70]`` or ``[N, 70, 70]`` m/s,
            e.g. ``denormalize_velocity(model(seismic_normalised))``.
        seismic: observed raw records ``[N, 5, T, 70]``, a sample every
            ``data_time_stride`` ms (``denormalize_seismic`` of normalised ones).
        iterations: Adam steps (0 only measures the starting misfit).
        data_time_stride: ms between the observed samples.
        lr: Adam step size, m/s (each cell moves by about this much per step).
        tv_weight: weight of the total-variation term (0 = none).
        shots, time_stride, nt, space: the loss's subset and space, as in
            :func:`physics_loss` (default: all shots, every stored sample,
            the whole record, raw amplitudes: on a few layered test maps,
            10 steps in log space lowered the misfit as much but moved the
            map further from the truth).
        batch_size: maps refined together (memory: ~50 MB per map, shot and
            1000 simulated steps).
        device: where to compute (default: ``velocity``'s device, CPU for numpy).
        progress: show a tqdm progress bar over iterations.

    Returns:
        :class:`Refinement` with the refined maps, the misfit history and the seconds taken.
    """
    started = time.perf_counter()
    if int(iterations) != iterations or iterations < 0:
        raise ValueError(f"iterations={iterations!r} must be a whole number >= 0")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr={lr!r} must be a positive step size in m/s")
    if not (math.isfinite(tv_weight) and tv_weight >= 0):
        raise ValueError(f"tv_weight={tv_weight!r} must be >= 0")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
    _check_space(space)
    maps = validate_velocity(_as_tensor(velocity, "velocity")).detach()
    observed = _as_tensor(seismic, "seismic")
    _check_records(observed, maps.shape[0])
    shot_list = _check_shots(shots)
    subset = TimeSubset.make(observed.shape[2], data_time_stride, time_stride, nt)
    device = maps.device if device is None else torch.device(device)
    maps = maps.to(device, torch.float32).clamp(V_MIN, V_MAX)
    observed = observed[:, shot_list, subset.observed].to(device, torch.float32)

    refined, history = [], []
    bar = tqdm(
        total=int(iterations) * maps.shape[0], desc="refine", unit="map-step", disable=not progress
    )
    with bar, torch.enable_grad():
        for start in range(0, maps.shape[0], int(batch_size)):
            chunk = maps[start : start + int(batch_size)].clone().requires_grad_()
            target = observed[start : start + int(batch_size)]
            optimizer = torch.optim.Adam([chunk], lr=float(lr))
            rows = []
            for _ in range(int(iterations)):
                optimizer.zero_grad(set_to_none=True)
                simulated = simulate_subset(chunk, subset, shot_list)
                rows.append(relative_misfit(simulated.detach(), target))
                loss = _squared_misfit(simulated, target, space)
                if tv_weight:
                    loss = loss + tv_weight * total_variation(chunk)
                loss.sum().backward()  # a sum: each map's update is its own
                optimizer.step()
                with torch.no_grad():
                    chunk.clamp_(V_MIN, V_MAX)
                bar.update(chunk.shape[0])
            with torch.no_grad():
                rows.append(
                    relative_misfit(simulate_subset(chunk.detach(), subset, shot_list), target)
                )
            history.append(torch.stack(rows).cpu())
            refined.append(chunk.detach().cpu())
    if not refined:
        return Refinement(
            torch.zeros(0, 1, NZ, NX),
            torch.zeros(int(iterations) + 1, 0, dtype=torch.float64),
            time.perf_counter() - started,
        )
    return Refinement(
        torch.cat(refined)[:, None], torch.cat(history, dim=1), time.perf_counter() - started
    )

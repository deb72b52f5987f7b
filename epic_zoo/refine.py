"""Full-waveform refinement of a network's map: a default schedule that converges on a CPU.

The network's map is the prior; FWI through deepwave makes it fit the
records. :func:`refine_maps` runs a :class:`Schedule` (default
:data:`DEFAULT_SCHEDULE`, chosen on maps of a tuning seed and then frozen) of
:class:`Stage` s:

- **frequency continuation**: each stage compares records low-passed to its
  cutoff (:func:`lowpass`, zero-phase, the same filter on simulated and
  observed records; a linear propagator makes that the same as low-passing
  the source), lowest first, the full band last; low stages compare every
  few ms only (the filter leaves nothing above Nyquist of that sampling);
- **bounded velocity** (:class:`BoundedVelocity`): a sigmoid over a range
  5 % wider than 1500..4500 m/s, clipped to it with a pass-through gradient,
  so a cell at a bound still gets a gradient and can come back;
- **L-BFGS** (``torch.optim.LBFGS``, strong-Wolfe line search) restarted at
  each stage, stopped early when the stage's misfit stops falling;
- **reaching depth**: the update is preconditioned by depth (the parameter
  is ``m0 + w(z) p`` with ``w`` growing with depth, :func:`depth_weights`)
  and the misfit gains the records by time (``t ** time_gain``), so late,
  deep reflections are not drowned by the first arrivals;
- **a prior per family** (:func:`prior_for`): total variation along rows for
  flat layers (FlatVel), 2-D total variation for curved layers and faults,
  a smoothness prior for Style (:func:`row_tv`, :func:`tv_2d`, :func:`smoothness`);
- **dead traces** (all-zero observed traces) are left out of the misfit;
- **a noise-aware stop** (``Schedule.noise_stop``): the noise of each record
  is measured where no wave can have arrived yet (:func:`noise_variance`), and
  the full-band stage stops once the misfit is down to that noise
  (Morozov's discrepancy principle), so the map does not fit the noise. On
  clean recipe-port records the window holds only the propagators' residue
  (a noise level of 5e-4 to 1.3e-3 as a relative misfit), and every clean
  map measured ended at least 3x above the stop's threshold.

Maps are refined together in batches (the losses are normalised per map and
summed, so the line search is shared within a batch).

Units: velocity m/s ``[N, 1, depth z=70, offset x=70]``; records raw amplitude
``[N, shot=5, time, receiver=70]`` with a sample every ``data_time_stride`` ms
(as :func:`epic_zoo.data.forward.simulate` or the OpenFWI recipe makes them).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from epic_zoo.data.catalog import get_dataset
from epic_zoo.data.forward import simulate, validate_velocity
from epic_zoo.data.geometry import (
    DT,
    DX,
    NUM_RECEIVERS,
    NUM_SOURCES,
    NX,
    NZ,
    PEAK_FREQUENCY,
    RECEIVER_COLUMNS,
    RICKER_SAMPLES,
    SOURCE_COLUMNS,
    V_MAX,
    V_MIN,
)

logger = logging.getLogger(__name__)

ArrayLike = np.ndarray | torch.Tensor
V_RANGE: float = V_MAX - V_MIN
"""Width of the velocity range, m/s (3000)."""
BOUND_MARGIN: float = 0.05 * V_RANGE
"""How far beyond 1500..4500 m/s the sigmoid reaches (m/s) before the clip."""

PRIORS: tuple[str, ...] = ("layered", "row_tv", "tv_2d", "smooth", "none")
"""``layered`` is a constraint, not a penalty: the map is one velocity per depth row."""


# ------------------------------------------------------------- parameterisation
class _PassThroughClamp(torch.autograd.Function):
    """Clamp forward, identity backward: a clipped cell keeps its gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, low: float, high: float) -> torch.Tensor:  # noqa: D102
        return x.clamp(low, high)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # noqa: D102
        return grad, None, None


@dataclass(frozen=True)
class BoundedVelocity:
    """Velocity ``V_MIN..V_MAX`` m/s from an unbounded parameter, with no stall at the bounds.

    ``v = clip(lo + (hi - lo) sigmoid(m))`` with ``lo = V_MIN - margin`` and
    ``hi = V_MAX + margin``; the clip passes the gradient through. At the
    bounds ``dv/dm`` is about ``margin`` m/s (150 by default), not 0.
    """

    margin: float = BOUND_MARGIN

    @property
    def low(self) -> float:
        return V_MIN - self.margin

    @property
    def high(self) -> float:
        return V_MAX + self.margin

    def to_parameter(self, velocity: torch.Tensor) -> torch.Tensor:
        """The parameter ``m`` of ``velocity`` (m/s, clipped to 1500..4500 first)."""
        fraction = (velocity.clamp(V_MIN, V_MAX) - self.low) / (self.high - self.low)
        return torch.logit(fraction.double()).to(velocity.dtype)

    def to_velocity(self, parameter: torch.Tensor) -> torch.Tensor:
        """Velocity m/s of ``parameter``, within 1500..4500, differentiable."""
        raw = self.low + (self.high - self.low) * torch.sigmoid(parameter)
        return _PassThroughClamp.apply(raw, V_MIN, V_MAX)


def depth_weights(power: float, nz: int = NZ) -> torch.Tensor:
    """Depth preconditioner ``w(z) = ((z + 1) / nz) ** power`` normalised to mean 1, ``[nz, 1]``.

    The update of a cell at depth ``z`` (grid row) is scaled by ``w(z)``
    (its gradient-descent step by ``w(z) ** 2``): 0 leaves the gradient as it is.
    """
    z = torch.arange(1, nz + 1, dtype=torch.float64) / nz
    w = z**power
    return (w / w.mean()).float()[:, None]


# ------------------------------------------------------------------- filtering
def lowpass(
    records: torch.Tensor, cutoff_hz: float | None, dt: float = DT, order: int = 8
) -> torch.Tensor:
    """Zero-phase low-pass along the time axis (``-2``) of ``[..., time, receiver]`` records.

    Butterworth magnitude ``1 / sqrt(1 + (f / cutoff) ** (2 order))`` applied in
    the frequency domain on a record zero-padded to twice its length (no
    wrap-around). ``cutoff_hz=None`` returns the records unchanged.
    Differentiable.

    Args:
        records: ``[..., T, R]`` float records, a sample every ``dt`` s.
        cutoff_hz: -3 dB frequency in Hz, or ``None`` for the full band.
        dt: sample interval in s.
        order: filter order (steepness).
    """
    if cutoff_hz is None:
        return records
    if not (math.isfinite(cutoff_hz) and 0 < cutoff_hz < 0.5 / dt):
        raise ValueError(
            f"cutoff_hz={cutoff_hz!r} must be between 0 and Nyquist {0.5 / dt:.0f} Hz (or None)"
        )
    length = records.shape[-2]
    spectrum = torch.fft.rfft(records, n=2 * length, dim=-2)
    freqs = torch.fft.rfftfreq(2 * length, d=dt).to(records.device)
    gain = 1.0 / torch.sqrt(1.0 + (freqs / cutoff_hz) ** (2 * order))
    filtered = torch.fft.irfft(spectrum * gain.to(spectrum.dtype)[:, None], n=2 * length, dim=-2)
    return filtered[..., :length, :]


# ---------------------------------------------------------------------- priors
def _scaled(velocity: torch.Tensor) -> torch.Tensor:
    return velocity.reshape(velocity.shape[0], NZ, NX) / V_RANGE


def _huber_abs(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``sqrt(x^2 + eps^2) - eps``: |x| made smooth at 0 for the line search."""
    return torch.sqrt(x.square() + eps * eps) - eps


def row_tv(velocity: torch.Tensor) -> torch.Tensor:
    """Total variation along rows (lateral differences), per map ``[N]``, unitless.

    Mean of ``|v[z, x+1] - v[z, x]| / 3000 m/s`` (smoothed at 0): zero for
    flat layers, whatever their depths and contrasts.
    """
    maps = _scaled(velocity)
    return _huber_abs(maps[:, :, 1:] - maps[:, :, :-1]).flatten(1).mean(1)


def tv_2d(velocity: torch.Tensor) -> torch.Tensor:
    """Isotropic 2-D total variation per map ``[N]``, unitless (velocity / 3000 m/s).

    Mean of ``sqrt(dz^2 + dx^2)`` (smoothed at 0): sharp edges cost their
    contrast only, so faults and curved interfaces survive.
    """
    maps = _scaled(velocity)
    dz = maps[:, 1:, :-1] - maps[:, :-1, :-1]
    dx = maps[:, :-1, 1:] - maps[:, :-1, :-1]
    return _huber_abs(torch.sqrt(dz.square() + dx.square() + 1e-12)).flatten(1).mean(1)


def smoothness(velocity: torch.Tensor) -> torch.Tensor:
    """Squared-gradient (Tikhonov) prior per map ``[N]``, unitless: mean ``dz^2 + dx^2``."""
    maps = _scaled(velocity)
    dz = (maps[:, 1:] - maps[:, :-1]).square().flatten(1).mean(1)
    dx = (maps[:, :, 1:] - maps[:, :, :-1]).square().flatten(1).mean(1)
    return dz + dx


PRIOR_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "row_tv": row_tv,
    "tv_2d": tv_2d,
    "smooth": smoothness,
}


def prior_for(dataset: str | None) -> str:
    """The prior of a dataset's velocity family: ``"row_tv"``, ``"tv_2d"`` or ``"smooth"``.

    FlatVel (flat layers) -> ``row_tv``; CurveVel, FlatFault, CurveFault -> ``tv_2d``;
    Style -> ``smooth``; unknown (``None``) -> ``tv_2d``.
    """
    if dataset is None:
        return "tv_2d"
    name = get_dataset(dataset).name
    if name.startswith("flatvel"):
        return "row_tv"
    if name.startswith("style"):
        return "smooth"
    return "tv_2d"


# -------------------------------------------------------------------- schedule
@dataclass(frozen=True)
class Stage:
    """One band of the frequency continuation.

    Attributes:
        cutoff_hz: low-pass cutoff in Hz of both records, ``None`` = full band.
        iterations: at most this many L-BFGS iterations.
        compare_stride_ms: compare every this-many ms (coarser at low frequency).
    """

    cutoff_hz: float | None
    iterations: int
    compare_stride_ms: int = 1


@dataclass(frozen=True)
class Schedule:
    """A refinement schedule (see the module docstring).

    Attributes:
        stages: frequency bands, lowest first.
        prior: ``"auto"`` (:func:`prior_for` of the dataset) or one of :data:`PRIORS`.
        prior_weights: weight of each prior relative to the normalised misfit.
        depth_power: exponent of :func:`depth_weights` (0: no preconditioning).
        time_gain: records are multiplied by ``(t / 1 s) ** time_gain`` in the misfit.
        mute_after_ms: ``None``, or leave the records after this time out of the misfit
            (a 50 ms cosine taper down to zero from here).
        history_size: L-BFGS memory.
        max_evaluations_per_iteration: line-search evaluations allowed per iteration.
        patience: stop a stage after this many iterations without a relative
            misfit drop of ``min_relative_drop``.
        min_relative_drop: see ``patience``.
        batch_size: maps refined together.
        noise_stop: stop the full-band stage once a batch's misfit is within this
            factor (in amplitude) of what the records' noise alone would leave
            (:func:`noise_variance`); ``None``: no such stop.
    """

    stages: tuple[Stage, ...] = (
        Stage(4.0, 12, 8),
        Stage(8.0, 12, 4),
        Stage(15.0, 20, 2),
        Stage(None, 30, 1),
    )
    prior: str = "auto"
    prior_weights: dict[str, float] = field(
        default_factory=lambda: {"row_tv": 0.1, "tv_2d": 0.05, "smooth": 0.5}
    )
    depth_power: float = 0.5
    time_gain: float = 1.0
    mute_after_ms: float | None = None
    history_size: int = 10
    max_evaluations_per_iteration: int = 4
    patience: int = 3
    min_relative_drop: float = 1e-3
    batch_size: int = 4
    noise_stop: float | None = 1.05

    def scaled(self, factor: float) -> Schedule:
        """The same schedule with ``factor`` times the iterations per stage (at least 1)."""
        stages = tuple(
            replace(s, iterations=max(1, round(s.iterations * factor))) for s in self.stages
        )
        return replace(self, stages=stages)

    def with_iterations(self, iterations: int) -> Schedule:
        """The schedule scaled so its stages hold about ``iterations`` iterations in all."""
        if int(iterations) != iterations or iterations < 1:
            raise ValueError(f"iterations={iterations!r} must be a whole number >= 1")
        return self.scaled(iterations / sum(s.iterations for s in self.stages))

    def as_dict(self) -> dict:
        """JSON-ready description (for records); ``mute_after_ms`` only when set.

        (A schedule without a mute describes itself as before the setting existed,
        so records made before it stay comparable and can be extended.)
        """
        out = asdict(self)
        if out["mute_after_ms"] is None:
            del out["mute_after_ms"]
        return out


DEFAULT_SCHEDULE = Schedule()
"""The frozen default (chosen on maps of a tuning seed; see benchmarks/refine_check.py).

v2 chose the priors, depth power and stages; v3 (the current) adds ``noise_stop=1.05``,
which did not act on any clean map measured under v2 (each ended >= 3x above its threshold)."""


# -------------------------------------------------------------------- misfit
def live_traces(records: torch.Tensor) -> torch.Tensor:
    """``[N, shot, 1, receiver]`` float mask, 0 where a trace is all zeros (a dead channel)."""
    return (records.abs().amax(dim=-2, keepdim=True) > 0).to(records.dtype)


SOURCE_ONSET_S: float = (RICKER_SAMPLES // 2) * DT - 3.03 / (math.pi * PEAK_FREQUENCY)
"""Time (s) of the source's first energy: the Ricker peaks at sample 73 and is below 1e-3
of its peak more than ``sqrt(9.2) / (pi f)`` = 64 ms before (``(1 - 2a) e^-a`` at ``a = 9.2``)."""


def pre_arrival_mask(
    samples: int, stride: int = 1, device: torch.device | None = None
) -> torch.Tensor:
    """``[shot, samples, receiver]`` bool, True where no wave can have reached the receiver yet.

    Nothing travels faster than 4500 m/s (the velocity bound), so a receiver
    ``offset`` m from the source records nothing before
    ``SOURCE_ONSET_S + offset / 4500`` s; only noise lives there. On clean
    recipe-port records these windows hold ~1e-8 of the energy.
    """
    t = torch.arange(samples, dtype=torch.float64, device=device) * (stride * DT)
    sources = torch.tensor(SOURCE_COLUMNS, dtype=torch.float64, device=device)[:, None]
    receivers = torch.tensor(RECEIVER_COLUMNS, dtype=torch.float64, device=device)[None, :]
    first = SOURCE_ONSET_S + (receivers - sources).abs() * DX / V_MAX  # [shot, receiver]
    return t[None, :, None] < first[:, None, :]


def noise_variance(observed: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Per map, the noise power per sample ``[N]`` (float64): mean square of the live traces'
    pre-arrival samples (:func:`pre_arrival_mask`); stationary noise assumed.

    On 20 dB band-limited noise it reads 0.93-0.98 of the true power (8 maps of 4 families).
    """
    window = pre_arrival_mask(observed.shape[2], stride, observed.device)[None]
    keep = window & (live_traces(observed) > 0)
    count = keep.flatten(1).sum(1).clamp_min(1)
    return (observed.double().square() * keep).flatten(1).sum(1) / count


def _noise_objective(
    observed: torch.Tensor, mask: torch.Tensor, stage: Stage, gain: torch.Tensor, stride: int
) -> torch.Tensor:
    """What the noise alone adds to a full-band stage's normalised misfit, per map ``[N]``."""
    step = max(1, stage.compare_stride_ms // stride)
    compared_gain = gain[::step, 0].double().square().sum()  # sum over compared samples of g(t)^2
    live = mask.flatten(1).sum(1).double()  # live traces (shots x receivers)
    target = _prepare(observed * mask, stage, gain, stride).double()
    norm = target.flatten(1).square().sum(1).clamp_min(1e-30)
    return noise_variance(observed, stride) * compared_gain * live / norm


def _prepare(records: torch.Tensor, stage: Stage, gain: torch.Tensor, stride: int) -> torch.Tensor:
    """Low-passed, time-gained records compared every ``stage.compare_stride_ms`` ms or so."""
    filtered = lowpass(records, stage.cutoff_hz, dt=stride * DT)
    return (filtered * gain)[:, :, :: max(1, stage.compare_stride_ms // stride)]


MUTE_TAPER_S = 0.05
"""Length of the cosine taper of ``Schedule.mute_after_ms`` (s)."""


def _time_gain(
    samples: int,
    stride: int,
    power: float,
    device: torch.device,
    mute_after_ms: float | None = None,
) -> torch.Tensor:
    """``(t / 1 s) ** power`` at the observed samples' times, ``[samples, 1]``, muted late if asked."""
    t = torch.arange(1, samples + 1, dtype=torch.float32, device=device) * (stride * DT)
    gain = t**power
    if mute_after_ms is not None:
        into = ((t - mute_after_ms / 1000.0) / MUTE_TAPER_S).clamp(0.0, 1.0)
        gain = gain * 0.5 * (1.0 + torch.cos(math.pi * into))
    return gain[:, None]


@dataclass(frozen=True)
class RefineResult:
    """What :func:`refine_maps` returns.

    Attributes:
        velocity: refined maps ``[N, 1, 70, 70]`` m/s (CPU, float32).
        misfit_before, misfit_after: ``[N]`` full-band relative L2 misfit
            ``||d_sim - d_obs|| / ||d_obs||`` on the live traces (float64).
        reverted: ``[N]`` bool, maps whose refinement raised the full-band misfit
            and were handed back unchanged.
        noise_level: ``[N]`` the records' noise as a relative L2 misfit (float64;
            what a perfect map would leave), from :func:`noise_variance`.
        history: per batch, per stage, the summed objective at each iteration.
        evaluations: forward + backward simulations per batch, summed over batches.
        cpu_seconds: process CPU time of the whole refinement.
        seconds: wall-clock time.
        threads: ``torch.get_num_threads()`` during the run.
        schedule: the schedule used (``as_dict``).
    """

    velocity: torch.Tensor
    misfit_before: torch.Tensor
    misfit_after: torch.Tensor
    reverted: torch.Tensor
    noise_level: torch.Tensor
    history: list[list[list[float]]]
    evaluations: int
    cpu_seconds: float
    seconds: float
    threads: int
    schedule: dict


def full_band_misfit(
    velocity: torch.Tensor, observed: torch.Tensor, data_time_stride: int = 1
) -> torch.Tensor:
    """Relative L2 misfit ``[N]`` (float64) of ``velocity`` m/s against raw ``observed`` records.

    All shots, the whole record, live traces only; simulated by deepwave.
    """
    nt = (observed.shape[2] - 1) * data_time_stride + 1
    with torch.no_grad():
        sim = simulate(velocity.detach().float(), nt=nt)[:, :, ::data_time_stride]
    mask = live_traces(observed)
    diff = ((sim - observed) * mask).double().flatten(1).norm(dim=1)
    return diff / (observed * mask).double().flatten(1).norm(dim=1).clamp_min(1e-30)


def _check_inputs(
    velocity: ArrayLike, seismic: ArrayLike, data_time_stride: int
) -> tuple[torch.Tensor, torch.Tensor]:
    maps = validate_velocity(
        torch.from_numpy(np.ascontiguousarray(velocity))
        if isinstance(velocity, np.ndarray)
        else velocity
    )
    observed = (
        torch.from_numpy(np.ascontiguousarray(seismic))
        if isinstance(seismic, np.ndarray)
        else seismic
    )
    if (
        not isinstance(observed, torch.Tensor)
        or observed.ndim != 4
        or observed.shape[1] != NUM_SOURCES
        or observed.shape[3] != NUM_RECEIVERS
    ):
        raise ValueError(
            f"seismic must be raw records [N, {NUM_SOURCES}, time, {NUM_RECEIVERS}], got "
            f"{list(getattr(seismic, 'shape', []))}"
        )
    if observed.shape[0] != maps.shape[0]:
        raise ValueError(
            f"seismic holds {observed.shape[0]} samples but velocity holds {maps.shape[0]}; "
            "pass one record per map"
        )
    if int(data_time_stride) != data_time_stride or data_time_stride < 1:
        raise ValueError(f"data_time_stride={data_time_stride!r} must be a whole number of ms >= 1")
    if not bool(torch.isfinite(observed).all()):
        raise ValueError("seismic holds a non-finite value; repair or drop that record")
    return maps.detach().float(), observed.detach().float()


def refine_maps(
    velocity: ArrayLike,
    seismic: ArrayLike,
    *,
    dataset: str | None = None,
    schedule: Schedule = DEFAULT_SCHEDULE,
    data_time_stride: int = 1,
    device: str | torch.device | None = None,
) -> RefineResult:
    """Refine starting maps so that they explain ``seismic``, by :class:`Schedule` ``schedule``.

    Args:
        velocity: starting maps ``[N, 1, 70, 70]`` or ``[N, 70, 70]`` m/s
            (e.g. EPIC's prediction, ``denormalize_velocity`` of it).
        seismic: observed raw records ``[N, 5, T, 70]``, a sample every
            ``data_time_stride`` ms; all-zero traces count as dead and are ignored.
        dataset: the maps' dataset name (picks the prior when ``schedule.prior == "auto"``).
        schedule: stages and settings (default :data:`DEFAULT_SCHEDULE`).
        data_time_stride: ms between the observed samples (the simulation runs at 1 ms).
        device: where to compute (default the velocity's device, CPU for numpy).

    Returns:
        :class:`RefineResult`.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    maps, observed = _check_inputs(velocity, seismic, data_time_stride)
    prior = prior_for(dataset) if schedule.prior == "auto" else schedule.prior
    if prior not in PRIORS:
        raise ValueError(f"prior={schedule.prior!r} is not 'auto' or one of {PRIORS}")
    noise_stop = schedule.noise_stop
    if noise_stop is not None and not (math.isfinite(noise_stop) and noise_stop > 0):
        raise ValueError(f"noise_stop={noise_stop!r} must be a positive factor (e.g. 1.05) or None")
    device = maps.device if device is None else torch.device(device)
    maps, observed = maps.to(device), observed.to(device)
    stride = int(data_time_stride)
    nt = (observed.shape[2] - 1) * stride + 1
    refined, before, after, reverted, history, evaluations = [], [], [], [], [], 0
    for start in range(0, maps.shape[0], schedule.batch_size):
        chunk = maps[start : start + schedule.batch_size]
        obs = observed[start : start + schedule.batch_size]
        result, stage_history, count = _refine_batch(
            chunk, obs, prior, schedule, stride, nt, noise_stop
        )
        refined.append(result)
        history.append(stage_history)
        evaluations += count
        misfit_start = full_band_misfit(chunk, obs, stride)
        misfit_end = full_band_misfit(result, obs, stride)
        worse = misfit_end > misfit_start  # never hand back a map that explains the data worse
        result = torch.where(worse[:, None, None, None].to(result.device), chunk[:, None], result)
        reverted.append(worse.cpu())
        before.append(misfit_start)
        after.append(torch.minimum(misfit_start, misfit_end))
    empty = torch.zeros(0, dtype=torch.float64)
    live = live_traces(observed)
    noise = torch.sqrt(
        noise_variance(observed, stride) * live.flatten(1).sum(1).double() * observed.shape[2]
    ) / (observed * live).double().flatten(1).norm(dim=1).clamp_min(1e-30)
    return RefineResult(
        velocity=torch.cat(refined).cpu() if refined else torch.zeros(0, 1, NZ, NX),
        misfit_before=torch.cat(before).cpu() if before else empty,
        misfit_after=torch.cat(after).cpu() if after else empty,
        reverted=torch.cat(reverted) if reverted else torch.zeros(0, dtype=torch.bool),
        noise_level=noise.cpu(),
        history=history,
        evaluations=evaluations,
        cpu_seconds=time.process_time() - cpu_started,
        seconds=time.perf_counter() - started,
        threads=torch.get_num_threads(),
        schedule={**schedule.as_dict(), "prior_used": prior},
    )


def _refine_batch(
    start: torch.Tensor,
    observed: torch.Tensor,
    prior: str,
    schedule: Schedule,
    stride: int,
    nt: int,
    noise_stop: float | None = None,
) -> tuple[torch.Tensor, list[list[float]], int]:
    """Refine one batch ``[B, 70, 70]`` m/s; returns ``([B, 1, 70, 70], history, evaluations)``."""
    bounded = BoundedVelocity()
    if prior == "layered":  # flat layers: one velocity per depth row, the start averaged along rows
        start = start.mean(dim=-1, keepdim=True)
    base = bounded.to_parameter(start).detach()
    weights = depth_weights(schedule.depth_power).to(start.device)
    update = torch.zeros_like(base, requires_grad=True)
    prior_fn = PRIOR_FUNCTIONS.get(prior)
    prior_weight = float(schedule.prior_weights.get(prior, 0.0)) if prior_fn else 0.0

    def velocity_of(p: torch.Tensor) -> torch.Tensor:
        return bounded.to_velocity(base + weights * p).expand(-1, NZ, NX)

    mask = live_traces(observed)
    gain = _time_gain(
        observed.shape[2], stride, schedule.time_gain, observed.device, schedule.mute_after_ms
    )
    data_terms: list[torch.Tensor] = []  # the last evaluation's per-map misfit

    def objective_of(stage: Stage) -> Callable[[], torch.Tensor]:
        """Per-map normalised misfit of ``stage`` plus the prior, summed over the batch."""
        target = _prepare(observed * mask, stage, gain, stride)
        norm = target.flatten(1).square().sum(1).clamp_min(1e-30)

        def objective() -> torch.Tensor:
            v = velocity_of(update)
            sim = simulate(v, nt=nt)[:, :, ::stride] * mask
            residual = _prepare(sim, stage, gain, stride) - target
            loss = residual.flatten(1).square().sum(1) / norm
            data_terms[:] = [loss.detach()]
            if prior_fn is not None and prior_weight:
                loss = loss + prior_weight * prior_fn(v)
            return loss.sum()

        return objective

    def below(floor: float | None) -> Callable[[], bool]:
        """True once the last evaluated misfit (summed over the batch) is at most ``floor``."""
        return lambda: (
            floor is not None and bool(data_terms) and float(data_terms[0].sum()) <= floor
        )

    history: list[list[float]] = []
    evaluations = 0
    for stage in schedule.stages:
        floor = None
        if noise_stop is not None and stage.cutoff_hz is None:  # the full band holds all the noise
            floor = float(
                noise_stop**2 * _noise_objective(observed, mask, stage, gain, stride).sum()
            )

        rows, count = _lbfgs_stage(
            update, objective_of(stage), stage.iterations, schedule, below(floor)
        )
        evaluations += count
        logger.info(
            "stage %s Hz: %d iterations, %d evaluations, objective %.4g -> %.4g",
            stage.cutoff_hz,
            len(rows),
            count,
            rows[0] if rows else math.nan,
            rows[-1] if rows else math.nan,
        )
        history.append(rows)
    with torch.no_grad():
        final = velocity_of(update).detach()
    return final[:, None], history, evaluations


def _lbfgs_stage(
    parameter: torch.Tensor,
    objective: Callable[[], torch.Tensor],
    iterations: int,
    schedule: Schedule,
    reached_noise: Callable[[], bool] = lambda: False,
) -> tuple[list[float], int]:
    """At most ``iterations`` L-BFGS iterations on ``objective``, stopped when it stops falling
    or, checked before each iteration, when ``reached_noise()`` (the misfit is down to the noise).

    Returns the objective before each iteration and the number of evaluations.
    """
    optimizer = torch.optim.LBFGS(
        [parameter],
        lr=1.0,
        max_iter=1,
        max_eval=schedule.max_evaluations_per_iteration,
        history_size=schedule.history_size,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )
    evaluations = 0

    def closure() -> torch.Tensor:
        nonlocal evaluations
        optimizer.zero_grad(set_to_none=True)
        loss = objective()
        loss.backward()
        evaluations += 1
        return loss

    rows: list[float] = []
    best, stale = math.inf, 0
    for _ in range(int(iterations)):
        if rows and reached_noise():
            break
        loss = float(optimizer.step(closure).detach())
        rows.append(loss)
        if loss < best * (1.0 - schedule.min_relative_drop):
            best, stale = loss, 0
        else:
            stale += 1
            if stale >= schedule.patience:
                break
    return rows, evaluations

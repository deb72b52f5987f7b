"""Forward modelling: velocity maps (m/s) to OpenFWI seismic records.

:func:`simulate` turns velocity maps ``[N, 70, 70]`` (or ``[N, 1, 70, 70]``)
in m/s into records ``[N, shot, time, receiver] = [N, 5, 1000, 70]`` float32
following the OpenFWI recipe (docs/data.md, "Forward-modelling recipe"; geometry in
:mod:`epic_zoo.data.geometry`). Two backends:

``"deepwave"`` (default, fast, differentiable)
    :func:`deepwave.scalar` with the same 4th-order-in-space, 2nd-order-in-time
    stencil, all ``N x shots`` simulations batched into one call per chunk of
    ``batch_size`` maps (one velocity model per shot). Corrections that make
    it reproduce the recipe:

    - *source sign and scale*: deepwave's ``source_amplitudes`` ``f`` are the
      right-hand side of ``laplacian(u) - u_tt / v^2 = f``; each step it adds
      ``-v^2 dt^2 f`` at the source cell (``dt`` its internal step). Passing
      ``f = -w`` therefore adds ``+(v dt)^2 w[t]``, the recipe's injection,
      as long as the internal step equals the 1 ms record step (see below).
    - *timing*: deepwave records the wavefield before each step's update; the
      recipe records it after. We run ``nt + 1`` steps and drop sample 0.
    - *no sub-stepping*: at its default Courant number (0.6) deepwave splits
      each 1 ms step in two for any map faster than ``0.6 dx / (sqrt(2) dt)
      ~ 4243 m/s`` and resamples sources/receivers by FFT; the recipe never
      sub-steps (its scheme is stable up to ~6124 m/s). We pin
      ``max_vel = V_MAX`` and the Courant number of ``V_MAX`` (~0.64, below
      deepwave's critical 0.866), so every valid map runs one step per ms and
      the absorbing boundary no longer depends on which maps share a batch.
    - *boundary*: a CPML (``pml_width`` 10 cells, ``pml_freq`` 15 Hz) instead
      of the recipe's sponge. It absorbs better than the sponge, which is the
      main remaining difference (see ``backend="openfwi"``).

``"openfwi"`` (exact port of the recipe, ~60x the CPU time of deepwave)
    2nd order in time, 4th order in space (Laplacian weights -5/2, 4/3,
    -1/12 per axis), the map edge-replicated by ``nbc = 120`` cells, the
    147-sample Ricker added as ``p[src] += (v dt)^2 w[t]`` after each update
    and sample ``t`` read right after step ``t``. Details follow the public
    ports of the recipe (the CSIM/KAUST MATLAB acoustic modelling code,
    ``a2d_mod_abc*`` with ``AbcCoef2D``, and its PyTorch translation in
    UPFWI's forward operator ``FWIForward``):

    - Laplacian by circular shifts of the padded grid (the outer edge wraps);
    - damping ``d(s) = kappa0 (s / a)^2`` at distance ``s = i dx`` into the
      sponge, ``a = (nbc - 1) dx``,
      ``kappa0 = 3 v_min ln(1e7) / (2 a)`` with ``v_min`` the map's minimum;
    - update ``p = (2 - 5 alpha - kappa) p1 - (1 - kappa) p0
      + alpha (4/3 (4 one-cell shifts) - 1/12 (4 two-cell shifts))`` with
      ``alpha = (v dt / dx)^2`` and ``kappa = d dt``: first-order damping
      ``kappa (p1 - p0)`` of the leapfrog update;
    - the left/right profile fills whole columns (corners included); the
      top/bottom profile only the columns above/below the map. The corners
      thus carry the horizontal profile alone, so the two columns beside the
      map edges stay almost undamped all the way to the top and bottom of
      the padded grid, where they wrap around. Energy that enters them comes
      back as late arrivals (after ~0.8 s): up to ~4 % relative L2 of a
      record for maps with a fast shallow layer, against ~0.1-0.3 % for the
      rest of the difference to deepwave. With both profiles in the corners
      it drops to ~0.5 %; with ``openfwi_nbc=240`` it leaves the 1 s window
      (~0.1 %). Released OpenFWI records contain whatever the recipe made,
      so this backend keeps it (benchmarks/results/forward_model.md).

Units: velocity m/s, time step :data:`~epic_zoo.data.geometry.DT` s, grid
:data:`~epic_zoo.data.geometry.DX` m; the record is the pressure-like
amplitude the recipe produces (no normalisation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal, overload

import deepwave
import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from epic_zoo.data.geometry import (
    DT,
    DX,
    NT,
    NUM_RECEIVERS,
    NUM_SOURCES,
    NX,
    NZ,
    PEAK_FREQUENCY,
    RECEIVER_COLUMNS,
    RECEIVER_ROW,
    SOURCE_COLUMNS,
    SOURCE_ROW,
    V_MAX,
    V_MIN,
    VELOCITY_TOLERANCE,
    source_wavelet,
)

Backend = Literal["deepwave", "openfwi"]
BACKENDS: tuple[str, ...] = ("deepwave", "openfwi")

DEEPWAVE_ACCURACY: int = 4
"""Spatial order of deepwave's stencil: the recipe's 4th order."""
DEEPWAVE_PML_WIDTH: int = 10
"""CPML width in cells on every side of the map (deepwave backend).

Its reflections are ~0.1 % of a record's L2 norm (against a 60-cell CPML);
20 cells halve that and cost ~1.9x the time.
"""
DEEPWAVE_COURANT_NUMBER: float = 1.001 * V_MAX * DT * math.sqrt(2.0) / DX
"""``dt v sqrt(1/dx^2 + 1/dz^2)`` at ``V_MAX`` (+0.1 %): one internal step per ms."""
OPENFWI_NBC: int = 120
"""Sponge width of the recipe, in cells on every side of the map."""
OPENFWI_ATTENUATION: float = 1e7
"""Amplitude reduction the recipe's sponge is designed for (``ln(1e7)`` in ``kappa0``)."""

_LAPLACIAN_NEAR: float = 4.0 / 3.0
_LAPLACIAN_FAR: float = -1.0 / 12.0
_LAPLACIAN_CENTRE: float = -5.0 / 2.0

ArrayLike = np.ndarray | torch.Tensor


@overload
def simulate(
    velocity: np.ndarray,
    backend: Backend = ...,
    *,
    shots: Sequence[int] | None = ...,
    nt: int = ...,
    device: str | torch.device | None = ...,
    batch_size: int = ...,
    progress: bool = ...,
    openfwi_nbc: int = ...,
) -> np.ndarray: ...


@overload
def simulate(
    velocity: torch.Tensor,
    backend: Backend = ...,
    *,
    shots: Sequence[int] | None = ...,
    nt: int = ...,
    device: str | torch.device | None = ...,
    batch_size: int = ...,
    progress: bool = ...,
    openfwi_nbc: int = ...,
) -> torch.Tensor: ...


def simulate(
    velocity: ArrayLike,
    backend: Backend = "deepwave",
    *,
    shots: Sequence[int] | None = None,
    nt: int = NT,
    device: str | torch.device | None = None,
    batch_size: int = 64,
    progress: bool = False,
    openfwi_nbc: int = OPENFWI_NBC,
) -> ArrayLike:
    """Seismic records of velocity maps, following the OpenFWI recipe.

    Args:
        velocity: ``[N, 70, 70]`` or ``[N, 1, 70, 70]`` velocity in m/s,
            ``[depth z, offset x]`` on the 10 m grid, every value finite and
            within 1500..4500 m/s. numpy array or torch tensor.
        backend: ``"deepwave"`` (fast CPML propagator, differentiable) or
            ``"openfwi"`` (exact port of the recipe's sponge boundary, slow).
            See the module docstring for how the two differ.
        shots: indices into :data:`~epic_zoo.data.geometry.SOURCE_COLUMNS`
            (0..4) of the sources to simulate, in output order; ``None``
            means all 5.
        nt: time samples to record (1 ms each). The recipe uses 1000.
        device: where to compute (``"cpu"``, ``"cuda"``, ...). ``None``: the
            velocity tensor's device, or CPU for numpy input.
        batch_size: maps per propagator call; peak memory grows with it.
        progress: show a tqdm progress bar.
        openfwi_nbc: sponge width in cells for ``backend="openfwi"``; the
            recipe uses 120.

    Returns:
        ``[N, len(shots) or 5, nt, 70]`` float32 records
        ``[sample, shot, time, receiver]``, raw amplitude. numpy in -> numpy
        out; torch in -> torch tensor on the compute device. With
        ``backend="deepwave"`` and ``velocity.requires_grad`` the result is
        differentiable with respect to ``velocity`` (the propagator keeps
        every time step for the backward pass: ~35 MB per map and shot at
        ``nt=1000``).

    Raises:
        ValueError: bad ``velocity`` (shape, non-finite value, value outside
            1500..4500 m/s; the message names the sample and value), unknown
            ``backend``, bad ``shots``/``nt``/``batch_size``/``openfwi_nbc``,
            or a velocity that requires grad with ``backend="openfwi"``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not one of {BACKENDS}")
    shot_indices = _check_shots(shots)
    if int(nt) != nt or nt < 1:
        raise ValueError(
            f"nt={nt!r} must be a positive number of time samples (the recipe uses {NT})"
        )
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
    if int(openfwi_nbc) != openfwi_nbc or openfwi_nbc < 3:
        raise ValueError(
            f"openfwi_nbc={openfwi_nbc!r} must be an integer >= 3 (the recipe uses {OPENFWI_NBC})"
        )
    nt, batch_size, openfwi_nbc = int(nt), int(batch_size), int(openfwi_nbc)

    is_numpy = isinstance(velocity, np.ndarray)
    maps = validate_velocity(velocity)
    if device is None:
        device = torch.device("cpu") if is_numpy else maps.device
    maps = maps.to(device=device, dtype=torch.float32)
    needs_grad = maps.requires_grad
    if needs_grad and backend == "openfwi":
        raise ValueError(
            "backend='openfwi' is not differentiable; use backend='deepwave' for gradients "
            "or pass velocity.detach()"
        )

    num_maps = maps.shape[0]
    chunks = [maps[i : i + batch_size] for i in range(0, num_maps, batch_size)]
    if backend == "deepwave":
        bar = tqdm(total=num_maps, unit="map", desc="deepwave", disable=not progress)
    else:
        bar = tqdm(total=len(chunks) * nt, unit="step", desc="openfwi port", disable=not progress)
    records = []
    with bar, torch.set_grad_enabled(needs_grad):
        for chunk in chunks:
            if backend == "deepwave":
                records.append(_deepwave_records(chunk, shot_indices, nt))
                bar.update(chunk.shape[0])
            else:
                records.append(_openfwi_records(chunk, shot_indices, nt, openfwi_nbc, bar.update))
    if records:
        seismic = torch.cat(records)
    else:
        seismic = maps.new_zeros((0, len(shot_indices), nt, NUM_RECEIVERS))
    return seismic.detach().cpu().numpy() if is_numpy else seismic


def validate_velocity(velocity: ArrayLike) -> torch.Tensor:
    """Check velocity maps and return them as a ``[N, 70, 70]`` tensor in m/s.

    The result shares memory (and autograd history) with a torch input; numpy
    input is converted without copying where possible.

    Raises:
        ValueError: wrong type or shape, a non-finite value, or a value
            outside ``V_MIN..V_MAX`` m/s; the message names the first bad
            sample, its value and position, and the fix.
    """
    if isinstance(velocity, np.ndarray):
        maps = torch.as_tensor(velocity)
    elif isinstance(velocity, torch.Tensor):
        maps = velocity
    else:
        raise ValueError(
            f"velocity must be a numpy array or torch tensor in m/s, got {type(velocity).__name__}"
        )
    shape = tuple(maps.shape)
    if maps.ndim == 4 and shape[1] == 1:
        maps = maps[:, 0]
    if maps.ndim != 3 or tuple(maps.shape[1:]) != (NZ, NX):
        raise ValueError(
            f"velocity must have shape [N, {NZ}, {NX}] or [N, 1, {NZ}, {NX}] (m/s), got {list(shape)}; "
            "add a batch axis (velocity[None]) for a single map"
        )
    if not (maps.is_floating_point() or maps.dtype in (torch.int16, torch.int32, torch.int64)):
        raise ValueError(f"velocity must hold real numbers in m/s, got dtype {maps.dtype}")
    values = maps.detach()
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        sample, z, x = (int(i) for i in torch.nonzero(~finite)[0])
        raise ValueError(
            f"velocity sample {sample} has a non-finite value ({float(values[sample, z, x])}) at "
            f"(z={z}, x={x}); repair or drop that map before simulating"
        )
    outside = (values < V_MIN - VELOCITY_TOLERANCE) | (values > V_MAX + VELOCITY_TOLERANCE)
    if bool(outside.any()):
        sample, z, x = (int(i) for i in torch.nonzero(outside)[0])
        raise ValueError(
            f"velocity sample {sample} has {float(values[sample, z, x]):.6g} m/s at (z={z}, x={x}), "
            f"outside the OpenFWI range {V_MIN:.0f}..{V_MAX:.0f} m/s; pass velocities in m/s "
            "(epic_zoo.data.transforms.denormalize_velocity undoes the [-1, 1] scaling) and clip "
            "them to that range"
        )
    return maps


def relative_l2_error(seismic: ArrayLike, reference: ArrayLike) -> np.ndarray:
    """Per-sample relative L2 error ``||seismic - reference|| / ||reference||``.

    Args:
        seismic: ``[N, ...]`` records.
        reference: ``[N, ...]`` records of the same shape.

    Returns:
        ``[N]`` float64, unitless (0.01 = 1 %).
    """
    a = np.asarray(
        seismic.detach().cpu() if isinstance(seismic, torch.Tensor) else seismic, dtype=np.float64
    )
    b = np.asarray(
        reference.detach().cpu() if isinstance(reference, torch.Tensor) else reference,
        dtype=np.float64,
    )
    if a.shape != b.shape or a.ndim < 1:
        raise ValueError(
            f"seismic {list(a.shape)} and reference {list(b.shape)} must have the same [N, ...] shape"
        )
    diff = np.linalg.norm((a - b).reshape(a.shape[0], -1), axis=1)
    return diff / np.linalg.norm(b.reshape(b.shape[0], -1), axis=1)


def _check_shots(shots: Sequence[int] | None) -> tuple[int, ...]:
    if shots is None:
        return tuple(range(NUM_SOURCES))
    indices = tuple(int(s) for s in shots)
    if not indices or any(
        s != raw or not 0 <= s < NUM_SOURCES for s, raw in zip(indices, shots, strict=True)
    ):
        raise ValueError(
            f"shots={list(shots)!r} must be a non-empty list of source indices in 0..{NUM_SOURCES - 1} "
            f"(sources at grid columns {SOURCE_COLUMNS})"
        )
    return indices


def _deepwave_records(velocity: torch.Tensor, shots: tuple[int, ...], nt: int) -> torch.Tensor:
    """Records of ``velocity [B, NZ, NX]`` m/s with deepwave: ``[B, S, nt, NX]``.

    One deepwave shot per (map, source) pair, each with its own model.
    """
    num_maps, num_shots = velocity.shape[0], len(shots)
    device = velocity.device
    models = velocity.repeat_interleave(num_shots, dim=0)  # [B*S, NZ, NX], map-major
    wavelet = torch.as_tensor(source_wavelet(nt + 1), dtype=torch.float32, device=device)
    amplitudes = (-wavelet).expand(num_maps * num_shots, 1, nt + 1).contiguous()
    source_cells = torch.tensor([[SOURCE_ROW, SOURCE_COLUMNS[s]] for s in shots], device=device)
    source_locations = source_cells.repeat(num_maps, 1)[:, None, :]  # [B*S, 1, 2] (z, x)
    receiver_cells = torch.tensor([[RECEIVER_ROW, x] for x in RECEIVER_COLUMNS], device=device)
    receiver_locations = receiver_cells.expand(num_maps * num_shots, -1, -1).contiguous()
    out = deepwave.scalar(
        models,
        DX,
        DT,
        source_amplitudes=amplitudes,
        source_locations=source_locations,
        receiver_locations=receiver_locations,
        accuracy=DEEPWAVE_ACCURACY,
        pml_width=DEEPWAVE_PML_WIDTH,
        pml_freq=PEAK_FREQUENCY,
        max_vel=V_MAX,
        courant_number=DEEPWAVE_COURANT_NUMBER,
    )
    traces = out.receiver_amplitudes[..., 1:]  # [B*S, NX, nt]: drop the pre-update sample
    return traces.reshape(num_maps, num_shots, NUM_RECEIVERS, nt).transpose(2, 3)


def _openfwi_damping(min_velocity: torch.Tensor, nbc: int, height: int, width: int) -> torch.Tensor:
    """The recipe's sponge damping ``d`` in 1/s on the padded grid, ``[B, height, width]``.

    ``min_velocity [B]`` m/s. Left/right profiles fill whole columns, the
    top/bottom profile only the columns between them (CSIM ``AbcCoef2D``).
    """
    dtype, device = min_velocity.dtype, min_velocity.device
    thickness = (nbc - 1) * DX
    kappa0 = 3.0 * min_velocity * math.log(OPENFWI_ATTENUATION) / (2.0 * thickness)  # [B]
    distance = torch.arange(nbc, dtype=dtype, device=device) * DX  # [nbc] m from the map edge
    ramp = (distance / thickness) ** 2
    rows = torch.zeros(height, dtype=dtype, device=device)
    rows[:nbc], rows[height - nbc :] = ramp.flip(0), ramp
    cols = torch.zeros(width, dtype=dtype, device=device)
    cols[:nbc], cols[width - nbc :] = ramp.flip(0), ramp
    profile = rows[:, None].expand(height, width).clone()
    profile[:, :nbc] = cols[:nbc]
    profile[:, width - nbc :] = cols[width - nbc :]
    return kappa0[:, None, None] * profile


def _openfwi_records(
    velocity: torch.Tensor,
    shots: tuple[int, ...],
    nt: int,
    nbc: int,
    on_step: Callable[[int], object] | None = None,
) -> torch.Tensor:
    """Records of ``velocity [B, NZ, NX]`` m/s by the recipe's sponge scheme: ``[B, S, nt, NX]``.

    All maps and shots advance together; wavefields are ``[B, S, H, W]``
    with ``H = NZ + 2 nbc``, ``W = NX + 2 nbc``. ``on_step(1)`` is called
    after every time step (progress bars).
    """
    num_maps, num_shots = velocity.shape[0], len(shots)
    device = velocity.device
    with torch.no_grad():
        padded = F.pad(velocity[:, None].double(), (nbc, nbc, nbc, nbc), mode="replicate")[:, 0]
        height, width = padded.shape[-2:]
        damping = _openfwi_damping(velocity.double().flatten(1).amin(1), nbc, height, width)
        alpha = (padded * DT / DX) ** 2
        kappa = damping * DT
        # Coefficients in float64, then float32 like the wavefields: [B, 1, H, W].
        coef_now = (2.0 + 2.0 * _LAPLACIAN_CENTRE * alpha - kappa).float()[:, None]
        coef_before = (1.0 - kappa).float()[:, None]
        alpha32 = alpha.float()[:, None]
        source_z = SOURCE_ROW + nbc
        source_x = torch.tensor([SOURCE_COLUMNS[s] + nbc for s in shots], device=device)
        source_scale = ((padded[:, source_z, source_x] * DT) ** 2).float()  # [B, S]
        wavelet = source_wavelet(nt)
        shot_index = torch.arange(num_shots, device=device)
        receiver_z = RECEIVER_ROW + nbc
        receiver_x = torch.tensor(RECEIVER_COLUMNS, device=device) + nbc

        before = torch.zeros(num_maps, num_shots, height, width, device=device)
        now = torch.zeros_like(before)
        near = torch.empty_like(before)
        far = torch.empty_like(before)
        records = torch.empty(num_maps, num_shots, nt, NUM_RECEIVERS, device=device)
        centre = (..., slice(2, -2), slice(2, -2))
        for step in range(nt):
            wrapped = F.pad(now, (2, 2, 2, 2), mode="circular")  # circular-shift Laplacian
            torch.add(wrapped[..., 1:-3, 2:-2], wrapped[..., 3:-1, 2:-2], out=near)
            near.add_(wrapped[..., 2:-2, 1:-3]).add_(wrapped[..., 2:-2, 3:-1])
            torch.add(wrapped[..., :-4, 2:-2], wrapped[..., 4:, 2:-2], out=far)
            far.add_(wrapped[..., 2:-2, :-4]).add_(wrapped[..., 2:-2, 4:])
            near.mul_(_LAPLACIAN_NEAR).add_(far, alpha=_LAPLACIAN_FAR)
            new = torch.mul(coef_now, wrapped[centre])
            new.addcmul_(coef_before, before, value=-1.0).addcmul_(alpha32, near)
            new[:, shot_index, source_z, source_x] += source_scale * float(wavelet[step])
            records[:, :, step] = new[:, :, receiver_z, receiver_x]
            before, now = now, new
            if on_step is not None:
                on_step(1)
    return records

"""Field conditions for simulated records: band-limited noise and dead traces.

Real records carry noise and lose channels; a refinement or a network
measured only on clean simulations says nothing about those. The numpy
functions are deterministic given ``seed`` and leave their input unchanged;
:func:`field_noise_batch` is their torch batch form for training (the
``data.field_noise`` augmentation of :class:`~epic_zoo.data.datamodule.FWIDataModule`),
drawing from a torch generator (default the global RNG) on the CPU. Both share
:func:`shaped_noise` (band limit and per-shot-record SNR scaling).

Units: records raw amplitude ``[N, shot, time, receiver]``, a sample every
``dt`` s.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from epic_zoo.data.geometry import DT


def _check_band(band_hz: Sequence[float]) -> tuple[float, float]:
    low, high = (float(v) for v in band_hz)
    if not 0 <= low < high:
        raise ValueError(f"band_hz={tuple(band_hz)!r} must be (low, high) Hz with 0 <= low < high")
    return low, high


def shaped_noise(
    white: torch.Tensor,
    signal: torch.Tensor,
    snr_db: torch.Tensor | float,
    band_hz: Sequence[float],
    dt: float,
) -> torch.Tensor:
    """``white`` noise band-passed to ``band_hz`` and scaled to ``snr_db`` below ``signal``, per shot record.

    Args:
        white: ``[N, shot, time, receiver]`` white Gaussian noise.
        signal: ``[N, shot, time, receiver]`` raw records the noise is measured against.
        snr_db: ``10 log10(signal power / noise power)`` of every ``[time, receiver]``
            shot record; a float, or ``[N]`` (one SNR per sample).
        band_hz: ``(low, high)`` pass band in Hz (a hard band in the frequency domain).
        dt: sample interval in s.

    Returns the noise ``[N, shot, time, receiver]`` in ``white``'s dtype.
    """
    low, high = _check_band(band_hz)
    nt = white.shape[2]
    spectrum = torch.fft.rfft(white, dim=2)
    freqs = torch.fft.rfftfreq(nt, d=dt, dtype=white.dtype, device=white.device)
    keep = ((freqs >= low) & (freqs <= high)).to(spectrum.dtype)
    noise = torch.fft.irfft(spectrum * keep[:, None], n=nt, dim=2)
    signal_power = signal.to(white.dtype).square().mean(dim=(2, 3), keepdim=True)
    noise_power = noise.square().mean(dim=(2, 3), keepdim=True)
    snr = torch.as_tensor(snr_db, dtype=white.dtype, device=white.device)
    if snr.ndim == 1:
        snr = snr[:, None, None, None]
    tiny = torch.finfo(white.dtype).tiny
    scale = torch.sqrt(signal_power / noise_power.clamp_min(tiny) / 10.0 ** (snr / 10.0))
    return noise * scale


def band_limited_noise(
    records: np.ndarray,
    snr_db: float = 20.0,
    band_hz: tuple[float, float] = (2.0, 40.0),
    *,
    seed: int = 0,
    dt: float = DT,
) -> np.ndarray:
    """``records`` plus Gaussian noise band-passed to ``band_hz``, at ``snr_db`` per shot record.

    The noise of each ``[time, receiver]`` shot record is scaled so that
    ``10 log10(signal power / noise power) = snr_db`` (:func:`shaped_noise`).

    Args:
        records: ``[N, shot, time, receiver]`` float records.
        snr_db: signal-to-noise ratio in dB (20 dB: noise RMS = 10 % of signal RMS).
        band_hz: ``(low, high)`` pass band in Hz (a hard band in the frequency domain).
        seed: random seed.
        dt: sample interval in s.
    """
    _check_band(band_hz)
    data = np.asarray(records, dtype=np.float32)
    if data.ndim != 4:
        raise ValueError(f"records must be [N, shot, time, receiver], got shape {list(data.shape)}")
    rng = np.random.default_rng(seed)
    white = torch.from_numpy(rng.standard_normal(data.shape).astype(np.float64))
    noise = shaped_noise(white, torch.from_numpy(data), float(snr_db), band_hz, dt).numpy()
    return (data + noise).astype(np.float32)


def dead_traces(records: np.ndarray, fraction: float = 0.05, *, seed: int = 0) -> np.ndarray:
    """``records`` with ``fraction`` of the receivers' traces set to zero, in every shot.

    A dead channel is dead for all shots of a sample; ``round(fraction * receivers)``
    receivers are drawn per sample.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction={fraction!r} must be in [0, 1)")
    data = np.array(records, dtype=np.float32, copy=True)
    if data.ndim != 4:
        raise ValueError(f"records must be [N, shot, time, receiver], got shape {list(data.shape)}")
    rng = np.random.default_rng(seed)
    count = int(round(fraction * data.shape[3]))
    for sample in range(data.shape[0]):
        dead = rng.choice(data.shape[3], size=count, replace=False)
        data[sample, :, :, dead] = 0.0
    return data


def field_noise_batch(
    records: torch.Tensor,
    p: float,
    snr_db: Sequence[float] = (10.0, 30.0),
    dead_max: float = 0.1,
    band_hz: Sequence[float] = (2.0, 40.0),
    *,
    dt: float = DT,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A batch of raw records under random field conditions (the training form of the two above).

    Each sample, with probability ``p``, gets band-limited Gaussian noise at an
    SNR drawn from ``U(snr_db)`` dB per shot record (:func:`shaped_noise`, as
    :func:`band_limited_noise`), then ``round(f * receivers)`` dead receivers
    with ``f ~ U(0, dead_max)`` (zero in every shot, as :func:`dead_traces`).

    Args:
        records: ``[B, shot, time, receiver]`` raw records (any float dtype and device).
        p: probability that a sample is degraded (0: ``records`` itself is returned).
        snr_db: ``(low, high)`` dB range of the SNR.
        dead_max: largest fraction of dead receivers, in ``[0, 1)``.
        band_hz: noise pass band in Hz.
        dt: sample interval of ``records`` in s (a decimated batch: stride x 1 ms).
        generator: source of the draws (default torch's global RNG), all on the
            CPU so the result does not depend on the device.

    Returns a new tensor of ``records``' shape, dtype and device.
    """
    if p <= 0:
        return records
    b, _, _, receivers = records.shape
    pick = torch.rand(b, generator=generator) < p
    lo, hi = float(snr_db[0]), float(snr_db[1])
    snr = lo + (hi - lo) * torch.rand(b, generator=generator)
    white = torch.randn(records.shape, generator=generator, dtype=torch.float32)
    dead_count = torch.round(float(dead_max) * torch.rand(b, generator=generator) * receivers)
    rank = torch.rand(b, receivers, generator=generator).argsort(dim=1).argsort(dim=1)
    dead = pick[:, None] & (rank < dead_count[:, None])  # [B, receiver]
    device = records.device
    noise = shaped_noise(white.to(device), records, snr.to(device), band_hz, dt)
    noisy = (
        records
        + noise.to(records.dtype) * pick.to(device=device, dtype=records.dtype)[:, None, None, None]
    )
    return noisy.masked_fill(dead.to(device)[:, None, None, :], 0.0)

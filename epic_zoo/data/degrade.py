"""Field conditions for simulated records: band-limited noise and dead traces.

Real records carry noise and lose channels; a refinement or a network
measured only on clean simulations says nothing about those. Both functions
are deterministic given ``seed`` and leave their input unchanged.

Units: records raw amplitude ``[N, shot, time, receiver]``, a sample every
``dt`` s.
"""

from __future__ import annotations

import numpy as np

from epic_zoo.data.geometry import DT


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
    ``10 log10(signal power / noise power) = snr_db``.

    Args:
        records: ``[N, shot, time, receiver]`` float records.
        snr_db: signal-to-noise ratio in dB (20 dB: noise RMS = 10 % of signal RMS).
        band_hz: ``(low, high)`` pass band in Hz (a hard band in the frequency domain).
        seed: random seed.
        dt: sample interval in s.
    """
    low, high = band_hz
    if not 0 <= low < high:
        raise ValueError(f"band_hz={band_hz!r} must be (low, high) Hz with 0 <= low < high")
    data = np.asarray(records, dtype=np.float32)
    if data.ndim != 4:
        raise ValueError(f"records must be [N, shot, time, receiver], got shape {list(data.shape)}")
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(data.shape).astype(np.float64)
    spectrum = np.fft.rfft(white, axis=2)
    freqs = np.fft.rfftfreq(data.shape[2], d=dt)
    spectrum[:, :, (freqs < low) | (freqs > high)] = 0.0
    noise = np.fft.irfft(spectrum, n=data.shape[2], axis=2)
    signal_power = np.mean(np.square(data, dtype=np.float64), axis=(2, 3), keepdims=True)
    noise_power = np.mean(np.square(noise), axis=(2, 3), keepdims=True)
    scale = np.sqrt(signal_power / np.maximum(noise_power, 1e-300) / 10.0 ** (snr_db / 10.0))
    return (data + noise * scale).astype(np.float32)


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

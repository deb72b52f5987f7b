"""OpenFWI acquisition geometry: the one place its constants live.

Facts from the OpenFWI forward-modelling recipe (Deng et al., "OpenFWI",
NeurIPS 2022 Datasets and Benchmarks; see docs/data.md, "Forward-modelling recipe"):

- velocity grid ``[depth z, offset x] = [70, 70]`` cells of 10 m;
- time step 1 ms, 1000 stored samples (1 s);
- Ricker source, 15 Hz peak, discretised as 147 samples peaking at the 74th;
- 5 sources at grid columns 0, 17, 34, 52, 69 and 70 receivers at columns
  0..69, all at grid row 1 (10 m depth).

Seismic records are ``[source, time, receiver] = [5, 1000, 70]``.
For distributed inversion the receivers are split over ``D`` end devices
(default 5, 14 contiguous receivers each): :func:`receiver_split`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NZ: int = 70
"""Grid cells in depth."""
NX: int = 70
"""Grid cells in offset."""
DX: float = 10.0
"""Grid spacing in metres (same in z and x)."""
DT: float = 1e-3
"""Time step of the stored records in seconds."""
NT: int = 1000
"""Stored time samples per record."""
PEAK_FREQUENCY: float = 15.0
"""Ricker peak frequency in Hz."""
RICKER_SAMPLES: int = 147
"""Length of the discretised Ricker wavelet (peak at sample index 73)."""
SOURCE_COLUMNS: tuple[int, ...] = (0, 17, 34, 52, 69)
"""Grid columns of the 5 sources."""
SOURCE_ROW: int = 1
"""Grid row (depth index) of sources."""
RECEIVER_COLUMNS: tuple[int, ...] = tuple(range(NX))
"""Grid columns of the 70 receivers."""
RECEIVER_ROW: int = 1
"""Grid row (depth index) of receivers."""
NUM_SOURCES: int = len(SOURCE_COLUMNS)
NUM_RECEIVERS: int = len(RECEIVER_COLUMNS)
V_MIN: float = 1500.0
"""Lowest velocity of any OpenFWI map, m/s."""
V_MAX: float = 4500.0
"""Highest velocity of any OpenFWI map, m/s."""
VELOCITY_TOLERANCE: float = 0.01
"""m/s of slack on every ``V_MIN..V_MAX`` range check (stored maps, maps to simulate).

Maps that went through ``normalize_velocity`` / ``denormalize_velocity`` in
float32 land a few ulp outside the range (one ulp at 4500 m/s is 4.9e-4 m/s,
so 1e-3 rejects round-off); 0.01 m/s is still 2e-6 of the range and far from
any unit mistake (km/s or normalised maps miss it by orders of magnitude)."""
DEFAULT_NUM_DEVICES: int = 5
"""End devices in the EPIC deployment (arXiv 2603.09032; docs/references.md)."""

SEISMIC_SHAPE: tuple[int, int, int] = (NUM_SOURCES, NT, NUM_RECEIVERS)
VELOCITY_SHAPE: tuple[int, int, int] = (1, NZ, NX)


def ricker(
    frequency: float = PEAK_FREQUENCY, dt: float = DT, samples: int = RICKER_SAMPLES
) -> np.ndarray:
    """OpenFWI's discretised Ricker wavelet, ``[samples]`` float64.

    ``w_k = (1 - 2 b) exp(-b)`` with ``b = ((c - k) f dt pi)^2`` for
    ``k = 1..samples`` and ``c = (samples + 1) / 2`` (74 for 147 samples), so
    the peak is the 74th sample (index 73, ~73 ms).
    """
    k = np.arange(1, samples + 1, dtype=np.float64)
    centre = (samples + 1) / 2
    b = ((centre - k) * frequency * dt * np.pi) ** 2
    return (1.0 - 2.0 * b) * np.exp(-b)


def source_wavelet(nt: int = NT, dt: float = DT, frequency: float = PEAK_FREQUENCY) -> np.ndarray:
    """The Ricker wavelet zero-padded (or cut) to ``nt`` time steps, ``[nt]`` float64."""
    w = ricker(frequency, dt)
    out = np.zeros(nt, dtype=np.float64)
    n = min(nt, w.size)
    out[:n] = w[:n]
    return out


def receiver_split(
    num_devices: int = DEFAULT_NUM_DEVICES, num_receivers: int = NUM_RECEIVERS
) -> list[np.ndarray]:
    """Receiver indices held by each end device: contiguous, as equal as possible.

    ``receiver_split(5)`` gives five blocks of 14 receivers (0-13, 14-27, ...).
    Raises ``ValueError`` if ``num_devices`` is not in ``1..num_receivers``.
    """
    if not 1 <= int(num_devices) <= num_receivers:
        raise ValueError(
            f"num_devices={num_devices} must be between 1 and {num_receivers} "
            "(one receiver per device at most)"
        )
    return [
        np.asarray(b, dtype=np.int64) for b in np.array_split(np.arange(num_receivers), num_devices)
    ]


def receiver_positions_m() -> np.ndarray:
    """Receiver ``x`` offsets in metres, ``[70]``."""
    return np.asarray(RECEIVER_COLUMNS, dtype=np.float64) * DX


def source_positions_m() -> np.ndarray:
    """Source ``x`` offsets in metres, ``[5]``."""
    return np.asarray(SOURCE_COLUMNS, dtype=np.float64) * DX


@dataclass(frozen=True)
class Geometry:
    """The acquisition as one value, stored with every HDF5 file and model config."""

    nz: int = NZ
    nx: int = NX
    dx: float = DX
    dt: float = DT
    nt: int = NT
    peak_frequency: float = PEAK_FREQUENCY
    source_columns: tuple[int, ...] = SOURCE_COLUMNS
    source_row: int = SOURCE_ROW
    receiver_columns: tuple[int, ...] = field(default=RECEIVER_COLUMNS)
    receiver_row: int = RECEIVER_ROW

    def as_dict(self) -> dict:
        return {
            "nz": self.nz,
            "nx": self.nx,
            "dx": self.dx,
            "dt": self.dt,
            "nt": self.nt,
            "peak_frequency": self.peak_frequency,
            "source_columns": list(self.source_columns),
            "source_row": self.source_row,
            "receiver_columns": list(self.receiver_columns),
            "receiver_row": self.receiver_row,
        }

    def check_compatible(self, other: dict, what: str = "input") -> None:
        """Raise ``ValueError`` naming the first field of ``other`` that differs.

        Time sampling (``dt``, ``nt``) is allowed to differ by a whole
        decimation factor; everything spatial must match exactly.
        """
        mine = self.as_dict()
        for key in (
            "nz",
            "nx",
            "dx",
            "source_columns",
            "source_row",
            "receiver_columns",
            "receiver_row",
        ):
            if key in other and list(np.atleast_1d(other[key])) != list(np.atleast_1d(mine[key])):
                raise ValueError(
                    f"{what} was made for another acquisition geometry: {key}={other[key]!r}, "
                    f"epic_zoo uses {mine[key]!r} (OpenFWI). Regenerate or convert it with "
                    "`python -m epic_zoo.data generate` / `import-openfwi`."
                )


OPENFWI_GEOMETRY = Geometry()

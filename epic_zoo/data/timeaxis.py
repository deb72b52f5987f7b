"""The time axis: the one map between a record's time stride (ms) and its sample count.

Records are simulated at ``DT`` = 1 ms for ``NT`` = 1000 samples. Data or a
model at ``time_stride`` ``s`` keep samples ``0, s, 2s, ... < NT``, that is
``ceil(NT / s)`` of them: stride 4 -> 250, 3 -> 334, 7 -> 143.

The map is not invertible for every stride (strides 200..249 all keep 5
samples), so the stride is *stored*, never re-derived by integer division:
with the data (shard attribute ``time_stride``) and with the model (Hub
``config.json`` ``time_stride``, the run's datamodule record).
:func:`time_stride_for` recovers a stride from a sample count only where that
count belongs to exactly one stride, and says so otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from epic_zoo.data.geometry import NT

__all__ = ["config_time_stride", "time_samples_for", "time_stride_for", "time_strides_for"]


def time_samples_for(time_stride: int, nt: int = NT) -> int:
    """Samples kept when every ``time_stride``-th of ``nt`` is stored: ``ceil(nt / time_stride)``.

    Args:
        time_stride: ms between kept samples (at least 1; one beyond ``nt``
            keeps only sample 0).
        nt: samples before decimation (default ``NT`` = 1000 at 1 ms).

    Returns:
        ``T``, the sample count (1000, 4 -> 250; 1000, 3 -> 334).
    """
    time_stride, nt = int(time_stride), int(nt)
    if time_stride < 1 or nt < 1:
        raise ValueError(f"time_stride={time_stride} and nt={nt} must be at least 1")
    return math.ceil(nt / time_stride)


def time_strides_for(time_samples: int, nt: int = NT) -> range:
    """Every stride (ms, at most ``nt``) that keeps ``time_samples`` of ``nt`` samples.

    ``ceil(nt / s) == T`` holds for ``nt / T <= s < nt / (T - 1)``; the range is
    empty for counts no stride produces (e.g. 999 of 1000).
    """
    time_samples, nt = int(time_samples), int(nt)
    if not 1 <= time_samples <= nt:
        raise ValueError(f"time_samples={time_samples} must be between 1 and {nt}")
    first = math.ceil(nt / time_samples)
    last = nt if time_samples == 1 else math.ceil(nt / (time_samples - 1)) - 1
    return range(first, last + 1)


def time_stride_for(time_samples: int, nt: int = NT) -> int:
    """The stride (ms) that keeps ``time_samples`` of ``nt``, where exactly one does.

    Raises:
        ValueError: no stride keeps that many samples, or several do (then the
            stride must come from where it is stored, not from the count).
    """
    strides = time_strides_for(time_samples, nt)
    if len(strides) == 1:
        return strides[0]
    if not strides:
        raise ValueError(
            f"no time stride keeps time_samples={time_samples} of {nt}; records at stride s "
            f"hold ceil({nt} / s) samples (e.g. 250 at 4 ms, 334 at 3 ms)"
        )
    raise ValueError(
        f"time_samples={time_samples} is kept by every stride from {strides[0]} to "
        f"{strides[-1]} ms; pass the stored time_stride (shard attribute, Hub config.json)"
    )


def config_time_stride(config: Mapping[str, Any], nt: int = NT) -> int:
    """A model's or record's stride: its stored ``time_stride``, else from ``time_samples``.

    Args:
        config: a model config (``time_samples``) or a record that stores
            ``time_stride`` (Hub ``config.json``, datamodule hparams).
        nt: samples before decimation.

    Raises:
        ValueError: neither key is present, or the count is ambiguous
            (:func:`time_stride_for`).
    """
    if config.get("time_stride") is not None:
        return int(config["time_stride"])
    if config.get("time_samples") is None:
        raise ValueError("the config holds neither time_stride nor time_samples")
    return time_stride_for(int(config["time_samples"]), nt)

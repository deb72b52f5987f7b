"""The one map between time stride and sample count, for strides that do not divide 1000."""

from __future__ import annotations

import numpy as np
import pytest

from epic_zoo.data.geometry import NT
from epic_zoo.data.timeaxis import (
    config_time_stride,
    time_samples_for,
    time_stride_for,
    time_strides_for,
)

ODD_STRIDES = [3, 7, *range(201, 250)]


@pytest.mark.parametrize("stride", [1, 2, 4, 8, *ODD_STRIDES, 999, 1000])
def test_samples_match_what_decimation_keeps(stride: int) -> None:
    record = np.arange(NT)
    assert time_samples_for(stride) == len(record[::stride])


def test_known_counts() -> None:
    assert [time_samples_for(s) for s in (1, 3, 4, 7, 201, 249)] == [1000, 334, 250, 143, 5, 5]
    assert time_samples_for(4, nt=time_samples_for(2)) == time_samples_for(8) == 125


@pytest.mark.parametrize("stride", ODD_STRIDES)
def test_every_stride_is_among_the_strides_of_its_count(stride: int) -> None:
    assert stride in time_strides_for(time_samples_for(stride))


def test_strides_for_every_count_agree_with_brute_force() -> None:
    for samples in range(1, NT + 1):
        brute = [s for s in range(1, NT + 1) if time_samples_for(s) == samples]
        assert list(time_strides_for(samples)) == brute


def test_unique_strides_are_recovered_and_ambiguous_ones_refused() -> None:
    assert time_stride_for(334) == 3 and time_stride_for(143) == 7 and time_stride_for(250) == 4
    with pytest.raises(ValueError, match="from 200 to 249 ms; pass the stored time_stride"):
        time_stride_for(5)
    with pytest.raises(ValueError, match="no time stride keeps time_samples=999"):
        time_stride_for(999)


def test_config_prefers_the_stored_stride() -> None:
    assert config_time_stride({"time_samples": 5, "time_stride": 223}) == 223
    assert config_time_stride({"time_samples": 334}) == 3
    with pytest.raises(ValueError, match="pass the stored time_stride"):
        config_time_stride({"time_samples": 5})
    with pytest.raises(ValueError, match="neither"):
        config_time_stride({})


@pytest.mark.parametrize("stride", [3, 7, 201, 249])
def test_shards_record_the_count_of_their_stride(stride: int) -> None:
    from epic_zoo.data.catalog import get_dataset
    from epic_zoo.data.store import split_attrs

    attrs = split_attrs(
        get_dataset("flatvel-a"),
        "train",
        source="synthetic",
        seed=0,
        generator_version="1",
        backend="deepwave",
        time_stride=stride,
        dtype="float32",
        total=1,
        shard_size=1,
    )
    assert attrs["nt"] == len(range(0, NT, stride)) and attrs["time_stride"] == stride

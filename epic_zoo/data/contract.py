"""The input contract: what a network's records must look like, as one frozen object.

A network trained here expects records of one dataset's normalisation,
decimated to one time stride, split over one number of end devices. Those
facts are made once, by the data (:attr:`epic_zoo.data.datamodule.FWIDataModule.contract`),
stored with the weights (``config.json["contract"]``, the deployment manifest)
and read back by :func:`read_contract`, never worked out again from a sample
count (the time-axis map cannot be reversed, :mod:`epic_zoo.data.timeaxis`).

Files written before the contract existed hold ``dataset`` and ``time_stride``
(Hub ``config.json``, the datamodule's hyper-parameters in a Lightning
checkpoint); :func:`read_contract` derives the contract from them, in this one
place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from epic_zoo.data.catalog import get_dataset
from epic_zoo.data.geometry import (
    DEFAULT_NUM_DEVICES,
    NT,
    NUM_RECEIVERS,
    NUM_SOURCES,
    V_MAX,
    V_MIN,
)
from epic_zoo.data.timeaxis import time_samples_for, time_stride_for
from epic_zoo.data.transforms import ArrayLike, normalize_seismic_in

__all__ = ["InputContract", "read_contract"]


@dataclasses.dataclass(frozen=True)
class InputContract:
    """The records a network takes, and how they are normalised.

    Attributes:
        dataset: OpenFWI dataset name (``"flatvel-a"``); fixes the seismic normalisation.
        time_stride: ms between the kept time samples of a record (OpenFWI: 1 ms).
        time_samples: samples per record, ``ceil(1000 / time_stride)`` (the
            ``T`` of ``seismic [B, 5, T, 70]``).
        num_devices: end devices the 70 receivers are split over.
        seismic_min, seismic_max: raw amplitude range mapped (after a signed
            log) to ``[-1, 1]``; the dataset's OpenFWI statistics.
        v_min, v_max: velocity range in m/s mapped to ``[-1, 1]``.
    """

    dataset: str
    time_stride: int
    time_samples: int
    num_devices: int
    seismic_min: float
    seismic_max: float
    v_min: float
    v_max: float

    def __post_init__(self) -> None:
        if int(self.time_stride) < 1:
            raise ValueError(f"time_stride={self.time_stride} must be at least 1 ms")
        if int(self.time_samples) != time_samples_for(self.time_stride):
            raise ValueError(
                f"time_samples={self.time_samples} does not match time_stride={self.time_stride} "
                f"(records at {self.time_stride} ms keep {time_samples_for(self.time_stride)})"
            )
        if int(self.num_devices) < 1:
            raise ValueError(f"num_devices={self.num_devices} must be at least 1")

    @classmethod
    def make(
        cls, dataset: str, time_stride: int, num_devices: int = DEFAULT_NUM_DEVICES
    ) -> InputContract:
        """The contract of ``dataset`` records kept every ``time_stride`` ms over ``num_devices``."""
        info = get_dataset(dataset)
        return cls(
            dataset=info.name,
            time_stride=int(time_stride),
            time_samples=time_samples_for(int(time_stride)),
            num_devices=int(num_devices),
            seismic_min=float(info.data_min),
            seismic_max=float(info.data_max),
            v_min=float(V_MIN),
            v_max=float(V_MAX),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``config.json["contract"]``, the deployment manifest)."""
        return dataclasses.asdict(self)

    def describe_input(self) -> str:
        """``[B, 5, 1000, 70] at 1 ms or [B, 5, 250, 70] at 4 ms``: the records it takes, for messages."""
        raw = f"[B, {NUM_SOURCES}, {NT}, {NUM_RECEIVERS}] at 1 ms"
        if self.time_stride == 1:
            return raw
        return (
            f"{raw} or [B, {NUM_SOURCES}, {self.time_samples}, {NUM_RECEIVERS}] "
            f"at the weights' {self.time_stride} ms"
        )

    def decimate(self, records: ArrayLike, axis: int) -> ArrayLike:
        """Records whose time ``axis`` holds all 1000 ms -> every ``time_stride``-th sample.

        Plain slicing, as the training data were made; records of any other
        length are returned as they are (the caller checks ``time_samples``).
        """
        if records.shape[axis] != NT or self.time_stride == 1:
            return records
        index = [slice(None)] * records.ndim
        index[axis] = slice(None, None, self.time_stride)
        return records[tuple(index)]

    def normalize(self, seismic: ArrayLike) -> ArrayLike:
        """Raw records (any shape) -> ``[-1, 1]`` with this contract's seismic range."""
        return normalize_seismic_in(seismic, self.seismic_min, self.seismic_max)

    def model_inputs(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """A model's constructor ``kwargs`` with the inputs these data fix set (``time_samples``, ``num_devices``).

        Raises:
            ValueError: ``kwargs`` sets one of them to another value (names the fix).
        """
        out = dict(kwargs)
        for key, value in (("time_samples", self.time_samples), ("num_devices", self.num_devices)):
            given = out.setdefault(key, value)
            if int(given) != int(value):
                fix = (
                    "drop model.kwargs.time_samples (it is taken from the data) or set "
                    f"data.time_stride so records have {given} samples"
                    if key == "time_samples"
                    else "drop model.kwargs.num_devices or set data.num_devices to match"
                )
                raise ValueError(
                    f"model.kwargs.{key}={given} but the data give {key}={value} "
                    f"(dataset {self.dataset}, time_stride {self.time_stride}): {fix}"
                )
        return out


_FIELDS = tuple(f.name for f in dataclasses.fields(InputContract))


def read_contract(config: Mapping[str, Any], *, what: str = "the config") -> InputContract:
    """The one reader: the contract stored in ``config``.

    ``config`` is a Hub ``config.json`` or a deployment manifest (key
    ``contract``), or a legacy record without one: a Hub ``config.json`` with
    ``dataset`` and ``time_stride`` (and ``model_kwargs.num_devices``), or a
    datamodule's hyper-parameters (``dataset``, ``time_stride``,
    ``num_devices``). The stored contract must match this epic_zoo's catalog
    (normalisation ranges).

    Raises:
        ValueError: no contract can be read (names ``what`` and the missing keys),
            or the stored one disagrees with the catalog.
    """
    stored = config.get("contract")
    if isinstance(stored, Mapping):
        missing = [k for k in _FIELDS if k not in stored]
        if missing:
            raise ValueError(
                f"{what}: the input contract lacks {missing}; export the weights again"
            )
        contract = InputContract(**{k: stored[k] for k in _FIELDS})
        expected = InputContract.make(contract.dataset, contract.time_stride, contract.num_devices)
        if contract != expected:
            raise ValueError(
                f"{what}: the stored input contract {contract.as_dict()} differs from this "
                f"epic_zoo's {expected.as_dict()}; re-export the weights with this version"
            )
        return contract
    return _legacy_contract(config, what)


def _legacy_contract(config: Mapping[str, Any], what: str) -> InputContract:
    """Derive the contract of a record written before ``contract`` was stored."""
    dataset = config.get("dataset")
    if dataset is None:
        raise ValueError(f"{what}: no input contract and no dataset recorded; pass the dataset")
    kwargs = config.get("model_kwargs") or {}
    num_devices = config.get("num_devices", kwargs.get("num_devices", DEFAULT_NUM_DEVICES))
    stride = config.get("time_stride")
    if stride is None:  # only weights saved before the stride was stored
        samples = config.get("time_samples", kwargs.get("time_samples"))
        if samples is None:
            raise ValueError(f"{what}: no input contract, time_stride nor time_samples recorded")
        stride = time_stride_for(int(samples))
    return InputContract.make(str(dataset), int(stride), int(num_devices))

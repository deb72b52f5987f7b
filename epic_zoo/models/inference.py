"""Inversion in physical units: raw records in, velocity in m/s out (``model.invert``).

A network of the zoo maps *normalised* records ``[B, 5, T, 70]`` to a
*normalised* map ``[B, 1, 70, 70]`` in ``[-1, 1]``; what "normalised" means
(the dataset's seismic range, the time stride, the geometry) is fixed by the
weights and stored in their ``config.json`` (``model.pretrained_cfg``).
:func:`invert` applies that contract, so a user with OpenFWI records needs
nothing else::

    from epic_zoo.models import create_model
    model = create_model("epic.flatvel-a", pretrained=True)
    velocity = model.invert(records)   # [B, 5, 1000, 70] raw -> [B, 70, 70] m/s

Steps, exactly those of the training data (:mod:`epic_zoo.data.datamodule`):
plain slicing to the weights' time stride (``records[:, :, ::stride]``), the
OpenFWI seismic normalisation with the weights' dataset statistics
(:func:`epic_zoo.data.transforms.normalize_seismic`), the network, then
:func:`~epic_zoo.data.transforms.denormalize_velocity`. SeisBench calls this
step ``annotate``; timm keeps the same contract in ``pretrained_cfg``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from epic_zoo.data.catalog import get_dataset
from epic_zoo.data.geometry import NT, NUM_RECEIVERS, NUM_SOURCES, NX, NZ
from epic_zoo.data.timeaxis import config_time_stride, time_samples_for
from epic_zoo.data.transforms import denormalize_velocity, normalize_seismic

__all__ = ["InputContract", "input_contract", "invert", "prepare_records"]


@dataclass(frozen=True)
class InputContract:
    """What a network's input must be: set by its weights (``pretrained_cfg``), else given.

    Attributes:
        dataset: dataset whose seismic range normalises the records (``"flatvel-a"``).
        time_stride: ms between the samples the network sees (OpenFWI records: 1 ms).
        time_samples: ``T``, samples per record the network takes (``ceil(nt / stride)``).
        nt: samples of a raw record at 1 ms (1000 for OpenFWI).
        sources, receivers: the record's source and receiver axes (5, 70).
    """

    dataset: str
    time_stride: int
    time_samples: int
    nt: int = NT
    sources: int = NUM_SOURCES
    receivers: int = NUM_RECEIVERS

    def describe(self) -> str:
        """``[B, 5, 1000, 70] at 1 ms or [B, 5, 250, 70] at 4 ms`` for error messages."""
        raw = f"[B, {self.sources}, {self.nt}, {self.receivers}] at 1 ms"
        if self.time_stride == 1:
            return raw
        return (
            f"{raw} or [B, {self.sources}, {self.time_samples}, {self.receivers}] "
            f"at the weights' {self.time_stride} ms"
        )


def input_contract(model: nn.Module, dataset: str | None = None) -> InputContract:
    """The input contract of ``model``: from its weights' config, else ``dataset`` and its kwargs.

    Raises:
        ValueError: a fresh model without ``dataset``, or a ``dataset`` that
            contradicts the one the weights were trained on.
    """
    cfg: Mapping[str, Any] = getattr(model, "pretrained_cfg", None) or {}
    kwargs: Mapping[str, Any] = getattr(model, "config", None) or {}
    trained_on = cfg.get("dataset")
    if trained_on is not None and dataset is not None:
        if get_dataset(dataset).name != trained_on:
            raise ValueError(
                f"dataset={dataset!r}: these weights were trained on {trained_on!r} and expect "
                "records normalised with its statistics; drop dataset= (or load weights "
                f"trained on {dataset})"
            )
    dataset = trained_on or dataset
    if dataset is None:
        raise ValueError(
            f"{type(model).__name__} carries no pretrained config: pass dataset=NAME "
            "(e.g. 'flatvel-a'), the data whose normalisation it was trained with, or load it "
            "with create_model(NAME, pretrained=True)"
        )
    geometry = cfg.get("geometry") or {}
    stride = int(cfg["time_stride"]) if cfg.get("time_stride") else config_time_stride(kwargs)
    nt = int(geometry.get("nt", NT))
    samples = int(cfg.get("time_samples") or kwargs.get("time_samples") or 0)
    samples = samples or time_samples_for(stride, nt)
    return InputContract(
        dataset=get_dataset(dataset).name,
        time_stride=stride,
        time_samples=samples,
        nt=nt,
        sources=len(geometry.get("source_columns") or range(NUM_SOURCES)),
        receivers=len(geometry.get("receiver_columns") or range(NUM_RECEIVERS)),
    )


def _as_tensor(records: Any) -> torch.Tensor:
    if isinstance(records, torch.Tensor):
        tensor = records
    elif isinstance(records, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(records))
    else:
        raise TypeError(
            f"records must be a numpy array or torch tensor, got {type(records).__name__}"
        )
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int16, torch.int32)):
        raise TypeError(f"records must hold numbers in physical units, got dtype {tensor.dtype}")
    return tensor.float()


def prepare_records(
    records: np.ndarray | torch.Tensor, contract: InputContract, *, check_units: bool = True
) -> torch.Tensor:
    """Raw records -> the network's normalised input ``[B, sources, T, receivers]`` (float32).

    Args:
        records: raw records in physical units, ``[B, 5, 1000, 70]`` at 1 ms
            (OpenFWI's sampling) or ``[B, 5, T, 70]`` already at the weights'
            stride; a single ``[5, ., 70]`` record is a batch of one.
        contract: the weights' :class:`InputContract`.
        check_units: refuse records that look already normalised (every value
            within [-1, 1] while raw records of the dataset reach tens).

    Raises:
        ValueError: another shape, non-finite values, or records that look
            normalised (each message names the expected input).
    """
    x = _as_tensor(records)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    expected = contract.describe()
    if x.ndim != 4 or x.shape[1] != contract.sources or x.shape[3] != contract.receivers:
        raise ValueError(
            f"records of shape {list(records.shape)}: expected {expected} "
            "([batch, source, time, receiver], or one record without the batch axis)"
        )
    if x.shape[2] == contract.nt and contract.time_stride > 1:
        x = x[:, :, :: contract.time_stride]  # plain slicing, as the training data were made
    elif x.shape[2] != contract.time_samples:
        raise ValueError(
            f"records of shape {list(records.shape)} have {x.shape[2]} time samples: expected "
            f"{expected}"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError("records hold NaN or infinite values; remove or repair those samples")
    if check_units:
        info = get_dataset(contract.dataset)
        raw_peak = max(abs(info.data_min), abs(info.data_max))
        peak = float(x.abs().max()) if x.numel() else 0.0
        if peak <= 1.0 < raw_peak:
            raise ValueError(
                f"records look already normalised: every value lies within [-1, 1] (peak "
                f"{peak:.3g}) while raw {contract.dataset} records in physical units reach "
                f"{raw_peak:g}; pass the raw records (invert normalises them), call model(x) on "
                "normalised records, or pass check_units=False"
            )
    return normalize_seismic(x.contiguous(), contract.dataset)


def invert(
    model: nn.Module,
    records: np.ndarray | torch.Tensor,
    *,
    dataset: str | None = None,
    batch_size: int | None = None,
    check_units: bool = True,
) -> np.ndarray | torch.Tensor:
    """Velocity maps in m/s from raw records in physical units.

    Args:
        model: a network of the zoo (its weights' ``pretrained_cfg`` fixes the
            dataset normalisation, time stride and geometry).
        records: ``[B, 5, 1000, 70]`` at OpenFWI's 1 ms sampling, or
            ``[B, 5, T, 70]`` at the weights' own stride; ``[5, ., 70]`` for
            one record. numpy or torch, any float dtype.
        dataset: only for a model without weights' config (a fresh model); must
            equal the weights' dataset otherwise.
        batch_size: records per forward pass (default: all at once).
        check_units: see :func:`prepare_records`.

    Returns:
        ``[B, 70, 70]`` velocity in m/s (``[70, 70]`` for one record), float32,
        numpy for numpy input, else a tensor on the model's device.
    """
    contract = input_contract(model, dataset)
    x = prepare_records(records, contract, check_units=check_units)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    step = int(batch_size) if batch_size else max(1, len(x))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            outs = [model(x[i : i + step].to(device)) for i in range(0, len(x), step)]
    finally:
        model.train(was_training)
    velocity = denormalize_velocity(torch.cat(outs)).reshape(len(x), NZ, NX)
    if records.ndim == 3:
        velocity = velocity[0]
    if isinstance(records, np.ndarray):
        return velocity.cpu().numpy()
    return velocity

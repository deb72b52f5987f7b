"""Inversion in physical units: raw records in, velocity in m/s out (``model.invert``).

A network of the zoo maps *normalised* records ``[B, 5, T, 70]`` to a
*normalised* map ``[B, 1, 70, 70]`` in ``[-1, 1]``; what "normalised" means
(the dataset's seismic range, the time stride, the geometry) is fixed by the
weights and stored in their ``config.json`` (``model.contract``, :mod:`epic_zoo.data.contract`).
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
step ``annotate``; timm keeps such facts in ``pretrained_cfg``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from epic_zoo.data.catalog import get_dataset
from epic_zoo.data.contract import InputContract, read_contract
from epic_zoo.data.geometry import NUM_RECEIVERS, NUM_SOURCES, NX, NZ
from epic_zoo.data.transforms import denormalize_velocity

__all__ = ["InputContract", "input_contract", "invert", "prepare_records"]


def input_contract(model: nn.Module, dataset: str | None = None) -> InputContract:
    """The input contract of ``model``: its weights' (``model.contract``), else made for ``dataset``.

    A fresh model (no weights' contract) takes ``dataset`` and the time axis
    its constructor was given (``time_samples`` of a stride of OpenFWI's
    1,000 ms records).

    Raises:
        ValueError: a fresh model without ``dataset``, or a ``dataset`` that
            contradicts the one the weights were trained on.
    """
    contract: InputContract | None = getattr(model, "contract", None)
    cfg: Mapping[str, Any] = getattr(model, "pretrained_cfg", None) or {}
    if contract is None and cfg:
        contract = read_contract(cfg, what=str(cfg.get("name") or type(model).__name__))
    if contract is not None:
        if dataset is not None and get_dataset(dataset).name != contract.dataset:
            raise ValueError(
                f"dataset={dataset!r}: these weights were trained on {contract.dataset!r} and "
                "expect records normalised with its statistics; drop dataset= (or load weights "
                f"trained on {dataset})"
            )
        return contract
    if dataset is None:
        raise ValueError(
            f"{type(model).__name__} carries no input contract: pass dataset=NAME "
            "(e.g. 'flatvel-a'), the data whose normalisation it was trained with, or load it "
            "with create_model(NAME, pretrained=True)"
        )
    kwargs: Mapping[str, Any] = getattr(model, "config", None) or {}
    return read_contract(
        {"dataset": dataset, "model_kwargs": dict(kwargs)}, what=type(model).__name__
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
    expected = contract.describe_input()
    if x.ndim != 4 or x.shape[1] != NUM_SOURCES or x.shape[3] != NUM_RECEIVERS:
        raise ValueError(
            f"records of shape {list(records.shape)}: expected {expected} "
            "([batch, source, time, receiver], or one record without the batch axis)"
        )
    x = contract.decimate(x, axis=2)  # 1 ms records: plain slicing, as the training data were made
    if x.shape[2] != contract.time_samples:
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
    return contract.normalize(x.contiguous())


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
        model: a network of the zoo (its weights' ``contract`` fixes the
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

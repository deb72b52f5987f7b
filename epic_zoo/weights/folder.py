"""The Hub format: write and read one folder (config, weights, card).

One folder per weight, readable by ``huggingface_hub``:

- ``model.safetensors``: the network's ``state_dict`` (float tensors, buffers
  included); never a pickle;
- ``config.json``: ``architecture`` (a :func:`epic_zoo.models.create_model`
  name) and ``model_kwargs`` (its constructor arguments), the acquisition
  ``geometry`` (:meth:`epic_zoo.data.geometry.Geometry.as_dict`), the
  ``contract`` the network expects (:class:`epic_zoo.data.contract.InputContract`:
  dataset, time stride and samples, devices, normalisation ranges; folders
  written before it hold ``time_stride``, ``time_samples`` and
  ``normalization`` instead, read by :func:`epic_zoo.data.contract.read_contract`),
  the training ``record`` and test ``metrics``, and the epic_zoo version that
  wrote it;
- ``README.md``: a model card with Hub YAML metadata (``model-index`` with the
  test metrics) and the same record (:mod:`epic_zoo.weights.card`).

Weights-format layer: serialises a given network, never builds one, never
imports :mod:`epic_zoo.models`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_model
from torch import nn

import epic_zoo
from epic_zoo.data.catalog import get_dataset
from epic_zoo.data.contract import InputContract, read_contract
from epic_zoo.data.geometry import V_MAX, V_MIN, Geometry
from epic_zoo.provenance import git_commit
from epic_zoo.weights.card import card_text
from epic_zoo.weights.errors import HubFormatError
from epic_zoo.weights.files import (
    CARD_NAME,
    CONFIG_NAME,
    HUB_FILES,
    HUB_FORMAT,
    HUB_FORMAT_VERSION,
    WEIGHTS_NAME,
    atomic_write_text,
    read_json,
)
from epic_zoo.wire import is_distributed


def normalise_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``{"test/ssim": tensor(0.8), "val/ssim": ...} -> {"ssim": 0.8}``.

    Keeps the ``test/`` metrics when there are any (else the unprefixed ones),
    drops the prefix, keeps numbers only.
    """
    staged = {k[len("test/") :]: v for k, v in metrics.items() if k.startswith("test/")}
    staged = staged or {k: v for k, v in metrics.items() if "/" not in k}
    out = {}
    for key, value in staged.items():
        if isinstance(value, torch.Tensor):
            value = value.item()
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def normalization_stats(dataset: str) -> dict[str, Any]:
    """The normalisation a network trained on ``dataset`` expects (see :mod:`epic_zoo.data.transforms`)."""
    info = get_dataset(dataset)
    return {
        "seismic": {
            "transform": "sign(x)*log1p(|x|), then min-max to [-1, 1] with the log of data_min/data_max",
            "data_min": info.data_min,
            "data_max": info.data_max,
        },
        "velocity": {
            "transform": "2*(v - v_min)/(v_max - v_min) - 1, m/s -> [-1, 1]",
            "v_min": V_MIN,
            "v_max": V_MAX,
        },
    }


def model_config(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """``(architecture, constructor kwargs)`` from ``model.config`` (see epic_zoo.models)."""
    config = getattr(model, "config", None)
    if not isinstance(config, Mapping) or "name" not in config:
        raise HubFormatError(
            f"{type(model).__name__} has no `config` dict with a 'name' key; build it with "
            "epic_zoo.models.create_model(...) so it can be rebuilt from config.json"
        )
    kwargs = {k: v for k, v in config.items() if k != "name"}
    try:
        kwargs = json.loads(json.dumps(kwargs))
    except TypeError as err:
        raise HubFormatError(
            f"model.config of {config['name']!r} is not JSON-serialisable: {err}"
        ) from err
    return str(config["name"]), kwargs


def model_contract(model: nn.Module, dataset: str) -> InputContract:
    """The input contract of ``model`` trained on ``dataset``.

    The model's own (``model.contract``, set when it was loaded) where it names
    ``dataset``; else the one :func:`~epic_zoo.data.contract.read_contract`
    gives for a record of ``dataset`` and the model's constructor arguments.
    """
    contract = getattr(model, "contract", None)
    if isinstance(contract, InputContract) and contract.dataset == get_dataset(dataset).name:
        return contract
    _, kwargs = model_config(model)
    try:
        return read_contract({"dataset": dataset, "model_kwargs": kwargs}, what="the model")
    except ValueError as err:
        raise HubFormatError(f"{err}; pass contract=FWIDataModule.contract") from err


def build_config(
    model: nn.Module,
    dataset: str,
    *,
    contract: InputContract | None = None,
    name: str | None = None,
    record: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``config.json`` dict of ``model`` trained on ``dataset``.

    ``contract`` (the data module's) defaults to :func:`model_contract`; it must
    name ``dataset`` and the model's ``time_samples`` and ``num_devices``.
    """
    architecture, kwargs = model_config(model)
    dataset = get_dataset(dataset).name
    contract = contract if contract is not None else model_contract(model, dataset)
    if contract.dataset != dataset:
        raise HubFormatError(f"the input contract is for {contract.dataset}, not {dataset}")
    for key in ("time_samples", "num_devices"):
        if key in kwargs and int(kwargs[key]) != int(getattr(contract, key)):
            raise HubFormatError(
                f"the model takes {key}={kwargs[key]}, its input contract says "
                f"{getattr(contract, key)}; pass the contract of the data it was trained on"
            )
    config: dict[str, Any] = {
        "format": HUB_FORMAT,
        "format_version": HUB_FORMAT_VERSION,
        "name": name or f"{architecture}.{dataset}",
        "architecture": architecture,
        "model_kwargs": kwargs,
        "dataset": dataset,
        "contract": contract.as_dict(),
        "geometry": Geometry().as_dict(),
        "params": int(sum(p.numel() for p in model.parameters())),
        "payload_bytes": int(model.payload_bytes()) if is_distributed(model) else None,
        "metrics": normalise_metrics(metrics or {}),
        "record": dict(record or {}),
        "epic_zoo_version": epic_zoo.__version__,
        "torch_version": torch.__version__,
    }
    return config


def save_hub_folder(
    model: nn.Module,
    out_dir: str | Path,
    *,
    dataset: str,
    contract: InputContract | None = None,
    name: str | None = None,
    record: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
) -> Path:
    """Write ``model`` as a Hub-format folder (``model.safetensors``, ``config.json``, ``README.md``).

    Args:
        model: an epic_zoo network (has ``.config``); saved in float32 as it is.
        out_dir: folder to create or overwrite the three files in.
        dataset: dataset the weights were trained on (sets the normalisation stats).
        contract: the input contract of the training data (default: see :func:`build_config`).
        name: pretrained name (default ``"{architecture}.{dataset}"``).
        record: training record (recipe, data profile and sizes, generator version and
            seed, epochs, commit, ...); ``commit`` defaults to this checkout's.
        metrics: test metrics (``"test/ssim"`` or ``"ssim"`` keys).
        repo_id: Hub repo id, used in the model card's example.

    Returns:
        ``out_dir`` as a ``Path``.
    """
    record = dict(record or {})
    record.setdefault("commit", git_commit())
    config = build_config(
        model, dataset, contract=contract, name=name, record=record, metrics=metrics
    )
    return write_hub_folder(model, out_dir, config, repo_id=repo_id)


def write_hub_folder(
    model: nn.Module,
    out_dir: str | Path,
    config: Mapping[str, Any],
    *,
    repo_id: str | None = None,
) -> Path:
    """Write ``model``'s weights, ``config`` (as given) and its card into ``out_dir``.

    Writing the config a folder was loaded with (``model.pretrained_cfg``)
    reproduces the folder's ``config.json`` and ``model.safetensors`` byte for
    byte. The architecture in ``config`` must be the model's own.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    architecture, _ = model_config(model)
    if config.get("architecture") != architecture:
        raise HubFormatError(
            f"config architecture {config.get('architecture')!r} is not the model's {architecture!r}"
        )
    save_model(model, str(out_dir / WEIGHTS_NAME), metadata={"format": "pt"})
    atomic_write_text(out_dir / CONFIG_NAME, json.dumps(dict(config), indent=2) + "\n")
    atomic_write_text(out_dir / CARD_NAME, card_text(config, repo_id))
    return out_dir


def read_config(folder: str | Path, *, what: str | None = None) -> dict[str, Any]:
    """Read and validate ``config.json`` of a Hub-format folder.

    Checks the format, the architecture/kwargs keys, the acquisition geometry
    (must be OpenFWI's) and the normalisation stats (must be the catalog's).
    Raises :class:`HubFormatError` (or ``ValueError`` from the geometry check).
    """
    folder = Path(folder)
    what = what or str(folder)
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise HubFormatError(
            f"{what}: no {CONFIG_NAME} in {folder}; a Hub-format folder holds "
            f"{', '.join(HUB_FILES)} (write one with `python -m epic_zoo.hub push CKPT --dry-run --out DIR`)"
        )
    config = read_json(path, fix=f"download {what} again")
    if config.get("format") != HUB_FORMAT:
        raise HubFormatError(
            f"{what}: {path} is not an epic_zoo config (format {HUB_FORMAT!r} expected)"
        )
    if config.get("format_version") != HUB_FORMAT_VERSION:
        raise HubFormatError(
            f"{what}: config format_version {config.get('format_version')} is not "
            f"{HUB_FORMAT_VERSION}; upgrade epic_zoo (`pip install -U epic_zoo`)"
        )
    for key in ("architecture", "model_kwargs", "dataset", "geometry"):
        if key not in config:
            raise HubFormatError(f"{what}: {path} lacks the key {key!r}")
    if "contract" not in config and not {"time_stride", "normalization"} <= set(config):
        raise HubFormatError(f"{what}: {path} lacks the key 'contract'")
    Geometry().check_compatible(config["geometry"], what=f"{what} ({CONFIG_NAME})")
    if "normalization" in config:  # folders written before the contract
        _check_legacy_normalization(config, what)
    try:
        read_contract(config, what=what)
    except ValueError as err:
        raise HubFormatError(str(err)) from err
    return config


def _check_legacy_normalization(config: Mapping[str, Any], what: str) -> None:
    expected = normalization_stats(config["dataset"])
    got = config["normalization"]
    for part, fields in (("seismic", ("data_min", "data_max")), ("velocity", ("v_min", "v_max"))):
        for field in fields:
            value = got.get(part, {}).get(field)
            if value is None or not math.isclose(
                float(value), float(expected[part][field]), rel_tol=1e-6
            ):
                raise HubFormatError(
                    f"{what}: normalization.{part}.{field}={value!r} differs from epic_zoo's "
                    f"{expected[part][field]!r} for {config['dataset']}; these weights expect other "
                    "inputs, re-export them with this epic_zoo version"
                )

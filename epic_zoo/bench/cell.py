"""One sweep cell (model, dataset): test data, the model, fidelity, payload facts, panels.

Hardware costs are not measured here: every architecture of a sweep is timed
together, interleaved (:mod:`epic_zoo.bench.costs`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from epic_zoo.bench.settings import BenchError, Settings
from epic_zoo.data.catalog import get_dataset
from epic_zoo.data.geometry import OPENFWI_GEOMETRY, V_MAX, V_MIN
from epic_zoo.data.store import SHARD_GLOB, H5Split, ShardedArrays, profile_root
from epic_zoo.data.transforms import denormalize_velocity, normalize_seismic, normalize_velocity
from epic_zoo.hardware import payload as pl
from epic_zoo.models import create_model, load_model

METRICS: tuple[str, ...] = ("ssim", "ssim_openfwi", "mae", "rmse", "mae_ms", "rmse_ms")
ROUNDTRIP_SAMPLES: int = 4
"""Test samples whose prediction is rebuilt from payload bytes."""
ZLIB_SAMPLES: int = 16
"""Test samples (the first ones) whose zlib sizes are averaged."""
PANEL_SAMPLES: int = 3
"""Test samples shown in the panels plot."""


# --------------------------------------------------------------------------- data


def open_test_split(folder: Path, dataset: str) -> ShardedArrays:
    """Raw reader of a test split: HDF5 shards in ``folder`` or ``folder/test``, or OpenFWI ``.npy`` pairs."""
    from epic_zoo.data.openfwi import OpenFWIFolder

    for candidate in (folder, folder / "test"):
        if candidate.is_dir() and any(candidate.glob(SHARD_GLOB)):
            return H5Split(candidate)
    if any(folder.rglob("*.npy")):
        return OpenFWIFolder(folder, dataset, split="test")
    raise FileNotFoundError(
        f"{folder}: no shard-*.h5 files, test/ folder or .npy pairs found there; make test data "
        f"with `python -m epic_zoo.data generate --dataset {dataset} --split test --num 200 --out DIR`"
    )


def test_source(settings: Settings, dataset: str) -> ShardedArrays:
    """The raw test split of ``dataset``: from ``settings.data`` if given, else the synthetic
    store at the sweep's profile (generated if missing).

    Raises :class:`BenchError` if it is missing or holds no sample.
    """
    from epic_zoo.data.generate import ensure_data
    from epic_zoo.data.store import DataError

    info = get_dataset(dataset)
    try:
        if settings.data is not None:
            root = Path(settings.data)
            spellings = (info.name, info.openfwi_name, info.openfwi_name.replace("-", "_"))
            folder = next((root / s for s in spellings if (root / s).exists()), root)
            source = open_test_split(folder, info.name)
        else:
            folder = profile_root(settings.data_root, settings.profile, settings.seed) / info.name
            if not any((folder / "test").glob("shard-*.h5")):
                folder = ensure_data(
                    info.name, settings.profile, settings.data_root, settings.seed, progress=False
                )
            source = H5Split(folder / "test")
    except (DataError, FileNotFoundError, ValueError) as err:
        raise BenchError(f"test data of {info.name}: {err}") from err
    if str(source.attrs.get("dataset", info.name)) != info.name:
        raise BenchError(f"{folder} holds {source.attrs['dataset']} data, not {info.name}")
    if len(source) == 0:
        raise BenchError(
            f"the test split of {info.name} in {folder} is empty; regenerate or re-import it"
        )
    return source


def normalised_batch(
    source: ShardedArrays, dataset: str, step: int, indices: Sequence[int]
) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    """Test samples ``indices``, every ``step``-th stored time sample: ``(seismic normalised
    [B, 5, T, 70], seismic raw float32 [B, 5, T, 70], velocity normalised [B, 1, 70, 70])``."""
    raws, vels = [], []
    for i in indices:
        seismic, velocity = source[int(i)]
        raws.append(np.ascontiguousarray(seismic[:, ::step], dtype=np.float32))
        vels.append(velocity)
    raw = np.stack(raws)
    seismic = torch.from_numpy(normalize_seismic(raw, dataset).astype(np.float32))
    return seismic, raw, torch.from_numpy(normalize_velocity(np.stack(vels)).astype(np.float32))


# --------------------------------------------------------------------------- models


def find_checkpoint(root: Path, model: str, dataset: str) -> Path:
    """Weights of ``model`` trained on ``dataset`` under ``root``.

    Looked up as ``root/MODEL.DATASET`` (Hub-format or run folder),
    ``root/MODEL.DATASET.ckpt``, ``root/DATASET/MODEL``, ``root/MODEL/DATASET``,
    then any Hub-format folder below ``root`` whose ``config.json`` names both.
    """
    for candidate in (
        root / f"{model}.{dataset}",
        root / f"{model}.{dataset}.ckpt",
        root / dataset / model,
        root / model / dataset,
    ):
        if candidate.exists():
            return candidate
    for config in sorted(root.rglob("config.json")):
        try:
            cfg = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if cfg.get("architecture") == model and cfg.get("dataset") == dataset:
            return config.parent
    raise BenchError(
        f"no weights for {model} on {dataset} under {root}: expected {root}/{model}.{dataset}/ "
        f"(Hub-format or run folder) or {root}/{model}.{dataset}.ckpt; export one with "
        "`python -m epic_zoo.hub push ... --dry-run --out DIR` or sweep with --fidelity none"
    )


def load_bench_model(
    settings: Settings, name: str, dataset: str, time_samples: int, time_stride: int
) -> tuple[nn.Module, dict[str, Any]]:
    """The model of one sweep cell and its metadata, in eval mode.

    The sweep's one place that turns a name into a model: untrained
    (``fidelity="none"``, ``time_samples`` long records at ``time_stride`` ms),
    a registry name ``MODEL.DATASET`` (``pretrained``), or weights found under
    ``settings.checkpoints`` (Hub folder, Lightning ``.ckpt`` or run folder).

    Returns ``(model, meta)`` with meta keys ``checkpoint`` (where the weights
    came from), ``dataset``, ``time_stride`` (ms), ``geometry``, ``epochs``,
    ``profile`` (``None`` where unknown). Raises :class:`BenchError` if the
    weights are another architecture or were trained on another dataset or
    acquisition geometry.
    """
    if settings.fidelity == "none":
        model = create_model(name, time_samples=time_samples)
        return model.eval(), {
            "checkpoint": "untrained",
            "dataset": None,
            "time_stride": time_stride,
        }
    dataset = get_dataset(dataset).name
    try:
        if settings.fidelity == "pretrained":
            source = f"{name}.{dataset}"
        else:
            source = str(find_checkpoint(Path(settings.checkpoints or "."), name, dataset))
        model = load_model(source)
    except (KeyError, RuntimeError, ValueError) as err:
        raise BenchError(f"weights of {name} on {dataset}: {err}") from err
    loaded = model.source
    contract = model.contract
    cfg = loaded["config"] or {}
    record = cfg.get("record") or {}
    if "info" in loaded:  # a Lightning checkpoint or run folder
        record = {
            "epochs": loaded["info"]["epoch"],
            "profile": loaded["info"]["datamodule_hparams"].get("profile"),
        }
    meta = {
        "checkpoint": source,
        "dataset": loaded["dataset"],
        "time_stride": contract.time_stride if contract is not None else None,
        "geometry": cfg.get("geometry"),
        "epochs": record.get("epochs"),
        "profile": record.get("profile"),
    }
    arch = model.config["name"]
    if arch != name:
        raise BenchError(
            f"{source} holds a {arch!r} model, not {name!r}; point the sweep at {name}'s weights"
        )
    trained_on = meta["dataset"]
    if trained_on is not None and get_dataset(trained_on).name != dataset:
        raise BenchError(
            f"{source} was trained on {trained_on}, not {dataset}; benchmark it on {trained_on} "
            f"or use {name}'s {dataset} weights"
        )
    if meta["geometry"]:
        try:
            OPENFWI_GEOMETRY.check_compatible(meta["geometry"], what=source)
        except ValueError as err:
            raise BenchError(str(err)) from err
    return model.eval(), meta


def time_step(model: nn.Module, meta: dict[str, Any], source: ShardedArrays, what: str) -> int:
    """Stored samples to skip so the test records match the model's time sampling.

    Raises :class:`BenchError` when the model's stride is not a multiple of the
    data's or the resulting length differs from the model's ``time_samples``.
    """
    time_samples = int(model.config["time_samples"])
    stored_stride, stored = int(source.attrs["time_stride"]), int(source.attrs["nt"])
    stride = int(meta.get("time_stride") or stored_stride)
    step = stride // stored_stride
    if step < 1 or stride % stored_stride or len(range(0, stored, step)) != time_samples:
        raise BenchError(
            f"{what} takes {time_samples} time samples (stride {stride} ms) but the test data hold "
            f"{stored} at stride {stored_stride} ms; benchmark it on data with a compatible time stride"
        )
    return step


# --------------------------------------------------------------------------- facts


def fidelity_facts(
    model: nn.Module, source: ShardedArrays, dataset: str, step: int, settings: Settings
) -> dict[str, Any]:
    """Test metrics (:data:`METRICS`) and ``test_samples`` of ``model`` on ``source``."""
    from epic_zoo.data.datamodule import FWIDataset
    from epic_zoo.metrics import inversion_metrics

    try:
        data: Any = FWIDataset(source, time_stride=step * int(source.attrs["time_stride"]))
    except ValueError as err:
        raise BenchError(f"test data of {dataset}: {err}") from err
    if settings.limit is not None:
        data = Subset(data, range(min(settings.limit, len(data))))
    metrics = inversion_metrics()
    count = 0
    with torch.inference_mode():
        for batch in DataLoader(data, batch_size=settings.batch_size, shuffle=False):
            metrics.update(model(batch["seismic"]), batch["velocity"])
            count += batch["seismic"].shape[0]
        values = {k: float(v) for k, v in metrics.compute().items()}
    return {**{k: values[k] for k in METRICS}, "test_samples": count}


def misfit_facts(
    model: nn.Module, source: ShardedArrays, dataset: str, step: int, settings: Settings
) -> dict[str, Any]:
    """``misfit`` (mean relative L2 data misfit of the predicted maps) and ``misfit_samples``.

    Covers the first ``settings.physics_limit`` test samples (within
    ``settings.limit``); predictions are clipped to 1500..4500 m/s and compared
    with the raw records at the model's time sampling.
    """
    from epic_zoo.wave_physics import data_misfit

    count = min(len(source), settings.limit or len(source), settings.physics_limit)
    seismic, raw, _ = normalised_batch(source, dataset, step, range(count))
    with torch.inference_mode():
        pred = torch.cat(
            [
                model(seismic[i : i + settings.batch_size])
                for i in range(0, count, settings.batch_size)
            ]
        )
    velocity = denormalize_velocity(pred.clone().float()).clamp(V_MIN, V_MAX)
    stride = step * int(source.attrs["time_stride"])
    result = data_misfit(velocity, raw, data_time_stride=stride)
    return {"misfit": float(result.sample.mean()), "misfit_samples": count}


def payload_facts(
    model: nn.Module, seismic: torch.Tensor, raw: np.ndarray, dataset: str
) -> dict[str, Any]:
    """Real payload bytes of a few samples and the bytes -> prediction check.

    Returns ``codec_bytes_per_device`` (what the model's codec says one device
    sends; float32 raw size for centralised models), ``raw_bytes_per_sample``
    (float32 records at the model's time sampling, all devices) and
    ``roundtrip_max_abs_error`` (largest difference between the prediction
    rebuilt from the bytes alone, float32 raw for centralised models, and the
    in-process one).
    """
    receivers = pl.model_receivers(model)
    raw_bytes = sum(pl.raw_payload_bytes(raw.shape[2], len(idx)) for idx in receivers)
    with torch.inference_mode():
        expected = model(seismic)
    if pl.is_distributed(model):
        rebuilt = pl.decode_payloads(model, pl.encode_payloads(model, seismic))
        codec = int(model.payload_bytes())
    else:
        records = pl.records_from_payloads(pl.raw_payloads(raw, receivers), raw.shape[2])
        with torch.inference_mode():
            rebuilt = model(
                torch.from_numpy(normalize_seismic(records, dataset).astype(np.float32))
            )
        codec = max(pl.raw_payload_bytes(raw.shape[2], len(idx)) for idx in receivers)
    return {
        "codec_bytes_per_device": codec,
        "raw_bytes_per_sample": raw_bytes,
        "roundtrip_max_abs_error": float((rebuilt - expected).abs().max()),
    }


def zlib_sizes(raw: np.ndarray, receivers: Sequence[np.ndarray]) -> dict[str, tuple[int, ...]]:
    """Mean zlib payload per device over the samples of ``raw`` ``[B, 5, T, 70]``, per raw format
    (``f32-zlib``, ``f16-zlib``), rounded to bytes."""
    out = {}
    for precision, compressed in pl.RAW_FORMATS:
        if compressed:
            sizes = pl.payload_sizes(
                pl.compress_payloads(pl.raw_payloads(raw, receivers, precision))
            )
            name = pl.raw_format_name(precision, compressed)
            out[name] = tuple(int(round(s)) for s in sizes.mean(axis=1))
    return out


def save_panels(
    model: nn.Module, name: str, seismic: torch.Tensor, velocity: torch.Tensor, folder: Path
) -> None:
    """Truth and ``name``'s predictions of the first test samples, m/s ``[S, 70, 70]`` ``.npy``."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "truth.npy", denormalize_velocity(velocity[:, 0].numpy()))
    with torch.inference_mode():
        np.save(folder / f"{name}.npy", denormalize_velocity(model(seismic)[:, 0].numpy()))

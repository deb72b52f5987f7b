"""The benchmark harness: fidelity next to payload, latency and energy, for every zoo model.

Command line (``python -m epic_zoo.bench --help``)::

    python -m epic_zoo.bench --profile tiny                       # untrained models, hardware only
    python -m epic_zoo.bench --profile lite --checkpoints DIR     # trained weights from a folder
    python -m epic_zoo.bench --profile lite --pretrained          # registry names MODEL.DATASET
    python -m epic_zoo.bench --profile lite --train               # train each via epic_zoo.run.train

It sweeps datasets x models x links and writes one row per (model, dataset,
link) to ``OUT/bench.csv`` (default ``OUT = benchmarks/results/bench``), a Markdown
table ``OUT/bench.md`` and plots under ``OUT/plots/``. Each row holds:

- fidelity on the test split (``ssim`` torchmetrics, ``ssim_openfwi``,
  ``mae``/``rmse`` on the [-1, 1] scale and ``mae_ms``/``rmse_ms`` in m/s),
  empty with ``--no-fidelity`` (the default when no weights are named);
- payload: real bytes per device and per sample (codec output for
  distributed models, raw float32 records for centralised ones, zlib for the
  ``inversionnet+zlib`` row), checked against the codec's own count, and the
  largest error between the prediction rebuilt from those bytes and the
  in-process one (``roundtrip_max_abs_error``, 0 when exact);
- encoder parameters / FLOPs, latency and energy per sample with their
  breakdown, from measured (``*_measured``) and FLOP-count (``*_flops``)
  compute times (:mod:`epic_zoo.hardware.simulator`);
- ratios to centralised InversionNet on the same link and dataset
  (``latency_ratio_* = ref_latency_s_* / latency_s_*``; > 1 means faster), and
  the ``ref_*`` columns they divide;
- the conditions: commit, torch version, CPU, threads, data profile and sizes;
- with ``--misfit`` only (off by default; the columns are absent otherwise):
  ``misfit``, the mean relative L2 data misfit of the predicted maps
  (:func:`epic_zoo.physics.data_misfit`: records simulated from the
  prediction against the observed ones, all shots, whole record) over the
  first ``misfit_samples`` test samples (``--physics-limit``, default 8).

Finished rows are kept: rerunning the same command continues the sweep
(``--restart`` starts over). ``--wandb`` logs the table and plots as one W&B run
(offline unless logged in).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import hashlib
import json
import math
import os
import platform
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from tqdm.auto import tqdm

import epic_zoo
from epic_zoo.data.catalog import DATASET_NAMES, get_dataset
from epic_zoo.data.geometry import NT, OPENFWI_GEOMETRY
from epic_zoo.data.profiles import get_profile
from epic_zoo.data.store import H5Split, ShardedArrays, profile_root
from epic_zoo.data.transforms import denormalize_velocity, normalize_seismic, normalize_velocity
from epic_zoo.hardware import payload as pl
from epic_zoo.hardware.profiles import (
    CENTRALS,
    DEVICES,
    LINKS,
    ComputeProfile,
    LinkProfile,
    get_central,
    get_device,
    get_link,
)
from epic_zoo.hardware.simulator import SOURCES, ModelCost, measure_cost, simulate, speed_ratio
from epic_zoo.models import create_model, list_models

DEFAULT_MODELS: tuple[str, ...] = (
    "epic",
    "epic-equal",
    "epic-isolated",
    "split",
    "federated",
    "inversionnet",
)
DEFAULT_LINKS: tuple[str, ...] = ("wifi", "4g")
BASELINE: str = "inversionnet"
"""Centralised model every ratio is taken against."""
ZLIB_ROW: str = f"{BASELINE}+zlib"
"""Extra row: the baseline sending zlib-compressed raw records (lossless)."""
FIDELITY_SOURCES: tuple[str, ...] = ("none", "checkpoints", "pretrained", "train")
METRICS: tuple[str, ...] = ("ssim", "ssim_openfwi", "mae", "rmse", "mae_ms", "rmse_ms")
ROUNDTRIP_SAMPLES: int = 4
"""Test samples whose prediction is rebuilt from payload bytes."""
PHYSICS_LIMIT: int = 8
"""Default number of test samples (the first ones) of the ``--misfit`` column."""
CSV_NAME, MD_NAME, RUN_NAME = "bench.csv", "bench.md", "run.json"


class BenchError(ValueError):
    """Bad benchmark input; the message names it and the fix."""


# --------------------------------------------------------------------------- settings


@dataclasses.dataclass
class Settings:
    """What a sweep computes; stored in ``OUT/run.json`` so a resumed sweep matches it.

    Attributes:
        profile: data profile (``tiny``/``lite``/``full``) of the test data.
        datasets, models, links: the sweep.
        device, central: compute profiles of the end devices and the centre.
        fidelity: ``none`` (untrained models, no metrics), ``checkpoints``
            (folder), ``pretrained`` (registry ``MODEL.DATASET``) or ``train``.
        checkpoints: folder of Hub-format folders / Lightning checkpoints.
        train_overrides: extra Hydra overrides for ``--train``.
        data_root: cache root of the synthetic data (default: the store's).
        data: read test data from here instead of the synthetic store: an
            epic_zoo split/dataset folder or an OpenFWI ``.npy`` folder, either
            directly (one dataset) or in a sub-folder named after each dataset.
        seed: data seed.
        limit: evaluate at most this many test samples (``None``: all).
        batch_size: evaluation batch size.
        repeats: timing repeats per measurement (median).
        zlib: add the ``inversionnet+zlib`` row when inversionnet is swept.
        profiles_file: YAML of extra/overridden hardware profiles.
        misfit: add the ``misfit`` / ``misfit_samples`` columns (data misfit
            of the predictions, wave-equation simulation; slow on a CPU).
        physics_limit: test samples (the first ones) the misfit covers.
    """

    profile: str = "lite"
    datasets: list[str] = dataclasses.field(default_factory=lambda: list(DATASET_NAMES))
    models: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_MODELS))
    links: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_LINKS))
    device: str = "rpi4"
    central: str = "server-cpu"
    fidelity: str = "none"
    checkpoints: str | None = None
    train_overrides: list[str] = dataclasses.field(default_factory=list)
    data_root: str | None = None
    data: str | None = None
    seed: int = 0
    limit: int | None = None
    batch_size: int = 16
    repeats: int = 5
    zlib: bool = True
    profiles_file: str | None = None
    misfit: bool = False
    physics_limit: int = PHYSICS_LIMIT

    def identity(self) -> dict[str, Any]:
        """The settings a resumed sweep must share (the sweep lists may grow).

        The misfit settings join only when ``misfit`` is on, so sweeps made
        without it keep their identity (and resume as before).
        """
        keep = (
            "profile",
            "device",
            "central",
            "fidelity",
            "checkpoints",
            "train_overrides",
            "data",
            "seed",
            "limit",
        )
        out = {k: getattr(self, k) for k in keep}
        if self.misfit:
            out["misfit"] = True
            out["physics_limit"] = self.physics_limit
        if self.profiles_file:
            out["profiles_sha256"] = hashlib.sha256(
                Path(self.profiles_file).read_bytes()
            ).hexdigest()
        return out


@dataclasses.dataclass(frozen=True)
class Hardware:
    """Resolved profiles of a sweep."""

    links: dict[str, LinkProfile]
    device: ComputeProfile
    central: ComputeProfile


def _yaml_number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_profiles_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a YAML of extra hardware profiles.

    Layout: top-level keys ``links``, ``devices``, ``centrals``; under each, a
    profile name mapping to its fields, optionally ``base: NAME`` to start from
    a built-in profile and override only some fields::

        links:
          wifi-slow: {base: wifi, bandwidth_bps: 6.5e6}

    Returns ``{"links": {name: LinkProfile}, "devices": ..., "centrals": ...}``.
    Raises :class:`BenchError` naming the bad entry (unknown field, base, or a
    zero/negative value).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise BenchError(f"cannot read profiles file {path}: {err}") from err
    if not isinstance(data, dict) or set(data) - {"links", "devices", "centrals"}:
        raise BenchError(
            f"{path}: top-level keys must be among links, devices, centrals; got {sorted(data)}"
        )
    tables = {
        "links": (LINKS, LinkProfile),
        "devices": (DEVICES, ComputeProfile),
        "centrals": (CENTRALS, ComputeProfile),
    }
    out: dict[str, dict[str, Any]] = {"links": {}, "devices": {}, "centrals": {}}
    for kind, entries in data.items():
        table, cls = tables[kind]
        for name, fields in (entries or {}).items():
            # PyYAML reads 6.5e6 (no sign in the exponent) as a string
            fields = {k: _yaml_number(v) for k, v in dict(fields or {}).items()}
            base = fields.pop("base", None)
            try:
                if base is not None:
                    if base not in table:
                        raise BenchError(
                            f"unknown base {base!r}; choose one of: {', '.join(table)}"
                        )
                    profile = dataclasses.replace(table[base], name=str(name), **fields)
                else:
                    profile = cls(
                        name=str(name), description=fields.pop("description", str(name)), **fields
                    )
            except (TypeError, ValueError) as err:
                raise BenchError(f"{path}: {kind}.{name}: {err}") from err
            out[kind][str(name)] = profile
    return out


def resolve_hardware(settings: Settings) -> Hardware:
    """Look up every named profile (built-in or from ``profiles_file``); clear errors for unknown names."""
    extra = (
        load_profiles_file(settings.profiles_file)
        if settings.profiles_file
        else {"links": {}, "devices": {}, "centrals": {}}
    )

    def pick(kind: str, name: str, getter) -> Any:
        if name in extra[kind]:
            return extra[kind][name]
        try:
            return getter(name)
        except KeyError as err:
            names = sorted(
                {*{"links": LINKS, "devices": DEVICES, "centrals": CENTRALS}[kind], *extra[kind]}
            )
            raise BenchError(
                f"unknown {kind[:-1]} profile {name!r}; choose one of: {', '.join(names)}"
            ) from err

    if not settings.links:
        raise BenchError("no links to sweep; pass --links wifi,4g")
    return Hardware(
        links={name: pick("links", name, get_link) for name in settings.links},
        device=pick("devices", settings.device, get_device),
        central=pick("centrals", settings.central, get_central),
    )


def check_settings(settings: Settings) -> None:
    """Validate names and values before any work; raises :class:`BenchError`."""
    try:
        get_profile(settings.profile)
    except KeyError as err:
        raise BenchError(str(err.args[0])) from err
    if not settings.datasets or not settings.models:
        raise BenchError("nothing to sweep: pass at least one dataset and one model")
    for name in settings.datasets:
        try:
            get_dataset(name)
        except KeyError as err:
            raise BenchError(str(err.args[0])) from err
    known = list_models()
    for name in settings.models:
        if name not in known:
            raise BenchError(f"unknown model {name!r}; choose from: {', '.join(known)}")
    if settings.fidelity not in FIDELITY_SOURCES:
        raise BenchError(f"fidelity={settings.fidelity!r}; choose one of {FIDELITY_SOURCES}")
    if settings.fidelity == "checkpoints" and not (
        settings.checkpoints and Path(settings.checkpoints).is_dir()
    ):
        raise BenchError(f"--checkpoints {settings.checkpoints}: no such folder")
    if settings.limit is not None and settings.limit < 1:
        raise BenchError(f"--limit {settings.limit} must be >= 1")
    if settings.repeats < 1 or settings.batch_size < 1:
        raise BenchError("--repeats and --batch-size must be >= 1")
    if settings.misfit and settings.physics_limit < 1:
        raise BenchError(f"--physics-limit {settings.physics_limit} must be >= 1")
    resolve_hardware(settings)


# --------------------------------------------------------------------------- models and data


def test_source(settings: Settings, dataset: str) -> ShardedArrays:
    """The raw test split of ``dataset``: from ``settings.data`` if given, else the synthetic
    store at the sweep's profile (generated if missing).

    Raises :class:`BenchError` if it is missing or holds no sample.
    """
    from epic_zoo.data.store import DataError, ensure_data
    from epic_zoo.evaluate import open_data

    info = get_dataset(dataset)
    try:
        if settings.data is not None:
            root = Path(settings.data)
            spellings = (info.name, info.openfwi_name, info.openfwi_name.replace("-", "_"))
            folder = next((root / s for s in spellings if (root / s).exists()), root)
            source = open_data(folder, info.name, "test")
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
        f"no weights for {model} on {dataset} under {root}: expected {root}/{model}.{dataset}/ (Hub-format "
        f"or run folder) or {root}/{model}.{dataset}.ckpt; export one with `python -m epic_zoo.hub push ... "
        "--dry-run --out DIR` or sweep with --no-fidelity"
    )


def load_weights(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Model and metadata (``dataset``, ``time_stride``, ``geometry``, ``epochs``, ``profile``)
    from a Hub-format folder, a Lightning ``.ckpt`` or a run folder."""
    from epic_zoo import hub

    if path.is_dir() and (path / hub.CONFIG_NAME).is_file():
        model = hub.load_hub_folder(path)
        cfg = model.pretrained_cfg
        record = cfg.get("record") or {}
        return model, {
            "dataset": cfg.get("dataset"),
            "time_stride": cfg.get("time_stride"),
            "geometry": cfg.get("geometry"),
            "epochs": record.get("epochs"),
            "profile": record.get("profile"),
        }
    ckpt = path if path.is_file() else hub.find_run_checkpoint(path)
    model, info = hub.model_from_checkpoint(ckpt)
    dm = info["datamodule_hparams"]
    return model, {
        "dataset": dm.get("dataset"),
        "time_stride": dm.get("time_stride"),
        "geometry": None,
        "epochs": info["epoch"],
        "profile": dm.get("profile"),
    }


def train_weights(settings: Settings, model: str, dataset: str, out: Path) -> Path:
    """Train ``model`` on ``dataset`` at the sweep's data profile with the runner
    (:func:`epic_zoo.run.train_from_overrides`: the model's lite recipe plus
    ``settings.train_overrides``); returns the checkpoint it wrote.

    Runs live in ``out/runs/MODEL/DATASET`` unless an override sets ``run_dir``;
    a stopped sweep resumes them.
    """
    from epic_zoo import run

    overrides = [
        f"model={model}",
        f"data.dataset={dataset}",
        f"data.profile={settings.profile}",
        f"data.seed={settings.seed}",
        *([f"data.root={settings.data_root}"] if settings.data_root else []),
        *settings.train_overrides,
    ]
    if not any(o.split("=", 1)[0] == "run_dir" for o in overrides):
        overrides.append(f"run_dir={out / 'runs' / model / dataset}")
    try:
        summary = run.train_from_overrides(overrides)
    except ValueError as err:
        raise BenchError(f"training {model} on {dataset}: {err}") from err
    if not summary.get("checkpoint"):
        raise BenchError(
            f"training {model} on {dataset} wrote no checkpoint ({summary.get('run_dir')})"
        )
    return Path(summary["checkpoint"])


def load_model(
    settings: Settings, name: str, dataset: str, time_samples: int, out: Path
) -> tuple[nn.Module, dict[str, Any]]:
    """The model of one sweep cell and its metadata (``checkpoint``, ``dataset``, ``time_stride``, ...).

    Raises :class:`BenchError` if the weights were trained on another dataset,
    another acquisition geometry, or are another architecture.
    """
    if settings.fidelity == "none":
        model = create_model(name, time_samples=time_samples).eval()
        return model, {
            "checkpoint": "untrained",
            "dataset": None,
            "time_stride": NT // time_samples,
        }
    if settings.fidelity == "pretrained":
        from epic_zoo import hub

        tag = f"{name}.{get_dataset(dataset).name}"
        try:
            model = hub.load_pretrained(tag)
        except (KeyError, RuntimeError, ValueError) as err:
            raise BenchError(f"pretrained {tag}: {err}") from err
        cfg = model.pretrained_cfg
        meta = {
            "dataset": cfg.get("dataset"),
            "time_stride": cfg.get("time_stride"),
            "geometry": cfg.get("geometry"),
        }
        meta.update(
            epochs=(cfg.get("record") or {}).get("epochs"),
            profile=(cfg.get("record") or {}).get("profile"),
        )
        source = tag
    else:
        if settings.fidelity == "checkpoints":
            path = find_checkpoint(Path(settings.checkpoints), name, get_dataset(dataset).name)
        else:
            path = train_weights(settings, name, dataset, out)
        try:
            model, meta = load_weights(path)
        except ValueError as err:
            raise BenchError(f"{path}: {err}") from err
        source = str(path)
    arch = model.config["name"]
    if arch != name:
        raise BenchError(
            f"{source} holds a {arch!r} model, not {name!r}; point the sweep at {name}'s weights"
        )
    trained_on = meta.get("dataset")
    if trained_on is not None and get_dataset(trained_on).name != get_dataset(dataset).name:
        raise BenchError(
            f"{source} was trained on {trained_on}, not {dataset}; benchmark it on {trained_on} or use "
            f"{name}'s {dataset} weights"
        )
    if meta.get("geometry"):
        try:
            OPENFWI_GEOMETRY.check_compatible(meta["geometry"], what=source)
        except ValueError as err:
            raise BenchError(str(err)) from err
    return model.eval(), {**meta, "checkpoint": source}


def normalised_batch(
    source: ShardedArrays, dataset: str, stride_step: int, indices: Sequence[int]
) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    """Test samples ``indices`` decimated by ``stride_step``: ``(seismic normalised
    [B, 5, T, 70], seismic raw float32 [B, 5, T, 70], velocity normalised [B, 1, 70, 70])``."""
    raws, vels = [], []
    for i in indices:
        seismic, velocity = source[int(i)]
        raws.append(np.ascontiguousarray(seismic[:, ::stride_step], dtype=np.float32))
        vels.append(velocity)
    raw = np.stack(raws)
    seismic = torch.from_numpy(normalize_seismic(raw, dataset).astype(np.float32))
    return seismic, raw, torch.from_numpy(normalize_velocity(np.stack(vels)).astype(np.float32))


# --------------------------------------------------------------------------- one cell


def payload_facts(
    model: nn.Module,
    seismic: torch.Tensor,
    raw: np.ndarray,
    dataset: str,
    *,
    compressed: bool = False,
) -> dict[str, Any]:
    """Real payload bytes of a few samples and the bytes -> prediction check.

    Returns ``payload_kind`` (``latent``/``raw``/``zlib``), ``codec_bytes_per_device``
    (what the model's codec says one device sends; raw float32 size for
    centralised models), ``raw_bytes_per_sample`` and ``roundtrip_max_abs_error``
    (largest difference between the prediction rebuilt from the bytes alone and
    the in-process one).
    """
    receivers = pl.model_receivers(model)
    raw_bytes = sum(pl.raw_payload_bytes(raw.shape[2], len(idx)) for idx in receivers)
    with torch.inference_mode():
        expected = model(seismic)
    if pl.is_distributed(model):
        payloads = pl.encode_payloads(model, seismic)
        rebuilt = pl.decode_payloads(model, payloads)
        kind, codec = "latent", int(model.payload_bytes())
    else:
        payloads = pl.raw_payloads(raw, receivers)
        codec = max(pl.raw_payload_bytes(raw.shape[2], len(idx)) for idx in receivers)
        if compressed:
            payloads = pl.compress_payloads(payloads)
        records = pl.records_from_payloads(payloads, raw.shape[2], compressed=compressed)
        with torch.inference_mode():
            rebuilt = model(
                torch.from_numpy(normalize_seismic(records, dataset).astype(np.float32))
            )
        kind = "zlib" if compressed else "raw"
    return {
        "payload_kind": kind,
        "codec_bytes_per_device": codec,
        "raw_bytes_per_sample": raw_bytes,
        "roundtrip_max_abs_error": float((rebuilt - expected).abs().max()),
    }


def evaluate_fidelity(
    model: nn.Module, source: ShardedArrays, time_stride: int, settings: Settings
) -> dict[str, Any]:
    """Test metrics (``METRICS`` + ``test_samples``) of ``model``; checks its time samples fit the data."""
    from epic_zoo.data.datamodule import FWIDataset
    from epic_zoo.evaluate import evaluate_model

    try:
        data = FWIDataset(source, time_stride=time_stride)
    except ValueError as err:
        raise BenchError(f"{err}") from err
    result = evaluate_model(model, data, batch_size=settings.batch_size, limit=settings.limit)
    return {**{k: result[k] for k in METRICS}, "test_samples": int(result["num_samples"])}


def misfit_facts(
    model: nn.Module,
    source: ShardedArrays,
    dataset: str,
    stride_step: int,
    time_stride: int,
    settings: Settings,
) -> dict[str, Any]:
    """``misfit`` (mean relative L2 data misfit of the predicted maps) and ``misfit_samples``.

    Covers the first ``settings.physics_limit`` test samples (within
    ``settings.limit``); predictions are clipped to 1500..4500 m/s and compared
    with the raw records decimated to the model's ``time_stride`` (ms).
    """
    from epic_zoo.evaluate import predicted_velocity_ms
    from epic_zoo.physics import data_misfit

    count = min(len(source), settings.limit or len(source), settings.physics_limit)
    seismic, raw, _ = normalised_batch(source, dataset, stride_step, range(count))
    with torch.inference_mode():
        pred = torch.cat(
            [
                model(seismic[i : i + settings.batch_size])
                for i in range(0, count, settings.batch_size)
            ]
        )
    velocity = predicted_velocity_ms(pred.clone())
    result = data_misfit(velocity, raw, data_time_stride=time_stride)
    return {"misfit": float(result.sample.mean()), "misfit_samples": count}


def model_facts(model: nn.Module, cost: ModelCost) -> dict[str, Any]:
    config = model.config
    return {
        "architecture": config["name"],
        "distributed": cost.distributed,
        "params": cost.params,
        "encoder_params": cost.encoder_params,
        "encoder_flops": cost.device_flops[0],
        "central_flops": cost.central_flops,
        "num_devices": cost.num_devices,
        "codec_bits": int(getattr(model, "codec_bits", 32)),
        "time_samples": int(config["time_samples"]),
    }


def link_rows(
    name: str,
    dataset: str,
    facts: dict[str, Any],
    cost: ModelCost,
    ref_cost: ModelCost,
    hardware: Hardware,
    links: Sequence[str],
) -> list[dict[str, Any]]:
    """One row per link of ``links``: ``facts`` + simulated latency/energy + ratios to the reference."""
    rows = []
    for link_name in links:
        link = hardware.links[link_name]
        est = {
            s: simulate(cost, link, hardware.device, hardware.central, source=s) for s in SOURCES
        }
        ref = {
            s: simulate(ref_cost, link, hardware.device, hardware.central, source=s)
            for s in SOURCES
        }
        row: dict[str, Any] = {"model": name, "dataset": dataset, "link": link_name, **facts}
        for s in SOURCES:
            row[f"latency_s_{s}"] = est[s].latency_s
            row[f"device_compute_s_{s}"] = est[s].device_compute_s
            row[f"central_compute_s_{s}"] = est[s].central_compute_s
        row["comm_s"] = est["measured"].comm_s
        row["propagation_s"] = est["measured"].propagation_s
        for s in SOURCES:
            row[f"energy_j_{s}"] = est[s].energy_j
            row[f"device_compute_j_{s}"] = est[s].device_compute_j
            row[f"central_compute_j_{s}"] = est[s].central_compute_j
        row["comm_energy_j"] = est["measured"].comm_energy_j
        row["radio_listen_j"] = est["measured"].radio_listen_j
        row["radio_energy_j"] = est["measured"].radio_energy_j
        for s in SOURCES:
            row[f"ref_latency_s_{s}"] = ref[s].latency_s
            row[f"ref_energy_j_{s}"] = ref[s].energy_j
        row["ref_comm_energy_j"] = ref["measured"].comm_energy_j
        row["ref_radio_energy_j"] = ref["measured"].radio_energy_j
        row["ref_payload_bytes_per_sample"] = float(sum(ref_cost.payload_bytes))
        for s in SOURCES:
            row[f"latency_ratio_{s}"] = row[f"ref_latency_s_{s}"] / row[f"latency_s_{s}"]
            row[f"energy_ratio_{s}"] = row[f"ref_energy_j_{s}"] / row[f"energy_j_{s}"]
        row["comm_energy_ratio"] = row["ref_comm_energy_j"] / row["comm_energy_j"]
        row["radio_energy_ratio"] = row["ref_radio_energy_j"] / row["radio_energy_j"]
        row["payload_ratio"] = row["ref_payload_bytes_per_sample"] / row["payload_bytes_per_sample"]
        row["host_gflops_1thread"] = cost.host_flops / 1e9
        row["device_speed_ratio"] = speed_ratio(hardware.device, cost.host_flops)
        row["central_speed_ratio"] = speed_ratio(hardware.central, cost.host_flops)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- conditions and files


def git_commit() -> str:
    """``HEAD`` commit (``+dirty`` with uncommitted changes), or ``"unknown"`` outside git."""
    from epic_zoo import hub

    return hub._git_commit() or "unknown"


def cpu_name() -> str:
    """CPU model name from ``/proc/cpuinfo`` (Linux), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def conditions(settings: Settings, hardware: Hardware) -> dict[str, Any]:
    """Columns that say how the numbers were made (same in every row of a sweep)."""
    prof = get_profile(settings.profile)
    return {
        "device_profile": hardware.device.name,
        "central_profile": hardware.central.name,
        "fidelity_source": settings.fidelity,
        # with --data the profile does not describe the test data: see test_data
        "data_profile": None if settings.data else prof.name,
        "train_samples": None if settings.data else prof.train,
        "val_samples": None if settings.data else prof.val,
        "test_samples_profile": None if settings.data else prof.test,
        "data_time_stride": None if settings.data else prof.time_stride,
        "data_dtype": None if settings.data else prof.dtype,
        "seed": settings.seed,
        "commit": git_commit(),
        "epic_zoo_version": epic_zoo.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "timing_threads": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Write ``rows`` atomically (columns in first-seen order)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
    tmp.replace(path)


def _parse(value: str) -> Any:
    if value == "":
        return None
    if value in ("True", "False"):
        return value == "True"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``bench.csv`` with numbers parsed back (empty cells -> ``None``)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The sweep as Markdown: a summary per (model, link) and every row."""
    lines = ["# epic_zoo benchmark", ""]
    if rows:
        c = rows[0]
        lines += [
            (
                f"Data profile `{c['data_profile']}` (train/val/test {c['train_samples']}/"
                f"{c['val_samples']}/{c['test_samples_profile']}, time stride {c['data_time_stride']})"
                if c["data_profile"]
                else f"Test data `{c['test_data']}`"
            )
            + f", fidelity from "
            f"`{c['fidelity_source']}`; devices `{c['device_profile']}`, centre `{c['central_profile']}`; "
            f"commit `{c['commit']}`, torch {c['torch_version']}, {c['cpu']} ({c['cpu_count']} cores; "
            f"timing at 1 thread; this machine ran the reference convs at {c['host_gflops_1thread']:.1f} GFLOP/s).",
            "",
            "Ratios are centralised InversionNet on the same link divided by the model "
            "(> 1: the model is faster / spends less); summary ratios are geometric means over datasets.",
            "",
            "## Summary",
            "",
            "| model | link | datasets | SSIM | payload B/device | payload / raw | latency ms (meas / FLOPs) "
            "| latency x (meas / FLOPs) | comm energy mJ | comm energy x |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault((row["model"], row["link"]), []).append(row)
        for (model, link), group in groups.items():
            ssim = [r["ssim"] for r in group if r.get("ssim") is not None]

            def gmean(key: str, group=group) -> float:
                return float(np.exp(np.mean([np.log(r[key]) for r in group])))

            def mean(key: str, group=group) -> float:
                return float(np.mean([r[key] for r in group]))

            lines.append(
                f"| {model} | {link} | {len(group)} | {_fmt(float(np.mean(ssim)) if ssim else None)} "
                f"| {mean('payload_bytes_per_device'):,.0f} "
                f"| 1/{mean('raw_bytes_per_sample') / mean('payload_bytes_per_sample'):.0f} "
                f"| {1e3 * mean('latency_s_measured'):.2f} / {1e3 * mean('latency_s_flops'):.2f} "
                f"| {gmean('latency_ratio_measured'):.2f} / {gmean('latency_ratio_flops'):.2f} "
                f"| {1e3 * mean('comm_energy_j'):.3g} | {gmean('comm_energy_ratio'):.1f} |"
            )
        lines += [
            "",
            "## All rows",
            "",
            "| model | dataset | link | SSIM | SSIM (OpenFWI) | MAE m/s | payload B/device | latency ms "
            "(meas / FLOPs) | energy mJ (meas) | comm energy mJ | latency x (meas) | comm energy x |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['model']} | {r['dataset']} | {r['link']} | {_fmt(r.get('ssim'))} | {_fmt(r.get('ssim_openfwi'))} "
                f"| {_fmt(r.get('mae_ms'))} | {r['payload_bytes_per_device']:,.0f} "
                f"| {1e3 * r['latency_s_measured']:.2f} / {1e3 * r['latency_s_flops']:.2f} "
                f"| {1e3 * r['energy_j_measured']:.3g} | {1e3 * r['comm_energy_j']:.3g} "
                f"| {r['latency_ratio_measured']:.2f} | {r['comm_energy_ratio']:.1f} |"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plots


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_fidelity_vs_payload(rows: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """SSIM against payload bytes per sample (log x), one point per (model, dataset)."""
    points = {(r["model"], r["dataset"]): r for r in rows if r.get("ssim") is not None}
    if not points:
        return None
    fig = _figure(6.5, 4.5)
    ax = fig.subplots()
    for model in dict.fromkeys(m for m, _ in points):
        group = [r for (m, _), r in points.items() if m == model]
        ax.scatter(
            [r["payload_bytes_per_sample"] for r in group],
            [r["ssim"] for r in group],
            label=model,
            s=24,
        )
    ax.set_xscale("log")
    ax.set_xlabel("payload per sample, all devices (bytes)")
    ax.set_ylabel("SSIM (torchmetrics)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
    return path


_LATENCY_PARTS = (
    ("device_compute_s_measured", "device compute"),
    ("comm_s", "transmission"),
    ("propagation_s", "propagation"),
    ("central_compute_s_measured", "central compute"),
)
_ENERGY_PARTS = (
    ("device_compute_j_measured", "device compute"),
    ("comm_energy_j", "radio transmit"),
    ("radio_listen_j", "radio listen"),
    ("central_compute_j_measured", "central compute"),
)


def plot_breakdown(
    rows: Sequence[dict[str, Any]],
    parts: Sequence[tuple[str, str]],
    unit: str,
    scale: float,
    path: Path,
) -> Path:
    """Stacked bars per model (mean over datasets), one panel per link (measured compute times)."""
    links = list(dict.fromkeys(r["link"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig = _figure(3.2 + 2.6 * len(links), 4.2)
    axes = fig.subplots(1, len(links), squeeze=False)[0]
    for ax, link in zip(axes, links, strict=True):
        bottom = np.zeros(len(models))
        for key, label in parts:
            values = np.array(
                [
                    scale * np.mean([r[key] for r in rows if r["link"] == link and r["model"] == m])
                    for m in models
                ]
            )
            ax.bar(models, values, bottom=bottom, label=label)
            bottom += values
        ax.set_title(link)
        ax.set_ylabel(unit)
        ax.tick_params(axis="x", rotation=60, labelsize=8)
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=100)
    return path


def plot_panels(panel_dir: Path, dataset: str, path: Path) -> Path | None:
    """Truth and every model's prediction of test sample 0 of ``dataset`` (m/s)."""
    from epic_zoo.data.geometry import DX, NX, NZ, V_MAX, V_MIN

    folder = panel_dir / dataset
    truth = folder / "truth.npy"
    if not truth.is_file():
        return None
    maps = [("truth", np.load(truth))] + [
        (p.stem, np.load(p)) for p in sorted(folder.glob("*.npy")) if p.stem != "truth"
    ]
    fig = _figure(2.3 * len(maps), 2.6)
    axes = fig.subplots(1, len(maps), squeeze=False)[0]
    extent = (0.0, NX * DX / 1000.0, NZ * DX / 1000.0, 0.0)
    for ax, (label, image) in zip(axes, maps, strict=True):
        shown = ax.imshow(
            image.reshape(NZ, NX) / 1000.0,
            vmin=V_MIN / 1000,
            vmax=V_MAX / 1000,
            cmap="viridis",
            extent=extent,
        )
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("offset (km)", fontsize=8)
    axes[0].set_ylabel("depth (km)", fontsize=8)
    fig.colorbar(shown, ax=list(axes), label="km/s", shrink=0.8)
    fig.suptitle(f"{dataset}, test sample 0")
    fig.savefig(path, dpi=100)
    return path


def write_plots(rows: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """Every plot of the sweep under ``out/plots``; returns the files written."""
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    written = [
        plot_fidelity_vs_payload(rows, plots / "fidelity_vs_payload.png"),
        plot_breakdown(
            rows, _LATENCY_PARTS, "latency per sample (ms)", 1e3, plots / "latency_per_link.png"
        ),
        plot_breakdown(
            rows, _ENERGY_PARTS, "energy per sample (mJ)", 1e3, plots / "energy_per_link.png"
        ),
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        written.append(plot_panels(out / "panels", dataset, plots / f"panels_{dataset}.png"))
    return [p for p in written if p is not None]


# --------------------------------------------------------------------------- W&B


def log_wandb(
    rows: Sequence[dict[str, Any]],
    plots: Iterable[Path],
    settings: Settings,
    out: Path,
    project: str,
) -> None:
    """Log the sweep as one W&B run: config, a ``wandb.Table`` of the rows, the plots; finished in ``finally``."""
    import wandb

    from epic_zoo.run import wandb_mode

    run = wandb.init(
        project=project,
        job_type="bench",
        config=dataclasses.asdict(settings),
        dir=str(out),
        mode=wandb_mode(),
    )
    exit_code = 1
    try:
        columns = list(dict.fromkeys(k for r in rows for k in r))
        table = wandb.Table(
            columns=columns, data=[[_cell(r.get(c)) for c in columns] for r in rows]
        )
        run.log({"bench/table": table, **{f"bench/{p.stem}": wandb.Image(str(p)) for p in plots}})
        exit_code = 0
    finally:
        run.finish(exit_code=exit_code)


# --------------------------------------------------------------------------- the sweep


def _cost(cache_dir: Path, key: str, make) -> ModelCost:
    """A :class:`ModelCost` cached as JSON (so resumed sweeps reuse the same timings)."""
    path = cache_dir / f"{key}.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        try:
            return ModelCost(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        except TypeError:  # written by another epic_zoo version: measure again
            pass
    cost = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cost.as_dict()), encoding="utf-8")
    return cost


def _row_names(name: str, settings: Settings) -> list[str]:
    return [name, ZLIB_ROW] if name == BASELINE and settings.zlib else [name]


def run_bench(
    settings: Settings, out: str | Path, *, restart: bool = False, progress: bool = True
) -> list[dict[str, Any]]:
    """Run (or continue) the sweep; returns every row of ``out/bench.csv``.

    Raises :class:`BenchError` for bad input (names, weights for another
    dataset/geometry, an empty test split, non-positive profile values) or when
    ``out`` holds a sweep made with other settings (pass ``restart=True``).
    """
    check_settings(settings)
    hardware = resolve_hardware(settings)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_file, csv_path = out / RUN_NAME, out / CSV_NAME
    if restart:
        for stale in (run_file, csv_path):
            stale.unlink(missing_ok=True)
        for folder in ("costs", "panels"):
            shutil.rmtree(out / folder, ignore_errors=True)
    if run_file.is_file():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        if previous != settings.identity():
            changed = sorted(
                k
                for k in {*previous, *settings.identity()}
                if previous.get(k) != settings.identity().get(k)
            )
            raise BenchError(
                f"{out} holds a sweep made with other settings ({', '.join(changed)}); use another --out or --restart"
            )
    run_file.write_text(json.dumps(settings.identity(), indent=2) + "\n", encoding="utf-8")
    rows = read_csv(csv_path)
    done = {(r["model"], r["dataset"], r["link"]) for r in rows}
    common = conditions(settings, hardware)
    # the baseline first: its cost is every other row's reference
    models = sorted(settings.models, key=lambda m: m != BASELINE)
    cells = [(d, m) for d in settings.datasets for m in models]
    bar = tqdm(cells, desc="bench", unit="cell", disable=not progress)
    for dataset, name in bar:
        dataset = get_dataset(dataset).name
        names = _row_names(name, settings)
        if all((n, dataset, link) in done for n in names for link in settings.links):
            continue
        bar.set_postfix_str(f"{name} on {dataset}")
        rows.extend(run_cell(settings, hardware, dataset, name, out, done, common))
        write_csv(rows, csv_path)
    bar.close()
    (out / MD_NAME).write_text(markdown_table(rows), encoding="utf-8")
    return rows


def run_cell(
    settings: Settings,
    hardware: Hardware,
    dataset: str,
    name: str,
    out: Path,
    done: set[tuple[str, str, str]],
    common: dict[str, Any],
) -> list[dict[str, Any]]:
    """Rows of one (dataset, model): load, evaluate, count bytes, time, simulate every link."""
    source = test_source(settings, dataset)
    stored_samples = int(source.attrs["nt"])
    model, meta = load_model(settings, name, dataset, stored_samples, out)
    time_samples = int(model.config["time_samples"])
    stride = int(meta.get("time_stride") or NT // time_samples)
    step = stride // int(source.attrs["time_stride"])
    if (
        step < 1
        or stride % int(source.attrs["time_stride"])
        or len(range(0, stored_samples, step)) != time_samples
    ):
        raise BenchError(
            f"{meta['checkpoint']} takes {time_samples} time samples (stride {stride} ms) but the "
            f"{settings.profile} test data hold {stored_samples} at stride {source.attrs['time_stride']} ms; "
            "benchmark it at a data profile with a compatible time stride"
        )
    fidelity: dict[str, Any] = dict.fromkeys((*METRICS, "test_samples"))
    if settings.fidelity != "none":
        fidelity = evaluate_fidelity(model, source, stride, settings)
    if settings.misfit:
        fidelity.update(misfit_facts(model, source, dataset, step, stride, settings))
    count = min(len(source), settings.limit or len(source))
    seismic, raw, velocity = normalised_batch(
        source, dataset, step, range(min(count, ROUNDTRIP_SAMPLES))
    )
    zlib_batch = (
        raw
        if count <= ROUNDTRIP_SAMPLES
        else normalised_batch(source, dataset, step, range(count))[1]
    )
    if settings.fidelity != "none":
        panels = out / "panels" / dataset
        panels.mkdir(parents=True, exist_ok=True)
        np.save(panels / "truth.npy", denormalize_velocity(velocity[0, 0].numpy()))
        with torch.inference_mode():
            np.save(panels / f"{name}.npy", denormalize_velocity(model(seismic[:1])[0, 0].numpy()))
    costs_dir = out / "costs" / dataset
    timing = {"repeats": settings.repeats}
    # costs are cached per dataset and record length, the baseline's from an untrained
    # InversionNet (weights change neither its timing nor its bytes)
    ref_cost = _cost(
        costs_dir,
        f"{BASELINE}-T{time_samples}",
        lambda: measure_cost(
            create_model(BASELINE, time_samples=time_samples).eval(), seismic[:1], raw[:1], **timing
        ),
    )
    common_cell = {
        "checkpoint": meta["checkpoint"],
        "trained_on": meta.get("dataset"),
        "train_epochs": meta.get("epochs"),
        "train_profile": meta.get("profile"),
        "time_stride": stride,
        "test_data": str(getattr(source, "path", None) or getattr(source, "root", "")),
    }
    rows = []
    for row_name in _row_names(name, settings):
        todo = [link for link in settings.links if (row_name, dataset, link) not in done]
        if not todo:
            continue
        compressed = row_name == ZLIB_ROW
        facts = payload_facts(model, seismic, raw, dataset, compressed=compressed)
        if compressed:
            sizes = pl.payload_sizes(
                pl.compress_payloads(pl.raw_payloads(zlib_batch, pl.model_receivers(model)))
            )
            cost = _cost(
                costs_dir,
                f"{row_name}-T{time_samples}",
                lambda: measure_cost(model, seismic[:1], raw[:1], compress=True, **timing),
            )
            cost = dataclasses.replace(
                cost, payload_bytes=tuple(int(round(s)) for s in sizes.mean(axis=1))
            )
        elif row_name == BASELINE:
            cost = ref_cost
        else:
            cost = _cost(
                costs_dir,
                f"{row_name}-T{time_samples}",
                lambda: measure_cost(model, seismic[:1], raw[:1], **timing),
            )
        facts["payload_bytes_per_device"] = max(cost.payload_bytes)
        facts["payload_bytes_per_sample"] = sum(cost.payload_bytes)
        facts["payload_fraction_of_raw"] = (
            facts["payload_bytes_per_sample"] / facts["raw_bytes_per_sample"]
        )
        cell = {**model_facts(model, cost), **common_cell, **fidelity, **facts}
        rows.extend(
            row | common
            for row in link_rows(row_name, dataset, cell, cost, ref_cost, hardware, todo)
        )
    return rows


# --------------------------------------------------------------------------- command line


def _names(value: str, valid: Sequence[str]) -> list[str]:
    if value.strip().lower() == "all":
        return list(valid)
    return [v.strip() for v in value.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m epic_zoo.bench",
        description="Sweep datasets x models x links: fidelity, payload bytes, simulated latency and energy.",
    )
    parser.add_argument(
        "--profile", default="lite", help="data profile of the test data: tiny, lite, full (lite)"
    )
    parser.add_argument(
        "--datasets", default="all", help="comma-separated dataset names or 'all' (all ten)"
    )
    parser.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help=f"comma-separated model names ({', '.join(list_models())})",
    )
    parser.add_argument(
        "--links", default=",".join(DEFAULT_LINKS), help=f"link profiles ({', '.join(LINKS)})"
    )
    parser.add_argument(
        "--device", default="rpi4", help=f"end-device profile ({', '.join(DEVICES)})"
    )
    parser.add_argument(
        "--central", default="server-cpu", help=f"central-node profile ({', '.join(CENTRALS)})"
    )
    parser.add_argument(
        "--profiles-file", help="YAML of extra hardware profiles (links/devices/centrals)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--checkpoints", help="folder of trained weights (MODEL.DATASET Hub/run folders or .ckpt)"
    )
    source.add_argument(
        "--pretrained", action="store_true", help="load registry weights MODEL.DATASET"
    )
    source.add_argument(
        "--train", action="store_true", help="train each model at --profile via epic_zoo.run.train"
    )
    source.add_argument(
        "--no-fidelity",
        action="store_true",
        help="untrained models: payload/latency/energy only (default)",
    )
    parser.add_argument(
        "--train-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Hydra override for --train (repeatable)",
    )
    parser.add_argument(
        "--data-root", help="cache root of the synthetic data (default $EPIC_ZOO_DATA)"
    )
    parser.add_argument(
        "--data",
        help="test data instead of the synthetic store: epic_zoo or OpenFWI .npy folder "
        "(one dataset, or one sub-folder per dataset)",
    )
    parser.add_argument("--seed", type=int, default=0, help="data seed (0)")
    parser.add_argument("--limit", type=int, help="evaluate at most N test samples")
    parser.add_argument("--batch-size", type=int, default=16, help="evaluation batch size (16)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats, median taken (5)")
    parser.add_argument(
        "--no-zlib", action="store_true", help="leave out the inversionnet+zlib row"
    )
    parser.add_argument(
        "--misfit",
        action="store_true",
        help="add a data-misfit column (wave-equation simulation of the predictions; slow on a CPU)",
    )
    parser.add_argument(
        "--physics-limit",
        type=int,
        default=PHYSICS_LIMIT,
        metavar="K",
        help=f"--misfit covers the first K test samples ({PHYSICS_LIMIT})",
    )
    parser.add_argument(
        "--out", default="benchmarks/results/bench", help="output folder (benchmarks/results/bench)"
    )
    parser.add_argument(
        "--restart", action="store_true", help="discard finished rows in --out and start over"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--wandb",
        action="store_true",
        help="log the sweep as one W&B run (offline unless logged in)",
    )
    parser.add_argument("--wandb-project", default="epic_zoo", help="W&B project (epic_zoo)")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    fidelity = (
        "checkpoints"
        if args.checkpoints
        else "pretrained"
        if args.pretrained
        else "train"
        if args.train
        else "none"
    )
    return Settings(
        profile=args.profile,
        datasets=_names(args.datasets, DATASET_NAMES),
        models=_names(args.models, DEFAULT_MODELS),
        links=_names(args.links, list(LINKS)),
        device=args.device,
        central=args.central,
        fidelity=fidelity,
        checkpoints=args.checkpoints,
        train_overrides=list(args.train_override),
        data_root=args.data_root,
        data=args.data,
        seed=args.seed,
        limit=args.limit,
        batch_size=args.batch_size,
        repeats=args.repeats,
        zlib=not args.no_zlib,
        profiles_file=args.profiles_file,
        misfit=args.misfit,
        physics_limit=args.physics_limit,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m epic_zoo.bench``; returns the exit status (2 on bad input)."""
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # timings are single-threaded; evaluation shares the machine
    try:
        rows = run_bench(settings, args.out, restart=args.restart)
        plots = [] if args.no_plots else write_plots(rows, Path(args.out))
        if args.wandb:
            log_wandb(rows, plots, settings, Path(args.out), args.wandb_project)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(threads)
    print(f"{len(rows)} rows in {Path(args.out) / CSV_NAME}; table {Path(args.out) / MD_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

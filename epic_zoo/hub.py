"""Pretrained weights: the Hub format, the registry, download and publish.

One folder per weight (the *Hub format*), readable by ``huggingface_hub``:

- ``model.safetensors``: the network's ``state_dict`` (float tensors, buffers
  included); never a pickle;
- ``config.json``: ``architecture`` (a :func:`epic_zoo.models.create_model`
  name) and ``model_kwargs`` (its constructor arguments), the acquisition
  ``geometry`` (:meth:`epic_zoo.data.geometry.Geometry.as_dict`), the
  ``normalization`` the network expects (dataset seismic min/max, velocity
  range), ``time_stride`` and ``time_samples``, the training ``record`` and test
  ``metrics``, and the epic_zoo version that wrote it;
- ``README.md``: a model card with Hub YAML metadata and the same record.

``checkpoints/registry.json`` maps a pretrained name such as
``epic.flatvel-a`` to its Hub repo id, pinned revision, sha256 of
``model.safetensors``, metrics, data profile and (when committed) a local
folder under ``checkpoints/``. :func:`load_pretrained` resolves a name in this
order: committed local folder -> Hugging Face cache -> Hub download at the
pinned revision; every file is checked against the registry's sha256 before it
is loaded, and a download that fails the check is deleted from the cache.

Command line (``python -m epic_zoo.hub --help``)::

    python -m epic_zoo.hub list
    python -m epic_zoo.hub pull epic.flatvel-a
    python -m epic_zoo.hub push RUN.ckpt --repo-id ORG/NAME --dataset flatvel-a [--dry-run --out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import fnmatch
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import (
    HfApi,
    ModelCard,
    ModelCardData,
    PyTorchModelHubMixin,
    hf_hub_download,
    try_to_load_from_cache,
)
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from torch import nn

import epic_zoo
from epic_zoo.data.catalog import get_dataset
from epic_zoo.data.geometry import NT, V_MAX, V_MIN, Geometry

HUB_FORMAT = "epic_zoo.hub"
"""Value of ``config.json["format"]``."""
HUB_FORMAT_VERSION = 1
"""Bumped whenever the folder layout or ``config.json`` keys change."""
WEIGHTS_NAME = hf_constants.SAFETENSORS_SINGLE_FILE  # "model.safetensors"
CONFIG_NAME = hf_constants.CONFIG_NAME  # "config.json"
CARD_NAME = hf_constants.REPOCARD_NAME  # "README.md"
HUB_FILES: tuple[str, ...] = (CONFIG_NAME, CARD_NAME, WEIGHTS_NAME)
"""Files of one Hub-format folder, in download order (weights last)."""
REGISTRY_NAME = "registry.json"
REGISTRY_FORMAT_VERSION = 1
DEFAULT_LICENSE = "mit"
CHECKPOINTS_ENV = "EPIC_ZOO_CHECKPOINTS"
"""Environment variable naming a folder that holds ``registry.json`` (overrides the default)."""

_GIT_LFS_POINTER = b"version https://git-lfs"


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


class HubFormatError(ValueError):
    """A Hub-format folder or file is missing, truncated or inconsistent."""


class ChecksumError(HubFormatError):
    """``model.safetensors`` does not have the sha256 recorded in the registry."""


class UnknownPretrainedError(KeyError):
    """The name is not in the registry of pretrained weights."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class PretrainedUnavailableError(RuntimeError):
    """The weights are registered but cannot be found locally nor downloaded."""


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PretrainedInfo:
    """One published weight (one entry of ``checkpoints/registry.json``).

    Attributes:
        name: pretrained name, ``"{architecture}.{dataset}"``, e.g. ``"epic.flatvel-a"``.
        architecture: :func:`epic_zoo.models.create_model` name, e.g. ``"epic"``.
        dataset: dataset it was trained on, e.g. ``"flatvel-a"``.
        repo_id: Hugging Face Hub model repo, ``"org/name"``.
        revision: pinned Hub revision (a commit hash); ``None`` until published.
        sha256: hex sha256 of ``model.safetensors``.
        size_bytes: size of ``model.safetensors`` in bytes.
        local: folder relative to the registry's folder when committed, else ``None``.
        metrics: recorded test metrics (``ssim``, ``ssim_openfwi``, ``mae``, ``rmse``,
            ``mae_ms``, ``rmse_ms``, ...), normalised scale unless suffixed ``_ms`` (m/s).
        data: data profile of the training run (profile name, train/val/test sizes,
            time_stride, dtype, generator_version, seed).
        check: metrics on the first ``num`` regenerated test samples (``{"num", "seed",
            "metrics"}``), cheap enough for a unit test; ``None`` if not recorded.
        params: number of parameters.
        payload_bytes: bytes per device per sample on the link (distributed models), else ``None``.
        license: SPDX licence id of the weights.
        recipe: ``python -m epic_zoo.run`` recipe that reproduces the weights.
    """

    name: str
    architecture: str
    dataset: str
    repo_id: str
    sha256: str
    revision: str | None = None
    size_bytes: int | None = None
    local: str | None = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    check: dict[str, Any] | None = None
    params: int | None = None
    payload_bytes: int | None = None
    license: str = DEFAULT_LICENSE
    recipe: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the registry entry, without the name key)."""
        out = dataclasses.asdict(self)
        out.pop("name")
        return out


def default_registry_path() -> Path:
    """Where ``registry.json`` is read from.

    ``$EPIC_ZOO_CHECKPOINTS/registry.json`` if the variable is set, else the
    first existing of ``epic_zoo/checkpoints/registry.json`` (package data) and
    ``<repository>/checkpoints/registry.json`` (source checkout).
    """
    env = os.environ.get(CHECKPOINTS_ENV)
    if env:
        return Path(env).expanduser() / REGISTRY_NAME
    package = Path(epic_zoo.__file__).resolve().parent
    candidates = (
        package / "checkpoints" / REGISTRY_NAME,
        package.parent / "checkpoints" / REGISTRY_NAME,
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[-1]


def read_registry(path: str | Path | None = None) -> dict[str, PretrainedInfo]:
    """Read ``registry.json`` -> ``{name: PretrainedInfo}``.

    A missing file is an empty registry. Raises :class:`HubFormatError` for a
    file that is not a registry.
    """
    path = Path(path) if path is not None else default_registry_path()
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise HubFormatError(
            f"{path} is not valid JSON ({err}); restore it with `git checkout -- {path.name}`"
        ) from err
    if not isinstance(raw, dict) or raw.get("format_version") != REGISTRY_FORMAT_VERSION:
        raise HubFormatError(
            f"{path} is not an epic_zoo registry (format_version {REGISTRY_FORMAT_VERSION} expected)"
        )
    fields = {f.name for f in dataclasses.fields(PretrainedInfo)}
    out = {}
    for name, entry in raw.get("weights", {}).items():
        unknown = set(entry) - fields
        if unknown:
            raise HubFormatError(f"{path}: entry {name!r} has unknown keys {sorted(unknown)}")
        out[name] = PretrainedInfo(name=name, **entry)
    return out


def write_registry(entries: Mapping[str, PretrainedInfo], path: str | Path) -> Path:
    """Write ``{name: PretrainedInfo}`` to ``path`` (sorted by name, atomically)."""
    path = Path(path)
    doc = {
        "format_version": REGISTRY_FORMAT_VERSION,
        "weights": {name: entries[name].as_dict() for name in sorted(entries)},
    }
    _atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path


def list_pretrained(filter: str = "*", registry: str | Path | None = None) -> list[str]:
    """Names of the registered pretrained weights matching the glob ``filter``, sorted."""
    return sorted(n for n in read_registry(registry) if fnmatch.fnmatch(n, filter))


def get_pretrained_info(name: str, registry: str | Path | None = None) -> PretrainedInfo:
    """Registry entry of ``name``; raises :class:`UnknownPretrainedError` with suggestions."""
    entries = read_registry(registry)
    key = str(name).strip().lower()
    if key in entries:
        return entries[key]
    names = sorted(entries)
    if not names:
        hint = "the registry is empty (no pretrained weights are published yet)"
    elif "." not in key:
        matching = [n for n in names if n.startswith(key + ".")]
        hint = (
            f"pretrained names are 'architecture.dataset', e.g. {', '.join(matching or names[:3])}"
        )
    else:
        close = difflib.get_close_matches(key, names, n=3)
        hint = (
            f"did you mean {', '.join(close)}?" if close else f"{len(names)} names are registered"
        )
    raise UnknownPretrainedError(
        f"unknown pretrained weights {name!r}: {hint}. "
        "List them with `python -m epic_zoo.hub list` or `epic_zoo.models.list_pretrained()`."
    )


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _hf_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The ``huggingface_hub`` cache folder, read from the environment at call time."""
    if cache_dir is not None:
        return Path(cache_dir)
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(hf_constants.HF_HUB_CACHE)


def _hf_endpoint(endpoint: str | None = None) -> str | None:
    """Hub endpoint: the argument, else ``HF_ENDPOINT`` as set now (mirrors), else the default."""
    return endpoint or os.environ.get("HF_ENDPOINT") or None


def _hf_offline() -> bool:
    """``HF_HUB_OFFLINE`` as set now (environment) or when huggingface_hub was imported."""
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return env in {"1", "ON", "YES", "TRUE"} or bool(hf_constants.HF_HUB_OFFLINE)


def _git_commit() -> str | None:
    """Commit of the source checkout (``+dirty`` if modified), or ``None`` outside git."""
    root = Path(epic_zoo.__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def _remove_cached(path: Path) -> None:
    """Delete a file of the HF cache: the snapshot link and the blob it points to."""
    target = path.resolve()
    for p in {path, target}:
        if p.exists() or p.is_symlink():
            p.unlink()


def _normalise_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
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


# ---------------------------------------------------------------------------
# the Hub format: write and read one folder
# ---------------------------------------------------------------------------


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


def build_config(
    model: nn.Module,
    dataset: str,
    *,
    time_stride: int | None = None,
    name: str | None = None,
    record: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``config.json`` dict of ``model`` trained on ``dataset``.

    ``time_stride`` defaults to ``NT // model_kwargs["time_samples"]`` (1000 -> 250
    samples is stride 4).
    """
    architecture, kwargs = model_config(model)
    dataset = get_dataset(dataset).name
    time_samples = int(kwargs.get("time_samples", NT))
    if time_stride is None:
        if NT % time_samples:
            raise HubFormatError(
                f"time_samples={time_samples} is not NT/stride for a whole stride; pass time_stride"
            )
        time_stride = NT // time_samples
    config: dict[str, Any] = {
        "format": HUB_FORMAT,
        "format_version": HUB_FORMAT_VERSION,
        "name": name or f"{architecture}.{dataset}",
        "architecture": architecture,
        "model_kwargs": kwargs,
        "dataset": dataset,
        "time_stride": int(time_stride),
        "time_samples": time_samples,
        "geometry": Geometry().as_dict(),
        "normalization": normalization_stats(dataset),
        "params": int(sum(p.numel() for p in model.parameters())),
        "payload_bytes": int(model.payload_bytes()) if hasattr(model, "payload_bytes") else None,
        "metrics": _normalise_metrics(metrics or {}),
        "record": dict(record or {}),
        "epic_zoo_version": epic_zoo.__version__,
        "torch_version": torch.__version__,
    }
    return config


def _card_text(config: Mapping[str, Any], repo_id: str | None) -> str:
    """Model card (``README.md``) with Hub YAML metadata and the training record."""
    dataset = config["dataset"]
    metrics = config.get("metrics") or {}
    data = ModelCardData(
        library_name="epic_zoo",
        license=config.get("record", {}).get("license", DEFAULT_LICENSE),
        tags=[
            "pytorch",
            "safetensors",
            "epic_zoo",
            "full-waveform-inversion",
            "seismic",
            "openfwi",
            config["architecture"],
        ],
        datasets=[f"openfwi-{dataset}-synthetic"],
        metrics=sorted({"ssim", "mae", "rmse"} & set(metrics)) or ["ssim", "mae", "rmse"],
    )
    record = config.get("record") or {}
    load_name = config["name"]
    lines = [
        f"# {config['name']}",
        "",
        f"`{config['architecture']}` trained on epic_zoo's `{dataset}` data "
        "(OpenFWI geometry: 5 sources, 70 receivers, 70x70 velocity map on a 10 m grid). "
        "Input: normalised seismic `[batch, 5, time, 70]`; output: normalised velocity "
        "`[batch, 1, 70, 70]` in [-1, 1] (x1500 + 3000 gives m/s).",
        "",
        "## Use",
        "",
        "```python",
        "from epic_zoo.models import create_model",
        f'model = create_model("{load_name}", pretrained=True)',
        "```",
        "",
        "or, with `huggingface_hub` only resolving the files:",
        "",
        "```python",
        "from epic_zoo.hub import PretrainedFWI",
        f'model = PretrainedFWI.from_pretrained("{repo_id or "ORG/NAME"}")',
        "```",
        "",
        "## Test metrics",
        "",
        "MAE/RMSE on the [-1, 1] scale (`_ms`: m/s); SSIM on maps rescaled to [0, 1] "
        "(`ssim_openfwi`: OpenFWI's zero-padded window, `ssim`: torchmetrics).",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())],
        "",
        "## How it was made",
        "",
        "| field | value |",
        "|---|---|",
        f"| time stride | {config['time_stride']} ({config['time_samples']} time samples) |",
        f"| parameters | {config['params']:,} |",
        f"| payload bytes per device per sample | {config.get('payload_bytes')} |",
        f"| epic_zoo version | {config['epic_zoo_version']} |",
        *[
            f"| {k} | {json.dumps(v) if not isinstance(v, str) else v} |"
            for k, v in sorted(record.items())
        ],
        "",
        "The data are synthetic re-creations of the OpenFWI families made by "
        "`epic_zoo.data` (generator version and seed above), not the released OpenFWI files.",
        "",
    ]
    return ModelCard.from_template(
        data, template_str="---\n{{ card_data }}\n---\n\n" + "\n".join(lines)
    ).content


def save_hub_folder(
    model: nn.Module,
    out_dir: str | Path,
    *,
    dataset: str,
    time_stride: int | None = None,
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
        time_stride: time decimation of the training records (default ``NT // time_samples``).
        name: pretrained name (default ``"{architecture}.{dataset}"``).
        record: training record (recipe, data profile and sizes, generator version and
            seed, epochs, commit, ...); ``commit`` defaults to this checkout's.
        metrics: test metrics (``"test/ssim"`` or ``"ssim"`` keys).
        repo_id: Hub repo id, used in the model card's example.

    Returns:
        ``out_dir`` as a ``Path``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = dict(record or {})
    record.setdefault("commit", _git_commit())
    config = build_config(
        model, dataset, time_stride=time_stride, name=name, record=record, metrics=metrics
    )
    save_model(model, str(out_dir / WEIGHTS_NAME), metadata={"format": "pt"})
    _atomic_write_text(out_dir / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    _atomic_write_text(out_dir / CARD_NAME, _card_text(config, repo_id))
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
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise HubFormatError(
            f"{what}: {path} is not valid JSON ({err}); download it again"
        ) from err
    if not isinstance(config, dict) or config.get("format") != HUB_FORMAT:
        raise HubFormatError(
            f"{what}: {path} is not an epic_zoo config (format {HUB_FORMAT!r} expected)"
        )
    if config.get("format_version") != HUB_FORMAT_VERSION:
        raise HubFormatError(
            f"{what}: config format_version {config.get('format_version')} is not "
            f"{HUB_FORMAT_VERSION}; upgrade epic_zoo (`pip install -U epic_zoo`)"
        )
    for key in (
        "architecture",
        "model_kwargs",
        "dataset",
        "geometry",
        "normalization",
        "time_stride",
    ):
        if key not in config:
            raise HubFormatError(f"{what}: {path} lacks the key {key!r}")
    Geometry().check_compatible(config["geometry"], what=f"{what} ({CONFIG_NAME})")
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
    return config


def _check_safetensors(path: Path, what: str) -> None:
    """Raise :class:`HubFormatError` if ``path`` is not a complete safetensors file."""
    if not path.is_file():
        raise HubFormatError(f"{what}: {path} is missing")
    with open(path, "rb") as fh:
        head = fh.read(len(_GIT_LFS_POINTER))
    if head == _GIT_LFS_POINTER:
        raise HubFormatError(
            f"{what}: {path} is a git-lfs pointer, not the weights; run `git lfs pull` "
            "or delete it to download from the Hub"
        )
    try:
        with safe_open(str(path), framework="pt") as fh:
            fh.keys()
    except (SafetensorError, OSError) as err:
        raise HubFormatError(
            f"{what}: {path} is not a complete safetensors file ({err}); delete it and download again"
        ) from err


def load_hub_folder(
    folder: str | Path,
    *,
    map_location: str | torch.device = "cpu",
    sha256: str | None = None,
    what: str | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """Build the network of a Hub-format folder and load its weights strictly.

    Args:
        folder: folder with ``config.json`` and ``model.safetensors``.
        map_location: device to put the weights on.
        sha256: expected sha256 of ``model.safetensors`` (checked before loading).
        what: how to name the weights in error messages (default: the folder).
        **model_kwargs: constructor arguments; each must equal the stored one
            (pretrained weights fix the architecture).

    Returns:
        The network in eval mode, with ``pretrained_cfg`` set to the config dict.

    Raises:
        HubFormatError: missing/truncated files, bad config, weights that do not
            fit the architecture; ChecksumError: sha256 mismatch; ValueError:
            another acquisition geometry or a conflicting ``model_kwargs`` value.
    """
    from epic_zoo.models import create_model

    folder = Path(folder)
    what = what or str(folder)
    config = read_config(folder, what=what)
    weights = folder / WEIGHTS_NAME
    _check_safetensors(weights, what)
    if sha256 is not None:
        actual = file_sha256(weights)
        if actual != sha256:
            raise ChecksumError(
                f"{what}: sha256 of {weights} is {actual}, the registry expects {sha256}; "
                "the file is corrupt or another version"
            )
    stored = config["model_kwargs"]
    for key, value in model_kwargs.items():
        if key in stored and json.loads(json.dumps(value)) != stored[key]:
            raise ValueError(
                f"{what} was trained with {key}={stored[key]!r}, got {key}={value!r}; drop the "
                "argument or train new weights"
            )
    model = create_model(config["architecture"], pretrained=False, **{**stored, **model_kwargs})
    try:
        load_model(model, str(weights), strict=True, device=str(map_location))
    except RuntimeError as err:
        raise HubFormatError(
            f"{what}: {weights.name} does not fit {config['architecture']}({stored}): {err}"
        ) from err
    model.to(map_location).eval()
    model.pretrained_cfg = config
    return model


# ---------------------------------------------------------------------------
# resolution: local folder -> HF cache -> Hub
# ---------------------------------------------------------------------------


def _cached_folder(info: PretrainedInfo, cache_dir: Path) -> Path | None:
    """Snapshot folder of ``info`` in the HF cache if config and weights are there."""
    found = []
    for filename in (CONFIG_NAME, WEIGHTS_NAME):
        path = try_to_load_from_cache(
            info.repo_id, filename, cache_dir=str(cache_dir), revision=info.revision
        )
        if not isinstance(path, str):
            return None
        found.append(Path(path))
    return found[1].parent


def _verified(folder: Path, info: PretrainedInfo, source: str) -> bool:
    """True if ``folder``'s weights have ``info.sha256``; prints why not otherwise."""
    weights = folder / WEIGHTS_NAME
    if weights.is_file() and file_sha256(weights) == info.sha256:
        return True
    print(
        f"epic_zoo.hub: {info.name}: {source} copy {weights} does not match the registry's "
        f"sha256 {info.sha256[:12]}...; not using it",
        file=sys.stderr,
    )
    return False


def _download(
    info: PretrainedInfo, cache_dir: Path, endpoint: str | None, token: str | bool | None
) -> Path:
    """Download the Hub-format files of ``info`` at its pinned revision into the HF cache."""
    if not info.revision:
        raise PretrainedUnavailableError(
            f"{info.name} is registered but not published yet (no pinned revision) and has no "
            "local copy; train it with its recipe or ask the maintainers"
        )
    paths = {}
    for filename in HUB_FILES:
        try:
            paths[filename] = hf_hub_download(
                info.repo_id,
                filename,
                revision=info.revision,
                cache_dir=str(cache_dir),
                endpoint=_hf_endpoint(endpoint),
                token=token,
                library_name="epic_zoo",
                library_version=epic_zoo.__version__,
            )
        except (RepositoryNotFoundError, RevisionNotFoundError, RemoteEntryNotFoundError) as err:
            raise PretrainedUnavailableError(
                f"{info.name}: {filename} not found at {info.repo_id}@{info.revision} on the Hub "
                f"({type(err).__name__}); the registry entry is stale, update epic_zoo"
            ) from err
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
            raise PretrainedUnavailableError(
                f"{info.name}: cannot download {filename} from {info.repo_id}@{info.revision} "
                f"({type(err).__name__}: {err}). Check the network, or on a machine with network "
                f"run `python -m epic_zoo.hub pull {info.name}` and copy the cache {cache_dir}"
            ) from err
    return Path(paths[WEIGHTS_NAME]).parent


def resolve_pretrained(
    name: str,
    *,
    registry: str | Path | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    skip_local: bool = False,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> tuple[Path, str]:
    """Find (or download) the verified Hub-format folder of a pretrained name.

    Order: the committed folder named by the registry -> the Hugging Face cache
    -> a download of the pinned revision. Each candidate's
    ``model.safetensors`` must have the registry's sha256; a cached or
    downloaded file that does not is deleted from the cache.

    Args:
        name: pretrained name, e.g. ``"epic.flatvel-a"``.
        registry: path of ``registry.json`` (default :func:`default_registry_path`).
        cache_dir: HF cache folder (default from ``HF_HUB_CACHE`` / ``HF_HOME``).
        local_files_only: never use the network (default: ``HF_HUB_OFFLINE``).
        skip_local: ignore the committed folder (to check the published copy).
        endpoint, token: passed to ``huggingface_hub``.

    Returns:
        ``(folder, source)`` with source one of ``"local"``, ``"cache"``, ``"hub"``.

    Raises:
        UnknownPretrainedError, PretrainedUnavailableError, ChecksumError.
    """
    registry_path = Path(registry) if registry is not None else default_registry_path()
    info = get_pretrained_info(name, registry_path)
    if local_files_only is None:
        local_files_only = _hf_offline()
    cache = _hf_cache_dir(cache_dir)

    if info.local and not skip_local:
        folder = registry_path.parent / info.local
        if (folder / WEIGHTS_NAME).is_file() and _verified(folder, info, "committed"):
            return folder, "local"

    folder = _cached_folder(info, cache)
    if folder is not None:
        if _verified(folder, info, "cached"):
            return folder, "cache"
        _remove_cached(folder / WEIGHTS_NAME)

    if local_files_only:
        raise PretrainedUnavailableError(
            f"{info.name} is not available offline: no committed copy"
            + (f" at {registry_path.parent / info.local}" if info.local else "")
            + f" and not in the Hugging Face cache {cache} (repo {info.repo_id}@{info.revision}); "
            f"HF_HUB_OFFLINE is set. Run `python -m epic_zoo.hub pull {info.name}` with network "
            "(or unset HF_HUB_OFFLINE), or point HF_HOME at a populated cache"
        )

    folder = _download(info, cache, endpoint, token)
    if not _verified(folder, info, "downloaded"):
        _remove_cached(folder / WEIGHTS_NAME)
        raise ChecksumError(
            f"{info.name}: the download of {info.repo_id}@{info.revision} does not have the sha256 "
            f"{info.sha256} recorded in the registry; it was removed from the cache. Try again; "
            "if it persists, the Hub copy and the registry disagree (report it)"
        )
    return folder, "hub"


def load_pretrained(
    name: str,
    *,
    map_location: str | torch.device = "cpu",
    registry: str | Path | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """Pretrained network by name, e.g. ``load_pretrained("epic.flatvel-a")``.

    What ``create_model(name, pretrained=True)`` calls. Resolution and checks
    as in :func:`resolve_pretrained`; loading as in :func:`load_hub_folder`
    (strict, safetensors only). The returned model is in eval mode and carries
    ``pretrained_cfg`` (the config dict, plus ``"source"``: local/cache/hub).
    """
    folder, source = resolve_pretrained(
        name,
        registry=registry,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        endpoint=endpoint,
        token=token,
    )
    info = get_pretrained_info(name, registry)
    model = load_hub_folder(
        folder, map_location=map_location, sha256=info.sha256, what=info.name, **model_kwargs
    )
    if model.pretrained_cfg["architecture"] != info.architecture:
        raise HubFormatError(
            f"{info.name}: config.json says architecture {model.pretrained_cfg['architecture']!r}, "
            f"the registry says {info.architecture!r}"
        )
    model.pretrained_cfg = {**model.pretrained_cfg, "source": source}
    return model


class PretrainedFWI(PyTorchModelHubMixin, library_name="epic_zoo", license=DEFAULT_LICENSE):
    """``huggingface_hub`` entry point for Hub-format repos and folders.

    ``PretrainedFWI.from_pretrained("org/epic-flatvel-a")`` (or a local folder)
    lets ``huggingface_hub`` resolve and cache ``config.json`` and
    ``model.safetensors`` and returns the epic_zoo network itself (not a
    ``PretrainedFWI``), loaded by :func:`load_hub_folder`.
    """

    def __init__(self) -> None:
        raise TypeError("use PretrainedFWI.from_pretrained(repo_id_or_folder)")

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        **model_kwargs: Any,
    ) -> nn.Module:
        if os.path.isdir(model_id):
            return load_hub_folder(model_id, map_location=map_location, **model_kwargs)
        weights = hf_hub_download(
            model_id,
            WEIGHTS_NAME,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
            endpoint=_hf_endpoint(),
            library_name="epic_zoo",
            library_version=epic_zoo.__version__,
        )
        return load_hub_folder(
            Path(weights).parent, map_location=map_location, what=model_id, **model_kwargs
        )


# ---------------------------------------------------------------------------
# export: Lightning checkpoint / run folder -> Hub format
# ---------------------------------------------------------------------------


def _read_lightning_checkpoint(path: Path) -> dict[str, Any]:
    """Load a Lightning ``.ckpt`` with ``weights_only=True`` (no arbitrary unpickling)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError/RuntimeError/EOFError/...
        raise HubFormatError(
            f"cannot read {path} as a Lightning checkpoint with weights_only=True ({type(err).__name__}: "
            f"{err}). epic_zoo never unpickles arbitrary objects: the checkpoint must hold only "
            "tensors and plain containers (no OmegaConf in save_hyperparameters)"
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise HubFormatError(f"{path} has no 'state_dict'; is it a Lightning checkpoint?")
    return ckpt


def _strip_prefix(
    state: Mapping[str, torch.Tensor], model: nn.Module, path: Path
) -> dict[str, torch.Tensor]:
    """The task's state_dict restricted to ``model``'s keys (``model.`` prefix removed)."""
    wanted = set(model.state_dict())
    prefixes = sorted({k[: k.index(".") + 1] for k in state if "." in k})
    for prefix in ["model.", *prefixes]:
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if set(sub) == wanted:
            return sub
    raise HubFormatError(
        f"{path}: no sub-module of the checkpoint's state_dict has exactly the keys of "
        f"{model.config['name']} (tried prefixes {['model.', *prefixes]})"
    )


def model_from_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Network and metadata from an ``InversionTask`` (or GAN task) Lightning checkpoint.

    The task must have saved ``model_name`` and ``model_kwargs`` as
    hyper-parameters. Returns ``(model in eval mode, info)`` where ``info`` has
    ``hparams``, ``datamodule_hparams``, ``epoch`` (epochs completed),
    ``global_step`` and ``lightning_version``.
    """
    from epic_zoo.models import create_model

    path = Path(path)
    ckpt = _read_lightning_checkpoint(path)
    hparams = dict(ckpt.get("hyper_parameters") or {})
    if "model_name" not in hparams:
        raise HubFormatError(
            f"{path}: hyper_parameters lack 'model_name' (found {sorted(hparams)}); "
            "export a checkpoint written by epic_zoo.tasks"
        )
    model = create_model(
        hparams["model_name"], pretrained=False, **dict(hparams.get("model_kwargs") or {})
    )
    model.load_state_dict(_strip_prefix(ckpt["state_dict"], model, path), strict=True)
    info = {
        "hparams": hparams,
        "datamodule_hparams": dict(ckpt.get("datamodule_hyper_parameters") or {}),
        "epoch": int(ckpt.get("epoch", -1)) + 1,
        "global_step": int(ckpt.get("global_step", 0)),
        "lightning_version": ckpt.get("pytorch-lightning_version"),
    }
    return model.eval(), info


def _data_record(dm: Mapping[str, Any]) -> dict[str, Any]:
    """Data part of the record from ``FWIDataModule`` hyper-parameters.

    Profile, seed, time stride and sample limit as saved; split sizes and dtype
    from the profile (``limit`` applied); the generator version of this
    checkout (synthetic data only).
    """
    from epic_zoo.data.families import GENERATOR_VERSION
    from epic_zoo.data.profiles import get_profile

    out: dict[str, Any] = {k: dm[k] for k in ("profile", "seed", "time_stride", "limit") if k in dm}
    if not out:
        return out
    out["data_source"] = "openfwi" if dm.get("openfwi_root") else "synthetic"
    if "profile" in dm and out["data_source"] == "synthetic":
        profile = get_profile(dm["profile"])
        limit = dm.get("limit")
        for split in ("train", "val", "test"):
            n = profile.num(split)
            out[split] = n if n is None or limit is None else min(n, int(limit))
        out["dtype"] = profile.dtype
        out["generator_version"] = GENERATOR_VERSION
    return out


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    dataset: str | None = None,
    name: str | None = None,
    record: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
) -> Path:
    """Lightning checkpoint -> Hub-format folder.

    ``dataset`` and ``time_stride`` default to the checkpoint's datamodule
    hyper-parameters. The record gets ``epochs``, ``global_step``,
    ``lightning_version``, the task hyper-parameters and the source file name;
    ``record`` adds to / overrides them (recipe, profile, sizes, seed, ...).
    """
    checkpoint = Path(checkpoint)
    model, info = model_from_checkpoint(checkpoint)
    dm = info["datamodule_hparams"]
    dataset = dataset or dm.get("dataset")
    if dataset is None:
        raise HubFormatError(
            f"{checkpoint}: the dataset is not recorded in the checkpoint; pass --dataset NAME"
        )
    auto = {
        "epochs": info["epoch"],
        "global_step": info["global_step"],
        "lightning_version": info["lightning_version"],
        "task_hparams": {k: v for k, v in info["hparams"].items() if k != "model_kwargs"},
        "source_checkpoint": checkpoint.name,
    }
    auto.update(_data_record(dm))
    record = {**auto, **dict(record or {})}
    return save_hub_folder(
        model,
        out_dir,
        dataset=dataset,
        time_stride=record.get("time_stride"),
        name=name,
        record=record,
        metrics=metrics,
        repo_id=repo_id,
    )


def find_run_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint to export from a run folder.

    Prefers a file named ``best*.ckpt``, then ``last.ckpt``, then the single
    ``.ckpt`` found (searched recursively).
    """
    run_dir = Path(run_dir)
    found = sorted(run_dir.rglob("*.ckpt"))
    if not found:
        raise HubFormatError(f"no .ckpt file under {run_dir}; pass the checkpoint path itself")
    for pick in (
        [p for p in found if p.name.startswith("best")],
        [p for p in found if p.name == "last.ckpt"],
        found if len(found) == 1 else [],
    ):
        if len(pick) == 1:
            return pick[0]
    raise HubFormatError(
        f"{len(found)} checkpoints under {run_dir} ({', '.join(p.name for p in found[:5])}); "
        "pass the one to export"
    )


def read_json(path: str | Path | None) -> dict[str, Any]:
    """A JSON object from ``path`` (``{}`` for ``None``), with a clear error."""
    if path is None:
        return {}
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise HubFormatError(f"cannot read JSON object from {path}: {err}") from err
    if not isinstance(value, dict):
        raise HubFormatError(f"{path} must hold a JSON object")
    return value


RESULTS_NAME = "results.json"
"""Summary written by ``epic_zoo.run`` into a run folder (metrics, recipe, epochs)."""


def run_inputs(run_dir: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """``(checkpoint, metrics, record)`` of a run folder.

    ``results.json`` (written by :func:`epic_zoo.run.train`) gives the best
    checkpoint's name, the test metrics and the recipe, epochs and wall time;
    ``metrics.json`` and ``record.json``, when present, add to / override them.
    """
    results = read_json(run_dir / RESULTS_NAME) if (run_dir / RESULTS_NAME).is_file() else {}
    best = Path(results.get("best_checkpoint") or "").name
    found = sorted(run_dir.rglob(best)) if best else []
    checkpoint = found[0] if found else find_run_checkpoint(run_dir)
    metrics = dict(results.get("metrics") or {})
    record = {
        "recipe": results.get("recipe"),
        "run_epochs": results.get("epochs"),
        "wall_time_s": results.get("wall_time_s"),
        "batch_size": (results.get("data") or {}).get("batch_size"),
    }
    record = {k: v for k, v in record.items() if v is not None}
    for folder in {checkpoint.parent, run_dir}:
        if (folder / "metrics.json").is_file():
            metrics.update(read_json(folder / "metrics.json"))
        if (folder / "record.json").is_file():
            record.update(read_json(folder / "record.json"))
    return checkpoint, metrics, record


def export_any(
    source: str | Path,
    out_dir: str | Path,
    *,
    dataset: str | None = None,
    name: str | None = None,
    record: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
) -> Path:
    """Hub-format folder from a ``.ckpt`` file, a run folder or a Hub-format folder.

    A run folder contributes its ``results.json`` / ``metrics.json`` /
    ``record.json`` (see :func:`run_inputs`); explicit ``metrics`` and
    ``record`` entries take precedence. A Hub-format folder is validated
    (loaded) and copied.
    """
    source = Path(source)
    out_dir = Path(out_dir)
    if source.is_dir() and (source / CONFIG_NAME).is_file():
        load_hub_folder(source)  # validate before publishing
        out_dir.mkdir(parents=True, exist_ok=True)
        if source.resolve() != out_dir.resolve():
            for filename in HUB_FILES:
                if (source / filename).is_file():
                    shutil.copy2(source / filename, out_dir / filename)
        return out_dir
    if source.is_dir():
        checkpoint, run_metrics, run_record = run_inputs(source)
        metrics = {**run_metrics, **dict(metrics or {})}
        record = {**run_record, **dict(record or {})}
    elif source.suffix == ".ckpt" and source.is_file():
        checkpoint = source
    else:
        raise HubFormatError(
            f"{source} is neither a .ckpt file, a run folder nor a Hub-format folder"
        )
    return export_checkpoint(
        checkpoint,
        out_dir,
        dataset=dataset,
        name=name,
        record=record,
        metrics=metrics,
        repo_id=repo_id,
    )


# ---------------------------------------------------------------------------
# publish and register
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PushResult:
    """What :func:`push` did: the exported folder, its files and the Hub commit (if uploaded)."""

    folder: Path
    files: dict[str, int]
    sha256: str
    repo_id: str
    revision: str | None
    commit: str | None
    url: str | None


def push(
    source: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    out: str | Path | None = None,
    dataset: str | None = None,
    name: str | None = None,
    record: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Export ``source`` (checkpoint, run folder or Hub folder) and upload it to ``repo_id``.

    Uploading is ``HfApi.create_repo(exist_ok=True)`` (+ ``create_branch`` for a
    non-``main`` revision) then ``HfApi.upload_folder``. With ``dry_run`` only the
    folder is written (to ``out``, else a temporary folder that is kept) and
    nothing is sent. The folder is loaded once before upload, so a broken
    export never leaves this machine.
    """
    if "/" not in repo_id:
        raise ValueError(f"--repo-id must look like ORG/NAME, got {repo_id!r}")
    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="epic_zoo_push_"))
    export_any(
        source, folder, dataset=dataset, name=name, record=record, metrics=metrics, repo_id=repo_id
    )
    load_hub_folder(folder, what=f"exported {folder}")
    files = {f: (folder / f).stat().st_size for f in HUB_FILES}
    sha = file_sha256(folder / WEIGHTS_NAME)
    if dry_run:
        return PushResult(folder, files, sha, repo_id, revision, None, None)
    api = HfApi(endpoint=_hf_endpoint(endpoint), token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        revision=revision,
        repo_type="model",
        allow_patterns=list(HUB_FILES),
        commit_message=f"epic_zoo {epic_zoo.__version__}: upload {read_config(folder)['name']}",
    )
    return PushResult(folder, files, sha, repo_id, revision, info.oid, info.commit_url)


def register(
    folder: str | Path,
    *,
    registry: str | Path,
    repo_id: str,
    revision: str | None = None,
    local: bool = True,
) -> PretrainedInfo:
    """Add (or replace) the registry entry of a Hub-format folder.

    ``local=True`` records ``folder`` relative to the registry's folder (it must
    lie inside it: the committed copy). Metrics, data profile, parameters and
    payload come from ``config.json``; ``check`` is kept from an older entry of
    the same sha256.
    """
    folder = Path(folder)
    registry = Path(registry)
    config = read_config(folder)
    load_hub_folder(folder)
    weights = folder / WEIGHTS_NAME
    sha = file_sha256(weights)
    rel = None
    if local:
        try:
            rel = folder.resolve().relative_to(registry.parent.resolve()).as_posix()
        except ValueError as err:
            raise ValueError(f"local folder {folder} is not inside {registry.parent}") from err
    entries = read_registry(registry)
    old = entries.get(config["name"])
    record = config.get("record") or {}
    data_keys = (
        "data_source",
        "profile",
        "train",
        "val",
        "test",
        "limit",
        "time_stride",
        "dtype",
        "generator_version",
        "seed",
    )
    data = {k: record[k] for k in data_keys if k in record}
    data.setdefault("time_stride", config["time_stride"])
    entry = PretrainedInfo(
        name=config["name"],
        architecture=config["architecture"],
        dataset=config["dataset"],
        repo_id=repo_id,
        revision=revision,
        sha256=sha,
        size_bytes=weights.stat().st_size,
        local=rel,
        metrics=dict(config.get("metrics") or {}),
        data=data,
        check=old.check if old is not None and old.sha256 == sha else None,
        params=config.get("params"),
        payload_bytes=config.get("payload_bytes"),
        license=record.get("license", DEFAULT_LICENSE),
        recipe=record.get("recipe"),
    )
    entries[entry.name] = entry
    write_registry(entries, registry)
    return entry


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


def _where(info: PretrainedInfo, registry_path: Path) -> str:
    if info.local and (registry_path.parent / info.local / WEIGHTS_NAME).is_file():
        return "local"
    if _cached_folder(info, _hf_cache_dir()) is not None:
        return "cached"
    return "hub" if info.revision else "unpublished"


def _cmd_list(args: argparse.Namespace) -> int:
    registry_path = Path(args.registry) if args.registry else default_registry_path()
    entries = read_registry(registry_path)
    names = [n for n in sorted(entries) if fnmatch.fnmatch(n, args.filter)]
    if not names:
        print(f"no pretrained weights match {args.filter!r} in {registry_path}")
        return 0
    header = (
        f"{'name':28s} {'dataset':13s} {'ssim_openfwi':>12s} {'mae':>7s} {'payload B':>10s} "
        f"{'MB':>7s}  where"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        info = entries[name]
        ssim = info.metrics.get("ssim_openfwi", float("nan"))
        mae = info.metrics.get("mae", float("nan"))
        payload = str(info.payload_bytes) if info.payload_bytes is not None else "-"
        size = f"{info.size_bytes / 1e6:.1f}" if info.size_bytes else "-"
        print(
            f"{name:28s} {info.dataset:13s} {ssim:12.4f} {mae:7.4f} {payload:>10s} {size:>7s}  "
            f"{_where(info, registry_path)}"
        )
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    names = list_pretrained(registry=args.registry) if args.all else args.names
    if not names:
        raise SystemExit(
            "name the weights to pull (see `python -m epic_zoo.hub list`) or pass --all"
        )
    for name in names:
        folder, source = resolve_pretrained(name, registry=args.registry, skip_local=args.from_hub)
        verb = {"local": "committed copy", "cache": "already cached", "hub": "downloaded"}[source]
        print(f"{name}: {verb}, sha256 verified: {folder}")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    if args.out and not args.dry_run:
        print(
            "note: --out only sets where the folder is written; uploading as well", file=sys.stderr
        )
    result = push(
        args.checkpoint,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        dry_run=args.dry_run,
        out=args.out,
        dataset=args.dataset,
        name=args.name,
        record=read_json(args.record) if args.record else None,
        metrics=read_json(args.metrics) if args.metrics else None,
    )
    action = "would upload" if args.dry_run else "uploaded"
    target = f"{result.repo_id}@{result.revision or 'main'}" + (
        " (private)" if args.private else ""
    )
    print(f"{action} {result.folder} -> {target}:")
    for filename, size in result.files.items():
        print(f"  {filename:20s} {size:>12,d} bytes")
    print(f"  sha256({WEIGHTS_NAME}) = {result.sha256}")
    if result.commit:
        print(
            f"commit {result.commit} ({result.url}); pin it as the revision in checkpoints/registry.json"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m epic_zoo.hub",
        description="List, download and publish epic_zoo pretrained weights (Hugging Face Hub).",
    )
    parser.add_argument(
        "--registry", help="registry.json to use (default: the repository's checkpoints/)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "list", help="registered weights: dataset, SSIM, MAE, payload, where they are"
    )
    p.add_argument("filter", nargs="?", default="*", help="glob on names, e.g. 'epic.*'")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "pull", help="make weights available offline (verified against the registry)"
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="pretrained names, e.g. epic.flatvel-a")
    p.add_argument("--all", action="store_true", help="every registered weight")
    p.add_argument(
        "--from-hub", action="store_true", help="ignore committed copies; fetch into the HF cache"
    )
    p.set_defaults(func=_cmd_pull)

    p = sub.add_parser(
        "push", help="export a checkpoint/run folder to the Hub format and upload it"
    )
    p.add_argument("checkpoint", help="Lightning .ckpt, run folder or Hub-format folder")
    p.add_argument("--repo-id", required=True, help="Hub repo, ORG/NAME")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", help="branch to upload to (default main)")
    p.add_argument(
        "--dry-run", action="store_true", help="write the folder and show what would be uploaded"
    )
    p.add_argument(
        "--out", help="folder to write the Hub format into (default: a temporary folder)"
    )
    p.add_argument(
        "--dataset", help="dataset the weights were trained on (default: from the checkpoint)"
    )
    p.add_argument("--name", help="pretrained name (default ARCH.DATASET)")
    p.add_argument("--metrics", help="JSON file of test metrics to record")
    p.add_argument("--record", help="JSON file of the training record (recipe, profile, seed, ...)")
    p.set_defaults(func=_cmd_push)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m epic_zoo.hub``."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (HubFormatError, UnknownPretrainedError, PretrainedUnavailableError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except HfHubHTTPError as err:  # create_repo / upload_folder
        print(
            f"error: the Hub refused the request ({err}); log in with `hf auth login` or set "
            "HF_TOKEN to a token with write access to the repo",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())

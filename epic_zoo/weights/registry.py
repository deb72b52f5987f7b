"""The registry of published weights (``checkpoints/registry.json``).

Weights-format layer (below the models): maps a pretrained name such as ``epic.flatvel-a`` to its Hub repo
id, pinned revision, the sha256 of each functional file (``config.json`` and
``model.safetensors``), metrics, data profile and (when committed) a local
folder. Never builds a model.

The registry ships inside the wheel as package data
(``epic_zoo/checkpoints/registry.json``, mapped from the repository's
``checkpoints/`` folder), so an installed zoo works offline.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import epic_zoo
from epic_zoo.weights.errors import HubFormatError, UnknownPretrainedError
from epic_zoo.weights.files import (
    DEFAULT_LICENSE,
    WEIGHTS_NAME,
    atomic_write_text,
    file_sha256,
    read_json,
)
from epic_zoo.weights.shipping import OMITTED_KEY

REGISTRY_NAME = "registry.json"
REGISTRY_FORMAT_VERSION = 1
CHECKPOINTS_ENV = "EPIC_ZOO_CHECKPOINTS"
"""Environment variable naming a folder that holds ``registry.json`` (overrides the default)."""


@dataclasses.dataclass(frozen=True)
class PretrainedInfo:
    """One published weight (one entry of ``checkpoints/registry.json``).

    Attributes:
        name: pretrained name, ``"{architecture}.{dataset}"``, e.g. ``"epic.flatvel-a"``
            (the default weights of that pair), or ``"{architecture}.{dataset}.{tag}"``
            for another version kept beside it (:func:`tagged_name`), e.g.
            ``"epic.flatvel-a.lite10k_100k_wsd"``: the tag names the training profile and
            budget, as timm's ``resnet50.a1_in1k`` names a recipe.
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
            time stride, dtype, generator version, seed).
        check: metrics on the first ``num`` regenerated test samples (``{"num", "seed",
            "metrics"}``), cheap enough for a unit test; ``None`` if not recorded.
        params: number of parameters.
        payload_bytes: bytes per device per sample on the link (distributed models), else ``None``.
        license: SPDX licence id of the weights.
        recipe: ``python -m epic_zoo.run`` recipe that reproduces the weights.
        files: ``{file name: sha256}`` of the functional files (``config.json`` and
            ``model.safetensors``); every copy is checked against all of them.
        baseline: the ``mean-map`` (input-free) baseline on the same test data
            (``mean_map_mae``, ``mae_ratio_to_mean_map``, ``learns``), when recorded.
        training: the budget and provenance of the run (``samples_seen``,
            ``epochs``, ``steps``, ``lr``, ``batch_size``, ``checkpoint_monitor``,
            ``wall_time_s``, ``commit`` of the code that trained it), when recorded.
        superseded: why these weights must not be used for results (they stay
            loadable, with a warning), or ``None``.
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
    files: dict[str, str] = dataclasses.field(default_factory=dict)
    baseline: dict[str, Any] = dataclasses.field(default_factory=dict)
    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    superseded: str | None = None

    def expected_hashes(self) -> dict[str, str]:
        """``{file name: sha256}`` a copy must match (the weights' hash at least)."""
        return {**self.files, WEIGHTS_NAME: self.sha256}

    def mismatched_files(self, folder: str | Path) -> list[str]:
        """Functional files of ``folder`` that are missing or differ from the registry."""
        folder = Path(folder)
        bad = []
        for name, digest in self.expected_hashes().items():
            path = folder / name
            if not path.is_file() or file_sha256(path) != digest:
                bad.append(name)
        return bad

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the registry entry, without the name key)."""
        out = dataclasses.asdict(self)
        out.pop("name")
        return out


TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_]*")
"""A weights tag: lower-case letters, digits and ``_`` (no dots: the tag is the last part)."""


def tagged_name(name: str, tag: str) -> str:
    """``"{name}.{tag}"``: the name of another version of the weights ``name`` (``ARCH.DATASET``).

    Raises:
        ValueError: ``name`` already has a tag, or ``tag`` is not lower-case letters,
            digits and ``_``.
    """
    if name.count(".") != 1:
        raise ValueError(f"{name!r}: a tag goes on an 'architecture.dataset' name")
    if not TAG_PATTERN.fullmatch(tag):
        raise ValueError(f"tag {tag!r}: use lower-case letters, digits and '_' (e.g. lite10k_100k)")
    return f"{name}.{tag}"


def check_name(name: str, architecture: str, dataset: str) -> str:
    """``name`` if it is ``architecture.dataset`` or ``architecture.dataset.TAG``, else ``ValueError``."""
    default = f"{architecture}.{dataset}"
    tag = name.removeprefix(default + ".")
    if name == default or (tag != name and TAG_PATTERN.fullmatch(tag)):
        return name
    raise ValueError(
        f"pretrained name {name!r} does not fit its weights ({architecture} on {dataset}): "
        f"use {default!r} or {default + '.TAG'!r} (TAG: lower-case letters, digits, '_')"
    )


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
    raw = read_json(path, fix=f"restore it with `git checkout -- {path.name}`")
    if raw.get("format_version") != REGISTRY_FORMAT_VERSION:
        raise HubFormatError(
            f"{path} is not an epic_zoo registry (format_version {REGISTRY_FORMAT_VERSION} expected)"
        )
    fields = {f.name for f in dataclasses.fields(PretrainedInfo)}
    weights = raw.get("weights", {})
    if not isinstance(weights, dict):
        raise HubFormatError(f"{path}: 'weights' must be a mapping of name -> entry; {_RESTORE}")
    out = {}
    for name, entry in weights.items():
        if not isinstance(entry, dict):
            raise HubFormatError(f"{path}: entry {name!r} is not a mapping; {_RESTORE}")
        unknown = set(entry) - fields
        if unknown:
            raise HubFormatError(f"{path}: entry {name!r} has unknown keys {sorted(unknown)}")
        _check_entry_types(path, name, entry)
        out[name] = PretrainedInfo(name=name, **entry)
    return out


_RESTORE = "restore the file with `git checkout -- registry.json`"
_TEXT = ("architecture", "dataset", "repo_id", "sha256", "license")
_OPTIONAL_TEXT = ("revision", "local", "recipe", "superseded")
_OPTIONAL_COUNT = ("size_bytes", "params", "payload_bytes")
_MAPPINGS = ("metrics", "data", "files", "baseline", "training")


def _check_entry_types(path: Path, name: str, entry: dict[str, Any]) -> None:
    """Raise :class:`HubFormatError` naming the key of ``entry`` whose value has the wrong type."""

    def kind(value: Any, key: str) -> str | None:
        if key in _TEXT or (key in _OPTIONAL_TEXT and value is not None):
            return None if isinstance(value, str) else "text"
        if key in _OPTIONAL_COUNT and value is not None:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            return None if ok else "a count"
        if key in _MAPPINGS or (key == "check" and value is not None):
            return None if isinstance(value, dict) else "a mapping"
        return None

    if not isinstance(name, str) or not name:
        raise HubFormatError(f"{path}: a weights name must be text; {_RESTORE}")
    missing = [key for key in _TEXT[:4] if key not in entry]
    if missing:
        raise HubFormatError(f"{path}: entry {name!r} lacks {', '.join(missing)}; {_RESTORE}")
    for key, value in entry.items():
        want = kind(value, key)
        if want is None and key == "metrics":
            bad = [
                k for k, v in value.items() if isinstance(v, bool) or not isinstance(v, int | float)
            ]
            want = f"numbers (metrics.{bad[0]})" if bad else None
        if want is not None:
            raise HubFormatError(
                f"{path}: entry {name!r} has {key}={json.dumps(value, default=str)[:40]}, "
                f"expected {want}; {_RESTORE}"
            )


def write_registry(entries: Mapping[str, PretrainedInfo], path: str | Path) -> Path:
    """Write ``{name: PretrainedInfo}`` to ``path`` (sorted by name, atomically)."""
    path = Path(path)
    doc = {
        "format_version": REGISTRY_FORMAT_VERSION,
        "weights": {name: entries[name].as_dict() for name in sorted(entries)},
    }
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path


def empty_registry_hint(path: str | Path | None = None) -> str:
    """What to do when no weights are registered (a missing or empty ``registry.json``)."""
    path = Path(path) if path is not None else default_registry_path()
    state = "is missing" if not path.is_file() else "lists no weights"
    return (
        f"no pretrained weights are registered: {path} {state}. This install carries no zoo; "
        "install epic_zoo from a wheel or sdist built by `python -m build` (both ship "
        "checkpoints/), use a source checkout, or set "
        f"{CHECKPOINTS_ENV}=DIR to a folder holding {REGISTRY_NAME}"
    )


def list_pretrained(filter: str | None = "*", registry: str | Path | None = None) -> list[str]:
    """Names of the registered pretrained weights matching the glob ``filter``, sorted.

    Also ``epic_zoo.models.list_pretrained`` (the same function).
    """
    return sorted(n for n in read_registry(registry) if fnmatch.fnmatch(n, filter or "*"))


def omitted_from_install(path: str | Path | None = None) -> dict[str, str]:
    """Names this install's registry leaves out, each with where to find it (empty in a clone;
    a wheel's registry lists them under :data:`epic_zoo.weights.shipping.OMITTED_KEY`)."""
    path = Path(path) if path is not None else default_registry_path()
    if not path.is_file():
        return {}
    omitted = read_json(path, fix=f"restore it with `git checkout -- {path.name}`").get(OMITTED_KEY)
    return {str(k): str(v) for k, v in omitted.items()} if isinstance(omitted, dict) else {}


def get_pretrained_info(name: str, registry: str | Path | None = None) -> PretrainedInfo:
    """Registry entry of ``name``; raises :class:`UnknownPretrainedError` with suggestions."""
    entries = read_registry(registry)
    key = str(name).strip().lower()
    if key in entries:
        return entries[key]
    where = omitted_from_install(registry).get(key)
    if where is not None:
        raise UnknownPretrainedError(f"pretrained weights {key!r} are not in this install: {where}")
    names = sorted(entries)
    if not names:
        hint = empty_registry_hint(registry)
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

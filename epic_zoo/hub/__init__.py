"""Pretrained weights: the Hub format, the registry, one loader, export and publish.

Two layers (timm keeps ``_registry``, ``_hub``, ``_builder`` and ``_factory``
apart the same way):

- lower, never builds a model: :mod:`~epic_zoo.hub.errors`,
  :mod:`~epic_zoo.hub.files` (file names, sha256, integrity),
  :mod:`~epic_zoo.hub.registry` (``registry.json``), :mod:`~epic_zoo.hub.folder`
  (``config.json`` + weights), :mod:`~epic_zoo.hub.card` (model card with
  ``model-index``), :mod:`~epic_zoo.hub.resolve` (committed folder -> HF cache
  -> Hub), :mod:`~epic_zoo.hub.runs` (run folders, ``.ckpt`` reading),
  :mod:`~epic_zoo.hub.spec` (any model spec -> the files that hold it);
- the model factory in :mod:`epic_zoo.models` (``registry``, ``builder``,
  ``factory``) builds networks from what the lower layer resolved;
- upper, uses the factory: :mod:`~epic_zoo.hub.loader` (**one**
  :func:`load_model` for a pretrained name, Hub folder, ``hf-hub:ORG/REPO``,
  ``.ckpt`` or run folder), :mod:`~epic_zoo.hub.export`,
  :mod:`~epic_zoo.hub.publish` and the command line :mod:`~epic_zoo.hub.cli`.

Importing this package loads only the lower layer; the upper-layer names
below are imported on first use, so ``epic_zoo.models`` may use the lower layer
without loading the upper one.

Command line (``python -m epic_zoo.hub --help``)::

    python -m epic_zoo.hub list
    python -m epic_zoo.hub pull epic.flatvel-a
    python -m epic_zoo.hub export RUN_DIR --out DIR [--register --repo-id ORG/NAME]
    python -m epic_zoo.hub push RUN.ckpt --repo-id ORG/NAME --dataset flatvel-a [--dry-run --out DIR]
"""

from __future__ import annotations

import importlib
from typing import Any

from epic_zoo.hub.errors import (
    ArchitectureMismatchError,
    ChecksumError,
    HubFormatError,
    PretrainedUnavailableError,
    UnknownPretrainedError,
)
from epic_zoo.hub.files import (
    CARD_NAME,
    CONFIG_NAME,
    DEFAULT_LICENSE,
    FUNCTIONAL_FILES,
    HUB_FILES,
    HUB_FORMAT,
    HUB_FORMAT_VERSION,
    WEIGHTS_NAME,
    file_sha256,
    folder_hashes,
    read_json,
)
from epic_zoo.hub.folder import (
    build_config,
    model_config,
    normalization_stats,
    read_config,
    save_hub_folder,
)
from epic_zoo.hub.registry import (
    CHECKPOINTS_ENV,
    REGISTRY_FORMAT_VERSION,
    REGISTRY_NAME,
    PretrainedInfo,
    default_registry_path,
    get_pretrained_info,
    list_pretrained,
    read_registry,
    write_registry,
)
from epic_zoo.hub.resolve import download_repo, resolve_pretrained
from epic_zoo.hub.runs import RESULTS_FILE, find_run_checkpoint, read_results, run_inputs
from epic_zoo.provenance import git_commit

_UPPER: dict[str, str] = {
    "load_model": "loader",
    "load_hub_folder": "loader",
    "load_pretrained": "loader",
    "model_from_checkpoint": "loader",
    "check_device": "loader",
    "check_architecture": "loader",
    "PretrainedFWI": "loader",
    "SupersededWeightsWarning": "loader",
    "HF_HUB_PREFIX": "loader",
    "export_checkpoint": "export",
    "export_any": "export",
    "PushResult": "publish",
    "push": "publish",
    "register": "publish",
    "main": "cli",
    "build_parser": "cli",
}
"""Upper-layer names (they build models), imported on first use."""


def __getattr__(name: str) -> Any:
    if name in _UPPER:
        value = getattr(importlib.import_module(f"epic_zoo.hub.{_UPPER[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'epic_zoo.hub' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_UPPER])


__all__ = [
    "ArchitectureMismatchError",
    "CARD_NAME",
    "CHECKPOINTS_ENV",
    "CONFIG_NAME",
    "ChecksumError",
    "DEFAULT_LICENSE",
    "FUNCTIONAL_FILES",
    "HUB_FILES",
    "HUB_FORMAT",
    "HUB_FORMAT_VERSION",
    "HubFormatError",
    "PretrainedInfo",
    "PretrainedUnavailableError",
    "REGISTRY_FORMAT_VERSION",
    "REGISTRY_NAME",
    "RESULTS_FILE",
    "UnknownPretrainedError",
    "WEIGHTS_NAME",
    "build_config",
    "default_registry_path",
    "download_repo",
    "file_sha256",
    "find_run_checkpoint",
    "folder_hashes",
    "get_pretrained_info",
    "git_commit",
    "list_pretrained",
    "model_config",
    "normalization_stats",
    "read_config",
    "read_json",
    "read_registry",
    "read_results",
    "resolve_pretrained",
    "run_inputs",
    "save_hub_folder",
    "write_registry",
    *_UPPER,
]

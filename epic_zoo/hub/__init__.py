"""Export, publish and the ``python -m epic_zoo.hub`` command line (above :mod:`epic_zoo.models`).

- :mod:`~epic_zoo.hub.export`: a run folder / ``.ckpt`` / Hub folder -> a Hub-format folder;
- :mod:`~epic_zoo.hub.publish`: upload it and register it in ``registry.json``;
- :mod:`~epic_zoo.hub.cli`: the command line;
- :mod:`~epic_zoo.hub.loader`: the deprecated loading routes (one release).

The weights format itself (folders, registry, resolution) is
:mod:`epic_zoo.weights`; loading is :func:`epic_zoo.models.load_model`. The
weights-format names are re-exported here (plain imports) for code written
against earlier releases.

Command line (``python -m epic_zoo.hub --help``)::

    python -m epic_zoo.hub list
    python -m epic_zoo.hub pull epic.flatvel-a
    python -m epic_zoo.hub export RUN_DIR --out DIR [--register --repo-id ORG/NAME]
    python -m epic_zoo.hub push RUN.ckpt --repo-id ORG/NAME --dataset flatvel-a [--dry-run --out DIR]
"""

from __future__ import annotations

from epic_zoo.hub.export import export_any, export_checkpoint
from epic_zoo.hub.loader import (
    HF_HUB_PREFIX,
    PretrainedFWI,
    SupersededWeightsWarning,
    check_architecture,
    check_device,
    load_hub_folder,
    load_model,
    load_pretrained,
    model_from_checkpoint,
)
from epic_zoo.hub.publish import PushResult, push, register, retag
from epic_zoo.provenance import git_commit
from epic_zoo.weights.errors import (
    ArchitectureMismatchError,
    ChecksumError,
    HubFormatError,
    PretrainedUnavailableError,
    UnknownPretrainedError,
)
from epic_zoo.weights.files import (
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
from epic_zoo.weights.folder import (
    build_config,
    model_config,
    normalization_stats,
    read_config,
    save_hub_folder,
)
from epic_zoo.weights.registry import (
    CHECKPOINTS_ENV,
    REGISTRY_FORMAT_VERSION,
    REGISTRY_NAME,
    TAG_PATTERN,
    PretrainedInfo,
    check_name,
    default_registry_path,
    get_pretrained_info,
    list_pretrained,
    read_registry,
    tagged_name,
    write_registry,
)
from epic_zoo.weights.resolve import download_repo, resolve_pretrained
from epic_zoo.weights.runs import RESULTS_FILE, find_run_checkpoint, read_results, run_inputs

__all__ = [
    "ArchitectureMismatchError",
    "CARD_NAME",
    "CHECKPOINTS_ENV",
    "CONFIG_NAME",
    "ChecksumError",
    "DEFAULT_LICENSE",
    "FUNCTIONAL_FILES",
    "HF_HUB_PREFIX",
    "HUB_FILES",
    "HUB_FORMAT",
    "HUB_FORMAT_VERSION",
    "HubFormatError",
    "PretrainedFWI",
    "PretrainedInfo",
    "PretrainedUnavailableError",
    "PushResult",
    "REGISTRY_FORMAT_VERSION",
    "REGISTRY_NAME",
    "RESULTS_FILE",
    "SupersededWeightsWarning",
    "TAG_PATTERN",
    "UnknownPretrainedError",
    "WEIGHTS_NAME",
    "build_config",
    "check_architecture",
    "check_device",
    "check_name",
    "default_registry_path",
    "download_repo",
    "export_any",
    "export_checkpoint",
    "file_sha256",
    "find_run_checkpoint",
    "folder_hashes",
    "get_pretrained_info",
    "git_commit",
    "list_pretrained",
    "load_hub_folder",
    "load_model",
    "load_pretrained",
    "model_config",
    "model_from_checkpoint",
    "normalization_stats",
    "push",
    "read_config",
    "read_json",
    "read_registry",
    "read_results",
    "register",
    "resolve_pretrained",
    "retag",
    "run_inputs",
    "save_hub_folder",
    "tagged_name",
    "write_registry",
]

"""Model specs -> the files that hold them; builds nothing.

Weights-format layer (below the models). :func:`resolve_spec` turns anything a user can pass as a model
(a pretrained name, a Hub-format folder or its ``model.safetensors``,
``hf-hub:ORG/REPO[@REVISION]``, a Lightning ``.ckpt``, a run folder) into a
:class:`WeightsSource`: the verified Hub-format folder or the checkpoint to
read, with what the registry expects of it. Pretrained names are found (and
downloaded) by :func:`epic_zoo.weights.resolve.resolve_pretrained`, ``hf-hub:``
repos by :func:`epic_zoo.weights.resolve.download_repo`.

The model factory (:mod:`epic_zoo.models.builder`) builds networks from a
source, the way timm's ``_builder`` builds from what ``_hub`` resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from epic_zoo.weights.errors import HubFormatError, UnknownPretrainedError
from epic_zoo.weights.files import CONFIG_NAME, WEIGHTS_NAME
from epic_zoo.weights.registry import get_pretrained_info
from epic_zoo.weights.resolve import download_repo, resolve_pretrained
from epic_zoo.weights.runs import is_run_folder, run_inputs

HF_HUB_PREFIX = "hf-hub:"
"""Prefix of a Hub repo spec: ``hf-hub:ORG/REPO`` or ``hf-hub:ORG/REPO@REVISION``."""


@dataclass(frozen=True)
class WeightsSource:
    """Where a spec's weights are, resolved (and for pretrained names verified) on disk.

    Exactly one of ``folder`` (Hub format: ``config.json`` + ``model.safetensors``)
    and ``checkpoint`` (Lightning ``.ckpt``) is set.
    """

    spec: str
    """The spec as the user passed it."""
    kind: str
    """``pretrained``, ``folder``, ``hf-hub``, ``checkpoint`` or ``run``."""
    path: Path | None
    """The folder, checkpoint or run reported to the user (``None`` for pretrained names)."""
    folder: Path | None = None
    checkpoint: Path | None = None
    what: str | None = None
    """How to name the weights in error messages (default: the folder)."""
    sha256: dict[str, str] | None = None
    """``{file name: sha256}`` of the functional files (pretrained names)."""
    architecture: str | None = None
    """The registry's architecture (pretrained names)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Added to the loader's ``meta``: ``source``, ``repo_id``, ``metrics``, ``record``."""


def pretrained_source(
    name: str, *, registry: str | Path | None = None, **options: Any
) -> WeightsSource:
    """The verified folder of a pretrained name (committed copy -> HF cache -> Hub).

    ``options`` (``cache_dir``, ``local_files_only``, ``endpoint``, ``token``)
    as :func:`epic_zoo.weights.resolve.resolve_pretrained`.
    """
    info = get_pretrained_info(name, registry)
    folder, source = resolve_pretrained(name, registry=registry, **options)
    return WeightsSource(
        spec=name,
        kind="pretrained",
        path=None,
        folder=folder,
        what=info.name,
        sha256=info.expected_hashes(),
        architecture=info.architecture,
        extra={"source": source},
    )


def resolve_spec(
    spec: str | Path,
    *,
    registry: str | Path | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    force_download: bool = False,
    token: str | bool | None = None,
) -> WeightsSource:
    """Find the files of a model spec (download ``hf-hub:`` repos and pretrained names).

    Args:
        spec: pretrained name (``epic.flatvel-a``), Hub-format folder or its
            ``model.safetensors``, ``hf-hub:ORG/REPO[@REVISION]``, Lightning
            ``.ckpt``, or a run folder (``results.json`` / checkpoints).
        registry: ``registry.json`` for pretrained names (default: the shipped one).
        revision, cache_dir, local_files_only, force_download, token: for
            ``hf-hub:`` specs (``local_files_only`` defaults to ``HF_HUB_OFFLINE``).

    Raises:
        UnknownPretrainedError: not a path, Hub spec nor registered name.
        HubFormatError: an existing path that holds no model; FileNotFoundError:
        a path that does not exist; PretrainedUnavailableError, ChecksumError.
    """
    text = str(spec)
    if text.startswith(HF_HUB_PREFIX):
        repo_id, _, rev = text[len(HF_HUB_PREFIX) :].partition("@")
        if repo_id.count("/") != 1:
            raise ValueError(f"{text!r}: a Hub spec looks like hf-hub:ORG/REPO[@REVISION]")
        folder = download_repo(
            repo_id,
            revision=rev or revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            force_download=force_download,
            token=token,
        )
        return WeightsSource(
            text, "hf-hub", folder, folder=folder, what=text, extra={"repo_id": repo_id}
        )
    path = Path(spec)
    if path.is_file() and path.suffix == ".safetensors":
        path = path.parent
    if path.is_dir() and (path / CONFIG_NAME).is_file():
        return WeightsSource(text, "folder", path, folder=path)
    if path.is_file() and path.suffix == ".ckpt":
        return WeightsSource(text, "checkpoint", path, checkpoint=path)
    if is_run_folder(path):
        checkpoint, metrics, record = run_inputs(path)
        return WeightsSource(
            text,
            "run",
            checkpoint.parent,
            checkpoint=checkpoint,
            extra={"metrics": metrics, "record": record},
        )
    if path.exists():
        raise HubFormatError(
            f"{text}: not a Hub-format folder ({CONFIG_NAME} + {WEIGHTS_NAME}), .safetensors, "
            ".ckpt or run folder (results.json or a checkpoints/*.ckpt)"
        )
    if "/" in text or "\\" in text or path.suffix in (".ckpt", ".safetensors", ".json"):
        raise FileNotFoundError(
            f"{text}: no such file or folder (a model spec is a pretrained name, a Hub-format "
            "folder, a .ckpt, a run folder or hf-hub:ORG/REPO)"
        )
    return pretrained_source(text, registry=registry)


def is_weights_spec(name: str) -> bool:
    """``hf-hub:ORG/REPO`` or an existing folder / file (Hub folder, ``.ckpt``, run folder)."""
    return name.startswith(HF_HUB_PREFIX) or Path(name).exists()


def hub_spec(name_or_path: str | Path) -> str:
    """``from_pretrained`` argument -> :func:`resolve_spec` spec.

    An existing path, an ``hf-hub:`` spec or a registered pretrained name is
    kept; anything else of the form ``ORG/REPO`` is a Hub repo id.
    """
    text = str(name_or_path)
    if text.startswith(HF_HUB_PREFIX) or Path(text).exists():
        return text
    try:
        get_pretrained_info(text)
        return text
    except UnknownPretrainedError:
        pass
    return HF_HUB_PREFIX + text if text.count("/") == 1 else text

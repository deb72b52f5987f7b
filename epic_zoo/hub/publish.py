"""Publish: upload a Hub-format folder and register it in ``registry.json``.

Upper layer (loads the folder once before uploading or registering, so a
broken export never leaves this machine nor enters the registry).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi

import epic_zoo
from epic_zoo.data.contract import read_contract
from epic_zoo.hub.export import export_any
from epic_zoo.models.builder import build_from_folder
from epic_zoo.weights.card import card_text
from epic_zoo.weights.files import (
    CARD_NAME,
    CONFIG_NAME,
    DEFAULT_LICENSE,
    HUB_FILES,
    WEIGHTS_NAME,
    atomic_write_text,
    file_sha256,
    folder_hashes,
)
from epic_zoo.weights.folder import read_config
from epic_zoo.weights.registry import (
    PretrainedInfo,
    check_name,
    get_pretrained_info,
    read_registry,
    tagged_name,
    write_registry,
)
from epic_zoo.weights.resolve import hf_endpoint


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
    build_from_folder(folder, what=f"exported {folder}")
    files = {f: (folder / f).stat().st_size for f in HUB_FILES}
    sha = file_sha256(folder / WEIGHTS_NAME)
    if dry_run:
        return PushResult(folder, files, sha, repo_id, revision, None, None)
    api = HfApi(endpoint=hf_endpoint(endpoint), token=token)
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
    payload, the mean-map ``baseline``, the ``training`` budget and commit and
    ``superseded`` come from
    ``config.json``; ``files`` records the sha256 of ``config.json`` and
    ``model.safetensors``; ``check`` is kept from an older entry with the same
    hashes. The folder's model card is rewritten after (not part of ``files``),
    so it shows the registered name.
    """
    folder = Path(folder)
    registry = Path(registry)
    config = read_config(folder)
    check_name(str(config["name"]), str(config["architecture"]), str(config["dataset"]))
    build_from_folder(folder)
    weights = folder / WEIGHTS_NAME
    sha = file_sha256(weights)
    hashes = folder_hashes(folder)
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
        "generator",
        "seed",
        "recipe_residuals",
        "field_noise",
    )
    data = {k: record[k] for k in data_keys if k in record}
    data.setdefault("time_stride", read_contract(config, what=str(folder)).time_stride)
    schedule = record.get("schedule") or {}
    training = {
        "samples_seen": record.get("samples_seen"),
        "epochs": record.get("run_epochs", record.get("epochs")),
        "steps": schedule.get("steps", record.get("global_step")),
        "lr": schedule.get("lr"),
        "batch_size": record.get("batch_size"),
        "checkpoint_monitor": record.get("checkpoint_monitor"),
        "wall_time_s": record.get("wall_time_s"),
        "commit": record.get("commit"),
    }
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
        check=(
            old.check
            if old is not None and all(hashes.get(k) == v for k, v in old.expected_hashes().items())
            else None
        ),
        params=config.get("params"),
        payload_bytes=config.get("payload_bytes"),
        license=record.get("license", DEFAULT_LICENSE),
        recipe=record.get("recipe"),
        files=hashes,
        baseline=dict(record.get("baseline") or {}),
        training={k: v for k, v in training.items() if v is not None},
        superseded=record.get("superseded"),
    )
    entries[entry.name] = entry
    write_registry(entries, registry)
    # a card written before the name was registered lacks it: now it can show the name
    atomic_write_text(folder / CARD_NAME, card_text(config, repo_id))
    return entry


def retag(name: str, tag: str, *, registry: str | Path) -> PretrainedInfo:
    """Keep the weights registered as ``name`` under ``name.tag``, freeing ``name`` for newer ones.

    The weights file is untouched (same sha256), the entry keeps its Hub repo
    and pinned revision and its ``check``; a committed copy moves to the
    folder ``name.tag`` beside the registry, with the new name in its
    ``config.json`` and card. Register the newer weights under ``name`` after.

    Raises:
        UnknownPretrainedError: ``name`` is not registered.
        ValueError: the tag is not valid, ``name`` already has one, or ``name.tag``
            (entry or folder) exists.
    """
    registry = Path(registry)
    info = get_pretrained_info(name, registry)
    new = tagged_name(info.name, tag)
    entries = read_registry(registry)
    if new in entries:
        raise ValueError(f"{new} is registered already in {registry}; choose another tag")
    entry = dataclasses.replace(info, name=new)
    if info.local is not None:
        old_folder, folder = registry.parent / info.local, registry.parent / new
        if folder.exists():
            raise ValueError(f"{folder} exists; move it away or choose another tag")
        config = {**read_config(old_folder), "name": new}
        old_folder.rename(folder)
        atomic_write_text(folder / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
        entry = dataclasses.replace(
            entry, local=new, files={**info.files, CONFIG_NAME: file_sha256(folder / CONFIG_NAME)}
        )
    del entries[info.name]
    entries[new] = entry
    write_registry(entries, registry)
    if info.local is not None:  # the card names the weights as the registry now does
        atomic_write_text(folder / CARD_NAME, card_text(config, info.repo_id))
    return entry

"""The two public routes to a model: :func:`create_model` and :func:`load_model`.

Models layer (timm's ``_factory``): architectures come from
:mod:`epic_zoo.models.registry`; weights are found by the weights-format layer
(:func:`epic_zoo.weights.spec.resolve_spec`, which never builds a model) and
built and loaded by :mod:`epic_zoo.models.builder`. Everything that loads
weights (``create_model(..., pretrained=True)``, every class's
``from_pretrained``, ``evaluate``, ``bench``, ``deploy``, the hub's export and
publish) goes through :func:`load_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from epic_zoo.models.builder import build_from_source, check_device
from epic_zoo.models.registry import build_architecture, model_entrypoint
from epic_zoo.weights.spec import hub_spec, is_weights_spec, resolve_spec


def create_model(name: str, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build a registered model by name, or load one with its weights.

    Args:
        name: an architecture (``"epic"``), a pretrained tag (``"epic.flatvel-a"``),
            a Hub repo (``"hf-hub:ORG/REPO"``) or a local Hub-format folder,
            ``.ckpt`` or run folder. Without ``pretrained`` a tag builds the bare
            architecture; a Hub repo or local path always loads its weights.
        pretrained: load published weights (:func:`load_model`).
        **kwargs: constructor arguments (``time_samples``, ``num_devices``, ...); with
            weights, each must equal the stored one.

    Raises:
        KeyError: unknown architecture, with the closest registered names.
    """
    if is_weights_spec(name):
        return load_model(name, **kwargs)
    arch = name.split(".", 1)[0]
    model_entrypoint(arch)
    if pretrained:
        return load_model(name, **kwargs)
    return build_architecture(arch, **kwargs)


def load_model(
    spec: str | Path,
    *,
    map_location: str | torch.device = "cpu",
    registry: str | Path | None = None,
    expected: str | type | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    force_download: bool = False,
    token: str | bool | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """The one loader: a name, folder, checkpoint, run or Hub repo -> the network.

    Args:
        spec: pretrained name (``epic.flatvel-a``), Hub-format folder or its
            ``model.safetensors``, ``hf-hub:ORG/REPO[@REVISION]``, Lightning
            ``.ckpt``, or a run folder (``results.json`` / checkpoints).
        map_location: device of the returned model (checked first).
        registry: ``registry.json`` for pretrained names (default: the shipped one).
        expected: architecture name or model class the spec must hold.
        revision, cache_dir, local_files_only, force_download, token: for
            ``hf-hub:`` specs (``local_files_only`` defaults to ``HF_HUB_OFFLINE``).
        **model_kwargs: constructor arguments that must equal the stored ones.

    Returns:
        The network in eval mode. ``model.contract`` is its
        :class:`~epic_zoo.data.contract.InputContract` (``None`` where the
        source records none); ``model.pretrained_cfg`` the Hub ``config.json``
        (Hub folders); ``model.source`` the provenance dict: ``spec``, ``kind``
        (``pretrained``/``folder``/``hf-hub``/``checkpoint``/``run``), ``path``,
        ``name``, ``architecture``, ``dataset``, ``contract``, ``superseded``
        (the reason or ``None``), ``config`` (the Hub config, if any);
        checkpoints and runs add ``checkpoint`` and ``info`` (hyper-parameters,
        epochs), runs ``metrics`` and ``record``, pretrained names ``source``
        (``local``/``cache``/``hub``), ``hf-hub:`` specs ``repo_id``.

    Raises:
        UnknownPretrainedError: not a path, Hub spec nor registered name.
        HubFormatError (ChecksumError, ArchitectureMismatchError),
        PretrainedUnavailableError, ValueError: see
        :func:`epic_zoo.models.builder.build_from_folder`.
    """
    check_device(map_location)
    source = resolve_spec(
        spec,
        registry=registry,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        force_download=force_download,
        token=token,
    )
    return build_from_source(source, map_location=map_location, expected=expected, **model_kwargs)


def from_pretrained(
    name_or_path: str | Path,
    *,
    expected: str | type | None,
    force_download: bool = False,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
    revision: str | None = None,
    map_location: str | torch.device = "cpu",
    **model_kwargs: Any,
) -> nn.Module:
    """``from_pretrained`` of every Hub-native epic_zoo class: :func:`load_model` with
    ``huggingface_hub``'s argument names (``ORG/REPO`` means ``hf-hub:ORG/REPO``,
    see :func:`~epic_zoo.weights.spec.hub_spec`)."""
    return load_model(
        hub_spec(name_or_path),
        map_location=map_location,
        expected=expected,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only or None,
        force_download=force_download,
        token=token,
        **model_kwargs,
    )

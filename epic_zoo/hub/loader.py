"""Deprecated loading routes, kept one release: each warns and calls :func:`epic_zoo.models.load_model`.

The two public routes to a model are :func:`epic_zoo.models.create_model`
and :func:`epic_zoo.models.load_model` (one return type: the network, with
``model.source``, ``model.contract`` and, for Hub folders,
``model.pretrained_cfg``). The names below were the earlier ways in; they
emit a ``DeprecationWarning`` naming the replacement and will be removed in
the next release.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from epic_zoo.models.builder import (
    SupersededWeightsWarning,
    build_from_folder,
    build_from_source,
    check_architecture,
    check_device,
)
from epic_zoo.models.factory import load_model as _load_model
from epic_zoo.weights.files import DEFAULT_LICENSE
from epic_zoo.weights.spec import HF_HUB_PREFIX, hub_spec, pretrained_source

__all__ = [
    "HF_HUB_PREFIX",
    "PretrainedFWI",
    "SupersededWeightsWarning",
    "check_architecture",
    "check_device",
    "load_hub_folder",
    "load_model",
    "load_pretrained",
    "model_from_checkpoint",
]


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new}",
        DeprecationWarning,
        stacklevel=3,
    )


def load_model(spec: str | Path, **kwargs: Any) -> tuple[nn.Module, dict[str, Any]]:
    """Deprecated: ``(model, meta)``; use :func:`epic_zoo.models.load_model` (``meta`` is ``model.source``)."""
    _deprecated(
        "epic_zoo.hub.load_model (returning a tuple)",
        "epic_zoo.models.load_model(spec), whose provenance is model.source",
    )
    model = _load_model(spec, **kwargs)
    meta = dict(model.source)
    contract = meta.get("contract")
    meta["time_stride"] = contract.time_stride if contract is not None else None
    return model, meta


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
    """Deprecated: use ``epic_zoo.models.load_model(name)`` or ``create_model(name, pretrained=True)``."""
    _deprecated("epic_zoo.hub.load_pretrained", "epic_zoo.models.load_model(name)")
    source = pretrained_source(
        name,
        registry=registry,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        endpoint=endpoint,
        token=token,
    )
    return build_from_source(source, map_location=map_location, **model_kwargs)


def load_hub_folder(folder: str | Path, **kwargs: Any) -> nn.Module:
    """Deprecated: use ``epic_zoo.models.load_model(folder)`` (arguments as before:
    ``map_location``, ``sha256``, ``what``, ``expected``, constructor arguments)."""
    _deprecated("epic_zoo.hub.load_hub_folder", "epic_zoo.models.load_model(folder)")
    return build_from_folder(folder, **kwargs)


def model_from_checkpoint(
    path: str | Path, *, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Deprecated: ``(model, info)``; use ``epic_zoo.models.load_model(path)`` (``model.source["info"]``)."""
    _deprecated(
        "epic_zoo.hub.model_from_checkpoint",
        "epic_zoo.models.load_model(path), whose model.source['info'] holds the checkpoint info",
    )
    model = _load_model(str(path), map_location=map_location)
    return model, model.source["info"]


class PretrainedFWI(PyTorchModelHubMixin, library_name="epic_zoo", license=DEFAULT_LICENSE):
    """Deprecated ``huggingface_hub`` entry point; use :func:`epic_zoo.models.load_model`.

    ``PretrainedFWI.from_pretrained("org/epic-flatvel-a")`` (or a local folder,
    or a pretrained name) returns the epic_zoo network itself, whatever its
    class: ``load_model("hf-hub:org/epic-flatvel-a")`` does the same.
    """

    def __init__(self) -> None:
        raise TypeError(
            "PretrainedFWI only loads: use epic_zoo.models.load_model(spec) or a model class "
            "such as EPIC.from_pretrained"
        )

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | Path, **kwargs: Any
    ) -> nn.Module:
        """Deprecated: the network of a Hub repo id, ``hf-hub:`` spec, local folder or name."""
        _deprecated("PretrainedFWI.from_pretrained", "epic_zoo.models.load_model(spec)")
        options = {k: v for k, v in kwargs.items() if v is not None}
        if options.pop("local_files_only", False):
            options["local_files_only"] = True
        return _load_model(hub_spec(pretrained_model_name_or_path), **options)

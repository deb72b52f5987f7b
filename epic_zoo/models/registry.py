"""Model registry in the timm manner: ``@register_model``, ``create_model``, ``list_models``.

A builder is a function ``name(**kwargs) -> nn.Module`` registered under its
name (underscores become hyphens, or pass the name explicitly:
``@register_model("epic-4bit")``). Every built model carries ``model.config``:
its plain constructor kwargs plus ``"name"``, so ``create_model(**model.config)``
rebuilds the same architecture.

Pretrained weights are named ``"arch.dataset"`` (``"epic.flatvel-a"``); the
names come from the hub's registry (lower layer, builds nothing) and the
weights from the hub's one loader (:func:`epic_zoo.hub.load_model`, upper layer,
imported only when weights are asked for: it builds models with this module,
so importing it here would close a cycle).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from pathlib import Path

from torch import nn

from epic_zoo.hub.registry import list_pretrained  # noqa: F401  (re-exported: one home)

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name_or_fn: str | Callable[..., nn.Module]) -> Callable:
    """Register a model builder; use bare (``@register_model``) or with a name.

    Raises ``ValueError`` if the name is already taken.
    """

    def _register(fn: Callable[..., nn.Module], name: str) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is already registered")
        _MODELS[name] = fn
        return fn

    if callable(name_or_fn):
        return _register(name_or_fn, name_or_fn.__name__.replace("_", "-"))
    return lambda fn: _register(fn, str(name_or_fn))


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of registered architectures, optionally filtered by a glob (``"epic*"``)."""
    names = sorted(_MODELS)
    return fnmatch.filter(names, pattern) if pattern else names


def _builder(arch: str) -> Callable[..., nn.Module]:
    if arch not in _MODELS:
        close = difflib.get_close_matches(arch, list(_MODELS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise KeyError(
            f"unknown model {arch!r}.{hint} Registered models: {', '.join(sorted(_MODELS))}"
        )
    return _MODELS[arch]


def _is_weights_spec(name: str) -> bool:
    """``hf-hub:ORG/REPO`` or an existing folder / file (Hub folder, ``.ckpt``, run folder)."""
    return name.startswith("hf-hub:") or Path(name).exists()


def create_model(name: str, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build a registered model by name, or load one with its weights.

    Args:
        name: an architecture (``"epic"``), a pretrained tag (``"epic.flatvel-a"``),
            a Hub repo (``"hf-hub:ORG/REPO"``) or a local Hub-format folder,
            ``.ckpt`` or run folder. Without ``pretrained`` a tag builds the bare
            architecture; a Hub repo or local path always loads its weights.
        pretrained: load published weights (:func:`epic_zoo.hub.load_model`).
        **kwargs: constructor arguments (``time_samples``, ``num_devices``, ...); with
            weights, each must equal the stored one.

    Raises:
        KeyError: unknown architecture, with the closest registered names.
    """
    if _is_weights_spec(name):
        from epic_zoo.hub.loader import load_model

        return load_model(name, **kwargs)[0]
    arch = name.split(".", 1)[0]
    builder = _builder(arch)
    if pretrained:
        from epic_zoo.hub.loader import load_model

        return load_model(name, **kwargs)[0]
    model = builder(**kwargs)
    model.config["name"] = arch
    return model

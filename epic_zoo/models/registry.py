"""Model registry in the timm manner: ``@register_model``, ``create_model``, ``list_models``.

A builder is a function ``name(**kwargs) -> nn.Module`` registered under its
name (underscores become hyphens, or pass the name explicitly:
``@register_model("epic-4bit")``). Every built model carries ``model.config``:
its plain constructor kwargs plus ``"name"``, so ``create_model(**model.config)``
rebuilds the same architecture.

Pretrained weights are named ``"arch.dataset"`` (``"epic.flatvel-a"``) and come
from :mod:`epic_zoo.hub`, imported only when asked for.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable

from torch import nn

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


def list_pretrained(pattern: str | None = None) -> list[str]:
    """Names of published weights (``"epic.flatvel-a"``, ...); ``[]`` if the hub module is absent."""
    try:
        from epic_zoo import hub
    except ImportError:
        return []
    names = sorted(hub.list_pretrained())
    return fnmatch.filter(names, pattern) if pattern else names


def _builder(arch: str) -> Callable[..., nn.Module]:
    if arch not in _MODELS:
        close = difflib.get_close_matches(arch, list(_MODELS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise KeyError(
            f"unknown model {arch!r}.{hint} Registered models: {', '.join(sorted(_MODELS))}"
        )
    return _MODELS[arch]


def create_model(name: str, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build a registered model by name.

    Args:
        name: an architecture (``"epic"``) or a pretrained tag (``"epic.flatvel-a"``).
            Without ``pretrained`` a tag builds the bare architecture.
        pretrained: load published weights via ``epic_zoo.hub.load_pretrained(name, **kwargs)``.
        **kwargs: constructor arguments (``time_samples``, ``num_devices``, ...).

    Raises:
        KeyError: unknown architecture, with the closest registered names.
    """
    arch = name.split(".", 1)[0]
    builder = _builder(arch)
    if pretrained:
        from epic_zoo import hub

        return hub.load_pretrained(name, **kwargs)
    model = builder(**kwargs)
    model.config["name"] = arch
    return model

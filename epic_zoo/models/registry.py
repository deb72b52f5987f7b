"""Model registry in the timm manner: ``@register_model``, ``list_models``.

A builder is a function ``name(**kwargs) -> nn.Module`` registered under its
name (underscores become hyphens, or pass the name explicitly:
``@register_model("epic-4bit")``). Every built model carries ``model.config``:
its plain constructor kwargs plus ``"name"``, so ``create_model(**model.config)``
rebuilds the same architecture.

Pretrained weights are named ``"arch.dataset"`` (``"epic.flatvel-a"``); the
names come from the weights registry (:mod:`epic_zoo.weights.registry`, below the models).
:func:`epic_zoo.models.factory.create_model` builds from here or, with
weights, through :mod:`epic_zoo.models.builder` (timm's ``_registry``,
``_factory`` and ``_builder``).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable

from torch import nn

from epic_zoo.weights.registry import list_pretrained  # noqa: F401  (re-exported: one home)

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


def list_models(pattern: str | None = None, pretrained: bool = False) -> list[str]:
    """Sorted names of registered architectures, optionally filtered by a glob (``"epic*"``).

    With ``pretrained=True`` (as in timm) the names of the published weights
    instead (``"epic.flatvel-a"``, ...; :func:`list_pretrained`), filtered by
    the same glob.
    """
    if pretrained:
        return list_pretrained(pattern or "*")
    names = sorted(_MODELS)
    return fnmatch.filter(names, pattern) if pattern else names


def model_entrypoint(arch: str) -> Callable[..., nn.Module]:
    """The registered builder of ``arch``; ``KeyError`` naming the closest registered names."""
    if arch not in _MODELS:
        close = difflib.get_close_matches(arch, list(_MODELS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise KeyError(
            f"unknown model {arch!r}.{hint} Registered models: {', '.join(sorted(_MODELS))}"
        )
    return _MODELS[arch]


def build_architecture(arch: str, **kwargs) -> nn.Module:
    """A fresh (untrained) network of a registered architecture; ``model.config["name"]`` is set.

    Raises:
        KeyError: unknown architecture, with the closest registered names.
    """
    model = model_entrypoint(arch)(**kwargs)
    model.config["name"] = arch
    return model

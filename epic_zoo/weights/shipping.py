"""What a built wheel ships of the pretrained zoo: each dataset's default weights.

The repository's registry (``checkpoints/registry.json``) names every
committed version; a wheel carries the default weights of each dataset
(``ARCH.DATASET``) and lists the tagged versions (``ARCH.DATASET.TAG``) it
leaves out under :data:`OMITTED_KEY`, each with where to find it
(:func:`epic_zoo.weights.registry.omitted_from_install` reads it). Leaving
them out keeps the wheel under PyPI's default limit of 100 MB per file.

Standard library only: the build hook (``setup.py``) loads this file by its
path, without importing the package, whose dependencies an isolated build
does not have.
"""

from __future__ import annotations

from typing import Any

OMITTED_KEY = "not_in_this_install"
"""Top-level key of a wheel's registry: ``{name: where to find it}`` for the versions it leaves out."""

HUB_FILES = ("config.json", "README.md", "model.safetensors")
"""The files of a committed Hub folder that a wheel carries."""


def is_tagged(name: str) -> bool:
    """``ARCH.DATASET.TAG``: another version beside a dataset's default weights."""
    return name.count(".") >= 2


def wheel_registry(doc: dict[str, Any]) -> dict[str, Any]:
    """The registry a wheel carries, from the repository's registry document ``doc``.

    Each dataset's default weights (committed) and anything pinned on the Hub
    stay; a tagged version committed only in the repository moves to
    :data:`OMITTED_KEY` with where to find it.
    """
    kept: dict[str, Any] = {}
    omitted: dict[str, str] = {}
    for name, entry in doc["weights"].items():
        if not (is_tagged(name) and entry.get("local")):
            kept[name] = entry
        elif entry.get("revision"):
            kept[name] = {**entry, "local": None}  # the wheel loads it from the pinned Hub revision
        else:
            omitted[name] = (
                f"a version kept beside the default weights in the epic_zoo repository "
                f"(checkpoints/{entry['local']}); the wheel ships each dataset's default weights "
                "only. Load it from a clone of the repository (pip install -e .), or from the "
                "Hub once it is published there"
            )
    return {**doc, "weights": kept, OMITTED_KEY: omitted}

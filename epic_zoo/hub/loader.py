"""The hub's upper layer for loading: :func:`load_model` and :class:`PretrainedFWI`.

:func:`load_model` accepts

- a pretrained name (``epic.flatvel-a``; resolved and verified by
  :func:`epic_zoo.hub.resolve.resolve_pretrained`),
- a Hub-format folder (or its ``model.safetensors``),
- ``hf-hub:ORG/REPO[@REVISION]`` (downloaded into, or read offline from, the
  Hugging Face cache),
- a Lightning ``.ckpt`` (read with ``weights_only=True``),
- a run folder written by ``python -m epic_zoo.run`` (``results.json`` names its
  best checkpoint).

``evaluate``, ``bench``, ``deploy`` and ``create_model(..., pretrained=True)``
all call it. It is the model factory's loader
(:func:`epic_zoo.models.factory.load_model`): the hub's lower layer
(:mod:`epic_zoo.hub.spec`) finds the files without building anything, the
models layer (:mod:`epic_zoo.models.builder`) builds from them, and this module
imports both, so nothing below it imports back up (timm's ``_hub`` /
``_builder`` / ``_factory`` split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from epic_zoo.hub.files import DEFAULT_LICENSE
from epic_zoo.hub.spec import HF_HUB_PREFIX, hub_spec
from epic_zoo.models.builder import (
    SupersededWeightsWarning,
    check_architecture,
    check_device,
    load_hub_folder,
    load_pretrained,
    model_from_checkpoint,
)
from epic_zoo.models.factory import from_pretrained, load_model

__all__ = [
    "HF_HUB_PREFIX",
    "PretrainedFWI",
    "SupersededWeightsWarning",
    "check_architecture",
    "check_device",
    "from_pretrained",
    "hub_spec",
    "load_hub_folder",
    "load_model",
    "load_pretrained",
    "model_from_checkpoint",
]


class PretrainedFWI(PyTorchModelHubMixin, library_name="epic_zoo", license=DEFAULT_LICENSE):
    """``huggingface_hub`` entry point for any epic_zoo Hub-format repo or folder.

    ``PretrainedFWI.from_pretrained("org/epic-flatvel-a")`` (or a local folder,
    or a pretrained name) returns the epic_zoo network itself, whatever its
    class. The model classes are Hub-native too (``EPIC.from_pretrained``,
    ``model.save_pretrained``, ``model.push_to_hub``); this class only serves
    callers that do not know the architecture.
    """

    def __init__(self) -> None:
        raise TypeError(
            "PretrainedFWI only loads: use PretrainedFWI.from_pretrained(repo_or_folder), "
            "epic_zoo.models.create_model(...) or a model class such as EPIC"
        )

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | Path, **kwargs: Any
    ) -> nn.Module:
        """The network of a Hub repo id, ``hf-hub:`` spec, local folder or pretrained name.

        Keyword arguments as :func:`epic_zoo.models.factory.from_pretrained`
        (any architecture is accepted).
        """
        return from_pretrained(pretrained_model_name_or_path, expected=None, **kwargs)

"""The weights format: Hub-format folders, the registry, and where a model spec's files are.

Below :mod:`epic_zoo.models`: reads and writes files, never builds a network
and never imports ``epic_zoo.models`` (tests/test_architecture.py checks it).
timm keeps ``_registry`` / ``_hub`` apart from ``_builder`` / ``_factory`` the
same way.

- :mod:`~epic_zoo.weights.errors`: one exception per failure, each naming the fix;
- :mod:`~epic_zoo.weights.files`: file names, sha256, atomic writes, safetensors checks;
- :mod:`~epic_zoo.weights.folder`: ``config.json`` + ``model.safetensors`` + card;
- :mod:`~epic_zoo.weights.card`: the model card with ``model-index``;
- :mod:`~epic_zoo.weights.registry`: ``registry.json`` (pretrained names);
- :mod:`~epic_zoo.weights.resolve`: committed folder -> HF cache -> Hub download;
- :mod:`~epic_zoo.weights.runs`: run folders and Lightning ``.ckpt`` files;
- :mod:`~epic_zoo.weights.spec`: any model spec -> the files that hold it.

Building and loading networks: :mod:`epic_zoo.models` (``create_model``,
``load_model``); export, publishing and ``python -m epic_zoo.hub``:
:mod:`epic_zoo.hub`.
"""

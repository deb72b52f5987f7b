"""Build hook: ship the pretrained zoo (``checkpoints/``) inside the wheel.

Everything else is configured in ``pyproject.toml``. The repository keeps the
zoo at the top level (``checkpoints/registry.json`` + one Hub-format folder per
committed weight); the wheel carries the same files as package data under
``epic_zoo/checkpoints/``, where :func:`epic_zoo.weights.registry.default_registry_path`
finds them, so ``pip install`` gives a working offline zoo. Only the registry
and the three files of each committed Hub folder are copied (no scripts).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ZOO = Path(__file__).resolve().parent / "checkpoints"
HUB_FILES = ("config.json", "README.md", "model.safetensors")


def zoo_files() -> list[Path]:
    """``registry.json`` and the Hub files of every committed (``local``) registry entry."""
    registry = ZOO / "registry.json"
    if not registry.is_file():
        return []
    entries = json.loads(registry.read_text(encoding="utf-8"))["weights"].values()
    files = [registry]
    for entry in entries:
        if entry.get("local"):
            files += [ZOO / entry["local"] / name for name in HUB_FILES]
    return [f for f in files if f.is_file()]


class BuildPyWithZoo(build_py):
    """``build_py`` that also copies the zoo to ``epic_zoo/checkpoints/`` in the build tree."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "epic_zoo" / "checkpoints"
        for source in zoo_files():
            dest = target / source.relative_to(ZOO)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)


setup(cmdclass={"build_py": BuildPyWithZoo})

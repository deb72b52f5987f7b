"""Build hook: ship the pretrained zoo (``checkpoints/``) inside the wheel.

Everything else is configured in ``pyproject.toml``. The repository keeps the
zoo at the top level (``checkpoints/registry.json`` + one Hub-format folder per
committed weight); the wheel carries each dataset's default weights as package
data under ``epic_zoo/checkpoints/``, where
:func:`epic_zoo.weights.registry.default_registry_path` finds them, so ``pip
install`` gives a working offline zoo. Only the registry and the three files of
each shipped Hub folder are copied (no scripts); tagged versions that live only
in the repository are named in the wheel's registry with where to find them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ZOO = Path(__file__).resolve().parent / "checkpoints"
HUB_FILES = ("config.json", "README.md", "model.safetensors")
OMITTED_KEY = "not_in_this_install"
"""Registry key of the names a wheel leaves out (read by ``epic_zoo.weights.registry``)."""


def is_tagged(name: str) -> bool:
    """``ARCH.DATASET.TAG``: another version beside a dataset's default weights."""
    return name.count(".") >= 2


def wheel_registry() -> dict | None:
    """The registry the wheel carries: each dataset's default weights (committed) and anything
    on the Hub; tagged versions only in the repository are listed under ``OMITTED_KEY``.

    The tagged versions stay in the repository and its registry (loadable from a clone);
    leaving them out keeps the wheel under PyPI's default 100 MB per file.
    """
    registry = ZOO / "registry.json"
    if not registry.is_file():
        return None
    doc = json.loads(registry.read_text(encoding="utf-8"))
    kept, omitted = {}, {}
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


def zoo_files(registry: dict | None) -> list[Path]:
    """The Hub files of every committed folder the wheel's registry names."""
    if registry is None:
        return []
    files = []
    for entry in registry["weights"].values():
        if entry.get("local"):
            files += [ZOO / entry["local"] / name for name in HUB_FILES]
    return [f for f in files if f.is_file()]


class BuildPyWithZoo(build_py):
    """``build_py`` that also writes the zoo to ``epic_zoo/checkpoints/`` in the build tree."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "epic_zoo" / "checkpoints"
        registry = wheel_registry()
        if registry is None:
            return
        target.mkdir(parents=True, exist_ok=True)
        (target / "registry.json").write_text(json.dumps(registry, indent=2) + "\n", "utf-8")
        for source in zoo_files(registry):
            dest = target / source.relative_to(ZOO)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)


setup(cmdclass={"build_py": BuildPyWithZoo})

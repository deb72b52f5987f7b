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

import importlib.util
import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
ZOO = ROOT / "checkpoints"


def _shipping():
    """``epic_zoo/weights/shipping.py`` loaded by its path (the package's dependencies are not
    installed in an isolated build; that module needs the standard library only)."""
    spec = importlib.util.spec_from_file_location(
        "_epic_zoo_shipping", ROOT / "epic_zoo" / "weights" / "shipping.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SHIPPING = _shipping()


def wheel_registry() -> dict | None:
    """The registry the wheel carries (``epic_zoo.weights.shipping.wheel_registry``); ``None``
    without a zoo."""
    registry = ZOO / "registry.json"
    if not registry.is_file():
        return None
    return SHIPPING.wheel_registry(json.loads(registry.read_text(encoding="utf-8")))


def zoo_files(registry: dict | None) -> list[Path]:
    """The Hub files of every committed folder the wheel's registry names."""
    if registry is None:
        return []
    files = []
    for entry in registry["weights"].values():
        if entry.get("local"):
            files += [ZOO / entry["local"] / name for name in SHIPPING.HUB_FILES]
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

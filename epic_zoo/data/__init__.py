"""Data: OpenFWI geometry, velocity generators, forward model, HDF5 store, DataModule.

Names are imported on first use (``from epic_zoo.data import FWIDataModule``)
so that ``import epic_zoo.data`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "DATASETS": "catalog",
    "get_dataset": "catalog",
    "PROFILES": "profiles",
    "get_profile": "profiles",
    "receiver_split": "geometry",
    "simulate": "forward",
    "generate_velocity": "families",
    "DataError": "store",
    "H5Split": "store",
    "default_root": "store",
    "ensure_data": "generate",
    "generate_split": "generate",
    "OpenFWIFolder": "openfwi",
    "import_openfwi": "openfwi",
    "FWIDataset": "datamodule",
    "FWIDataModule": "datamodule",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"epic_zoo.data.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'epic_zoo.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

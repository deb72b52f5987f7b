"""Shared test fixtures: tiny data made by seeded code, once per session.

- ``tiny_data_root``: a cache root where ``ensure_data("flatvel-a", "tiny",
  root)`` has generated train/val/test (16/8/8 samples, time stride 4 ->
  records ``[5, 250, 70]``). Pass it as ``root=`` to
  :func:`~epic_zoo.data.generate.ensure_data` or
  :class:`~epic_zoo.data.datamodule.FWIDataModule` with ``profile="tiny"``:
  nothing is regenerated.
- ``tiny_dataset_dir``: the dataset folder inside it (``train/``, ``val/``,
  ``test/`` of shard files), e.g. for :class:`~epic_zoo.data.store.H5Split`.
- ``tiny_openfwi_root``: a folder ``FlatVel_A`` in the real OpenFWI layout
  (``data/data{i}.npy``, ``model/model{i}.npy``; files 1, 2 of the train
  list and 49 of the test list, 3 samples each).
- ``fake_samples``: ``fake_samples(n, nt=1000, seed=0)`` -> ``(seismic
  [n, 5, nt, 70], velocity [n, 1, 70, 70] m/s)`` float32, valid but not
  physical (no forward model: fast).
- ``one_thread``: one intra-op torch thread for the test (the test machines'
  cores are shared; oversubscription is slow); use it with
  ``pytestmark = pytest.mark.usefixtures("one_thread")`` or by name.
- ``write_openfwi_files``: ``write_openfwi_files(folder, dataset, keys,
  samples=3, seed=0)`` writes real-layout ``.npy`` pairs for file keys
  (``(i,)`` for Vel/Style, ``(X, Y)`` for Fault families).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from epic_zoo.data.geometry import NT, V_MAX, V_MIN


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Put the root logger's handlers and level back after each test.

    A CLI run through Hydra (``epic_zoo.run``) or ``logging.basicConfig``
    attaches handlers bound to the ``sys.stderr`` of that test; pytest closes
    that stream afterwards, and a later test's log records would then fail to
    print into it ("--- Logging error ---" on stderr).
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:  # Lightning binds its own log handlers to sys.stderr when first imported: do it
        import lightning.pytorch  # noqa: F401  # now, outside any test's captured stream
    except ImportError:
        pass
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


FakeSamples = Callable[..., tuple[np.ndarray, np.ndarray]]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op torch thread during the test, restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _fake_samples(n: int, nt: int = NT, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    seismic = rng.normal(0.0, 2.0, size=(n, 5, nt, 70)).astype(np.float32)
    depth = np.linspace(0.0, 1.0, 70, dtype=np.float32)[:, None]
    top = rng.uniform(V_MIN, 2500.0, size=(n, 1, 1, 1)).astype(np.float32)
    gain = rng.uniform(500.0, V_MAX - 2500.0, size=(n, 1, 1, 1)).astype(np.float32)
    velocity = np.broadcast_to(top + gain * depth, (n, 1, 70, 70)).astype(np.float32)
    return seismic, velocity


@pytest.fixture(scope="session")
def fake_samples() -> FakeSamples:
    return _fake_samples


def _write_openfwi_files(
    folder: Path, dataset: str, keys: Sequence[tuple[int, ...]], samples: int = 3, seed: int = 0
) -> list[tuple[Path, Path]]:
    from epic_zoo.data.catalog import get_dataset
    from epic_zoo.data.openfwi import file_pair_names

    info = get_dataset(dataset)
    pairs = []
    for n, key in enumerate(keys):
        seis_name, vel_name = file_pair_names(info, key)
        seismic, velocity = _fake_samples(samples, seed=seed + n)
        subdirs = ("data", "model") if info.family != "fault" else ("", "")
        seis_path = folder / subdirs[0] / seis_name
        vel_path = folder / subdirs[1] / vel_name
        seis_path.parent.mkdir(parents=True, exist_ok=True)
        vel_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(seis_path, seismic)
        np.save(vel_path, velocity)
        pairs.append((seis_path, vel_path))
    return pairs


@pytest.fixture(scope="session")
def write_openfwi_files() -> Callable[..., list[tuple[Path, Path]]]:
    return _write_openfwi_files


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from epic_zoo.data.generate import ensure_data

    root = tmp_path_factory.mktemp("epic_zoo_data")
    ensure_data("flatvel-a", "tiny", root, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_dataset_dir(tiny_data_root: Path) -> Path:
    from epic_zoo.data.store import profile_root

    return profile_root(tiny_data_root, "tiny", 0) / "flatvel-a"


@pytest.fixture(scope="session")
def tiny_openfwi_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("openfwi") / "FlatVel_A"
    _write_openfwi_files(folder, "flatvel-a", [(1,), (2,), (49,)], samples=3)
    return folder


EPIC_SMALL = {
    "d_model": 32,
    "heads": 2,
    "latent_dim": 16,
    "encoder_width": 16,
    "head_channels": [16, 8, 8],
    "fusion_layers": 1,
}
"""A small EPIC (time axis and devices from the data) for tests that train through the runner.

Import it as ``from conftest import EPIC_SMALL``.
"""

TINY_EPIC = {
    "time_samples": 250,
    "latent_dim": 8,
    "encoder_width": 8,
    "d_model": 16,
    "heads": 2,
    "fusion_layers": 1,
    "head_channels": [8, 8, 8],
}
"""A ~15k-parameter EPIC for 4x-decimated records (builds in milliseconds).

Import it as ``from conftest import TINY_EPIC`` (tests/ is on ``sys.path``).
"""


pytest_plugins = ["tests.hubfake"]
"""The loopback Hub and its fixtures (``env``, ``fake_hub``, ``folder``) for tests/weights and tests/hub."""

"""Assertions and loaders shared by several test modules."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_script(name: str) -> ModuleType:
    """``benchmarks/{name}.py`` loaded as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    """The CLI's stderr holds exactly one ``error:`` line, no traceback, and every needle in it."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def tiny_datamodule(root: Path, **options):
    """A set-up ``FWIDataModule`` of the tiny FlatVel-A profile under ``root`` (batches of 4),
    with ``options`` (e.g. ``recipe_residuals=...``, ``field_noise=...``)."""
    from epic_zoo.data.datamodule import FWIDataModule

    dm = FWIDataModule(
        "flatvel-a", profile="tiny", root=root, batch_size=4, generate=False, **options
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm


def augmented_twice(dm, seed: int = 3):
    """A validation batch's records, and the training-time augmentation of that batch twice,
    each after ``torch.manual_seed(seed)``: ``(records, first, second)``."""
    from types import SimpleNamespace

    import torch

    dm.trainer = SimpleNamespace(training=True)
    batch = next(iter(dm.val_dataloader()))
    outs = []
    for _ in range(2):
        torch.manual_seed(seed)
        outs.append(dm.on_after_batch_transfer(batch, 0)["seismic"])
    return batch["seismic"], outs[0], outs[1]


def seeded_batches(loader) -> list[dict]:
    """Every batch of ``loader``, drawn after ``torch.manual_seed(0)``."""
    import torch

    torch.manual_seed(0)
    return list(loader)

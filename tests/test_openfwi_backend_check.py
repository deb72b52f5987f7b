"""benchmarks/openfwi_backend_check.py: what a check compares against, and the draw of its maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from epic_zoo.hub import get_pretrained_info
from tests.helpers import benchmark_script


def _script():
    return benchmark_script("openfwi_backend_check")


def test_a_pretrained_name_is_checked_against_its_registered_test_mae():
    info = get_pretrained_info("epic.style-a")
    _, recorded = _script().load("epic.style-a")
    assert recorded["mae_ms"] == info.metrics["mae_ms"]
    # the mean map of the check is that of the weights' own training split (its registered size)
    assert recorded["train_samples"] == info.data["train"] > 0


def test_a_simulated_folder_is_reused_only_for_the_same_draw(tmp_path: Path):
    check = _script()
    _, vel_name = check.official_test_names("flatvel-a")
    first = check.simulate_folder("flatvel-a", 1, tmp_path, 1, "deepwave", seed=11)
    maps = np.load(first / vel_name)
    made = (first / vel_name).stat().st_mtime_ns
    assert check.simulate_folder("flatvel-a", 1, tmp_path, 1, "deepwave", seed=11) == first
    assert (first / vel_name).stat().st_mtime_ns == made  # same draw: not simulated again
    check.simulate_folder("flatvel-a", 1, tmp_path, 1, "deepwave", seed=12)
    assert not np.array_equal(np.load(first / vel_name), maps)  # another draw: other maps

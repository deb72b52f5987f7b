"""benchmarks/unseen_generator_check.py: probe generators and the check, end to end at 2 maps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import benchmark_script

check = benchmark_script("unseen_generator_check")


def test_probe_maps_are_their_family_by_other_laws() -> None:
    flat = check.probe_maps("flat-gradient", 8)
    assert flat.shape == (8, 1, 70, 70) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat, check.probe_maps("flat-gradient", 8))  # reproducible
    assert flat.min() >= 1500 and flat.max() <= 4500
    assert np.all(flat == flat[:, :, :, :1])  # flat: every column the same
    assert np.all(np.diff(flat[:, 0, :, 0], axis=1) >= 0)  # increasing with depth
    # a gradient inside the layers: more distinct velocities than FlatVel-A's at most 5 layers
    assert all(len(np.unique(m[0, :, 0])) > 10 for m in flat)
    log = check.probe_maps("well-log", 8)
    assert np.all(log == log[:, :, :, :1]) and np.all(np.diff(log[:, 0, :, 0], axis=1) >= 0)
    assert log.min() >= 1500 and log.max() <= 4500 and not np.array_equal(log, flat)
    smooth = check.probe_maps("smooth-field", 8)
    assert smooth.min() >= 1500 and smooth.max() <= 4500
    assert not np.allclose(smooth[:, :, :, :1], smooth)  # varies laterally
    assert not np.allclose(check.probe_maps("smooth-field", 8, seed=1), smooth)


def test_check_writes_openfwi_files_and_rows_beside_the_mean_maps(tmp_path, capsys) -> None:
    out = tmp_path / "json" / "rows.json"
    argv = ["--probes", "flat-gradient", "--num", "2", "--out", str(tmp_path), "--json", str(out)]
    argv += ["--models", "epic.{dataset}", "epic.{dataset}.no_such_tag"]
    assert check.main(argv) == 0
    assert "skipped epic.flatvel-a.no_such_tag (not registered)" in capsys.readouterr().err
    (row,) = json.loads(out.read_text())
    assert row["model"] == "epic.flatvel-a" and row["maps"] == 2
    assert row["mae_ms"] > 0 and row["probe_mean_map_mae_ms"] > 0
    assert row["ratio_to_probe_mean_map"] == row["mae_ms"] / row["probe_mean_map_mae_ms"]
    low, high = row["ratio_ci95"]  # over 2 maps: an interval around the ratio
    assert low <= row["ratio_to_probe_mean_map"] * (1 + 1e-4) and high >= low
    # the interval's per-map errors average to the reported MAE
    from epic_zoo.evaluation import per_map_mae
    from epic_zoo.models import load_model

    data = check.OpenFWIFolder(tmp_path / "flat-gradient", "flatvel-a", split=None)
    per_map = per_map_mae(load_model("epic.flatvel-a"), data)
    assert per_map.shape == (2,) and per_map.mean() == pytest.approx(row["mae_ms"], rel=1e-4)
    from epic_zoo import hub

    trained_on = hub.read_registry()["epic.flatvel-a"].data["train"]  # the weights' own maps
    assert row["training_maps"] == trained_on and row["training_mean_map_mae_ms"] > 0
    assert sorted(p.name for p in (tmp_path / "flat-gradient").iterdir()) == [
        "data49.npy",
        "maps.json",
        "model49.npy",
    ]

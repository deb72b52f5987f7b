"""The learns-interval check: per-map errors reproduce a run's record, and the interval brackets the ratio."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import benchmark_script

from epic_zoo.evidence import bootstrap_ratio
from epic_zoo.run import compose_config, train

pytestmark = pytest.mark.usefixtures("one_thread")
check = benchmark_script("learns_interval")


def _train_tiny(run: Path, data_root: Path, *extra: str) -> dict:
    """One epoch of the quickstart recipe on tiny data into ``run``; its summary."""
    return train(
        compose_config(
            [
                "recipe=quickstart",
                "data.profile=tiny",
                f"data.root={data_root}",
                "data.batch_size=4",
                f"run_dir={run}",
                "threads=1",
                "trainer.max_epochs=1",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
                "task.num_panels=0",
                *extra,
            ]
        )
    )


def test_bootstrap_ratio_brackets_the_ratio_and_shrinks_to_it() -> None:
    rng = np.random.default_rng(1)
    den = rng.uniform(300, 400, 50)
    num = 0.5 * den + rng.normal(0, 30, 50)
    low, high = bootstrap_ratio(num, den)
    assert low < num.mean() / den.mean() < high and 0.01 < high - low < 0.2
    assert bootstrap_ratio(np.full(5, 60.0), np.full(5, 100.0)) == pytest.approx((0.6, 0.6))


def test_training_mean_map_takes_the_first_maps(tiny_dataset_dir) -> None:
    shards = sorted((tiny_dataset_dir / "train").glob("shard-*.h5"))
    velocities = np.concatenate([h5py.File(p, "r")["velocity"][:] for p in shards]).astype(
        np.float64
    )
    assert check.training_mean_map(tiny_dataset_dir / "train") == pytest.approx(velocities.mean(0))
    assert check.training_mean_map(tiny_dataset_dir / "train", 5) == pytest.approx(
        velocities[:5].mean(0)
    )
    with pytest.raises(SystemExit, match="training maps found"):
        check.training_mean_map(tiny_dataset_dir / "train", len(velocities) + 1)


def test_a_run_is_reproduced_map_by_map(tiny_data_root, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    summary = _train_tiny(run, tiny_data_root)
    (row,) = check.check_run(run, tiny_data_root, against=None)
    assert row["matches_records"] and row["maps"] == summary["data"]["profile"]["test"]
    assert row["run"] == "run" and str(tmp_path) not in json.dumps(row)  # no machine path
    assert check.run_name(tmp_path / "runs" / "zoo" / "epic" / "x") == "runs/zoo/epic/x"
    assert row["mae_ms"] == pytest.approx(summary["metrics"]["test/mae_ms"], rel=1e-4)
    assert row["mean_map_mae_ms"] == pytest.approx(summary["baseline"]["mean_map_mae_ms"], rel=1e-6)
    low, high = row["ratio_ci95"]
    assert low <= row["ratio"] <= high
    assert row["learns_with_confidence"] == (high <= 0.6)
    # the validation maps: the error the run's (one-epoch) learning curve recorded there
    (epoch,) = summary["learning_curve"]
    assert row["val_mae_ms"] == pytest.approx(epoch["val/mae_ms"], rel=1e-4)
    assert row["val_maps"] == summary["data"]["profile"]["val"]
    # the committed weights were tested on another split: refused with the reason
    with pytest.raises(SystemExit, match="not the run's 8 of seed 0"):
        check.check_run(run, tiny_data_root, against="epic.{dataset}")
    # against a run folder (here itself): the same maps, a paired ratio of 1
    (same,) = check.check_run(run, tiny_data_root, against=str(run))
    assert same["run_over_against"] == pytest.approx(1.0) and same["lower_on_maps"] == 0
    assert same["better_on_validation"] is False  # equal is not better: the default stays
    assert same["against"]["mae_ms"] == pytest.approx(row["mae_ms"]) and same["matches_records"]
    # the whole command: a table on stdout, rows merged into the JSON by run
    out = tmp_path / "rows.json"
    assert (
        check.main(
            [str(run), "--data-root", str(tiny_data_root), "--against", "", "--json", str(out)]
        )
        == 0
    )
    assert (
        check.main(
            [str(run), "--data-root", str(tiny_data_root), "--against", "", "--json", str(out)]
        )
        == 0
    )
    assert len(json.loads(out.read_text())["rows"]) == 1
    assert "| flatvel-a |" in capsys.readouterr().out
    # a record its weights do not reproduce: the exit status says so
    record = json.loads((run / "results.json").read_text())
    record["metrics"]["test/mae_ms"] *= 1.5
    (run / "results.json").write_text(json.dumps(record))
    assert check.main([str(run), "--data-root", str(tiny_data_root), "--against", ""]) == 1
    assert "off its record" in capsys.readouterr().err


def test_a_union_run_gives_one_row_per_member(tiny_data_root, tmp_path) -> None:
    run = tmp_path / "union"
    summary = _train_tiny(
        run, tiny_data_root, "data.dataset=[flatvel-a,style-a]", "trainer.limit_train_batches=2"
    )
    rows = check.check_run(run, tiny_data_root, against=None)
    assert [r["dataset"] for r in rows] == ["flatvel-a", "style-a"]
    for r in rows:
        member = summary["per_dataset"][r["dataset"]]
        assert r["matches_records"] and r["maps"] == member["test_samples"]
        assert r["mae_ms"] == pytest.approx(member["metrics"]["test/mae_ms"], rel=1e-4)
        assert r["mean_map_mae_ms"] == pytest.approx(
            member["baseline"]["mean_map_mae_ms"], rel=1e-6
        )

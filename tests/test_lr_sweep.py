"""benchmarks/lr_sweep.py: the learning rate each model uses, picked by validation MAE."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import benchmark_script


def _script():
    return benchmark_script("lr_sweep")


def _run(root: Path, lr: float, val_mae: list[float]) -> None:
    run = root / f"lr{lr:g}"
    run.mkdir(parents=True)
    curve = [{"epoch": e, "val/mae": v / 1500.0} for e, v in enumerate(val_mae)]
    result = {
        "model": "split",
        "dataset": "flatvel-a",
        "run_dir": str(run.resolve()),
        "learning_curve": curve,
        "schedule": {"lr": lr, "steps": 189},
        "samples_seen": 3000,
        "wall_time_s": 100.0,
    }
    (run / "results.json").write_text(json.dumps(result))
    (run / "learning_curve.csv").write_text(f"epoch,val/mae,run\n0,0.1,{run.resolve()}\n")


def test_pick_uses_the_best_validation_epoch_and_flags_the_grid_edge(tmp_path, capsys) -> None:
    sweep, records = tmp_path / "sweep", tmp_path / "records"
    _run(sweep, 1e-3, [300.0, 250.0, 240.0])
    _run(sweep, 1e-2, [280.0, 150.0, 190.0])  # best epoch beats its final epoch
    _run(sweep, 1e-1, [400.0, 200.0, 170.0])
    script = _script()
    assert script.main([str(sweep), "--pick", "split"]) == 0
    assert capsys.readouterr().out.strip() == "0.01"
    assert script.main([str(sweep), "--pick", "epic"]) == 1
    capsys.readouterr()
    assert script.main([str(sweep), "--records", str(records)]) == 0
    table = capsys.readouterr().out
    assert "| split | 1e-02 | 150.0 | 1 | 190.0 | 3000 | 189 | 100 | **yes** |" in table
    assert "edge of the grid" not in table
    copied = (records / "split-lr0.01" / "results.json").read_text()
    assert str(tmp_path) not in copied and json.loads(copied)["run_dir"] == "runs/lr0.01"
    assert str(tmp_path) not in (records / "split-lr0.01" / "learning_curve.csv").read_text()
    _run(sweep, 3e-1, [120.0, 110.0, 100.0])
    assert script.main([str(sweep)]) == 0
    assert "(chosen lr is at the edge of the grid)" in capsys.readouterr().out

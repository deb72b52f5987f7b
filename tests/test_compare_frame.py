"""Results as data: ``compare_frame`` (pandas), ``--csv`` / ``--json``, spread in the plot,
seeds of CSV-only runs, the whole architecture in the logged config, and a Hydra task
function that returns the monitored metric (for optimising sweepers)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_compare import _table, _write_run

from epic_zoo import compare
from epic_zoo import run as run_module
from epic_zoo.tables import format_value


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Seeds 0, 1, 2 of one setting, and seed 0 of another learning rate."""
    for seed, mae in ((0, 200.0), (1, 210.0), (2, 230.0)):
        _write_run(tmp_path / "sweep" / f"seed={seed}", seed, mae)
    _write_run(tmp_path / "sweep" / "seed=0,task.lr=0.01", 0, 300.0, lr=0.01)
    return tmp_path / "sweep"


def _cell(frame: pd.DataFrame, label: str, column: str) -> str:
    """How the Markdown table writes ``frame``'s value(s) of ``column``."""
    value = frame.loc[label, column]
    if f"{column}_std" in frame.columns:
        std = frame.loc[label, f"{column}_std"]
        mean = format_value(column, float(value))
        return mean if math.isnan(std) else f"{mean} ± {format_value(column, float(std))}"
    if isinstance(value, float) and math.isnan(value):
        value = None
    return format_value(column, value.item() if hasattr(value, "item") else value)


@pytest.mark.parametrize("per_run", [False, True])
def test_csv_json_and_dataframe_agree_with_the_markdown_table(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], per_run: bool
) -> None:
    csv_path, json_path = tmp_path / "out" / "table.csv", tmp_path / "out" / "table.json"
    argv = [str(sweep), "--csv", str(csv_path), "--json", str(json_path)]
    assert compare.main(argv + (["--runs"] if per_run else [])) == 0
    header, rows = _table(capsys.readouterr().out.split("\ntable:")[0])
    frame = compare.compare_frame([sweep], per_run=per_run)
    from_csv = pd.read_csv(csv_path, index_col=0, dtype={"seeds": str})
    from_json = pd.DataFrame(json.loads(json_path.read_text())).set_index(header[0])
    assert frame.index.name == header[0] and len(rows) == len(frame) == 2 + 2 * per_run
    for row in rows:
        label, cells = row[0], dict(zip(header[1:], row[1:], strict=True))
        for column, text in cells.items():
            assert _cell(frame, label, column) == text, (label, column)
            assert _cell(from_csv, label, column) == text, (label, column)
            assert _cell(from_json, label, column) == text, (label, column)
    if not per_run:
        group = next(label for label in frame.index if frame.loc[label, "n"] == 3)
        assert frame.loc[group, "test/mae_ms"] == pytest.approx((200 + 210 + 230) / 3)
        assert frame.loc[group, "test/mae_ms_std"] == pytest.approx(15.275252, rel=1e-6)
        assert frame.loc[group, "seeds"] == "0,1,2"


def test_plot_draws_the_spread_of_each_group(
    sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from epic_zoo import plots

    seen = {}
    real = plots.learning_curve_figure

    def spy(curves, **kwargs):
        seen.update(curves=curves, spread=kwargs.get("spread"))
        return real(curves, **kwargs)

    monkeypatch.setattr(plots, "learning_curve_figure", spy)
    compare.plot_learning_curves(compare.compare([sweep]), tmp_path / "curves.png")
    (label,) = [k for k in seen["curves"] if "n=3" in k]
    # val/mae_ms of seed s is 450 + s then 300 + s: mean 451 / 301, range 450..452 / 300..302
    assert seen["curves"][label] == [(100.0, 451.0), (200.0, 301.0)]
    assert seen["spread"][label] == [(100.0, 450.0, 452.0), (200.0, 300.0, 302.0)]
    figure = real(seen["curves"], spread=seen["spread"])
    assert len(figure.axes[0].collections) == 1, "one band: the group of three seeds"


def test_csv_only_runs_keep_their_seed(tmp_path: Path) -> None:
    for seed in (3, 4):
        version = tmp_path / f"s{seed}" / "csv" / "version_0"
        version.mkdir(parents=True)
        (version / "metrics.csv").write_text(f"epoch,test/mae_ms\n0,{100 + seed}\n")
        hparams = {"model_name": "epic", "dataset": "flatvel-a", "seed": 0, "run_seed": seed}
        (version / "hparams.yaml").write_text(yaml.safe_dump(hparams))
    hydra_run = tmp_path / "s5"  # an older run: the seed only in Hydra's saved config
    (hydra_run / "csv" / "version_0").mkdir(parents=True)
    (hydra_run / "csv" / "version_0" / "metrics.csv").write_text("epoch,test/mae_ms\n0,105\n")
    (hydra_run / "csv" / "version_0" / "hparams.yaml").write_text(
        yaml.safe_dump({"model_name": "epic", "dataset": "flatvel-a", "seed": 0})
    )
    (hydra_run / ".hydra").mkdir()
    (hydra_run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": 5}))
    frame = compare.compare_frame([tmp_path], per_run=True)
    assert sorted(frame["seed"]) == [3, 4, 5]
    (seeds,) = compare.compare_frame([tmp_path])["seeds"]
    assert sorted(seeds.split(",")) == ["3", "4", "5"]


def test_logged_config_has_the_whole_architecture(tiny_data_root: Path, tmp_path: Path) -> None:
    from test_run import _tiny_config

    from epic_zoo.models import create_model

    cfg = _tiny_config("quickstart", tiny_data_root, tmp_path, "trainer.max_epochs=1")
    summary = run_module.train(cfg)
    kwargs = summary["config"]["model"]["kwargs"]
    built = create_model(cfg.model.name, **kwargs).config
    assert {k: v for k, v in built.items() if k != "name"} == kwargs
    assert {"norm", "fusion", "bits", "device_dropout", "shared_encoder"} <= set(kwargs)
    hparams = yaml.safe_load(next(tmp_path.glob("csv/version_*/hparams.yaml")).read_text())
    assert hparams["run_seed"] == cfg.seed
    # the Hydra task function returns the monitored metric; train() the summary
    value = run_module.monitored_value(summary)
    best = min(row["val/mae"] for row in summary["learning_curve"])
    assert isinstance(value, float) and value == best


def test_task_function_returns_a_float_for_sweepers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    curve = [
        {"epoch": 0, "samples_seen": 10, "val/mae": 0.3, "val/ssim": 0.5},
        {"epoch": 1, "samples_seen": 20, "val/mae": 0.2, "val/ssim": 0.4},
        {"epoch": 2, "samples_seen": 30, "val/mae": 0.25, "val/ssim": 0.6},
    ]
    summary = {"learning_curve": curve, "checkpoint_monitor": "val/mae", "checkpoint_mode": "min"}
    monkeypatch.setattr(run_module, "train", lambda cfg: summary)
    monkeypatch.setattr(run_module, "validate_config", lambda cfg: None)
    assert run_module._hydra_main(None) == 0.2
    summary.update(checkpoint_monitor="val/ssim", checkpoint_mode="max")
    assert run_module._hydra_main(None) == 0.6
    summary["learning_curve"] = []
    assert math.isnan(run_module._hydra_main(None))

"""compare: seeds grouped (mean ± std), baseline columns, curves, W&B API, one-line errors."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from epic_zoo import compare
from epic_zoo.run import job_dirname, train

CONFIG = {
    "recipe_name": "epic_lite",
    "seed": 0,
    "run_dir": "somewhere",
    "threads": 1,
    "model": {"name": "epic", "kwargs": {"d_model": 32, "time_samples": 250}},
    "data": {"dataset": "flatvel-a", "root": "/data", "profile": "lite"},
    "task": {"lr": 0.001},
}


def _write_run(path: Path, seed: int, mae_ms: float, lr: float = 0.001, curve: bool = True) -> Path:
    """A results.json as epic_zoo.run writes it (only the fields compare reads)."""
    config = json.loads(json.dumps(CONFIG))
    config["seed"], config["run_dir"], config["task"]["lr"] = seed, str(path), lr
    results = {
        "recipe": "epic_lite",
        "model": "epic",
        "dataset": "flatvel-a",
        "seed": seed,
        "epochs": 2,
        "samples_seen": 200,
        "metrics": {"test/mae_ms": mae_ms, "test/ssim_openfwi": 0.7, "test/mae": mae_ms / 1500},
        "baseline": {
            "mean_map_mae_ms": 378.0,
            "mae_ratio_to_mean_map": mae_ms / 378.0,
            "learns": True,
        },
        "learning_curve": (
            [
                {"epoch": 0, "samples_seen": 100, "val/mae": 0.3, "val/mae_ms": 450.0 + seed},
                {"epoch": 1, "samples_seen": 200, "val/mae": 0.2, "val/mae_ms": 300.0 + seed},
            ]
            if curve
            else []
        ),
        "config": config,
    }
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps(results))
    return path


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Seeds 0 and 1 of one setting, and seed 0 of another learning rate."""
    _write_run(tmp_path / "sweep" / "seed=0", 0, 200.0)
    _write_run(tmp_path / "sweep" / "seed=1", 1, 210.0)
    _write_run(tmp_path / "sweep" / "seed=0,task.lr=0.01", 0, 300.0, lr=0.01)
    return tmp_path / "sweep"


def _table(out: str) -> tuple[list[str], list[list[str]]]:
    header, _, *rows = out.strip().splitlines()
    cells = lambda line: [c.strip() for c in line.strip("|").split("|")]  # noqa: E731
    return cells(header), [cells(r) for r in rows if r.startswith("|")]


def test_seeds_of_one_setting_are_one_group_with_mean_and_std(sweep, capsys):
    assert compare.main([str(sweep)]) == 0
    header, rows = _table(capsys.readouterr().out)
    assert header[:4] == ["group", "seeds", "n", "test/mae_ms"]  # MAE in m/s first
    assert header.index("test/ssim_openfwi") == 4
    assert "baseline/mean_map_mae_ms" in header and "baseline/mae_ratio_to_mean_map" in header
    assert len(rows) == 2
    seeded = next(r for r in rows if r[2] == "2")
    assert seeded[1] == "0,1"
    std = statistics.stdev([200.0, 210.0])
    assert seeded[3] == f"205.0 ± {std:.1f}"
    assert "task.lr=0.001" in seeded[0]  # groups of one recipe/model/dataset say what differs
    single = next(r for r in rows if r[2] == "1")
    assert single[3] == "300.0" and "task.lr=0.01" in single[0]
    assert seeded[header.index("learns")] == "2/2"


def test_per_run_rows_show_the_seed(sweep, capsys):
    assert compare.main([str(sweep), "--runs", "--sort", "test/mae_ms"]) == 0
    header, rows = _table(capsys.readouterr().out)
    assert "seed" in header and len(rows) == 3
    assert [r[header.index("test/mae_ms")] for r in rows] == ["200.0", "210.0", "300.0"]


def test_ignored_keys_do_not_split_groups(tmp_path):
    a = compare.read_run(_write_run(tmp_path / "a", 0, 1.0))
    b = compare.read_run(_write_run(tmp_path / "b", 3, 1.0))
    assert a["setting"] == b["setting"]
    assert "seed" not in a["setting"] and "data.root" not in a["setting"]
    assert a["setting"]["model.kwargs.time_samples"] == 250


def test_learning_curve_plot(sweep, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert compare.main([str(sweep), "--plot", str(out)]) == 0
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"
    assert f"learning curves: {out}" in capsys.readouterr().out


def test_expected_failures_are_one_line_with_the_fix(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("{not json")
    nocurve = _write_run(tmp_path / "nocurve", 0, 1.0, curve=False)
    cases = [
        ([str(tmp_path / "missing")], "does not exist"),
        ([str(empty)], "python -m epic_zoo.run recipe=NAME"),
        ([str(broken)], "cannot read"),
        (["wandb:only-entity"], "wandb:ENTITY/PROJECT"),
        ([str(nocurve), "--plot", str(tmp_path / "x.png")], "no learning curves"),
    ]
    for argv, message in cases:
        assert compare.main(argv) == 2, argv
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], captured.err
        assert lines[0].startswith("error: ")
        assert captured.out == ""


def test_no_wandb_internals_are_imported():
    source = Path(compare.__file__).read_text()
    assert "wandb_internal_pb2" not in source and "wandb.proto" not in source
    code = "import sys, epic_zoo.compare; print(any(m.startswith('wandb') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class _FakeApi:
    """Stands in for ``wandb.Api``: the calls and run attributes compare uses."""

    def __init__(self, runs: list[SimpleNamespace]) -> None:
        self._runs = runs
        self.calls: list[tuple] = []

    def runs(self, path: str, filters: dict | None = None) -> list[SimpleNamespace]:
        self.calls.append(("runs", path, filters))
        return self._runs

    def run(self, path: str) -> SimpleNamespace:
        self.calls.append(("run", path))
        return self._runs[0]


def _api_run(seed: int, mae_ms: float) -> SimpleNamespace:
    config = {**CONFIG, "seed": seed, "run_dir": f"runs/{seed}"}
    return SimpleNamespace(
        path=["team", "epic_zoo", f"id{seed}"],
        name=f"epic_lite-flatvel-a-seed{seed}",
        config=config,
        summary_metrics={
            "test/mae_ms": mae_ms,
            "test/ssim": 0.8,
            "_step": 3,
            "baseline/learns": True,
        },
    )


def test_online_runs_through_the_public_api(capsys):
    api = _FakeApi([_api_run(0, 100.0), _api_run(1, 110.0)])
    runs = compare.compare(["wandb:team/epic_zoo"], api=api)
    assert api.calls == [("runs", "team/epic_zoo", {"state": "finished"})]
    assert set(runs) == {
        "wandb:team/epic_zoo/id0 (epic_lite-flatvel-a-seed0)",
        "wandb:team/epic_zoo/id1 (epic_lite-flatvel-a-seed1)",
    }
    (row,) = compare.summarise(runs, ["test/mae_ms"]).values()
    assert row["seeds"] == "0,1" and row["n"] == 2 and row["test/mae_ms"].mean == 105.0


def test_wandb_errors_are_compare_errors():
    class Broken:
        def runs(self, *args, **kwargs):
            raise ValueError("Could not find project")

    with pytest.raises(compare.CompareError, match="wandb login"):
        compare.read_wandb("wandb:team/nothing", api=Broken())


def test_sweep_folder_names_are_short():
    profile = "data.profile={name:lite,train:300,val:100,test:200,time_stride:4}"
    name = job_dirname(f"{profile},seed=1")
    assert name.startswith("data.profile=lite-") and name.endswith(",seed=1")
    assert len(name) < 40 and "{" not in name
    assert job_dirname(f"{profile},seed=2") != name
    other = job_dirname("data.profile={name:lite,train:400,val:100,test:200,time_stride:4},seed=1")
    assert other != name
    assert job_dirname("model.kwargs.dims=[8,16,32],seed=0").count(",") == 1
    assert job_dirname("") == "defaults"
    assert job_dirname("seed=1,task.lr=0.001") == "seed=1,task.lr=0.001"


# ------------------------------------------------------------------- real runs
def test_two_real_runs_differing_by_seed_are_one_group(tiny_data_root, tmp_path, capsys):
    from tests.test_run import _tiny_config

    extra = ("trainer.max_epochs=1", "trainer.limit_train_batches=2", "task.num_panels=0")
    for seed in (0, 1):
        run_dir = tmp_path / "runs" / f"seed{seed}"
        train(_tiny_config("epic_lite", tiny_data_root, run_dir, f"seed={seed}", *extra))
    capsys.readouterr()
    assert compare.main([str(tmp_path / "runs")]) == 0
    header, rows = _table(capsys.readouterr().out)
    assert len(rows) == 1, rows
    (row,) = rows
    assert row[header.index("seeds")] == "0,1" and row[header.index("n")] == "2"
    assert "±" in row[header.index("test/mae_ms")]
    assert "±" in row[header.index("baseline/mae_ratio_to_mean_map")]


@pytest.mark.parametrize(
    ("damage", "key"),
    [
        (lambda r: r.update(metrics=[1, 2]), "metrics"),
        (lambda r: r.update(baseline="high"), "baseline"),
        (lambda r: r.update(config=[1]), "config"),
        (lambda r: r.update(seed="zero"), "seed"),
        (lambda r: r["metrics"].update({"test/mae_ms": {"x": 1}}), "test/mae_ms"),
        (lambda r: r.update(learning_curve=[1, 2]), "learning_curve[0]"),
        (lambda r: r["learning_curve"][1].update({"val/mae_ms": "x"}), "learning_curve[1]"),
    ],
)
def test_results_of_the_wrong_types_are_one_line(tmp_path, capsys, damage, key):
    run = _write_run(tmp_path / "run", 0, 100.0)
    results = json.loads((run / "results.json").read_text())
    damage(results)
    (run / "results.json").write_text(json.dumps(results))
    assert compare.main([str(run), "--plot", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and key in err[0], err
    assert str(run / "results.json") in err[0]


def test_damaged_runs_in_a_folder_are_skipped_with_one_line_each(tmp_path, capsys):
    _write_run(tmp_path / "runs" / "a", 0, 100.0)
    _write_run(tmp_path / "runs" / "b", 1, 110.0)
    truncated = _write_run(tmp_path / "runs" / "c", 2, 120.0) / "results.json"
    truncated.write_text(truncated.read_text()[:50])
    (tmp_path / "runs" / "d").mkdir()
    (tmp_path / "runs" / "d" / "results.json").write_text('{"metrics": "none"}')
    assert compare.main([str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    skipped = captured.err.strip().splitlines()
    assert len(skipped) == 2 and all(line.startswith("skipped: ") for line in skipped)
    assert str(truncated) in skipped[0] and "metrics" in skipped[1]
    assert "0,1" in captured.out  # the two good seeds are one group
    for name in ("a", "b"):  # nothing left: one error line after the skips
        (tmp_path / "runs" / name / "results.json").write_text("[]")
    assert compare.main([str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no readable runs") and len(err) == 5
    assert "Traceback" not in "\n".join(err)


def test_plot_refuses_to_overwrite_without_force(sweep, tmp_path, capsys):
    kept = tmp_path / "curves.png"
    kept.write_bytes(b"mine")
    assert compare.main([str(sweep), "--plot", str(kept)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0] and str(kept) in err[0]
    assert kept.read_bytes() == b"mine"
    assert compare.main([str(sweep), "--plot", str(kept), "--force"]) == 0
    assert kept.read_bytes()[:4] == b"\x89PNG"

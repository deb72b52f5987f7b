"""benchmarks/fidelity_sweep.py: the fidelity tables (docs/fidelity.md) from runner records."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import benchmark_script


def _script():
    return benchmark_script("fidelity_sweep")


def _run(
    root: Path, recipe: str, dataset: str, mae: float, ssim: float, seed: int = 0, p: float = 0.0
) -> None:
    run = root / recipe / dataset
    run.mkdir(parents=True)
    mean_map = 400.0
    (run / "results.json").write_text(
        json.dumps(
            {
                "run_dir": str(run.resolve()),
                "seed": seed,
                "data": {"recipe_residuals": {"p": p, "num": 48}},
                "samples_seen": 10000,
                "schedule": {"steps": 630, "complete": True, "lr": 3e-3},
                "wall_time_s": 600.0,
                "metrics": {"test/mae_ms": mae, "test/ssim_openfwi": ssim},
                "baseline": {
                    "mean_map_mae_ms": mean_map,
                    "mae_ratio_to_mean_map": mae / mean_map,
                    "learns": mae <= 0.6 * mean_map,
                },
            }
        )
    )
    (run / "learning_curve.csv").write_text(f"epoch,val/mae\n0,{run.resolve()}\n")
    log = run / "csv" / "version_0"
    log.mkdir(parents=True)
    (log / "metrics.csv").write_text(
        f"epoch,step,train/mae_ms,val/mae,val/mae_ms\n0,9,{mae + 30},,\n0,9,,{mae / 1500},{mae + 5}\n"
    )


def test_wins_count_only_beyond_the_seed_spread(tmp_path: Path) -> None:
    seed0, seed1, out = tmp_path / "zoo", tmp_path / "zoo_seed1", tmp_path / "out"
    # flatvel-a: EPIC ahead by 20 m/s, seeds move each model by <= 10 m/s -> EPIC wins.
    _run(seed0, "epic_lite", "flatvel-a", 100.0, 0.80)
    _run(seed1, "epic_lite", "flatvel-a", 110.0, 0.80, seed=1)
    _run(seed0, "inversionnet_lite", "flatvel-a", 120.0, 0.80)
    _run(seed1, "inversionnet_lite", "flatvel-a", 115.0, 0.79, seed=1)
    # style-a: 3 m/s apart, no second seed: the largest relative spread (10 %) makes it a tie.
    _run(seed0, "epic_lite", "style-a", 103.0, 0.90)
    _run(seed0, "inversionnet_lite", "style-a", 100.0, 0.70)
    # curvevel-b: EPIC above 0.6 x the mean map -> marked as not learning.
    _run(seed0, "epic_lite", "curvevel-b", 300.0, 0.5)
    assert _script().main([str(seed0), "--seed-runs", str(seed1), "--out", str(out)]) == 0

    summary = json.loads((out / "summary.json").read_text())
    rows = {r["dataset"]: r for r in summary["rows"] if "epic" in r}
    assert rows["flatvel-a"]["win_mae_ms"]["winner"] == "EPIC"
    assert rows["flatvel-a"]["win_mae_ms"]["tolerance"] == 10.0
    assert rows["flatvel-a"]["win_ssim_openfwi"]["winner"] == "tie"
    assert rows["style-a"]["win_mae_ms"]["winner"] == "tie"
    assert rows["style-a"]["win_ssim_openfwi"]["winner"] == "EPIC"
    assert rows["curvevel-b"]["inversionnet"] is None
    table = (out / "summary.md").read_text()
    assert "| curvevel-b | 400.0 | 300.0 (0.75x, **no**)" in table
    assert "Wins by MAE over 2 datasets: EPIC 1, InversionNet 0, ties 1." in table
    copied = out / "runs" / "seed0" / "epic_lite" / "flatvel-a"
    assert str(tmp_path) not in (copied / "results.json").read_text()
    assert str(tmp_path) not in (copied / "learning_curve.csv").read_text()


def test_pretrained_table_stands_beside_the_headline_and_the_recipe_check(tmp_path: Path) -> None:
    zoo, pretrained, out = tmp_path / "zoo", tmp_path / "pretrained", tmp_path / "out"
    _run(zoo, "epic_lite", "flatvel-b", 300.0, 0.55)
    _run(pretrained, "epic_lite", "flatvel-b", 220.0, 0.62)
    _run(pretrained, "epic_lite", "style-b", 260.0, 0.50)  # 0.65x: does not learn
    check = {
        "dataset": "flatvel-b",
        "model": str(pretrained / "epic_lite" / "flatvel-b"),
        "maps": 48,
        "mae_ms": 286.0,
        "relative_change": 0.3,
        "backend_effect": 0.1,
        "map_draw_effect": 0.18,
        "within_tolerance": False,
    }
    (pretrained / "backend").mkdir()
    (pretrained / "backend" / "flatvel-b.json").write_text(json.dumps([check]))
    # A later root re-made style-a and style-b with the recipe residuals: its runs win.
    remade = tmp_path / "pretrained_rr"
    _run(pretrained, "epic_lite", "style-a", 200.0, 0.70)
    _run(remade, "epic_lite", "style-a", 210.0, 0.71, p=0.5)
    _run(remade, "epic_lite", "style-b", 230.0, 0.52, p=0.5)
    (remade / "backend").mkdir()
    (remade / "backend" / "style-a.json").write_text(
        json.dumps([{**check, "dataset": "style-a", "mae_ms": 240.0, "relative_change": 0.14,
                     "within_tolerance": True}])
    )  # fmt: skip
    argv = [str(zoo), "--pretrained", str(pretrained), str(remade), "--out", str(out)]
    assert _script().main(argv) == 0

    table = (out / "summary.md").read_text()
    assert (
        "| flatvel-b | 400.0 | 300.0 (0.75x) | 220.0 (0.55x, yes) | 0.620 | 10000 | 0 | "
        "286.0 (48) | +30 % | +10 % | +18 % | **no** |" in table
    )
    assert (
        "| style-a | 400.0 | not run | 210.0 (0.53x, yes) | 0.710 | 10000 | 0.5 | "
        "240.0 (48) | +14 % |" in table
    )
    assert (
        "| style-b | 400.0 | not run | 230.0 (0.57x, yes) | 0.520 | 10000 | 0.5 | not run |"
        in table
    )
    assert "Pretrained EPIC learns on 3 of 3 datasets (1 A, 2 B)." in table
    assert "Recipe-port check: 1 of 2 checked weights within 25 % (1 not checked)." in table
    rows = json.loads((out / "summary.json").read_text())["rows"]
    (row,) = [
        r for r in rows if r.get("model") == "epic (pretrained)" and r["dataset"] == "flatvel-b"
    ]
    assert row["openfwi_check"]["model"] == "flatvel-b"
    copied = out / "runs" / "pretrained" / "epic_lite" / "style-b" / "results.json"
    assert json.loads(copied.read_text())["metrics"]["test/mae_ms"] == 230.0


def test_carried_runs_stay_marked_and_the_committed_records_read_back(tmp_path: Path) -> None:
    zoo, out = tmp_path / "zoo", tmp_path / "out"
    _run(zoo, "epic_lite", "flatvel-a", 100.0, 0.80)
    _run(zoo, "inversionnet_lite", "flatvel-a", 130.0, 0.78)
    assert _script().main([str(zoo), "--out", str(out)]) == 0
    first = json.loads((out / "summary.json").read_text())
    assert {(r["model"], r["records"]) for r in first["runs"]} == {
        ("epic", "runs/seed0/epic_lite/flatvel-a"),
        ("inversionnet", "runs/seed0/inversionnet_lite/flatvel-a"),
    }
    # A later sweep holds only a new EPIC run on style-a and a second seed of flatvel-a; the earlier
    # runs come from the summary (as if their records were gone), one of them without records.
    first["source"] = "the summary of an earlier commit"
    first["runs"].append(
        {**first["runs"][0], "dataset": "style-a", "mae_ms": 90.0, "ratio": 0.225, "records": None}
    )
    carried = tmp_path / "previous.json"
    carried.write_text(json.dumps(first))
    later, seed1, repeat = tmp_path / "later", tmp_path / "later_seed1", tmp_path / "repeat"
    _run(later, "inversionnet_lite", "style-a", 95.0, 0.7)
    _run(seed1, "epic_lite", "flatvel-a", 104.0, 0.79, seed=1)
    _run(repeat, "epic_lite", "flatvel-a", 92.0, 0.81)  # seed 0 again: counts in the spread only
    argv = [str(later), "--seed-runs", str(seed1), "--repeat-runs", str(repeat)]
    assert _script().main([*argv, "--carried", str(carried), "--out", str(out)]) == 0
    table = (out / "summary.md").read_text()
    assert "| style-a | 400.0 | 90.0 (0.23x, yes) † | 0.800 | 95.0 (0.24x, yes) | 0.700 |" in table
    assert (
        "| flatvel-a | 400.0 | 100.0 (0.25x, yes) | 0.800 | 130.0 (0.33x, yes) | 0.780 |" in table
    )
    assert "carried from the summary of an earlier commit" in table
    assert (
        "| epic | flatvel-a | 100.0 | 104.0 (seed 1), 92.0 (seed 0, repeat) | 12.0 | 0.020 |"
        in table
    )
    assert (
        "| 0 (repeat) | epic | flatvel-a | 10000 | 630 | True | 0.003 | 10.0 | 122.0 / 97.0 |"
        in table
    )
    # The committed folder is itself a sweep root: reading it back gives the same tables.
    again = [str(out / "runs" / "seed0"), "--seed-runs", str(out / "runs" / "seed1")]
    again += ["--repeat-runs", str(out / "runs" / "repeat1")]
    assert _script().main([*again, "--carried", str(carried), "--out", str(out)]) == 0
    assert (out / "summary.md").read_text() == table
    # So is the summary alone: every run it lists comes back, the records it names included.
    alone = [str(tmp_path / "empty"), "--carried", str(out / "summary.json"), "--out", str(out)]
    (tmp_path / "empty").mkdir()
    assert _script().main(alone) == 0
    assert (out / "summary.md").read_text() == table


def test_every_run_reading_stands_beside_the_first_run_rule(tmp_path: Path) -> None:
    seed0, repeat, out = tmp_path / "zoo", tmp_path / "repeat", tmp_path / "out"
    # flatvel-a: the first runs are 4 m/s apart inside a 6 m/s spread (a tie by the rule), but
    # every InversionNet run is below every EPIC run: the every-run reading names it.
    _run(seed0, "epic_lite", "flatvel-a", 104.0, 0.80)
    _run(repeat, "epic_lite", "flatvel-a", 110.0, 0.81)
    _run(seed0, "inversionnet_lite", "flatvel-a", 100.0, 0.82)
    _run(repeat, "inversionnet_lite", "flatvel-a", 101.0, 0.79)
    # style-a: trained once each, too few runs to separate.
    _run(seed0, "epic_lite", "style-a", 103.0, 0.90)
    _run(seed0, "inversionnet_lite", "style-a", 100.0, 0.70)
    assert _script().main([str(seed0), "--repeat-runs", str(repeat), "--out", str(out)]) == 0

    rows = {r["dataset"]: r for r in json.loads((out / "summary.json").read_text())["rows"]}
    assert rows["flatvel-a"]["win_mae_ms"]["winner"] == "tie"
    mae = rows["flatvel-a"]["every_run"]["mae_ms"]
    assert mae["separated"] == "InversionNet"
    assert (mae["epic_mean"], mae["inversionnet_mean"]) == (107.0, 100.5)
    assert rows["flatvel-a"]["every_run"]["ssim_openfwi"]["separated"] == "overlap"
    assert rows["style-a"]["every_run"]["mae_ms"]["separated"] == "too few runs"
    table = (out / "summary.md").read_text()
    assert (
        "| flatvel-a | 107.0 (2) | 100.5 (2) | InversionNet | 0.805 (2) | 0.805 (2) | overlap |"
        in table
    )
    assert (
        "every run of InversionNet better on 1, overlap on 0; the better mean: EPIC on 0, InversionNet on 2."
        in table
    )


def test_a_re_run_check_replaces_the_carried_one_and_is_committed(tmp_path: Path) -> None:
    zoo, pretrained, first = tmp_path / "zoo", tmp_path / "pretrained", tmp_path / "first"
    _run(zoo, "epic_lite", "flatvel-b", 300.0, 0.55)
    _run(pretrained, "epic_lite", "flatvel-b", 220.0, 0.62)
    check = {"dataset": "flatvel-b", "model": "flatvel-b", "maps": 48, "mae_ms": 286.0,
             "relative_change": 0.3, "backend_effect": 0.1, "map_draw_effect": 0.18,
             "within_tolerance": False}  # fmt: skip
    (pretrained / "backend").mkdir()
    (pretrained / "backend" / "flatvel-b.json").write_text(json.dumps([check]))
    assert _script().main([str(zoo), "--pretrained", str(pretrained), "--out", str(first)]) == 0
    # The weights' run folder is gone; the check is run again on the committed weights.
    rerun = tmp_path / "rerun"
    (rerun / "backend").mkdir(parents=True)
    again = {**check, "model": "epic.flatvel-b", "mae_ms": 250.0, "relative_change": 0.136,
             "within_tolerance": True}  # fmt: skip
    (rerun / "backend" / "flatvel-b.json").write_text(json.dumps([again]))
    out = tmp_path / "out"
    argv = [str(zoo), "--pretrained", str(rerun), "--carried", str(first / "summary.json")]
    assert _script().main([*argv, "--out", str(out)]) == 0

    runs = json.loads((out / "summary.json").read_text())["runs"]
    (run,) = [r for r in runs if r["sweep"] == "pretrained"]
    assert run["mae_ms"] == 220.0  # the carried weight
    assert run["openfwi_check"]["mae_ms"] == 250.0  # beside the check run today
    kept = out / run["openfwi_check_records"]
    assert json.loads(kept.read_text())[0]["mae_ms"] == 250.0
    assert "250.0 (48) | +14 % |" in (out / "summary.md").read_text()

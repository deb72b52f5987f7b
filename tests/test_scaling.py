"""benchmarks/scaling.py: power-law fits recover known exponents; tables, gap verdicts and plot from records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import benchmark_script

scaling = benchmark_script("scaling")

BUDGETS = np.array([3_000, 6_000, 12_000, 24_000, 48_000, 100_000])


def _noisy(a: float, b: float, seeds: int, noise: float, floor: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    s = np.repeat(BUDGETS, seeds)
    mae = (a * s ** (-b) + floor) * np.exp(rng.normal(0.0, noise, s.shape))
    return s, mae


def test_fit_recovers_a_known_exponent_with_an_interval_that_covers_it():
    s, mae = _noisy(5000.0, 0.4, seeds=3, noise=0.03)
    fit = scaling.fit_power_law(s, mae, bootstrap=400)
    assert fit.b == pytest.approx(0.4, abs=0.03)
    lo, hi = fit.b_interval()
    assert lo < fit.b < hi and hi - lo < 0.1
    assert 0 < fit.b_se < 0.05
    assert fit.predict([2_880_000])[0] == pytest.approx(5000.0 * 2_880_000**-0.4, rel=0.2)
    blo, bhi = fit.band([2_880_000])
    assert blo[0] < fit.predict([2_880_000])[0] < bhi[0]


def test_the_exponents_interval_covers_the_truth_in_most_draws():
    covered = 0
    for seed in range(20):
        s, mae = _noisy(5000.0, 0.4, seeds=3, noise=0.03, seed=seed)
        lo, hi = scaling.fit_power_law(s, mae, bootstrap=200, seed=seed).b_interval()
        covered += lo < 0.4 < hi
    assert covered >= 15  # nominal 95 %: 19 of 20; the case bootstrap runs a little narrow


def test_fit_with_a_floor_recovers_exponent_and_floor():
    s, mae = _noisy(20000.0, 0.6, seeds=2, noise=0.005, floor=20.0)
    fit = scaling.fit_power_law(s, mae, floor=True, bootstrap=100)
    assert fit.b == pytest.approx(0.6, abs=0.1)
    assert fit.floor == pytest.approx(20.0, abs=5.0)
    # the plain fit on the same data underestimates the exponent: the floor matters
    assert scaling.fit_power_law(s, mae, bootstrap=10).b < fit.b - 0.1


@pytest.mark.parametrize("floor, distinct", [(False, 2), (True, 3)])
def test_fit_needs_enough_budgets(floor, distinct):
    with pytest.raises(ValueError, match="needs at least"):
        scaling.fit_power_law(BUDGETS[:distinct], [100.0] * distinct, floor=floor)


def _points(model, dataset, a, b, seeds=2, noise=0.02, seed=0):
    s, mae = _noisy(a, b, seeds, noise, seed=seed)
    return [
        scaling.Point(model, dataset, i % seeds, int(x), float(y), 0.8, 300.0, "branch", "")
        for i, (x, y) in enumerate(zip(s, mae, strict=True))
    ]


@pytest.mark.parametrize(
    "b_epic, b_inv, a_epic, verdict",
    [
        (0.5, 0.3, 60000.0, "closes"),  # EPIC 3x worse at 3,000 samples, improves faster
        (0.3, 0.5, 5000.0, "opens"),  # EPIC worse and improves slower
        (0.4, 0.4, 8000.0, "level"),
    ],
)
def test_gap_verdict(b_epic, b_inv, a_epic, verdict):
    epic = _points("epic", "flatvel-a", a_epic, b_epic, seed=1)
    inv = _points("inversionnet", "flatvel-a", 4000.0, b_inv, seed=2)
    fits = (
        scaling.fit_power_law([p.samples for p in epic], [p.mae_ms for p in epic], bootstrap=300),
        scaling.fit_power_law([p.samples for p in inv], [p.mae_ms for p in inv], bootstrap=300),
    )
    result = scaling.gap(epic, inv, fits)
    assert result["verdict"].startswith(verdict)
    assert [r["samples"] for r in result["ratios"]] == list(BUDGETS)
    assert result["slope"] == pytest.approx(b_inv - b_epic, abs=0.05)


def test_a_budget_only_one_model_reached_does_not_tilt_the_gap():
    epic = _points("epic", "flatvel-a", 8000.0, 0.4, seed=1)
    inv = _points("inversionnet", "flatvel-a", 8000.0, 0.4, seed=2)
    inv = [p for p in inv if p.samples < 100_000]  # InversionNet stops at 48,000
    epic += [scaling.Point("epic", "flatvel-a", 0, 400_000, 500.0, 0.8, 300.0, "run", "")]
    (row,) = scaling.analyse(epic + inv, floor=False, bootstrap=200)["gaps"]
    assert row["shared_budgets"] == list(BUDGETS[:-1])
    assert row["verdict"].startswith("level") and abs(row["slope"]) < 0.05


def _record(
    folder: Path, model: str, dataset: str, samples: int, mae: float, seed: int = 0, **extra
):
    folder.mkdir(parents=True)
    record = {
        "model": model,
        "dataset": dataset,
        "seed": seed,
        "samples_seen": samples,
        "metrics": {"test/mae_ms": mae, "test/ssim_openfwi": 0.7, "test/ssim": 0.6},
        "baseline": {"mean_map_mae_ms": 400.0},
        "schedule": {"complete": True},
        "branch": {"branch_samples": int(samples / 1.2)},
        **extra,
    }
    (folder / "results.json").write_text(json.dumps(record))


def test_main_writes_tables_json_and_plot(tmp_path, capsys):
    runs = tmp_path / "runs"
    for model, a, b in (("epic", 60000.0, 0.5), ("inversionnet", 4000.0, 0.3)):
        for seed in (0, 1):
            for s in BUDGETS:
                mae = a * s**-b * (1 + 0.01 * seed)
                _record(runs / f"{model}-{s}-{seed}", model, "flatvel-a", int(s), mae, seed)
    _record(
        runs / "cut",
        "epic",
        "flatvel-a",
        500,
        999.0,
        schedule={"complete": False, "cut_short_by": "x"},
    )
    out = tmp_path / "out"
    assert scaling.main([str(runs), "--out", str(out), "--bootstrap", "100"]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "cut short" in captured.err
    text = (out / "scaling.md").read_text()
    assert "| epic | flatvel-a | 3,000 | 2 (0, 1) |" in text
    assert (
        "| 0.700 | 400.0 |" in text and "| 0.600 |" not in text
    )  # OpenFWI's SSIM, not torchmetrics'
    assert "| 2,880,000 |" in text and "| 19.7 |" in text  # OpenFWI budget, published .0131 x 1500
    assert "closes" in text
    result = json.loads((out / "scaling.json").read_text())
    fits = {g["model"]: g["fit"] for g in result["groups"]}
    assert fits["epic"]["b"] == pytest.approx(0.5, abs=0.02)
    assert fits["inversionnet"]["b"] == pytest.approx(0.3, abs=0.02)
    assert (out / "scaling.png").stat().st_size > 10_000


def test_union_records_become_per_dataset_rows(tmp_path):
    per = {
        d: {"metrics": {"test/mae_ms": 100.0 + i}, "baseline": {"mean_map_mae_ms": 300.0}}
        for i, d in enumerate(("flatvel-a", "style-b"))
    }
    _record(tmp_path / "u", "epic", "all", 100_000, 1.0, per_dataset=per)
    points = scaling.read_points([tmp_path])
    assert [(p.model, p.dataset, p.mae_ms, p.samples) for p in points] == [
        ("epic (union)", "flatvel-a", 100.0, 50_000),  # each member's share of the samples
        ("epic (union)", "style-b", 101.0, 50_000),
    ]


def test_runs_of_another_setting_get_rows_of_their_own(tmp_path):
    """A zoo run (cosine, recipe residuals) at the same budget never joins the study's points."""
    _record(tmp_path / "wsd", "epic", "flatvel-a", 100_000, 66.0, schedule={"scheduler": "wsd"})
    zoo = {"scheduler": "cosine", "complete": True}
    residuals = {"recipe_residuals": {"p": 0.5}}
    _record(tmp_path / "zoo", "epic", "flatvel-a", 100_000, 63.0, schedule=zoo, data=residuals)
    per = {"style-b": {"metrics": {"test/mae_ms": 250.0}}}
    _record(tmp_path / "u", "epic", "all", 100_000, 1.0, schedule=zoo, per_dataset=per)
    points = sorted((p.model, p.dataset, p.mae_ms) for p in scaling.read_points([tmp_path]))
    assert points == [
        ("epic", "flatvel-a", 66.0),
        ("epic (cosine, recipe residuals p=0.5)", "flatvel-a", 63.0),
        ("epic (union, cosine)", "style-b", 250.0),
    ]


def test_main_bad_input_one_line(tmp_path, capsys):
    assert scaling.main([str(tmp_path / "nowhere")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert scaling.main([str(tmp_path)]) == 2
    assert "no tested runs" in capsys.readouterr().err

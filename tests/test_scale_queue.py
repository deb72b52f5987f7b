"""benchmarks/scale_queue.py: the issue-24 plan, readiness, skipping, and the whole queue at tiny scale."""

from __future__ import annotations

import json

import pytest

from tests.helpers import benchmark_script

queue = benchmark_script("scale_queue")
scaling = benchmark_script("scaling")

SMALL = {
    "epic": (
        "+model.kwargs.d_model=32",
        "+model.kwargs.heads=2",
        "+model.kwargs.latent_dim=16",
        "+model.kwargs.encoder_width=16",
        "+model.kwargs.head_channels=[16,8,8]",
        "+model.kwargs.fusion_layers=1",
    )
}


def _tiny(tmp_path, **settings):
    """The queue at tiny scale: EPIC (small) on tiny flatvel-a data, batches of 4, 25 % decays."""
    return queue.Settings(
        work=tmp_path / "work",
        profile="tiny",
        datasets=("flatvel-a",),
        scaling=(("epic", "flatvel-a"),),
        decay_fraction=0.25,
        warmup_steps=1,
        union=False,
        zoo=False,
        overrides=("data.batch_size=4", "task.num_panels=0", "trainer.enable_model_summary=false"),
        model_overrides=SMALL,
        **settings,
    )


def _run_all(jobs, settings, tmp_path):
    """Run ``jobs`` on two lanes; every one must finish; returns the records folder."""
    records = tmp_path / "records"
    state = queue.run_queue(jobs, settings, lanes=2, records=records, poll_s=0.5)
    logs = "\n".join(p.read_text()[-3000:] for p in (settings.work / "logs").glob("*.log"))
    assert set(state.values()) == {"done"}, (state, logs)
    return records


def test_full_plan_covers_the_issue(tmp_path):
    jobs = queue.build_plan(queue.Settings(work=tmp_path))
    kinds = {}
    for job in jobs:
        kinds.setdefault(job.name.split("/")[0], []).append(job)
    assert len(kinds["data"]) == 10 and len(kinds["zoo"]) == 10
    assert len(kinds["wsd"]) == 5 and len(kinds["seed1"]) == 5 and len(kinds["union"]) == 1
    assert len(kinds["decay"]) == 5 * 6  # at least five budgets per (model, dataset)
    ends = sorted({round(b * 1.2) for b in queue.BUDGETS})
    assert ends[0] == 3_000 and ends[-1] >= 96_000
    union = kinds["union"][0]
    # ten epochs of 625 batches of 16 from the 100,000 union maps = 100,000 samples, as a specialist
    assert "trainer.max_epochs=10" in union.args and "trainer.limit_train_batches=625" in union.args
    assert "data.batch_size=16" in union.args
    assert all(f"data/{d}" in union.after for d in queue.DATASET_NAMES)
    branch = next(j for j in jobs if j.name == "decay/inversionnet/curvefault-b/10000")
    parent = tmp_path / "runs/wsd/inversionnet/curvefault-b/checkpoints/samples-000010000.ckpt"
    assert f"branch.parent={parent}" in branch.args and branch.needs == (
        parent.with_suffix(".json"),
    )
    trunk = next(j for j in jobs if j.name == "wsd/epic/flatvel-a")
    assert "checkpoint.at_samples=[2500,5000,10000,20000,40000,80000]" in trunk.args
    assert "threads=1" in trunk.args and "scale=lite10k" in trunk.args
    # published weights (and the union beside them) train with the recipe residuals;
    # the scaling runs (one variable) do not
    zoo = next(j for j in jobs if j.name == "zoo/epic/style-b")
    assert "data.recipe_residuals.p=0.5" in zoo.args and "data.recipe_residuals.p=0.5" in union.args
    assert not any("recipe_residuals" in a for j in kinds["wsd"] + kinds["decay"] for a in j.args)
    # warm-up of 100 steps x 16 = 1,600 samples: over before the first budget
    assert "task.warmup_steps=100" in trunk.args and "task.warmup_fraction=0" in trunk.args
    # CPU plan: ~13 core-hours for the zoo, tens in all
    assert queue.estimate(kinds["zoo"]) == pytest.approx(13.3, abs=0.2)
    assert 30 < queue.estimate(jobs) < 60


def test_readiness_and_done(tmp_path):
    settings = queue.Settings(
        work=tmp_path, datasets=("flatvel-a",), scaling=(("epic", "flatvel-a"),), budgets=(8,)
    )
    jobs = {j.name: j for j in queue.build_plan(settings)}
    branch = jobs["decay/epic/flatvel-a/8"]
    assert not queue.is_ready(branch, {"data/flatvel-a"})  # its checkpoint does not exist yet
    branch.needs[0].parent.mkdir(parents=True)
    branch.needs[0].write_text("{}")
    assert queue.is_ready(branch, {"data/flatvel-a"}) and not queue.is_ready(branch, set())
    trunk = jobs["wsd/epic/flatvel-a"]
    trunk.run_dir.mkdir(parents=True, exist_ok=True)
    (trunk.run_dir / "results.json").write_text(json.dumps({"schedule": {"complete": False}}))
    assert not queue.is_done(trunk)  # a run cut short is not done
    (trunk.run_dir / "results.json").write_text(
        json.dumps({"schedule": {"complete": True}, "metrics": {"test/mae_ms": 1.0}})
    )
    assert queue.is_done(trunk)


def test_dry_run_and_bad_input(tmp_path, capsys):
    assert queue.main(["--work", str(tmp_path), "--dry-run", "--only", "zoo/epic/style-b"]) == 0
    out = capsys.readouterr().out
    assert "zoo/epic/style-b" in out and "data/style-b" in out and "flatvel-a" not in out
    assert "2 jobs, 2 to do" in out
    assert queue.main(["--work", str(tmp_path), "--lanes", "0"]) == 2
    assert "--lanes 0" in capsys.readouterr().err
    assert queue.main(["--work", str(tmp_path), "--seed1-branch", "0", "--dry-run"]) == 2
    assert "--seed1-branch 0" in capsys.readouterr().err


@pytest.mark.slow
def test_the_queue_end_to_end_at_tiny_scale(tmp_path):
    """Data, a WSD run with two budget checkpoints, two branches; records copied; rerun skips all."""
    settings = _tiny(tmp_path, budgets=(8, 16), epochs=3, second_seed=False)
    jobs = queue.build_plan(settings)
    assert [j.name for j in jobs] == [
        "data/flatvel-a",
        "wsd/epic/flatvel-a",
        "decay/epic/flatvel-a/8",
        "decay/epic/flatvel-a/16",
    ]
    records = _run_all(jobs, settings, tmp_path)
    trunk = json.loads((records / "wsd/epic/flatvel-a/results.json").read_text())
    assert [b["budget"] for b in trunk["budget_checkpoints"]] == [8, 16]
    assert trunk["samples_seen"] == 48
    for budget, total in ((8, 12), (16, 20)):
        record = json.loads((records / f"decay/epic/flatvel-a/{budget}/results.json").read_text())
        assert record["branch"]["branch_samples"] == budget and record["samples_seen"] == total
        assert record["branch"]["parent_run"] == "runs/wsd/epic/flatvel-a"  # machine path gone
        assert (
            str(tmp_path)
            not in (records / f"decay/epic/flatvel-a/{budget}/results.json").read_text()
        )
        assert (records / f"decay/epic/flatvel-a/{budget}/learning_curve.csv").is_file()
    # a second start finds everything finished and runs nothing
    again = queue.run_queue(jobs, settings, lanes=2, records=records, poll_s=0.5)
    assert set(again.values()) == {"skipped"}
    # the records feed the scaling analysis: three budgets, one fit
    result = scaling.analyse(scaling.read_points([records]), floor=False, bootstrap=50)
    (group,) = result["groups"]
    assert [r["samples"] for r in group["budgets"]] == [12, 20, 48]
    assert "b" in group["fit"]


def test_seed1_branch_plan(tmp_path):
    """--seed1-branch B: the seed-1 long run saves B and stops there; a seed-1 decay branches from it."""
    settings = queue.Settings(
        work=tmp_path,
        datasets=("flatvel-a",),
        scaling=(("inversionnet", "flatvel-a"),),
        seed1_branch=40_000,
        zoo=False,
        union=False,
    )
    jobs = {j.name: j for j in queue.build_plan(settings)}
    trunk = jobs["seed1/inversionnet/flatvel-a"]
    branch = jobs["seed1/decay/inversionnet/flatvel-a/40000"]
    parent = tmp_path / "runs/seed1/inversionnet/flatvel-a/checkpoints/samples-000040000.ckpt"
    assert "seed=1" in trunk.args and "checkpoint.at_samples=[40000]" in trunk.args
    assert "task.scheduler=wsd" in trunk.args and "trainer.max_epochs=10" in trunk.args
    assert trunk.until == parent.with_suffix(".json")
    assert "seed=1" in branch.args and f"branch.parent={parent}" in branch.args
    assert branch.needs == (parent.with_suffix(".json"),) and branch.until is None
    # the long run is done when its branch point is saved, not before; it costs 40,000 samples
    assert not queue.is_done(trunk)
    assert queue.estimate([trunk]) == pytest.approx(
        40_000 * queue.SECONDS_PER_SAMPLE["inversionnet"] / 3600
    )
    parent.parent.mkdir(parents=True)
    parent.with_suffix(".json").write_text("{}")
    assert queue.is_done(trunk) and queue.is_ready(branch, {"data/flatvel-a"})
    # without the option the seed-1 runs go to the full length, as before
    full = {j.name: j for j in queue.build_plan(settings._replace(seed1_branch=None))}
    assert full["seed1/inversionnet/flatvel-a"].until is None
    assert not any(n.startswith("seed1/decay") for n in full)
    assert not any(
        a.startswith("checkpoint.at_samples") for a in full["seed1/inversionnet/flatvel-a"].args
    )


@pytest.mark.slow
def test_seed1_branch_end_to_end_at_tiny_scale(tmp_path):
    """The queue stops a seed-1 long run at its branch point (no record) and runs the branch."""
    # far more epochs than the test runs: only the stop at the branch point ends the long run
    settings = _tiny(tmp_path, budgets=(8,), epochs=400, seed1_branch=8)
    jobs = [j for j in queue.build_plan(settings) if j.name.split("/")[0] in ("data", "seed1")]
    assert [j.name for j in jobs] == [
        "data/flatvel-a",
        "seed1/epic/flatvel-a",
        "seed1/decay/epic/flatvel-a/8",
    ]
    records = _run_all(jobs, settings, tmp_path)
    assert not (records / "seed1/epic/flatvel-a/results.json").exists()  # stopped: no record
    trunk_dir = settings.work / "runs/seed1/epic/flatvel-a"
    assert not (trunk_dir / "results.json").exists()
    record = json.loads((records / "seed1/decay/epic/flatvel-a/8/results.json").read_text())
    # one step of 4 past 8, as the seed-0 branches round
    assert record["seed"] == 1 and record["samples_seen"] == 12
    assert record["branch"]["branch_samples"] == 8
    assert record["branch"]["parent_run"] == "runs/seed1/epic/flatvel-a"

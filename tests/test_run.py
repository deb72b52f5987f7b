"""The runner: recipes compose and train on tiny data, resume after a kill, DDP, W&B, sweeps, compare."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from conftest import EPIC_SMALL
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf, open_dict

from epic_zoo import compare
from epic_zoo import run as run_module
from epic_zoo.config_schema import explicit_model_kwargs
from epic_zoo.data.profiles import Profile
from epic_zoo.models import list_models
from epic_zoo.run import (
    LAST_CHECKPOINT,
    available_recipes,
    build_callbacks,
    compose_config,
    config_dir,
    data_profile,
    train,
)
from epic_zoo.run_callbacks import wandb_mode
from epic_zoo.run_identity import RunIdentityError
from epic_zoo.tasks.inversion import to_plain

RECIPES = available_recipes()
SMALL_KWARGS = {
    "inversionnet": {"dims": [8, 16, 32, 64, 128]},
    "split": {"dims": [8, 16, 32, 64, 128]},
    "velocitygan": {"dims": [8, 16, 32, 64, 128], "critic_dims": [8, 16, 32, 64]},
    "federated": {"dims": [4, 8, 16, 32, 64]},
    "mean-map": {},
    "constant": {},
}
"""Constructor kwargs that shrink each model for tests (epic variants: EPIC_SMALL)."""


def _tiny_overrides(recipe: str, data_root: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        f"recipe={recipe}",
        "data.profile=tiny",
        f"data.root={data_root}",
        "data.batch_size=4",
        f"run_dir={run_dir}",
        "threads=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        *extra,
    ]


def _tiny_config(recipe: str, data_root: Path, run_dir: Path, *extra: str):
    """A recipe's real configuration, shrunk: tiny data, small model, one thread."""
    cfg = compose_config(_tiny_overrides(recipe, data_root, run_dir, *extra))
    if cfg.init_from:  # recipe=finetune: the pretrained weights fix the network
        return cfg
    with open_dict(cfg):
        small = SMALL_KWARGS.get(cfg.model.name, EPIC_SMALL)
        if cfg.model.name in list_models():  # the listed defaults give way to the small sizes
            chosen = explicit_model_kwargs(cfg.model.name, to_plain(cfg.model.kwargs))
            cfg.model.kwargs = OmegaConf.merge(small, chosen)
    return cfg


pytestmark = pytest.mark.usefixtures("one_thread")  # the shared fixture (conftest.py)


# ----------------------------------------------------------------- composition
def test_model_configs_cover_the_registry():
    files = sorted(p.stem for p in (config_dir() / "model").glob("*.yaml"))
    assert files == list_models()


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_composes(recipe):
    cfg = compose_config([f"recipe={recipe}"])
    assert cfg.recipe_name == recipe, "a recipe's recipe_name must be its file name"
    assert cfg.model.name in list_models()
    profile = data_profile(to_plain(cfg.data.profile))
    if recipe.endswith("_lite"):
        # the protocol: a schedule sized for the whole run, nothing that cuts it
        assert profile.name == "lite" and not cfg.early_stopping.enabled
    if cfg.task._target_.endswith("InversionTask"):
        assert cfg.task.scheduler == "cosine" and cfg.task.warmup_fraction > 0
    assert (cfg.checkpoint.monitor, cfg.checkpoint.mode) == ("val/mae", "min")
    if recipe == "quickstart":
        assert profile.time_stride == 4
        assert profile.train + profile.val + profile.test <= 500  # generated in ~2 CPU-minutes
    expected_task = "GANTask" if cfg.model.name == "velocitygan" else "InversionTask"
    assert cfg.task._target_.endswith(expected_task)


@pytest.mark.parametrize("alias", [r for r in RECIPES if r.endswith("_lite")])
def test_lite_alias_is_the_recipe_at_scale_lite(alias):
    base = alias.removesuffix("_lite")
    assert compose_config([f"recipe={alias}"]) == compose_config([f"recipe={base}", "scale=lite"])


def test_scale_is_a_command_line_choice_that_names_the_run():
    lite = compose_config(["recipe=epic", "scale=lite"])
    assert (lite.recipe_name, lite.data.profile, lite.trainer.max_epochs) == (
        "epic_lite",
        "lite",
        10,
    )
    assert lite.task.scheduler == "cosine" and not lite.early_stopping.enabled
    assert compose_config(["recipe=epic"]).recipe_name == "epic"
    assert compose_config(["recipe=epic_lite", "scale=full"]).data.profile == "full"
    assert compose_config(["recipe=mean_map"]).recipe_name == "mean_map"
    assert compose_config(["recipe=mean_map", "scale=full"]).recipe_name == "mean_map_full"
    assert compose_config(["recipe=quickstart", "scale=lite"]).recipe_name == "quickstart"


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_runs_fast_dev_run_on_tiny_data(recipe, tiny_data_root, tmp_path):
    cfg = _tiny_config(recipe, tiny_data_root, tmp_path, "trainer.fast_dev_run=true")
    summary = train(cfg)
    metrics = summary["metrics"]
    assert {"test/ssim", "test/ssim_openfwi", "test/mae", "test/rmse_ms"} <= set(metrics)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert summary["model"] == cfg.model.name and summary["dataset"] == "flatvel-a"
    assert json.loads((tmp_path / "results.json").read_text())["metrics"] == metrics
    assert list(metrics)[0] == "test/mae_ms", "results lead with MAE in m/s"
    baseline = summary["baseline"]
    assert baseline["mean_map_mae_ms"] > 0
    assert baseline["learns"] == (metrics["test/mae"] <= 0.6 * baseline["mean_map_mae"])


def test_mean_map_run_is_the_baseline_and_records_its_data(tiny_data_root, tmp_path):
    """``model=mean-map`` fits the training mean, scores exactly the runner's baseline, keeps provenance."""
    cfg = _tiny_config("mean_map", tiny_data_root, tmp_path)
    summary = train(cfg)
    assert summary["metrics"]["test/mae"] == pytest.approx(
        summary["baseline"]["mean_map_mae"], rel=1e-5
    )
    assert summary["baseline"]["mae_ratio_to_mean_map"] == pytest.approx(1.0, rel=1e-5)
    saved = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=True)
    fitted = saved["hyper_parameters"]["model_kwargs"]["fitted_on"]
    assert (
        fitted["dataset"] == "flatvel-a" and fitted["profile"] == "tiny" and fitted["samples"] == 16
    )


def test_schedule_and_learning_curve_are_recorded(tiny_data_root, tmp_path):
    """Warm-up + cosine sized from the real steps; a full run says complete; curve saved per epoch."""
    cfg = _tiny_config("quickstart", tiny_data_root, tmp_path, "trainer.max_epochs=2")
    summary = train(cfg)
    schedule = summary["schedule"]
    assert schedule["planned_steps"] == schedule["steps"] == 2 * 4  # 16 samples / batch 4 per epoch
    assert schedule["complete"] and schedule["cut_short_by"] is None
    assert [row["epoch"] for row in summary["learning_curve"]] == [0, 1]
    assert summary["learning_curve"][-1]["samples_seen"] == 2 * 16
    # the training MAE sits beside the validation MAE (under- vs over-fitting)
    assert all(
        row["train/mae_ms"] > 0 and row["val/mae_ms"] > 0 for row in summary["learning_curve"]
    )
    from epic_zoo.provenance import git_commit

    assert summary["commit"] == (git_commit() or "unknown")  # the code that trained it
    assert (tmp_path / "learning_curve.png").is_file() and (
        tmp_path / "learning_curve.csv"
    ).is_file()


def test_time_cap_that_cuts_the_schedule_is_reported(tiny_data_root, tmp_path):
    cfg = _tiny_config(
        "quickstart",
        tiny_data_root,
        tmp_path,
        "trainer.max_epochs=50",
        "+trainer.max_time=00:00:00:01",
    )
    schedule = train(cfg)["schedule"]
    assert not schedule["complete"] and schedule["cut_short_by"] == "time cap (trainer.max_time)"
    assert schedule["steps"] < schedule["planned_steps"] == 50 * 4


# ----------------------------------------------------------------------- errors
def test_unknown_recipe_lists_the_recipes():
    with pytest.raises(MissingConfigException) as err:
        compose_config(["recipe=epik"])
    assert "recipe/epik" in str(err.value)
    assert all(name in err.value.options for name in ("quickstart", "epic_lite"))


def test_cli_errors_name_the_fix(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "epic_zoo.run", "recipe=epik"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert "recipe=epik" in line and "recipes/recipe/epik.yaml" in line and "quickstart" in line


def test_unknown_key_says_how_to_add_it():
    with pytest.raises(ConfigCompositionException, match=r"\+trainer.max_epoch=3"):
        compose_config(["recipe=epic_lite", "trainer.max_epoch=3"])


def test_model_typo_suggests_the_name(tiny_data_root, tmp_path):
    with pytest.raises(MissingConfigException):
        compose_config(["recipe=epic_lite", "model=epik"])
    cfg = _tiny_config("epic_lite", tiny_data_root, tmp_path, "model.name=epik")
    with pytest.raises(ValueError, match=r"Did you mean epic"):
        train(cfg)


def test_data_of_the_wrong_length_for_the_model(tiny_data_root, tmp_path):
    cfg = _tiny_config("epic_lite", tiny_data_root, tmp_path, "+model.kwargs.time_samples=1000")
    with pytest.raises(ValueError, match=r"time_samples=1000 but the data give time_samples=250"):
        train(cfg)


def test_bad_profile_mapping_names_the_fields():
    assert data_profile("tiny").train == 16
    assert data_profile({"name": "mine", "train": 3, "val": 2, "test": 1}) == Profile(
        "mine", 3, 2, 1
    )
    with pytest.raises(ValueError, match="unknown: trian"):
        data_profile({"name": "mine", "trian": 3})


# ----------------------------------------------------------------------- resume
class _Kill(pl.Callback):
    """Stand-in for a killed job: dies in the second batch of epoch 1."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 1:
            raise RuntimeError("simulated kill")


@pytest.fixture(scope="module")
def resumed_runs(tiny_data_root, tmp_path_factory):
    """``(uninterrupted, resumed)`` summaries of the same 2-epoch run (epic_lite, tiny data)."""
    root = tmp_path_factory.mktemp("runs")
    extra = ("trainer.max_epochs=2", "task.num_panels=1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        straight = train(_tiny_config("epic_lite", tiny_data_root, root / "straight", *extra))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(
                "epic_zoo.run.build_callbacks",
                lambda cfg, d, clock=None: [*build_callbacks(cfg, d, clock), _Kill()],
            )
            with pytest.raises(RuntimeError, match="simulated kill"):
                train(_tiny_config("epic_lite", tiny_data_root, root / "killed", *extra))
        resumed = train(_tiny_config("epic_lite", tiny_data_root, root / "killed", *extra))
    finally:
        torch.set_num_threads(threads)
    return straight, resumed


def test_killed_run_resumes_to_the_same_result(resumed_runs):
    straight, resumed = resumed_runs
    assert resumed["epochs"] == straight["epochs"] == 2
    assert resumed["global_step"] == straight["global_step"]
    a = torch.load(Path(straight["run_dir"]) / "checkpoints" / LAST_CHECKPOINT, weights_only=True)
    b = torch.load(Path(resumed["run_dir"]) / "checkpoints" / LAST_CHECKPOINT, weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    for key, value in straight["metrics"].items():
        assert resumed["metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    # The second start logged into its own CSV version.
    versions = sorted(p.name for p in (Path(resumed["run_dir"]) / "csv").iterdir())
    assert versions == ["version_0", "version_1"]
    # The wall time covers both starts: the killed one kept its finished epoch 0.
    segments = json.loads((Path(resumed["run_dir"]) / "wall_time.json").read_text())["segments"]
    assert straight["wall_time_starts"] == 1 and resumed["wall_time_starts"] == len(segments) == 2
    assert segments[0]["elapsed_s"] > 0
    assert resumed["wall_time_s"] == pytest.approx(sum(s["elapsed_s"] for s in segments), abs=0.2)


def test_resume_refuses_another_model(resumed_runs, tiny_data_root):
    run_dir = Path(resumed_runs[1]["run_dir"])
    cfg = _tiny_config("epic_equal_lite", tiny_data_root, run_dir, "trainer.max_epochs=3")
    with pytest.raises(ValueError, match=r"run_dir=NEW_DIR"):
        train(cfg)


def test_compare_prints_the_runs_side_by_side(resumed_runs, capsys):
    straight, resumed = resumed_runs
    assert compare.main([straight["run_dir"], resumed["run_dir"], "--runs"]) == 0
    out = capsys.readouterr().out
    header, rule, *rows = out.strip().splitlines()
    assert "test/ssim" in header and "test/mae_ms" in header and "model" in header
    assert header.index("test/mae_ms") < header.index("test/ssim")  # MAE in m/s first
    assert len(rows) == 2
    ssim = f"{straight['metrics']['test/ssim']:.4f}"
    assert all(ssim in row for row in rows)
    # Same setting and seed in two folders: one group of two.
    assert compare.main([straight["run_dir"], resumed["run_dir"]]) == 0
    header, rule, *rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 1 and "| 0,0 " in rows[0] and "| 2 " in rows[0]


def test_compare_reads_csv_logs_without_results(resumed_runs, tmp_path):
    source = Path(resumed_runs[0]["run_dir"])
    csv_only = tmp_path / "csv_only"
    for path in source.glob("csv/version_*/*.*"):
        target = csv_only / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    values = compare.read_run(csv_only)
    assert values["test/ssim"] == pytest.approx(resumed_runs[0]["metrics"]["test/ssim"])
    assert values["model"] == "epic" and values["dataset"] == "flatvel-a"
    with pytest.raises(compare.CompareError, match="is not a run"):
        compare.read_run(tmp_path)


# ------------------------------------------------------------------------ W&B
def test_wandb_mode_is_offline_unless_logged_in(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    assert wandb_mode() == "offline"
    assert wandb_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode() == "offline"


def test_wandb_offline_run_config_names_summary_and_artifact(tiny_data_root, tmp_path, monkeypatch):
    """A real offline W&B run: one nested config, the seed in name and tags, the tested
    epoch's val metrics in the summary, the tested checkpoint as a model artifact."""
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    seen: dict = {}
    real_finish = wandb.finish

    def finish(*args, **kwargs):
        run = wandb.run
        if run is not None and not seen:
            seen.update(
                config=run.config.as_dict(),
                summary=dict(run.summary),
                name=run.name,
                group=run.group,
                tags=set(run.tags),
            )
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(wandb, "finish", finish)
    written: dict = {}
    real_finish_run = run_module.finish_wandb_run

    def finish_run(*args, **kwargs):
        written.update(real_finish_run(*args, **kwargs))
        return written

    monkeypatch.setattr(run_module, "finish_wandb_run", finish_run)
    cfg = _tiny_config(
        "epic_lite",
        tiny_data_root,
        tmp_path,
        "logger=wandb",
        "logger.wandb.log_model=true",
        "seed=3",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        # Select the *worst* epoch so the tested checkpoint is (almost surely) not the last.
        "checkpoint.mode=max",
    )
    summary = train(cfg)
    assert wandb.run is None  # finished
    assert any((tmp_path / "wandb").glob("offline-run-*/files/media/**/*.png"))  # panels
    # One nested config (the composed one, model kwargs as built), no flat hparams copy.
    config = seen["config"]
    assert config["recipe_name"] == "epic_lite" and config["seed"] == 3
    assert config["model"]["kwargs"]["time_samples"] == 250
    assert not {"model_name", "model_kwargs", "lr", "dataset"} & set(config)
    assert config == summary["config"]
    # Seeds are told apart by name and tags and share a group.
    assert seen["name"] == "epic_lite-flatvel-a-seed3"
    assert seen["group"] == "epic_lite/epic/flatvel-a"
    assert seen["tags"] == {"epic_lite", "flatvel-a", "epic", "seed-3"}
    # Summary: the tested checkpoint's epoch, not the last one.
    curve = summary["learning_curve"]
    best = max(curve, key=lambda r: r["val/mae"])
    assert seen["summary"]["best/epoch"] == best["epoch"]
    assert seen["summary"]["val/mae"] == pytest.approx(best["val/mae"])
    assert f"epoch{best['epoch']:03d}" in Path(summary["best_checkpoint"]).name
    assert seen["summary"]["test/mae"] == pytest.approx(summary["metrics"]["test/mae"])
    assert seen["summary"]["baseline/mean_map_mae_ms"] == pytest.approx(
        summary["baseline"]["mean_map_mae_ms"]
    )
    # The tested checkpoint as a model artifact.
    artifact = written["artifact"]
    assert artifact.type == "model"
    assert list(artifact.manifest.entries) == [Path(summary["checkpoint"]).name]
    assert artifact.metadata["seed"] == 3
    assert artifact.metadata["test/mae"] == pytest.approx(summary["metrics"]["test/mae"])


# ------------------------------------------------------- processes: DDP, sweeps
def _run_cli(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "epic_zoo.run", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def _small_model_overrides() -> list[str]:
    return [f"+model.kwargs.{k}={v}".replace(" ", "") for k, v in EPIC_SMALL.items()]


def test_ddp_two_cpu_processes(tiny_data_root, tmp_path):
    run_dir = tmp_path / "ddp"
    args = _tiny_overrides(
        "epic_lite",
        tiny_data_root,
        run_dir,
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        *_small_model_overrides(),
    )
    run = _run_cli(args, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in run.stdout + run.stderr
    summary = json.loads((run_dir / "results.json").read_text())
    assert summary["global_step"] == 2 and "test/ssim" in summary["metrics"]
    assert (run_dir / "checkpoints" / LAST_CHECKPOINT).is_file()


def test_multirun_sweep_gives_one_run_per_job(tiny_data_root, tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        *_tiny_overrides("epic_lite", tiny_data_root, tmp_path / "unused", "seed=0,1"),
        "trainer.fast_dev_run=true",
        f"hydra.sweep.dir={sweep}",
        *_small_model_overrides(),
    ]
    run = _run_cli(args, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sweep.glob("*/results.json")]
    assert sorted(r["seed"] for r in results) == [0, 1]
    assert all("test/ssim" in r["metrics"] for r in results)


@pytest.mark.slow  # two worker processes start torch each: ~1.5 min on 2 shared cores
def test_parallel_sweep_with_the_joblib_launcher(tiny_data_root, tmp_path):
    """``hydra/launcher=joblib`` (the ``sweep`` extra) runs the jobs in worker processes."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="pip install -e .[sweep]")
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *_tiny_overrides("epic_lite", tiny_data_root, tmp_path / "unused", "seed=0,1"),
        "trainer.fast_dev_run=true",
        f"hydra.sweep.dir={sweep}",
        *_small_model_overrides(),
    ]
    run = _run_cli(args, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in run.stdout + run.stderr
    results = [json.loads(p.read_text()) for p in sweep.glob("*/results.json")]
    assert sorted(r["seed"] for r in results) == [0, 1]
    assert all(len(Path(r["run_dir"]).name) <= 100 for r in results)


# ------------------------------------------------------------------ run identity
def test_default_run_dir_names_the_seed_and_the_configuration():
    base = compose_config(["recipe=epic_lite"]).run_dir
    seed1 = compose_config(["recipe=epic_lite", "seed=1"]).run_dir
    longer = compose_config(["recipe=epic_lite", "trainer.max_epochs=11"]).run_dir
    where = compose_config(["recipe=epic_lite", "threads=1", "data.root=/elsewhere"]).run_dir
    assert base.startswith("runs/epic_lite/flatvel-a/seed0-")
    assert seed1.startswith("runs/epic_lite/flatvel-a/seed1-")
    assert seed1.split("-")[-1] == base.split("-")[-1], "seeds of one setting share the hash"
    assert longer != base and longer.startswith("runs/epic_lite/flatvel-a/seed0-")
    assert where == base, "threads and data paths do not change what a run computes"


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "override",
    ["seed=1", "trainer.max_epochs=3", "task.lr=0.5"],
    ids=["another-seed", "longer-schedule", "another-lr"],
)
def test_finished_run_is_never_continued_by_another_configuration(
    resumed_runs, tiny_data_root, override
):
    """seed=1 after seed=0, or a longer schedule, in the same folder: refused, nothing written."""
    run_dir = Path(resumed_runs[0]["run_dir"])
    before = _tree_bytes(run_dir)
    cfg = _tiny_config(
        "epic_lite", tiny_data_root, run_dir, "trainer.max_epochs=2", "task.num_panels=1", override
    )
    with pytest.raises(RunIdentityError, match=r"another configuration") as err:
        train(cfg)
    key = override.split("=")[0]
    assert key in str(err.value) and "\n" not in str(err.value)
    assert _tree_bytes(run_dir) == before, "a refused start must not touch the run folder"


def test_same_configuration_again_reports_the_finished_run(resumed_runs, tiny_data_root):
    run_dir = Path(resumed_runs[0]["run_dir"])
    before = _tree_bytes(run_dir)
    cfg = _tiny_config(
        "epic_lite", tiny_data_root, run_dir, "trainer.max_epochs=2", "task.num_panels=1"
    )
    again = train(cfg)
    assert again["metrics"] == resumed_runs[0]["metrics"] and again["seed"] == 0
    assert _tree_bytes(run_dir) == before, "a finished run is reported, not retrained"


def test_resume_false_moves_the_old_run_aside(tiny_data_root, tmp_path):
    run_dir = tmp_path / "run"
    first = train(_tiny_config("quickstart", tiny_data_root, run_dir, "trainer.max_epochs=1"))
    old = _tree_bytes(run_dir)
    second = train(
        _tiny_config(
            "quickstart", tiny_data_root, run_dir, "trainer.max_epochs=1", "seed=1", "resume=false"
        )
    )
    assert second["seed"] == 1 and first["seed"] == 0
    (aside,) = tmp_path.glob("run.replaced-*")
    assert _tree_bytes(aside) == old, "the previous run is kept byte for byte"
    stored = json.loads((run_dir / "results.json").read_text())
    assert stored["seed"] == 1 and stored["config"]["seed"] == 1


def test_default_folders_keep_two_seeds_apart(tiny_data_root, tmp_path, monkeypatch):
    """The red-team case: seed=1 after seed=0 with the default run_dir trains a second run."""
    monkeypatch.chdir(tmp_path)
    overrides = [
        "recipe=quickstart",
        "data.profile=tiny",
        f"data.root={tiny_data_root}",
        "data.batch_size=4",
        "threads=1",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]
    summaries = []
    for seed in (0, 1):
        cfg = compose_config([*overrides, f"seed={seed}"])
        with open_dict(cfg):
            cfg.model.kwargs = OmegaConf.merge(EPIC_SMALL, cfg.model.kwargs)
        summaries.append(train(cfg))
    dirs = [Path(s["run_dir"]) for s in summaries]
    assert dirs[0] != dirs[1] and dirs[0].parent == dirs[1].parent
    for seed, folder in enumerate(dirs):
        record = json.loads((folder / "results.json").read_text())
        assert record["seed"] == seed and record["config"]["seed"] == seed
        assert record["global_step"] > 0, "each seed trained its own run"
    assert summaries[0]["metrics"] != summaries[1]["metrics"]

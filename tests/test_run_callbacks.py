"""Callbacks and loggers come from the recipes' config groups; a run's identity does not move."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from epic_zoo.config_schema import ConfigError, validate_config
from epic_zoo.evidence import WallClock
from epic_zoo.run import build_callbacks, build_loggers, compose_config, run_config
from epic_zoo.run_callbacks import WANDB_ID_FILE, EpochSeed, RunConfigWandbLogger
from epic_zoo.run_identity import check_run_folder, config_hash, write_run_config
from epic_zoo.run_layout import CHECKPOINT_DIR, LAST_CHECKPOINT

RUN_FOLDER_HASHES: dict[tuple[str, ...], str] = {
    ("recipe=epic",): "39e60f52",
    ("recipe=epic_lite",): "9881268a",
    ("recipe=quickstart",): "a073e86b",
    ("recipe=epic", "early_stopping.enabled=true"): "3328e310",
    ("recipe=epic", "checkpoint.at_samples=[100,200]"): "b41ee108",
    ("recipe=epic", "logger=wandb"): "39e60f52",
}
"""The default run folders' hashes as composed before callbacks and loggers moved into config
groups (main at 55b33ca): the same settings must keep naming the same folders."""


@pytest.mark.parametrize("overrides", list(RUN_FOLDER_HASHES), ids=" ".join)
def test_default_run_folder_hash_is_unchanged(overrides):
    run_dir = str(compose_config(list(overrides)).run_dir)
    assert run_dir.rsplit("-", 1)[-1] == RUN_FOLDER_HASHES[overrides]


def test_a_folder_started_before_the_callbacks_group_is_continued(tmp_path):
    """Its stored config has no ``callbacks`` node; the identity is the same."""
    config = run_config(compose_config(["recipe=epic_lite"]))
    older = {k: v for k, v in config.items() if k != "callbacks"}
    assert "callbacks" in config
    write_run_config(tmp_path, older)
    check_run_folder(tmp_path, config)  # no RunIdentityError
    assert config_hash(older) == config_hash(config)


def test_callbacks_are_the_runs_checkpoints_monitor_and_seed(tmp_path):
    cfg = compose_config(["recipe=epic_lite", "checkpoint.mode=max", "seed=4"])
    clock = WallClock(tmp_path, 0.0, resumed=False)
    built = build_callbacks(cfg, tmp_path, clock)
    best, last, lr, seed, wall = built
    assert isinstance(best, ModelCheckpoint) and isinstance(last, ModelCheckpoint)
    assert Path(best.dirpath) == Path(last.dirpath) == (tmp_path / CHECKPOINT_DIR).resolve()
    assert (best.monitor, best.mode, best.save_top_k) == ("val/mae", "max", 1)
    assert best.filename == "best-epoch{epoch:03d}" and not best.auto_insert_metric_name
    assert last.monitor is None and f"{last.filename}.ckpt" == LAST_CHECKPOINT
    assert isinstance(lr, LearningRateMonitor) and lr.logging_interval == "epoch"
    assert isinstance(seed, EpochSeed) and seed.seed == 4
    assert wall is clock
    assert not any(isinstance(c, EarlyStopping) for c in built)


def test_early_stopping_follows_its_settings(tmp_path):
    cfg = compose_config(
        ["recipe=epic_lite", "early_stopping.enabled=true", "early_stopping.patience=2"]
    )
    (stop,) = [c for c in build_callbacks(cfg, tmp_path) if isinstance(c, EarlyStopping)]
    assert (stop.monitor, stop.patience, stop.min_delta) == ("val/mae", 2, 0.0)


def test_loggers_csv_and_offline_wandb_in_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = compose_config(["recipe=epic_lite", "logger=wandb", "seed=2"])
    (csv,) = build_loggers(compose_config(["recipe=epic_lite"]), tmp_path / "a")
    assert isinstance(csv, CSVLogger) and Path(csv.log_dir) == tmp_path / "a" / "csv" / "version_0"
    config = run_config(cfg)  # holds the logger and callbacks nodes: logged as they are
    csv_logger, wandb_logger = build_loggers(cfg, tmp_path / "b", config)
    assert isinstance(csv_logger, CSVLogger) and isinstance(wandb_logger, RunConfigWandbLogger)
    assert isinstance(wandb_logger, WandbLogger) and wandb_logger.save_dir == str(tmp_path / "b")
    stored_id = (tmp_path / "b" / WANDB_ID_FILE).read_text().strip()
    assert (
        wandb_logger._wandb_init["id"] == stored_id
        and wandb_logger._wandb_init["mode"] == "offline"
    )
    assert wandb_logger._wandb_init["config"] == config
    assert wandb_logger._wandb_init["name"] == "epic_lite-flatvel-a-seed2"
    assert not wandb_logger._log_model and not wandb_logger.log_tested_checkpoint


@pytest.mark.parametrize(
    "override",
    [
        "callbacks.best_checkpoint.monitor=val/ssim",
        "callbacks.early_stopping.enabled=true",
        "callbacks.epoch_seed.seed=3",
        "callbacks.best_checkpoint=null",
    ],
)
def test_an_override_that_cuts_a_result_link_is_refused(override):
    """The hash would not see it: the run names the hashed key instead, in one line."""
    cfg = compose_config(["recipe=epic_lite", override])
    with pytest.raises(ConfigError, match=r"must read \$\{") as err:
        validate_config(cfg)
    assert "\n" not in str(err.value)

"""Warmup-stable-decay schedule, budget checkpoints and decays branched from them (tiny data)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from conftest import EPIC_SMALL
from omegaconf import OmegaConf, open_dict
from torch.utils.data import DataLoader

from epic_zoo import branch
from epic_zoo.run import compose_config, train
from epic_zoo.schedules import decay_steps_for, wsd_factor
from epic_zoo.tasks import InversionTask
from epic_zoo.tasks.inversion import LRSchedule

pytestmark = pytest.mark.usefixtures("one_thread")  # the shared fixture (conftest.py)


# ------------------------------------------------------------------ schedule
def test_wsd_warms_up_holds_then_decays_to_zero():
    total, decay = 20, decay_steps_for(20, 0.25)
    assert decay == 5
    wsd = LRSchedule(
        "wsd", warmup_steps=4, total_steps=total, step_every=1, gamma=0.1, decay_steps=decay
    )
    assert [wsd(s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert [wsd(s) for s in range(4, 15)] == [1.0] * 11  # stable phase
    assert [wsd(s) for s in range(15, 21)] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2, 0.0])
    sqrt = LRSchedule("wsd", 0, total, 1, 0.1, decay_steps=decay, decay_shape="1-sqrt")
    assert sqrt(16) == pytest.approx(1 - math.sqrt(0.2))
    assert wsd_factor(7, 10, 0) == 1.0  # no decay: constant


@pytest.mark.parametrize(
    "args, message",
    [((10, 1.5), "decay_fraction=1.5"), ((10, 0.1, 11), "longer than the run")],
)
def test_decay_steps_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        decay_steps_for(*args)


def test_wsd_is_sized_from_the_real_number_of_steps(tmp_path):
    task = InversionTask(
        "epic", {"time_samples": 250, **EPIC_SMALL}, scheduler="wsd", decay_fraction=0.5
    )
    items = [
        {"seismic": torch.zeros(5, 250, 70), "velocity": torch.zeros(1, 70, 70), "index": i}
        for i in range(8)
    ]
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, DataLoader(items, batch_size=2))
    schedule = trainer.lr_scheduler_configs[0].scheduler.lr_lambdas[0]
    assert (schedule.kind, schedule.total_steps, schedule.decay_steps) == ("wsd", 8, 4)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0)


def test_unknown_decay_shape_is_refused():
    with pytest.raises(ValueError, match="decay_shape='cubic'"):
        InversionTask("epic", {"time_samples": 250, **EPIC_SMALL}, decay_shape="cubic")


# ------------------------------------------------------------------ budget checkpoints, branches
def _config(data_root: Path, run_dir: Path, *extra: str):
    cfg = compose_config(
        [
            "recipe=epic_lite",
            "data.profile=tiny",
            f"data.root={data_root}",
            "data.batch_size=4",
            f"run_dir={run_dir}",
            "threads=1",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "task.num_panels=0",
            *extra,
        ]
    )
    with open_dict(cfg):
        cfg.model.kwargs = OmegaConf.merge(EPIC_SMALL, cfg.model.kwargs)
    return cfg


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def trunk(tiny_data_root, tmp_path_factory):
    """A WSD run on tiny data: 16 maps, batch 4, 3 epochs = 12 steps, decay over the last 3."""
    run_dir = tmp_path_factory.mktemp("wsd") / "trunk"
    cfg = _config(
        tiny_data_root,
        run_dir,
        "trainer.max_epochs=3",
        "task.scheduler=wsd",
        "task.warmup_fraction=0.1",
        "task.decay_fraction=0.25",
        "checkpoint.at_samples=[8,16]",
    )
    return train(cfg)


def test_trunk_saves_budget_checkpoints_in_the_stable_phase(trunk):
    run_dir = Path(trunk["run_dir"])
    budgets = trunk["budget_checkpoints"]
    assert [b["budget"] for b in budgets] == [8, 16]
    assert [b["samples_seen"] for b in budgets] == [8, 16]
    assert [b["global_step"] for b in budgets] == [2, 4]
    assert all(b["lr_factor"] == 1.0 and b["scheduler"] == "wsd" for b in budgets)
    for b in budgets:
        saved = torch.load(run_dir / "checkpoints" / b["checkpoint"], weights_only=True)
        assert saved["global_step"] == b["global_step"] and saved["optimizer_states"]
    assert trunk["schedule"]["complete"] and trunk["samples_seen"] == 48


def test_branch_decays_from_the_budget_into_its_own_folder(trunk, tiny_data_root):
    parent_dir = Path(trunk["run_dir"])
    before = _digest(parent_dir)
    ckpt = branch.samples_checkpoint(parent_dir, 16)
    run_dir = parent_dir.parent / "trunk-decay16"
    cfg = _config(tiny_data_root, run_dir, f"branch.parent={ckpt}", "branch.decay_fraction=0.5")
    summary = train(cfg)
    assert _digest(parent_dir) == before  # the parent's records are untouched
    record = json.loads((run_dir / "results.json").read_text())
    b = record["branch"]
    assert (b["parent_run"], b["branch_samples"], b["decay_steps"], b["decay_samples"]) == (
        str(parent_dir),
        16,
        2,
        8,
    )
    assert record["samples_seen"] == summary["samples_seen"] == 24
    assert record["schedule"]["complete"] and record["schedule"]["scheduler"] == "wsd"
    assert record["metrics"]["test/mae_ms"] > 0
    (row,) = record["learning_curve"]  # one validation, at the end of the decay
    assert row["samples_seen"] == 24
    # the decay started from the parent's weights: the branch is closer to them than a fresh model
    parent = torch.load(ckpt, weights_only=True)["state_dict"]
    mine = torch.load(Path(record["checkpoint"]), weights_only=True)["state_dict"]
    fresh = InversionTask("epic", record["config"]["model"]["kwargs"]).state_dict()
    key = next(k for k in parent if k.endswith("weight") and parent[k].numel() > 100)
    assert (mine[key] - parent[key]).abs().max() < (fresh[key] - parent[key]).abs().max()


class _Stop(Exception):
    """Raised by a probe to end a fit."""


def test_branch_start_loads_weights_and_optimiser_state(trunk):
    ckpt = branch.samples_checkpoint(trunk["run_dir"], 8)
    saved = torch.load(ckpt, weights_only=True)
    task = InversionTask(
        "epic", trunk["config"]["model"]["kwargs"], scheduler="wsd", decay_fraction=1.0, lr=0.5
    )
    seen = {}

    class Probe(pl.Callback):
        def on_fit_start(self, trainer, pl_module):
            seen["state"] = {k: v.clone() for k, v in pl_module.state_dict().items()}
            seen["opt"] = trainer.optimizers[0].state_dict()
            seen["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
            raise _Stop  # before any step

    items = [{"seismic": torch.zeros(5, 250, 70), "velocity": torch.zeros(1, 70, 70), "index": 0}]
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[branch.BranchStart(ckpt), Probe()],
    )
    with pytest.raises(_Stop):
        trainer.fit(task, DataLoader(items, batch_size=1))
    for k, v in saved["state_dict"].items():
        torch.testing.assert_close(seen["state"][k], v)
    theirs = saved["optimizer_states"][0]["state"]
    assert seen["opt"]["state"].keys() == theirs.keys()
    torch.testing.assert_close(seen["opt"]["state"][0]["exp_avg"], theirs[0]["exp_avg"])
    assert seen["lr"] == pytest.approx(0.5)  # the branch schedule's first value, factor 1


def test_branch_refuses_the_parents_folder_and_a_decay_checkpoint(trunk, tiny_data_root):
    parent_dir = Path(trunk["run_dir"])
    ckpt = branch.samples_checkpoint(parent_dir, 16)
    with pytest.raises(ValueError, match="holds the parent run; a branch writes its own folder"):
        branch.prepare(_config(tiny_data_root, parent_dir, f"branch.parent={ckpt}"), parent_dir)
    with pytest.raises(ValueError, match="data.batch_size=2 but the parent trained with 4"):
        cfg = _config(tiny_data_root, parent_dir.parent / "x", f"branch.parent={ckpt}")
        cfg.data.batch_size = 2
        branch.prepare(cfg, parent_dir.parent / "x")
    with pytest.raises(ValueError, match="no budget checkpoint there"):
        missing = parent_dir / "checkpoints" / "samples-000000999.ckpt"
        branch.prepare(
            _config(tiny_data_root, parent_dir.parent / "y", f"branch.parent={missing}"),
            parent_dir.parent / "y",
        )
    # a record saved at a lowered learning rate is not a branch point
    fake = parent_dir.parent / "fake" / "checkpoints" / "samples-000000016.ckpt"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(ckpt.read_bytes())
    record = {**json.loads(ckpt.with_suffix(".json").read_text()), "lr_factor": 0.5}
    fake.with_suffix(".json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="not in a stable phase"):
        branch.prepare(
            _config(tiny_data_root, parent_dir.parent / "z", f"branch.parent={fake}"),
            parent_dir.parent / "z",
        )


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ("task.decay_fraction=0.5", "checkpoint.at_samples=[12]"),
            r"\[12\] fall in the WSD decay",
        ),
        (("task.warmup_steps=3", "checkpoint.at_samples=[4]"), r"\[4\] fall in the warm-up"),
    ],
)
def test_budget_outside_the_stable_phase_is_refused(tiny_data_root, tmp_path, extra, message):
    cfg = _config(
        tiny_data_root, tmp_path / "late", "trainer.max_epochs=1", "task.scheduler=wsd", *extra
    )
    with pytest.raises(ValueError, match=message):
        train(cfg)

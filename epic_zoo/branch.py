"""Stable-phase checkpoints at planned budgets, and decays branched from them (WSD scaling runs).

One long run with ``task.scheduler=wsd`` and ``checkpoint.at_samples=[B1, B2,
...]`` saves ``checkpoints/samples-{B:09d}.ckpt`` (full training state) and a
``.json`` record beside it the first time ``B`` training samples have been
seen (:class:`SamplesCheckpoint`). A *branch* is a separate run::

    python -m epic_zoo.run recipe=epic scale=lite10k data.dataset=flatvel-a \\
        branch.parent=runs/epic_wsd/flatvel-a/checkpoints/samples-000010000.ckpt \\
        branch.decay_fraction=0.2 run_dir=runs/epic_wsd/flatvel-a-decay10000

It starts from the parent's weights and optimiser state
(:class:`BranchStart`), runs only a decay of the learning rate from the
parent's peak to 0 over ``decay_fraction x B`` samples (:func:`prepare`
rewrites the config), validates once at its end, tests, and writes its own
``results.json`` with a ``branch`` record (parent run, checkpoint, branch
point, decay length; :func:`annotate`). ``samples_seen`` then counts the
parent's samples plus the decay's. The parent's folder is never written to:
a branch whose ``run_dir`` is the parent's is refused.

The runner calls :func:`prepare`, :func:`callbacks` and :func:`annotate`;
the schedule itself is :mod:`epic_zoo.schedules`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, open_dict

from epic_zoo.provenance import git_commit
from epic_zoo.run_layout import CHECKPOINT_DIR

log = logging.getLogger(__name__)

SAMPLES_CHECKPOINT = "samples-{samples:09d}.ckpt"
"""Name of a budget checkpoint in ``checkpoints/`` (its record: the same name with ``.json``)."""


def samples_checkpoint(run_dir: str | Path, budget: int) -> Path:
    """Path of the checkpoint saved at ``budget`` samples seen in ``run_dir``."""
    return Path(run_dir) / CHECKPOINT_DIR / SAMPLES_CHECKPOINT.format(samples=int(budget))


def budget_record(checkpoint: str | Path) -> dict[str, Any]:
    """The ``.json`` record of a budget checkpoint; ``ValueError`` naming the fix if absent."""
    checkpoint = Path(checkpoint)
    record = checkpoint.with_suffix(".json")
    if not checkpoint.is_file() or not record.is_file():
        raise ValueError(
            f"branch.parent={checkpoint}: no budget checkpoint there (the .ckpt and its .json "
            "record); give a checkpoints/samples-N.ckpt that a run with "
            "checkpoint.at_samples=[N, ...] saved"
        )
    return json.loads(record.read_text())


def _samples_per_step(batch_size: int, trainer: pl.Trainer) -> int:
    return int(batch_size) * int(trainer.accumulate_grad_batches) * int(trainer.world_size)


class SamplesCheckpoint(pl.Callback):
    """Save the full training state once ``budget`` training samples have been seen, per budget.

    Samples seen = optimiser steps x batch size x gradient accumulation x
    processes (full batches). Under ``scheduler=wsd`` a budget inside the
    warm-up or the decay phase is refused at the start of the fit (a branch
    needs the peak learning rate); other schedules save too, and their record states the
    learning-rate factor so that :func:`prepare` can refuse them. A budget
    whose file exists (a resumed run) is not saved again.

    Args:
        budgets: samples seen at which to save.
        dirpath: the run's checkpoint folder.
        batch_size: the data's batch size.
        run_dir: the run folder, written into each record.
    """

    def __init__(
        self, budgets: Iterable[int], dirpath: Path, batch_size: int, run_dir: Path
    ) -> None:
        self.budgets = sorted({int(b) for b in budgets})
        if any(b < 1 for b in self.budgets):
            raise ValueError(f"checkpoint.at_samples={self.budgets}: budgets must be >= 1 sample")
        self.dirpath = Path(dirpath)
        self.batch_size = int(batch_size)
        self.run_dir = Path(run_dir)

    @staticmethod
    def _schedule(trainer: pl.Trainer) -> Any:
        for config in trainer.lr_scheduler_configs:
            for fn in getattr(config.scheduler, "lr_lambdas", []):
                if hasattr(fn, "kind"):
                    return fn
        return None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        schedule = self._schedule(trainer)
        if schedule is None or schedule.kind != "wsd":
            return
        per_step = _samples_per_step(self.batch_size, trainer)
        early = [b for b in self.budgets if math.ceil(b / per_step) < schedule.warmup_steps]
        if early:
            raise ValueError(
                f"checkpoint.at_samples {early} fall in the warm-up, which ends after "
                f"{schedule.warmup_steps * per_step} samples ({schedule.warmup_steps} steps); raise "
                "the budgets or shorten the warm-up (task.warmup_fraction=0 task.warmup_steps=N)"
            )
        start = schedule.total_steps - schedule.decay_steps
        late = [b for b in self.budgets if math.ceil(b / per_step) > start]
        if late:
            raise ValueError(
                f"checkpoint.at_samples {late} fall in the WSD decay phase, which starts after "
                f"{start * per_step} samples ({start} steps of {schedule.total_steps}); keep the "
                "budgets below it or lower task.decay_fraction"
            )

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        seen = int(trainer.global_step) * _samples_per_step(self.batch_size, trainer)
        for budget in [b for b in self.budgets if b <= seen]:
            self.budgets.remove(budget)
            path = samples_checkpoint(self.run_dir, budget)
            if path.is_file():
                continue
            trainer.save_checkpoint(path)
            if not trainer.is_global_zero:
                continue
            schedule = self._schedule(trainer)
            step = int(trainer.global_step)
            record = {
                "budget": budget,
                "samples_seen": seen,
                "global_step": step,
                "epoch": int(trainer.current_epoch),
                "batch_size": self.batch_size,
                "samples_per_step": _samples_per_step(self.batch_size, trainer),
                "lr": float(pl_module.hparams.get("lr", float("nan"))),
                "scheduler": schedule.kind if schedule is not None else "none",
                # the factor of the step that follows: what a branch continues from
                "lr_factor": float(schedule(step)) if schedule is not None else 1.0,
                "run_dir": str(self.run_dir),
                "checkpoint": path.name,
                "commit": git_commit() or "unknown",
            }
            path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
            log.info("saved the %d-sample checkpoint %s", seen, path)


class BranchStart(pl.Callback):
    """Start a fit from a budget checkpoint's weights and optimiser state (not its loops or schedule).

    Runs in ``on_fit_start``, after the optimisers exist; a branch resumed
    from its own ``last.ckpt`` is restored by Lightning afterwards, which
    overrides this. The learning rate is set to the branch schedule's first
    value (the parent's peak).
    """

    def __init__(self, parent: Path) -> None:
        self.parent = Path(parent)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        saved = torch.load(self.parent, map_location=pl_module.device, weights_only=True)
        pl_module.load_state_dict(saved["state_dict"])
        states = saved.get("optimizer_states") or []
        if len(states) != len(trainer.optimizers):
            raise ValueError(
                f"{self.parent} holds {len(states)} optimiser state(s), this run has "
                f"{len(trainer.optimizers)}: branch with the parent's task"
            )
        for optimizer, state in zip(trainer.optimizers, states, strict=True):
            optimizer.load_state_dict(state)
        for config in trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            groups = scheduler.optimizer.param_groups
            for group, base, last in zip(
                groups, scheduler.base_lrs, scheduler.get_last_lr(), strict=True
            ):
                group["initial_lr"], group["lr"] = base, last


def _parent(cfg: Mapping[str, Any]) -> Path | None:
    parent = (cfg.get("branch") or {}).get("parent")
    return Path(str(parent)) if parent else None


def prepare(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """The configuration a branch runs (``cfg`` itself when ``branch.parent`` is not set).

    Checks the parent (a stable-phase budget checkpoint, same batch size, a
    ``run_dir`` of its own) and sets: the parent's peak ``task.lr``; a
    ``wsd`` schedule that is all decay (no warm-up); ``trainer.max_steps`` =
    ``ceil(decay_fraction x B / samples per step)`` with one validation at
    the end; no budget checkpoints. Raises ``ValueError`` naming the fix.
    """
    parent = _parent(cfg)
    if parent is None:
        return cfg
    record = budget_record(parent)
    parent_run = Path(record["run_dir"])
    if Path(run_dir).resolve() == parent_run.resolve() or parent.resolve().is_relative_to(
        Path(run_dir).resolve()
    ):
        raise ValueError(
            f"run_dir={run_dir} holds the parent run; a branch writes its own folder: "
            f"set run_dir=, e.g. run_dir={parent_run}-decay{record['budget']}"
        )
    if record["scheduler"] not in ("wsd", "none") or record["lr_factor"] != 1.0:
        raise ValueError(
            f"{parent} was saved at learning-rate factor {record['lr_factor']} of a "
            f"{record['scheduler']!r} schedule, not in a stable phase; branch from a "
            "task.scheduler=wsd run's checkpoint.at_samples checkpoint"
        )
    if int(cfg.data.batch_size) != int(record["batch_size"]):
        raise ValueError(
            f"data.batch_size={cfg.data.batch_size} but the parent trained with "
            f"{record['batch_size']}; branch with data.batch_size={record['batch_size']}"
        )
    fraction = float(cfg.branch.decay_fraction)
    if not 0.0 < fraction <= 10.0:
        raise ValueError(
            f"branch.decay_fraction={fraction}: the decay's share of the branch point's "
            "samples must be > 0 (e.g. 0.2)"
        )
    accumulate = int(cfg.trainer.get("accumulate_grad_batches") or 1)
    per_step = int(record["samples_per_step"])
    if per_step != int(cfg.data.batch_size) * accumulate:
        raise ValueError(
            f"the parent took {per_step} samples per optimiser step, this run "
            f"{int(cfg.data.batch_size) * accumulate}; use the parent's batch, accumulation "
            "and number of processes"
        )
    steps = max(1, math.ceil(fraction * int(record["samples_seen"]) / per_step))
    branch_cfg = cfg.copy()
    with open_dict(branch_cfg):
        branch_cfg.task.lr = float(record["lr"])
        branch_cfg.task.scheduler = "wsd"
        branch_cfg.task.warmup_steps = 0
        branch_cfg.task.warmup_fraction = 0.0
        branch_cfg.task.decay_fraction = 1.0
        branch_cfg.task.decay_steps = 0
        branch_cfg.trainer.max_steps = steps
        branch_cfg.trainer.max_epochs = -1
        branch_cfg.trainer.val_check_interval = steps
        branch_cfg.trainer.check_val_every_n_epoch = None
        branch_cfg.checkpoint.at_samples = []
    return branch_cfg


def callbacks(cfg: DictConfig, run_dir: Path) -> list[pl.Callback]:
    """The budget-checkpoint and branch-start callbacks ``cfg`` asks for (often none)."""
    out: list[pl.Callback] = []
    budgets = list((cfg.get("checkpoint") or {}).get("at_samples") or [])
    if budgets:
        out.append(
            SamplesCheckpoint(
                budgets, Path(run_dir) / CHECKPOINT_DIR, int(cfg.data.batch_size), Path(run_dir)
            )
        )
    parent = _parent(cfg)
    if parent is not None:
        out.append(BranchStart(parent))
    return out


def annotate(summary: dict[str, Any], cfg: DictConfig) -> dict[str, Any]:
    """Add the budget checkpoints (parent) or the ``branch`` record (branch) to a run summary.

    A branch's ``samples_seen`` (and its learning curve's) become the
    parent's samples at the branch point plus the decay's.
    """
    run_dir = Path(summary["run_dir"])
    records = sorted((run_dir / CHECKPOINT_DIR).glob("samples-*.json"))
    if records:
        summary["budget_checkpoints"] = [json.loads(p.read_text()) for p in records]
    parent = _parent(cfg)
    if parent is None:
        return summary
    record = budget_record(parent)
    per_step = int(record["samples_per_step"])
    start = int(record["samples_seen"])
    decay_samples = int(summary["global_step"]) * per_step
    summary["branch"] = {
        "parent_run": record["run_dir"],
        "parent_checkpoint": str(parent),
        "parent_commit": record.get("commit"),
        "branch_samples": start,
        "branch_step": int(record["global_step"]),
        "decay_fraction": float(cfg.branch.decay_fraction),
        "decay_steps": int(summary["global_step"]),
        "decay_samples": decay_samples,
        "peak_lr": float(record["lr"]),
    }
    summary["samples_seen"] = start + decay_samples
    for row in summary.get("learning_curve") or []:
        # the CSV logger stamps a validation row with the 0-based index of the last step
        row["samples_seen"] = start + (int(row.get("step", 0)) + 1) * per_step
    return summary

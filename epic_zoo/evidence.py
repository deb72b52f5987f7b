"""What a run records beside its test metrics, so that a number can be judged.

- the input-free ``mean-map`` baseline scored on the run's own test split, and
  whether the model beats it (:func:`mean_map_baseline`, :func:`baseline_evidence`);
- where the data came from (:func:`data_provenance`);
- the learning curve: validation metrics against samples seen, read back from
  the CSV logs of every start of a resumed run (:func:`read_learning_curve`,
  :func:`save_learning_curve`, :func:`best_epoch_row`);
- the learning-rate schedule planned and completed, and what cut it short
  (:func:`schedule_record`);
- the wall time summed over every start of a resumed run (:class:`WallClock`);
- a bootstrap interval of a ratio of two per-map means, e.g. a model's MAE over the
  mean map's on the same maps (:func:`bootstrap_ratio`).

:func:`epic_zoo.run.train` writes them to ``results.json``; ``compare`` and the
hub's run-folder reader read them back.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from epic_zoo.data.datamodule import FWIDataModule
from epic_zoo.data.transforms import VELOCITY_SCALE_MS
from epic_zoo.models.baselines import LEARNS_RATIO, MeanMap, learns
from epic_zoo.plots import learning_curve_figure, save_figure
from epic_zoo.provenance import utc_now
from epic_zoo.run_layout import CURVE_FILE, RESULTS_FILE, WALL_FILE
from epic_zoo.tasks.inversion import VelocityTask


class WallClock(pl.Callback):
    """Wall time of a run summed over its starts (a killed run resumed from ``last.ckpt``).

    Each start is one segment in ``{run_dir}/wall_time.json``; the current
    segment's elapsed time is written at every epoch end, so a killed start
    keeps the time of the epochs it finished (the unfinished epoch, which the
    resume repeats, is not counted). A fresh (not resumed) run starts a new file.
    """

    def __init__(self, run_dir: Path, started: float, resumed: bool) -> None:
        self.path = Path(run_dir) / WALL_FILE
        self.started = started
        prior: list[dict[str, Any]] = []
        if resumed and self.path.is_file():
            try:
                prior = list(json.loads(self.path.read_text())["segments"])
            except (ValueError, KeyError, TypeError):
                prior = []  # an unreadable record loses only the earlier starts' time
        self.segments = prior + [{"started": utc_now(), "elapsed_s": 0.0}]

    def update(self) -> None:
        """Record the current start's elapsed time."""
        self.segments[-1]["elapsed_s"] = round(time.time() - self.started, 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"segments": self.segments}, indent=2) + "\n")
        tmp.replace(self.path)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.update()

    def total_s(self) -> float:
        """Seconds over every start, the current one up to now."""
        self.update()
        return round(sum(float(s["elapsed_s"]) for s in self.segments), 1)


def velocities(loader: Iterable[Mapping[str, torch.Tensor]]) -> Iterator[torch.Tensor]:
    """The ``velocity`` tensors ``[B, 1, 70, 70]`` of a loader's batches."""
    for batch in loader:
        yield batch["velocity"]


def data_provenance(datamodule: FWIDataModule, seed: int | None = None) -> dict[str, Any]:
    """Where a fitted baseline's (or a run's) data came from (:meth:`~epic_zoo.data.datamodule.SplitDataModule.provenance`)."""
    return datamodule.provenance(seed)


def mean_map_baseline(datamodule: FWIDataModule) -> dict[str, float]:
    """The ``mean-map`` baseline's MAE on the run's test split (normalised and m/s).

    The map is the mean of the training split's velocities, as
    :class:`epic_zoo.models.MeanMap` fits it; scored on the same test samples
    the model is tested on.
    """
    baseline = MeanMap(time_samples=datamodule.time_samples).fit(
        velocities(datamodule.train_dataloader())
    )
    total, count = 0.0, 0
    for velocity in velocities(datamodule.test_dataloader()):
        total += float((velocity - baseline.velocity).abs().sum())
        count += velocity.numel()
    mae = total / max(count, 1)
    return {"mae": mae, "mae_ms": mae * VELOCITY_SCALE_MS}


def baseline_evidence(
    metrics: Mapping[str, float], baseline: Mapping[str, float]
) -> dict[str, Any]:
    """The mean-map comparison stored as ``results.json``'s ``baseline`` (``{}`` without test MAE).

    ``mean_map_mae`` (normalised) and ``mean_map_mae_ms``, the run's test MAE
    as a multiple of it (``mae_ratio_to_mean_map``) and the verdict
    (``learns``: :func:`epic_zoo.models.learns`) with its rule.
    """
    if not baseline or "test/mae" not in metrics:
        return {}
    ratio = metrics["test/mae"] / baseline["mae"] if baseline["mae"] else float("nan")
    return {
        "mean_map_mae": baseline["mae"],
        "mean_map_mae_ms": baseline["mae_ms"],
        "mae_ratio_to_mean_map": ratio,
        "learns": learns(metrics["test/mae"], baseline["mae"]),
        "learns_rule": f"test MAE <= {LEARNS_RATIO} x mean-map MAE on the same test data",
    }


def read_learning_curve(run_dir: Path, samples_per_epoch: int) -> list[dict[str, float]]:
    """Validation and training metrics per epoch from the CSV logs (all versions, resumes included).

    Each row: ``epoch``, ``samples_seen`` (``(epoch + 1) x samples_per_epoch``),
    ``step``, every ``val/...`` metric logged at that epoch and the epoch means
    of the ``train/...`` metrics (train mode: dropout on, batch statistics), so
    a reader can tell under-fitting (train MAE near val MAE) from over-fitting.
    Later versions win where a resumed run repeated an epoch; epochs without a
    validation pass are left out.
    """
    val: dict[int, dict[str, float]] = {}
    train: dict[int, dict[str, float]] = {}
    for path in sorted((run_dir / "csv").glob("version_*/metrics.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if not row.get("epoch"):
                    continue
                epoch = int(float(row["epoch"]))
                if row.get("val/mae"):
                    entry = {
                        "epoch": epoch,
                        "samples_seen": (epoch + 1) * int(samples_per_epoch),
                        "step": int(float(row.get("step") or 0)),
                    }
                    entry.update(
                        {
                            k: float(v)
                            for k, v in row.items()
                            if k.startswith("val/") and v not in ("", None)
                        }
                    )
                    val[epoch] = entry
                epoch_means = {
                    k: float(v)
                    for k, v in row.items()
                    if k.startswith("train/") and not k.endswith("_step") and v not in ("", None)
                }
                if epoch_means:
                    train[epoch] = epoch_means
    return [{**val[e], **train.get(e, {})} for e in sorted(val)]


def copy_run_records(run: Path, dest: Path, prefixes: Iterable[str], logs: bool = True) -> None:
    """Copy a run's records to ``dest`` for committing, machine folders replaced by ``runs/``.

    Copies ``results.json``, the learning curve (``.csv``, ``.png``) and, with ``logs``, the
    per-epoch CSV logs (``csv/version_*/metrics.csv``: training metrics too); in the JSON and
    CSV text every ``prefix + "/"`` of ``prefixes`` becomes ``runs/``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in (RESULTS_FILE, f"{CURVE_FILE}.csv", f"{CURVE_FILE}.png"):
        src = run / name
        if not src.is_file():
            continue
        if name.endswith(".png"):
            shutil.copyfile(src, dest / name)
            continue
        text = src.read_text()
        for prefix in prefixes:
            text = text.replace(prefix + "/", "runs/")
        (dest / name).write_text(text)
    for log in sorted(run.glob("csv/version_*/metrics.csv")) if logs else []:
        (dest / log.parent.relative_to(run)).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, dest / log.relative_to(run))


def save_learning_curve(
    run_dir: Path, curve: list[dict[str, float]], title: str, mean_map_mae_ms: float | None
) -> Path | None:
    """Write ``learning_curve.csv`` and ``learning_curve.png`` (val MAE in m/s vs samples seen)."""
    if not curve:
        return None
    keys = list(dict.fromkeys(k for row in curve for k in row))
    with (run_dir / f"{CURVE_FILE}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(curve)
    curves = {
        f"{title} (validation, eval mode)": [
            (r["samples_seen"], r.get("val/mae_ms", r["val/mae"] * VELOCITY_SCALE_MS))
            for r in curve
        ],
        "training (epoch mean, train mode)": [
            (r["samples_seen"], r["train/mae_ms"]) for r in curve if "train/mae_ms" in r
        ],
    }
    fig = learning_curve_figure(
        curves,
        mean_map_mae_ms=mean_map_mae_ms,
        title=title,
    )
    return save_figure(fig, run_dir / f"{CURVE_FILE}.png")


def schedule_record(trainer: pl.Trainer, task: VelocityTask, stopped_early: bool) -> dict[str, Any]:
    """Planned and completed optimiser steps, and what (if anything) cut the run short."""
    planned = trainer.estimated_stepping_batches if trainer.num_training_batches else 0
    planned = int(planned) if math.isfinite(planned) else None
    done = int(trainer.global_step)
    cut = None
    if planned is not None and done < planned:
        timer = next((c for c in trainer.callbacks if type(c).__name__ == "Timer"), None)
        if timer is not None and timer.time_remaining() is not None and timer.time_remaining() <= 0:
            cut = "time cap (trainer.max_time)"
        elif stopped_early:
            cut = "early stopping"
        else:
            cut = "stopped before the planned steps"
    return {
        "scheduler": task.hparams.get("scheduler"),
        "lr": task.hparams.get("lr"),
        "warmup_steps": task.hparams.get("warmup_steps"),
        "warmup_fraction": task.hparams.get("warmup_fraction"),
        "planned_steps": planned,
        "steps": done,
        "complete": cut is None,
        "cut_short_by": cut,
    }


def best_epoch_row(
    curve: Sequence[Mapping[str, float]], monitor: str, mode: str
) -> Mapping[str, float] | None:
    """The learning-curve row of the selected checkpoint: best ``monitor`` (first of ties)."""
    rows = [r for r in curve if isinstance(r.get(monitor), (int, float))]
    if not rows:
        return None
    pick = min if mode == "min" else max
    return pick(rows, key=lambda r: r[monitor])


def per_dataset_evidence(model: torch.nn.Module, datamodule: Any) -> dict[str, dict[str, Any]]:
    """Test metrics and mean-map evidence of a union model on each member dataset.

    ``datamodule`` is a set-up :class:`~epic_zoo.data.union.UnionDataModule`;
    ``model`` maps normalised seismic ``[B, 5, T, 70]`` to normalised velocity
    ``[B, 1, 70, 70]``. Each member's test split is scored on its own, beside
    the mean map of that member's own training split (the baseline its
    specialist is judged by). Returns ``{dataset: {"metrics": {"test/mae_ms":
    ...}, "baseline": ...}}`` (see :func:`baseline_evidence`).
    """
    from epic_zoo.metrics import inversion_metrics
    from epic_zoo.tables import ordered_metrics

    was_training = model.training
    model.eval()
    device = next(model.parameters(), torch.zeros(())).device
    out: dict[str, dict[str, Any]] = {}
    try:
        for name, member in datamodule.members.items():
            metrics = inversion_metrics("test/").to(device)
            with torch.inference_mode():
                for batch in member.test_dataloader():
                    metrics.update(model(batch["seismic"].to(device)), batch["velocity"].to(device))
            values = ordered_metrics({k: float(v) for k, v in metrics.compute().items()})
            out[name] = {
                "metrics": values,
                "test_samples": len(member.test_dataloader().dataset),
                "baseline": baseline_evidence(values, mean_map_baseline(member)),
            }
    finally:
        model.train(was_training)
    return out


def bootstrap_ratio(
    numerator: np.ndarray,
    denominator: np.ndarray,
    level: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap interval (percentile, maps resampled in pairs) of ``mean(numerator) / mean(denominator)``."""
    numerator, denominator = np.asarray(numerator), np.asarray(denominator)
    n = len(numerator)
    pick = np.random.default_rng(seed).integers(0, n, (resamples, n))
    ratios = numerator[pick].mean(1) / denominator[pick].mean(1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(ratios, tail)), float(np.percentile(ratios, 100 - tail))

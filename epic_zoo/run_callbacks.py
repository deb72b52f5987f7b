"""The Lightning callbacks and loggers of a run, built from the recipes' ``callbacks/`` and ``logger/`` groups.

Each entry of those config groups names its class with ``_target_`` and is
built by :func:`hydra.utils.instantiate` (:func:`instantiate_group`), the way
lightning-hydra-template builds its callbacks and loggers. ``${run_dir}`` in
an entry is the run's own folder (Hydra's job folder in a ``-m`` sweep); an
entry set to ``null`` or with ``enabled: false`` is left out.

The classes here are the run's own parts: :class:`EpochSeed` (every epoch's
randomness a function of ``(seed, epoch)``), :class:`RunCSVLogger` (CSV
metrics that name the run's seed) and :class:`RunConfigWandbLogger` (W&B with
the composed config logged once, offline unless logged in, resumable by a
stored run id), and :func:`finish_wandb_run`, which points the W&B summary at
the tested checkpoint.

Which callback settings change a result: the best checkpoint's ``monitor``
and ``mode`` (which weights are tested), early stopping and the epoch seed.
Their entries read ``checkpoint.*``, ``early_stopping.*`` and ``seed``,
which name the run (:mod:`epic_zoo.run_identity`); the rest of these groups
does not (:data:`epic_zoo.run_identity.NON_RESULT_KEYS`), and
:func:`epic_zoo.config_schema.validate_config` refuses an override that cuts
such a link.
"""

from __future__ import annotations

import netrc
import os
import random
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import lightning.pytorch as pl
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf, open_dict

from epic_zoo.evidence import best_epoch_row

WANDB_ID_FILE = "wandb_run_id"
"""File in the run folder that keeps the W&B run id, so a resumed run continues it."""


def instantiate_group(
    cfg: DictConfig,
    group: str,
    run_dir: Path,
    runtime: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Any]:
    """Every entry of config group ``group`` that has a ``_target_``, built in order.

    Args:
        cfg: the composed run configuration.
        group: ``"callbacks"`` or ``"logger"``.
        run_dir: the run's folder; ``${run_dir}`` in an entry resolves to it.
        runtime: extra constructor arguments per entry name, known only when
            the run starts (e.g. the W&B logger's ``run_config``).
    """
    local = cfg.copy()
    with open_dict(local):
        local.run_dir = str(run_dir)
    entries = OmegaConf.to_container(local[group], resolve=True) if local.get(group) else {}
    built = []
    for name, entry in dict(entries or {}).items():
        if not isinstance(entry, dict) or "_target_" not in entry:
            continue
        if not entry.pop("enabled", True):
            continue
        extra = (runtime or {}).get(name)
        # run-time arguments are passed as they are (a plain config holding _target_ nodes
        # would be instantiated by Hydra's recursion)
        built.append(instantiate(entry, _partial_=True)(**extra) if extra else instantiate(entry))
    return built


# ------------------------------------------------------------------- callbacks
def epoch_seed(seed: int, epoch: int) -> int:
    """The RNG seed of training epoch ``epoch`` of a run seeded ``seed`` (32-bit)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])


def seed_epoch(seed: int, epoch: int) -> None:
    """Seed python, numpy and torch for training epoch ``epoch`` (DataLoader workers follow torch).

    Unlike ``seed_everything`` this leaves ``PL_GLOBAL_SEED`` at the run's
    seed, which Lightning gives the ``DistributedSampler`` under DDP.
    """
    value = epoch_seed(seed, epoch)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


class EpochSeed(Callback):
    """Make every training epoch's randomness a function of ``(seed, epoch)`` alone.

    Shuffling, dropout and device dropout of epoch ``e`` then do not depend on
    what ran before, so a run resumed from a checkpoint takes exactly the path
    of an uninterrupted one. Lightning draws an epoch's shuffle when it creates
    the DataLoader iterator: for later epochs after ``on_train_epoch_start``
    (seeded here), for the first epoch of a fit before any hook, so
    :func:`epic_zoo.run.train` seeds that one (:func:`seed_epoch`) just before ``fit``.

    Under DDP the shuffle comes from Lightning's ``DistributedSampler``
    (seeded by the run's seed and the epoch); Lightning 2.6 makes the first
    resumed epoch's iterator before it sets the sampler's epoch, so that one
    epoch replays epoch 0's order (Lightning issue #21938): a resumed DDP
    run is close to, not identical with, an uninterrupted one.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._first_epoch: int | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._first_epoch = trainer.current_epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch != self._first_epoch:
            seed_epoch(self.seed, trainer.current_epoch)


# --------------------------------------------------------------------- loggers
class RunCSVLogger(CSVLogger):
    """:class:`CSVLogger` whose ``hparams.yaml`` names the run's seed (``run_seed``).

    :mod:`epic_zoo.compare` reads the seed there for runs without ``results.json``.
    """

    def __init__(self, save_dir: str | Path, seed: int, name: str = "csv", **kwargs: Any) -> None:
        super().__init__(save_dir=save_dir, name=name, **kwargs)
        self.log_hyperparams({"run_seed": int(seed)})


def _wandb_logged_in() -> bool:
    """Whether W&B credentials are configured (``WANDB_API_KEY`` or a netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(requested: str | None = None) -> str:
    """``requested``, else ``$WANDB_MODE``, else ``online`` if logged in, else ``offline``."""
    if requested:
        return str(requested)
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if _wandb_logged_in() else "offline"


class RunConfigWandbLogger(WandbLogger):
    """:class:`WandbLogger` of one run folder whose run config is the composed Hydra config, logged once.

    The W&B run keeps its id in ``{save_dir}/wandb_run_id`` so a resumed run
    continues it; ``run_config`` is the run's configuration. ``mode`` ``None`` is decided by :func:`wandb_mode`. Lightning
    uploads no checkpoint (``log_model`` here means: :func:`finish_wandb_run`
    logs the tested checkpoint as a model artifact). Lightning also logs the
    task's and datamodule's ``save_hyperparameters`` (a flat copy of the same
    settings) through ``log_hyperparams``; here that call does nothing, so the
    W&B config holds one nested copy (``model.kwargs`` as the model was
    built, ``task.lr``, ``data.dataset``, ``seed``...). The CSV logger still
    writes the flat ``hparams.yaml``.
    """

    def __init__(
        self,
        save_dir: str | Path,
        *,
        run_config: Mapping[str, Any],
        tags: Sequence[Any] = (),
        mode: str | None = None,
        log_model: bool = False,
        **kwargs: Any,
    ) -> None:
        run_dir = Path(save_dir)
        id_file = run_dir / WANDB_ID_FILE
        if id_file.is_file():
            run_id = id_file.read_text().strip()
        else:
            run_id = secrets.token_hex(4)
            if pl.utilities.rank_zero_only.rank == 0:
                run_dir.mkdir(parents=True, exist_ok=True)
                id_file.write_text(run_id + "\n")
        super().__init__(
            save_dir=str(save_dir),
            tags=[str(t) for t in tags],
            id=run_id,
            resume="allow",
            mode=wandb_mode(mode),
            log_model=False,
            config=dict(run_config),
            **kwargs,
        )
        self.log_tested_checkpoint = bool(log_model)

    def log_hyperparams(self, params: Any) -> None:
        """Nothing: the run config was given at ``wandb.init`` (see the class docstring)."""
        return None


def finish_wandb_run(loggers: Sequence[Logger], summary: Mapping[str, Any]) -> dict[str, Any]:
    """Point the W&B run's summary at the tested checkpoint; optionally log it as an artifact.

    W&B keeps the last logged value of every key, i.e. the last epoch's
    ``val/*``. The checkpoint that was tested is the best by
    ``checkpoint_monitor``: its epoch's ``val/*`` replace them, next to
    ``best/epoch``, ``best/samples_seen``, ``samples_seen`` and the mean-map
    baseline (``baseline/mean_map_mae_ms``, ``baseline/mae_ratio_to_mean_map``,
    ``baseline/learns``). The ``test/*`` summary already is the tested
    checkpoint's. With ``logger.wandb.log_model`` the checkpoint file becomes
    a ``model`` artifact (aliases ``best`` and ``seed-N``; metadata: test
    metrics, epoch, recipe, dataset). Returns what was written (``{}``
    without a W&B logger).
    """
    wandb_loggers = [lg for lg in loggers if isinstance(lg, WandbLogger)]
    if not wandb_loggers:
        return {}
    run = wandb_loggers[0].experiment
    values: dict[str, Any] = {"samples_seen": summary.get("samples_seen")}
    row = best_epoch_row(
        summary.get("learning_curve") or [],
        summary.get("checkpoint_monitor", "val/mae"),
        summary.get("checkpoint_mode", "min"),
    )
    if row is not None:
        values.update({k: v for k, v in row.items() if k.startswith("val/")})
        values["best/epoch"] = int(row["epoch"])
        values["best/samples_seen"] = int(row["samples_seen"])
    baseline = summary.get("baseline") or {}
    for key in ("mean_map_mae", "mean_map_mae_ms", "mae_ratio_to_mean_map", "learns"):
        if key in baseline:
            values[f"baseline/{key}"] = baseline[key]
    run.summary.update(values)
    written: dict[str, Any] = {"summary": values}
    checkpoint = Path(summary.get("checkpoint") or "")
    log_model = bool(getattr(wandb_loggers[0], "log_tested_checkpoint", False))
    if log_model and checkpoint.is_file():
        import wandb

        metadata = {
            "recipe": summary.get("recipe"),
            "model": summary.get("model"),
            "dataset": summary.get("dataset"),
            "seed": summary.get("seed"),
            "epoch": values.get("best/epoch"),
            "checkpoint_monitor": summary.get("checkpoint_monitor"),
            **summary.get("metrics", {}),
        }
        artifact = wandb.Artifact(
            f"model-{run.id}", type="model", metadata=metadata, description=str(checkpoint.name)
        )
        artifact.add_file(str(checkpoint), name=checkpoint.name)
        run.log_artifact(artifact, aliases=["best", f"seed-{summary.get('seed')}"])
        written["artifact"] = artifact
    return written


def close_loggers(loggers: Sequence[Logger]) -> None:
    """Finish the W&B run, if any (called even when training fails)."""
    if any(isinstance(lg, WandbLogger) for lg in loggers):
        import wandb

        wandb.finish()

"""Train, validate and test one model on one dataset: ``python -m epic_zoo.run recipe=NAME``.

Hydra composes the configuration from the tree in ``recipes/`` (shipped
inside the package as ``epic_zoo/recipes``): ``config.yaml`` plus the groups
``recipe/`` (what an experiment changes), ``data/``, ``model/``, ``task/``,
``trainer/``, ``logger/`` and the shared ``scale/`` settings. Examples::

    python -m epic_zoo.run recipe=quickstart
    python -m epic_zoo.run recipe=epic_lite data.dataset=curvevel-a logger=wandb
    python -m epic_zoo.run -m recipe=epic_lite,inversionnet_lite data.dataset=flatvel-a,style-a
    python -m epic_zoo.run recipe=epic trainer=ddp trainer.devices=4

One way through: :func:`train` builds the
:class:`~epic_zoo.data.datamodule.FWIDataModule`, the task (which builds the
model by name), the loggers and callbacks, fits, tests the best checkpoint,
prints the test metrics and writes them to ``{run_dir}/results.json``.

A run lives in ``run_dir`` (default ``runs/{recipe}/{dataset}/seed{seed}-{hash}``,
the hash naming every result-affecting setting; in a ``-m`` sweep
``multirun/{recipe}/{overrides}``): ``run_config.json`` (the configuration,
written before training), ``checkpoints/last.ckpt`` and ``best-*.ckpt``, CSV
logs under ``csv/version_N/`` (one version per start), velocity panels,
optional ``wandb/``. A folder holds one configuration
(:mod:`epic_zoo.run_identity`): starting the same configuration again
continues it from ``checkpoints/last.ckpt`` (the same result as an
uninterrupted run), or reports a finished run without training; another
configuration (seed, overrides, a longer schedule) is refused in one line.
``resume=false`` moves an existing run aside (``{run_dir}.replaced-{time}``)
and starts afresh: nothing is overwritten.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from epic_zoo import branch
from epic_zoo.config_schema import (
    ConfigError,
    check_overrides,
    explicit_model_kwargs,
    normalise_overrides,
    validate_config,
)
from epic_zoo.data.datamodule import FWIDataModule
from epic_zoo.data.profiles import Profile, get_profile
from epic_zoo.data.union import UnionDataModule, union_names
from epic_zoo.evidence import (
    WallClock,
    baseline_evidence,
    best_epoch_row,
    mean_map_baseline,
    per_dataset_evidence,
    read_learning_curve,
    save_learning_curve,
    schedule_record,
    velocities,
)
from epic_zoo.finetune import pretrained_init
from epic_zoo.models import list_models
from epic_zoo.models.baselines import LEARNS_RATIO
from epic_zoo.provenance import git_commit
from epic_zoo.run_callbacks import (
    close_loggers,
    finish_wandb_run,
    instantiate_group,
    seed_epoch,
)
from epic_zoo.run_identity import (
    check_run_folder,
    config_hash,
    write_run_config,
)
from epic_zoo.run_layout import CHECKPOINT_DIR, LAST_CHECKPOINT, RESULTS_FILE, RUN_CONFIG_FILE
from epic_zoo.run_record import RunRecord, read_run_record, write_run_record
from epic_zoo.tables import format_table, ordered_metrics
from epic_zoo.tasks.inversion import VelocityTask, to_plain

HELP_RECIPE = "quickstart"
"""Recipe whose configuration ``--help`` shows when none is given."""


def _split_overrides(overrides: str) -> list[str]:
    """``"a=1,b={x:1,y:2}"`` -> ``["a=1", "b={x:1,y:2}"]`` (commas inside brackets/quotes kept)."""
    items, depth, quote, current = [], 0, "", []
    for char in overrides:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
        elif char == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    if current:
        items.append("".join(current))
    return items


def _short_value(value: str) -> str:
    """A dict or list value -> its ``name`` (if any) and a 6-character hash; others unchanged."""
    if value[:1] not in ("{", "["):
        return value
    digest = hashlib.sha1(value.encode()).hexdigest()[:6]
    name = next(
        (
            item.split(":", 1)[1].strip("'\" ")
            for item in _split_overrides(value[1:-1])
            if item.split(":", 1)[0].strip() == "name" and ":" in item
        ),
        "",
    )
    return f"{name}-{digest}" if name else digest


def job_dirname(overrides: str) -> str:
    """Folder name of a sweep job from Hydra's ``override_dirname`` (``a=1,b=2``).

    Each ``key=value`` keeps its key and value, except that a mapping or list
    value (``data.profile={name:lite,train:300,...}``) becomes its ``name`` and
    a 6-character hash (``data.profile=lite-1a2b3c``). Path separators and
    ``:`` become ``_``; names still over 100 characters keep their first 80
    and a hash of the whole. Every job gets a distinct, valid, stable name (a
    rerun sweep finds its folders again). Registered as the OmegaConf resolver
    ``epic_zoo_dirname`` used by ``hydra.sweep.subdir``.
    """
    parts = []
    for item in _split_overrides(overrides):
        key, sep, value = item.partition("=")
        parts.append(f"{key}{sep}{_short_value(value)}" if sep else item)
    name = ",".join(parts).replace(os.sep, "_").replace(":", "_") or "defaults"
    if len(name) > 100:
        name = f"{name[:80]}-{hashlib.sha1(name.encode()).hexdigest()[:10]}"
    return name


OmegaConf.register_new_resolver("epic_zoo_dirname", job_dirname, replace=True)


def _config_hash_resolver(*, _root_: DictConfig) -> str:
    """``${epic_zoo_config_hash:}``: :func:`~epic_zoo.run_identity.config_hash` of the composed config.

    The default ``run_dir`` ends in ``seed{seed}-{hash}``, so a start with
    another seed or any other result-affecting override gets its own folder
    (the seeds of one setting share the hash). ``run_dir``, ``seed`` and
    Hydra's own node are left out of the hash.
    """
    plain = OmegaConf.to_container(_root_, resolve=False)
    plain.pop("hydra", None)
    plain["run_dir"] = ""
    resolved = OmegaConf.to_container(OmegaConf.create(plain), resolve=True)
    return config_hash(resolved, leave_out=("seed",))


OmegaConf.register_new_resolver("epic_zoo_config_hash", _config_hash_resolver, replace=True)


def config_dir() -> Path:
    """The recipes folder: the package's ``epic_zoo/recipes`` or, failing that, the repo's ``recipes/``.

    In a checkout ``epic_zoo/recipes`` is a symlink to the top-level
    ``recipes/``; an installed wheel carries a copy.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "recipes", here.parent / "recipes"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"no recipes/config.yaml next to {here}; reinstall epic_zoo (`pip install -e .` "
        "in a checkout) so the Hydra config tree ships with the package"
    )


def available_recipes() -> list[str]:
    """Names accepted by ``recipe=NAME``."""
    return sorted(p.stem for p in (config_dir() / "recipe").glob("*.yaml"))


# ------------------------------------------------------------------------ data
def data_profile(value: str | Mapping[str, Any]) -> Profile:
    """A profile name (``tiny``/``lite``/``full``) or a mapping of :class:`Profile` fields."""
    if isinstance(value, str):
        return get_profile(value)
    fields = {f.name for f in dataclasses.fields(Profile)}
    unknown = sorted(set(value) - fields)
    if unknown or "name" not in value:
        raise ValueError(
            f"data.profile mapping {dict(value)} is not a profile: give a name "
            f"(tiny, lite, full) or a mapping with 'name' and only these fields: "
            f"{', '.join(sorted(fields))} (unknown: {', '.join(unknown) or 'none'})"
        )
    return Profile(**value)


def build_datamodule(data_cfg: Mapping[str, Any]) -> FWIDataModule | UnionDataModule:
    """:class:`FWIDataModule` from the ``data`` config group (a union for ``dataset=all`` or a list)."""
    kwargs = dict(to_plain(data_cfg))
    kwargs["profile"] = data_profile(kwargs["profile"])
    if union_names(kwargs["dataset"]) is not None:
        return UnionDataModule(**kwargs)
    return FWIDataModule(**kwargs)


# ----------------------------------------------------------------------- model
def model_kwargs_for(model_cfg: Mapping[str, Any], datamodule: FWIDataModule) -> dict[str, Any]:
    """The model's constructor kwargs: ``model.kwargs`` plus what the data decide.

    ``time_samples`` (records' time length) and ``num_devices`` come from the
    data's input contract (``datamodule.contract``) unless ``model.kwargs`` sets them; a value that contradicts the data
    raises ``ValueError`` naming the fix.
    """
    name = model_cfg["name"]
    registered = list_models()
    if name not in registered:
        close = difflib.get_close_matches(name, registered, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown model.name={name!r}.{hint} Registered models: {', '.join(registered)}. "
            "Choose one with model=FILE (recipes/model/) or model.name=NAME."
        )
    kwargs = explicit_model_kwargs(name, to_plain(model_cfg.get("kwargs") or {}))
    contract = (  # a union normalises each dataset with its own range, on one time axis and split
        next(iter(datamodule.contracts.values()))
        if isinstance(datamodule, UnionDataModule)
        else datamodule.contract
    )
    return contract.model_inputs(kwargs)


def resume_epoch(checkpoint: Path, task: VelocityTask, run_dir: Path) -> int:
    """The epoch a run continues at from ``checkpoint`` (saved at the end of an epoch).

    Raises ``ValueError`` if the checkpoint was trained with another model or size.
    """
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    hparams = saved.get("hyper_parameters", {})
    mine = (task.hparams.model_name, to_plain(task.hparams.model_kwargs))
    theirs = (hparams.get("model_name"), hparams.get("model_kwargs"))
    if mine != theirs:
        raise ValueError(
            f"{checkpoint} continues a run of model {theirs[0]!r} {theirs[1]}, but this run "
            f"builds {mine[0]!r} {mine[1]}. Resume with the same model settings, or start "
            f"elsewhere with run_dir=NEW_DIR (or delete {run_dir}, or set resume=false)."
        )
    return int(saved.get("epoch", -1)) + 1


def architecture_kwargs(model: torch.nn.Module) -> dict[str, Any]:
    """Every constructor argument of ``model`` as built (``model.config`` without its name).

    Defaults included, so the logged config (W&B, ``results.json``) states the
    whole architecture, not only what the recipe changed.
    """
    return {k: v for k, v in to_plain(getattr(model, "config", {}) or {}).items() if k != "name"}


def run_config(cfg: DictConfig, model_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The run's configuration as plain containers, with the model's kwargs as built.

    ``model_kwargs`` (from :func:`model_kwargs_for`: ``model.kwargs`` plus
    ``time_samples`` and ``num_devices`` taken from the data) replace
    ``model.kwargs``. This is the config W&B shows and ``results.json`` keeps.
    """
    config = to_plain(cfg)
    if model_kwargs is not None:
        config["model"] = {**config.get("model", {}), "kwargs": to_plain(model_kwargs)}
    return config


# --------------------------------------------------------- loggers, callbacks
def build_loggers(
    cfg: DictConfig, run_dir: Path, config: Mapping[str, Any] | None = None
) -> list[Logger]:
    """The loggers of config group ``logger`` (``recipes/logger/``): CSV always, W&B with ``logger=wandb``.

    Built by :func:`~epic_zoo.run_callbacks.instantiate_group`; the W&B
    run's config is ``config`` (default: the plain ``cfg``), logged once
    (:class:`~epic_zoo.run_callbacks.RunConfigWandbLogger`).
    """
    run_cfg = dict(config) if config is not None else to_plain(cfg)
    return instantiate_group(cfg, "logger", run_dir, {"wandb": {"run_config": run_cfg}})


def build_callbacks(
    cfg: DictConfig, run_dir: Path, clock: WallClock | None = None
) -> list[Callback]:
    """The callbacks of config group ``callbacks`` (``recipes/callbacks/``), then the wall clock.

    Best checkpoint (by ``checkpoint.monitor``), ``last.ckpt`` every epoch,
    LR monitor, epoch seeding, early stopping when enabled; the budget
    checkpoints and branch start are :func:`epic_zoo.branch.callbacks`.
    """
    callbacks: list[Callback] = instantiate_group(cfg, "callbacks", run_dir)
    return callbacks + ([clock] if clock is not None else [])


# ----------------------------------------------------------------------- train
def resolve_run_dir(cfg: DictConfig) -> Path:
    """The Hydra job's output folder when launched by Hydra (``-m`` gives one per job), else ``cfg.run_dir``."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.run_dir)


RUN_ARTEFACTS: tuple[str, ...] = (".hydra",)
"""Entries of a run folder that belong to the current start, not to a run (Hydra's own files)."""


def _run_entries(run_dir: Path) -> list[Path]:
    """What a previous run left in ``run_dir`` (Hydra's per-start files and logs excluded)."""
    if not run_dir.is_dir():
        return []
    return [
        p for p in sorted(run_dir.iterdir()) if p.name not in RUN_ARTEFACTS and p.suffix != ".log"
    ]


def move_run_aside(run_dir: Path) -> Path:
    """Move a previous run's files to ``{run_dir}.replaced-{UTC time}`` (a sibling); returns it."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    aside = run_dir.with_name(f"{run_dir.name}.replaced-{stamp}")
    suffix = 1
    while aside.exists():
        aside = run_dir.with_name(f"{run_dir.name}.replaced-{stamp}-{suffix}")
        suffix += 1
    aside.mkdir(parents=True)
    for entry in _run_entries(run_dir):
        entry.rename(aside / entry.name)
    return aside


def prepare_run_folder(
    run_dir: Path, config: Mapping[str, Any], resume: bool
) -> dict[str, Any] | None:
    """Make ``run_dir`` hold this configuration's run before anything trains.

    - empty or new folder: ``run_config.json`` is written;
    - ``resume=false`` and a previous run there: that run is moved aside
      (:func:`move_run_aside`), then as for a new folder;
    - ``resume=true``: the stored configuration must be this one
      (:func:`~epic_zoo.run_identity.check_run_folder` raises
      :class:`~epic_zoo.run_identity.RunIdentityError` otherwise). A finished
      run of the same configuration is not trained or tested again: its
      ``results.json`` is returned as it is.

    Returns the finished run's summary, else ``None`` (train). Only rank 0
    moves or writes files (other DDP ranks start after it).
    """
    rank_zero = pl.utilities.rank_zero_only.rank == 0
    if _run_entries(run_dir):
        if not resume:
            if rank_zero:
                aside = move_run_aside(run_dir)
                print(f"epic_zoo.run: resume=false: previous run moved to {aside}", flush=True)
        else:
            check_run_folder(run_dir, config)
            results = run_dir / RESULTS_FILE
            if results.is_file():
                finished = read_run_record(results)
                if finished.complete:
                    print(
                        f"epic_zoo.run: {run_dir} already holds this configuration's finished "
                        f"run; nothing trained (results: {results})",
                        flush=True,
                    )
                    return finished.to_dict()
    if rank_zero and not (run_dir / RUN_CONFIG_FILE).is_file():
        write_run_config(run_dir, config)
    return None


def build_task(cfg: DictConfig, datamodule: FWIDataModule | UnionDataModule) -> VelocityTask:
    """The task of config group ``task`` (``_target_``) with the model the data fix (and its init)."""
    init = pretrained_init(cfg.get("init_from"), cfg.model, datamodule)  # fine-tuning
    task: VelocityTask = instantiate(
        cfg.task,
        model_name=cfg.model.name,
        model_kwargs=model_kwargs_for(cfg.model, datamodule),
        _convert_="all",
    )
    if init is not None:
        init.load_into(task.model)
    return task


def resume_point(run_dir: Path, task: VelocityTask) -> tuple[Path | None, int]:
    """``(checkpoint to continue from, first epoch)``: ``checkpoints/last.ckpt`` if the run has one."""
    last = run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    if not last.is_file():
        return None, 0
    first_epoch = resume_epoch(last, task, run_dir)
    print(f"epic_zoo.run: resuming from {last} at epoch {first_epoch}", flush=True)
    return last, first_epoch


def fit(
    cfg: DictConfig,
    task: VelocityTask,
    trainer: pl.Trainer,
    datamodule: FWIDataModule | UnionDataModule,
    run_dir: Path,
    resume: tuple[Path | None, int],
) -> str:
    """Fit (an input-free baseline: fit its map); the best checkpoint's path (``""``: none)."""
    if getattr(task.model, "input_free", False):
        return fit_input_free(task, trainer, datamodule, run_dir, int(cfg.seed))
    ckpt_path, first_epoch = resume
    seed_epoch(cfg.seed, first_epoch)  # see EpochSeed
    trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    return trainer.checkpoint_callback.best_model_path  # the first ModelCheckpoint


def tested_metrics(
    task: VelocityTask,
    trainer: pl.Trainer,
    datamodule: FWIDataModule | UnionDataModule,
    best: str,
) -> dict[str, float]:
    """Test metrics of the best checkpoint (the final weights without one), in table order."""
    results = trainer.test(
        task, datamodule=datamodule, ckpt_path=best or None, verbose=False, weights_only=True
    )
    return ordered_metrics({k: float(v) for k, v in results[0].items()} if results else {})


def make_record(
    cfg: DictConfig,
    task: VelocityTask,
    trainer: pl.Trainer,
    datamodule: FWIDataModule | UnionDataModule,
    config: dict[str, Any],
    best: str,
    metrics: dict[str, float],
    clock: WallClock,
    started: float,
) -> tuple[RunRecord, list[dict[str, Any]]]:
    """The run's :class:`~epic_zoo.run_record.RunRecord` and its (unbranched) learning curve."""
    run_dir = Path(clock.path).parent
    last = run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    input_free = bool(getattr(task.model, "input_free", False))
    baseline = mean_map_baseline(datamodule) if cfg.test else {}
    train_samples = len(datamodule.train_dataloader().dataset)
    batches = trainer.num_training_batches
    samples_per_epoch = (
        min(train_samples, int(batches) * datamodule.batch_size)
        if batches and math.isfinite(batches)
        else train_samples
    )
    curve = [] if input_free else read_learning_curve(run_dir, samples_per_epoch)
    stopped_early = any(
        getattr(c, "stopped_epoch", 0) > 0
        for c in trainer.callbacks
        if isinstance(c, EarlyStopping)
    )
    schedule = (
        {"planned_steps": 0, "steps": 0, "complete": True, "cut_short_by": None}
        if input_free
        else schedule_record(trainer, task, stopped_early)
    )
    record = RunRecord(
        recipe=cfg.recipe_name,
        dataset=datamodule.dataset_name,
        model=cfg.model.name,
        task=type(task).__name__,
        seed=int(cfg.seed),
        data=datamodule.run_record(),
        epochs=int(trainer.current_epoch),
        global_step=int(trainer.global_step),
        train_samples=train_samples,
        samples_per_epoch=samples_per_epoch,
        samples_seen=0 if input_free else int(trainer.current_epoch) * samples_per_epoch,
        schedule=schedule,
        checkpoint_monitor=str(cfg.checkpoint.monitor),
        checkpoint_mode=str(cfg.checkpoint.mode),
        baseline=baseline_evidence(metrics, baseline),
        run_dir=str(run_dir),
        best_checkpoint=str(best),
        checkpoint=str(best or (last if last.is_file() else "")),
        metrics=metrics,
        learning_curve=curve,
        wall_time_s=(
            clock.total_s() if trainer.is_global_zero else round(time.time() - started, 1)
        ),
        wall_time_starts=len(clock.segments),
        torch=torch.__version__,
        lightning=pl.__version__,
        commit=git_commit() or "unknown",
        config=config,
        identity_hash=config_hash(config),
    )
    summary = branch.annotate(record.to_dict(), cfg)
    if isinstance(datamodule, UnionDataModule) and cfg.test:  # the tested weights per dataset
        summary["per_dataset"] = per_dataset_evidence(task.model, datamodule)
    return RunRecord.from_dict(summary, str(run_dir / RESULTS_FILE)), curve


def report(
    record: RunRecord,
    curve: list[dict[str, Any]],
    datamodule: FWIDataModule | UnionDataModule,
) -> None:
    """Write the learning curve and print the test metrics, the baseline verdict, a cut schedule."""
    run_dir, metrics, evidence = Path(str(record.run_dir)), record.metrics, record.baseline
    save_learning_curve(
        run_dir,
        curve,
        f"{record.model} on {record.dataset} (seed {record.seed})",
        evidence.get("mean_map_mae_ms"),
    )
    if metrics:
        best = record.best_checkpoint
        source = f"best checkpoint {Path(best).name}" if best else "final weights"
        print(f"\nTest metrics of {run_dir} ({source}):")
        print(format_table({str(run_dir): metrics}, transpose=True))
    if evidence:
        verdict = "learns" if evidence["learns"] else "does NOT learn"
        print(
            "mean-map baseline (input-free) on the same "
            f"{len(datamodule.test_dataloader().dataset)} "
            f"test maps: MAE {evidence['mean_map_mae_ms']:.1f} m/s; this model: "
            f"{metrics['test/mae_ms']:.1f} m/s = {evidence['mae_ratio_to_mean_map']:.2f} x "
            f"the mean map -> {verdict} (rule: <= {LEARNS_RATIO} x)"
        )
    schedule = record.schedule
    if not schedule["complete"]:
        print(
            f"WARNING: the run stopped at step {schedule['steps']} of "
            f"{schedule['planned_steps']} planned ({schedule['cut_short_by']}): "
            "its learning-rate schedule did not finish"
        )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then test the best checkpoint; returns the run summary.

    The summary (also written to ``{run_dir}/results.json`` by rank 0) is a
    :class:`~epic_zoo.run_record.RunRecord`: ``metrics`` (``{"test/ssim":
    ...}``), ``checkpoint`` (best, else last), ``best_checkpoint``,
    ``run_dir``, ``recipe``, ``dataset``, ``model``, ``epochs``, the data
    levers, the wall time and ``config`` (the composed config with the
    model's kwargs as built; :mod:`epic_zoo.compare` groups runs whose
    configs differ only by seed). The test metrics are also printed as a
    table. W&B (if used) gets the same config once, a summary that is the
    tested checkpoint's (:func:`~epic_zoo.run_callbacks.finish_wandb_run`)
    and is always finished, even when training fails.
    """
    started = time.time()
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    run_dir = resolve_run_dir(cfg)
    cfg = branch.prepare(cfg, run_dir)  # a decay branched from a WSD budget checkpoint
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg.data)
    task = build_task(cfg, datamodule)
    config = run_config(cfg, architecture_kwargs(task.model))
    finished = prepare_run_folder(run_dir, config, bool(cfg.resume))
    if finished is not None:
        return finished
    resume = resume_point(run_dir, task)
    loggers = build_loggers(cfg, run_dir, config)
    clock = WallClock(run_dir, started, resumed=resume[0] is not None)
    trainer = pl.Trainer(
        **to_plain(cfg.trainer),
        default_root_dir=run_dir,
        logger=loggers,
        callbacks=build_callbacks(cfg, run_dir, clock) + branch.callbacks(cfg, run_dir),
    )
    try:
        best = fit(cfg, task, trainer, datamodule, run_dir, resume)
        metrics = tested_metrics(task, trainer, datamodule, best) if cfg.test else {}
        record, curve = make_record(
            cfg, task, trainer, datamodule, config, best, metrics, clock, started
        )
        if trainer.is_global_zero:
            finish_wandb_run(loggers, record.to_dict())
            write_run_record(run_dir, record)
            report(record, curve, datamodule)
        return record.to_dict()
    finally:
        close_loggers(loggers)


def fit_input_free(
    task: VelocityTask, trainer: pl.Trainer, datamodule: FWIDataModule, run_dir: Path, seed: int
) -> str:
    """Fit an input-free baseline (``mean-map``, ``constant``) on the training split.

    Nothing is optimised: the map is computed from the training velocities,
    validated once (so its ``val/`` metrics are logged like a model's) and
    saved as the run's best checkpoint, whose path is returned.
    """
    datamodule.prepare_data()
    datamodule.setup("fit")
    task.model.fit(velocities(datamodule.train_dataloader()), **datamodule.provenance())
    task.hparams["model_kwargs"] = {
        **task.hparams["model_kwargs"],
        "fitted_on": task.model.config["fitted_on"],
    }
    trainer.validate(task, datamodule=datamodule, verbose=False)
    path = run_dir / CHECKPOINT_DIR / "best-fitted.ckpt"
    trainer.save_checkpoint(path, weights_only=False)
    return str(path)


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """The configuration ``python -m epic_zoo.run OVERRIDES`` runs (Hydra's compose API)."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=normalise_overrides(overrides))


def train_from_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """:func:`train` on the configuration of ``overrides``, as the command line would compose it.

    E.g. ``["recipe=epic", "scale=lite", "data.dataset=curvevel-a"]`` from a
    script (``benchmarks/train_zoo.py``). Runs go to ``run_dir`` (no Hydra
    output folder).
    """
    return train(compose_config(overrides))


def monitored_value(summary: Mapping[str, Any]) -> float:
    """The tested checkpoint's ``checkpoint.monitor`` value (validation, e.g. ``val/mae``).

    What an optimising sweeper (Optuna's) minimises or maximises: the value
    the checkpoint was selected by, never a test metric. NaN when the run has
    no learning curve (input-free baselines).
    """
    monitor = str(summary.get("checkpoint_monitor", "val/mae"))
    row = best_epoch_row(
        summary.get("learning_curve") or [], monitor, str(summary.get("checkpoint_mode", "min"))
    )
    return float(row[monitor]) if row is not None else math.nan


def _hydra_main(cfg: DictConfig) -> float:
    """The Hydra task function: trains, returns :func:`monitored_value` (``train`` returns the summary).

    Expected failures (bad settings, missing data, a run folder of another
    configuration) print one ``error:`` line and exit with status 2.
    """
    try:
        validate_config(cfg)
        return monitored_value(train(cfg))
    except (ValueError, FileNotFoundError) as err:  # ConfigError, DataError, RunIdentityError
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        raise SystemExit(2) from None


def main() -> None:
    """Console entry point (``python -m epic_zoo.run`` / ``epic-zoo-run``)."""
    args = sys.argv[1:] = normalise_overrides(sys.argv[1:])
    try:
        check_overrides(args, compose_config)
    except ConfigError as err:  # one line, before Hydra prints a multi-line report
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if {"--help", "-h"} & set(args) and not any(a.startswith("recipe=") for a in args):
        # Hydra composes the config to print help; show the quick start's.
        sys.argv.append(f"recipe={HELP_RECIPE}")
    hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(
        _hydra_main
    )()


if __name__ == "__main__":
    main()

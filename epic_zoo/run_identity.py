"""Run identity: which configuration a run folder holds, and whether a start may continue it.

A run folder holds exactly one configuration. What identifies it is the
composed run configuration (the model's kwargs as built) minus the keys that
only say where or how a run executes (:data:`NON_RESULT_KEYS`: folders,
threads, loggers, progress bars, data paths). Two starts with the same
identity train the same run (a killed run resumes to the result of an
uninterrupted one); any other difference (seed, an override, a longer
``trainer.max_epochs``) is another run.

- The default ``run_dir`` ends in ``seed{seed}-{hash}`` (:func:`config_hash`
  of the identity, registered as the OmegaConf resolver
  ``epic_zoo_config_hash``), so another configuration lands in another folder.
- :func:`check_run_folder` compares a folder's stored identity
  (``run_config.json``, written when the run starts) with the starting
  run's and refuses, in one line naming the differing keys and the fix,
  when they differ. Extending a finished run with more epochs is such a
  difference: its cosine schedule has ended, so more epochs would train at
  learning rate 0 while the record claimed a complete schedule. Train the
  longer run in its own folder instead (the default folder already is).

Plain data in, plain data out: no Lightning, Hydra or torch imports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from epic_zoo.run_layout import RESULTS_FILE, RUN_CONFIG_FILE

NON_RESULT_KEYS: frozenset[str] = frozenset(
    {
        "run_dir",
        "threads",
        "resume",
        "test",
        "logger",
        "callbacks",
        "hydra",
        "recipe_base",
        "recipe_name",
        "scale_name",
        "scale_suffix",
        "data.root",
        "data.openfwi_root",
        "data.num_workers",
        "trainer.enable_progress_bar",
        "trainer.enable_model_summary",
        "trainer.log_every_n_steps",
    }
)
"""Dotted config keys that do not change what a run computes (names, paths, threads, logging).

``callbacks`` is here because the callbacks' result-affecting settings (the
best checkpoint's ``monitor`` / ``mode``, early stopping, the epoch seed) are
links to ``checkpoint.*``, ``early_stopping.*`` and ``seed``, which are
hashed; :func:`epic_zoo.config_schema.validate_config` refuses an override
that cuts such a link (:data:`epic_zoo.config_schema.RESULT_LINKS`)."""

OPT_IN_KEYS: tuple[str, ...] = ("data.field_noise",)
"""Opt-in settings added after runs were made: while off (absent, null or ``p`` 0) they
are no part of the identity, so adding one leaves every existing run's hash and
folder as it was; switched on, all their keys are hashed."""

HASH_LENGTH = 8
"""Hex characters of the identity hash in folder names."""


class RunIdentityError(ValueError):
    """A start that would make a run folder describe a run that did not happen."""


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists and empty mappings kept as values)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _ignored(dotted: str) -> bool:
    return any(dotted == key or dotted.startswith(f"{key}.") for key in NON_RESULT_KEYS)


def _off(flat: Mapping[str, Any], key: str) -> bool:
    value = flat.get(f"{key}.p", flat.get(key))
    try:
        return value is None or value == {} or float(value) == 0.0
    except (TypeError, ValueError):
        return False


def identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The result-affecting part of a plain run config, flattened to dotted keys (sorted).

    An :data:`OPT_IN_KEYS` setting that is off is left out.
    """
    flat = flatten(config)
    off = tuple(key for key in OPT_IN_KEYS if _off(flat, key))
    return {
        key: flat[key]
        for key in sorted(flat)
        if not _ignored(key) and not any(key == o or key.startswith(f"{o}.") for o in off)
    }


def config_hash(config: Mapping[str, Any], leave_out: tuple[str, ...] = ()) -> str:
    """Short stable hash of :func:`identity` (``HASH_LENGTH`` hex characters).

    ``leave_out``: dotted keys not hashed (the default ``run_dir`` leaves out
    ``seed``, which it names on its own, so the seeds of one setting share the hash).
    """
    kept = {k: v for k, v in identity(config).items() if k not in leave_out}
    canonical = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha1(canonical.encode()).hexdigest()[:HASH_LENGTH]


def differences(stored: Mapping[str, Any], starting: Mapping[str, Any]) -> list[str]:
    """``["seed: 0 -> 1", ...]``: identity keys whose values differ (missing shown as ``-``)."""
    old, new = identity(stored), identity(starting)
    keys = sorted(set(old) | set(new))
    return [
        f"{key}: {old.get(key, '-')} -> {new.get(key, '-')}"
        for key in keys
        if old.get(key, "-") != new.get(key, "-")
    ]


def stored_config(run_dir: Path) -> dict[str, Any] | None:
    """The configuration a folder's run was started with, or ``None`` if it records none.

    ``run_config.json`` first; a folder from before it existed falls back to
    the ``config`` of its ``results.json``. Unreadable files raise
    :class:`RunIdentityError` (a folder whose identity cannot be read is not
    continued).
    """
    for name, key in ((RUN_CONFIG_FILE, "config"), (RESULTS_FILE, "config")):
        path = run_dir / name
        if not path.is_file():
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            config = record[key]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise RunIdentityError(
                f"{path} is unreadable ({type(err).__name__}: {err}); it cannot say which run "
                f"this folder holds: start elsewhere with run_dir=NEW_DIR or move {run_dir} aside"
            ) from None
        if not isinstance(config, Mapping):
            raise RunIdentityError(
                f"{path} has no configuration mapping under {key!r}: start elsewhere with "
                f"run_dir=NEW_DIR or move {run_dir} aside"
            )
        return dict(config)
    return None


def check_run_folder(run_dir: Path, config: Mapping[str, Any]) -> None:
    """Refuse to continue ``run_dir`` with ``config`` when it holds another configuration.

    Raises :class:`RunIdentityError` with one line listing up to five
    differing keys and the fix; returns quietly for a folder that records no
    configuration (new) or the same one.
    """
    stored = stored_config(run_dir)
    if stored is None:
        return
    diff = differences(stored, config)
    if not diff:
        return
    shown = "; ".join(diff[:5]) + (f"; and {len(diff) - 5} more" if len(diff) > 5 else "")
    raise RunIdentityError(
        f"{run_dir} holds a run of another configuration ({shown}); it is not continued. "
        f"Start elsewhere with run_dir=NEW_DIR (or leave run_dir at its default, which names "
        f"the configuration), or resume=false to move the old run aside and start afresh"
    )


def write_run_config(run_dir: Path, config: Mapping[str, Any]) -> Path:
    """Write ``{run_dir}/run_config.json`` (the config and its identity hash) atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RUN_CONFIG_FILE
    record = {"identity_hash": config_hash(config), "config": dict(config)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def holds_a_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` has anything a run writes (config, results, checkpoints, logs)."""
    return run_dir.is_dir() and any(run_dir.iterdir())

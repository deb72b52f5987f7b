"""What a ``python -m epic_zoo.run`` configuration may hold, checked when it is composed.

The Hydra tree in ``recipes/`` says what a run does; this module says what a
valid run is. :func:`validate_config` checks a composed configuration against

- typed schemas (the dataclasses below, merged with OmegaConf, so
  ``data.batch_size=abc`` is refused with the key's name), and
- the values the code accepts: a dataset of the catalog, a profile name or
  mapping, positive sizes, a registered ``model.name`` whose builder takes
  every ``model.kwargs`` key, a ``run_dir`` that can be a folder;

and raises :class:`ConfigError`, whose message is one line naming the key,
the value and the fix. :func:`one_line` turns Hydra's own composition errors
(unknown recipe or group option, a key that is not in the config) into such
a line too.

Model arguments: ``recipes/model/NAME.yaml`` lists every constructor argument
of its architecture as ``${epic_zoo_model_default:${model.name},KEY}``
(:func:`model_yaml` writes the files, a test checks them), so
``model.kwargs.latent_dim=32`` needs no ``+`` and ``--cfg job --resolve``
shows every default. :func:`explicit_model_kwargs` keeps only the arguments
that differ from the builder's defaults, so a run's recorded kwargs are the
ones that were chosen.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

DATA_KEYS: tuple[str, ...] = ("time_samples", "num_devices")
"""Model arguments the runner takes from the data unless ``model.kwargs`` sets them."""
INTERNAL_KEYS: tuple[str, ...] = ("fitted_on",)
"""Entries of ``model.config`` set by fitting, not constructor arguments to choose."""
DEFAULT_RESOLVER = "epic_zoo_model_default"
RESULT_LINKS: dict[str, str] = {
    "callbacks.best_checkpoint.monitor": "checkpoint.monitor",
    "callbacks.best_checkpoint.mode": "checkpoint.mode",
    "callbacks.epoch_seed.seed": "seed",
    **{
        f"callbacks.early_stopping.{k}": f"early_stopping.{k}"
        for k in ("enabled", "monitor", "mode", "patience", "min_delta")
    },
}
"""Callback settings that change a result -> the hashed key they must read (``${KEY}``).

``callbacks`` is left out of the run's identity hash
(:data:`epic_zoo.run_identity.NON_RESULT_KEYS`); these links keep the
settings that select the tested checkpoint, stop training or seed epochs in
the hash."""


class ConfigError(ValueError):
    """A composed configuration the runner cannot run; the message is one line with the fix."""


# ------------------------------------------------------------------ typed schemas
@dataclasses.dataclass
class DataSchema:
    """Types of the ``data`` group (values are checked by :func:`validate_config`)."""

    dataset: Any = "flatvel-a"  # a name, "all" or a list of names (a union)
    profile: Any = "lite"
    root: str | None = None
    openfwi_root: str | None = None
    batch_size: int = 16
    num_workers: int = 0
    time_stride: int | None = None
    num_devices: int = 5
    seed: int = 0
    generate: bool = True
    val_fraction: float = 0.1
    limit: int | None = None
    recipe_residuals: Any = None
    field_noise: Any = None


@dataclasses.dataclass
class TrainerSchema:
    """Types of the ``trainer`` keys the runner relies on (others pass to Lightning as given)."""

    max_epochs: int = 30
    max_steps: int = -1
    devices: Any = 1
    num_nodes: int = 1
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 10
    accumulate_grad_batches: int = 1


@dataclasses.dataclass
class RunSchema:
    """Types of the top-level run keys."""

    seed: int = 0
    threads: int | None = None
    run_dir: str = "runs"
    resume: bool = True
    test: bool = True


_SCHEMAS: tuple[tuple[str | None, type], ...] = (
    ("data", DataSchema),
    ("trainer", TrainerSchema),
    (None, RunSchema),
)


def _check_types(cfg: DictConfig) -> None:
    for group, schema in _SCHEMAS:
        node = cfg.get(group) if group else cfg
        if not isinstance(node, DictConfig):
            raise ConfigError(f"{group} must be a mapping, got {node!r}")
        names = {f.name for f in dataclasses.fields(schema)}
        picked = {k: node.get(k) for k in names if k in node and not OmegaConf.is_missing(node, k)}
        try:
            OmegaConf.merge(OmegaConf.structured(schema), picked)
        except OmegaConfBaseException as err:
            key = f"{group}.{err.key}" if group and err.key else str(err.key or group)
            wanted = {f.name: f.type for f in dataclasses.fields(schema)}.get(str(err.key), "")
            raise ConfigError(
                f"{key}={picked.get(str(err.key))!r} is not a valid {wanted}: "
                f"give {key}=VALUE of that type"
            ) from None


# ------------------------------------------------------------------- model defaults
@functools.cache
def _model_config(name: str) -> dict[str, Any]:
    import torch

    from epic_zoo.models.registry import build_architecture

    with torch.device("meta"):  # shapes only: nothing is allocated
        model = build_architecture(name)
    config = dict(model.config)
    config.pop("name", None)
    for key in INTERNAL_KEYS:
        config.pop(key, None)
    return config


def model_defaults(name: str) -> dict[str, Any]:
    """Every constructor argument of registered model ``name`` with its default (plain values).

    Raises:
        ConfigError: ``name`` is not registered (the closest names in the message).
    """
    from epic_zoo.models import list_models

    registered = list_models()
    if name not in registered:
        close = difflib.get_close_matches(str(name), registered, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"model.name={name!r} is not a registered model.{hint} Use model=NAME "
            f"(recipes/model/) with one of {', '.join(registered)}"
        )
    return {k: list(v) if isinstance(v, tuple) else v for k, v in _model_config(name).items()}


def _default_of(name: str, key: str) -> Any:
    defaults = model_defaults(name)
    if key not in defaults:
        raise ConfigError(
            f"model.kwargs.{key} is not an argument of model.name={name!r}; switch architecture "
            f"with model={name} (not model.name=...), whose arguments are "
            f"{', '.join(defaults)}"
        )
    value = None if key in DATA_KEYS else defaults[key]
    return ListConfig(value) if isinstance(value, list) else value  # a plain list cannot be a node


OmegaConf.register_new_resolver(DEFAULT_RESOLVER, _default_of, replace=True)


def _required(key: str, what: str) -> Any:
    raise ConfigError(f"{key} is required here: add {key}=PATH ({what})")


OmegaConf.register_new_resolver("epic_zoo_required", _required, replace=True)


def model_yaml(name: str, preamble: str = "") -> str:
    """The text of ``recipes/model/{name}.yaml``: ``preamble``, its name and every argument.

    ``preamble``: what comes before ``name:`` (comment lines saying what the
    model is, a ``defaults:`` list); kept verbatim.
    """
    lines = [
        *preamble.rstrip("\n").splitlines(),
        f"name: {name}",
        "# Every constructor argument: each is the builder's default for model.name",
        "# (--cfg job --resolve shows the values); set any without '+', e.g.",
        "# model.kwargs.KEY=VALUE. time_samples and num_devices come from the data.",
        "kwargs:",
    ]
    entries = [
        (
            f"  {key}: ${{{DEFAULT_RESOLVER}:${{model.name}},{key}}}",
            "from the data" if key in DATA_KEYS else repr(value),
        )
        for key, value in model_defaults(name).items()
    ]
    width = max((len(left) for left, _ in entries), default=0)
    lines += [f"{left.ljust(width)}  # {shown}" for left, shown in entries]
    return "\n".join(lines) + "\n"


def explicit_model_kwargs(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` without the entries equal to model ``name``'s defaults (or ``None`` for data keys).

    The runner records and builds with what remains (plus what the data
    decide), so a run's kwargs are the same whether a default was listed in
    the config or left out.
    """
    defaults = model_defaults(name)
    out = {}
    for key, value in kwargs.items():
        if key in DATA_KEYS and value is None:
            continue
        plain = list(value) if isinstance(value, tuple) else value
        if key not in DATA_KEYS and key in defaults and plain == defaults[key]:
            continue
        out[key] = value
    return out


# ------------------------------------------------------------------------- values
def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_data(data: DictConfig) -> None:
    from epic_zoo.data.catalog import DATASET_NAMES, get_dataset
    from epic_zoo.data.profiles import PROFILES, Profile, get_profile
    from epic_zoo.data.union import ALL, union_names

    dataset = data.dataset
    listed = isinstance(dataset, Sequence) and not isinstance(dataset, str)
    for name in list(dataset) if listed else [dataset]:
        if not listed and str(name).lower() == ALL:
            break
        try:
            get_dataset(str(name))
        except KeyError:
            close = difflib.get_close_matches(str(name), DATASET_NAMES, n=2, cutoff=0.5)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise ConfigError(
                f"data.dataset={dataset!r}: {str(name)!r} is not an OpenFWI dataset.{hint} "
                f"Use one of {', '.join(DATASET_NAMES)}, 'all' or a list of them"
            ) from None
    try:
        union_names(dataset)  # the union's own rules: distinct names, at least one
    except ValueError as err:
        raise ConfigError(str(err)) from None
    profile = data.profile
    if isinstance(profile, str):
        try:
            get_profile(profile)
        except (KeyError, ValueError):
            raise ConfigError(
                f"data.profile={profile!r} is not a profile: use one of {', '.join(PROFILES)} "
                "or a mapping {name, train, val, test, time_stride, dtype, shard_size, generator}"
            ) from None
    elif isinstance(profile, DictConfig):
        fields = {f.name for f in dataclasses.fields(Profile)}
        given = set(profile.keys())
        _require(
            "name" in given and given <= fields,
            f"data.profile mapping has keys {sorted(given)}: give 'name' and only "
            f"{', '.join(sorted(fields))}",
        )
        for key in ("train", "val", "test", "time_stride", "shard_size"):
            value = profile.get(key)
            _require(
                value is None or (isinstance(value, int) and value >= 1),
                f"data.profile.{key}={value!r} must be a positive integer",
            )
    else:
        raise ConfigError(
            f"data.profile={profile!r}: give a profile name ({', '.join(PROFILES)}) or a mapping"
        )
    _require(data.batch_size >= 1, f"data.batch_size={data.batch_size} must be at least 1")
    _require(data.num_workers >= 0, f"data.num_workers={data.num_workers} must be 0 or more")
    _require(
        data.time_stride is None or data.time_stride >= 1,
        f"data.time_stride={data.time_stride} must be at least 1 (or null: the profile's)",
    )
    _require(data.num_devices >= 1, f"data.num_devices={data.num_devices} must be at least 1")
    _require(
        0.0 <= data.val_fraction < 1.0,
        f"data.val_fraction={data.val_fraction} must be in [0, 1)",
    )
    _require(
        data.limit is None or data.limit >= 1,
        f"data.limit={data.limit} must be at least 1 (or null: every sample)",
    )


def _check_model(model: DictConfig) -> None:
    _require(isinstance(model, DictConfig) and "name" in model, "model must have a name")
    name = model.name
    model_defaults(str(name))  # registered
    kwargs = model.get("kwargs")
    if kwargs is None:
        return
    _require(  # a mapping in the file, or the weights' kwargs (recipe=finetune's resolver)
        isinstance(kwargs, (DictConfig, Mapping)),
        f"model.kwargs={kwargs!r} must be a mapping of arguments",
    )
    defaults = model_defaults(str(name))
    for key in kwargs:
        _require(
            key in defaults,
            f"model.kwargs.{key} is not an argument of model {name!r}; its arguments are "
            f"{', '.join(defaults)}",
        )
    if isinstance(kwargs, DictConfig):
        OmegaConf.to_container(kwargs, resolve=True)  # resolves the defaults: may raise ConfigError


def _check_run_dir(run_dir: str) -> None:
    path = Path(run_dir)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            raise ConfigError(
                f"run_dir={run_dir}: {p} is a file, not a folder; pass run_dir=FOLDER "
                "(a new or existing run folder)"
            )


def _check_result_links(cfg: DictConfig) -> None:
    callbacks = cfg.get("callbacks")
    plain = OmegaConf.to_container(callbacks, resolve=False) if callbacks is not None else {}
    for key, source in RESULT_LINKS.items():
        node: Any = {"callbacks": plain}
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        _require(
            node == f"${{{source}}}",
            f"{key}={node!r} must read ${{{source}}} (it changes the result, and only "
            f"{source} names the run's folder): set {source}=VALUE instead",
        )


def validate_config(cfg: DictConfig) -> None:
    """Check a composed run configuration; raise :class:`ConfigError` (one line) on the first problem."""
    try:
        missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra"))
        if missing:
            raise ConfigError(f"{missing[0]} has no value (???): set it, e.g. {missing[0]}=VALUE")
        OmegaConf.to_container(cfg.data, resolve=True)  # a required value raises ConfigError
        _check_types(cfg)
        _check_data(cfg.data)
        _check_model(cfg.model)
        trainer = cfg.trainer
        _require(
            trainer.max_epochs == -1 or trainer.max_epochs >= 1,
            f"trainer.max_epochs={trainer.max_epochs} must be at least 1 (or -1: no limit)",
        )
        _require(cfg.threads is None or cfg.threads >= 1, f"threads={cfg.threads} must be >= 1")
        _check_run_dir(str(cfg.run_dir))
        _check_result_links(cfg)
    except ConfigError:
        raise
    except OmegaConfBaseException as err:
        cause: BaseException | None = err
        while cause is not None:  # a ConfigError raised by one of our resolvers, wrapped
            if isinstance(cause, ConfigError):
                raise ConfigError(str(cause)) from None
            cause = cause.__cause__ or cause.__context__
        prefix = f"{ConfigError.__name__} raised while resolving interpolation: "
        if str(err).startswith(prefix):
            raise ConfigError(str(err)[len(prefix) :].split("\n")[0]) from None
        raise ConfigError(one_line(err)) from None


def one_line(err: BaseException) -> str:
    """A Hydra or OmegaConf error as one line with the fix (options listed inline)."""
    from hydra.errors import MissingConfigException

    text = str(err).split("\nConfig search path:")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()] or [type(err).__name__]
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, option = str(err.missing_cfg_file).rpartition("/")
        options = f"; use one of {', '.join(err.options)}" if err.options else ""
        if group:
            return f"{group}={option}: there is no recipes/{group}/{option}.yaml{options}"
    if lines[0].startswith("Could not override"):
        key = lines[0].split("'")[1] if "'" in lines[0] else "?"
        return (
            f"{key} is not a key of the configuration: check its spelling (`python -m "
            f"epic_zoo.run recipe=NAME --cfg job` lists them); a new key needs +{key}=VALUE"
        )
    if lines[0].startswith("You must specify"):
        return f"{lines[0]}; one of {', '.join(lines[2:])}" if len(lines) > 2 else lines[0]
    key = getattr(err, "full_key", None)
    if type(err).__name__ == "MissingMandatoryValue" and key:
        return f"{key} has no value (???): set it, e.g. {key}=VALUE"
    kept = [line for line in lines if not line.startswith(("full_key:", "object_type=", "See "))]
    where = f" (at {key})" if key and key not in " ".join(kept) else ""
    return " ".join(kept) + where


# ----------------------------------------------------------------- command lines
_NO_CHECK_FLAGS = ("-h", "--help", "--hydra-help", "--version", "-c", "--cfg", "-i", "--info")
_MAX_JOBS_CHECKED = 256


def normalise_overrides(overrides: list[str] | tuple[str, ...]) -> list[str]:
    """``overrides`` with ``+model.kwargs.KEY=V`` read as ``++model.kwargs.KEY=V``.

    Every argument is listed in ``model.kwargs`` now, so Hydra's ``+`` (add a
    new key) would refuse it; older commands keep working.
    """
    return ["+" + o if o.startswith("+model.kwargs.") else o for o in overrides]


def check_overrides(args: list[str], compose: Any) -> None:
    """Compose and :func:`validate_config` what ``python -m epic_zoo.run ARGS`` would run.

    ``compose(overrides) -> DictConfig`` is the runner's composer. A ``-m``
    sweep is checked job by job (up to 256). Arguments it cannot judge
    (``--help``, ``--cfg``, other ``-`` flags, ``hydra.*`` overrides) are left
    to Hydra. Raises :class:`ConfigError` with one line.
    """
    if any(a in _NO_CHECK_FLAGS or a.startswith("--cfg") for a in args):
        return
    multirun = any(a in ("-m", "--multirun") for a in args)
    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in args):
        return
    overrides = [a for a in args if not a.startswith(("-", "hydra.", "hydra/", "+hydra", "~hydra"))]
    jobs = [overrides]
    if multirun:
        jobs = _sweep_jobs(overrides)
    for job in jobs:
        try:
            cfg = compose(job)
        except ConfigError:
            raise
        except Exception as err:  # Hydra's composition errors: unknown option, key, syntax
            from hydra.errors import HydraException

            if not isinstance(err, HydraException | OmegaConfBaseException):
                raise
            raise ConfigError(one_line(err)) from None
        validate_config(cfg)


def _sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The jobs of a ``-m`` sweep (each a list of plain overrides), at most 256."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise ConfigError(one_line(err)) from None
    choices = []
    for o in parsed:
        if o.is_sweep_override():
            prefix = f"{o.get_key_element()}="
            try:
                choices.append([prefix + v for v in o.sweep_string_iterator()])
            except Exception:  # a glob or other sweep only Hydra can expand
                return []
        else:
            choices.append([o.input_line])
    return [list(job) for job in itertools.islice(itertools.product(*choices), _MAX_JOBS_CHECKED)]

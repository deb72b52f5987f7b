"""What a bench sweep computes (:class:`Settings`), how it runs (:class:`RunOptions`), and checks.

Each field carries its command-line help in ``metadata``; :mod:`epic_zoo.bench.cli`
builds the parser from these dataclasses, so a new field is a new flag.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from epic_zoo.data.catalog import DATASET_NAMES, get_dataset
from epic_zoo.data.profiles import get_profile
from epic_zoo.hardware.profiles import (
    CENTRALS,
    DEVICES,
    LINKS,
    ComputeProfile,
    LinkProfile,
    get_central,
    get_device,
    get_link,
)
from epic_zoo.hardware.profiles_file import (
    KINDS,
    ProfilesFileError,
    file_sha256,
    load_profiles_file,
)
from epic_zoo.models import list_models

DEFAULT_MODELS: tuple[str, ...] = (
    "epic",
    "epic-equal",
    "epic-isolated",
    "split",
    "federated",
    "inversionnet",
)
DEFAULT_LINKS: tuple[str, ...] = (
    "wifi-ac",
    "wifi-n-ampdu",
    "wifi-n",
    "4g-sporadic",
    "4g-streaming",
    "nbiot",
)
BASELINE: str = "inversionnet"
"""Centralised model every ratio is taken against (in each of its raw formats)."""
FIDELITY_SOURCES: tuple[str, ...] = ("auto", "none", "checkpoints", "pretrained")
TIMING_ROUNDS: int = 60
"""Default timing rounds (a round of every architecture takes ~0.3-0.6 s on this 2-core host)."""
PHYSICS_LIMIT: int = 8
"""Default number of test samples (the first ones) of the ``--misfit`` column."""


class BenchError(ValueError):
    """Bad benchmark input; the message names it and the fix."""


def _opt(help: str, **extra: Any) -> dict[str, Any]:
    return {"help": help, **extra}


@dataclasses.dataclass
class Settings:
    """What a sweep computes; its :meth:`identity` is stored in ``OUT/run.json`` so a
    resumed sweep matches it. Field help strings are the ``--help`` text."""

    profile: str = dataclasses.field(
        default="lite", metadata=_opt("data profile of the test data: tiny, lite, full")
    )
    datasets: list[str] = dataclasses.field(
        default_factory=lambda: list(DATASET_NAMES),
        metadata=_opt("comma-separated dataset names, or 'all'", all=DATASET_NAMES),
    )
    models: list[str] = dataclasses.field(
        default_factory=lambda: list(DEFAULT_MODELS),
        metadata=_opt("comma-separated model names, or 'all'", all=DEFAULT_MODELS),
    )
    links: list[str] = dataclasses.field(
        default_factory=lambda: list(DEFAULT_LINKS),
        metadata=_opt(f"link profiles ({', '.join(LINKS)}), or 'all'", all=tuple(LINKS)),
    )
    device: str = dataclasses.field(
        default="rpi4", metadata=_opt(f"end-device profile ({', '.join(DEVICES)})")
    )
    central: str = dataclasses.field(
        default="server-cpu", metadata=_opt(f"central-node profile ({', '.join(CENTRALS)})")
    )
    fidelity: str = dataclasses.field(
        default="auto",
        metadata=_opt(
            "where weights come from: none (untrained, hardware only), checkpoints "
            "(--checkpoints folder), pretrained (registry MODEL.DATASET); auto = "
            "checkpoints if --checkpoints is given, else none",
            choices=FIDELITY_SOURCES,
        ),
    )
    checkpoints: str | None = dataclasses.field(
        default=None,
        metadata=_opt("folder of trained weights (MODEL.DATASET Hub/run folders or .ckpt)"),
    )
    data_root: str | None = dataclasses.field(
        default=None, metadata=_opt("cache root of the synthetic data (default $EPIC_ZOO_DATA)")
    )
    data: str | None = dataclasses.field(
        default=None,
        metadata=_opt(
            "test data instead of the synthetic store: an epic_zoo or OpenFWI .npy folder "
            "(one dataset, or one sub-folder per dataset)"
        ),
    )
    seed: int = dataclasses.field(default=0, metadata=_opt("data seed"))
    limit: int | None = dataclasses.field(
        default=None, metadata=_opt("evaluate at most N test samples")
    )
    batch_size: int = dataclasses.field(default=16, metadata=_opt("evaluation batch size"))
    repeats: int = dataclasses.field(
        default=TIMING_ROUNDS,
        metadata=_opt(
            "timing rounds: every call once per round, right after a probe run; "
            "median of the per-round probe multiples"
        ),
    )
    warmup: int = dataclasses.field(default=3, metadata=_opt("untimed calls before timing"))
    pin_cpu: int | None = dataclasses.field(
        default=None,
        metadata=_opt("core the timing thread is pinned to (default: the highest allowed)"),
    )
    profiles_file: str | None = dataclasses.field(
        default=None, metadata=_opt("YAML of extra hardware profiles (links/devices/centrals)")
    )
    misfit: bool = dataclasses.field(
        default=False,
        metadata=_opt("add a data-misfit column (wave-equation simulation; slow on a CPU)"),
    )
    physics_limit: int = dataclasses.field(
        default=PHYSICS_LIMIT, metadata=_opt("--misfit covers the first K test samples")
    )

    def __post_init__(self) -> None:
        if self.fidelity == "auto":
            self.fidelity = "checkpoints" if self.checkpoints else "none"

    def identity(self) -> dict[str, Any]:
        """The settings a resumed sweep must share (the sweep lists may grow)."""
        keep = ("profile", "device", "central", "fidelity", "checkpoints", "data", "seed", "limit")
        out = {k: getattr(self, k) for k in keep}
        if self.misfit:
            out["misfit"] = True
            out["physics_limit"] = self.physics_limit
        if self.profiles_file:
            out["profiles_sha256"] = file_sha256(self.profiles_file)
        return out


@dataclasses.dataclass
class RunOptions:
    """How a sweep runs and where it writes (not part of its identity)."""

    out: str = dataclasses.field(default="benchmarks/results/bench", metadata=_opt("output folder"))
    restart: bool = dataclasses.field(
        default=False, metadata=_opt("discard finished rows in --out and start over")
    )
    plots: bool = dataclasses.field(default=True, metadata=_opt("write the PNG plots"))
    wandb: bool = dataclasses.field(
        default=False,
        metadata=_opt("log the sweep as one W&B run ($WANDB_MODE, default offline)"),
    )
    wandb_project: str = dataclasses.field(default="epic_zoo", metadata=_opt("W&B project"))


@dataclasses.dataclass(frozen=True)
class Hardware:
    """Resolved profiles of a sweep."""

    links: dict[str, LinkProfile]
    device: ComputeProfile
    central: ComputeProfile


def resolve_hardware(settings: Settings) -> Hardware:
    """Look up every named profile (built-in or from ``profiles_file``); clear errors for unknown names."""
    try:
        extra = (
            load_profiles_file(settings.profiles_file)
            if settings.profiles_file
            else {kind: {} for kind in KINDS}
        )
    except ProfilesFileError as err:
        raise BenchError(str(err)) from err
    builtin = {"links": (LINKS, get_link), "devices": (DEVICES, get_device)}
    builtin["centrals"] = (CENTRALS, get_central)

    def pick(kind: str, name: str) -> Any:
        if name in extra[kind]:
            return extra[kind][name]
        table, getter = builtin[kind]
        try:
            return getter(name)
        except KeyError as err:
            names = sorted({*table, *extra[kind]})
            raise BenchError(
                f"unknown {kind[:-1]} profile {name!r}; choose one of: {', '.join(names)}"
            ) from err

    if not settings.links:
        raise BenchError(f"no links to sweep; pass --links {','.join(DEFAULT_LINKS[:2])}")
    return Hardware(
        links={name: pick("links", name) for name in settings.links},
        device=pick("devices", settings.device),
        central=pick("centrals", settings.central),
    )


def check_settings(settings: Settings) -> Hardware:
    """Validate names and values before any work; returns the resolved hardware.

    Raises :class:`BenchError` naming the bad input and the fix.
    """
    try:
        get_profile(settings.profile)
    except KeyError as err:
        raise BenchError(str(err.args[0])) from err
    if not settings.datasets or not settings.models:
        raise BenchError("nothing to sweep: pass at least one dataset and one model")
    for name in settings.datasets:
        try:
            get_dataset(name)
        except KeyError as err:
            raise BenchError(f"--datasets: {err.args[0]}") from err
    known = list_models()
    for name in settings.models:
        if name not in known:
            raise BenchError(f"--models: unknown model {name!r}; choose from: {', '.join(known)}")
    if settings.fidelity not in FIDELITY_SOURCES:
        raise BenchError(
            f"--fidelity {settings.fidelity!r}; choose one of {', '.join(FIDELITY_SOURCES)}"
        )
    if settings.fidelity == "checkpoints" and not (
        settings.checkpoints and Path(settings.checkpoints).is_dir()
    ):
        raise BenchError(
            f"--checkpoints {settings.checkpoints}: no such folder; pass the folder holding "
            "MODEL.DATASET weights, or --fidelity none for hardware figures only"
        )
    if settings.data is not None and not Path(settings.data).exists():
        raise BenchError(
            f"--data {settings.data}: no such folder. Make test data with `python -m "
            "epic_zoo.data generate --dataset flatvel-a --split test --num 200 --out DIR`"
        )
    if settings.limit is not None and settings.limit < 1:
        raise BenchError(f"--limit {settings.limit} must be >= 1")
    for name in ("repeats", "batch_size", "physics_limit"):
        if getattr(settings, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')} {getattr(settings, name)} must be >= 1")
    if settings.warmup < 0:
        raise BenchError(f"--warmup {settings.warmup} must be >= 0")
    return resolve_hardware(settings)

"""``python -m epic_zoo.bench``: the command line, generated from the settings dataclasses.

Every field of :class:`~epic_zoo.bench.settings.Settings` and
:class:`~epic_zoo.bench.settings.RunOptions` becomes ``--field-name``: booleans
as ``--x`` / ``--no-x``, lists as comma-separated values (``all`` for every
choice), optional numbers and strings as typed values. Expected failures
(unknown names, missing data, an unwritable output folder) print one line
``error: ...`` naming the input and the fix, and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from epic_zoo.bench.settings import BenchError, RunOptions, Settings

_SCALARS = {"str": str, "int": int, "float": float}


def _add_fields(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        meta = field.metadata
        default = (
            field.default_factory()  # type: ignore[misc]
            if field.default_factory is not dataclasses.MISSING
            else field.default
        )
        hint = hints[field.name]
        if hint is bool:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=meta["help"]
            )
            continue
        if typing.get_origin(hint) is list:
            shown = ",".join(default) if len(default) <= 6 else "all"
            group.add_argument(
                flag,
                default=None,
                metavar="A,B,...",
                help=f"{meta['help']} (default {shown})",
            )
            continue
        inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        kind = inner[0]
        suffix = "" if default is None else f" (default {default})"
        group.add_argument(
            flag,
            type=kind,
            default=default,
            choices=meta.get("choices"),
            metavar=None if meta.get("choices") else field.name.split("_")[-1].upper(),
            help=meta["help"] + suffix,
        )


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m epic_zoo.bench`` (from :class:`Settings` and :class:`RunOptions`)."""
    parser = argparse.ArgumentParser(
        prog="python -m epic_zoo.bench",
        description="Sweep datasets x models x links: fidelity, payload bytes, simulated "
        "latency and energy against centralised InversionNet's raw baselines.",
    )
    _add_fields(parser, Settings, "sweep")
    _add_fields(parser, RunOptions, "run")
    return parser


def _from_args(cls: type, args: argparse.Namespace) -> Any:
    values = {}
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        value = getattr(args, field.name)
        if typing.get_origin(hints[field.name]) is list:
            if value is None:
                continue  # the dataclass default
            items = [v.strip() for v in value.split(",") if v.strip()]
            value = list(field.metadata["all"]) if items == ["all"] else items
        values[field.name] = value
    return cls(**values)


def parse(argv: Sequence[str] | None = None) -> tuple[Settings, RunOptions]:
    """Settings and run options from a command line."""
    args = build_parser().parse_args(argv)
    return _from_args(Settings, args), _from_args(RunOptions, args)


def check_writable(out: str | Path) -> Path:
    """Create ``out`` and prove a file can be written there, before any work."""
    path = Path(out)
    probe = path / ".write-test"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise BenchError(
            f"--out {out}: cannot write there ({reason}); pass --out to a writable folder"
        ) from err
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m epic_zoo.bench``; returns the exit status (2 on bad input)."""
    from epic_zoo.bench.plots import write_plots
    from epic_zoo.bench.report import CSV_NAME, MD_NAME
    from epic_zoo.bench.sweep import log_wandb, run_bench

    settings, options = parse(argv)
    try:
        out = check_writable(options.out)
        rows = run_bench(settings, out, restart=options.restart)
        plots = write_plots(rows, out) if options.plots else []
        if options.wandb:
            log_wandb(rows, plots, settings, out, options.wandb_project)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(rows)} rows in {out / CSV_NAME}; table {out / MD_NAME}")
    return 0

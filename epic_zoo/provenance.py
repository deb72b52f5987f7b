"""Provenance: how and where a result was made (commit, CPU, package versions, conditions).

The one home for the facts every record carries (run summaries, benchmark
rows, Hub configs, testbed reports). Plain Python, no torch import at module
level, so any layer can use it.

- :func:`git_commit`: ``HEAD`` of the source checkout, ``+dirty`` when
  tracked files are modified; ``None`` outside a git checkout (an installed
  wheel).
- :func:`cpu_name`: the CPU model (``/proc/cpuinfo`` on Linux).
- :func:`package_versions`: installed versions of named distributions.
- :func:`conditions`: the usual set in one dict, plus what the caller adds.
"""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["conditions", "cpu_name", "git_commit", "package_versions", "utc_now"]

DEFAULT_PACKAGES: tuple[str, ...] = ("epic_zoo", "torch")
"""Distributions whose versions :func:`conditions` records by default."""

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=_SOURCE_ROOT, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def git_commit(short: bool = False) -> str | None:
    """Commit of the epic_zoo source checkout, ``+dirty`` if tracked files changed.

    Args:
        short: abbreviated hash (``git rev-parse --short``).

    Returns:
        e.g. ``"0eb6ada+dirty"``; ``None`` when the package is not in a git
        checkout or git is missing.
    """
    try:
        head = _git("rev-parse", *(["--short"] if short else []), "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


@functools.cache
def cpu_name() -> str:
    """CPU model name from ``/proc/cpuinfo`` (Linux), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def package_versions(packages: Sequence[str] = DEFAULT_PACKAGES) -> dict[str, str | None]:
    """``{name: version}`` of installed distributions (``None`` if not installed), plus ``python``."""
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def utc_now() -> str:
    """The current time, UTC, ISO 8601 to the second (``2025-01-31T12:00:00+00:00``)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def conditions(packages: Sequence[str] = DEFAULT_PACKAGES, **extra: Any) -> dict[str, Any]:
    """The run conditions every result records, with ``extra`` keys added last.

    Keys: ``date`` (UTC), ``commit`` (:func:`git_commit`, ``"unknown"`` outside
    git), ``cpu``, ``cpu_count``, ``load_average_1m`` (``None`` where the OS has
    none), ``platform`` and the ``versions`` of ``packages`` and Python.
    """
    try:
        load: float | None = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load = None
    return {
        "date": utc_now(),
        "commit": git_commit() or "unknown",
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": load,
        "platform": f"{platform.system()} {platform.release()}",
        "versions": package_versions(packages),
        **extra,
    }

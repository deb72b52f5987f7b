"""Extra or overridden hardware profiles from a YAML file.

Layout: top-level keys ``links``, ``devices``, ``centrals``; under each, a
profile name mapping to its fields, optionally ``base: NAME`` to start from a
built-in profile and override only some fields::

    links:
      wifi-slow: {base: wifi-n, bandwidth_bps: 6.5e6}
      lte-10s: {base: 4g-streaming, inference_interval_s: 10}
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import yaml

from epic_zoo.hardware.profiles import CENTRALS, DEVICES, LINKS, ComputeProfile, LinkProfile

KINDS: tuple[str, ...] = ("links", "devices", "centrals")
"""Top-level keys of a profiles file."""
_TABLES = {
    "links": (LINKS, LinkProfile),
    "devices": (DEVICES, ComputeProfile),
    "centrals": (CENTRALS, ComputeProfile),
}


class ProfilesFileError(ValueError):
    """A profiles file that cannot be read; the message names the entry and the fix."""


def _yaml_number(value: Any) -> Any:
    # PyYAML reads 6.5e6 (no sign in the exponent) as a string
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_profiles_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a YAML of extra hardware profiles (see the module docstring).

    Returns ``{"links": {name: LinkProfile}, "devices": {...}, "centrals": {...}}``.
    Raises :class:`ProfilesFileError` naming the bad entry (unknown field or
    base, a zero/negative value, an unreadable file).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        reason = " ".join(str(err).split())  # YAML errors span several lines
        raise ProfilesFileError(f"cannot read profiles file {path}: {reason}") from err
    if not isinstance(data, dict) or set(data) - set(KINDS):
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ProfilesFileError(
            f"{path}: top-level keys must be among {', '.join(KINDS)}; got {got}"
        )
    out: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
    for kind, entries in data.items():
        table, cls = _TABLES[kind]
        if not isinstance(entries, dict | None):
            raise ProfilesFileError(f"{path}: {kind} must map names to fields, got {entries!r}")
        for name, raw_fields in (entries or {}).items():
            if not isinstance(raw_fields, dict | None):
                raise ProfilesFileError(
                    f"{path}: {kind}.{name} must map field names to values, got {raw_fields!r}"
                )
            fields = {str(k): _yaml_number(v) for k, v in (raw_fields or {}).items()}
            base = fields.pop("base", None)
            try:
                if base is not None:
                    if base not in table:
                        raise ValueError(
                            f"unknown base {base!r}; choose one of: {', '.join(table)}"
                        )
                    profile = dataclasses.replace(table[base], name=str(name), **fields)
                else:
                    description = fields.pop("description", str(name))
                    profile = cls(name=str(name), description=description, **fields)
            except (TypeError, ValueError) as err:
                raise ProfilesFileError(f"{path}: {kind}.{name}: {err}") from err
            out[kind][str(name)] = profile
    return out


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a profiles file (part of a sweep's identity)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

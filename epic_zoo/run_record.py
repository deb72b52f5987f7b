"""The run record: what ``results.json`` holds, defined once for the runner and every reader.

:func:`epic_zoo.run.train` writes one :class:`RunRecord` per finished run;
``compare``, the hub's run-folder reader and the benchmark scripts read it
back with :func:`read_run_record`, which checks the types of what they use
and names the file and the field when something is wrong (a truncated or
hand-edited file gives one line, not a traceback). Records written before a
field existed read back with that field ``None`` (or empty).

Plain data: no Lightning, Hydra or torch imports.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from epic_zoo.run_layout import RESULTS_FILE

RECORD_VERSION = 2
"""Version of the record layout (1: records before this module; 2: adds ``record_version``,
``identity_hash``)."""


class RunRecordError(ValueError):
    """A ``results.json`` that is not a run record: the message names the file, the field and the fix."""


@dataclasses.dataclass
class RunRecord:
    """One finished run (``{run_dir}/results.json``).

    Units and meanings: ``metrics`` are the tested checkpoint's test metrics
    (``test/mae_ms`` in m/s first, then ``test/ssim``...); ``samples_seen`` =
    ``epochs`` x ``samples_per_epoch`` (training samples whose gradients were
    taken); ``baseline`` is the input-free mean map's MAE on the same test maps
    and the run's ratio to it; ``schedule`` says whether the learning-rate
    schedule finished (``complete``); ``config`` is the composed configuration
    with the model's kwargs as built; ``wall_time_s`` sums every start.
    ``budget_checkpoints`` lists the stable-phase checkpoints a WSD run saved
    (``checkpoint.at_samples``), ``branch`` says where a decay branch started
    (:mod:`epic_zoo.branch`), ``per_dataset`` holds a union model's test
    metrics per dataset beside each one's mean map (:mod:`epic_zoo.data.union`).
    """

    recipe: str | None = None
    dataset: str | None = None
    model: str | None = None
    task: str | None = None
    seed: int | None = None
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int | None = None
    global_step: int | None = None
    train_samples: int | None = None
    samples_per_epoch: int | None = None
    samples_seen: int | None = None
    schedule: dict[str, Any] = dataclasses.field(default_factory=dict)
    checkpoint_monitor: str | None = None
    checkpoint_mode: str | None = None
    baseline: dict[str, Any] = dataclasses.field(default_factory=dict)
    run_dir: str | None = None
    best_checkpoint: str | None = None
    checkpoint: str | None = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    learning_curve: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    wall_time_s: float | None = None
    wall_time_starts: int | None = None
    torch: str | None = None
    lightning: str | None = None
    commit: str | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    identity_hash: str | None = None
    budget_checkpoints: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    branch: dict[str, Any] = dataclasses.field(default_factory=dict)
    per_dataset: dict[str, Any] = dataclasses.field(default_factory=dict)
    record_version: int = RECORD_VERSION

    @property
    def complete(self) -> bool:
        """Whether the run's schedule finished (a time cap or early stop cut it otherwise)."""
        return bool(self.schedule.get("complete"))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``results.json`` (field order kept)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str = "results.json") -> RunRecord:
        """A record from a parsed ``results.json``; :class:`RunRecordError` names a bad field.

        Unknown keys are ignored (newer writers); missing ones take their
        defaults (older writers).
        """
        if not isinstance(data, Mapping):
            raise RunRecordError(
                f"{source} is not a run record (a JSON object is expected, got "
                f"{type(data).__name__}): rerun the run to rewrite it"
            )
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name not in data or data[field.name] is None:
                continue
            values[field.name] = _checked(field.name, data[field.name], source)
        if "record_version" not in data:
            values["record_version"] = 1
        return cls(**values)


_INTS = {
    "seed",
    "epochs",
    "global_step",
    "train_samples",
    "samples_per_epoch",
    "samples_seen",
    "wall_time_starts",
    "record_version",
}
_DICTS = {"data", "schedule", "baseline", "config", "branch", "per_dataset"}


def _checked(name: str, value: Any, source: str) -> Any:
    def bad(expected: str) -> RunRecordError:
        return RunRecordError(
            f"{source}: field {name!r} should be {expected}, got {type(value).__name__} "
            f"{str(value)[:40]!r}: the file is damaged or hand-edited; rerun the run to rewrite it"
        )

    if name in _INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if name in _DICTS:
        if not isinstance(value, Mapping):
            raise bad("a JSON object")
        return dict(value)
    if name == "metrics":
        if not isinstance(value, Mapping):
            raise bad("a JSON object of numbers")
        for key, number in value.items():
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise RunRecordError(
                    f"{source}: metric {key!r} is not a number ({number!r}): the file is damaged "
                    "or hand-edited; rerun the run to rewrite it"
                )
        return {str(k): float(v) for k, v in value.items()}
    if name in ("learning_curve", "budget_checkpoints"):
        if not isinstance(value, list):
            raise bad("a list of JSON objects")
        for i, row in enumerate(value):
            if not isinstance(row, Mapping):
                raise RunRecordError(
                    f"{source}: {name}[{i}] is {str(row)[:40]!r}, not a JSON object: the file "
                    "is damaged or hand-edited; rerun the run to rewrite it"
                )
            numbers = ("samples_seen", "val/mae_ms", "val/mae") if name == "learning_curve" else ()
            for key in numbers:
                number = row.get(key)
                if number is not None and (
                    isinstance(number, bool) or not isinstance(number, (int, float))
                ):
                    raise RunRecordError(
                        f"{source}: {name}[{i}].{key} is {str(number)[:40]!r}, not a number: "
                        "the file is damaged or hand-edited; rerun the run to rewrite it"
                    )
        return [dict(r) for r in value]
    if name == "wall_time_s":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise bad("a number of seconds")
        return float(value)
    if not isinstance(value, str):
        raise bad("a string")
    return value


def read_run_record(path: str | Path) -> RunRecord:
    """The record of a run folder (or of a ``results.json`` path); :class:`RunRecordError` if bad."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunRecordError(
            f"{path} does not exist: the run has not finished (start it again to resume it)"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise RunRecordError(f"cannot read {path} ({type(err).__name__}: {err})") from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise RunRecordError(
            f"cannot read {path}: not valid JSON ({err}); the file is truncated or damaged: "
            "rerun the run to rewrite it"
        ) from None
    return RunRecord.from_dict(data, str(path))


def write_run_record(run_dir: Path, record: RunRecord) -> Path:
    """Write ``{run_dir}/results.json`` atomically (a temporary file renamed over it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RESULTS_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record.to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path

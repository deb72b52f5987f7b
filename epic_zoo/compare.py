"""Side-by-side table of finished runs: ``python -m epic_zoo.compare RUN_DIRS...``.

A run is read from, in this order:

1. ``{run_dir}/results.json`` written by :func:`epic_zoo.run.train`;
2. its CSV logs ``{run_dir}/csv/version_*/metrics.csv`` (versions in order,
   the last value of each ``test/*`` column; ``val/*`` if it was never tested);
3. a W&B run folder ``.../wandb/offline-run-*`` or ``run-*`` (or the newest
   one under ``{run_dir}/wandb``): its ``files/wandb-summary.json`` when
   online, else its transaction log ``run-*.wandb`` (read directly, no
   W&B service or network needed).

A folder that is not a run itself (``runs/``, a ``multirun/`` sweep) is
searched for runs. Example::

    python -m epic_zoo.compare runs/epic_lite runs/inversionnet_lite --sort test/ssim
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import struct
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

RESULTS_FILE = "results.json"
DEFAULT_METRICS: tuple[str, ...] = (
    "test/ssim",
    "test/ssim_openfwi",
    "test/mae",
    "test/rmse",
    "test/mae_ms",
    "test/rmse_ms",
)
"""Columns shown by default, when present (the test metrics of :mod:`epic_zoo.tasks.metrics`)."""


def _format_value(key: str, value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.1f}" if key.endswith("_ms") else f"{value:.4f}"
    return "-" if value is None else str(value)


def format_table(
    runs: Mapping[str, Mapping[str, object]],
    columns: Sequence[str] | None = None,
    transpose: bool = False,
) -> str:
    """A Markdown table: one row per run (``transpose``: one row per metric).

    Args:
        runs: ``{run label: {column: value}}``.
        columns: columns to show, in order (default: every key, first seen first).
        transpose: metrics as rows and runs as columns (handy for one run).
    """
    if columns is None:
        columns = list(dict.fromkeys(k for values in runs.values() for k in values))
    header = ["run", *columns]
    rows = [
        [label, *(_format_value(c, values.get(c)) for c in columns)]
        for label, values in runs.items()
    ]
    if transpose:
        header = ["metric", *runs]
        rows = [
            [c, *(_format_value(c, values.get(c)) for values in runs.values())] for c in columns
        ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return (
            "| " + " | ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)) + " |"
        )

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


# ----------------------------------------------------------------------- readers
def _read_csv_logs(run_dir: Path) -> dict[str, object]:
    """Final ``test/*`` (else ``val/*``) values from all CSV log versions, plus model and dataset."""
    files = sorted(
        run_dir.glob("csv/version_*/metrics.csv"),
        key=lambda p: int(p.parent.name.split("_")[-1]),
    )
    last: dict[str, float] = {}
    for path in files:
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                for key, value in row.items():
                    if value not in ("", None) and key.startswith(("test/", "val/")):
                        last[key] = float(value)
    tested = {k: v for k, v in last.items() if k.startswith("test/")}
    values: dict[str, object] = dict(tested or last)
    if files:
        hparams_file = files[-1].parent / "hparams.yaml"
        if hparams_file.is_file():
            hparams = yaml.safe_load(hparams_file.read_text()) or {}
            values["model"] = hparams.get("model_name")
            values["dataset"] = hparams.get("dataset")
    return values


def _wandb_run_folder(path: Path) -> Path | None:
    """``path`` if it is a W&B run folder, else the newest run folder under ``path/wandb``."""
    if path.name.startswith(("offline-run-", "run-")) and any(path.glob("run-*.wandb")):
        return path
    candidates = sorted((path / "wandb").glob("*run-*/run-*.wandb"))
    return candidates[-1].parent if candidates else None


_WANDB_HEADER = struct.Struct("<4sHB")  # ident ":W&B", magic 0xBEE1, version 0
_RECORD_HEADER = struct.Struct("<IHB")  # crc32c (unchecked), length, chunk type
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _wandb_records(log_file: Path) -> list[bytes]:
    """The serialised records of a ``run-*.wandb`` transaction log.

    The file is W&B's 7-byte header followed by a LevelDB-format log
    (32 KiB blocks of chunks with a 7-byte header: checksum, length, type
    full/first/middle/last; see leveldb's doc/log_format.md).
    """
    data = log_file.read_bytes()
    if len(data) < _WANDB_HEADER.size or _WANDB_HEADER.unpack_from(data)[0] != b":W&B":
        raise ValueError(f"{log_file} is not a W&B run log (no :W&B header)")
    records: list[bytes] = []
    pending = b""
    pos = _WANDB_HEADER.size
    while pos + _RECORD_HEADER.size <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _RECORD_HEADER.size:  # block trailer padding
            pos += left_in_block
            continue
        _, length, kind = _RECORD_HEADER.unpack_from(data, pos)
        pos += _RECORD_HEADER.size
        chunk = data[pos : pos + length]
        pos += length
        if kind == _FULL:
            records.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            records.append(pending + chunk)
            pending = b""
    return records


def read_wandb_log(run_folder: Path) -> dict[str, object]:
    """Read an offline W&B run folder without the W&B service.

    Returns ``{"metrics": last logged value per key, "config": run config,
    "group": str, "tags": list, "finished": bool}``; ``finished`` is whether
    the log ends the run (``wandb.finish()`` writes its exit record).
    """
    from wandb.proto import wandb_internal_pb2

    (log_file,) = sorted(run_folder.glob("run-*.wandb"))[-1:]
    metrics: dict[str, object] = {}
    config: dict[str, object] = {}
    info: dict[str, object] = {"group": None, "tags": [], "finished": False}
    for raw in _wandb_records(log_file):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                metrics[key] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                config[item.key] = json.loads(item.value_json)
        elif kind == "run":
            for item in record.run.config.update:
                config[item.key] = json.loads(item.value_json)
            info["group"] = record.run.run_group
            info["tags"] = list(record.run.tags)
        elif kind == "exit":
            info["finished"] = True
    return {"metrics": metrics, "config": config, **info}


def _read_wandb(run_folder: Path) -> dict[str, object]:
    """Final ``test/*`` metrics of a W&B run folder (online: its summary file; offline: its log)."""
    summary_file = run_folder / "files" / "wandb-summary.json"
    if summary_file.is_file():
        logged = json.loads(summary_file.read_text())
        config_file = run_folder / "files" / "config.yaml"
        raw = yaml.safe_load(config_file.read_text()) if config_file.is_file() else {}
        config = {k: v.get("value") if isinstance(v, dict) else v for k, v in (raw or {}).items()}
    else:
        log = read_wandb_log(run_folder)
        logged, config = log["metrics"], log["config"]
    values: dict[str, object] = {
        k: float(v)
        for k, v in logged.items()
        if k.startswith("test/") and isinstance(v, (int, float))
    }
    model = config.get("model")
    data = config.get("data")
    values["model"] = model.get("name") if isinstance(model, dict) else config.get("model_name")
    values["dataset"] = data.get("dataset") if isinstance(data, dict) else config.get("dataset")
    return values


def read_run(path: str | Path) -> dict[str, object]:
    """Final metrics of one run (see the module docstring for the sources), plus model/dataset/epochs."""
    path = Path(path)
    results = path / RESULTS_FILE
    if results.is_file():
        data = json.loads(results.read_text())
        return {
            "model": data.get("model"),
            "dataset": data.get("dataset"),
            "epochs": data.get("epochs"),
            **data.get("metrics", {}),
        }
    if any(path.glob("csv/version_*/metrics.csv")):
        return _read_csv_logs(path)
    folder = _wandb_run_folder(path)
    if folder is not None:
        return _read_wandb(folder)
    raise FileNotFoundError(
        f"{path} is not a run: it has no {RESULTS_FILE}, no csv/version_*/metrics.csv and "
        "no W&B run folder (wandb/offline-run-*). Pass the run_dir of a "
        "`python -m epic_zoo.run` job."
    )


def _is_run(path: Path) -> bool:
    return (
        (path / RESULTS_FILE).is_file()
        or any(path.glob("csv/version_*/metrics.csv"))
        or _wandb_run_folder(path) is not None
    )


def find_runs(path: str | Path) -> list[Path]:
    """``[path]`` if it is a run, else every run folder below it (sorted)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if _is_run(path):
        return [path]
    found = {p.parent for p in path.rglob(RESULTS_FILE)}
    found |= {p.parents[2] for p in path.rglob("csv/version_*/metrics.csv")}
    return sorted(found)


def compare(paths: Sequence[str | Path]) -> dict[str, dict[str, object]]:
    """``{run label: values}`` for every run found under ``paths`` (labels are the paths)."""
    runs: dict[str, dict[str, object]] = {}
    for path in paths:
        found = find_runs(path)
        if not found:
            raise FileNotFoundError(
                f"no runs under {path} (a run folder holds {RESULTS_FILE} or "
                "csv/version_*/metrics.csv; W&B: wandb/offline-run-*)"
            )
        for run in found:
            try:
                runs[str(run)] = read_run(run)
            except (OSError, ValueError, yaml.YAMLError, struct.error) as err:
                reason = " ".join(str(err).split())  # YAML errors span lines
                raise ValueError(
                    f"cannot read the run {run}: {reason}. Its log files are damaged or not "
                    "epic_zoo's; leave it out, or rerun it"
                ) from err
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m epic_zoo.compare",
        description="Print a side-by-side table of the final test metrics of epic_zoo runs.",
    )
    parser.add_argument(
        "runs", nargs="+", help="run folders (run_dir of epic_zoo.run), or folders holding runs"
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=None,
        help=f"columns to show (default: those of {', '.join(DEFAULT_METRICS)} present)",
    )
    parser.add_argument("--sort", default=None, help="sort rows by this column, best first")
    args = parser.parse_args(argv)

    try:
        runs = compare(args.runs)
    except (OSError, ValueError) as err:  # the input and its fix are in the message
        print(f"error: {err}", file=sys.stderr)
        return 2
    metrics = args.metrics or [m for m in DEFAULT_METRICS if any(m in v for v in runs.values())]
    if not metrics:
        metrics = sorted({k for v in runs.values() for k in v if k.startswith(("test/", "val/"))})
    info = [
        c
        for c in ("model", "dataset", "epochs")
        if any(v.get(c) is not None for v in runs.values())
    ]
    if args.sort:
        descending = "ssim" in args.sort

        def key(item: tuple[str, dict[str, object]]) -> float:
            value = item[1].get(args.sort)
            if not isinstance(value, (int, float)):
                return math.inf
            return -value if descending else value

        runs = dict(sorted(runs.items(), key=key))
    print(format_table(runs, [*info, *metrics]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compare finished runs, seeds grouped: ``python -m epic_zoo.compare RUNS...``.

A run is read from, in this order:

1. ``{run_dir}/results.json`` written by :func:`epic_zoo.run.train` (test
   metrics of the tested checkpoint, seed, the mean-map baseline, the
   learning curve and the composed config);
2. its CSV logs ``{run_dir}/csv/version_*/metrics.csv`` (versions in order,
   the last value of each ``test/*`` column; ``val/*`` if it was never
   tested) and ``hparams.yaml``;
3. W&B runs online, through the public API (``wandb.Api``), when an argument
   is ``wandb:ENTITY/PROJECT`` (every finished run) or
   ``wandb:ENTITY/PROJECT/RUN_ID``. Offline W&B folders are not read: their
   run folder holds ``results.json`` and CSV logs, or upload them with
   ``wandb sync`` and read them online.

A folder that is not a run itself (``runs/``, a ``multirun/`` sweep) is
searched for runs. Runs whose settings differ only by their seed (and by
where they ran: ``run_dir``, threads, loggers, data paths) form one group,
shown as mean +- sample standard deviation over its runs with the seeds and
their count. Columns: MAE in m/s first, then SSIM, then the input-free
mean-map baseline's MAE and the ratio of the two (results.json only).
Examples::

    python -m epic_zoo.compare runs/ multirun/epic_lite
    python -m epic_zoo.compare multirun/epic_lite --runs         # one row per run
    python -m epic_zoo.compare multirun/epic_lite --plot curves.png
    python -m epic_zoo.compare wandb:my-team/epic_zoo
    python -m epic_zoo.compare runs/ --csv table.csv --json table.json

From Python, :func:`compare_frame` returns the same table as a pandas
DataFrame (a group's metric as ``COLUMN`` = mean and ``COLUMN_std`` = sample
standard deviation, full precision; the Markdown rounds them)::

    from epic_zoo.compare import compare_frame
    df = compare_frame(["multirun/epic_lite"])
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from epic_zoo.data.transforms import VELOCITY_SCALE_MS
from epic_zoo.run_identity import NON_RESULT_KEYS, flatten
from epic_zoo.run_layout import RESULTS_FILE
from epic_zoo.run_record import RunRecordError, read_run_record
from epic_zoo.tables import LEAD_METRICS, Stat, format_table

WANDB_PREFIX = "wandb:"
DEFAULT_METRICS: tuple[str, ...] = tuple(f"test/{m}" for m in LEAD_METRICS)
"""Columns shown by default, when present: MAE in m/s first, then SSIM."""
BASELINE_COLUMNS: tuple[str, ...] = ("baseline/mean_map_mae_ms", "baseline/mae_ratio_to_mean_map")
"""The mean-map baseline's test MAE (m/s) and the run's MAE as a multiple of it."""
IGNORED_KEYS: frozenset[str] = NON_RESULT_KEYS | {
    "seed",
    "trainer.devices",
    "trainer.num_nodes",
    "root",  # flat datamodule hparams (CSV-only runs)
    "openfwi_root",
    "num_workers",
    "run_seed",  # the run's seed in the CSV logger's hparams.yaml
}
"""Config keys (dotted) that do not make runs different settings: what does not change a run's
result (:data:`~epic_zoo.run_identity.NON_RESULT_KEYS`), the seed (runs are grouped over seeds) and
the device count. Grouping ignores them."""


class CompareError(Exception):
    """An expected failure: the message names the bad input and the fix."""


def _reason(err: BaseException) -> str:
    """``err`` on one line (YAML and JSON errors span several)."""
    return f"{type(err).__name__}: " + " ".join(str(err).split())


# ---------------------------------------------------------------------- reading


def setting_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened config without :data:`IGNORED_KEYS` (and anything below them)."""
    return {
        k: v
        for k, v in flatten(config).items()
        if not any(k == ig or k.startswith(f"{ig}.") for ig in IGNORED_KEYS)
    }


def _from_results(path: Path) -> dict[str, Any]:
    try:
        record = read_run_record(path / RESULTS_FILE)
    except RunRecordError as err:
        raise CompareError(f"{err} (or leave it out)") from None
    baseline = record.baseline
    config = record.config or {
        "recipe_name": record.recipe,
        "model": {"name": record.model},
        "dataset": record.dataset,
        "task": record.task,
        "data": record.data,
        "schedule": {k: record.schedule.get(k) for k in ("scheduler", "lr")},
        "epochs": record.epochs,
    }
    return {
        "recipe": record.recipe,
        "model": record.model,
        "dataset": record.dataset,
        "seed": record.seed,
        "epochs": record.epochs,
        "samples_seen": record.samples_seen,
        **record.metrics,
        "baseline/mean_map_mae_ms": baseline.get("mean_map_mae_ms"),
        "baseline/mae_ratio_to_mean_map": baseline.get("mae_ratio_to_mean_map"),
        "learns": baseline.get("learns"),
        "learning_curve": record.learning_curve,
        "setting": setting_of(config),
    }


def _from_csv_logs(run_dir: Path) -> dict[str, Any]:
    """Final ``test/*`` (else ``val/*``) values from all CSV log versions, plus hparams."""
    files = sorted(
        run_dir.glob("csv/version_*/metrics.csv"),
        key=lambda p: int(p.parent.name.split("_")[-1]),
    )
    last: dict[str, float] = {}
    try:
        for path in files:
            with path.open(newline="") as f:
                for row in csv.DictReader(f):
                    for key, value in row.items():
                        if value not in ("", None) and key.startswith(("test/", "val/")):
                            last[key] = float(value)
        hparams_file = files[-1].parent / "hparams.yaml"
        hparams = yaml.safe_load(hparams_file.read_text()) if hparams_file.is_file() else {}
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise CompareError(
            f"cannot read the CSV logs of {run_dir} ({_reason(err)}); "
            "leave it out, or rerun the run"
        ) from err
    hparams = hparams if isinstance(hparams, dict) else {}
    tested = {k: v for k, v in last.items() if k.startswith("test/")}
    return {
        "model": hparams.get("model_name"),
        "dataset": hparams.get("dataset"),
        "seed": _csv_run_seed(run_dir, hparams),
        **(tested or last),
        "learning_curve": [],
        "setting": setting_of(hparams),
    }


def _csv_run_seed(run_dir: Path, hparams: Mapping[str, Any]) -> int | None:
    """The run's seed without results.json: the CSV hparams' ``run_seed``, else Hydra's config.

    (``seed`` in the CSV hparams is the *data* seed of the datamodule.)
    """
    if isinstance(hparams.get("run_seed"), int):
        return int(hparams["run_seed"])
    hydra_config = run_dir / ".hydra" / "config.yaml"
    try:
        config = yaml.safe_load(hydra_config.read_text()) if hydra_config.is_file() else None
    except (OSError, yaml.YAMLError):
        return None
    seed = config.get("seed") if isinstance(config, dict) else None
    return int(seed) if isinstance(seed, int) else None


def read_run(path: str | Path) -> dict[str, Any]:
    """One run's values: metrics, ``model``, ``dataset``, ``seed``, baseline, curve, ``setting``.

    ``setting`` is the flattened config minus :data:`IGNORED_KEYS`: runs with
    equal settings are seeds of one group. Raises :class:`CompareError` when
    ``path`` is not a run or its files cannot be read.
    """
    path = Path(path)
    if (path / RESULTS_FILE).is_file():
        return _from_results(path)
    if any(path.glob("csv/version_*/metrics.csv")):
        return _from_csv_logs(path)
    raise CompareError(
        f"{path} is not a run: it has no {RESULTS_FILE} and no csv/version_*/metrics.csv. "
        "Pass the run_dir of a `python -m epic_zoo.run` job (or a folder holding runs)."
    )


def _is_run(path: Path) -> bool:
    return (path / RESULTS_FILE).is_file() or any(path.glob("csv/version_*/metrics.csv"))


def find_runs(path: str | Path) -> list[Path]:
    """``[path]`` if it is a run, else every run folder below it (sorted)."""
    path = Path(path)
    if not path.exists():
        raise CompareError(f"{path} does not exist; pass a run_dir or a folder holding runs")
    if _is_run(path):
        return [path]
    found = {p.parent for p in path.rglob(RESULTS_FILE)}
    found |= {p.parents[2] for p in path.rglob("csv/version_*/metrics.csv")}
    return sorted(found)


def _from_wandb_run(run: Any) -> dict[str, Any]:
    """Values of a ``wandb.apis.public.Run`` (its config as logged by :mod:`epic_zoo.run`)."""
    config = dict(run.config or {})
    summary = {k: v for k, v in dict(run.summary_metrics or {}).items() if not k.startswith("_")}
    model, data = config.get("model") or {}, config.get("data") or {}
    return {
        "recipe": config.get("recipe_name"),
        "model": model.get("name") if isinstance(model, Mapping) else None,
        "dataset": data.get("dataset") if isinstance(data, Mapping) else None,
        "seed": config.get("seed"),
        "samples_seen": summary.get("samples_seen"),
        **{
            k: float(v)
            for k, v in summary.items()
            if k.startswith(("test/", "baseline/")) and isinstance(v, (int, float))
        },
        "learns": summary.get("baseline/learns"),
        "learning_curve": [],
        "setting": setting_of(config),
    }


def read_wandb(spec: str, api: Any | None = None) -> dict[str, dict[str, Any]]:
    """Runs of ``wandb:ENTITY/PROJECT`` (finished ones) or ``wandb:ENTITY/PROJECT/RUN_ID``.

    Uses the public ``wandb.Api`` (log in first: ``wandb login`` or
    ``WANDB_API_KEY``); ``api`` replaces it (tests). Labels are
    ``wandb:ENTITY/PROJECT/RUN_ID (name)``.
    """
    target = spec[len(WANDB_PREFIX) :].strip("/")
    parts = target.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise CompareError(
            f"{spec!r} is not a W&B path; write wandb:ENTITY/PROJECT or wandb:ENTITY/PROJECT/RUN_ID"
        )
    try:
        if api is None:
            import wandb

            api = wandb.Api()
        if len(parts) == 3:
            runs = [api.run(target)]
        else:
            runs = list(api.runs(target, filters={"state": "finished"}))
    except CompareError:
        raise
    except Exception as err:  # network, auth and "not found" errors of the W&B client
        raise CompareError(
            f"cannot read {spec} from W&B ({_reason(err)}); check the "
            "entity/project, log in (`wandb login` or WANDB_API_KEY) and the network, or "
            "compare the local run folders instead"
        ) from err
    return {f"wandb:{'/'.join(r.path)} ({r.name})": _from_wandb_run(r) for r in runs}


def compare(
    paths: Sequence[str | Path], api: Any | None = None, skipped: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """``{run label: values}`` for every run under ``paths`` (labels: paths or W&B ids).

    A run named in ``paths`` that cannot be read raises :class:`CompareError`.
    One found below a folder of several runs is left out, its reason appended
    to ``skipped``, when that list is given (else it raises too).
    """
    runs: dict[str, dict[str, Any]] = {}
    for path in paths:
        if str(path).startswith(WANDB_PREFIX):
            runs.update(read_wandb(str(path), api))
            continue
        found = find_runs(path)
        if not found:
            raise CompareError(
                f"no runs under {path}: a run folder holds {RESULTS_FILE} or "
                "csv/version_*/metrics.csv. Train one with `python -m epic_zoo.run recipe=NAME` "
                "and pass its run_dir (default runs/RECIPE/DATASET)"
            )
        for run in found:
            try:
                runs[str(run)] = read_run(run)
            except CompareError as err:
                if skipped is None or found == [Path(path)]:
                    raise
                skipped.append(str(err))
        if skipped is not None and not any(str(r) in runs for r in found):
            raise CompareError(
                f"no readable runs under {path} ({len(found)} found, all damaged: see above)"
            )
    return runs


# --------------------------------------------------------------------- grouping
def _setting_key(values: Mapping[str, Any]) -> str:
    return json.dumps(values.get("setting") or {}, sort_keys=True, default=str)


def group_runs(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """``{group label: [run labels]}``: runs with equal ``setting`` (seeds of one setting).

    The label is ``recipe model dataset``; where two groups would share it,
    the settings that tell them apart are appended (``task.lr=0.001``).
    """
    by_key: dict[str, list[str]] = {}
    for label, values in runs.items():
        by_key.setdefault(_setting_key(values), []).append(label)
    names: dict[str, str] = {}
    for key, members in by_key.items():
        first = runs[members[0]]
        parts = [first.get("recipe"), first.get("model"), first.get("dataset")]
        names[key] = " ".join(str(p) for p in parts if p) or members[0]
    clashes: dict[str, list[str]] = {}
    for key, name in names.items():
        clashes.setdefault(name, []).append(key)
    groups: dict[str, list[str]] = {}
    for name, keys in clashes.items():
        if len(keys) == 1:
            groups[name] = by_key[keys[0]]
            continue
        settings = [json.loads(k) for k in keys]
        differing = sorted(
            {k for s in settings for k in s if len({json.dumps(t.get(k)) for t in settings}) > 1}
        )
        for key, setting in zip(keys, settings, strict=True):
            shown = ", ".join(f"{k}={setting.get(k)}" for k in differing[:3])
            more = f" +{len(differing) - 3}" if len(differing) > 3 else ""
            groups[f"{name} ({shown}{more})"] = by_key[key]
    return groups


def summarise(
    runs: Mapping[str, Mapping[str, Any]], columns: Sequence[str]
) -> dict[str, dict[str, object]]:
    """One row per group: ``seeds``, ``n``, ``learns`` (k/n) and a :class:`Stat` per column."""
    rows: dict[str, dict[str, object]] = {}
    for name, members in group_runs(runs).items():
        values = [runs[m] for m in members]
        seeds = [v.get("seed") for v in values]
        learns = [v.get("learns") for v in values if v.get("learns") is not None]
        row: dict[str, object] = {
            "seeds": ",".join("?" if s is None else str(s) for s in seeds),
            "n": len(values),
        }
        for column in columns:
            numbers = [
                v[column]
                for v in values
                if isinstance(v.get(column), (int, float)) and not isinstance(v[column], bool)
            ]
            row[column] = Stat(numbers) if numbers else None
        if learns:
            row["learns"] = f"{sum(bool(x) for x in learns)}/{len(learns)}"
        rows[name] = row
    return rows


# ------------------------------------------------------------------------- plot
def plot_learning_curves(runs: Mapping[str, Mapping[str, Any]], out: str | Path) -> Path:
    """Validation MAE (m/s) against samples seen: per group the mean over its seeds and their range.

    Reads each run's ``learning_curve`` (results.json); a group of several runs
    gets a band from the lowest to the highest run at each point; the mean-map baseline
    is drawn when all plotted runs share one. Raises :class:`CompareError`
    when no run has a curve.
    """
    from epic_zoo.plots import learning_curve_figure, save_figure

    curves: dict[str, list[tuple[float, float]]] = {}
    spread: dict[str, list[tuple[float, float, float]]] = {}
    baselines: set[float] = set()
    for name, members in group_runs(runs).items():
        points: dict[float, list[float]] = {}
        for member in members:
            values = runs[member]
            for row in values.get("learning_curve") or []:
                mae_ms = row.get("val/mae_ms", row.get("val/mae", math.nan) * VELOCITY_SCALE_MS)
                points.setdefault(float(row["samples_seen"]), []).append(float(mae_ms))
            if points and values.get("baseline/mean_map_mae_ms") is not None:
                baselines.add(round(float(values["baseline/mean_map_mae_ms"]), 3))
        if points:
            label = f"{name} (n={len(members)}, band: min-max)" if len(members) > 1 else name
            curves[label] = [(x, statistics.fmean(ys)) for x, ys in sorted(points.items())]
            spread[label] = [(x, min(ys), max(ys)) for x, ys in sorted(points.items())]
    if not curves:
        raise CompareError(
            "no learning curves to plot: only results.json of runs trained with this "
            "version of epic_zoo.run carries `learning_curve`; rerun (it resumes) or drop --plot"
        )
    title = "validation MAE vs samples seen (mean over seeds, band: their range)"
    fig = learning_curve_figure(
        curves,
        mean_map_mae_ms=baselines.pop() if len(baselines) == 1 else None,
        title=title,
        spread=spread,
    )
    return save_figure(fig, Path(out))


# ------------------------------------------------------------------------ frames
INFO_COLUMNS: tuple[str, ...] = ("model", "dataset", "seed", "epochs", "samples_seen")
"""Per-run columns before the metrics (``--runs``), when any run has them."""


def select_metrics(
    runs: Mapping[str, Mapping[str, Any]], requested: Sequence[str] | None = None
) -> list[str]:
    """The metric columns: ``requested``, else :data:`DEFAULT_METRICS` and the baseline present.

    Columns no run has a value for are dropped; with none left, every
    ``test/*`` or ``val/*`` key of the runs.
    """
    metrics = (
        list(requested)
        if requested
        else [
            m for m in (*DEFAULT_METRICS, *BASELINE_COLUMNS) if any(m in v for v in runs.values())
        ]
    )
    metrics = [m for m in metrics if any(v.get(m) is not None for v in runs.values())]
    if not metrics:
        metrics = sorted({k for v in runs.values() for k in v if k.startswith(("test/", "val/"))})
    return metrics


def table_rows(
    runs: Mapping[str, Mapping[str, Any]],
    metrics: Sequence[str],
    *,
    per_run: bool = False,
    sort: str | None = None,
) -> tuple[dict[str, dict[str, object]], list[str], str]:
    """``(rows, columns, label header)`` of the table: one row per group or per run.

    The one source of the Markdown table, the CSV/JSON files and the DataFrame.
    """
    if per_run:
        info = [c for c in INFO_COLUMNS if any(v.get(c) is not None for v in runs.values())]
        columns = [*info, *metrics, "learns"]
        rows = {label: {c: v.get(c) for c in columns} for label, v in runs.items()}
        return _sort(rows, sort), columns, "run"
    rows = summarise(runs, metrics)
    extra = ["learns"] if any("learns" in r for r in rows.values()) else []
    return _sort(rows, sort), ["seeds", "n", *metrics, *extra], "group"


def rows_frame(
    rows: Mapping[str, Mapping[str, object]], columns: Sequence[str], label: str
) -> pd.DataFrame:
    """The table as a DataFrame indexed by ``label``.

    A column of :class:`Stat` cells (a group's metric) becomes ``COLUMN`` (the
    mean) and ``COLUMN_std`` (sample standard deviation; NaN for one run);
    other cells are kept as they are.
    """
    numeric = {c for row in rows.values() for c, v in row.items() if isinstance(v, Stat)}
    records = []
    for name, row in rows.items():
        record: dict[str, object] = {label: name}
        for column in columns:
            value = row.get(column)
            if column in numeric:
                stat = value if isinstance(value, Stat) else Stat([])
                record[column], record[f"{column}_std"] = stat.mean, stat.std
            else:
                record[column] = value
        records.append(record)
    return pd.DataFrame.from_records(records).set_index(label)


def compare_frame(
    paths: Sequence[str | Path],
    *,
    metrics: Sequence[str] | None = None,
    per_run: bool = False,
    sort: str | None = None,
    api: Any | None = None,
) -> pd.DataFrame:
    """The comparison table of the runs under ``paths`` as a pandas DataFrame.

    Indexed by group (runs that differ only by seed; columns ``seeds``, ``n``,
    each metric's mean and ``METRIC_std``, ``learns``) or, with ``per_run``,
    by run (``model``, ``dataset``, ``seed``, ... and the metrics). Values
    at full precision; the Markdown table of ``python -m epic_zoo.compare``
    shows the same rows rounded. Raises :class:`CompareError` as :func:`compare`.
    """
    runs = compare(paths, api)
    return rows_frame(*table_rows(runs, select_metrics(runs, metrics), per_run=per_run, sort=sort))


def write_frame(
    frame: pd.DataFrame, csv_path: str | Path | None, json_path: str | Path | None
) -> None:
    """Write ``frame`` as CSV (index as the first column) and/or JSON (a list of row objects)."""
    if csv_path:
        Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(csv_path)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        text = frame.reset_index().to_json(orient="records", indent=2)
        Path(json_path).write_text(text + "\n")


# ---------------------------------------------------------------------------- CLI
def _sort(rows: dict[str, dict[str, object]], column: str | None) -> dict[str, dict[str, object]]:
    if not column:
        return rows
    descending = "ssim" in column

    def key(item: tuple[str, dict[str, object]]) -> float:
        value = item[1].get(column)
        value = value.mean if isinstance(value, Stat) else value
        if not isinstance(value, (int, float)) or math.isnan(value):
            return math.inf
        return -value if descending else value

    return dict(sorted(rows.items(), key=key))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status (2 on an expected failure, one line)."""
    parser = argparse.ArgumentParser(
        prog="python -m epic_zoo.compare",
        description=(
            "Table of the final test metrics of epic_zoo runs; runs that differ only by "
            "seed are one row (mean ± std, seeds, count)."
        ),
    )
    parser.add_argument(
        "runs",
        nargs="+",
        help="run folders (run_dir of epic_zoo.run), folders holding runs, "
        "or wandb:ENTITY/PROJECT[/RUN_ID]",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=None,
        help=f"columns to show (default: those of {', '.join(DEFAULT_METRICS)} present, "
        "then the mean-map baseline and ratio)",
    )
    parser.add_argument("--sort", default=None, help="sort rows by this column, best first")
    parser.add_argument(
        "--runs", dest="per_run", action="store_true", help="one row per run (with its seed)"
    )
    parser.add_argument(
        "--plot",
        default=None,
        metavar="PNG",
        help="write learning curves (val MAE vs samples; mean and range per group)",
    )
    parser.add_argument("--csv", default=None, metavar="CSV", help="also write the table as CSV")
    parser.add_argument(
        "--json", default=None, metavar="JSON", help="also write the table as JSON (row objects)"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite existing --plot, --csv or --json files"
    )
    args = parser.parse_args(argv)

    skipped: list[str] = []
    for flag, target in (("--plot", args.plot), ("--csv", args.csv), ("--json", args.json)):
        if target and Path(target).exists() and not args.force:
            print(
                f"error: {flag} {target} already exists; pass --force to overwrite it, "
                "or choose another file",
                file=sys.stderr,
            )
            return 2
    try:
        runs = compare(args.runs, skipped=skipped)
        plotted = plot_learning_curves(runs, args.plot) if args.plot else None
    except CompareError as err:
        for reason in skipped:
            print(f"skipped: {reason}", file=sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 2
    for reason in skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    rows, columns, label = table_rows(
        runs, select_metrics(runs, args.metrics), per_run=args.per_run, sort=args.sort
    )
    print(format_table(rows, columns, first=label))
    try:
        write_frame(rows_frame(rows, columns, label), args.csv, args.json)
    except OSError as err:
        print(f"error: cannot write the table ({err}); check the path", file=sys.stderr)
        return 2
    for path in (args.csv, args.json):
        if path:
            print(f"table: {path}")
    if plotted is not None:
        print(f"learning curves: {plotted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

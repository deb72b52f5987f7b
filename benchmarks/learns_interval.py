"""The "learns" verdict of trained runs with its 95 % interval over the test maps, and the paired change
against the committed weights on the same maps.

Usage (from the repository root)::

    python benchmarks/learns_interval.py WORK/runs/zoo/epic/flatvel-a --data-root WORK/data \\
        --json benchmarks/results/scaling/zoo/learns_interval.json

For each run folder (its ``results.json`` names the dataset, data profile and
seed; the data are read from ``{data-root}/{profile}-seed{seed}/{dataset}``;
a union run gives one row per member dataset):

- the run's checkpoint and the weights of ``--against`` (default the committed
  ``epic.{dataset}``; or a run folder, e.g. the specialist beside a union
  model: ``WORK/runs/zoo/epic/{dataset}``) are scored map by map on the run's
  test split (:func:`epic_zoo.evaluation.per_map_mae`);
- each against its own input-free mean map: the mean of the training maps it
  was trained on (the run's split; for the committed weights the first
  ``train`` maps of the same split, since sample ``i`` of a split depends only on
  ``(dataset, seed, split, i)``), scored on the same maps;
- both on the run's validation split too (``val_mae_ms``): the run replaces the
  committed weights as the default ``epic.{dataset}`` only where it is better
  there (``better_on_validation``), so the choice does not look at the test maps;
- bootstrap 95 % intervals (:func:`epic_zoo.evidence.bootstrap_ratio`, maps
  resampled in pairs) of each ratio to its mean map (it *learns* with
  confidence where the whole interval is at most 0.6) and of the run's MAE over
  the committed weights' (below 1: the run is better on these maps).

The interval covers which test maps were drawn, not the training seed (the
second-seed runs give that spread). Every measured MAE is checked against the
MAE its own record states (exit status 1 when one is off by more than 1 %:
wrong data or weights).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np
import torch

from epic_zoo.data.store import SHARD_GLOB, H5Split, profile_root
from epic_zoo.evaluation import per_map_mae
from epic_zoo.evidence import bootstrap_ratio
from epic_zoo.models import load_model
from epic_zoo.models.baselines import LEARNS_RATIO
from epic_zoo.provenance import git_commit
from epic_zoo.run_layout import RESULTS_FILE

TOLERANCE = 0.01
"""Largest relative difference between a measured MAE and its record's before the check fails."""


def training_mean_map(train_dir: Path, maps: int | None = None) -> np.ndarray:
    """The mean of the first ``maps`` (all: ``None``) training velocities, m/s, ``[1, 70, 70]`` float64."""
    total, count = None, 0
    for shard in sorted(train_dir.glob(SHARD_GLOB)):
        if maps is not None and count >= maps:
            break
        with h5py.File(shard, "r") as f:
            velocity = np.asarray(f["velocity"][:], dtype=np.float64)
        if maps is not None:
            velocity = velocity[: maps - count]
        total = velocity.sum(0) if total is None else total + velocity.sum(0)
        count += len(velocity)
    if not count or (maps is not None and count < maps):
        raise SystemExit(f"{train_dir}: {count} training maps found, {maps or 'some'} needed")
    return total / count


def test_velocities(split: H5Split) -> np.ndarray:
    """The test split's velocities (m/s), ``[N, 1, 70, 70]`` float64."""
    return np.stack([split[i][1] for i in range(len(split))]).astype(np.float64)


def mean_map_mae(mean_map: np.ndarray, velocities: np.ndarray) -> np.ndarray:
    """Per-map MAE (m/s) of a constant mean map."""
    return np.abs(velocities - mean_map).reshape(len(velocities), -1).mean(1)


def _within(measured: float, recorded: float | None) -> bool:
    return recorded is None or abs(measured - recorded) <= TOLERANCE * recorded


class Weights(NamedTuple):
    """One side of a comparison: a model and what its record says about one dataset."""

    name: str
    model: torch.nn.Module
    seed: int
    train_maps: int
    test_maps: int
    samples_seen: int | None
    recorded_mae_ms: float | None
    recorded_mean_map_mae_ms: float | None


def run_name(run: Path) -> str:
    """A run folder named from its ``runs`` folder down (``runs/zoo/epic/flatvel-a``): no machine path."""
    parts = run.resolve().parts
    below = [i for i, part in enumerate(parts) if part == "runs"]
    return "/".join(parts[below[-1] :]) if below else run.name


def run_weights(run: Path, dataset: str) -> Weights:
    """A run folder's best checkpoint; for a union run, its record of member ``dataset``."""
    record = json.loads((run / RESULTS_FILE).read_text())
    entry = (record.get("per_dataset") or {}).get(dataset, record)
    profile = record["data"]["profile"]
    return Weights(
        name=run_name(run),
        model=load_model(str(run)),
        seed=int(record["seed"]),
        train_maps=int(profile["train"]),
        test_maps=int(entry.get("test_samples", profile["test"])),
        samples_seen=record.get("samples_seen"),
        recorded_mae_ms=entry["metrics"].get("test/mae_ms"),
        recorded_mean_map_mae_ms=(entry.get("baseline") or {}).get("mean_map_mae_ms"),
    )


def registered_weights(name: str) -> Weights:
    """Registered (committed or Hub) weights and their registry record."""
    from epic_zoo import hub

    entry = hub.read_registry()[name]
    return Weights(
        name=name,
        model=load_model(name),
        seed=int(entry.data["seed"]),
        train_maps=int(entry.data["train"]),
        test_maps=int(entry.data["test"]),
        samples_seen=(entry.training or {}).get("samples_seen"),
        recorded_mae_ms=entry.metrics.get("mae_ms"),
        recorded_mean_map_mae_ms=(entry.baseline or {}).get("mean_map_mae_ms"),
    )


def weights_for(spec: str, dataset: str) -> Weights:
    """``spec`` with ``{dataset}`` filled in: a run folder if one is there, else a registered name."""
    filled = spec.format(dataset=dataset)
    path = Path(filled)
    return (
        run_weights(path, dataset)
        if (path / RESULTS_FILE).is_file()
        else registered_weights(filled)
    )


def score(weights: Weights, folder: Path, truth: np.ndarray, test: H5Split) -> dict[str, Any]:
    """Per-map MAE of ``weights`` and of their own mean map on the test maps, with the summary
    (and the MAE on the validation maps beside them)."""
    mae = per_map_mae(weights.model, test)
    val = per_map_mae(weights.model, H5Split(folder / "val"))
    mean = mean_map_mae(training_mean_map(folder / "train", weights.train_maps), truth)
    return {
        "per_map": mae,
        "row": {
            "name": weights.name,
            "samples_seen": weights.samples_seen,
            "train_maps": weights.train_maps,
            "mae_ms": float(mae.mean()),
            "recorded_mae_ms": weights.recorded_mae_ms,
            "mean_map_mae_ms": float(mean.mean()),
            "recorded_mean_map_mae_ms": weights.recorded_mean_map_mae_ms,
            "ratio": float(mae.mean() / mean.mean()),
            "ratio_ci95": bootstrap_ratio(mae, mean),
            "val_mae_ms": float(val.mean()),
            "val_maps": len(val),
        },
        "ok": _within(float(mae.mean()), weights.recorded_mae_ms)
        and _within(float(mean.mean()), weights.recorded_mean_map_mae_ms),
    }


def check_run(run: Path, data_root: Path, against: str | None) -> list[dict[str, Any]]:
    """One row per dataset of the run (each member of a union): the run against its mean map and,
    with ``against``, against those weights on the same maps."""
    record = json.loads((run / RESULTS_FILE).read_text())
    datasets = list(record.get("per_dataset") or [record["dataset"]])
    rows = []
    for dataset in datasets:
        weights = run_weights(run, dataset)
        folder = profile_root(data_root, record["data"]["profile"]["name"], weights.seed) / dataset
        test = H5Split(folder / "test")
        truth = test_velocities(test)
        mine = score(weights, folder, truth, test)
        row: dict[str, Any] = {
            "run": weights.name,
            "dataset": dataset,
            "maps": len(truth),
            **{k: v for k, v in mine["row"].items() if k != "name"},
            "run_commit": record.get("commit"),
        }
        row["learns_with_confidence"] = row["ratio_ci95"][1] <= LEARNS_RATIO
        ok = mine["ok"]
        if against:
            other = weights_for(against, dataset)
            if other.test_maps != len(truth) or other.seed != weights.seed:
                raise SystemExit(
                    f"--against {other.name}: tested on {other.test_maps} maps of seed {other.seed}, "
                    f"not the run's {len(truth)} of seed {weights.seed}"
                )
            theirs = score(other, folder, truth, test)
            row["against"] = theirs["row"]
            row["run_over_against"] = float(mine["per_map"].mean() / theirs["per_map"].mean())
            row["run_over_against_ci95"] = bootstrap_ratio(mine["per_map"], theirs["per_map"])
            row["lower_on_maps"] = int((mine["per_map"] < theirs["per_map"]).sum())
            row["better_on_validation"] = row["val_mae_ms"] < theirs["row"]["val_mae_ms"]
            ok = ok and theirs["ok"]
        row["matches_records"] = bool(ok)
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """One table row per run and dataset: MAE, mean map, ratio with interval, against other weights."""
    lines = [
        "| run | dataset | samples seen | MAE (m/s) | mean map (m/s) | x mean map (95 % interval) | "
        "against: weights, MAE (m/s; x their mean map, interval) | run / against (95 % interval) | "
        "lower on maps | validation MAE (m/s): run / against |",
        "|---|---|---:|---:|---:|---|---|---|---:|---|",
    ]
    for r in rows:
        lo, hi = r["ratio_ci95"]
        a = r.get("against")
        old = (
            f"`{a['name']}`, {a['mae_ms']:.1f} ({a['ratio']:.2f}x, "
            f"{a['ratio_ci95'][0]:.2f}-{a['ratio_ci95'][1]:.2f})"
            if a
            else "-"
        )
        paired = (
            f"{r['run_over_against']:.2f} ({r['run_over_against_ci95'][0]:.2f}-"
            f"{r['run_over_against_ci95'][1]:.2f})"
            if a
            else "-"
        )
        lower = f"{r['lower_on_maps']} of {r['maps']}" if a else "-"
        val = f"{r['val_mae_ms']:.1f}" + (f" / {a['val_mae_ms']:.1f}" if a else "")
        lines.append(
            f"| `{r['run']}` | {r['dataset']} | {r['samples_seen']:,} | {r['mae_ms']:.1f} | {r['mean_map_mae_ms']:.1f} | "
            f"{r['ratio']:.2f} ({lo:.2f}-{hi:.2f}) | {old} | {paired} | {lower} | {val} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (with results.json)")
    parser.add_argument("--data-root", type=Path, required=True, help="root of the runs' data")
    parser.add_argument(
        "--against",
        default="epic.{dataset}",
        help="weights to compare with on the same maps: a registered name or a run folder, "
        "{dataset} filled in ('' for none)",
    )
    parser.add_argument("--json", type=Path, help="write the rows here (merged by run and dataset)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [
        row for run in args.runs for row in check_run(run, args.data_root, args.against or None)
    ]
    print(markdown(rows), end="")
    if args.json:
        old = json.loads(args.json.read_text())["rows"] if args.json.exists() else []
        keys = {(r["run"], r["dataset"]) for r in rows}
        merged = [r for r in old if (r["run"], r["dataset"]) not in keys] + rows
        merged.sort(key=lambda r: r["dataset"])
        payload = {
            "commit": git_commit(),
            "level": 0.95,
            "learns_ratio": LEARNS_RATIO,
            "rows": merged,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    bad = [r["dataset"] for r in rows if not r["matches_records"]]
    if bad:
        print(
            f"measured MAE off its record by more than {TOLERANCE:.0%}: {', '.join(bad)}",
            file=sys.stderr,
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

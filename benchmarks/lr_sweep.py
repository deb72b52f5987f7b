"""Learning-rate sweep report: one table per model, the lr each model then uses everywhere.

The protocol (docs/training.md, "The fair protocol"): every model trains with AdamW,
5 % linear warm-up and cosine decay sized from its real optimiser steps; its
learning rate is the value with the lowest *validation* MAE in one small
sweep at an equal budget on one dataset. The runs themselves are an ordinary
Hydra sweep of the runner, e.g. (FlatVel-A, 1000 training samples x 3 epochs)::

    python -m epic_zoo.run -m recipe=epic_lite data.profile=lite2k data.limit=1000 \\
        trainer.max_epochs=3 threads=1 task.lr=3e-4,1e-3,3e-3 \\
        hydra.sweep.dir=runs/lr_sweep/epic

This script reads their ``results.json`` files and writes the table::

    python benchmarks/lr_sweep.py runs/lr_sweep/epic runs/lr_sweep/inversionnet \\
        --out benchmarks/results/lr_sweep.md

``--pick MODEL`` prints only the chosen lr of one model (for scripts);
``--records DIR`` copies each run's ``results.json`` (machine paths removed) and
learning curve to ``DIR/{model}-lr{lr}/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from epic_zoo.evidence import copy_run_records
from epic_zoo.run_layout import RESULTS_FILE


def read_runs(folders: list[Path]) -> dict[str, list[dict]]:
    """``{model: [row, ...]}`` from every ``results.json`` under ``folders``."""
    runs: dict[str, list[dict]] = defaultdict(list)
    for folder in folders:
        for path in sorted(folder.rglob(RESULTS_FILE)):
            result = json.loads(path.read_text())
            curve = result.get("learning_curve") or []
            if not curve:
                continue
            best = min(curve, key=lambda row: row["val/mae"])
            runs[result["model"]].append(
                {
                    "lr": float(result["schedule"]["lr"]),
                    "best_val_mae_ms": best["val/mae"] * 1500.0,
                    "best_epoch": best["epoch"],
                    "final_val_mae_ms": curve[-1]["val/mae"] * 1500.0,
                    "samples_seen": result["samples_seen"],
                    "steps": result["schedule"]["steps"],
                    "wall_time_s": result["wall_time_s"],
                    "dataset": result["dataset"],
                    "run": str(path.parent),
                }
            )
    return {model: sorted(rows, key=lambda r: r["lr"]) for model, rows in runs.items()}


def copy_records(runs: dict[str, list[dict]], dest: Path) -> None:
    """Each run's records to ``dest/{model}-lr{lr:g}/``, its folder path replaced by ``runs/``."""
    for model, rows in runs.items():
        for row in rows:
            src = Path(row["run"])
            prefixes = (str(src.resolve().parent), str(src.parent))
            copy_run_records(src, dest / f"{model}-lr{row['lr']:g}", prefixes, logs=False)


def pick(rows: list[dict]) -> float:
    """The lr with the lowest best validation MAE."""
    return min(rows, key=lambda r: r["best_val_mae_ms"])["lr"]


def report(runs: dict[str, list[dict]]) -> str:
    lines = [
        "# Learning-rate sweep (validation MAE; the chosen lr is used on every dataset)",
        "",
        "Protocol: AdamW (weight decay 1e-4), batch 16, 5 % linear warm-up then cosine "
        "decay to 0 at the last real optimiser step, checkpoint selection by validation MAE; "
        "equal budget for every model. Selection uses the validation split only.",
        "",
        "| model | lr | best val MAE (m/s) | at epoch | final val MAE (m/s) | samples seen | steps | wall (s) | chosen |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, rows in sorted(runs.items()):
        chosen = pick(rows)
        for r in rows:
            lines.append(
                f"| {model} | {r['lr']:.0e} | {r['best_val_mae_ms']:.1f} | {r['best_epoch']} | "
                f"{r['final_val_mae_ms']:.1f} | {r['samples_seen']} | {r['steps']} | "
                f"{r['wall_time_s']:.0f} | {'**yes**' if r['lr'] == chosen else ''} |"
            )
        edge = chosen in (rows[0]["lr"], rows[-1]["lr"])
        if edge and len(rows) > 1:
            lines.append(f"| {model} | | (chosen lr is at the edge of the grid) | | | | | | |")
    datasets = sorted({r["dataset"] for rows in runs.values() for r in rows})
    lines += ["", f"Dataset: {', '.join(datasets)}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folders", nargs="+", type=Path, help="sweep folders holding results.json files"
    )
    parser.add_argument("--out", type=Path, help="write the Markdown table here")
    parser.add_argument("--pick", metavar="MODEL", help="print the chosen lr of MODEL and exit")
    parser.add_argument("--records", type=Path, help="copy each run's records here")
    args = parser.parse_args(argv)
    runs = read_runs(args.folders)
    if not runs:
        print(f"lr_sweep: no finished runs (results.json) under {args.folders}", file=sys.stderr)
        return 1
    if args.pick:
        if args.pick not in runs:
            print(
                f"lr_sweep: no runs of model {args.pick!r}; found {sorted(runs)}", file=sys.stderr
            )
            return 1
        print(f"{pick(runs[args.pick]):g}")
        return 0
    if args.records:
        copy_records(runs, args.records)
    text = report(runs)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

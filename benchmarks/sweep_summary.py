"""Summarise a bench sweep (``bench.csv``) into the README's results tables.

    python benchmarks/sweep_summary.py benchmarks/results/bench/bench.csv > benchmarks/results/bench/summary.md

Prints, as Markdown: SSIM per (dataset, model) with the count of datasets on
which each model's SSIM is >= centralised InversionNet's, and EPIC's latency,
communication-energy and payload ratios to InversionNet per link (geometric
mean, min and max over datasets). Every number is read from the CSV.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections import defaultdict
from pathlib import Path

MODELS = ("inversionnet", "epic", "epic-equal", "epic-isolated", "split", "federated")


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("csv", type=Path, help="bench.csv of a sweep")
    parser.add_argument(
        "--metric", default="ssim_openfwi", help="fidelity column (ssim_openfwi or ssim)"
    )
    args = parser.parse_args(argv)

    rows = list(csv.DictReader(args.csv.open()))
    ssim: dict[str, dict[str, float]] = defaultdict(dict)
    budget: dict[str, str] = {}
    for row in rows:
        if row["link"] == rows[0]["link"] and row["model"] in MODELS:
            ssim[row["dataset"]][row["model"]] = float(row[args.metric])
            if row["model"] == "inversionnet":
                budget[row["dataset"]] = f"{row['train_profile']}, {row['train_epochs']}"
    datasets = [d for d in ssim if "inversionnet" in ssim[d]]
    models = [m for m in MODELS if any(m in ssim[d] for d in datasets)]

    print(f"SSIM ({args.metric}) on the test split, per dataset and model (best value in bold):\n")
    print("| dataset | " + " | ".join(models) + " |")
    print("|---|" + "---|" * len(models))
    wins = {m: 0 for m in models}
    for d in datasets:
        best = max(ssim[d].values())
        cells = []
        for m in models:
            v = ssim[d].get(m)
            if v is None:
                cells.append("-")
                continue
            if v >= ssim[d]["inversionnet"]:
                wins[m] += 1
            cells.append(f"**{v:.3f}**" if v == best else f"{v:.3f}")
        print(f"| {d} | " + " | ".join(cells) + " |")
    print(
        "| SSIM >= InversionNet | "
        + " | ".join(f"{wins[m]} / {len(datasets)}" for m in models)
        + " |\n"
    )

    print(
        "EPIC vs centralised InversionNet on the same link (geometric mean over datasets, [min, max]):\n"
    )
    print(
        "| model | link | latency x (measured) | latency x (FLOPs) | comm energy x | payload / raw |"
    )
    print("|---|---|---|---|---|---|")
    links = sorted({r["link"] for r in rows})
    for m in models[1:]:
        for link in links:
            sel = [
                r
                for r in rows
                if r["model"] == m and r["link"] == link and r["dataset"] in datasets
            ]
            if not sel:
                continue

            def stat(col: str, sel: list[dict] = sel) -> str:
                vals = [float(r[col]) for r in sel]
                return f"{geomean(vals):.1f} [{min(vals):.1f}, {max(vals):.1f}]"

            frac = float(sel[0]["payload_fraction_of_raw"])
            print(
                f"| {m} | {link} | {stat('latency_ratio_measured')} | {stat('latency_ratio_flops')} | "
                f"{stat('comm_energy_ratio')} | 1/{1 / frac:.0f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

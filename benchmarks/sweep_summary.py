"""Summarise a bench sweep (``bench.csv``) into the hardware tables (docs/hardware.md).

    python benchmarks/sweep_summary.py benchmarks/results/bench_run1/bench.csv > benchmarks/results/bench_run1/summary.md

Prints, as Markdown, every number read from the CSV (geometric mean over
datasets where a sweep holds several):

1. SSIM per (dataset, model) when the sweep has fidelity;
2. per link profile, each model against centralised InversionNet sending
   float16 records at the model's own time sampling (the matched baseline):
   latency (measured / FLOP-based), transmit energy, total radio energy and
   total energy (radio + compute) ratios, with the EPIC paper's 8.9x latency
   and 33.8x communication-energy claims marked met or missed for ``epic``;
3. the same headline against the strongest raw baseline (float32, float16,
   zlib of each) for each quantity.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

MODELS = ("epic", "epic-equal", "epic-isolated", "split", "federated")
PAPER_LATENCY_X = 8.9
PAPER_COMM_ENERGY_X = 33.8


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def mark(value: float, target: float) -> str:
    return f"{value:.1f} ({'met' if value >= target else 'missed'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("csv", type=Path, help="bench.csv of a sweep")
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"error: {args.csv}: no such file; pass a sweep's bench.csv", file=sys.stderr)
        return 2
    rows = list(csv.DictReader(args.csv.open(encoding="utf-8")))
    links = list(dict.fromkeys(r["link"] for r in rows))
    models = [m for m in MODELS if any(r["model"] == m for r in rows)]
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["link"])].append(r)

    def g(model: str, link: str, col: str) -> float:
        return geomean([float(r[col]) for r in groups[(model, link)]])

    first = rows[0]
    print(
        f"Conditions: T = {first['time_samples']} time samples ({first['time_stride']} ms), "
        f"devices `{first['device_profile']}`, centre `{first['central_profile']}`, "
        f"{len({r['dataset'] for r in rows})} dataset(s), weights `{first['fidelity_source']}`, "
        f"commit `{first['commit'][:7]}`.\n"
    )
    if first.get("ssim_openfwi"):
        print("| dataset | " + " | ".join(models) + " |\n|---|" + "---|" * len(models))
        for d in dict.fromkeys(r["dataset"] for r in rows):
            cells = [
                next(
                    (r["ssim_openfwi"] for r in rows if r["dataset"] == d and r["model"] == m), "-"
                )
                for m in models
            ]
            print(f"| {d} | " + " | ".join(cells) + " |")
        print()

    print(
        "Against InversionNet sending float16 records (matched baseline); ratios > 1 favour the "
        "model. `epic` rows mark the paper's 8.9x latency / 33.8x communication-energy claims.\n"
    )
    print(
        "| link | model | latency x (meas / FLOPs) | tx energy x | radio energy x "
        "| total energy x (meas / FLOPs) |"
    )
    print("|---|---|---|---|---|---|")
    for link in links:
        for m in models:
            lat_m, lat_f = g(m, link, "latency_x_f16_measured"), g(m, link, "latency_x_f16_flops")
            tx = g(m, link, "energy_tx_x_f16")
            tot_m = g(m, link, "energy_total_x_f16_measured")
            tot_f = g(m, link, "energy_total_x_f16_flops")
            total = (
                f"{mark(tot_m, PAPER_COMM_ENERGY_X)} / {mark(tot_f, PAPER_COMM_ENERGY_X)}"
                if m == "epic"
                else f"{tot_m:.1f} / {tot_f:.1f}"
            )
            lat = (
                f"{mark(lat_m, PAPER_LATENCY_X)} / {mark(lat_f, PAPER_LATENCY_X)}"
                if m == "epic"
                else f"{lat_m:.1f} / {lat_f:.1f}"
            )
            print(
                f"| {link} | {m} | {lat} "
                f"| {mark(tx, PAPER_COMM_ENERGY_X) if m == 'epic' else f'{tx:.1f}'} "
                f"| {g(m, link, 'energy_radio_x_f16'):.1f} "
                f"| {total} |"
            )
    print("\nHeadline against the strongest raw baseline for each quantity (format in brackets):\n")
    print("| link | model | latency x (FLOPs) | tx energy x | total energy x (FLOPs) |")
    print("|---|---|---|---|---|")
    for link in links:
        for m in ("epic",):
            refs = {r["strongest_ref_latency_flops"] for r in groups[(m, link)]}
            erefs = {r["strongest_ref_energy_total_flops"] for r in groups[(m, link)]}
            print(
                f"| {link} | {m} | {g(m, link, 'latency_x_flops'):.1f} [{'/'.join(sorted(refs))}] "
                f"| {g(m, link, 'energy_tx_x'):.1f} "
                f"| {g(m, link, 'energy_total_x_flops'):.1f} [{'/'.join(sorted(erefs))}] |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compare the latency ratios of two bench runs of the same checkpoints (issue 12's stability check).

    python benchmarks/bench_stability.py benchmarks/results/bench_run1/bench.csv \
        benchmarks/results/bench_run2/bench.csv > benchmarks/results/bench_stability.md

For every (model, dataset, link) row in both files and every latency ratio
column (``latency_x_SRC`` against the strongest baseline and
``latency_x_f16_SRC`` against the float16 one), prints the relative
difference ``|a - b| / ((a + b) / 2)``: its median and maximum per column, and
whether the maximum is within the tolerance (10 %). Exit status 1 if not.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

TOLERANCE = 0.10
COLUMNS = (
    "latency_x_measured",
    "latency_x_flops",
    "latency_x_f16_measured",
    "latency_x_f16_flops",
    "energy_total_x_measured",
    "energy_total_x_f16_measured",
)


def read(path: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {(r["model"], r["dataset"], r["link"]): r for r in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("first", type=Path, help="bench.csv of the first run")
    parser.add_argument("second", type=Path, help="bench.csv of the second run")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="largest relative gap")
    args = parser.parse_args(argv)
    for path in (args.first, args.second):
        if not path.is_file():
            print(f"error: {path}: no such file; pass two bench.csv files", file=sys.stderr)
            return 2
    a, b = read(args.first), read(args.second)
    keys = sorted(set(a) & set(b))
    if not keys:
        print("error: the two files share no (model, dataset, link) row", file=sys.stderr)
        return 2
    first = a[keys[0]]
    print("# Stability of two bench runs\n")
    print(
        f"`{args.first.parent.name}` ({first['date']}, probe {float(first['host_gflops_1thread']):.1f} "
        f"GFLOP/s) vs `{args.second.parent.name}` ({b[keys[0]]['date']}, probe "
        f"{float(b[keys[0]]['host_gflops_1thread']):.1f} GFLOP/s); commit `{first['commit']}`, "
        f"{first['cpu']}, {first['timing_rounds']} interleaved rounds each; {len(keys)} rows in both.\n"
    )
    print("| column | median gap | max gap | worst row | within 10 % |")
    print("|---|---|---|---|---|")
    ok = True
    for col in COLUMNS:
        gaps = []
        for k in keys:
            x, y = float(a[k][col]), float(b[k][col])
            gaps.append((abs(x - y) / ((x + y) / 2), k))
        worst = max(gaps)
        within = worst[0] <= args.tolerance
        ok &= within or not col.startswith("latency")
        print(
            f"| `{col}` | {100 * statistics.median(g for g, _ in gaps):.2f} % "
            f"| {100 * worst[0]:.2f} % | {' / '.join(worst[1])} | {'yes' if within else 'no'} |"
        )
    print(
        "\nFLOP-based columns are deterministic (bytes and FLOPs only); measured ones come from "
        "wall times on this shared 2-core machine."
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

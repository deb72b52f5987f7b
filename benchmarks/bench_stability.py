"""Compare two bench runs of the same models and test data (issue 12's stability check).

    python benchmarks/bench_stability.py benchmarks/results/bench_run1/bench.csv \
        benchmarks/results/bench_run2/bench.csv > benchmarks/results/bench_stability.md

For every (model, dataset, link) row in both files and every ratio column
below, prints the relative difference ``|a - b| / ((a + b) / 2)``: its median
and maximum per column, the row where it is largest, and whether the maximum
is within the tolerance (10 %). Columns are marked *stable* (bytes and FLOPs
only: expected 0) or *measured* (from this machine's timings). Exit status 1
if any latency-ratio column exceeds the tolerance (the done-when criterion of
issue 12), 2 on bad input.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

TOLERANCE = 0.10
COLUMNS: tuple[tuple[str, str], ...] = (
    ("latency_x_measured", "measured"),
    ("latency_x_f16_measured", "measured"),
    ("energy_total_x_measured", "measured"),
    ("energy_total_x_f16_measured", "measured"),
    ("latency_x_flops", "stable"),
    ("latency_x_f16_flops", "stable"),
    ("energy_total_x_flops", "stable"),
    ("energy_total_x_f16_flops", "stable"),
    ("energy_radio_x", "stable"),
    ("payload_x", "stable"),
)
"""``(column, kind)``: ratios against the strongest raw baseline and the float16 one."""
ABSOLUTE: tuple[str, ...] = ("latency_s_measured", "latency_s_flops", "host_gflops_1thread")
"""Absolute figures whose gaps are shown for context (not part of the criterion)."""


def read(path: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {(r["model"], r["dataset"], r["link"]): r for r in csv.DictReader(f)}


def gap(x: float, y: float) -> float:
    """``|x - y|`` relative to their mean (0 when both are 0)."""
    mean = (x + y) / 2
    return abs(x - y) / mean if mean else 0.0


def gaps(a: dict, b: dict, keys: list, column: str) -> list[tuple[float, tuple[str, ...]]]:
    return [(gap(float(a[k][column]), float(b[k][column])), k) for k in keys]


def worst_row(found: list[tuple[float, tuple[str, ...]]]) -> str:
    """The row with the largest gap: ``-`` if none differs, ``every row`` if all differ alike."""
    largest = max(found)
    if largest[0] == 0:
        return "-"
    if all(g == largest[0] for g, _ in found):
        return "every row"
    return " / ".join(largest[1])


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
    ra, rb = a[keys[0]], b[keys[0]]
    clock = ra.get("timing_clock") or "wall time"
    print("# Stability of two bench runs\n")
    print(
        f"`{args.first.parent.name}` ({ra['date']}, probe {float(ra['host_gflops_1thread']):.1f} "
        f"GFLOP/s) vs `{args.second.parent.name}` ({rb['date']}, probe "
        f"{float(rb['host_gflops_1thread']):.1f} GFLOP/s); commit `{ra['commit']}`, {ra['cpu']} "
        f"({ra['cpu_count']} cores), timings in {clock} at 1 pinned thread, "
        f"{ra['timing_rounds']} interleaved rounds each; {len(keys)} rows in both.\n"
    )
    print(f"| column | kind | median gap | max gap | worst row | within {args.tolerance:.0%} |")
    print("|---|---|---|---|---|---|")
    ok = True
    for column, kind in COLUMNS:
        found = gaps(a, b, keys, column)
        worst = max(found)
        within = worst[0] <= args.tolerance
        if column.startswith("latency"):
            ok &= within
        where = worst_row(found)
        print(
            f"| `{column}` | {kind} | {100 * statistics.median(g for g, _ in found):.2f} % "
            f"| {100 * worst[0]:.2f} % | {where} | {'yes' if within else 'no'} |"
        )
    print("\nFor context, absolute figures (not ratios):\n")
    print("| column | median gap | max gap | worst row |")
    print("|---|---|---|---|")
    for column in ABSOLUTE:
        found = gaps(a, b, keys, column)
        worst = max(found)
        where = worst_row(found)
        print(
            f"| `{column}` | {100 * statistics.median(g for g, _ in found):.2f} % "
            f"| {100 * worst[0]:.2f} % | {where} |"
        )
    print(
        "\n*Stable* columns come from payload bytes, FLOPs and codec bytes only (nothing timed) "
        f"and must agree exactly; *measured* ones come from {clock} on this shared machine. "
        f"Latency ratios {'all' if ok else 'not all'} "
        f"within {args.tolerance:.0%}."
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput and peak memory of EPIC vs InversionNet on this CPU.

One training step = forward, L1 loss, backward, AdamW update, on a batch of
random records (``[B, 5, T, 70]`` uniform in [-1, 1]; timing does not depend
on the values). Each (model, T) runs in its own fresh process so its peak
resident memory (``ru_maxrss``) is its own; ``train_rss_delta_mb`` is the peak
minus the resident size just before the first step (model, optimiser and batch
already built), i.e. what training itself adds.

    python benchmarks/train_throughput.py                     # defaults below
    python benchmarks/train_throughput.py --threads 2 --steps 5

Writes ``benchmarks/results/train_throughput.{json,md}`` with the conditions
(torch version, threads, CPU model, load average).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _run_one(
    model_name: str,
    time_samples: int,
    batch_size: int,
    steps: int,
    warmup: int,
    threads: int,
    queue,
) -> None:
    """Child process: time ``steps`` training steps after ``warmup`` ones; put a result dict on ``queue``."""
    import torch

    from epic_zoo.models import count_parameters, create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model(model_name, time_samples=time_samples)
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    seismic = torch.rand(batch_size, 5, time_samples, 70) * 2 - 1
    velocity = torch.rand(batch_size, 1, 70, 70) * 2 - 1
    rss_before = _rss_mb()
    times, cpu_times = [], []
    for i in range(warmup + steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        optimiser.zero_grad(set_to_none=True)
        loss = torch.nn.functional.l1_loss(model(seismic), velocity)
        loss.backward()
        optimiser.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(
        {
            "params": count_parameters(model),
            "step_s": times,
            "cpu_s": cpu_times,
            "peak_rss_mb": peak_mb,
            "train_rss_delta_mb": peak_mb - rss_before,
        }
    )


def _summarise(name: str, time_samples: int, batch_size: int, runs: list[dict]) -> dict:
    """One table row from the runs (fresh processes) of one (model, T)."""
    steps = [t for run in runs for t in run["step_s"]]
    median, fastest = statistics.median(steps), min(steps)
    cpu = statistics.median(t for run in runs for t in run["cpu_s"])
    return {
        "model": name,
        "time_samples": time_samples,
        "batch_size": batch_size,
        "params": runs[0]["params"],
        "step_s_all": [round(t, 4) for t in steps],
        "step_s_median": round(median, 4),
        "step_s_min": round(fastest, 4),
        "samples_per_s": round(batch_size / median, 3),
        "samples_per_s_best": round(batch_size / fastest, 3),
        "s_per_sample": round(median / batch_size, 5),
        "cpu_s_per_step_median": round(cpu, 4),
        "samples_per_cpu_s": round(batch_size / cpu, 3),
        "peak_rss_mb": round(max(run["peak_rss_mb"] for run in runs), 1),
        "train_rss_delta_mb": round(max(run["train_rss_delta_mb"] for run in runs), 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=["epic", "inversionnet"], help="registered model names"
    )
    parser.add_argument(
        "--time-samples", nargs="+", type=int, default=[1000, 250], help="record lengths T"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per (model, T)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument(
        "--rounds", type=int, default=2, help="fresh processes per (model, T), alternating models"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "train_throughput", help="output path stem"
    )
    args = parser.parse_args(argv)

    import torch

    from epic_zoo.provenance import cpu_name, git_commit

    conditions = {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_model": cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "batch_size": args.batch_size,
        "steps": args.steps,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "precision": "float32",
        "data": "random uniform [-1, 1] records (timing only)",
        "step": "forward + L1 loss + backward + AdamW",
        "commit": git_commit(),
    }
    ctx = mp.get_context("spawn")
    runs: dict[tuple[str, int], list[dict]] = {}
    for round_index in range(args.rounds):
        for time_samples in args.time_samples:
            for name in args.models:
                queue = ctx.Queue()
                proc = ctx.Process(
                    target=_run_one,
                    args=(
                        name,
                        time_samples,
                        args.batch_size,
                        args.steps,
                        args.warmup,
                        args.threads,
                        queue,
                    ),
                )
                proc.start()
                run = queue.get()
                proc.join()
                runs.setdefault((name, time_samples), []).append(run)
                print(
                    f"round {round_index + 1}/{args.rounds} {name:>14s} T={time_samples:4d}: "
                    f"median step {statistics.median(run['step_s']):.3f} s "
                    f"(CPU {statistics.median(run['cpu_s']):.3f} s), peak RSS {run['peak_rss_mb']:.0f} MiB",
                    flush=True,
                )
    rows = [
        _summarise(name, time_samples, args.batch_size, found)
        for (name, time_samples), found in runs.items()
    ]
    ratios = {}
    if "epic" in args.models and "inversionnet" in args.models:
        for time_samples in args.time_samples:
            by = {r["model"]: r for r in rows if r["time_samples"] == time_samples}
            epic, inv = by["epic"], by["inversionnet"]
            ratios[str(time_samples)] = {
                "median": round(epic["samples_per_s"] / inv["samples_per_s"], 2),
                "best": round(epic["samples_per_s_best"] / inv["samples_per_s_best"], 2),
                "cpu_time": round(epic["samples_per_cpu_s"] / inv["samples_per_cpu_s"], 2),
            }
    result = {
        "conditions": conditions,
        "rows": rows,
        "epic_over_inversionnet_samples_per_s": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(
        _markdown(result, argv if argv is not None else sys.argv[1:])
    )
    print(f"ratios epic/inversionnet (samples/s): {ratios}; wrote {args.out}.json/.md")
    return result


def _markdown(result: dict, argv: list[str]) -> str:
    c = result["conditions"]
    lines = [
        "# Training throughput: EPIC vs InversionNet (CPU)",
        "",
        f"Command: `python benchmarks/train_throughput.py{' ' + ' '.join(argv) if argv else ''}`",
        "",
        f"Conditions: torch {c['torch']}, Python {c['python']}, {c['cpu_model']} ({c['cpu_count']} cores), "
        f"**{c['threads']} torch thread(s)** because the machine was shared with other jobs (load average "
        f"{c['load_average_at_start']} at start); {c['precision']}, batch {c['batch_size']}; "
        f"{c['rounds']} fresh processes per row, models alternating, each {c['warmup']} warm-up + "
        f"{c['steps']} timed steps; step = {c['step']}; data: {c['data']}; "
        f"commit {c['commit'] or 'uncommitted'}; {c['date_utc']}.",
        "",
        "Median over all timed steps; 'best' is the fastest step (least disturbed by other jobs); "
        "'per CPU-s' divides by the process's CPU time (`time.process_time`), which other jobs on "
        "the machine do not inflate. "
        "Peak RSS is the process's `ru_maxrss` (includes the ~0.3 GiB torch runtime); "
        "'training adds' is peak RSS minus RSS before the first step.",
        "",
        "| model | T | params | s/step (median) | samples/s (median) | samples/s (best) | s/sample | "
        "samples per CPU-s | peak RSS (MiB) | training adds (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['model']} | {r['time_samples']} | {r['params'] / 1e6:.2f}M | {r['step_s_median']:.3f} | "
            f"{r['samples_per_s']:.2f} | {r['samples_per_s_best']:.2f} | {r['s_per_sample']:.4f} | "
            f"{r['samples_per_cpu_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['train_rss_delta_mb']:.0f} |"
        )
    lines += ["", "EPIC / InversionNet training throughput (samples/s ratio; target >= 3):", ""]
    for t, ratio in result["epic_over_inversionnet_samples_per_s"].items():
        lines.append(
            f"- T = {t}: **{ratio['median']}x** wall clock (median), {ratio['best']}x (best steps), "
            f"{ratio['cpu_time']}x per CPU-second"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

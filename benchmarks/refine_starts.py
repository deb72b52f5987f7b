"""Which start helps FWI most: the default refinement from EPIC, the mean map, a constant,
a 1-D linear gradient and a smoothed true map (an upper bound), same records, same schedule.

Maps and records as ``refine_check.py`` (measurement draw, recipe-port records,
clean). Starts:

- ``epic``: EPIC's prediction (``epic.{dataset}``);
- ``mean_map``: the mean of the dataset's first 1000 training maps;
- ``constant``: that mean map's mean velocity everywhere;
- ``linear``: the least-squares line through the mean map's row means (FWI's
  textbook start: velocity growing linearly with depth);
- ``smoothed_truth``: the true map blurred by a Gaussian of 5 cells (50 m) sigma.

One record per dataset and start, ``{out}/{dataset}-{start}.json`` (so runs
go in parallel), with the means and the per-map entries (MAE m/s, OpenFWI
SSIM, the mean-map MAE of the same map, misfit), the commit and the schedule.
Resumable: a record that already holds the same seed and maps is skipped
(``--overwrite`` redoes it). EPIC's row of the docs' table comes from the main
record (``refine_check.py``) of the same maps, so ``epic`` is not a default start.

    python benchmarks/refine_starts.py --datasets curvevel-a flatfault-a --num 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refine_check import (  # noqa: E402
    MEASURE_SEED,
    commit_of_tree,
    load_record,
    map_metrics,
    mean_map,
    network_prediction,
    save_record,
)
from refine_data import port_pairs  # noqa: E402

from epic_zoo.data.geometry import NX, NZ, V_MAX, V_MIN  # noqa: E402
from epic_zoo.refine import refine_maps  # noqa: E402

STARTS = ("epic", "mean_map", "constant", "linear", "smoothed_truth")
DEFAULT_STARTS = ("mean_map", "linear", "constant", "smoothed_truth")


def smoothed(truth: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """Gaussian blur of ``[N, 1, 70, 70]`` maps (edge-replicated), sigma in cells."""
    radius = int(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(truth, (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, kernel[None, None, :, None])
    return F.conv2d(rows, kernel[None, None, None, :])


def start_maps(name: str, dataset: str, truth: torch.Tensor, records: np.ndarray) -> torch.Tensor:
    """Starting maps ``[N, 1, 70, 70]`` m/s of kind ``name``."""
    n = truth.shape[0]
    mean = mean_map(dataset).float()
    if name == "epic":
        from epic_zoo.models import load_model

        return network_prediction(load_model(f"epic.{dataset}"), records, dataset)
    if name == "mean_map":
        return mean.expand(n, 1, NZ, NX).clone()
    if name == "constant":
        return torch.full((n, 1, NZ, NX), float(mean.mean()))
    if name == "linear":
        rows = mean[0, 0].mean(1).numpy()
        slope, intercept = np.polyfit(np.arange(NZ), rows, 1)
        line = torch.tensor(intercept + slope * np.arange(NZ), dtype=torch.float32)
        return line.clamp(V_MIN, V_MAX)[None, None, :, None].expand(n, 1, NZ, NX).clone()
    if name == "smoothed_truth":
        return smoothed(truth).clamp(V_MIN, V_MAX)
    raise ValueError(f"start {name!r} is not one of {STARTS}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["flatvel-a", "curvevel-a", "flatfault-a"])
    parser.add_argument("--starts", nargs="+", default=list(DEFAULT_STARTS), choices=STARTS)
    parser.add_argument("--num", type=int, default=2)
    parser.add_argument("--seed", type=int, default=MEASURE_SEED)
    parser.add_argument("--cache", type=Path, default=Path("data/refine"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/refine/starts"))
    parser.add_argument("--overwrite", action="store_true", help="redo records already written")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for dataset in args.datasets:
        velocity, records = port_pairs(dataset, args.seed, range(args.num), args.cache)
        truth = torch.from_numpy(velocity).float()
        baseline = map_metrics(mean_map(dataset).float().expand_as(truth), truth)["mae_ms"]
        for name in args.starts:
            path = args.out / f"{dataset}-{name}.json"  # one file per start: runs in parallel
            done = load_record(path)
            if (
                not args.overwrite
                and done.get("seed") == args.seed
                and done.get("maps") == args.num
                and "result" in done
            ):
                print(f"{dataset} {name}: already in {path}, skipped", flush=True)
                continue
            record = {"dataset": dataset, "start": name, "seed": args.seed, "maps": args.num}
            record["records"] = "exact OpenFWI recipe port, clean"
            start = start_maps(name, dataset, truth, records)
            result = refine_maps(start, records, dataset=dataset)
            before, after = map_metrics(start, truth), map_metrics(result.velocity, truth)
            record["result"] = {
                "mae_before": float(np.mean(before["mae_ms"])),
                "mae_after": float(np.mean(after["mae_ms"])),
                "ssim_before": float(np.mean(before["ssim_openfwi"])),
                "ssim_after": float(np.mean(after["ssim_openfwi"])),
                "mean_map_mae": float(np.mean(baseline)),
                "misfit_before": float(result.misfit_before.mean()),
                "misfit_after": float(result.misfit_after.mean()),
                "cpu_seconds_per_map": result.cpu_seconds / args.num,
                "threads": result.threads,
            }
            record["per_map"] = [
                {
                    "index": i,
                    "mae_before": before["mae_ms"][i],
                    "mae_after": after["mae_ms"][i],
                    "ssim_before": before["ssim_openfwi"][i],
                    "ssim_after": after["ssim_openfwi"][i],
                    "mean_map_mae": baseline[i],
                    "misfit_before": float(result.misfit_before[i]),
                    "misfit_after": float(result.misfit_after[i]),
                    "reverted": bool(result.reverted[i]),
                }
                for i in range(args.num)
            ]
            record["schedule"] = result.schedule
            record["commit"] = commit_of_tree()
            print(dataset, name, json.dumps(record["result"]), flush=True)
            save_record(path, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())

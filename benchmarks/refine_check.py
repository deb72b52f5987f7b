"""Does the default refinement make EPIC's map closer to the truth, with no inverse crime?

For each dataset: fresh maps of a seed no training split uses, records made
by the exact OpenFWI recipe port (``benchmarks/refine_data.py``; full 1 ms
float32 records), EPIC's prediction from them by the committed
``epic.{dataset}`` weights, then :func:`epic_zoo.refine.refine_maps` with the
default schedule (deepwave: a different propagator from the records'). Per
condition (``clean``; ``field``: 20 dB SNR band-limited 2-40 Hz noise plus
5 % dead traces, seen by EPIC and the refinement alike), per map: MAE (m/s)
and OpenFWI SSIM before / after, the mean-map MAE (mean of the dataset's
training maps), the MAE by depth band (0-100 / 100-250 / 250-450 / 450-700 m;
``--depth-table`` prints their means), the full-band misfit, process
CPU-seconds and threads.

One record per dataset, ``{out}/{dataset}.json``, written after every map
(resumable: maps already in the record are skipped; ``--num`` larger adds maps).

    python benchmarks/refine_check.py --datasets all --num 4 --conditions clean field

Each map's record also holds ``floor_misfit``: the relative L2 difference
between deepwave's and the recipe port's records of the TRUE map, the misfit
below which the refinement cannot go. Panels (truth / EPIC / refined, the
last batch's first two maps) go to ``{out}/panels/``.

``--seed`` 314159 is the measurement draw; the default schedule was chosen on
draw 271828 (``--tune`` prints a summary and writes nothing by default).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refine_data import port_pairs  # noqa: E402

from epic_zoo.data.catalog import DATASET_NAMES  # noqa: E402
from epic_zoo.data.degrade import band_limited_noise, dead_traces  # noqa: E402
from epic_zoo.data.families import generate_velocity  # noqa: E402
from epic_zoo.data.forward import relative_l2_error, simulate  # noqa: E402
from epic_zoo.data.geometry import V_MAX, V_MIN  # noqa: E402
from epic_zoo.data.transforms import (  # noqa: E402
    denormalize_velocity,
    normalize_seismic,
)
from epic_zoo.evidence import bootstrap_ratio  # noqa: E402
from epic_zoo.metrics import openfwi_ssim  # noqa: E402
from epic_zoo.refine import DEFAULT_SCHEDULE, Schedule, refine_maps  # noqa: E402

MEASURE_SEED = 314159
TUNING_SEED = 271828
CONDITIONS = ("clean", "field")
MEAN_MAP_TRAIN = 1000
"""Training maps (seed 0, train split) averaged for the mean-map baseline (as the zoo's runs)."""


def degrade(records: np.ndarray, condition: str, seed: int) -> np.ndarray:
    """The records of ``condition`` (``clean`` unchanged; ``field`` noise + dead traces)."""
    if condition == "clean":
        return records
    if condition == "field":
        return dead_traces(band_limited_noise(records, 20.0, seed=seed), 0.05, seed=seed + 1)
    raise ValueError(f"condition {condition!r} is not one of {CONDITIONS}")


def network_prediction(
    model: torch.nn.Module, records: np.ndarray, dataset: str, records_stride: int = 1
) -> torch.Tensor:
    """The network's maps ``[N, 1, 70, 70]`` m/s from records ``[N, 5, T, 70]``.

    ``records_stride``: ms between the records' time samples (1: the raw 1000-sample
    records); the weights' input stride (their contract) must be a multiple of it.
    """
    step, rest = divmod(model.contract.time_stride, records_stride)
    if rest or step < 1:
        raise SystemExit(
            f"records every {records_stride} ms cannot feed weights that take every "
            f"{model.contract.time_stride} ms; give records at a divisor of "
            f"{model.contract.time_stride} ms"
        )
    x = torch.from_numpy(normalize_seismic(records, dataset)[:, :, ::step]).float()
    with torch.no_grad():
        pred = model.eval()(x)
    return denormalize_velocity(pred.float()).clamp(V_MIN, V_MAX)


def map_metrics(maps: torch.Tensor, truth: torch.Tensor) -> dict[str, list[float]]:
    """Per-map MAE (m/s) and OpenFWI SSIM of ``maps`` against ``truth`` (both m/s)."""
    mae = (maps - truth).abs().flatten(1).mean(1)
    unit = lambda v: (v - V_MIN) / (V_MAX - V_MIN)  # noqa: E731
    ssim = openfwi_ssim(unit(maps), unit(truth), reduction="none")
    return {"mae_ms": mae.tolist(), "ssim_openfwi": ssim.tolist()}


DEPTH_BANDS_M = (0, 100, 250, 450, 700)
"""Edges (m) of the depth bands a map's error is also reported in (10 m cells)."""


def depth_band_mae(maps: torch.Tensor, truth: torch.Tensor) -> list[list[float]]:
    """Per-map MAE (m/s) in each depth band of :data:`DEPTH_BANDS_M`, shallowest first.

    Surface acquisition constrains the shallow part best; the bands show where
    the error a refinement leaves sits.
    """
    error = (maps - truth).abs().flatten(0, -3)  # [N, rows, cols]
    cells = [edge // 10 for edge in DEPTH_BANDS_M]
    bands = [error[:, top:bottom].flatten(1).mean(1) for top, bottom in pairwise(cells)]
    return torch.stack(bands, 1).tolist()


_MEAN_MAPS: dict[str, torch.Tensor] = {}


def mean_map(dataset: str) -> torch.Tensor:
    """Mean of the dataset's training maps ``[1, 1, 70, 70]`` m/s (the input-free baseline)."""
    if dataset not in _MEAN_MAPS:
        train = generate_velocity(dataset, range(MEAN_MAP_TRAIN))
        _MEAN_MAPS[dataset] = torch.from_numpy(train.mean(0, keepdims=True))
    return _MEAN_MAPS[dataset]


def commit_of_tree() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_record(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    return {}


def save_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)


def summarise(maps: list[dict]) -> dict:
    """Means over the maps of one condition."""
    keys = ("mae_before", "mae_after", "ssim_before", "ssim_after", "mean_map_mae")
    out = {k: float(np.mean([m[k] for m in maps])) for k in keys}
    out.update(
        maps=len(maps),
        ratio_after_to_epic=out["mae_after"] / out["mae_before"],
        misfit_before=float(np.mean([m["misfit_before"] for m in maps])),
        misfit_after=float(np.mean([m["misfit_after"] for m in maps])),
        cpu_seconds_per_map=float(np.mean([m["cpu_seconds"] for m in maps])),
        floor_misfit=float(np.mean([m["floor_misfit"] for m in maps])),
    )
    return out


def ratio_interval(
    maps: list[dict], level: float = 0.95, resamples: int = 4000, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap interval (percentile, maps resampled) of ``mean(mae_after) / mean(mae_before)``."""
    after = np.array([m["mae_after"] for m in maps])
    before = np.array([m["mae_before"] for m in maps])
    return bootstrap_ratio(after, before, level, resamples, seed)


def map_entries(
    indices: list[int], dataset: str, start: torch.Tensor, truth: torch.Tensor, result
) -> list[dict]:
    """One record entry per refined map, in batch order: MAE / SSIM before and after, mean-map MAE,
    misfits, CPU-seconds (the batch's, shared equally), threads."""
    before = map_metrics(start, truth)
    after = map_metrics(result.velocity, truth)
    mean_mae = (truth - mean_map(dataset)).abs().flatten(1).mean(1)
    bands_before = depth_band_mae(start, truth)
    bands_after = depth_band_mae(result.velocity, truth)
    return [
        {
            "index": index,
            "mae_before": before["mae_ms"][j],
            "mae_after": after["mae_ms"][j],
            "ssim_before": before["ssim_openfwi"][j],
            "ssim_after": after["ssim_openfwi"][j],
            "mean_map_mae": float(mean_mae[j]),
            "mae_by_depth_before": bands_before[j],
            "mae_by_depth_after": bands_after[j],
            "misfit_before": float(result.misfit_before[j]),
            "misfit_after": float(result.misfit_after[j]),
            "noise_level": float(result.noise_level[j]),
            "cpu_seconds": result.cpu_seconds / len(indices),
            "threads": result.threads,
            "evaluations": result.evaluations,
            "batch": len(indices),
        }
        for j, index in enumerate(indices)
    ]


def run_dataset(
    dataset: str,
    args: argparse.Namespace,
    schedule: Schedule,
    model_spec: str,
) -> dict:
    """Refine ``args.num`` maps of ``dataset`` under each condition; write the record as it goes."""
    from epic_zoo.models import load_model

    path = args.out / f"{dataset}.json"
    record = load_record(path) if not args.tune else {}
    record.setdefault("dataset", dataset)
    record.setdefault("seed", args.seed)
    record.setdefault("model", model_spec)
    record.setdefault("records", "exact OpenFWI recipe port (backend='openfwi'), 1 ms float32")
    record.setdefault("refined_with", "deepwave (CPML), epic_zoo.refine.refine_maps")
    record.setdefault("conditions", {})
    described = json.loads(json.dumps(schedule.as_dict()))  # as a record holds it
    if record.get("schedule") not in (None, described):
        raise SystemExit(
            f"{path} was made with another schedule; move it away or use --out for a new record"
        )
    record["schedule"] = described
    model = load_model(model_spec)
    for condition in args.conditions:
        done = {m["index"]: m for m in record["conditions"].get(condition, {}).get("maps", [])}
        todo = [i for i in range(args.num) if i not in done]
        for batch_start in range(0, len(todo), args.batch):
            indices = todo[batch_start : batch_start + args.batch]
            velocity, clean = port_pairs(dataset, args.seed, indices, args.cache)
            records = degrade(clean, condition, seed=args.seed + indices[0])
            truth = torch.from_numpy(velocity).float()
            start = network_prediction(model, records, dataset)
            floor = relative_l2_error(simulate(velocity), clean)  # deepwave vs port, true maps
            result = refine_maps(start, records, dataset=dataset, schedule=schedule)
            for j, entry in enumerate(map_entries(indices, dataset, start, truth, result)):
                done[entry["index"]] = {**entry, "floor_misfit": float(floor[j])}
            if args.panels:
                save_panels(
                    args.panels / f"{dataset}-{condition}.png", truth, start, result.velocity
                )
            maps = sorted(done.values(), key=lambda m: m["index"])
            record["conditions"][condition] = {"maps": maps, "summary": summarise(maps)}
            record["commit"] = commit_of_tree()
            record["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            s = record["conditions"][condition]["summary"]
            print(
                f"{dataset} {condition} maps={s['maps']} MAE {s['mae_before']:.1f} -> "
                f"{s['mae_after']:.1f} m/s (x{s['ratio_after_to_epic']:.2f}; mean map "
                f"{s['mean_map_mae']:.1f}) SSIM {s['ssim_before']:.3f} -> {s['ssim_after']:.3f} "
                f"misfit {s['misfit_before']:.4f} -> {s['misfit_after']:.4f} (floor "
                f"{s['floor_misfit']:.4f}) {s['cpu_seconds_per_map']:.0f} CPU-s/map",
                flush=True,
            )
            if not args.tune:
                save_record(path, record)
    return record


def save_panels(path: Path, truth: torch.Tensor, start: torch.Tensor, after: torch.Tensor) -> None:
    """Truth / EPIC / refined for the first (up to 2) maps, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = min(2, truth.shape[0])
    fig, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows), squeeze=False)
    for r in range(rows):
        for c, (title, maps) in enumerate((("truth", truth), ("EPIC", start), ("refined", after))):
            ax = axes[r, c]
            ax.imshow(maps[r, 0].numpy(), vmin=V_MIN, vmax=V_MAX, cmap="viridis")
            mae = float((maps[r] - truth[r]).abs().mean())
            ax.set_title(title if c == 0 else f"{title}: MAE {mae:.0f} m/s", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def table(out: Path) -> str:
    """Markdown table of every record in ``out``, one row per dataset and condition."""
    lines = [
        "| dataset | condition | maps | EPIC MAE | refined MAE | ratio (95 % CI) | mean-map MAE | "
        "SSIM before | SSIM after | misfit before | misfit after | floor | CPU-s/map (threads) |",
        "|" + "---|" * 13,
    ]
    for dataset in DATASET_NAMES:
        path = out / f"{dataset}.json"
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        if "conditions" not in record:
            continue
        for condition in CONDITIONS:
            if condition not in record["conditions"]:
                continue
            s = record["conditions"][condition]["summary"]
            maps = record["conditions"][condition]["maps"]
            low, high = ratio_interval(maps)
            lines.append(
                f"| {record['dataset']} | {condition} | {s['maps']} | {s['mae_before']:.1f} | "
                f"{s['mae_after']:.1f} | {s['ratio_after_to_epic']:.2f} ({low:.2f}-{high:.2f}) | "
                f"{s['mean_map_mae']:.1f} | {s['ssim_before']:.3f} | {s['ssim_after']:.3f} | "
                f"{s['misfit_before']:.4f} | {s['misfit_after']:.4f} | {s['floor_misfit']:.4f} | "
                f"{s['cpu_seconds_per_map']:.0f} ({maps[0]['threads']}) |"
            )
    return "\n".join(lines)


def depth_table(out: Path) -> str:
    """Markdown table of the mean MAE (m/s) per depth band before -> after refinement,
    over the maps of each record that hold the bands (:func:`depth_band_mae`)."""
    bands = [f"{top}-{bottom} m" for top, bottom in pairwise(DEPTH_BANDS_M)]
    lines = [
        "| dataset | condition | maps | " + " | ".join(bands) + " |",
        "|" + "---|" * (3 + len(bands)),
    ]
    for dataset in DATASET_NAMES:
        path = out / f"{dataset}.json"
        if not path.is_file():
            continue
        conditions = json.loads(path.read_text()).get("conditions", {})
        for condition in CONDITIONS:
            maps = [
                m
                for m in conditions.get(condition, {}).get("maps", [])
                if "mae_by_depth_after" in m
            ]
            if not maps:
                continue
            before = torch.tensor(
                [m["mae_by_depth_before"] for m in maps], dtype=torch.float64
            ).mean(0)
            after = torch.tensor([m["mae_by_depth_after"] for m in maps], dtype=torch.float64).mean(
                0
            )
            cells = " | ".join(f"{b:.0f} -> {a:.0f}" for b, a in zip(before, after, strict=True))
            lines.append(f"| {dataset} | {condition} | {len(maps)} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["all"])
    parser.add_argument("--num", type=int, default=4, help="maps per dataset (target 16)")
    parser.add_argument("--seed", type=int, default=MEASURE_SEED)
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument("--model", default="epic.{dataset}")
    parser.add_argument("--batch", type=int, default=DEFAULT_SCHEDULE.batch_size)
    parser.add_argument("--cache", type=Path, default=Path("data/refine"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/refine"))
    parser.add_argument("--panels", type=Path, default=None, help="PNG folder ({out}/panels)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--schedule", default="{}", help="JSON overrides of the default schedule (tuning)"
    )
    parser.add_argument(
        "--tune", action="store_true", help="print only; write no record and no panels"
    )
    parser.add_argument("--table", action="store_true", help="print the records' table and exit")
    parser.add_argument(
        "--depth-table", action="store_true", help="print the MAE by depth band and exit"
    )
    args = parser.parse_args(argv)
    if args.table or args.depth_table:
        print(table(args.out) if args.table else depth_table(args.out))
        return 0
    torch.set_num_threads(args.threads)
    if args.panels is None and not args.tune:  # tuning writes nothing (no record, no panels)
        args.panels = args.out / "panels"
    overrides = json.loads(args.schedule)
    if "stages" in overrides:
        from epic_zoo.refine import Stage

        overrides["stages"] = tuple(Stage(*s) for s in overrides["stages"])
    schedule = dataclasses.replace(DEFAULT_SCHEDULE, **overrides)
    datasets = list(DATASET_NAMES) if args.datasets == ["all"] else args.datasets
    for dataset in datasets:
        run_dataset(dataset, args, schedule, args.model.format(dataset=dataset))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""EPIC alone under field conditions: MAE on clean, noisy, dead-trace and both records.

Same maps and recipe-port records as ``refine_check.py`` (measurement draw),
no refinement: how much of the ``field`` rows is EPIC's own start getting
worse. Noise: 20 dB SNR band-limited 2-40 Hz; dead: 5 % of receivers.

    python benchmarks/refine_field_epic.py --datasets flatvel-a curvevel-a style-a --num 16
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refine_check import MEASURE_SEED, mean_map, network_prediction  # noqa: E402
from refine_data import port_pairs  # noqa: E402

from epic_zoo.data.degrade import band_limited_noise, dead_traces  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["flatvel-a", "curvevel-a", "style-a"])
    parser.add_argument("--num", type=int, default=16)
    parser.add_argument("--seed", type=int, default=MEASURE_SEED)
    parser.add_argument("--cache", type=Path, default=Path("data/refine"))
    parser.add_argument(
        "--json", type=Path, default=Path("benchmarks/results/refine/epic_field.json")
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from epic_zoo.data.catalog import DATASET_NAMES
    from epic_zoo.models import load_model

    rows = []
    for dataset in list(DATASET_NAMES) if args.datasets == ["all"] else args.datasets:
        model = load_model(f"epic.{dataset}")
        velocity, records = port_pairs(dataset, args.seed, range(args.num), args.cache)
        truth = torch.from_numpy(velocity)
        noisy = band_limited_noise(records, 20.0, seed=args.seed)
        variants = {
            "clean": records,
            "noise_20db": noisy,
            "dead_5pct": dead_traces(records, 0.05, seed=args.seed + 1),
            "both": dead_traces(noisy, 0.05, seed=args.seed + 1),
        }
        row = {"dataset": dataset, "maps": args.num, "seed": args.seed, "model": f"epic.{dataset}"}
        row["mean_map_mae_ms"] = float((truth - mean_map(dataset)).abs().mean())
        for name, data in variants.items():
            pred = network_prediction(model, data, dataset)
            row[f"epic_mae_ms_{name}"] = float((pred - truth).abs().mean())
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

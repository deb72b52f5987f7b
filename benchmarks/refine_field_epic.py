"""EPIC alone under field conditions: MAE on clean, noisy, dead-trace and both records.

Same maps and recipe-port records as ``refine_check.py`` (measurement draw),
no refinement: how much of the ``field`` rows is EPIC's own start getting
worse. Noise: 20 dB SNR band-limited 2-40 Hz; dead: 5 % of receivers.

    python benchmarks/refine_field_epic.py --datasets flatvel-a curvevel-a style-a --num 16

``--model`` measures other weights (a ``load_model`` spec: a zoo name, a
Hub-format folder, a checkpoint or a run folder) on one dataset; the record
names them by ``--label`` (default: the spec's last path part, so no machine
path is written). Each row has MAE (m/s) and OpenFWI SSIM per condition.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refine_check import (  # noqa: E402
    MEASURE_SEED,
    commit_of_tree,
    map_metrics,
    mean_map,
    network_prediction,
)
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
    parser.add_argument(
        "--model",
        default=None,
        help="load_model spec of the weights (default: the zoo's epic.DATASET); one dataset only",
    )
    parser.add_argument("--label", default=None, help="name of --model in the record")
    args = parser.parse_args(argv)
    if args.model is not None and len(args.datasets) != 1:
        parser.error("--model: weights are trained for one dataset; give exactly one --datasets")
    torch.set_num_threads(1)
    from epic_zoo.data.catalog import DATASET_NAMES
    from epic_zoo.models import load_model

    rows = []
    for dataset in list(DATASET_NAMES) if args.datasets == ["all"] else args.datasets:
        spec = args.model or f"epic.{dataset}"
        label = args.label or (Path(spec).name if args.model else spec)
        model = load_model(spec)
        if model.contract.dataset != dataset:
            parser.error(
                f"--model {label} takes {model.contract.dataset} records, not {dataset}; "
                f"give --datasets {model.contract.dataset}"
            )
        velocity, records = port_pairs(dataset, args.seed, range(args.num), args.cache)
        truth = torch.from_numpy(velocity)
        noisy = band_limited_noise(records, 20.0, seed=args.seed)
        variants = {
            "clean": records,
            "noise_20db": noisy,
            "dead_5pct": dead_traces(records, 0.05, seed=args.seed + 1),
            "both": dead_traces(noisy, 0.05, seed=args.seed + 1),
        }
        row = {"dataset": dataset, "maps": args.num, "seed": args.seed, "model": label}
        row["commit"] = commit_of_tree()
        row["threads"] = torch.get_num_threads()
        baseline = map_metrics(mean_map(dataset).expand_as(truth).contiguous(), truth)
        row["mean_map_mae_ms"] = float((truth - mean_map(dataset)).abs().mean())
        row["mean_map_ssim"] = sum(baseline["ssim_openfwi"]) / args.num
        for name, data in variants.items():
            pred = network_prediction(model, data, dataset)
            row[f"epic_mae_ms_{name}"] = float((pred - truth).abs().mean())
            row[f"epic_ssim_{name}"] = sum(map_metrics(pred, truth)["ssim_openfwi"]) / args.num
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

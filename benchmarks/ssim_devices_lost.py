"""MAE and SSIM of deployed EPIC maps when 0..4 of the 5 end devices are lost.

Exports each pretrained ``epic.DATASET`` weight into deployment parts (per-device
encoders, central decoder), runs them in-process on test records (edge encode
-> codec bytes -> central decode with the presence mask) and averages the
MAE (m/s) and OpenFWI-style SSIM over every subset of lost devices
(:func:`epic_zoo.deploy.testbed.ssim_vs_devices_lost`), beside the input-free
mean map (mean of the weight's own training maps, velocity only) on the same
test maps.

    python -m epic_zoo.data generate --dataset flatvel-a --split test --num 40 --profile lite --out DATA
    python benchmarks/ssim_devices_lost.py --data DATA --datasets flatvel-a --samples 40

Test records come from the synthetic store (``--profile``, generated if
missing); the test split is the same for every profile with the same seed,
time stride and precision.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from epic_zoo.data.catalog import DATASET_NAMES
from epic_zoo.data.families import generate_velocity
from epic_zoo.data.generate import ensure_data
from epic_zoo.data.store import H5Split
from epic_zoo.deploy.export import export_bundle, load_source_model
from epic_zoo.deploy.testbed import ssim_vs_devices_lost
from epic_zoo.provenance import git_commit

RESULTS = Path(__file__).resolve().parent / "results"
REGISTRY = json.loads(
    (Path(__file__).resolve().parents[1] / "checkpoints" / "registry.json").read_text()
)
"""The committed zoo's registry: each weight's training split size (for its mean map)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASET_NAMES))
    parser.add_argument("--samples", type=int, default=50, help="test records per dataset")
    parser.add_argument("--profile", default="lite", help="data profile of the test records")
    parser.add_argument("--data-root", default=None, help="data cache root")
    parser.add_argument(
        "--data", default=None, help="folder of DATASET/test HDF5 splits (instead of the cache)"
    )
    parser.add_argument(
        "--out", default=str(RESULTS / "ssim_devices_lost"), help="output stem (.md, .json)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    results: dict[str, list[dict[str, float]]] = {}
    baselines: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for dataset in args.datasets:
            started = time.time()
            name = f"epic.{dataset}"
            model, info = load_source_model(name)
            bundle = export_bundle(
                model,
                Path(scratch) / dataset,
                name=name,
                contract=info["contract"],
                trained=True,
                source=info["source"],
            )
            if args.data:
                test = H5Split(Path(args.data) / dataset / "test")
            else:
                test = H5Split(
                    ensure_data(dataset, args.profile, args.data_root, progress=False) / "test"
                )
            samples = [test[i] for i in range(min(args.samples, len(test)))]
            rows = ssim_vs_devices_lost(bundle, samples)
            train_maps = int(REGISTRY["weights"][name]["data"]["train"])
            mean_map = generate_velocity(dataset, range(train_maps)).mean(0)
            truth = np.stack([np.asarray(v, dtype=np.float32) for _, v in samples])
            baselines[dataset] = {
                "mean_map_mae_ms": float(np.abs(truth - mean_map).mean()),
                "train_maps": train_maps,
            }
            results[dataset] = rows
            print(f"{dataset}: {rows} ({time.time() - started:.0f} s)", flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "samples": args.samples,
                "profile": args.profile,
                "commit": git_commit() or "unknown",
                "threads": 1,
                "results": results,
                "mean_map": baselines,
            },
            indent=2,
        )
        + "\n"
    )
    lost = [row["devices_lost"] for row in next(iter(results.values()))]
    lines = [
        "# EPIC: MAE and SSIM vs end devices lost",
        "",
        f"Command: `python benchmarks/ssim_devices_lost.py --datasets {' '.join(args.datasets)} "
        f"--samples {args.samples}` (test records: `python -m epic_zoo.data generate --split test "
        f"--num {args.samples} --profile {args.profile}`), commit `{(git_commit() or 'unknown')[:7]}`. "
        "Weights: the committed `epic.DATASET` zoo; first "
        f"{args.samples} test records of each dataset ({args.profile} profile, seed 0); each "
        "cell averages every subset of lost devices (5 choose k) over the records. The deployed "
        "parts run in-process: edge encoders -> codec bytes -> central decoder with the presence "
        "mask. Mean map: the mean of the weight's own training maps, scored on the same test maps.",
        "",
        "MAE (m/s; lower is better) / OpenFWI SSIM:",
        "",
        "| dataset | mean map | " + " | ".join(f"{k} lost" for k in lost) + " |",
        "|---|---|" + "---|" * len(lost),
    ]
    for dataset, rows in results.items():
        lines.append(
            f"| {dataset} | {baselines[dataset]['mean_map_mae_ms']:.1f} | "
            + " | ".join(f"{r['mae_ms']:.1f} / {r['ssim']:.3f}" for r in rows)
            + " |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

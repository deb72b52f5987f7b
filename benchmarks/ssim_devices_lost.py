"""SSIM of deployed EPIC maps when 0..4 of the 5 end devices are lost.

Exports each pretrained ``epic.DATASET`` weight into deployment parts (per-device
encoders, central decoder), runs them in-process on test records (edge encode
-> codec bytes -> central decode with the presence mask) and averages the
OpenFWI-style SSIM over every subset of lost devices
(:func:`epic_zoo.deploy.testbed.ssim_vs_devices_lost`).

    python benchmarks/ssim_devices_lost.py --datasets flatvel-a curvevel-a style-a --samples 50

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

import torch

from epic_zoo.data.generate import ensure_data
from epic_zoo.data.store import H5Split
from epic_zoo.deploy.export import export_bundle, load_source_model
from epic_zoo.deploy.testbed import ssim_vs_devices_lost

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["flatvel-a", "curvevel-a", "style-a"])
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
    with tempfile.TemporaryDirectory() as scratch:
        for dataset in args.datasets:
            started = time.time()
            name = f"epic.{dataset}"
            model, info = load_source_model(name)
            bundle = export_bundle(
                model,
                Path(scratch) / dataset,
                name=name,
                dataset=dataset,
                time_stride=info["time_stride"],
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
            results[dataset] = ssim_vs_devices_lost(bundle, samples)
            print(f"{dataset}: {results[dataset]} ({time.time() - started:.0f} s)", flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps({"samples": args.samples, "profile": args.profile, "results": results}, indent=2)
        + "\n"
    )
    lost = [row["devices_lost"] for row in next(iter(results.values()))]
    lines = [
        "# EPIC: SSIM (OpenFWI-style) vs end devices lost",
        "",
        f"Command: `python benchmarks/ssim_devices_lost.py --datasets {' '.join(args.datasets)} "
        f"--samples {args.samples}`. Weights: the committed `epic.DATASET` zoo; first "
        f"{args.samples} test records of each dataset ({args.profile} profile, seed 0); each "
        "cell averages every subset of lost devices (5 choose k) over the records. The deployed "
        "parts run in-process: edge encoders -> codec bytes -> central decoder with the presence mask.",
        "",
        "| dataset | " + " | ".join(f"{k} lost" for k in lost) + " |",
        "|---|" + "---|" * len(lost),
    ]
    for dataset, rows in results.items():
        lines.append(f"| {dataset} | " + " | ".join(f"{r['ssim']:.4f}" for r in rows) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What refine-on-demand costs in bytes: each device's record upload at each setting.

EPIC's devices send latents; to refine, the centre asks them for their
records as well. The upload is a setting: time stride (ms between sent
samples), precision (float32 / float16), zlib. This script measures the real
byte strings (:mod:`epic_zoo.hardware.payload`: what a device sends for its
receivers, all 5 shots) on recipe-port records of fresh maps, the largest
device's count, beside EPIC's latent payload, and the records' relative
error after the round trip (what the refinement would see).

    python benchmarks/refine_upload.py --datasets flatvel-a curvefault-a style-a --num 4

Fidelity after refinement at each setting is not measured here (CPU time);
``refine_maps(..., data_time_stride=stride)`` refines from exactly the
decoded upload.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refine_data import port_pairs  # noqa: E402

from epic_zoo.hardware.payload import (  # noqa: E402
    compress_payloads,
    payload_sizes,
    raw_payloads,
    records_from_payloads,
)

SETTINGS: tuple[tuple[int, str, bool], ...] = (
    (1, "float32", False),
    (1, "float32", True),
    (1, "float16", True),
    (2, "float16", True),
    (4, "float16", True),
    (4, "float16", False),
)
"""``(time stride ms, precision, zlib)``: the first is the full 1 ms float32 upload."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["flatvel-a", "curvefault-a", "style-a"])
    parser.add_argument("--num", type=int, default=4)
    parser.add_argument("--seed", type=int, default=314159)
    parser.add_argument("--cache", type=Path, default=Path("data/refine"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/refine/upload.json"))
    args = parser.parse_args(argv)
    from epic_zoo.hardware.payload import model_receivers
    from epic_zoo.models import load_model

    rows = []
    for dataset in args.datasets:
        model = load_model(f"epic.{dataset}")
        receivers = model_receivers(model)
        _, records = port_pairs(dataset, args.seed, range(args.num), args.cache)
        latent = int(model.payload_bytes())
        for stride, precision, zipped in SETTINGS:
            sent = records[:, :, ::stride]
            payloads = raw_payloads(sent, receivers, precision)
            if zipped:
                payloads = compress_payloads(payloads)
            sizes = payload_sizes(payloads)  # [devices, maps]
            back = records_from_payloads(payloads, sent.shape[2], zipped, precision)
            error = np.linalg.norm((back - sent).reshape(args.num, -1), axis=1) / np.linalg.norm(
                sent.reshape(args.num, -1), axis=1
            )
            row = {
                "dataset": dataset,
                "maps": args.num,
                "seed": args.seed,
                "time_stride_ms": stride,
                "precision": precision,
                "zlib": zipped,
                "bytes_per_device_max": int(sizes.max(axis=0).mean()),
                "bytes_per_device_mean": float(sizes.mean()),
                "epic_latent_bytes_per_device": latent,
                "ratio_to_latent": float(sizes.max(axis=0).mean()) / latent,
                "roundtrip_relative_error": float(error.max()),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

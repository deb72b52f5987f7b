"""Fidelity of refine-on-demand at each upload setting: refine from exactly what was uploaded.

EPIC's devices encode their full 1 ms records locally and send latents; the
centre decodes EPIC's map from them. To refine, the centre asks each device
for its records at an upload setting (time stride, float32 / float16, zlib;
:data:`SETTINGS`). This script builds the real byte strings each device
sends (:mod:`epic_zoo.hardware.payload`), decodes them at the centre (the
float16 round trip and the time decimation included) and refines EPIC's map
from the decoded records with :func:`epic_zoo.refine.refine_maps`
(``data_time_stride`` = the upload's stride, the default schedule).

A centralised network (InversionNet: no latents) is measured the same way,
except that its own map is predicted from the decoded upload too, since the
centre holds nothing else: its records are both its input and the
refinement's, so refining costs it no extra byte. Its input stride must be a
multiple of the upload's (``--settings`` picks the uploads).

Per setting and map: MAE (m/s) and OpenFWI SSIM before / after, the mean-map
MAE of the same maps (the input-free baseline), the misfit, the bytes each
device sent, process CPU-seconds and threads. One record,
``benchmarks/results/refine/upload_fidelity.json``, written after every batch
(resumable: settings and maps already there are skipped; ``--num`` larger adds maps).

    python benchmarks/refine_upload_fidelity.py --dataset curvevel-a --num 2 --threads 1
    python benchmarks/refine_upload_fidelity.py --dataset flatvel-a --num 4 \
        --model RUN_OR_CKPT --label "InversionNet" --settings 4ms-float16-zlib 1ms-float32 \
        --json benchmarks/results/refine/upload_fidelity_flatvel-a_inversionnet.json

Records are the exact OpenFWI recipe port's (``benchmarks/refine_data.py``,
cached under ``--cache``), clean, measurement seed 314159.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refine_check import (  # noqa: E402
    MEASURE_SEED,
    commit_of_tree,
    load_record,
    map_entries,
    network_prediction,
    save_record,
)
from refine_data import port_pairs  # noqa: E402

from epic_zoo.bench.ondemand import Upload, decode_upload, upload_payloads  # noqa: E402
from epic_zoo.hardware.payload import model_receivers, payload_sizes  # noqa: E402
from epic_zoo.refine import DEFAULT_SCHEDULE, refine_maps  # noqa: E402

SETTINGS: tuple[tuple[int, str, bool], ...] = (
    (4, "float16", True),
    (1, "float16", True),
    (1, "float32", False),
    (2, "float16", True),
)
"""``(time stride ms, precision, zlib)`` measured here, in this order (leanest first; a subset
of ``refine_upload.py``'s). zlib is lossless, so a setting without it refines identically."""


def setting_name(stride: int, precision: str, zipped: bool) -> str:
    """Record key of an upload setting, e.g. ``1ms-float32``, ``4ms-float16-zlib``."""
    return Upload(stride, precision, zipped).name


def upload(
    records: np.ndarray, receivers: list[np.ndarray], stride: int, precision: str, zipped: bool
) -> tuple[np.ndarray, np.ndarray]:
    """What the centre holds after the upload, and what it cost.

    Args:
        records: raw 1 ms records ``[N, 5, 1000, 70]`` (what the devices recorded).
        receivers: receiver indices of each device (contiguous blocks, in order).
        stride, precision, zipped: the upload setting.

    Returns:
        ``(decoded [N, 5, ceil(1000 / stride), 70] float32, sizes [devices, N] bytes)``:
        the records rebuilt from the byte strings alone
        (:func:`epic_zoo.bench.ondemand.decode_upload`), and each byte string's length.
    """
    setting = Upload(stride, precision, zipped)
    payloads = upload_payloads(records, receivers, setting)
    return decode_upload(payloads, setting, records.shape[2]), payload_sizes(payloads)


def summarise(maps: list[dict]) -> dict:
    """Means over the maps of one setting."""
    keys = (
        "mae_before",
        "mae_after",
        "ssim_before",
        "ssim_after",
        "mean_map_mae",
        "misfit_after",
        "bytes_per_device_max",
        "cpu_seconds",
    )
    out = {k: float(np.mean([m[k] for m in maps])) for k in keys}
    out["maps"] = len(maps)
    out["indices"] = [m["index"] for m in maps]
    out["ratio_after_to_epic"] = out["mae_after"] / out["mae_before"]
    return out


def run(args: argparse.Namespace) -> dict:
    """Refine ``args.num`` maps at every setting; write the record after every batch."""
    from epic_zoo.models import load_model

    model_spec = args.model.format(dataset=args.dataset)
    model = load_model(model_spec)
    distributed = hasattr(model, "payload_bytes")  # latents on the link; else raw records
    record = load_record(args.json)
    fixed = {
        "dataset": args.dataset,
        "seed": args.seed,
        "model": model_spec,
        "label": args.label or type(model).__name__,
        "model_kind": "distributed" if distributed else "centralised",
        "condition": "clean",
        "records": "exact OpenFWI recipe port (backend='openfwi'), 1 ms float32 at the devices",
        "network_input": (
            "full 1 ms records at each device (the devices encode locally and send latents)"
            if distributed
            else "the records decoded from the upload (all the centre holds)"
        ),
        "refined_from": "the records decoded from the uploaded byte strings "
        "(epic_zoo.hardware.payload), refine_maps(..., data_time_stride=stride)",
        "schedule": json.loads(json.dumps(DEFAULT_SCHEDULE.as_dict())),
        "batch": args.batch,
    }
    for key, value in fixed.items():
        if record.get(key, value) != value:
            raise SystemExit(
                f"{args.json} was made with another {key} ({record[key]!r}); "
                "move it away or pass --json for a new record"
            )
    if args.model_record:
        record["model_record"] = str(args.model_record)
    record.update(fixed)
    record.setdefault("settings", {})
    receivers = model_receivers(model)
    record["latent_bytes_per_device"] = int(model.payload_bytes()) if distributed else 0
    for stride, precision, zipped in SETTINGS:
        name = setting_name(stride, precision, zipped)
        if args.settings and name not in args.settings:
            continue
        entry = record["settings"].setdefault(
            name, {"time_stride_ms": stride, "precision": precision, "zlib": zipped, "maps": []}
        )
        done = {m["index"]: m for m in entry["maps"]}
        todo = [i for i in range(args.num) if i not in done]
        for batch_start in range(0, len(todo), args.batch):
            indices = todo[batch_start : batch_start + args.batch]
            velocity, records = port_pairs(args.dataset, args.seed, indices, args.cache)
            truth = torch.from_numpy(velocity).float()
            decoded, sizes = upload(records, receivers, stride, precision, zipped)
            if distributed:  # each device encodes its full records
                start = network_prediction(model, records, args.dataset)
            else:  # the centre predicts from what it received
                start = network_prediction(model, decoded, args.dataset, records_stride=stride)
            result = refine_maps(
                start,
                decoded,
                dataset=args.dataset,
                schedule=DEFAULT_SCHEDULE,
                data_time_stride=stride,
            )
            for j, one in enumerate(map_entries(indices, args.dataset, start, truth, result)):
                done[one["index"]] = {
                    **one,
                    "reverted": bool(result.reverted[j]),
                    "bytes_per_device": sizes[:, j].tolist(),
                    "bytes_per_device_max": int(sizes[:, j].max()),
                }
            entry["maps"] = sorted(done.values(), key=lambda m: m["index"])
            entry["summary"] = summarise(entry["maps"])
            record["commit"] = commit_of_tree()
            record["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            save_record(args.json, record)
            s = entry["summary"]
            print(
                f"{name} maps={s['maps']} MAE {s['mae_before']:.1f} -> {s['mae_after']:.1f} m/s "
                f"(x{s['ratio_after_to_epic']:.2f}; mean map {s['mean_map_mae']:.1f}) SSIM "
                f"{s['ssim_before']:.3f} -> {s['ssim_after']:.3f} bytes/device "
                f"{s['bytes_per_device_max']:.0f} {s['cpu_seconds']:.0f} CPU-s/map",
                flush=True,
            )
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="curvevel-a")
    parser.add_argument("--num", type=int, default=2, help="maps 0..num-1")
    parser.add_argument("--seed", type=int, default=MEASURE_SEED)
    parser.add_argument("--model", default="epic.{dataset}", help="any load_model spec")
    parser.add_argument("--label", default=None, help="the network's name in the record and plot")
    parser.add_argument(
        "--model-record", default=None, help="repo path of the weights' training record"
    )
    parser.add_argument(
        "--settings",
        nargs="+",
        default=None,
        choices=[setting_name(*s) for s in SETTINGS],
        help="uploads to measure (default: all)",
    )
    parser.add_argument("--batch", type=int, default=2, help="maps refined together")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("data/refine"))
    parser.add_argument(
        "--json", type=Path, default=Path("benchmarks/results/refine/upload_fidelity.json")
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

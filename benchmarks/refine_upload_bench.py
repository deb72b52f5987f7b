"""Refine-on-demand rows of the hardware bench: bytes, latency and energy per device per upload.

For one dataset's committed ``epic.{dataset}`` weights and the recipe-port
records of maps ``0..num-1`` (``benchmarks/refine_data.py``'s cache): EPIC's
latent row, one row per upload setting (EPIC's latent + the device's records
at that setting, real byte strings), and centralised InversionNet's four raw
rows at EPIC's own time sampling (the bench's matched baselines), on every
link (:mod:`epic_zoo.bench.ondemand`; the same timing, simulator and ratio
code as ``python -m epic_zoo.bench``). Fidelity columns come from the
committed refine-on-demand record (``refine_upload_fidelity.py``): EPIC's MAE
and SSIM before, after refinement at each upload, the mean-map MAE of the
same maps, and the refinement's CPU-seconds per map.

    python benchmarks/refine_upload_bench.py --dataset curvevel-a --num 2

Writes ``{out}/bench.csv`` and ``{out}/bench.md`` (refuses to overwrite
without ``--force``). The timed costs are kept in ``{out}/costs.json`` and
reused by a rerun with the same model, maps and uploads (``--force`` then
refreshes the fidelity columns only; ``--retime`` times again).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refine_check import MEASURE_SEED  # noqa: E402
from refine_data import port_pairs  # noqa: E402

from epic_zoo.bench.ondemand import (  # noqa: E402
    DEFAULT_UPLOADS,
    OnDemandCosts,
    Upload,
    markdown,
    measure_on_demand,
    on_demand_rows,
)
from epic_zoo.bench.report import conditions, write_csv  # noqa: E402
from epic_zoo.bench.settings import DEFAULT_LINKS, Settings, resolve_hardware  # noqa: E402
from epic_zoo.hardware.timing import default_cpu  # noqa: E402


def fidelity_columns(path: Path, uploads: list[Upload]) -> dict[str, dict]:
    """Row fidelity from a refine_upload_fidelity record: ``latent`` and each upload's."""
    if not path.is_file():
        return {}
    record = json.loads(path.read_text())
    out: dict[str, dict] = {}
    for upload in uploads:
        # zlib is lossless: with and without it the centre decodes the same records
        twin = Upload(upload.time_stride_ms, upload.precision, not upload.zlib).name
        source = next(
            (n for n in (upload.name, twin) if record["settings"].get(n, {}).get("maps")), None
        )
        if source is None:
            continue
        entry = record["settings"][source]
        s = entry["summary"]
        common = {
            "fidelity_maps": s["maps"],
            "fidelity_indices": " ".join(str(i) for i in s["indices"]),
            "mean_map_mae_ms": s["mean_map_mae"],
        }
        out[upload.name] = {
            **common,
            "mae_ms": s["mae_after"],
            "ssim_openfwi": s["ssim_after"],
            "refine_cpu_s_host": s["cpu_seconds"],
            "refine_threads": entry["maps"][0]["threads"],
            "fidelity_from_upload": source,
        }
        out.setdefault(
            "latent", {**common, "mae_ms": s["mae_before"], "ssim_openfwi": s["ssim_before"]}
        )
    return out


def pivot(rows: list[dict], key: str, scale: float = 1e3) -> str:
    """Markdown: one line per bench row, one column per link (``key`` measured / FLOP-based)."""
    names = list(dict.fromkeys(r["model"] for r in rows))
    links = list(dict.fromkeys(r["link"] for r in rows))
    get = {(r["model"], r["link"]): r for r in rows}

    def fmt(v: float) -> str:
        return f"{v:.3g}" if v < 1000 else f"{v:,.0f}"

    lines = [
        "| row | bytes per device | " + " | ".join(f"`{link}`" for link in links) + " |",
        "|---" * (len(links) + 2) + "|",
    ]
    for n in names:
        cells = [
            f"{fmt(scale * get[(n, link)][key + '_measured'])} / "
            f"{fmt(scale * get[(n, link)][key + '_flops'])}"
            for link in links
        ]
        size = get[(n, links[0])]["payload_bytes_per_device"]
        lines.append(f"| `{n}` | {size:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="curvevel-a")
    parser.add_argument("--num", type=int, default=2, help="maps 0..num-1 (sizes: mean over them)")
    parser.add_argument("--seed", type=int, default=MEASURE_SEED)
    parser.add_argument("--uploads", default=",".join(DEFAULT_UPLOADS))
    parser.add_argument("--links", default=",".join(DEFAULT_LINKS))
    parser.add_argument("--device", default="rpi4")
    parser.add_argument("--central", default="server-cpu")
    parser.add_argument("--repeats", type=int, default=60, help="timing rounds")
    parser.add_argument("--cache", type=Path, default=Path("data/refine"))
    parser.add_argument(
        "--fidelity", type=Path, default=Path("benchmarks/results/refine/upload_fidelity.json")
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/refine/bench_ondemand")
    )
    parser.add_argument("--force", action="store_true", help="overwrite {out}/bench.csv")
    parser.add_argument("--retime", action="store_true", help="time again (ignore costs.json)")
    parser.add_argument(
        "--table", action="store_true", help="print {out}/bench.csv by link (docs tables) and exit"
    )
    args = parser.parse_args(argv)
    if args.table:
        from epic_zoo.bench.report import read_csv

        rows = read_csv(args.out / "bench.csv")
        print("energy per device, mJ (measured / FLOPs)\n" + pivot(rows, "energy_per_device_j"))
        print("\nlatency, ms (measured / FLOPs)\n" + pivot(rows, "latency_s"))
        return 0
    from epic_zoo.models import load_model

    torch.set_num_threads(1)
    if (args.out / "bench.csv").exists() and not args.force:
        raise SystemExit(f"{args.out}/bench.csv exists; pass --force to overwrite or another --out")
    uploads = [Upload.parse(u) for u in args.uploads.split(",") if u.strip()]
    settings = Settings(
        links=[x for x in args.links.split(",") if x],
        device=args.device,
        central=args.central,
        fidelity="pretrained",
        data=str(args.cache / str(args.seed) / args.dataset),
        datasets=[args.dataset],
        models=["epic"],
        seed=args.seed,
        repeats=args.repeats,
    )
    hardware = resolve_hardware(settings)
    model = load_model(f"epic.{args.dataset}").eval()
    _, records = port_pairs(args.dataset, args.seed, range(args.num), args.cache)
    identity = {
        "model": f"epic.{args.dataset}",
        "seed": args.seed,
        "maps": args.num,
        "uploads": [u.name for u in uploads],
        "repeats": args.repeats,
    }
    cached = args.out / "costs.json"
    saved = json.loads(cached.read_text()) if cached.is_file() and not args.retime else {}
    if saved.get("identity") == identity:
        costs = OnDemandCosts.from_dict(saved["costs"])
        timed_on = saved["conditions"]
    else:
        costs = measure_on_demand(
            model,
            np.asarray(records),
            args.dataset,
            uploads,
            repeats=args.repeats,
            cpu=default_cpu(),
        )
        timed_on = conditions(settings, hardware)
        args.out.mkdir(parents=True, exist_ok=True)
        cached.write_text(
            json.dumps(
                {"identity": identity, "conditions": timed_on, "costs": costs.as_dict()}, indent=1
            )
            + "\n"
        )
    timing = (
        "commit",
        "date",
        "cpu",
        "cpu_count",
        "torch_version",
        "timing_clock",
        "timing_rounds",
    )
    facts = {
        **conditions(settings, hardware),
        **{k: timed_on[k] for k in timing},
        "checkpoint": f"epic.{args.dataset}",
        "records": "exact OpenFWI recipe port, 1 ms float32 at the devices",
        "size_maps": args.num,
        "test_data": f"recipe-port maps 0-{args.num - 1}, seed {args.seed}",
    }
    rows = on_demand_rows(
        costs,
        args.dataset,
        hardware,
        settings.links,
        facts=facts,
        fidelity=fidelity_columns(args.fidelity, uploads),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "bench.csv")
    c = rows[0]
    head = (
        f"# Refine on demand: {args.dataset}\n\nConditions: `epic.{args.dataset}`, recipe-port "
        f"records of maps 0-{args.num - 1} (seed {args.seed}; bytes are means over them); devices "
        f"`{c['device_profile']}`, centre `{c['central_profile']}`; commit `{c['commit']}`, "
        f"{c['cpu']} (timing in {c['timing_clock']} at 1 pinned thread, {c['timing_rounds']} "
        f"interleaved rounds; probe {c['host_gflops_1thread']:.1f} GFLOP/s). Energy per device: "
        "one device's compute + radio (mean over devices). `+ refinement s`: the refinement's "
        "CPU-seconds per map on this host (1 thread) scaled to the centre profile; MAE / SSIM: "
        "EPIC's map (latent rows) or the refined map (upload rows) on those maps, mean-map MAE "
        f"{rows[0].get('mean_map_mae_ms') or float('nan'):.1f} m/s. InversionNet rows: no "
        "committed weights, hardware only.\n\n"
    )
    (args.out / "bench.md").write_text(head + markdown(rows))
    print(head + markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

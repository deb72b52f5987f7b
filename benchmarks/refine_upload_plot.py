"""MAE against bytes per device: a network's own map and its refinement at each upload setting.

Reads the refine-on-demand record (``refine_upload_fidelity.py``) and draws one
plot: MAE (m/s, mean over the record's maps) against the bytes one device sends
per sample (log axis; the largest device's, mean over the maps): EPIC's latent
alone, latent + records at each upload setting after the default refinement,
and the input-free mean map of the same maps as a horizontal line. Prints the
Markdown table behind it.

    python benchmarks/refine_upload_plot.py

Several records (one per network, same dataset, seed and maps) share the axes,
e.g. EPIC and InversionNet trained alike:

    python benchmarks/refine_upload_plot.py --json A.json B.json --png OUT.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def points(record: dict) -> list[dict]:
    """One point per row of the plot: ``label``, ``bytes``, ``mae``, ``ssim``, per-map MAEs.

    A distributed network (EPIC): its latents alone, then latents + each upload
    after refinement. A centralised one (InversionNet): its map from each upload,
    then the same upload after refinement (the same bytes: it already holds them).
    """
    name = record.get("label", "EPIC")
    latent = int(record["latent_bytes_per_device"])
    settings = [s for s in record["settings"].values() if s.get("maps")]
    if not settings:
        raise SystemExit("the record holds no refined map yet; run refine_upload_fidelity.py")
    indices = sorted(set.intersection(*({m["index"] for m in s["maps"]} for s in settings)))
    first = {m["index"]: m for m in settings[0]["maps"]}
    mean_map = float(np.mean([first[i]["mean_map_mae"] for i in indices]))

    def row(label: str, maps: dict, when: str, upload: int) -> dict:
        return {
            "label": label,
            "network": name,
            "bytes": latent + upload,
            "upload_bytes": upload,
            "refined": when == "after",
            "mae": float(np.mean([maps[i][f"mae_{when}"] for i in indices])),
            "ssim": float(np.mean([maps[i][f"ssim_{when}"] for i in indices])),
            "per_map": [maps[i][f"mae_{when}"] for i in indices],
            "mean_map": mean_map,
            "cpu_s": float(np.mean([maps[i]["cpu_seconds"] for i in indices]))
            if when == "after"
            else None,
            "maps": len(indices),
            "indices": indices,
        }

    out = [row(f"{name} latents alone", first, "before", 0)] if latent else []
    for setting, s in sorted(record["settings"].items(), key=lambda kv: -_bytes(kv[1], indices)):
        if not s.get("maps"):
            continue
        maps = {m["index"]: m for m in s["maps"]}
        upload = _bytes(s, indices)
        if not latent:
            out.append(row(f"{name}, {setting}", maps, "before", upload))
        out.append(row(f"{name} + refinement, {setting}", maps, "after", upload))
    return out


def _bytes(setting: dict, indices: list[int]) -> int:
    """Largest device's bytes, each device's mean over the maps (as the bench counts them)."""
    maps = {m["index"]: m for m in setting["maps"]}
    per_device = np.mean([maps[i]["bytes_per_device"] for i in indices], axis=0)
    return int(round(float(per_device.max())))


def table(rows: list[dict]) -> str:
    lines = [
        "| what the centre gets | bytes per device | x smallest | MAE m/s (per map) | SSIM "
        "| mean-map MAE | CPU-s/map |",
        "|---|---|---|---|---|---|---|",
    ]
    smallest = min(r["bytes"] for r in rows)
    for r in rows:
        per_map = " / ".join(f"{v:.1f}" for v in r["per_map"])
        cpu = "-" if r["cpu_s"] is None else f"{r['cpu_s']:.0f}"
        lines.append(
            f"| {r['label']} | {r['bytes']:,} | {r['bytes'] / smallest:.0f}x "
            f"| **{r['mae']:.1f}** ({per_map}) | {r['ssim']:.3f} | {r['mean_map']:.1f} | {cpu} |"
        )
    return "\n".join(lines)


def title(records: list[dict]) -> str:
    """The plot's title: the networks, dataset, maps and seed the records share."""
    keys = {(r["dataset"], r["seed"]) for r in records}
    if len(keys) != 1:
        raise SystemExit(f"the records mix datasets or seeds {sorted(keys)}: plot one at a time")
    dataset, seed = keys.pop()
    names = " vs ".join(r.get("label", r["model"]) for r in records)
    return f"{names} on {dataset} (seed {seed}), recipe-port records, default refinement"


STYLE: dict[tuple[bool, bool], tuple[str, str]] = {
    (True, False): ("tab:blue", "o"),  # distributed network's own map
    (True, True): ("tab:orange", "s"),  # distributed + refinement
    (False, False): ("tab:green", "^"),  # centralised network's own map
    (False, True): ("tab:red", "D"),  # centralised + refinement
}
"""(distributed, refined) -> (colour, marker)."""


def plot(rows: list[dict], heading: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    mean_map = rows[0]["mean_map"]
    low = min(r["bytes"] for r in rows)
    ax.axhline(mean_map, color="0.5", ls="--", lw=1)
    ax.text(low, mean_map, " mean map (no input)", va="bottom", fontsize=8)
    distributed = {r["network"] for r in rows if r["upload_bytes"] == 0}
    fills = ("full", "none", "left", "bottom", "right", "top")  # one per upload of a kind
    seen: dict[tuple[bool, bool], int] = {}
    for r in rows:
        kind = (r["network"] in distributed, r["refined"])
        color, marker = STYLE[kind]
        fill = fills[seen.get(kind, 0) % len(fills)]
        seen[kind] = seen.get(kind, 0) + 1
        ax.scatter([r["bytes"]] * len(r["per_map"]), r["per_map"], s=10, color=color, alpha=0.35)
        ax.plot(
            [r["bytes"]],
            [r["mae"]],
            ls="",
            marker=marker,
            ms=8,
            color=color,
            fillstyle=fill,
            label=f"{r['label']}: {r['mae']:.1f} m/s",
        )
    ax.legend(fontsize=7, loc="upper center", framealpha=0.9)
    ax.set_xscale("log")
    ax.set_xlim(low / 2, max(r["bytes"] for r in rows) * 3)
    ax.set_ylim(0, max(mean_map, max(max(r["per_map"]) for r in rows)) * 1.45)
    ax.set_xlabel("bytes per device per sample (largest device; log)")
    ax.set_ylabel("MAE (m/s)")
    maps = ", ".join(map(str, rows[0]["indices"]))
    ax.set_title(f"{heading}\nmaps {maps}", fontsize=8)
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--json",
        type=Path,
        nargs="+",
        default=[Path("benchmarks/results/refine/upload_fidelity.json")],
        help="refine-on-demand records of one dataset and seed (one per network)",
    )
    parser.add_argument("--png", type=Path, default=Path("docs/assets/refine_upload_mae_bytes.png"))
    args = parser.parse_args(argv)
    records = [json.loads(path.read_text()) for path in args.json]
    heading = title(records)
    rows = [row for record in records for row in points(record)]
    shared = sorted(set.intersection(*(set(r["indices"]) for r in rows)))
    if any(r["indices"] != shared for r in rows):
        raise SystemExit(
            f"the records hold different maps ({sorted({tuple(r['indices']) for r in rows})}); "
            "run refine_upload_fidelity.py with the same --num for each"
        )
    plot(rows, heading, args.png)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

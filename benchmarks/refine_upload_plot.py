"""MAE against bytes per device: EPIC's latents alone, and EPIC + refinement at each upload setting.

Reads the refine-on-demand record (``refine_upload_fidelity.py``) and draws one
plot: MAE (m/s, mean over the record's maps) against the bytes one device sends
per sample (log axis; the largest device's, mean over the maps): EPIC's latent
alone, latent + records at each upload setting after the default refinement,
and the input-free mean map of the same maps as a horizontal line. Prints the
Markdown table behind it.

    python benchmarks/refine_upload_plot.py

InversionNet is not drawn: no InversionNet weights are committed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def points(record: dict) -> list[dict]:
    """One point per row of the plot: ``label``, ``bytes``, ``mae``, ``ssim``, per-map MAEs."""
    latent = int(record["epic_latent_bytes_per_device"])
    settings = [s for s in record["settings"].values() if s.get("maps")]
    if not settings:
        raise SystemExit("the record holds no refined map yet; run refine_upload_fidelity.py")
    indices = sorted(set.intersection(*({m["index"] for m in s["maps"]} for s in settings)))
    first = {m["index"]: m for m in settings[0]["maps"]}
    out = [
        {
            "label": "EPIC latents alone",
            "bytes": latent,
            "upload_bytes": 0,
            "mae": float(np.mean([first[i]["mae_before"] for i in indices])),
            "ssim": float(np.mean([first[i]["ssim_before"] for i in indices])),
            "per_map": [first[i]["mae_before"] for i in indices],
            "mean_map": float(np.mean([first[i]["mean_map_mae"] for i in indices])),
            "cpu_s": None,
            "maps": len(indices),
            "indices": indices,
        }
    ]
    for name, s in sorted(record["settings"].items(), key=lambda kv: -_bytes(kv[1], indices)):
        if not s.get("maps"):
            continue
        maps = {m["index"]: m for m in s["maps"]}
        upload = _bytes(s, indices)
        out.append(
            {
                "label": f"EPIC + refinement, {name}",
                "bytes": latent + upload,
                "upload_bytes": upload,
                "mae": float(np.mean([maps[i]["mae_after"] for i in indices])),
                "ssim": float(np.mean([maps[i]["ssim_after"] for i in indices])),
                "per_map": [maps[i]["mae_after"] for i in indices],
                "mean_map": out[0]["mean_map"],
                "cpu_s": float(np.mean([maps[i]["cpu_seconds"] for i in indices])),
                "maps": len(indices),
            }
        )
    return out


def _bytes(setting: dict, indices: list[int]) -> int:
    """Largest device's bytes, each device's mean over the maps (as the bench counts them)."""
    maps = {m["index"]: m for m in setting["maps"]}
    per_device = np.mean([maps[i]["bytes_per_device"] for i in indices], axis=0)
    return int(round(float(per_device.max())))


def table(rows: list[dict]) -> str:
    lines = [
        "| what the centre gets | bytes per device | x latent | MAE m/s (per map) | SSIM "
        "| mean-map MAE | CPU-s/map |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_map = " / ".join(f"{v:.1f}" for v in r["per_map"])
        cpu = "-" if r["cpu_s"] is None else f"{r['cpu_s']:.0f}"
        lines.append(
            f"| {r['label']} | {r['bytes']:,} | {r['bytes'] / rows[0]['bytes']:.0f}x "
            f"| **{r['mae']:.1f}** ({per_map}) | {r['ssim']:.3f} | {r['mean_map']:.1f} | {cpu} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    ax.axhline(rows[0]["mean_map"], color="0.5", ls="--", lw=1)
    ax.text(rows[0]["bytes"], rows[0]["mean_map"], " mean map (no input)", va="bottom", fontsize=8)
    for r in rows:
        latent = r["upload_bytes"] == 0
        color = "tab:blue" if latent else "tab:orange"
        ax.scatter([r["bytes"]] * len(r["per_map"]), r["per_map"], s=10, color=color, alpha=0.35)
        ax.scatter([r["bytes"]], [r["mae"]], s=50, color=color, marker="o" if latent else "s")
        if latent:
            ax.annotate(
                r["label"],
                (r["bytes"], r["mae"]),
                textcoords="offset points",
                xytext=(6, -12),
                fontsize=8,
            )
        else:  # upright above the map's dots: the uploads sit close on the log axis
            ax.annotate(
                r["label"].replace("EPIC + refinement, ", "+ refinement, "),
                (r["bytes"], max(r["per_map"])),
                textcoords="offset points",
                xytext=(0, 6),
                rotation=90,
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_xscale("log")
    ax.set_xlim(rows[0]["bytes"] / 2, max(r["bytes"] for r in rows) * 3)
    ax.set_ylim(0, rows[0]["mean_map"] * 1.15)
    ax.set_xlabel("bytes per device per sample (largest device; log)")
    ax.set_ylabel("MAE (m/s)")
    ax.set_title(
        f"{record['model']} on {record['dataset']}: maps {', '.join(map(str, rows[0]['indices']))} "
        f"(seed {record['seed']}), recipe-port records, default refinement",
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--json", type=Path, default=Path("benchmarks/results/refine/upload_fidelity.json")
    )
    parser.add_argument("--png", type=Path, default=Path("docs/assets/refine_upload_mae_bytes.png"))
    args = parser.parse_args(argv)
    record = json.loads(args.json.read_text())
    rows = points(record)
    plot(rows, record, args.png)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

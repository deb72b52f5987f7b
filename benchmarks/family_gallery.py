"""Gallery of the ten velocity families: one map and its middle-source shot gather each.

Draws sample ``--index`` of every dataset's ``--split`` (seed ``--seed``) with
:func:`epic_zoo.data.families.generate_velocity`, simulates the shot from the
middle source (grid column 34) with :func:`epic_zoo.data.forward.simulate`, and
writes one PNG: velocity maps (depth z x offset x, km, m/s) above their shot
gathers (time s x receiver offset km, raw amplitude, clipped at the 90th
percentile of |amplitude|).

    python benchmarks/family_gallery.py            # -> benchmarks/results/family_gallery.png
    python benchmarks/family_gallery.py --index 3 --out gallery.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from epic_zoo.data.catalog import DATASET_NAMES, get_dataset
from epic_zoo.data.families import GENERATOR_VERSION, generate_velocity
from epic_zoo.data.forward import simulate
from epic_zoo.data.geometry import DT, DX, NT, NX, NZ, SOURCE_COLUMNS, V_MAX, V_MIN

MIDDLE_SHOT: int = len(SOURCE_COLUMNS) // 2
"""Index of the middle source (column 34) in SOURCE_COLUMNS."""
COLUMNS: int = 5
"""Datasets per figure row."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--index", type=int, default=0, help="sample index in each dataset (default 0)"
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"))
    parser.add_argument(
        "--backend", default="deepwave", help="simulate() backend (default deepwave)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "family_gallery.png",
        help="output PNG (default benchmarks/results/family_gallery.png)",
    )
    return parser.parse_args(argv)


def draw_gallery(velocity: np.ndarray, gathers: np.ndarray, out: Path, title: str) -> None:
    """Write the figure.

    Args:
        velocity: ``[10, 70, 70]`` maps (depth z, offset x), m/s, in DATASET_NAMES order.
        gathers: ``[10, nt, 70]`` middle-source records (time, receiver), raw amplitude.
        out: PNG path (parent folders are created).
        title: figure title.
    """
    rows = 2 * int(np.ceil(len(DATASET_NAMES) / COLUMNS))
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(3.0 * COLUMNS, 2.9 * rows), squeeze=False)
    size_km = (NX * DX / 1000.0, NZ * DX / 1000.0)
    duration_s = gathers.shape[1] * DT
    image = None
    for k, name in enumerate(DATASET_NAMES):
        top = axes[2 * (k // COLUMNS), k % COLUMNS]
        bottom = axes[2 * (k // COLUMNS) + 1, k % COLUMNS]
        image = top.imshow(
            velocity[k],
            extent=(0, size_km[0], size_km[1], 0),
            vmin=V_MIN,
            vmax=V_MAX,
            cmap="jet",
        )
        top.set_title(get_dataset(name).openfwi_name, fontsize=10)
        top.set_xlabel("offset x (km)", fontsize=7)
        top.set_ylabel("depth z (km)", fontsize=7)
        clip = float(np.percentile(np.abs(gathers[k]), 90)) or 1.0
        bottom.imshow(
            gathers[k],
            extent=(0, size_km[0], duration_s, 0),
            aspect="auto",
            cmap="gray",
            vmin=-clip,
            vmax=clip,
        )
        bottom.set_xlabel("receiver x (km)", fontsize=7)
        bottom.set_ylabel("time (s)", fontsize=7)
        for ax in (top, bottom):
            ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.93, 0.97))
    bar = fig.add_axes((0.94, 0.3, 0.012, 0.4))
    fig.colorbar(image, cax=bar).set_label("velocity (m/s)", fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    torch.set_num_threads(1)
    plt.switch_backend("Agg")
    velocity = np.concatenate(
        [
            generate_velocity(name, [args.index], seed=args.seed, split=args.split)
            for name in DATASET_NAMES
        ]
    )[:, 0]  # [10, 70, 70] m/s
    gathers = simulate(velocity, backend=args.backend, shots=[MIDDLE_SHOT], nt=NT, progress=True)[
        :, 0
    ]
    title = (
        f"epic_zoo velocity families (generator v{GENERATOR_VERSION}, seed {args.seed}, "
        f"{args.split} sample {args.index}) and middle-source shot gathers ({args.backend})"
    )
    draw_gallery(velocity, np.asarray(gathers), args.out, title)
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()

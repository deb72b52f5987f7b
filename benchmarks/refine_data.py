"""Fresh maps and their recipe-port records for the refinement check, cached one map per file.

Map ``i`` of ``(dataset, seed)`` is ``generate_velocity(dataset, [i], seed, split="test")``
(a pure function of its index, so a later session adds maps without changing the
earlier ones); its records come from the exact OpenFWI recipe port
(``simulate(..., backend="openfwi")``, ~8 CPU-s per map), never from deepwave,
which refines. Cached as ``{cache}/{seed}/{dataset}/{i:04d}.npz`` (velocity m/s
``[1, 70, 70]``, records ``[5, 1000, 70]``).

    python benchmarks/refine_data.py --seed 314159 --datasets all --num 4 --cache data/refine
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from epic_zoo.data.catalog import DATASET_NAMES
from epic_zoo.data.families import generate_velocity
from epic_zoo.data.forward import simulate


def port_pair(dataset: str, seed: int, index: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(velocity [1, 70, 70] m/s, records [5, 1000, 70])`` of map ``index``, cached."""
    path = cache / str(seed) / dataset / f"{index:04d}.npz"
    if path.is_file():
        with np.load(path) as f:
            return f["velocity"], f["records"]
    velocity = generate_velocity(dataset, [index], seed=seed, split="test")
    records = simulate(velocity, backend="openfwi")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, velocity=velocity[0], records=records[0])
    tmp.replace(path)
    return velocity[0], records[0]


def port_pairs(
    dataset: str, seed: int, indices: range | list[int], cache: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Stacked :func:`port_pair` of ``indices``: ``[N, 1, 70, 70]``, ``[N, 5, 1000, 70]``."""
    pairs = [port_pair(dataset, seed, i, cache) for i in indices]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--datasets", nargs="+", default=["all"])
    parser.add_argument("--num", type=int, default=4)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("data/refine"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    datasets = list(DATASET_NAMES) if args.datasets == ["all"] else args.datasets
    for dataset in datasets:
        started = time.process_time()
        port_pairs(dataset, args.seed, range(args.start, args.start + args.num), args.cache)
        print(f"{dataset}: {args.num} maps, {time.process_time() - started:.0f} CPU-s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

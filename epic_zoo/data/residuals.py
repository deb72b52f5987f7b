"""Recipe-boundary residuals: what the OpenFWI recipe's sponge adds to a deepwave record.

Models trained on deepwave records (CPML boundary) fail on records made by the
exact recipe port (``simulate(..., backend="openfwi")``): the recipe's sponge
sends back a coherent late-time artefact (after ~0.6 s) that barely depends on
the map, and the models read the quiet late records that deepwave keeps clean
(``benchmarks/results/recipe_port/README.md``). Adding these residuals to
training inputs teaches a model to ignore the artefact.

- :func:`recipe_residuals`: templates ``[N, 5, T, 70]`` float32 =
  ``normalize_seismic(port) - normalize_seismic(deepwave)`` of the same maps,
  kept every ``time_stride`` ms exactly as stored records are
  (``[:, :, ::time_stride]``), so ``T = ceil(1000 / time_stride)``.
- :func:`ensure_recipe_residuals`: the templates of the last ``num`` maps of a
  training split, cached as ``recipe_residuals-n{num}-stride{time_stride}.npy``
  in the dataset folder (beside ``train/``), written atomically.
- :func:`add_recipe_residuals`: the augmentation: each sample of a batch of
  normalised records gets, with probability ``p``, one random template times a
  scale drawn from ``U(scale)``.

Cost: the recipe port takes ~5 s per map on one CPU core (~4 min for the
default 48 maps), once per dataset, time stride and ``num``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from epic_zoo.data.forward import simulate
from epic_zoo.data.store import H5Split
from epic_zoo.data.timeaxis import time_samples_for
from epic_zoo.data.transforms import normalize_seismic

PORT_SECONDS_PER_MAP: float = 5.0
"""Rough CPU time of the recipe port per map on one core (benchmarks/results/recipe_port)."""


def residual_cache_name(num: int, time_stride: int) -> str:
    """File name of cached templates, e.g. ``recipe_residuals-n48-stride4.npy``."""
    return f"recipe_residuals-n{int(num)}-stride{int(time_stride)}.npy"


def recipe_residuals(
    velocity: np.ndarray | torch.Tensor, dataset: str, time_stride: int
) -> np.ndarray:
    """Recipe-boundary residual templates of velocity maps.

    Args:
        velocity: ``[N, 70, 70]`` (or ``[N, 1, 70, 70]``) in m/s.
        dataset: dataset name (its normalisation range, :func:`normalize_seismic`).
        time_stride: keep every ``time_stride``-th ms, as the stored data do.

    Returns:
        float32 ``[N, shot=5, time=T, receiver=70]``: normalised recipe-port
        records minus normalised deepwave records, ``T = ceil(1000 / time_stride)``.
    """
    velocity = np.asarray(velocity, dtype=np.float32)
    stride = int(time_stride)
    port = np.asarray(simulate(velocity, backend="openfwi"))[:, :, ::stride]
    deep = np.asarray(simulate(velocity, backend="deepwave"))[:, :, ::stride]
    diff = normalize_seismic(port, dataset) - normalize_seismic(deep, dataset)
    return np.ascontiguousarray(diff, dtype=np.float32)


def ensure_recipe_residuals(
    train_split_dir: str | os.PathLike, dataset: str, num: int, time_stride: int
) -> Path:
    """Templates of the last ``num`` maps of a training split, cached beside it; returns the file.

    The file ``{dataset folder}/recipe_residuals-n{num}-stride{time_stride}.npy``
    (the dataset folder is the split's parent) is reused when it holds
    ``[num, 5, T, 70]``; otherwise the maps are simulated with both backends
    (:func:`recipe_residuals`) and the file written to a ``.tmp`` name and
    renamed. Raises ``ValueError`` if the split has fewer than ``num`` samples.
    """
    split_dir = Path(train_split_dir)
    path = split_dir.parent / residual_cache_name(num, time_stride)
    shape = (int(num), 5, time_samples_for(int(time_stride)), 70)
    if path.is_file():
        try:
            if np.load(path, mmap_mode="r").shape == shape:
                return path
        except (OSError, ValueError):
            pass  # unreadable: make it again
    split = H5Split(split_dir)
    n = len(split)
    if int(num) > n:
        raise ValueError(
            f"data.recipe_residuals.num={num} but {split_dir} holds only {n} maps; "
            f"set data.recipe_residuals.num to at most {n}"
        )
    velocity = np.stack([split[i][1][0] for i in range(n - int(num), n)])
    split.close()
    print(
        f"epic_zoo: simulating {num} {dataset} training maps with the recipe port for the "
        f"recipe residuals (~{PORT_SECONDS_PER_MAP:.0f} s per map on one core) into {path}",
        file=sys.stderr,
        flush=True,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        templates = recipe_residuals(velocity, dataset, time_stride)
    finally:
        torch.set_num_threads(threads)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, templates)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def add_recipe_residuals(
    seismic: torch.Tensor,
    templates: torch.Tensor,
    p: float,
    scale: Sequence[float] = (0.5, 1.5),
    generator: torch.Generator | None = None,
    group: torch.Tensor | None = None,
) -> torch.Tensor:
    """``seismic`` ``[B, 5, T, 70]`` (normalised) with, per sample and with probability ``p``,
    ``s * templates[j]`` added (``j`` uniform over the templates, ``s ~ U(scale)``).

    With ``group`` (``[B]`` ints), ``templates`` is ``[G, N, 5, T, 70]``: sample
    ``i`` draws from its own group's ``templates[group[i]]`` (a union of
    datasets: each sample gets its dataset's templates, on its dataset's
    normalised scale). The draws are the same either way.

    Draws come from ``generator`` (default torch's global RNG, which the runner
    seeds per epoch), on the CPU, so they do not depend on the device. Returns
    a new tensor; ``p == 0`` returns ``seismic`` itself.
    """
    if p <= 0:
        return seismic
    b = seismic.shape[0]
    count = templates.shape[1] if group is not None else len(templates)
    pick = torch.rand(b, generator=generator) < p
    j = torch.randint(count, (b,), generator=generator)
    lo, hi = float(scale[0]), float(scale[1])
    s = lo + (hi - lo) * torch.rand(b, generator=generator)
    weight = (pick.to(s.dtype) * s).to(device=seismic.device, dtype=seismic.dtype)
    j = j.to(templates.device)
    if group is None:
        chosen = templates[j]
    else:
        chosen = templates[group.to(device=templates.device, dtype=torch.long), j]
    chosen = chosen.to(device=seismic.device, dtype=seismic.dtype)
    return seismic + weight[:, None, None, None] * chosen

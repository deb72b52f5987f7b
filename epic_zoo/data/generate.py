"""Synthetic data generation into the HDF5 store, resumable and parallel.

:func:`generate_split` makes one split: velocity maps from
:func:`epic_zoo.data.families.generate_velocity` (sample ``i`` depends only on
``(dataset, seed, split, i)``), records from
:func:`epic_zoo.data.forward.simulate`, decimated in time and written shard by
shard with :func:`epic_zoo.data.store.write_shard` (atomic). Finished shards
are kept (:func:`epic_zoo.data.store.check_resumable`), so a stopped run
resumes; ``shards=(start, end)`` splits a split over cluster jobs.
:func:`ensure_data` makes the train/val/test splits of a profile on first use.

The shard layout, validation and reading live in :mod:`epic_zoo.data.store`.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from epic_zoo.data.catalog import DatasetInfo, get_dataset
from epic_zoo.data.geometry import NT
from epic_zoo.data.profiles import Profile, get_profile
from epic_zoo.data.store import (
    DTYPES,
    SPLITS,
    check_arrays,
    check_resumable,
    check_writable,
    profile_root,
    resolve_root,
    shard_name,
    split_attrs,
    split_count,
    write_shard,
)


@dataclass(frozen=True)
class _ShardJob:
    """Everything a worker needs to make one shard (picklable)."""

    path: Path
    attrs: dict[str, Any]
    device: str | None


def _make_shard(job: _ShardJob) -> int:
    """Generate, simulate, decimate and write one shard; returns its sample count."""
    from epic_zoo.data import families, forward

    a = job.attrs
    first, count = int(a["first_index"]), int(a["count"])
    velocity = families.generate_velocity(
        a["dataset"],
        range(first, first + count),
        seed=int(a["seed"]),
        split=a["split"],
        generator=str(a.get("generator", "default")),
    )
    seismic = np.asarray(forward.simulate(velocity, backend=a["backend"], device=job.device))
    # every simulated time sample, also those the stride drops: NaN there means the
    # simulation diverged, and the kept samples cannot be trusted either
    check_arrays(
        seismic,
        np.asarray(velocity, dtype=np.float32),
        what=f"{job.path} (simulated, before time decimation)",
        fix=f"The forward model ({a['backend']}) failed; nothing was written.",
        first_index=first,
    )
    seismic = np.ascontiguousarray(seismic[:, :, :: int(a["time_stride"]), :])
    write_shard(job.path, seismic, velocity, a)
    return count


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _parse_shards(shards: tuple[int, int] | None, num_shards: int) -> range:
    if shards is None:
        return range(num_shards)
    start, end = int(shards[0]), int(shards[1])
    if not 0 <= start < end <= num_shards:
        raise ValueError(
            f"shard range {start}:{end} is not inside 0:{num_shards} "
            f"(this split has {num_shards} shards)"
        )
    return range(start, end)


def generate_split(
    dataset: str | DatasetInfo,
    split: str,
    num: int,
    root: str | os.PathLike,
    *,
    seed: int = 0,
    time_stride: int = 1,
    dtype: str = "float32",
    shard_size: int = 100,
    workers: int = 1,
    device: str | None = None,
    progress: bool = True,
    shards: tuple[int, int] | None = None,
    backend: str = "deepwave",
    generator: str = "default",
) -> Path:
    """Generate ``num`` samples of ``dataset``/``split`` into ``{root}/{dataset}/{split}``.

    Velocity maps come from :func:`epic_zoo.data.families.generate_velocity`
    (sample ``i`` depends only on ``(dataset, seed, split, i)``; ``generator``
    picks the laws: ``"default"`` or ``"wide"``), records from
    :func:`epic_zoo.data.forward.simulate` (``backend``, ``device``), kept every
    ``time_stride`` ms and stored as ``dtype``. Resumable: finished shards are
    kept, missing ones made. ``shards=(start, end)`` makes only shards
    ``start..end-1`` (for splitting the work over cluster jobs). Each process
    simulates with one torch thread (the 70 x 70 grid gains little from more,
    and oversubscribed cores slow deepwave down many times); ``workers > 1``
    makes shards in that many parallel processes.

    ``dataset`` is a name or the catalog entry a caller resolved already.

    Returns the split folder.
    """
    info = dataset if isinstance(dataset, DatasetInfo) else get_dataset(dataset)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if int(num) < 1:
        raise ValueError(f"num={num}: generate at least one sample")
    if not 1 <= int(time_stride) <= NT:
        raise ValueError(f"time_stride={time_stride} must be between 1 and {NT}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r}; use one of {', '.join(DTYPES)}")
    if int(shard_size) < 1:
        raise ValueError(f"shard_size={shard_size} must be at least 1")
    if int(workers) < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    from epic_zoo.data.families import GENERATOR_VERSION, family_params

    family_params(info.name, generator)  # an unknown generator fails here, before any folder

    num, shard_size, time_stride = int(num), int(shard_size), int(time_stride)
    num_shards = math.ceil(num / shard_size)
    split_dir = resolve_root(root) / info.name / split
    check_writable(split_dir, "the output folder (--out)")
    base = split_attrs(
        info,
        split,
        source="synthetic",
        seed=int(seed),
        generator_version=GENERATOR_VERSION,
        backend=backend,
        time_stride=time_stride,
        dtype=dtype,
        total=num,
        shard_size=shard_size,
        generator=generator,
    )
    wanted = _parse_shards(shards, num_shards)
    todo = check_resumable(split_dir, base, wanted)
    if not todo:
        return split_dir
    jobs = []
    for k in todo:
        first = k * shard_size
        count = min(shard_size, num - first)
        attrs = dict(base, shard_index=k, first_index=first, count=count)
        jobs.append(_ShardJob(split_dir / shard_name(k), attrs, device))
    total = sum(int(j.attrs["count"]) for j in jobs)
    done = len(wanted) - len(todo)
    print(
        f"epic_zoo: generating {total} {info.name} {split} samples into {split_dir} "
        f"({len(todo)} shards to make, {done} already there)",
        file=sys.stderr,
        flush=True,
    )
    with tqdm(total=total, unit="sample", desc=f"{info.name}/{split}", disable=not progress) as bar:
        if workers == 1 or len(jobs) == 1:
            import torch

            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                for job in jobs:
                    bar.update(_make_shard(job))
            finally:
                torch.set_num_threads(threads)
        else:
            method = (
                "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            )
            ctx = multiprocessing.get_context(method)
            with ctx.Pool(min(workers, len(jobs)), initializer=_init_worker) as pool:
                for count in pool.imap_unordered(_make_shard, jobs):
                    bar.update(count)
    return split_dir


def ensure_data(
    dataset: str,
    profile: str | Profile = "lite",
    root: str | os.PathLike | None = None,
    seed: int = 0,
    *,
    workers: int = 1,
    device: str | None = None,
    progress: bool = True,
    splits: tuple[str, ...] = SPLITS,
) -> Path:
    """Make sure the train/val/test splits of ``profile`` exist; generate what is missing.

    Data live in ``{root}/{profile}-seed{seed}/{dataset}/{split}`` where ``root``
    is the argument, else ``$EPIC_ZOO_DATA``, else ``~/.cache/epic_zoo/data``.
    Prints where the data are and what it generates. ``splits`` limits the
    work to some splits (e.g. ``("val", "test")``). Returns the dataset folder
    (holding ``train/``, ``val/`` and ``test/``).
    """
    info = get_dataset(dataset)
    prof = get_profile(profile)
    store_root = profile_root(root, prof, seed)
    print(
        f"epic_zoo: {info.name} data (profile {prof.name}, seed {seed}) in {store_root / info.name}",
        file=sys.stderr,
        flush=True,
    )
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        generate_split(
            info,
            split,
            split_count(info, prof, split),
            store_root,
            seed=seed,
            time_stride=prof.time_stride,
            dtype=prof.dtype,
            shard_size=prof.shard_size,
            workers=workers,
            device=device,
            progress=progress,
            generator=prof.generator,
        )
    return store_root / info.name


def regenerate_test_split(
    dataset: str, record: Mapping[str, Any], num: int, root: str | os.PathLike
) -> Path:
    """The first ``num`` test samples of the data a run's data ``record`` describes, made again.

    Args:
        dataset: dataset name.
        record: the run's data record (``seed``, ``time_stride``, ``dtype``,
            ``generator_version``, ``data_source``; ``PretrainedInfo.data``).
        num: test samples (sample ``i`` depends only on dataset, seed, split and ``i``).
        root: cache folder; each data setting gets its own sub-folder
            (``{root}/n{num}-seed{seed}-stride{stride}-{dtype}/{dataset}/test``),
            so repeated checks reuse it.

    Returns the split folder.

    Raises:
        ValueError: the record was made with another generator version (the
            regenerated data would differ) or from imported OpenFWI files.
    """
    from epic_zoo.data.families import GENERATOR_VERSION

    if record.get("data_source", "synthetic") != "synthetic":
        raise ValueError(
            f"the weights were trained on {record['data_source']} data; they cannot be regenerated"
        )
    recorded = str(record.get("generator_version", GENERATOR_VERSION))
    if recorded != GENERATOR_VERSION:
        raise ValueError(
            f"the weights were measured on generator version {recorded}, this checkout has "
            f"{GENERATOR_VERSION}: regenerated data differ; check out the recorded commit"
        )
    seed, stride = int(record.get("seed", 0)), int(record.get("time_stride", 1))
    dtype = str(record.get("dtype", "float32"))
    generator = str(record.get("generator", "default"))
    laws = "" if generator == "default" else f"-{generator}"
    return generate_split(
        dataset,
        "test",
        int(num),
        Path(root) / f"n{int(num)}-seed{seed}-stride{stride}-{dtype}{laws}",
        seed=seed,
        time_stride=stride,
        dtype=dtype,
        generator=generator,
        shard_size=int(num),
        progress=False,
    )

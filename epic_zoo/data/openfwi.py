"""Read real OpenFWI downloads in place, or convert them to the HDF5 store.

A released OpenFWI dataset is a folder of ``.npy`` pairs (docs/data.md,
"Datasets"), 500 samples per file:

- Vel and Style families: ``data{i}.npy`` ``[N, 5, 1000, 70]`` seismic with
  ``model{i}.npy`` ``[N, 1, 70, 70]`` velocity (m/s);
- Fault families: ``seis{X}_1_{Y}.npy`` with ``vel{X}_1_{Y}.npy``.

Files may sit directly in the folder or in sub-folders (e.g. ``data/`` and
``model/``). The official train/test file lists come from
:mod:`epic_zoo.data.catalog`; a reader uses the files of the requested split
that are present. Sample order: files in the catalog's order (Fault: prefix
``X`` outer, index ``Y`` inner), samples in file order.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from epic_zoo.data.catalog import DatasetInfo, get_dataset
from epic_zoo.data.geometry import DT, NT, OPENFWI_GEOMETRY, SEISMIC_SHAPE, VELOCITY_SHAPE
from epic_zoo.data.store import (
    DTYPES,
    DataError,
    ShardedArrays,
    check_arrays,
    check_resumable,
    shard_name,
    split_attrs,
    write_shard,
)

OPENFWI_SPLITS: tuple[str, ...] = ("train", "test")

_PATTERNS = {
    "vel": (re.compile(r"data(\d+)\.npy"), "data{}.npy", "model{}.npy"),
    "style": (re.compile(r"data(\d+)\.npy"), "data{}.npy", "model{}.npy"),
    "fault": (re.compile(r"seis(\d+)_1_(\d+)\.npy"), "seis{}_1_{}.npy", "vel{}_1_{}.npy"),
}


def _keys(info: DatasetInfo, split: str) -> list[tuple[int, ...]]:
    """Official file keys of ``split`` in catalog order: ``(i,)`` or ``(X, Y)``."""
    files = info.train_files if split == "train" else info.test_files
    if info.family == "fault":
        return [(x, y) for x in info.fault_prefixes for y in files]
    return [(i,) for i in files]


def file_pair_names(info: DatasetInfo, key: tuple[int, ...]) -> tuple[str, str]:
    """``(seismic file name, velocity file name)`` of one OpenFWI file key."""
    _, seis, vel = _PATTERNS[info.family]
    return seis.format(*key), vel.format(*key)


def present_keys(
    info: DatasetInfo, present: dict[str, Path] | set[str], split: str | None
) -> list[tuple[int, ...]]:
    """File keys of ``split`` whose seismic file is in ``present`` (names), catalog order.

    ``split=None``: every seismic file name following the dataset's layout, in
    numeric order.
    """
    if split is None:
        pattern = _PATTERNS[info.family][0]
        return sorted(
            tuple(int(g) for g in m.groups()) for name in present if (m := pattern.fullmatch(name))
        )
    return [k for k in _keys(info, split) if file_pair_names(info, k)[0] in present]


_ANY_PAIR = re.compile(r"(data|seis)(.*)\.npy")
_PARTNER = {"data": "model", "seis": "vel"}


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def any_pairs(present: dict[str, Path] | set[str]) -> list[tuple[str, str]]:
    """Every ``data*.npy``/``model*.npy`` and ``seis*.npy``/``vel*.npy`` pair present, natural order.

    For folders of OpenFWI-layout pairs whose names are not the dataset's
    official ones (e.g. ``data1.npy``/``model1.npy`` for a Fault dataset).
    Seismic files without a partner are left out.
    """
    pairs = []
    for name in sorted(present, key=_natural_key):
        if (m := _ANY_PAIR.fullmatch(name)) and (
            partner := f"{_PARTNER[m[1]]}{m[2]}.npy"
        ) in present:
            pairs.append((name, partner))
    return pairs


def index_folder(root: Path) -> dict[str, Path]:
    """Every ``.npy`` file under ``root`` by name; duplicate names are an error."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, names in os.walk(root):
        dirnames.sort()  # deterministic walk, so a duplicate is always reported the same way
        for name in sorted(names):
            if not name.endswith(".npy"):
                continue
            path = Path(dirpath) / name
            if name in found:
                raise DataError(
                    f"two files named {name} under {root}: {found[name]} and {path}. "
                    "Keep one copy of each OpenFWI file."
                )
            found[name] = path
    return found


_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
_REDOWNLOAD = "Download it again from OpenFWI (https://openfwi-lanl.github.io)."


def read_npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """``(shape, dtype, fortran_order, data offset in bytes)`` of a ``.npy`` file, reading only its header.

    Refuses (:class:`DataError` naming the file) anything that is not a regular
    file (a FIFO would block, a device never ends), a header numpy cannot
    parse, and a header whose ``shape * itemsize`` disagrees with the file's
    size: the check happens before anything sized by the header is allocated.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}.") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise DataError(
                f"{path} is not a regular file (a pipe, device or socket); "
                "pass a folder of downloaded OpenFWI .npy files."
            )
        try:
            version = np.lib.format.read_magic(f)
            if version not in _NPY_HEADER_READERS:
                raise ValueError(f".npy format version {version} is not supported")
            shape, fortran, dtype = _NPY_HEADER_READERS[version](f)
            offset = f.tell()
        except (ValueError, OSError, EOFError, SyntaxError, TypeError) as err:
            raise DataError(
                f"cannot read {path}: truncated or corrupt .npy file ({err}). {_REDOWNLOAD}"
            ) from None
    expected = offset + math.prod(shape) * dtype.itemsize
    if dtype.hasobject or expected != info.st_size:
        raise DataError(
            f"cannot read {path}: truncated or corrupt .npy file (its header declares "
            f"{shape} {dtype} = {expected} bytes, the file has {info.st_size}). {_REDOWNLOAD}"
        )
    return tuple(int(n) for n in shape), dtype, bool(fortran), offset


def _open_npy(path: Path, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    """Memory-map ``path`` after checking its header: shape ``[N, *shape_tail]``, a float dtype.

    Shape and dtype are checked against the OpenFWI contract and the file's
    size (:func:`read_npy_header`) before the file is mapped, so a forged
    header allocates nothing.
    """
    path = Path(path)
    shape, dtype, fortran, offset = read_npy_header(path)
    if len(shape) != len(shape_tail) + 1 or shape[1:] != shape_tail:
        expected = ", ".join(["N", *map(str, shape_tail)])
        raise DataError(
            f"{path}: {what} has shape {shape}, expected ({expected}) "
            "as in OpenFWI releases. Is this the right file?"
        )
    if not np.issubdtype(dtype, np.floating):
        raise DataError(f"{path}: {what} has dtype {dtype}, expected float32. {_REDOWNLOAD}")
    if shape[0] == 0:
        return np.empty(shape, dtype)
    try:
        return np.memmap(
            path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C"
        )
    except (ValueError, OSError) as err:
        raise DataError(
            f"cannot read {path}: truncated or corrupt .npy file ({err}). {_REDOWNLOAD}"
        ) from err


class OpenFWIFolder(ShardedArrays):
    """A folder of real-layout OpenFWI ``.npy`` pairs, read in place.

    Args:
        root: folder holding the files (searched recursively).
        dataset: epic_zoo or OpenFWI name, e.g. ``"flatvel-a"`` / ``"FlatVel-A"``.
        split: ``"train"`` or ``"test"`` (the official file lists: only files
            present are used) or ``None`` (every pair present whose name
            follows the dataset's layout). A folder with none of those names
            is read as every ``data*/model*`` or ``seis*/vel*`` pair present
            (:func:`any_pairs`), with a note on stderr.
        mmap: memory-map the files (default); ``False`` loads each file into
            memory on its first read.

    Same item contract as :class:`epic_zoo.data.store.H5Split`: ``folder[i]``
    is ``(seismic [5, 1000, 70] float32 raw, velocity [1, 70, 70] float32 m/s)``.
    Construction checks every file's header (shape, dtype, pairing, length)
    without reading the data and raises :class:`DataError` naming the file.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        dataset: str,
        split: str | None = "train",
        mmap: bool = True,
    ):
        self.root = Path(root)
        self.info = get_dataset(dataset)
        self.split = split
        self.mmap = mmap
        if split is not None and split not in OPENFWI_SPLITS:
            raise ValueError(
                f"unknown OpenFWI split {split!r}; use 'train', 'test' or None (all files present)"
            )
        if not self.root.is_dir():
            raise DataError(
                f"OpenFWI folder {self.root} does not exist. Download {self.info.openfwi_name} "
                "from https://openfwi-lanl.github.io and pass the folder holding its .npy files."
            )
        present = index_folder(self.root)
        keys = present_keys(self.info, present, split)
        which = "any split" if split is None else f"the official {split} split"
        names = [file_pair_names(self.info, k) for k in keys]
        own_pairs = not keys and not present_keys(self.info, present, None)
        if own_pairs:  # no file follows the dataset's naming: a user's own folder of pairs
            names = any_pairs(present)
        if not names:
            expected = [
                file_pair_names(self.info, k)[0] for k in _keys(self.info, split or "train")
            ]
            raise DataError(
                f"no {self.info.openfwi_name} seismic files of {which} under {self.root} "
                f"(expected names {expected[0]} .. {expected[-1]}, or any data*/model* or "
                "seis*/vel* .npy pairs). Download them from https://openfwi-lanl.github.io "
                "or pass the folder that holds them."
            )
        if own_pairs:
            print(
                f"note: no {self.info.openfwi_name} files of {which} under {self.root}; reading "
                f"every data*/model* and seis*/vel* pair instead ({len(names)}: "
                f"{names[0][0]} .. {names[-1][0]})",
                file=sys.stderr,
            )
        pairs = []
        for seis_name, vel_name in names:
            if vel_name not in present:
                raise DataError(
                    f"{present[seis_name]} has no velocity partner {vel_name} under {self.root}. "
                    "Download the missing file or remove the unpaired one."
                )
            pairs.append((present[seis_name], present[vel_name]))
        self.velocity_files = [v for _, v in pairs]
        self.files = [s for s, _ in pairs]
        self.counts = []
        for seis_path, vel_path in pairs:
            n_seis = _open_npy(seis_path, SEISMIC_SHAPE, "seismic").shape[0]
            n_vel = _open_npy(vel_path, VELOCITY_SHAPE, "velocity").shape[0]
            if n_seis != n_vel:
                raise DataError(
                    f"{seis_path} holds {n_seis} records but {vel_path} holds {n_vel} maps; "
                    "one of them is incomplete. Download it again."
                )
            self.counts.append(int(n_seis))
        self.attrs: dict[str, Any] = {
            "dataset": self.info.name,
            "split": split,
            "source": "openfwi",
            "openfwi_source": str(self.root),
            "time_stride": 1,
            "dt": DT,
            "nt": NT,
            "data_min": self.info.data_min,
            "data_max": self.info.data_max,
            "geometry": OPENFWI_GEOMETRY.as_dict(),
            "source_files": [p.name for p in self.files],
            "count": sum(self.counts),
        }
        self._init_index()

    def _open(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        seismic = _open_npy(self.files[k], SEISMIC_SHAPE, "seismic")
        velocity = _open_npy(self.velocity_files[k], VELOCITY_SHAPE, "velocity")
        if not self.mmap:
            seismic, velocity = np.array(seismic), np.array(velocity)
        return seismic, velocity

    def _read(self, k: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        seismic, velocity = self._handle(k)
        return np.asarray(seismic[j], dtype=np.float32), np.asarray(velocity[j], dtype=np.float32)

    def read_block(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``start..stop-1`` as ``(seismic [n, 5, 1000, 70], velocity [n, 1, 70, 70])``.

        Each file's part is validated (:func:`epic_zoo.data.store.check_arrays`)
        so an error names the source file and its sample.
        """
        seismic_parts, velocity_parts = [], []
        i = start
        while i < stop:
            k, j = self.locate(i)
            n = min(self.counts[k] - j, stop - i)
            seismic, velocity = self._handle(k)
            s = np.asarray(seismic[j : j + n], dtype=np.float32)
            v = np.asarray(velocity[j : j + n], dtype=np.float32)
            check_arrays(
                s,
                v,
                what=str(self.files[k]),
                velocity_what=str(self.velocity_files[k]),
                fix="Download the file again from https://openfwi-lanl.github.io.",
                first_index=j,
            )
            seismic_parts.append(s)
            velocity_parts.append(v)
            i += n
        return np.concatenate(seismic_parts), np.concatenate(velocity_parts)


def infer_dataset(path: str | os.PathLike) -> str | None:
    """Dataset name from a folder name like ``FlatVel_A`` or ``flatvel-a`` (or a parent's)."""
    from epic_zoo.data.catalog import DATASETS

    for part in reversed(Path(path).resolve().parts):
        key = part.lower().replace("_", "-")
        if key in DATASETS:
            return key
    return None


def import_openfwi(
    src: str | os.PathLike,
    out: str | os.PathLike,
    dataset: str,
    split: str | None = None,
    *,
    time_stride: int = 1,
    dtype: str = "float32",
    shard_size: int = 500,
    progress: bool = True,
) -> Path:
    """Convert an OpenFWI ``.npy`` folder to the HDF5 store ``{out}/{dataset}/{split}``.

    ``split=None`` converts each official split (train, test) that has files
    in ``src``. Records are kept every ``time_stride`` ms and stored as
    ``dtype``; every sample is validated (shape, finite, velocity range) and
    an error names the source file. Resumable like
    :func:`epic_zoo.data.generate.generate_split`. Returns ``{out}/{dataset}``.
    """
    info = get_dataset(dataset)
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r}; use one of {', '.join(DTYPES)}")
    if not 1 <= int(time_stride) <= NT:
        raise ValueError(f"time_stride={time_stride} must be between 1 and {NT}")
    if int(shard_size) < 1:
        raise ValueError(f"shard_size={shard_size} must be at least 1")
    time_stride, shard_size = int(time_stride), int(shard_size)
    if split is None:
        names = set(index_folder(Path(src))) if Path(src).is_dir() else set()
        splits = [s for s in OPENFWI_SPLITS if present_keys(info, names, s)] or ["train"]
    else:
        splits = [split]
    for folder in [OpenFWIFolder(src, info.name, s) for s in splits]:
        _import_split(folder, Path(out), time_stride, dtype, shard_size, progress)
    return Path(out) / info.name


def _import_split(
    folder: OpenFWIFolder, out: Path, time_stride: int, dtype: str, shard_size: int, progress: bool
) -> None:
    info, split = folder.info, folder.split
    total = len(folder)
    num_shards = math.ceil(total / shard_size)
    split_dir = out / info.name / str(split)
    split_dir.mkdir(parents=True, exist_ok=True)
    base = split_attrs(
        info,
        str(split),
        source="openfwi",
        seed=-1,
        generator_version="openfwi",
        backend="openfwi",
        time_stride=time_stride,
        dtype=dtype,
        total=total,
        shard_size=shard_size,
        source_files=json.dumps(folder.attrs["source_files"]),
    )
    base["openfwi_source"] = str(Path(folder.root).resolve())
    todo = check_resumable(split_dir, base, range(num_shards))
    if not todo:
        return
    count_todo = sum(min(shard_size, total - k * shard_size) for k in todo)
    print(
        f"epic_zoo: importing {count_todo} {info.name} {split} samples from {folder.root} "
        f"into {split_dir}",
        file=sys.stderr,
        flush=True,
    )
    with tqdm(
        total=count_todo, unit="sample", desc=f"{info.name}/{split}", disable=not progress
    ) as bar:
        for k in todo:
            first = k * shard_size
            count = min(shard_size, total - first)
            seismic, velocity = folder.read_block(first, first + count)
            attrs = dict(base, shard_index=k, first_index=first, count=count)
            write_shard(split_dir / shard_name(k), seismic[:, :, ::time_stride], velocity, attrs)
            bar.update(count)

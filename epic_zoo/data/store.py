"""HDF5 store of synthetic (or imported) OpenFWI-style samples.

Layout: ``{root}/{dataset}/{split}/shard-{k:05d}.h5``. Each shard holds

- ``seismic`` ``[n, source=5, time=nt, receiver=70]``, raw (un-normalised)
  amplitude in the profile's dtype (float16 or float32), decimated in time by
  ``time_stride`` (sample ``t`` is the wavefield at ``t * time_stride`` ms);
- ``velocity`` ``[n, 1, depth=70, offset=70]`` float32, m/s;

chunked one sample per chunk with a Fletcher-32 checksum, so a random read
touches one chunk and on-disk corruption is detected. Shard attributes record
how the data were made (dataset, split, seed, generator version, backend,
time_stride, dt in s, nt, dtype, geometry json, normalisation stats
``data_min``/``data_max``), where the shard sits in its split (``first_index``,
``count``, ``total``, ``shard_index``, ``num_shards``, ``shard_size``) and a
``complete`` flag.

Writing is atomic: a shard is written to ``shard-xxxxx.h5.tmp``, fsynced and
renamed, so a file with the final name is always whole. Sample ``i`` of a
split is a pure function of ``(dataset, seed, split, i)``
(:func:`epic_zoo.data.families.generate_velocity`), so generation
(:mod:`epic_zoo.data.generate`) resumes without redoing finished shards
(:func:`check_resumable`), and cluster jobs can generate disjoint shard
ranges of the same split (``shards=(start, end)``).

:class:`H5Split` reads a split (or one shard file) as one index, opening
files lazily in the process that reads them (safe with DataLoader workers).
"""

from __future__ import annotations

import json
import math
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from epic_zoo.data.catalog import DatasetInfo, get_dataset
from epic_zoo.data.geometry import (
    DT,
    NUM_RECEIVERS,
    NUM_SOURCES,
    OPENFWI_GEOMETRY,
    V_MAX,
    V_MIN,
    VELOCITY_SHAPE,
    VELOCITY_TOLERANCE,
)
from epic_zoo.data.profiles import Profile, get_profile
from epic_zoo.data.timeaxis import time_samples_for

FORMAT_VERSION: int = 1
"""Version of the shard layout written by this module."""
SPLITS: tuple[str, ...] = ("train", "val", "test")
DTYPES: tuple[str, ...] = ("float32", "float16")
ROOT_ENV: str = "EPIC_ZOO_DATA"
"""Environment variable overriding the default data cache root."""
SHARD_GLOB: str = "shard-*.h5"

# Attributes that must agree between shards of one split (and with a resumed request).
_SPLIT_KEYS: tuple[str, ...] = (
    "dataset",
    "split",
    "source",
    "seed",
    "generator_version",
    "generator",
    "backend",
    "time_stride",
    "nt",
    "dtype",
    "total",
    "shard_size",
    "num_shards",
    "source_files",
)


class DataError(ValueError):
    """Missing, corrupt or invalid data; the message names the input and the fix."""


def default_root() -> Path:
    """The data cache root: ``$EPIC_ZOO_DATA`` if set, else ``~/.cache/epic_zoo/data``."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "epic_zoo" / "data"


def resolve_root(root: str | os.PathLike | None) -> Path:
    """``root`` if given, else :func:`default_root`."""
    return Path(root).expanduser() if root is not None else default_root()


def shard_name(index: int) -> str:
    """File name of shard ``index``: ``shard-00003.h5``."""
    return f"shard-{index:05d}.h5"


def split_count(info: DatasetInfo, profile: Profile, split: str) -> int:
    """Samples of ``split`` in ``profile``.

    ``None`` in a profile (``full``) means the official OpenFWI count for
    train/test; OpenFWI has no validation split, so ``val`` then gets a tenth
    of the official train count.
    """
    num = profile.num(split)
    if num is not None:
        return int(num)
    if split == "train":
        return info.num_train
    if split == "test":
        return info.num_test
    return info.num_train // 10


def profile_root(root: str | os.PathLike | None, profile: str | Profile, seed: int) -> Path:
    """Store root used by :func:`epic_zoo.data.generate.ensure_data`: ``{root}/{profile}-seed{seed}``.

    Profiles differ in dtype, stride and shard size, so each gets its own
    folder under the cache root; the seed is part of the name because it
    changes every sample.
    """
    return resolve_root(root) / f"{get_profile(profile).name}-seed{int(seed)}"


# --------------------------------------------------------------------------- validation


def check_arrays(
    seismic: np.ndarray,
    velocity: np.ndarray,
    *,
    what: str,
    fix: str,
    nt: int | None = None,
    first_index: int = 0,
    velocity_what: str | None = None,
) -> None:
    """Validate one block of samples; raise :class:`DataError` naming ``what`` and ``fix``.

    Args:
        seismic: ``[n, 5, nt, 70]`` raw records.
        velocity: ``[n, 1, 70, 70]`` m/s.
        what: the file or block being checked (goes into the message).
        fix: what the user should do about it (goes into the message).
        nt: expected time samples; any if ``None``.
        first_index: index of the block's first sample, for the message.
        velocity_what: the file the velocity maps come from, where it is not
            ``what`` (OpenFWI keeps them apart): named in velocity errors.
    """
    vwhat = velocity_what or what
    expected = f"[n, {NUM_SOURCES}, {'nt' if nt is None else nt}, {NUM_RECEIVERS}]"
    if (
        seismic.ndim != 4
        or seismic.shape[1] != NUM_SOURCES
        or seismic.shape[3] != NUM_RECEIVERS
        or (nt is not None and seismic.shape[2] != nt)
    ):
        raise DataError(
            f"{what}: seismic has shape {tuple(seismic.shape)}, expected {expected}. {fix}"
        )
    if velocity.ndim != 4 or tuple(velocity.shape[1:]) != VELOCITY_SHAPE:
        raise DataError(
            f"{vwhat}: velocity has shape {tuple(velocity.shape)}, expected [n, 1, 70, 70]. {fix}"
        )
    if seismic.shape[0] != velocity.shape[0]:
        raise DataError(
            f"{what}: {seismic.shape[0]} seismic records but {velocity.shape[0]} velocity maps. {fix}"
        )
    for name, arr, source in (("seismic", seismic, what), ("velocity", velocity, vwhat)):
        bad = ~np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0]) + first_index
            raise DataError(f"{source}: {name} of sample {i} contains NaN or inf. {fix}")
    lo = velocity.reshape(velocity.shape[0], -1).min(axis=1)
    hi = velocity.reshape(velocity.shape[0], -1).max(axis=1)
    bad = (lo < V_MIN - VELOCITY_TOLERANCE) | (hi > V_MAX + VELOCITY_TOLERANCE)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{vwhat}: velocity of sample {j + first_index} spans {lo[j]:.1f}..{hi[j]:.1f} m/s, "
            f"outside the OpenFWI range {V_MIN:.0f}..{V_MAX:.0f} m/s (is it in m/s?). {fix}"
        )


def check_writable(folder: Path, what: str, fix: str = "Pass a writable --out.") -> None:
    """Create ``folder`` and write a probe file there now, before any slow work.

    Raises:
        DataError: naming ``what``, the folder and the reason (a path below a
            file, no permission, read-only file system).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise DataError(f"cannot write to {what} {folder}: {err.strerror or err}. {fix}") from None


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_shard(
    path: str | os.PathLike, seismic: np.ndarray, velocity: np.ndarray, attrs: dict[str, Any]
) -> Path:
    """Write one shard atomically (``.tmp`` + fsync + rename); returns the final path.

    ``seismic`` ``[n, 5, nt, 70]`` is stored in ``attrs["dtype"]`` and
    ``velocity`` ``[n, 1, 70, 70]`` (m/s) as float32; both are validated
    first (:func:`check_arrays`). On any failure the ``.tmp`` file is removed
    and no file with the final name appears.
    """
    path = Path(path)
    dtype = np.dtype(attrs.get("dtype", "float32"))
    fix = "The samples were not written; check the generator or source data."
    velocity = np.asarray(velocity, dtype=np.float32)
    seismic = np.asarray(seismic)
    check_arrays(
        seismic, velocity, what=str(path), fix=fix, first_index=int(attrs.get("first_index", 0))
    )
    with np.errstate(over="ignore"):  # overflow becomes inf, refused just below
        stored = seismic.astype(dtype)
    if not np.isfinite(stored).all():
        raise DataError(
            f"{path}: seismic amplitudes overflow {dtype.name}; store them with --dtype float32."
        )
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with h5py.File(tmp, "w") as f:
            for name, data in (("seismic", stored), ("velocity", velocity)):
                f.create_dataset(name, data=data, chunks=(1, *data.shape[1:]), fletcher32=True)
            for key, value in attrs.items():
                f.attrs[key] = value
            f.attrs["seismic_min"] = float(stored.min())
            f.attrs["seismic_max"] = float(stored.max())
            f.attrs["complete"] = True
        _fsync_path(tmp)
        os.replace(tmp, path)
        _fsync_path(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


def regenerate_command(split_dir: Path, attrs: dict[str, Any] | None = None) -> str:
    """The CLI command that (re)makes ``split_dir``, from a shard's ``attrs`` when known.

    ``split_dir`` may also be a shard path (``.../shard-00000.h5``, its folder
    is the split); a path that is not laid out as ``ROOT/DATASET/SPLIT`` gets
    the command with placeholders and a word on the layout.
    """
    split_dir = Path(split_dir)
    if split_dir.suffix == ".h5":
        split_dir = split_dir.parent
    out = shlex.quote(str(split_dir.parent.parent))
    dataset, split = split_dir.parent.name, split_dir.name
    if attrs is None:
        try:
            dataset = get_dataset(dataset).name
        except KeyError:
            dataset = ""
        if split not in SPLITS or not dataset:
            return (
                "python -m epic_zoo.data generate --dataset <DATASET> --split <train|val|test> "
                "--num <N> --out <ROOT>  (the data go to ROOT/DATASET/SPLIT/shard-*.h5)"
            )
        return (
            f"python -m epic_zoo.data generate --dataset {dataset} --split {split} "
            f"--num <N> --out {out}  (with the options it was first made with)"
        )
    common = (
        f"--out {out} --split {attrs['split']} --time-stride {attrs['time_stride']} "
        f"--dtype {attrs['dtype']} --shard-size {attrs['shard_size']}"
    )
    if attrs.get("source") == "openfwi":
        src = shlex.quote(str(attrs.get("openfwi_source", "<OPENFWI_FOLDER>")))
        return f"python -m epic_zoo.data import-openfwi {src} --dataset {attrs['dataset']} {common}"
    cmd = (
        f"python -m epic_zoo.data generate --dataset {attrs['dataset']} --num {attrs['total']} "
        f"--seed {attrs['seed']} {common}"
    )
    if attrs.get("backend", "deepwave") != "deepwave":
        cmd += f" --backend {attrs['backend']}"
    if attrs.get("generator", "default") != "default":
        cmd += f" --generator {attrs['generator']}"
    return cmd


_INT_ATTRS: tuple[str, ...] = (
    "count",
    "total",
    "shard_size",
    "num_shards",
    "shard_index",
    "first_index",
    "time_stride",
    "nt",
)


def _allocated_fraction(dset: h5py.Dataset) -> tuple[int, int]:
    """``(units stored, units declared)`` of a dataset: chunks if chunked, else bytes.

    HDF5 allocates chunks (and contiguous storage) lazily, so a header can
    declare any shape at no cost; what is actually stored is what can be read.
    """
    if dset.chunks is not None:
        declared = math.prod(-(-n // c) for n, c in zip(dset.shape, dset.chunks, strict=True))
        return int(dset.id.get_num_chunks()), int(declared)
    return int(dset.id.get_storage_size()), int(math.prod(dset.shape) * dset.dtype.itemsize)


def _check_shard_header(
    path: Path, attrs: dict[str, Any], f: h5py.File, fix: str
) -> dict[str, tuple[int, ...]]:
    """Check a shard's declared sizes and dtypes against what it stores, reading no samples.

    Raises :class:`DataError` (one line naming ``path`` and ``fix``) for a
    missing or non-integer size attribute, a ``count`` that disagrees with the
    datasets' lengths or with ``shard_size``/``total``, a dataset whose
    declared length is not backed by stored data, or a non-float dtype.
    """
    bad = f"Delete it and rerun: {fix}"
    for key in _INT_ATTRS:
        value = attrs.get(key)
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise DataError(
                f"{path}: attribute {key}={value!r} is missing or not an integer. {bad}"
            )
    count, total, size = int(attrs["count"]), int(attrs["total"]), int(attrs["shard_size"])
    index, first = int(attrs["shard_index"]), int(attrs["first_index"])
    if not (
        0 < count <= size
        and first == index * size
        and first + count <= total
        and int(attrs["num_shards"]) == -(-total // size)
        and attrs["nt"] > 0
        and attrs["time_stride"] > 0
    ):
        raise DataError(
            f"{path}: inconsistent header (count {count}, shard_size {size}, total {total}, "
            f"shard_index {index}, first_index {first}, num_shards {attrs['num_shards']}). {bad}"
        )
    shapes: dict[str, tuple[int, ...]] = {}
    for name, dtypes in (("seismic", DTYPES), ("velocity", ("float32",))):
        dset = f.get(name)
        if not isinstance(dset, h5py.Dataset):
            continue
        if dset.dtype.name not in dtypes:
            raise DataError(
                f"{path}: {name} is stored as {dset.dtype}, expected {' or '.join(dtypes)}. {bad}"
            )
        if name == "seismic" and dset.dtype.name != attrs.get("dtype"):
            raise DataError(
                f"{path}: seismic is stored as {dset.dtype} but the header says "
                f"{attrs.get('dtype')!r}. {bad}"
            )
        tail = (
            (NUM_SOURCES, int(attrs["nt"]), NUM_RECEIVERS) if name == "seismic" else VELOCITY_SHAPE
        )
        if dset.shape != (count, *tail):
            raise DataError(
                f"{path}: {name} has shape {dset.shape} but the header says "
                f"{(count, *tail)} ({count} samples). {bad}"
            )
        stored, declared = _allocated_fraction(dset)
        if stored < declared:
            raise DataError(
                f"{path}: {name} declares {dset.shape[0]} samples but stores data for only part "
                f"of them ({stored} of {declared} {'chunks' if dset.chunks else 'bytes'}). {bad}"
            )
        shapes[name] = tuple(dset.shape)
    return shapes


def read_shard_attrs(path: Path, fix: str) -> dict[str, Any]:
    """Attributes of one shard file; :class:`DataError` if it is unreadable or incomplete.

    The declared sizes are checked against the stored datasets before anything
    is read or allocated (:func:`_check_shard_header`).
    """
    if not path.is_file():
        raise DataError(f"{path} is not a regular file. Remove it and rerun: {fix}")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _plain(v) for k, v in f.attrs.items()}
            if not attrs.get("complete") or not all(
                isinstance(f.get(k), h5py.Dataset) for k in ("seismic", "velocity")
            ):
                raise DataError(
                    f"{path} is incomplete (not a finished epic_zoo shard). "
                    f"Delete it and rerun: {fix}"
                )
            _check_shard_header(path, attrs, f, fix)
    except (OSError, RuntimeError, KeyError) as err:
        raise DataError(
            f"cannot read {path}: truncated or corrupt HDF5 file ({err}). Delete it and rerun: {fix}"
        ) from err
    try:
        attrs["geometry"] = json.loads(attrs["geometry"])
    except (KeyError, TypeError, ValueError):
        raise DataError(
            f"{path}: its geometry attribute is missing or not JSON. Delete it and rerun: {fix}"
        ) from None
    return attrs


def _first_readable_attrs(files: Sequence[Path]) -> dict[str, Any] | None:
    for path in files:
        try:
            return read_shard_attrs(path, fix="")
        except DataError:
            continue
    return None


# --------------------------------------------------------------------------- reading


class ShardedArrays:
    """Samples spread over several files, seen as one index.

    Subclasses set ``self.files`` and ``self.counts`` and implement
    :meth:`_open` (returns an object for one file) and :meth:`_read`.
    Opened objects are cached per process: a DataLoader worker (forked or
    spawned) never reuses a handle opened by its parent.
    """

    files: list[Path]
    counts: list[int]
    attrs: dict[str, Any]

    def _init_index(self) -> None:
        self._ends = np.cumsum(self.counts)
        self._handles: dict[int, Any] = {}
        self._pid = os.getpid()

    @property
    def dataset(self) -> str:
        """Dataset name, e.g. ``"flatvel-a"``."""
        return str(self.attrs["dataset"])

    @property
    def time_stride(self) -> int:
        """Stored time decimation: one record sample every ``time_stride`` ms."""
        return int(self.attrs["time_stride"])

    @property
    def nt(self) -> int:
        """Stored time samples per record."""
        return int(self.attrs["nt"])

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def locate(self, index: int) -> tuple[int, int]:
        """``(file position, sample within file)`` of global sample ``index``."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"sample {index} out of range for {n} samples in {self.describe()}")
        index %= n
        k = int(np.searchsorted(self._ends, index, side="right"))
        start = int(self._ends[k - 1]) if k else 0
        return k, index - start

    def source_of(self, index: int) -> str:
        """Human-readable origin of a sample, e.g. ``.../shard-00001.h5 sample 3``."""
        k, j = self.locate(index)
        return f"{self.files[k]} sample {j}"

    def describe(self) -> str:
        return str(self.files[0].parent if len(self.files) > 1 else self.files[0])

    def _handle(self, k: int) -> Any:
        if self._pid != os.getpid():  # inherited from a parent process: never reuse
            self._handles = {}
            self._pid = os.getpid()
        if k not in self._handles:
            self._handles[k] = self._open(k)
        return self._handles[k]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(seismic [5, nt, 70] float32 raw, velocity [1, 70, 70] float32 m/s)``."""
        k, j = self.locate(int(index))
        return self._read(k, j)

    def _open(self, k: int) -> Any:
        raise NotImplementedError

    def _read(self, k: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Close open files (they reopen on the next read)."""
        self._handles = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class H5Split(ShardedArrays):
    """Read an epic_zoo split folder (``shard-*.h5``) or one shard file.

    ``len(split)`` samples; ``split[i]`` is ``(seismic [5, nt, 70] float32 raw
    amplitude, velocity [1, 70, 70] float32 m/s)``; ``split.attrs`` holds the
    shards' common attributes (module docstring), ``count`` = ``len(split)``
    and ``seismic_min``/``seismic_max`` over all shards (for a single shard
    file: that file's attributes).

    Construction checks every shard (present, readable, complete, consistent)
    and raises :class:`DataError` naming the file and the command that
    regenerates it. Files are opened on first read, in the reading process.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.is_file():
            self.files = [self.path]
            split_dir = self.path.parent
        elif self.path.is_dir():
            self.files = sorted(self.path.glob(SHARD_GLOB))
            split_dir = self.path
        else:
            raise DataError(
                f"no epic_zoo data at {self.path}. Make it with: {regenerate_command(self.path)}"
            )
        if not self.files:
            raise DataError(
                f"no shard-*.h5 files in {self.path}. Make them with: {regenerate_command(self.path)}"
            )
        fix = regenerate_command(split_dir, _first_readable_attrs(self.files))
        shard_attrs = [read_shard_attrs(p, fix) for p in self.files]
        first = shard_attrs[0]
        for p, a in zip(self.files[1:], shard_attrs[1:], strict=True):
            for key in _SPLIT_KEYS:
                if a.get(key) != first.get(key):
                    raise DataError(
                        f"{p} does not belong with {self.files[0]}: {key}={a.get(key)!r} vs "
                        f"{first.get(key)!r}. Keep one split per folder; delete the stray file."
                    )
        if self.path.is_dir():
            present = {int(a["shard_index"]) for a in shard_attrs}
            missing = sorted(set(range(int(first["num_shards"]))) - present)
            if missing:
                names = ", ".join(shard_name(k) for k in missing[:5])
                more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
                raise DataError(
                    f"{self.path} is incomplete: missing {names}{more} of {first['num_shards']} shards. "
                    f"Finish it with: {fix}"
                )
            stored = sum(int(a["count"]) for a in shard_attrs)
            if stored != int(first["total"]):
                raise DataError(
                    f"{self.path}: its shards hold {stored} samples but declare a split of "
                    f"{first['total']}. Delete the folder and remake it with: {fix}"
                )
        OPENFWI_GEOMETRY.check_compatible(first["geometry"], what=str(self.path))
        self.counts = [int(a["count"]) for a in shard_attrs]
        self.attrs = dict(first, count=sum(self.counts))
        if self.path.is_dir():  # describe the split, not its first shard
            for key in ("shard_index", "first_index"):
                self.attrs.pop(key)
            self.attrs["seismic_min"] = min(float(a["seismic_min"]) for a in shard_attrs)
            self.attrs["seismic_max"] = max(float(a["seismic_max"]) for a in shard_attrs)
        self._fix = fix
        self._init_index()

    def _open(self, k: int) -> h5py.File:
        return h5py.File(self.files[k], "r")

    def _read(self, k: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            f = self._handle(k)
            seismic = np.asarray(f["seismic"][j], dtype=np.float32)
            velocity = np.asarray(f["velocity"][j], dtype=np.float32)
        except OSError as err:
            raise DataError(
                f"cannot read sample {j} of {self.files[k]}: corrupt HDF5 data ({err}). "
                f"Delete the file and rerun: {self._fix}"
            ) from err
        return seismic, velocity

    def close(self) -> None:
        if self._pid == os.getpid():
            for f in self._handles.values():
                f.close()
        super().close()


# --------------------------------------------------------------------------- resuming a split


def check_resumable(split_dir: Path, attrs: dict[str, Any], shard_ids: Sequence[int]) -> list[int]:
    """Remove stale ``.tmp`` files of ``shard_ids`` and return the ids still to write.

    Finished shards are checked against the requested ``attrs``; a mismatch
    (another seed, stride, generator version...) raises :class:`DataError`
    rather than mixing two datasets in one folder.
    """
    todo = []
    fix = regenerate_command(split_dir, attrs)
    for k in shard_ids:
        path = split_dir / shard_name(k)
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)
        if not path.exists():
            todo.append(k)
            continue
        old = read_shard_attrs(path, fix)
        for key in _SPLIT_KEYS:
            if old.get(key) != attrs.get(key):
                raise DataError(
                    f"{path} was made with {key}={old.get(key)!r}, but {attrs.get(key)!r} was "
                    f"requested. Delete {split_dir} to remake it, or choose another output folder."
                )
    return todo


def split_attrs(
    info: DatasetInfo,
    split: str,
    *,
    source: str,
    seed: int,
    generator_version: str,
    backend: str,
    time_stride: int,
    dtype: str,
    total: int,
    shard_size: int,
    source_files: str = "",
    generator: str = "default",
) -> dict:
    """Attributes shared by every shard of one split (each shard adds its own index and count).

    They record the geometry, normalisation stats, time sampling, storage
    precision, provenance and the split's size; :func:`check_resumable`
    compares them before a resumed run adds shards to the folder. The maps'
    laws (``generator``, :data:`epic_zoo.data.families.GENERATORS`) are
    stored only when they are not the default, so shards made before the
    setting existed still match.
    """
    extra = {} if generator == "default" else {"generator": generator}
    return {
        **extra,
        "format_version": FORMAT_VERSION,
        "dataset": info.name,
        "split": split,
        "source": source,
        "seed": seed,
        "generator_version": generator_version,
        "backend": backend,
        "time_stride": time_stride,
        "dt": DT * time_stride,
        "nt": time_samples_for(time_stride),
        "dtype": dtype,
        "geometry": json.dumps(OPENFWI_GEOMETRY.as_dict()),
        "data_min": info.data_min,
        "data_max": info.data_max,
        "total": total,
        "shard_size": shard_size,
        "num_shards": math.ceil(total / shard_size),
        "source_files": source_files,
    }

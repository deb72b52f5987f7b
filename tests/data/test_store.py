"""HDF5 store: atomic shards, validation, lazy reading, resumable generation."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest

from epic_zoo.data import store
from epic_zoo.data.generate import ensure_data, generate_split
from epic_zoo.data.geometry import OPENFWI_GEOMETRY
from epic_zoo.data.store import (
    DataError,
    H5Split,
    check_arrays,
    shard_name,
    write_shard,
)

NT_TINY = 250


def _attrs(k: int, count: int, total: int, shard_size: int, **extra) -> dict:
    attrs = {
        "format_version": store.FORMAT_VERSION,
        "dataset": "flatvel-a",
        "split": "train",
        "source": "synthetic",
        "seed": 0,
        "generator_version": "test",
        "backend": "deepwave",
        "time_stride": 4,
        "dt": 0.004,
        "nt": NT_TINY,
        "dtype": "float32",
        "geometry": json.dumps(OPENFWI_GEOMETRY.as_dict()),
        "data_min": -26.95,
        "data_max": 52.77,
        "total": total,
        "shard_size": shard_size,
        "num_shards": -(-total // shard_size),
        "source_files": "",
        "shard_index": k,
        "first_index": k * shard_size,
        "count": count,
    }
    attrs.update(extra)
    return attrs


@pytest.fixture
def written_split(tmp_path: Path, fake_samples) -> tuple[Path, np.ndarray, np.ndarray]:
    """A 5-sample split in shards of 2 (2 + 2 + 1), written directly (no forward model)."""
    seismic, velocity = fake_samples(5, nt=NT_TINY)
    split_dir = tmp_path / "flatvel-a" / "train"
    for k, first in enumerate(range(0, 5, 2)):
        sl = slice(first, first + 2)
        write_shard(
            split_dir / shard_name(k),
            seismic[sl],
            velocity[sl],
            _attrs(k, len(seismic[sl]), 5, 2),
        )
    return split_dir, seismic, velocity


def test_roundtrip_multi_shard_index(written_split):
    split_dir, seismic, velocity = written_split
    split = H5Split(split_dir)
    assert len(split) == 5 and len(split.files) == 3
    for i in range(5):
        s, v = split[i]
        assert s.dtype == np.float32 and s.shape == (5, NT_TINY, 70)
        np.testing.assert_array_equal(s, seismic[i])
        np.testing.assert_array_equal(v, velocity[i])
    np.testing.assert_array_equal(split[-1][1], velocity[4])
    assert split.source_of(4).endswith("shard-00002.h5 sample 0")
    assert split.attrs["count"] == 5 and "first_index" not in split.attrs
    assert split.attrs["seismic_max"] == pytest.approx(float(seismic.max()))
    with pytest.raises(IndexError, match="out of range"):
        split[5]
    one = H5Split(split_dir / shard_name(1))  # a single shard file reads on its own
    assert len(one) == 2 and one.attrs["first_index"] == 2


def test_layout_one_sample_per_chunk_with_checksum(written_split):
    split_dir, _, _ = written_split
    with h5py.File(split_dir / shard_name(0), "r") as f:
        assert f["seismic"].chunks == (1, 5, NT_TINY, 70)
        assert f["velocity"].chunks == (1, 1, 70, 70)
        assert f["seismic"].fletcher32
        assert f.attrs["complete"]
        assert json.loads(f.attrs["geometry"])["source_columns"] == [0, 17, 34, 52, 69]


def test_float16_storage(tmp_path, fake_samples):
    seismic, velocity = fake_samples(2, nt=NT_TINY)
    path = write_shard(
        tmp_path / shard_name(0), seismic, velocity, _attrs(0, 2, 2, 2, dtype="float16")
    )
    with h5py.File(path, "r") as f:
        assert f["seismic"].dtype == np.float16 and f["velocity"].dtype == np.float32
    s, _ = H5Split(path)[0]
    assert s.dtype == np.float32
    np.testing.assert_allclose(s, seismic[0], rtol=1e-3, atol=1e-3)


def test_float16_overflow_is_refused(tmp_path, fake_samples):
    seismic, velocity = fake_samples(1, nt=NT_TINY)
    seismic[0, 0, 0, 0] = 1e6
    with pytest.raises(DataError, match="overflow float16.*--dtype float32"):
        write_shard(
            tmp_path / shard_name(0), seismic, velocity, _attrs(0, 1, 1, 1, dtype="float16")
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s, v: (s[:, :4], v), r"seismic has shape \(2, 4, 250, 70\)"),
        (lambda s, v: (s, v[:, :, :60]), r"velocity has shape \(2, 1, 60, 70\)"),
        (lambda s, v: (s[:1], v), "1 seismic records but 2 velocity maps"),
        (lambda s, v: (s, v / 1000.0), r"velocity of sample 0 spans .* outside .*1500..4500"),
    ],
)
def test_check_arrays_names_the_problem(fake_samples, mutate, message):
    seismic, velocity = mutate(*fake_samples(2, nt=NT_TINY))
    with pytest.raises(DataError, match=message):
        check_arrays(seismic, velocity, what="block", fix="fix it")


@pytest.mark.parametrize(
    "name, value", [("seismic", np.nan), ("seismic", np.inf), ("velocity", np.nan)]
)
def test_check_arrays_non_finite_names_sample(fake_samples, name, value):
    seismic, velocity = fake_samples(3, nt=NT_TINY)
    (seismic if name == "seismic" else velocity)[2, 0, 5, 5] = value
    with pytest.raises(DataError, match=f"block: {name} of sample 12 contains NaN or inf. fix it"):
        check_arrays(seismic, velocity, what="block", fix="fix it", first_index=10)


def test_failed_write_leaves_no_file(tmp_path, fake_samples):
    seismic, velocity = fake_samples(2, nt=NT_TINY)
    attrs = _attrs(0, 2, 2, 2, unstorable=object())
    with pytest.raises(TypeError):
        write_shard(tmp_path / shard_name(0), seismic, velocity, attrs)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_says_how_to_generate(tmp_path):
    with pytest.raises(
        DataError,
        match=r"no epic_zoo data at .*python -m epic_zoo.data generate --dataset flatvel-a --split train",
    ):
        H5Split(tmp_path / "flatvel-a" / "train")


def test_missing_shard_names_it_and_the_command(written_split):
    split_dir, _, _ = written_split
    (split_dir / shard_name(1)).unlink()
    with pytest.raises(DataError) as err:
        H5Split(split_dir)
    msg = str(err.value)
    assert "missing shard-00001.h5 of 3 shards" in msg
    assert "--dataset flatvel-a --num 5 --seed 0 --out" in msg and "--shard-size 2" in msg


def test_truncated_file_is_named_with_fix(written_split):
    split_dir, _, _ = written_split
    path = split_dir / shard_name(1)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    with pytest.raises(
        DataError,
        match=r"cannot read .*shard-00001.h5: truncated or corrupt.*Delete it and rerun: python -m epic_zoo.data generate",
    ):
        H5Split(split_dir)


def test_garbage_file_is_named(written_split):
    split_dir, _, _ = written_split
    (split_dir / shard_name(2)).write_bytes(b"not an hdf5 file" * 100)
    with pytest.raises(DataError, match="shard-00002.h5: truncated or corrupt"):
        H5Split(split_dir)


def test_corrupt_chunk_detected_on_read(written_split):
    split_dir, _, _ = written_split
    path = split_dir / shard_name(0)
    with h5py.File(path, "r") as f:
        offset = f["seismic"].id.get_chunk_info(1).byte_offset
    with open(path, "r+b") as f:  # flip bytes inside sample 1's chunk
        f.seek(offset + 1000)
        f.write(b"\xff" * 64)
    split = H5Split(split_dir)
    split[0]  # an intact chunk still reads
    with pytest.raises(DataError, match=r"sample 1 of .*shard-00000.h5: corrupt.*Delete the file"):
        split[1]


def test_incomplete_flag_and_stray_file(written_split, fake_samples):
    split_dir, seismic, velocity = written_split
    with h5py.File(split_dir / shard_name(2), "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(DataError, match="shard-00002.h5 is incomplete"):
        H5Split(split_dir)
    write_shard(split_dir / shard_name(2), seismic[4:], velocity[4:], _attrs(2, 1, 5, 2, seed=7))
    with pytest.raises(DataError, match="does not belong with .* seed=7 vs 0"):
        H5Split(split_dir)


def test_reader_opens_lazily_and_pickles_without_handles(written_split):
    split_dir, seismic, _ = written_split
    split = H5Split(split_dir)
    assert split._handles == {}
    split[3]
    assert len(split._handles) == 1
    clone = pickle.loads(pickle.dumps(split))
    assert clone._handles == {}
    np.testing.assert_array_equal(clone[3][0], seismic[3])
    split._pid = -1  # as if inherited by a forked worker: must not reuse the parent's handle
    split[0]
    assert set(split._handles) == {0}
    split.close()


# --------------------------------------------------------------------------- generation


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """flatvel-a train, 4 samples in shards of 2, time stride 4, made by the real generator."""
    root = tmp_path_factory.mktemp("gen")
    generate_split("flatvel-a", "train", 4, root, time_stride=4, shard_size=2, progress=False)
    return root


def test_generate_end_to_end(generated):
    from epic_zoo.data.families import GENERATOR_VERSION, generate_velocity

    split = H5Split(generated / "flatvel-a" / "train")
    assert len(split) == 4 and [p.name for p in split.files] == [shard_name(0), shard_name(1)]
    a = split.attrs
    assert (a["time_stride"], a["nt"], a["dt"], a["dtype"]) == (
        4,
        250,
        pytest.approx(0.004),
        "float32",
    )
    assert (a["seed"], a["generator_version"], a["source"]) == (0, GENERATOR_VERSION, "synthetic")
    assert (a["data_min"], a["data_max"]) == (-26.95, 52.77)
    seismic, velocity = split[3]
    np.testing.assert_array_equal(
        velocity, generate_velocity("flatvel-a", [3], seed=0, split="train")[0]
    )
    assert seismic.shape == (5, 250, 70) and np.abs(seismic).max() > 1.0


def test_generate_resumes_and_is_deterministic(generated, tmp_path, monkeypatch):
    from epic_zoo.data import forward

    src = generated / "flatvel-a" / "train"
    root = tmp_path / "copy"
    shutil.copytree(src, root / "flatvel-a" / "train")
    split_dir = root / "flatvel-a" / "train"
    (split_dir / shard_name(1)).unlink()
    (split_dir / (shard_name(1) + ".tmp")).write_bytes(b"half-written leftover")
    kept = (split_dir / shard_name(0)).stat().st_mtime_ns
    calls = []
    real = forward.simulate

    def counting(velocity, *args, **kwargs):
        calls.append(len(velocity))
        return real(velocity, *args, **kwargs)

    monkeypatch.setattr(forward, "simulate", counting)
    generate_split("flatvel-a", "train", 4, root, time_stride=4, shard_size=2, progress=False)
    assert calls == [2]  # only the missing shard was simulated
    assert (split_dir / shard_name(0)).stat().st_mtime_ns == kept
    assert sorted(p.name for p in split_dir.iterdir()) == [shard_name(0), shard_name(1)]
    a, b = H5Split(src), H5Split(split_dir)
    for i in range(4):
        np.testing.assert_array_equal(a[i][0], b[i][0])


def test_generate_other_shard_size_same_samples_and_shard_range(generated, tmp_path):
    """Sample i depends only on (dataset, seed, split, i): cluster jobs can share a split."""
    generate_split(
        "flatvel-a",
        "train",
        4,
        tmp_path,
        time_stride=4,
        shard_size=3,
        shards=(1, 2),
        progress=False,
    )
    split_dir = tmp_path / "flatvel-a" / "train"
    assert [p.name for p in split_dir.glob("*.h5")] == [shard_name(1)]
    with pytest.raises(DataError, match=r"missing shard-00000.h5 of 2 shards.*--shard-size 3"):
        H5Split(split_dir)
    one = H5Split(split_dir / shard_name(1))
    np.testing.assert_array_equal(one[0][0], H5Split(generated / "flatvel-a" / "train")[3][0])


def test_generate_refuses_to_mix_parameters(generated):
    with pytest.raises(
        DataError, match=r"made with seed=0, but 1 was requested. Delete .* to remake"
    ):
        generate_split(
            "flatvel-a", "train", 4, generated, seed=1, time_stride=4, shard_size=2, progress=False
        )


def test_wide_laws_are_stored_checked_and_regenerated(generated, tmp_path, capsys):
    """generator='wide': other maps of the family, said in the shards, never mixed with default ones."""
    from epic_zoo.data.__main__ import main as data_cli
    from epic_zoo.data.families import generate_velocity
    from epic_zoo.data.profiles import get_profile

    assert "generator" not in H5Split(generated / "flatvel-a" / "train").attrs  # default: as before
    with pytest.raises(DataError, match=r"made with generator=None, but 'wide' was requested"):
        generate_split(
            "flatvel-a", "train", 4, generated, time_stride=4, shard_size=2, generator="wide",
            progress=False,
        )  # fmt: skip
    data_cli(
        ["generate", "--dataset", "flatvel-a", "--num", "2", "--out", str(tmp_path),
         "--time-stride", "4", "--shard-size", "2", "--generator", "wide", "--no-progress"]
    )  # fmt: skip
    split = H5Split(tmp_path / "flatvel-a" / "train")
    assert split.attrs["generator"] == "wide"
    np.testing.assert_array_equal(
        split[1][1], generate_velocity("flatvel-a", [1], generator="wide")[0]
    )
    assert "--generator wide" in store.regenerate_command(split.files[0], split.attrs)
    data_cli(["info", str(tmp_path / "flatvel-a" / "train")])
    assert "(wide laws)" in capsys.readouterr().out
    # the wide profile says so in records; the default profiles' records stay as they were
    assert get_profile("lite2k-wide").as_dict()["generator"] == "wide"
    assert "generator" not in get_profile("lite2k").as_dict()
    with pytest.raises(ValueError, match="generator='odd'"):
        generate_split("flatvel-a", "train", 1, tmp_path / "x", generator="odd", progress=False)


def test_failure_keeps_finished_shards(tmp_path, monkeypatch):
    from epic_zoo.data import forward

    real = forward.simulate
    calls = []

    def flaky(velocity, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return real(velocity, *args, **kwargs)

    monkeypatch.setattr(forward, "simulate", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate_split(
            "flatvel-a", "test", 2, tmp_path, time_stride=4, shard_size=1, progress=False
        )
    split_dir = tmp_path / "flatvel-a" / "test"
    assert sorted(p.name for p in split_dir.iterdir()) == [shard_name(0)]
    monkeypatch.setattr(forward, "simulate", real)
    generate_split("flatvel-a", "test", 2, tmp_path, time_stride=4, shard_size=1, progress=False)
    assert len(H5Split(split_dir)) == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split": "dev"}, "unknown split 'dev'"),
        ({"num": 0}, "at least one sample"),
        ({"dtype": "int8"}, "dtype='int8'"),
        ({"time_stride": 0}, "time_stride=0"),
        ({"shards": (0, 9)}, "shard range 0:9 is not inside 0:2"),
    ],
)
def test_generate_bad_arguments(tmp_path, kwargs, message):
    args = {"dataset": "flatvel-a", "split": "train", "num": 4, "root": tmp_path, "shard_size": 2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        generate_split(progress=False, **args)


def test_generate_unknown_dataset(tmp_path):
    with pytest.raises(KeyError, match="unknown dataset 'flatvel-z'; choose one of: flatvel-a"):
        generate_split("flatvel-z", "train", 1, tmp_path)


@pytest.mark.slow
def test_generate_with_workers_matches_serial(generated, tmp_path):
    generate_split(
        "flatvel-a", "train", 4, tmp_path, time_stride=4, shard_size=2, workers=2, progress=False
    )
    a, b = H5Split(generated / "flatvel-a" / "train"), H5Split(tmp_path / "flatvel-a" / "train")
    for i in range(4):
        np.testing.assert_array_equal(a[i][0], b[i][0])


def test_ensure_data_layout_and_reuse(tiny_data_root, tiny_dataset_dir, capsys):
    assert tiny_dataset_dir == tiny_data_root / "tiny-seed0" / "flatvel-a"
    sizes = {s: len(H5Split(tiny_dataset_dir / s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 16, "val": 8, "test": 8}
    assert H5Split(tiny_dataset_dir / "train").attrs["nt"] == 250
    stamps = {p: p.stat().st_mtime_ns for p in tiny_dataset_dir.rglob("*.h5")}
    assert ensure_data("flatvel-a", "tiny", tiny_data_root, progress=False) == tiny_dataset_dir
    assert {p: p.stat().st_mtime_ns for p in tiny_dataset_dir.rglob("*.h5")} == stamps
    err = capsys.readouterr().err
    assert f"flatvel-a data (profile tiny, seed 0) in {tiny_dataset_dir}" in err
    assert "generating" not in err


def test_default_root_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv(store.ROOT_ENV, str(tmp_path))
    assert store.default_root() == tmp_path
    assert store.profile_root(None, "lite", 3) == tmp_path / "lite-seed3"
    monkeypatch.delenv(store.ROOT_ENV)
    assert store.default_root() == Path(os.path.expanduser("~")) / ".cache" / "epic_zoo" / "data"


# --------------------------------------------------------------------------- forged headers


def _forge_shard(path: Path, fake_samples, *, declared: int | None = None, **overrides) -> Path:
    """A shard whose header and datasets are written by hand (as an attacker would).

    ``declared``: length of both datasets (HDF5 allocates nothing for it, so
    the file stays small); the datasets hold 2 real samples otherwise.
    ``overrides``: attributes or ``seismic_dtype``.
    """
    seismic, velocity = fake_samples(2, nt=NT_TINY)
    n = 2 if declared is None else declared
    attrs = _attrs(0, n, n, n)
    seismic_dtype = overrides.pop("seismic_dtype", "float32")
    attrs.update(overrides, seismic_min=-1.0, seismic_max=1.0, complete=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for name, data, dtype in (
            ("seismic", seismic, seismic_dtype),
            ("velocity", velocity, "float32"),
        ):
            dset = f.create_dataset(
                name, shape=(n, *data.shape[1:]), dtype=dtype, chunks=(1, *data.shape[1:])
            )
            dset[:2] = data.astype(dtype)
        for key, value in attrs.items():
            f.attrs[key] = value
    return path


def test_shard_declaring_2_to_the_40_samples_is_refused_before_reading(tmp_path, fake_samples):
    path = _forge_shard(
        tmp_path / "flatvel-a" / "test" / shard_name(0), fake_samples, declared=2**40
    )
    assert path.stat().st_size < 10_000_000  # the header costs nothing: the attack is cheap
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="stores data for only part") as err:
            H5Split(path.parent)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(err.value)
    assert peak < path.stat().st_size  # nothing sized by the header was allocated


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"seismic_dtype": "int8", "dtype": "int8"}, "seismic is stored as int8"),
        ({"seismic_dtype": "float16"}, "but the header says 'float32'"),
        ({"count": "2"}, "attribute count='2' is missing or not an integer"),
        ({"count": 1}, "but the header says (1, 5, 250, 70)"),
        ({"total": 7}, "inconsistent header"),
        ({"geometry": "{not json"}, "geometry attribute is missing or not JSON"),
    ],
)
def test_forged_header_is_named(tmp_path, fake_samples, overrides, message):
    path = _forge_shard(tmp_path / "flatvel-a" / "test" / shard_name(0), fake_samples, **overrides)
    with pytest.raises(DataError, match=re.escape(message)):
        H5Split(path)


def test_shards_summing_to_less_than_their_declared_total(written_split):
    split_dir = written_split[0]
    with h5py.File(split_dir / shard_name(2), "r+") as f:  # 1 sample stored, 2 declared total
        f.attrs["total"] = 6
    for k in (0, 1):
        with h5py.File(split_dir / shard_name(k), "r+") as f:
            f.attrs["total"] = 6
    with pytest.raises(DataError, match="hold 5 samples but declare a split of 6"):
        H5Split(split_dir)


def test_a_fifo_named_like_a_shard_is_refused_without_blocking(tmp_path):
    split_dir = tmp_path / "flatvel-a" / "test"
    split_dir.mkdir(parents=True)
    os.mkfifo(split_dir / shard_name(0))
    with pytest.raises(DataError, match="is not a regular file"):
        H5Split(split_dir)

"""OpenFWI real-layout reader and importer, on tiny fake files in the real layout."""

from __future__ import annotations

import os
import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from epic_zoo.data.openfwi import OpenFWIFolder, import_openfwi, infer_dataset
from epic_zoo.data.store import DataError, H5Split
from tests.helpers import one_line_error


def test_reads_official_splits_in_place(tiny_openfwi_root):
    train = OpenFWIFolder(tiny_openfwi_root, "FlatVel-A", "train")
    assert [p.name for p in train.files] == ["data1.npy", "data2.npy"]
    assert len(train) == 6 and train.attrs["nt"] == 1000 and train.attrs["time_stride"] == 1
    expected = np.load(tiny_openfwi_root / "data" / "data2.npy")
    seismic, velocity = train[4]
    assert seismic.shape == (5, 1000, 70) and velocity.shape == (1, 70, 70)
    assert seismic.dtype == velocity.dtype == np.float32
    np.testing.assert_array_equal(seismic, expected[1])
    np.testing.assert_array_equal(velocity, np.load(tiny_openfwi_root / "model" / "model2.npy")[1])
    assert isinstance(train._handle(0)[0], np.memmap)
    assert train.source_of(4).endswith("data2.npy sample 1")
    test = OpenFWIFolder(tiny_openfwi_root, "flatvel-a", "test")
    assert [p.name for p in test.files] == ["data49.npy"]
    assert len(OpenFWIFolder(tiny_openfwi_root, "flatvel-a", None)) == 9


def test_in_memory_and_pickled_reads_match(tiny_openfwi_root):
    mapped = OpenFWIFolder(tiny_openfwi_root, "flatvel-a", "train")
    loaded = OpenFWIFolder(tiny_openfwi_root, "flatvel-a", "train", mmap=False)
    np.testing.assert_array_equal(mapped[5][0], loaded[5][0])
    assert not isinstance(loaded._handle(1)[0], np.memmap)
    clone = pickle.loads(pickle.dumps(mapped))
    assert clone._handles == {}
    np.testing.assert_array_equal(clone[2][1], mapped[2][1])


def test_fault_layout(tmp_path, write_openfwi_files):
    write_openfwi_files(tmp_path, "flatfault-b", [(6, 0), (7, 0), (8, 33), (2, 0)], samples=2)
    train = OpenFWIFolder(tmp_path, "flatfault-b", "train")
    assert [p.name for p in train.files] == ["seis6_1_0.npy", "seis7_1_0.npy"]  # X=2 belongs to -A
    test = OpenFWIFolder(tmp_path, "flatfault-b", "test")
    assert [p.name for p in test.files] == ["seis8_1_33.npy"] and len(test) == 2


def test_no_files_of_split_names_expected_files(tmp_path, write_openfwi_files):
    write_openfwi_files(tmp_path, "style-a", [(121,)], samples=1)
    with pytest.raises(
        DataError,
        match=r"no Style-A seismic files of the official train split .*data1.npy .. data120.npy",
    ):
        OpenFWIFolder(tmp_path, "style-a", "train")


def test_missing_folder_and_partner(tmp_path, write_openfwi_files):
    with pytest.raises(DataError, match="does not exist. Download FlatVel-A"):
        OpenFWIFolder(tmp_path / "nowhere", "flatvel-a")
    ((seis, vel),) = write_openfwi_files(tmp_path, "flatvel-a", [(3,)], samples=1)
    vel.unlink()
    with pytest.raises(DataError, match=r"data3.npy has no velocity partner model3.npy"):
        OpenFWIFolder(tmp_path, "flatvel-a")


def test_unknown_dataset_and_split(tiny_openfwi_root):
    with pytest.raises(KeyError, match="unknown dataset 'flatvel'"):
        OpenFWIFolder(tiny_openfwi_root, "flatvel")
    with pytest.raises(ValueError, match="unknown OpenFWI split 'val'"):
        OpenFWIFolder(tiny_openfwi_root, "flatvel-a", "val")


@pytest.mark.parametrize(
    "which, array, message",
    [
        (
            "seis",
            np.zeros((2, 5, 999, 70), np.float32),
            r"seismic has shape \(2, 5, 999, 70\), expected \(N, 5, 1000, 70\)",
        ),
        (
            "vel",
            np.full((2, 70, 70), 2000, np.float32),
            r"velocity has shape \(2, 70, 70\), expected \(N, 1, 70, 70\)",
        ),
        (
            "vel",
            np.full((3, 1, 70, 70), 2000, np.float32),
            "holds 2 records but .*model4.npy holds 3 maps",
        ),
        ("vel", np.full((2, 1, 70, 70), 2000, np.int32), "dtype int32, expected float32"),
    ],
)
def test_wrong_arrays_are_named(tmp_path, write_openfwi_files, which, array, message):
    ((seis, vel),) = write_openfwi_files(tmp_path, "flatvel-a", [(4,)], samples=2)
    np.save(seis if which == "seis" else vel, array)
    with pytest.raises(DataError, match=message):
        OpenFWIFolder(tmp_path, "flatvel-a")


def test_truncated_npy_is_named(tmp_path, write_openfwi_files):
    ((seis, _),) = write_openfwi_files(tmp_path, "flatvel-a", [(5,)], samples=2)
    with open(seis, "r+b") as f:
        f.truncate(seis.stat().st_size - 1000)
    with pytest.raises(
        DataError, match=r"cannot read .*data5.npy: truncated or corrupt .npy.*Download it again"
    ):
        OpenFWIFolder(tmp_path, "flatvel-a")


def test_duplicate_file_names(tmp_path, write_openfwi_files):
    write_openfwi_files(tmp_path / "a", "flatvel-a", [(1,)], samples=1)
    write_openfwi_files(tmp_path / "b", "flatvel-a", [(1,)], samples=1)
    with pytest.raises(DataError, match="two files named data1.npy"):
        OpenFWIFolder(tmp_path, "flatvel-a")


def test_infer_dataset(tmp_path):
    assert infer_dataset(tmp_path / "CurveFault_B") == "curvefault-b"
    assert infer_dataset(tmp_path / "flatvel-a" / "data") == "flatvel-a"
    assert infer_dataset(tmp_path / "downloads") is None


def test_import_converts_decimates_and_resumes(tiny_openfwi_root, tmp_path):
    def convert():
        return import_openfwi(
            tiny_openfwi_root,
            tmp_path,
            "flatvel-a",
            time_stride=4,
            dtype="float16",
            shard_size=4,
            progress=False,
        )

    out = convert()
    assert out == tmp_path / "flatvel-a"
    assert sorted(p.name for p in out.iterdir()) == ["test", "train"]
    train = H5Split(out / "train")
    source = OpenFWIFolder(tiny_openfwi_root, "flatvel-a", "train")
    assert len(train) == 6 and len(train.files) == 2
    assert (train.attrs["nt"], train.attrs["source"], train.attrs["dtype"]) == (
        250,
        "openfwi",
        "float16",
    )
    seismic, velocity = train[5]
    np.testing.assert_allclose(seismic, source[5][0][:, ::4], rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(velocity, source[5][1])
    assert len(H5Split(out / "test")) == 3
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.h5")}
    convert()
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.h5")} == stamps
    (out / "train" / "shard-00001.h5").unlink()
    with pytest.raises(
        DataError, match=r"missing shard-00001.h5.*import-openfwi .*FlatVel_A --dataset flatvel-a"
    ):
        H5Split(out / "train")


@pytest.mark.parametrize(
    "which, value, message",
    [
        ("seis", np.nan, r"data7.npy: seismic of sample 1 contains NaN or inf"),
        (
            "vel",
            4.5,
            r"model7.npy: velocity of sample 1 spans .* outside the OpenFWI range",
        ),
    ],
)
def test_import_rejects_bad_values_and_writes_nothing(
    tmp_path, write_openfwi_files, which, value, message
):
    ((seis, vel),) = write_openfwi_files(tmp_path / "src", "flatvel-a", [(7,)], samples=2)
    path = seis if which == "seis" else vel
    array = np.load(path)
    array[1, 0, 3, 3] = value
    np.save(path, array)
    with pytest.raises(DataError, match=message):
        import_openfwi(tmp_path / "src", tmp_path / "out", "flatvel-a", progress=False)
    assert list((tmp_path / "out").rglob("*.h5*")) == []


def test_any_folder_of_pairs_is_read_with_a_note(tmp_path, write_openfwi_files, capsys):
    """data*/model* pairs for a Fault dataset (not its official seis*/vel* names)."""
    write_openfwi_files(tmp_path, "flatvel-a", [(10,), (2,)], samples=2)
    folder = OpenFWIFolder(tmp_path, "flatfault-a", "test")
    assert [p.name for p in folder.files] == ["data2.npy", "data10.npy"]  # natural order
    assert len(folder) == 4 and folder.attrs["dataset"] == "flatfault-a"
    note = capsys.readouterr().err
    assert "reading every data*/model* and seis*/vel* pair" in note and "data2.npy" in note
    official = OpenFWIFolder(tmp_path, "flatvel-a", "train")  # official names: no note
    assert [p.name for p in official.files] == ["data2.npy", "data10.npy"]
    assert "note" not in capsys.readouterr().err


# --------------------------------------------------------------------------- forged headers


def _forge_npy(
    path: Path, shape: tuple[int, ...], dtype: str = "<f4", payload: bytes = b""
) -> Path:
    """A ``.npy`` whose header declares ``shape`` but whose body is ``payload``."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(payload)
    return path


def test_header_declaring_a_huge_shape_allocates_nothing(tmp_path, write_openfwi_files):
    ((seis, _),) = write_openfwi_files(tmp_path, "flatvel-a", [(4,)], samples=1)
    _forge_npy(seis, (2**40, 5, 1000, 70), payload=b"\0" * 4096)
    for mmap in (True, False):
        tracemalloc.start()
        try:
            with pytest.raises(DataError, match=r"data4.npy: truncated or corrupt .npy.*declares"):
                OpenFWIFolder(tmp_path, "flatvel-a", mmap=mmap)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1_000_000  # bounded by the file, not by the header's 1.5 PB


@pytest.mark.parametrize(
    ("shape", "dtype", "message"),
    [
        ((1, 5, 1000, 70), "|O", "truncated or corrupt"),  # pickled objects
        ((1, 1, 70, 70), "<i8", "dtype int64, expected float32"),
        ((1, 70, 70), "<f4", r"shape \(1, 70, 70\), expected \(N, 1, 70, 70\)"),
    ],
)
def test_bad_velocity_headers_are_named(tmp_path, write_openfwi_files, shape, dtype, message):
    ((_, vel),) = write_openfwi_files(tmp_path, "flatvel-a", [(4,)], samples=1)
    itemsize = np.dtype(dtype).itemsize
    _forge_npy(vel, shape, dtype, payload=b"\0" * (int(np.prod(shape)) * itemsize))
    with pytest.raises(DataError, match=message):
        OpenFWIFolder(tmp_path, "flatvel-a")


def test_trailing_bytes_are_corruption(tmp_path, write_openfwi_files):
    ((_, vel),) = write_openfwi_files(tmp_path, "flatvel-a", [(4,)], samples=1)
    with open(vel, "ab") as f:
        f.write(b"junk")
    with pytest.raises(DataError, match="model4.npy: truncated or corrupt"):
        OpenFWIFolder(tmp_path, "flatvel-a")


def test_fifo_is_refused_without_blocking(tmp_path, write_openfwi_files):
    ((seis, _),) = write_openfwi_files(tmp_path, "flatvel-a", [(4,)], samples=1)
    seis.unlink()
    os.mkfifo(seis)  # no writer: opening it for reading without O_NONBLOCK blocks forever
    with pytest.raises(DataError, match="data4.npy is not a regular file"):
        OpenFWIFolder(tmp_path, "flatvel-a")


def test_info_on_a_forged_folder_is_one_line(tmp_path, write_openfwi_files, capsys):
    from epic_zoo.data.__main__ import main

    ((seis, _),) = write_openfwi_files(tmp_path / "FlatVel_A", "flatvel-a", [(4,)], samples=1)
    _forge_npy(seis, (2**40, 5, 1000, 70))
    assert main(["info", str(tmp_path / "FlatVel_A")]) == 2
    one_line_error(capsys, str(seis), "Download it again")

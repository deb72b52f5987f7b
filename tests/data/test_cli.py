"""``python -m epic_zoo.data``: generate, import-openfwi, info; errors exit 2 without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from epic_zoo.data.__main__ import main
from epic_zoo.data.store import H5Split


def test_generate_then_info(tmp_path, capsys):
    args = [
        "generate",
        "--dataset",
        "FlatVel-B",
        "--split",
        "val",
        "--num",
        "3",
        "--out",
        str(tmp_path),
    ]
    assert main([*args, "--time-stride", "4", "--shard-size", "2", "--no-progress"]) == 0
    split = H5Split(tmp_path / "flatvel-b" / "val")
    assert len(split) == 3 and split.attrs["time_stride"] == 4 and split.attrs["shard_size"] == 2
    capsys.readouterr()
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "flatvel-b val, 3 samples in 2 shard(s)" in out and "[3, 5, 250, 70] float32 raw" in out


def test_generate_profile_defaults_and_shard_range(tmp_path):
    argv = ["generate", "--dataset", "curvevel-a", "--split", "test", "--profile", "tiny"]
    assert main([*argv, "--out", str(tmp_path), "--shards", "0:1", "--no-progress"]) == 0
    (shard,) = (tmp_path / "curvevel-a" / "test").glob("*.h5")
    a = H5Split(shard).attrs
    assert (a["total"], a["count"], a["time_stride"], a["dtype"], a["shard_size"]) == (
        8,
        8,
        4,
        "float32",
        8,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["generate", "--dataset", "flatvel-z", "--num", "2", "--out", "x"],
            "unknown dataset 'flatvel-z'",
        ),
        (
            ["generate", "--dataset", "flatvel-a", "--num", "0", "--out", "x"],
            "'0' is not a positive integer",
        ),
        (
            ["generate", "--dataset", "flatvel-a", "--num", "2", "--out", "x", "--shards", "3"],
            "use START:END",
        ),
        (
            ["generate", "--dataset", "flatvel-a", "--num", "2", "--out", "x", "--dtype", "int8"],
            "invalid choice: 'int8'",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_input_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["generate", "--dataset", "flatvel-a", "--out", str(tmp_path)]) == 2
    assert "give --num N" in capsys.readouterr().err
    argv = [
        "generate",
        "--dataset",
        "flatvel-a",
        "--num",
        "4",
        "--shard-size",
        "2",
        "--out",
        str(tmp_path),
    ]
    assert main([*argv, "--shards", "1:9"]) == 2
    assert "shard range 1:9 is not inside 0:2" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing")]) == 2
    assert "missing does not exist" in capsys.readouterr().err


def test_info_reports_corrupt_split(tiny_dataset_dir, tmp_path, capsys):
    import shutil

    shutil.copytree(tiny_dataset_dir, tmp_path / "flatvel-a")
    (tmp_path / "flatvel-a" / "test" / "shard-00000.h5").write_bytes(b"garbage")
    assert main(["info", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "flatvel-a train, 16 samples in 2 shard(s)" in captured.out
    assert (
        "PROBLEM: cannot read" in captured.out
        and "shard-00000.h5: truncated or corrupt" in captured.out
    )
    assert "1 of 3 split(s)" in captured.err


def test_import_infers_dataset_from_folder_name(tiny_openfwi_root, tmp_path, capsys):
    assert (
        main(
            [
                "import-openfwi",
                str(tiny_openfwi_root),
                "--out",
                str(tmp_path),
                "--split",
                "test",
                "--no-progress",
            ]
        )
        == 0
    )
    assert len(H5Split(tmp_path / "flatvel-a" / "test")) == 3
    assert main(["info", str(tiny_openfwi_root)]) == 0
    assert "OpenFWI FlatVel-A folder, 9 samples in 3 file pair(s)" in capsys.readouterr().out
    anonymous = tmp_path / "downloads"
    anonymous.mkdir()
    assert main(["import-openfwi", str(anonymous), "--out", str(tmp_path)]) == 2
    assert "pass --dataset" in capsys.readouterr().err


def test_module_entry_point_help_and_clean_error(tmp_path):
    run = [sys.executable, "-m", "epic_zoo.data"]
    ok = subprocess.run([*run, "generate", "--help"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "--time-stride" in ok.stdout and "--shards" in ok.stdout
    bad = subprocess.run(
        [*run, "info", str(tmp_path / "nope")], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2
    assert "error:" in bad.stderr and "Traceback" not in bad.stderr

"""The ``lite10k`` profile: lite's val/test maps exactly, ten times the training maps; generation survives a kill."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from epic_zoo.data.generate import ensure_data
from epic_zoo.data.profiles import get_profile
from epic_zoo.data.store import H5Split, profile_root, shard_name

REPO = Path(__file__).resolve().parents[2]


def test_lite10k_sizes_match_lite_except_train():
    lite, big = get_profile("lite"), get_profile("lite10k")
    assert big.train == 10 * lite.train == 10_000
    for field in ("val", "test", "time_stride", "dtype", "shard_size"):
        assert getattr(big, field) == getattr(lite, field), field


def test_first_test_maps_of_lite10k_are_lites(tmp_path):
    """Both profiles, shrunk to 2 val/test maps, generated into their own folders: identical bytes."""
    roots = {}
    for name in ("lite", "lite10k"):
        small = dataclasses.replace(get_profile(name), val=2, test=2)
        ensure_data("flatvel-a", small, tmp_path, progress=False, splits=("val", "test"))
        roots[name] = profile_root(tmp_path, small, 0) / "flatvel-a"
    assert roots["lite"] != roots["lite10k"]
    for split in ("val", "test"):
        a, b = H5Split(roots["lite"] / split), H5Split(roots["lite10k"] / split)
        assert len(a) == len(b) == 2
        for i in range(2):
            for x, y in zip(a[i], b[i], strict=True):
                assert x.dtype == y.dtype
                np.testing.assert_array_equal(x, y)
    # and not trivially so: the two test maps differ from each other and from the val maps
    test, val = H5Split(roots["lite"] / "test"), H5Split(roots["lite"] / "val")
    assert not np.array_equal(test[0][1], test[1][1])
    assert not np.array_equal(test[0][1], val[0][1])


def test_ensure_data_rejects_an_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        ensure_data("flatvel-a", "tiny", tmp_path, progress=False, splits=("dev",))


@pytest.mark.slow
def test_killed_generation_resumes_without_remaking_finished_shards(tmp_path):
    """SIGKILL the CLI after its first shards; the rerun keeps them and makes only the rest."""
    split_dir = tmp_path / "flatvel-a" / "train"
    cmd = [
        sys.executable,
        "-m",
        "epic_zoo.data",
        "generate",
        "--dataset",
        "flatvel-a",
        "--split",
        "train",
        "--num",
        "8",
        "--shard-size",
        "1",
        "--time-stride",
        "4",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (split_dir / shard_name(1)).exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sorted(split_dir.glob("shard-*.h5"))
    assert 2 <= len(finished) < 8, "the kill came too late to test resuming"
    stamps = {p.name: p.stat().st_mtime_ns for p in finished}
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"({8 - len(finished)} shards to make, {len(finished)} already there)" in rerun.stderr
    for name, stamp in stamps.items():
        assert (split_dir / name).stat().st_mtime_ns == stamp, f"{name} was remade"
    assert not list(split_dir.glob("*.tmp"))
    from epic_zoo.data.families import generate_velocity

    split = H5Split(split_dir)
    assert len(split) == 8
    expected = generate_velocity("flatvel-a", range(8), seed=0, split="train")
    for i in range(8):
        np.testing.assert_array_equal(split[i][1], expected[i])

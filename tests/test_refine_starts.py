"""benchmarks/refine_starts.py: the starts, and resuming without redoing written records."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from epic_zoo.data.geometry import NX, NZ, V_MAX, V_MIN
from tests.helpers import benchmark_script


def _script():
    return benchmark_script("refine_starts")


def test_starts_are_in_range_and_linear_grows_with_depth(monkeypatch) -> None:
    script = _script()
    rows = torch.linspace(1800.0, 4000.0, NZ)[None, None, :, None].expand(1, 1, NZ, NX)
    monkeypatch.setattr(script, "mean_map", lambda dataset: rows.clone())
    truth = torch.full((2, 1, NZ, NX), 2500.0)
    truth[:, :, 35:] = 3500.0
    for name in ("mean_map", "constant", "linear", "smoothed_truth"):
        start = script.start_maps(name, "flatvel-a", truth, np.zeros((2, 5, 10, 70)))
        assert start.shape == (2, 1, NZ, NX), name
        assert float(start.min()) >= V_MIN and float(start.max()) <= V_MAX, name
    linear = script.start_maps("linear", "flatvel-a", truth, np.zeros((2, 5, 10, 70)))
    assert float(linear[0, 0, -1, 0] - linear[0, 0, 0, 0]) > 2000.0
    blurred = script.smoothed(truth)
    assert 2500.0 < float(blurred[0, 0, 35, 10]) < 3500.0  # the step is smoothed
    torch.testing.assert_close(blurred[:, :, :5], truth[:, :, :5], atol=1.0, rtol=0.0)


def test_written_records_are_skipped_unless_overwrite(tmp_path, monkeypatch, capsys) -> None:
    script = _script()
    velocity = np.full((1, 1, NZ, NX), 2000.0, dtype=np.float32)
    monkeypatch.setattr(script, "port_pairs", lambda *a: (velocity, np.zeros((1, 5, 10, 70))))
    monkeypatch.setattr(script, "mean_map", lambda dataset: torch.from_numpy(velocity))
    done = {"dataset": "flatvel-a", "start": "constant", "seed": 7, "maps": 1, "result": {}}
    path = tmp_path / "flatvel-a-constant.json"
    path.write_text(json.dumps(done))

    def refused(*args, **kwargs):
        raise AssertionError("refine_maps ran for a record already written")

    monkeypatch.setattr(script, "refine_maps", refused)
    argv = ["--datasets", "flatvel-a", "--starts", "constant", "--num", "1", "--seed", "7"]
    assert script.main([*argv, "--out", str(tmp_path)]) == 0
    assert "skipped" in capsys.readouterr().out
    assert json.loads(path.read_text()) == done
    with pytest.raises(AssertionError, match="already written"):  # --overwrite redoes it
        script.main([*argv, "--out", str(tmp_path), "--overwrite"])

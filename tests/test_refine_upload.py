"""benchmarks/refine_upload_fidelity.py and refine_upload_plot.py: refine from what was uploaded."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from epic_zoo.bench.ondemand import Upload
from epic_zoo.hardware import payload as pl
from epic_zoo.models import create_model
from tests.helpers import benchmark_script


@pytest.fixture
def fidelity(monkeypatch: pytest.MonkeyPatch):
    """The fidelity script with records, EPIC and the refinement replaced by fast fakes."""
    script = benchmark_script("refine_upload_fidelity")
    rng = np.random.default_rng(0)
    t = np.arange(1000, dtype=np.float32)[None, None, :, None]
    records = {i: np.sin(t / 17.0 + i + rng.uniform(0, 3, (1, 5, 1, 70))) for i in range(4)}
    calls: list[dict] = []

    def port_pairs(dataset, seed, indices, cache):
        velocity = np.stack([np.full((1, 70, 70), 2000.0 + 100 * i, np.float32) for i in indices])
        return velocity, np.concatenate([records[i] for i in indices]).astype(np.float32)

    def refine_maps(start, seismic, *, dataset, schedule, data_time_stride):
        calls.append({"seismic": np.asarray(seismic), "stride": data_time_stride, "n": len(start)})
        n = start.shape[0]
        return SimpleNamespace(
            velocity=start + 10.0,
            misfit_before=torch.ones(n),
            misfit_after=torch.full((n,), 0.1),
            noise_level=torch.full((n,), 1e-4),
            reverted=torch.zeros(n, dtype=torch.bool),
            cpu_seconds=2.0 * n,
            threads=1,
            evaluations=3,
        )

    model = create_model("epic", time_samples=250).eval()
    monkeypatch.setattr(script, "port_pairs", port_pairs)
    monkeypatch.setattr(script, "refine_maps", refine_maps)
    monkeypatch.setattr(
        script, "network_prediction", lambda m, r, d: torch.full((len(r), 1, 70, 70), 2050.0)
    )
    # the entries (and their mean-map MAE) are made by refine_check.map_entries
    monkeypatch.setattr(
        sys.modules["refine_check"], "mean_map", lambda d: torch.full((1, 1, 70, 70), 2500.0)
    )
    monkeypatch.setattr("epic_zoo.models.load_model", lambda spec: model)
    return script, records, calls, model


def _args(tmp_path: Path, num: int) -> argparse.Namespace:
    return argparse.Namespace(
        dataset="curvevel-a",
        num=num,
        seed=314159,
        model="epic.{dataset}",
        batch=2,
        cache=tmp_path / "cache",
        json=tmp_path / "upload_fidelity.json",
        label=None,
        model_record=None,
        settings=None,
    )


def test_refines_from_the_decoded_upload_and_resumes(fidelity, tmp_path: Path) -> None:
    script, records, calls, model = fidelity
    record = script.run(_args(tmp_path, 2))
    assert len(calls) == len(script.SETTINGS)
    receivers = pl.model_receivers(model)
    both = np.concatenate([records[0], records[1]]).astype(np.float32)
    for call, (stride, precision, zipped) in zip(calls, script.SETTINGS, strict=True):
        assert call["stride"] == stride and call["n"] == 2
        sent = both[:, :, ::stride]
        dtype = np.float16 if precision == "float16" else np.float32
        np.testing.assert_array_equal(call["seismic"], sent.astype(dtype).astype(np.float32))
        entry = record["settings"][Upload(stride, precision, zipped).name]
        payloads = pl.raw_payloads(sent, receivers, precision)
        if zipped:
            payloads = pl.compress_payloads(payloads)
        assert [m["bytes_per_device"] for m in entry["maps"]] == pl.payload_sizes(
            payloads
        ).T.tolist()
        assert [m["mae_after"] for m in entry["maps"]] == pytest.approx([60.0, 40.0])
        assert [m["mean_map_mae"] for m in entry["maps"]] == pytest.approx([500.0, 400.0])
        assert entry["summary"]["cpu_seconds"] == pytest.approx(2.0)
    saved = json.loads((tmp_path / "upload_fidelity.json").read_text())
    assert saved["schedule"] == json.loads(json.dumps(script.DEFAULT_SCHEDULE.as_dict()))
    calls.clear()
    script.run(_args(tmp_path, 3))  # resumes: only map 2, once per setting
    assert [c["n"] for c in calls] == [1] * len(script.SETTINGS)
    saved = json.loads((tmp_path / "upload_fidelity.json").read_text())
    assert all(len(s["maps"]) == 3 for s in saved["settings"].values())


def test_a_centralised_network_predicts_from_the_decoded_upload(
    fidelity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, records, calls, _ = fidelity
    inv = create_model("inversionnet", time_samples=250).eval()
    assert not hasattr(inv, "payload_bytes")
    inv.contract = SimpleNamespace(time_stride=4)
    monkeypatch.setattr("epic_zoo.models.load_model", lambda spec: inv)
    seen: list[tuple[np.ndarray, int]] = []

    def predict(model, recs, dataset, records_stride=1):
        seen.append((np.asarray(recs), records_stride))
        return torch.full((len(recs), 1, 70, 70), 2050.0)

    monkeypatch.setattr(script, "network_prediction", predict)
    args = _args(tmp_path, 2)
    args.settings, args.label = ["4ms-float16-zlib"], "InversionNet"
    record = script.run(args)
    assert list(record["settings"]) == ["4ms-float16-zlib"] and len(calls) == 1
    assert record["model_kind"] == "centralised" and record["latent_bytes_per_device"] == 0
    both = np.concatenate([records[0], records[1]]).astype(np.float32)
    sent = both[:, :, ::4].astype(np.float16).astype(np.float32)
    # the network saw exactly what the refinement refined from: the decoded upload
    assert len(seen) == 1 and seen[0][1] == 4
    np.testing.assert_array_equal(seen[0][0], sent)
    np.testing.assert_array_equal(calls[0]["seismic"], sent)


def test_a_record_of_another_schedule_is_refused(fidelity, tmp_path: Path) -> None:
    script = fidelity[0]
    (tmp_path / "upload_fidelity.json").write_text(json.dumps({"schedule": {"stages": []}}))
    with pytest.raises(SystemExit, match="another schedule"):
        script.run(_args(tmp_path, 1))


def test_plot_points_use_the_maps_every_setting_has(tmp_path: Path) -> None:
    plot = benchmark_script("refine_upload_plot")

    def maps(n: int, mae_after: float, sizes: list[int]) -> list[dict]:
        return [
            {
                "index": i,
                "mae_before": 100.0 + i,
                "ssim_before": 0.8,
                "mae_after": mae_after + i,
                "ssim_after": 0.9,
                "mean_map_mae": 300.0,
                "bytes_per_device": [s + 2 * i for s in sizes],
                "cpu_seconds": 80.0,
            }
            for i in range(n)
        ]

    record = {
        "model": "epic.curvevel-a",
        "dataset": "curvevel-a",
        "seed": 314159,
        "label": "EPIC",
        "latent_bytes_per_device": 933,
        "settings": {
            "4ms-float16-zlib": {"maps": maps(3, 50.0, [100, 300])},
            "1ms-float32": {"maps": maps(2, 40.0, [1000, 1000])},
        },
    }
    rows = plot.points(record)
    assert [r["label"] for r in rows] == [
        "EPIC latents alone",
        "EPIC + refinement, 1ms-float32",
        "EPIC + refinement, 4ms-float16-zlib",
    ]
    assert [r["bytes"] for r in rows] == [933, 933 + 1001, 933 + 301]
    assert [r["mae"] for r in rows] == pytest.approx([100.5, 40.5, 50.5])
    assert rows[0]["mean_map"] == 300.0 and rows[0]["indices"] == [0, 1]
    plot.plot(rows, plot.title([record]), tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert plot.table(rows).count("\n") == 4
    # a centralised network: its own map and its refinement at the upload's bytes, no latent
    central = {
        **record,
        "label": "InversionNet",
        "latent_bytes_per_device": 0,
        "settings": {"4ms-float16-zlib": {"maps": maps(2, 30.0, [100, 300])}},
    }
    rows = plot.points(central)
    assert [(r["label"], r["bytes"], r["refined"]) for r in rows] == [
        ("InversionNet, 4ms-float16-zlib", 301, False),
        ("InversionNet + refinement, 4ms-float16-zlib", 301, True),
    ]
    assert [r["mae"] for r in rows] == pytest.approx([100.5, 30.5])
    with pytest.raises(SystemExit, match="mix datasets"):
        plot.title([record, {**central, "dataset": "flatvel-a"}])


def test_ratio_interval_brackets_the_ratio_and_shrinks_to_it() -> None:
    check = benchmark_script("refine_check")
    maps = [{"mae_before": 100.0 + 10 * i, "mae_after": 50.0 + 20 * i} for i in range(8)]
    low, high = check.ratio_interval(maps)
    ratio = np.mean([m["mae_after"] for m in maps]) / np.mean([m["mae_before"] for m in maps])
    assert low < ratio < high and high - low > 0.05
    same = [{"mae_before": 100.0, "mae_after": 60.0}] * 5
    assert check.ratio_interval(same) == pytest.approx((0.6, 0.6))


def test_depth_bands_split_the_error_by_depth_and_average_to_the_mae() -> None:
    check = benchmark_script("refine_check")
    truth = torch.full((2, 1, 70, 70), 3000.0)
    maps = truth.clone()
    maps[0, 0, :10] += 100.0  # 0-100 m wrong by 100 m/s
    maps[1, 0, 45:] -= 40.0  # 450-700 m wrong by 40 m/s
    bands = check.depth_band_mae(maps, truth)
    assert bands == [pytest.approx([100.0, 0, 0, 0]), pytest.approx([0, 0, 0, 40.0])]
    rows = np.diff(check.DEPTH_BANDS_M) / 10  # rows per band: the bands' weighted mean is the MAE
    mae = check.map_metrics(maps, truth)["mae_ms"]
    assert [np.dot(b, rows) / 70 for b in bands] == pytest.approx(mae)


def test_depth_table_averages_the_maps_that_hold_bands(tmp_path: Path) -> None:
    check = benchmark_script("refine_check")
    maps = [
        {"mae_by_depth_before": [10, 20, 30, 40], "mae_by_depth_after": [2, 4, 6, 8]},
        {"mae_by_depth_before": [30, 40, 50, 60], "mae_by_depth_after": [4, 6, 8, 10]},
        {"mae_before": 1.0, "mae_after": 1.0},  # an older entry without bands: left out
    ]
    record = {"dataset": "flatvel-a", "conditions": {"clean": {"maps": maps}}}
    (tmp_path / "flatvel-a.json").write_text(json.dumps(record))
    lines = check.depth_table(tmp_path).splitlines()
    assert lines[-1] == "| flatvel-a | clean | 2 | 20 -> 3 | 30 -> 5 | 40 -> 7 | 50 -> 9 |"

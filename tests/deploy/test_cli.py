"""The command line: real edge and central processes over a real broker, and the testbed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from epic_zoo.data.transforms import denormalize_velocity, normalize_seismic
from epic_zoo.deploy.__main__ import build_parser
from epic_zoo.deploy.transport import MqttLink, Topics

from .conftest import NUM_DEVICES, needs_mosquitto


def _run(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "epic_zoo.deploy", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_help_lists_every_command() -> None:
    text = build_parser().format_help()
    for command in ("export", "provision", "broker", "edge", "central", "testbed"):
        assert command in text


@needs_mosquitto
@pytest.mark.slow  # four Python processes importing torch: ~10 s idle, more on a busy CPU
def test_edge_and_central_processes(
    bundle, small_epic, creds, broker, records, tmp_path: Path
) -> None:
    data = tmp_path / "records.npy"
    np.save(data, records[:3])
    address = f"{broker.host}:{broker.port}"
    central = _run(
        "central", "--bundle", str(bundle / "central"), "--credentials", str(tmp_path / "credentials/central.json"),
        "--broker", address, "--out", str(tmp_path / "out"), "--samples", "3", "--deadline", "20",
    )  # fmt: skip
    # the central's first connection creates its persistent session; only then may edges send
    operator = MqttLink(
        "operator", creds["operator"], broker.address, subscriptions=[Topics().status("central")]
    )
    online = threading.Event()
    operator.client.on_message = lambda _c, _u, msg: msg.payload == b"online" and online.set()
    operator.connect()
    assert online.wait(60), "central did not come online"
    operator.close()
    edges = [
        _run(
            "edge",
            "--bundle",
            str(bundle / f"devices/device-{k}"),
            "--device",
            str(k),
            "--credentials",
            str(tmp_path / f"credentials/device-{k}.json"),
            "--broker",
            address,
            "--data",
            str(data),
            "--interval",
            "0.05",
            "--link",
            "4g",
            "--stats",
            str(tmp_path / f"edge-{k}.json"),
        )  # fmt: skip
        for k in range(NUM_DEVICES)
    ]
    try:
        for proc in [*edges, central]:
            output, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, output
    finally:
        for proc in [*edges, central]:
            if proc.poll() is None:
                proc.kill()
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    assert summary["written"] == 3 and summary["counters"]["complete"] == 3
    for i in range(3):
        x = normalize_seismic(torch.from_numpy(records[i]), "flatvel-a")[None]
        with torch.inference_mode():
            expected = denormalize_velocity(small_epic(x))[0, 0].numpy()
        np.testing.assert_array_equal(np.load(tmp_path / f"out/maps/{i:08d}.npy"), expected)
    stats = json.loads((tmp_path / "edge-0.json").read_text())
    assert stats["messages"] == 3 and stats["payload_bytes"] == 3 * small_epic.payload_bytes(0)
    assert (
        stats["wire_bytes"] > stats["mqtt_bytes"] > stats["message_bytes"] > stats["payload_bytes"]
    )


@needs_mosquitto
@pytest.mark.slow
def test_testbed_runs_epic_and_the_centralised_baseline(
    tmp_path: Path, tiny_dataset_dir: Path
) -> None:
    from epic_zoo.deploy.testbed import run_testbed

    result = run_testbed(
        devices=2,
        links=["4g"],
        samples=3,
        models=["epic", "inversionnet"],
        data=tiny_dataset_dir / "test",
        out=tmp_path / "report",
    )
    rows = {r["model"]: r for r in result["rows"]}
    assert set(rows) == {"epic", "inversionnet"}
    assert (
        rows["epic"]["measured"]["payload_bytes"]
        < rows["inversionnet"]["measured"]["payload_bytes"] / 20
    )
    for row in rows.values():
        assert row["measured"]["partial"] == 0 and row["predicted"]["latency_s"] > 0
        assert 0 < row["measured"]["p50_s"] <= row["measured"]["p95_s"]
    assert (tmp_path / "report/testbed.png").stat().st_size > 0
    assert "| epic | 4g |" in (tmp_path / "report/testbed.md").read_text()

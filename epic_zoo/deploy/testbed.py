"""The testbed: a broker, the central and N edge processes on this machine, measured.

``python -m epic_zoo.deploy testbed --devices 5 --link wifi --samples N``, for
each deployed model (EPIC, and the centralised baseline: InversionNet fed
the devices' raw records) and each link profile:

1. exports the model to a bundle and provisions fresh credentials;
2. starts mosquitto on a free loopback port, the central process and one
   edge process per device (``python -m epic_zoo.deploy central|edge``), each
   edge replaying its receivers of the dataset's test split and shaping its
   sends to the link profile on the sender side
   (:class:`~epic_zoo.deploy.transport.LinkShaper`: token bucket for the
   airtime, shared by all devices on a shared medium, then half the round
   trip of one-way delay);
3. **latency phase**: triggers records one at a time (the next when the
   previous map is written), so each end-to-end latency (trigger -> map on
   disk) is free of queueing;
4. **throughput phase**: triggers N more records back to back and times the
   last map;
5. reads the central's ``timing.jsonl`` and the edges' byte counts, and runs
   the hardware simulator (:func:`epic_zoo.hardware.simulator.simulate`) on
   the same model, link and *this* machine (device and central profile =
   this host's measured single-thread speed) for the prediction beside it.

Written to ``--out``: ``testbed.md`` (table and conditions), ``testbed.json``
(every number), ``testbed.png`` (measured p50/p95 vs predicted).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import torch

from epic_zoo.deploy.broker import Broker
from epic_zoo.deploy.export import CentralDecoder, EdgeEncoder, export_bundle, load_source_model
from epic_zoo.deploy.security import provision
from epic_zoo.deploy.transport import MqttLink, Topics
from epic_zoo.hardware.profiles import ComputeProfile, get_link

START_TIMEOUT_S: float = 240.0
"""Time allowed for the central and edge processes to import torch, load and warm up."""


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class Operator:
    """The testbed's MQTT client: sees device/central status, triggers records, collects done notices."""

    def __init__(self, credentials, address: tuple[str, int], topics: Topics) -> None:
        self.topics = topics
        self.status: dict[str, str] = {}
        self.done: dict[int, dict] = {}
        self._cond = threading.Condition()
        self.link = MqttLink(
            "operator",
            credentials,
            address,
            on_message=self._receive,
            subscriptions=[topics.status("+"), topics.done],
            clean_start=True,
        )

    def _receive(self, message) -> None:
        with self._cond:
            if message.topic == self.topics.done:
                timing = json.loads(message.payload)
                self.done[int(timing["sample_id"])] = timing
            else:
                self.status[message.topic.rsplit("/", 1)[-1]] = message.payload.decode()
            self._cond.notify_all()

    def wait_for(self, predicate, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout_s)

    def trigger(self, sample_id: int) -> float:
        t = time.time()
        payload = json.dumps({"sample_id": sample_id, "t_release": t}).encode()
        self.link.publish(self.topics.trigger, payload)
        return t


def _processes_alive(procs: dict[str, subprocess.Popen], logs: dict[str, Path]) -> None:
    for name, proc in procs.items():
        if proc.poll() is not None and proc.returncode != 0:
            raise RuntimeError(
                f"{name} exited with code {proc.returncode}:\n{_log_tail(logs[name])}"
            )


def run_deployment(
    bundle: Path,
    data: Path,
    link_name: str,
    samples: int,
    workdir: Path,
    *,
    deadline_s: float = 2.0,
    gap_s: float = 0.02,
) -> dict[str, Any]:
    """One model on one link: processes up, latency phase, throughput phase, processes down.

    Returns the measured numbers (latencies, bytes, throughput, central counters).
    """
    manifest = json.loads((bundle / "manifest.json").read_text())
    devices = int(manifest["num_devices"])
    workdir.mkdir(parents=True, exist_ok=True)
    topics = Topics()
    creds = provision(devices, workdir / "credentials")
    total = 2 * samples
    logs: dict[str, Path] = {}
    procs: dict[str, subprocess.Popen] = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with Broker(workdir / "broker", creds, devices, topics) as broker:
        address = f"{broker.host}:{broker.port}"
        common = ["--broker", address, "--samples", str(total), "--threads", "1"]
        commands = {
            "central": [
                "central",
                "--bundle",
                str(bundle / "central"),
                "--credentials",
                str(workdir / "credentials/central.json"),
                "--out",
                str(workdir / "central"),
                "--deadline",
                str(deadline_s),
                *common,
            ]
        }
        for k in range(devices):
            commands[f"device-{k}"] = [
                "edge",
                "--bundle", str(bundle / f"devices/device-{k}"),
                "--device", str(k),
                "--credentials", str(workdir / f"credentials/device-{k}.json"),
                "--data", str(data),
                "--trigger",
                "--link", link_name,
                "--shared-bucket", str(workdir / "shared-medium.bucket"),
                "--stats", str(workdir / f"device-{k}.json"),
                *common,
            ]  # fmt: skip
        operator = Operator(creds["operator"], broker.address, topics)
        operator.link.connect()
        try:
            for name, args in commands.items():
                logs[name] = workdir / f"{name}.log"
                with open(logs[name], "w") as log:
                    procs[name] = subprocess.Popen(
                        [sys.executable, "-m", "epic_zoo.deploy", *args],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
            start = time.monotonic()
            while not operator.wait_for(
                lambda: all(operator.status.get(n.split("-")[-1]) == "online" for n in procs), 1.0
            ):
                _processes_alive(procs, logs)
                if time.monotonic() - start > START_TIMEOUT_S:
                    raise TimeoutError(
                        f"processes not online after {START_TIMEOUT_S} s: {operator.status}"
                    )
            wait_s = deadline_s + 30.0
            for i in range(samples):  # latency phase: one record in flight at a time
                operator.trigger(i)
                if not operator.wait_for(lambda i=i: i in operator.done, wait_s):
                    _processes_alive(procs, logs)
                    raise TimeoutError(f"sample {i} not decoded within {wait_s} s")
                time.sleep(gap_s)
            burst_start = time.time()
            for i in range(samples, total):  # throughput phase: all at once
                operator.trigger(i)
            if not operator.wait_for(lambda: len(operator.done) >= total, wait_s + samples):
                _processes_alive(procs, logs)
                raise TimeoutError(f"throughput phase: {len(operator.done)}/{total} maps written")
            for name, proc in procs.items():
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired as err:
                    raise TimeoutError(f"{name} did not exit after its last sample") from err
            _processes_alive(procs, logs)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            operator.link.close()
    timings = [
        json.loads(line) for line in (workdir / "central/timing.jsonl").read_text().splitlines()
    ]
    by_id = {t["sample_id"]: t for t in timings}
    latency = np.array([by_id[i]["latency_s"] for i in range(samples)])
    burst_end = max(by_id[i]["t_done"] for i in range(samples, total))
    edge_stats = [json.loads((workdir / f"device-{k}.json").read_text()) for k in range(devices)]
    summary = json.loads((workdir / "central/summary.json").read_text())

    def per_message(key: str) -> float:
        return float(np.mean([s[key] / s["messages"] for s in edge_stats]))

    return {
        "latency_s": latency.tolist(),
        "p50_s": float(np.percentile(latency, 50)),
        "p95_s": float(np.percentile(latency, 95)),
        "mean_s": float(latency.mean()),
        "partial": int(sum(by_id[i]["partial"] for i in range(total))),
        "throughput_sps": samples / (burst_end - burst_start),
        "decode_s_median": float(np.median([t["decode_s"] for t in timings])),
        "encode_s_median": float(np.median([s["encode_s_median"] for s in edge_stats])),
        "payload_bytes": per_message("payload_bytes"),
        "message_bytes": per_message("message_bytes"),
        "mqtt_bytes": per_message("mqtt_bytes"),
        "wire_bytes": per_message("wire_bytes"),
        "counters": summary["counters"],
    }


def predict(
    model: torch.nn.Module, records: np.ndarray, dataset: str, link_name: str
) -> dict[str, Any]:
    """The simulator's latency for ``model`` on ``link`` with this machine as device and centre.

    Args:
        records: one raw record ``[5, T, 70]``.
    """
    from epic_zoo.data.transforms import normalize_seismic
    from epic_zoo.hardware.simulator import (
        host_reference_flops,
        measure_cost,
        simulate,
        transfer_time,
    )

    host_flops = host_reference_flops()
    host = ComputeProfile(
        "this-host", "this machine, 1 thread", effective_flops=host_flops, active_power_w=1.0
    )
    seismic = normalize_seismic(torch.from_numpy(records), dataset)[None]
    with torch.inference_mode():
        cost = measure_cost(model.eval(), seismic, records[None])
    link = get_link(link_name)
    est = simulate(cost, link, host, host, source="measured", host_flops=host_flops)
    stage = max(
        est.device_compute_s, transfer_time(cost.payload_bytes, link), est.central_compute_s
    )
    return {
        "latency_s": est.latency_s,
        "components": {
            "device_compute_s": est.device_compute_s,
            "comm_s": est.comm_s,
            "propagation_s": est.propagation_s,
            "central_compute_s": est.central_compute_s,
        },
        "payload_bytes": int(max(cost.payload_bytes)),
        "wire_bytes": int(link.wire_bytes(max(cost.payload_bytes))),
        "throughput_bound_sps": 1.0 / stage,
        "host_flops": host_flops,
    }


def ssim_vs_devices_lost(bundle: Path, data: Path, max_samples: int = 50) -> list[dict[str, float]]:
    """OpenFWI SSIM of the bundle's maps with 0..D-1 devices lost (every subset, averaged).

    Runs the deployed parts in-process (edge encoders, codec bytes, central
    decoder with the presence mask) on the first ``max_samples`` records.
    """
    from epic_zoo.data.store import H5Split
    from epic_zoo.data.transforms import normalize_velocity
    from epic_zoo.models.codec import unpack_payload
    from epic_zoo.tasks.metrics import openfwi_ssim

    central = CentralDecoder(bundle / "central")
    num_devices = central.num_devices
    edges = [EdgeEncoder(bundle / f"devices/device-{k}", k) for k in range(num_devices)]
    split = H5Split(data)
    rows = []
    cache = []
    for i in range(min(max_samples, len(split))):
        seismic, velocity = split[i]
        latents = [unpack_payload(e.payload(seismic[..., e.receivers], i))[1] for e in edges]
        cache.append((latents, normalize_velocity(torch.from_numpy(velocity))[None]))
    for lost in range(num_devices):
        scores = []
        for gone in combinations(range(num_devices), lost):
            for latents, target in cache:
                parts = [None if k in gone else lat for k, lat in enumerate(latents)]
                pred = normalize_velocity(torch.from_numpy(central.decode(parts)))[None, None]
                scores.append(float(openfwi_ssim((pred + 1) / 2, (target + 1) / 2)))
        rows.append({"devices_lost": lost, "ssim": float(np.mean(scores)), "n": len(scores)})
    return rows


def _records(data: Path) -> np.ndarray:
    from epic_zoo.data.store import H5Split

    return np.asarray(H5Split(data)[0][0], dtype=np.float32)


def run_testbed(
    devices: int = 5,
    links: Sequence[str] = ("wifi",),
    samples: int = 50,
    models: Sequence[str] = ("epic", "inversionnet"),
    dataset: str = "flatvel-a",
    data: str | Path | None = None,
    weights: str | None = None,
    deadline_s: float = 2.0,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    ssim_datasets: Sequence[str] = (),
) -> dict[str, Any]:
    """Run every (model, link) deployment, print a table, write the report if ``out`` is given."""
    from epic_zoo.data.store import ensure_data

    torch.set_num_threads(1)
    for name in links:
        get_link(name)
    tmp = tempfile.TemporaryDirectory(prefix="epic_zoo_testbed_") if workdir is None else None
    root = Path(workdir) if workdir is not None else Path(tmp.name)
    try:
        split = (
            Path(data)
            if data is not None
            else ensure_data(dataset, "tiny", progress=False) / "test"
        )
        records = _records(split)
        rows = []
        for model_name in models:
            spec = weights if (weights and model_name.startswith("epic")) else model_name
            model, info = load_source_model(
                spec, dataset=dataset, time_stride=4, num_devices=devices
            )
            bundle = export_bundle(
                model,
                root / model_name / "bundle",
                name=info["name"],
                dataset=info["dataset"],
                time_stride=info["time_stride"],
                trained=info["trained"],
                source=info["source"],
            )
            for link_name in links:
                print(f"testbed: {model_name} on {link_name} ...", file=sys.stderr, flush=True)
                measured = run_deployment(
                    bundle, split, link_name, samples, root / model_name / link_name,
                    deadline_s=deadline_s,
                )  # fmt: skip
                predicted = predict(model, records, info["dataset"], link_name)
                rows.append(
                    {
                        "model": model_name,
                        "weights": info["source"],
                        "trained": info["trained"],
                        "link": link_name,
                        "devices": devices,
                        "samples": samples,
                        "measured": measured,
                        "predicted": predicted,
                        "p50_over_predicted": measured["p50_s"] / predicted["latency_s"],
                    }
                )
                print(_row_line(rows[-1]), file=sys.stderr, flush=True)
        ssim = {}
        for ds in ssim_datasets:
            from epic_zoo import hub

            name = f"epic.{ds}"
            if name not in hub.list_pretrained():
                print(
                    f"testbed: no trained weights {name}; SSIM vs devices lost skipped",
                    file=sys.stderr,
                )
                continue
            model, info = load_source_model(name)
            bundle = export_bundle(model, root / f"ssim-{ds}", name=name, dataset=ds,
                                   time_stride=info["time_stride"], trained=True, source=info["source"])  # fmt: skip
            ssim[ds] = ssim_vs_devices_lost(
                bundle, ensure_data(ds, "tiny", progress=False) / "test"
            )
        result = {
            "conditions": _conditions(split, records),
            "rows": rows,
            "ssim_vs_devices_lost": ssim,
        }
        if out is not None:
            write_report(result, Path(out))
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


def _row_line(row: dict[str, Any]) -> str:
    m, p = row["measured"], row["predicted"]
    return (
        f"{row['model']:>13} {row['link']:>7}: p50 {m['p50_s'] * 1e3:8.1f} ms  p95 "
        f"{m['p95_s'] * 1e3:8.1f} ms  predicted {p['latency_s'] * 1e3:8.1f} ms "
        f"(x{row['p50_over_predicted']:.2f})  {m['mqtt_bytes']:.0f} B/device  "
        f"{m['throughput_sps']:.1f} samples/s"
    )


def _conditions(split: Path, records: np.ndarray) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "host": f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
        "load_average_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "shaping": "sender-side token bucket + one-way delay on loopback (LinkShaper)",
        "broker": "mosquitto (loopback), MQTT 5, QoS 1, persistent sessions",
        "record_shape": list(records.shape),
        "data": str(split),
    }


def write_report(result: dict[str, Any], out: Path) -> None:
    """``testbed.md``, ``testbed.json`` and ``testbed.png`` under ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "testbed.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = result["rows"]
    labels = [f"{r['model']}\n{r['link']}" for r in rows]
    x = np.arange(len(rows))
    p50 = np.array([r["measured"]["p50_s"] for r in rows]) * 1e3
    p95 = np.array([r["measured"]["p95_s"] for r in rows]) * 1e3
    pred = np.array([r["predicted"]["latency_s"] for r in rows]) * 1e3
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(rows)), 4))
    ax.bar(x - 0.2, p50, 0.4, yerr=[np.zeros_like(p50), p95 - p50], capsize=3,
           label="measured p50 (bar to p95)")  # fmt: skip
    ax.bar(x + 0.2, pred, 0.4, label="simulator prediction")
    ax.set_xticks(x, labels)
    ax.set_yscale("log")
    ax.set_ylabel("end-to-end latency per record, ms")
    ax.set_title("Testbed: 5 edge processes + central over MQTT, this machine")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "testbed.png", dpi=120)
    plt.close(fig)

    cond = result["conditions"]
    lines = [
        "# Deployment testbed: measured vs simulated",
        "",
        "Made by `python -m epic_zoo.deploy testbed` (epic_zoo/deploy/testbed.py). Every process",
        "(mosquitto, the central, one edge per device) ran on this machine; links were emulated.",
        "",
        "| model | link | p50 ms | p95 ms | simulator ms | p50 / sim | payload B | MQTT B | wire B (emulated) | throughput /s | sim bound /s | partial |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m, p = r["measured"], r["predicted"]
        lines.append(
            f"| {r['model']} | {r['link']} | {m['p50_s'] * 1e3:.1f} | {m['p95_s'] * 1e3:.1f} | "
            f"{p['latency_s'] * 1e3:.1f} | {r['p50_over_predicted']:.2f} | {m['payload_bytes']:.0f} | "
            f"{m['mqtt_bytes']:.0f} | {m['wire_bytes']:.0f} | {m['throughput_sps']:.1f} | "
            f"{p['throughput_bound_sps']:.1f} | {m['partial']} |"
        )
    lines += [
        "",
        "Bytes are per device per record: *payload* = codec bytes (EPIC) or the raw float32",
        "records frame (InversionNet); *MQTT* = the PUBLISH packet with the 16-byte HMAC tag,",
        "topic and user properties; *wire* = MQTT bytes plus the link profile's per-packet",
        "TCP/IP and link headers, as charged to the emulated link.",
        "",
        "Simulator components (ms): device compute / comm / propagation / central compute",
        "",
    ]
    for r in rows:
        c = r["predicted"]["components"]
        lines.append(
            f"- {r['model']} on {r['link']}: {c['device_compute_s'] * 1e3:.2f} / {c['comm_s'] * 1e3:.2f} / "
            f"{c['propagation_s'] * 1e3:.2f} / {c['central_compute_s'] * 1e3:.2f}; measured medians: "
            f"encode {r['measured']['encode_s_median'] * 1e3:.2f}, decode {r['measured']['decode_s_median'] * 1e3:.2f}"
        )
    lines += ["", "![testbed](testbed.png)", "", "## Conditions", ""]
    lines += [f"- {k}: {v}" for k, v in cond.items()]
    lines += ["- weights: " + "; ".join(sorted({f"{r['model']}: {r['weights']}" for r in rows}))]
    if result["ssim_vs_devices_lost"]:
        lines += ["", "## SSIM vs devices lost", "", "| dataset | " + " | ".join(
            str(r["devices_lost"]) for r in next(iter(result["ssim_vs_devices_lost"].values()))) + " |"]  # fmt: skip
        for ds, ssim_rows in result["ssim_vs_devices_lost"].items():
            lines.append(f"| {ds} | " + " | ".join(f"{r['ssim']:.3f}" for r in ssim_rows) + " |")
    (out / "testbed.md").write_text("\n".join(lines) + "\n")

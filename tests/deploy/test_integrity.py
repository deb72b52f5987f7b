"""Issue 25: nothing acknowledged is lost, nobody acts as another device (real mosquitto on 127.0.0.1).

Each test states the property it checks: every acknowledged sample ends as a
map, no process ends, the victim device stays connected, a forged status
changes nothing, nothing non-finite is written, nothing is overwritten.
The attacker holds a leaked broker password but no HMAC key.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import epic_zoo.deploy.central as central_module
from epic_zoo.deploy.broker import Broker, BrokerLimits
from epic_zoo.deploy.central import PENDING, REPLAY_STATE, CentralNode
from epic_zoo.deploy.edge import EdgeNode
from epic_zoo.deploy.security import (
    ReplayGuard,
    sign_status,
    verify_status,
)
from epic_zoo.deploy.transport import MqttLink, Topics

from .conftest import NUM_DEVICES, needs_mosquitto, wait_until

pytestmark = needs_mosquitto
TOPICS = Topics()


def _central(bundle: Path, creds, broker, out: Path, deadline_s: float = 30.0, **kw) -> CentralNode:
    return CentralNode(
        bundle / "central", creds["central"], broker.address, out, deadline_s=deadline_s, **kw
    )


def _edges(bundle: Path, creds, broker, devices=range(NUM_DEVICES)) -> dict[int, EdgeNode]:
    return {k: EdgeNode(bundle, k, creds[f"device-{k}"], broker.address).connect() for k in devices}


def _send(edges: dict[int, EdgeNode], records: np.ndarray, sample: int) -> None:
    for edge in edges.values():
        edge.send(sample, records[sample % len(records)][..., edge.encoder.receivers])


def _flushed(edges: dict[int, EdgeNode], timeout_s: float = 10.0) -> bool:
    """Every message the edges sent is acknowledged by the broker."""
    return all(e.link.flush(timeout_s) for e in edges.values())


def _maps(out: Path) -> set[int]:
    return {int(p.stem) for p in (out / "maps").glob("*.npy")}


def _timing(out: Path) -> dict[int, dict]:
    path = out / "timing.jsonl"
    if not path.exists():
        return {}
    return {t["sample_id"]: t for t in map(json.loads, path.read_text().splitlines())}


def _close(*links) -> None:
    for link in links:
        link.close()


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ 1. one session per device
def test_another_devices_client_id_cannot_take_over_its_session(
    bundle, creds, broker, records, tmp_path, central_thread
) -> None:
    """A leaked device-2 password, client ids ``device-0`` and ``central`` (clean start):
    device 0 and the central stay connected, device 0 is not marked offline, and the
    samples queued for the central while it is away all become maps."""
    out = tmp_path / "out"
    node = _central(bundle, creds, broker, out)
    with central_thread(node):
        edges = _edges(bundle, creds, broker)
        assert wait_until(lambda: all(node.assembler.online), 5)
        victim_connects = edges[0].link.connects
        thief = MqttLink("device-0", creds["device-2"], broker.address, clean_start=True).connect()
        time.sleep(0.5)  # a takeover would drop device 0 now and publish its will
        assert edges[0].link.connected.is_set() and edges[0].link.connects == victim_connects
        assert node.link.connects == 1 and node.assembler.online[0]
        _close(thief)
    # central away: its persistent session queues every acknowledged sample
    edges[2].close()  # device 2 leaves (signed offline); the thief below uses its password
    del edges[2]
    for i in range(3):
        _send(edges, records, i)
    assert _flushed(edges)
    wiper = MqttLink("central", creds["device-2"], broker.address, clean_start=True).connect()
    _close(wiper)  # with the central's client id and a clean start: would wipe its queue
    node = _central(bundle, creds, broker, out, deadline_s=1.0)
    with central_thread(node):
        assert wait_until(lambda: _maps(out) == {0, 1, 2}, 10), _maps(out)
    assert all(_timing(out)[i]["present"] == [True, True, False] for i in range(3))
    _close(*edges.values())


# ------------------------------------------------------------ 2. statuses as trusted as data
def test_forged_or_replayed_offline_status_does_not_drop_a_device(
    bundle, creds, broker, records, tmp_path, central_thread
) -> None:
    """Unsigned, foreign-signed and replayed ``offline`` statuses (retained) for device 0:
    the central still waits for device 0, and the sample ends complete."""
    out = tmp_path / "out"
    captured: list[bytes] = []
    spy = MqttLink("operator", creds["operator"], broker.address, subscriptions=[TOPICS.status(0)])
    spy.client.on_message = lambda _c, _u, msg: captured.append(bytes(msg.payload))
    spy.connect()
    first = EdgeNode(bundle, 0, creds["device-0"], broker.address).connect()
    first.close()  # its signed "online" and "offline" pass the broker: the attacker records them
    assert wait_until(lambda: len(captured) >= 2, 5)
    spy.close()
    old_offline = next(
        m for m in captured if verify_status(creds["device-0"].key(), m)[0] == "offline"
    )

    node = _central(bundle, creds, broker, out, deadline_s=30.0)
    with central_thread(node):
        edges = _edges(bundle, creds, broker)  # device 0 back online (fresh signed status)
        assert wait_until(lambda: all(node.assembler.online), 5)
        leaked = MqttLink("x", creds["device-0"], broker.address).connect()  # its own topic
        bad_before = node.assembler.snapshot().get("bad_status", 0)
        for forged in (
            b"offline",  # unsigned
            sign_status(creds["device-1"].key(), "offline", 2**62),  # another device's key
            old_offline,  # a genuine but old status, replayed
        ):
            leaked.publish(TOPICS.status(0), forged, retain=True)
        assert leaked.flush(5)
        assert wait_until(lambda: node.assembler.snapshot()["bad_status"] == bad_before + 3, 5)
        _close(leaked)
        assert node.assembler.online == [True] * NUM_DEVICES
        _send({k: edges[k] for k in (1, 2)}, records, 0)
        time.sleep(1.0)
        assert _maps(out) == set()  # still waiting for device 0, not decoded without it
        _send({0: edges[0]}, records, 0)
        assert wait_until(lambda: 0 in _timing(out), 10)
        assert _maps(out) == {0} and _timing(out)[0]["present"] == [True] * NUM_DEVICES
        # a real crash still counts at once: device 1's own signed will
        edges[1].link.client.loop_stop()
        edges[1].link.client.socket().close()
        assert wait_until(lambda: node.assembler.online[1] is False, 10)
        del edges[1]
    _close(*edges.values())


def test_status_marks_survive_a_restart(tmp_path: Path) -> None:
    guard = ReplayGuard(tmp_path / "state.json")
    assert guard.fresh_status(0, 10) and not guard.fresh_status(0, 10)
    guard.save()
    again = ReplayGuard(tmp_path / "state.json")
    assert not again.fresh_status(0, 9) and again.fresh_status(0, 11)


# ------------------------------------------------------------------ 3. limits and floods
def test_broker_limits_are_written_and_validated(creds, tmp_path: Path) -> None:
    limits = BrokerLimits(max_queued_messages=500, max_inflight_messages=7, autosave_interval=3)
    broker = Broker(tmp_path / "b", creds, NUM_DEVICES, message_size_limit=4000, limits=limits)
    text = broker.config_path.read_text()
    for line in (
        "use_username_as_clientid true",
        "max_queued_messages 500",
        "max_inflight_messages 7",
        "autosave_on_changes false",
        "autosave_interval 3",
        "message_size_limit 4000",
        "max_packet_size 8096",
    ):
        assert f"\n{line}\n" in text, line
    for bad in (
        {"max_queued_messages": 0},
        {"max_inflight_messages": -1},
        {"autosave_interval": 1.5},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            BrokerLimits(**bad)
    with pytest.raises(ValueError, match="message_size_limit"):
        Broker(tmp_path / "c", creds, NUM_DEVICES, message_size_limit=0)


def _flood(
    link: MqttLink, topics: list[str], count: int, stop: threading.Event, qos: int | None = None
) -> int:
    """Publish junk of assorted sizes (QoS 0 and 1 unless ``qos``) round-robin on ``topics``."""
    rng = np.random.default_rng(1)
    sent = 0
    while sent < count and not stop.is_set():
        payload = rng.bytes(int(rng.integers(1, 200)))
        link.client.publish(
            topics[sent % len(topics)], payload, qos=sent % 2 if qos is None else qos
        )
        sent += 1
        if sent % 200 == 0:
            time.sleep(0.001)  # let paho's thread drain its queue
    return sent


def _junk_flood_while_samples_flow(
    bundle, creds, broker, records, tmp_path, central_thread, samples: int, junk: int
) -> None:
    out = tmp_path / "out"
    node = _central(bundle, creds, broker, out, deadline_s=1.0)
    with central_thread(node) as central:
        edges = _edges(bundle, creds, broker, devices=(0, 1, 2))
        edges.pop(2).close()  # device 2's board is lost; its password leaked
        assert wait_until(lambda: node.assembler.online == [True, True, False], 5)
        attacker = MqttLink("attacker", creds["device-2"], broker.address).connect()
        stop = threading.Event()
        topics = [TOPICS.data(2), TOPICS.status(2), TOPICS.data(0), TOPICS.status(0)]
        flood = threading.Thread(target=_flood, args=(attacker, topics, junk, stop), daemon=True)
        flood.start()
        for i in range(samples):
            _send(edges, records, i)
            time.sleep(0.01)
        assert _flushed(edges, 30)
        flood.join(60)
        stop.set()
        assert wait_until(lambda: len(_maps(out)) == samples, 30), sorted(_maps(out))
        counters = node.assembler.snapshot()
        assert central.thread.is_alive() and node.link.connected.is_set()
        assert counters["accepted"] == 2 * samples
        assert counters["bad_hmac"] + counters["corrupt"] > 0  # the junk did arrive
        assert node.assembler.online == [True, True, False]  # junk statuses changed nothing
        _close(attacker, *edges.values())
    assert {i: t["present"] for i, t in _timing(out).items()} == {
        i: [True, True, False] for i in range(samples)
    }
    assert "dropped" not in broker.log_path.read_text()


def test_junk_flood_with_a_leaked_password_loses_no_sample(
    bundle, creds, broker, records, tmp_path, central_thread
) -> None:
    _junk_flood_while_samples_flow(
        bundle, creds, broker, records, tmp_path, central_thread, samples=30, junk=3000
    )


@pytest.mark.slow
def test_long_junk_flood_loses_no_sample(
    bundle, creds, broker, records, tmp_path, central_thread
) -> None:
    _junk_flood_while_samples_flow(
        bundle, creds, broker, records, tmp_path, central_thread, samples=100, junk=60_000
    )


@pytest.mark.parametrize(
    "junk", [1_500, pytest.param(12_000, marks=pytest.mark.slow)], ids=["1500", "12000"]
)
def test_junk_flood_while_the_central_is_away_loses_no_sample(
    bundle, creds, broker, records, tmp_path, central_thread, junk
) -> None:
    """Junk QoS 1 messages queued for an absent central (more than mosquitto's default queue
    of 1000; the slow case more than the 10 000 used before) with real samples among them:
    every sample becomes a map and every junk message is counted."""
    out = tmp_path / "out"
    with central_thread(_central(bundle, creds, broker, out)):
        pass  # the central's persistent session exists; now it is away
    edges = _edges(bundle, creds, broker, devices=(0, 1))
    attacker = MqttLink("attacker", creds["device-2"], broker.address).connect()
    stop = threading.Event()
    flood = threading.Thread(
        target=_flood, args=(attacker, [TOPICS.data(2)], junk, stop, 1), daemon=True
    )
    flood.start()
    for i in range(10):
        _send(edges, records, i)
        time.sleep(0.02)
    flood.join(120)
    assert not flood.is_alive() and attacker.flush(60) and _flushed(edges)
    _close(attacker)
    node = _central(bundle, creds, broker, out, deadline_s=0.5)
    with central_thread(node):
        assert wait_until(lambda: len(_maps(out)) == 10, 60), sorted(_maps(out))

        def rejected() -> int:
            counters = node.assembler.snapshot()
            return counters["bad_hmac"] + counters["corrupt"]

        assert wait_until(lambda: rejected() == junk, 60), node.assembler.snapshot()
    assert "dropped" not in broker.log_path.read_text()
    _close(*edges.values())


def test_a_leaked_device_password_reads_nothing(bundle, creds, broker, records) -> None:
    """The ACL lets a device read triggers only: another device's data and statuses never reach it."""
    heard: list[str] = []
    spy = MqttLink("spy", creds["device-2"], broker.address, subscriptions=["#", TOPICS.data("+")])
    spy.client.on_message = lambda _c, _u, msg: heard.append(msg.topic)
    spy.connect()
    edges = _edges(bundle, creds, broker, devices=(0, 1))
    _send(edges, records, 0)
    assert _flushed(edges)
    operator = MqttLink("operator", creds["operator"], broker.address).connect()
    operator.publish(TOPICS.trigger, b'{"sample_id": 1}')
    assert operator.flush(5)
    assert wait_until(lambda: TOPICS.trigger in heard, 5)  # what it may read does arrive
    assert set(heard) == {TOPICS.trigger}
    _close(operator, spy, *edges.values())


@pytest.mark.parametrize("jump_s", [-3600.0, 3600.0], ids=["back", "forward"])
def test_deadlines_ignore_a_stepped_wall_clock(
    bundle, creds, broker, records, tmp_path, central_thread, monkeypatch, jump_s
) -> None:
    """The central's wall clock jumps an hour: a sample missing a device is still decoded
    after about its deadline (not an hour later), a complete one is not decoded early."""
    out = tmp_path / "out"
    node = _central(bundle, creds, broker, out, deadline_s=1.5)
    real_time = time.time
    offset = [0.0]
    monkeypatch.setattr(central_module.time, "time", lambda: real_time() + offset[0])
    with central_thread(node):
        edges = _edges(bundle, creds, broker)
        _send({k: edges[k] for k in (0, 1)}, records, 0)
        assert wait_until(lambda: node.assembler.snapshot()["accepted"] == 2, 5)
        offset[0] = jump_s
        start = time.monotonic()
        _send({2: edges[2]}, records, 1)  # sample 1 starts after the jump
        time.sleep(0.3)
        _send({k: edges[k] for k in (0, 1)}, records, 1)
        assert wait_until(lambda: {0, 1} <= set(_timing(out)), 10)
        assert time.monotonic() - start < 4.0
    timing = _timing(out)
    assert timing[0]["present"] == [True, True, False]
    assert timing[1]["present"] == [True] * NUM_DEVICES
    _close(*edges.values())


# ---------------------------------------------------------------------- 4. persistence
def test_central_stopped_mid_stream_completes_its_samples_after_restart(
    bundle, creds, broker, records, tmp_path, central_thread
) -> None:
    """Parts acknowledged before the central went away are on disk and complete their map."""
    out = tmp_path / "out"
    node = _central(bundle, creds, broker, out, deadline_s=30.0)
    with central_thread(node):
        edges = _edges(bundle, creds, broker)
        _send({k: edges[k] for k in (0, 1)}, records, 0)
        assert _flushed(edges)
        assert wait_until(lambda: len(list((out / PENDING).glob("*.part"))) == 2, 5)
    assert _maps(out) == set()  # not decoded partial at shutdown
    _send({2: edges[2]}, records, 0)  # the last part arrives while the central is away
    assert _flushed(edges)
    with central_thread(_central(bundle, creds, broker, out, deadline_s=30.0)):
        assert wait_until(lambda: _maps(out) == {0}, 10)
    assert _timing(out)[0]["present"] == [True] * NUM_DEVICES
    assert list((out / PENDING).glob("*.part")) == []
    _close(*edges.values())


@pytest.mark.slow
def test_central_process_killed_mid_stream_loses_nothing(
    bundle, creds, broker, records, tmp_path
) -> None:
    """SIGKILL on a real central process with parts in flight; the next one writes every map."""
    import subprocess
    import sys

    out = tmp_path / "out"
    args = [
        sys.executable, "-m", "epic_zoo.deploy", "central", "--bundle", str(bundle / "central"),
        "--credentials", str(tmp_path / "credentials/central.json"),
        "--broker", f"{broker.host}:{broker.port}", "--out", str(out), "--deadline", "60",
    ]  # fmt: skip
    central = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen = []
        op = MqttLink(
            "operator", creds["operator"], broker.address, subscriptions=[TOPICS.status("central")]
        )
        op.client.on_message = lambda _c, _u, msg: seen.append(bytes(msg.payload))
        op.connect()
        assert wait_until(lambda: b"online" in seen, 120)
        edges = _edges(bundle, creds, broker)
        for i in range(5):
            _send({k: edges[k] for k in (0, 1)}, records, i)
        assert _flushed(edges)
        assert wait_until(lambda: len(list((out / PENDING).glob("*.part"))) == 10, 30)
        central.send_signal(signal.SIGKILL)
        central.wait(10)
        for i in range(5):
            _send({2: edges[2]}, records, i)
        assert _flushed(edges)
        central = subprocess.Popen(
            [*args, "--samples", "5"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        assert central.wait(120) == 0, central.stderr.read()[-2000:]
        op.close()
    finally:
        if central.poll() is None:
            central.kill()
    assert _maps(out) == set(range(5))
    assert all(t["present"] == [True] * NUM_DEVICES for t in _timing(out).values())
    _close(*edges.values())


def test_broker_killed_loses_no_acknowledged_sample(
    bundle, creds, broker, records, tmp_path, central_thread
) -> None:
    """SIGKILL (no chance to save) right after the broker acknowledged: what it had not saved
    yet (it saves every 1-2 s) the edges send again after the reconnect."""
    out = tmp_path / "out"
    with central_thread(_central(bundle, creds, broker, out, deadline_s=30.0)):
        pass  # the central's persistent session exists ...
    created = time.time()
    db = broker.workdir / "persistence/mosquitto.db"  # ... and is saved (as an old one is)
    assert wait_until(lambda: db.exists() and db.stat().st_mtime > created + 0.01, 10)
    edges = _edges(bundle, creds, broker)
    for i in range(3):
        _send(edges, records, i)
    assert _flushed(edges)
    broker.process.send_signal(signal.SIGKILL)
    broker.process.wait(5)
    broker.process = None
    broker.start()
    assert wait_until(lambda: all(e.link.connected.is_set() for e in edges.values()), 10)
    with central_thread(_central(bundle, creds, broker, out, deadline_s=30.0)):
        assert wait_until(lambda: _maps(out) == {0, 1, 2}, 10), _maps(out)
    assert all(t["present"] == [True] * NUM_DEVICES for t in _timing(out).values())
    _close(*edges.values())


def test_edges_resend_what_a_killed_broker_had_not_saved(
    bundle, creds, records, tmp_path, central_thread
) -> None:
    """A broker that saves rarely (here: never between SIGTERM and SIGKILL) loses what it
    acknowledged; the edges send their last records again after the reconnect."""
    out = tmp_path / "out"
    limits = BrokerLimits(autosave_interval=100_000)
    with Broker(tmp_path / "broker", creds, NUM_DEVICES, limits=limits) as broker:
        with central_thread(_central(bundle, creds, broker, out, deadline_s=30.0)):
            pass
        broker.restart()  # SIGTERM: the central's session is saved
        edges = _edges(bundle, creds, broker)
        for i in range(3):
            _send(edges, records, i)
        assert _flushed(edges)
        broker.process.send_signal(signal.SIGKILL)
        broker.process.wait(5)
        broker.process = None
        broker.start()
        assert wait_until(lambda: all(e.link.connects == 2 for e in edges.values()), 10)
        assert _flushed(edges)
        assert all(e.stats["resent"] == 3 for e in edges.values())
        with central_thread(_central(bundle, creds, broker, out, deadline_s=30.0)):
            assert wait_until(lambda: _maps(out) == {0, 1, 2}, 10), _maps(out)
        _close(*edges.values())
    assert all(t["present"] == [True] * NUM_DEVICES for t in _timing(out).values())


def test_no_map_while_the_replay_state_cannot_be_saved(
    bundle, creds, broker, records, tmp_path, central_thread, monkeypatch
) -> None:
    """While saving the replay state fails, no map is written; once it works, the map is,
    with the replay state on disk covering it (a restarted central refuses its replay)."""
    out = tmp_path / "out"
    node = _central(bundle, creds, broker, out, deadline_s=30.0, retry_s=0.1)
    failing = threading.Event()
    failing.set()
    real_save = ReplayGuard.save

    def save(self, force=False):
        if failing.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, force)

    monkeypatch.setattr(ReplayGuard, "save", save)
    with central_thread(node):
        edges = _edges(bundle, creds, broker)
        _send(edges, records, 0)
        assert _flushed(edges)
        assert wait_until(lambda: node.assembler.snapshot()["accepted"] == NUM_DEVICES, 5)
        time.sleep(0.5)
        assert _maps(out) == set()
        assert json.loads((out / REPLAY_STATE).read_text())["high_water"] == {}  # not saved
        failing.clear()
        assert wait_until(lambda: _maps(out) == {0}, 5)
    state = json.loads((out / REPLAY_STATE).read_text())["high_water"]
    assert all(int(state[str(k)]) >= edges[k].counter._last - 10**6 for k in range(NUM_DEVICES))
    _close(*edges.values())


def test_missing_replay_state_is_refused_and_maps_are_never_overwritten(
    bundle, creds, broker, records, tmp_path, central_thread
) -> None:
    out = tmp_path / "out"
    with central_thread(_central(bundle, creds, broker, out, deadline_s=30.0)) as central:
        edges = _edges(bundle, creds, broker)
        _send(edges, records, 0)
        assert wait_until(lambda: central.node.written == 1, 10)
    complete = (out / "maps/00000000.npy").read_bytes()
    (out / REPLAY_STATE).unlink()
    with pytest.raises(ValueError, match="reset-replay-state") as err:
        _central(bundle, creds, broker, out)
    assert "\n" not in str(err.value)
    node = _central(bundle, creds, broker, out, deadline_s=0.5, reset_replay_state=True)
    with central_thread(node):
        _send({0: edges[0]}, records, 0)  # sample 0 again, one device only: would be partial
        assert wait_until(lambda: node.assembler.snapshot()["late"] == 1, 5)
        time.sleep(0.7)
    assert (out / "maps/00000000.npy").read_bytes() == complete
    _close(*edges.values())


def test_disk_full_loses_no_acknowledged_sample_and_leaves_no_temporary(
    bundle, creds, broker, records, tmp_path, central_thread, monkeypatch
) -> None:
    """Every fsync fails with ENOSPC for a while: parts are held unacknowledged, maps wait;
    afterwards every sample is a map, and no ``.tmp`` file is left anywhere."""
    out = tmp_path / "out"
    node = _central(bundle, creds, broker, out, deadline_s=30.0, retry_s=0.1)
    full = threading.Event()
    real_fsync = os.fsync

    def fsync(fd):
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(central_module.os, "fsync", fsync)
    with central_thread(node):
        edges = _edges(bundle, creds, broker)
        _send(edges, records, 0)
        assert wait_until(lambda: node.written == 1, 10)
        full.set()
        for i in (1, 2, 3):
            _send(edges, records, i)
        assert _flushed(edges)  # the broker acknowledged them: they must all become maps
        time.sleep(0.5)
        assert _maps(out) == {0} and _temporaries(out) == []
        assert node.link.connected.is_set()
        full.clear()
        assert wait_until(lambda: _maps(out) == {0, 1, 2, 3}, 10), _maps(out)
        assert node.assembler.snapshot()["received"] == 4 * NUM_DEVICES  # each held one once
    assert _temporaries(out) == []
    assert all(t["present"] == [True] * NUM_DEVICES for t in _timing(out).values())
    _close(*edges.values())


def test_map_write_failure_is_retried_without_temporaries(
    bundle, creds, broker, records, tmp_path, central_thread, monkeypatch
) -> None:
    out = tmp_path / "out"
    node = _central(bundle, creds, broker, out, deadline_s=30.0, retry_s=0.1)
    full = threading.Event()
    full.set()
    real_link = os.link

    def link(src, dst, **kw):  # the last step of a map write: the temporary is complete
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_link(src, dst, **kw)

    monkeypatch.setattr(central_module.os, "link", link)
    with central_thread(node):
        edges = _edges(bundle, creds, broker)
        _send(edges, records, 0)
        assert wait_until(lambda: len(list((out / PENDING).glob("*.part"))) == NUM_DEVICES, 5)
        time.sleep(0.3)
        assert _maps(out) == set()
        full.clear()
        assert wait_until(lambda: _maps(out) == {0}, 5)
    assert list((out / PENDING).glob("*.part")) == [] and _temporaries(out) == []
    _close(*edges.values())


# ------------------------------------------------------------------------- 5. bad input
def _raw_bundle(tmp_path: Path) -> Path:
    """A small centralised-baseline bundle: devices send raw records frames."""
    import torch

    from epic_zoo.data.contract import InputContract
    from epic_zoo.deploy.export import export_bundle
    from epic_zoo.models import create_model

    from .conftest import TIME_SAMPLES

    torch.manual_seed(0)
    model = create_model("inversionnet", time_samples=TIME_SAMPLES, dims=(8, 8, 8, 8, 16)).eval()
    return export_bundle(
        model, tmp_path / "raw", name="inv", contract=InputContract.make("flatvel-a", 4), trained=False,
        source="t",
    )  # fmt: skip


def test_signed_frame_full_of_nan_is_rejected_and_nothing_non_finite_is_written(
    creds, records, tmp_path
) -> None:
    from epic_zoo.deploy.central import Assembler, MapWriter
    from epic_zoo.deploy.export import read_manifest
    from epic_zoo.deploy.records import pack_records
    from epic_zoo.deploy.security import MessageCounter, new_key, sign

    bundle = _raw_bundle(tmp_path)
    manifest = read_manifest(bundle)
    keys = {k: new_key() for k in range(manifest["num_devices"])}
    asm = Assembler(manifest, keys, deadline_s=1.0)
    good = pack_records(
        records[0][..., manifest["receivers"][0]], device_id=0, sample_id=5,
        model_version=manifest["model_version"],
    )  # fmt: skip
    values_at = 31  # after the header: overwrite the amplitudes with NaN, fix the crc32
    frame = bytearray(good)
    frame[values_at:-4] = np.full((len(frame) - values_at - 4) // 4, np.nan, "<f4").tobytes()
    import struct
    import zlib

    struct.pack_into("<I", frame, len(frame) - 4, zlib.crc32(bytes(frame[:-4])))
    counter = MessageCounter()
    assert asm.offer("0", sign(keys[0], bytes(frame), counter.next()), 0.0) == "corrupt"
    assert asm.offer("0", sign(keys[0], good, counter.next()), 0.0) == "accepted"
    writer = MapWriter(tmp_path / "out")
    bad = np.ones((70, 70), np.float32)
    bad[3, 4] = np.inf
    with pytest.raises(ValueError, match="NaN/inf"):
        writer.save_map(1, bad)
    assert _maps(tmp_path / "out") == set() and _temporaries(tmp_path / "out") == []
    assert writer.save_map(1, np.ones((70, 70), np.float32))
    assert not writer.save_map(1, np.zeros((70, 70), np.float32))  # never over an existing map
    assert np.load(tmp_path / "out/maps/00000001.npy").max() == 1.0


def test_watch_folder_skips_fifo_huge_header_and_garbage_once(
    bundle, creds, records, tmp_path, caplog
) -> None:
    """A FIFO (never opened blocking), a header claiming 2**40 values, a truncated file and
    garbage: each skipped and logged once, nothing allocated from a header, the good record sent."""
    from epic_zoo.deploy.edge import FolderSource

    from .conftest import TIME_SAMPLES

    watch = tmp_path / "incoming"
    watch.mkdir()
    os.mkfifo(watch / "1.npy")
    with open(watch / "2.npy", "wb") as fh:  # header of a [5, 2**40, 70] float32 array, no data
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (5, 2**40, 70)}
        )
    (watch / "3.npy").write_bytes(os.urandom(4000))  # garbage
    np.save(watch / "4.npy", np.zeros((5, TIME_SAMPLES, 70), np.float64).astype(object))
    np.save(watch / "5.npy", records[5])
    truncated = (watch / "5.npy").read_bytes()[:-100]
    (watch / "6.npy").write_bytes(truncated)  # a writer that died mid-file
    receivers = EdgeNode(bundle, 0, creds["device-0"], ("127.0.0.1", 1)).encoder.receivers
    source = FolderSource(watch, receivers, time_lengths=(TIME_SAMPLES,), settle_s=0.2)
    found: list = []
    poller = threading.Thread(target=lambda: [found.extend(source.poll()) for _ in range(5)])
    with caplog.at_level("WARNING"):
        poller.start()
        poller.join(10)
        assert not poller.is_alive(), "poll blocked (the FIFO was opened blocking?)"
        time.sleep(0.3)  # the truncated file has not changed for settle_s now
        found.extend(source.poll())
        found.extend(source.poll())
    assert [i for i, _ in found] == [5]
    np.testing.assert_array_equal(found[0][1], records[5][..., receivers])
    assert source.skipped == 5
    for name in ("1.npy", "2.npy", "3.npy", "4.npy", "6.npy"):
        assert sum(name in r.getMessage() for r in caplog.records) == 1, name


def test_nested_trigger_cannot_kill_the_mqtt_thread(
    bundle, creds, broker, records, tmp_path
) -> None:
    """Deeply nested and oversized triggers over the real broker: logged, counted, skipped;
    the next valid trigger is still served."""
    data = tmp_path / "records.npy"
    np.save(data, records)
    from epic_zoo.deploy.edge import ReplaySource

    edge = EdgeNode(bundle, 0, creds["device-0"], broker.address, listen_triggers=True).connect()
    operator = MqttLink("operator", creds["operator"], broker.address).connect()
    for bad in (b"[" * 100_000 + b"]" * 100_000, b'{"sample_id": ' * 20, b"\xff" * 50):
        operator.publish(TOPICS.trigger, bad)
    operator.publish(TOPICS.trigger, b'{"sample_id": 2}')
    assert operator.flush(5)
    edge.run_triggered(ReplaySource(data, edge.encoder.receivers), 1, threading.Event())
    assert edge.stats["messages"] == 1 and edge.stats["bad_triggers"] == 3
    assert edge.link.client._thread is not None and edge.link.client._thread.is_alive()
    _close(operator, edge)


def test_a_raising_handler_never_ends_the_network_thread(creds, broker) -> None:
    got: list[bytes] = []

    def handler(message):
        if message.payload == b"boom":
            raise RecursionError("deep")
        got.append(bytes(message.payload))

    link = MqttLink(
        "device-0", creds["device-0"], broker.address, on_message=handler,
        subscriptions=[TOPICS.trigger],
    ).connect()  # fmt: skip
    operator = MqttLink("operator", creds["operator"], broker.address).connect()
    for payload in (b"boom", b"ok"):
        operator.publish(TOPICS.trigger, payload)
    assert wait_until(lambda: got == [b"ok"], 5)
    assert link.handler_errors == 1
    _close(operator, link)


# ----------------------------------------------------------------------- 6. command line
def test_provision_refuses_to_replace_secrets_without_force(tmp_path, capsys) -> None:
    from epic_zoo.deploy.__main__ import main

    out = tmp_path / "secrets"
    assert main(["provision", "--devices", "2", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["provision", "--devices", "2", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no key rotated
    assert main(["provision", "--devices", "2", "--out", str(out), "--force"]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} != before


@pytest.mark.parametrize(
    "args",
    [
        ["central", "--bundle", "b", "--credentials", "c", "--out", "o", "--deadline", "nan"],
        ["central", "--bundle", "b", "--credentials", "c", "--out", "o", "--deadline", "-1"],
        ["central", "--bundle", "b", "--credentials", "c", "--out", "o", "--samples", "0"],
        ["central", "--bundle", "b", "--credentials", "c", "--out", "o", "--broker", "h:70000"],
        ["edge", "--bundle", "b", "--credentials", "c", "--device", "-1", "--data", "d"],
        ["edge", "--bundle", "b", "--credentials", "c", "--device", "0", "--data", "d",
         "--interval", "inf"],
        ["broker", "--credentials", "c", "--devices", "0"],
        ["broker", "--credentials", "c", "--devices", "2", "--max-queued-messages", "0"],
        ["provision", "--devices", "x", "--out", "o"],
    ],
)  # fmt: skip
def test_every_numeric_setting_is_validated_with_one_line(args, capsys) -> None:
    from epic_zoo.deploy.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err


def _tampered_copy(bundle: Path, tmp_path: Path, edit) -> Path:
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(copy, manifest)
    for folder in (copy, copy / "central", *(copy / "devices").iterdir()):
        if (folder / "manifest.json").exists():
            (folder / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_bundle_asking_for_a_huge_model_is_refused_before_allocating(
    bundle, tmp_path, monkeypatch
) -> None:
    import torch

    import epic_zoo.deploy.export as export_module
    from epic_zoo.deploy.export import BundleError, CentralDecoder, EdgeEncoder

    def huge(_copy, manifest):
        manifest["model_kwargs"]["d_model"] = 2**20  # a 2**40-parameter fusion layer
        manifest["model_kwargs"]["latent_dim"] = 2**16

    copy = _tampered_copy(bundle, tmp_path, huge)
    devices: list[str] = []
    real = export_module.create_model

    def create_model(*args, **kwargs):
        devices.append(str(torch.get_default_device()))
        return real(*args, **kwargs)

    monkeypatch.setattr(export_module, "create_model", create_model)
    for load in (lambda: CentralDecoder(copy / "central"), lambda: EdgeEncoder(copy, 0)):
        with pytest.raises(BundleError, match="does not fit"):
            load()
    assert devices == ["meta", "meta"]  # only ever built where it costs no memory


def test_bundle_weights_of_another_dtype_are_refused(bundle, tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    from epic_zoo.deploy.export import BundleError, CentralDecoder
    from epic_zoo.weights.files import file_sha256

    def to_int8(copy, manifest):
        rel = manifest["files"]["central"]
        path = copy / rel
        weights = load_file(str(path))
        name = next(n for n, t in weights.items() if t.is_floating_point())
        weights[name] = weights[name].to(dtype=__import__("torch").int8)
        save_file(weights, str(path))
        (copy / "central" / path.name).write_bytes(path.read_bytes())
        manifest["sha256"][rel] = file_sha256(path)

    copy = _tampered_copy(bundle, tmp_path, to_int8)
    with pytest.raises(BundleError, match="I8"):
        CentralDecoder(copy / "central")


def test_export_and_stats_outputs_need_force(bundle, tmp_path, capsys) -> None:
    from epic_zoo.deploy.__main__ import main

    out = tmp_path / "b"
    assert main(["export", "epic-small", "--out", str(out), "--devices", "2"]) == 0
    manifest = (out / "manifest.json").read_bytes()
    capsys.readouterr()
    assert main(["export", "epic-small", "--out", str(out), "--devices", "3"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert (out / "manifest.json").read_bytes() == manifest  # untouched
    stats = tmp_path / "stats.json"
    stats.write_text("keep me")
    args = ["edge", "--bundle", str(bundle), "--device", "0", "--credentials", "c.json",
            "--data", str(tmp_path), "--stats", str(stats)]  # fmt: skip
    assert main(args) == 1
    assert "--force" in capsys.readouterr().err and stats.read_text() == "keep me"


def test_nested_manifest_credentials_and_fifo_data_are_one_line_errors(
    bundle, creds, tmp_path, capsys
) -> None:
    import shutil

    from epic_zoo.deploy.__main__ import main

    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    broken = tmp_path / "bundle"
    shutil.copytree(bundle / "central", broken)
    (broken / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    cred = str(tmp_path / "credentials/central.json")
    fifo = tmp_path / "records.npy"
    os.mkfifo(fifo)
    dev = str(tmp_path / "credentials/device-0.json")
    for args in (
        ["central", "--bundle", str(bundle / "central"), "--credentials", str(nested),
         "--out", str(tmp_path / "o1")],
        ["central", "--bundle", str(broken), "--credentials", cred, "--out", str(tmp_path / "o2")],
        ["edge", "--bundle", str(bundle), "--device", "0", "--credentials", dev,
         "--data", str(fifo), "--broker", "127.0.0.1:1"],
    ):  # fmt: skip
        result: list[int] = []
        runner = threading.Thread(target=lambda a=args, r=result: r.append(main(a)), daemon=True)
        runner.start()
        runner.join(30)
        assert not runner.is_alive(), f"hangs: {args[0]}"
        assert result == [1]
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: "), err

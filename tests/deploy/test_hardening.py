"""Issue 13: forged headers, oversize messages, replays across restarts, secrets modes, bad edge input.

The central's checks are driven in-process (:class:`Assembler`, no broker)
where that suffices; the end-to-end cases run a real mosquitto on
127.0.0.1 and the real :class:`CentralNode` / :class:`EdgeNode`.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import epic_zoo.deploy.central as central_module
from epic_zoo.deploy.broker import Broker, default_size_limit, size_limit, write_auth_files
from epic_zoo.deploy.central import Assembler, CentralNode, message_limits
from epic_zoo.deploy.edge import EdgeNode, FolderSource, ReplaySource, parse_trigger
from epic_zoo.deploy.export import EdgeEncoder, read_manifest
from epic_zoo.deploy.records import pack_records, unpack_records
from epic_zoo.deploy.security import (
    COUNTER_BYTES,
    TAG_BYTES,
    MessageCounter,
    ReplayGuard,
    new_key,
    provision,
    sign,
)
from epic_zoo.deploy.transport import MqttLink, Topics
from epic_zoo.models.codec import PayloadError, unpack_payload

from .conftest import NUM_DEVICES, TIME_SAMPLES, needs_mosquitto, wait_until

COUNTER = MessageCounter()


def _forged_latent(shape: tuple[int, ...], *, scale: float, bits: int = 8, body: int = 0) -> bytes:
    """A latent payload with any header (valid magic, version and crc32), ``body`` bytes of codes."""
    head = struct.pack("<4sBBBHQIf", b"EPZL", 1, bits, len(shape), 0, 0, 0, scale)
    data = head + struct.pack(f"<{len(shape)}I", *shape) + bytes(body)
    return data + struct.pack("<I", zlib.crc32(data))


FORGED = {
    "scale 0": _forged_latent((4,), scale=0.0, body=4),
    "scale NaN": _forged_latent((4,), scale=math.nan, body=4),
    "scale -1": _forged_latent((4,), scale=-1.0, body=4),
    "scale inf": _forged_latent((4,), scale=math.inf, body=4),
    # products beyond int64: 2**64 wrapped to 0 before, so an empty body "matched" the shape
    "shape huge": _forged_latent((2**32 - 1, 2**32 - 1, 2**32 - 1), scale=1.0),
    "shape 2**64": _forged_latent((2**16, 2**16, 2**16, 2**16), scale=1.0),
}


@pytest.mark.parametrize("name", list(FORGED))
def test_codec_rejects_crafted_headers_with_payload_error(name: str) -> None:
    with pytest.raises(PayloadError):
        unpack_payload(FORGED[name])


def test_records_frame_with_overflowing_shape_is_a_payload_error() -> None:
    frame = bytearray(pack_records(np.zeros((1, 1, 1)), device_id=0, sample_id=0, model_version=0))
    struct.pack_into("<3I", frame, 19, 2**32 - 1, 2**32 - 1, 2**32 - 1)
    crc = zlib.crc32(bytes(frame[:-4]))
    struct.pack_into("<I", frame, len(frame) - 4, crc)
    with pytest.raises(PayloadError):
        unpack_records(bytes(frame))


@pytest.fixture()
def assembler(bundle: Path) -> tuple[Assembler, dict[int, bytes]]:
    keys = {k: new_key() for k in range(NUM_DEVICES)}
    return Assembler(read_manifest(bundle), keys, deadline_s=1.0), keys


def test_forged_headers_are_dropped_before_any_parsing(assembler, monkeypatch) -> None:
    asm, keys = assembler
    calls: list[bytes] = []
    real_unpack = central_module.unpack_payload
    monkeypatch.setattr(
        central_module, "unpack_payload", lambda data: calls.append(data) or real_unpack(data)
    )
    for name, payload in FORGED.items():
        zero_tag = payload + bytes(COUNTER_BYTES + TAG_BYTES)  # a leaked password, no key
        assert asm.offer("0", zero_tag, 0.0) == "bad_hmac", name
    assert calls == []  # nothing was parsed before the tag verified
    for name, payload in FORGED.items():  # a device with the key but a broken encoder
        assert asm.offer("0", sign(keys[0], payload, COUNTER.next()), 0.0) == "corrupt", name
    assert asm.counters["bad_hmac"] == asm.counters["corrupt"] == len(FORGED)
    assert asm.counters["accepted"] == 0 and asm.pending == {}


def test_oversize_messages_are_dropped_before_the_tag_is_computed(
    assembler, monkeypatch, bundle
) -> None:
    asm, keys = assembler
    limits = message_limits(read_manifest(bundle))
    assert asm.max_bytes == limits
    monkeypatch.setattr(central_module, "verify", lambda *a: pytest.fail("tag computed"))
    for k in range(NUM_DEVICES):
        assert asm.offer(str(k), bytes(limits[k] + 1), 0.0) == "oversize"
        assert asm.offer(str(k), bytes(100 * limits[k]), 0.0) == "oversize"
    assert asm.counters["oversize"] == 2 * NUM_DEVICES


def test_replay_guard_persists_its_windows(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    guard = ReplayGuard(path, window=3)
    assert guard.check(0, 5) == "fresh"
    guard.advance(0, 5)
    guard.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ReplayGuard(path, window=3)  # a restarted central
    # 4 was never accepted: a message overtaken by a later one is still taken (once)
    assert [again.check(0, c) for c in (4, 5, 6)] == ["fresh", "duplicate", "fresh"]
    for c in (4, 6, 7, 8):
        again.advance(0, c)
    # the window holds 6, 7, 8: 5 and 4 were accepted, 3 is at or below the forgotten floor
    assert [again.check(0, c) for c in (3, 4, 5, 6, 8, 9)] == [
        "replayed", "replayed", "replayed", "replayed", "duplicate", "fresh",
    ]  # fmt: skip
    assert again.check(1, 0) == "fresh"
    path.write_text(json.dumps({"format": "epic_zoo.deploy.replay/1", "high_water": {"0": 9}}))
    old = ReplayGuard(path)  # a state written before windows: nothing below the mark
    assert [old.check(0, c) for c in (8, 9, 10)] == ["replayed", "duplicate", "fresh"]
    path.write_text("{not json")
    with pytest.raises(ValueError, match="state.json.*unreadable"):
        ReplayGuard(path)


def test_secrets_are_0600_also_over_world_readable_files(tmp_path: Path) -> None:
    out = tmp_path / "secrets"
    out.mkdir()
    for user in ("device-0", "device-1", "central", "operator"):
        (out / f"{user}.json").write_text("{}")
        os.chmod(out / f"{user}.json", 0o644)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(FileExistsError, match="--force"):
        provision(2, out)  # never replaces keys unasked
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    old_umask = os.umask(0)  # a permissive umask must not widen the mode either
    try:
        creds = provision(2, out, overwrite=True)
    finally:
        os.umask(old_umask)
    for user in creds:
        assert stat.S_IMODE((out / f"{user}.json").stat().st_mode) == 0o600, user
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


@needs_mosquitto
def test_broker_password_file_is_0600_when_rewritten(tmp_path: Path) -> None:
    creds = provision(1, tmp_path / "secrets")
    passwd = tmp_path / "broker/passwd"
    passwd.parent.mkdir()
    passwd.write_text("old:entry\n")
    os.chmod(passwd, 0o644)
    write_auth_files(passwd.parent, creds, Topics(), 1)
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600


def test_trigger_parsing_rejects_out_of_range_ids() -> None:
    assert parse_trigger(b'{"sample_id": 3}') == 3
    assert parse_trigger(json.dumps({"sample_id": 2**64 - 1}).encode()) == 2**64 - 1
    for bad in (-1, 2**64, 1.5, True, "3", None):
        with pytest.raises(ValueError, match="sample_id"):
            parse_trigger(json.dumps({"sample_id": bad}).encode())
    for bad in (b"\xff\xfe", b"[1]", b"{}", b"nonsense"):
        with pytest.raises(ValueError):
            parse_trigger(bad)


class _Sent:
    """Stands in for the MQTT link: records what the edge publishes."""

    def __init__(self) -> None:
        import threading

        self.messages: list[bytes] = []
        self.connected = threading.Event()
        self.connected.set()

    def publish(self, topic: str, message: bytes, props=None) -> None:
        self.messages.append(message)


def _edge(bundle: Path, creds, device: int = 0, **kwargs) -> tuple[EdgeNode, _Sent]:
    node = EdgeNode(bundle, device, creds[f"device-{device}"], ("127.0.0.1", 1), **kwargs)
    node.link = _Sent()  # type: ignore[assignment]
    return node, node.link


def _sample_ids(sent: _Sent) -> list[int]:
    return [unpack_payload(m[: -COUNTER_BYTES - TAG_BYTES])[0]["sample_id"] for m in sent.messages]


def test_edge_skips_bad_triggers_and_keeps_serving(bundle, creds, records, tmp_path) -> None:
    import threading

    node, sent = _edge(bundle, creds, listen_triggers=True)
    data = tmp_path / "records.npy"
    np.save(data, records)
    for sample_id in (-1, 2**64, 3):
        node._on_trigger(SimpleNamespace(payload=json.dumps({"sample_id": sample_id}).encode()))
    node._on_trigger(SimpleNamespace(payload=b"\xff not json"))
    node.run_triggered(ReplaySource(data, node.encoder.receivers), 1, threading.Event())
    assert _sample_ids(sent) == [3]
    assert node.stats["bad_triggers"] == 3


def test_edge_skips_bad_files_in_its_watch_folder(bundle, creds, records, tmp_path) -> None:
    import threading

    node, sent = _edge(bundle, creds)
    watch = tmp_path / "incoming"
    watch.mkdir()
    np.save(watch / "1.npy", np.zeros((5, TIME_SAMPLES, 3), dtype=np.float32))  # wrong receivers
    np.save(watch / "2.npy", np.zeros((7,), dtype=np.float32))  # not a record at all
    np.save(watch / "3.npy", records[3][:, :5])  # wrong time length: fails in the encoder
    nan = records[4].copy()
    nan[0, 0, 0] = np.nan
    np.save(watch / "4.npy", nan)  # NaN: the latent cannot be sent
    np.save(watch / f"{2**64}.npy", records[0])  # id beyond uint64
    np.save(watch / "5.npy", records[5])  # the one good record
    source = FolderSource(watch, node.encoder.receivers)
    stop = threading.Event()
    node.run_folder(source, max_samples=3, stop=stop)
    assert _sample_ids(sent) == [5]
    assert node.stats["bad_records"] == 5
    assert node.summary()["bad_records"] == 5


# ------------------------------------------------------------- end to end, real mosquitto
def _central(bundle: Path, creds, broker, out: Path, deadline_s: float = 5.0) -> CentralNode:
    return CentralNode(
        bundle / "central", creds["central"], broker.address, out, deadline_s=deadline_s
    )


def _signed(edge: EdgeEncoder, key: bytes, records: np.ndarray, sample: int) -> bytes:
    return sign(key, edge.payload(records[sample][..., edge.receivers], sample), COUNTER.next())


def _summary(out: Path) -> dict:
    path = out / "summary.json"
    return json.loads(path.read_text())["counters"] if path.exists() else {}


@needs_mosquitto
def test_central_survives_forged_messages_and_reports_them_at_once(
    bundle, creds, broker, records, tmp_path, central_thread, monkeypatch
) -> None:
    topics = Topics()
    out = tmp_path / "out"
    node = _central(bundle, creds, broker, out)
    real_admit = node.assembler.admit

    def admit(label, message):  # one message makes the assembler itself fail
        if message == b"boom" * 10:
            raise RuntimeError("unexpected")
        return real_admit(label, message)

    monkeypatch.setattr(node.assembler, "admit", admit)
    with central_thread(node) as central:
        leaked = MqttLink("device-0", creds["device-0"], broker.address).connect()
        for payload in FORGED.values():
            leaked.publish(topics.data(0), payload + bytes(COUNTER_BYTES + TAG_BYTES))
        leaked.publish(topics.data(0), b"boom" * 10)
        assert leaked.flush(5)
        assert wait_until(lambda: _summary(out).get("bad_hmac") == len(FORGED), 10)
        assert _summary(out)["error"] == 1 and central.node.written == 0  # no map needed
        assert central.thread.is_alive()
        encoders = [EdgeEncoder(bundle, k) for k in range(NUM_DEVICES)]
        for k in range(NUM_DEVICES):
            message = _signed(encoders[k], creds[f"device-{k}"].key(), records, 0)
            link = leaked if k == 0 else MqttLink(f"d{k}", creds[f"device-{k}"], broker.address)
            if k:
                link.connect()
            link.publish(topics.data(k), message)
            assert link.flush(5)
            if k:
                link.close()
        assert wait_until(lambda: central.node.written == 1, 10)
        leaked.close()
    assert (out / "maps/00000000.npy").exists()


@needs_mosquitto
def test_replayed_message_is_rejected_by_a_restarted_central(
    bundle, creds, broker, records, tmp_path, central_thread
) -> None:
    topics = Topics()
    out = tmp_path / "out"
    encoders = [EdgeEncoder(bundle, k) for k in range(NUM_DEVICES)]
    links = {
        k: MqttLink(f"device-{k}", creds[f"device-{k}"], broker.address).connect()
        for k in range(NUM_DEVICES)
    }
    captured = {}
    with central_thread(_central(bundle, creds, broker, out)) as central:
        for sample in (0, 1):
            for k, link in links.items():
                captured[k, sample] = _signed(
                    encoders[k], creds[f"device-{k}"].key(), records, sample
                )
                link.publish(topics.data(k), captured[k, sample])
        assert wait_until(lambda: central.node.written == 2, 10)
    before = (out / "maps/00000000.npy").read_bytes()
    os.utime(out / "maps/00000000.npy", (0, 0))
    with central_thread(_central(bundle, creds, broker, out)) as central:  # restarted
        for k, link in links.items():
            link.publish(topics.data(k), captured[k, 0])  # the attacker's recording
        counters = central.node.assembler.counters
        assert wait_until(lambda: counters["replayed"] == NUM_DEVICES, 10)
        assert counters["accepted"] == 0 and central.node.assembler.pending == {}
        # genuine traffic with fresh counters still flows after the replay
        for k, link in links.items():
            link.publish(
                topics.data(k), _signed(encoders[k], creds[f"device-{k}"].key(), records, 2)
            )
        assert wait_until(lambda: central.node.written == 1, 10)
    assert (out / "maps/00000000.npy").read_bytes() == before
    assert (out / "maps/00000000.npy").stat().st_mtime == 0  # not rewritten
    for link in links.values():
        link.close()


@needs_mosquitto
def test_broker_refuses_messages_over_the_bundles_size_limit(
    bundle, creds, records, tmp_path, central_thread
) -> None:
    limit = size_limit(max(message_limits(read_manifest(bundle))))
    assert limit < default_size_limit()
    topics = Topics()
    with Broker(tmp_path / "broker", creds, NUM_DEVICES, message_size_limit=limit) as broker:
        assert f"message_size_limit {limit}\n" in broker.config_path.read_text()
        node = _central(bundle, creds, broker, tmp_path / "out")
        with central_thread(node) as central:
            # a leaked password: the broker refuses the message (paho 2.x cannot parse the refusal,
            # drops the connection and retries: the sender loops, the central never sees it)
            attacker = MqttLink("attacker", creds["device-0"], broker.address).connect()
            attacker.publish(topics.data(0), bytes(limit + 1))
            refused = wait_until(lambda: attacker.connects >= 2, 5)
            attacker.client.loop_stop()
            attacker.client.disconnect()
            assert refused, "the broker accepted a message over message_size_limit"
            link = MqttLink("device-0", creds["device-0"], broker.address).connect()
            link.publish(topics.data(0), bytes(limit))  # within the limit: on to the central
            assert link.flush(5)
            counters = central.node.assembler.counters
            assert wait_until(lambda: counters["oversize"] == 1, 10)
            assert counters["received"] == 1
            link.close()

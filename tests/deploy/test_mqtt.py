"""Edge and central nodes over a real mosquitto broker on 127.0.0.1: results, faults, authentication."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from epic_zoo.data.transforms import denormalize_velocity, normalize_seismic
from epic_zoo.deploy.central import CentralNode
from epic_zoo.deploy.edge import EdgeNode
from epic_zoo.deploy.security import Credentials, MessageCounter, sign
from epic_zoo.deploy.transport import ConnectRefused, MqttLink, Topics

from .conftest import NUM_DEVICES, needs_mosquitto, wait_until

pytestmark = needs_mosquitto
COUNTER = MessageCounter()


def _central(bundle: Path, creds, broker, out: Path, deadline_s: float = 5.0) -> CentralNode:
    return CentralNode(
        bundle / "central", creds["central"], broker.address, out, deadline_s=deadline_s
    )


def _edges(bundle: Path, creds, broker, devices=range(NUM_DEVICES)) -> dict[int, EdgeNode]:
    return {k: EdgeNode(bundle, k, creds[f"device-{k}"], broker.address).connect() for k in devices}


def _send(edges: dict[int, EdgeNode], records: np.ndarray, sample: int) -> None:
    for edge in edges.values():
        edge.send(sample, records[sample][..., edge.encoder.receivers])


def _timing(out: Path) -> dict[int, dict]:
    path = out / "timing.jsonl"
    if not path.exists():
        return {}
    return {t["sample_id"]: t for t in map(json.loads, path.read_text().splitlines())}


def _crash(edge: EdgeNode) -> None:
    """The device process dies: its TCP connection drops without an MQTT DISCONNECT."""
    edge.link.client.loop_stop()
    edge.link.client.socket().close()


def test_maps_over_the_broker_equal_the_in_process_model(
    bundle, small_epic, creds, broker, records, tmp_path, central_thread
) -> None:
    out = tmp_path / "out"
    with central_thread(_central(bundle, creds, broker, out)) as central:
        edges = _edges(bundle, creds, broker)
        for i in range(3):
            _send(edges, records, i)
        assert wait_until(lambda: central.node.written == 3)
        for edge in edges.values():
            edge.close()
    timing = _timing(out)
    for i in range(3):
        x = normalize_seismic(torch.from_numpy(records[i]), "flatvel-a")[None]
        with torch.inference_mode():
            expected = denormalize_velocity(small_epic(x))[0, 0].numpy()
        np.testing.assert_array_equal(np.load(out / f"maps/{i:08d}.npy"), expected)
        assert timing[i]["partial"] is False and timing[i]["latency_s"] > 0
    assert central.result["counters"]["accepted"] == 3 * NUM_DEVICES
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counters"]["complete"] == 3


def test_unauthenticated_clients_are_refused(creds, broker) -> None:
    stranger = Credentials("device-0", "wrong password", "device", 0, creds["device-0"].hmac_key)
    with pytest.raises(ConnectRefused, match="refused"):
        MqttLink("intruder", stranger, broker.address).connect(timeout_s=5)
    nobody = Credentials("nobody", "x", "device")
    with pytest.raises(ConnectRefused):
        MqttLink("intruder-2", nobody, broker.address).connect(timeout_s=5)


def test_forged_and_foreign_senders_are_dropped(
    bundle, creds, broker, records, tmp_path, central_thread
) -> None:
    topics = Topics()
    with central_thread(
        _central(bundle, creds, broker, tmp_path / "out", deadline_s=0.5)
    ) as central:
        edges = _edges(bundle, creds, broker)
        payload = edges[0].encoder.payload(records[0][..., edges[0].encoder.receivers], 0)
        # device-1's login publishing on device 0's topic: the broker's ACL drops it
        imposter = MqttLink("imposter", creds["device-1"], broker.address).connect()
        imposter.publish(topics.data(0), sign(creds["device-1"].key(), payload, COUNTER.next()))
        assert imposter.flush(5)
        # device 0's own login but a key that is not device 0's: the central's HMAC check drops it
        edges[0].link.publish(
            topics.data(0), sign(creds["device-2"].key(), payload, COUNTER.next())
        )
        _send(edges, records, 1)  # and the genuine traffic still flows
        assert wait_until(lambda: central.node.written == 1)
        counters = central.node.assembler.counters
        assert counters["bad_hmac"] == 1
        assert counters["received"] == 1 + NUM_DEVICES  # the ACL-dropped message never arrived
        assert 0 not in _timing(tmp_path / "out")
        imposter.close()
        for edge in edges.values():
            edge.close()


def test_duplicated_reordered_and_corrupted_messages(
    bundle, creds, broker, records, tmp_path, central_thread
) -> None:
    topics = Topics()
    out = tmp_path / "out"
    with central_thread(_central(bundle, creds, broker, out, deadline_s=10)) as central:
        edges = _edges(bundle, creds, broker)

        def message(k: int, i: int) -> bytes:  # signed when sent, as the device does
            e = edges[k]
            return sign(
                e.key, e.encoder.payload(records[i][..., e.encoder.receivers], i), e.counter.next()
            )

        counters = central.node.assembler.counters
        sent: list[tuple[int, bytes]] = []
        for k, i in [(0, 1), (0, 0), (1, 0), (1, 1), (2, 1)]:
            sent.append((k, message(k, i)))
            if (k, i) in ((0, 0), (1, 1)):
                sent.append((k, sent[-1][1]))  # redelivered (QoS 1 at least once): duplicate
        corrupted = bytearray(message(2, 0))
        corrupted[45] ^= 0x01  # altered in transit: the tag fails
        sent += [(2, bytes(corrupted)), (2, message(2, 0))]
        for n, (k, msg) in enumerate(sent, start=1):
            edges[k].link.publish(topics.data(k), msg)
            # messages of different clients may overtake each other: keep the order fixed
            assert wait_until(lambda n=n: counters["received"] == n, 5)
        assert wait_until(lambda: central.node.written == 2)
        assert counters["duplicate"] == 2 and counters["bad_hmac"] == 1
        assert counters["reordered"] == 2 and counters["complete"] == 2  # devices 0 and 2
        for edge in edges.values():
            edge.close()


def test_dead_stalled_and_restarted_devices(
    bundle, creds, broker, records, tmp_path, central_thread
) -> None:
    out = tmp_path / "out"
    with central_thread(_central(bundle, creds, broker, out, deadline_s=1.0)) as central:
        edges = _edges(bundle, creds, broker)
        # stalled device 2: sample 0 is decoded at the deadline without it, its late message rejected
        _send({k: edges[k] for k in (0, 1)}, records, 0)
        assert wait_until(lambda: 0 in _timing(out), 5)
        assert _timing(out)[0]["present"] == [True, True, False]
        _send({2: edges[2]}, records, 0)
        assert wait_until(lambda: central.node.assembler.counters["late"] == 1, 5)
        # device 1 dies: its last will marks it offline, the central stops waiting for it
        _crash(edges.pop(1))
        assert wait_until(lambda: central.node.assembler.online[1] is False, 5)
        start = time.monotonic()
        _send(edges, records, 1)
        assert wait_until(lambda: 1 in _timing(out), 5)
        assert time.monotonic() - start < 0.9  # decoded before the 1 s deadline
        assert _timing(out)[1]["present"] == [True, False, True]
        # device 1 restarts and rejoins: sample 2 is complete again
        edges[1] = EdgeNode(bundle, 1, creds["device-1"], broker.address).connect()
        assert wait_until(lambda: central.node.assembler.online[1], 5)
        _send(edges, records, 2)
        assert wait_until(lambda: 2 in _timing(out), 5)
        assert _timing(out)[2]["partial"] is False
        for edge in edges.values():
            edge.close()
    counters = central.result["counters"]
    assert counters["partial"] == 2 and counters["complete"] == 1


def test_broker_restart_loses_no_acknowledged_record(
    bundle, creds, broker, records, tmp_path, central_thread
) -> None:
    out = tmp_path / "out"
    edges = _edges(bundle, creds, broker)
    with central_thread(_central(bundle, creds, broker, out)):
        pass  # the central's persistent session (and subscription) now exists on the broker
    _send(edges, records, 0)  # central away: the broker acknowledges and queues
    assert all(e.link.flush(5) for e in edges.values())
    broker.restart()  # SIGTERM: mosquitto saves sessions and queued messages
    _send(edges, records, 1)  # sent while the edges are still reconnecting: paho keeps them
    assert wait_until(lambda: all(e.link.connected.is_set() for e in edges.values()), 10)
    assert all(e.link.flush(10) for e in edges.values())
    with central_thread(_central(bundle, creds, broker, out)) as central:
        assert wait_until(lambda: central.node.written == 2, 10)
    assert {i: t["partial"] for i, t in _timing(out).items()} == {0: False, 1: False}
    for edge in edges.values():
        edge.close()


def _make_certificates(folder: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed: cannot make test certificates")
    ca_key, ca, key, csr, cert = (
        folder / n for n in ("ca.key", "ca.crt", "s.key", "s.csr", "s.crt")
    )
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for args in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
         "-keyout", ca_key, "-out", ca],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "1",
         "-out", cert, "-extfile", ext],
    ):  # fmt: skip
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)
    return {"cafile": ca, "certfile": cert, "keyfile": key}


def test_tls_listener(bundle, creds, records, tmp_path, central_thread) -> None:
    from epic_zoo.deploy.broker import Broker

    tls = _make_certificates(tmp_path)
    with Broker(tmp_path / "tls-broker", creds, NUM_DEVICES, tls=tls) as broker:
        with pytest.raises((TimeoutError, ConnectRefused)):  # plain MQTT on a TLS port: no CONNACK
            MqttLink("plain", creds["operator"], broker.address).connect(timeout_s=1)
        node = CentralNode(
            bundle / "central",
            creds["central"],
            broker.address,
            tmp_path / "out",
            ca_certs=tls["cafile"],
        )
        with central_thread(node):
            edges = {
                k: EdgeNode(
                    bundle, k, creds[f"device-{k}"], broker.address, ca_certs=tls["cafile"]
                ).connect()
                for k in range(NUM_DEVICES)
            }
            _send(edges, records, 0)
            assert wait_until(lambda: node.written == 1)
            for edge in edges.values():
                edge.close()

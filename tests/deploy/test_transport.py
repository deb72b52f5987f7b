"""Topics, MQTT packet accounting and sender-side link shaping (no broker)."""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from pathlib import Path

import pytest

from epic_zoo.deploy.broker import acl_text
from epic_zoo.deploy.transport import (
    LinkShaper,
    SharedTokenBucket,
    Topics,
    publish_packet_bytes,
    publish_properties,
)
from epic_zoo.hardware.profiles import get_link
from epic_zoo.hardware.shaping import packet_charges


def test_topics_and_acl() -> None:
    topics = Topics("site-a")
    assert topics.data(3) == "site-a/data/3" and topics.device_of("site-a/data/3") == "3"
    assert topics.device_of("site-a/status/3") is None
    with pytest.raises(ValueError, match="prefix"):
        Topics("a/#")
    acl = acl_text(topics, 2)
    block = acl.split("user device-1\n", 1)[1].split("\n\n", 1)[0]
    assert block.splitlines() == [
        "topic write site-a/data/1",
        "topic write site-a/status/1",
        "topic read site-a/ctl/trigger",
    ]


def test_publish_packet_bytes_counts_mqtt5_framing() -> None:
    # fixed header 1 + remaining length 1, topic 2 + 6, packet id 2, properties length 1, payload 100
    assert publish_packet_bytes("epic/x", 100, None) == 1 + 1 + 8 + 2 + 1 + 100
    props = publish_properties({"t": "1"})
    # user property: id 1 + (2 + 1) + (2 + 1) = 7 bytes, plus its length byte
    assert publish_packet_bytes("epic/x", 100, props) == 1 + 1 + 8 + 2 + 8 + 100
    assert publish_packet_bytes("epic/x", 200, None) == 1 + 2 + 8 + 2 + 1 + 200  # 2-byte length


def _consume(path: str, rate: float, capacity: float, charges: list[float]) -> None:
    bucket = SharedTokenBucket(path, rate, capacity)
    for c in charges:
        bucket.consume(c)


def test_shared_bucket_paces_two_processes_together(tmp_path: Path) -> None:
    rate, charge, n = 200_000.0, 2_000.0, 20  # each process: 20 x 2 kB at 200 kB/s
    path = str(tmp_path / "bucket")
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_consume, args=(path, rate, charge, [charge] * n)) for _ in range(2)
    ]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join(10)
    elapsed = time.perf_counter() - start
    assert all(p.exitcode == 0 for p in procs)
    # 80 kB through one 200 kB/s bucket: 0.4 s together (each alone would take 0.2 s)
    assert 0.38 <= elapsed < 1.5


def test_link_shaper_charges_airtime_then_one_way_delay(tmp_path: Path) -> None:
    link = dataclasses.replace(
        get_link("4g"), bandwidth_bps=8e6, rtt_s=0.1
    )  # 1 MB/s, 50 ms one way
    shaper = LinkShaper(link)
    sent: list[float] = []
    start = time.perf_counter()
    shaper.send(50_000, lambda: sent.append(time.perf_counter() - start))
    airtime = sum(c for _, c in packet_charges(50_000, link)) / 1e6
    shaper.close()
    assert len(sent) == 1
    assert airtime + 0.05 - 0.005 <= sent[0] < airtime + 0.05 + 0.3
    assert shaper.wire_bytes(50_000) == link.wire_bytes(50_000)
    with pytest.raises(ValueError, match="shared medium"):
        LinkShaper(get_link("wifi"))
    LinkShaper(get_link("wifi"), tmp_path / "b").close()

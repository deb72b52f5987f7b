"""Validate the simulator's transfer model with real bytes over loopback TCP.

A spawned sender process opens one TCP connection per end device and paces
every packet through a token bucket that charges what the packet costs on the
emulated link (:mod:`epic_zoo.hardware.shaping`); the test process receives
and times the transfer. Every byte must arrive, and the transfer may not beat
:func:`epic_zoo.hardware.simulator.transfer_time` (the bucket starts empty, so
a shaper that paces correctly never does; a busy machine only slows it down,
so this holds under any load). Agreement both ways within :data:`TOLERANCE`
(loopback adds ~0.1 ms of its own; the rest is scheduling noise) needs an idle
machine: that test is marked slow. Each case moves a few hundred ms of link
time.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import socket

import numpy as np
import pytest
import torch

from epic_zoo.hardware import payload as pl
from epic_zoo.hardware.profiles import LINKS, LinkProfile
from epic_zoo.hardware.shaping import (
    TokenBucket,
    make_buckets,
    packet_charges,
    receive_devices,
    send_devices,
)
from epic_zoo.hardware.simulator import transfer_time
from epic_zoo.models import create_model
from epic_zoo.models.codec import unpack_payload

TOLERANCE = 0.20
"""Largest relative difference allowed between measured and modelled transfer time."""
T = 250


def shaped_transfer(payloads: list[bytes], link: LinkProfile) -> tuple[list[bytes], float]:
    """Send ``payloads`` (one per device) from a spawned process; return what arrived and the time."""
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = ctx.Process(
            target=send_devices, args=(server.getsockname(), payloads, link, go), daemon=True
        )
        sender.start()
        try:
            received, seconds = receive_devices(server, len(payloads), start=go.set, timeout_s=60)
        finally:
            sender.join(timeout=30)
    assert sender.exitcode == 0
    return received, seconds


def check_agreement(
    payloads: list[bytes], link: LinkProfile, *, both_ways: bool = False
) -> list[bytes]:
    """Shape ``payloads`` over ``link``: every byte arrives, never faster than the model
    (``both_ways``: also not slower, within :data:`TOLERANCE`; needs an idle machine)."""
    received, measured = shaped_transfer(payloads, link)
    assert sorted(received) == sorted(payloads)  # every byte arrived, per connection
    modelled = transfer_time([len(p) for p in payloads], link)
    assert measured >= (1 - TOLERANCE) * modelled, (measured, modelled)
    if both_ways:
        assert measured == pytest.approx(modelled, rel=TOLERANCE), (measured, modelled)
    return received


@pytest.fixture(scope="module")
def raw_records() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(0.0, 1.0, size=(1, 5, T, 70)).astype(np.float32)


def test_raw_records_on_a_shared_medium(raw_records: np.ndarray) -> None:
    # Wi-Fi's packetisation and channel access, slowed to 8 Mbit/s: 5 x 70 kB take ~0.4 s
    link = dataclasses.replace(LINKS["wifi-n"], name="wifi-8M", bandwidth_bps=8e6)
    receivers = pl.model_receivers(create_model("inversionnet", time_samples=T))
    payloads = [device[0] for device in pl.raw_payloads(raw_records, receivers)]
    check_agreement(payloads, link)


def test_raw_records_on_separate_links_overlap(raw_records: np.ndarray) -> None:
    # LTE-like separate links at 2 Mbit/s each: the 5 devices send in parallel (~0.3 s)
    link = dataclasses.replace(LINKS["4g-sporadic"], name="4g-2M", bandwidth_bps=2e6)
    receivers = pl.model_receivers(create_model("inversionnet", time_samples=T))
    payloads = [device[0] for device in pl.raw_payloads(raw_records, receivers)]
    check_agreement(payloads, link)
    assert transfer_time([len(p) for p in payloads], link) < 0.3 * sum(
        link.airtime_s(len(p)) for p in payloads
    )


def test_epic_payloads_on_a_slow_shared_link(raw_records: np.ndarray) -> None:
    # real codec bytes of EPIC's five devices over a 100 kbit/s shared channel (~0.4 s)
    model = create_model("epic", time_samples=T).eval()
    seismic = torch.from_numpy(raw_records / 4)
    payloads = [device[0] for device in pl.encode_payloads(model, seismic)]
    link = dataclasses.replace(LINKS["wifi-n"], name="wifi-100k", bandwidth_bps=1e5)
    received = check_agreement(payloads, link)
    by_device = {unpack_payload(p)[0]["device_id"]: p for p in received}
    rebuilt = pl.decode_payloads(model, [[by_device[k]] for k in range(model.num_devices)])
    with torch.inference_mode():
        assert torch.equal(rebuilt, model(seismic))


@pytest.mark.slow
@pytest.mark.parametrize(("name", "bandwidth_bps"), [("wifi-n", 8e6), ("4g-sporadic", 2e6)])
def test_shaped_transfer_agrees_with_the_model_on_an_idle_machine(
    raw_records: np.ndarray, name: str, bandwidth_bps: float
) -> None:
    # the two raw-record cases above (~0.4 s and ~0.3 s of link time), timed both ways
    link = dataclasses.replace(LINKS[name], name=f"{name}-slow", bandwidth_bps=bandwidth_bps)
    receivers = pl.model_receivers(create_model("inversionnet", time_samples=T))
    payloads = [device[0] for device in pl.raw_payloads(raw_records, receivers)]
    check_agreement(payloads, link, both_ways=True)


def test_packet_charges_add_up_to_the_airtime() -> None:
    for name in LINKS:
        link = LINKS[name]
        for size in (1, 933, 70_000):
            charges = packet_charges(size, link)
            assert sum(n for n, _ in charges) == size
            total = sum(c for _, c in charges)
            assert total == pytest.approx(link.airtime_s(size) * link.bandwidth_bps / 8)


def test_token_bucket_paces_by_its_rate() -> None:
    now = [0.0]

    def sleep(dt: float) -> None:
        now[0] += dt * 1.1  # oversleeps by 10 %: the next packet gets the surplus

    bucket = TokenBucket(1000.0, 500.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        bucket.consume(100.0)
    # 1000 bytes at 1000 B/s: 1 s plus the last oversleep only, not 10 % of the total
    assert now[0] == pytest.approx(1.0, abs=0.011)
    shared = make_buckets(LINKS["wifi-n"], 3)
    assert shared[0] is shared[1] is shared[2]
    separate = make_buckets(LINKS["4g-sporadic"], 3)
    assert len({id(b) for b in separate}) == 3
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0.0, 1.0)

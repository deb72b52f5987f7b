"""A token-bucket shaped sender: real bytes over loopback TCP at a link profile's pace.

Used to validate :func:`epic_zoo.hardware.simulator.transfer_time`: each end
device sends its payload over its own TCP connection, packet by packet; before
a packet goes out, the sender takes from a token bucket what the packet costs
on the emulated link (its wire bytes plus the channel-access time expressed in
bytes, see :func:`packet_charges`). Devices on a shared medium draw from one
bucket, devices on separate links from one bucket each.

What this validates: that real bytes sent this way take the time
``transfer_time`` computes (packet counts, the shared medium's turn-taking,
the sender's pacing). What it does not: the radio model itself. The bucket is
charged the simulator's own per-packet costs, so a wrong channel-access time,
bit rate or power figure would pass unnoticed; only a measurement on the
radio can check those.

Torch-free on purpose: the sender runs in a spawned process and starts fast.
"""

from __future__ import annotations

import math
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Event

from epic_zoo.hardware.profiles import LinkProfile

BUCKET_PACKETS: int = 4
"""Bucket capacity, in packets, on top of :data:`CATCH_UP_S`."""
CATCH_UP_S: float = 0.05
"""Bucket capacity in seconds of link time: a sender that overslept (a busy
machine) may catch up this much; it never exceeds the rate on average because
the bucket starts empty."""


class TokenBucket:
    """Thread-safe token bucket in bytes, refilled at ``rate`` bytes/s.

    It starts empty, so ``n`` bytes of charges take ``n / rate`` seconds from
    the first :meth:`consume` on, whatever the sleep granularity (an oversleep
    leaves tokens for the next packet, up to ``capacity``).
    """

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0 and math.isfinite(capacity) and capacity > 0):
            raise ValueError(f"rate={rate} and capacity={capacity} must be finite and > 0")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._clock = clock
        self._sleep = sleep
        self._tokens = 0.0
        self._last: float | None = None
        self._lock = threading.Lock()

    def consume(self, amount: float) -> None:
        """Block until ``amount`` bytes of tokens are available, then take them.

        Charges larger than ``capacity`` are allowed (the bucket goes into
        debt and the caller waits for it), so one packet never deadlocks.
        """
        with self._lock:
            now = self._clock()
            if self._last is None:
                self._last = now
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= amount
            deficit = -self._tokens
            if deficit > 0:
                # Sleeping while holding the lock serialises the devices sharing
                # this bucket, as a shared medium does.
                self._sleep(deficit / self.rate)


def packet_charges(payload_bytes: int, link: LinkProfile) -> list[tuple[int, float]]:
    """``(application bytes, bucket charge in bytes)`` for each packet of one payload.

    The charge is the packet's wire bytes plus, on the packet that opens a
    channel access, ``per_packet_s`` converted to bytes at the link's rate; the
    charges sum to ``link.airtime_s(payload_bytes) * bandwidth / 8``.
    """
    rate = link.bandwidth_bps / 8.0
    header = link.transport_header_bytes + link.link_header_bytes
    out = []
    for i in range(link.packets(payload_bytes)):
        size = min(link.mss_bytes, payload_bytes - i * link.mss_bytes)
        access = link.per_packet_s * rate if i % link.aggregation == 0 else 0.0
        out.append((size, size + header + access))
    return out


def make_buckets(link: LinkProfile, num_devices: int) -> list[TokenBucket]:
    """One bucket per device, or the same bucket ``num_devices`` times on a shared medium."""
    rate = link.bandwidth_bps / 8.0
    packet = link.mtu_bytes + link.link_header_bytes + link.per_packet_s * rate
    capacity = BUCKET_PACKETS * packet + CATCH_UP_S * rate
    if link.shared_medium:
        return [TokenBucket(rate, capacity)] * num_devices
    return [TokenBucket(rate, capacity) for _ in range(num_devices)]


def send_shaped(
    sock: socket.socket, payload: bytes, link: LinkProfile, bucket: TokenBucket
) -> None:
    """Send ``payload`` over ``sock`` packet by packet, paced by ``bucket``."""
    start = 0
    for size, charge in packet_charges(len(payload), link):
        bucket.consume(charge)
        sock.sendall(payload[start : start + size])
        start += size


def send_devices(
    address: tuple[str, int], payloads: Sequence[bytes], link: LinkProfile, go: Event
) -> None:
    """Sender side (run it in its own process): one connection and one thread per device.

    Connects ``len(payloads)`` sockets to ``address``, waits for ``go``, then
    every device sends its payload at the link's pace and closes its socket.
    """
    socks = []
    for _ in payloads:
        s = socket.create_connection(address)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    buckets = make_buckets(link, len(payloads))
    go.wait()

    def device(k: int) -> None:
        try:
            send_shaped(socks[k], payloads[k], link, buckets[k])
        finally:
            socks[k].close()

    threads = [threading.Thread(target=device, args=(k,)) for k in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def receive_devices(
    server: socket.socket,
    num_devices: int,
    start: Callable[[], None] | None = None,
    timeout_s: float = 60.0,
) -> tuple[list[bytes], float]:
    """Receiver side: accept ``num_devices`` connections, call ``start()``, read each until EOF.

    Returns the received payloads (in accept order) and the seconds from just
    before ``start()`` (e.g. setting the sender's ``go`` event) to the arrival
    of the last byte.
    """
    server.settimeout(timeout_s)
    conns = [server.accept()[0] for _ in range(num_devices)]
    buffers = [bytearray() for _ in conns]
    open_conns = dict(enumerate(conns))
    with selectors.DefaultSelector() as sel:
        for k, c in open_conns.items():
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ, k)
        t0 = time.perf_counter()
        if start is not None:
            start()
        last = t0
        deadline = t0 + timeout_s
        while open_conns:
            if time.perf_counter() > deadline:
                raise TimeoutError(
                    f"{len(open_conns)} device connection(s) still open after {timeout_s} s"
                )
            for key, _ in sel.select(timeout=1.0):
                k = key.data
                chunk = open_conns[k].recv(1 << 16)
                if chunk:
                    buffers[k] += chunk
                    last = time.perf_counter()
                else:
                    sel.unregister(open_conns[k])
                    open_conns.pop(k).close()
    return [bytes(b) for b in buffers], last - t0

"""MQTT transport: topic layout, a resilient paho client, and sender-side link shaping.

Topics (prefix ``epic`` by default, :class:`Topics`)::

    {prefix}/data/{k}        device k -> central: signed payloads, QoS 1
    {prefix}/status/{k}      device k online/offline, signed with its key (retained; "offline" is its last will)
    {prefix}/status/central  central online/offline (retained, last will)
    {prefix}/ctl/trigger     operator -> devices: {"sample_id": i}
    {prefix}/ctl/done        central -> operator: one JSON line per written map

:class:`MqttLink` wraps a paho-mqtt 2.x client for MQTT 5: a fixed client id
(the broker replaces it by the user name anyway, ``use_username_as_clientid``)
with ``clean_start=False`` and a session expiry, so the broker keeps the
subscriptions and queued QoS 1 messages of a client that is away; automatic
reconnection (paho's network thread) with a short back-off; paho keeps every
QoS 1 message it sent until the broker's PUBACK and re-sends it after a
reconnect, so an acknowledged message is in the broker's hands. Every
message handler runs inside a guard: one that raises is logged and counted
(:attr:`MqttLink.handler_errors`), and the network thread carries on.

:class:`LinkShaper` emulates a :class:`~epic_zoo.hardware.profiles.LinkProfile`
on loopback from the sender side: before a message leaves, the device takes
its airtime from a token bucket (packet by packet, the charges of
:func:`epic_zoo.hardware.shaping.packet_charges`), and the bytes leave half a
round trip later (one-way propagation). Devices on a shared medium (Wi-Fi)
draw from one :class:`SharedTokenBucket`, a file-locked bucket that separate
processes can share.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from epic_zoo.deploy.security import Credentials
from epic_zoo.hardware.profiles import LinkProfile
from epic_zoo.hardware.shaping import BUCKET_PACKETS, TokenBucket, packet_charges

log = logging.getLogger(__name__)

QOS: int = 1
"""Every data, status and control message is sent at least once."""
SESSION_EXPIRY_S: int = 3600
"""How long the broker keeps an absent device's session, s."""
NEVER_EXPIRES: int = 2**32 - 1
"""MQTT 5 session expiry meaning "never": the central's queued messages wait for it however long."""


class LogThrottle:
    """At most one log line per key and ``interval_s``; the lines held back are counted and reported.

    A flood of bad messages must not become a flood of log lines (each costs
    more than rejecting the message).
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 5.0) -> None:
        self.logger = logger
        self.interval_s = float(interval_s)
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, level: int, key: str, msg: str, *args: object, **kwargs: Any) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._held[key] = self._held.get(key, 0) + 1
                return
            held = self._held.pop(key, 0)
            self._last[key] = now
        if held:
            msg += f" (and {held} more like it in the last {self.interval_s:g} s)"
        self.logger.log(level, msg, *args, **kwargs)


class ConnectRefused(ConnectionError):
    """The broker refused the connection (bad credentials, not authorised)."""


@dataclass(frozen=True)
class Topics:
    """Topic names under one ``prefix`` (one deployment per prefix on a broker)."""

    prefix: str = "epic"

    def __post_init__(self) -> None:
        if not self.prefix or any(c in self.prefix for c in "+#") or self.prefix.endswith("/"):
            raise ValueError(
                f"topic prefix {self.prefix!r} must be non-empty, without + # or a trailing /"
            )

    def data(self, device: int | str) -> str:
        return f"{self.prefix}/data/{device}"

    def status(self, who: int | str) -> str:
        return f"{self.prefix}/status/{who}"

    @property
    def trigger(self) -> str:
        return f"{self.prefix}/ctl/trigger"

    @property
    def done(self) -> str:
        return f"{self.prefix}/ctl/done"

    def device_of(self, topic: str) -> str | None:
        """The last level of a data topic (the claimed device), ``None`` for other topics."""
        head = f"{self.prefix}/data/"
        return topic[len(head) :] if topic.startswith(head) else None


def user_properties(message: mqtt.MQTTMessage) -> dict[str, str]:
    """MQTT 5 user properties of a received message as a dict (empty if none)."""
    props = getattr(message, "properties", None)
    pairs = getattr(props, "UserProperty", None) or []
    return {str(k): str(v) for k, v in pairs}


def publish_properties(values: Mapping[str, object] | None) -> Properties | None:
    """MQTT 5 PUBLISH properties carrying ``values`` as user properties."""
    if not values:
        return None
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [(str(k), str(v)) for k, v in values.items()]
    return props


def _varint_len(n: int) -> int:
    size = 1
    while n >= 128:
        n //= 128
        size += 1
    return size


def publish_packet_bytes(topic: str, payload_bytes: int, properties: Properties | None) -> int:
    """Bytes of one MQTT 5 QoS 1 PUBLISH packet (fixed header, topic, packet id, properties, payload)."""
    props = properties.pack() if properties is not None else b"\x00"
    remaining = 2 + len(topic.encode()) + 2 + len(props) + int(payload_bytes)
    return 1 + _varint_len(remaining) + remaining


class MqttLink:
    """One MQTT 5 client: persistent session, auto-reconnect, QoS 1, optional status + last will.

    Args:
        client_id: stable id (the broker keys the persistent session on it).
        credentials: broker login.
        address: ``(host, port)`` of the broker.
        on_message: called from paho's network thread with each message.
        subscriptions: topic filters subscribed (QoS 1) on every connect.
        status_topic: if set, ``"online"`` is published there (retained) on
            every connect and ``"offline"`` is the last will, also sent on a
            clean :meth:`close`.
        status_payload: makes the status message of a word (a device signs
            it, :func:`~epic_zoo.deploy.security.sign_status`); called before
            every connect, ``"online"`` first, then the will ``"offline"``,
            so the will's counter is above the online message's. Default: the
            bare word.
        keepalive_s: MQTT keepalive; the broker declares a silent client dead
            after 1.5 times this and publishes its will.
        clean_start: start a fresh session (drop queued messages) instead of resuming.
        ca_certs: CA certificate file: connect with TLS and check the broker's
            certificate against it (the broker needs a TLS listener).
        session_expiry_s: how long the broker keeps this client's session
            while it is away (:data:`NEVER_EXPIRES` for the central).
        manual_ack: acknowledge a received QoS 1 message only when
            :meth:`ack` is called (the central, after the message is on disk).
        on_reconnect: called (paho thread) after every connect but the first,
            with the monotonic time the connection had dropped.
    """

    def __init__(
        self,
        client_id: str,
        credentials: Credentials,
        address: tuple[str, int],
        *,
        on_message: Callable[[mqtt.MQTTMessage], None] | None = None,
        subscriptions: Iterable[str] = (),
        status_topic: str | None = None,
        keepalive_s: int = 5,
        clean_start: bool = False,
        ca_certs: str | Path | None = None,
        status_payload: Callable[[str], bytes] | None = None,
        session_expiry_s: int = SESSION_EXPIRY_S,
        manual_ack: bool = False,
        on_reconnect: Callable[[float], None] | None = None,
    ) -> None:
        self.address = (str(address[0]), int(address[1]))
        self._on_reconnect = on_reconnect
        self.disconnected_at: float | None = None
        if not 0 <= int(session_expiry_s) <= NEVER_EXPIRES:
            raise ValueError(f"session_expiry_s={session_expiry_s} must be 0..2**32-1")
        self.session_expiry_s = int(session_expiry_s)
        self.handler_errors = 0
        self._throttle = LogThrottle(log)
        self._status_payload = status_payload or (lambda word: word.encode())
        self._online_message = b"online"
        self.subscriptions = list(subscriptions)
        self.status_topic = status_topic
        self.keepalive_s = int(keepalive_s)
        self.clean_start = clean_start
        self.connected = threading.Event()
        self.connects = 0
        self._refused: str | None = None
        self._on_message = on_message
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=manual_ack,
        )
        client.username_pw_set(credentials.username, credentials.password)
        if ca_certs is not None:
            client.tls_set(ca_certs=str(ca_certs))
        client.reconnect_delay_set(min_delay=0.1, max_delay=1.0)
        client.max_inflight_messages_set(100)
        client.on_pre_connect = self._handle_pre_connect
        # Nagle's algorithm holds a small message until the previous one is acknowledged,
        # which with delayed ACKs costs up to 40 ms per hop: send each message at once.
        client.on_socket_open = lambda _c, _u, sock: sock.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        if on_message is not None:
            client.on_message = lambda _c, _u, msg: self._dispatch(msg)
        self.client = client

    def _dispatch(self, message: mqtt.MQTTMessage) -> None:
        """paho thread: run the handler; anything it raises is logged and counted, never raised."""
        try:
            self._on_message(message)  # type: ignore[misc]
        except Exception as err:  # the per-message guard: the network thread must live on
            self.handler_errors += 1
            self._throttle(
                logging.ERROR,
                "handler",
                "message handler failed on a %d-byte message on %s: %r",
                len(message.payload),
                message.topic,
                err,
            )

    def _handle_pre_connect(self, client, userdata) -> None:
        """Before every (re)connect: fresh status messages, the will signed after ``online``."""
        if self.status_topic is None:
            return
        self._online_message = self._status_payload("online")
        client.will_set(self.status_topic, self._status_payload("offline"), qos=QOS, retain=True)

    def ack(self, message: mqtt.MQTTMessage) -> None:
        """Acknowledge a received message (``manual_ack`` links; harmless otherwise)."""
        if message.qos:
            self.client.ack(message.mid, message.qos)

    def _handle_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            return
        self.connects += 1
        for topic in self.subscriptions:
            client.subscribe(topic, qos=QOS)
        if self.status_topic is not None:
            client.publish(self.status_topic, self._online_message, qos=QOS, retain=True)
        if self.connects > 1 and self._on_reconnect is not None:
            try:
                self._on_reconnect(
                    self.disconnected_at if self.disconnected_at is not None else time.monotonic()
                )
            except Exception as err:  # never the network thread
                self.handler_errors += 1
                log.error("reconnect handler failed: %r", err)
        self.connected.set()

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.disconnected_at = time.monotonic()
        self.connected.clear()

    def connect(self, timeout_s: float = 10.0) -> MqttLink:
        """Connect and start the network thread; wait for the first CONNACK.

        Raises:
            ConnectRefused: the broker said no (wrong user/password, not authorised).
            TimeoutError: no CONNACK within ``timeout_s`` (broker down or unreachable).
        """
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        self.client.connect_async(
            *self.address,
            keepalive=self.keepalive_s,
            clean_start=self.clean_start,
            properties=props,
        )
        self.client.loop_start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._refused is not None:
                self.client.loop_stop()
                raise ConnectRefused(
                    f"broker {self.address[0]}:{self.address[1]} refused the connection: "
                    f"{self._refused}; check the user name and password (credentials file) and the ACL"
                )
            if self.connected.wait(0.02):
                return self
        self.client.loop_stop()
        raise TimeoutError(
            f"no answer from the MQTT broker at {self.address[0]}:{self.address[1]} within "
            f"{timeout_s} s; is mosquitto running there (`python -m epic_zoo.deploy broker`)?"
        )

    def publish(
        self,
        topic: str,
        payload: bytes,
        properties: Properties | None = None,
        *,
        retain: bool = False,
    ) -> mqtt.MQTTMessageInfo:
        """Queue one QoS 1 message; paho sends it now or after the next reconnect."""
        info = self.client.publish(topic, payload, qos=QOS, retain=retain, properties=properties)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise RuntimeError(
                f"paho could not queue a message on {topic}: {mqtt.error_string(info.rc)}"
            )
        return info

    def pending(self) -> int:
        """QoS 1 messages not yet acknowledged by the broker."""
        return len(self.client._out_messages)  # paho has no public accessor

    def flush(self, timeout_s: float) -> bool:
        """Wait until every queued message is acknowledged; ``False`` if ``timeout_s`` ran out."""
        deadline = time.monotonic() + timeout_s
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.pending() == 0

    def close(self, timeout_s: float = 2.0) -> None:
        """Publish ``offline`` (if a status topic is set), wait for acks, disconnect cleanly."""
        if self.status_topic is not None and self.connected.is_set():
            self.publish(self.status_topic, self._status_payload("offline"), retain=True)
        self.flush(timeout_s)
        self.client.disconnect()
        self.client.loop_stop()


class SharedTokenBucket:
    """A token bucket in bytes whose state lives in a file, shared by processes via ``flock``.

    Same semantics as :class:`epic_zoo.hardware.shaping.TokenBucket`: starts
    empty, refills at ``rate`` bytes/s up to ``capacity``, a charge larger than
    the tokens puts it in debt and the caller sleeps the debt off while holding
    the lock, so the processes sharing it take turns like radios on one channel.
    """

    _STATE = struct.Struct("<dd")  # tokens, time of last update (time.monotonic, system-wide)

    def __init__(self, path: str | Path, rate: float, capacity: float) -> None:
        if not (rate > 0 and capacity > 0):
            raise ValueError(f"rate={rate} and capacity={capacity} must be > 0")
        self.path = Path(path)
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def consume(self, amount: float) -> None:
        """Block until ``amount`` bytes of tokens are available (across processes), then take them."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            now = time.monotonic()
            raw = os.pread(self._fd, self._STATE.size, 0)
            tokens, last = self._STATE.unpack(raw) if len(raw) == self._STATE.size else (0.0, now)
            tokens = min(self.capacity, tokens + (now - last) * self.rate) - amount
            os.pwrite(self._fd, self._STATE.pack(tokens, now), 0)
            if tokens < 0:
                time.sleep(-tokens / self.rate)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


class LinkShaper:
    """Sender-side emulation of a link: airtime from a token bucket, then a one-way delay.

    Args:
        link: the profile to emulate (bandwidth, per-packet access, headers, RTT).
        shared_bucket: file of a :class:`SharedTokenBucket` for devices on a
            shared medium (required when ``link.shared_medium``); otherwise this
            sender has a bucket of its own.
    """

    def __init__(self, link: LinkProfile, shared_bucket: str | Path | None = None) -> None:
        self.link = link
        rate = link.bandwidth_bps / 8.0
        capacity = BUCKET_PACKETS * (
            link.mtu_bytes + link.link_header_bytes + link.per_packet_s * rate
        )
        if link.shared_medium:
            if shared_bucket is None:
                raise ValueError(
                    f"link {link.name!r} is a shared medium: pass the shared bucket file every "
                    "device of the deployment uses (--shared-bucket PATH)"
                )
            self.bucket: TokenBucket | SharedTokenBucket = SharedTokenBucket(
                shared_bucket, rate, capacity
            )
        else:
            self.bucket = TokenBucket(rate, capacity)
        self.delay_s = link.rtt_s / 2.0
        self._queue: queue.Queue[tuple[float, Callable[[], object]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._deliver, name="link-delay", daemon=True)
        self._thread.start()

    def wire_bytes(self, app_bytes: int) -> int:
        """Bytes on the emulated air for ``app_bytes`` of TCP payload (headers of every packet included)."""
        return self.link.wire_bytes(app_bytes)

    def send(self, app_bytes: int, transmit: Callable[[], object]) -> None:
        """Spend the airtime of ``app_bytes`` (blocking), then run ``transmit`` one-way delay later."""
        for _size, charge in packet_charges(app_bytes, self.link):
            self.bucket.consume(charge)
        self._queue.put((time.monotonic() + self.delay_s, transmit))

    def _deliver(self) -> None:
        while (item := self._queue.get()) is not None:
            due, transmit = item
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            transmit()

    def close(self) -> None:
        """Deliver what is in flight, then stop the delay thread."""
        self._queue.put(None)
        self._thread.join()
        if isinstance(self.bucket, SharedTokenBucket):
            self.bucket.close()

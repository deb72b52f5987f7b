"""An end device: read its receivers' records, encode, sign, and publish over MQTT.

``python -m epic_zoo.deploy edge --bundle DIR --device K --credentials
device-K.json --broker HOST:PORT (--data PATH | --watch DIR)`` loads only
device ``K``'s encoder and the codec (:class:`~epic_zoo.deploy.export.EdgeEncoder`)
and sends one signed payload per record on ``{prefix}/data/K`` (QoS 1).

Where records come from:

- ``--data PATH``: a replayed dataset, an epic_zoo split (folder of
  ``shard-*.h5`` or one shard) or a ``.npy`` array ``[N, 5, T, 70]`` (or
  ``[N, 5, T, n_k]``, this device's receivers only); sample id ``i`` reads
  record ``i mod N``. Records are sent when a trigger arrives (``--trigger``:
  the operator publishes ``{"sample_id": i}`` on ``{prefix}/ctl/trigger``, as
  a shot would start an acquisition) or on a
  clock (``--interval S``);
- ``--watch DIR``: a folder being filled by the acquisition: each
  ``{sample_id}.npy`` (``[5, T, 70]`` or ``[5, T, n_k]``) is sent once, in id
  order; writers should write to another name and rename. Only regular files
  are opened (without blocking: a FIFO or device is logged and skipped); the
  ``.npy`` header is checked against the file's size and the expected shape
  and dtype before anything is allocated; a file shorter than its header
  says is waited for until it has not changed for ``settle_s``, then skipped.
  Every skipped file is logged once and counted (``bad_records``), never
  retried.

One bad input never ends the edge process: a malformed trigger (longer than
:data:`MAX_TRIGGER_BYTES`, not JSON, nested, no ``sample_id``, an id outside
``0..2**64-1``), a record of the wrong shape or with NaN, or a failure to
send one record is logged, counted in the summary (``bad_triggers``,
``bad_records``) and skipped. The device's status messages are signed with
its HMAC key (:func:`~epic_zoo.deploy.security.sign_status`), so only it can
tell the central that it is online or offline.

Each message carries MQTT 5 user properties ``t_release`` (when the record
became available on the device: trigger received, paced release time or
file found) and ``t_sent`` (epoch seconds); the central's end-to-end latency
runs from the earliest ``t_release`` of a record to its map on disk. ``--link PROFILE`` shapes the sender to a link
profile (:class:`~epic_zoo.deploy.transport.LinkShaper`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties

from epic_zoo.data.geometry import NUM_RECEIVERS, NUM_SOURCES
from epic_zoo.deploy.export import EdgeEncoder
from epic_zoo.deploy.security import Credentials, MessageCounter, sign, sign_status
from epic_zoo.deploy.transport import (
    LinkShaper,
    LogThrottle,
    MqttLink,
    Topics,
    publish_packet_bytes,
    publish_properties,
)
from epic_zoo.hardware.profiles import LinkProfile

log = logging.getLogger(__name__)

MAX_SAMPLE_ID: int = 2**64 - 1
"""Largest sample id a payload header can carry (uint64)."""
MAX_TRIGGER_BYTES: int = 256
"""Longest trigger message parsed (``{"sample_id": i}`` needs about 40 bytes); checked before parsing."""


def parse_trigger(payload: bytes) -> int:
    """The sample id of a trigger message ``{"sample_id": i}``; ``ValueError`` naming what is wrong.

    The length is bounded before parsing (:data:`MAX_TRIGGER_BYTES`), which
    also bounds the nesting depth the JSON parser can meet.
    """
    if len(payload) > MAX_TRIGGER_BYTES:
        raise ValueError(f"trigger of {len(payload)} bytes is longer than {MAX_TRIGGER_BYTES}")
    try:
        data = json.loads(payload)
    except (ValueError, TypeError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"trigger is not JSON: {err}") from None
    if not isinstance(data, dict) or "sample_id" not in data:
        raise ValueError('trigger must be {"sample_id": i}')
    sample_id = data["sample_id"]
    if isinstance(sample_id, bool) or not isinstance(sample_id, int):
        raise ValueError(f"trigger sample_id {sample_id!r} is not an integer")
    if not 0 <= sample_id <= MAX_SAMPLE_ID:
        raise ValueError(f"trigger sample_id {sample_id} is outside 0..2**64-1")
    return sample_id


def _select_receivers(records: np.ndarray, receivers: np.ndarray, what: str) -> np.ndarray:
    """``[5, T, 70]`` -> this device's ``[5, T, n_k]`` (already-split records pass through)."""
    if records.ndim != 3:
        raise ValueError(
            f"{what}: records must be [sources, time, receivers]; got {list(records.shape)}"
        )
    if records.shape[-1] == len(receivers):
        return np.asarray(records, dtype=np.float32)
    if records.shape[-1] == NUM_RECEIVERS:
        return np.asarray(records[..., receivers], dtype=np.float32)
    raise ValueError(
        f"{what}: {records.shape[-1]} receivers; expected {NUM_RECEIVERS} (all) or {len(receivers)} (this device's)"
    )


class ReplaySource:
    """Records of a stored dataset, replayed: ``get(i)`` is record ``i mod N`` for this device.

    Args:
        path: epic_zoo split folder / shard file, or ``.npy`` ``[N, 5, T, 70 or n_k]``.
        receivers: this device's receiver indices.
    """

    def __init__(self, path: str | Path, receivers: np.ndarray) -> None:
        self.path = Path(path)
        self.receivers = np.asarray(receivers)
        if self.path.suffix == ".npy":
            if not self.path.is_file():  # a FIFO would block np.load for ever
                raise ValueError(f"--data {self.path} is not a regular .npy file")
            try:
                self._array = np.load(self.path, mmap_mode="r")  # the header is checked
            except (ValueError, OSError, EOFError) as err:  # against the file size by mmap
                raise ValueError(
                    f"--data {self.path} is not a readable .npy array: {err}"
                ) from None
            if (
                self._array.ndim != 4
                or self._array.shape[0] < 1
                or self._array.shape[1] != NUM_SOURCES
                or self._array.shape[3] not in (NUM_RECEIVERS, len(self.receivers))
                or self._array.dtype.kind != "f"
            ):
                raise ValueError(
                    f"--data {self.path}: expected float [N >= 1, {NUM_SOURCES}, T, "
                    f"{NUM_RECEIVERS} or {len(self.receivers)}]; got {self._array.dtype} "
                    f"{list(self._array.shape)}"
                )
            self._split = None
        else:
            from epic_zoo.data.store import H5Split

            self._split = H5Split(self.path)
            self._array = None

    def __len__(self) -> int:
        return len(self._split) if self._split is not None else int(self._array.shape[0])

    def get(self, sample_id: int) -> np.ndarray:
        index = int(sample_id) % len(self)
        records = self._split[index][0] if self._split is not None else self._array[index]
        return _select_receivers(np.asarray(records), self.receivers, f"{self.path}[{index}]")


class RecordFileError(ValueError):
    """A file in the watched folder that is not (yet) a record of this device."""

    def __init__(self, message: str, *, incomplete: bool = False) -> None:
        super().__init__(message)
        self.incomplete = incomplete


def read_record_file(
    path: str | Path,
    *,
    sources: int = NUM_SOURCES,
    time_lengths: Iterable[int] | None = None,
    receivers: Iterable[int] = (NUM_RECEIVERS,),
) -> np.ndarray:
    """Read one ``.npy`` record ``[sources, T, receivers]``, checking everything before allocating.

    The file is opened without blocking and must be a regular file (a FIFO,
    socket or device is refused without being read); the ``.npy`` header must
    declare a float32/float64 array of an expected shape whose bytes match the
    file's size. Only then are the bytes read.

    Raises:
        RecordFileError: with ``incomplete=True`` when the file is shorter
            than its header says (perhaps still being written), otherwise for
            anything that is not such a record.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise RecordFileError(f"cannot open: {err.strerror or err}", incomplete=True) from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise RecordFileError("not a regular file (a FIFO, socket or device?); not read")
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f".npy format version {version} is not supported")
        except (ValueError, OSError, EOFError, SyntaxError, TypeError) as err:
            incomplete = info.st_size < 128  # a header of fewer bytes may still be arriving
            raise RecordFileError(f"no valid .npy header: {err}", incomplete=incomplete) from None
        if dtype.kind != "f" or dtype.itemsize not in (4, 8) or dtype.hasobject:
            raise RecordFileError(f"dtype {dtype} is not float32/float64")
        if len(shape) != 3:
            raise RecordFileError(f"shape {list(shape)} is not [sources, time, receivers]")
        lengths = None if time_lengths is None else sorted(set(time_lengths))
        if (
            shape[0] != sources
            or shape[2] not in set(receivers)
            or (lengths is not None and shape[1] not in lengths)
        ):
            raise RecordFileError(
                f"shape {list(shape)} is not [{sources}, {lengths or 'T'}, "
                f"{' or '.join(map(str, sorted(set(receivers))))}]"
            )
        need = fh.tell() + math.prod(shape) * dtype.itemsize  # exact: Python integers
        if info.st_size < need:
            raise RecordFileError(
                f"{info.st_size} bytes, but its header needs {need}", incomplete=True
            )
        if info.st_size > need:
            raise RecordFileError(f"{info.st_size} bytes, but its header needs only {need}")
        body = need - fh.tell()
        data = fh.read(body)
        if len(data) != body:
            raise RecordFileError("file shrank while being read", incomplete=True)
    values = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
    return values.reshape(shape, order="F" if fortran else "C").astype(np.float32)


class FolderSource:
    """A folder being filled with ``{sample_id}.npy`` records; :meth:`poll` returns the new ones.

    Args:
        folder: the watched folder.
        receivers: this device's receiver indices.
        time_lengths: accepted record lengths ``T`` (default: any).
        settle_s: a file that stays unreadable (truncated) and unchanged this
            long is skipped.
    """

    def __init__(
        self,
        folder: str | Path,
        receivers: np.ndarray,
        *,
        time_lengths: Iterable[int] | None = None,
        settle_s: float = 2.0,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"--watch folder {self.folder} does not exist; create it first")
        if not (math.isfinite(settle_s) and settle_s >= 0):
            raise ValueError(f"settle_s={settle_s} must be a finite number >= 0")
        self.receivers = np.asarray(receivers)
        self.time_lengths = None if time_lengths is None else tuple(time_lengths)
        self.settle_s = float(settle_s)
        self.seen: set[int] = set()
        self.skipped = 0
        self._waiting: dict[int, tuple[tuple[int, int], float]] = {}

    def _skip(self, sample_id: int, path: Path, why: str) -> None:
        self.seen.add(sample_id)
        self._waiting.pop(sample_id, None)
        self.skipped += 1
        log.warning("skipped %s: %s", path, why)

    def poll(self) -> list[tuple[int, np.ndarray]]:
        """New records as ``(sample_id, [5, T, n_k])`` in id order.

        A file shorter than its header says waits for the next poll (still
        being written) until it has not changed for ``settle_s``; any other
        file that is not a record of this device's shape (wrong header, dtype,
        size, not a regular file), or whose name is an id beyond uint64, is
        logged once, counted in :attr:`skipped` and never read again.
        """
        found = []
        for path in self.folder.glob("*.npy"):
            if not path.stem.isdigit() or int(path.stem) in self.seen:
                continue
            sample_id = int(path.stem)
            if sample_id > MAX_SAMPLE_ID:
                self._skip(sample_id, path, f"sample id {sample_id} is outside 0..2**64-1")
                continue
            try:
                records = read_record_file(
                    path,
                    time_lengths=self.time_lengths,
                    receivers=(NUM_RECEIVERS, len(self.receivers)),
                )
                found.append((sample_id, _select_receivers(records, self.receivers, str(path))))
            except RecordFileError as err:
                if not err.incomplete:
                    self._skip(sample_id, path, str(err))
                    continue
                try:
                    info = path.stat()
                    state = (info.st_size, info.st_mtime_ns)
                except OSError:
                    state = (-1, -1)
                now = time.monotonic()
                seen_state, since = self._waiting.get(sample_id, (None, now))
                if seen_state != state:
                    self._waiting[sample_id] = (state, now)
                elif now - since >= self.settle_s:
                    self._skip(sample_id, path, f"{err} (unchanged for {self.settle_s:g} s)")
            except ValueError as err:
                self._skip(sample_id, path, str(err))
        found.sort(key=lambda item: item[0])
        for i, _ in found:
            self.seen.add(i)
            self._waiting.pop(i, None)
        return found


class EdgeNode:
    """One device's runtime: :class:`EdgeEncoder` + HMAC + (shaped) MQTT publisher.

    Args:
        bundle: bundle root or ``devices/device-k`` folder.
        device: ``k``.
        credentials: this device's credentials (broker login, HMAC key).
        address: broker ``(host, port)``.
        topics: topic layout.
        link: emulate this link profile on the sender side (``None``: send as fast as possible).
        shared_bucket: token-bucket file shared by the devices of a shared-medium link.
        listen_triggers: subscribe to the trigger topic (records sent on demand).
        ca_certs: CA file for a TLS broker (see :class:`~epic_zoo.deploy.transport.MqttLink`).
        resend_s: after a reconnect, send again (re-signed, fresh counter) the
            records sent in the last ``resend_s`` before the connection
            dropped: a broker killed between its acknowledgement and its next
            save of the persistence file has lost them (the central
            de-duplicates, so a record it has is counted and dropped).
    """

    RESEND_MAX: int = 256
    """Most records kept for a re-send after a reconnect."""

    def __init__(
        self,
        bundle: str | Path,
        device: int,
        credentials: Credentials,
        address: tuple[str, int],
        *,
        topics: Topics | None = None,
        link: LinkProfile | None = None,
        shared_bucket: str | Path | None = None,
        listen_triggers: bool = False,
        ca_certs: str | Path | None = None,
        resend_s: float = 3.0,
    ) -> None:
        if not (math.isfinite(resend_s) and resend_s >= 0):
            raise ValueError(f"resend_s={resend_s} must be a finite number >= 0")
        self.resend_s = float(resend_s)
        self._recent: deque[tuple[float, bytes, Properties | None]] = deque(maxlen=self.RESEND_MAX)
        self.encoder = EdgeEncoder(bundle, device)
        self.device = int(device)
        if credentials.device != self.device:
            raise ValueError(
                f"credentials of {credentials.username} used for device {device}; pass device-{device}.json"
            )
        self.key = credentials.key()
        self.counter = MessageCounter()
        self.topics = topics or Topics()
        self.topic = self.topics.data(self.device)
        self.triggers: queue.Queue[tuple[int, float]] = queue.Queue()
        self._throttle = LogThrottle(log)
        self.link = MqttLink(
            f"device-{self.device}",
            credentials,
            address,
            on_message=self._on_trigger,
            subscriptions=[self.topics.trigger] if listen_triggers else [],
            status_topic=self.topics.status(self.device),
            status_payload=lambda word: sign_status(self.key, word, self.counter.next()),
            ca_certs=ca_certs,
            on_reconnect=self._resend,
        )
        self.shaper = LinkShaper(link, shared_bucket) if link is not None else None
        self.stats: dict[str, Any] = {
            "device": self.device,
            "messages": 0,
            "payload_bytes": 0,
            "message_bytes": 0,
            "mqtt_bytes": 0,
            "wire_bytes": 0,
            "encode_s": [],
            "bad_triggers": 0,
            "bad_records": 0,
            "resent": 0,
        }

    def _resend(self, dropped_at: float) -> None:
        """paho thread, after a reconnect: send again what went out shortly before the drop."""
        again = [
            (payload, props)
            for sent, payload, props in list(self._recent)
            if dropped_at - self.resend_s <= sent <= dropped_at
        ]
        for payload, props in again:
            self.link.client.publish(
                self.topic, sign(self.key, payload, self.counter.next()), qos=1, properties=props
            )
        self.stats["resent"] += len(again)

    def _on_trigger(self, message: mqtt.MQTTMessage) -> None:
        """paho thread: queue a valid trigger; log and count anything else (never raises)."""
        try:
            self.triggers.put(
                (parse_trigger(message.payload), time.time())
            )  # the record is here now
        except Exception as err:  # ValueError, or anything unforeseen: never the MQTT thread
            self.stats["bad_triggers"] += 1
            self._throttle(
                logging.WARNING,
                "trigger",
                "ignored trigger %r: %s",
                bytes(message.payload)[:80],
                err,
            )

    def connect(self, timeout_s: float = 10.0) -> EdgeNode:
        self.link.connect(timeout_s)
        return self

    def send(self, sample_id: int, records: np.ndarray, t_release: float | None = None) -> None:
        """Encode one record ``[5, T, n_k]``, sign it and publish it (through the shaper if any)."""
        t_release = time.time() if t_release is None else t_release
        start = time.perf_counter()
        payload = self.encoder.payload(records, sample_id)
        message = sign(self.key, payload, self.counter.next())
        self.stats["encode_s"].append(time.perf_counter() - start)
        props = publish_properties({"t_release": repr(t_release), "t_sent": repr(time.time())})
        if self.resend_s > 0:
            now = time.monotonic()
            if self.link.connected.is_set():  # older ones can no longer be needed
                while self._recent and self._recent[0][0] < now - 2 * self.resend_s:
                    self._recent.popleft()
            self._recent.append((now, payload, props))
        mqtt_bytes = publish_packet_bytes(self.topic, len(message), props)
        self.stats["messages"] += 1
        self.stats["payload_bytes"] += len(payload)
        self.stats["message_bytes"] += len(message)
        self.stats["mqtt_bytes"] += mqtt_bytes
        if self.shaper is None:
            self.link.publish(self.topic, message, props)
            return
        self.stats["wire_bytes"] += self.shaper.wire_bytes(mqtt_bytes)
        self.shaper.send(mqtt_bytes, lambda: self.link.publish(self.topic, message, props))

    def _send_guarded(
        self, sample_id: int, get_records: Callable[[], np.ndarray], t_release: float | None
    ) -> bool:
        """:meth:`send` one record; a bad record or a failed send is logged and counted, never raised."""
        try:
            self.send(sample_id, get_records(), t_release)
            return True
        except Exception as err:  # one bad record never ends the edge
            self.stats["bad_records"] += 1
            log.warning("skipped sample %s: %s", sample_id, err)
            return False

    # ------------------------------------------------------------------ loops
    def run_triggered(
        self, source: ReplaySource, max_samples: int | None, stop: threading.Event
    ) -> None:
        """Send record ``i`` whenever trigger ``i`` arrives, until ``max_samples`` or ``stop``."""
        sent = 0
        while not stop.is_set() and (max_samples is None or sent < max_samples):
            try:
                sample_id, t_release = self.triggers.get(timeout=0.1)
            except queue.Empty:
                continue
            self._send_guarded(sample_id, lambda i=sample_id: source.get(i), t_release)
            sent += 1

    def run_paced(
        self,
        source: ReplaySource,
        sample_ids: Iterable[int],
        interval_s: float,
        start_at: float,
        stop: threading.Event,
    ) -> None:
        """Send sample ``ids[j]`` at ``start_at + j * interval_s`` (epoch s), or at once if late."""
        for j, sample_id in enumerate(sample_ids):
            release = start_at + j * interval_s
            if stop.wait(max(0.0, release - time.time())):
                return
            self._send_guarded(sample_id, lambda i=sample_id: source.get(i), release)

    def run_folder(
        self,
        source: FolderSource,
        max_samples: int | None,
        stop: threading.Event,
        poll_s: float = 0.05,
    ) -> None:
        """Send each new file of a watched folder, until ``max_samples`` or ``stop``."""
        sent = 0
        while not stop.is_set() and (max_samples is None or sent < max_samples):
            skipped = source.skipped
            for sample_id, records in source.poll():
                self._send_guarded(sample_id, lambda r=records: r, None)
                sent += 1
            self.stats["bad_records"] += source.skipped - skipped
            stop.wait(poll_s)

    def summary(self) -> dict[str, Any]:
        times = self.stats["encode_s"]
        out = {k: v for k, v in self.stats.items() if k != "encode_s"}
        out["encode_s_median"] = float(np.median(times)) if times else None
        out["link"] = self.shaper.link.name if self.shaper is not None else None
        return out

    def close(self, timeout_s: float = 5.0) -> None:
        """Let the shaper deliver what is in flight, wait for the broker's acks, disconnect."""
        if self.shaper is not None:
            self.shaper.close()
        self.link.close(timeout_s)

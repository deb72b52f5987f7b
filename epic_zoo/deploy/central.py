"""The central node: collect each record's device payloads, decode, write the velocity map.

``python -m epic_zoo.deploy central --bundle DIR --credentials central.json
--broker HOST:PORT --out OUT`` subscribes to every device's data topic and,
per sample id, keeps the latents that arrive (:class:`Assembler`). A sample is
decoded when every device that is online has delivered, or ``deadline_s``
after its first payload arrived (on the monotonic clock: a stepped wall clock
changes nothing), whichever comes first; then the presence mask leaves out
the devices that did not deliver and the map is marked *partial*. A device
whose connection drops is seen offline at once (its retained last will), so
the central does not wait the deadline for it. Status messages count only if
signed with the device's key and newer than the last one
(:func:`~epic_zoo.deploy.security.verify_status`): a forged ``offline`` is
counted as ``bad_status`` and changes nothing.

Nothing acknowledged is lost: the MQTT thread authenticates each message,
writes every accepted part to ``OUT/pending/`` (fsync, rename) and only then
acknowledges it to the broker (manual PUBACK); a part's file is removed once
its map is on disk. A central killed mid-stream finds its parts there when it
restarts; one that cannot write them (disk full) does not acknowledge, holds
the messages (at most the broker's in-flight window) and retries. Maps are
written only after ``replay_state.json`` is saved (otherwise they wait, with
their parts on disk), never over an existing map, through a temporary file
that is removed if the write fails, and only if every value is finite.

Every incoming message is checked, in this order, and rejected with a counted
reason if it fails. Nothing is parsed before the tag has verified, and the
size is bounded before anything is read: an unauthenticated sender can make
the central compute one HMAC over at most the largest legitimate message,
nothing more.

====================  =====================================================
``unknown_device``    topic is not ``{prefix}/data/k`` for a device ``k`` of
                      the bundle, or the (authenticated) header's device id
                      is not ``k``
``oversize``          longer than the largest message device ``k`` sends
                      (:func:`message_limits`)
``corrupt``           too short for the envelope; or authentic but not a
                      well-formed payload (bad magic/format/scale/shape, crc32)
``bad_hmac``          tag does not verify with device ``k``'s key (forged,
                      altered in transit, or another device's key)
``duplicate``         the counter equals device ``k``'s high-water mark (a
                      redelivery of its last message), or this device already
                      delivered this sample
``replayed``          the counter was accepted before, or is at or below the
                      floor of device ``k``'s anti-replay window: an old
                      message sent again (also across central restarts: the
                      windows persist in ``replay_state.json``)
``wrong_version``     header ``model_version`` is not the bundle's
``wrong_shape``       latent shape / bit width / scale (or records shape)
                      is not what device ``k`` sends
``late``              its sample was already decoded (after the deadline), or
                      its map exists
``bad_status``        a status message not signed by its device, or not
                      newer than the device's last status
====================  =====================================================

Anything unexpected while handling one message (or decoding one sample) is
logged and counted as ``error`` (``decode_error``); a decoded map with NaN or
inf is not written (``non_finite``); :meth:`CentralNode.run` never ends on bad
input. Log lines about rejections are throttled (one per reason every few
seconds, with a count), so a flood costs an HMAC per message and no I/O.
``summary.json`` is rewritten (at most four times a second) whenever a
counter changes.

Reordered messages (a device's sample id below one it sent before, with a
higher counter) are accepted into their own sample and counted as
``reordered``; samples are keyed by id, so parts of different samples are
never mixed.

Output (``OUT``): ``maps/{sample_id:08d}.npy`` (velocity ``[70, 70]`` float32,
m/s), ``timing.jsonl`` (one line per sample: presence, partial flag, arrival,
decode and end-to-end times), ``summary.json`` (counters),
``replay_state.json`` (per-device anti-replay windows of the message
counters; keep it with the maps) and ``pending/`` (parts acknowledged, map
not written yet).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import queue
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import torch

from epic_zoo.data.geometry import NUM_SOURCES
from epic_zoo.deploy.export import CentralDecoder
from epic_zoo.deploy.records import records_size, unpack_records
from epic_zoo.deploy.security import (
    ENVELOPE_BYTES,
    AuthError,
    Credentials,
    ReplayGuard,
    verify,
    verify_status,
)
from epic_zoo.deploy.transport import NEVER_EXPIRES, LogThrottle, MqttLink, Topics, user_properties
from epic_zoo.models.codec import PayloadError, payload_size, unpack_payload

log = logging.getLogger(__name__)

REJECTIONS: tuple[str, ...] = (
    "unknown_device",
    "oversize",
    "corrupt",
    "bad_hmac",
    "duplicate",
    "replayed",
    "wrong_version",
    "wrong_shape",
    "late",
    "bad_status",
    "error",
)
"""Reasons a message is rejected, roughly in the order they are checked (``error``: unexpected;
``bad_status``: a status message that is not signed by its device or not newer than its last)."""
REPLAY_STATE: str = "replay_state.json"
"""File name of the persisted anti-replay windows in the central's output folder."""
PENDING: str = "pending"
"""Folder (in the central's output folder) of the accepted parts whose map is not written yet."""
_PART_HEADER_BYTES = 4096
"""Longest metadata line of a pending part file."""


def message_limits(manifest: Mapping[str, Any]) -> list[int]:
    """Bytes of the largest legitimate signed message of each device of a bundle.

    Latent mode: the codec payload of the device's latent shape at the
    codec's bit width; raw mode: the records frame ``[5, time_samples,
    n_k]``; plus the envelope (counter and tag, :data:`ENVELOPE_BYTES`).
    """
    if manifest["mode"] == "latent":
        bits = int(manifest["codec"]["bits"])
        sizes = [payload_size(shape, bits) for shape in manifest["latent_shapes"]]
    else:
        t = int(manifest["time_samples"])
        sizes = [records_size((NUM_SOURCES, t, len(r))) for r in manifest["receivers"]]
    return [size + ENVELOPE_BYTES for size in sizes]


@dataclass
class Sample:
    """The parts of one record gathered so far (``None`` where a device has not delivered).

    ``parts[k]`` is device ``k``'s latent (or raw records), ``arrivals[k]`` its
    arrival time on the assembler's clock (monotonic in the central),
    ``wall_arrivals[k]`` the epoch time, ``properties[k]`` its MQTT user
    properties and ``files[k]`` its file in the pending folder (if any).
    """

    sample_id: int
    num_devices: int
    first_arrival: float
    parts: list[Any] = field(init=False)
    arrivals: list[float | None] = field(init=False)
    wall_arrivals: list[float | None] = field(init=False)
    properties: list[dict[str, str]] = field(init=False)
    files: list[Path | None] = field(init=False)

    def __post_init__(self) -> None:
        self.parts = [None] * self.num_devices
        self.arrivals = [None] * self.num_devices
        self.wall_arrivals = [None] * self.num_devices
        self.properties = [{} for _ in range(self.num_devices)]
        self.files = [None] * self.num_devices

    @property
    def present(self) -> list[bool]:
        return [p is not None for p in self.parts]

    @property
    def partial(self) -> bool:
        return not all(self.present)


@dataclass(frozen=True)
class Admission:
    """Outcome of the checks before parsing (:meth:`Assembler.admit`).

    ``reason`` is ``None`` for an authentic, fresh message, whose ``payload``
    (envelope removed) and ``counter`` are then set.
    """

    reason: str | None
    device: int = -1
    payload: bytes = b""
    counter: int = -1


class Assembler:
    """Checks messages and groups them into samples; knows when a sample is ready.

    Pure logic, no I/O: the arrival time is passed in, so tests drive it with
    any clock. :meth:`admit` (bound, authenticate, replay check) and the
    counters are thread-safe, so the central runs it in the MQTT thread;
    :meth:`place` (parse, group) runs in one thread. :meth:`offer` is both.

    Args:
        manifest: the bundle's manifest (devices, model version, shapes, codec).
        keys: HMAC key of each device.
        deadline_s: wait at most this long after a sample's first payload.
        history: how many decoded sample ids are remembered to reject late
            messages (older ids are rejected as late too).
        replay: the devices' anti-replay windows (persisted by the
            caller with :meth:`ReplayGuard.save`); default: in memory only.
        written: whether a sample's map already exists (its parts are then
            ``late``; a map is never written twice).
    """

    def __init__(
        self,
        manifest: Mapping[str, Any],
        keys: Mapping[int, bytes],
        deadline_s: float,
        history: int = 100_000,
        replay: ReplayGuard | None = None,
        written: Callable[[int], bool] | None = None,
    ) -> None:
        if not (
            isinstance(deadline_s, (int, float)) and math.isfinite(deadline_s) and deadline_s > 0
        ):
            raise ValueError(f"deadline_s={deadline_s} must be a finite number > 0")
        if int(history) < 1:
            raise ValueError(f"history={history} must be >= 1")
        self.num_devices = int(manifest["num_devices"])
        missing = [k for k in range(self.num_devices) if k not in keys]
        if missing:
            raise ValueError(
                f"no HMAC key for device(s) {missing}; use the central credentials file"
            )
        self.keys = {int(k): bytes(v) for k, v in keys.items()}
        self.mode = manifest["mode"]
        self.model_version = int(manifest["model_version"])
        if self.mode == "latent":
            self.expect = [
                {
                    "shape": tuple(s),
                    "bits": manifest["codec"]["bits"],
                    # the header carries the scale as float32
                    "scale": float(np.float32(manifest["codec"]["scale"])),
                }
                for s in manifest["latent_shapes"]
            ]
        else:
            self.expect = [
                {"shape": (NUM_SOURCES, manifest["time_samples"], len(r))}
                for r in manifest["receivers"]
            ]
        self.max_bytes = message_limits(manifest)
        self.replay = replay if replay is not None else ReplayGuard()
        self.written = written or (lambda _sample_id: False)
        self.deadline_s = float(deadline_s)
        self.history = int(history)
        self.pending: dict[int, Sample] = {}
        self.finished: OrderedDict[int, None] = OrderedDict()
        self.online = [True] * self.num_devices
        self.last_sample = [-1] * self.num_devices
        self.counters: Counter[str] = Counter(
            {name: 0 for name in ("received", "accepted", *REJECTIONS, "non_finite")}
        )
        self._lock = threading.Lock()

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` (thread-safe)."""
        with self._lock:
            self.counters[name] += n

    def snapshot(self) -> dict[str, int]:
        """A consistent copy of the counters."""
        with self._lock:
            return dict(self.counters)

    def device_index(self, device_label: str) -> int | None:
        """Device index of a topic's last level, ``None`` unless exactly ``0 .. num_devices-1``."""
        if not isinstance(device_label, str) or not device_label.isdigit() or len(device_label) > 6:
            return None
        device = int(device_label)
        return device if device < self.num_devices and str(device) == device_label else None

    # ----------------------------------------------------------------- input
    def admit(self, device_label: str, message: bytes) -> Admission:
        """Bound, authenticate and replay-check one message, before reading a single header field.

        Counts ``received`` and any rejection; does not raise the replay mark
        (the caller does, with :meth:`ReplayGuard.advance`, once the message is safe).
        """
        self.count("received")
        device = self.device_index(device_label)
        if device is None:
            reason = "unknown_device"
        elif len(message) > self.max_bytes[device]:
            reason = "oversize"
        elif len(message) <= ENVELOPE_BYTES:
            reason = "corrupt"
        else:
            try:
                payload, counter = verify(self.keys[device], message)
            except AuthError:
                reason = "bad_hmac"
            else:
                reason = self.replay.check(device, counter)
                if reason == "fresh":
                    return Admission(None, device, payload, counter)
        self.count(reason)
        return Admission(reason)

    def _parse(self, device: int, payload: bytes) -> tuple[str | None, dict, Any]:
        try:
            if self.mode == "latent":
                header, part = unpack_payload(payload)
            else:
                header, part = unpack_records(payload)
        except PayloadError:
            return "corrupt", {}, None
        if header["device_id"] != device:
            return "unknown_device", header, None
        if header["model_version"] != self.model_version:
            return "wrong_version", header, None
        got = {key: header[key] for key in self.expect[device]}
        if got != self.expect[device]:
            return "wrong_shape", header, None
        return None, header, part

    def place(
        self,
        device: int,
        payload: bytes,
        arrival: float,
        properties: Mapping[str, str] | None = None,
        *,
        wall: float | None = None,
        file: Path | None = None,
    ) -> str:
        """Parse an admitted payload and put it into its sample; ``"accepted"`` or the rejection reason."""
        reason, header, part = self._parse(device, payload)
        if reason is None:
            sample_id = int(header["sample_id"])
            oldest = next(iter(self.finished), None)
            if (
                sample_id in self.finished
                or (
                    len(self.finished) >= self.history and oldest is not None and sample_id < oldest
                )
                or (sample_id not in self.pending and self.written(sample_id))
            ):
                reason = "late"
            elif sample_id in self.pending and self.pending[sample_id].parts[device] is not None:
                reason = "duplicate"
        if reason is not None:
            self.count(reason)
            return reason
        sample = self.pending.get(sample_id)
        if sample is None:
            sample = self.pending[sample_id] = Sample(
                sample_id, self.num_devices, first_arrival=arrival
            )
        sample.parts[device] = part
        sample.arrivals[device] = arrival
        sample.wall_arrivals[device] = time.time() if wall is None else wall
        sample.properties[device] = dict(properties or {})
        sample.files[device] = file
        if sample_id < self.last_sample[device]:
            self.count("reordered")
        self.last_sample[device] = max(self.last_sample[device], sample_id)
        self.count("accepted")
        return "accepted"

    def offer(
        self,
        device_label: str,
        message: bytes,
        arrival: float,
        properties: Mapping[str, str] | None = None,
    ) -> str:
        """Check one message from topic level ``device_label``; returns ``"accepted"`` or the rejection reason.

        :meth:`admit`, then (the counter is used up once it is authentic) :meth:`place`.
        """
        admitted = self.admit(device_label, bytes(message))
        if admitted.reason is not None:
            return admitted.reason
        self.replay.advance(admitted.device, admitted.counter)
        return self.place(admitted.device, admitted.payload, arrival, properties)

    def set_online(self, device_label: str, online: bool) -> None:
        """Record a device's (already verified) presence (unknown devices are ignored)."""
        device = self.device_index(device_label)
        if device is not None:
            self.online[device] = online

    def set_status(self, device_label: str, message: bytes) -> str:
        """Apply a status message if it is signed by that device and newer than its last one.

        Returns the word applied, ``"same"`` for the last status again (a
        retained message redelivered), or ``"bad_status"`` (counted) for
        anything else: unsigned, forged, another device's, or an older status.
        Thread-safe.
        """
        device = self.device_index(device_label)
        try:
            if device is None:
                raise AuthError("not a device")
            word, counter = verify_status(self.keys[device], bytes(message))
        except AuthError:
            self.count("bad_status")
            return "bad_status"
        if not self.replay.fresh_status(device, counter):
            if self.replay.status_high_water.get(device) == counter:
                return "same"  # the retained status again (a resubscription): no news
            self.count("bad_status")
            return "bad_status"
        with self._lock:
            self.online[device] = word == "online"
        return word

    # ---------------------------------------------------------------- output
    def _complete(self, sample: Sample) -> bool:
        return all(p is not None or not up for p, up in zip(sample.parts, self.online, strict=True))

    def ready(self, now: float) -> list[Sample]:
        """Remove and return the samples to decode now (complete, or past their deadline), by id."""
        out = [
            s
            for s in self.pending.values()
            if self._complete(s) or now >= s.first_arrival + self.deadline_s
        ]
        return [self._finish(s) for s in sorted(out, key=lambda s: s.sample_id)]

    def drain(self) -> list[Sample]:
        """Remove and return every pending sample."""
        return [self._finish(s) for s in sorted(self.pending.values(), key=lambda s: s.sample_id)]

    def _finish(self, sample: Sample) -> Sample:
        del self.pending[sample.sample_id]
        self.finished[sample.sample_id] = None
        while len(self.finished) > self.history:
            self.finished.popitem(last=False)
        self.count("partial" if sample.partial else "complete")
        return sample

    def next_deadline(self) -> float | None:
        """Arrival-clock time of the earliest pending deadline (``None`` if nothing is pending)."""
        if not self.pending:
            return None
        return min(s.first_arrival for s in self.pending.values()) + self.deadline_s


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes, *, replace: bool, sync: bool = True) -> bool:
    """Write ``data`` to ``path`` through a temporary file; ``False`` if ``path`` exists and not ``replace``.

    With ``sync`` the data reaches the disk (fsync) before the rename, so it
    survives a power loss; without, it survives the process being killed.
    The temporary file is removed whatever fails (e.g. ``ENOSPC``), so a
    failed write leaves nothing behind; the error is raised.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # atomic, and refuses an existing file
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


class PartStore:
    """The accepted parts whose map is not written yet, one file each in ``folder``.

    A file holds one JSON line (device, counter, arrival time, user
    properties) and the signed message exactly as it arrived, so a restarted
    central authenticates it again before it reads it. ``sync``: fsync each
    file (survives a power loss; costs a disk flush per part, 3.4 ms on the
    development VM's disk) or not (survives the process being killed).
    """

    def __init__(self, folder: str | Path, *, sync: bool = True) -> None:
        self.folder = Path(folder)
        self.sync = bool(sync)
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, device: int, counter: int, message: bytes, meta: Mapping[str, Any]) -> Path:
        """Store one part durably (``OSError`` if it cannot: nothing is left behind then)."""
        path = self.folder / f"{device:05d}-{counter:020d}.part"
        line = json.dumps({"device": device, "counter": counter, **meta}).encode() + b"\n"
        if len(line) > _PART_HEADER_BYTES:
            line = json.dumps({"device": device, "counter": counter}).encode() + b"\n"
        _write_new(path, line + bytes(message), replace=True, sync=self.sync)
        return path

    def remove(self, paths: list[Path | None]) -> None:
        """Delete parts whose map is written (or that were rejected); failures are logged."""
        for path in paths:
            if path is not None:
                try:
                    path.unlink(missing_ok=True)
                except OSError as err:
                    log.warning("could not remove pending part %s: %s", path, err)

    def load(self, max_bytes: int) -> list[tuple[Path, dict[str, Any], bytes]]:
        """Every stored part as ``(path, metadata, message)``, by counter; unreadable files are logged and skipped."""
        out = []
        for path in sorted(self.folder.glob("*.part")):
            try:
                if not path.is_file() or path.stat().st_size > max_bytes + _PART_HEADER_BYTES:
                    raise ValueError("not a regular file of a plausible size")
                data = path.read_bytes()
                line, sep, message = data.partition(b"\n")
                if not sep:
                    raise ValueError("no metadata line")
                meta = json.loads(line)
                if not isinstance(meta, dict):
                    raise ValueError("metadata is not an object")
                out.append((path, meta, message))
            except (OSError, ValueError, RecursionError) as err:
                log.error("ignored pending part %s: %s", path, err)
        return out


class MapWriter:
    """Writes ``maps/{id:08d}.npy`` (atomically, never over an existing map), ``timing.jsonl`` and ``summary.json``."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        (self.out / "maps").mkdir(parents=True, exist_ok=True)

    def map_path(self, sample_id: int) -> Path:
        return self.out / "maps" / f"{sample_id:08d}.npy"

    def exists(self, sample_id: int) -> bool:
        return self.map_path(sample_id).exists()

    def save_map(self, sample_id: int, velocity: np.ndarray) -> bool:
        """Write one map atomically; ``False`` (nothing written) if the map exists already.

        Raises:
            ValueError: the map holds NaN or inf (nothing is written).
            OSError: it could not be written (no temporary file is left).
        """
        velocity = np.asarray(velocity)
        if not np.isfinite(velocity).all():
            raise ValueError(f"map of sample {sample_id} holds NaN/inf; not written")
        buffer = io.BytesIO()
        np.save(buffer, velocity)
        return _write_new(self.map_path(sample_id), buffer.getvalue(), replace=False)

    def log(self, timing: Mapping[str, Any]) -> None:
        """Append one sample's timing line (one ``write`` call)."""
        line = (json.dumps(dict(timing)) + "\n").encode()
        fd = os.open(self.out / "timing.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def summary(self, data: Mapping[str, Any]) -> None:
        _write_new(
            self.out / "summary.json",
            (json.dumps(dict(data), indent=2) + "\n").encode(),
            replace=True,
        )

    def close(self) -> None:
        """Nothing is held open (kept for callers)."""


def _float(props: Mapping[str, str], key: str) -> float | None:
    try:
        value = float(props[key])
    except (KeyError, ValueError, TypeError):
        return None
    return value if math.isfinite(value) else None


class CentralNode:
    """The central process: MQTT in, :class:`Assembler`, :class:`CentralDecoder`, :class:`MapWriter` out.

    Args:
        bundle: bundle root or its ``central`` folder.
        credentials: the central's credentials (broker login + every device's HMAC key).
        address: broker ``(host, port)``.
        out: output folder.
        deadline_s: see :class:`Assembler`.
        topics: topic layout.
        ca_certs: CA file for a TLS broker (see :class:`~epic_zoo.deploy.transport.MqttLink`).
        replay_state: file of the devices' anti-replay windows (default
            ``out/replay_state.json``); read at start, rewritten as they rise.
        reset_replay_state: start without a replay state although ``out``
            holds maps or pending parts (otherwise refused: a lost state lets
            captured messages be replayed).
        retry_s: back-off before a failed write (disk full) is tried again.
        sync_parts: fsync every stored part before acknowledging it (see :class:`PartStore`).

    Everything that can fail on the operator's input (bundle, credentials,
    output folder, replay state) is checked here, before connecting.
    """

    def __init__(
        self,
        bundle: str | Path,
        credentials: Credentials,
        address: tuple[str, int],
        out: str | Path,
        *,
        deadline_s: float = 1.0,
        topics: Topics | None = None,
        ca_certs: str | Path | None = None,
        replay_state: str | Path | None = None,
        reset_replay_state: bool = False,
        retry_s: float = 1.0,
        sync_parts: bool = True,
    ) -> None:
        if not (math.isfinite(retry_s) and retry_s > 0):
            raise ValueError(f"retry_s={retry_s} must be a finite number > 0")
        self.decoder = CentralDecoder(bundle)
        self.topics = topics or Topics()
        self.writer = MapWriter(out)
        state = Path(replay_state) if replay_state is not None else self.writer.out / REPLAY_STATE
        self.parts = PartStore(self.writer.out / PENDING, sync=sync_parts)
        if not state.exists() and not reset_replay_state:
            maps = next(iter((self.writer.out / "maps").glob("*.npy")), None)
            pending = next(iter(self.parts.folder.glob("*.part")), None)
            if maps is not None or pending is not None:
                raise ValueError(
                    f"replay state {state} is missing but {self.writer.out} holds "
                    f"{'maps' if maps is not None else 'pending parts'}: restore it from a backup "
                    "(without it, captured messages can be replayed), or pass "
                    "--reset-replay-state to start a new one anyway"
                )
        self.replay = ReplayGuard(state)
        if not state.exists():  # from now on a missing file means it was lost
            try:
                self.replay.save(force=True)
            except OSError as err:
                raise OSError(
                    f"cannot write the replay state {state} ({err.strerror or err}); "
                    "pass a writable --out"
                ) from None
        self.assembler = Assembler(
            self.decoder.manifest,
            credentials.keys(),
            deadline_s,
            replay=self.replay,
            written=self.writer.exists,
        )
        self.retry_s = float(retry_s)
        self._reported: dict[str, int] | None = None
        self._reported_at = -math.inf
        self.inbox: queue.Queue[tuple[int, bytes, float, float, dict[str, str], Path]] = (
            queue.Queue()
        )
        self._held: deque[mqtt.MQTTMessage] = deque()  # not stored yet (disk full): not acked
        self._held_lock = threading.Lock()
        self._held_retry = 0.0
        self._unwritten: list[Sample] = []  # decoded-to-be, waiting for a writable disk
        self._write_retry = 0.0
        self._throttle = LogThrottle(log)
        self.written = 0
        self.stop = threading.Event()
        self._restore()
        self.link = MqttLink(
            "central",
            credentials,
            address,
            on_message=self._receive,
            subscriptions=[self.topics.data("+"), self.topics.status("+")],
            status_topic=self.topics.status("central"),
            ca_certs=ca_certs,
            session_expiry_s=NEVER_EXPIRES,
            manual_ack=True,
        )

    # ------------------------------------------------------------ restart
    def _restore(self) -> None:
        """Put the parts a previous run stored (and did not write a map for) back into their samples."""
        limit = max(self.assembler.max_bytes)
        now = time.monotonic()
        restored = 0
        for path, meta, message in self.parts.load(limit):
            device = self.assembler.device_index(str(meta.get("device")))
            try:
                if device is None or len(message) > self.assembler.max_bytes[device]:
                    raise AuthError("not a part of this bundle's devices")
                payload, counter = verify(self.assembler.keys[device], message)
            except AuthError as err:
                log.error("ignored pending part %s: %s", path, err)
                continue
            self.replay.advance(device, counter)  # it was accepted: its counter is used up
            props = meta.get("properties") if isinstance(meta.get("properties"), dict) else {}
            wall = _float({"w": meta.get("wall")}, "w") if "wall" in meta else None
            outcome = self.assembler.place(device, payload, now, props, wall=wall, file=path)
            if outcome == "accepted":
                restored += 1
            else:
                self.parts.remove([path])
        if restored:
            log.info("restored %d pending part(s) from %s", restored, self.parts.folder)

    # ---------------------------------------------------------- MQTT thread
    def _receive(self, message: mqtt.MQTTMessage) -> None:
        """paho thread: authenticate, store, then acknowledge (never raises)."""
        try:
            with self._held_lock:
                if self._held:  # keep the order: nothing overtakes a held message
                    if message.qos == 0:  # devices send QoS 1; QoS 0 has no in-flight bound
                        self.assembler.count("dropped_qos0")
                        return
                    self._held.append(message)
                    return
                try:
                    self._accept(message)
                except OSError as err:
                    self.assembler.count("received", -1)  # counted once, when it is stored
                    self._held.append(message)
                    self._held_retry = time.monotonic() + self.retry_s
                    self._throttle(
                        logging.ERROR,
                        "store",
                        "cannot store an accepted part in %s (%s): not acknowledged, "
                        "holding it and retrying",
                        self.parts.folder,
                        err,
                    )
        except Exception:  # a bug, not bad input: counted, and acknowledged so it cannot
            # fill the broker's in-flight window and stall everything behind it
            self.assembler.count("error")
            self._throttle(logging.ERROR, "receive", "unexpected error on a message", exc_info=True)
            try:
                self.link.ack(message)
            except Exception:
                pass

    def _accept(self, message: mqtt.MQTTMessage) -> None:
        """Check one message; store accepted parts; acknowledge. ``OSError``: not stored, not acked."""
        topic = message.topic
        payload = bytes(message.payload)
        device_label = self.topics.device_of(topic)
        if device_label is not None:
            admitted = self.assembler.admit(device_label, payload)
            if admitted.reason is not None:
                self._throttle(
                    logging.WARNING,
                    admitted.reason,
                    "rejected %d-byte message on %s: %s",
                    len(payload),
                    topic,
                    admitted.reason,
                )
            else:
                wall = time.time()
                props = user_properties(message)
                path = self.parts.write(
                    admitted.device,
                    admitted.counter,
                    payload,
                    {"wall": wall, "properties": props},
                )
                self.replay.advance(admitted.device, admitted.counter)
                self.inbox.put(
                    (admitted.device, admitted.payload, time.monotonic(), wall, props, path)
                )
        else:
            prefix = self.topics.status("")
            label = topic[len(prefix) :] if topic.startswith(prefix) else None
            if label is not None and label != "central":
                if self.assembler.set_status(label, payload) == "bad_status":
                    self._throttle(
                        logging.WARNING,
                        "bad_status",
                        "ignored unsigned or stale status on %s",
                        topic,
                    )
        self.link.ack(message)

    def _retry_held(self) -> None:
        """Main thread: store and acknowledge held messages, in order, once the disk takes them."""
        if time.monotonic() < self._held_retry:
            return
        with self._held_lock:
            while self._held:
                try:
                    self._accept(self._held[0])
                except OSError:
                    self.assembler.count("received", -1)
                    self._held_retry = time.monotonic() + self.retry_s
                    return
                except Exception:
                    self.assembler.count("error")
                    log.error("unexpected error on a held message", exc_info=True)
                self._held.popleft()
            log.info("pending parts are stored again; held messages acknowledged")

    # ------------------------------------------------------------ main loop
    def _place(self, item: tuple[int, bytes, float, float, dict[str, str], Path]) -> None:
        device, payload, arrival, wall, props, path = item
        outcome = self.assembler.place(device, payload, arrival, props, wall=wall, file=path)
        if outcome != "accepted":
            self.parts.remove([path])
            self._throttle(
                logging.WARNING, outcome, "rejected a message of device %d: %s", device, outcome
            )

    def _emit(self, sample: Sample) -> bool:
        """Decode and write one sample; ``False`` if the disk refused (the sample is kept for a retry)."""
        start = time.time()
        velocity = self.decoder.decode(sample.parts)
        decoded = time.time()
        try:
            fresh = self.writer.save_map(sample.sample_id, velocity)
        except ValueError:
            self.assembler.count("non_finite")
            log.error("sample %d decoded to NaN/inf; no map written", sample.sample_id)
            self.parts.remove(sample.files)
            return True
        except OSError as err:
            self._throttle(
                logging.ERROR,
                "write",
                "cannot write map %d (%s); keeping its parts and retrying",
                sample.sample_id,
                err,
            )
            return False
        if not fresh:
            self.assembler.count("late")
            log.warning("map %d exists already; not overwritten", sample.sample_id)
            self.parts.remove(sample.files)
            return True
        releases = [r for p in sample.properties if (r := _float(p, "t_release")) is not None]
        arrivals = [a for a in sample.wall_arrivals if a is not None]
        done = time.time()
        timing = {
            "sample_id": sample.sample_id,
            "partial": sample.partial,
            "present": sample.present,
            "t_release": min(releases) if releases else None,
            "t_first_arrival": min(arrivals),
            "t_last_arrival": max(arrivals),
            "t_decode_start": start,
            "decode_s": decoded - start,
            "t_done": done,
            "latency_s": done - min(releases) if releases else None,
        }
        self.written += 1
        self.parts.remove(sample.files)
        self._guarded("timing.jsonl", "error", self.writer.log, timing)
        self._guarded(
            "the done notice",
            "error",
            self.link.publish,
            self.topics.done,
            json.dumps(timing).encode(),
        )
        return True

    def _write_samples(self, samples: list[Sample]) -> None:
        """Save the replay state, then write maps; on a refusing disk keep them for a retry."""
        todo = self._unwritten + samples
        if not todo:
            return
        if not samples and time.monotonic() < self._write_retry:
            return
        try:
            self.replay.save()
        except OSError as err:
            self._unwritten = todo
            self._write_retry = time.monotonic() + self.retry_s
            self._throttle(
                logging.ERROR,
                "replay",
                "cannot save the replay state %s (%s): no map is written until it can be",
                self.replay.path,
                err,
            )
            return
        self._unwritten = []
        for i, sample in enumerate(todo):
            try:
                ok = self._emit(sample)
            except Exception:
                self.assembler.count("decode_error")
                log.error(
                    "unexpected error while decoding sample %d", sample.sample_id, exc_info=True
                )
                ok = True  # its parts stay in pending/ for a later run
            if not ok:
                self._unwritten = todo[i:]
                self._write_retry = time.monotonic() + self.retry_s
                return

    def _guarded(self, what: str, counter: str, func: Callable[..., object], *args: Any) -> None:
        """Run one unit of work; anything unexpected is logged and counted, never raised."""
        try:
            func(*args)
        except Exception:  # the per-message guard: one bad input never ends the central
            self.assembler.count(counter)
            self._throttle(
                logging.ERROR,
                f"guard-{what}",
                "unexpected error while handling %s (counted as %r)",
                what,
                counter,
                exc_info=True,
            )

    def _report(self, force: bool = False) -> None:
        """Rewrite ``summary.json`` if a counter changed (at most every 0.25 s unless ``force``)."""
        now = time.monotonic()
        if not force and now - self._reported_at < 0.25:
            return
        counters = self.assembler.snapshot()
        if counters != self._reported:
            self._reported_at = now
            try:
                self.writer.summary(self.summary(counters))
                self._reported = counters
            except OSError as err:
                self._throttle(logging.ERROR, "summary", "cannot write summary.json: %s", err)

    def summary(self, counters: Mapping[str, int] | None = None) -> dict[str, Any]:
        return {
            "model": self.decoder.manifest["name"],
            "model_version": self.decoder.model_version,
            "deadline_s": self.assembler.deadline_s,
            "written": self.written,
            "pending_samples": len(self.assembler.pending) + len(self._unwritten),
            "counters": dict(counters if counters is not None else self.assembler.snapshot()),
        }

    def run(
        self, max_samples: int | None = None, duration_s: float | None = None
    ) -> dict[str, Any]:
        """Serve until ``max_samples`` maps are written, ``duration_s`` passed, or :attr:`stop` is set.

        Samples still incomplete when it returns stay in ``pending/`` (their
        parts are acknowledged and on disk) and are completed by the next run.
        Returns :meth:`summary`.
        """
        self.link.connect()
        end = None if duration_s is None else time.monotonic() + duration_s
        try:
            while not self.stop.is_set():
                if max_samples is not None and self.written >= max_samples:
                    break
                if end is not None and time.monotonic() >= end:
                    break
                due = self.assembler.next_deadline()
                wait = 0.05 if due is None else min(0.05, max(0.0, due - time.monotonic()))
                try:
                    item = self.inbox.get(timeout=wait)
                    while True:  # take everything that is already there
                        self._guarded("a message", "error", self._place, item)
                        item = self.inbox.get_nowait()
                except queue.Empty:
                    pass
                if self._held:
                    self._guarded("held messages", "error", self._retry_held)
                self._write_samples(self.assembler.ready(time.monotonic()))
                self._report()
        finally:
            self.link.close()  # parts stored but not placed yet are in pending/ for the next run
            self._guarded("the replay state", "error", self.replay.save)
            self._report(force=True)
        return self.summary()


def configure_threads(threads: int) -> None:
    """Torch intra-op threads for this process (1 on a shared CPU)."""
    torch.set_num_threads(max(1, int(threads)))

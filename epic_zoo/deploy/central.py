"""The central node: collect each record's device payloads, decode, write the velocity map.

``python -m epic_zoo.deploy central --bundle DIR --credentials central.json
--broker HOST:PORT --out OUT`` subscribes to every device's data topic and,
per sample id, keeps the latents that arrive (:class:`Assembler`). A sample is
decoded when every device that is online has delivered, or ``deadline_s``
after its first payload arrived, whichever comes first; then the presence
mask leaves out the devices that did not deliver and the map is marked
*partial*. A device whose connection drops is seen offline at once (its
retained last will), so the central does not wait the deadline for it.

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
``replayed``          the counter is below device ``k``'s high-water mark: an
                      old message sent again (also across central restarts:
                      the marks persist in ``replay_state.json``)
``wrong_version``     header ``model_version`` is not the bundle's
``wrong_shape``       latent shape / bit width / scale (or records shape)
                      is not what device ``k`` sends
``late``              its sample was already decoded (after the deadline)
====================  =====================================================

Anything unexpected while handling one message (or decoding one sample) is
logged and counted as ``error`` (``decode_error``); :meth:`CentralNode.run`
never ends on bad input. ``summary.json`` is rewritten whenever a counter
changes, so rejections are visible at once.

Reordered messages (a device's sample id below one it sent before, with a
higher counter) are accepted into their own sample and counted as
``reordered``; samples are keyed by id, so parts of different samples are
never mixed.

Output (``OUT``): ``maps/{sample_id:08d}.npy`` (velocity ``[70, 70]`` float32,
m/s), ``timing.jsonl`` (one line per sample: presence, partial flag, arrival,
decode and end-to-end times), ``summary.json`` (counters), ``replay_state.json`` (per-device high-water
marks of the message counters; keep it with the maps).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import Counter, OrderedDict
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
)
from epic_zoo.deploy.transport import MqttLink, Topics, user_properties
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
    "error",
)
"""Reasons a message is rejected, roughly in the order they are checked (``error``: unexpected)."""
REPLAY_STATE: str = "replay_state.json"
"""File name of the persisted high-water marks in the central's output folder."""


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
    arrival time and ``properties[k]`` its MQTT user properties.
    """

    sample_id: int
    num_devices: int
    first_arrival: float
    parts: list[Any] = field(init=False)
    arrivals: list[float | None] = field(init=False)
    properties: list[dict[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.parts = [None] * self.num_devices
        self.arrivals = [None] * self.num_devices
        self.properties = [{} for _ in range(self.num_devices)]

    @property
    def present(self) -> list[bool]:
        return [p is not None for p in self.parts]

    @property
    def partial(self) -> bool:
        return not all(self.present)


class Assembler:
    """Checks messages and groups them into samples; knows when a sample is ready.

    Pure logic, no I/O: the MQTT thread's arrival time is passed in, so tests
    drive it with any clock.

    Args:
        manifest: the bundle's manifest (devices, model version, shapes, codec).
        keys: HMAC key of each device.
        deadline_s: wait at most this long after a sample's first payload.
        history: how many decoded sample ids are remembered to reject late
            messages (older ids are rejected as late too).
        replay: the devices' counter high-water marks (persisted by the
            caller with :meth:`ReplayGuard.save`); default: in memory only.
    """

    def __init__(
        self,
        manifest: Mapping[str, Any],
        keys: Mapping[int, bytes],
        deadline_s: float,
        history: int = 100_000,
        replay: ReplayGuard | None = None,
    ) -> None:
        if deadline_s <= 0:
            raise ValueError(f"deadline_s={deadline_s} must be > 0")
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
        self.deadline_s = float(deadline_s)
        self.history = int(history)
        self.pending: dict[int, Sample] = {}
        self.finished: OrderedDict[int, None] = OrderedDict()
        self.online = [True] * self.num_devices
        self.last_sample = [-1] * self.num_devices
        self.counters: Counter[str] = Counter({name: 0 for name in REJECTIONS})

    # ----------------------------------------------------------------- input
    def _parse(self, device: int, message: bytes) -> tuple[str | None, dict, Any]:
        # Bound and authenticate before reading a single header field.
        if len(message) > self.max_bytes[device]:
            return "oversize", {}, None
        if len(message) <= ENVELOPE_BYTES:
            return "corrupt", {}, None
        try:
            payload, counter = verify(self.keys[device], message)
        except AuthError:
            return "bad_hmac", {}, None
        freshness = self.replay.check(device, counter)
        if freshness != "fresh":
            return freshness, {}, None
        self.replay.advance(device, counter)  # authentic: this counter is used up
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

    def offer(
        self,
        device_label: str,
        message: bytes,
        arrival: float,
        properties: Mapping[str, str] | None = None,
    ) -> str:
        """Check one message from topic level ``device_label``; returns ``"accepted"`` or the rejection reason."""
        self.counters["received"] += 1
        try:
            device = int(device_label)
        except (TypeError, ValueError):
            device = -1
        if not 0 <= device < self.num_devices or str(device) != str(device_label):
            reason = "unknown_device"
        else:
            reason, header, part = self._parse(device, bytes(message))
            if reason is None:
                sample_id = int(header["sample_id"])
                oldest = next(iter(self.finished), None)
                if sample_id in self.finished or (
                    len(self.finished) >= self.history and oldest is not None and sample_id < oldest
                ):
                    reason = "late"
                elif (
                    sample_id in self.pending and self.pending[sample_id].parts[device] is not None
                ):
                    reason = "duplicate"
        if reason is not None:
            self.counters[reason] += 1
            return reason
        sample = self.pending.get(sample_id)
        if sample is None:
            sample = self.pending[sample_id] = Sample(
                sample_id, self.num_devices, first_arrival=arrival
            )
        sample.parts[device] = part
        sample.arrivals[device] = arrival
        sample.properties[device] = dict(properties or {})
        if sample_id < self.last_sample[device]:
            self.counters["reordered"] += 1
        self.last_sample[device] = max(self.last_sample[device], sample_id)
        self.counters["accepted"] += 1
        return "accepted"

    def set_online(self, device_label: str, online: bool) -> None:
        """Record a device's status message (unknown devices are ignored)."""
        if device_label.isdigit() and int(device_label) < self.num_devices:
            self.online[int(device_label)] = online

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
        """Remove and return every pending sample (at shutdown)."""
        return [self._finish(s) for s in sorted(self.pending.values(), key=lambda s: s.sample_id)]

    def _finish(self, sample: Sample) -> Sample:
        del self.pending[sample.sample_id]
        self.finished[sample.sample_id] = None
        while len(self.finished) > self.history:
            self.finished.popitem(last=False)
        self.counters["partial" if sample.partial else "complete"] += 1
        return sample

    def next_deadline(self) -> float | None:
        """Arrival-clock time of the earliest pending deadline (``None`` if nothing is pending)."""
        if not self.pending:
            return None
        return min(s.first_arrival for s in self.pending.values()) + self.deadline_s


class MapWriter:
    """Writes ``maps/{id:08d}.npy`` (atomically), ``timing.jsonl`` and ``summary.json`` under ``out``."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        (self.out / "maps").mkdir(parents=True, exist_ok=True)
        self._timing = open(self.out / "timing.jsonl", "a", encoding="utf-8")

    def save_map(self, sample_id: int, velocity: np.ndarray) -> Path:
        """Write one map atomically (temporary file, then rename)."""
        path = self.out / "maps" / f"{sample_id:08d}.npy"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, velocity)
        os.replace(tmp, path)
        return path

    def log(self, timing: Mapping[str, Any]) -> None:
        """Append one sample's timing line."""
        self._timing.write(json.dumps(dict(timing)) + "\n")
        self._timing.flush()

    def summary(self, data: Mapping[str, Any]) -> None:
        tmp = self.out / "summary.json.tmp"
        tmp.write_text(json.dumps(dict(data), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.out / "summary.json")

    def close(self) -> None:
        self._timing.close()


def _float(props: Mapping[str, str], key: str) -> float | None:
    try:
        return float(props[key])
    except (KeyError, ValueError):
        return None


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
        replay_state: file of the devices' counter high-water marks (default
            ``out/replay_state.json``); read at start, rewritten as they rise.

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
    ) -> None:
        self.decoder = CentralDecoder(bundle)
        self.topics = topics or Topics()
        self.writer = MapWriter(out)
        self.replay = ReplayGuard(
            replay_state if replay_state is not None else self.writer.out / REPLAY_STATE
        )
        self.assembler = Assembler(
            self.decoder.manifest, credentials.keys(), deadline_s, replay=self.replay
        )
        self._reported: dict[str, int] | None = None
        self.inbox: queue.Queue[tuple[str, bytes, float, dict[str, str]]] = queue.Queue()
        self.written = 0
        self.stop = threading.Event()
        self.link = MqttLink(
            "central",
            credentials,
            address,
            on_message=self._receive,
            subscriptions=[self.topics.data("+"), self.topics.status("+")],
            status_topic=self.topics.status("central"),
            ca_certs=ca_certs,
        )

    def _receive(self, message: mqtt.MQTTMessage) -> None:
        """paho thread: stamp the arrival and hand over (no work here)."""
        self.inbox.put(
            (message.topic, bytes(message.payload), time.time(), user_properties(message))
        )

    def _handle(self, topic: str, payload: bytes, arrival: float, props: dict[str, str]) -> None:
        device = self.topics.device_of(topic)
        if device is not None:
            outcome = self.assembler.offer(device, payload, arrival, props)
            if outcome != "accepted":
                log.warning("rejected %d-byte message on %s: %s", len(payload), topic, outcome)
            return
        prefix = self.topics.status("")
        if topic.startswith(prefix):
            self.assembler.set_online(topic[len(prefix) :], payload == b"online")

    def _emit(self, sample: Sample) -> None:
        start = time.time()
        velocity = self.decoder.decode(sample.parts)
        decoded = time.time()
        releases = [r for p in sample.properties if (r := _float(p, "t_release")) is not None]
        arrivals = [a for a in sample.arrivals if a is not None]
        timing = {
            "sample_id": sample.sample_id,
            "partial": sample.partial,
            "present": sample.present,
            "t_release": min(releases) if releases else None,
            "t_first_arrival": min(arrivals),
            "t_last_arrival": max(arrivals),
            "t_decode_start": start,
            "decode_s": decoded - start,
        }
        self.writer.save_map(sample.sample_id, velocity)
        timing["t_done"] = done = time.time()
        timing["latency_s"] = done - timing["t_release"] if releases else None
        self.writer.log(timing)
        self.written += 1
        self.link.publish(self.topics.done, json.dumps(timing).encode())

    def _guarded(self, what: str, counter: str, func: Callable[..., object], *args: Any) -> None:
        """Run one unit of work; anything unexpected is logged and counted, never raised."""
        try:
            func(*args)
        except Exception:  # the per-message guard: one bad input never ends the central
            self.assembler.counters[counter] += 1
            log.error(
                "unexpected error while handling %s (counted as %r)", what, counter, exc_info=True
            )

    def _checkpoint(self) -> None:
        """Persist the replay marks, then ``summary.json`` if any counter changed since the last write."""
        self._guarded("the replay state", "error", self.replay.save)
        counters = dict(self.assembler.counters)
        if counters != self._reported:
            self._guarded("summary.json", "error", self.writer.summary, self.summary())
            self._reported = counters

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.decoder.manifest["name"],
            "model_version": self.decoder.model_version,
            "deadline_s": self.assembler.deadline_s,
            "written": self.written,
            "counters": dict(self.assembler.counters),
        }

    def run(
        self, max_samples: int | None = None, duration_s: float | None = None
    ) -> dict[str, Any]:
        """Serve until ``max_samples`` maps are written, ``duration_s`` passed, or :attr:`stop` is set.

        Pending samples are decoded (partial) before returning. Returns :meth:`summary`.
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
                wait = 0.05 if due is None else min(0.05, max(0.0, due - time.time()))
                try:
                    item = self.inbox.get(timeout=wait)
                    while True:  # take everything that is already there
                        self._guarded(f"a message on {item[0]}", "error", self._handle, *item)
                        item = self.inbox.get_nowait()
                except queue.Empty:
                    pass
                self._checkpoint()  # before any map: replay marks on disk, counters current
                for sample in self.assembler.ready(time.time()):
                    self._guarded(f"sample {sample.sample_id}", "decode_error", self._emit, sample)
                self._checkpoint()
            for sample in self.assembler.drain():
                self._guarded(f"sample {sample.sample_id}", "decode_error", self._emit, sample)
        finally:
            self.replay.save()
            self.writer.summary(self.summary())
            self.writer.close()
            self.link.close()
        return self.summary()


def configure_threads(threads: int) -> None:
    """Torch intra-op threads for this process (1 on a shared CPU)."""
    torch.set_num_threads(max(1, int(threads)))

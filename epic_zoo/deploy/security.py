"""Who may talk: per-device broker credentials and HMAC keys, the signed envelope, replay memory.

Two independent checks guard the central node:

1. **The broker** (mosquitto) admits only known users (``allow_anonymous
   false``, a hashed password file) and its ACL lets user ``device-k`` publish
   only on device ``k``'s topics (:mod:`epic_zoo.deploy.broker`). A device
   that lost its password cannot connect; one that tries another device's
   topic is silently dropped by the broker.
2. **The envelope**: every payload travels as ``payload || counter || tag``
   (:func:`sign`). ``counter`` is a 64-bit big-endian message counter that
   the device never repeats and never lowers (:class:`MessageCounter`:
   microseconds of the device clock, forced strictly increasing); ``tag`` is
   HMAC-SHA256 over a domain string, the counter and the payload under
   device ``k``'s own 32-byte key, truncated to :data:`TAG_BYTES` (RFC 2104
   section 5 allows a truncated tag of at least half the hash; 128 bits
   here). The central checks the tag in constant time with the key of the
   device whose topic the message came on, *before* it parses anything
   (:func:`verify`), then checks the counter against the device's persisted
   anti-replay window (:class:`ReplayGuard`): a counter accepted before, or
   at or below the window's floor, is a replay and is dropped, also after
   the central restarts.

:func:`provision` writes one JSON file per principal (``device-k.json``,
``central.json``, ``operator.json``) with mode 0600, also over an existing
file of another mode (:func:`write_private`); copy each device's file to that
device only. The central's file holds every device's HMAC key.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import os
import secrets
import struct
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

TAG_BYTES: int = 16
"""Bytes of the truncated HMAC-SHA256 tag appended to every payload."""
KEY_BYTES: int = 32
"""Bytes of a device's HMAC key (the SHA-256 block-size recommendation of RFC 2104 is >= 32)."""
COUNTER_BYTES: int = 8
"""Bytes of the signed message counter (uint64, big-endian) between payload and tag."""
ENVELOPE_BYTES: int = COUNTER_BYTES + TAG_BYTES
"""Bytes :func:`sign` adds to a payload."""
_COUNTER = struct.Struct(">Q")
_DOMAIN = b"epic_zoo.deploy/2\x00"
"""Prefix mixed into every data tag, so a tag made for another protocol (or envelope version 1,
which had no counter) never verifies here."""
STATUS_DOMAIN = b"epic_zoo.deploy/status/1\x00"
"""Prefix of status tags: a signed status never verifies as data, nor data as a status."""
STATUS_WORDS: tuple[str, ...] = ("online", "offline")
"""The words a device's signed status message may carry."""

CENTRAL_USER: str = "central"
OPERATOR_USER: str = "operator"


class AuthError(ValueError):
    """A payload whose HMAC tag does not verify with its device's key."""


def device_user(device_index: int) -> str:
    """Broker user name of end device ``k`` (``device-k``)."""
    return f"device-{int(device_index)}"


def new_key() -> bytes:
    """A fresh random HMAC key (:data:`KEY_BYTES` bytes from :mod:`secrets`)."""
    return secrets.token_bytes(KEY_BYTES)


def tag(key: bytes, payload: bytes, counter: int, domain: bytes = _DOMAIN) -> bytes:
    """HMAC-SHA256 of ``domain || counter || payload`` under ``key``, truncated to :data:`TAG_BYTES`."""
    if len(key) < 16:
        raise ValueError(f"HMAC key of {len(key)} bytes is too short; use new_key() (32 bytes)")
    return hmac.new(key, domain + _COUNTER.pack(counter) + payload, hashlib.sha256).digest()[
        :TAG_BYTES
    ]


def sign(key: bytes, payload: bytes, counter: int, domain: bytes = _DOMAIN) -> bytes:
    """``payload || counter || tag``: what a device publishes.

    Args:
        key: the device's HMAC key.
        payload: codec payload or records frame.
        counter: this message's counter, ``0 <= counter < 2**64``, higher than
            every counter the device used before (:class:`MessageCounter`).
        domain: what the message is (data by default; :data:`STATUS_DOMAIN` for statuses).
    """
    counter = int(counter)
    if not 0 <= counter < 2**64:
        raise ValueError(f"message counter {counter} is outside 0..2**64-1")
    payload = bytes(payload)
    return payload + _COUNTER.pack(counter) + tag(key, payload, counter, domain)


def sign_status(key: bytes, word: str, counter: int) -> bytes:
    """A device's signed status message (``"online"`` or ``"offline"``, see :data:`STATUS_WORDS`)."""
    if word not in STATUS_WORDS:
        raise ValueError(f"status {word!r} is not one of {STATUS_WORDS}")
    return sign(key, word.encode(), counter, STATUS_DOMAIN)


def verify_status(key: bytes, message: bytes) -> tuple[str, int]:
    """``(word, counter)`` of a signed status message; :class:`AuthError` if it is not one.

    The length is bounded before the tag is computed (a status is a few bytes).
    """
    if len(message) > max(map(len, STATUS_WORDS)) + ENVELOPE_BYTES:
        raise AuthError(f"status message of {len(message)} bytes is longer than any status")
    payload, counter = verify(key, message, STATUS_DOMAIN)
    word = payload.decode("ascii", errors="replace")
    if word not in STATUS_WORDS:
        raise AuthError(f"signed status {word!r} is not one of {STATUS_WORDS}")
    return word, counter


def status_word(message: bytes) -> str:
    """The word of a status message, NOT verified: for display only (the operator's view).

    Signed device statuses (:func:`sign_status`) and the central's plain ones both read.
    """
    message = bytes(message)
    if message.decode("ascii", errors="replace") in STATUS_WORDS:
        return message.decode("ascii")
    return message[:-ENVELOPE_BYTES].decode("ascii", errors="replace")


def verify(key: bytes, message: bytes, domain: bytes = _DOMAIN) -> tuple[bytes, int]:
    """Check a signed message's tag (constant time) before anything reads it; returns ``(payload, counter)``.

    Raises:
        AuthError: the message is too short to hold the envelope or the tag
            does not match (forged, signed with another device's key, or
            altered in transit).
    """
    message = bytes(message)
    if len(message) <= ENVELOPE_BYTES:
        raise AuthError(f"message of {len(message)} bytes is too short to hold an HMAC tag")
    body, got = message[:-TAG_BYTES], message[-TAG_BYTES:]
    payload, (counter,) = body[:-COUNTER_BYTES], _COUNTER.unpack(body[-COUNTER_BYTES:])
    if not hmac.compare_digest(got, tag(key, payload, counter, domain)):
        raise AuthError("HMAC tag does not verify: forged payload or another device's key")
    return payload, counter


class MessageCounter:
    """A device's message counter: microseconds of the wall clock, strictly increasing.

    Time-based so that a restarted device continues above every counter it
    used before without storing anything, provided its clock does not go
    back (keep it synchronised, e.g. NTP; a board without a real-time clock
    must not send before it has the time). ``next()`` is thread-safe.
    """

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        """The next counter: ``max(now in µs, previous + 1)``."""
        with self._lock:
            self._last = max(time.time_ns() // 1000, self._last + 1)
            return self._last


REPLAY_FORMAT = "epic_zoo.deploy.replay/1"


class ReplayGuard:
    """Per-device anti-replay windows over the signed message counters, optionally persisted.

    Like the anti-replay window of IPsec (RFC 4303 section 3.4.3): per device,
    the last :attr:`window` counters accepted are remembered, and every counter
    at or below the oldest of them that was forgotten (the *floor*) is refused.
    :meth:`check` classifies an authenticated data counter: ``"fresh"`` (never
    accepted and above the floor: a message that arrives after a later one,
    e.g. a QoS 1 retransmission overtaken by a re-sent record, is not lost),
    ``"duplicate"`` (the last one accepted again, e.g. a QoS 1 redelivery) or
    ``"replayed"`` (accepted before, or at or below the floor).
    :meth:`advance` records an accepted counter; :meth:`save` writes the
    windows (atomically, only if they changed) to ``path``, which a restarted
    central reads back, so a message captured before the restart is still
    refused. Status messages have marks of their own (:meth:`fresh_status`):
    a device signs its last will before the data it sends later, so one mark
    for both would refuse every will.

    Thread-safe (the central checks in the MQTT thread and saves in its main loop).

    Args:
        path: JSON file of the windows (``None``: in memory only).
        window: counters remembered per device.
    """

    def __init__(self, path: str | Path | None = None, window: int = 256) -> None:
        if int(window) < 1:
            raise ValueError(f"window={window} must be >= 1")
        self.path = Path(path) if path is not None else None
        self.window = int(window)
        self.high_water: dict[int, int] = {}
        self.floor: dict[int, int] = {}
        self._seen: dict[int, set[int]] = {}
        self._heap: dict[int, list[int]] = {}
        self.status_high_water: dict[int, int] = {}
        self._dirty = False
        self._lock = threading.Lock()
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if data.get("format") != REPLAY_FORMAT:
                    raise ValueError(f"format is {data.get('format')!r}, not {REPLAY_FORMAT!r}")
                self.high_water = {int(k): int(v) for k, v in data["high_water"].items()}
                # a state without windows (older files): nothing below the mark is accepted
                self.floor = {int(k): int(v) for k, v in data.get("floor", self.high_water).items()}
                for k, values in data.get("window", {}).items():
                    for value in values:
                        self._remember(int(k), int(value))
                self.status_high_water = {
                    int(k): int(v) for k, v in data.get("status_high_water", {}).items()
                }
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                raise ValueError(
                    f"replay state {self.path} is unreadable ({err}); restore it from a backup. "
                    "Deleting it makes the central accept replays of any message it saw before"
                ) from None

    def _remember(self, device: int, counter: int) -> None:
        seen = self._seen.setdefault(device, set())
        if counter in seen:
            return
        seen.add(counter)
        heap = self._heap.setdefault(device, [])
        heapq.heappush(heap, counter)
        while len(heap) > self.window:
            oldest = heapq.heappop(heap)
            seen.discard(oldest)
            self.floor[device] = max(self.floor.get(device, -1), oldest)

    def check(self, device: int, counter: int) -> str:
        """``"fresh"``, ``"duplicate"`` or ``"replayed"`` for device ``device``'s data ``counter``."""
        device = int(device)
        with self._lock:
            mark = self.high_water.get(device, -1)
            if counter == mark:
                return "duplicate"
            if counter in self._seen.get(device, ()) or counter <= self.floor.get(device, -1):
                return "replayed"
        return "fresh"

    def advance(self, device: int, counter: int) -> None:
        """Record device ``device``'s accepted ``counter`` (the mark never goes down)."""
        device = int(device)
        with self._lock:
            self._remember(device, int(counter))
            if counter > self.high_water.get(device, -1):
                self.high_water[device] = int(counter)
            self._dirty = True

    def fresh_status(self, device: int, counter: int) -> bool:
        """Whether a status ``counter`` is above the device's status mark; if so, raise the mark."""
        with self._lock:
            if counter <= self.status_high_water.get(int(device), -1):
                return False
            self.status_high_water[int(device)] = int(counter)
            self._dirty = True
            return True

    def save(self, force: bool = False) -> None:
        """Write the marks to :attr:`path` if they changed since the last save, or if ``force``.

        Raises ``OSError`` if it cannot (the marks stay unsaved).
        """
        if self.path is None:
            return
        with self._lock:
            if not (self._dirty or force):
                return
            data = {
                "format": REPLAY_FORMAT,
                "high_water": {str(k): v for k, v in sorted(self.high_water.items())},
                "floor": {str(k): v for k, v in sorted(self.floor.items())},
                "window": {str(k): sorted(v) for k, v in sorted(self._seen.items())},
                "status_high_water": {str(k): v for k, v in sorted(self.status_high_water.items())},
            }
            self._dirty = False
        try:
            write_private(self.path, json.dumps(data, indent=2) + "\n")
        except BaseException:
            with self._lock:
                self._dirty = True
            raise


def write_private(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically with mode 0600, whatever mode a previous file had.

    The text goes to a new temporary file (created 0600, then ``fchmod``-ed
    to 0600 whatever the umask), is flushed to disk and renamed over
    ``path``, so a reader sees the old or the new file, never a mix, and an
    existing world-readable file is replaced rather than reused.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class Credentials:
    """One principal's secrets.

    Attributes:
        username, password: broker login.
        role: ``"device"``, ``"central"`` or ``"operator"``.
        device: device index for a device, else ``None``.
        hmac_key: the device's HMAC key as hex (devices only).
        device_keys: every device's HMAC key as hex, by index (central only).
    """

    username: str
    password: str
    role: str
    device: int | None = None
    hmac_key: str | None = None
    device_keys: dict[str, str] = field(default_factory=dict)

    def key(self) -> bytes:
        """This device's HMAC key; ``ValueError`` for other roles."""
        if self.hmac_key is None:
            raise ValueError(f"{self.username} ({self.role}) holds no device HMAC key")
        return bytes.fromhex(self.hmac_key)

    def keys(self) -> dict[int, bytes]:
        """Every device's HMAC key by index (the central's view)."""
        return {int(k): bytes.fromhex(v) for k, v in self.device_keys.items()}

    def save(self, path: str | Path) -> Path:
        """Write as JSON readable by the owner only (mode 0600, also over an existing file)."""
        return write_private(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Credentials:
        """Read a file written by :meth:`save` (``ValueError`` naming the file if it is not one)."""
        path = Path(path)
        try:
            if path.stat().st_size > 1 << 20:
                raise ValueError("larger than 1 MiB")
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            return cls(**data)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no credentials file {path}; make them with "
                "`python -m epic_zoo.deploy provision --devices D --out DIR`"
            ) from None
        except (ValueError, TypeError, RecursionError) as err:
            raise ValueError(f"{path} is not an epic_zoo.deploy credentials file: {err}") from None


def provision(
    num_devices: int, out_dir: str | Path, *, overwrite: bool = False
) -> dict[str, Credentials]:
    """Create fresh credentials for ``num_devices`` devices, the central and an operator.

    Writes ``{out_dir}/device-k.json``, ``central.json`` and ``operator.json``
    (mode 0600) and returns them by user name. The broker's password and ACL
    files are made from these by :func:`epic_zoo.deploy.broker.write_auth_files`.

    Raises:
        FileExistsError: ``out_dir`` already holds credentials (any ``*.json``
            of a principal) and ``overwrite`` is false: new keys would lock out
            every device provisioned with the old ones.
    """
    if isinstance(num_devices, bool) or int(num_devices) != num_devices or num_devices < 1:
        raise ValueError(f"num_devices={num_devices} must be an integer >= 1")
    out = Path(out_dir)
    if not overwrite and out.is_dir():
        existing = sorted(
            p.name
            for p in out.iterdir()
            if p.name in (f"{CENTRAL_USER}.json", f"{OPERATOR_USER}.json")
            or (p.name.startswith("device-") and p.name.endswith(".json"))
        )
        if existing:
            raise FileExistsError(
                f"{out} already holds credentials ({', '.join(existing[:3])}"
                f"{', ...' if len(existing) > 3 else ''}); new keys would lock out the devices "
                "provisioned with them: pass --force to replace them, or another --out"
            )
    creds: dict[str, Credentials] = {}
    keys = {}
    for k in range(num_devices):
        key = new_key().hex()
        keys[str(k)] = key
        user = device_user(k)
        creds[user] = Credentials(user, secrets.token_urlsafe(18), "device", k, key)
    creds[CENTRAL_USER] = Credentials(
        CENTRAL_USER, secrets.token_urlsafe(18), "central", device_keys=keys
    )
    creds[OPERATOR_USER] = Credentials(OPERATOR_USER, secrets.token_urlsafe(18), "operator")
    for user, cred in creds.items():
        cred.save(out / f"{user}.json")
    return creds

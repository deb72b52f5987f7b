"""Who may talk: per-device broker credentials and HMAC keys, and the payload tag.

Two independent checks guard the central node:

1. **The broker** (mosquitto) admits only known users (``allow_anonymous
   false``, a hashed password file) and its ACL lets user ``device-k`` publish
   only on device ``k``'s topics (:mod:`epic_zoo.deploy.broker`). A device
   that lost its password cannot connect; one that tries another device's
   topic is silently dropped by the broker.
2. **The payload** carries an HMAC-SHA256 tag made with device ``k``'s own
   32-byte key, truncated to :data:`TAG_BYTES` (RFC 2104 section 5 allows a
   truncated tag of at least half the hash; 128 bits here). The central
   checks it with the key of the device whose topic the message came on, so
   a forged or replayed-across-devices payload is dropped even if the broker
   were bypassed or its credentials leaked.

:func:`provision` writes one JSON file per principal (``device-k.json``,
``central.json``, ``operator.json``) with mode 0600; copy each device's file
to that device only. The central's file holds every device's HMAC key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

TAG_BYTES: int = 16
"""Bytes of the truncated HMAC-SHA256 tag appended to every payload."""
KEY_BYTES: int = 32
"""Bytes of a device's HMAC key (the SHA-256 block-size recommendation of RFC 2104 is >= 32)."""
_DOMAIN = b"epic_zoo.deploy/1\x00"
"""Prefix mixed into every tag, so a tag made for another protocol never verifies here."""

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


def tag(key: bytes, payload: bytes) -> bytes:
    """HMAC-SHA256 of ``payload`` under ``key``, truncated to :data:`TAG_BYTES`."""
    if len(key) < 16:
        raise ValueError(f"HMAC key of {len(key)} bytes is too short; use new_key() (32 bytes)")
    return hmac.new(key, _DOMAIN + payload, hashlib.sha256).digest()[:TAG_BYTES]


def sign(key: bytes, payload: bytes) -> bytes:
    """``payload + tag(key, payload)``: what a device publishes."""
    return bytes(payload) + tag(key, bytes(payload))


def verify(key: bytes, message: bytes) -> bytes:
    """Split a signed message and check its tag; returns the payload.

    Raises:
        AuthError: the message is shorter than a tag or the tag does not match
            (forged, signed with another device's key, or altered in transit).
    """
    message = bytes(message)
    if len(message) <= TAG_BYTES:
        raise AuthError(f"message of {len(message)} bytes is too short to hold an HMAC tag")
    payload, got = message[:-TAG_BYTES], message[-TAG_BYTES:]
    if not hmac.compare_digest(got, tag(key, payload)):
        raise AuthError("HMAC tag does not verify: forged payload or another device's key")
    return payload


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
        """Write as JSON readable by the owner only (mode 0600)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(self), fh, indent=2)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Credentials:
        """Read a file written by :meth:`save` (``ValueError`` naming the file if it is not one)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no credentials file {path}; make them with "
                "`python -m epic_zoo.deploy provision --devices D --out DIR`"
            ) from None
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{path} is not an epic_zoo.deploy credentials file: {err}") from err


def provision(num_devices: int, out_dir: str | Path) -> dict[str, Credentials]:
    """Create fresh credentials for ``num_devices`` devices, the central and an operator.

    Writes ``{out_dir}/device-k.json``, ``central.json`` and ``operator.json``
    (mode 0600) and returns them by user name. The broker's password and ACL
    files are made from these by :func:`epic_zoo.deploy.broker.write_auth_files`.
    """
    if num_devices < 1:
        raise ValueError(f"num_devices={num_devices} must be >= 1")
    out = Path(out_dir)
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

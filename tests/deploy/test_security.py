"""HMAC tags and provisioned credentials."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from epic_zoo.deploy.security import (
    ENVELOPE_BYTES,
    TAG_BYTES,
    AuthError,
    Credentials,
    new_key,
    provision,
    sign,
    verify,
)


def test_sign_verify_round_trip_and_forgeries() -> None:
    key, other = new_key(), new_key()
    message = sign(key, b"payload bytes", 7)
    assert len(message) == len(b"payload bytes") + ENVELOPE_BYTES
    assert verify(key, message) == (b"payload bytes", 7)
    with pytest.raises(AuthError, match="does not verify"):
        verify(other, message)  # another device's key
    for i in (0, len(message) - TAG_BYTES - 1):  # the payload, and the counter, are covered
        tampered = bytearray(message)
        tampered[i] ^= 1
        with pytest.raises(AuthError):
            verify(key, bytes(tampered))
    with pytest.raises(AuthError, match="too short"):
        verify(key, message[:ENVELOPE_BYTES])
    with pytest.raises(ValueError, match="too short"):
        sign(b"short", b"x", 0)
    for bad in (-1, 2**64):
        with pytest.raises(ValueError, match="counter"):
            sign(key, b"x", bad)


def test_provision_writes_private_unique_credentials(tmp_path: Path) -> None:
    creds = provision(3, tmp_path)
    assert set(creds) == {"device-0", "device-1", "device-2", "central", "operator"}
    for user in creds:
        path = tmp_path / f"{user}.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert Credentials.load(path) == creds[user]
    keys = creds["central"].keys()
    assert keys == {k: creds[f"device-{k}"].key() for k in range(3)}
    assert len({creds[u].password for u in creds}) == len(creds)
    with pytest.raises(ValueError, match="no device HMAC key"):
        creds["operator"].key()
    with pytest.raises(FileNotFoundError, match="provision"):
        Credentials.load(tmp_path / "missing.json")

"""The central's message checks and sample assembly, driven with a fake clock (no broker)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from epic_zoo.deploy.central import Assembler
from epic_zoo.deploy.export import EdgeEncoder, read_manifest
from epic_zoo.deploy.records import pack_records, unpack_records
from epic_zoo.deploy.security import MessageCounter, new_key, sign
from epic_zoo.models.codec import PayloadError, pack_payload

from .conftest import NUM_DEVICES


@pytest.fixture(scope="module")
def edges(bundle: Path) -> list[EdgeEncoder]:
    return [EdgeEncoder(bundle, k) for k in range(NUM_DEVICES)]


@pytest.fixture(scope="module")
def keys() -> dict[int, bytes]:
    return {k: new_key() for k in range(NUM_DEVICES)}


@pytest.fixture()
def assembler(bundle: Path, keys) -> Assembler:
    return Assembler(read_manifest(bundle), keys, deadline_s=1.0)


COUNTER = MessageCounter()  # as on a device: every message signed gets a higher counter


def _message(edges, keys, records, device: int, sample: int) -> bytes:
    payload = edges[device].payload(records[sample][..., edges[device].receivers], sample)
    return sign(keys[device], payload, COUNTER.next())


def test_complete_sample_is_ready_at_once(assembler, edges, keys, records) -> None:
    for k in range(NUM_DEVICES):
        assert assembler.ready(0.0) == []
        assert assembler.offer(str(k), _message(edges, keys, records, k, 4), 0.0) == "accepted"
    [sample] = assembler.ready(0.0)
    assert sample.sample_id == 4 and not sample.partial
    assert assembler.counters["complete"] == 1 and assembler.next_deadline() is None


def test_missing_device_is_decoded_partial_at_the_deadline(assembler, edges, keys, records) -> None:
    assembler.offer("0", _message(edges, keys, records, 0, 1), 10.0)
    assembler.offer("2", _message(edges, keys, records, 2, 1), 10.2)
    assert assembler.ready(10.9) == []
    assert assembler.next_deadline() == pytest.approx(11.0)
    [sample] = assembler.ready(11.0)
    assert sample.present == [True, False, True] and sample.partial
    # the stalled device's message arrives afterwards: late, never mixed into another sample
    assert assembler.offer("1", _message(edges, keys, records, 1, 1), 11.5) == "late"
    assert assembler.pending == {} and assembler.counters["partial"] == 1


def test_offline_device_is_not_waited_for(assembler, edges, keys, records) -> None:
    assembler.set_online("1", False)
    assembler.offer("0", _message(edges, keys, records, 0, 2), 0.0)
    assembler.offer("2", _message(edges, keys, records, 2, 2), 0.0)
    [sample] = assembler.ready(0.0)
    assert sample.present == [True, False, True]
    assembler.set_online("1", True)  # restarted: waited for again
    for k in (0, 2):
        assembler.offer(str(k), _message(edges, keys, records, k, 3), 0.0)
    assert assembler.ready(0.5) == []


def test_duplicates_and_reordering_never_mix_samples(assembler, edges, keys, records) -> None:
    order = [(0, 1), (1, 1), (0, 0), (0, 1), (2, 0), (1, 0), (2, 1)]
    # each message is signed when it is sent (the device re-encodes sample 1 for device 0)
    outcomes = [
        assembler.offer(str(k), _message(edges, keys, records, k, i), 0.0) for k, i in order
    ]
    assert outcomes.count("duplicate") == 1
    assert assembler.counters["reordered"] == 2  # devices 0 and 1 sent sample 0 after sample 1
    samples = {s.sample_id: s for s in assembler.ready(0.0)}
    assert set(samples) == {0, 1} and not any(s.partial for s in samples.values())
    for i, sample in samples.items():
        for k, part in enumerate(sample.parts):
            expected = edges[k].encode(records[i][..., edges[k].receivers])[0]
            np.testing.assert_array_equal(part.numpy(), expected.numpy())


def test_bad_messages_are_rejected_and_counted(assembler, bundle, edges, keys, records) -> None:
    good = edges[0].payload(records[0][..., edges[0].receivers], 0)
    manifest = read_manifest(bundle)
    flipped = bytearray(sign(keys[0], good, COUNTER.next()))
    flipped[40] ^= 0x10  # altered in transit: the tag no longer verifies
    forged_tag = bytearray(sign(keys[0], good, COUNTER.next()))
    forged_tag[-1] ^= 0x01
    latent = edges[0].encode(records[0][..., edges[0].receivers])[0]
    wrong_shape = pack_payload(
        latent[:5], device_id=0, sample_id=0, bits=8, model_version=manifest["model_version"]
    )
    wrong_version = pack_payload(latent, device_id=0, sample_id=0, bits=8, model_version=123)
    limit = assembler.max_bytes[0]
    latent_1 = edges[1].encode(records[0][..., edges[1].receivers])[0]
    claims_0 = pack_payload(  # device 1's latent, header device id 0
        latent_1, device_id=0, sample_id=0, bits=8, model_version=manifest["model_version"]
    )
    cases = {
        "corrupt": [
            ("0", b"short"),
            ("0", sign(keys[0], b"not a payload at all", COUNTER.next())),  # authentic, unparsable
        ],
        "bad_hmac": [
            ("0", bytes(flipped)),
            ("0", bytes(forged_tag)),
            ("0", sign(keys[1], good, COUNTER.next())),
        ],
        "unknown_device": [
            ("7", sign(keys[0], good, COUNTER.next())),
            ("x", sign(keys[0], good, COUNTER.next())),
            ("1", sign(keys[1], claims_0, COUNTER.next())),  # authentic for 1, header says 0
        ],
        "oversize": [("0", sign(keys[0], good + b"\0", COUNTER.next())), ("0", bytes(limit + 1))],
        "wrong_shape": [("0", sign(keys[0], wrong_shape, COUNTER.next()))],
        "wrong_version": [("0", sign(keys[0], wrong_version, COUNTER.next()))],
    }
    for reason, messages in cases.items():
        for label, message in messages:
            assert assembler.offer(label, message, 0.0) == reason, (reason, label)
    assert assembler.pending == {}
    assert {r: assembler.counters[r] for r in cases} == {r: len(v) for r, v in cases.items()}
    assert assembler.counters["accepted"] == 0
    assert len(sign(keys[0], good, 0)) == limit  # the largest legitimate message still fits


def test_records_frames_round_trip_and_corruption() -> None:
    records = np.random.default_rng(1).normal(size=(5, 8, 3)).astype(np.float32)
    frame = pack_records(records, device_id=2, sample_id=9, model_version=77)
    header, back = unpack_records(frame)
    assert header == {"device_id": 2, "sample_id": 9, "model_version": 77, "shape": (5, 8, 3)}
    np.testing.assert_array_equal(back, records)
    bad = bytearray(frame)
    bad[50] ^= 1
    with pytest.raises(PayloadError, match="checksum"):
        unpack_records(bytes(bad))
    with pytest.raises(PayloadError, match="magic"):
        unpack_records(b"XXXX" + frame[4:])
    with pytest.raises(ValueError, match="NaN"):
        pack_records(records * np.nan, device_id=0, sample_id=0, model_version=0)

"""Link codec: quantisation with a straight-through estimator and the payload byte format."""

from __future__ import annotations

import struct
import zlib

import pytest
import torch

from epic_zoo.models.codec import (
    MAGIC,
    PayloadError,
    levels,
    pack_payload,
    payload_size,
    quantize,
    unpack_payload,
)


def _latent(shape=(14, 64), bits=8, scale=1.0, seed=0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return quantize(torch.randn(shape, generator=gen) * scale * 0.6, bits, scale)


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("scale", [1.0, 4.0, 0.1])
def test_round_trip_is_bitwise_exact(bits: int, scale: float) -> None:
    latent = _latent((3, 14, 5), bits, scale, seed=bits)
    data = pack_payload(
        latent, device_id=3, sample_id=2**40 + 7, bits=bits, model_version=0xDEADBEEF, scale=scale
    )
    header, back = unpack_payload(data)
    assert torch.equal(back, latent)
    assert header == {
        "format_version": 1,
        "bits": bits,
        "device_id": 3,
        "sample_id": 2**40 + 7,
        "model_version": 0xDEADBEEF,
        "scale": pytest.approx(scale, rel=1e-7),
        "shape": (3, 14, 5),
    }
    assert len(data) == payload_size(latent.shape, bits)


def test_sizes_8_and_4_bit() -> None:
    """14 receivers x 64 values: 896 bytes of codes at 8 bits, 448 at 4 bits, plus a 37-byte header."""
    assert payload_size((14, 64), 8) == 896 + 37
    assert payload_size((14, 64), 4) == 448 + 37
    assert payload_size((3,), 4) == 2 + 25 + 4 + 4  # odd count rounds up to whole bytes


def test_quantize_error_and_clip() -> None:
    x = torch.linspace(-2, 2, 1001)
    q = quantize(x, 8, 1.0)
    inside = x.abs() <= 1
    assert (q[inside] - x[inside]).abs().max() <= 0.5 / levels(8) + 1e-7
    assert q.max() == 1 and q.min() == -1
    assert len(torch.unique(quantize(x, 4, 1.0))) == 2 * levels(4) + 1


def test_straight_through_gradient() -> None:
    x = torch.tensor([-1.5, -0.3, 0.0, 0.42, 0.99, 3.0], requires_grad=True)
    quantize(x, 4, 1.0).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_pack_rejects_unquantised_latent_and_bad_bits() -> None:
    with pytest.raises(ValueError, match="not quantised"):
        pack_payload(torch.full((4,), 0.1234), device_id=0, sample_id=0, bits=4)
    with pytest.raises(ValueError, match="NaN"):
        pack_payload(torch.tensor([float("nan")]), device_id=0, sample_id=0, bits=8)
    with pytest.raises(ValueError, match="bits=9"):
        quantize(torch.zeros(2), 9)


def _valid() -> bytes:
    return pack_payload(_latent(), device_id=1, sample_id=5, bits=8, model_version=11)


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_corrupted_byte_fails_checksum() -> None:
    data = bytearray(_valid())
    data[100] ^= 0x01
    with pytest.raises(PayloadError, match="checksum"):
        unpack_payload(bytes(data))


def test_bad_magic_version_truncation_and_shape() -> None:
    data = _valid()
    with pytest.raises(PayloadError, match="magic"):
        unpack_payload(_with_crc(b"XXXX" + data[4:-4]))
    with pytest.raises(PayloadError, match="version"):
        unpack_payload(_with_crc(data[:4] + bytes([9]) + data[5:-4]))
    with pytest.raises(PayloadError, match="shorter"):
        unpack_payload(data[:10])
    assert data[:4] == MAGIC
    # header claims 15 x 64 values but the body holds 14 x 64 (checksum recomputed, so only the shape is wrong)
    wrong_shape = data[:25] + struct.pack("<2I", 15, 64) + data[33:-4]
    with pytest.raises(PayloadError, match="needs"):
        unpack_payload(_with_crc(wrong_shape))


def test_out_of_range_code_is_rejected() -> None:
    data = _valid()
    body = bytearray(data[:-4])
    body[40] = 255  # 8-bit codes live in 0..254
    with pytest.raises(PayloadError, match="outside"):
        unpack_payload(_with_crc(bytes(body)))

"""Link codec: quantise a latent to a few bits and turn it into the bytes that travel.

Quantisation is symmetric and uniform: a value ``x`` is clipped to
``[-scale, scale]`` and mapped to an integer code ``c`` in ``[-L, L]`` with
``L = 2**(bits - 1) - 1`` (127 for 8 bits, 7 for 4 bits); the value that the
centre sees is ``c * (scale / L)``. In training the rounding is bypassed by a
straight-through estimator (identity gradient inside the clip range), while the
forward value is exactly the dequantised grid value, so the same float tensor
comes out of :func:`quantize` in training and evaluation.

A payload (one device, one latent, usually one sample) is::

    offset  size  field
    0       4     magic b"EPZL"
    4       1     format version (1)
    5       1     bit width (2..8)
    6       1     ndim of the latent
    7       2     device id (uint16)
    9       8     sample id (uint64)
    17      4     model version (uint32, see ``DistributedModel.model_version``)
    21      4     scale (float32)
    25      4*n   shape (uint32 each)
    ..      ...   codes, offset to ``[0, 2L]`` and bit-packed MSB first
    end-4   4     crc32 of everything before it

All integers are little-endian. :func:`unpack_payload` checks magic, version,
bit width, scale (finite, > 0), shape (its exact size, computed without
overflow, must equal the bytes present: nothing is allocated beyond the
payload's own length), checksum and code range, and raises
:class:`PayloadError` naming what is wrong, never another exception. ``unpack_payload(pack_payload(q, ...))[1]`` is bitwise equal to ``q``
for any ``q`` produced by :func:`quantize` with the same ``bits`` and ``scale``.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence

import numpy as np
import torch

MAGIC: bytes = b"EPZL"
"""First four bytes of every payload."""
FORMAT_VERSION: int = 1
"""Payload layout version written by :func:`pack_payload`."""
_FIXED = struct.Struct("<4sBBBHQIf")
_CRC = struct.Struct("<I")
MIN_BITS, MAX_BITS = 2, 8


class PayloadError(ValueError):
    """A payload that cannot be decoded: truncated, corrupted or of another format."""


def levels(bits: int) -> int:
    """Largest code magnitude ``L = 2**(bits-1) - 1`` for a bit width in ``2..8``."""
    if not isinstance(bits, int | np.integer) or not MIN_BITS <= int(bits) <= MAX_BITS:
        raise ValueError(
            f"bits={bits!r} is not supported; use an integer in {MIN_BITS}..{MAX_BITS}"
        )
    return 2 ** (int(bits) - 1) - 1


def _step(bits: int, scale: float) -> torch.Tensor:
    """Quantisation step ``scale / L`` as a float32 scalar (the one place it is computed)."""
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale={scale!r} must be a finite positive number")
    return torch.tensor(scale, dtype=torch.float32) / levels(bits)


def to_codes(x: torch.Tensor, bits: int, scale: float = 1.0) -> torch.Tensor:
    """Integer codes in ``[-L, L]`` (as float32) of ``x`` clipped to ``[-scale, scale]``."""
    step = _step(bits, scale).to(x.device)
    lim = float(levels(bits))
    return torch.round(x.detach().float() / step).clamp_(-lim, lim)


def from_codes(codes: torch.Tensor, bits: int, scale: float = 1.0) -> torch.Tensor:
    """Dequantised float32 values ``codes * (scale / L)``."""
    return codes.float() * _step(bits, scale).to(codes.device)


def quantize(x: torch.Tensor, bits: int, scale: float = 1.0) -> torch.Tensor:
    """Quantise ``x`` (any shape) to ``bits`` with a straight-through estimator.

    Forward value: exactly ``from_codes(to_codes(x))``. Gradient: identity for
    elements inside ``[-scale, scale]``, zero outside (the clip).
    """
    clipped = x.clamp(-scale, scale)
    return from_codes(to_codes(x, bits, scale), bits, scale) + (clipped - clipped.detach())


def payload_size(shape: Sequence[int], bits: int) -> int:
    """Bytes of a payload holding a latent of ``shape`` at ``bits`` (header and crc included)."""
    levels(bits)
    numel = math.prod(int(n) for n in shape)  # exact: a crafted shape must not wrap around
    return _FIXED.size + 4 * len(shape) + math.ceil(numel * int(bits) / 8) + _CRC.size


def _pack_bits(values: np.ndarray, bits: int) -> bytes:
    """``values`` uint8 in ``[0, 2**bits)`` -> bytes, ``bits`` per value, MSB first."""
    if bits == 8:
        return values.tobytes()
    planes = np.unpackbits(values[:, None], axis=1)[:, 8 - bits :]
    return np.packbits(planes.reshape(-1)).tobytes()


def _unpack_bits(body: bytes, numel: int, bits: int) -> np.ndarray:
    raw = np.frombuffer(body, dtype=np.uint8)
    if bits == 8:
        return raw.copy()
    planes = np.unpackbits(raw)[: numel * bits].reshape(numel, bits)
    full = np.zeros((numel, 8), dtype=np.uint8)
    full[:, 8 - bits :] = planes
    return np.packbits(full, axis=1).reshape(numel)


def pack_payload(
    latent: torch.Tensor,
    *,
    device_id: int,
    sample_id: int,
    bits: int,
    model_version: int = 0,
    scale: float = 1.0,
) -> bytes:
    """Serialise a quantised latent (any shape, usually one sample) into payload bytes.

    Args:
        latent: values on the ``bits``/``scale`` grid, e.g. ``model.encode(k, x_k)[i]``.
        device_id: end-device index (0..65535).
        sample_id: index of the sample in its split (0..2**64-1).
        bits: bit width the latent was quantised with (2..8).
        model_version: 32-bit id of the model config that made it.
        scale: clip range the latent was quantised with (float32).

    Raises:
        ValueError: if ``latent`` is not finite or not on the quantisation grid
            (pass the output of ``encode``, not a raw float feature).
    """
    lim = levels(bits)
    values = latent.detach().cpu().float()
    if not torch.isfinite(values).all():
        raise ValueError("latent contains NaN/inf; it cannot be sent")
    step = _step(bits, scale)
    exact = values / step
    codes = to_codes(values, bits, scale)
    if values.numel() and (exact - codes).abs().max().item() > 1e-3:
        raise ValueError(
            f"latent is not quantised to {bits} bits with scale {scale}; pack the output of "
            "model.encode(...) with model.codec_bits and model.codec_scale"
        )
    unsigned = (codes.to(torch.int16) + lim).to(torch.uint8).numpy().reshape(-1)
    header = _FIXED.pack(
        MAGIC,
        FORMAT_VERSION,
        int(bits),
        values.dim(),
        int(device_id),
        int(sample_id),
        int(model_version) & 0xFFFFFFFF,
        float(scale),
    ) + struct.pack(f"<{values.dim()}I", *values.shape)
    data = header + _pack_bits(unsigned, int(bits))
    return data + _CRC.pack(zlib.crc32(data))


def unpack_payload(data: bytes) -> tuple[dict, torch.Tensor]:
    """Parse payload bytes back into ``(header, latent)``.

    ``header`` has keys ``format_version, bits, device_id, sample_id,
    model_version, scale, shape``; ``latent`` is float32 with that shape.

    Raises:
        PayloadError: truncated data, wrong magic, unknown format version,
            checksum mismatch, a body whose length does not match the shape,
            or a code outside the bit width's range.
    """
    data = bytes(data)
    if len(data) < _FIXED.size + _CRC.size:
        raise PayloadError(f"payload of {len(data)} bytes is shorter than the smallest header")
    magic, version, bits, ndim, device_id, sample_id, model_version, scale = _FIXED.unpack_from(
        data
    )
    if magic != MAGIC:
        raise PayloadError(f"bad magic {magic!r}; expected {MAGIC!r} (not an epic_zoo payload)")
    if version != FORMAT_VERSION:
        raise PayloadError(
            f"payload format version {version} is not supported (this epic_zoo reads {FORMAT_VERSION})"
        )
    (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(data[: -_CRC.size]) != crc:
        raise PayloadError("checksum mismatch: the payload was corrupted in transit")
    if not MIN_BITS <= bits <= MAX_BITS:
        raise PayloadError(f"bit width {bits} in header is outside {MIN_BITS}..{MAX_BITS}")
    if not (math.isfinite(scale) and scale > 0):
        raise PayloadError(f"scale {scale!r} in header must be a finite positive number")
    shape_end = _FIXED.size + 4 * ndim
    if shape_end + _CRC.size > len(data):
        raise PayloadError(f"header declares {ndim} dims but the payload is too short to hold them")
    shape = struct.unpack_from(f"<{ndim}I", data, _FIXED.size)
    if payload_size(shape, bits) != len(data):
        raise PayloadError(
            f"payload is {len(data)} bytes but a {bits}-bit latent of shape {tuple(shape)} "
            f"needs {payload_size(shape, bits)}"
        )
    numel = math.prod(shape)
    unsigned = _unpack_bits(data[shape_end : -_CRC.size], numel, bits)
    lim = levels(bits)
    if numel and unsigned.max() > 2 * lim:
        raise PayloadError(f"code {int(unsigned.max())} is outside 0..{2 * lim} for {bits} bits")
    codes = torch.from_numpy(unsigned.astype(np.int16) - lim).reshape(shape)
    header = {
        "format_version": version,
        "bits": bits,
        "device_id": device_id,
        "sample_id": sample_id,
        "model_version": model_version,
        "scale": scale,
        "shape": tuple(shape),
    }
    return header, from_codes(codes, bits, scale)

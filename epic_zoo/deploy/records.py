"""Raw-record frames: what a device of the centralised baseline sends (no encoder on the device).

The records travel as raw float32 amplitudes (the central normalises them),
framed like a codec payload so the central checks them the same way::

    offset  size  field
    0       4     magic b"EPZR"
    4       1     format version (1)
    5       2     device id (uint16)
    7       8     sample id (uint64)
    15      4     model version (uint32)
    19      12    shape [sources, time, receivers] (uint32 each)
    31      4*n   float32 records, C order
    end-4   4     crc32 of everything before it

Little-endian throughout. The latent payloads of distributed models are
:mod:`epic_zoo.models.codec`'s.
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

from epic_zoo.models.codec import PayloadError

MAGIC: bytes = b"EPZR"
FORMAT_VERSION: int = 1
_HEADER = struct.Struct("<4sBHQI3I")
_CRC = struct.Struct("<I")


def records_size(shape: tuple[int, int, int]) -> int:
    """Bytes of a frame holding records of ``shape`` ``[sources, time, receivers]``."""
    return _HEADER.size + 4 * math.prod(int(n) for n in shape) + _CRC.size  # exact, no wrap-around


def pack_records(
    records: np.ndarray, *, device_id: int, sample_id: int, model_version: int
) -> bytes:
    """Frame one device's raw records ``[sources, time, receivers]`` (cast to float32)."""
    values = np.ascontiguousarray(records, dtype="<f4")
    if values.ndim != 3:
        raise ValueError(f"records must be [sources, time, receivers]; got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"records of sample {sample_id} contain NaN/inf; they cannot be sent")
    data = (
        _HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            int(device_id),
            int(sample_id),
            int(model_version) & 0xFFFFFFFF,
            *values.shape,
        )
        + values.tobytes()
    )
    return data + _CRC.pack(zlib.crc32(data))


def unpack_records(data: bytes) -> tuple[dict, np.ndarray]:
    """Parse a frame into ``(header, records [sources, time, receivers] float32)``.

    ``header`` has keys ``device_id, sample_id, model_version, shape``.

    Raises:
        PayloadError: truncated, wrong magic or version, checksum mismatch,
            a length that does not match the declared shape (computed
            exactly, so a crafted shape cannot make it allocate more than
            the frame holds), or NaN/inf amplitudes.
    """
    data = bytes(data)
    if len(data) < _HEADER.size + _CRC.size:
        raise PayloadError(f"records frame of {len(data)} bytes is shorter than its header")
    magic, version, device_id, sample_id, model_version, *shape = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise PayloadError(f"bad magic {magic!r}; expected {MAGIC!r} (not a records frame)")
    if version != FORMAT_VERSION:
        raise PayloadError(f"records frame version {version} is not {FORMAT_VERSION}")
    (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(data[: -_CRC.size]) != crc:
        raise PayloadError("checksum mismatch: the records frame was corrupted in transit")
    if records_size(tuple(shape)) != len(data):
        raise PayloadError(
            f"records frame is {len(data)} bytes but shape {tuple(shape)} needs {records_size(tuple(shape))}"
        )
    values = np.frombuffer(data, dtype="<f4", offset=_HEADER.size, count=math.prod(shape))
    if not np.isfinite(values).all():
        raise PayloadError("records frame holds NaN or inf amplitudes")
    header = {
        "device_id": device_id,
        "sample_id": sample_id,
        "model_version": model_version,
        "shape": tuple(shape),
    }
    return header, values.reshape(shape).astype(np.float32)

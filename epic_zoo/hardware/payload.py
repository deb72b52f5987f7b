"""Payload accounting from real bytes: what each end device sends per sample.

- Distributed models (epic*, split, federated): device ``k`` runs
  ``model.encode(k, seismic_k)`` and packs the quantised latent with
  :func:`epic_zoo.models.codec.pack_payload` (header with device id, sample
  id, shape, bit width, scale, model version; crc32). The byte string's length
  is the payload; :func:`decode_payloads` rebuilds the prediction from those
  bytes alone.
- Centralised models (inversionnet, velocitygan): device ``k`` sends its raw
  records ``[5, T, n_k]`` at the model's own time sampling (``T`` samples:
  a device decimates for free), as little-endian float32 or float16
  (:func:`raw_payloads`), each optionally zlib-compressed
  (:func:`compress_payloads`): the four :data:`RAW_FORMATS`.

Payload lists are indexed ``[device][sample]``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from epic_zoo.data.geometry import NUM_SOURCES
from epic_zoo.models.codec import unpack_payload
from epic_zoo.wire import RAW_DTYPES as RAW_DTYPES  # re-exported: epic_zoo.wire is the home
from epic_zoo.wire import is_distributed as is_distributed
from epic_zoo.wire import model_receivers as model_receivers
from epic_zoo.wire import raw_dtype
from epic_zoo.wire import raw_payload_bytes as raw_payload_bytes

RAW_BYTES_PER_VALUE: int = 4
"""Bytes per value of float32 raw records (the default raw format)."""
RAW_FORMATS: tuple[tuple[str, bool], ...] = (
    ("float32", False),
    ("float16", False),
    ("float32", True),
    ("float16", True),
)
"""Raw baselines as ``(precision, zlib)``: float32 / float16, plain and zlib-compressed."""
ZLIB_LEVEL: int = 6
"""zlib's default compression level (speed/size balance)."""

Payloads = list[list[bytes]]
"""``payloads[k][i]``: bytes device ``k`` sends for sample ``i``."""


def raw_format_name(precision: str = "float32", compressed: bool = False) -> str:
    """Short name of a raw baseline format: ``f32``, ``f16``, ``f32-zlib``, ``f16-zlib``."""
    raw_dtype(precision)
    return f"f{precision[-2:]}" + ("-zlib" if compressed else "")


def _check_seismic(seismic: torch.Tensor | np.ndarray) -> None:
    if seismic.ndim != 4 or seismic.shape[1] != NUM_SOURCES:
        raise ValueError(
            f"seismic must be [batch, {NUM_SOURCES} sources, time, receivers]; got {list(seismic.shape)}"
        )


@torch.inference_mode()
def encode_latents(model: nn.Module, seismic: torch.Tensor) -> list[torch.Tensor]:
    """Every device's quantised latent ``[B, ...]`` for normalised records ``[B, 5, T, 70]``."""
    _check_seismic(seismic)
    if not is_distributed(model):
        raise TypeError(f"{model.config['name']} is centralised; use raw_payloads for its records")
    return [
        model.encode(k, seismic[..., torch.as_tensor(idx)])
        for k, idx in enumerate(model_receivers(model))
    ]


def pack_latents(
    model: nn.Module, latents: Sequence[torch.Tensor], first_sample_id: int = 0
) -> Payloads:
    """Pack each device's latent ``[B, ...]`` into ``B`` payloads with the model's codec settings
    (``codec_bits``, ``codec_scale``, ``model_version``); sample ids count up from ``first_sample_id``."""
    return [model.pack(k, latent, first_sample_id) for k, latent in enumerate(latents)]


def encode_payloads(model: nn.Module, seismic: torch.Tensor, first_sample_id: int = 0) -> Payloads:
    """Every device's payload bytes for a batch of normalised records.

    Args:
        model: a distributed model, in eval mode.
        seismic: ``[B, 5, T, 70]`` normalised records.
        first_sample_id: sample id written into the header of sample 0 (ids count up).

    Returns:
        ``payloads[k][i]`` for ``D`` devices and ``B`` samples.
    """
    return pack_latents(model, encode_latents(model, seismic), first_sample_id)


@torch.inference_mode()
def decode_payloads(model: nn.Module, payloads: Payloads) -> torch.Tensor:
    """Centre: velocity ``[B, 1, 70, 70]`` from the devices' payload bytes alone.

    Checks that each payload names its device and this model's config
    (``model_version``); raises ``ValueError`` otherwise.
    """
    latents = []
    for k, device_payloads in enumerate(payloads):
        batch = []
        for data in device_payloads:
            header, latent = unpack_payload(data)
            if header["device_id"] != k or header["model_version"] != model.model_version:
                raise ValueError(
                    f"payload from device {header['device_id']} (model version "
                    f"{header['model_version']:#x}) arrived in slot {k} of model version "
                    f"{model.model_version:#x}"
                )
            batch.append(latent)
        latents.append(torch.stack(batch))
    return model.decode(latents, None)


def raw_payloads(
    seismic_raw: np.ndarray, receivers: Sequence[np.ndarray], precision: str = "float32"
) -> Payloads:
    """Each device's raw records as little-endian bytes at ``precision``.

    Args:
        seismic_raw: ``[B, 5, T, 70]`` raw amplitudes (any float dtype), already at
            the model's time sampling.
        receivers: receiver indices of each device.
        precision: ``float32`` or ``float16`` (:data:`RAW_DTYPES`).

    Returns:
        ``payloads[k][i]`` = ``seismic_raw[i, :, :, receivers[k]]`` as ``[5, T, n_k]`` C-order bytes.
    """
    _check_seismic(seismic_raw)
    dtype = raw_dtype(precision)
    raw = np.asarray(seismic_raw)
    return [
        [np.ascontiguousarray(raw[i][..., idx], dtype=dtype).tobytes() for i in range(raw.shape[0])]
        for idx in receivers
    ]


def records_from_payloads(
    payloads: Payloads, time_samples: int, compressed: bool = False, precision: str = "float32"
) -> np.ndarray:
    """Centre of a centralised model: raw payload bytes -> records ``[B, 5, T, 70]`` float32.

    Inverse of :func:`raw_payloads` at ``precision`` (after
    :func:`compress_payloads` if ``compressed``) for devices holding contiguous
    receiver blocks in order.
    """
    dtype = raw_dtype(precision)
    per_device = []
    for device in payloads:
        arrays = [
            np.frombuffer(zlib.decompress(p) if compressed else p, dtype=dtype).reshape(
                NUM_SOURCES, int(time_samples), -1
            )
            for p in device
        ]
        per_device.append(np.stack(arrays))
    return np.concatenate(per_device, axis=-1).astype(np.float32)


def compress_payloads(payloads: Payloads, level: int = ZLIB_LEVEL) -> Payloads:
    """zlib-compress every payload (lossless; ``zlib.decompress`` restores the bytes)."""
    return [[zlib.compress(p, level) for p in device] for device in payloads]


def payload_sizes(payloads: Payloads) -> np.ndarray:
    """Sizes in bytes, ``[devices, samples]`` int64."""
    return np.array([[len(p) for p in device] for device in payloads], dtype=np.int64)


@torch.inference_mode()
def roundtrip_error(model: nn.Module, seismic: torch.Tensor) -> float:
    """Largest ``|decode(bytes) - forward(x)|`` over a batch; 0.0 means the bytes reproduce
    the in-process prediction exactly."""
    expected = model(seismic)
    rebuilt = decode_payloads(model, encode_payloads(model, seismic))
    return float((rebuilt - expected).abs().max())

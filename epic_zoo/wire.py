"""Bytes on the wire: what one end device sends per sample, the one home of that arithmetic.

Below :mod:`epic_zoo.models` (imports only the acquisition geometry), so the
models' summaries, the evaluation, the hardware teacher and the benchmark read
the same numbers:

- a *distributed* model (:func:`is_distributed`: it has ``encode``,
  ``decode`` and ``payload_bytes``) sends each device's quantised latent,
  ``model.payload_bytes(k)`` bytes (the link codec of
  :mod:`epic_zoo.models.codec`: header, latent, checksum);
- a *centralised* model has each device send its raw records
  ``[5 sources, T time samples, n_k receivers]`` (:func:`raw_payload_bytes`,
  float32 or float16; the deployment's records frame adds its own header,
  :mod:`epic_zoo.deploy.records`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from epic_zoo.data.geometry import DEFAULT_NUM_DEVICES, NT, NUM_SOURCES, receiver_split

RAW_DTYPES: dict[str, str] = {"float32": "<f4", "float16": "<f2"}
"""Raw record precisions a device may send, as little-endian numpy dtypes."""


def is_distributed(model: Any) -> bool:
    """``True`` for models whose devices send latents (they have ``encode``/``decode``/``payload_bytes``)."""
    return all(hasattr(model, a) for a in ("encode", "decode", "payload_bytes"))


def raw_dtype(precision: str) -> np.dtype:
    """The numpy dtype of a raw precision name; ``ValueError`` naming the choices."""
    if precision not in RAW_DTYPES:
        raise ValueError(f"raw precision {precision!r}; choose one of {', '.join(RAW_DTYPES)}")
    return np.dtype(RAW_DTYPES[precision])


def raw_payload_bytes(time_samples: int, num_receivers: int, precision: str = "float32") -> int:
    """Bytes of one device's raw records ``[5, time_samples, num_receivers]`` at ``precision``
    (``4 * 5 * T * n`` for float32, ``2 * 5 * T * n`` for float16)."""
    itemsize = raw_dtype(precision).itemsize
    return NUM_SOURCES * int(time_samples) * int(num_receivers) * itemsize


def model_receivers(model: Any) -> list[np.ndarray]:
    """Receiver indices of each device: ``model.receiver_split``, else the default split of
    ``model.config["num_devices"]`` (centralised models)."""
    split = getattr(model, "receiver_split", None)
    if split is not None:
        return [np.asarray(idx) for idx in split]
    num_devices = int(getattr(model, "config", {}).get("num_devices", DEFAULT_NUM_DEVICES))
    return receiver_split(num_devices)


def link_bytes(model: Any, precision: str = "float32") -> dict[str, Any]:
    """Bytes per device per sample on the device -> centre link (the largest device's).

    Returns:
        ``{"payload_bytes_per_device", "raw_bytes_per_device", "payload_kind"}``:
        the latent (``payload_kind="latent"``, distributed models) or the raw
        records (``"raw"``), and the raw records at ``precision`` beside it.
    """
    time_samples = int(getattr(model, "config", {}).get("time_samples", NT))
    receivers = max(len(idx) for idx in model_receivers(model))
    raw = raw_payload_bytes(time_samples, receivers, precision)
    if is_distributed(model):
        return {
            "payload_bytes_per_device": int(model.payload_bytes()),
            "raw_bytes_per_device": raw,
            "payload_kind": "latent",
        }
    return {"payload_bytes_per_device": raw, "raw_bytes_per_device": raw, "payload_kind": "raw"}

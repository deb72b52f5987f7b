"""Distributed FWI: the device/centre contract and the split-learning and federated baselines.

Every distributed model splits the 70 receivers over ``D`` end devices
(:func:`epic_zoo.data.geometry.receiver_split`). Device ``k`` sees only its own
records ``seismic_k [B, 5, T, n_k]`` and runs ``encode(k, seismic_k)``, whose
output is already quantised by the link codec (:mod:`epic_zoo.models.codec`):
it is exactly what the centre reconstructs from the payload bytes. The centre
runs ``decode(latents, present_mask)``; absent devices (``None`` latents or
``False`` in the mask) are left out, so a dropped device degrades the map
instead of breaking it. ``forward(seismic)`` is literally ``decode`` of the
``encode`` outputs, so ``decode([unpack(pack(encode(k, x_k)))...]) == forward(x)``
bit for bit (in eval mode).

- :class:`SplitInversionNet` (``split``): split learning. InversionNet's seven
  time-only blocks (kernels ``(k, 1)``) run on each device over its receivers;
  the activations travel (8-bit, clipped to ``activation_clip``) and the centre
  concatenates them along the receiver axis and runs the rest of InversionNet.
  With every device present and no quantisation it *is* InversionNet.
- :class:`FederatedInversionNet` (``federated``): one small InversionNet-like
  model per device on its own receivers; :meth:`FederatedInversionNet.fedavg_`
  averages their weights (FedAvg). At inference each device sends its predicted
  map (8-bit); the centre averages the maps of the present devices. That map is
  the counted payload; a training round's model update is
  :meth:`FederatedInversionNet.update_bytes`.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from epic_zoo.data.geometry import (
    DEFAULT_NUM_DEVICES,
    NT,
    NUM_RECEIVERS,
    NUM_SOURCES,
    NX,
    NZ,
    receiver_split,
)
from epic_zoo.models.codec import pack_payload, payload_size, quantize, unpack_payload
from epic_zoo.models.hub_mixin import HubMixin
from epic_zoo.models.inversionnet import InversionNet, check_seismic
from epic_zoo.models.registry import register_model


class DistributedModel(nn.Module, HubMixin):
    """Base class: receiver split, link codec, presence handling, payload accounting.

    Subclasses implement :meth:`encoder_module`, :meth:`_device_features`
    (pre-codec device output), :meth:`latent_shape` and :meth:`_decode`.

    Args:
        time_samples: ``T`` of the input records.
        num_devices: ``D`` end devices; receivers are split contiguously.
        bits: link codec bit width (2..8).
        device_dropout: in training, each device is dropped with this
            probability per sample (at least one is kept), so the centre learns
            to cope with missing devices. 0 disables it.
    """

    codec_scale: float = 1.0
    """Clip range of the latent before quantisation (1.0 for tanh-bounded latents)."""

    def __init__(
        self,
        time_samples: int = NT,
        num_devices: int = DEFAULT_NUM_DEVICES,
        bits: int = 8,
        device_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= device_dropout < 1.0:
            raise ValueError(f"device_dropout={device_dropout} must be in [0, 1)")
        self.time_samples = int(time_samples)
        self.num_devices = int(num_devices)
        self.codec_bits = int(bits)
        self.device_dropout = float(device_dropout)
        self.receiver_split: list[np.ndarray] = receiver_split(self.num_devices)
        for k, idx in enumerate(self.receiver_split):
            self.register_buffer(f"_receivers_{k}", torch.as_tensor(idx), persistent=False)

    def _config(self, name: str, **kwargs) -> dict:
        """``model.config``: ``name``, the shared constructor arguments, then ``kwargs``."""
        return {
            "name": name,
            "time_samples": self.time_samples,
            "num_devices": self.num_devices,
            "bits": self.codec_bits,
            "device_dropout": self.device_dropout,
            **kwargs,
        }

    # ----------------------------------------------------------------- contract
    def encoder_module(self, device_index: int) -> nn.Module:
        """The module device ``k`` runs (weights included) before the codec."""
        raise NotImplementedError

    def encoder_input(self, device_index: int, seismic_k: torch.Tensor) -> torch.Tensor:
        """What ``encoder_module(k)`` consumes, given device ``k``'s records (identity by default)."""
        return seismic_k

    def _device_features(self, device_index: int, seismic_k: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def latent_shape(self, device_index: int) -> tuple[int, ...]:
        """Shape of one sample's latent from device ``k`` (no batch axis)."""
        raise NotImplementedError

    def _decode(self, latents: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ devices
    def _check_device(self, device_index: int) -> int:
        if not 0 <= int(device_index) < self.num_devices:
            raise IndexError(
                f"device_index={device_index} is out of range 0..{self.num_devices - 1}"
            )
        return int(device_index)

    def num_receivers(self, device_index: int) -> int:
        """Receivers held by device ``k``."""
        return len(self.receiver_split[self._check_device(device_index)])

    def split_seismic(self, seismic: torch.Tensor) -> list[torch.Tensor]:
        """``[B, 5, T, 70]`` -> per-device records ``[B, 5, T, n_k]`` (contiguous copies)."""
        check_seismic(seismic, self.time_samples, NUM_RECEIVERS, self.config["name"])
        return [
            seismic.index_select(-1, getattr(self, f"_receivers_{k}"))
            for k in range(self.num_devices)
        ]

    def encode(self, device_index: int, seismic_k: torch.Tensor) -> torch.Tensor:
        """Device ``k``: its records ``[B, 5, T, n_k]`` -> quantised latent ``[B, *latent_shape(k)]``."""
        k = self._check_device(device_index)
        check_seismic(seismic_k, self.time_samples, self.num_receivers(k), f"device {k} encoder")
        features = self._device_features(k, seismic_k)
        return quantize(features, self.codec_bits, self.codec_scale)

    def decode(
        self, latents: Sequence[torch.Tensor | None], present_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Centre: per-device latents (``None`` = not received) -> velocity ``[B, 1, 70, 70]``.

        Args:
            latents: ``D`` entries, each ``[B, *latent_shape(k)]`` or ``None``.
            present_mask: ``[B, D]`` bool, ``True`` where device ``k``'s latent
                for sample ``b`` arrived. ``None``: present where not ``None``.

        Raises:
            ValueError: wrong number of latents or shapes, a device marked
                present without a latent, or a sample with no device present.
        """
        if len(latents) != self.num_devices:
            raise ValueError(
                f"decode needs {self.num_devices} latents (None for absent); got {len(latents)}"
            )
        given = [lat for lat in latents if lat is not None]
        if not given:
            raise ValueError("all devices are absent: at least one latent is needed to decode")
        batch, ref = given[0].shape[0], given[0]
        if present_mask is None:
            present = torch.tensor([lat is not None for lat in latents], device=ref.device)
            present = present.expand(batch, -1)
        else:
            present = present_mask.to(device=ref.device, dtype=torch.bool)
            if tuple(present.shape) != (batch, self.num_devices):
                raise ValueError(
                    f"present_mask must be [B, D] = [{batch}, {self.num_devices}]; got {list(present.shape)}"
                )
        filled = []
        for k, lat in enumerate(latents):
            shape = (batch, *self.latent_shape(k))
            if lat is None:
                if present[:, k].any():
                    raise ValueError(f"device {k} is marked present but its latent is None")
                lat = ref.new_zeros(shape)
            elif tuple(lat.shape) != shape:
                raise ValueError(
                    f"latent of device {k} must be {list(shape)}; got {list(lat.shape)}"
                )
            filled.append(lat)
        if not present.any(dim=1).all():
            missing = torch.nonzero(~present.any(dim=1)).flatten().tolist()
            raise ValueError(f"all devices are absent for sample(s) {missing}: nothing to decode")
        return self._decode(filled, present)

    def forward(self, seismic: torch.Tensor) -> torch.Tensor:
        """``[B, 5, T, 70]`` normalised seismic -> velocity ``[B, 1, 70, 70]`` in [-1, 1].

        Runs every device's ``encode`` then ``decode``; in training with
        ``device_dropout > 0`` a random subset of devices is left out per sample.
        """
        latents = self.encode_all(seismic)
        present = None
        if self.training and self.device_dropout > 0:
            present = self._random_presence(seismic.shape[0], seismic.device)
        return self.decode(latents, present)

    def encode_all(self, seismic: torch.Tensor) -> list[torch.Tensor]:
        """Every device's :meth:`encode` of its share of ``seismic [B, 5, T, 70]``."""
        return [self.encode(k, s) for k, s in enumerate(self.split_seismic(seismic))]

    def _random_presence(self, batch: int, device: torch.device) -> torch.Tensor:
        present = torch.rand(batch, self.num_devices, device=device) >= self.device_dropout
        keep = torch.randint(self.num_devices, (batch,), device=device)
        present[torch.arange(batch, device=device), keep] = True
        return present

    # ------------------------------------------------------------------- bytes
    @property
    def model_version(self) -> int:
        """32-bit id of this architecture's config, written into every payload header."""
        return zlib.crc32(json.dumps(self.config, sort_keys=True).encode())

    def payload_bytes(self, device_index: int | None = None) -> int:
        """Bytes one device sends per sample, header and checksum included.

        ``device_index=None`` gives the largest over devices (they are equal for
        the default 5 devices of 14 receivers).
        """
        devices = (
            range(self.num_devices) if device_index is None else [self._check_device(device_index)]
        )
        return max(payload_size(self.latent_shape(k), self.codec_bits) for k in devices)

    def pack(
        self, device_index: int, latent: torch.Tensor, first_sample_id: int = 0
    ) -> list[bytes]:
        """One payload per sample of ``latent [B, *latent_shape(k)]`` (sample ids count up)."""
        k = self._check_device(device_index)
        return [
            pack_payload(
                latent[i],
                device_id=k,
                sample_id=first_sample_id + i,
                bits=self.codec_bits,
                model_version=self.model_version,
                scale=self.codec_scale,
            )
            for i in range(latent.shape[0])
        ]

    def unpack(self, payloads: Sequence[bytes]) -> torch.Tensor:
        """Payloads of one device (one per sample) -> latent ``[B, *latent_shape(k)]``.

        Raises ``ValueError`` if a payload was made by another model config or
        another device than the first, or has the wrong shape for this model.
        """
        if not payloads:
            raise ValueError("unpack needs at least one payload")
        latents, device = [], None
        for data in payloads:
            header, latent = unpack_payload(data)
            if header["model_version"] != self.model_version:
                raise ValueError(
                    f"payload model_version {header['model_version']:#010x} does not match this "
                    f"model's {self.model_version:#010x}: device and centre run different configs"
                )
            device = header["device_id"] if device is None else device
            if header["device_id"] != device:
                raise ValueError(
                    f"payloads from devices {device} and {header['device_id']} mixed in one batch"
                )
            if header["shape"] != self.latent_shape(device):
                raise ValueError(
                    f"payload shape {header['shape']} is not device {device}'s latent shape "
                    f"{self.latent_shape(device)}"
                )
            latents.append(latent)
        return torch.stack(latents)


def masked_mean(maps: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Mean of ``maps [B, D, ...]`` over present devices ``present [B, D]``."""
    weights = present.to(maps.dtype).reshape(*present.shape, *([1] * (maps.dim() - 2)))
    return (maps * weights).sum(1) / weights.sum(1)


class SplitInversionNet(DistributedModel):
    """Split learning on InversionNet: time-only blocks per device, the rest at the centre.

    Device ``k`` runs ``convblock1 .. convblock4_2`` (kernels ``(k, 1)``, weights
    shared by all devices) on its ``[B, 5, T, n_k]`` records and sends the
    ``[dim3, T', n_k]`` activations (``128 x 63 x 14`` at ``T = 1000``), clipped
    to ``+-activation_clip`` and quantised to ``bits``. The centre places them
    side by side on the receiver axis (zeros for absent devices) and runs
    ``convblock5_1 .. deconv6``.

    Args:
        time_samples, num_devices, bits, device_dropout: see :class:`DistributedModel`.
        dims: InversionNet channel widths.
        activation_clip: clip range of the transmitted activations (they
            follow BatchNorm + LeakyReLU, so a few units covers nearly all).
    """

    def __init__(
        self,
        time_samples: int = NT,
        num_devices: int = DEFAULT_NUM_DEVICES,
        bits: int = 8,
        device_dropout: float = 0.0,
        dims: Sequence[int] = (32, 64, 128, 256, 512),
        activation_clip: float = 4.0,
    ) -> None:
        super().__init__(time_samples, num_devices, bits, device_dropout)
        self.codec_scale = float(activation_clip)
        self.net = InversionNet(time_samples=time_samples, dims=dims)
        self.config = self._config(
            "split", dims=list(self.net.config["dims"]), activation_clip=self.codec_scale
        )

    def encoder_module(self, device_index: int) -> nn.Module:
        self._check_device(device_index)
        return nn.Sequential(*(getattr(self.net, name) for name in InversionNet.TIME_BLOCKS))

    def _device_features(self, device_index: int, seismic_k: torch.Tensor) -> torch.Tensor:
        return self.net.forward_time(seismic_k)

    def encode_all(self, seismic: torch.Tensor) -> list[torch.Tensor]:
        """In training, all devices' time blocks in one call; in evaluation, device by device.

        The time blocks have ``(k, 1)`` kernels, so each receiver's trace is
        processed alone and one call over all 70 receivers computes what the
        five device calls compute, except for BatchNorm's statistics: one call
        normalises by statistics pooled over every device's receivers (what
        the running statistics estimate and evaluation uses), five calls by
        each device's own. In evaluation BatchNorm uses the running statistics
        and the two agree (tested), so the device path that deployment runs
        is kept there.
        """
        if not self.training:
            return super().encode_all(seismic)
        check_seismic(seismic, self.time_samples, NUM_RECEIVERS, self.config["name"])
        features = self.net.forward_time(seismic)  # [B, dim3, T', 70]
        return [
            quantize(
                features.index_select(-1, getattr(self, f"_receivers_{k}")),
                self.codec_bits,
                self.codec_scale,
            )
            for k in range(self.num_devices)
        ]

    def latent_shape(self, device_index: int) -> tuple[int, ...]:
        dim3 = self.net.config["dims"][2]
        return (dim3, self.net.time_length_after_time_blocks(), self.num_receivers(device_index))

    def _decode(self, latents: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        gated = [
            lat * present[:, k].to(lat.dtype).view(-1, 1, 1, 1) for k, lat in enumerate(latents)
        ]
        return self.net.forward_decoder(self.net.forward_space(torch.cat(gated, dim=-1)))


class FederatedInversionNet(DistributedModel):
    """Federated baseline: one small InversionNet-like model per device, FedAvg, averaged maps.

    Local model ``k`` sees ``[B, 6, T, n_max]``: its 5 shot records zero-padded
    to the largest device's receiver count ``n_max``, plus one channel holding
    each receiver's offset ``x / (NX * DX)`` scaled to [-1, 1] (-1 on padding),
    so after FedAvg makes the local models identical each still knows where its
    receivers are. It predicts a full map ``[1, 70, 70]`` in [-1, 1]; that map
    (quantised to ``bits``) is the payload. The centre averages present maps.

    Training the FedAvg way: minimise the mean over devices of each local map's
    loss (:meth:`local_predictions`, so each device's gradient depends only on
    its own model and data) and call :meth:`fedavg_` every ``fedavg_every``
    optimiser steps.

    Args:
        time_samples, num_devices, bits, device_dropout: see :class:`DistributedModel`.
        dims: local InversionNet channel widths (OpenFWI's divided by 4 by default).
        fedavg_every: optimiser steps between FedAvg rounds (read by the training task).
        norm: normalisation of the local models: ``"group"`` (default; each
            local model sees only its own device's data, and BatchNorm's
            per-device statistics do not survive FedAvg's averaging) or ``"batch"``.
    """

    def __init__(
        self,
        time_samples: int = NT,
        num_devices: int = DEFAULT_NUM_DEVICES,
        bits: int = 8,
        device_dropout: float = 0.0,
        dims: Sequence[int] = (8, 16, 32, 64, 128),
        fedavg_every: int = 50,
        norm: str = "group",
    ) -> None:
        super().__init__(time_samples, num_devices, bits, device_dropout)
        if fedavg_every < 1:
            raise ValueError(f"fedavg_every={fedavg_every} must be >= 1 optimiser step")
        self.fedavg_every = int(fedavg_every)
        self.max_receivers = max(len(idx) for idx in self.receiver_split)
        self.local_models = nn.ModuleList(
            InversionNet(
                time_samples=time_samples,
                num_devices=num_devices,
                dims=dims,
                in_channels=NUM_SOURCES + 1,
                num_receivers=self.max_receivers,
                norm=norm,
            )
            for _ in range(self.num_devices)
        )
        for k, idx in enumerate(self.receiver_split):
            offset = torch.full((self.max_receivers,), -1.0)
            offset[: len(idx)] = torch.as_tensor(idx, dtype=torch.float32) / (NX - 1) * 2.0 - 1.0
            self.register_buffer(f"_offset_{k}", offset, persistent=False)
        self.fedavg_()
        self.config = self._config(
            "federated",
            dims=list(self.local_models[0].config["dims"]),
            fedavg_every=self.fedavg_every,
            norm=norm,
        )

    def encoder_module(self, device_index: int) -> nn.Module:
        return self.local_models[self._check_device(device_index)]

    def encoder_input(self, device_index: int, seismic_k: torch.Tensor) -> torch.Tensor:
        """``[B, 5, T, n_k]`` -> the local model's ``[B, 6, T, n_max]`` input."""
        k = self._check_device(device_index)
        batch, _, time, n = seismic_k.shape
        padded = seismic_k.new_zeros(batch, NUM_SOURCES + 1, time, self.max_receivers)
        padded[:, :NUM_SOURCES, :, :n] = seismic_k
        padded[:, NUM_SOURCES] = getattr(self, f"_offset_{k}")
        return padded

    def _device_features(self, device_index: int, seismic_k: torch.Tensor) -> torch.Tensor:
        return self.local_models[device_index](self.encoder_input(device_index, seismic_k))

    def local_predictions(self, seismic: torch.Tensor) -> torch.Tensor:
        """Each device's own map, ``[B, D, 1, 70, 70]`` in [-1, 1] (with the codec's STE)."""
        return torch.stack(
            [self.encode(k, s) for k, s in enumerate(self.split_seismic(seismic))], dim=1
        )

    def latent_shape(self, device_index: int) -> tuple[int, ...]:
        self._check_device(device_index)
        return (1, NZ, NX)

    def _decode(self, latents: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return masked_mean(torch.stack(latents, dim=1), present)

    @torch.no_grad()
    def fedavg_(self) -> None:
        """FedAvg round: set every local model's parameters and buffers to their mean."""
        states = [m.state_dict() for m in self.local_models]
        for key, value in states[0].items():
            if value.is_floating_point():
                mean = torch.stack([s[key] for s in states]).mean(0)
                for s in states:
                    s[key].copy_(mean)

    def update_bytes(self) -> int:
        """Bytes of one local model update (float32 parameters) sent per FedAvg round per device."""
        return 4 * sum(p.numel() for p in self.local_models[0].parameters())


@register_model
def split(**kwargs) -> SplitInversionNet:
    """Split learning: InversionNet's time-only blocks on the devices, 8-bit activations travel."""
    return SplitInversionNet(**kwargs)


@register_model
def federated(**kwargs) -> FederatedInversionNet:
    """Federated learning: one small InversionNet per device, FedAvg, maps averaged at the centre."""
    return FederatedInversionNet(**kwargs)

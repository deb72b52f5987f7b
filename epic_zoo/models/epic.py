"""EPIC: edge encoders, a quantised link and a physics-aware attention decoder.

Only the method's outline is public (arXiv 2603.09032, abstract and summaries;
docs/references.md); the sizes here are our choices, sized for a
Raspberry-Pi-class device and a CPU (a shape that trained well):

- **device encoder** (one weight set shared by the devices by default): a
  conv stack striding over time only, ``[B, 5, T, n_k] -> [B, C, ~16, n_k]``
  (``round(log2(T / 16))`` stride-2 steps: six at ``T = 1000``, four at
  ``T = 250``), a full-length time kernel to ``latent_dim`` and tanh: one token
  per receiver, ``[B, n_k, latent_dim]`` in (-1, 1);
- **link codec**: uniform quantisation to ``bits`` (straight-through in
  training); 14 x 64 bytes + a 37-byte header per device at 8 bits, about
  1/300 of the raw 280 kB;
- **central decoder** (``fusion="attention"``): token projection plus a
  position encoding built from the acquisition geometry (sinusoids of each
  receiver's offset in metres, its signed offsets to the five sources, and a
  learned device embedding); pre-norm self-attention over the receiver tokens
  of the present devices (absent ones are masked out as keys); cross-attention
  from a 10 x 10 grid of learned queries carrying a 2-D sinusoidal encoding of
  their (depth, offset) in metres; transposed-conv upsampling 10 -> 80, crop to
  70 x 70, tanh.

Ablations share the encoder and codec and change only the fusion:
``fusion="equal"`` averages per-device pooled features (no attention), and
``fusion="isolated"`` gives each device its own small decoder that predicts a
full map from its latent alone; the centre averages the present devices' maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from epic_zoo.data.geometry import (
    DEFAULT_NUM_DEVICES,
    DX,
    NT,
    NUM_SOURCES,
    NX,
    NZ,
    receiver_positions_m,
    source_positions_m,
)
from epic_zoo.models.distributed import DistributedModel, masked_mean
from epic_zoo.models.inversionnet import CANVAS, CROP, conv_out
from epic_zoo.models.norm import DeviceBatchNorm2d, check_norm, norm2d
from epic_zoo.models.registry import register_model

QUERY_GRID: int = 10
"""Spatial queries per side; each covers an 8 x 8 cell patch of the 80 x 80 canvas."""
_UPSAMPLE = CANVAS // QUERY_GRID
FUSIONS: tuple[str, ...] = ("attention", "equal", "isolated")


def sinusoid(positions_m: torch.Tensor, dim: int, min_wavelength_m: float = 2 * DX) -> torch.Tensor:
    """Sinusoidal encoding of positions in metres, ``[N] -> [N, dim]``.

    Wavelengths are geometric from ``min_wavelength_m`` (two grid cells) to
    twice the survey aperture (1400 m), so both neighbouring receivers and the
    whole line are resolved.
    """
    if dim % 2:
        raise ValueError(f"sinusoid dim={dim} must be even")
    max_wavelength_m = 2 * NX * DX
    wavelengths = min_wavelength_m * (max_wavelength_m / min_wavelength_m) ** torch.linspace(
        0, 1, dim // 2
    )
    phase = 2 * math.pi * positions_m.double()[:, None] / wavelengths.double()[None, :]
    return torch.cat([phase.sin(), phase.cos()], dim=1).float()


def query_positions_m() -> tuple[torch.Tensor, torch.Tensor]:
    """Depth and offset in metres of the centre of each query's patch, ``[Q*Q]`` each (row-major)."""
    centre_cells = (
        torch.arange(QUERY_GRID, dtype=torch.float64) * _UPSAMPLE + (_UPSAMPLE - 1) / 2 - CROP
    )
    z, x = torch.meshgrid(centre_cells * DX, centre_cells * DX, indexing="ij")
    return z.reshape(-1), x.reshape(-1)


class DeviceEncoder(nn.Module):
    """What runs on an end device: ``[B, 5, T, n] -> [B, n, latent_dim]`` in (-1, 1), pre-codec.

    Convs have ``(k, 1)`` kernels (time only), so each receiver becomes one token.

    Args:
        time_samples: ``T``.
        latent_dim: token size.
        width: channels of the last stages; the stem has ``width // 4`` and each
            stride-2 step doubles it up to ``width`` (16, 32, 64, 64, ... for 64).
        target_time: time length to stride down to before the final time kernel.
        norm: any kind of :mod:`epic_zoo.models.norm`; this class defaults to
            ``"group"`` (each sample normalised on its own), while :class:`EPIC`
            builds it with ``"device-batch"`` (one set of BatchNorm statistics
            per device) unless told otherwise; ``"batch"`` is for legacy
            weights only.
    """

    def __init__(
        self,
        time_samples: int,
        latent_dim: int = 64,
        width: int = 64,
        target_time: int = 16,
        norm: str = "group",
        num_devices: int = 1,
    ) -> None:
        super().__init__()
        steps = max(1, round(math.log2(max(time_samples, 1) / target_time)))
        channels = [min(width, max(1, width // 4) * 2**i) for i in range(steps)]
        layers: list[nn.Module] = []
        in_ch, t = NUM_SOURCES, time_samples
        for i, out_ch in enumerate(channels):
            kernel = 7 if i == 0 else 3
            layers += [
                nn.Conv2d(in_ch, out_ch, (kernel, 1), (2, 1), (kernel // 2, 0)),
                norm2d(norm, out_ch, num_devices),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            in_ch, t = out_ch, conv_out(t, kernel, 2, kernel // 2)
        self.features = nn.Sequential(*layers)
        self.to_token = nn.Conv2d(in_ch, latent_dim, (t, 1))
        self.time_after_strides = t

    def forward(self, seismic_k: torch.Tensor, device_index: int = 0) -> torch.Tensor:
        """Device ``device_index``'s records ``[B, 5, T, n]`` -> tokens ``[B, n, latent]``."""
        for module in self.features:
            if isinstance(module, DeviceBatchNorm2d):
                module.device = int(device_index)
        tokens = self.to_token(self.features(seismic_k))  # [B, latent, 1, n]
        return torch.tanh(tokens.squeeze(2).transpose(1, 2))


class DeviceView(nn.Module):
    """Device ``k``'s encoder as a module of its own: ``[B, 5, T, n_k] -> [B, n_k, latent]``.

    Wraps the (shared) :class:`DeviceEncoder` with the device index fixed, so
    per-device normalisation statistics are selected; this is what an end
    device runs and what deployment exports.
    """

    def __init__(self, encoder: DeviceEncoder, device_index: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.device_index = int(device_index)

    def forward(self, seismic_k: torch.Tensor) -> torch.Tensor:
        return self.encoder(seismic_k, self.device_index)


class ReceiverEncoding(nn.Module):
    """Position encoding of receiver tokens from the physical geometry: ``[N]`` indices -> ``[N, d]``.

    Features per receiver: a sinusoid of its offset (m) and its signed offsets
    to the five sources divided by the aperture; a linear map to ``d`` plus a
    learned embedding of the device that holds it.
    """

    def __init__(self, d_model: int, num_devices: int, sinusoid_dim: int = 32) -> None:
        super().__init__()
        rx = torch.as_tensor(receiver_positions_m())
        src = torch.as_tensor(source_positions_m())
        offsets = (rx[:, None] - src[None, :]) / (NX * DX)
        features = torch.cat([sinusoid(rx, sinusoid_dim), offsets.float()], dim=1)
        self.register_buffer("features", features, persistent=False)  # [70, F]
        self.proj = nn.Linear(features.shape[1], d_model)
        self.device_embedding = nn.Embedding(num_devices, d_model)

    def forward(self, receivers: torch.Tensor, devices: torch.Tensor) -> torch.Tensor:
        """Receiver indices ``[N]`` and their device indices ``[N]`` -> ``[N, d]``."""
        return self.proj(self.features[receivers]) + self.device_embedding(devices)


class SpatialQueries(nn.Module):
    """``Q x Q`` learned queries plus a 2-D sinusoidal encoding of (depth, offset) in metres."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        z, x = query_positions_m()
        self.register_buffer(
            "position",
            torch.cat([sinusoid(z, d_model // 2), sinusoid(x, d_model // 2)], 1),
            persistent=False,
        )
        self.learned = nn.Parameter(torch.randn(QUERY_GRID * QUERY_GRID, d_model) * 0.02)

    def forward(self) -> torch.Tensor:
        """``[Q*Q, d]``."""
        return self.learned + self.position


class FeedForward(nn.Sequential):
    """Pre-norm MLP ``d -> hidden -> d``."""

    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__(
            nn.LayerNorm(d_model), nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model)
        )


class SelfAttentionBlock(nn.Module):
    """Pre-norm transformer block over tokens ``[B, N, d]`` with a key padding mask ``[B, N]``."""

    def __init__(self, d_model: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.ff = FeedForward(d_model, hidden)

    def forward(self, x: torch.Tensor, ignore: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        x = x + self.attn(h, h, h, key_padding_mask=ignore, need_weights=False)[0]
        return x + self.ff(x)


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention from queries ``[B, Q, d]`` into tokens ``[B, N, d]``, then an MLP."""

    def __init__(self, d_model: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(d_model)
        self.norm_kv = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.ff = FeedForward(d_model, hidden)

    def forward(
        self, queries: torch.Tensor, tokens: torch.Tensor, ignore: torch.Tensor
    ) -> torch.Tensor:
        kv = self.norm_kv(tokens)
        q = (
            queries
            + self.attn(self.norm_q(queries), kv, kv, key_padding_mask=ignore, need_weights=False)[
                0
            ]
        )
        return q + self.ff(q)


class UpsampleHead(nn.Module):
    """Query features ``[B, Q*Q, d]`` -> velocity ``[B, 1, 70, 70]`` in [-1, 1].

    Three (ConvTranspose k4 s2 -> norm -> LeakyReLU -> Conv 3x3 -> norm -> LeakyReLU)
    stages take the ``10 x 10`` grid to ``80 x 80``; crop 5 cells per side; Conv 3x3; tanh.
    ``norm`` as in :class:`DeviceEncoder`.
    """

    def __init__(self, d_model: int, channels: Sequence[int], norm: str = "group") -> None:
        super().__init__()
        if 2 ** len(channels) != _UPSAMPLE:
            raise ValueError(
                f"need {int(math.log2(_UPSAMPLE))} upsampling channel widths; got {list(channels)}"
            )
        self.norm = nn.LayerNorm(d_model)
        layers: list[nn.Module] = []
        in_ch = d_model
        for out_ch in channels:
            layers += [
                nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1),
                norm2d(norm, out_ch),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(out_ch, out_ch, 3, 1, 1),
                norm2d(norm, out_ch),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            in_ch = out_ch
        self.upsample = nn.Sequential(*layers)
        self.out = nn.Conv2d(in_ch, 1, 3, 1, 1)

    def forward(self, queries: torch.Tensor) -> torch.Tensor:
        batch, _, d = queries.shape
        grid = self.norm(queries).transpose(1, 2).reshape(batch, d, QUERY_GRID, QUERY_GRID)
        canvas = self.upsample(grid)[..., CROP : CROP + NZ, CROP : CROP + NX]
        return torch.tanh(self.out(canvas))


class AttentionFusionDecoder(nn.Module):
    """EPIC's centre: self-attention fusion of receiver tokens, cross-attention decoding."""

    def __init__(
        self,
        latent_dim: int,
        num_devices: int,
        d_model: int,
        heads: int,
        fusion_layers: int,
        head_channels: Sequence[int],
        norm: str = "group",
    ) -> None:
        super().__init__()
        self.token_proj = nn.Linear(latent_dim, d_model)
        self.position = ReceiverEncoding(d_model, num_devices)
        self.fusion = nn.ModuleList(
            SelfAttentionBlock(d_model, heads, 2 * d_model) for _ in range(fusion_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.queries = SpatialQueries(d_model)
        self.cross = CrossAttentionBlock(d_model, heads, 2 * d_model)
        self.head = UpsampleHead(d_model, head_channels, norm)

    def forward(
        self,
        tokens: torch.Tensor,
        receivers: torch.Tensor,
        devices: torch.Tensor,
        present: torch.Tensor,
    ) -> torch.Tensor:
        """Tokens ``[B, N, latent]`` of receivers ``[N]`` on devices ``[N]``; ``present [B, D]``."""
        ignore = ~present[:, devices]  # [B, N]
        x = self.token_proj(tokens) + self.position(receivers, devices)
        for block in self.fusion:
            x = block(x, ignore)
        queries = self.queries().expand(tokens.shape[0], -1, -1)
        return self.head(self.cross(queries, self.norm(x), ignore))


class EqualFusionDecoder(nn.Module):
    """Ablation ``epic-equal``: per-device mean-pooled features, averaged over present devices.

    The single fused vector is added to every spatial query and refined by
    pre-norm MLP blocks (no attention anywhere), then the same upsampling head.
    """

    def __init__(
        self,
        latent_dim: int,
        num_devices: int,
        d_model: int,
        fusion_layers: int,
        head_channels: Sequence[int],
        norm: str = "group",
    ) -> None:
        super().__init__()
        self.token_proj = nn.Linear(latent_dim, d_model)
        self.position = ReceiverEncoding(d_model, num_devices)
        self.num_devices = num_devices
        self.to_query = nn.Linear(d_model, d_model)
        self.queries = SpatialQueries(d_model)
        self.mlps = nn.ModuleList(FeedForward(d_model, 2 * d_model) for _ in range(fusion_layers))
        self.head = UpsampleHead(d_model, head_channels, norm)

    def forward(
        self,
        tokens: torch.Tensor,
        receivers: torch.Tensor,
        devices: torch.Tensor,
        present: torch.Tensor,
    ) -> torch.Tensor:
        x = self.token_proj(tokens) + self.position(receivers, devices)  # [B, N, d]
        member = nn.functional.one_hot(devices, self.num_devices).to(x.dtype)  # [N, D]
        pooled = torch.einsum("bnd,nk->bkd", x, member / member.sum(0))  # [B, D, d]
        fused = masked_mean(pooled, present)  # [B, d]
        q = self.queries()[None] + self.to_query(fused)[:, None]
        for mlp in self.mlps:
            q = q + mlp(q)
        return self.head(q)


class IsolatedDecoder(nn.Module):
    """Ablation ``epic-isolated``: a small decoder per device, each mapping its own tokens to a map.

    Each device's decoder (its own weights) cross-attends from spatial queries
    into that device's tokens only; the centre averages the present maps.
    """

    def __init__(
        self,
        latent_dim: int,
        num_devices: int,
        d_model: int,
        heads: int,
        head_channels: Sequence[int],
        norm: str = "group",
    ) -> None:
        super().__init__()
        self.num_devices = num_devices
        self.token_proj = nn.ModuleList(nn.Linear(latent_dim, d_model) for _ in range(num_devices))
        self.position = nn.ModuleList(
            ReceiverEncoding(d_model, num_devices) for _ in range(num_devices)
        )
        self.queries = nn.ModuleList(SpatialQueries(d_model) for _ in range(num_devices))
        self.cross = nn.ModuleList(
            CrossAttentionBlock(d_model, heads, 2 * d_model) for _ in range(num_devices)
        )
        self.heads = nn.ModuleList(
            UpsampleHead(d_model, head_channels, norm) for _ in range(num_devices)
        )

    def forward(
        self,
        tokens: torch.Tensor,
        receivers: torch.Tensor,
        devices: torch.Tensor,
        present: torch.Tensor,
    ) -> torch.Tensor:
        maps = []
        for k in range(self.num_devices):
            mine = devices == k
            x = self.token_proj[k](tokens[:, mine]) + self.position[k](
                receivers[mine], devices[mine]
            )
            none_ignored = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
            q = self.queries[k]().expand(x.shape[0], -1, -1)
            maps.append(self.heads[k](self.cross[k](q, x, none_ignored)))
        return masked_mean(torch.stack(maps, dim=1), present)


class EPIC(DistributedModel):
    """EPIC and its fusion ablations: ``[B, 5, T, 70]`` -> ``[B, 1, 70, 70]`` in [-1, 1].

    Args:
        time_samples: ``T`` of the input records.
        num_devices: ``D`` end devices (contiguous receiver blocks).
        latent_dim: token size per receiver (bytes per receiver at 8 bits).
        bits: link codec bit width (2..8).
        fusion: ``"attention"`` (EPIC), ``"equal"`` or ``"isolated"`` (ablations).
        encoder_width: channels of the device encoder's last stages.
        shared_encoder: one encoder weight set for all devices (else one each).
        d_model: width of the centre's tokens and queries.
        heads: attention heads.
        fusion_layers: self-attention (or, for ``equal``, MLP) blocks.
        head_channels: channels of the three upsampling stages.
        device_dropout: training-time probability of dropping each device.
        norm: the device encoder's normalisation: ``"device-batch"`` (default:
            BatchNorm with one set of statistics per device, so training and
            evaluation on a device normalise alike), ``"group"`` (per sample),
            or ``"batch"`` (one shared set, the superseded first zoo weights,
            whose ``config.json`` says so); see :mod:`epic_zoo.models.norm`.
            The centre's upsampling head uses BatchNorm with the
            ``*batch`` kinds (it runs once per batch) and ``norm`` otherwise.
    """

    def __init__(
        self,
        time_samples: int = NT,
        num_devices: int = DEFAULT_NUM_DEVICES,
        latent_dim: int = 64,
        bits: int = 8,
        fusion: str = "attention",
        encoder_width: int = 64,
        shared_encoder: bool = True,
        d_model: int = 192,
        heads: int = 4,
        fusion_layers: int = 2,
        head_channels: Sequence[int] = (48, 24, 12),
        device_dropout: float = 0.1,
        norm: str = "device-batch",
    ) -> None:
        super().__init__(time_samples, num_devices, bits, device_dropout)
        check_norm(norm)
        head_norm = "batch" if norm.endswith("batch") else norm
        if fusion not in FUSIONS:
            raise ValueError(f"fusion={fusion!r} is not one of {FUSIONS}")
        self.latent_dim = int(latent_dim)
        self.fusion = fusion
        num_encoders = 1 if shared_encoder else self.num_devices
        self.encoders = nn.ModuleList(
            DeviceEncoder(
                self.time_samples,
                self.latent_dim,
                encoder_width,
                norm=norm,
                num_devices=self.num_devices if num_encoders == 1 else 1,
            )
            for _ in range(num_encoders)
        )
        if fusion == "attention":
            self.decoder = AttentionFusionDecoder(
                self.latent_dim,
                self.num_devices,
                d_model,
                heads,
                fusion_layers,
                head_channels,
                head_norm,
            )
        elif fusion == "equal":
            self.decoder = EqualFusionDecoder(
                self.latent_dim, self.num_devices, d_model, fusion_layers, head_channels, head_norm
            )
        else:
            self.decoder = IsolatedDecoder(
                self.latent_dim, self.num_devices, d_model, heads, head_channels, head_norm
            )
        devices = np.concatenate(
            [np.full(len(idx), k) for k, idx in enumerate(self.receiver_split)]
        )
        self.register_buffer(
            "_token_receiver",
            torch.as_tensor(np.concatenate(self.receiver_split)),
            persistent=False,
        )
        self.register_buffer(
            "_token_device", torch.as_tensor(devices, dtype=torch.long), persistent=False
        )
        self.config = {
            "name": "epic",
            "time_samples": self.time_samples,
            "num_devices": self.num_devices,
            "latent_dim": self.latent_dim,
            "bits": self.codec_bits,
            "fusion": fusion,
            "encoder_width": int(encoder_width),
            "shared_encoder": bool(shared_encoder),
            "d_model": int(d_model),
            "heads": int(heads),
            "fusion_layers": int(fusion_layers),
            "head_channels": [int(c) for c in head_channels],
            "device_dropout": self.device_dropout,
            "norm": norm,
        }

    def encoder_module(self, device_index: int) -> DeviceView:
        k = self._check_device(device_index)
        if len(self.encoders) == 1:
            return DeviceView(self.encoders[0], k)
        return DeviceView(self.encoders[k], 0)

    def _device_features(self, device_index: int, seismic_k: torch.Tensor) -> torch.Tensor:
        return self.encoder_module(device_index)(seismic_k)

    def latent_shape(self, device_index: int) -> tuple[int, ...]:
        return (self.num_receivers(device_index), self.latent_dim)

    def _decode(self, latents: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        tokens = torch.cat(latents, dim=1)  # [B, 70, latent]
        return self.decoder(tokens, self._token_receiver, self._token_device, present)


def _epic_builder(name: str, **defaults):
    def build(**kwargs) -> EPIC:
        model = EPIC(**{**defaults, **kwargs})
        model.config["name"] = name
        return model

    build.__name__ = name.replace("-", "_")
    build.__doc__ = f"EPIC variant {name!r}: defaults {defaults or 'as EPIC'}."
    return build


for _name, _defaults in {
    "epic": {},
    "epic-8bit": {"bits": 8},
    "epic-4bit": {"bits": 4},
    "epic-small": {"latent_dim": 32},
    "epic-equal": {"fusion": "equal"},
    "epic-isolated": {
        "fusion": "isolated",
        "d_model": 64,
        "heads": 4,
        "head_channels": (32, 16, 8),
    },
}.items():
    register_model(_name)(_epic_builder(_name, **_defaults))

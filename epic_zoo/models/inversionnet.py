"""InversionNet (Wu & Lin, 2019), as released in OpenFWI, with a time-length-aware encoder.

Layer layout and attribute names follow OpenFWI's ``network.py`` (the lanl/OpenFWI
repository; docs/references.md), so its released ``state_dict`` loads into :class:`InversionNet`:
14 conv blocks (Conv-BN-LeakyReLU 0.2) compress ``[5, T, 70]`` to ``512 x 1 x 1``,
five transposed-conv stages grow it to ``80 x 80``, a 5-cell crop gives
``70 x 70`` and a Conv-BN-tanh block the velocity. About 24.4M parameters.

The only change is that the last encoder kernel is computed from the input size
instead of being fixed at ``(8, 9)``, so time-decimated records (``T = 250``
after keeping every 4th sample) still compress to ``1 x 1``. At ``T = 1000`` and
70 receivers it is OpenFWI's ``(8, 9)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from epic_zoo.data.geometry import DEFAULT_NUM_DEVICES, NT, NUM_RECEIVERS, NUM_SOURCES, NX, NZ
from epic_zoo.models.hub_mixin import HubMixin
from epic_zoo.models.norm import check_norm, norm2d
from epic_zoo.models.registry import register_model

CANVAS: int = 80
"""Side of the decoder's square output before the crop to 70 x 70."""
CROP: int = (CANVAS - NZ) // 2


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


class ConvBlock(nn.Module):
    """Conv2d -> norm (BatchNorm2d by default) -> LeakyReLU(0.2), OpenFWI's ``ConvBlock``.

    ``norm``: ``True``/``"batch"`` (OpenFWI), ``"group"`` (batch-independent,
    :mod:`epic_zoo.models.norm`) or ``False`` (none).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 1,
        norm: bool | str = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)
        ]
        if norm:
            layers.append(norm2d("batch" if norm is True else norm, out_channels))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DeconvBlock(nn.Module):
    """ConvTranspose2d -> norm -> LeakyReLU(0.2), OpenFWI's ``DeconvBlock``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 2,
        stride: int = 2,
        padding: int = 0,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding),
            norm2d(norm, out_channels),
            nn.LeakyReLU(0.2, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ConvBlockTanh(nn.Module):
    """Conv2d -> norm -> tanh, OpenFWI's ``ConvBlock_Tanh`` (the output block)."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch") -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1), norm2d(norm, out_channels), nn.Tanh()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def check_seismic(
    seismic: torch.Tensor,
    time_samples: int,
    num_receivers: int,
    what: str,
    channels: int = NUM_SOURCES,
) -> None:
    """Raise ``ValueError`` unless ``seismic`` is ``[B, channels, time_samples, num_receivers]``."""
    expected = (channels, time_samples, num_receivers)
    if seismic.dim() != 4 or tuple(seismic.shape[1:]) != expected:
        hint = ""
        if seismic.dim() == 4 and seismic.shape[2] != time_samples:
            hint = (
                f" The records have {seismic.shape[2]} time samples: build the model with "
                f"time_samples={seismic.shape[2]} (the DataModule's `time_samples`)."
            )
        raise ValueError(
            f"{what} expects seismic of shape [B, {channels}, {time_samples}, {num_receivers}] "
            f"(batch, source, time, receiver); got {list(seismic.shape)}.{hint}"
        )


class InversionNet(nn.Module, HubMixin):
    """OpenFWI's InversionNet: ``[B, 5, T, 70]`` normalised seismic -> ``[B, 1, 70, 70]`` in [-1, 1].

    Args:
        time_samples: ``T``, time samples per record (1000 raw, 250 after 4x decimation).
        num_devices: accepted for a uniform model signature; InversionNet is
            centralised (all raw records travel to the centre) and ignores it.
        dims: the five channel widths ``(dim1..dim5)``, OpenFWI's ``(32, 64, 128, 256, 512)``.
        in_channels: input channels (5 sources).
        num_receivers: receivers per record (70).
        norm: ``"batch"`` (OpenFWI) or ``"group"`` (batch-independent; the
            federated local models use it, :mod:`epic_zoo.models.norm`).
    """

    TIME_BLOCKS: tuple[str, ...] = (
        "convblock1",
        "convblock2_1",
        "convblock2_2",
        "convblock3_1",
        "convblock3_2",
        "convblock4_1",
        "convblock4_2",
    )
    """Blocks with ``(k, 1)`` kernels: they act on each receiver's trace alone."""
    SPACE_BLOCKS: tuple[str, ...] = (
        "convblock5_1",
        "convblock5_2",
        "convblock6_1",
        "convblock6_2",
        "convblock7_1",
        "convblock7_2",
        "convblock8",
    )
    DECODER_BLOCKS: tuple[str, ...] = (
        "deconv1_1",
        "deconv1_2",
        "deconv2_1",
        "deconv2_2",
        "deconv3_1",
        "deconv3_2",
        "deconv4_1",
        "deconv4_2",
        "deconv5_1",
        "deconv5_2",
    )

    def __init__(
        self,
        time_samples: int = NT,
        num_devices: int = DEFAULT_NUM_DEVICES,
        dims: Sequence[int] = (32, 64, 128, 256, 512),
        in_channels: int = NUM_SOURCES,
        num_receivers: int = NUM_RECEIVERS,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_norm(norm)
        if len(dims) != 5:
            raise ValueError(f"dims must have five channel widths (dim1..dim5); got {list(dims)}")
        if time_samples < 1 or num_receivers < 1:
            raise ValueError(
                f"time_samples={time_samples} and num_receivers={num_receivers} must be >= 1"
            )
        d1, d2, d3, d4, d5 = (int(d) for d in dims)
        self.time_samples = int(time_samples)
        self.in_channels = int(in_channels)
        self.num_receivers = int(num_receivers)
        self.config = {
            "name": "inversionnet",
            "time_samples": self.time_samples,
            "num_devices": int(num_devices),
            "dims": [d1, d2, d3, d4, d5],
            "in_channels": self.in_channels,
            "num_receivers": self.num_receivers,
        }
        if norm != "batch":  # configs of OpenFWI-style (BatchNorm) models stay as they were
            self.config["norm"] = norm
        t1 = (7, 1), (2, 1), (3, 0)
        t2 = (3, 1), (2, 1), (1, 0)
        t3 = (3, 1), (1, 1), (1, 0)
        self.convblock1 = ConvBlock(in_channels, d1, *t1, norm=norm)
        self.convblock2_1 = ConvBlock(d1, d2, *t2, norm=norm)
        self.convblock2_2 = ConvBlock(d2, d2, *t3, norm=norm)
        self.convblock3_1 = ConvBlock(d2, d2, *t2, norm=norm)
        self.convblock3_2 = ConvBlock(d2, d2, *t3, norm=norm)
        self.convblock4_1 = ConvBlock(d2, d3, *t2, norm=norm)
        self.convblock4_2 = ConvBlock(d3, d3, *t3, norm=norm)
        self.convblock5_1 = ConvBlock(d3, d3, stride=2, norm=norm)
        self.convblock5_2 = ConvBlock(d3, d3, norm=norm)
        self.convblock6_1 = ConvBlock(d3, d4, stride=2, norm=norm)
        self.convblock6_2 = ConvBlock(d4, d4, norm=norm)
        self.convblock7_1 = ConvBlock(d4, d4, stride=2, norm=norm)
        self.convblock7_2 = ConvBlock(d4, d4, norm=norm)
        self.convblock8 = ConvBlock(d4, d5, kernel_size=self.last_kernel(), padding=0, norm=norm)
        self.deconv1_1 = DeconvBlock(d5, d5, kernel_size=5, norm=norm)
        self.deconv1_2 = ConvBlock(d5, d5, norm=norm)
        self.deconv2_1 = DeconvBlock(d5, d4, kernel_size=4, stride=2, padding=1, norm=norm)
        self.deconv2_2 = ConvBlock(d4, d4, norm=norm)
        self.deconv3_1 = DeconvBlock(d4, d3, kernel_size=4, stride=2, padding=1, norm=norm)
        self.deconv3_2 = ConvBlock(d3, d3, norm=norm)
        self.deconv4_1 = DeconvBlock(d3, d2, kernel_size=4, stride=2, padding=1, norm=norm)
        self.deconv4_2 = ConvBlock(d2, d2, norm=norm)
        self.deconv5_1 = DeconvBlock(d2, d1, kernel_size=4, stride=2, padding=1, norm=norm)
        self.deconv5_2 = ConvBlock(d1, d1, norm=norm)
        self.deconv6 = ConvBlockTanh(d1, 1, norm=norm)

    def time_length_after_time_blocks(self) -> int:
        """Time length after ``convblock4_2`` (63 for ``T = 1000``, 16 for ``T = 250``)."""
        h = conv_out(self.time_samples, 7, 2, 3)
        for _ in range(3):
            h = conv_out(h, 3, 2, 1)
        return h

    def last_kernel(self) -> tuple[int, int]:
        """``convblock8``'s kernel ``(time, receiver)``: what is left after three 3x3 stride-2 blocks."""
        h, w = self.time_length_after_time_blocks(), self.num_receivers
        for _ in range(3):
            h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
        return h, w

    def _run(self, names: Sequence[str], x: torch.Tensor) -> torch.Tensor:
        for name in names:
            x = getattr(self, name)(x)
        return x

    def forward_time(self, seismic: torch.Tensor) -> torch.Tensor:
        """Time-only blocks: ``[B, 5, T, n]`` -> ``[B, dim3, T', n]`` (any receiver count ``n``)."""
        return self._run(self.TIME_BLOCKS, seismic)

    def forward_space(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, dim3, T', num_receivers]`` -> the ``[B, dim5, 1, 1]`` code."""
        return self._run(self.SPACE_BLOCKS, features)

    def forward_decoder(self, code: torch.Tensor) -> torch.Tensor:
        """``[B, dim5, 1, 1]`` -> velocity ``[B, 1, 70, 70]`` in [-1, 1]."""
        x = self._run(self.DECODER_BLOCKS, code)
        x = x[..., CROP : CROP + NZ, CROP : CROP + NX]
        return self.deconv6(x)

    def forward(self, seismic: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, T, num_receivers]`` normalised seismic -> ``[B, 1, 70, 70]`` velocity."""
        check_seismic(
            seismic, self.time_samples, self.num_receivers, "inversionnet", self.in_channels
        )
        return self.forward_decoder(self.forward_space(self.forward_time(seismic)))


@register_model
def inversionnet(**kwargs) -> InversionNet:
    """OpenFWI InversionNet, the centralised baseline (~24.4M parameters)."""
    return InversionNet(**kwargs)


__all__ = ["InversionNet", "ConvBlock", "DeconvBlock", "ConvBlockTanh", "check_seismic", "conv_out"]

"""Normalisation layers by name: the one place that decides what ``norm="..."`` builds.

- ``"batch"``: ``BatchNorm2d``, OpenFWI's choice for the centralised
  InversionNet. Its training output depends on the other samples of the batch
  and its evaluation output on running statistics.
- ``"device-batch"``: BatchNorm with one set of statistics per end device
  (:class:`DeviceBatchNorm2d`), the default of EPIC's device encoder. With
  one shared BatchNorm a per-device call is normalised by that device's batch
  statistics in training but by statistics pooled over devices at
  evaluation, which threw away what the models had learned; one set per
  device normalises training and evaluation alike.
- ``"group"``: ``GroupNorm`` with up to 8 groups (``gcd(channels, 8)``). It
  normalises each sample on its own, so a module gives the same output in
  training and in evaluation, at batch 1 on an end device as at batch 256 at
  the centre (Wu & He, 2018, for GroupNorm; Hsieh et al., ICML 2020, for
  GroupNorm in decentralised training). The federated local models use it
  (FedAvg would average their BatchNorm statistics); for EPIC's encoder it
  learned far slower than ``"device-batch"`` in a controlled comparison
  (docs/training.md, "Normalisation") and stays available.
- ``"instance"``, ``"layer"``, ``"none"``: per-channel GroupNorm, LayerNorm
  over the channels, no normalisation.
"""

from __future__ import annotations

import math

from torch import nn

NORMS: tuple[str, ...] = ("device-batch", "batch", "group", "instance", "layer", "none")
GROUPS: int = 8
"""Largest number of GroupNorm groups (fewer when the channels are not a multiple of 8)."""


def check_norm(kind: str) -> str:
    """``kind`` if it is one of :data:`NORMS`, else ``ValueError`` naming the choices."""
    if kind not in NORMS:
        raise ValueError(f"norm={kind!r} is not one of {', '.join(NORMS)}")
    return kind


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels at every position of ``[B, C, H, W]`` (ConvNeXt's ``LayerNorm2d``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class DeviceBatchNorm2d(nn.Module):
    """BatchNorm with its own statistics (and affine) for each end device.

    A shared device encoder is called once per device; plain BatchNorm then
    normalises each call by that device's batch statistics in training but
    keeps one set of running statistics, an EMA that the calls' order biases
    towards the last devices, for evaluation. Here device ``k``'s calls
    update and use only set ``k``, so evaluation on device ``k`` (at batch 1,
    on the end device) uses the statistics of exactly what training
    normalised it by. :attr:`device` selects the set (the encoder sets it).
    """

    def __init__(self, channels: int, num_devices: int) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(num_devices))
        self.device = 0

    def forward(self, x):
        return self.norms[self.device](x)


def norm2d(kind: str, channels: int, num_devices: int = 1) -> nn.Module:
    """The normalisation layer ``kind`` for ``[B, channels, H, W]`` feature maps.

    ``num_devices`` is the number of statistics sets of ``"device-batch"``.
    """
    kind = check_norm(kind)
    if kind == "device-batch":
        return DeviceBatchNorm2d(channels, num_devices)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return ChannelLayerNorm(channels)
    if kind == "none":
        return nn.Identity()
    if kind == "instance":
        return nn.GroupNorm(channels, channels)
    return nn.GroupNorm(math.gcd(int(channels), GROUPS), channels)

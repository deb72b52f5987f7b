"""Normalisation layers by name: the one place that decides what ``norm="..."`` builds.

- ``"batch"``: ``BatchNorm2d``, OpenFWI's choice for the centralised
  InversionNet. Its training output depends on the other samples of the batch
  and its evaluation output on running statistics.
- ``"group"``: ``GroupNorm`` with up to 8 groups (``gcd(channels, 8)``). It
  normalises each sample on its own, so a module gives the same output in
  training and in evaluation, at batch 1 on an end device as at batch 256 at
  the centre. Every module that runs per device uses it (EPIC's device
  encoder and decoder head, the federated local models): with BatchNorm a
  per-device call is normalised by that device's batch statistics in
  training but by statistics pooled over devices at evaluation, which threw
  away what the models had learned (Wu & He, 2018, for GroupNorm; Hsieh et
  al., ICML 2020, for GroupNorm in decentralised training).
"""

from __future__ import annotations

import math

from torch import nn

NORMS: tuple[str, ...] = ("batch", "group")
GROUPS: int = 8
"""Largest number of GroupNorm groups (fewer when the channels are not a multiple of 8)."""


def check_norm(kind: str) -> str:
    """``kind`` if it is one of :data:`NORMS`, else ``ValueError`` naming the choices."""
    if kind not in NORMS:
        raise ValueError(f"norm={kind!r} is not one of {', '.join(NORMS)}")
    return kind


def norm2d(kind: str, channels: int) -> nn.Module:
    """The normalisation layer ``kind`` for ``[B, channels, H, W]`` feature maps."""
    if check_norm(kind) == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(math.gcd(int(channels), GROUPS), channels)

"""VelocityGAN (Zhang & Lin, 2020) as in OpenFWI: an InversionNet generator and a conv critic.

The critic follows OpenFWI's ``Discriminator`` (same attribute names, so its
released weights load): eight 3x3 Conv-BN-LeakyReLU blocks, every other one
stride 2 (``70 -> 35 -> 18 -> 9 -> 5``), and a 5x5 block to one score per map.
Training (WGAN-GP, lambda 10, 5 critic steps per generator step, generator loss
100 L1 + 100 L2 + adversarial) lives in ``epic_zoo.tasks.gan``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from epic_zoo.data.geometry import DEFAULT_NUM_DEVICES, NT
from epic_zoo.models.hub_mixin import HubMixin
from epic_zoo.models.inversionnet import ConvBlock, InversionNet
from epic_zoo.models.registry import register_model


class Critic(nn.Module):
    """WGAN critic: velocity ``[B, 1, 70, 70]`` in [-1, 1] -> score ``[B, 1]`` (unbounded).

    Args:
        dims: the four channel widths (OpenFWI: ``(32, 64, 128, 256)``).
        norm: BatchNorm in each block, as OpenFWI does (``False`` for a
            norm-free critic, the usual choice with a gradient penalty).
    """

    def __init__(self, dims: Sequence[int] = (32, 64, 128, 256), norm: bool = True) -> None:
        super().__init__()
        if len(dims) != 4:
            raise ValueError(f"critic dims must have four channel widths; got {list(dims)}")
        d1, d2, d3, d4 = (int(d) for d in dims)
        self.convblock1_1 = ConvBlock(1, d1, stride=2, norm=norm)
        self.convblock1_2 = ConvBlock(d1, d1, norm=norm)
        self.convblock2_1 = ConvBlock(d1, d2, stride=2, norm=norm)
        self.convblock2_2 = ConvBlock(d2, d2, norm=norm)
        self.convblock3_1 = ConvBlock(d2, d3, stride=2, norm=norm)
        self.convblock3_2 = ConvBlock(d3, d3, norm=norm)
        self.convblock4_1 = ConvBlock(d3, d4, stride=2, norm=norm)
        self.convblock4_2 = ConvBlock(d4, d4, norm=norm)
        self.convblock5 = ConvBlock(d4, 1, kernel_size=5, padding=0, norm=norm)

    def forward(self, velocity: torch.Tensor) -> torch.Tensor:
        x = velocity
        for block in self.children():
            x = block(x)
        return x.view(x.shape[0], -1)


class VelocityGAN(nn.Module, HubMixin):
    """InversionNet generator (``.generator``) plus critic (``.critic``); ``forward`` is the generator.

    Args:
        time_samples: ``T`` of the input records.
        num_devices: accepted for a uniform signature (centralised model).
        dims: generator (InversionNet) channel widths.
        critic_dims: critic channel widths.
        critic_norm: BatchNorm in the critic (OpenFWI default ``True``).
    """

    def __init__(
        self,
        time_samples: int = NT,
        num_devices: int = DEFAULT_NUM_DEVICES,
        dims: Sequence[int] = (32, 64, 128, 256, 512),
        critic_dims: Sequence[int] = (32, 64, 128, 256),
        critic_norm: bool = True,
    ) -> None:
        super().__init__()
        self.generator = InversionNet(time_samples=time_samples, num_devices=num_devices, dims=dims)
        self.critic = Critic(critic_dims, critic_norm)
        self.config = {
            "name": "velocitygan",
            "time_samples": int(time_samples),
            "num_devices": int(num_devices),
            "dims": list(self.generator.config["dims"]),
            "critic_dims": [int(d) for d in critic_dims],
            "critic_norm": bool(critic_norm),
        }

    def forward(self, seismic: torch.Tensor) -> torch.Tensor:
        """``[B, 5, T, 70]`` normalised seismic -> ``[B, 1, 70, 70]`` velocity in [-1, 1]."""
        return self.generator(seismic)


@register_model
def velocitygan(**kwargs) -> VelocityGAN:
    """OpenFWI VelocityGAN: InversionNet generator + conv critic (train with WGAN-GP)."""
    return VelocityGAN(**kwargs)

"""Per-device modules behave the same in training and in deployment (issue: BatchNorm across devices).

EPIC's device encoder runs at batch 1 on an end device. With BatchNorm, a
per-device call was normalised by that device's batch statistics in training
and by statistics pooled over devices at evaluation, so evaluation threw away
what training had learned. These tests train each distributed model briefly
and check that (a) a device's latent does not depend on what else is in its
batch, and (b) after training, eval-mode outputs agree with train-mode outputs
(no device dropout), within a stated tolerance.
"""

from __future__ import annotations

import pytest
import torch

from epic_zoo.models import create_model

T = 32  # time samples: small and fast; the encoder strides it down to 1


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    seismic = torch.randn(n, 5, T, 70, generator=g)
    # a target that depends on the records, so training moves the weights
    velocity = torch.tanh(seismic.mean(dim=(1, 2))[:, None, None, :].expand(n, 1, 70, 70))
    return seismic, velocity


def _train(model: torch.nn.Module, steps: int = 30) -> torch.nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    seismic, velocity = _data(64, seed=1)
    model.train()
    for step in range(steps):
        idx = torch.arange(step * 8, step * 8 + 8) % 64
        loss = torch.nn.functional.l1_loss(model(seismic[idx]), velocity[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@pytest.mark.parametrize("name", ["epic", "epic-equal", "epic-isolated", "federated"])
def test_device_latent_does_not_depend_on_the_batch(name: str) -> None:
    """The latent of one record is the same alone (batch 1, as on the device) or in a batch."""
    model = create_model(name, time_samples=T, device_dropout=0.0)
    seismic, _ = _data(6, seed=2)
    parts = model.split_seismic(seismic)
    for mode in ("train", "eval"):
        model.train(mode == "train")
        with torch.no_grad():
            batched = model.encode(0, parts[0])
            alone = torch.cat([model.encode(0, parts[0][i : i + 1]) for i in range(6)])
            mixed = model.encode(0, torch.cat([parts[0][:1], 10 * parts[0][1:]]))[:1]
        # quantised latents: equal up to one codec level where rounding flips
        step = 2 * model.codec_scale / (2**model.codec_bits - 2)  # one codec level
        assert (batched - alone).abs().max() <= step + 1e-6, mode
        assert (batched[:1] - mixed).abs().max() <= step + 1e-6, mode


@pytest.mark.parametrize("name", ["epic", "epic-isolated", "federated", "split"])
def test_eval_mode_agrees_with_train_mode_after_training(name: str) -> None:
    """After 30 training steps, eval-mode outputs match train-mode outputs.

    Tolerance: mean absolute difference <= 0.01 on the normalised [-1, 1]
    scale (15 m/s). EPIC and federated use GroupNorm everywhere per sample,
    so the two modes differ only where device dropout (off here) or the
    codec's rounding would; split keeps InversionNet's BatchNorm but
    normalises all devices' receivers together in training, as evaluation's
    running statistics do, so it gets the looser 0.05 any BatchNorm network has.
    """
    kwargs = {"time_samples": T, "device_dropout": 0.0}
    model = _train(create_model(name, **kwargs))
    seismic, _ = _data(16, seed=3)
    with torch.no_grad():
        model.train()
        train_out = model(seismic)
        model.eval()
        eval_out = model(seismic)
    tolerance = 0.05 if name == "split" else 0.01
    assert (train_out - eval_out).abs().mean() <= tolerance


def test_split_batched_training_encode_matches_the_device_path() -> None:
    """Split's one-call training encode equals the per-device path when BatchNorm uses fixed stats."""
    model = create_model("split", time_samples=T, device_dropout=0.0)
    seismic, _ = _data(4, seed=4)
    model.eval()
    with torch.no_grad():
        per_device = model.encode_all(seismic)
        # the batched path, with BatchNorm in eval mode (running statistics)
        model.train()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eval()
        batched = model.encode_all(seismic)
    step = 2 * model.codec_scale / (2**model.codec_bits - 2)  # one codec level
    for a, b in zip(per_device, batched, strict=True):
        assert (a - b).abs().max() <= step + 1e-6
        assert (a != b).float().mean() < 0.01


def test_no_batchnorm_in_per_device_modules() -> None:
    """EPIC (every fusion) and federated build no BatchNorm by default."""
    for name in ("epic", "epic-equal", "epic-isolated", "epic-small", "federated"):
        model = create_model(name, time_samples=T)
        assert not any(
            isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()
        ), name

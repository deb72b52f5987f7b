"""InversionTask and GANTask: losses, schedules, FedAvg, WGAN-GP, checkpoints, panels, errors."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from conftest import EPIC_SMALL as SMALL
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from epic_zoo.tasks import GANTask, InversionTask
from epic_zoo.tasks.gan import gradient_penalty
from epic_zoo.tasks.inversion import LRSchedule

T = 250  # time samples of the tiny records (1000 ms kept every 4th)
EPIC_SMALL = {**SMALL, "time_samples": T}  # conftest's small EPIC at these records' length
INVERSIONNET_DIMS = [8, 16, 32, 64, 128]


pytestmark = pytest.mark.usefixtures("one_thread")


def _loader(samples: int = 4, time_samples: int = T, batch_size: int = 2) -> DataLoader:
    """Batches shaped like FWIDataModule's: normalised seismic and velocity in [-1, 1]."""
    g = torch.Generator().manual_seed(0)
    depth = torch.linspace(-0.8, 0.8, 70).view(1, 70, 1).expand(1, 70, 70)
    items = [
        {
            "seismic": torch.randn(5, time_samples, 70, generator=g).clamp(-1, 1),
            "velocity": (depth + 0.1 * torch.rand(1, 1, 1, generator=g)).contiguous(),
            "index": i,
        }
        for i in range(samples)
    ]
    return DataLoader(items, batch_size=batch_size)


def _trainer(tmp_path, batches: int = 2, **kwargs) -> pl.Trainer:
    settings = {
        "accelerator": "cpu",
        "max_epochs": 1,
        "limit_train_batches": batches,
        "limit_val_batches": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "default_root_dir": tmp_path,
    }
    settings.update(kwargs)
    return pl.Trainer(**settings)


def _params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True))


def test_hparams_are_plain_and_checkpoint_reloads_with_safe_loading(tmp_path):
    task = InversionTask("epic", OmegaConf.create(EPIC_SMALL), scheduler="cosine", warmup_steps=1)
    assert type(task.hparams["model_kwargs"]) is dict
    assert type(task.hparams["model_kwargs"]["head_channels"]) is list
    trainer = _trainer(tmp_path)
    trainer.fit(task, _loader(), _loader())
    path = tmp_path / "task.ckpt"
    trainer.save_checkpoint(path)
    torch.load(path, weights_only=True)  # only builtin containers and tensors inside

    loaded = InversionTask.load_from_checkpoint(path, weights_only=True).eval()
    task.eval()
    seismic = next(iter(_loader()))["seismic"]
    with torch.no_grad():
        assert torch.equal(loaded(seismic), task(seismic))
    assert loaded.hparams == task.hparams


def test_checkpoint_of_another_architecture_names_both(tmp_path):
    task = InversionTask("epic", EPIC_SMALL)
    trainer = _trainer(tmp_path, batches=1)
    trainer.fit(task, _loader(), _loader())
    path = tmp_path / "epic.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(RuntimeError, match="do not fit model 'epic-equal'"):
        InversionTask.load_from_checkpoint(path, model_name="epic-equal", weights_only=True)


def test_records_of_the_wrong_length_are_a_clear_error(tmp_path):
    task = InversionTask("epic", EPIC_SMALL)
    with pytest.raises(ValueError, match=r"time_samples=100.*data.time_stride"):
        _trainer(tmp_path, batches=1).fit(task, _loader(time_samples=100))


def test_task_and_model_must_match():
    with pytest.raises(ValueError, match="GANTask"):
        InversionTask("velocitygan", {"time_samples": T, "dims": INVERSIONNET_DIMS})
    with pytest.raises(ValueError, match="task=inversion"):
        GANTask("epic", EPIC_SMALL)
    with pytest.raises(ValueError, match="scheduler"):
        InversionTask("epic", EPIC_SMALL, scheduler="linear")
    with pytest.raises(KeyError, match="epic"):
        InversionTask("epik", EPIC_SMALL)


def test_lr_schedule_warmup_cosine_and_step():
    cosine = LRSchedule("cosine", warmup_steps=4, total_steps=14, step_every=1, gamma=0.1)
    assert [cosine(s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert cosine(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cosine(14) == pytest.approx(0.0)
    step = LRSchedule("step", warmup_steps=0, total_steps=100, step_every=10, gamma=0.1)
    assert [step(s) for s in (0, 9, 10, 25)] == pytest.approx([1.0, 1.0, 0.1, 0.01])
    assert LRSchedule("none", 0, 100, 1, 0.1)(57) == 1.0


def test_learning_rate_follows_the_schedule_in_training(tmp_path):
    task = InversionTask("epic", EPIC_SMALL, lr=1e-3, scheduler="cosine")
    trainer = _trainer(tmp_path, batches=2, max_epochs=1)
    trainer.fit(task, _loader(), _loader())
    # 2 optimiser steps of a 2-step cosine: the factor reached cos(pi) -> 0.
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_federated_trains_locally_and_averages_after_each_epoch(tmp_path):
    kwargs = {"time_samples": T, "dims": [4, 8, 16, 32, 64], "fedavg_every": 100}
    task = InversionTask("federated", kwargs)
    trainer = _trainer(tmp_path, batches=2)
    trainer.fit(task, _loader(), _loader())
    first, *others = task.model.local_models
    # No round fell on steps 1-2 (every 100), so equality comes from the end-of-epoch round.
    for other in others:
        for a, b in zip(first.parameters(), other.parameters(), strict=True):
            assert torch.equal(a, b)
    assert trainer.callback_metrics["train/loss"].isfinite()


def test_gradient_penalty_of_a_linear_critic():
    weight = torch.full((1, 1, 70, 70), 0.01)  # |grad D| = 0.01 * 70 = 0.7 everywhere
    critic = nn.Sequential(nn.Flatten(), nn.Linear(4900, 1, bias=False))
    with torch.no_grad():
        critic[1].weight.copy_(weight.view(1, -1))
    real, fake = torch.rand(3, 1, 70, 70), torch.rand(3, 1, 70, 70)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((0.7 - 1) ** 2, rel=1e-4)


@pytest.mark.parametrize(("n_critic", "generator_moves"), [(2, True), (5, False)])
def test_gan_schedule_critic_every_batch_generator_every_n_critic(
    tmp_path, n_critic, generator_moves
):
    kwargs = {"time_samples": T, "dims": INVERSIONNET_DIMS, "critic_dims": [8, 16, 32, 64]}
    task = GANTask("velocitygan", kwargs, n_critic=n_critic)
    generator, critic = _params(task.model.generator), _params(task.model.critic)
    trainer = _trainer(tmp_path, batches=2)
    trainer.fit(task, _loader(), _loader())
    assert _changed(critic, task.model.critic)
    assert _changed(generator, task.model.generator) is generator_moves
    logged = trainer.callback_metrics
    for key in ("train/critic_loss", "train/gp", "train/wasserstein", "val/ssim", "val/mae_ms"):
        assert logged[key].isfinite(), key


def test_validation_panels_are_saved_by_the_csv_logger(tmp_path):
    task = InversionTask("epic", EPIC_SMALL, num_panels=2)
    logger = CSVLogger(tmp_path, name="csv")
    trainer = _trainer(tmp_path, batches=1, logger=logger, max_epochs=2)
    trainer.fit(task, _loader(), _loader())
    panels = sorted((tmp_path / "csv" / "version_0" / "panels").glob("*.png"))
    assert [p.name for p in panels] == ["val-epoch000.png", "val-epoch001.png"]
    assert panels[0].stat().st_size > 10_000

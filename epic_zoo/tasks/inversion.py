"""Supervised velocity inversion: any registered model, L1 (+ L2) loss, AdamW.

The network is a plain ``nn.Module`` built by name with
:func:`epic_zoo.models.create_model`; this LightningModule adds the loss, the
optimiser and schedule, the metrics (:func:`~epic_zoo.metrics.inversion_metrics`)
and velocity-map panels. Batches are the dicts of
:class:`~epic_zoo.data.datamodule.FWIDataset`:

- ``"seismic"``: normalised records ``[batch, source=5, time, receiver=70]``;
- ``"velocity"``: normalised velocity ``[batch, 1, depth=70, offset=70]`` in ``[-1, 1]``.

Logged keys: ``{stage}/loss`` and ``{stage}/{mae, rmse, mae_ms, rmse_ms, ssim,
ssim_openfwi}`` for ``stage`` in ``train``, ``val``, ``test``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from omegaconf import DictConfig, ListConfig, OmegaConf

from epic_zoo.data.geometry import NUM_RECEIVERS, NUM_SOURCES, VELOCITY_SHAPE
from epic_zoo.data.transforms import denormalize_velocity
from epic_zoo.metrics import inversion_metrics
from epic_zoo.models import create_model
from epic_zoo.plots import figure_to_array, save_figure, velocity_panels
from epic_zoo.schedules import WSD_SHAPES, decay_steps_for, wsd_factor

SCHEDULERS: tuple[str, ...] = ("none", "cosine", "step", "wsd")
STAGES: tuple[str, ...] = ("train", "val", "test")


def to_plain(value: Any) -> Any:
    """OmegaConf containers (and nested mappings/sequences) -> plain dicts and lists.

    Checkpoints then hold only builtin types, which ``torch.load(weights_only=True)``
    accepts (OmegaConf objects do not load under torch >= 2.6 safe loading).
    """
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


class LRSchedule:
    """Learning-rate factor per optimiser step: linear warm-up, then cosine, step or WSD decay.

    A callable object (not a closure) so ``LambdaLR.state_dict`` records its
    settings in checkpoints.

    Args:
        kind: ``"none"`` (constant after warm-up), ``"cosine"`` (to 0 at
            ``total_steps``), ``"step"`` (times ``gamma`` every ``step_every``
            steps) or ``"wsd"`` (warmup-stable-decay: constant, then to 0 over
            the last ``decay_steps``; :mod:`epic_zoo.schedules`).
        warmup_steps: steps of linear warm-up from ``1 / warmup_steps`` to 1.
        total_steps: optimiser steps of the whole run (cosine and wsd).
        step_every: steps between decays (step only).
        gamma: decay factor (step only).
        decay_steps: steps of the final decay (wsd only).
        decay_shape: ``"linear"`` or ``"1-sqrt"`` (wsd only).
    """

    def __init__(
        self,
        kind: str,
        warmup_steps: int,
        total_steps: int,
        step_every: int,
        gamma: float,
        decay_steps: int = 0,
        decay_shape: str = "linear",
    ) -> None:
        self.kind = kind
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.step_every = max(1, int(step_every))
        self.gamma = float(gamma)
        self.decay_steps = int(decay_steps)
        self.decay_shape = str(decay_shape)

    def __call__(self, step: int) -> float:
        factor = 1.0
        if step < self.warmup_steps:
            factor = (step + 1) / self.warmup_steps
        if self.kind == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            progress = min(1.0, max(0, step - self.warmup_steps) / span)
            factor *= 0.5 * (1.0 + math.cos(math.pi * progress))
        elif self.kind == "step":
            factor *= self.gamma ** (step // self.step_every)
        elif self.kind == "wsd":
            factor *= wsd_factor(step, self.total_steps, self.decay_steps, self.decay_shape)
        return factor


class VelocityTask(pl.LightningModule):
    """What every velocity task shares: the model, shape checks, metrics, evaluation, panels.

    Subclasses call ``save_hyperparameters()`` and then :meth:`_build` from
    ``__init__``, with at least the hyperparameters ``model_name``,
    ``model_kwargs``, ``l1_weight``, ``l2_weight``, ``num_panels`` and
    ``panel_every_n_epochs``, and define training and optimisers.
    """

    def _build(self, model_name: str, model_kwargs: dict[str, Any]) -> None:
        """Create the registered model, its example input and one metric collection per stage.

        ``example_input_array`` (zeros ``[1, 5, time_samples, 70]``, the time
        length the model was built for) lets Lightning's model summary show
        the layers' input/output shapes and the FLOPs of one forward pass.
        """
        self.model = create_model(model_name, **model_kwargs)
        time_samples = getattr(self.model, "config", {}).get("time_samples") or getattr(
            self.model, "time_samples", None
        )
        if time_samples:
            self.example_input_array = torch.zeros(1, NUM_SOURCES, int(time_samples), NUM_RECEIVERS)
        self.train_metrics = inversion_metrics("train/", ssim=False)  # val/test hold the SSIMs
        self.val_metrics = inversion_metrics("val/")
        self.test_metrics = inversion_metrics("test/")

    # ------------------------------------------------------------------ model
    def forward(self, seismic: torch.Tensor) -> torch.Tensor:
        """Normalised seismic ``[B, 5, T, 70]`` -> normalised velocity ``[B, 1, 70, 70]``."""
        return self.model(seismic)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ):
        """``nn.Module.load_state_dict`` with an error that names both architectures."""
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        except RuntimeError as err:
            raise RuntimeError(
                f"these weights do not fit model {self.hparams.model_name!r} "
                f"with {self.hparams.model_kwargs}: they come from another architecture or "
                "size. Load the checkpoint with the model it was trained with (the "
                "checkpoint's hyper_parameters name it), or train into a fresh run_dir.\n"
                f"{err}"
            ) from err

    def _check_shapes(self, seismic: torch.Tensor, velocity: torch.Tensor) -> None:
        """Raise ``ValueError`` naming the fix when a batch does not fit the model."""
        time_samples = getattr(self.model, "config", {}).get("time_samples", seismic.shape[2])
        expected = (NUM_SOURCES, int(time_samples), NUM_RECEIVERS)
        if seismic.ndim != 4 or tuple(seismic.shape[1:]) != expected:
            raise ValueError(
                f"model {self.hparams.model_name!r} takes seismic [batch, {', '.join(map(str, expected))}] "
                f"but the data gives {list(seismic.shape)}. Build the model for this data "
                f"(model_kwargs time_samples={seismic.shape[-2] if seismic.ndim == 4 else '?'}; "
                "the runner sets it from the data unless model.kwargs.time_samples is given) "
                "or load data with the model's time decimation (data.time_stride)."
            )
        if tuple(velocity.shape[1:]) != VELOCITY_SHAPE:
            raise ValueError(
                f"velocity targets must be [batch, {', '.join(map(str, VELOCITY_SHAPE))}], "
                f"got {list(velocity.shape)}"
            )

    def _metrics(self, stage: str):
        return getattr(self, f"{stage}_metrics")

    def _loss(self, pred: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        loss = self.hparams.l1_weight * F.l1_loss(pred, velocity)
        if self.hparams.l2_weight:
            loss = loss + self.hparams.l2_weight * F.mse_loss(pred, velocity)
        return loss

    # ------------------------------------------------------------------ steps
    def _log_metrics(
        self, stage: str, loss: torch.Tensor, pred: torch.Tensor, velocity: torch.Tensor
    ) -> None:
        batch_size = pred.shape[0]
        train = stage == "train"
        self.log(
            f"{stage}/loss",
            loss.detach(),
            on_step=train,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch_size,
            sync_dist=not train,
        )
        metrics = self._metrics(stage)
        metrics.update(pred.detach(), velocity)
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=batch_size)

    def _step(
        self, batch: Mapping[str, torch.Tensor], stage: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict, compute the loss and update the ``stage`` metrics; returns ``(loss, pred)``."""
        seismic, velocity = batch["seismic"], batch["velocity"]
        self._check_shapes(seismic, velocity)
        pred = self(seismic)
        loss = self._loss(pred, velocity)
        self._log_metrics(stage, loss, pred, velocity)
        return loss, pred

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        _, pred = self._step(batch, "val")
        if batch_idx == 0:
            self._log_panels(pred, batch["velocity"], "val")

    def test_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    # ----------------------------------------------------------------- panels
    def _log_panels(self, pred: torch.Tensor, velocity: torch.Tensor, stage: str) -> None:
        """Draw prediction / truth / error maps and hand them to the loggers.

        CSV logger: a PNG under ``{log_dir}/panels/``; W&B: ``wandb.Image`` under
        ``{stage}/panels``. Skipped in sanity checks, on non-zero ranks and
        without such loggers (e.g. ``fast_dev_run``).
        """
        count = min(int(self.hparams.num_panels), pred.shape[0])
        every = max(1, int(self.hparams.panel_every_n_epochs))
        if count <= 0 or self.trainer.sanity_checking or self.global_rank != 0:
            return
        if self.current_epoch % every != 0:
            return
        targets = [lg for lg in self.loggers if isinstance(lg, (CSVLogger, WandbLogger))]
        if not targets:
            return
        pred_ms = denormalize_velocity(pred[:count].detach().float().cpu()).numpy()
        true_ms = denormalize_velocity(velocity[:count].detach().float().cpu()).numpy()
        fig = velocity_panels(pred_ms, true_ms, titles=[f"#{i}" for i in range(count)])
        name = f"{stage}-epoch{self.current_epoch:03d}.png"
        for logger in targets:
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    key=f"{stage}/panels", images=[figure_to_array(fig)], caption=[name]
                )
            else:
                save_figure(fig, Path(logger.log_dir) / "panels" / name)


class InversionTask(VelocityTask):
    """Train a registered model to map normalised seismic to normalised velocity.

    Federated models (with ``local_predictions`` and ``fedavg_``, i.e.
    ``federated``) train the FedAvg way: the loss is the mean over devices of
    each local model's loss, and a FedAvg round runs every
    ``model.fedavg_every`` optimiser steps and after the last batch of every
    training epoch (so validation and checkpoints see the global model).

    Args:
        model_name: a name from :func:`epic_zoo.models.list_models`, e.g. ``"epic"``.
        model_kwargs: constructor arguments of the model (``time_samples``,
            ``num_devices``, sizes...); plain or OmegaConf mapping.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        l1_weight, l2_weight: loss = ``l1_weight * L1 + l2_weight * MSE`` on the
            normalised scale.
        scheduler: ``"none"``, ``"cosine"`` (per step, to 0 at the end of the
            run), ``"step"`` (times ``lr_gamma`` every ``lr_step_epochs`` epochs)
            or ``"wsd"`` (warmup-stable-decay: the peak rate until the last
            ``decay_fraction`` of the run's real optimiser steps, then to 0).
        warmup_steps: linear learning-rate warm-up, optimiser steps.
        warmup_fraction: warm-up as a share of the run's real optimiser steps
            (epochs x steps per epoch); the larger of the two is used.
        lr_step_epochs, lr_gamma: the ``"step"`` schedule.
        decay_fraction, decay_steps: the ``"wsd"`` decay, as a share of the
            run's real optimiser steps and as a minimum number of steps (the
            larger is used).
        decay_shape: ``"linear"`` or ``"1-sqrt"`` (``"wsd"``).
        num_panels: velocity maps drawn (prediction, truth, error) from the
            first validation batch of an epoch; 0 turns panels off.
        panel_every_n_epochs: draw panels every this many epochs.
    """

    def __init__(
        self,
        model_name: str = "epic",
        model_kwargs: Mapping[str, Any] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        l1_weight: float = 1.0,
        l2_weight: float = 0.0,
        scheduler: str = "none",
        warmup_steps: int = 0,
        warmup_fraction: float = 0.0,
        lr_step_epochs: int = 30,
        lr_gamma: float = 0.1,
        num_panels: int = 3,
        panel_every_n_epochs: int = 1,
        decay_fraction: float = 0.2,
        decay_steps: int = 0,
        decay_shape: str = "linear",
    ) -> None:
        super().__init__()
        if scheduler not in SCHEDULERS:
            raise ValueError(
                f"unknown scheduler {scheduler!r}; choose one of: {', '.join(SCHEDULERS)}"
            )
        if decay_shape not in WSD_SHAPES:
            raise ValueError(
                f"task.decay_shape={decay_shape!r}; choose one of: {', '.join(WSD_SHAPES)}"
            )
        # Plain containers only: save_hyperparameters reads these locals.
        model_kwargs = to_plain(model_kwargs or {})
        self.save_hyperparameters()
        self._build(model_name, model_kwargs)
        if hasattr(self.model, "critic"):
            raise ValueError(
                f"model {model_name!r} has a critic and trains adversarially: use GANTask "
                "(Hydra: task=gan; recipe=velocitygan sets it)"
            )

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if not hasattr(self.model, "local_predictions"):
            loss, _ = self._step(batch, "train")
            return loss
        seismic, velocity = batch["seismic"], batch["velocity"]
        self._check_shapes(seismic, velocity)
        local = self.model.local_predictions(seismic)  # [B, device, 1, 70, 70]
        loss = torch.stack(
            [self._loss(local[:, k], velocity) for k in range(local.shape[1])]
        ).mean()
        self._log_metrics("train", loss, local.mean(dim=1), velocity)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """FedAvg rounds for federated models (see the class docstring)."""
        if not hasattr(self.model, "fedavg_"):
            return
        every = int(getattr(self.model, "fedavg_every", 1))
        last_batch = batch_idx + 1 >= self.trainer.num_training_batches
        if self.global_step % every == 0 or last_batch:
            self.model.fedavg_()

    # -------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        kind = self.hparams.scheduler
        fraction = float(self.hparams.get("warmup_fraction") or 0.0)
        if kind == "none" and not self.hparams.warmup_steps and not fraction:
            return optimizer
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ValueError(
                f"scheduler={kind!r} needs a finite run: set trainer.max_epochs or trainer.max_steps"
            )
        steps_per_epoch = max(
            1, self.trainer.num_training_batches // self.trainer.accumulate_grad_batches
        )
        schedule = LRSchedule(
            kind,
            warmup_steps=max(int(self.hparams.warmup_steps), round(fraction * int(total))),
            total_steps=int(total),
            step_every=self.hparams.lr_step_epochs * steps_per_epoch,
            gamma=self.hparams.lr_gamma,
            decay_steps=(
                decay_steps_for(
                    int(total),
                    self.hparams.get("decay_fraction", 0.2),
                    self.hparams.get("decay_steps", 0),
                )
                if kind == "wsd"
                else 0
            ),
            decay_shape=self.hparams.get("decay_shape", "linear"),
        )
        lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": lr_scheduler, "interval": "step"},
        }

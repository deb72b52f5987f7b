"""Physics-guided inversion: supervised loss plus wave-equation consistency, or the latter alone.

:class:`PhysicsInversionTask` extends :class:`~epic_zoo.tasks.inversion.InversionTask`
with :func:`epic_zoo.wave_physics.physics_loss`: the predicted velocity is run
through the differentiable forward model (deepwave) and the simulated
records are compared with the observed ones of the same sample.

- ``epic-phys`` (``recipe=epic_phys``): supervised L1 + ``physics.weight`` x physics loss.
- Semi-supervised (``recipe=epic_semi``, UPFWI-style): only a ``label_fraction``
  of the training samples has its velocity label used; the others learn from
  the physics loss alone. Which samples are labelled depends only on the
  sample index and ``label_seed`` (:func:`labelled_mask`), so a supervised
  run with the same ``label_fraction`` and ``physics.weight=0`` trains on
  exactly the same labelled samples (and skips the others).

Batches hold normalised records; the loss denormalises them with the
dataset's statistics (:func:`~epic_zoo.data.transforms.denormalize_seismic`)
and simulates at the full 1 ms step, decimated like the stored records
(the data's ``time_stride``). Both facts come from the trainer's datamodule
(:class:`~epic_zoo.data.datamodule.FWIDataModule`) unless ``dataset_name`` and
``data_time_stride`` are given.

Logged keys beyond the base task's: ``train/physics`` (mean squared relative
misfit of the samples it was computed on), ``train/labelled`` (share of the
batch with a label) and ``val/misfit`` (raw relative L2 data misfit of the
first ``physics.val_samples`` validation samples, all shots, whole record).
The ``train/`` velocity metrics cover every sample of a batch, labelled or
not (monitoring only: no loss sees the hidden labels).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from epic_zoo.data.geometry import NUM_SOURCES, V_MAX, V_MIN
from epic_zoo.data.transforms import denormalize_seismic, denormalize_velocity
from epic_zoo.tasks.inversion import InversionTask
from epic_zoo.wave_physics import SPACES, data_misfit, physics_loss

_GOLDEN: float = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class PhysicsSettings:
    """The ``physics`` options of :class:`PhysicsInversionTask` (Hydra: ``task.physics.*``).

    Attributes:
        weight: weight of the physics loss next to the supervised loss
            (``loss = L1 + weight * physics``); 0 turns it off.
        shots: source indices (0..4) simulated per sample; each costs one
            propagation of ``nt`` steps forward and about two backward.
        time_stride: ms between compared samples, a multiple of the data's
            time stride (``None``: every stored sample). Does not change the
            simulation cost.
        nt: simulate and compare only the first ``nt`` ms (``None``: the
            whole record); the cost grows linearly with it.
        every_n_steps: compute the physics loss on every n-th optimiser step
            only (unlabelled samples learn only on those steps).
        max_samples: at most this many samples of a batch get the physics
            loss, unlabelled ones first (``None``: all).
        space: compare ``"log"`` (signed-log) or ``"raw"`` records
            (see :mod:`epic_zoo.wave_physics`).
        val_samples: validation samples whose data misfit is logged as
            ``val/misfit`` each epoch (0: none).
    """

    weight: float = 0.1
    shots: tuple[int, ...] = (2,)
    time_stride: int | None = None
    nt: int | None = None
    every_n_steps: int = 1
    max_samples: int | None = None
    space: str = "log"
    val_samples: int = 4

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> PhysicsSettings:
        """Settings from a plain or OmegaConf mapping; raises ``ValueError`` on unknown keys or bad values."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown physics option(s) {', '.join(unknown)}; the options are "
                f"{', '.join(sorted(known))} (e.g. task.physics.weight=0.1)"
            )
        if "shots" in values:
            values["shots"] = tuple(int(s) for s in values["shots"])
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ``ValueError`` naming the option that is out of range."""
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"physics.weight={self.weight} must be >= 0")
        if not self.shots or any(not 0 <= s < NUM_SOURCES for s in self.shots):
            raise ValueError(
                f"physics.shots={list(self.shots)} must be source indices in 0..{NUM_SOURCES - 1}"
            )
        if self.every_n_steps < 1:
            raise ValueError(f"physics.every_n_steps={self.every_n_steps} must be >= 1")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"physics.max_samples={self.max_samples} must be >= 1 or null")
        if self.nt is not None and self.nt < 1:
            raise ValueError(f"physics.nt={self.nt} must be >= 1 ms or null")
        if self.space not in SPACES:
            raise ValueError(f"physics.space={self.space!r} must be one of {SPACES}")
        if self.val_samples < 0:
            raise ValueError(f"physics.val_samples={self.val_samples} must be >= 0")


def labelled_mask(index: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """Which samples keep their velocity label: ``[B]`` bool for sample indices ``[B]``.

    Sample ``i`` is labelled iff ``frac(i * g + u) < fraction`` with ``g`` the
    golden ratio's fractional part and ``u`` drawn from ``seed``: a
    low-discrepancy sequence, so any run of consecutive indices holds
    ``fraction`` of labelled samples to within a few, and the choice
    depends only on ``(i, fraction, seed)``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label_fraction={fraction} must be between 0 and 1")
    if fraction >= 1.0:
        return torch.ones(index.shape, dtype=torch.bool, device=index.device)
    offset = float(
        torch.rand((), generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
    )
    position = torch.frac(index.to(torch.float64) * _GOLDEN + offset)
    return position < fraction


class PhysicsInversionTask(InversionTask):
    """:class:`InversionTask` plus the physics loss and a semi-supervised mode.

    Args:
        model_name, model_kwargs, **kwargs: as :class:`InversionTask` (lr,
            weight_decay, l1_weight, l2_weight, scheduler, ...).
        physics: :class:`PhysicsSettings` as a mapping, e.g.
            ``{"weight": 0.1, "shots": [2], "nt": 600}``.
        label_fraction: share of training samples whose velocity label is used
            (1.0: fully supervised; 0.0: physics only, as UPFWI).
        label_seed: which samples are labelled (:func:`labelled_mask`).
        dataset_name: dataset whose statistics denormalise the records
            (:mod:`epic_zoo.data.transforms`); default the trainer's
            datamodule's ``dataset_name``.
        data_time_stride: ms between stored record samples; default the
            datamodule's ``time_stride``.

    Raises:
        ValueError: bad physics options, ``label_fraction`` outside 0..1,
            ``label_fraction=0`` with ``physics.weight=0`` (no loss), or a
            federated model (its local models train on their own losses).
    """

    def __init__(
        self,
        model_name: str = "epic",
        model_kwargs: Mapping[str, Any] | None = None,
        physics: Mapping[str, Any] | None = None,
        label_fraction: float = 1.0,
        label_seed: int = 0,
        dataset_name: str | None = None,
        data_time_stride: int | None = None,
        **kwargs: Any,
    ) -> None:
        settings = PhysicsSettings.from_mapping(physics)
        physics = dataclasses.asdict(settings)  # plain values for save_hyperparameters
        physics["shots"] = list(settings.shots)
        if not 0.0 <= float(label_fraction) <= 1.0:
            raise ValueError(f"label_fraction={label_fraction} must be between 0 and 1")
        if float(label_fraction) == 0.0 and settings.weight == 0.0:
            raise ValueError(
                "label_fraction=0 with physics.weight=0 leaves no loss; set physics.weight > 0"
            )
        super().__init__(model_name=model_name, model_kwargs=model_kwargs, **kwargs)
        if hasattr(self.model, "local_predictions"):
            raise ValueError(
                f"model {model_name!r} trains federated local models; PhysicsInversionTask "
                "supports models with one prediction per sample (use task=inversion)"
            )
        self.physics = settings

    # ---------------------------------------------------------------- data facts
    def _data_facts(self) -> tuple[str, int]:
        """``(dataset name, data time stride in ms)`` from the arguments or the datamodule's
        input contract (:attr:`epic_zoo.data.datamodule.FWIDataModule.contract`)."""
        dataset, stride = self.hparams.dataset_name, self.hparams.data_time_stride
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer else None
        contract = getattr(datamodule, "contract", None)
        if dataset is None and contract is not None:
            dataset = contract.dataset
        if stride is None and contract is not None:
            stride = contract.time_stride
        if dataset is None or stride is None:
            raise ValueError(
                "PhysicsInversionTask needs the dataset name and the records' time stride to "
                "compare simulated records with the batch: fit with an FWIDataModule, or pass "
                "dataset_name=... and data_time_stride=... to the task"
            )
        return str(dataset), int(stride)

    def _misfit_loss(
        self, pred: torch.Tensor, seismic: torch.Tensor, dataset: str, stride: int
    ) -> torch.Tensor:
        """Squared relative misfit per sample ``[n]`` of normalised predictions and records."""
        velocity = denormalize_velocity(pred.float()).clamp(V_MIN, V_MAX)
        observed = denormalize_seismic(seismic.float(), dataset)
        return physics_loss(
            velocity,
            observed,
            data_time_stride=stride,
            shots=self.physics.shots,
            time_stride=self.physics.time_stride,
            nt=self.physics.nt,
            space=self.physics.space,
        )

    def _labelled(self, batch: Mapping[str, torch.Tensor], batch_size: int) -> torch.Tensor:
        """``[B]`` bool: the batch rows whose velocity label is used."""
        fraction = float(self.hparams.label_fraction)
        if fraction >= 1.0:
            return torch.ones(batch_size, dtype=torch.bool)
        if "index" not in batch:
            raise KeyError(
                f"batches need 'index' (the sample's index in its split) for label_fraction="
                f"{fraction}: labelled samples are chosen by it. FWIDataset items carry it."
            )
        return labelled_mask(batch["index"], fraction, int(self.hparams.label_seed))

    def _physics_rows(self, labelled: torch.Tensor) -> torch.Tensor | None:
        """Batch rows that get the physics loss this step (unlabelled first), or ``None``."""
        if self.physics.weight == 0.0 or self.global_step % self.physics.every_n_steps:
            return None
        order = torch.argsort(labelled.to(torch.int8), stable=True)  # unlabelled first
        limit = self.physics.max_samples
        return order if limit is None else order[:limit]

    # --------------------------------------------------------------------- steps
    def training_step(
        self, batch: Mapping[str, torch.Tensor], batch_idx: int
    ) -> torch.Tensor | None:
        """Supervised loss on labelled rows + ``physics.weight`` x physics loss.

        Returns ``None`` (Lightning skips the step) when the batch has no
        labelled sample and the physics loss is not computed on this step.
        """
        seismic, velocity = batch["seismic"], batch["velocity"]
        self._check_shapes(seismic, velocity)
        pred = self(seismic)
        labelled = self._labelled(batch, pred.shape[0]).to(pred.device)
        loss = pred.new_zeros(())
        if bool(labelled.any()):
            loss = loss + self._loss(pred[labelled], velocity[labelled])
        rows = self._physics_rows(labelled)
        if rows is not None:
            dataset, stride = self._data_facts()
            misfit = self._misfit_loss(pred[rows], seismic[rows], dataset, stride).mean()
            loss = loss + self.physics.weight * misfit
            self.log(
                "train/physics", misfit.detach(), on_step=True, on_epoch=True, batch_size=len(rows)
            )
        self.log(
            "train/labelled",
            labelled.float().mean(),
            on_step=False,
            on_epoch=True,
            batch_size=len(labelled),
        )
        if not loss.requires_grad:
            return None
        self._log_metrics("train", loss, pred, velocity)
        return loss

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        _, pred = self._step(batch, "val")
        if batch_idx != 0:
            return
        self._log_panels(pred, batch["velocity"], "val")
        count = min(self.physics.val_samples, pred.shape[0])
        if count == 0:
            return
        dataset, stride = self._data_facts()
        velocity = denormalize_velocity(pred[:count].float()).clamp(V_MIN, V_MAX)
        observed = denormalize_seismic(batch["seismic"][:count].float(), dataset)
        misfit = data_misfit(velocity, observed, data_time_stride=stride)
        self.log(
            "val/misfit",
            misfit.sample.mean().float(),
            on_epoch=True,
            batch_size=count,
            sync_dist=True,
        )

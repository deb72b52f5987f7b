"""One training set from several datasets: ``data.dataset=all`` or a list of names.

OpenFWI users often train one network on the union of its datasets. Here the
union is the concatenation of each dataset's own splits
(:class:`~epic_zoo.data.datamodule.FWIDataModule` per member, same profile,
seed and stride), so every sample is normalised with its own dataset's
record range (:class:`~epic_zoo.data.datamodule.FWIDataset` reads it from the
shard attributes) and velocities share the fixed 1500-4500 m/s scale.
Training shuffles across datasets; validation and test concatenate the
members' splits (the summed metrics weigh each dataset by its test size:
equal under a profile). Per-dataset test metrics are
:func:`epic_zoo.evidence.per_dataset_evidence`'s job.

Recipe residuals (``data.recipe_residuals.p > 0``) work per member: each
member keeps its own templates (made from its own training maps, on its own
normalised scale), training samples carry their member's number
(``"member"``), and each sample draws from its own dataset's templates
(:func:`epic_zoo.data.residuals.add_recipe_residuals` with ``group``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from epic_zoo.data.catalog import DATASET_NAMES, get_dataset
from epic_zoo.data.contract import InputContract
from epic_zoo.data.datamodule import FWIDataModule, SplitDataModule
from epic_zoo.data.residuals import add_recipe_residuals

ALL = "all"
"""``data.dataset`` value meaning all ten datasets."""


def union_names(dataset: Any) -> list[str] | None:
    """The member datasets of a union (``"all"`` or a sequence of names); ``None`` for one dataset.

    Raises ``KeyError`` naming a member that is not a dataset, ``ValueError``
    for an empty or repeated list.
    """
    if isinstance(dataset, str):
        return list(DATASET_NAMES) if dataset.lower() == ALL else None
    if not isinstance(dataset, Sequence):
        return None
    names = [get_dataset(str(name)).name for name in dataset]
    if len(names) < 1 or len(set(names)) != len(names):
        raise ValueError(
            f"data.dataset={list(dataset)}: give distinct dataset names (or 'all'), "
            "e.g. data.dataset=[flatvel-a,style-b]"
        )
    return names


class _Member(Dataset):
    """A member's split whose samples also say which member they come from (``"member"``)."""

    def __init__(self, dataset: Dataset, member: int) -> None:
        self.dataset = dataset
        self.member = int(member)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.dataset[i], "member": self.member}


class UnionDataModule(SplitDataModule):
    """Train/val/test loaders over several synthetic datasets, each normalised by its own range.

    Args:
        dataset: ``"all"`` or a sequence of dataset names.
        **kwargs: the other :class:`FWIDataModule` arguments, shared by every
            member (``profile``, ``root``, ``batch_size``, ``time_stride``,
            ``seed``, ``recipe_residuals``...). Real OpenFWI folders
            (``openfwi_root``) and field noise are not supported here.

    ``dataset_name`` is ``"all"`` for the ten datasets, else the names joined
    by ``+``; :attr:`members` maps each name to its own data module.
    """

    def __init__(self, dataset: Any = ALL, **kwargs: Any) -> None:
        super().__init__()
        names = union_names(dataset)
        if names is None:
            raise ValueError(f"data.dataset={dataset!r} is one dataset: use FWIDataModule")
        if kwargs.get("openfwi_root") is not None:
            raise ValueError(
                "data.openfwi_root reads one OpenFWI dataset folder; a union of datasets "
                "(data.dataset=all or a list) trains on synthetic data: drop data.openfwi_root"
            )
        noise: Mapping[str, Any] = kwargs.get("field_noise") or {}
        if float(noise.get("p", 0.0) or 0.0) > 0:
            raise ValueError(
                "data.field_noise.p>0 adds noise to raw records, which each dataset normalises "
                "its own way; a union of datasets does not take it: set data.field_noise.p=0"
            )
        self.members: dict[str, FWIDataModule] = {
            name: FWIDataModule(dataset=name, **kwargs) for name in names
        }
        first = next(iter(self.members.values()))
        self.names = names
        self.profile = first.profile
        self.batch_size = first.batch_size
        self.num_workers = first.num_workers
        self.time_stride = first.time_stride
        self.num_devices = first.num_devices
        self.seed = first.seed
        self.recipe_residuals = dict(first.recipe_residuals)
        self.field_noise = dict(first.field_noise)
        self.openfwi_root = None
        self.save_hyperparameters({**first.hparams, "dataset": list(names)})
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None
        self._residuals: torch.Tensor | None = None

    @property
    def dataset_name(self) -> str:
        """``"all"`` for the ten datasets, else the member names joined by ``+``."""
        return ALL if self.names == list(DATASET_NAMES) else "+".join(self.names)

    @property
    def time_samples(self) -> int:
        return next(iter(self.members.values())).time_samples

    @property
    def contracts(self) -> dict[str, InputContract]:
        """Each member's input contract (one normalisation per dataset; one time axis and split)."""
        return {name: member.contract for name, member in self.members.items()}

    @property
    def receiver_split(self) -> list[np.ndarray]:
        return next(iter(self.members.values())).receiver_split

    def prepare_data(self) -> None:
        """Generate every member's missing splits."""
        for member in self.members.values():
            member.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        """Open every member's splits and concatenate them."""
        if self.train_dataset is not None:
            return
        for member in self.members.values():
            member.setup(stage)
        members = list(self.members.values())
        self.train_dataset = ConcatDataset(
            [_Member(m.train_dataset, k) for k, m in enumerate(members)]  # type: ignore[arg-type]
        )
        self.val_dataset = ConcatDataset([m.val_dataset for m in members])
        self.test_dataset = ConcatDataset([m.test_dataset for m in members])
        templates = [m.residual_templates for m in members]
        if all(t is not None for t in templates):
            self._residuals = torch.stack(templates)  # type: ignore[arg-type]

    @property
    def residual_templates(self) -> torch.Tensor | None:
        """Every member's recipe-residual templates ``[members, num, 5, T, 70]``; ``None`` when off."""
        return self._residuals

    def augment(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A training batch with each sample's own dataset's recipe residuals (off: the batch itself)."""
        if self._residuals is None:
            return batch
        if self._residuals.device != batch["seismic"].device:
            self._residuals = self._residuals.to(batch["seismic"].device)
        opts = self.recipe_residuals
        seismic = add_recipe_residuals(
            batch["seismic"], self._residuals, opts["p"], opts["scale"], group=batch["member"]
        )
        return {**batch, "seismic": seismic}

"""Torch dataset and Lightning DataModule for FWI samples.

Sources: the synthetic HDF5 store (:func:`epic_zoo.data.generate.ensure_data`
generates what is missing) or a folder of real OpenFWI ``.npy`` files
(:class:`epic_zoo.data.openfwi.OpenFWIFolder`, read in place).
Items are normalised as in OpenFWI's training code (:mod:`epic_zoo.data.transforms`).
Opt-in augmentations of training batches: recipe-boundary residuals
(:mod:`epic_zoo.data.residuals`, ``recipe_residuals`` below) and field
conditions (:func:`epic_zoo.data.degrade.field_noise_batch`, ``field_noise`` below).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from epic_zoo.data.catalog import get_dataset
from epic_zoo.data.contract import InputContract
from epic_zoo.data.degrade import field_noise_batch
from epic_zoo.data.generate import ensure_data
from epic_zoo.data.geometry import DT, DX, NX, NZ, receiver_split
from epic_zoo.data.openfwi import OpenFWIFolder, index_folder, present_keys
from epic_zoo.data.profiles import Profile, get_profile
from epic_zoo.data.residuals import add_recipe_residuals, ensure_recipe_residuals
from epic_zoo.data.store import (
    SPLITS,
    DataError,
    H5Split,
    ShardedArrays,
    check_arrays,
    profile_root,
    regenerate_command,
    split_count,
)
from epic_zoo.data.timeaxis import time_samples_for
from epic_zoo.data.transforms import denormalize_seismic, normalize_seismic, normalize_velocity

if TYPE_CHECKING:
    from matplotlib.figure import Figure


RECIPE_RESIDUALS_DEFAULTS: dict[str, Any] = {"p": 0.0, "num": 48, "scale": [0.5, 1.5]}
"""``recipe_residuals`` of :class:`FWIDataModule` (and ``recipes/data/synthetic.yaml``): off."""


def _number(value: Any) -> float:
    """``float(value)``, or nan when it is not a number (so a range check refuses it)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _pair(value: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        return float("nan"), float("nan")
    return lo, hi


def _augmentation_options(
    name: str, options: Mapping[str, Any] | None, defaults: Mapping[str, Any]
) -> tuple[dict[str, Any], float]:
    """``(options with defaults filled in, p)`` of the opt-in augmentation ``data.{name}``.

    Refuses unknown keys and a ``p`` outside [0, 1], one line each.
    """
    given = dict(options or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(
            f"data.{name} has unknown key(s) {', '.join(unknown)}; use only {', '.join(defaults)}"
        )
    out = {**defaults, **given}
    p = _number(out["p"])
    if not 0.0 <= p <= 1.0:  # also false for nan
        raise ValueError(
            f"data.{name}.p={out['p']} must be a probability in [0, 1]; "
            f"e.g. data.{name}.p=0.5 (0 turns the augmentation off)"
        )
    return out, p


def check_recipe_residuals(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated ``recipe_residuals`` options (defaults filled in) as a plain dict.

    Raises ``ValueError`` with one line naming the option and the fix.
    """
    out, p = _augmentation_options("recipe_residuals", options, RECIPE_RESIDUALS_DEFAULTS)
    num = out["num"]
    if isinstance(num, bool) or not isinstance(num, int | np.integer) or num < 1:
        raise ValueError(
            f"data.recipe_residuals.num={num} must be a whole number of maps >= 1; "
            "e.g. data.recipe_residuals.num=48"
        )
    scale = out["scale"]
    lo, hi = _pair(scale)
    if not 0.0 <= lo <= hi:
        raise ValueError(
            f"data.recipe_residuals.scale={scale} must be [low, high] with 0 <= low <= high; "
            "e.g. data.recipe_residuals.scale=[0.5,1.5]"
        )
    return {"p": p, "num": int(num), "scale": [lo, hi]}


FIELD_NOISE_DEFAULTS: dict[str, Any] = {
    "p": 0.0,
    "snr_db": [10.0, 30.0],
    "dead_max": 0.1,
    "band_hz": [2.0, 40.0],
}
"""``field_noise`` of :class:`FWIDataModule` (and ``recipes/data/synthetic.yaml``): off."""


def check_field_noise(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated ``field_noise`` options (defaults filled in) as a plain dict.

    Raises ``ValueError`` with one line naming the option and the fix.
    """
    out, p = _augmentation_options("field_noise", options, FIELD_NOISE_DEFAULTS)
    snr = _pair(out["snr_db"])
    if not snr[0] <= snr[1]:  # also false for nan
        raise ValueError(
            f"data.field_noise.snr_db={out['snr_db']} must be [low, high] dB with low <= high; "
            "e.g. data.field_noise.snr_db=[10,30]"
        )
    dead = _number(out["dead_max"])
    if not 0.0 <= dead < 1.0:
        raise ValueError(
            f"data.field_noise.dead_max={out['dead_max']} must be a fraction of receivers in "
            "[0, 1); e.g. data.field_noise.dead_max=0.1 (0: no dead traces)"
        )
    band = _pair(out["band_hz"])
    if not 0.0 <= band[0] < band[1]:
        raise ValueError(
            f"data.field_noise.band_hz={out['band_hz']} must be [low, high] Hz with "
            "0 <= low < high; e.g. data.field_noise.band_hz=[2,40]"
        )
    return {"p": p, "snr_db": list(snr), "dead_max": dead, "band_hz": list(band)}


def decimation_factor(stored_stride: int, time_stride: int | None) -> int:
    """How many stored samples to step to reach ``time_stride`` (ms between kept samples).

    ``None`` keeps the stored sampling. Raises ``ValueError`` if the stored
    stride does not divide the requested one (the data cannot be resampled
    by keeping samples).
    """
    if time_stride is None:
        return 1
    if int(time_stride) < 1 or int(time_stride) % int(stored_stride):
        raise ValueError(
            f"time_stride={time_stride} is not a multiple of the stored time_stride={stored_stride}; "
            f"use a multiple of {stored_stride}, or regenerate the data with --time-stride {time_stride}"
        )
    return int(time_stride) // int(stored_stride)


class FWIDataset(Dataset):
    """Normalised samples of one split.

    Args:
        source: an :class:`~epic_zoo.data.store.H5Split` or
            :class:`~epic_zoo.data.openfwi.OpenFWIFolder`.
        time_stride: keep every ``time_stride``-th ms (must be a multiple of
            the source's stored stride); ``None`` keeps the stored sampling.
        indices: the source samples to use (default all), e.g. a train/val split.

    Items are dicts:

    - ``"seismic"``: float32 tensor ``[source=5, time=nt, receiver=70]``,
      normalised to about ``[-1, 1]`` (signed log + dataset min/max);
    - ``"velocity"``: float32 tensor ``[1, depth=70, offset=70]`` in ``[-1, 1]``
      (``2 (v - 1500) / 3000 - 1``, v in m/s);
    - ``"index"``: int, the sample's index in ``source``.

    A sample with NaN/inf values or velocities outside 1500..4500 m/s raises
    :class:`~epic_zoo.data.store.DataError` naming its file.
    """

    def __init__(
        self,
        source: ShardedArrays,
        time_stride: int | None = None,
        indices: Sequence[int] | None = None,
    ):
        self.source = source
        self.dataset_name = str(source.attrs["dataset"])
        self.stored_stride = int(source.attrs["time_stride"])
        self.step = decimation_factor(self.stored_stride, time_stride)
        self.time_stride = self.stored_stride * self.step
        self.indices = (
            np.arange(len(source)) if indices is None else np.asarray(indices, dtype=np.int64)
        )

    @classmethod
    def for_contract(
        cls,
        source: ShardedArrays,
        contract: InputContract | None,
        indices: Sequence[int] | None = None,
    ) -> FWIDataset:
        """``source``'s samples on ``contract``'s time axis (``None``: the stored sampling)."""
        return cls(source, contract.time_stride if contract is not None else None, indices)

    def record(self) -> dict[str, Any]:
        """``{"dataset", "time_stride"}``: which records these are, for a results record."""
        return {"dataset": self.dataset_name, "time_stride": self.time_stride}

    @property
    def time_samples(self) -> int:
        """Time samples per record after decimation (``ceil(stored nt / step)``)."""
        return time_samples_for(self.step, int(self.source.attrs["nt"]))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        index = int(self.indices[i])
        seismic, velocity = self.source[index]
        seismic = np.ascontiguousarray(seismic[:, :: self.step])
        k, j = self.source.locate(index)
        check_arrays(
            seismic[None],
            velocity[None],
            what=str(self.source.files[k]),
            fix="Delete the file and regenerate or re-import it.",
            first_index=j,
        )
        return {
            "seismic": torch.from_numpy(
                normalize_seismic(seismic, self.dataset_name).astype(np.float32, copy=False)
            ),
            "velocity": torch.from_numpy(
                normalize_velocity(velocity).astype(np.float32, copy=False)
            ),
            "index": index,
        }

    def plot(self, i: int, source_index: int = 2) -> Figure:
        """Figure of sample ``i``: velocity map (m/s) and one shot gather (raw amplitude)."""
        import matplotlib.pyplot as plt

        index = int(self.indices[i])
        seismic, velocity = self.source[index]
        seismic = seismic[:, :: self.step]
        dt_ms = DT * 1e3 * self.time_stride
        fig, (ax_v, ax_s) = plt.subplots(1, 2, figsize=(9, 4))
        im = ax_v.imshow(velocity[0], cmap="viridis", extent=(0, NX * DX, NZ * DX, 0))
        ax_v.set(
            title=f"{self.dataset_name} #{index} velocity", xlabel="offset (m)", ylabel="depth (m)"
        )
        fig.colorbar(im, ax=ax_v, label="m/s")
        clip = float(np.percentile(np.abs(seismic[source_index]), 99)) or 1.0
        ax_s.imshow(
            seismic[source_index],
            cmap="gray",
            aspect="auto",
            vmin=-clip,
            vmax=clip,
            extent=(0, NX * DX, seismic.shape[1] * dt_ms, 0),
        )
        ax_s.set(title=f"shot {source_index}", xlabel="receiver offset (m)", ylabel="time (ms)")
        fig.tight_layout()
        return fig


def data_facts(dataset: Dataset) -> tuple[str, int]:
    """``(dataset name, time stride in ms)`` of normalised data, for the physics checks.

    Looks through ``Subset`` wrappers for an object with ``dataset_name`` and
    ``time_stride`` (an :class:`FWIDataset`).
    """
    inner: Any = dataset
    while isinstance(inner, Subset):
        inner = inner.dataset
    name, stride = getattr(inner, "dataset_name", None), getattr(inner, "time_stride", None)
    if name is None or stride is None:
        raise ValueError(
            "the misfit and refinement need the data's dataset name and time stride to "
            "denormalise the records; pass an FWIDataset or a raw reader (H5Split, OpenFWIFolder)"
        )
    return str(name), int(stride)


class SplitDataModule(L.LightningDataModule):
    """What one data module and a union of them share: split loaders and the records of the data.

    A subclass sets ``batch_size``, ``num_workers``, ``profile``, ``seed``,
    ``time_stride``, ``openfwi_root``, ``recipe_residuals``, ``field_noise`` and
    ``dataset_name`` and, in ``setup``, ``train_dataset``, ``val_dataset`` and
    ``test_dataset``. Training batches are shuffled, validation and test
    batches are not; workers persist between epochs when there are any.
    """

    batch_size: int
    num_workers: int
    profile: Profile
    seed: int
    time_stride: int
    openfwi_root: Path | None
    recipe_residuals: dict[str, Any]
    field_noise: dict[str, Any]
    dataset_name: str
    train_dataset: Dataset | None
    val_dataset: Dataset | None
    test_dataset: Dataset | None

    def run_record(self) -> dict[str, Any]:
        """The data levers a run's ``results.json["data"]`` keeps (profile, stride, batch, augmentations)."""
        return {
            "profile": self.profile.as_dict(),
            "time_stride": self.time_stride,
            "batch_size": self.batch_size,
            "recipe_residuals": dict(self.recipe_residuals),
            "field_noise": dict(getattr(self, "field_noise", None) or {"p": 0.0}),
        }

    def provenance(self, seed: int | None = None) -> dict[str, Any]:
        """Where a fitted baseline's (or a run's) data came from: dataset, profile, seeds, sizes."""
        return {
            "dataset": self.dataset_name,
            "profile": self.profile.name,
            "data_seed": int(getattr(self, "seed", 0)),
            "time_stride": self.time_stride,
            "source": "openfwi" if getattr(self, "openfwi_root", None) else "synthetic",
            "recipe_residuals": dict(getattr(self, "recipe_residuals", None) or {"p": 0.0}),
            "field_noise": dict(getattr(self, "field_noise", None) or {"p": 0.0}),
            **({"seed": int(seed)} if seed is not None else {}),
        }

    def missing_split_error(self) -> Exception:
        """What asking for a split that :meth:`setup` left empty raises."""
        return RuntimeError("call setup() before asking for a DataLoader")

    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        if self.train_dataset is None:
            raise RuntimeError("call setup() before asking for a DataLoader")
        if dataset is None:
            raise self.missing_split_error()
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset, shuffle=False)

    def augment(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A training batch after the module's opt-in augmentations (here none: the batch itself)."""
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Lightning hook: the augmentations on training batches only (on the batch's device)."""
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.training and isinstance(batch, dict):
            return self.augment(batch)
        return batch


class FWIDataModule(SplitDataModule):
    """Train/val/test loaders of one OpenFWI-style dataset.

    Args:
        dataset: dataset name, e.g. ``"flatvel-a"``.
        profile: data size ``tiny``/``lite``/``full`` (:mod:`epic_zoo.data.profiles`):
            sample counts, stored time stride and dtype of synthetic data.
        root: cache root of synthetic data (default ``$EPIC_ZOO_DATA`` or
            ``~/.cache/epic_zoo/data``); data live in
            ``{root}/{profile}-seed{seed}/{dataset}/{split}``.
        openfwi_root: folder of real OpenFWI ``.npy`` files; when given, it
            replaces the synthetic store: train = official train files present
            minus a held-out ``val_fraction``, val = that held-out part, test =
            official test files present.
        batch_size, num_workers: DataLoader settings.
        time_stride: keep every ``time_stride``-th ms; default the profile's.
        num_devices: end devices the receivers are split over (:attr:`receiver_split`).
        seed: synthetic data seed and the train/val draw of OpenFWI data.
        generate: generate missing synthetic data in :meth:`prepare_data`;
            ``False`` raises instead, with the command that makes it.
        val_fraction: share of OpenFWI train files held out for validation.
        limit: use at most this many samples per split (quick runs).
        recipe_residuals: opt-in augmentation of training batches (default
            off): ``{"p": 0.0, "num": 48, "scale": [0.5, 1.5]}``. With ``p > 0``
            the templates of the last ``num`` training maps
            (:func:`~epic_zoo.data.residuals.ensure_recipe_residuals`, ~5 s per
            map once, cached in the dataset folder) are made in
            :meth:`prepare_data`, and each training sample gets, with
            probability ``p``, one random template times ``U(scale)``
            (:meth:`on_after_batch_transfer`, in the main process, drawn from
            torch's global RNG, which the runner seeds per epoch). Validation
            and test batches, and batches read from the loaders outside a
            Trainer, are never changed. Synthetic data only.
        field_noise: opt-in augmentation of training batches (default off):
            ``{"p": 0.0, "snr_db": [10, 30], "dead_max": 0.1, "band_hz": [2, 40]}``.
            With ``p > 0`` each training sample gets, with probability ``p``,
            band-limited Gaussian noise at an SNR ``~ U(snr_db)`` dB per shot
            record and a fraction ``~ U(0, dead_max)`` of dead receivers
            (:func:`~epic_zoo.data.degrade.field_noise_batch`), added to the
            raw records (denormalise, add at ``dt = time_stride`` ms,
            renormalise), after any recipe residuals; same hook, RNG and
            training-only rule as ``recipe_residuals``.
    """

    def __init__(
        self,
        dataset: str = "flatvel-a",
        profile: str = "lite",
        root: str | os.PathLike | None = None,
        openfwi_root: str | os.PathLike | None = None,
        batch_size: int = 16,
        num_workers: int = 0,
        time_stride: int | None = None,
        num_devices: int = 5,
        seed: int = 0,
        generate: bool = True,
        val_fraction: float = 0.1,
        limit: int | None = None,
        recipe_residuals: Mapping[str, Any] | None = None,
        field_noise: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.info = get_dataset(dataset)
        self.profile = get_profile(profile)
        self.root = root
        self.openfwi_root = None if openfwi_root is None else Path(openfwi_root)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.time_stride = int(time_stride) if time_stride is not None else self.profile.time_stride
        self.num_devices = int(num_devices)
        self.seed = int(seed)
        self.generate = bool(generate)
        self.val_fraction = float(val_fraction)
        self.limit = None if limit is None else int(limit)
        self.recipe_residuals = check_recipe_residuals(recipe_residuals)
        self.field_noise = check_field_noise(field_noise)
        if self.recipe_residuals["p"] > 0 and self.openfwi_root is not None:
            raise ValueError(
                "data.recipe_residuals.p>0 augments synthetic (deepwave) data, but data.openfwi_root "
                "holds real OpenFWI records, which already carry the recipe's boundary; "
                "set data.recipe_residuals.p=0"
            )
        self._residuals: torch.Tensor | None = None
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction={val_fraction} must be between 0 and 1 (exclusive)")
        if self.openfwi_root is None:  # the stored stride must divide the requested one
            decimation_factor(self.profile.time_stride, self.time_stride)
        self._receiver_split = receiver_split(self.num_devices)
        self.save_hyperparameters(
            {
                "dataset": self.info.name,
                "profile": self.profile.name,
                "root": None if root is None else str(root),
                "openfwi_root": None if openfwi_root is None else str(openfwi_root),
                "batch_size": self.batch_size,
                "num_workers": self.num_workers,
                "time_stride": self.time_stride,
                "num_devices": self.num_devices,
                "seed": self.seed,
                "val_fraction": self.val_fraction,
                "limit": self.limit,
                "recipe_residuals": dict(self.recipe_residuals),
                **({"field_noise": dict(self.field_noise)} if self.field_noise["p"] > 0 else {}),
            }
        )
        self.train_dataset: FWIDataset | None = None
        self.val_dataset: FWIDataset | None = None
        self.test_dataset: FWIDataset | None = None

    @property
    def dataset_name(self) -> str:
        """Canonical dataset name, e.g. ``"flatvel-a"``."""
        return self.info.name

    @property
    def contract(self) -> InputContract:
        """What a network trained on these data takes (dataset, stride, samples, devices, ranges)."""
        return InputContract.make(self.dataset_name, self.time_stride, self.num_devices)

    @property
    def time_samples(self) -> int:
        """Time samples per record after decimation (``self.contract.time_samples``)."""
        return self.contract.time_samples

    @property
    def receiver_split(self) -> list[np.ndarray]:
        """Receiver indices held by each of the ``num_devices`` end devices."""
        return self._receiver_split

    def _dataset_dir(self) -> Path:
        return profile_root(self.root, self.profile, self.seed) / self.info.name

    def prepare_data(self) -> None:
        """Generate missing synthetic splits (no-op for OpenFWI data or ``generate=False``)."""
        if self.openfwi_root is None and self.generate:
            ensure_data(self.info.name, self.profile, self.root, self.seed)
        if self.recipe_residuals["p"] > 0 and (self._dataset_dir() / "train").exists():
            self._residuals_path()

    def _residuals_path(self) -> Path:
        return ensure_recipe_residuals(
            self._dataset_dir() / "train",
            self.info.name,
            self.recipe_residuals["num"],
            self.time_stride,
        )

    def _limit(self, n: int) -> np.ndarray:
        return np.arange(n if self.limit is None else min(n, self.limit))

    def _synthetic_split(self, split: str) -> FWIDataset:
        split_dir = self._dataset_dir() / split
        if not split_dir.exists():
            cmd = regenerate_command(
                split_dir,
                {
                    "dataset": self.info.name,
                    "split": split,
                    "total": split_count(self.info, self.profile, split),
                    "seed": self.seed,
                    "time_stride": self.profile.time_stride,
                    "dtype": self.profile.dtype,
                    "shard_size": self.profile.shard_size,
                },
            )
            raise DataError(
                f"no {self.info.name} {split} data at {split_dir}. Make it with "
                f"FWIDataModule(generate=True) or: {cmd}"
            )
        source = H5Split(split_dir)
        return FWIDataset(source, self.time_stride, self._limit(len(source)))

    def setup(self, stage: str | None = None) -> None:
        """Open the splits (files are opened lazily by each reading process)."""
        if self.train_dataset is not None:
            return
        if self.openfwi_root is None:
            self.train_dataset, self.val_dataset, self.test_dataset = (
                self._synthetic_split(s) for s in SPLITS
            )
            if self.recipe_residuals["p"] > 0:
                self._residuals = torch.from_numpy(np.load(self._residuals_path()))
            return
        train = OpenFWIFolder(self.openfwi_root, self.info.name, "train")
        n_val = max(1, round(self.val_fraction * len(train)))
        if n_val >= len(train):
            raise DataError(
                f"{self.openfwi_root} holds only {len(train)} train samples; "
                f"val_fraction={self.val_fraction} leaves none for training."
            )
        order = np.random.default_rng(self.seed).permutation(len(train))
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        self.train_dataset = FWIDataset(
            train, self.time_stride, train_idx[self._limit(len(train_idx))]
        )
        self.val_dataset = FWIDataset(train, self.time_stride, val_idx[self._limit(len(val_idx))])
        if present_keys(self.info, index_folder(self.openfwi_root), "test"):
            test = OpenFWIFolder(self.openfwi_root, self.info.name, "test")
            self.test_dataset = FWIDataset(test, self.time_stride, self._limit(len(test)))

    def missing_split_error(self) -> Exception:
        """Only the official test split of an OpenFWI folder can be absent after :meth:`setup`."""
        return DataError(
            f"{self.openfwi_root} holds no {self.info.openfwi_name} files of the official "
            "test split; download them from https://openfwi-lanl.github.io to test."
        )

    @property
    def residual_templates(self) -> torch.Tensor | None:
        """Recipe-residual templates ``[num, 5, T, 70]`` (normalised scale) after :meth:`setup`; ``None`` when off."""
        return self._residuals

    def augment(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A training batch with recipe residuals, then field noise, in ``"seismic"`` (both off: the batch itself)."""
        noise = self.field_noise
        if self._residuals is None and noise["p"] <= 0:
            return batch
        seismic = batch["seismic"]
        if self._residuals is not None:
            opts = self.recipe_residuals
            if self._residuals.device != seismic.device:
                self._residuals = self._residuals.to(seismic.device)
            seismic = add_recipe_residuals(seismic, self._residuals, opts["p"], opts["scale"])
        if noise["p"] > 0:
            raw = field_noise_batch(
                denormalize_seismic(seismic, self.dataset_name),
                noise["p"],
                noise["snr_db"],
                noise["dead_max"],
                noise["band_hz"],
                dt=self.time_stride * DT,
            )
            seismic = normalize_seismic(raw, self.dataset_name).to(seismic.dtype)
        return {**batch, "seismic": seismic}

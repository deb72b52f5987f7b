"""Evaluation as a library: a model on any FWI test data -> MAE, RMSE, two SSIMs, payload bytes.

The command line ``python -m epic_zoo.evaluate`` (:mod:`epic_zoo.evaluate`)
is a thin shell around :func:`evaluate_model` and :func:`open_data`; scripts
and other modules import this module, never the CLI.

Metrics follow :func:`epic_zoo.metrics.inversion_metrics`: ``mae`` and
``rmse`` on the normalised ``[-1, 1]`` velocity scale, ``mae_ms`` /
``rmse_ms`` in m/s, ``ssim`` (torchmetrics) and ``ssim_openfwi`` (OpenFWI's
zero-padded window) on maps rescaled to ``[0, 1]``.

Wave-equation checks (:mod:`epic_zoo.wave_physics`, off by default; deepwave is
slow on a CPU, so they cover only the first ``--physics-limit`` samples,
default 8):

- ``--misfit``: relative L2 data misfit ``||d_sim - d_obs|| / ||d_obs||``
  between the records simulated from the predicted map (m/s, clipped to
  1500..4500) and the observed raw records, all shots, whole record: keys
  ``misfit`` (mean over samples), ``misfit_per_device`` (mean per end
  device) and ``misfit_samples``;
- ``--refine``: full-waveform refinement of the model's prediction by the
  default schedule (:data:`epic_zoo.refine.DEFAULT_SCHEDULE`: frequency
  continuation, L-BFGS, a prior per family); ``--refine N`` scales its
  stages to about N L-BFGS iterations in all. Key ``refine`` holds
  ``iterations``, ``samples``, ``seconds``, ``cpu_seconds``, ``threads`` and
  SSIM (both kinds), MAE and misfit ``before`` and ``after``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from epic_zoo.data.contract import InputContract, read_contract
from epic_zoo.data.datamodule import FWIDataset, data_facts
from epic_zoo.data.geometry import (
    DEFAULT_NUM_DEVICES,
    V_MAX,
    V_MIN,
)
from epic_zoo.data.openfwi import OpenFWIFolder, infer_dataset
from epic_zoo.data.store import SHARD_GLOB, H5Split, ShardedArrays
from epic_zoo.data.transforms import denormalize_seismic, denormalize_velocity, normalize_velocity
from epic_zoo.metrics import inversion_metrics
from epic_zoo.tables import LEAD_METRICS
from epic_zoo.wire import link_bytes

METRIC_KEYS: tuple[str, ...] = LEAD_METRICS
"""Metrics :func:`evaluate_model` reports, in table order (see the module docstring for scales)."""
PHYSICS_LIMIT: int = 8
"""Default number of samples (the first ones) the misfit and the refinement cover."""
REFINE_METRIC_KEYS: tuple[str, ...] = ("mae_ms", "ssim_openfwi", "ssim", "mae", "misfit")
"""What the ``refine`` record reports ``before`` and ``after`` the refinement."""


def model_contract(model: nn.Module, dataset: str | None = None) -> InputContract | None:
    """The input contract of ``model``'s weights, ``None`` if it cannot be known.

    ``model.contract`` where :func:`epic_zoo.models.load_model` set it (Hub
    ``config.json``, the checkpoint's datamodule record); for a freshly built
    model, the one :func:`epic_zoo.data.contract.read_contract` gives for
    ``dataset`` records of the model's ``time_samples`` (``None`` without a
    dataset, or where several strides keep that many samples).
    """
    contract = getattr(model, "contract", None)
    if contract is not None or dataset is None:
        return contract
    try:
        return read_contract(
            {"dataset": dataset, "model_kwargs": dict(getattr(model, "config", {}))},
            what=type(model).__name__,
        )
    except (ValueError, KeyError):  # a sample count several strides keep; no such dataset
        return None


def payload_info(model: nn.Module) -> dict[str, Any]:
    """Bytes per device per sample on the device -> centre link (:func:`epic_zoo.wire.link_bytes`).

    Distributed models send ``model.payload_bytes()`` (quantised latent,
    header and checksum included); centralised models send each device's raw
    float32 records ``[5, T, n_k]``, the largest device's count reported.

    Returns:
        ``{"payload_bytes_per_device", "raw_bytes_per_device", "payload_kind"}``
        with kind ``"latent"`` or ``"raw"``.
    """
    return link_bytes(model)


def as_dataset(data: Dataset | ShardedArrays, model: nn.Module, *, check: bool = False) -> Dataset:
    """Normalised dataset for ``model``: raw readers are wrapped in :class:`FWIDataset`
    at the time stride of the model's input contract (the data's own where the
    model has none); datasets of dict items pass through. The model's contract
    is read once.

    Raises:
        ValueError: with ``check``, the model takes another number of time
            samples than the data give (names the command that makes data it takes).
    """
    raw = isinstance(data, ShardedArrays)
    name = str(data.attrs["dataset"]) if raw else getattr(data, "dataset_name", None)
    contract = model_contract(model, name)
    if raw:
        data = FWIDataset.for_contract(data, contract)
    expected = getattr(model, "config", {}).get("time_samples")
    got = getattr(data, "time_samples", None)
    if check and expected is not None and got is not None and int(expected) != int(got):
        stride = str(contract.time_stride) if contract is not None else "S"
        raise ValueError(
            f"the model takes {expected} time samples per record, the data give {got}; "
            "evaluate on data with the model's time stride (`python -m epic_zoo.data generate "
            f"--time-stride {stride}`) or on 1 ms data it can decimate"
        )
    return data


def evaluate_model(
    model: nn.Module,
    data: Dataset | DataLoader | ShardedArrays,
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    limit: int | None = None,
    progress: bool = False,
    misfit: bool = False,
    refine_iterations: int | str = 0,
    physics_limit: int | None = PHYSICS_LIMIT,
) -> dict[str, Any]:
    """Test metrics of ``model`` on ``data``.

    Args:
        model: an epic_zoo network (``forward(seismic [B, 5, T, 70]) -> velocity
            [B, 1, 70, 70]``, normalised scales); put in eval mode.
        data: a :class:`~epic_zoo.data.datamodule.FWIDataset` (or any dataset of
            ``{"seismic", "velocity"}`` dict items), a ``DataLoader`` of such
            batches, or a raw reader (:class:`~epic_zoo.data.store.H5Split`,
            :class:`~epic_zoo.data.openfwi.OpenFWIFolder`) that is normalised and
            decimated to the model's time stride here.
        batch_size: samples per forward pass (ignored for a ``DataLoader``).
        device: where the model runs.
        limit: evaluate only the first ``limit`` samples (not for a ``DataLoader``).
        progress: show a progress bar.
        misfit: also report the data misfit of the predictions (see the
            module docstring) on the first ``physics_limit`` samples.
        refine_iterations: refine the first ``physics_limit`` predictions
            with this many FWI iterations and report before / after (0: no).
        physics_limit: samples the misfit and the refinement cover (the
            first ones; ``None``: all). The data must say their dataset and
            time stride (an ``FWIDataset``, a raw reader, or a ``Subset`` /
            ``DataLoader`` of one) so the records can be denormalised.

    Returns:
        ``{"mae", "rmse", "mae_ms", "rmse_ms", "ssim", "ssim_openfwi"}`` (floats),
        ``"num_samples"``, and the keys of :func:`payload_info`; with
        ``misfit``, ``"misfit"``, ``"misfit_per_device"`` and
        ``"misfit_samples"``; with ``refine_iterations``, ``"refine"``
        (:func:`refine_predictions`).
    """
    if refine_iterations != "default" and (
        int(refine_iterations) != refine_iterations or refine_iterations < 0
    ):
        raise ValueError(
            f"refine_iterations={refine_iterations!r} must be 'default' or a whole number >= 0"
        )
    if physics_limit is not None and int(physics_limit) < 1:
        raise ValueError(f"physics_limit={physics_limit!r} must be >= 1 (or None for all)")
    refining = refine_iterations == "default" or refine_iterations > 0
    physics = bool(misfit) or refining
    keep = (physics_limit if physics_limit is not None else math.inf) if physics else 0
    model = model.to(device).eval()
    if isinstance(data, DataLoader):
        if limit is not None:
            raise ValueError("limit= applies to datasets; build the DataLoader on a Subset instead")
        loader = data
    else:
        dataset = as_dataset(data, model, check=True)
        if limit is not None:
            if int(limit) < 1:
                raise ValueError(f"--limit {limit}: evaluate at least 1 sample (or omit --limit)")
            dataset = Subset(dataset, range(min(int(limit), len(dataset))))
        if len(dataset) == 0:
            raise ValueError("no samples to evaluate: the data are empty")
        loader = DataLoader(dataset, batch_size=int(batch_size), shuffle=False, num_workers=0)
    facts = data_facts(loader.dataset) if physics else None  # fail before the forward passes
    metrics = inversion_metrics().to(device)
    count = 0
    kept: dict[str, list[torch.Tensor]] = {"seismic": [], "pred": [], "velocity": []}
    with torch.inference_mode():
        for batch in tqdm(loader, desc="evaluate", unit="batch", disable=not progress):
            seismic = batch["seismic"].to(device)
            velocity = batch["velocity"].to(device)
            pred = model(seismic)
            metrics.update(pred, velocity)
            take = int(min(keep - count, seismic.shape[0])) if count < keep else 0
            if take > 0:
                for key, value in (("seismic", seismic), ("pred", pred), ("velocity", velocity)):
                    kept[key].append(value[:take].cpu())
            count += seismic.shape[0]
        if count == 0:
            raise ValueError("no samples to evaluate: the data loader is empty")
        values = {k: float(v) for k, v in metrics.compute().items()}
    results = {**{k: values[k] for k in METRIC_KEYS}, "num_samples": count, **payload_info(model)}
    if not physics:
        return results
    # outside inference mode: the refinement needs autograd, and clones are ordinary tensors
    dataset_name, stride = facts
    observed = denormalize_seismic(torch.cat(kept["seismic"]).float().clone(), dataset_name)
    start = predicted_velocity_ms(torch.cat(kept["pred"]).clone())
    target = torch.cat(kept["velocity"]).float().clone()
    num_devices = int(getattr(model, "config", {}).get("num_devices", DEFAULT_NUM_DEVICES))
    if misfit:
        from epic_zoo.wave_physics import data_misfit

        result = data_misfit(
            start.to(device), observed, data_time_stride=stride, num_devices=num_devices
        )
        results["misfit"] = float(result.sample.mean())
        results["misfit_per_device"] = [float(v) for v in result.device.mean(dim=0)]
        results["misfit_samples"] = int(start.shape[0])
    if refining:
        results["refine"] = refine_predictions(
            start,
            observed,
            target,
            refine_iterations,
            data_time_stride=stride,
            dataset=dataset_name,
            device=device,
            progress=progress,
        )
    return results


def predicted_velocity_ms(pred: torch.Tensor) -> torch.Tensor:
    """Normalised predictions -> velocity in m/s, clipped to 1500..4500 (float32)."""
    return denormalize_velocity(pred.float()).clamp(V_MIN, V_MAX)


def per_map_mae(
    model: nn.Module, data: Dataset | ShardedArrays, *, batch_size: int = 16
) -> np.ndarray:
    """The model's MAE (m/s) on each map of ``data`` (in order), ``[num]`` float64.

    ``data`` as for :func:`evaluate_model`; their mean is :func:`evaluate_model`'s
    ``mae_ms``. Per-map errors are what an interval over maps needs
    (:func:`epic_zoo.evidence.bootstrap_ratio`).
    """
    model = model.eval()
    loader = DataLoader(as_dataset(data, model), batch_size=int(batch_size), shuffle=False)
    out = []
    with torch.inference_mode():
        for batch in loader:
            error = predicted_velocity_ms(model(batch["seismic"])) - denormalize_velocity(
                batch["velocity"]
            )
            out.append(error.abs().flatten(1).double().mean(1))
    return torch.cat(out).numpy()


def refine_predictions(
    start: torch.Tensor,
    observed: torch.Tensor,
    target: torch.Tensor,
    iterations: int | str,
    *,
    data_time_stride: int,
    device: str | torch.device = "cpu",
    progress: bool = False,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Refine predicted maps with FWI (:func:`epic_zoo.refine.refine_maps`) and compare before / after.

    Args:
        start: predicted maps ``[N, 1, 70, 70]`` m/s within 1500..4500.
        observed: raw records ``[N, 5, T, 70]``, a sample every ``data_time_stride`` ms.
        target: true maps ``[N, 1, 70, 70]``, normalised ``[-1, 1]``.
        iterations: ``"default"`` (the default schedule) or about this many
            L-BFGS iterations (the default schedule's stages scaled).
        dataset: the data's dataset name (picks the prior of its family).
        progress: unused (kept for callers).

    Returns:
        ``{"iterations", "samples", "seconds", "cpu_seconds", "threads", "before", "after"}``;
        ``before`` (the starting maps, i.e. the clipped predictions, on these
        samples only) and ``after`` hold :data:`REFINE_METRIC_KEYS` (``misfit``:
        mean raw relative L2 data misfit, all shots, whole record).
    """
    from epic_zoo.refine import DEFAULT_SCHEDULE, refine_maps

    schedule = (
        DEFAULT_SCHEDULE
        if iterations == "default"
        else DEFAULT_SCHEDULE.with_iterations(int(iterations))
    )
    result = refine_maps(
        start,
        observed,
        dataset=dataset,
        schedule=schedule,
        data_time_stride=data_time_stride,
        device=device,
    )
    out: dict[str, Any] = {
        "iterations": iterations if iterations == "default" else int(iterations),
        "samples": int(start.shape[0]),
        "seconds": float(result.seconds),
        "cpu_seconds": float(result.cpu_seconds),
        "threads": int(result.threads),
    }
    for key, maps, misfit in (
        ("before", start, result.misfit_before),
        ("after", result.velocity, result.misfit_after),
    ):
        metrics = inversion_metrics()
        metrics.update(normalize_velocity(maps.float().cpu()), target.cpu())
        values = {k: float(v) for k, v in metrics.compute().items()}
        values["misfit"] = float(misfit.mean())
        out[key] = {k: values[k] for k in REFINE_METRIC_KEYS}
    return out


# ---------------------------------------------------------------------------
# recorded metrics on regenerated data
# ---------------------------------------------------------------------------

REPRODUCE_TOLERANCE: dict[str, tuple[float, float]] = {
    "ssim": (0.005, 0.0),
    "ssim_openfwi": (0.005, 0.0),
    "mae": (0.002, 0.02),
    "rmse": (0.002, 0.02),
}
"""``(absolute, relative)`` tolerance per metric when a weight is re-measured on
regenerated test data: a metric passes if ``|measured - recorded| <=
max(absolute, relative * |recorded|)``. Regenerated records can differ from the
ones used at training time by float rounding (deepwave on another CPU/GPU or
thread count, float16 storage rounding one ulp the other way), which moves the
metrics by well under 1e-3; a wrong weight, normalisation or time stride moves
them by more than 1e-2."""


def compare_metrics(
    measured: dict[str, float],
    recorded: dict[str, float],
    tolerance: dict[str, tuple[float, float]] = REPRODUCE_TOLERANCE,
) -> list[str]:
    """Metrics of ``recorded`` that ``measured`` misses by more than ``tolerance`` (messages)."""
    failures = []
    for key, (atol, rtol) in tolerance.items():
        if key not in recorded:
            continue
        if key not in measured:
            failures.append(f"{key}: recorded {recorded[key]:.4f}, not measured")
            continue
        diff = abs(measured[key] - recorded[key])
        allowed = max(atol, rtol * abs(recorded[key]))
        if diff > allowed:
            failures.append(
                f"{key}: measured {measured[key]:.4f}, recorded {recorded[key]:.4f} "
                f"(|diff| {diff:.4f} > {allowed:.4f})"
            )
    return failures


def regenerated_test_metrics(
    model: nn.Module,
    dataset: str,
    data: dict[str, Any],
    num: int,
    root: str | Path,
    *,
    batch_size: int = 16,
    device: str = "cpu",
) -> dict[str, Any]:
    """Regenerate the first ``num`` test samples of a training run's data and evaluate on them.

    Args:
        model: the network.
        dataset: dataset name.
        data: the run's data record (``seed``, time stride, ``dtype``,
            ``generator_version``; see ``PretrainedInfo.data``).
        num: test samples (sample ``i`` depends only on dataset, seed, split and
            ``i``, so these are the first ``num`` of the run's test split).
        root: cache folder to generate into
            (:func:`epic_zoo.data.generate.regenerate_test_split`), so repeated
            checks reuse it.

    Raises:
        ValueError: the record was made with another generator version (the
            regenerated data would differ) or from imported OpenFWI files.
    """
    from epic_zoo.data.generate import regenerate_test_split

    return evaluate_model(
        model,
        H5Split(regenerate_test_split(dataset, data, num, root)),
        batch_size=batch_size,
        device=device,
    )


def reproduce_pretrained(
    name: str,
    root: str | Path,
    *,
    full: bool = False,
    registry: str | Path | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Re-measure a registered weight on regenerated test data and compare with its record.

    ``full=False`` uses the entry's ``check`` (its first ``num`` test samples, a
    few seconds); ``full=True`` the whole recorded test split against
    ``metrics``. The model is loaded the way users load it
    (:func:`epic_zoo.models.load_model`).

    Returns:
        ``{"name", "num", "measured", "recorded", "failures"}``; ``failures`` is
        empty when every metric is within :data:`REPRODUCE_TOLERANCE`.
    """
    from epic_zoo.models.factory import load_model
    from epic_zoo.weights.registry import get_pretrained_info

    info = get_pretrained_info(name, registry)
    if full:
        num, recorded = info.data.get("test"), info.metrics
        if not num:
            raise ValueError(f"{name}: the registry records no test split size (data.test)")
    else:
        if not info.check:
            raise ValueError(f"{name}: the registry entry has no 'check' record to reproduce")
        num, recorded = info.check["num"], info.check["metrics"]
    model = load_model(name, registry=registry, map_location=device)
    measured = regenerated_test_metrics(
        model, info.dataset, info.data, int(num), root, device=device
    )
    return {
        "name": name,
        "num": int(num),
        "measured": measured,
        "recorded": recorded,
        "failures": compare_metrics(measured, recorded),
    }


# ---------------------------------------------------------------------------
# data and figures
# ---------------------------------------------------------------------------


def open_data(
    path: str | Path, dataset: str | None = None, split: str | None = None
) -> ShardedArrays:
    """Raw reader for ``--data``: HDF5 shard / split folder / dataset folder, or OpenFWI ``.npy`` folder.

    ``dataset`` is needed for ``.npy`` folders whose path does not name it;
    ``split`` (``"train"``/``"test"``) picks official files in a ``.npy`` folder
    or the split of an epic_zoo dataset folder (default ``test``).
    """
    path = Path(path)
    if path.is_file() and path.suffix in (".h5", ".hdf5"):
        return H5Split(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"--data {path}: no such file or folder. Make test data with "
            "`python -m epic_zoo.data generate --dataset flatvel-a --split test --num 200 --out DIR`"
        )
    if any(path.glob(SHARD_GLOB)):
        return H5Split(path)
    for candidate in (path / (split or "test"), path / str(dataset) / (split or "test")):
        if candidate.is_dir() and any(candidate.glob(SHARD_GLOB)):
            return H5Split(candidate)
    if any(path.rglob("*.npy")):
        name = dataset or infer_dataset(path)
        if name is None:
            raise ValueError(
                f"--data {path} holds OpenFWI .npy files but names no dataset; pass --dataset (e.g. flatvel-a)"
            )
        return OpenFWIFolder(path, name, split=split)
    raise FileNotFoundError(
        f"--data {path}: no shard-*.h5 files, split folder or .npy pairs found there"
    )


def save_panels(
    model: nn.Module, dataset: Dataset, path: str | Path, num: int = 4, device: str = "cpu"
) -> Path:
    """PNG of ``num`` samples: prediction, truth, error in m/s (see :mod:`epic_zoo.plots`)."""
    from epic_zoo.plots import save_figure, velocity_panels

    items = [dataset[i] for i in range(min(int(num), len(dataset)))]
    seismic = torch.stack([it["seismic"] for it in items]).to(device)
    velocity = torch.stack([it["velocity"] for it in items])
    with torch.inference_mode():
        pred = model.to(device).eval()(seismic).cpu()
    fig = velocity_panels(
        denormalize_velocity(pred).numpy(),
        denormalize_velocity(velocity).numpy(),
        titles=[f"sample {it['index']}" for it in items],
    )
    return save_figure(fig, path)

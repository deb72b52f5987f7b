"""Export: Lightning checkpoint / run folder / Hub folder -> a Hub-format folder.

Upper layer (builds the model from the checkpoint). A run folder contributes
its ``results.json`` (metrics, record, the mean-map ``baseline``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from epic_zoo.data.contract import read_contract
from epic_zoo.models.factory import load_model
from epic_zoo.weights.errors import HubFormatError
from epic_zoo.weights.files import CONFIG_NAME, HUB_FILES
from epic_zoo.weights.folder import save_hub_folder
from epic_zoo.weights.runs import run_inputs


def data_record(dm: Mapping[str, Any]) -> dict[str, Any]:
    """Data part of the record from ``FWIDataModule`` hyper-parameters.

    Profile, seed, time stride and sample limit as saved; split sizes and dtype
    from the profile (``limit`` applied); the generator version of this
    checkout (synthetic data only); the recipe-residual augmentation
    (:mod:`epic_zoo.data.residuals`) and the field-noise augmentation
    (:func:`epic_zoo.data.degrade.field_noise_batch`) where they were on.
    """
    from epic_zoo.data.families import GENERATOR_VERSION
    from epic_zoo.data.profiles import get_profile

    out: dict[str, Any] = {k: dm[k] for k in ("profile", "seed", "time_stride", "limit") if k in dm}
    if not out:
        return out
    out["data_source"] = "openfwi" if dm.get("openfwi_root") else "synthetic"
    residuals = dm.get("recipe_residuals") or {}
    if residuals.get("p"):
        out["recipe_residuals"] = dict(residuals)
    noise = dm.get("field_noise") or {}
    if noise.get("p"):
        out["field_noise"] = dict(noise)
    if "profile" in dm and out["data_source"] == "synthetic":
        out["generator_version"] = GENERATOR_VERSION
        try:
            profile = get_profile(dm["profile"])
        except (
            KeyError
        ):  # a custom profile (a mapping in the run's config): sizes from results.json
            return out
        limit = dm.get("limit")
        for split in ("train", "val", "test"):
            n = profile.num(split)
            out[split] = n if n is None or limit is None else min(n, int(limit))
        out["dtype"] = profile.dtype
        if profile.generator != "default":  # maps drawn with other laws (families.widen)
            out["generator"] = profile.generator
    return out


def export_any(
    source: str | Path,
    out_dir: str | Path,
    *,
    dataset: str | None = None,
    name: str | None = None,
    record: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
) -> Path:
    """Hub-format folder from a ``.ckpt`` file, a run folder or a Hub-format folder.

    A run folder contributes its ``results.json`` / ``metrics.json`` /
    ``record.json`` (see :func:`run_inputs`); explicit ``metrics`` and
    ``record`` entries take precedence. A Hub-format folder is validated
    (loaded) and copied.

    From a checkpoint, ``dataset`` and the input contract default to its
    datamodule hyper-parameters. The record gets ``epochs``, ``global_step``,
    ``lightning_version``, the task hyper-parameters and the source file name;
    ``record`` adds to / overrides them (recipe, profile, sizes, seed, ...).
    ``export_checkpoint`` is this function (for a ``.ckpt`` source).
    """
    source = Path(source)
    out_dir = Path(out_dir)
    if source.is_dir() and (source / CONFIG_NAME).is_file():
        load_model(source)  # validate before publishing
        out_dir.mkdir(parents=True, exist_ok=True)
        if source.resolve() != out_dir.resolve():
            for filename in HUB_FILES:
                if (source / filename).is_file():
                    shutil.copy2(source / filename, out_dir / filename)
        return out_dir
    if source.is_dir():
        checkpoint, run_metrics, run_record = run_inputs(source)
        metrics = {**run_metrics, **dict(metrics or {})}
        record = {**run_record, **dict(record or {})}
    elif source.suffix == ".ckpt" and source.is_file():
        checkpoint = source
    else:
        raise HubFormatError(
            f"{source} is neither a .ckpt file, a run folder nor a Hub-format folder"
        )
    model = load_model(checkpoint)
    info = model.source["info"]
    dm = info["datamodule_hparams"]
    dataset = dataset or dm.get("dataset")
    if dataset is None:
        raise HubFormatError(
            f"{checkpoint}: the dataset is not recorded in the checkpoint; pass --dataset NAME"
        )
    auto = {
        "epochs": info["epoch"],
        "global_step": info["global_step"],
        "lightning_version": info["lightning_version"],
        "task_hparams": {k: v for k, v in info["hparams"].items() if k != "model_kwargs"},
        "source_checkpoint": checkpoint.name,
    }
    auto.update(data_record(dm))
    record = {**auto, **dict(record or {})}
    try:
        contract = read_contract(
            {**dm, **record, "dataset": dataset, "model_kwargs": model.config}, what=str(checkpoint)
        )
    except ValueError as err:
        raise HubFormatError(str(err)) from err
    return save_hub_folder(
        model,
        out_dir,
        dataset=dataset,
        contract=contract,
        name=name,
        record=record,
        metrics=metrics,
        repo_id=repo_id,
    )


export_checkpoint = export_any

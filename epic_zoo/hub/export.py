"""Export: Lightning checkpoint / run folder / Hub folder -> a Hub-format folder.

Upper layer (builds the model from the checkpoint). A run folder contributes
its ``results.json`` (metrics, record, the mean-map ``baseline``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from epic_zoo.hub.errors import HubFormatError
from epic_zoo.hub.files import CONFIG_NAME, HUB_FILES
from epic_zoo.hub.folder import save_hub_folder
from epic_zoo.hub.loader import load_hub_folder, model_from_checkpoint
from epic_zoo.hub.runs import data_record, run_inputs


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

    From a checkpoint, ``dataset`` and ``time_stride`` default to its datamodule
    hyper-parameters. The record gets ``epochs``, ``global_step``,
    ``lightning_version``, the task hyper-parameters and the source file name;
    ``record`` adds to / overrides them (recipe, profile, sizes, seed, ...).
    ``export_checkpoint`` is this function (for a ``.ckpt`` source).
    """
    source = Path(source)
    out_dir = Path(out_dir)
    if source.is_dir() and (source / CONFIG_NAME).is_file():
        load_hub_folder(source)  # validate before publishing
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
    model, info = model_from_checkpoint(checkpoint)
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
    return save_hub_folder(
        model,
        out_dir,
        dataset=dataset,
        time_stride=record.get("time_stride"),
        name=name,
        record=record,
        metrics=metrics,
        repo_id=repo_id,
    )


export_checkpoint = export_any

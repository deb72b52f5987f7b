"""Run folders and Lightning checkpoints: what ``python -m epic_zoo.run`` leaves behind.

Weights-format layer: reads ``results.json`` and ``.ckpt`` files
(``weights_only=True``), never builds a model. The file names come from :mod:`epic_zoo.run_layout`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from epic_zoo.run_layout import RESULTS_FILE
from epic_zoo.weights.errors import HubFormatError
from epic_zoo.weights.files import read_json


def read_lightning_checkpoint(path: Path) -> dict[str, Any]:
    """Load a Lightning ``.ckpt`` with ``weights_only=True`` (no arbitrary unpickling)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError/RuntimeError/EOFError/...
        raise HubFormatError(
            f"cannot read {path} as a Lightning checkpoint with weights_only=True ({type(err).__name__}: "
            f"{err}). epic_zoo never unpickles arbitrary objects: the checkpoint must hold only "
            "tensors and plain containers (no OmegaConf in save_hyperparameters)"
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise HubFormatError(f"{path} has no 'state_dict'; is it a Lightning checkpoint?")
    return ckpt


def profile_record(results: Mapping[str, Any]) -> dict[str, Any]:
    """Split sizes and dtype of the synthetic data profile a run's ``results.json`` records.

    ``{"train", "val", "test", "dtype"}`` from ``data.profile`` (custom
    profiles included; ``data.limit`` applied), ``{}`` when not recorded.
    """
    profile = (results.get("data") or {}).get("profile")
    data_cfg = (results.get("config") or {}).get("data") or {}
    if not isinstance(profile, Mapping) or data_cfg.get("openfwi_root"):
        return {}  # OpenFWI folders: the sizes are the files', not the profile's
    limit = data_cfg.get("limit")
    out: dict[str, Any] = {}
    for split in ("train", "val", "test"):
        n = profile.get(split)
        if n is not None:
            out[split] = n if limit is None else min(int(n), int(limit))
    if profile.get("dtype"):
        out["dtype"] = profile["dtype"]
    return out


def find_run_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint to export from a run folder.

    Prefers a file named ``best*.ckpt``, then ``last.ckpt``, then the single
    ``.ckpt`` found (searched recursively).
    """
    run_dir = Path(run_dir)
    found = sorted(run_dir.rglob("*.ckpt"))
    if not found:
        raise HubFormatError(f"no .ckpt file under {run_dir}; pass the checkpoint path itself")
    for pick in (
        [p for p in found if p.name.startswith("best")],
        [p for p in found if p.name == "last.ckpt"],
        found if len(found) == 1 else [],
    ):
        if len(pick) == 1:
            return pick[0]
    raise HubFormatError(
        f"{len(found)} checkpoints under {run_dir} ({', '.join(p.name for p in found[:5])}); "
        "pass the one to export"
    )


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """The run folder's ``results.json`` as a dict (``{}`` when there is none)."""
    path = Path(run_dir) / RESULTS_FILE
    return read_json(path) if path.is_file() else {}


def is_run_folder(path: str | Path) -> bool:
    """A folder holding ``results.json`` or a ``.ckpt`` file (searched recursively)."""
    path = Path(path)
    return path.is_dir() and (
        (path / RESULTS_FILE).is_file() or next(path.rglob("*.ckpt"), None) is not None
    )


def run_inputs(run_dir: str | Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """``(checkpoint, metrics, record)`` of a run folder.

    ``results.json`` (written by :func:`epic_zoo.run.train`) gives the best
    checkpoint's name, the test metrics, the recipe, epochs, wall time, seed,
    samples seen, the schedule and the input-free ``baseline`` (mean-map MAE on
    the same test data) and the ``commit`` that trained it; ``metrics.json`` and ``record.json``, when present, add
    to / override them.
    """
    run_dir = Path(run_dir)
    results = read_json(run_dir / RESULTS_FILE) if (run_dir / RESULTS_FILE).is_file() else {}
    best = Path(results.get("best_checkpoint") or "").name
    found = sorted(run_dir.rglob(best)) if best else []
    checkpoint = found[0] if found else find_run_checkpoint(run_dir)
    metrics = dict(results.get("metrics") or {})
    record = {
        "recipe": results.get("recipe"),
        "run_epochs": results.get("epochs"),
        "wall_time_s": results.get("wall_time_s"),
        "batch_size": (results.get("data") or {}).get("batch_size"),
        "seed": results.get("seed"),
        "samples_seen": results.get("samples_seen"),
        "schedule": results.get("schedule"),
        "checkpoint_monitor": results.get("checkpoint_monitor"),
        "baseline": results.get("baseline") or None,
        "commit": results.get("commit"),  # the checkout that trained it (else the exporter's)
        **profile_record(results),
    }
    record = {k: v for k, v in record.items() if v is not None}
    for folder in {checkpoint.parent, run_dir}:
        if (folder / "metrics.json").is_file():
            metrics.update(read_json(folder / "metrics.json"))
        if (folder / "record.json").is_file():
            record.update(read_json(folder / "record.json"))
    return checkpoint, metrics, record

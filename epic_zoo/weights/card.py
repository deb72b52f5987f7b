"""Model cards (``README.md``): Hub YAML metadata with ``model-index`` and the record.

``huggingface_hub.ModelCard.load`` reads the evaluation results back
(``card.data.eval_results``). The data are epic_zoo's synthetic re-creations
of the OpenFWI families, not the released OpenFWI files, and no Hub dataset
holds them: the card says so and links no Hub dataset id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from epic_zoo.data.contract import read_contract
from epic_zoo.weights.files import DEFAULT_LICENSE

PIPELINE_TAG = "image-to-image"
"""Hub task of every card: a 2-D array of records in, a 2-D velocity map out."""

METRIC_NAMES: dict[str, str] = {
    "mae": "MAE (normalised [-1, 1])",
    "rmse": "RMSE (normalised [-1, 1])",
    "mae_ms": "MAE (m/s)",
    "rmse_ms": "RMSE (m/s)",
    "ssim": "SSIM (torchmetrics)",
    "ssim_openfwi": "SSIM (OpenFWI window)",
}
"""Metrics reported in ``model-index`` (keys of ``config.json["metrics"]``)."""


def dataset_title(dataset: str) -> str:
    """Honest dataset name: ``"FlatVel-A (epic_zoo synthetic re-creation, not the OpenFWI release)"``."""
    family, _, variant = dataset.partition("-")
    pretty = {
        "flatvel": "FlatVel",
        "curvevel": "CurveVel",
        "flatfault": "FlatFault",
        "curvefault": "CurveFault",
        "style": "Style",
    }.get(family, family)
    return f"{pretty}-{variant.upper()} (epic_zoo synthetic re-creation, not the OpenFWI release)"


def eval_results(config: Mapping[str, Any]) -> list[EvalResult]:
    """``model-index`` entries for the test metrics of ``config``."""
    dataset = config["dataset"]
    metrics = config.get("metrics") or {}
    record = config.get("record") or {}
    return [
        EvalResult(
            task_type=PIPELINE_TAG,
            task_name="seismic full-waveform inversion (records -> velocity map)",
            dataset_type="epic_zoo-synthetic",
            dataset_name=dataset_title(dataset),
            dataset_config=dataset,
            dataset_split="test",
            dataset_args={
                "generator_version": record.get("generator_version"),
                "seed": record.get("seed"),
                "test_samples": record.get("test"),
            },
            metric_type=key,
            metric_name=label,
            metric_value=float(metrics[key]),
        )
        for key, label in METRIC_NAMES.items()
        if key in metrics
    ]


def headline_lines(metrics: Mapping[str, float], record: Mapping[str, Any]) -> list[str]:
    """The lead sentence: test MAE in m/s beside the mean map, then SSIM and the budget."""
    if "mae_ms" not in metrics:
        return []
    base = record.get("baseline") or {}
    text = f"Test MAE **{metrics['mae_ms']:.1f} m/s**"
    if base.get("mean_map_mae_ms"):
        verdict = "learns" if base.get("learns") else "**does not learn**"
        text += (
            f", {base['mae_ratio_to_mean_map']:.2f} x the input-free mean map "
            f"({base['mean_map_mae_ms']:.1f} m/s on the same {record.get('test', '')} test maps): "
            f"{verdict} (rule: MAE <= 0.6 x mean map)"
        )
    if "ssim_openfwi" in metrics:
        text += f"; SSIM (OpenFWI) {metrics['ssim_openfwi']:.3f}"
    steps = (record.get("schedule") or {}).get("steps")
    if record.get("samples_seen"):
        text += (
            f". Budget: {record['samples_seen']:,} training samples seen"
            + (f" ({steps:,} optimiser steps)" if steps else "")
            + (
                f", checkpoint chosen by {record['checkpoint_monitor']}"
                if record.get("checkpoint_monitor")
                else ""
            )
        )
    residuals = record.get("recipe_residuals") or {}
    if residuals.get("p"):
        text += (
            f". Trained with recipe residuals (`epic_zoo.data.residuals`): on a fraction "
            f"{residuals['p']:g} of the training batches, records gain the difference between "
            f"OpenFWI-recipe and deepwave records of {residuals.get('num', '?')} training maps, "
            "to keep the weights accurate on records simulated by the exact recipe"
        )
    return [text + ".", ""]


def card_text(config: Mapping[str, Any], repo_id: str | None) -> str:
    """Model card (``README.md``) with Hub YAML metadata and the training record."""
    dataset = config["dataset"]
    metrics = config.get("metrics") or {}
    record = config.get("record") or {}
    superseded = record.get("superseded")
    contract = read_contract(config, what=config.get("name", "the config"))
    tags = ["pytorch", "safetensors", "epic_zoo", "full-waveform-inversion", "seismic"]
    tags += ["openfwi", config["architecture"]] + (["superseded"] if superseded else [])
    results = eval_results(config)
    data = ModelCardData(
        library_name="epic_zoo",
        license=record.get("license", DEFAULT_LICENSE),
        pipeline_tag=PIPELINE_TAG,
        tags=tags,
        metrics=sorted({"ssim", "mae", "rmse"} & set(metrics)) or ["ssim", "mae", "rmse"],
        model_name=config["name"],
        eval_results=results or None,
    )
    load_name = config["name"]
    warning = [f"> **Superseded: do not use for results.** {superseded}", ""] if superseded else []
    lines = [
        f"# {config['name']}",
        "",
        *warning,
        f"`{config['architecture']}` trained on epic_zoo's `{dataset}` data: "
        f"{dataset_title(dataset)}, made by `epic_zoo.data` with the OpenFWI geometry "
        "(5 sources, 70 receivers, 70x70 velocity map on a 10 m grid). "
        "Input: normalised seismic `[batch, 5, time, 70]`; output: normalised velocity "
        "`[batch, 1, 70, 70]` in [-1, 1] (x1500 + 3000 gives m/s).",
        "",
        "## Use",
        "",
        "```python",
        "from epic_zoo.models import create_model",
        f'model = create_model("{load_name}", pretrained=True)',
        "```",
        "",
        "or from the Hub repository or a local copy of this folder:",
        "",
        "```python",
        f"from epic_zoo.models import {'EPIC' if config['architecture'].startswith('epic') else 'create_model'}",
        (
            f'model = EPIC.from_pretrained("{repo_id or "ORG/NAME"}")'
            if config["architecture"].startswith("epic")
            else f'model = create_model("hf-hub:{repo_id or "ORG/NAME"}")'
        ),
        "```",
        "",
        "## Test metrics",
        "",
        *headline_lines(metrics, record),
        "MAE/RMSE on the [-1, 1] scale (`_ms`: m/s); SSIM on maps rescaled to [0, 1] "
        "(`ssim_openfwi`: OpenFWI's zero-padded window, `ssim`: torchmetrics). "
        "The same numbers are in the `model-index` metadata above.",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())],
        "",
        "## How it was made",
        "",
        "| field | value |",
        "|---|---|",
        f"| time stride | {contract.time_stride} ({contract.time_samples} time samples) |",
        f"| parameters | {config['params']:,} |",
        f"| payload bytes per device per sample | {config.get('payload_bytes')} |",
        f"| epic_zoo version | {config['epic_zoo_version']} |",
        *[
            f"| {k} | {json.dumps(v) if not isinstance(v, str) else v} |"
            for k, v in sorted(record.items())
        ],
        "",
        "The data are synthetic re-creations of the OpenFWI families made by "
        "`epic_zoo.data` (generator version and seed above), not the released OpenFWI "
        "files; no Hugging Face dataset holds them.",
        "",
    ]
    return ModelCard.from_template(
        data, template_str="---\n{{ card_data }}\n---\n\n" + "\n".join(lines)
    ).content

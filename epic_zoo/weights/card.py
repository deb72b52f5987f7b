"""Model cards (``README.md``): Hub YAML metadata with ``model-index`` and the record.

``huggingface_hub.ModelCard.load`` reads the evaluation results back
(``card.data.eval_results``). The data are epic_zoo's synthetic re-creations
of the OpenFWI families, not the released OpenFWI files, and no Hub dataset
holds them: the card says so and links no Hub dataset id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from epic_zoo.data.contract import read_contract
from epic_zoo.weights.files import CONFIG_NAME, DEFAULT_LICENSE
from epic_zoo.weights.registry import read_registry

PIPELINE_TAG = "image-to-image"
"""Hub task of every card: a 2-D array of records in, a 2-D velocity map out."""

CARD_METRICS: dict[str, tuple[str, str, str]] = {
    # config.json key: (standard metric id, metric config (unit or variant), display name)
    "mae_ms": ("mae", "m/s", "MAE (m/s)"),
    "rmse_ms": ("rmse", "m/s", "RMSE (m/s)"),
    "ssim_openfwi": ("ssim", "openfwi", "SSIM (OpenFWI window)"),
    "ssim": ("ssim", "torchmetrics", "SSIM (torchmetrics)"),
    "mae": ("mae", "normalised", "MAE (normalised [-1, 1])"),
    "rmse": ("rmse", "normalised", "RMSE (normalised [-1, 1])"),
}
"""Metrics reported in ``model-index``: standard ids (``mae``, ``rmse``, ``ssim``) with the
unit or variant in ``config`` and ``name``, in the order MAE in m/s first, then SSIM."""
METRIC_NAMES: dict[str, str] = {key: name for key, (_, _, name) in CARD_METRICS.items()}
"""Display name of each ``config.json`` metric key."""
PAPER_ARXIV = "2603.09032"
"""EPIC's paper on arXiv ("Two Teachers Better Than One")."""
OPENFWI_URL = "https://openfwi-lanl.github.io"
CITATION = """```bibtex
@misc{epic_arxiv_2603_09032,
  title        = {Two Teachers Better Than One},
  howpublished = {arXiv:2603.09032},
  year         = {2026},
  url          = {https://arxiv.org/abs/2603.09032}
}
@inproceedings{deng2022openfwi,
  title     = {{OpenFWI}: Large-scale Multi-structural Benchmark Datasets for Full Waveform Inversion},
  author    = {Deng, Chengyuan and Feng, Shihang and Wang, Hanchen and Zhang, Xitong and Jin, Peng
               and Feng, Yinan and Zeng, Qili and Chen, Yinpeng and Lin, Youzuo},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS), Datasets and Benchmarks Track},
  year      = {2022}
}
```"""
"""BibTeX of the method and the benchmark, printed in every card."""


def metric_key(metric_type: str, metric_config: str | None) -> str | None:
    """The ``config.json`` metric key of a card's ``model-index`` entry (``None`` if unknown)."""
    for key, (kind, config, _) in CARD_METRICS.items():
        if (kind, config) == (metric_type, metric_config):
            return key
    return None


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
                **({"generator": record["generator"]} if record.get("generator") else {}),
                "seed": record.get("seed"),
                "test_samples": record.get("test"),
            },
            metric_type=kind,
            metric_config=variant,
            metric_name=label,
            metric_value=float(metrics[key]),
        )
        for key, (kind, variant, label) in CARD_METRICS.items()
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
    noise = record.get("field_noise") or {}
    if noise.get("p"):
        text += (
            f". Trained with field noise (`epic_zoo.data.degrade.field_noise_batch`): a fraction "
            f"{noise['p']:g} of the training samples gained band-limited noise at "
            f"{noise.get('snr_db', '?')} dB SNR and up to {noise.get('dead_max', '?')} dead receivers"
        )
    return [text + ".", ""]


def _is_registered(config: Mapping[str, Any]) -> bool:
    """Whether the installed registry publishes exactly these weights' ``config.json`` by name."""
    entry = read_registry().get(config["name"])
    if entry is None or CONFIG_NAME not in entry.files:
        return False
    text = json.dumps(dict(config), indent=2) + "\n"  # as write_hub_folder writes it
    return hashlib.sha256(text.encode("utf-8")).hexdigest() == entry.files[CONFIG_NAME]


def usage_lines(config: Mapping[str, Any], repo_id: str | None) -> list[str]:
    """The card's "Use" code: load from ``repo_id`` (the repo the card is uploaded to) and invert.

    The pretrained name is shown too where the installed registry publishes
    these very weights under it (and under ``repo_id``, if one is given).
    """
    name = config["name"]
    entry = read_registry().get(name)
    by_name = _is_registered(config) and (repo_id is None or entry.repo_id == repo_id)
    load = [f'model = create_model("hf-hub:{repo_id}")'] if repo_id else []
    if by_name:
        load.append(
            f'model = create_model("{name}", pretrained=True)'
            + ("  # or: the installed zoo" if load else "")
        )
    if not load:
        load.append(f'model = create_model("path/to/{name}")  # this folder')
    return [
        "```python",
        "from epic_zoo.models import create_model",
        *load,
        "velocity = model.invert(records)  # raw records [B, 5, 1000, 70] at 1 ms -> [B, 70, 70] m/s",
        "```",
        "",
        f'A local copy of this folder loads the same way: `create_model("path/to/{name}")`. '
        "`model.invert` applies what the weights expect (one sample every "
        f"{read_contract(config, what=str(name)).time_stride} ms by plain slicing, OpenFWI's "
        "normalisation with the "
        f"`{config['dataset']}` statistics in `config.json`); `model(x)` is the normalised path "
        "(`[B, 5, T, 70]` in [-1, 1] -> `[B, 1, 70, 70]` in [-1, 1], x1500 + 3000 gives m/s).",
        "",
    ]


def card_text(config: Mapping[str, Any], repo_id: str | None) -> str:
    """Model card (``README.md``) with Hub YAML metadata and the training record.

    ``repo_id`` is the Hub repo the card is written for (its usage line loads
    from there); ``None`` names the pretrained name only.
    """
    dataset = config["dataset"]
    metrics = config.get("metrics") or {}
    record = config.get("record") or {}
    superseded = record.get("superseded")
    contract = read_contract(config, what=config.get("name", "the config"))
    tags = ["pytorch", "safetensors", "epic_zoo", "full-waveform-inversion", "seismic"]
    tags += ["openfwi", config["architecture"], f"arxiv:{PAPER_ARXIV}"]
    tags += ["superseded"] if superseded else []
    results = eval_results(config)
    data = ModelCardData(
        library_name="epic_zoo",
        license=record.get("license", DEFAULT_LICENSE),
        pipeline_tag=PIPELINE_TAG,
        tags=tags,
        metrics=sorted({kind for key, (kind, _, _) in CARD_METRICS.items() if key in metrics})
        or ["mae", "rmse", "ssim"],
        model_name=config["name"],
        eval_results=results or None,
    )
    warning = [f"> **Superseded: do not use for results.** {superseded}", ""] if superseded else []
    generator = record.get("generator", "default")
    laws = (
        ""
        if generator == "default"
        else f" with the family's `{generator}` laws (`epic_zoo.data.families.widen`: maps "
        "unlike the default generator's; its test maps are of those laws too)"
    )
    lines = [
        f"# {config['name']}",
        "",
        *warning,
        f"`{config['architecture']}` trained on epic_zoo's `{dataset}` data: "
        f"{dataset_title(dataset)}{laws}, made by `epic_zoo.data` with the acquisition of "
        f"[OpenFWI]({OPENFWI_URL}) (Deng et al., NeurIPS 2022 Datasets and Benchmarks): 5 "
        "sources, 70 receivers, 70x70 velocity map on a 10 m grid. The architecture follows "
        f'EPIC ([arXiv {PAPER_ARXIV}](https://arxiv.org/abs/{PAPER_ARXIV}), "Two Teachers '
        "Better Than One\"; layer sizes and training are epic_zoo's own). Input: seismic "
        "records `[batch, 5, time, 70]`; output: a velocity map `[batch, 70, 70]` in m/s.",
        "",
        "## Use",
        "",
        *usage_lines(config, repo_id),
        "## Intended use",
        "",
        "Research on data-driven and distributed seismic full-waveform inversion: reproducing "
        "and comparing inversions on OpenFWI-style records (OpenFWI's geometry, 1 ms "
        "sampling, 15 Hz Ricker sources), and a starting point for fine-tuning on a user's "
        "own OpenFWI-format data (`python -m epic_zoo.run recipe=finetune "
        f"init_from={config['name']} ...`). Not for decisions on real subsurface models.",
        "",
        "## Limitations",
        "",
        "- Trained and tested on synthetic re-creations of the OpenFWI velocity families "
        "(epic_zoo's generator and deepwave forward modelling), not on the released OpenFWI "
        "files nor field data; accuracy there is not measured by the numbers below.",
        "- Records simulated by a port of OpenFWI's own forward-modelling recipe differ "
        "slightly from deepwave's. For the committed epic_zoo zoo a recipe-port check "
        "(48 fresh maps of each family, two draws) found every test MAE within 25 % of the "
        "deepwave test MAE; weights exported from other runs are not checked unless their "
        "record says so.",
        "- Only OpenFWI's acquisition (5 sources, 70 receivers, 1 s at 1 ms) and velocities "
        "of 1500-4500 m/s: other geometries, sampling, wavelets or noise are outside what the "
        "weights saw; the output is bounded to that velocity range.",
        "",
        "## Test metrics",
        "",
        *headline_lines(metrics, record),
        "MAE/RMSE on the [-1, 1] scale (`_ms`: m/s); SSIM on maps rescaled to [0, 1] "
        "(`ssim_openfwi`: OpenFWI's zero-padded window, `ssim`: torchmetrics). The same "
        "numbers are in the `model-index` metadata above (standard ids `mae`, `rmse`, "
        "`ssim`; the unit or variant in each entry's `config` and name).",
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
        "## Citation",
        "",
        CITATION,
        "",
    ]
    return ModelCard.from_template(  # the body as a variable: braces in it stay text
        data, template_str="---\n{{ card_data }}\n---\n\n{{ body }}", body="\n".join(lines)
    ).content

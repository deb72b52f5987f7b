"""The Hub path end to end as a user walks it: a run folder -> export / save_pretrained / push.

A run folder here is what ``python -m epic_zoo.run`` leaves (``results.json`` and
a Lightning-format checkpoint holding the task's hyper-parameters, the
datamodule's and the weights), written directly so the test needs no
training. Uploads are faked (``HfApi.create_repo`` / ``upload_folder``
replaced); the card is read back with ``huggingface_hub`` itself.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch
from conftest import TINY_EPIC
from huggingface_hub import HfApi, ModelCard, metadata_load

from epic_zoo import hub
from epic_zoo.hub import cli as hub_cli
from epic_zoo.models import create_model
from epic_zoo.weights.card import metric_key

QUICKSTART = {  # a custom profile: a mapping in recipes/recipe/quickstart.yaml, no registered name
    "name": "quickstart",
    "train": 300,
    "val": 50,
    "test": 100,
    "time_stride": 4,
    "dtype": "float16",
    "shard_size": 50,
}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A quick-start run folder: custom profile ``quickstart``, tiny EPIC, test metrics."""
    torch.manual_seed(0)
    model = create_model("epic", **TINY_EPIC)
    run = tmp_path / "runs" / "quickstart" / "flatvel-a"
    (run / "checkpoints").mkdir(parents=True)
    checkpoint = run / "checkpoints" / "best-epoch001.ckpt"
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "hyper_parameters": {"model_name": "epic", "model_kwargs": dict(TINY_EPIC)},
            "datamodule_hyper_parameters": {
                "dataset": "flatvel-a",
                "profile": "quickstart",  # the datamodule records the profile's name only
                "root": None,
                "openfwi_root": None,
                "time_stride": 4,
                "seed": 0,
                "limit": None,
            },
            "epoch": 1,
            "global_step": 38,
            "pytorch-lightning_version": "2.6.6",
        },
        checkpoint,
    )
    results = {  # the keys epic_zoo.run.train writes that export reads
        "recipe": "quickstart",
        "dataset": "flatvel-a",
        "seed": 0,
        "epochs": 2,
        "best_checkpoint": str(checkpoint),
        "data": {"profile": QUICKSTART, "time_stride": 4, "batch_size": 16},
        "metrics": {"test/mae_ms": 196.5, "test/ssim_openfwi": 0.758, "test/mae": 0.131},
        "baseline": {"mean_map_mae_ms": 409.0, "mae_ratio_to_mean_map": 0.48, "learns": True},
        "config": {"data": {"dataset": "flatvel-a", "limit": None, "openfwi_root": None}},
        "commit": "0" * 40,
    }
    (run / "results.json").write_text(json.dumps(results))
    return run


def _records(n: int = 2) -> torch.Tensor:
    """Raw records in physical units (OpenFWI sampling, 1 ms)."""
    g = torch.Generator().manual_seed(3)
    return (torch.randn(n, 5, 1000, 70, generator=g) * 6).clamp(-26.0, 52.0)


def test_export_of_a_custom_profile_run(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    assert hub_cli.main(["export", str(run_dir), "--out", str(out)]) == 0
    config = hub.read_config(out)
    record = config["record"]
    assert config["dataset"] == "flatvel-a" and config["contract"]["time_stride"] == 4
    assert record["profile"] == "quickstart"
    assert (record["train"], record["val"], record["test"], record["dtype"]) == (
        300,
        50,
        100,
        "float16",
    )
    assert config["metrics"]["mae_ms"] == 196.5
    card = (out / hub.CARD_NAME).read_text()  # not the zoo's epic.flatvel-a: no name to load by
    assert 'create_model("path/to/epic.flatvel-a")  # this folder' in card
    assert "pretrained=True" not in card and "hf-hub:" not in card


def test_a_run_folder_knows_its_dataset(run_dir: Path, tmp_path: Path) -> None:
    model = create_model(str(run_dir))
    assert model.contract.dataset == "flatvel-a" and model.contract.time_stride == 4
    model.save_pretrained(tmp_path / "saved")  # no dataset= needed
    again = create_model(str(tmp_path / "saved"))
    assert again.pretrained_cfg["dataset"] == "flatvel-a"
    assert again.pretrained_cfg["record"]["recipe"] == "quickstart"
    records = _records()
    assert torch.equal(again.invert(records), model.invert(records))


def _fake_upload(monkeypatch: pytest.MonkeyPatch) -> list[types.SimpleNamespace]:
    """Replace the Hub calls; each upload keeps the card text it would have sent."""
    uploads: list[types.SimpleNamespace] = []

    def create_repo(self: HfApi, repo_id: str, **kw: object) -> types.SimpleNamespace:
        return types.SimpleNamespace(repo_id=repo_id)

    def upload_folder(self: HfApi, *, repo_id: str, folder_path, **kw: object):
        folder = Path(folder_path)
        uploads.append(
            types.SimpleNamespace(
                repo_id=repo_id,
                files=sorted(p.name for p in folder.iterdir()),
                card=(folder / hub.CARD_NAME).read_text(),
            )
        )
        return types.SimpleNamespace(oid="c" * 40, commit_url=f"https://example/{repo_id}")

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_branch", lambda self, *a, **kw: None)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return uploads


def _parsed_card(text: str, tmp_path: Path) -> tuple[ModelCard, dict]:
    path = tmp_path / "card" / hub.CARD_NAME
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return ModelCard.load(path), metadata_load(path)


def test_push_to_hub_names_its_own_repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    uploads = _fake_upload(monkeypatch)
    model = create_model("epic.flatvel-a", pretrained=True)
    model.push_to_hub("myorg/x")
    (upload,) = uploads
    assert upload.repo_id == "myorg/x" and upload.files == sorted(hub.HUB_FILES)
    assert 'create_model("hf-hub:myorg/x")' in upload.card
    assert "epic-zoo/epic-flatvel-a" not in upload.card
    assert 'create_model("epic.flatvel-a", pretrained=True)' not in upload.card
    card, meta = _parsed_card(upload.card, tmp_path)
    assert meta["library_name"] == "epic_zoo" and "arxiv:2603.09032" in meta["tags"]
    results = {metric_key(r.metric_type, r.metric_config): r for r in card.data.eval_results}
    assert {r.metric_type for r in results.values()} == {"mae", "rmse", "ssim"}
    assert results["mae_ms"].metric_config == "m/s" and "m/s" in results["mae_ms"].metric_name
    assert results["mae_ms"].metric_value == pytest.approx(
        model.pretrained_cfg["metrics"]["mae_ms"]
    )


def test_push_of_a_run_folder_names_its_own_repo(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uploads = _fake_upload(monkeypatch)
    result = hub.push(run_dir, "myorg/quick", out=tmp_path / "up")
    (upload,) = uploads
    assert result.repo_id == upload.repo_id == "myorg/quick"
    assert 'create_model("hf-hub:myorg/quick")' in upload.card
    card, meta = _parsed_card(upload.card, tmp_path)
    assert card.data.model_name == "epic.flatvel-a"
    assert {r.metric_type for r in card.data.eval_results} == {"mae", "ssim"}
    assert meta["model-index"][0]["results"][0]["dataset"]["config"] == "flatvel-a"


def test_card_links_the_paper_and_openfwi_and_states_its_limits(tmp_path: Path) -> None:
    text = (Path(hub.default_registry_path()).parent / "epic.flatvel-a" / hub.CARD_NAME).read_text()
    card, _ = _parsed_card(text, tmp_path)
    for needle in (
        "https://arxiv.org/abs/2603.09032",
        "https://openfwi-lanl.github.io",
        "NeurIPS 2022 Datasets and Benchmarks",
        "## Intended use",
        "## Limitations",
        "synthetic re-creations",
        "recipe-port check",
        "## Citation",
        "@inproceedings{deng2022openfwi",
        "model.invert(records)",
    ):
        assert needle in card.text, needle

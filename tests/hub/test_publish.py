"""Export, publish and the hub CLI (epic_zoo.hub), above the models.

``HfApi.create_repo`` / ``create_branch`` / ``upload_folder`` are replaced by
a copy into the loopback Hub of tests/hubfake.py; export, card, registry and
the command line run for real.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import types
from pathlib import Path

import pytest
import torch
from conftest import TINY_EPIC
from huggingface_hub import HfApi

from epic_zoo import hub
from epic_zoo.hub import cli as hub_cli
from epic_zoo.models import create_model
from tests.hubfake import (
    NAME,
    REPO,
    FakeHub,
    publish_and_register,
    tiny_model,
)

REPO_REGISTRY = Path(__file__).resolve().parents[2] / "checkpoints" / hub.REGISTRY_NAME


# --------------------------------------------------------------------------- publish


@pytest.fixture(scope="module")
def tiny_run(
    tiny_data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> types.SimpleNamespace:
    """Two optimiser steps of InversionTask on the tiny data, saved like an epic_zoo.run folder.

    Gives the run folder, a test batch ``x`` and the trained network's output on it.
    """
    import lightning.pytorch as pl

    from epic_zoo.data.datamodule import FWIDataModule, FWIDataset
    from epic_zoo.data.store import H5Split, profile_root
    from epic_zoo.tasks.inversion import InversionTask

    run_dir = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    data = FWIDataModule(
        "flatvel-a", profile="tiny", root=tiny_data_root, batch_size=4, generate=False
    )
    task = InversionTask(model_name="epic", model_kwargs=TINY_EPIC, num_panels=0)
    trainer = pl.Trainer(
        max_steps=2,
        limit_val_batches=0,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=run_dir,
    )
    trainer.fit(task, datamodule=data)
    best = run_dir / "checkpoints" / "best-epoch000.ckpt"
    trainer.save_checkpoint(best)
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    results = {  # what epic_zoo.run.train writes
        "recipe": "quickstart",
        "epochs": 1,
        "best_checkpoint": str(best),
        "metrics": {"test/ssim": 0.25, "test/mae": 0.3, "val/ssim": 0.9},
    }
    (run_dir / "results.json").write_text(json.dumps(results))
    test = FWIDataset(H5Split(profile_root(tiny_data_root, "tiny", 0) / "flatvel-a" / "test"))
    x = torch.stack([test[i]["seismic"] for i in range(4)])
    with torch.no_grad():
        expected = task.model.eval()(x)
    return types.SimpleNamespace(dir=run_dir, x=x, expected=expected)


def test_train_push_dry_run_then_upload_round_trip(
    env: types.SimpleNamespace,
    fake_hub: FakeHub,
    tiny_run: types.SimpleNamespace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    x, expected = tiny_run.x, tiny_run.expected
    out = tmp_path / "export"
    args = ["push", str(tiny_run.dir), "--repo-id", REPO, "--dry-run", "--out", str(out)]
    assert hub_cli.main(args) == 0
    printed = capsys.readouterr().out
    assert f"would upload {out} -> {REPO}@main" in printed and hub.WEIGHTS_NAME in printed
    assert fake_hub.requests == []
    config = json.loads((out / hub.CONFIG_NAME).read_text())
    assert config["dataset"] == "flatvel-a"  # read from the checkpoint's datamodule
    assert config["record"]["profile"] == "tiny" and config["record"]["train"] == 16
    assert config["metrics"] == {"ssim": 0.25, "mae": 0.3}
    assert config["record"]["recipe"] == "quickstart"
    assert config["record"]["source_checkpoint"] == "best-epoch000.ckpt"
    with torch.no_grad():
        assert torch.equal(hub.PretrainedFWI.from_pretrained(str(out))(x), expected)

    uploads = []

    def upload_folder(self: HfApi, *, repo_id: str, folder_path: str, revision=None, **kw):
        uploads.append((repo_id, sorted(p.name for p in Path(folder_path).iterdir())))
        commit = fake_hub.publish(repo_id, Path(folder_path), branch=revision or "main")
        return types.SimpleNamespace(
            oid=commit, commit_url=f"{fake_hub.url}/{repo_id}/commit/{commit}"
        )

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: uploads.append(repo_id))
    monkeypatch.setattr(HfApi, "create_branch", lambda self, *a, **kw: None)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    ckpt = tiny_run.dir / "checkpoints" / "last.ckpt"
    result = hub.push(ckpt, REPO, dry_run=False, out=tmp_path / "up")
    assert uploads == [REPO, (REPO, sorted(hub.HUB_FILES))]
    hub.register(
        result.folder, registry=env.registry, repo_id=REPO, revision=result.commit, local=False
    )
    model = create_model(NAME, pretrained=True)
    assert model.pretrained_cfg["source"] == "hub"
    with torch.no_grad():
        assert torch.equal(model(x), expected)


def test_export_zoo_commits_weights_with_a_reproducible_check(
    env: types.SimpleNamespace, tiny_run: types.SimpleNamespace, tmp_path: Path
) -> None:
    from epic_zoo.evaluation import reproduce_pretrained

    spec = importlib.util.spec_from_file_location(
        "export_zoo", REPO_REGISTRY.parent / "export_zoo.py"
    )
    export_zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export_zoo)
    argv = [str(tiny_run.dir), "--org", "org", "--out", str(env.checkpoints), "--check-num", "2"]
    assert export_zoo.main(argv) == 0
    info = hub.get_pretrained_info(NAME)
    assert info.local == NAME and info.repo_id == "org/epic-flatvel-a" and info.revision is None
    assert info.data["profile"] == "tiny" and info.data["generator_version"] == "1"
    assert info.check["num"] == 2 and set(info.check["metrics"]) >= {"ssim", "mae"}
    model = create_model(NAME, pretrained=True)
    with torch.no_grad():
        assert torch.equal(model(tiny_run.x), tiny_run.expected)
    assert reproduce_pretrained(NAME, tmp_path / "regen")["failures"] == []
    # the card names the freshly registered weights, as save_pretrained writes it
    card = (env.checkpoints / NAME / hub.CARD_NAME).read_text()
    assert f'create_model("{NAME}", pretrained=True)' in card
    model.save_pretrained(tmp_path / "copy")
    assert (tmp_path / "copy" / hub.CARD_NAME).read_text() == card


def test_export_zoo_tag_keeps_a_version_beside_the_default_name(
    env: types.SimpleNamespace, tiny_run: types.SimpleNamespace
) -> None:
    spec = importlib.util.spec_from_file_location(
        "export_zoo", REPO_REGISTRY.parent / "export_zoo.py"
    )
    export_zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export_zoo)
    out = ["--org", "org", "--out", str(env.checkpoints), "--check-num", "1"]
    assert export_zoo.main([str(tiny_run.dir), *out]) == 0
    default = hub.get_pretrained_info(NAME)
    assert export_zoo.main([str(tiny_run.dir), *out, "--tag", "tiny_1k"]) == 0
    tagged = hub.get_pretrained_info(f"{NAME}.tiny_1k")
    assert hub.get_pretrained_info(NAME) == default  # the default name is untouched
    assert tagged.local == f"{NAME}.tiny_1k" and tagged.dataset == "flatvel-a"
    assert tagged.repo_id == "org/epic-flatvel-a-tiny_1k"
    model = create_model(f"{NAME}.tiny_1k", pretrained=True)
    assert hub.read_config(env.checkpoints / tagged.local)["name"] == f"{NAME}.tiny_1k"
    with torch.no_grad():
        assert torch.equal(model(tiny_run.x), tiny_run.expected)
    for name, tag in ((f"{NAME}.tiny_1k", "again"), (NAME, "Lite.10k"), (NAME, "")):
        with pytest.raises(ValueError, match="tag"):
            hub.tagged_name(name, tag)


def test_register_refuses_a_name_that_does_not_fit_the_weights(
    env: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("epic.flatvel-b", "epic.flatvel-a.Not-A-Tag", "flatvel-a"):
        folder = hub.save_hub_folder(
            tiny_model(), env.checkpoints / name, dataset="flatvel-a", name=name, repo_id=REPO
        )
        assert hub_cli.main(["register", str(folder), "--repo-id", REPO]) == 2
        err = capsys.readouterr().err
        assert f"pretrained name {name!r} does not fit its weights" in err
        assert len(err.strip().splitlines()) == 1
    assert not env.registry.exists()  # nothing registered


def test_retag_keeps_the_weights_under_a_tag_and_frees_the_name(
    env: types.SimpleNamespace,
    fake_hub: FakeHub,
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = publish_and_register(fake_hub, folder, env.registry, local=True)
    x = torch.randn(1, 5, TINY_EPIC["time_samples"], 70)
    with torch.no_grad():
        expected = create_model(NAME, pretrained=True)(x)
    assert hub_cli.main(["retag", NAME, "lite2k_30k"]) == 0
    assert f"{NAME} is now {NAME}.lite2k_30k" in capsys.readouterr().out
    kept = hub.get_pretrained_info(f"{NAME}.lite2k_30k")
    assert hub.list_pretrained() == [f"{NAME}.lite2k_30k"]  # the default name is free
    assert (kept.sha256, kept.repo_id, kept.revision) == (old.sha256, old.repo_id, old.revision)
    assert kept.local == f"{NAME}.lite2k_30k" and not folder.exists()
    moved = env.checkpoints / kept.local
    assert hub.read_config(moved)["name"] == kept.name and kept.mismatched_files(moved) == []
    assert f'create_model("{kept.name}", pretrained=True)' in (moved / "README.md").read_text()
    with torch.no_grad():  # the same weights, loaded by the new name, offline from the copy
        assert torch.equal(create_model(kept.name, pretrained=True)(x), expected)
    assert hub_cli.main(["retag", NAME, "again"]) == 2
    assert f"unknown pretrained weights {NAME!r}" in capsys.readouterr().err
    assert hub_cli.main(["retag", kept.name, "v2"]) == 2
    assert "a tag goes on an 'architecture.dataset' name" in capsys.readouterr().err


def test_cli_list_and_pull(
    env: types.SimpleNamespace,
    fake_hub: FakeHub,
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish_and_register(fake_hub, folder, env.registry)
    assert hub_cli.main(["list"]) == 0
    assert re.search(
        r"epic.flatvel-a\s+flatvel-a\s+300.0\s+-\s+-\s+-\s+0.480\s+-\s+\d+.*hub",
        capsys.readouterr().out,
    )
    assert hub_cli.main(["pull", NAME]) == 0
    assert "downloaded, sha256 verified" in capsys.readouterr().out
    assert hub_cli.main(["pull", NAME]) == 0
    assert "already cached" in capsys.readouterr().out
    assert hub_cli.main(["pull", "epic.nope"]) == 2
    assert "unknown pretrained weights 'epic.nope'" in capsys.readouterr().err


def test_cli_exports_a_run_folder_and_registers_it(
    env: types.SimpleNamespace, tiny_run: types.SimpleNamespace, tmp_path: Path
) -> None:
    """The lead's path for re-trained weights: run folder -> Hub folder -> registry entry."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run.dir, run)
    results = json.loads((run / "results.json").read_text())
    results["baseline"] = {"mean_map_mae": 0.25, "mae_ratio_to_mean_map": 1.2, "learns": False}
    results["seed"] = 3
    results["commit"] = "6d40103"  # the checkout that trained it, not the exporter's
    (run / "results.json").write_text(json.dumps(results))
    out = env.checkpoints / "epic.flatvel-a"
    argv = ["export", str(run), "--out", str(out), "--register", "--repo-id", REPO]
    assert hub_cli.main(argv) == 0
    entry = hub.get_pretrained_info(NAME)
    assert entry.local == "epic.flatvel-a" and entry.repo_id == REPO
    assert entry.metrics == pytest.approx({"ssim": 0.25, "mae": 0.3})
    assert entry.baseline["mean_map_mae"] == 0.25 and entry.baseline["learns"] is False
    assert entry.files == hub.folder_hashes(out)
    config = hub.read_config(out)
    assert config["record"]["seed"] == 3 and config["record"]["source_checkpoint"].startswith(
        "best"
    )
    assert config["record"]["commit"] == "6d40103"
    assert entry.training["commit"] == "6d40103" and entry.training["epochs"] == 1
    model, meta = hub.load_model(NAME)
    assert meta["source"] == "local"
    with torch.no_grad():
        torch.testing.assert_close(model(tiny_run.x), tiny_run.expected)


def test_data_record_keeps_the_recipe_residual_setting() -> None:
    from epic_zoo.hub.export import data_record

    dm = {"dataset": "style-a", "profile": "tiny", "seed": 0, "time_stride": 4, "limit": None}
    residuals = {"p": 0.5, "num": 48, "scale": [0.5, 1.5]}
    assert data_record({**dm, "recipe_residuals": residuals})["recipe_residuals"] == residuals
    assert "recipe_residuals" not in data_record({**dm, "recipe_residuals": {"p": 0.0}})
    assert "recipe_residuals" not in data_record(dm)


def test_a_weight_trained_on_wide_laws_is_checked_on_wide_maps(tmp_path: Path) -> None:
    """The registry keeps the laws of the maps (data.generator), so the check regenerates those maps."""
    import numpy as np

    from epic_zoo.data.families import generate_velocity
    from epic_zoo.data.generate import regenerate_test_split
    from epic_zoo.data.store import H5Split

    info = hub.get_pretrained_info("epic.flatvel-a.lite2k_30k_wide")
    assert info.data["generator"] == "wide" and info.data["profile"] == "lite2k-wide"
    split = H5Split(regenerate_test_split("flatvel-a", info.data, 2, tmp_path))
    wide = generate_velocity("flatvel-a", range(2), split="test", generator="wide")
    np.testing.assert_array_equal(np.stack([split[i][1] for i in range(2)]), wide)
    assert "generator" not in hub.get_pretrained_info("epic.flatvel-a").data  # the default laws
    # the card says which laws, from the weights' own record (the default card does not)
    from epic_zoo.weights.card import card_text

    for name, says in (("epic.flatvel-a.lite2k_30k_wide", True), ("epic.flatvel-a", False)):
        config = json.loads((REPO_REGISTRY.parent / name / "config.json").read_text())
        assert ("with the family's `wide` laws" in card_text(config, None)) is says, name

"""A union of datasets (data.dataset=all or a list): own normalisation per sample, per-dataset tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from epic_zoo.data.catalog import DATASET_NAMES
from epic_zoo.data.datamodule import FWIDataModule
from epic_zoo.data.generate import ensure_data
from epic_zoo.data.residuals import residual_cache_name
from epic_zoo.data.store import H5Split, profile_root
from epic_zoo.data.transforms import normalize_seismic
from epic_zoo.data.union import UnionDataModule, union_names
from epic_zoo.evaluation import evaluate_model
from epic_zoo.models import load_model
from epic_zoo.run import build_datamodule, compose_config, train
from tests.helpers import benchmark_script

PAIR = ["flatvel-a", "style-b"]


@pytest.fixture(scope="module")
def pair_root(tiny_data_root):
    ensure_data("style-b", "tiny", tiny_data_root, progress=False)
    return tiny_data_root


def test_union_names():
    assert union_names("all") == union_names("ALL") == list(DATASET_NAMES)
    assert union_names(["FlatVel_A", "style-b"]) == PAIR
    assert union_names("flatvel-a") is None
    with pytest.raises(ValueError, match="distinct dataset names"):
        union_names(["flatvel-a", "flatvel-a"])
    with pytest.raises(KeyError, match="unknown dataset 'flatvel-z'"):
        union_names(["flatvel-z"])


def test_each_sample_keeps_its_own_datasets_normalisation(pair_root):
    union = UnionDataModule(PAIR, profile="tiny", root=pair_root, batch_size=4)
    union.setup()
    assert union.dataset_name == "flatvel-a+style-b"
    assert len(union.train_dataset) == 32 and len(union.test_dataset) == 16
    style = FWIDataModule("style-b", profile="tiny", root=pair_root)
    style.setup()
    mine, theirs = union.test_dataset[8 + 3], style.test_dataset[3]  # style-b's 4th test map
    torch.testing.assert_close(mine["seismic"], theirs["seismic"])
    torch.testing.assert_close(mine["velocity"], theirs["velocity"])
    raw = style.test_dataset.source[3][0]
    wrong = normalize_seismic(raw, "flatvel-a").astype(np.float32)
    assert not np.allclose(mine["seismic"].numpy(), wrong, atol=1e-3)  # not flatvel-a's range
    seen = {int(b["velocity"].shape[0]) for b in union.train_dataloader()}
    assert seen == {4}


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"openfwi_root": "x"}, "drop data.openfwi_root"),
        ({"field_noise": {"p": 0.5}}, "set data.field_noise.p=0"),
    ],
)
def test_union_refuses_per_dataset_options(extra, message):
    with pytest.raises(ValueError, match=message):
        UnionDataModule(PAIR, profile="tiny", **extra)


def test_recipe_residuals_come_from_each_samples_own_dataset(pair_root, tmp_path):
    """p=1: every training sample gets one of ITS dataset's templates (constants 1, 1.1 / 100, 110)."""
    root = tmp_path / "data"
    shutil.copytree(pair_root, root)
    level = {"flatvel-a": 1.0, "style-b": 100.0}
    for name in PAIR:  # cached templates [2, 5, 250, 70] are reused as they are (no recipe port)
        templates = np.stack(
            [np.full((5, 250, 70), level[name] * (1 + 0.1 * k), np.float32) for k in (0, 1)]
        )
        np.save(profile_root(root, "tiny", 0) / name / residual_cache_name(2, 4), templates)
    union = UnionDataModule(
        PAIR, profile="tiny", root=root, batch_size=4, recipe_residuals={"p": 1.0, "num": 2}
    )
    union.prepare_data()
    union.setup()
    assert union.residual_templates is not None
    assert union.residual_templates.shape == (2, 2, 5, 250, 70)
    assert union.run_record()["recipe_residuals"]["p"] == 1.0
    own = {  # each member's unaugmented training records, to tell which dataset a sample is from
        name: torch.stack([m.train_dataset[i]["seismic"] for i in range(len(m.train_dataset))])
        for name, m in union.members.items()
    }
    union.trainer = SimpleNamespace(training=True)
    torch.manual_seed(0)
    seen = {name: 0 for name in PAIR}
    for batch in union.train_dataloader():
        before = batch["seismic"].clone()
        after = union.on_after_batch_transfer(batch, 0)["seismic"]
        for x, added, member in zip(before, after - before, batch["member"], strict=True):
            name = next(n for n in PAIR if any(torch.equal(x, r) for r in own[n]))
            assert PAIR[int(member)] == name
            value = float(added.mean())
            # one template (a constant) times a scale in [0.5, 1.5]: 0.5..1.65 or 50..165
            assert torch.allclose(added, torch.full_like(added, value), rtol=1e-5, atol=1e-3)
            assert 0.5 * level[name] - 1e-3 <= value <= 1.65 * level[name] + 1e-3
            seen[name] += 1
    assert seen == {"flatvel-a": 16, "style-b": 16}
    union.trainer = SimpleNamespace(training=False)  # validation and test are left alone
    batch = next(iter(union.val_dataloader()))
    assert torch.equal(union.on_after_batch_transfer(batch, 0)["seismic"], batch["seismic"])


def test_config_builds_a_union_for_all_or_a_list(tmp_path):
    cfg = compose_config(["recipe=epic_lite", "data.dataset=all", f"run_dir={tmp_path}"])
    module = build_datamodule(cfg.data)
    assert isinstance(module, UnionDataModule) and module.dataset_name == "all"
    cfg = compose_config(["recipe=epic_lite", "data.dataset=[flatvel-a,style-b]"])
    assert build_datamodule(cfg.data).names == PAIR


def test_union_run_is_tested_per_dataset(pair_root, tmp_path):
    cfg = compose_config(
        [
            "recipe=epic_lite",
            "data.dataset=[flatvel-a,style-b]",
            "data.profile=tiny",
            f"data.root={pair_root}",
            "data.batch_size=8",
            f"run_dir={tmp_path / 'union'}",
            "threads=1",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "task.num_panels=0",
        ]
    )
    with open_dict(cfg):
        small = {"d_model": 32, "heads": 2, "latent_dim": 16, "encoder_width": 16}
        cfg.model.kwargs = OmegaConf.merge(
            {**small, "head_channels": [16, 8, 8], "fusion_layers": 1}, cfg.model.kwargs
        )
    summary = train(cfg)
    record = json.loads((Path(summary["run_dir"]) / "results.json").read_text())
    assert record["dataset"] == "flatvel-a+style-b" and record["train_samples"] == 32
    per = record["per_dataset"]
    assert list(per) == PAIR
    for name in PAIR:
        assert per[name]["test_samples"] == 8
        assert per[name]["metrics"]["test/mae_ms"] > 0
        assert per[name]["baseline"]["mean_map_mae_ms"] > 0
    # the union's test MAE is the mean of the two equal-sized parts
    both = np.mean([per[n]["metrics"]["test/mae_ms"] for n in PAIR])
    assert record["metrics"]["test/mae_ms"] == pytest.approx(both, rel=1e-4)
    # the run folder loads (no one input contract: each dataset's records keep their own
    # normalisation) and scores each member's raw test split as the run's record did
    model = load_model(summary["run_dir"])
    assert model.contract is None
    for name in PAIR:
        split = H5Split(profile_root(pair_root, "tiny", 0) / name / "test")
        mine = evaluate_model(model, split)["mae_ms"]
        assert mine == pytest.approx(per[name]["metrics"]["test/mae_ms"], rel=1e-4)
    # the recipe-port check compares a union with each dataset's own test split and mean map
    _, recorded = benchmark_script("openfwi_backend_check").load(summary["run_dir"], "style-b")
    assert recorded["mae_ms"] == per["style-b"]["metrics"]["test/mae_ms"]
    assert recorded["train_samples"] == 16  # style-b's own training maps (tiny), not the union's 32

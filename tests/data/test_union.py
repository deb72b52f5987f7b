"""A union of datasets (data.dataset=all or a list): own normalisation per sample, per-dataset tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from epic_zoo.data.catalog import DATASET_NAMES
from epic_zoo.data.datamodule import FWIDataModule
from epic_zoo.data.generate import ensure_data
from epic_zoo.data.transforms import normalize_seismic
from epic_zoo.data.union import UnionDataModule, union_names
from epic_zoo.run import build_datamodule, compose_config, train

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
        ({"recipe_residuals": {"p": 0.5}}, "set data.recipe_residuals.p=0"),
    ],
)
def test_union_refuses_per_dataset_options(extra, message):
    with pytest.raises(ValueError, match=message):
        UnionDataModule(PAIR, profile="tiny", **extra)


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

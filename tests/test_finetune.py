"""Fine-tuning: ``recipe=finetune init_from=SPEC`` starts from the weights, on a user's OpenFWI folder.

The documented command, on a tiny folder in OpenFWI's layout: the network,
dataset normalisation and time stride come from the weights; the first
training step starts from exactly the pretrained parameters; settings that
contradict the weights are refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from epic_zoo.finetune import weights_contract
from epic_zoo.models import create_model
from epic_zoo.run import compose_config, train
from epic_zoo.tasks.inversion import InversionTask

SPEC = "epic.flatvel-a"


pytestmark = pytest.mark.usefixtures("one_thread")  # the shared fixture (conftest.py)


def _overrides(openfwi_root: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "recipe=finetune",
        f"init_from={SPEC}",
        "data=openfwi",
        f"data.openfwi_root={openfwi_root}",
        "data.batch_size=2",
        f"run_dir={run_dir}",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "task.num_panels=0",
        *extra,
    ]


def test_contract_comes_from_the_weights(tiny_openfwi_root: Path, tmp_path: Path) -> None:
    cfg = compose_config(_overrides(tiny_openfwi_root, tmp_path))
    weights = create_model(SPEC, pretrained=True)
    assert cfg.model.name == weights.config["name"]
    assert dict(cfg.model.kwargs) == weights.pretrained_cfg["model_kwargs"]
    assert cfg.data.dataset == weights.pretrained_cfg["dataset"]
    stored = weights.pretrained_cfg.get("contract") or weights.pretrained_cfg  # either format
    assert cfg.data.time_stride == stored["time_stride"]


def test_finetune_starts_from_the_pretrained_weights(
    tiny_openfwi_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pretrained = create_model(SPEC, pretrained=True).state_dict()
    at_start: dict[str, torch.Tensor] = {}

    def on_train_start(self: InversionTask) -> None:
        at_start.update({k: v.detach().clone() for k, v in self.model.state_dict().items()})

    monkeypatch.setattr(InversionTask, "on_train_start", on_train_start)
    summary = train(compose_config(_overrides(tiny_openfwi_root, tmp_path / "run")))
    assert set(at_start) == set(pretrained)
    assert all(torch.equal(at_start[k], pretrained[k]) for k in pretrained)
    assert summary["global_step"] > 0 and summary["metrics"]["test/mae_ms"] > 0
    trained = create_model(str(tmp_path / "run")).state_dict()
    assert any(not torch.equal(trained[k], pretrained[k]) for k in pretrained), "it trained"
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["init_from"] == SPEC and results["recipe"] == "finetune"
    # the fine-tuned run is a spec in turn, with the same contract
    assert weights_contract(str(tmp_path / "run")) == weights_contract(SPEC)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        (
            "data.dataset=curvevel-a",
            r"normalised with flatvel-a's seismic range.*drop data\.dataset",
        ),
        ("data.time_stride=2", r"one sample every 4 ms, but data\.time_stride=2"),
        ("model.name=inversionnet", r"holds a 'epic' network, but model\.name=inversionnet"),
    ],
)
def test_contradicting_the_weights_is_refused(
    tiny_openfwi_root: Path, tmp_path: Path, override: str, match: str
) -> None:
    cfg = compose_config(_overrides(tiny_openfwi_root, tmp_path, override))
    with pytest.raises(ValueError, match=match) as err:
        train(cfg)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "results.json").exists()

"""The input contract: one frozen object, made by the data, stored with the weights, read back.

Also the rule that keeps it one: no module outside the allowed ones mentions
``time_stride``, and nothing but the contract's reader works a stride out of a
sample count.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import epic_zoo
from epic_zoo.data.contract import InputContract, read_contract
from epic_zoo.data.datamodule import FWIDataModule
from epic_zoo.weights.registry import default_registry_path

PACKAGE = Path(epic_zoo.__file__).resolve().parent


def test_the_contract_is_frozen_and_consistent() -> None:
    contract = InputContract.make("FlatVel-A", 3, 7)
    assert (contract.dataset, contract.time_stride, contract.time_samples) == ("flatvel-a", 3, 334)
    assert contract.num_devices == 7 and (contract.v_min, contract.v_max) == (1500.0, 4500.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        contract.time_stride = 4  # type: ignore[misc]
    with pytest.raises(ValueError, match="does not match time_stride"):
        dataclasses.replace(contract, time_samples=250)
    assert read_contract({"contract": contract.as_dict()}) == contract
    assert read_contract(json.loads(json.dumps({"contract": contract.as_dict()}))) == contract


def test_the_data_module_makes_it(tiny_data_root: Path) -> None:
    dm = FWIDataModule(dataset="flatvel-a", profile="tiny", root=tiny_data_root, num_devices=3)
    assert dm.contract == InputContract.make("flatvel-a", dm.time_stride, 3)
    assert dm.time_samples == dm.contract.time_samples
    # the checkpoint's datamodule record reads back to the same contract
    assert read_contract(dict(dm.hparams)) == dm.contract


def test_a_stored_contract_that_disagrees_with_the_catalog_is_refused() -> None:
    stored = {**InputContract.make("flatvel-a", 4).as_dict(), "seismic_max": 1.0}
    with pytest.raises(ValueError, match="differs from this epic_zoo's"):
        read_contract({"contract": stored}, what="x/config.json")
    with pytest.raises(ValueError, match="lacks"):
        read_contract({"contract": {"dataset": "flatvel-a"}})


def test_legacy_config_json_without_a_contract_still_reads() -> None:
    """Weights exported before the contract existed: the one reader derives it, once."""
    folder = default_registry_path().parent / "epic.flatvel-a.lite2k_30k"
    config = json.loads((folder / "config.json").read_text())
    assert "contract" not in config  # committed files are never rewritten
    contract = read_contract(config)
    assert contract == InputContract.make(config["dataset"], config["time_stride"], 5)
    legacy = {"dataset": "flatvel-a", "model_kwargs": {"time_samples": 334}}
    assert read_contract(legacy).time_stride == 3
    with pytest.raises(ValueError, match="every stride from 200 to 249"):
        read_contract({"dataset": "flatvel-a", "model_kwargs": {"time_samples": 5}})


def test_new_config_json_stores_the_contract(tmp_path: Path) -> None:
    from conftest import TINY_EPIC

    from epic_zoo.models import create_model, load_model
    from epic_zoo.weights.folder import save_hub_folder

    contract = InputContract.make("curvevel-a", 4)
    model = create_model("epic", **TINY_EPIC)
    folder = save_hub_folder(model, tmp_path / "m", dataset="curvevel-a", contract=contract)
    config = json.loads((folder / "config.json").read_text())
    assert config["contract"] == contract.as_dict()
    assert "time_stride" not in config and "time_samples" not in config
    assert load_model(str(folder)).contract == contract
    with pytest.raises(ValueError, match="takes time_samples=250, its input contract says 334"):
        save_hub_folder(
            model,
            tmp_path / "n",
            dataset="curvevel-a",
            contract=InputContract.make("curvevel-a", 3),
        )


ALLOWED_TIME_STRIDE: dict[str, str] = {
    # where records are made, stored and decimated (the data layer makes the contract)
    "data/contract.py": "the contract: made and read",
    "data/datamodule.py": "makes the contract (FWIDataModule.contract)",
    "data/timeaxis.py": "the stride <-> samples map",
    "data/store.py": "shard attribute of stored records",
    "data/generate.py": "records are generated (and regenerated from a run's record) at a stride",
    "data/openfwi.py": "OpenFWI files are 1 ms records",
    "data/residuals.py": "residual templates at the records' stride",
    "data/profiles.py": "data profiles name their stride",
    "data/__main__.py": "the data CLI's --time-stride",
    "wave_physics.py": "simulation sampling of observed records",
    "tasks/physics_inversion.py": "its own simulation stride; the data's from the contract",
    # readers of the stored contract / data records
    "evaluation.py": "FWIDataset at the contract's stride; regenerated data records",
    "weights/card.py": "renders the contract",
    "weights/folder.py": "names the legacy config.json keys the reader derives from",
    "hub/loader.py": "the deprecated tuple loader's meta (one release)",
    "tasks/inversion.py": "an error message names the data.time_stride setting",
    "hub/export.py": "the run's data record",
    "hub/publish.py": "the registry's data record",
    "deploy/export.py": "the bundle manifest (contract + legacy keys); untrained models' stride",
    "deploy/__main__.py": "the deploy CLI's --time-stride for untrained models",
    "bench/cell.py": "benchmark data records",
    "bench/ondemand.py": "an upload setting's own sampling (records sent on demand), not the model's input",
    "bench/sweep.py": "benchmark data records",
    "data/union.py": "a data module: each member's contract at the shared data.time_stride",
    "finetune.py": "reads the weights' contract and names the data.time_stride setting it fixes",
    "config_schema.py": "validates the data.time_stride setting when the config is composed",
    "refine.py": "simulation sampling of the observed (uploaded) records, like wave_physics",
}
"""Modules that may mention ``time_stride``, and why; any other module is a new re-derivation."""


def _mentions(pattern: str) -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if re.search(pattern, path.read_text(encoding="utf-8")):
            found.add(path.relative_to(PACKAGE).as_posix())
    return found


def test_time_stride_appears_only_where_the_contract_is_made_and_read() -> None:
    extra = _mentions(r"time_stride") - set(ALLOWED_TIME_STRIDE)
    assert not extra, (
        f"{sorted(extra)} mention time_stride: read it from the input contract "
        "(model.contract, FWIDataModule.contract, epic_zoo.data.contract.read_contract)"
    )


def test_no_stride_is_worked_out_from_a_sample_count_outside_the_reader() -> None:
    """``time_stride_for`` / ``config_time_stride`` reverse the time axis: only the reader may."""
    users = _mentions(r"\b(time_stride_for|time_strides_for|config_time_stride)\b")
    assert users <= {"data/timeaxis.py", "data/contract.py"}, sorted(users)

"""The two routes to a model: ``create_model`` and the one ``load_model``; what the loader refuses.

Uses copies of the committed ``checkpoints/epic.flatvel-a`` folder (offline).
The committed zoo itself is loaded in full: every registered weight must keep
loading through both routes.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from epic_zoo.data.contract import InputContract
from epic_zoo.models import EPIC, builder, create_model, load_model
from epic_zoo.weights.errors import HubFormatError
from epic_zoo.weights.registry import default_registry_path, list_pretrained

pytestmark = pytest.mark.usefixtures("one_thread")

COMMITTED = default_registry_path().parent / "epic.flatvel-a"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "epic.flatvel-a"
    shutil.copytree(COMMITTED, out)
    return out


def _edit_config(folder: Path, **changes: object) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "model_kwargs":
            config["model_kwargs"] = {**config["model_kwargs"], **value}  # type: ignore[dict-item]
        else:
            config[key] = value
    path.write_text(json.dumps(config, indent=2))


@pytest.mark.parametrize("name", list_pretrained())
def test_every_committed_weight_loads_through_both_routes(name: str) -> None:
    model = load_model(name)
    again = create_model(name, pretrained=True)
    assert isinstance(model, torch.nn.Module) and not model.training
    assert model.source["kind"] == "pretrained" and model.source["source"] == "local"
    contract = model.contract
    assert isinstance(contract, InputContract) and contract.dataset == name.split(".")[1]
    assert contract.time_samples == model.config["time_samples"]
    assert contract.num_devices == model.config["num_devices"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    x = torch.zeros(1, 5, contract.time_samples, 70)
    with torch.inference_mode():
        assert model(x).shape == (1, 1, 70, 70)


def test_one_return_type_for_every_spec_kind(folder: Path) -> None:
    for spec in ("epic.flatvel-a", str(folder), str(folder / "model.safetensors")):
        model = load_model(spec)
        assert isinstance(model, EPIC), spec
        assert model.contract == InputContract.make("flatvel-a", 4, 5)
    assert load_model(str(folder)).source["kind"] == "folder"


def test_deprecated_routes_warn_and_delegate(folder: Path) -> None:
    from epic_zoo import evaluate, hub

    reference = load_model(str(folder)).state_dict()
    calls = [
        lambda: hub.load_model(str(folder))[0],
        lambda: hub.load_pretrained("epic.flatvel-a"),
        lambda: hub.load_hub_folder(folder),
        lambda: evaluate.load_model(str(folder)),
        lambda: hub.PretrainedFWI.from_pretrained(str(folder)),
    ]
    for call in calls:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = call()
        assert any(issubclass(w.category, DeprecationWarning) for w in caught), call
        assert all(torch.equal(v, reference[k]) for k, v in model.state_dict().items())
    with pytest.warns(DeprecationWarning):
        _, meta = hub.load_model(str(folder))
    assert meta["time_stride"] == 4 and meta["kind"] == "folder"


def test_a_config_asking_for_a_huge_model_is_refused_before_building(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built on the meta device and compared with the header: no allocation, one line."""
    built: list[str] = []
    real = builder.build_architecture

    def spy(arch: str, **kwargs):
        model = real(arch, **kwargs)
        built.append(str(next(iter(model.state_dict().values())).device))
        return model

    monkeypatch.setattr(builder, "build_architecture", spy)
    _edit_config(folder, model_kwargs={"d_model": 65536, "latent_dim": 4096})
    with pytest.raises(HubFormatError) as err:
        load_model(str(folder))
    message = str(err.value)
    assert "\n" not in message and "restore or export them again" in message
    assert "shape" in message
    assert built == ["meta"]  # only the skeleton was built, never real tensors


def test_non_floating_weights_are_refused_not_cast(folder: Path) -> None:
    weights = folder / "model.safetensors"
    state = load_file(str(weights))
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[key] = state[key].round().to(torch.int8)
    save_file(state, str(weights), metadata={"format": "pt"})
    with pytest.raises(HubFormatError, match=rf"{key} is stored as I8, not a floating dtype"):
        load_model(str(folder))


def test_float16_weights_still_load(folder: Path) -> None:
    """Another floating dtype is a lossless widening, not refused."""
    weights = folder / "model.safetensors"
    state = load_file(str(weights))
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(weights), metadata={"format": "pt"})
    model = load_model(str(folder))
    assert next(model.parameters()).dtype == torch.float32


def test_a_missing_tensor_is_named(folder: Path) -> None:
    weights = folder / "model.safetensors"
    state = load_file(str(weights))
    dropped = sorted(state)[0]
    del state[dropped]
    save_file(state, str(weights), metadata={"format": "pt"})
    with pytest.raises(HubFormatError, match="1 tensors missing"):
        load_model(str(folder))


def test_an_oversized_header_length_is_refused(folder: Path) -> None:
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[:8] = (len(data) * 4).to_bytes(8, "little")
    weights.write_bytes(bytes(data))
    with pytest.raises(HubFormatError, match="not a complete safetensors file"):
        load_model(str(folder))

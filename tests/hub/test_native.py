"""Hub-native model classes, model cards, whole-folder integrity and one-line CLI errors.

Uses copies of the committed ``checkpoints/epic.flatvel-a`` folder; offline,
never touches the network (``HF_HUB_OFFLINE``).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from huggingface_hub import constants as hf_constants

from epic_zoo import evaluate, hub
from epic_zoo.hub import cli as hub_cli
from epic_zoo.hub import loader
from epic_zoo.models import EPIC, InversionNet, builder, create_model
from epic_zoo.weights.card import metric_key
from tests.helpers import one_line_error as _one_line_error

REPO_REGISTRY = Path(__file__).resolve().parents[2] / "checkpoints" / hub.REGISTRY_NAME
NAME = "epic.flatvel-a"
COMMITTED = REPO_REGISTRY.parent / NAME


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv(hub.CHECKPOINTS_ENV, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    warnings.simplefilter("ignore", loader.SupersededWeightsWarning)


@pytest.fixture()
def zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry folder of our own holding a copy of the committed epic.flatvel-a."""
    root = tmp_path / "zoo"
    shutil.copytree(COMMITTED, root / NAME)
    entry = hub.read_registry(REPO_REGISTRY)[NAME]
    hub.write_registry({NAME: entry}, root / hub.REGISTRY_NAME)
    monkeypatch.setenv(hub.CHECKPOINTS_ENV, str(root))
    return root / NAME


def _edit_config(folder: Path, **changes: object) -> None:
    config = json.loads((folder / hub.CONFIG_NAME).read_text())
    for key, value in changes.items():
        target = config
        *parents, last = key.split("__")
        for part in parents:
            target = target[part]
        target[last] = value
    (folder / hub.CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")


# --------------------------------------------------------------------------- Hub-native classes


def test_from_pretrained_save_pretrained_round_trips_bit_for_bit(tmp_path: Path) -> None:
    model = EPIC.from_pretrained(COMMITTED)
    assert isinstance(model, EPIC) and not model.training
    model.save_pretrained(tmp_path / "copy")
    for name in hub.HUB_FILES:
        assert (tmp_path / "copy" / name).read_bytes() == (COMMITTED / name).read_bytes(), name
    again = EPIC.from_pretrained(tmp_path / "copy")
    x = torch.randn(1, 5, 250, 70).clamp(-1, 1)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


def test_fresh_model_save_pretrained_needs_a_dataset_and_loads_back(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("inversionnet", time_samples=250)
    with pytest.raises(ValueError, match="dataset="):
        model.save_pretrained(tmp_path / "a")
    model.save_pretrained(tmp_path / "a", dataset="curvevel-b", metrics={"test/mae": 0.5})
    loaded = InversionNet.from_pretrained(tmp_path / "a")
    assert loaded.pretrained_cfg["dataset"] == "curvevel-b"
    assert loaded.contract.time_stride == 4
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[key]), key


def test_from_pretrained_refuses_another_class() -> None:
    with pytest.raises(hub.ArchitectureMismatchError, match="not a InversionNet"):
        InversionNet.from_pretrained(COMMITTED)


def test_create_model_accepts_folders_and_hf_hub_ids(tmp_path: Path) -> None:
    from_folder = create_model(str(COMMITTED))
    # an hf-hub id served from the Hugging Face cache layout, offline
    repo = tmp_path / "hf" / "hub" / "models--org--epic-flatvel-a"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(COMMITTED, repo / "snapshots" / commit)
    from_hub = create_model("hf-hub:org/epic-flatvel-a")
    assert isinstance(from_hub, EPIC)
    assert from_hub.pretrained_cfg["name"] == NAME
    for key, tensor in from_folder.state_dict().items():
        assert torch.equal(tensor, from_hub.state_dict()[key]), key
    assert isinstance(EPIC.from_pretrained("org/epic-flatvel-a"), EPIC)
    with pytest.raises(hub.PretrainedUnavailableError, match="HF_HUB_OFFLINE"):
        create_model("hf-hub:org/not-cached")


def test_superseded_weights_warn_and_are_marked(
    zoo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    why = "trained before the BatchNorm fix; re-train"
    _edit_config(zoo, record__superseded=why)
    entry = hub.read_registry(zoo.parent / hub.REGISTRY_NAME)[NAME]
    hub.register(zoo, registry=zoo.parent / hub.REGISTRY_NAME, repo_id=entry.repo_id)
    assert hub.read_registry(zoo.parent / hub.REGISTRY_NAME)[NAME].superseded == why
    warnings.simplefilter("always", loader.SupersededWeightsWarning)
    with pytest.warns(loader.SupersededWeightsWarning, match="superseded"):
        model, meta = hub.load_model(NAME)
    assert meta["superseded"] == why and meta["kind"] == "pretrained"
    assert meta["dataset"] == "flatvel-a"
    assert hub_cli.main(["list"]) == 0
    assert "SUPERSEDED" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name", sorted(n for n, i in hub.read_registry(REPO_REGISTRY).items() if i.local)
)
def test_committed_cards_carry_model_index(name: str) -> None:
    info = hub.read_registry(REPO_REGISTRY)[name]
    card = ModelCard.load(REPO_REGISTRY.parent / info.local / hub.CARD_NAME)
    assert card.data.pipeline_tag == "image-to-image"
    assert card.data.datasets is None, "no Hub dataset holds the synthetic data"
    assert {r.metric_type for r in card.data.eval_results} <= {"mae", "rmse", "ssim"}
    results = {
        metric_key(r.metric_type, r.metric_config): r.metric_value for r in card.data.eval_results
    }
    assert results == pytest.approx({k: v for k, v in info.metrics.items() if k != "loss"})
    assert {r.dataset_config for r in card.data.eval_results} == {info.dataset}
    assert all("synthetic re-creation" in r.dataset_name for r in card.data.eval_results)
    assert ("superseded" in card.data.tags) == bool(info.superseded)


# --------------------------------------------------------------------------- integrity, architecture


def test_registry_hashes_config_json_too(zoo: Path) -> None:
    info = hub.get_pretrained_info(NAME)
    assert set(info.files) == {hub.CONFIG_NAME, hub.WEIGHTS_NAME}
    hub.load_model(NAME)  # the untouched copy loads
    _edit_config(zoo, model_kwargs__bits=4)
    with pytest.raises(hub.PretrainedUnavailableError, match="no verified committed copy"):
        hub.load_pretrained(NAME)
    with pytest.raises(hub.ChecksumError, match="config.json"):
        hub.load_hub_folder(zoo, sha256=info.expected_hashes())


def test_architecture_is_checked_before_anything_is_built(
    zoo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = []
    real = builder._build
    monkeypatch.setattr(builder, "_build", lambda *a, **k: built.append(a) or real(*a, **k))
    _edit_config(zoo, architecture="no-such-net")
    with pytest.raises(hub.ArchitectureMismatchError, match="does not register"):
        hub.load_hub_folder(zoo)
    info = hub.get_pretrained_info(NAME)
    _edit_config(zoo, architecture="inversionnet")
    with pytest.raises(hub.ArchitectureMismatchError, match="the registry says 'epic'"):
        loader.load_hub_folder(zoo, expected=info.architecture)
    assert built == []
    with pytest.raises(hub.HubFormatError, match="do not build 'inversionnet'"):
        hub.load_hub_folder(zoo)  # EPIC's kwargs cannot build an InversionNet


def test_a_device_error_is_not_called_a_misfit() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA") as caught:
        hub.load_hub_folder(COMMITTED, map_location="cuda")
    assert "does not fit" not in str(caught.value)


# --------------------------------------------------------------------------- evaluate CLI


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["--dataset", "flatvel-z"], ["--dataset 'flatvel-z'", "flatvel-a"]),
        (["--device", "bogus"], ["--device 'bogus'", "cpu"]),
        (["--limit", "0"], ["--limit 0", "at least 1"]),
    ],
)
def test_evaluate_bad_arguments_are_one_line(
    argv: list[str], needles: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert evaluate.main(["--model", NAME, "--data", str(tmp_path), *argv]) == 2
    _one_line_error(capsys, *needles)


def test_evaluate_checks_json_path_before_computing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    monkeypatch.setattr(evaluate, "load_model", lambda *a, **k: pytest.fail("loaded first"))
    argv = ["--model", NAME, "--data", str(tmp_path), "--json", str(blocker / "out.json")]
    assert evaluate.main(argv) == 2
    _one_line_error(capsys, "--json", "cannot write there")


@pytest.mark.parametrize("damage", ["truncate", "flip-header", "architecture"])
def test_evaluate_damaged_folders_are_one_line(
    damage: str, zoo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = zoo / hub.WEIGHTS_NAME
    data = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(data[: len(data) - 1000])
        needles = ["not a complete safetensors file"]
    elif damage == "flip-header":
        weights.write_bytes(data[:8] + b"{" * 16 + data[24:])
        needles = ["safetensors"]
    else:
        _edit_config(zoo, architecture="inversionnet")
        needles = ["inversionnet"]
    assert evaluate.main(["--model", str(zoo), "--data", str(tmp_path)]) == 2
    _one_line_error(capsys, *needles)


# --------------------------------------------------------------------------- hub CLI


def test_hub_pull_from_hub_offline_names_the_committed_copy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert hub_cli.main(["pull", NAME, "--from-hub"]) == 2
    line = _one_line_error(capsys, "HF_HUB_OFFLINE", "drop --from-hub", "verified and usable")
    assert "no committed copy" not in line


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["pull", "epic.flatvel-z"], ["unknown pretrained weights", "epic.flatvel-a"]),
        (["export", "missing-run", "--out", "x"], ["missing-run"]),
        (["register", "missing-folder", "--repo-id", "o/n"], ["missing-folder"]),
        (["push", "missing.ckpt", "--repo-id", "norepo"], ["ORG/NAME"]),
    ],
)
def test_hub_cli_errors_are_one_line(
    argv: list[str], needles: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a if a != "x" else str(tmp_path / "x") for a in argv]
    assert hub_cli.main(argv) == 2
    _one_line_error(capsys, *needles)

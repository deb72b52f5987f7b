"""The weights format (epic_zoo.weights): Hub-format folders, cards, registry, resolution.

Network stand-ins only (tests/hubfake.py): a loopback server answering the
Hub's file protocol, so ``huggingface_hub.hf_hub_download`` runs for real and
fills a real cache under ``tmp_path``. Everything else (card, cache layout,
checks) is real.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import socket
import types
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard, hf_hub_download
from huggingface_hub.utils import _http as hf_http
from safetensors.torch import load_file

from epic_zoo import hub
from epic_zoo.models import create_model
from tests.hubfake import (
    NAME,
    REPO,
    FakeHub,
    go_offline,
    publish_and_register,
    seismic_batch,
    tiny_model,
)

REPO_REGISTRY = Path(__file__).resolve().parents[2] / "checkpoints" / hub.REGISTRY_NAME


# --------------------------------------------------------------------------- format


def test_folder_round_trip_card_and_config(folder: Path) -> None:
    x = seismic_batch()
    expected = tiny_model()(x)
    loaded = hub.load_hub_folder(folder)
    assert torch.equal(loaded(x), expected)

    config = json.loads((folder / hub.CONFIG_NAME).read_text())
    assert config["architecture"] == "epic" and config["model_kwargs"]["latent_dim"] == 8
    assert config["contract"]["time_stride"] == 4 and config["contract"]["time_samples"] == 250
    assert config["contract"]["seismic_min"] == -26.95
    assert config["metrics"] == {"ssim": 0.5, "ssim_openfwi": 0.48, "mae": 0.2}
    assert config["record"]["recipe"] == "quickstart" and "commit" in config["record"]
    assert config["payload_bytes"] == loaded.payload_bytes()

    card = ModelCard.load(folder / hub.CARD_NAME)
    assert card.data.library_name == "epic_zoo"
    assert card.data.license == "mit"
    assert {"epic", "full-waveform-inversion", "safetensors"} <= set(card.data.tags)
    assert "quickstart" in card.text and "| ssim | 0.5000 |" in card.text


def test_huggingface_hub_resolves_and_reads_the_format(
    env: types.SimpleNamespace, fake_hub: FakeHub, folder: Path
) -> None:
    commit = fake_hub.publish(REPO, folder)
    kw = {"revision": commit, "cache_dir": env.cache, "endpoint": fake_hub.url}
    config_path = hf_hub_download(REPO, hub.CONFIG_NAME, **kw)
    weights_path = hf_hub_download(REPO, hub.WEIGHTS_NAME, **kw)
    # cache laid out by huggingface_hub: snapshot link -> blob named by the sha256
    assert Path(weights_path).parent.name == commit
    assert Path(weights_path).resolve().name == hub.file_sha256(folder / hub.WEIGHTS_NAME)

    config = json.loads(Path(config_path).read_text())
    plain = create_model(config["architecture"], **config["model_kwargs"]).eval()
    plain.load_state_dict(load_file(weights_path), strict=True)
    mixin = hub.PretrainedFWI.from_pretrained(str(Path(weights_path).parent))
    x = seismic_batch()
    expected = tiny_model()(x)
    assert torch.equal(plain(x), expected)
    assert torch.equal(mixin(x), expected)


# --------------------------------------------------------------------------- resolution


def test_local_then_cache_then_hub_then_offline(
    env: types.SimpleNamespace, fake_hub: FakeHub, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = seismic_batch()
    expected = tiny_model()(x)
    publish_and_register(fake_hub, folder, env.registry, local=True)
    model = create_model(NAME, pretrained=True)
    assert model.pretrained_cfg["source"] == "local" and fake_hub.requests == []
    assert torch.equal(model(x), expected)

    publish_and_register(fake_hub, folder, env.registry, local=False)
    shutil.rmtree(folder)  # nothing committed any more: go through the Hub
    model = create_model(NAME, pretrained=True)
    assert model.pretrained_cfg["source"] == "hub" and fake_hub.requests
    assert torch.equal(model(x), expected)

    seen = len(fake_hub.requests)
    assert hub.load_pretrained(NAME).pretrained_cfg["source"] == "cache"
    go_offline(monkeypatch)
    model = create_model(NAME, pretrained=True)
    assert model.pretrained_cfg["source"] == "cache" and len(fake_hub.requests) == seen
    assert torch.equal(model(x), expected)


def test_offline_with_empty_cache_says_how_to_fix(
    env: types.SimpleNamespace, fake_hub: FakeHub, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_and_register(fake_hub, folder, env.registry)
    go_offline(monkeypatch)
    with pytest.raises(hub.PretrainedUnavailableError, match="HF_HUB_OFFLINE.*pull epic.flatvel-a"):
        create_model(NAME, pretrained=True)
    assert fake_hub.requests == []


def test_no_network_is_a_clear_error(
    env: types.SimpleNamespace, fake_hub: FakeHub, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_and_register(fake_hub, folder, env.registry)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    # huggingface_hub retries a refused connection 5 times with backoff (~23 s): skip the waits
    monkeypatch.setattr(hf_http.time, "sleep", lambda seconds: None)
    with pytest.raises(
        hub.PretrainedUnavailableError, match="(?s)cannot download.*Check the network"
    ):
        hub.load_pretrained(NAME)


def test_wrong_sha256_download_is_removed_never_loaded(
    env: types.SimpleNamespace, fake_hub: FakeHub, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = publish_and_register(fake_hub, folder, env.registry)
    hub.write_registry({NAME: dataclasses.replace(info, sha256="0" * 64)}, env.registry)
    loaded = []
    monkeypatch.setattr(hub, "load_hub_folder", lambda *a, **k: loaded.append(a))
    with pytest.raises(hub.ChecksumError, match="removed from the cache"):
        hub.load_pretrained(NAME)
    assert loaded == []
    assert not list(env.cache.rglob(info.sha256)), "the unverified blob stayed in the cache"
    assert not list(env.cache.rglob(f"snapshots/*/{hub.WEIGHTS_NAME}"))


def test_corrupt_download_and_corrupt_cache_are_removed(
    env: types.SimpleNamespace, fake_hub: FakeHub, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = publish_and_register(fake_hub, folder, env.registry)
    good = (folder / hub.WEIGHTS_NAME).read_bytes()
    fake_hub.tamper[hub.WEIGHTS_NAME] = good[:-8] + bytes(8)  # same size, flipped bytes
    with pytest.raises(hub.ChecksumError):
        hub.load_pretrained(NAME)
    assert not list(env.cache.rglob(info.sha256))

    del fake_hub.tamper[hub.WEIGHTS_NAME]
    assert hub.load_pretrained(NAME).pretrained_cfg["source"] == "hub"
    (blob,) = env.cache.rglob(f"blobs/{info.sha256}")
    blob.write_bytes(good[: len(good) // 2])  # a cached file truncated later
    go_offline(monkeypatch)
    with pytest.raises(hub.PretrainedUnavailableError, match="not available offline"):
        hub.load_pretrained(NAME)
    assert not blob.exists()


def test_truncated_safetensors_in_a_folder(folder: Path) -> None:
    weights = folder / hub.WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(hub.HubFormatError, match="not a complete safetensors file"):
        hub.load_hub_folder(folder)


def test_committed_copy_with_wrong_sha256_falls_back_to_the_hub(
    env: types.SimpleNamespace, fake_hub: FakeHub, folder: Path
) -> None:
    publish_and_register(fake_hub, folder, env.registry, local=True)
    (folder / hub.WEIGHTS_NAME).write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    assert hub.load_pretrained(NAME).pretrained_cfg["source"] == "hub"


def test_config_for_another_geometry(folder: Path) -> None:
    path = folder / hub.CONFIG_NAME
    config = json.loads(path.read_text())
    config["geometry"]["dx"] = 5.0
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="another acquisition geometry: dx=5.0"):
        hub.load_hub_folder(folder)


def test_config_with_other_normalisation(folder: Path) -> None:
    path = folder / hub.CONFIG_NAME
    config = json.loads(path.read_text())
    config["contract"]["seismic_max"] = 10.0
    path.write_text(json.dumps(config))
    with pytest.raises(hub.HubFormatError, match="input contract .* differs"):
        hub.load_hub_folder(folder)


def test_legacy_config_with_other_normalisation(folder: Path) -> None:
    """Folders written before the contract carry ``normalization``; it is checked too."""
    path = folder / hub.CONFIG_NAME
    config = json.loads(path.read_text())
    contract = config.pop("contract")
    config.update(
        time_stride=contract["time_stride"],
        time_samples=contract["time_samples"],
        normalization=hub.normalization_stats("flatvel-a"),
    )
    path.write_text(json.dumps(config))
    assert hub.load_hub_folder(folder).contract.time_stride == 4
    config["normalization"]["seismic"]["data_max"] = 10.0
    path.write_text(json.dumps(config))
    with pytest.raises(hub.HubFormatError, match="data_max=10.0 differs"):
        hub.load_hub_folder(folder)


def test_unknown_names_get_suggestions(
    env: types.SimpleNamespace, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.register(folder, registry=env.registry, repo_id=REPO, local=True)
    with pytest.raises(hub.UnknownPretrainedError, match="did you mean epic.flatvel-a"):
        create_model("epic.flatvel-z", pretrained=True)
    with pytest.raises(
        hub.UnknownPretrainedError, match="'architecture.dataset', e.g. epic.flatvel-a"
    ):
        hub.load_pretrained("epic")
    assert hub.list_pretrained() == [NAME]
    assert hub.list_pretrained("inversionnet.*") == []
    # an installed wheel's registry names the tagged versions it leaves out, and where they are
    doc = json.loads(env.registry.read_text())
    doc["not_in_this_install"] = {f"{NAME}.lite2k_30k": "kept in the repository (checkpoints/x)"}
    env.registry.write_text(json.dumps(doc))
    with pytest.raises(hub.UnknownPretrainedError, match="not in this install: kept in the repo"):
        create_model(f"{NAME}.lite2k_30k", pretrained=True)
    assert hub.list_pretrained() == [NAME]  # listed names all load
    from epic_zoo.hub.cli import main

    assert main(["--registry", str(env.registry), "list"]) == 0
    said = capsys.readouterr().out
    assert "not in this install (1; tagged versions kept in the epic_zoo repository" in said
    assert said.rstrip().endswith(f"{NAME}.lite2k_30k")


def test_unpublished_and_conflicting_kwargs(env: types.SimpleNamespace, folder: Path) -> None:
    hub.register(folder, registry=env.registry, repo_id=REPO, local=True)
    with pytest.raises(ValueError, match="trained with time_samples=250"):
        hub.load_pretrained(NAME, time_samples=1000)
    shutil.rmtree(folder)
    with pytest.raises(hub.PretrainedUnavailableError, match="not published yet"):
        hub.load_pretrained(NAME)


# --------------------------------------------------------------------------- committed weights


def _committed() -> list[str]:
    return sorted(n for n, info in hub.read_registry(REPO_REGISTRY).items() if info.local)


def test_committed_registry_is_consistent() -> None:
    entries = hub.read_registry(REPO_REGISTRY)
    for name, info in entries.items():
        assert hub.check_name(name, info.architecture, info.dataset) == name
        assert re.fullmatch(r"[0-9a-f]{64}", info.sha256)
        if info.local:
            weights = REPO_REGISTRY.parent / info.local / hub.WEIGHTS_NAME
            assert hub.file_sha256(weights) == info.sha256, f"{name}: committed file differs"
            assert hub.read_config(weights.parent)["name"] == name


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", _committed())
def test_committed_weights_load_offline_and_reproduce(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fresh clone, no network, empty HF cache: the user path loads and matches the record."""
    from epic_zoo.evaluation import reproduce_pretrained

    monkeypatch.delenv(hub.CHECKPOINTS_ENV, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    go_offline(monkeypatch)
    assert hub.default_registry_path() == REPO_REGISTRY
    result = reproduce_pretrained(name, tmp_path / "data")
    assert result["failures"] == [], result


def test_card_leads_with_mae_beside_the_mean_map_and_the_budget() -> None:
    from epic_zoo.weights.card import headline_lines

    record = {
        "test": 200,
        "samples_seen": 30000,
        "schedule": {"steps": 1875},
        "checkpoint_monitor": "val/mae",
        "baseline": {"mean_map_mae_ms": 632.0, "mae_ratio_to_mean_map": 0.434, "learns": True},
    }
    (line, blank) = headline_lines({"mae_ms": 274.2, "ssim_openfwi": 0.613}, record)
    assert blank == ""
    assert line == (
        "Test MAE **274.2 m/s**, 0.43 x the input-free mean map (632.0 m/s on the same 200 test "
        "maps): learns (rule: MAE <= 0.6 x mean map); SSIM (OpenFWI) 0.613. Budget: 30,000 "
        "training samples seen (1,875 optimiser steps), checkpoint chosen by val/mae."
    )
    record["baseline"] = {"mean_map_mae_ms": 400.0, "mae_ratio_to_mean_map": 0.7, "learns": False}
    assert "**does not learn**" in headline_lines({"mae_ms": 280.0}, record)[0]
    assert headline_lines({"mae": 0.2}, record) == []  # no m/s figure recorded: no lead line
    record["recipe_residuals"] = {"p": 0.5, "num": 48}
    assert "on a fraction 0.5 of the training batches" in headline_lines({"mae_ms": 1.0}, record)[0]
    assert "48 training maps" in headline_lines({"mae_ms": 1.0}, record)[0]


def test_checkpoint_that_needs_unpickling_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"model_name": "epic", "x": Path("p")}}, path)
    with pytest.raises(hub.HubFormatError, match="never unpickles"):
        hub.export_checkpoint(path, tmp_path / "out", dataset="flatvel-a")

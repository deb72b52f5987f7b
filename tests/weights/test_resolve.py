"""Hub format, registry, download and publish (epic_zoo.hub).

Network stand-ins only: a loopback HTTP server that answers the Hub's file
protocol (``HEAD``/``GET /{repo}/resolve/{revision}/{file}`` with the
``X-Repo-Commit`` and ``ETag`` headers), so ``huggingface_hub.hf_hub_download``
runs for real and fills a real cache under ``tmp_path``; and, for publishing,
``HfApi.create_repo`` / ``create_branch`` / ``upload_folder`` replaced by a copy
into that server. Everything else (export, card, cache layout, checks) is real.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import importlib.util
import json
import re
import shutil
import socket
import threading
import types
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch
from conftest import TINY_EPIC
from huggingface_hub import HfApi, ModelCard, hf_hub_download
from huggingface_hub import constants as hf_constants
from huggingface_hub.utils import _http as hf_http
from safetensors.torch import load_file

from epic_zoo import hub
from epic_zoo.models import create_model

NAME = "epic.flatvel-a"
REPO = "epic-zoo-test/epic-flatvel-a"
REPO_REGISTRY = Path(__file__).resolve().parents[1] / "checkpoints" / hub.REGISTRY_NAME


class FakeHub:
    """Loopback server for the Hub's ``resolve`` protocol; repos published from folders."""

    def __init__(self) -> None:
        self.snapshots: dict[tuple[str, str], dict[str, bytes]] = {}
        self.refs: dict[tuple[str, str], str] = {}
        self.requests: list[str] = []
        self.tamper: dict[str, bytes] = {}
        hub_ = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, with_body: bool) -> None:
                hub_.requests.append(f"{self.command} {self.path}")
                status, headers, body = hub_.resolve(self.path)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_HEAD(self) -> None:  # noqa: N802 (http.server naming)
                self._answer(False)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(True)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, repo_id: str, folder: Path, branch: str = "main") -> str:
        """Store ``folder``'s files as a new commit of ``repo_id``; returns the commit hash."""
        files = {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}
        digest = hashlib.sha1(repo_id.encode())
        for name, data in files.items():
            digest.update(name.encode() + hashlib.sha256(data).digest())
        commit = digest.hexdigest()
        self.snapshots[(repo_id, commit)] = files
        self.refs[(repo_id, branch)] = commit
        return commit

    def resolve(self, path: str) -> tuple[int, dict[str, str], bytes]:
        m = re.fullmatch(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path)
        if m is None or not any(repo == m["repo"] for repo, _ in self.snapshots):
            return 404, {"X-Error-Code": "RepoNotFound"}, b""
        repo, rev, filename = m["repo"], unquote(m["rev"]), unquote(m["file"])
        commit = self.refs.get((repo, rev), rev)
        if (repo, commit) not in self.snapshots:
            return 404, {"X-Error-Code": "RevisionNotFound"}, b""
        files = self.snapshots[(repo, commit)]
        if filename not in files:
            return 404, {"X-Error-Code": "EntryNotFound"}, b""
        data = files[filename]
        headers = {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
        return 200, headers, self.tamper.get(filename, data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Empty HF cache (``HF_HOME``), online, and a registry folder of our own."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    monkeypatch.setenv(hub.CHECKPOINTS_ENV, str(checkpoints))
    return types.SimpleNamespace(
        cache=tmp_path / "hf" / "hub",
        checkpoints=checkpoints,
        registry=checkpoints / hub.REGISTRY_NAME,
    )


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch):
    server = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.close()


def go_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("epic", **TINY_EPIC).eval()


def seismic_batch(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 5, 250, 70, generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)


@pytest.fixture
def folder(env: types.SimpleNamespace) -> Path:
    """A Hub-format folder of a tiny EPIC inside the registry folder."""
    record = {"recipe": "quickstart", "profile": "tiny", "seed": 0, "generator_version": "1"}
    return hub.save_hub_folder(
        tiny_model(),
        env.checkpoints / NAME,
        dataset="flatvel-a",
        record=record,
        metrics={"test/ssim": 0.5, "test/ssim_openfwi": 0.48, "test/mae": 0.2},
        repo_id=REPO,
    )


def publish_and_register(
    server: FakeHub, folder: Path, registry: Path, *, local: bool = False
) -> hub.PretrainedInfo:
    commit = server.publish(REPO, folder)
    return hub.register(folder, registry=registry, repo_id=REPO, revision=commit, local=local)


# --------------------------------------------------------------------------- format


def test_folder_round_trip_card_and_config(folder: Path) -> None:
    x = seismic_batch()
    expected = tiny_model()(x)
    loaded = hub.load_hub_folder(folder)
    assert torch.equal(loaded(x), expected)

    config = json.loads((folder / hub.CONFIG_NAME).read_text())
    assert config["architecture"] == "epic" and config["model_kwargs"]["latent_dim"] == 8
    assert config["time_stride"] == 4 and config["time_samples"] == 250
    assert config["normalization"]["seismic"]["data_min"] == -26.95
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
    config["normalization"]["seismic"]["data_max"] = 10.0
    path.write_text(json.dumps(config))
    with pytest.raises(hub.HubFormatError, match="data_max=10.0 differs"):
        hub.load_hub_folder(folder)


def test_unknown_names_get_suggestions(env: types.SimpleNamespace, folder: Path) -> None:
    hub.register(folder, registry=env.registry, repo_id=REPO, local=True)
    with pytest.raises(hub.UnknownPretrainedError, match="did you mean epic.flatvel-a"):
        create_model("epic.flatvel-z", pretrained=True)
    with pytest.raises(
        hub.UnknownPretrainedError, match="'architecture.dataset', e.g. epic.flatvel-a"
    ):
        hub.load_pretrained("epic")
    assert hub.list_pretrained() == [NAME]
    assert hub.list_pretrained("inversionnet.*") == []


def test_unpublished_and_conflicting_kwargs(env: types.SimpleNamespace, folder: Path) -> None:
    hub.register(folder, registry=env.registry, repo_id=REPO, local=True)
    with pytest.raises(ValueError, match="trained with time_samples=250"):
        hub.load_pretrained(NAME, time_samples=1000)
    shutil.rmtree(folder)
    with pytest.raises(hub.PretrainedUnavailableError, match="not published yet"):
        hub.load_pretrained(NAME)


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
    assert hub.main(args) == 0
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
    from epic_zoo.evaluate import reproduce_pretrained

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


def test_checkpoint_that_needs_unpickling_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"model_name": "epic", "x": Path("p")}}, path)
    with pytest.raises(hub.HubFormatError, match="never unpickles"):
        hub.export_checkpoint(path, tmp_path / "out", dataset="flatvel-a")


def test_cli_list_and_pull(
    env: types.SimpleNamespace,
    fake_hub: FakeHub,
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish_and_register(fake_hub, folder, env.registry)
    assert hub.main(["list"]) == 0
    assert re.search(
        r"epic.flatvel-a\s+flatvel-a\s+300.0\s+-\s+-\s+-\s+0.480\s+-\s+\d+.*hub",
        capsys.readouterr().out,
    )
    assert hub.main(["pull", NAME]) == 0
    assert "downloaded, sha256 verified" in capsys.readouterr().out
    assert hub.main(["pull", NAME]) == 0
    assert "already cached" in capsys.readouterr().out
    assert hub.main(["pull", "epic.nope"]) == 2
    assert "unknown pretrained weights 'epic.nope'" in capsys.readouterr().err


# --------------------------------------------------------------------------- committed weights


def _committed() -> list[str]:
    return sorted(n for n, info in hub.read_registry(REPO_REGISTRY).items() if info.local)


def test_committed_registry_is_consistent() -> None:
    entries = hub.read_registry(REPO_REGISTRY)
    for name, info in entries.items():
        assert name == f"{info.architecture}.{info.dataset}"
        assert re.fullmatch(r"[0-9a-f]{64}", info.sha256)
        if info.local:
            weights = REPO_REGISTRY.parent / info.local / hub.WEIGHTS_NAME
            assert hub.file_sha256(weights) == info.sha256, f"{name}: committed file differs"


@pytest.mark.parametrize("name", _committed())
def test_committed_weights_load_offline_and_reproduce(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fresh clone, no network, empty HF cache: the user path loads and matches the record."""
    from epic_zoo.evaluate import reproduce_pretrained

    torch.set_num_threads(1)
    monkeypatch.delenv(hub.CHECKPOINTS_ENV, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    go_offline(monkeypatch)
    assert hub.default_registry_path() == REPO_REGISTRY
    result = reproduce_pretrained(name, tmp_path / "data")
    assert result["failures"] == [], result


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
    assert hub.main(argv) == 0
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


def test_data_record_keeps_the_recipe_residual_setting() -> None:
    from epic_zoo.hub.export import data_record

    dm = {"dataset": "style-a", "profile": "tiny", "seed": 0, "time_stride": 4, "limit": None}
    residuals = {"p": 0.5, "num": 48, "scale": [0.5, 1.5]}
    assert data_record({**dm, "recipe_residuals": residuals})["recipe_residuals"] == residuals
    assert "recipe_residuals" not in data_record({**dm, "recipe_residuals": {"p": 0.0}})
    assert "recipe_residuals" not in data_record(dm)

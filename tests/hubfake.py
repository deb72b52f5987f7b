"""Network stand-ins for the weights and hub tests (a pytest plugin, see tests/conftest.py).

A loopback HTTP server that answers the Hub's file protocol
(``HEAD``/``GET /{repo}/resolve/{revision}/{file}`` with the ``X-Repo-Commit``
and ``ETag`` headers), so ``huggingface_hub.hf_hub_download`` runs for real and
fills a real cache under ``tmp_path``; fixtures ``env`` (empty HF cache, a
registry folder of the test's own), ``fake_hub`` (the server) and ``folder`` (a
Hub-format folder of a tiny EPIC in that registry folder).
"""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
import types
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch
from conftest import TINY_EPIC
from huggingface_hub import constants as hf_constants

from epic_zoo import hub
from epic_zoo.models import create_model

NAME = "epic.flatvel-a"
REPO = "epic-zoo-test/epic-flatvel-a"


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

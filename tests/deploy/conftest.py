"""Fixtures of the deployment tests: a small EPIC bundle, credentials and a real broker.

The broker is a mosquitto process on a free 127.0.0.1 port, started per test
and stopped after it (``.ci/services.sh`` installs mosquitto in CI); tests
that need it are skipped, with the install command, only if the binary is
absent. Models are small untrained EPICs (``T = 64``, 3 devices) so that
everything runs in seconds.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from epic_zoo.data.contract import InputContract
from epic_zoo.deploy.export import export_bundle
from epic_zoo.deploy.security import Credentials, provision
from epic_zoo.models import create_model

TIME_SAMPLES = 64
NUM_DEVICES = 3
SMALL_EPIC = {
    "time_samples": TIME_SAMPLES,
    "num_devices": NUM_DEVICES,
    "latent_dim": 16,
    "encoder_width": 16,
    "d_model": 32,
    "heads": 2,
    "fusion_layers": 1,
    "head_channels": (8, 8, 8),
}


def _have_mosquitto() -> bool:
    path = "/usr/sbin:/usr/local/sbin:/usr/bin:/usr/local/bin"
    return all(
        shutil.which(b) or shutil.which(b, path=path) for b in ("mosquitto", "mosquitto_passwd")
    )


needs_mosquitto = pytest.mark.skipif(
    not _have_mosquitto(),
    reason="mosquitto broker not installed: `apt-get install -y mosquitto` (done by .ci/services.sh)",
)


@pytest.fixture(scope="session")
def small_epic() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("epic", **SMALL_EPIC).eval()


@pytest.fixture(scope="session")
def bundle(small_epic: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    return export_bundle(
        small_epic,
        out,
        name="epic-test",
        contract=InputContract.make("flatvel-a", 4),
        trained=False,
        source="test",
    )


@pytest.fixture(scope="session")
def records() -> np.ndarray:
    """Raw records ``[6, 5, T, 70]`` (float32, amplitudes of the order of the datasets')."""
    return (
        np.random.default_rng(0).normal(0.0, 2.0, size=(6, 5, TIME_SAMPLES, 70)).astype(np.float32)
    )


@pytest.fixture()
def creds(tmp_path: Path) -> dict[str, Credentials]:
    return provision(NUM_DEVICES, tmp_path / "credentials")


@pytest.fixture()
def broker(tmp_path: Path, creds: dict[str, Credentials]) -> Iterator:
    if not _have_mosquitto():
        pytest.skip(
            "mosquitto broker not installed: `apt-get install -y mosquitto` (done by .ci/services.sh)"
        )
    from epic_zoo.deploy.broker import Broker

    with Broker(tmp_path / "broker", creds, NUM_DEVICES) as running:
        yield running


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll ``predicate`` every 10 ms for at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class CentralThread:
    """A :class:`~epic_zoo.deploy.central.CentralNode` served from a thread (stopped on exit)."""

    def __init__(self, node) -> None:
        self.node = node
        self.result: dict | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.result = self.node.run(duration_s=60)

    def __enter__(self) -> CentralThread:
        self.node.decoder.warmup()
        self.thread.start()
        assert wait_until(self.node.link.connected.is_set), "central did not connect"
        return self

    def __exit__(self, *exc: object) -> None:
        self.node.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "central did not stop"


@pytest.fixture()
def central_thread() -> type[CentralThread]:
    return CentralThread

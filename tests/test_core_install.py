"""The core install: the zoo loads and runs without the training, tracking or MQTT stacks.

``pip install epic_zoo`` (no extras) must be enough for ``create_model(name,
pretrained=True)`` and a forward pass; Lightning, Hydra, OmegaConf, W&B,
deepwave and paho-mqtt come with the ``[train]`` / ``[deploy]`` extras. The
check runs in a fresh interpreter and reads ``sys.modules``; the package
metadata is checked to list none of them as a core dependency.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import epic_zoo

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parent.parent
EXTRAS_ONLY = ("lightning", "hydra", "omegaconf", "wandb", "deepwave", "paho")
"""Top-level modules the core path must not import."""

SCRIPT = """
import json, sys, torch
torch.set_num_threads(1)
import epic_zoo.models
model = epic_zoo.models.create_model("epic.flatvel-a", pretrained=True)
with torch.inference_mode():
    out = model(torch.zeros(1, 5, model.contract.time_samples, 70))
print(json.dumps({"shape": list(out.shape), "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def test_create_model_pretrained_imports_no_extra() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["shape"] == [1, 1, 70, 70]
    loaded = set(report["modules"]) & set(EXTRAS_ONLY)
    assert not loaded, f"the core path imports {sorted(loaded)}"


def test_core_dependencies_leave_the_stacks_to_extras() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {re.split(r"[<>=!~\[ ]", d)[0].lower() for d in project["dependencies"]}
    for stack in ("lightning", "hydra-core", "omegaconf", "wandb", "deepwave", "paho-mqtt"):
        assert stack not in core, f"{stack} is a core dependency; move it to an extra"
    extras = project["optional-dependencies"]
    train = " ".join(extras["train"])
    for stack in ("lightning", "hydra-core", "omegaconf", "wandb", "deepwave", "torchmetrics"):
        assert stack in train, f"[train] lacks {stack}"
    assert any(d.startswith("paho-mqtt") for d in extras["deploy"])
    assert any("train" in d and "deploy" in d for d in extras["dev"]), "[dev] = train + deploy"


def test_one_version_source() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "epic_zoo.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+", epic_zoo.__version__)

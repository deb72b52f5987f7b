"""The built wheel carries the pretrained zoo: install it outside the repository, offline.

Builds the wheel from a copy of the source tree (``pip wheel --no-deps
--no-build-isolation``), installs it with ``--no-deps`` into a fresh virtual
environment that sees this interpreter's packages (torch, huggingface_hub...,
nothing is downloaded), then, from a folder outside the repository, with
``HF_HUB_OFFLINE=1`` and an empty Hugging Face cache: ``python -m epic_zoo.hub
list`` shows the ten EPIC weights and ``create_model("epic.flatvel-a",
pretrained=True)`` loads from the installed package data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# In the default run: the wheel is how users get the offline zoo (issue: "the wheel test passes in CI").


def _source_copy(dest: Path) -> Path:
    """The files git would commit (tracked + untracked, not ignored), copied to ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / name.decode()
        if source.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{argv}\n{result.stdout}\n{result.stderr}"
    return result


def test_wheel_ships_the_zoo_offline(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to list the source files")
    src = _source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", str(dist), str(src)])  # fmt: skip
    (wheel,) = dist.glob("epic_zoo-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # this interpreter's packages (it may itself be a venv) come after the wheel's
    site = Path(
        _run([str(python), "-c", "import site; print(site.getsitepackages()[0])"]).stdout.strip()
    )
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "-q", str(wheel)])  # fmt: skip

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPIC_ZOO", "PYTHON"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "empty-hf"))
    listing = _run([str(python), "-m", "epic_zoo.hub", "list"], cwd=work, env=env).stdout
    rows = [line.split()[0] for line in listing.splitlines() if line.startswith("epic.")]
    assert len(rows) == 10, listing
    assert all(
        line.rstrip().endswith(("local", "SUPERSEDED")) for line in listing.splitlines()[2:12]
    )
    script = (
        "import warnings, epic_zoo, epic_zoo.hub as hub\n"
        "warnings.simplefilter('ignore')\n"
        "from epic_zoo.models import create_model\n"
        "m = create_model('epic.flatvel-a', pretrained=True)\n"
        "print(epic_zoo.__file__)\n"
        "print(hub.default_registry_path())\n"
        "print(m.pretrained_cfg['source'], type(m).__name__)\n"
    )
    out = _run([str(python), "-c", script], cwd=work, env=env).stdout.split("\n")
    assert Path(out[0]).is_relative_to(env_dir), out
    assert Path(out[1]) == Path(out[0]).parent / "checkpoints" / "registry.json"
    assert out[2] == "local EPIC"

"""Every build path ships the pretrained zoo: install outside the repository, offline.

From a copy of the source tree (the files git would commit), each path builds
and installs epic_zoo into a fresh virtual environment outside the repository
that sees this interpreter's packages (torch, huggingface_hub..., nothing is
downloaded; ``--no-deps --no-build-isolation --no-index``):

- ``python -m build``: the sdist and the wheel built from it; the wheel is
  installed, and so is the sdist (pip builds a wheel from it again);
- ``pip wheel .`` and ``pip install .`` (slow: the same hook, other front ends).

Then, from a folder outside the repository, with ``HF_HUB_OFFLINE=1`` and an
empty Hugging Face cache: ``python -m epic_zoo.hub list`` shows each dataset's
default EPIC weights as local copies and every one of them loads from the
installed package data; a tagged version kept only in the repository is not
in the wheel and asking for it says where it is. The wheel stays under PyPI's
default 100 MB per file. ``.ci/run`` runs the slow ones too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from epic_zoo.weights.shipping import HUB_FILES, is_tagged

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(),
    reason="needs a git checkout to list the source files",
)


PYPI_FILE_LIMIT = 100 * 1000**2
"""PyPI's default upper limit on one uploaded file (bytes)."""


def _registry() -> dict:
    return json.loads((REPO / "checkpoints" / "registry.json").read_text())


def _registered_files() -> list[str]:
    """``checkpoints/...`` paths of the registry and each committed folder's three files."""
    local = [e["local"] for e in _registry()["weights"].values() if e.get("local")]
    return ["registry.json", *(f"{folder}/{name}" for folder in local for name in HUB_FILES)]


def _shipped() -> list[str]:
    """Names the wheel ships: the committed default (untagged) weights."""
    return [n for n, e in _registry()["weights"].items() if e.get("local") and not is_tagged(n)]


def _source_copy(dest: Path) -> Path:
    """The files git would commit (tracked + untracked, not ignored), copied to ``dest``.

    Links stay links (``epic_zoo/recipes`` points at ``recipes/``), as in a clone.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / name.decode()
        target = dest / name.decode()
        if source.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{argv}\n{result.stdout}\n{result.stderr}"
    return result


def _fresh_venv(env_dir: Path) -> Path:
    """A venv whose site-packages come first, then this interpreter's (it may be a venv)."""
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        _run([str(python), "-c", "import site; print(site.getsitepackages()[0])"]).stdout.strip()
    )
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _pip_install(python: Path, target: str) -> None:
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-build-isolation", "--no-index", "-q", target])  # fmt: skip


def _check_installed_zoo(python: Path, env_dir: Path, tmp_path: Path) -> None:
    """List and load every shipped weight from the installed package, offline, outside the repo."""
    committed = len(_shipped())
    omitted = sorted(
        n for n, e in _registry()["weights"].items() if e.get("local") and is_tagged(n)
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPIC_ZOO", "PYTHON"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "empty-hf"))
    listing = _run([str(python), "-m", "epic_zoo.hub", "list"], cwd=work, env=env).stdout
    rows = [line for line in listing.splitlines() if line.startswith("epic.")]
    assert len(rows) == committed >= 10, listing
    assert all(row.rstrip().endswith(("local", "local  SUPERSEDED")) for row in rows), listing
    script = (
        "import warnings, epic_zoo, epic_zoo.hub as hub\n"
        "warnings.simplefilter('ignore')\n"
        "from epic_zoo.models import create_model, list_models\n"
        "names = list_models(pretrained=True)\n"
        "sources = {create_model(n, pretrained=True).pretrained_cfg['source'] for n in names}\n"
        "print(epic_zoo.__file__)\n"
        "print(hub.default_registry_path())\n"
        "print(len(names), sorted(sources))\n"
        "from epic_zoo.hub import UnknownPretrainedError\n"
        f"for name in {omitted!r}:\n"
        "    try:\n"
        "        create_model(name, pretrained=True)\n"
        "    except UnknownPretrainedError as err:\n"
        "        print('omitted', name, err)\n"
    )
    out = _run([str(python), "-c", script], cwd=work, env=env).stdout.split("\n")
    assert Path(out[0]).is_relative_to(env_dir), out
    assert Path(out[1]) == Path(out[0]).parent / "checkpoints" / "registry.json"
    assert out[2] == f"{committed} ['local']", out
    said = [line for line in out[3:] if line.startswith("omitted")]
    assert len(said) == len(omitted) >= 1, out
    for name, line in zip(omitted, said, strict=True):
        assert line.startswith(f"omitted {name} ") and f"checkpoints/{name}" in line, line
        assert "clone of the repository" in line, line


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build`` of a source copy: ``{"src", "sdist", "wheel"}``."""
    root = tmp_path_factory.mktemp("build")
    src = _source_copy(root / "src")
    dist = root / "dist"
    _run([sys.executable, "-m", "build", "--no-isolation", "-o", str(dist), str(src)])
    (sdist,) = dist.glob("epic_zoo-*.tar.gz")
    (wheel,) = dist.glob("epic_zoo-*.whl")
    return {"src": src, "sdist": sdist, "wheel": wheel}


def test_sdist_and_wheel_carry_the_registered_zoo(built: dict[str, Path]) -> None:
    wanted = _registered_files()
    with tarfile.open(built["sdist"]) as tar:
        top = tar.getnames()[0].split("/")[0]
        in_sdist = {n.removeprefix(f"{top}/checkpoints/") for n in tar.getnames()}
    with zipfile.ZipFile(built["wheel"]) as whl:
        in_wheel = {n.removeprefix("epic_zoo/checkpoints/") for n in whl.namelist()}
        zoo = [
            n.split("/")[2] for n in whl.namelist() if n.count("/") == 3 and "/checkpoints/" in n
        ]
        recipes = [n for n in whl.namelist() if n.startswith("epic_zoo/recipes/recipe/")]
    shipped = ["registry.json", *(f"{n}/{f}" for n in _shipped() for f in HUB_FILES)]
    assert set(shipped) <= in_sdist, sorted(set(shipped) - in_sdist)
    assert not set(wanted) - set(shipped) & in_sdist  # tagged versions: the repository only
    assert set(shipped) <= in_wheel, sorted(set(shipped) - in_wheel)
    tagged = {folder for folder in zoo if is_tagged(folder)}
    assert set(_shipped()) == set(zoo)
    assert not tagged, sorted(tagged)  # tagged versions live in the repository (and the Hub)
    assert built["wheel"].stat().st_size < PYPI_FILE_LIMIT
    assert built["sdist"].stat().st_size < PYPI_FILE_LIMIT
    assert "epic_zoo/recipes/recipe/quickstart.yaml" in recipes


@pytest.mark.parametrize("artifact", ["wheel", "sdist"])
def test_build_artifact_installs_the_zoo_offline(
    built: dict[str, Path], artifact: str, tmp_path: Path
) -> None:
    env_dir = tmp_path / "venv"
    python = _fresh_venv(env_dir)
    _pip_install(python, str(built[artifact]))
    _check_installed_zoo(python, env_dir, tmp_path)


@pytest.mark.slow
def test_pip_wheel_installs_the_zoo_offline(built: dict[str, Path], tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", str(dist), str(built["src"])])  # fmt: skip
    (wheel,) = dist.glob("epic_zoo-*.whl")
    env_dir = tmp_path / "venv"
    python = _fresh_venv(env_dir)
    _pip_install(python, str(wheel))
    _check_installed_zoo(python, env_dir, tmp_path)


@pytest.mark.slow
def test_pip_install_dot_installs_the_zoo_offline(built: dict[str, Path], tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    python = _fresh_venv(env_dir)
    _pip_install(python, str(built["src"]))
    _check_installed_zoo(python, env_dir, tmp_path)


def test_empty_registry_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from epic_zoo.hub import UnknownPretrainedError, get_pretrained_info
    from epic_zoo.hub.cli import main

    with pytest.raises(UnknownPretrainedError, match="python -m build.*EPIC_ZOO_CHECKPOINTS"):
        get_pretrained_info("epic.flatvel-a", registry=tmp_path / "registry.json")
    assert main(["--registry", str(tmp_path / "registry.json"), "list"]) == 0
    printed = capsys.readouterr().out
    assert "registry.json is missing" in printed and "python -m build" in printed

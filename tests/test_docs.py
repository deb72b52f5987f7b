"""The documentation: the MkDocs site builds strictly, the README stays short and its links resolve.

Also guards two habits: the pages name committed files by their repository
path in code spans (``benchmarks/results/...``), so those paths must exist;
and no tracked file cites the background notes that were never part of the
repository (their facts live in ``docs/`` with their primary sources).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 220

# [text](target) and ![alt](target); the target ends at the first space or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# Top-level folders whose files the pages name by repository path.
REPO_PATH = re.compile(
    r"^(?:benchmarks|checkpoints|epic_zoo|recipes|requirements|tests|docs|\.ci)/"
)
# A file name cited as a source; written as a pattern so this file does not cite them itself.
BACKGROUND_CITATION = re.compile(rb"\b(?:REFERENCE|DESIGN|STYLE)\.md\b")


def relative_links(markdown: str) -> list[str]:
    """Link targets that point into the repository (no scheme, no pure anchor)."""
    targets = []
    for target in LINK.findall(markdown):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_relative_links_found() -> None:
    text = "[a](docs/x.md#y) ![b](img.png) [c](https://example.org) [d](#top) [e](mailto:x@y)"
    assert relative_links(text) == ["docs/x.md", "img.png"]


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail into docs/"
    )


def test_readme_links_resolve() -> None:
    targets = relative_links(README.read_text(encoding="utf-8"))
    assert targets, "README.md links into docs/ (none found)"
    broken = []
    for target in targets:
        path = (REPO / target).resolve()
        if not path.is_relative_to(REPO) or not path.exists():
            broken.append(target)
    assert not broken, f"README.md links to missing files: {broken}"


def test_docs_name_existing_repository_paths() -> None:
    pages = [README, *sorted(DOCS.glob("*.md"))]
    missing = []
    for page in pages:
        for span in CODE_SPAN.findall(page.read_text(encoding="utf-8")):
            if not REPO_PATH.match(span) or re.search(r"[\s*?{}\[\]<>]|\.\.\.", span):
                continue
            if not (REPO / span).exists():
                missing.append(f"{page.relative_to(REPO)}: {span}")
    assert not missing, "pages name repository paths that do not exist:\n" + "\n".join(missing)


def test_mkdocs_strict_build(tmp_path: Path) -> None:
    for module in ("mkdocs", "pymdownx"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(
                f"{module} is not installed (pip install -e '.[dev]' installs the docs tools)"
            )
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", "mkdocs.yml"]
        + ["-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()
    for page in ("data", "fidelity", "references", "deployment", "changelog"):
        assert (tmp_path / "site" / page / "index.html").is_file(), page


def tracked_files() -> list[Path]:
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    out = subprocess.run(
        [git, "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
    ).stdout
    return [REPO / name for name in out.decode("utf-8").split("\0") if name]


def test_no_citations_of_background_notes() -> None:
    citing = []
    for path in tracked_files():
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as handle:
            head = handle.read(8192)
            if b"\0" in head:  # binary: weights, images, arrays
                continue
            data = head + handle.read()
        if BACKGROUND_CITATION.search(data):
            citing.append(str(path.relative_to(REPO)))
    assert not citing, (
        "these files cite notes that are not in the repository; put the fact in docs/ "
        f"with its primary source and point there instead: {citing}"
    )

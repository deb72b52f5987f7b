"""Provenance helpers: one commit, CPU and version source for every record."""

from __future__ import annotations

import platform
import subprocess

import pytest

from epic_zoo import provenance


def test_git_commit_is_head_of_the_checkout() -> None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=provenance._SOURCE_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    commit = provenance.git_commit()
    assert commit is not None and commit.removesuffix("+dirty") == head
    assert head.startswith(provenance.git_commit(short=True).removesuffix("+dirty"))


def test_git_commit_is_none_outside_git(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(provenance, "_SOURCE_ROOT", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert provenance.git_commit() is None


def test_versions_and_conditions() -> None:
    versions = provenance.package_versions(["torch", "no-such-package-xyz"])
    assert (
        versions["no-such-package-xyz"] is None and versions["python"] == platform.python_version()
    )
    assert versions["torch"]
    record = provenance.conditions(seed=3)
    assert record["seed"] == 3 and record["cpu"] == provenance.cpu_name() and record["cpu"]
    assert set(record) >= {"date", "commit", "cpu_count", "versions", "platform"}
    assert record["versions"]["epic_zoo"]

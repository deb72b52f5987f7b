"""Expected failures of the ``deploy``, ``data`` and ``compare`` commands: one line, the fix, exit != 0.

Each case runs the command's ``main`` in-process with an input a careless
user would give and checks that it returns a non-zero status, prints a
single ``error:`` line naming the input (no traceback), and, where the
command writes files, that the output path is checked before the work.
"""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from epic_zoo.deploy.security import provision


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture()
def a_file(tmp_path: Path) -> Path:
    """A plain file: any path below it cannot be created."""
    path = tmp_path / "plain-file"
    path.write_text("x")
    return path


# ------------------------------------------------------------------------------ deploy
def _deploy(*argv: str) -> int:
    from epic_zoo.deploy.__main__ import main

    return main(list(argv))


def test_deploy_central_without_credentials(tmp_path, capsys) -> None:
    rc = _deploy(
        "central", "--bundle", str(tmp_path), "--credentials", str(tmp_path / "nope.json"),
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert rc == 1
    _one_line_error(capsys, "nope.json", "provision")


def test_deploy_central_out_unwritable_is_checked_first(tmp_path, a_file, capsys) -> None:
    rc = _deploy(
        "central", "--bundle", str(tmp_path / "no-bundle"), "--credentials", str(tmp_path / "c.json"),
        "--out", str(a_file / "out"),
    )  # fmt: skip
    assert rc == 1
    _one_line_error(capsys, "--out", str(a_file / "out"), "writable")


def test_deploy_central_without_a_bundle(tmp_path, capsys) -> None:
    provision(1, tmp_path / "secrets")
    rc = _deploy(
        "central", "--bundle", str(tmp_path / "empty"), "--credentials",
        str(tmp_path / "secrets/central.json"), "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert rc == 1
    _one_line_error(capsys, "manifest.json", "export")


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--watch", "missing-folder"], ["--watch", "missing-folder", "create it"]),
        (["--data", "missing.npy"], ["--data", "missing.npy"]),
        (["--data", ".", "--first-sample", "-1"], ["--first-sample"]),
        (["--data", ".", "--stats", "{file}/stats.json"], ["--stats", "writable"]),
        (["--data", ".", "--link", "carrier-pigeon"], ["carrier-pigeon"]),
    ],
)
def test_deploy_edge_bad_arguments_before_connecting(
    tmp_path, a_file, capsys, monkeypatch, extra, needles
) -> None:
    monkeypatch.chdir(tmp_path)
    extra = [e.replace("{file}", str(a_file)) for e in extra]
    rc = _deploy(
        "edge", "--bundle", str(tmp_path), "--device", "0", "--credentials", "c.json",
        "--broker", "127.0.0.1:1", *extra,
    )  # fmt: skip
    assert rc == 1
    _one_line_error(capsys, *needles)


def test_deploy_provision_out_unwritable(a_file, capsys) -> None:
    assert _deploy("provision", "--devices", "2", "--out", str(a_file / "secrets")) == 1
    _one_line_error(capsys, "--out", "writable")


def test_deploy_provision_claims_the_real_mode(tmp_path, capsys) -> None:
    out = tmp_path / "secrets"
    out.mkdir()
    (out / "central.json").write_text("{}")
    (out / "central.json").chmod(0o644)
    assert _deploy("provision", "--devices", "1", "--out", str(out)) == 0
    assert "(mode 0o600)" in capsys.readouterr().out
    assert stat.S_IMODE((out / "central.json").stat().st_mode) == 0o600


def test_deploy_broker_without_credentials(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    rc = _deploy("broker", "--credentials", str(tmp_path / "empty"), "--devices", "2")
    assert rc == 1
    _one_line_error(capsys, "empty", "provision")

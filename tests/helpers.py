"""Assertions shared by several test modules."""

from __future__ import annotations

import pytest


def one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    """The CLI's stderr holds exactly one ``error:`` line, no traceback, and every needle in it."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]

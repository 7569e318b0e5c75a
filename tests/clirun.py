"""Running `gedge` for the fault and bad-input tests: in this process through ``gedge.cli.app.main`` (the code
that maps errors to exit codes, without the seconds a fresh interpreter takes), or as a subprocess where the
behaviour is the process's (a kill, a file-size limit)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from gedge.cli.app import main

GEDGE = [sys.executable, "-m", "gedge.cli"]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """stderr's lines, less the final render of a progress bar (drawn before the error happened)."""
        return [line for line in self.stderr.strip().splitlines() if line.strip() and "━" not in line]


def run_main(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, *args: str | Path) -> Outcome:
    """``gedge ARGS`` in this process; an exception that escapes ``main`` (a traceback) fails the test."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["gedge", *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def cli(capsys: pytest.CaptureFixture, *args: str | Path) -> tuple[int, str, str]:
    """:func:`run_main` for tests without a ``monkeypatch`` fixture at hand: (exit code, stdout, stderr)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        outcome = run_main(capsys, monkeypatch, *args)
    return outcome.code, outcome.stdout, outcome.stderr


def assert_one_line(outcome: Outcome, code: int, *fragments: str) -> str:
    """Exit ``code``, no traceback, and stderr is one line (an ``error:`` line, after a progress bar at most)
    holding every fragment."""
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert outcome.code == code, (outcome.code, outcome.stderr, outcome.stdout[-2000:])
    assert len(outcome.lines) == 1, outcome.stderr
    line = outcome.lines[0]
    assert line.startswith("error:"), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line

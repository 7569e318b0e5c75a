"""gedge's errors, each one line naming the file and the problem, and the exit code the CLI gives it.

* :class:`GedgeError` (and its kinds): bad input, exit code 2: a missing or unreadable file, an invalid option,
  an artifact that is corrupt, tampered with or of another version.
* :class:`CheckFailed`: a check that ran and failed (parity, a gate, a graph TensorRT rejects), exit code 1.
* :class:`RuntimeFailure`: the machine failed while running (CUDA, TensorRT, a backend), exit code 3.
"""

from __future__ import annotations

from pathlib import Path

FIRST_LINE_LIMIT = 300  # characters of a foreign exception's text kept in gedge's one-line errors


def first_line(exc: BaseException, named: bool = False) -> str:
    """The first non-empty line of an exception's text (at most :data:`FIRST_LINE_LIMIT` characters), or its class
    name when it has no text; ``named`` puts the class name first (``OSError: ...``). How a library's multi-line
    exception (protobuf, TensorRT, ONNX Runtime, torch) becomes part of one of gedge's one-line errors."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return exc.__class__.__name__
    return f"{exc.__class__.__name__}: {lines[0][:FIRST_LINE_LIMIT]}" if named else lines[0][:FIRST_LINE_LIMIT]


def _located(message: str, path: str | Path | None) -> str:
    return f"{path}: {message}" if path is not None else message


class GedgeError(Exception):
    """An error caused by the user's input (files, options), not by a bug in gedge."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.problem = message
        super().__init__(_located(message, self.path))


class DataError(GedgeError):
    """An image, folder or data set that cannot be used."""


class ConfigError(GedgeError):
    """An invalid model, training or export option."""


class ArtifactError(GedgeError):
    """A checkpoint, graph, engine or sidecar that is corrupt, tampered with or of another version."""


class CheckFailed(Exception):
    """A check ran and its verdict is a failure (the report says which limits were missed)."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.problem = message
        super().__init__(_located(message, self.path))


class RuntimeFailure(RuntimeError):
    """The hardware or a backend failed while running (CUDA, TensorRT, an inference session)."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.problem = message
        super().__init__(_located(message, self.path))

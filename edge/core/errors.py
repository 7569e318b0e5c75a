"""User-facing errors: one line, naming the file and the problem; the CLI maps them to exit code 2."""

from __future__ import annotations

from pathlib import Path


class GedgeError(Exception):
    """An error caused by the user's input (files, options), not by a bug in gedge."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.problem = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class DataError(GedgeError):
    """An image, folder or data set that cannot be used."""


class ConfigError(GedgeError):
    """An invalid model, training or export option."""


class ArtifactError(GedgeError):
    """A checkpoint, graph, engine or sidecar that is corrupt, tampered with or of another version."""

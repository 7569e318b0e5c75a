"""The one suffix table of gedge's files and :func:`open`: a file's kind from its suffix, read by its kind's reader.

| suffix | kind | reader |
|---|---|---|
| ``.pt`` | checkpoint | :func:`gedge.core.artifacts.checkpoint.read_checkpoint` (torch, loaded when read) |
| ``.onnx`` | graph | :func:`gedge.core.artifacts.graph.read_graph` |
| ``.xml`` | ir | :func:`gedge.core.artifacts.ir.read_ir` |
| ``.engine`` | engine | :func:`gedge.core.artifacts.engine.read_engine` |
| ``.cache`` | calibration cache | :func:`gedge.core.artifacts.calib_cache.read_calibration_cache` |
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gedge.core.artifacts.artifact import Artifact
from gedge.core.artifacts.calib_cache import read_calibration_cache
from gedge.core.artifacts.checkpoint import read_checkpoint
from gedge.core.artifacts.engine import read_engine
from gedge.core.artifacts.graph import read_graph
from gedge.core.artifacts.ir import read_ir
from gedge.core.errors import ArtifactError, ConfigError

READERS: dict[str, tuple[str, Callable[[Path], Artifact]]] = {
    ".pt": ("checkpoint", read_checkpoint),
    ".onnx": ("graph", read_graph),
    ".xml": ("ir", read_ir),
    ".engine": ("engine", read_engine),
    ".cache": ("calibration cache", read_calibration_cache),
}

SUFFIXES: dict[str, str] = {suffix: kind for suffix, (kind, _) in READERS.items()}

MODEL_KINDS = ("checkpoint", "graph", "ir", "engine")  # the kinds that score images


def kind_of(path: str | Path) -> str:
    """A file's kind from its suffix; ConfigError for a file gedge does not write."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"{Path(path).name}: not a gedge file (expected a .pt checkpoint, an .onnx graph, an "
                          "OpenVINO .xml IR, a TensorRT .engine or a .cache calibration cache)")
    return SUFFIXES[suffix]


def open(path: str | Path, kinds: tuple[str, ...] = ()) -> Artifact:
    """The artifact at ``path``, read, hashed and verified once by its kind's reader (``kinds``: the kinds the caller
    takes; another is a one-line error)."""
    path = Path(path)
    kind = kind_of(path)
    if kinds and kind not in kinds:
        raise ConfigError(f"{path.name} is a {kind}; expected {' or '.join(kinds)}")
    if not path.exists():
        raise ArtifactError("model file does not exist" if kind in MODEL_KINDS else f"{kind} does not exist", path)
    return READERS[path.suffix.lower()][1](path)

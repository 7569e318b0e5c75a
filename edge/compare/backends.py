"""The two sides of a comparison, opened through the runtime registry from the artifacts gedge read.

The reference is a gedge checkpoint on the ``torch`` backend; the candidate is a deployed model (an ONNX graph on
ONNX Runtime, an OpenVINO IR on OpenVINO, an engine on TensorRT). Both come as
:class:`~gedge.core.artifacts.Artifact` (read once, by :func:`gedge.core.artifacts.open`) and go through
:func:`gedge.runtime.registry.open_backend`, which loads the backend module by name: this module never imports
torch, so comparing an engine on a device without torch fails only when a reference is asked for.

What each side is (model config, lineage, precision, anomaly map, notes) comes from its artifact and from the
:class:`~gedge.core.backend.BackendInfo` the backend declares (``backend.info``).
"""

from __future__ import annotations

from dataclasses import dataclass

from gedge.core.artifacts import Artifact
from gedge.core.backend import Backend, BackendInfo
from gedge.core.errors import ConfigError
from gedge.runtime.registry import open_backend


@dataclass
class OpenedReference:
    """The torch reference and the checkpoint it runs."""

    backend: Backend
    artifact: Artifact


def open_reference(checkpoint: Artifact, with_amap: bool = False) -> OpenedReference:
    """The checkpoint's fused scorer on torch (CPU), through the registry."""
    if checkpoint.kind != "checkpoint":
        raise ConfigError(f"{checkpoint.name}: the reference is a gedge checkpoint (.pt)")
    return OpenedReference(open_backend(checkpoint, "torch", with_amap=with_amap), checkpoint)


def open_candidate(candidate: Artifact, threads: int = 0, force: bool = False) -> Backend:
    """A deployed model on its own backend, with the anomaly map where it has one. The registry refuses an artifact
    whose recorded verdict failed unless ``force``."""
    if candidate.kind == "checkpoint":
        raise ConfigError(f"{candidate.name}: the candidate is a deployed model (.onnx, OpenVINO .xml or .engine), "
                          "not a checkpoint")
    return open_backend(candidate, threads=threads, with_amap=candidate.with_amap, force=force)


def artifact_precision(info: BackendInfo) -> str:
    """The precision of the model file a backend runs (its limits), else what the backend computes in."""
    return info.artifact.precision if info.artifact and info.artifact.precision else info.precision

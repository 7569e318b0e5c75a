"""The two sides of a comparison, opened through the runtime registry, and what each says about itself.

The reference is a gedge checkpoint on the ``torch`` backend; the candidate is a deployed model file on its own
backend (an ONNX graph on ONNX Runtime, an OpenVINO IR on OpenVINO, an engine on TensorRT). Both go through
:func:`gedge.runtime.registry.open_backend`, which loads the backend module by name: this module never imports
torch, so comparing an engine on a device without torch fails only when a reference is asked for.

What each side is (model config, source checkpoint, precision, anomaly map, notes) comes from the
:class:`~gedge.core.backend.BackendInfo` the backend declares (``backend.info``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gedge.core.backend import Backend, BackendInfo
from gedge.core.errors import ConfigError
from gedge.core.preprocess import Preprocess
from gedge.runtime.artifacts import ModelInfo
from gedge.runtime.registry import kind_of, model_info, open_backend


@dataclass
class OpenedReference:
    """The torch reference and what its checkpoint says about scoring."""

    backend: Backend
    preprocess: Preprocess
    threshold: float
    model: dict[str, Any]  # the checkpoint's ModelConfig


def open_reference(checkpoint: str | Path, with_amap: bool = False) -> OpenedReference:
    """The checkpoint's fused scorer on torch (CPU), through the registry."""
    if kind_of(checkpoint) != "torch":
        raise ConfigError(f"{Path(checkpoint).name}: the reference is a gedge checkpoint (.pt)")
    info = model_info(checkpoint)
    backend = open_backend(checkpoint, "torch", with_amap=with_amap, info=info)
    model = info.details["checkpoint"].model.to_dict()
    return OpenedReference(backend, info.preprocess, info.threshold, model)


def open_candidate(path: str | Path, threads: int = 0, force: bool = False) -> Backend:
    """A deployed model file on its own backend, with the anomaly map where the file has one. The registry refuses
    an artifact whose recorded verdict failed unless ``force``."""
    return open_candidate_with_info(path, threads, force)[0]


def open_candidate_with_info(path: str | Path, threads: int = 0, force: bool = False) -> tuple[Backend, ModelInfo]:
    """:func:`open_candidate`, and what the file says about itself (with its verification)."""
    if kind_of(path) == "torch":
        raise ConfigError(f"{Path(path).name}: the candidate is a deployed model (.onnx, OpenVINO .xml or "
                          ".engine), not a checkpoint")
    info = model_info(path)
    return open_backend(path, threads=threads, with_amap=info.has_amap, info=info, force=force), info


def artifact_precision(info: BackendInfo) -> str:
    """The precision of the model file a backend runs (its limits), else what the backend computes in."""
    return info.artifact.precision if info.artifact and info.artifact.precision else info.precision

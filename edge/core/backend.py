"""The one interface every backend implements (torch reference, onnxruntime, OpenVINO, TensorRT), and what a
backend declares about itself (:class:`BackendInfo`) so that callers never probe its attributes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from gedge.core.inputs import InputSpec
from gedge.core.scores import Scores


@dataclass(frozen=True)
class ArtifactSummary:
    """The model file a backend runs, as its facts (sidecar, manifest or checkpoint) describe it."""

    path: str
    kind: str  # checkpoint, graph, ir, engine
    precision: str
    model: dict[str, Any] = field(default_factory=dict)  # the ModelConfig the networks were built with
    source_checkpoint: str = ""
    source_sha256: str = ""  # sha256 of the checkpoint the artifact was made from ("" for a checkpoint)
    verification: str = ""  # what was checked on load, and the recorded verdicts (gate, parity)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BackendInfo:
    """What an opened backend is and can do, declared by the backend itself."""

    kind: str  # the registry's name: torch, onnxruntime, openvino, tensorrt
    label: str  # for tables: e.g. "onnxruntime INT8 (cpu)"
    precision: str  # fp32, fp16, bf16 or int8: what it computes in
    device: str = "cpu"  # cpu, cuda, gpu
    flavour: str = ""  # an INT8 artifact's flavour (tensorrt, cpu, openvino); "" otherwise
    with_amap: bool = False  # it returns the anomaly map
    slots: int = 1  # batches it can hold in flight (> 1: it implements AsyncBackend)
    max_batch: int | None = None  # largest batch one call takes (an engine's profile); None: any
    device_memory_bytes: int | None = None  # device memory it holds (TensorRT: engine, contexts and bindings)
    device_memory: str = ""  # what device_memory_bytes counts, for tables (e.g. "GPU: engine + contexts + buffers")
    cuda_graphs: bool | None = None  # TensorRT: CUDA graphs in use; None where that does not apply
    artifact: ArtifactSummary | None = None
    notes: tuple[str, ...] = ()  # facts a report should show (FP16 emulated on the CPU, fewer slots than asked)
    runtime: str = ""  # the library that runs it and how: "OpenVINO 2025.1: latency, 1 stream(s), 2 threads"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Backend(Protocol):
    """Scores a uint8 NHWC batch; the same named outputs for the same input on every backend."""

    name: str
    input_spec: InputSpec
    info: BackendInfo

    def score(self, batch: np.ndarray) -> Scores: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncBackend(Backend, Protocol):
    """A backend with ``info.slots`` batches in flight: ``enqueue`` returns at once, ``collect`` waits."""

    def enqueue(self, slot: int, batch: np.ndarray) -> None: ...

    def collect(self, slot: int) -> Scores: ...


@runtime_checkable
class CudaGraphBackend(Backend, Protocol):
    """A GPU backend whose CUDA graphs can be switched between batches (its ``info.cuda_graphs`` is not None), and
    which times the stages of each batch it ran since ``reset_stats``."""

    def set_cuda_graphs(self, on: bool) -> None: ...

    def reset_stats(self) -> None: ...

    def stage_times_ms(self) -> dict[str, list[float]]: ...  # h2d, compute, d2h: one value per batch

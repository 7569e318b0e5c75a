"""The one interface every backend implements (torch reference, onnxruntime, OpenVINO, TensorRT, Triton), what a
backend declares about itself (:class:`BackendInfo`) so that callers never probe its attributes, and the base
(:class:`BackendBase`) that checks every batch against the backend's input contract once, before the backend's own
``score_impl`` runs (the pattern of Polygraphy's runners, whose ``infer`` checks the feed and calls ``infer_impl``)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol, runtime_checkable

import numpy as np
from gedge.core.artifacts.artifact import Artifact
from gedge.core.inputs import InputSpec
from gedge.core.scores import Scores


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
    artifact: Artifact | None = None  # the model file it runs, as gedge read it
    notes: tuple[str, ...] = ()  # facts a report should show (FP16 emulated on the CPU, fewer slots than asked)
    runtime: str = ""  # the library that runs it and how: "OpenVINO 2025.1: latency, 1 stream(s), 2 threads"

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(notes=list(self.notes), artifact=None if self.artifact is None else self.artifact.summary())
        return values


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


class BackendBase:
    """What every backend shares: :meth:`score` checks the batch against ``input_spec`` (shape and dtype: a one-line
    DataError) and then runs the backend's :meth:`score_impl` on it, so no backend checks its input itself."""

    name: str
    input_spec: InputSpec
    info: BackendInfo

    def score(self, batch: np.ndarray) -> Scores:
        self.input_spec.check(batch)
        return self.score_impl(batch)

    def score_impl(self, batch: np.ndarray) -> Scores:
        """Score a batch that matches ``input_spec``."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class AsyncBackendBase(BackendBase):
    """A backend with batches in flight (:class:`AsyncBackend`): :meth:`enqueue` checks the batch like
    :meth:`BackendBase.score` and hands it to the backend's :meth:`enqueue_impl`."""

    def enqueue(self, slot: int, batch: np.ndarray) -> None:
        self.input_spec.check(batch)
        self.enqueue_impl(slot, batch)

    def enqueue_impl(self, slot: int, batch: np.ndarray) -> None:
        raise NotImplementedError

    def collect(self, slot: int) -> Scores:
        raise NotImplementedError

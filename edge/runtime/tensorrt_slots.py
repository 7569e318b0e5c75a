"""The TensorRT backend's in-flight slots: what one slot holds, its release, and what is left allocated when its
stream cannot be synchronised.

A slot is one batch in flight: its own execution context (on its own optimisation profile), stream, pinned host
and device buffers and, with classic TensorRT, the CUDA graph of its current batch size. Its memory may be freed
only once its stream has been synchronised; a slot whose stream cannot be synchronised (a faulted context) may
still have copies or kernels queued on its buffers, so it is kept in :data:`LEAKED` instead, for the life of the
process, and the caller reports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gedge.runtime.cuda import CudaApi, CudaError, CudaGraph, DeviceBuffer, HostBuffer, StageTimes, Stream

# Slots whose stream could not be synchronised, with their engine and runtime (a context needs its engine):
# never freed, a leak that is reported rather than memory freed while work may use it.
LEAKED: list[Any] = []


@dataclass
class EngineSlot:
    """One in-flight batch: its own context, stream, bindings and CUDA graphs."""

    context: Any
    stream: Stream
    host_input: HostBuffer
    device_input: DeviceBuffer
    device_outputs: dict[str, DeviceBuffer]
    host_outputs: dict[str, HostBuffer]
    graph: CudaGraph | None = None  # captured at shape_batch (classic TensorRT); dropped when the shape changes
    shape_batch: int = 0  # the batch the context's input shape is set to
    index: int = 0  # the slot's number, and its optimisation profile
    pending: int = 0  # rows enqueued and not yet collected (padded batch)
    real: int = 0  # rows of those that are real inputs

    @property
    def buffers(self) -> list[HostBuffer | DeviceBuffer]:
        return [self.host_input, self.device_input, *self.device_outputs.values(), *self.host_outputs.values()]


class SlotBuffers:
    """A slot's pinned host and device buffers as they are allocated, so that a failure half-way frees them."""

    def __init__(self, api: CudaApi) -> None:
        self.api = api
        self.held: list[HostBuffer | DeviceBuffer] = []
        self.inputs: list[Any] = []
        self.device_outputs: dict[str, DeviceBuffer] = {}
        self.host_outputs: dict[str, HostBuffer] = {}

    def _new(self, kind: type, shape: tuple[int, ...], dtype: Any) -> Any:
        self.held.append(kind(self.api, shape, dtype))
        return self.held[-1]

    def add_input(self, shape: tuple[int, ...], dtype: Any) -> None:
        self.inputs = [self._new(HostBuffer, shape, dtype), self._new(DeviceBuffer, shape, dtype)]

    def add_output(self, name: str, shape: tuple[int, ...], dtype: Any, copied: bool) -> None:
        self.device_outputs[name] = self._new(DeviceBuffer, shape, dtype)
        if copied:
            self.host_outputs[name] = self._new(HostBuffer, shape, dtype)

    def slot(self, context: Any, stream: Stream, index: int, batch: int) -> EngineSlot:
        return EngineSlot(context, stream, *self.inputs, self.device_outputs, self.host_outputs, shape_batch=batch,
                          index=index)

    def free(self) -> None:
        for buffer in self.held:
            buffer.free()


@dataclass
class TensorRTStats:
    """What the backend measured since the last reset: stage times per collected batch, graph use."""

    stages: list[StageTimes] = field(default_factory=list)
    graph_launches: int = 0
    plain_launches: int = 0
    captures: int = 0


def release(slots: list[EngineSlot], keep: tuple[Any, ...]) -> str:
    """Synchronise each slot's stream, then destroy its graph, context and stream and free its buffers. Slots
    whose stream cannot be synchronised are kept in :data:`LEAKED` with ``keep`` (their engine and runtime);
    returns the one-line report of those ("" when every slot was released)."""
    leaked: list[tuple[EngineSlot, CudaError]] = []
    for slot in slots:
        try:
            slot.stream.synchronize()
        except CudaError as exc:
            leaked.append((slot, exc))
            continue
        if slot.graph is not None:
            slot.graph.destroy()
            slot.graph = None
        slot.context = None
        slot.stream.destroy()
        for buffer in slot.buffers:
            buffer.free()
    if not leaked:
        return ""
    LEAKED.append((*keep, [slot for slot, _ in leaked]))
    nbytes = sum(buffer.nbytes for slot, _ in leaked for buffer in slot.buffers)
    return (f"the stream of slot(s) {', '.join(str(s.index) for s, _ in leaked)} could not be synchronised "
            f"({leaked[0][1].problem}); their execution contexts and {nbytes} bytes of buffers are left allocated, "
            "not freed under work that may still use them")

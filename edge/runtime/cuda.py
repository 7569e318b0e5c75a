"""CUDA host and device memory, streams, events and graphs in a few explicit calls.

What the TensorRT backend (and ``gedge gpu-check`` on a GPU without TensorRT) needs and no more:

* pinned (page-locked) host buffers with a numpy view, so host-to-device copies are truly asynchronous;
* device buffers;
* streams, events (per-stage timing) and CUDA graphs (stream capture, instantiate, replay).

They are built on :class:`gedge.runtime.cuda_api.CudaApi` (cuda-python or pycuda, loaded by
:func:`gedge.runtime.cuda_api.load_cuda`, which this module re-exports).
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gedge.runtime.cuda_api import APIS, CudaApi, CudaError, CudaPython, PyCuda, load_cuda

__all__ = ["APIS", "CudaApi", "CudaError", "CudaGraph", "CudaPython", "DeviceBuffer", "HostBuffer", "PyCuda",
           "StageTimes", "Stream", "load_cuda", "self_test"]


class HostBuffer:
    """Pinned host memory with a numpy view (``array``) of ``shape`` and ``dtype``."""

    def __init__(self, api: CudaApi, shape: tuple[int, ...], dtype: Any) -> None:
        self.api = api
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.ptr = api.malloc_host(max(1, self.nbytes))
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * max(1, self.nbytes)).from_address(self.ptr))
        self.array = raw[: self.nbytes].view(self.dtype).reshape(self.shape)

    def view(self, count: int) -> np.ndarray:
        """The first ``count`` rows (batch items)."""
        return self.array[:count]

    def free(self) -> None:
        if self.ptr:
            self.array = None  # type: ignore[assignment]
            self.api.free_host(self.ptr)
            self.ptr = 0


class DeviceBuffer:
    """Device memory for ``shape`` and ``dtype`` (``ptr`` is what TensorRT's set_tensor_address takes)."""

    def __init__(self, api: CudaApi, shape: tuple[int, ...], dtype: Any) -> None:
        self.api = api
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.nbytes = self.row_bytes * self.shape[0]
        self.ptr = api.malloc(max(1, self.nbytes))

    def free(self) -> None:
        if self.ptr:
            self.api.free(self.ptr)
            self.ptr = 0


@dataclass
class StageTimes:
    """Milliseconds of one enqueue, from CUDA events: host to device, compute, device to host."""

    h2d: float = 0.0
    compute: float = 0.0
    d2h: float = 0.0

    @property
    def total(self) -> float:
        return self.h2d + self.compute + self.d2h


class Stream:
    """A non-blocking stream with four events that split an enqueue into its stages."""

    def __init__(self, api: CudaApi) -> None:
        self.api = api
        self.handle = api.stream_create()
        self.events = [api.event_create() for _ in range(4)]

    @property
    def ptr(self) -> int:
        return self.api.stream_handle(self.handle)

    def mark(self, stage: int) -> None:
        """Record event ``stage`` (0: start, 1: after H2D, 2: after compute, 3: after D2H)."""
        self.api.event_record(self.events[stage], self.handle)

    def synchronize(self) -> None:
        self.api.stream_sync(self.handle)

    def stage_times(self) -> StageTimes:
        """The stage times of the last enqueue (call after :meth:`synchronize`)."""
        e = self.events
        return StageTimes(self.api.event_elapsed_ms(e[0], e[1]), self.api.event_elapsed_ms(e[1], e[2]),
                          self.api.event_elapsed_ms(e[2], e[3]))

    def destroy(self) -> None:
        if self.handle is None:
            return
        for event in self.events:
            self.api.event_destroy(event)
        self.api.stream_destroy(self.handle)
        self.events, self.handle = [], None


@dataclass
class CudaGraph:
    """A captured and instantiated CUDA graph, replayed on a stream."""

    api: CudaApi
    graph: Any
    exec: Any
    launches: int = field(default=0)

    @classmethod
    def capture(cls, api: CudaApi, stream: Stream, work: Callable[[], None]) -> CudaGraph:
        """Capture what ``work()`` enqueues on ``stream`` (nothing runs during capture) and instantiate it."""
        if not api.supports_graphs:
            raise CudaError(f"{api.name} has no CUDA graph support here; install cuda-python")
        api.begin_capture(stream.handle)
        try:
            work()
        except BaseException:
            try:
                graph = api.end_capture(stream.handle)
                api.graph_destroy(graph, None)
            except CudaError:
                pass
            raise
        graph = api.end_capture(stream.handle)
        try:
            graph_exec = api.instantiate(graph)
        except CudaError:
            api.graph_destroy(graph, None)
            raise
        return cls(api, graph, graph_exec)

    def launch(self, stream: Stream) -> None:
        self.api.launch(self.exec, stream.handle)
        self.launches += 1

    def destroy(self) -> None:
        if self.exec is not None or self.graph is not None:
            self.api.graph_destroy(self.graph, self.exec)
            self.graph = self.exec = None


def self_test(api: CudaApi | None = None, nbytes: int = 1 << 20, replays: int = 20) -> dict[str, Any]:
    """Buffers, streams, events and a captured graph on the GPU, without TensorRT (``make gpu-check``).

    Pinned host -> device -> (device copy, captured once and replayed) -> pinned host; checks the bytes
    come back and times the copies. Returns the facts for the report; raises CudaError on any failure.
    """
    api = api or load_cuda()
    rng = np.random.default_rng(0)
    src = HostBuffer(api, (nbytes,), np.uint8)
    dst = HostBuffer(api, (nbytes,), np.uint8)
    a = DeviceBuffer(api, (1, nbytes), np.uint8)
    b = DeviceBuffer(api, (1, nbytes), np.uint8)
    stream = Stream(api)
    graph = None
    try:
        src.array[:] = rng.integers(0, 256, nbytes, dtype=np.uint8)
        stream.mark(0)
        api.h2d(a.ptr, src.ptr, nbytes, stream.handle)
        stream.mark(1)
        api.d2d(b.ptr, a.ptr, nbytes, stream.handle)
        stream.mark(2)
        api.d2h(dst.ptr, b.ptr, nbytes, stream.handle)
        stream.mark(3)
        stream.synchronize()
        plain_ok = bool(np.array_equal(src.array, dst.array))
        times = stream.stage_times()
        facts: dict[str, Any] = {"api": api.name, "version": api.version, "bytes": nbytes, "copy_ok": plain_ok,
                                 "h2d_ms": times.h2d, "d2d_ms": times.compute, "d2h_ms": times.d2h,
                                 "h2d_gbps": nbytes / max(times.h2d, 1e-6) / 1e6}
        if api.supports_graphs:
            dst.array[:] = 0
            graph = CudaGraph.capture(api, stream, lambda: api.d2d(b.ptr, a.ptr, nbytes, stream.handle))
            src.array[:] = rng.integers(0, 256, nbytes, dtype=np.uint8)
            started = time.perf_counter()
            for _ in range(replays):
                api.h2d(a.ptr, src.ptr, nbytes, stream.handle)
                graph.launch(stream)
                api.d2h(dst.ptr, b.ptr, nbytes, stream.handle)
            stream.synchronize()
            facts["graph_ok"] = bool(np.array_equal(src.array, dst.array))
            facts["graph_replays"] = graph.launches
            facts["graph_loop_ms"] = (time.perf_counter() - started) * 1e3 / replays
        else:
            facts["graph_ok"] = None
            facts["graph_note"] = f"{api.name}: no CUDA graphs"
        return facts
    finally:
        if graph is not None:
            graph.destroy()
        stream.destroy()
        for buffer in (src, dst, a, b):
            buffer.free()

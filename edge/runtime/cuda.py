"""CUDA host and device memory, streams, events and graphs in a few explicit calls.

What the TensorRT backend (and ``bench/gpu_check.py`` on a GPU without TensorRT) needs and no more:

* pinned (page-locked) host buffers with a numpy view, so host-to-device copies are truly asynchronous;
* device buffers;
* streams, events (per-stage timing) and CUDA graphs (stream capture, instantiate, replay).

Two implementations of one small interface, :class:`CudaApi`: NVIDIA's ``cuda-python``
(``cuda.bindings.runtime``, or ``cuda.cudart`` in older releases), which is what TensorRT's own samples use,
and ``pycuda`` where that is what is installed (pycuda has no CUDA graphs here: graph capture reports that it
is unavailable and the backend runs without it). Nothing is imported until :func:`load_cuda` is called, so
the CPU-only parts of gedge never need either.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gedge.core.errors import ConfigError, RuntimeFailure

APIS = ("cuda-python", "pycuda")


class CudaError(RuntimeFailure):
    """A CUDA call failed (out of memory, an invalid handle, a failed capture)."""


def _import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python 12.6+
    except ImportError:
        from cuda import cudart  # type: ignore[no-redef]  # older cuda-python
    return cudart


class CudaApi:
    """The calls gedge makes into CUDA. Pointers are ints; streams, events and graphs are opaque handles."""

    name = ""
    version = ""
    supports_graphs = False

    # device
    def device_count(self) -> int: raise NotImplementedError
    def mem_get_info(self) -> tuple[int, int]: raise NotImplementedError
    # memory
    def malloc_host(self, nbytes: int) -> int: raise NotImplementedError
    def free_host(self, ptr: int) -> None: raise NotImplementedError
    def malloc(self, nbytes: int) -> int: raise NotImplementedError
    def free(self, ptr: int) -> None: raise NotImplementedError
    def h2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None: raise NotImplementedError
    def d2h(self, dst: int, src: int, nbytes: int, stream: Any) -> None: raise NotImplementedError
    def d2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None: raise NotImplementedError
    # streams and events
    def stream_create(self) -> Any: raise NotImplementedError
    def stream_handle(self, stream: Any) -> int: raise NotImplementedError
    def stream_sync(self, stream: Any) -> None: raise NotImplementedError
    def stream_destroy(self, stream: Any) -> None: raise NotImplementedError
    def event_create(self) -> Any: raise NotImplementedError
    def event_record(self, event: Any, stream: Any) -> None: raise NotImplementedError
    def event_sync(self, event: Any) -> None: raise NotImplementedError
    def event_elapsed_ms(self, start: Any, end: Any) -> float: raise NotImplementedError
    def event_destroy(self, event: Any) -> None: raise NotImplementedError
    # graphs
    def begin_capture(self, stream: Any) -> None: raise CudaError(f"{self.name}: no CUDA graph support")
    def end_capture(self, stream: Any) -> Any: raise CudaError(f"{self.name}: no CUDA graph support")
    def instantiate(self, graph: Any) -> Any: raise CudaError(f"{self.name}: no CUDA graph support")
    def launch(self, graph_exec: Any, stream: Any) -> None: raise CudaError(f"{self.name}: no CUDA graph support")
    def graph_destroy(self, graph: Any, graph_exec: Any) -> None: pass


class CudaPython(CudaApi):
    """``cuda-python``'s runtime bindings: every call returns ``(error, *values)``."""

    name = "cuda-python"
    supports_graphs = True

    def __init__(self, cudart: Any) -> None:
        self.rt = cudart
        self.success = cudart.cudaError_t.cudaSuccess
        kinds = cudart.cudaMemcpyKind
        self.kind_h2d, self.kind_d2h = kinds.cudaMemcpyHostToDevice, kinds.cudaMemcpyDeviceToHost
        self.kind_d2d = kinds.cudaMemcpyDeviceToDevice
        try:
            from cuda import bindings

            self.version = str(getattr(bindings, "__version__", ""))
        except ImportError:
            self.version = ""
        if not self.version:
            import cuda

            self.version = str(getattr(cuda, "__version__", "unknown"))

    def call(self, what: str, result: Any) -> Any:
        values = result if isinstance(result, tuple) else (result,)
        err, rest = values[0], values[1:]
        if err != self.success:
            _, text = self.rt.cudaGetErrorString(err)
            message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
            raise CudaError(f"{what} failed: {getattr(err, 'name', err)} ({message})")
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else rest

    def device_count(self) -> int:
        return int(self.call("cudaGetDeviceCount", self.rt.cudaGetDeviceCount()))

    def mem_get_info(self) -> tuple[int, int]:
        free, total = self.call("cudaMemGetInfo", self.rt.cudaMemGetInfo())
        return int(free), int(total)

    def malloc_host(self, nbytes: int) -> int:
        return int(self.call("cudaMallocHost", self.rt.cudaMallocHost(nbytes)))

    def free_host(self, ptr: int) -> None:
        self.call("cudaFreeHost", self.rt.cudaFreeHost(ptr))

    def malloc(self, nbytes: int) -> int:
        return int(self.call("cudaMalloc", self.rt.cudaMalloc(nbytes)))

    def free(self, ptr: int) -> None:
        self.call("cudaFree", self.rt.cudaFree(ptr))

    def h2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        self.call("cudaMemcpyAsync H2D", self.rt.cudaMemcpyAsync(dst, src, nbytes, self.kind_h2d, stream))

    def d2h(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        self.call("cudaMemcpyAsync D2H", self.rt.cudaMemcpyAsync(dst, src, nbytes, self.kind_d2h, stream))

    def d2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        self.call("cudaMemcpyAsync D2D", self.rt.cudaMemcpyAsync(dst, src, nbytes, self.kind_d2d, stream))

    def stream_create(self) -> Any:
        flags = self.rt.cudaStreamNonBlocking
        return self.call("cudaStreamCreateWithFlags", self.rt.cudaStreamCreateWithFlags(flags))

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def stream_sync(self, stream: Any) -> None:
        self.call("cudaStreamSynchronize", self.rt.cudaStreamSynchronize(stream))

    def stream_destroy(self, stream: Any) -> None:
        self.call("cudaStreamDestroy", self.rt.cudaStreamDestroy(stream))

    def event_create(self) -> Any:
        return self.call("cudaEventCreate", self.rt.cudaEventCreate())

    def event_record(self, event: Any, stream: Any) -> None:
        self.call("cudaEventRecord", self.rt.cudaEventRecord(event, stream))

    def event_sync(self, event: Any) -> None:
        self.call("cudaEventSynchronize", self.rt.cudaEventSynchronize(event))

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self.call("cudaEventElapsedTime", self.rt.cudaEventElapsedTime(start, end)))

    def event_destroy(self, event: Any) -> None:
        self.call("cudaEventDestroy", self.rt.cudaEventDestroy(event))

    def begin_capture(self, stream: Any) -> None:
        # Thread-local: CUDA calls of other threads (decoding, another slot) do not invalidate the capture.
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self.call("cudaStreamBeginCapture", self.rt.cudaStreamBeginCapture(stream, mode))

    def end_capture(self, stream: Any) -> Any:
        return self.call("cudaStreamEndCapture", self.rt.cudaStreamEndCapture(stream))

    def instantiate(self, graph: Any) -> Any:
        try:  # CUDA 12+: (graph, flags)
            result = self.rt.cudaGraphInstantiate(graph, 0)
        except TypeError:  # CUDA 11 bindings: (graph, error node buffer, size)
            result = self.rt.cudaGraphInstantiate(graph, b"", 0)
        value = self.call("cudaGraphInstantiate", result)
        return value[0] if isinstance(value, tuple) else value

    def launch(self, graph_exec: Any, stream: Any) -> None:
        self.call("cudaGraphLaunch", self.rt.cudaGraphLaunch(graph_exec, stream))

    def graph_destroy(self, graph: Any, graph_exec: Any) -> None:
        if graph_exec is not None:
            self.call("cudaGraphExecDestroy", self.rt.cudaGraphExecDestroy(graph_exec))
        if graph is not None:
            self.call("cudaGraphDestroy", self.rt.cudaGraphDestroy(graph))


class PyCuda(CudaApi):
    """pycuda, on the device's primary context (the one the CUDA runtime and TensorRT use). No graphs."""

    name = "pycuda"
    supports_graphs = False

    def __init__(self, device: int = 0) -> None:
        import pycuda
        import pycuda.driver as drv

        drv.init()
        if drv.Device.count() <= device:
            raise ConfigError(f"pycuda sees {drv.Device.count()} GPU(s); there is no GPU {device}")
        self.drv = drv
        self.context = drv.Device(device).retain_primary_context()
        self.context.push()
        self.version = str(getattr(pycuda, "VERSION_TEXT", "unknown"))
        self._host: dict[int, Any] = {}
        self._device: dict[int, Any] = {}

    def device_count(self) -> int:
        return int(self.drv.Device.count())

    def mem_get_info(self) -> tuple[int, int]:
        free, total = self.drv.mem_get_info()
        return int(free), int(total)

    def malloc_host(self, nbytes: int) -> int:
        array = self.drv.pagelocked_empty(max(1, nbytes), np.uint8)
        ptr = int(array.ctypes.data)
        self._host[ptr] = array
        return ptr

    def free_host(self, ptr: int) -> None:
        array = self._host.pop(ptr, None)
        if array is not None and hasattr(array, "base") and hasattr(array.base, "free"):
            array.base.free()

    def malloc(self, nbytes: int) -> int:
        allocation = self.drv.mem_alloc(max(1, nbytes))
        ptr = int(allocation)
        self._device[ptr] = allocation
        return ptr

    def free(self, ptr: int) -> None:
        allocation = self._device.pop(ptr, None)
        if allocation is not None:
            allocation.free()

    def _host_view(self, ptr: int, nbytes: int) -> np.ndarray:
        return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))

    def h2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        self.drv.memcpy_htod_async(dst, self._host_view(src, nbytes), stream)

    def d2h(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        self.drv.memcpy_dtoh_async(self._host_view(dst, nbytes), src, stream)

    def d2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        self.drv.memcpy_dtod_async(dst, src, nbytes, stream)

    def stream_create(self) -> Any:
        return self.drv.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_sync(self, stream: Any) -> None:
        stream.synchronize()

    def stream_destroy(self, stream: Any) -> None:
        pass  # freed with the object

    def event_create(self) -> Any:
        return self.drv.Event()

    def event_record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def event_sync(self, event: Any) -> None:
        event.synchronize()

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        return float(end.time_since(start))

    def event_destroy(self, event: Any) -> None:
        pass


_LOADED: dict[str, CudaApi] = {}


def load_cuda(prefer: str | None = None, device: int = 0) -> CudaApi:
    """cuda-python if importable (preferred), else pycuda; ConfigError naming what is missing and how to get it."""
    if prefer not in (None, *APIS):
        raise ConfigError(f"CUDA API must be one of {', '.join(APIS)}, got {prefer!r}")
    key = f"{prefer}:{device}"
    if key in _LOADED:
        return _LOADED[key]
    reasons = []
    for name in [prefer] if prefer else list(APIS):
        try:
            if name == "cuda-python":
                api: CudaApi = CudaPython(_import_cudart())
                count = api.device_count()
                if count <= device:
                    raise ConfigError(f"CUDA sees {count} GPU(s); there is no GPU {device}")
                api.call("cudaSetDevice", api.rt.cudaSetDevice(device))  # type: ignore[attr-defined]
            else:
                api = PyCuda(device)
        except ImportError as exc:
            reasons.append(f"{name}: not installed ({exc.__class__.__name__}: {exc})")
            continue
        except (CudaError, ConfigError) as exc:
            reasons.append(f"{name}: {exc}")
            continue
        except Exception as exc:  # a missing libcuda surfaces as OSError or the API's own error types
            reasons.append(f"{name}: {exc.__class__.__name__}: {str(exc).strip()[:160]}")
            continue
        _LOADED[key] = api
        return api
    raise ConfigError("no usable CUDA (" + "; ".join(reasons) + "); on a GPU machine: pip install cuda-python")


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
    def capture(cls, api: CudaApi, stream: Stream, work) -> CudaGraph:
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
    import time

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

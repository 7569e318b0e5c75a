"""The CUDA calls gedge makes, behind one small interface (:class:`CudaApi`), in two implementations.

NVIDIA's ``cuda-python`` (``cuda.bindings.runtime``, or ``cuda.cudart`` in older releases), which is what
TensorRT's own samples use, and ``pycuda`` where that is what is installed (pycuda has no CUDA graphs here:
graph capture reports that it is unavailable and the TensorRT backend runs without it). Neither is imported
until :func:`load_cuda` is called, so the CPU-only parts of gedge never need them. Buffers, streams, events
and graphs built on this interface are in :mod:`gedge.runtime.cuda`.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from gedge.core.errors import ConfigError, RuntimeFailure, first_line
from gedge.core.machine import cuda_runtime_module
from gedge.core.optional import available, require

APIS = ("cuda-python", "pycuda")


class CudaError(RuntimeFailure):
    """A CUDA call failed (out of memory, an invalid handle, a failed capture)."""


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


def _cuda_python_version() -> str:
    """cuda-python's version: ``cuda.bindings.__version__`` (12.6+), else ``cuda.__version__``."""
    if available("cuda.bindings"):
        version = str(getattr(require("cuda.bindings"), "__version__", ""))
        if version:
            return version
    return str(getattr(require("cuda", "CUDA"), "__version__", "unknown"))


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
        self.version = _cuda_python_version()

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
        pycuda = require("pycuda", "CUDA through pycuda")
        drv = require("pycuda.driver", "CUDA through pycuda")
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
                api: CudaApi = CudaPython(cuda_runtime_module())
                count = api.device_count()
                if count <= device:
                    raise ConfigError(f"CUDA sees {count} GPU(s); there is no GPU {device}")
                api.call("cudaSetDevice", api.rt.cudaSetDevice(device))  # type: ignore[attr-defined]
            else:
                api = PyCuda(device)
        except (CudaError, ConfigError) as exc:
            reasons.append(f"{name}: {exc}")
            continue
        except Exception as exc:  # a missing libcuda surfaces as OSError or the API's own error types
            reasons.append(f"{name}: {first_line(exc, named=True)}")
            continue
        _LOADED[key] = api
        return api
    raise ConfigError("no usable CUDA (" + "; ".join(reasons) + "); on a GPU machine: pip install cuda-python")

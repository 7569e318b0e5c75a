"""Stand-ins for CUDA and TensorRT's runtime on the CPU, strict where the real ones are asynchronous.

They stand in for the hardware only: the backend under test makes the same calls in the same order as on a GPU,
and the stand-ins run the work when, and only when, CUDA would guarantee it has run.

:class:`CudaStandIn` (a :class:`gedge.runtime.cuda_api.CudaApi`):

* memory: pinned host and device allocations are host memory, 256-byte aligned like ``cudaMalloc``'s and filled
  with 0xFF (NaN as float32: uninitialised memory holds anything). A copy must stay inside one allocation of
  the right kind (H2D: host to device...), or it fails at once with ``cudaErrorInvalidValue``.
* streams are queues. A copy, a kernel or an event record enqueued on a stream runs only when that stream is
  synchronised, or when an event recorded on it after that work is waited for. Nothing else runs it: work
  enqueued on another stream than the one synchronised (or on the legacy default stream, 0, which nothing here
  synchronises) stays undone and the host reads stale data; a pinned input overwritten before its copy ran is
  copied as it is then.
* events carry the device clock: each operation advances it by its cost (:data:`COST`), so stage times are
  exact; the elapsed time between events that have not completed is ``cudaErrorNotReady``, as in CUDA.
* capture: work enqueued on a capturing stream is recorded, not run; synchronising a capturing stream
  invalidates the capture (``cudaErrorStreamCaptureUnsupported``), and ending it then fails; a launched graph
  enqueues its recorded work in order.
* failures on demand (:meth:`CudaStandIn.fail`): a call fails once or a few times, or with a sticky error
  (a faulted context) that fails every later device call and leaves queued work undone.
* misuse is recorded in ``violations``: freeing memory that queued work still uses (the memory is then kept,
  so nothing runs on freed memory), a double or unknown free, a copy out of bounds or of the wrong kind, work on
  a destroyed stream.

:func:`standin_tensorrt` is TensorRT's runtime for a small scorer engine on that CUDA: contexts, shapes, tensor
addresses and ``execute_async_v3``, which enqueues the scorer on the stream it is given and returns bools
where TensorRT does (logging the reason through the runtime's logger, as TensorRT does).
"""

from __future__ import annotations

import bisect
import ctypes
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gedge.core.scores import OUTPUT_NAMES
from gedge.runtime.cuda import CudaApi, CudaError

ALIGN = 256
FILL = 0xFF
COST = {"h2d": 1.0, "d2h": 0.5, "d2d": 1.0, "kernel": 2.0, "event": 0.0, "profile": 0.0}


@dataclass(eq=False)
class Op:
    run: Callable[[], None]
    cost: float
    uses: tuple[int, ...]  # the allocations it reads or writes
    label: str


@dataclass
class StreamQ:
    number: int
    queue: deque = field(default_factory=deque)
    capture: list | None = None
    capture_broken: str = ""
    destroyed: bool = False


@dataclass
class Event:
    stream: StreamQ | None = None
    op: Op | None = None
    time: float | None = None


@dataclass
class Graph:
    ops: list[Op]


@dataclass
class GraphExec:
    ops: list[Op]
    destroyed: bool = False


class CudaStandIn(CudaApi):
    """CUDA on the host with per-stream queues (see the module's docstring)."""

    name = "cuda-stand-in"
    version = "0"
    supports_graphs = True

    def __init__(self) -> None:
        self.allocations: dict[int, tuple[ctypes.Array, int, str]] = {}  # ptr -> (buffer, bytes, host/device)
        self._bases: list[int] = []
        self.streams: list[StreamQ] = []
        self.default_stream = StreamQ(0)
        self.clock = 0.0
        self.counts: Counter = Counter()
        self.violations: list[str] = []
        self.kept: set[int] = set()  # pointers freed while in use: kept, never reused
        self.sticky = ""
        self._failures: dict[str, list[tuple[str, bool]]] = {}

    # --- failures and misuse ----------------------------------------------------------------------------

    def fail(self, call: str, error: str = "cudaErrorInvalidValue", times: int = 1, sticky: bool = False,
             after: int = 0) -> None:
        """After ``after`` more calls of ``call`` (h2d, d2h, stream_sync, end_capture, launch...) succeed, the next
        ``times`` fail with ``error``; a sticky error then fails every later device call."""
        self._failures.setdefault(call, []).extend([None] * after + [(error, sticky)] * times)

    def _device_call(self, call: str) -> None:
        if self.sticky:
            raise CudaError(f"{call} failed: {self.sticky}")
        queued = self._failures.get(call)
        failure = queued.pop(0) if queued else None
        if failure is not None:
            error, sticky = failure
            if sticky:
                self.sticky = error
            raise CudaError(f"{call} failed: {error}")

    def _misuse(self, call: str, text: str) -> CudaError:
        self.violations.append(f"{call}: {text}")
        return CudaError(f"{call} failed: cudaErrorInvalidValue ({text})")

    # --- memory -----------------------------------------------------------------------------------------

    def _alloc(self, nbytes: int, kind: str) -> int:
        self._device_call(f"malloc_{kind}")
        buffer = ctypes.create_string_buffer(nbytes + ALIGN)
        ptr = (ctypes.addressof(buffer) + ALIGN - 1) // ALIGN * ALIGN
        ctypes.memset(ptr, FILL, nbytes)
        self.allocations[ptr] = (buffer, nbytes, kind)
        bisect.insort(self._bases, ptr)
        self.counts[kind] += 1
        return ptr

    def _allocation(self, call: str, ptr: int, nbytes: int, kind: str) -> int:
        """The allocation that holds [ptr, ptr + nbytes), of ``kind``; a misuse otherwise."""
        i = bisect.bisect_right(self._bases, ptr) - 1
        base = self._bases[i] if i >= 0 else None
        if base is None or ptr + nbytes > base + self.allocations[base][1]:
            raise self._misuse(call, f"{nbytes} bytes at {ptr:#x} are not inside one allocation")
        if self.allocations[base][2] != kind:
            raise self._misuse(call, f"{ptr:#x} is {self.allocations[base][2]} memory, {kind} expected")
        return base

    def in_use(self, ptr: int) -> bool:
        """Whether work queued on any stream (destroyed ones too: CUDA finishes it) uses the allocation."""
        return any(ptr in op.uses for stream in [*self.streams, self.default_stream] for op in stream.queue)

    def queued(self) -> int:
        return sum(len(s.queue) for s in [*self.streams, self.default_stream])

    def _free(self, ptr: int, kind: str) -> None:
        if ptr in self.kept:
            self.violations.append(f"free_{kind}: {ptr:#x} freed twice")
            return
        if ptr not in self.allocations or self.allocations[ptr][2] != kind:
            self.violations.append(f"free_{kind}: {ptr:#x} is not a {kind} allocation")
            return
        if self.in_use(ptr):
            self.violations.append(f"free_{kind}: {ptr:#x} freed while queued work uses it")
            self.kept.add(ptr)
            return
        del self.allocations[ptr]
        self._bases.remove(ptr)

    def malloc_host(self, nbytes: int) -> int:
        return self._alloc(nbytes, "host")

    def malloc(self, nbytes: int) -> int:
        return self._alloc(nbytes, "device")

    def free_host(self, ptr: int) -> None:
        self._free(ptr, "host")

    def free(self, ptr: int) -> None:
        self._free(ptr, "device")

    def live(self) -> dict[str, int]:
        """Allocations not freed, by kind (those kept after a free in use included)."""
        return dict(Counter(kind for _, _, kind in self.allocations.values()))

    def device_view(self, ptr: int, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
        """Device memory as an array, for a kernel (checked like a copy)."""
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        self._allocation("kernel", ptr, nbytes, "device")
        return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr)).view(dtype).reshape(shape)

    # --- streams and work -------------------------------------------------------------------------------

    def stream_create(self) -> StreamQ:
        self._device_call("stream_create")
        stream = StreamQ(0x5000 + 16 * len(self.streams))
        self.streams.append(stream)
        self.counts["streams"] += 1
        return stream

    def stream_handle(self, stream: StreamQ) -> int:
        return stream.number

    def stream_of(self, number: int) -> StreamQ | None:
        """The stream a raw handle (what TensorRT is given) names; 0 is the legacy default stream."""
        if number == 0:
            return self.default_stream
        return next((s for s in self.streams if s.number == number and not s.destroyed), None)

    def stream_destroy(self, stream: StreamQ) -> None:
        stream.destroyed = True  # CUDA finishes queued work after the destroy: it stays queued here
        self.counts["streams"] -= 1

    def enqueue(self, stream: StreamQ, run: Callable[[], None], label: str, uses: tuple[int, ...] = ()) -> Op:
        if stream.destroyed:
            raise self._misuse(label, f"stream {stream.number:#x} was destroyed")
        op = Op(run, COST.get(label, COST["kernel"]), uses, label)
        (stream.capture if stream.capture is not None else stream.queue).append(op)
        return op

    def _drain(self, stream: StreamQ, until: Op | None = None) -> None:
        while stream.queue and (until is None or any(op is until for op in stream.queue)):
            op = stream.queue.popleft()
            self.clock += op.cost
            try:
                op.run()
            except Exception as exc:  # a kernel's fault surfaces at the next synchronisation, and sticks
                self.sticky = f"cudaErrorIllegalAddress ({op.label}: {exc})"
                self.violations.append(self.sticky)
                raise CudaError(f"work on stream {stream.number:#x} failed: {self.sticky}") from None

    def stream_sync(self, stream: StreamQ) -> None:
        self._device_call("stream_sync")
        if stream.capture is not None:
            stream.capture_broken = "cudaStreamSynchronize during capture"
            raise CudaError("stream_sync failed: cudaErrorStreamCaptureUnsupported")
        self._drain(stream)

    def _copy(self, call: str, dst: int, src: int, nbytes: int, stream: StreamQ, kinds: tuple[str, str]) -> None:
        self._device_call(call)
        uses = (self._allocation(call, dst, nbytes, kinds[0]), self._allocation(call, src, nbytes, kinds[1]))
        self.counts[call] += 1
        self.enqueue(stream, lambda: ctypes.memmove(dst, src, nbytes), call, uses)

    def h2d(self, dst: int, src: int, nbytes: int, stream: StreamQ) -> None:
        self._copy("h2d", dst, src, nbytes, stream, ("device", "host"))

    def d2h(self, dst: int, src: int, nbytes: int, stream: StreamQ) -> None:
        self._copy("d2h", dst, src, nbytes, stream, ("host", "device"))

    def d2d(self, dst: int, src: int, nbytes: int, stream: StreamQ) -> None:
        self._copy("d2d", dst, src, nbytes, stream, ("device", "device"))

    # --- events -----------------------------------------------------------------------------------------

    def event_create(self) -> Event:
        return Event()

    def event_record(self, event: Event, stream: StreamQ) -> None:
        self._device_call("event_record")
        event.stream, event.time = stream, None

        def stamp() -> None:
            event.time = self.clock

        event.op = self.enqueue(stream, stamp, "event")

    def event_sync(self, event: Event) -> None:
        self._device_call("event_sync")
        if event.stream is not None:
            self._drain(event.stream, until=event.op)

    def event_elapsed_ms(self, start: Event, end: Event) -> float:
        self._device_call("event_elapsed_ms")
        if start.stream is None or end.stream is None:
            raise CudaError("event_elapsed_ms failed: cudaErrorInvalidResourceHandle (an event never recorded)")
        if start.time is None or end.time is None:
            raise CudaError("event_elapsed_ms failed: cudaErrorNotReady (an event has not completed)")
        return end.time - start.time

    def event_destroy(self, event: Event) -> None:
        pass

    # --- graphs -----------------------------------------------------------------------------------------

    def begin_capture(self, stream: StreamQ) -> None:
        self._device_call("begin_capture")
        stream.capture, stream.capture_broken = [], ""

    def end_capture(self, stream: StreamQ) -> Graph:
        ops, broken = stream.capture, stream.capture_broken
        stream.capture, stream.capture_broken = None, ""
        self._device_call("end_capture")
        if ops is None or broken:
            raise CudaError(f"end_capture failed: cudaErrorStreamCaptureInvalidated ({broken or 'not capturing'})")
        return Graph(ops)

    def instantiate(self, graph: Graph) -> GraphExec:
        self._device_call("instantiate")
        self.counts["graphs"] += 1
        return GraphExec(list(graph.ops))

    def launch(self, graph_exec: GraphExec, stream: StreamQ) -> None:
        self._device_call("launch")
        if graph_exec.destroyed:
            raise self._misuse("launch", "the graph was destroyed")
        self.counts["launches"] += 1
        for op in graph_exec.ops:
            self.enqueue(stream, op.run, op.label, op.uses)

    def graph_destroy(self, graph: Any, graph_exec: GraphExec | None) -> None:
        if graph_exec is not None:
            graph_exec.destroyed = True
            self.counts["graphs"] -= 1

    def device_count(self) -> int:
        return 1

    def mem_get_info(self) -> tuple[int, int]:
        return 1 << 30, 1 << 30


# --- TensorRT's runtime, for a scorer engine on 4x4 RGB inputs --------------------------------------------

SIZE = 4
ROW = (SIZE, SIZE, 3)
TENSORS = ["pixels", *OUTPUT_NAMES, "amap"]


def scorer_outputs(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """What the stand-in engine computes: output i is the mean pixel value + i; amap the mean over channels."""
    values = pixels.astype(np.float32)
    mean = values.reshape(len(values), -1).mean(axis=1)
    return {**{name: mean + i for i, name in enumerate(OUTPUT_NAMES)}, "amap": values.mean(axis=3)}


@dataclass
class TrtSettings:
    """The engine's profile (what it reports), what its contexts really accept, and refusals to act out."""

    min_batch: int = 2
    max_batch: int = 8
    profiles: int = 2
    rtx: bool = False
    accepts: tuple[int, int] | None = None  # the batch range set_input_shape accepts (default: the profile's)
    refuse_address: str = ""  # set_tensor_address of this tensor returns False
    capturable: bool = True  # is_stream_capturable on a real stream


def standin_tensorrt(api: CudaStandIn, settings: TrtSettings = TrtSettings()) -> Any:
    """A module with the TensorRT runtime calls the backend makes (see the module's docstring).

    ``profiles_selected``: the optimisation profiles held by live contexts; ``executions``: enqueued inferences
    by the context's graph strategy (None: classic TensorRT); ``log``: what was logged."""
    s = settings
    selected: list[int] = []
    executions: Counter = Counter()
    log: list[str] = []

    class Context:
        def __init__(self, engine: Any, strategy: str | None) -> None:
            self.engine, self.strategy = engine, strategy
            self.n: int | None = s.max_batch
            self.addresses: dict[str, int] = {}
            self.profile: int | None = None

        def __del__(self) -> None:
            if self.profile in selected:
                selected.remove(self.profile)

        def _refuse(self, text: str) -> bool:
            log.append(text)
            self.engine.logger.log(Module.ILogger.Severity.ERROR, text)
            return False

        def set_input_shape(self, name: str, shape: tuple) -> bool:
            low, high = s.accepts or (s.min_batch, s.max_batch)  # read now: a test may narrow it after opening
            if name != "pixels" or tuple(shape[1:]) != ROW or not low <= shape[0] <= high:
                self.n = None  # the input's shape is no longer specified
                return self._refuse(f"IExecutionContext::setInputShape: Error Code 3: API Usage Error ({name} "
                                    f"{tuple(shape)} is outside the optimization profile)")
            self.n = int(shape[0])
            return True

        def set_optimization_profile_async(self, index: int, stream: int) -> bool:
            queue = api.stream_of(stream)
            if not 0 <= index < s.profiles or index in selected or queue is None:
                return self._refuse(f"setOptimizationProfileAsync: profile {index} unavailable or bad stream")
            selected.append(index)
            self.profile = index
            api.enqueue(queue, lambda: None, "profile")
            return True

        def get_tensor_shape(self, name: str) -> tuple:
            n = -1 if self.n is None else self.n
            return {"pixels": (n, *ROW), "amap": (n, SIZE, SIZE)}.get(name, (n,))

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            if name not in TENSORS or ptr % ALIGN or name == s.refuse_address:
                return self._refuse(f"IExecutionContext::setTensorAddress: Error Code 3: API Usage Error "
                                    f"({name} at {ptr:#x})")
            self.addresses[name] = ptr
            return True

        def is_stream_capturable(self, stream: int) -> bool:
            return stream != 0 and api.stream_of(stream) is not None and s.capturable

        def execute_async_v3(self, stream: int) -> bool:
            queue = api.stream_of(stream)
            missing = [t for t in TENSORS if t not in self.addresses]
            if queue is None or missing or self.n is None:
                return self._refuse(f"IExecutionContext::enqueueV3: Error Code 3: API Usage Error (stream "
                                    f"{stream:#x}, no address for {missing}, shape {self.n})")
            n, at = self.n, dict(self.addresses)  # a captured graph keeps the shape it was captured with

            def kernel() -> None:
                outputs = scorer_outputs(api.device_view(at["pixels"], np.uint8, (n, *ROW)))
                for name, value in outputs.items():
                    api.device_view(at[name], np.float32, value.shape)[:] = value

            executions[self.strategy] += 1
            api.enqueue(queue, kernel, "kernel", tuple(api._allocation("kernel", p, 1, "device") for p in at.values()))
            return True

    class Engine:
        num_io_tensors = len(TENSORS)
        num_optimization_profiles = s.profiles
        device_memory_size_v2 = 1000
        logger: Any = None

        def get_tensor_name(self, i: int) -> str:
            return TENSORS[i]

        def get_tensor_mode(self, name: str) -> str:
            return "in" if name == "pixels" else "out"

        def get_tensor_dtype(self, name: str) -> str:
            return "u8" if name == "pixels" else "f32"

        def get_tensor_shape(self, name: str) -> tuple:
            return {"pixels": (-1, *ROW), "amap": (-1, SIZE, SIZE)}.get(name, (-1,))

        def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple]:
            return [(b, *ROW) for b in (s.min_batch, (s.min_batch + s.max_batch) // 2, s.max_batch)]

        def create_execution_context(self, config: Any = None) -> Context:
            return Context(self, None if config is None else config.cuda_graph_strategy)

    class RuntimeConfig:
        cuda_graph_strategy = "disabled"

    class CudaGraphStrategy:
        DISABLED, WHOLE_GRAPH_CAPTURE = "disabled", "whole"

    if s.rtx:
        Engine.create_runtime_config = lambda self: RuntimeConfig()

    class Module:
        __name__ = "tensorrt"
        __version__ = "10.3.0"
        profiles_selected = selected

        class ILogger:
            class Severity:
                INTERNAL_ERROR, ERROR, WARNING = 0, 1, 2

            def __init__(self) -> None:
                pass

        class TensorIOMode:
            INPUT, OUTPUT = "in", "out"

        class DataType:
            FLOAT, UINT8 = "f32", "u8"

        class Runtime:
            def __init__(self, logger: Any) -> None:
                self.logger = logger

            def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
                if not data.startswith(b"FAKE"):
                    return None
                engine = Engine()
                engine.logger = self.logger
                return engine

    Module.executions, Module.log = executions, log
    if s.rtx:
        Module.CudaGraphStrategy = CudaGraphStrategy
    return Module()

"""TensorRT backend: a gedge engine (``gedge build``) on the GPU, classic ``tensorrt`` or ``tensorrt_rtx``.

The engine comes as the :class:`~gedge.core.artifacts.Artifact` gedge read (:func:`gedge.core.artifacts.open`): its
bytes matched the manifest's sha256 when they were read, and those bytes are the ones deserialised. Loading checks
the manifest first (:func:`gedge.core.artifacts.engine.check_runtime`): the installed TensorRT flavour and version
and this GPU must be the ones the engine was built for.

Then, per in-flight *slot* (two by default, so the copy of batch k+1 overlaps the compute of batch k):

* an execution context, a non-blocking stream and four events (H2D, compute, D2H timing);
* a pinned host input buffer and device buffers for the optimisation profile's largest batch, bound once with
  ``set_tensor_address``;
* pinned host buffers only for the outputs that are copied back: the scores, and the anomaly map when asked;
* its own optimisation profile (``gedge build --profiles``, one per slot: contexts in concurrent use need one
  each);
* CUDA graphs. Classic TensorRT: the slot captures a graph around ``execute_async_v3`` for its current batch
  size (after one uncaptured run, which lets TensorRT finish its lazy setup), replays it while the size stays,
  and captures again when it changes. TensorRT-RTX: its own graphs (``IRuntimeConfig.cuda_graph_strategy =
  WHOLE_GRAPH_CAPTURE``, captured per shape once the shape-specialised kernels exist), because capturing an
  RTX engine's stream by hand needs engines built with ``REQUIRE_USER_ALLOCATION`` (TensorRT-RTX 1.2 release
  notes) and would keep the fallback kernels it runs first.

:meth:`TensorRTBackend.enqueue` and :meth:`TensorRTBackend.collect` are what the pipelined loop
(:mod:`gedge.runtime.loop`) drives; :meth:`TensorRTBackend.score` is the synchronous Backend call built on them.
``close()`` releases graphs, buffers, streams, contexts and the engine.

Every TensorRT call that reports failure through its return value is checked (``set_tensor_address``,
``set_input_shape``, ``set_optimization_profile_async``, ``execute_async_v3``): a failure is a one-line
:class:`~gedge.runtime.cuda.CudaError` naming the call, the slot and TensorRT's logged reason. After a failed
enqueue the slot's stream is synchronised and the backend stays usable. A stream that cannot be synchronised (a
faulted context) leaves its work's state unknown: the backend then refuses further work with the reason, and
``close()`` leaves that slot's memory allocated rather than freeing it under queued work, and says so.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.engine import RuntimeInfo, check_runtime
from gedge.core.backend import AsyncBackendBase, BackendInfo
from gedge.core.errors import ArtifactError, ConfigError, DataError, RuntimeFailure
from gedge.core.inputs import graph_input
from gedge.core.machine import cuda_device
from gedge.core.scores import OUTPUT_NAMES, Scores
from gedge.core.tensorrt import TensorRTLogger, collector_paused, import_runtime, numpy_dtype
from gedge.runtime.cuda import CudaApi, CudaError, CudaGraph, Stream, load_cuda
from gedge.runtime.options import OpenOptions
from gedge.runtime.tensorrt_slots import EngineSlot, SlotBuffers, TensorRTStats, release


@dataclass(frozen=True)
class TensorRTParts:
    """What the backend otherwise loads itself, given instead (tests pass fakes; a caller may pass a loaded API):
    the CUDA bindings (or the name of the ones to load), the TensorRT module, and the facts the manifest is
    checked against (flavour, version, GPU)."""

    cuda_api: str | CudaApi | None = None
    trt_module: Any = None
    runtime_info: RuntimeInfo | None = None


DEVICE_MEMORY = "GPU: engine (plan size) + contexts + buffers"


class TensorRTBackend(AsyncBackendBase):
    """Scores uint8 NHWC batches with a gedge TensorRT engine; verified against its manifest on load."""

    def __init__(self, engine: Artifact, with_amap: bool = False, slots: int = 2, cuda_graphs: bool = True,
                 device: int = 0, parts: TensorRTParts = TensorRTParts()) -> None:
        if slots < 1:
            raise ConfigError(f"slots must be at least 1, got {slots}")
        if engine.manifest is None or engine.data is None:
            raise ConfigError(f"{engine.name}: the TensorRT backend needs an .engine with its manifest (`gedge build`)")
        self.path = engine.path
        self.manifest = engine.manifest
        self._slots: list[EngineSlot] = []
        self._closed = False
        self._broken = ""  # why the backend refuses work: a stream that could not be synchronised
        self.engine = self._load(engine, parts, device)
        self._read_tensors(with_amap)
        slots = self._read_profiles(slots)
        # "runtime": TensorRT-RTX captures and replays graphs itself; "manual": this backend captures them
        runtime_graphs = hasattr(self.trt, "CudaGraphStrategy") and hasattr(self.engine, "create_runtime_config")
        self.graph_mode = "runtime" if runtime_graphs else "manual"
        self.graphs_possible = runtime_graphs or self.api.supports_graphs
        self.cuda_graphs = bool(cuda_graphs) and self.graphs_possible
        self.graph_note = "" if self.cuda_graphs or not cuda_graphs else f"{self.api.name}: no CUDA graphs"
        self.stats = TensorRTStats()
        self._next = 0
        try:
            for index in range(slots):
                self._slots.append(self._make_slot(index))
        except Exception:
            self.close()
            raise
        self.device_bytes = self._device_bytes()

    @property
    def info(self) -> BackendInfo:
        """What this backend is now (CUDA graphs can be switched, or fail to capture, after opening)."""
        notes = tuple(note for note in (self.slot_note, self.graph_note) if note)
        return BackendInfo(kind="tensorrt", label=f"tensorrt {self.precision.upper()}", precision=self.precision,
                           device="cuda", runtime=f"{self.trt_name} {self.trt_version}", with_amap=self.with_amap,
                           slots=len(self._slots), max_batch=self.max_batch, device_memory_bytes=self.device_bytes,
                           device_memory=DEVICE_MEMORY,
                           cuda_graphs=self.cuda_graphs, artifact=self.artifact, notes=notes)

    def _load(self, artifact: Artifact, parts: TensorRTParts, device: int) -> Any:
        """Import the engine's TensorRT flavour, load CUDA, check the manifest against them, deserialise the bytes
        that were checked against the manifest's sha256."""
        flavour = self.manifest.tensorrt_flavour
        self.trt = parts.trt_module or import_runtime(flavour)
        self.trt_name = getattr(self.trt, "__name__", flavour)
        self.trt_version = str(getattr(self.trt, "__version__", "unknown"))
        cuda_api = parts.cuda_api
        self.api = cuda_api if isinstance(cuda_api, CudaApi) else load_cuda(cuda_api, device)
        runtime_info = parts.runtime_info
        if runtime_info is None:
            gpu, why = cuda_device(device)
            if gpu is None:
                raise ConfigError(f"no CUDA GPU to run the engine on ({why})")
            runtime_info = RuntimeInfo(self.trt_name, self.trt_version, gpu.name, gpu.compute_capability)
        self.runtime_info = runtime_info
        check_runtime(self.manifest, runtime_info, self.path)
        self.engine_bytes = len(artifact.data)  # the deserialised engine holds its weights (and kernels) on the device
        self.precision = self.manifest.precision
        self.name = f"tensorrt-{self.precision}"
        self.artifact = _runtime_checked(artifact, runtime_info)
        self.logger = TensorRTLogger(self.trt)
        with collector_paused():
            self.runtime = self.trt.Runtime(self.logger.impl)
            engine = self.runtime.deserialize_cuda_engine(artifact.data)
        if engine is None:
            detail = "; ".join(self.logger.last(3)) or "no reason given"
            raise ArtifactError(f"TensorRT could not deserialise the engine: {detail[:300]}", self.path)
        return engine

    def _read_tensors(self, with_amap: bool) -> None:
        """The engine's one input and its outputs; which outputs are copied back; the input's spec and type."""
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == self.trt.TensorIOMode.INPUT for n in names}
        inputs = [n for n in names if is_input[n]]
        if len(inputs) != 1:
            raise ArtifactError(f"engine has {len(inputs)} inputs; a gedge scorer engine has one", self.path)
        self.input_name = inputs[0]
        self.output_names = [n for n in names if not is_input[n]]
        missing = [n for n in OUTPUT_NAMES if n not in self.output_names]
        if missing:
            raise ArtifactError(f"engine lacks the outputs {', '.join(missing)}", self.path)
        if with_amap and "amap" not in self.output_names:
            raise ConfigError("the anomaly map was asked for but the engine has no amap output (export with --amap)")
        self.with_amap = bool(with_amap)
        self.copied = [*OUTPUT_NAMES, *(["amap"] if self.with_amap else [])]
        self.input_spec = self.manifest.input_spec
        self.input_kind = self.manifest.input.kind
        self.input_dtype = numpy_dtype(self.trt, self.engine.get_tensor_dtype(self.input_name))
        self.row_shape = tuple(int(d) for d in self.engine.get_tensor_shape(self.input_name))[1:]

    def _read_profiles(self, slots: int) -> int:
        """The batch range of the optimisation profile, and how many of the ``slots`` asked for the engine allows.

        Execution contexts running concurrently need an optimisation profile each (TensorRT's rule for dynamic
        shapes): `gedge build --profiles N` makes N identical ones, and there are at most that many slots."""
        profile = self.engine.get_tensor_profile_shape(self.input_name, 0)
        self.min_batch, _, self.max_batch = (int(s[0]) for s in profile)
        self.profiles = int(getattr(self.engine, "num_optimization_profiles", 1) or 1)
        self.slot_note = ""
        if slots > self.profiles:
            plural = "s" if self.profiles > 1 else ""
            self.slot_note = (f"{slots} slots asked for but the engine has {self.profiles} optimisation "
                              f"profile{plural}: {self.profiles} slot{plural} (rebuild with --profiles {slots})")
        return min(slots, self.profiles)

    # --- setup ------------------------------------------------------------------------------------------

    def _new_context(self, index: int, stream: Stream) -> Any:
        """An execution context on optimisation profile ``index``; for TensorRT-RTX with the graph strategy of
        ``self.cuda_graphs``."""
        with collector_paused():
            if self.graph_mode == "runtime":
                config = self.engine.create_runtime_config()
                strategies = self.trt.CudaGraphStrategy
                config.cuda_graph_strategy = strategies.WHOLE_GRAPH_CAPTURE if self.cuda_graphs else strategies.DISABLED
                context = self.engine.create_execution_context(config)
            else:
                context = self.engine.create_execution_context()
        if context is None:
            raise self._failure("TensorRT could not create an execution context (out of GPU memory?)")
        if self.profiles > 1:
            if not context.set_optimization_profile_async(index, stream.ptr):
                raise self._failure(f"set_optimization_profile_async({index}) failed for slot {index}")
            stream.synchronize()
        return context

    def _make_slot(self, index: int) -> EngineSlot:
        """A slot with its context, stream and buffers, bound; on a failure, what it had is released again."""
        stream = Stream(self.api)
        buffers = SlotBuffers(self.api)
        try:
            context = self._new_context(index, stream)
            self._set_batch(context, self.max_batch)
            buffers.add_input((self.max_batch, *self.row_shape), self.input_dtype)
            for name in self.output_names:  # every output needs a buffer; only the copied ones get host memory
                buffers.add_output(name, tuple(int(d) for d in context.get_tensor_shape(name)),
                                   numpy_dtype(self.trt, self.engine.get_tensor_dtype(name)), name in self.copied)
            slot = buffers.slot(context, stream, index, self.max_batch)
            self._bind(slot)
        except Exception:
            buffers.free()  # nothing was enqueued on them: the profile switch was synchronised
            stream.destroy()
            raise
        return slot

    def _bind(self, slot: EngineSlot) -> None:
        """Give the slot's context the addresses of the slot's device buffers (TensorRT answers False, and logs
        why, for a name it does not know or a pointer it cannot use)."""
        for name, buffer in [(self.input_name, slot.device_input), *slot.device_outputs.items()]:
            if not slot.context.set_tensor_address(name, buffer.ptr):
                raise self._failure(f"set_tensor_address({name!r}) failed for slot {slot.index}")

    def _failure(self, what: str) -> CudaError:
        """A one-line runtime failure naming the call, with TensorRT's last logged reasons, located at the engine."""
        detail = "; ".join(self.logger.last(2))
        return CudaError(f"{what}{': ' + detail[:300] if detail else ''}", self.path)

    def set_cuda_graphs(self, on: bool) -> None:
        """Switch CUDA graphs on or off between batches (the benchmark's with/without rows). TensorRT-RTX's
        graph strategy belongs to the context, so its slots get new contexts, bound to the same buffers."""
        self._usable()
        on = bool(on) and self.graphs_possible
        if on == self.cuda_graphs:
            return
        self.cuda_graphs = on
        if on:
            self.graph_note = ""  # a capture that failed before is tried again (and noted again if it fails)
        if self.graph_mode != "runtime":
            return
        for slot in self._slots:
            self._synchronize(slot, "while switching CUDA graphs")
            slot.context = None  # frees its optimisation profile for the new context
            slot.context = self._new_context(slot.index, slot.stream)
            slot.shape_batch = slot.shape_batch or self.max_batch
            self._set_batch(slot.context, slot.shape_batch)
            self._bind(slot)

    def _device_bytes(self) -> int:
        """The device memory this backend holds: the engine (its plan's size: weights and kernels), each slot's
        execution context (its activation memory) and the input and output buffers."""
        buffers = sum(s.device_input.nbytes + sum(b.nbytes for b in s.device_outputs.values()) for s in self._slots)
        per_context = getattr(self.engine, "device_memory_size_v2", None)
        if per_context is None:
            per_context = getattr(self.engine, "device_memory_size", 0)
        return int(self.engine_bytes + buffers + len(self._slots) * int(per_context or 0))

    # --- the asynchronous interface (the pipelined loop) ------------------------------------------------

    def _feed(self, batch: np.ndarray, out: np.ndarray) -> None:
        np.copyto(out, graph_input(batch, self.input_kind), casting="no")

    def _set_batch(self, context: Any, n: int) -> None:
        if not context.set_input_shape(self.input_name, (n, *self.row_shape)):
            raise self._failure(f"TensorRT refused the input shape {(n, *self.row_shape)} (set_input_shape)")

    def _execute(self, slot: EngineSlot, n: int) -> None:
        if slot.shape_batch != n:
            # A captured graph holds the context's state at its shape; after the context runs another shape its
            # resources may move, so the slot keeps graphs for one shape only and captures again on a change.
            if slot.graph is not None:
                slot.graph.destroy()
                slot.graph = None
            slot.shape_batch = 0  # unknown until TensorRT accepts the new shape (a refused one unsets it)
            self._set_batch(slot.context, n)
            slot.shape_batch = n
        if self.cuda_graphs and self.graph_mode == "manual":
            graph = slot.graph or self._capture(slot, n)
            if graph is not None:
                graph.launch(slot.stream)
                self.stats.graph_launches += 1
                return
        if not slot.context.execute_async_v3(slot.stream.ptr):
            raise self._failure(f"execute_async_v3 failed for a batch of {n} on slot {slot.index}")
        if self.cuda_graphs:  # TensorRT-RTX: the runtime captured or replayed its own graph
            self.stats.graph_launches += 1
        else:
            self.stats.plain_launches += 1

    def _capture(self, slot: EngineSlot, n: int) -> CudaGraph | None:
        """The CUDA graph of this slot for batch ``n``; None (and graphs off, with the reason) if it cannot be."""
        capturable = getattr(slot.context, "is_stream_capturable", None)
        if capturable is not None and not capturable(slot.stream.ptr):
            self.cuda_graphs, self.graph_note = False, "TensorRT says the stream is not capturable"
            return None
        if not slot.context.execute_async_v3(slot.stream.ptr):  # lazy setup happens outside the capture
            raise self._failure(f"execute_async_v3 failed for a batch of {n} on slot {slot.index}")

        def work() -> None:
            if not slot.context.execute_async_v3(slot.stream.ptr):
                raise CudaError("execute_async_v3 failed during CUDA graph capture")

        try:
            graph = CudaGraph.capture(self.api, slot.stream, work)
        except CudaError as exc:
            self.cuda_graphs, self.graph_note = False, f"CUDA graph capture failed, running without: {exc}"
            return None
        slot.graph = graph
        self.stats.captures += 1
        return graph

    def _usable(self) -> None:
        """Refuse work after close(), or after a stream could not be synchronised: what was queued on it may still
        run, or never finish, so no buffer of the backend can safely be reused."""
        if self._closed:
            raise RuntimeFailure("the TensorRT backend is closed", self.path)
        if self._broken:
            raise RuntimeFailure(f"the TensorRT backend cannot be used after {self._broken}; open the engine again",
                                 self.path)

    def _synchronize(self, slot: EngineSlot, when: str) -> None:
        try:
            slot.stream.synchronize()
        except CudaError as exc:
            self._broken = self._broken or f"slot {slot.index}'s stream failed to synchronise {when} ({exc.problem})"
            raise

    def enqueue_impl(self, slot_index: int, batch: np.ndarray) -> None:
        """Copy ``batch`` into the slot's pinned buffer and enqueue H2D, compute and D2H on its stream."""
        self._usable()
        slot = self._slots[slot_index]
        if slot.pending:
            raise RuntimeFailure(f"slot {slot_index} still holds a batch; collect it first", self.path)
        real = len(batch)
        if not 0 < real <= self.max_batch:
            raise DataError(f"batch of {real}; this engine's profile takes 1 to {self.max_batch} per call")
        n = max(real, self.min_batch)
        staged = slot.host_input.view(n)
        self._feed(batch, staged[:real])
        if n > real:  # pad to the profile's smallest batch with copies of the last input
            staged[real:] = staged[real - 1]
        stream = slot.stream
        try:
            stream.mark(0)
            self.api.h2d(slot.device_input.ptr, slot.host_input.ptr, n * slot.device_input.row_bytes, stream.handle)
            stream.mark(1)
            self._execute(slot, n)
            stream.mark(2)
            for name in self.copied:
                device = slot.device_outputs[name]
                self.api.d2h(slot.host_outputs[name].ptr, device.ptr, n * device.row_bytes, stream.handle)
            stream.mark(3)
        except Exception:
            try:  # what was queued before the failure still reads the slot's buffers: let it finish
                self._synchronize(slot, "after a failed enqueue")
            except CudaError:
                pass  # the backend now refuses further work, saying why; the enqueue's own failure is raised
            raise
        slot.pending, slot.real = n, real

    def collect(self, slot_index: int) -> Scores:
        """Wait for the slot's batch and return its scores (copies: the slot's buffers are reused)."""
        self._usable()
        slot = self._slots[slot_index]
        if not slot.pending:
            raise RuntimeFailure(f"slot {slot_index} holds no batch", self.path)
        try:
            self._synchronize(slot, "while collecting a batch")
            self.stats.stages.append(slot.stream.stage_times())
            values = {name: slot.host_outputs[name].view(slot.real).astype(np.float32) for name in self.copied}
        finally:
            slot.pending = slot.real = 0
        return Scores.from_dict(values)

    # --- the Backend interface --------------------------------------------------------------------------

    def score_impl(self, batch: np.ndarray) -> Scores:
        """Score ``batch`` over the slots (split at the engine's largest batch). After a failure, the batches
        this call still has in flight are waited for and dropped, so the next call finds every slot free."""
        self._usable()
        if len(batch) == 0:
            raise DataError("empty batch")
        held = [slot.index for slot in self._slots if slot.pending]
        if held:
            raise RuntimeFailure(f"slot(s) {held} hold batches enqueued outside score(); collect them first",
                                 self.path)
        parts: list[Scores] = []
        inflight: deque[int] = deque()
        try:
            for start in range(0, len(batch), self.max_batch):
                if len(inflight) == len(self._slots):  # the oldest batch holds the slot that comes next
                    parts.append(self.collect(inflight.popleft()))
                slot = self._next % len(self._slots)
                self._next += 1
                self.enqueue_impl(slot, batch[start:start + self.max_batch])
                inflight.append(slot)
            while inflight:
                parts.append(self.collect(inflight.popleft()))
        except BaseException:
            for slot in inflight:
                try:
                    self.collect(slot)
                except Exception:
                    pass  # the failure raised below is the news; a failed synchronize also marked the backend
            raise
        return parts[0] if len(parts) == 1 else Scores.concat(parts)

    def reset_stats(self) -> None:
        self.stats = TensorRTStats()

    def stage_times_ms(self) -> dict[str, list[float]]:
        """Host to device, compute and device to host milliseconds of each batch collected since the last reset."""
        stages = self.stats.stages
        return {"h2d": [s.h2d for s in stages], "compute": [s.compute for s in stages], "d2h": [s.d2h for s in stages]}

    def close(self) -> None:
        """Release graphs, contexts, streams and buffers, each slot after its stream is synchronised. A slot whose
        stream cannot be synchronised may still have copies or kernels queued on its buffers: its context and
        memory stay allocated (in ``tensorrt_slots.LEAKED``, for the life of the process) instead of being freed under
        them, and close raises a CudaError that says so."""
        if self._closed:
            return
        self._closed = True
        leaked = release(self._slots, (self.engine, self.runtime))
        self._slots.clear()
        if leaked:
            raise CudaError(f"close: {leaked}", self.path)
        self.engine = None
        self.runtime = None

    def __del__(self) -> None:  # best effort; close() is the contract
        try:
            self.close()
        except Exception:
            pass


def _runtime_checked(engine: Artifact, runtime: RuntimeInfo) -> Artifact:
    """The engine's artifact, its verification saying that the TensorRT and GPU were checked too."""
    if engine.verification is None:
        return engine
    checked = (*engine.verification.checked, f"{runtime.flavour} {runtime.version} and the GPU match the manifest")
    return replace(engine, verification=replace(engine.verification, checked=checked))


def open_artifact(engine: Artifact, options: OpenOptions) -> TensorRTBackend:
    """The registry's opener: the engine on GPU 0 with ``options.slots`` in-flight slots."""
    return TensorRTBackend(engine, with_amap=options.with_amap, slots=options.slots, cuda_graphs=options.cuda_graphs)

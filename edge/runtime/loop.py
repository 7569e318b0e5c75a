"""The pipelined inference loop: decode on CPU threads, batches in flight on the backend, results in order.

Items (image paths, encoded frames, arrays) go through three stages that overlap:

1. ``prepare(item)`` on a thread pool (decoding, scaling, tiling: numpy and Pillow release the GIL) returns the
   item's network inputs, uint8 NHWC, and optionally something to keep with them (tile origins, image size);
2. inputs are packed into batches of ``batch_size`` across item boundaries (a long strip spans batches, small
   images share one);
3. each batch goes to one of ``slots`` in-flight slots. For the TensorRT backend a slot is its own stream,
   execution context and pinned buffers (``enqueue``/``collect``), so the copy of batch k+1 overlaps the
   compute of batch k. For CPU backends (torch, onnxruntime) a slot is a future on a one-thread compute
   executor, so decoding and batch assembly overlap the compute. Either way it is the same loop, which is
   what makes the backends' throughput comparable.

Results come back in input order, one :class:`ItemResult` per item, with the scores of its inputs. Errors are
per item: an item that cannot be prepared (a corrupt image) carries its error and the run goes on; a batch the
backend fails on gives every item with inputs in that batch the error (``on_backend_error="raise"`` stops
the run instead).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from gedge.core.backend import Backend
from gedge.core.errors import ConfigError, GedgeError, RuntimeFailure, first_line
from gedge.core.scores import Scores
from gedge.runtime.slots import FutureSlots, NativeSlots, has_native_slots

Prepare = Callable[[Any], "np.ndarray | tuple[np.ndarray, Any]"]
# Decoding threads run this much nicer than the rest of the process: they fill the cycles the backend leaves
# idle rather than delay the batch in flight (the measurement behind it: docs/benchmarks.md, the pipelined loop).
DECODE_NICE = 5


@dataclass
class ItemResult:
    """One item's outcome: the scores of each of its network inputs, or why there are none."""

    index: int
    item: Any
    scores: Scores | None
    meta: Any = None
    error: str | None = None
    error_kind: str | None = None  # "input": the item could not be prepared or batched; "runtime": its batch failed

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class LoopStats:
    """Counts and times of one run (``seconds`` from the first item asked for to the last result)."""

    items: int = 0
    inputs: int = 0
    batches: int = 0
    errors: int = 0
    seconds: float = 0.0
    batch_ms: list[float] = field(default_factory=list)  # enqueue to collected, per batch

    @property
    def inputs_per_second(self) -> float:
        return self.inputs / self.seconds if self.seconds > 0 else 0.0


def error_text(exc: BaseException) -> str:
    if isinstance(exc, GedgeError):
        return str(exc)
    return first_line(exc, named=True)


def _as_inputs(prepared: Any, spec: Any = None) -> tuple[np.ndarray, Any]:
    """An item's inputs and meta; checked against the backend's input spec, so that one bad item fails alone
    instead of the batch it would share with others."""
    inputs, meta = prepared if isinstance(prepared, tuple) else (prepared, None)
    if not isinstance(inputs, np.ndarray) or inputs.ndim != 4 or len(inputs) == 0:
        shape = getattr(inputs, "shape", type(inputs).__name__)
        raise ConfigError(f"prepare must return a non-empty (N, H, W, C) array, got {shape}")
    if spec is not None:
        spec.check(inputs)
    return inputs, meta


@dataclass
class _Pending:
    item: Any
    meta: Any
    n: int
    parts: list[tuple[int, Scores]] = field(default_factory=list)
    received: int = 0
    error: str | None = None
    error_kind: str | None = None

    @property
    def done(self) -> bool:
        return self.error is not None or self.received >= self.n


@dataclass(frozen=True)
class LoopOptions:
    """How a :class:`Pipeline` runs.

    ``batch_size`` is capped at the backend's declared ``max_batch`` where it has one (a TensorRT engine's
    profile). ``slots``: batches in flight. ``workers``: decoding threads (None: up to 4, one per core; 0:
    prepare on the calling thread), ``decode_nice`` lower in priority than the rest of the process (Linux).
    ``lookahead``: items prepared ahead (None: twice the workers plus the slots). ``compute_workers``: threads
    that call a synchronous backend (1 keeps one batch computing at a time, with the rest waiting in their
    slots; more only helps a backend that leaves cores idle). ``on_backend_error``: ``item`` (the items of a
    failed batch carry the error) or ``raise``.
    """

    batch_size: int = 64
    slots: int = 2
    workers: int | None = None
    lookahead: int | None = None
    compute_workers: int = 1
    on_backend_error: str = "item"
    decode_nice: int = DECODE_NICE

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.slots < 1:
            raise ConfigError(f"slots must be at least 1, got {self.slots}")
        if self.on_backend_error not in ("item", "raise"):
            raise ConfigError(f"on_backend_error must be item or raise, got {self.on_backend_error!r}")


class Pipeline:
    """Runs items through ``prepare``, batching and in-flight batches on ``backend`` (see :class:`LoopOptions`;
    its fields can also be given by name)."""

    def __init__(self, backend: Backend, options: LoopOptions | None = None, **settings: Any) -> None:
        try:
            options = replace(options or LoopOptions(), **settings)
        except TypeError as exc:
            raise ConfigError(f"Pipeline: {exc}") from None
        self.backend = backend
        self.requested_batch_size = options.batch_size
        limit = backend.info.max_batch  # an engine's profile caps the batch it takes in one call
        self.batch_size = min(options.batch_size, limit) if limit else options.batch_size
        self.slots = options.slots
        self.workers = min(4, os.cpu_count() or 1) if options.workers is None else max(0, options.workers)
        self.lookahead = options.lookahead or max(2, 2 * self.workers + options.slots)
        self.compute_workers = max(1, options.compute_workers)
        self.on_backend_error = options.on_backend_error
        self.decode_nice = options.decode_nice
        self.stats = LoopStats()
        self._compute: ThreadPoolExecutor | None = None
        self._decode: ThreadPoolExecutor | None = None

    def _executors(self, decode: bool) -> tuple[ThreadPoolExecutor | None, ThreadPoolExecutor | None]:
        """The compute and decoding threads, started on first use and kept until :meth:`close`."""
        if self._compute is None and not has_native_slots(self.backend):
            self._compute = ThreadPoolExecutor(self.compute_workers, thread_name_prefix="gedge-compute")
        if self._decode is None and decode and self.workers:
            self._decode = ThreadPoolExecutor(self.workers, thread_name_prefix="gedge-decode",
                                              initializer=_lower_priority, initargs=(self.decode_nice,))
        return self._compute, self._decode if decode else None

    def close(self) -> None:
        """Stop the threads (they also end with the interpreter)."""
        for executor in (self._compute, self._decode):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
        self._compute = self._decode = None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, items: Iterable[Any], prepare: Prepare | None = None) -> Iterator[ItemResult]:
        """Yield one ItemResult per item, in input order. ``prepare=None``: items are input arrays already."""
        self.stats = LoopStats()
        compute, pool = self._executors(decode=prepare is not None)
        slots = (NativeSlots(self.backend, self.slots) if has_native_slots(self.backend)
                 else FutureSlots(self.backend, self.slots, compute))
        state = _Run(self, slots, iter(enumerate(items)), prepare, pool)
        try:
            yield from state.results()
        finally:
            state.stop()

    def score_all(self, items: Iterable[Any], prepare: Prepare | None = None) -> list[ItemResult]:
        """Every item's result, in order (the threads stay up for the next run; :meth:`close` ends them)."""
        return list(self.run(items, prepare))


class _Run:
    """One pass of :meth:`Pipeline.run`: items prepared ahead, inputs packed into batches, batches in flight on
    the slots, results handed out in input order."""

    def __init__(self, pipeline: Pipeline, slots: FutureSlots | NativeSlots, source: Iterator[tuple[int, Any]],
                 prepare: Prepare | None, pool: ThreadPoolExecutor | None) -> None:
        self.pipeline, self.slots, self.source, self.prepare, self.pool = pipeline, slots, source, prepare, pool
        self.stats = pipeline.stats
        self.started = time.perf_counter()
        self.decoding: deque[tuple[int, Any, Any]] = deque()  # (index, item, prepared or its future)
        self.pending: dict[int, _Pending] = {}
        self.order: deque[int] = deque()
        self.assembly: list[tuple[int, int, np.ndarray]] = []  # (item index, offset in the item, inputs)
        self.assembled = 0
        self.inflight: deque[tuple[int, list[tuple[int, int, int]], float]] = deque()  # slot, segments, start
        self.next_slot = 0

    def results(self) -> Iterator[ItemResult]:
        self.refill()
        while self.decoding:
            index, item, job = self.decoding.popleft()
            self.refill()
            self.stats.items += 1
            self.order.append(index)
            try:
                raw = item if self.prepare is None else job.result() if isinstance(job, Future) else job.get()
                inputs, meta = _as_inputs(raw, self.pipeline.backend.input_spec)
            except Exception as exc:
                kind = "runtime" if isinstance(exc, RuntimeFailure) else "input"
                self.pending[index] = _Pending(item, None, 0, error=error_text(exc), error_kind=kind)
                yield from self.ready()
                continue
            self.pending[index] = _Pending(item, meta, len(inputs))
            self.pack(index, inputs)
            yield from self.ready()
        self.submit()
        while self.inflight:
            self.complete_oldest()
            yield from self.ready()
        yield from self.ready()

    def refill(self) -> None:
        """Start preparing items until ``lookahead`` are prepared or in preparation."""
        while len(self.decoding) < self.pipeline.lookahead:
            try:
                index, item = next(self.source)
            except StopIteration:
                return
            if self.prepare is None:
                self.decoding.append((index, item, None))
            elif self.pool is None:
                self.decoding.append((index, item, _call(self.prepare, item)))
            else:
                self.decoding.append((index, item, self.pool.submit(self.prepare, item)))

    def pack(self, index: int, inputs: np.ndarray) -> None:
        """Add an item's inputs to the batch being assembled, submitting each batch that fills up."""
        batch_size = self.pipeline.batch_size
        offset = 0
        while offset < len(inputs):
            take = min(batch_size - self.assembled, len(inputs) - offset)
            self.assembly.append((index, offset, inputs[offset:offset + take]))
            self.assembled += take
            offset += take
            if self.assembled == batch_size:
                self.submit()

    def fail(self, segments: list[tuple[int, int, int]], message: str, kind: str = "runtime") -> None:
        for index, _, _ in segments:
            if index in self.pending and self.pending[index].error is None:
                self.pending[index].error, self.pending[index].error_kind = message, kind

    def submit(self) -> None:
        """Send the assembled batch to the next slot (collecting the batch that slot still holds first)."""
        if not self.assembled:
            return
        segments = [(index, offset, len(part)) for index, offset, part in self.assembly]
        parts = [p for _, _, p in self.assembly]
        self.assembly, self.assembled = [], 0
        try:
            batch = parts[0] if len(parts) == 1 else np.concatenate(parts)
        except ValueError as exc:  # items of different shapes (a prepare without an input spec to check)
            self.fail(segments, f"cannot batch: {error_text(exc)}", "input")
            return
        slot = self.next_slot % self.slots.slots
        self.next_slot += 1
        while any(held == slot for held, _, _ in self.inflight):  # round robin: the oldest batches hold it, unless
            self.complete_oldest()  # an enqueue failed and left its slot free out of turn
        try:
            self.slots.enqueue(slot, batch)
        except Exception as exc:
            if self.pipeline.on_backend_error == "raise":
                raise
            self.fail(segments, f"backend failed on a batch: {error_text(exc)}")
            return
        self.stats.batches += 1
        self.inflight.append((slot, segments, time.perf_counter()))

    def complete_oldest(self) -> None:
        """Collect the oldest batch in flight and hand its scores to the items it holds inputs of."""
        slot, segments, t0 = self.inflight.popleft()
        try:
            scores = self.slots.collect(slot)
        except Exception as exc:
            if self.pipeline.on_backend_error == "raise":
                raise
            self.fail(segments, f"backend failed on a batch: {error_text(exc)}")
            return
        finally:
            self.stats.batch_ms.append((time.perf_counter() - t0) * 1e3)
        position = 0
        for index, offset, count in segments:
            state = self.pending.get(index)
            if state is not None and state.error is None:
                state.parts.append((offset, scores.take(slice(position, position + count))))
                state.received += count
            position += count

    def ready(self) -> Iterator[ItemResult]:
        """The results of the oldest items that are complete, in input order."""
        while self.order and self.pending[self.order[0]].done:
            index = self.order.popleft()
            state = self.pending.pop(index)
            if state.error is not None:
                self.stats.errors += 1
                yield ItemResult(index, state.item, None, state.meta, state.error, state.error_kind)
                continue
            parts = [s for _, s in sorted(state.parts, key=lambda p: p[0])]
            scores = parts[0] if len(parts) == 1 else Scores.concat(parts)
            self.stats.inputs += state.n
            yield ItemResult(index, state.item, scores, state.meta)

    def stop(self) -> None:
        """After the last result, an early stop or an error: leave no batch on a slot, drop prepared-ahead items."""
        while self.inflight:
            slot = self.inflight.popleft()[0]
            try:
                self.slots.collect(slot)
            except Exception:
                pass
        self.slots.close()
        while self.decoding:
            job = self.decoding.popleft()[2]
            if isinstance(job, Future):
                job.cancel()
        self.stats.seconds = time.perf_counter() - self.started


class _Done:
    """A prepared value or the exception preparing it raised, for ``workers=0``."""

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value, self.error = value, error

    def get(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def _lower_priority(nice: int) -> None:
    """Lower the calling thread's scheduling priority (Linux: per thread), so decoding fills the cores the
    backend leaves idle instead of taking them from it; nothing where threads have no priority of their own."""
    if nice <= 0 or not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
    except OSError:
        pass


def _call(prepare: Prepare, item: Any) -> _Done:
    try:
        return _Done(prepare(item))
    except Exception as exc:
        return _Done(error=exc)


def batch_by_batch(backend: Backend, items: Iterable[Any], prepare: Prepare | None = None,
                   batch_size: int = 64) -> LoopStats:
    """The baseline the loop is measured against: prepare, then score, one batch at a time, no overlap."""
    stats = LoopStats()
    started = time.perf_counter()
    buffer: list[np.ndarray] = []
    held = 0

    def flush(parts: list[np.ndarray]) -> None:
        batch = parts[0] if len(parts) == 1 else np.concatenate(parts)
        t0 = time.perf_counter()
        backend.score(batch)
        stats.batch_ms.append((time.perf_counter() - t0) * 1e3)
        stats.batches += 1
        stats.inputs += len(batch)

    for item in items:
        stats.items += 1
        inputs, _ = _as_inputs(item if prepare is None else prepare(item))
        offset = 0
        while offset < len(inputs):
            take = min(batch_size - held, len(inputs) - offset)
            buffer.append(inputs[offset:offset + take])
            held += take
            offset += take
            if held == batch_size:
                flush(buffer)
                buffer, held = [], 0
    if held:
        flush(buffer)
    stats.seconds = time.perf_counter() - started
    return stats

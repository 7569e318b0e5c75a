"""The pipelined loop's in-flight slots: a batch enqueued on a slot returns at once, ``collect`` waits for it.

A backend that keeps batches in flight itself (:class:`~gedge.core.backend.AsyncBackend`, TensorRT: a stream,
execution context and pinned buffers per slot) is driven through :class:`NativeSlots`; any other backend
through :class:`FutureSlots`, futures on the loop's compute thread.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from gedge.core.backend import AsyncBackend, Backend
from gedge.core.scores import Scores


class FutureSlots:
    """In-flight slots for a synchronous backend: each slot is a future on a small compute executor (kept for
    the pipeline's life: torch's OpenMP team belongs to the thread that calls it)."""

    def __init__(self, backend: Backend, slots: int = 2, executor: ThreadPoolExecutor | None = None) -> None:
        self.backend = backend
        self.slots = slots
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="gedge-compute")
        self.futures: dict[int, Future] = {}

    def enqueue(self, slot: int, batch: np.ndarray) -> None:
        self.futures[slot] = self.executor.submit(self.backend.score, batch)

    def collect(self, slot: int) -> Scores:
        return self.futures.pop(slot).result()

    def close(self) -> None:
        for future in self.futures.values():
            future.cancel()
        self.futures.clear()


class NativeSlots:
    """The backend's own slots (TensorRT: a stream, context and pinned buffers each)."""

    def __init__(self, backend: AsyncBackend, slots: int) -> None:
        self.backend = backend
        self.slots = min(slots, backend.info.slots)

    def enqueue(self, slot: int, batch: np.ndarray) -> None:
        self.backend.enqueue(slot, batch)

    def collect(self, slot: int) -> Scores:
        return self.backend.collect(slot)

    def close(self) -> None:
        pass


def has_native_slots(backend: Backend) -> bool:
    """Whether the backend keeps batches in flight itself (:class:`AsyncBackend`, TensorRT) rather than being
    called from the loop's compute thread."""
    return isinstance(backend, AsyncBackend)

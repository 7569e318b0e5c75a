"""What one served model instance does with the requests Triton's dynamic batcher hands it.

Triton merges requests into one execution (up to ``max_batch_size`` images); :class:`ServedScorer` scores the
merged batch with a gedge backend (the same backend, and so the same numbers, as ``gedge inspect``), adds the
decision (primary normalised score >= the artifact's threshold) and splits the outputs back per request.
:class:`ServeTally` counts requests, images and the batch sizes formed (shared by all instances), which is what
``gedge serve`` reports when it stops. No Triton import here: the callable takes any mapping per request.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gedge.core.backend import Backend
from gedge.core.scores import OUTPUT_NAMES

DECISION = "decision"


STOPPING = "unavailable: the server is stopping and takes no new requests (send it again, to another replica)"


@dataclass
class ServeTally:
    """Counts over the server's life, from every instance (thread-safe)."""

    requests: int = 0
    images: int = 0
    executions: int = 0
    failed_requests: int = 0
    refused_requests: int = 0  # arrived after a stop signal: an explicit error, never executed
    in_flight: int = 0  # executions running now
    stopping: bool = False
    batch_sizes: Counter = field(default_factory=Counter)  # images per execution -> executions
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def admit(self, requests: int) -> bool:
        """Whether an execution may start (False once stopping: its requests are refused, not lost)."""
        with self.lock:
            if self.stopping:
                self.refused_requests += requests
                return False
            self.in_flight += 1
            return True

    def stop(self) -> None:
        with self.lock:
            self.stopping = True

    def idle(self) -> bool:
        with self.lock:
            return self.in_flight == 0

    def record(self, sizes: list[int], ok: bool) -> None:
        with self.lock:
            self.in_flight -= 1
            self.executions += 1
            if ok:
                self.requests += len(sizes)
                self.images += sum(sizes)
                self.batch_sizes[sum(sizes)] += 1
            else:
                self.failed_requests += len(sizes)

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"requests_answered": self.requests, "images": self.images, "executions": self.executions,
                    "failed_requests": self.failed_requests, "refused_requests": self.refused_requests,
                    "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())}}


def output_names(with_amap: bool) -> list[str]:
    return [*OUTPUT_NAMES, DECISION, *(["amap"] if with_amap else [])]


class ServedScorer:
    """One model instance: a backend, the threshold, the input's name and the tally."""

    def __init__(self, backend: Backend, threshold: float, input_name: str, tally: ServeTally,
                 with_amap: bool = False) -> None:
        self.backend = backend
        self.threshold = float(threshold)
        self.input_name = input_name
        self.tally = tally
        self.with_amap = with_amap

    def outputs(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The named outputs of a uint8 NHWC batch: every score as (N, 1) float32, decision (N, 1) bool."""
        scores = self.backend.score(np.ascontiguousarray(batch))
        values = {name: np.asarray(scores.named(name), dtype=np.float32).reshape(-1, 1) for name in OUTPUT_NAMES}
        values[DECISION] = values["score"] >= self.threshold
        if self.with_amap and scores.amap is not None:
            values["amap"] = np.asarray(scores.amap, dtype=np.float32)
        return values

    def __call__(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Triton's merged requests: one batch through the backend, the outputs split back per request."""
        sizes = [len(request[self.input_name]) for request in requests]
        if not self.tally.admit(len(requests)):
            raise RuntimeError(STOPPING)
        try:
            batch = np.concatenate([request[self.input_name] for request in requests])
            values = self.outputs(batch)
        except Exception:
            self.tally.record(sizes, ok=False)
            raise  # PyTriton answers each request of the batch with the error
        self.tally.record(sizes, ok=True)
        bounds = np.cumsum([0, *sizes])
        return [{name: value[a:b] for name, value in values.items()} for a, b in zip(bounds[:-1], bounds[1:])]

    def close(self) -> None:
        self.backend.close()

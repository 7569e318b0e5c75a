"""What one served model instance does with the requests Triton's dynamic batcher hands it.

Triton merges requests into one execution (up to ``max_batch_size`` images); :class:`ServedScorer` scores the
merged batch with a gedge backend (the same backend, and so the same numbers, as ``gedge inspect``), adds the
decision (primary normalised score >= the artifact's threshold) and splits the outputs back per request.
:class:`ServeTally` counts requests (accepted, answered, failed, refused; in total and per tagged client),
images and the batch sizes formed (shared by all instances): what ``gedge serve`` reports when it stops, and what
a load test reads (``<name>-tally``) to count the requests the server accepted that never reached their client.
No Triton import here: the callable takes any mapping per request.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from gedge.core.backend import Backend
from gedge.core.scores import OUTPUT_NAMES

DECISION = "decision"


STOPPING = "unavailable: the server is stopping and takes no new requests (send it again, to another replica)"

# A request parameter that names the client run it belongs to (``gedge triton load`` sends one): the tally counts
# such requests per client, so that a load test can compare what the server accepted and answered for it with
# what it received, also on a server other clients use.
CLIENT_PARAMETER = "gedge_client"
TALLY_SUFFIX = "-tally"  # the companion model that answers with the tally (gedge.serve.server binds it)


@dataclass
class ClientTally:
    """One tagged client's requests as the server saw them."""

    accepted: int = 0  # reached an instance while serving (answered, failed, or neither yet)
    answered: int = 0  # scored and handed back to Triton
    failed: int = 0  # the backend failed: answered with an explicit error
    refused: int = 0  # arrived after a stop signal: an explicit error, never executed


@dataclass
class ServeTally:
    """Counts over the server's life, from every instance (thread-safe)."""

    requests: int = 0  # answered: scored and handed back to Triton
    images: int = 0
    executions: int = 0
    failed_requests: int = 0
    refused_requests: int = 0  # arrived after a stop signal: an explicit error, never executed
    accepted_requests: int = 0  # reached an instance while serving
    in_flight: int = 0  # executions running now
    stopping: bool = False
    batch_sizes: Counter = field(default_factory=Counter)  # images per execution -> executions
    clients: dict[str, ClientTally] = field(default_factory=dict)  # per CLIENT_PARAMETER
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _each_client(self, tags: Sequence[str | None], name: str) -> None:
        for tag in tags:
            if tag:
                counts = self.clients.setdefault(tag, ClientTally())
                setattr(counts, name, getattr(counts, name) + 1)

    def admit(self, tags: Sequence[str | None]) -> bool:
        """Whether an execution of these requests may start (False once stopping: they are refused, not lost)."""
        with self.lock:
            if self.stopping:
                self.refused_requests += len(tags)
                self._each_client(tags, "refused")
                return False
            self.in_flight += 1
            self.accepted_requests += len(tags)
            self._each_client(tags, "accepted")
            return True

    def stop(self) -> None:
        with self.lock:
            self.stopping = True

    def idle(self) -> bool:
        with self.lock:
            return self.in_flight == 0

    def record(self, sizes: list[int], tags: Sequence[str | None], ok: bool) -> None:
        """An execution's end: its requests answered (handed back to Triton) or failed."""
        with self.lock:
            self.in_flight -= 1
            self.executions += 1
            if ok:
                self.requests += len(sizes)
                self.images += sum(sizes)
                self.batch_sizes[sum(sizes)] += 1
            else:
                self.failed_requests += len(sizes)
            self._each_client(tags, "answered" if ok else "failed")

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"requests_answered": self.requests, "images": self.images, "executions": self.executions,
                    "failed_requests": self.failed_requests, "refused_requests": self.refused_requests,
                    "accepted_requests": self.accepted_requests,
                    "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
                    "clients": {tag: asdict(c) for tag, c in self.clients.items()}}


def client_tag(request: Any) -> str | None:
    """The client run a request belongs to (its CLIENT_PARAMETER), if it names one."""
    parameters = getattr(request, "parameters", None) or {}
    tag = parameters.get(CLIENT_PARAMETER)
    return str(tag) if tag else None


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
        tags = [client_tag(request) for request in requests]
        if not self.tally.admit(tags):
            raise RuntimeError(STOPPING)
        try:
            batch = np.concatenate([request[self.input_name] for request in requests])
            values = self.outputs(batch)
        except Exception:
            self.tally.record(sizes, tags, ok=False)
            raise  # PyTriton answers each request of the batch with the error
        self.tally.record(sizes, tags, ok=True)
        bounds = np.cumsum([0, *sizes])
        return [{name: value[a:b] for name, value in values.items()} for a, b in zip(bounds[:-1], bounds[1:])]

    def close(self) -> None:
        self.backend.close()

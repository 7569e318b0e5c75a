"""A bounded load test of a served scorer: many concurrent clients, every request accounted for.

``clients`` threads, each with its own Triton client (HTTP or gRPC), send ``requests`` requests in total (each
``images`` uint8 tiles, drawn from a small pool), stopping early after ``seconds``. Every request ends as an
answer or as an explicit error (a timeout is an error); ``lost`` = sent - answered - errors must be 0. Each
answer is checked against the server's own answer for the same tile sent alone before the load (so a request
that got another request's scores, a batching bug, counts as ``wrong``).

The batch sizes Triton's dynamic batcher formed come from the server: the executions and inferences counted
on the metrics endpoint (``nv_inference_exec_count``, ``nv_inference_count``: the mean batch) and, where the
statistics endpoint is open (``gedge serve`` leaves it open), the count per batch size. Meant for loopback or
a test network only: the request count and the time are both bounded.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from gedge.core.errors import ConfigError, RuntimeFailure, first_line
from gedge.core.optional import require
from gedge.core.timing import percentile
from gedge.runtime.served import ServedRef, parse_reference


@dataclass(frozen=True)
class LoadOptions:
    clients: int = 16
    requests: int = 2000  # in total, over all clients
    seconds: float = 60.0  # stop sending after this long, whatever the count
    images: int = 1  # tiles per request
    timeout_s: float = 30.0  # per request: a request not answered by then is an error
    metrics_url: str | None = None  # default: the server's host, port 8002
    pool: int = 16  # distinct tiles sent

    def __post_init__(self) -> None:
        if self.clients < 1 or self.requests < 1 or self.images < 1 or self.pool < 1:
            raise ConfigError("clients, requests, images and pool must be at least 1")
        if self.seconds <= 0 or self.timeout_s <= 0:
            raise ConfigError("the time bound and the timeout must be positive")


@dataclass
class LoadReport:
    model: str
    protocol: str
    clients: int
    sent: int = 0
    answered: int = 0
    errors: int = 0
    wrong: int = 0  # answered with scores that are not the tile's own
    seconds: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)
    executions: int | None = None  # from the metrics endpoint
    inferences: int | None = None
    batch_sizes: dict[str, int] = field(default_factory=dict)  # from the statistics endpoint: size -> executions
    images_per_request: int = 1

    @property
    def lost(self) -> int:
        return self.sent - self.answered - self.errors

    @property
    def requests_per_second(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_batch(self) -> float | None:
        return self.inferences / self.executions if self.executions else None

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.update(lost=self.lost, requests_per_second=round(self.requests_per_second, 1),
                      mean_batch=None if self.mean_batch is None else round(self.mean_batch, 2))
        return values


def _module(ref: ServedRef) -> Any:
    """Triton's client library for the reference's protocol (the serve extra; needed only when load is sent)."""
    return require(f"tritonclient.{'grpc' if ref.protocol == 'grpc' else 'http'}", "`gedge triton load`")


def _client(ref: ServedRef, timeout_s: float) -> Any:
    if ref.protocol == "grpc":
        return _module(ref).InferenceServerClient(ref.address)
    return _module(ref).InferenceServerClient(ref.address, ssl=ref.tls, connection_timeout=timeout_s,
                                              network_timeout=timeout_s)


def _infer(client: Any, ref: ServedRef, batch: np.ndarray, timeout_s: float) -> np.ndarray:
    module = _module(ref)
    pixels = module.InferInput("pixels", list(batch.shape), "UINT8")
    pixels.set_data_from_numpy(batch)
    extra = {"client_timeout": timeout_s} if ref.protocol == "grpc" else {}
    result = client.infer(ref.model, [pixels], outputs=[module.InferRequestedOutput("score")], **extra)
    return result.as_numpy("score").reshape(-1)


def metrics_counts(url: str, model: str) -> tuple[int, int] | None:
    """(executions, inferences) of ``model`` from a Prometheus metrics endpoint (None where it cannot be read)."""
    try:
        text = urllib.request.urlopen(url, timeout=10).read().decode()
    except OSError:
        return None
    values = {"nv_inference_exec_count": 0, "nv_inference_count": 0}
    for line in text.splitlines():
        name = line.split("{", 1)[0]
        if name in values and f'model="{model}"' in line:
            values[name] += int(float(line.rsplit(" ", 1)[1]))
    return values["nv_inference_exec_count"], values["nv_inference_count"]


def batch_stats(ref: ServedRef) -> dict[int, int] | None:
    """Executions per batch size from the statistics endpoint (None where it is guarded or absent)."""
    url = f"{'https' if ref.tls else 'http'}://{ref.address}/v2/models/{ref.model}/stats"
    try:
        payload = json.loads(urllib.request.urlopen(url, timeout=10).read().decode())
    except (OSError, ValueError):
        return None
    stats = (payload.get("model_stats") or [{}])[0].get("batch_stats") or []
    return {int(s["batch_size"]): int(s["compute_infer"]["count"]) for s in stats}


def _delta(after: dict[int, int] | None, before: dict[int, int] | None) -> dict[str, int]:
    if after is None:
        return {}
    changed = {size: count - (before or {}).get(size, 0) for size, count in sorted(after.items())}
    return {str(size): count for size, count in changed.items() if count}


def run_load(reference: str, options: LoadOptions, tile_shape: tuple[int, int, int]) -> LoadReport:
    """Send the load; the report counts every request (see the module doc)."""
    ref = parse_reference(reference)
    if ref.protocol != "http" and options.metrics_url is None:
        raise ConfigError("give the metrics URL for a gRPC server (its HTTP port is not known)")
    metrics_url = options.metrics_url or f"http://{ref.address.rsplit(':', 1)[0]}:8002/metrics"
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (options.pool, options.images, *tile_shape), dtype=np.uint8)
    first = _client(ref, options.timeout_s)
    try:
        expected = [_infer(first, ref, pool[i], options.timeout_s) for i in range(options.pool)]
    except Exception as exc:
        raise RuntimeFailure(f"server {ref.server}, model {ref.model}: the first requests failed: {exc}") from None
    report = LoadReport(ref.reference, ref.protocol, options.clients, images_per_request=options.images)
    before, stats_before = metrics_counts(metrics_url, ref.model), batch_stats(ref)
    latencies: list[float] = []
    errors: Counter = Counter()
    lock = threading.Lock()
    tickets = iter(range(options.requests))
    started = time.perf_counter()
    deadline = started + options.seconds

    def client_loop() -> None:
        client = _client(ref, options.timeout_s)
        while time.perf_counter() < deadline:
            with lock:
                ticket = next(tickets, None)
                if ticket is None:
                    return
                report.sent += 1
            which = ticket % options.pool
            t0 = time.perf_counter()
            try:
                scores = _infer(client, ref, pool[which], options.timeout_s)
            except Exception as exc:
                with lock:
                    report.errors += 1
                    errors[first_line(exc, named=True)] += 1
                continue
            elapsed = (time.perf_counter() - t0) * 1e3
            with lock:
                report.answered += 1
                latencies.append(elapsed)
                report.wrong += not np.allclose(scores, expected[which], rtol=1e-5, atol=1e-6)

    threads = [threading.Thread(target=client_loop, name=f"gedge-load-{i}") for i in range(options.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.perf_counter() - started
    after = metrics_counts(metrics_url, ref.model)
    if before is not None and after is not None:
        report.executions, report.inferences = after[0] - before[0], after[1] - before[1]
    report.batch_sizes = _delta(batch_stats(ref), stats_before)
    report.latency_ms = {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)} if latencies else {}
    report.error_kinds = dict(errors)
    return report

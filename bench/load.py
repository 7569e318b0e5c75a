"""A bounded load test of a served scorer: many concurrent clients, every request accounted for.

``clients`` threads, each with its own Triton client (HTTP or gRPC), send ``requests`` requests in total (each
``images`` uint8 tiles, drawn from a small pool), stopping early after ``seconds``. Every request ends, on the
client, as an answer or as an error (a timeout is an error); errors that are the server's explicit refusals
("the server is stopping", a full queue) are counted apart as ``refused``. Each request carries the run's tag
(:data:`gedge.serve.scorer.CLIENT_PARAMETER`), and ``gedge serve`` counts the tagged requests it accepted,
answered, failed and refused (its ``<name>-tally`` model): ``lost`` is the requests the server accepted and did
not fail that never reached the client as an answer, accepted - failed - answered (the client's), from the
server's counts after the load (:func:`settle`; a server that stopped during the load gives them in its
"stopped" event instead). Where the server has no tally model (a Triton server of NVIDIA's container), its
statistics endpoint's successful requests stand in for the accepted ones (counting every client's requests). Each
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
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from gedge.core.errors import ConfigError, RuntimeFailure, first_line
from gedge.core.optional import require
from gedge.core.timing import percentile
from gedge.runtime.served import ServedRef, parse_reference
from gedge.serve.scorer import CLIENT_PARAMETER, STOPPING, TALLY_SUFFIX

# Errors that are the server's explicit refusal of a request it did not accept (never lost).
REFUSALS = (STOPPING.split(":", 1)[1].strip(), "exceeds maximum queue size", "queue is full")


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
    tag: str = ""  # the run's CLIENT_PARAMETER: the server counts its requests under it
    sent: int = 0
    answered: int = 0
    errors: int = 0  # every request that did not end as an answer (refusals included)
    refused: int = 0  # errors that are the server's explicit refusals (stopping, queue full)
    wrong: int = 0  # answered with scores that are not the tile's own
    seconds: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)
    executions: int | None = None  # from the metrics endpoint
    inferences: int | None = None
    batch_sizes: dict[str, int] = field(default_factory=dict)  # from the statistics endpoint: size -> executions
    images_per_request: int = 1
    server: dict[str, int] | None = None  # the server's counts of this run's requests: accepted, answered, failed
    server_source: str = ""  # where they come from

    @property
    def lost(self) -> int | None:
        """Requests the server accepted (and did not fail) that never reached the client as an answer; None where
        the server's counts are not known."""
        if self.server is None:
            return None
        return self.server["accepted"] - self.server.get("failed", 0) - self.answered

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


def settle(report: LoadReport, tally: dict[str, Any] | None, source: str) -> LoadReport:
    """The report with the server's counts of its requests from ``tally`` (a ``gedge serve`` tally: the
    ``<name>-tally`` model's answer or the "stopped" event); without this run's tag in it, the server accepted
    none of its requests."""
    if tally is not None:
        mine = (tally.get("clients") or {}).get(report.tag) or {}
        report.server = {key: int(mine.get(key, 0)) for key in ("accepted", "answered", "failed", "refused")}
        report.server_source = source
    return report


def _module(ref: ServedRef) -> Any:
    """Triton's client library for the reference's protocol (the serve extra; needed only when load is sent)."""
    return require(f"tritonclient.{'grpc' if ref.protocol == 'grpc' else 'http'}", "`gedge triton load`")


def _client(ref: ServedRef, timeout_s: float) -> Any:
    if ref.protocol == "grpc":
        return _module(ref).InferenceServerClient(ref.address)
    return _module(ref).InferenceServerClient(ref.address, ssl=ref.tls, connection_timeout=timeout_s,
                                              network_timeout=timeout_s)


def _infer(client: Any, ref: ServedRef, batch: np.ndarray, timeout_s: float, tag: str = "") -> np.ndarray:
    module = _module(ref)
    pixels = module.InferInput("pixels", list(batch.shape), "UINT8")
    pixels.set_data_from_numpy(batch)
    extra: dict[str, Any] = {"client_timeout": timeout_s} if ref.protocol == "grpc" else {}
    if tag:
        extra["parameters"] = {CLIENT_PARAMETER: tag}
    result = client.infer(ref.model, [pixels], outputs=[module.InferRequestedOutput("score")], **extra)
    return result.as_numpy("score").reshape(-1)


def server_tally(ref: ServedRef, timeout_s: float = 10.0) -> dict[str, Any] | None:
    """``gedge serve``'s tally (its ``<name>-tally`` model); None where the server has none or is gone."""
    try:
        module = _module(ref)
        client = _client(ref, timeout_s)
        ask = module.InferInput("ask", [1], "UINT8")
        ask.set_data_from_numpy(np.zeros(1, dtype=np.uint8))
        raw = client.infer(ref.model + TALLY_SUFFIX, [ask]).as_numpy("tally").reshape(-1)[0]
        client.close()
    except Exception:  # no such model (another server), or the server stopped: the counts are not known
        return None
    return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))


def completed_requests(ref: ServedRef) -> int | None:
    """Requests of the model Triton completed successfully (statistics endpoint), None where it is not open."""
    url = f"{'https' if ref.tls else 'http'}://{ref.address}/v2/models/{ref.model}/stats"
    try:
        payload = json.loads(urllib.request.urlopen(url, timeout=10).read().decode())
        return int(payload["model_stats"][0]["inference_stats"]["success"]["count"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


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


@dataclass
class _Run:
    """What the client threads of one load run share."""

    ref: ServedRef
    options: LoadOptions
    pool: np.ndarray
    expected: list[np.ndarray]
    report: LoadReport
    deadline: float
    running: threading.Event | None = None  # set at the first answer of the load
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    tickets: Any = None

    def failed(self, exc: Exception) -> None:
        whole = str(exc).lower()
        with self.lock:
            self.report.errors += 1
            self.report.refused += any(words.lower() in whole for words in REFUSALS)
            self.errors[first_line(exc, named=True)] += 1

    def answered(self, scores: np.ndarray, which: int, elapsed_ms: float) -> None:
        with self.lock:
            self.report.answered += 1
            self.latencies.append(elapsed_ms)
            self.report.wrong += not np.allclose(scores, self.expected[which], rtol=1e-5, atol=1e-6)
        if self.running is not None:
            self.running.set()


def _client_loop(run: _Run) -> None:
    client = _client(run.ref, run.options.timeout_s)
    while time.perf_counter() < run.deadline:
        with run.lock:
            ticket = next(run.tickets, None)
            if ticket is None:
                return
            run.report.sent += 1
        which = ticket % run.options.pool
        t0 = time.perf_counter()
        try:
            scores = _infer(client, run.ref, run.pool[which], run.options.timeout_s, run.report.tag)
        except Exception as exc:
            run.failed(exc)
            continue
        run.answered(scores, which, (time.perf_counter() - t0) * 1e3)


def _server_counts(run: _Run, completed_before: int | None) -> None:
    """The server's counts of this run's requests: gedge serve's tally, else Triton's successful requests."""
    tally = server_tally(run.ref)
    if tally is not None:
        settle(run.report, tally, "gedge serve's tally of this run's requests")
        return
    after = completed_requests(run.ref)
    if completed_before is not None and after is not None:
        run.report.server = {"accepted": after - completed_before, "answered": after - completed_before,
                             "failed": 0, "refused": 0}
        run.report.server_source = "Triton's statistics: every client's successful requests during the run"


def run_load(reference: str, options: LoadOptions, tile_shape: tuple[int, int, int],
             running: threading.Event | None = None) -> LoadReport:
    """Send the load; the report counts every request (see the module doc). ``running`` is set once the load (past
    the pool's first requests) has its first answer."""
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
    report = LoadReport(ref.reference, ref.protocol, options.clients, tag=f"load-{uuid.uuid4().hex[:12]}",
                        images_per_request=options.images)
    before, stats_before, completed_before = metrics_counts(metrics_url, ref.model), batch_stats(ref), \
        completed_requests(ref)
    started = time.perf_counter()
    run = _Run(ref, options, pool, expected, report, started + options.seconds, running,
               tickets=iter(range(options.requests)))
    threads = [threading.Thread(target=_client_loop, args=(run,), name=f"gedge-load-{i}")
               for i in range(options.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.perf_counter() - started
    after = metrics_counts(metrics_url, ref.model)
    if before is not None and after is not None:
        report.executions, report.inferences = after[0] - before[0], after[1] - before[1]
    report.batch_sizes = _delta(batch_stats(ref), stats_before)
    report.latency_ms = {"p50": percentile(run.latencies, 50), "p99": percentile(run.latencies, 99)} \
        if run.latencies else {}
    report.error_kinds = dict(run.errors)
    _server_counts(run, completed_before)
    return report

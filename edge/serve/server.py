"""``gedge serve``: a real Triton Inference Server (PyTriton's bundled ``tritonserver``) in front of a gedge backend.

The artifact is read once (:func:`gedge.core.artifacts.served.open_deployable`: its manifest or sidecar verified,
a refused artifact refused) and opened exactly as ``gedge inspect`` opens it
(:func:`gedge.runtime.registry.open_backend`), once per model instance from that one read, and warmed with a zero
batch, all before the server starts: a refused or broken artifact is never served. Then PyTriton starts
``tritonserver`` with HTTP, gRPC and metrics endpoints and binds three models:

* ``<name>``: input ``pixels`` (uint8, ``[H, W, C]``), outputs every score (float32 ``[1]`` per image), the
  ``decision`` (bool) and, where the artifact has one, ``amap``; Triton's dynamic batcher merges requests up to
  ``max_batch`` images, waiting at most ``queue_delay_us`` to fill a batch;
* ``<name>-facts``: the artifact's facts for clients (:func:`gedge.core.artifacts.served.served_facts`), since
  PyTriton cannot put parameters into a model's config the way ``gedge triton export`` does;
* ``<name>-tally``: the server's own counts of requests (accepted, answered, failed, refused; per tagged client
  too), which a load test compares with what its clients received.

The "ready" event comes once Triton says all three models are ready, so a client started on it is served.

SIGINT (Ctrl-C) or SIGTERM stops it without losing an accepted request: executions already running finish and
answer; requests that reach an instance afterwards get an explicit "server is stopping" error (a client retries
them elsewhere), also on connections kept alive, so that nothing is cut off when tritonserver closes its
connections. The drain waits for the running executions and then for Triton to have every answer the instances
handed back (its statistics), never a fixed pause; then tritonserver stops (waiting up to ``drain_seconds`` for
its connections), the instances close and "stopped" is reported. Signals after the first are ignored until then.
Health and readiness are Triton's own (``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/<name>/ready``).
PyTriton guards the model-repository, shared-memory, trace and logging endpoints with a token; the statistics
endpoint (read-only counters, like ``/metrics``) is left open so that load tests can read the batch sizes formed.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gedge.core.artifacts.served import ServedFacts, open_deployable, served_facts
from gedge.core.errors import ConfigError, RuntimeFailure, first_line
from gedge.runtime.registry import auto_backend, open_backend
from gedge.serve.scorer import DECISION, TALLY_SUFFIX, ServedScorer, ServeTally, output_names
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig
from tritonclient.utils import InferenceServerException

FACTS_SUFFIX = "-facts"
READY_TIMEOUT_S = 120.0  # how long the bound models may take to load before the server counts as broken
START_ATTEMPTS = 3  # tritonserver starts, where an instance missed PyTriton's handshake (_handshake_race)


GUARDED_ENDPOINTS = ["model-repository", "shared-memory", "trace", "logging"]


@dataclass(frozen=True)
class ServeOptions:
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    address: str = "0.0.0.0"  # every interface: cameras call from the network
    max_batch: int = 64
    queue_delay_us: int = 500
    instances: int = 1
    name: str | None = None  # the model's name; default: the artifact's file name without suffix
    backend: str | None = None  # a registry kind; default: the artifact's own (a graph: fastest CPU backend)
    threads: int = 0  # per instance (onnxruntime / OpenVINO threads; 0: their default)
    drain_seconds: int = 30  # how long stopping waits for accepted requests
    log_file: Path | None = None  # tritonserver's log
    force: bool = False  # serve an artifact whose recorded verdict (INT8 gate, engine parity) failed

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.instances < 1:
            raise ConfigError("max batch and instances must be at least 1")
        if self.queue_delay_us < 0 or self.drain_seconds < 0:
            raise ConfigError("queue delay and drain time must be 0 or more")
        ports = (self.http_port, self.grpc_port, self.metrics_port)
        if len(set(ports)) != 3 or not all(0 < p < 65536 for p in ports):
            raise ConfigError(f"HTTP, gRPC and metrics ports must be three different ports, got {ports}")

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


@dataclass
class ServedModel:
    """The opened instances of one artifact and what the server says about it."""

    name: str
    scorers: list[ServedScorer]
    facts: ServedFacts
    tally: ServeTally

    def close(self) -> None:
        for scorer in self.scorers:
            scorer.close()


def default_name(path: str | Path) -> str:
    stem = Path(path).name.rsplit(".", 1)[0]
    return "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in stem) or "scorer"


def open_model(path: str | Path, options: ServeOptions) -> ServedModel:
    """Verify and open the artifact once per instance, and warm each with a zero batch."""
    artifact = open_deployable(path, options.force)  # read once: sha256 checked, recorded verdicts enforced
    facts = artifact.model_facts()
    if facts.input_kind != "uint8-nhwc":
        raise ConfigError(f"{artifact.name}: a served scorer takes camera bytes (uint8 NHWC); export the graph "
                          "with --input uint8-nhwc")
    if artifact.max_batch is not None and options.max_batch > artifact.max_batch:
        raise ConfigError(f"{artifact.name}: --max-batch {options.max_batch} is over the engine profile's "
                          f"{artifact.max_batch}")
    kind = options.backend or auto_backend(artifact).kind
    name = options.name or default_name(path)
    tally = ServeTally()
    scorers: list[ServedScorer] = []
    spec = artifact.input_spec
    try:
        for _ in range(options.instances):
            backend = open_backend(artifact, kind, threads=options.threads, with_amap=facts.with_amap, slots=1,
                                   force=options.force)
            scorer = ServedScorer(backend, facts.threshold, facts.input_name, tally, facts.with_amap)
            scorers.append(scorer)
            scorer.outputs(np.zeros((1, spec.size, spec.size, spec.channels), dtype=np.uint8))
    except BaseException:
        for scorer in scorers:
            scorer.close()
        raise
    label = getattr(scorers[0].backend, "name", kind)
    return ServedModel(name, scorers, served_facts(artifact, name, options.max_batch, label), tally)


def _bind(triton: Triton, model: ServedModel, options: ServeOptions) -> None:
    facts = model.facts.facts
    spec = facts.input_spec()
    image = (spec.size, spec.size, spec.channels)
    outputs = [Tensor(name=n, dtype=np.bool_ if n == DECISION else np.float32,
                      shape=(spec.size, spec.size) if n == "amap" else (1,)) for n in output_names(facts.with_amap)]
    batcher = DynamicBatcher(max_queue_delay_microseconds=options.queue_delay_us)
    triton.bind(model.name, [scorer.__call__ for scorer in model.scorers],
                inputs=[Tensor(name=facts.input_name, dtype=np.uint8, shape=image)], outputs=outputs,
                config=ModelConfig(max_batch_size=options.max_batch, batcher=batcher))
    text = np.array([json.dumps(model.facts.to_dict()).encode()], dtype=np.bytes_)

    def facts(requests: list) -> list[dict[str, np.ndarray]]:
        return [{"facts": text} for _ in requests]

    triton.bind(model.name + FACTS_SUFFIX, facts, inputs=[Tensor(name="ask", dtype=np.uint8, shape=(1,))],
                outputs=[Tensor(name="facts", dtype=np.bytes_, shape=(1,))], config=ModelConfig(batching=False))

    def tally(requests: list) -> list[dict[str, np.ndarray]]:
        counts = np.array([json.dumps(model.tally.to_dict()).encode()], dtype=np.bytes_)
        return [{"tally": counts} for _ in requests]

    triton.bind(model.name + TALLY_SUFFIX, tally, inputs=[Tensor(name="ask", dtype=np.uint8, shape=(1,))],
                outputs=[Tensor(name="tally", dtype=np.bytes_, shape=(1,))], config=ModelConfig(batching=False))


def triton_config(options: ServeOptions) -> TritonConfig:
    return TritonConfig(http_address=options.address, http_port=options.http_port,
                        grpc_address=options.address, grpc_port=options.grpc_port,
                        metrics_address=options.address, metrics_port=options.metrics_port,
                        exit_timeout_secs=options.drain_seconds, log_verbose=0, log_file=options.log_file)


def endpoints(options: ServeOptions, name: str) -> dict[str, str]:
    host = "127.0.0.1" if options.address in ("0.0.0.0", "") else options.address
    return {"http": f"http://{host}:{options.http_port}", "grpc": f"grpc://{host}:{options.grpc_port}",
            "metrics": f"http://{host}:{options.metrics_port}/metrics", "model": name,
            "ready": f"http://{host}:{options.http_port}/v2/models/{name}/ready"}


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.read()
    except OSError:
        return None


def wait_until_ready(options: ServeOptions, names: list[str], seconds: float = READY_TIMEOUT_S) -> None:
    """Wait until Triton says every bound model is ready (PyTriton loads models bound to a running server without
    waiting for them): the "ready" event then means that a client's first request is served."""
    base = endpoints(options, "")["http"]
    deadline = time.monotonic() + seconds
    for name in names:
        while _get(f"{base}/v2/models/{name}/ready") is None:
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"the served model {name} was not ready after {seconds:.0f} s; see the "
                                     f"tritonserver log {options.log_file}")
            time.sleep(0.1)


def completed_by_triton(options: ServeOptions, name: str) -> int | None:
    """The requests of ``name`` that Triton counts as completed successfully (its statistics endpoint)."""
    text = _get(f"{endpoints(options, name)['http']}/v2/models/{name}/stats")
    try:
        stats = json.loads(text or b"")["model_stats"][0]["inference_stats"]
        return int(stats["success"]["count"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def drain(tally: ServeTally, seconds: float, handed_over: Callable[[], int | None] = lambda: None) -> None:
    """Wait (at most ``seconds``) until no execution is running, then until Triton has every answer the instances
    handed back (``handed_over``: its count of completed requests), so that none is still on its way out when
    tritonserver stops."""
    deadline = time.monotonic() + seconds
    while not tally.idle() and time.monotonic() < deadline:
        time.sleep(0.01)
    answered = tally.to_dict()["requests_answered"]
    while time.monotonic() < deadline:
        completed = handed_over()
        if completed is None or completed >= answered:
            return
        time.sleep(0.01)


def run_server(path: str | Path, options: ServeOptions, on_event: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Serve the artifact until SIGINT or SIGTERM (or tritonserver exits); returns the closing tally.

    ``on_event`` gets ``{"event": "ready", ...}`` once every model is ready, ``{"event": "stopping", ...}`` when a
    signal arrived and ``{"event": "stopped", ...}`` at the end. Signals after the first are noted and ignored until
    "stopped" has been given: a second SIGTERM neither cuts the drain short nor kills the process before it
    reports."""
    model = open_model(path, options)
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            _serve_until_stopped(model, options, on_event, stop, received)
        finally:  # leaving the Triton block stopped tritonserver (accepted requests answered first), then the proxies
            model.close()
        stopped = {"event": "stopped", "model": model.name, "signal": received[0] if received else "",
                   **model.tally.to_dict()}
        on_event(stopped)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return stopped


def _handshake_race(exc: BaseException) -> bool:
    """PyTriton 0.7's model instances after the first read their configuration from the first one's handshake
    socket as soon as the file exists, which can be before it listens: on a busy machine an instance then fails
    to load with "Connection refused" (docs/backend-quirks.md). A fresh start usually gets past it."""
    text = str(exc)
    return "load failed for model" in text and "handshake" in text and "Connection refused" in text


def _start(triton: Triton, model: ServedModel, options: ServeOptions) -> None:
    _bind(triton, model, options)
    triton.run()
    wait_until_ready(options, [model.name, model.name + FACTS_SUFFIX, model.name + TALLY_SUFFIX])


def _serve_until_stopped(model: ServedModel, options: ServeOptions, on_event: Callable[[dict[str, Any]], None],
                         stop: threading.Event, received: list[str]) -> None:
    for attempt in range(1, START_ATTEMPTS + 1):
        with Triton(config=triton_config(options),
                    security_config=TritonSecurityConfig(restricted_endpoints=GUARDED_ENDPOINTS)) as triton:
            try:
                _start(triton, model, options)
            except InferenceServerException as exc:
                if attempt == START_ATTEMPTS or not _handshake_race(exc) or stop.is_set():
                    raise RuntimeFailure(f"tritonserver could not load the model: {first_line(exc)}; "
                                         f"its log: {options.log_file}") from None
                on_event({"event": "note", "line": f"a model instance missed PyTriton's handshake (attempt "
                                                   f"{attempt} of {START_ATTEMPTS}); starting tritonserver again"})
                continue  # leaving the block stopped this tritonserver
            on_event({"event": "ready", **endpoints(options, model.name), "facts": model.facts,
                      "options": options.to_dict()})
            while not stop.wait(0.5):
                if not triton.is_alive():
                    break
            model.tally.stop()  # executions already started finish and answer; later requests are refused
            on_event({"event": "stopping", "signal": received[0] if received else "tritonserver exited",
                      "drain_seconds": options.drain_seconds, **model.tally.to_dict()})
            drain(model.tally, options.drain_seconds, lambda: completed_by_triton(options, model.name))
            return

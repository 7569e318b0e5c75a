"""Triton client backend: scoring moves to a Triton server, everything else stays in the local pipeline.

:class:`TritonBackend` implements the same Backend protocol as the local backends: it takes the uint8 NHWC batch
and returns the same :class:`~gedge.core.scores.Scores`, so ``gedge inspect --server`` and ``gedge bench
--server`` tile, decide, merge boxes and report exactly as they do locally. It speaks HTTP or gRPC
(``tritonclient``), one client per thread, and keeps ``slots`` batches in flight at the server (the pipeline's
enqueue/collect), so that Triton's dynamic batcher can merge them with other cameras' requests.

The model's facts (input size, preprocessing, threshold, primary score, score statistics) come from the server:
from the config's ``gedge.facts`` parameter in a repository written by ``gedge triton export``, else from the
``<name>-facts`` model that ``gedge serve`` binds. A client started while the server is still loading its models
waits for them (at most ``ready_timeout_s``, with a line through :func:`gedge.runtime.served.notice`), then says
that the model is not ready yet. A batch larger than the server's ``max_batch_size`` is sent
as several requests. Connection errors (server restarting, connection reset) are retried ``retries`` times
with a growing pause; an error the server gives (bad input, unknown model) is not. Every error names the
server and the model, and every request is counted in :data:`gedge.runtime.served.LEDGER`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from gedge.core.artifacts.served import ServedFacts, served_artifact
from gedge.core.backend import BackendBase, BackendInfo
from gedge.core.errors import ArtifactError, ConfigError, RuntimeFailure, first_line
from gedge.core.scores import OUTPUT_NAMES, Scores
from gedge.runtime.options import OpenOptions
from gedge.runtime.served import ServedRef, counts_for, notice, parse_reference
from tritonclient.utils import InferenceServerException

FACTS_SUFFIX = "-facts"  # the companion model `gedge serve` binds (gedge.serve.server)
READY_TIMEOUT_S = 60.0  # how long a client waits for a server that is still loading its models
UNKNOWN_GRACE_S = 10.0  # a model absent this long from a server that has loaded the rest is not served there


RETRYABLE_STATUS = ("UNAVAILABLE", "502", "503", "504")


def retryable(exc: BaseException) -> bool:
    """A connection-level failure worth another try (not an answer from the server)."""
    if isinstance(exc, InferenceServerException):
        status = str(exc.status() or "")
        text = str(exc).lower()
        return any(code in status for code in RETRYABLE_STATUS) or "connect" in text or "is stopping" in text
    return isinstance(exc, (OSError, TimeoutError, EOFError)) or type(exc).__name__ in ("Timeout", "ConnectionError")


def describe(exc: BaseException) -> str:
    if isinstance(exc, InferenceServerException):
        return first_line(Exception(exc.message() or str(exc)))
    return first_line(exc, named=True)


class TritonBackend(BackendBase):
    """Scores uint8 NHWC batches on a Triton server (HTTP or gRPC)."""

    def __init__(self, reference: str, timeout_s: float = 60.0, retries: int = 3, slots: int = 2,
                 with_amap: bool = False, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        if retries < 0 or slots < 1 or timeout_s <= 0 or ready_timeout_s < 0:
            raise ConfigError("retries must be 0 or more, slots at least 1, the timeout positive and the readiness "
                              "wait 0 or more")
        self.ready_timeout_s = ready_timeout_s
        self.ref: ServedRef = parse_reference(reference)
        self.reference = self.ref.reference
        self.where = f"server {self.ref.server}, model {self.ref.model}"
        self.timeout_s, self.retries, self.slots = timeout_s, retries, slots
        self.counts = counts_for(self.reference)
        self._local = threading.local()
        self.served: ServedFacts = self._with_retries(self._read_facts, "reading the model's facts", count=False)
        self.artifact = served_artifact(self.served, self.reference, self.ref.server)
        facts = self.served.facts
        self.input_name = facts.input_name
        self.input_spec = facts.input_spec()
        self.max_batch = self.served.max_batch or None
        self.with_amap = with_amap and facts.with_amap
        self.outputs = [*OUTPUT_NAMES, *(["amap"] if self.with_amap else [])]
        served_by = self.served.backend or "?"
        self.name = f"triton-{self.ref.protocol} {self.ref.model} ({served_by})"
        self.info = BackendInfo(
            kind="triton", label=f"triton {self.ref.protocol} {facts.precision.upper()} ({served_by})",
            precision=facts.precision, device=self.ref.server, flavour=facts.flavour, with_amap=self.with_amap,
            slots=slots, max_batch=self.max_batch, artifact=self.artifact, notes=(f"scored on {self.where}",))
        self._executor = ThreadPoolExecutor(slots, thread_name_prefix="gedge-triton")
        self._futures: dict[int, Future] = {}

    # --- clients and facts ------------------------------------------------------------------------------------

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            if self.ref.protocol == "grpc":
                client = grpcclient.InferenceServerClient(self.ref.address)
            else:
                client = httpclient.InferenceServerClient(self.ref.address, ssl=self.ref.tls,
                                                          connection_timeout=self.timeout_s,
                                                          network_timeout=self.timeout_s)
            self._local.client = client
        return client

    def _module(self) -> Any:
        return grpcclient if self.ref.protocol == "grpc" else httpclient

    def _ready(self, client: Any) -> bool:
        """Whether the model and what its facts come from are loaded. (The server's own readiness says nothing
        here: it is true between two models that a server loads one after another.)"""
        if not client.is_model_ready(self.ref.model):
            return False
        return self._config_facts(client) is not None or client.is_model_ready(self.ref.model + FACTS_SUFFIX)

    def _wait_until_ready(self, client: Any) -> None:
        """Wait while the server is up but still loading the model (bounded, with one line saying so). A model
        still absent while the server has loaded everything else for UNKNOWN_GRACE_S is not served there: the
        caller's next request says so."""
        started, said, absent_since = time.monotonic(), False, None
        while not self._ready(client):
            now = time.monotonic()
            if not said:
                said = True
                notice(f"{self.where}: the model is not ready yet (the server is still loading it); waiting up to "
                       f"{self.ready_timeout_s:.0f} s")
            if now - started >= self.ready_timeout_s:
                raise RuntimeFailure(f"{self.where}: the model is not ready yet after {now - started:.0f} s (still "
                                     f"loading, or it failed to load: see the server's log); try again once "
                                     f"{self.ref.server}/v2/models/{self.ref.model}/ready answers")
            unknown = client.is_server_ready() and not client.is_model_ready(self.ref.model)
            absent_since = (absent_since or now) if unknown else None
            if absent_since is not None and now - absent_since >= UNKNOWN_GRACE_S:
                return
            time.sleep(0.25)

    def _config(self, client: Any) -> dict[str, Any]:
        config = client.get_model_config(self.ref.model, **({"as_json": True} if self.ref.protocol == "grpc"
                                                             else {}))
        return config.get("config", config)

    def _config_facts(self, client: Any) -> str | None:
        try:
            config = self._config(client)
        except InferenceServerException:
            return None
        return ((config.get("parameters") or {}).get("gedge.facts") or {}).get("string_value")

    def _read_facts(self) -> ServedFacts:
        client = self._client()
        self._wait_until_ready(client)
        try:
            config = self._config(client)
        except InferenceServerException as exc:
            if retryable(exc):
                raise
            raise ConfigError(f"{self.where}: the model is not served there ({describe(exc)}); name it with "
                              "--model-name") from None
        text = ((config.get("parameters") or {}).get("gedge.facts") or {}).get("string_value")
        if text is None:  # `gedge serve`: the facts come from the companion model
            ask = self._module().InferInput("ask", [1], "UINT8")
            ask.set_data_from_numpy(np.zeros(1, dtype=np.uint8))
            try:
                result = client.infer(self.ref.model + FACTS_SUFFIX, [ask])
            except InferenceServerException as exc:
                if retryable(exc):
                    raise
                raise ArtifactError("not a gedge scorer: no gedge.facts parameter in its config and no "
                                    f"{self.ref.model}{FACTS_SUFFIX} model", self.where) from None
            raw = result.as_numpy("facts").reshape(-1)[0]
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return ServedFacts.parse(text, self.where)

    # --- scoring ----------------------------------------------------------------------------------------------

    def _with_retries(self, call: Callable[[], Any], what: str, count: bool = True) -> Any:
        attempt = 0
        while True:
            try:
                value = call()
            except (ConfigError, ArtifactError):
                raise
            except Exception as exc:
                if retryable(exc) and attempt < self.retries:
                    attempt += 1
                    time.sleep(min(2.0, 0.1 * 2 ** attempt))
                    continue
                tries = f" after {attempt + 1} tries" if attempt else ""
                message = f"{self.where}: {what} failed{tries}: {describe(exc)}"
                if count:
                    self.counts.add(False, attempt, message)
                raise RuntimeFailure(message) from None
            if count:
                self.counts.add(True, attempt)
            return value

    def _request(self, chunk: np.ndarray) -> Scores:
        module = self._module()
        pixels = module.InferInput(self.input_name, list(chunk.shape), "UINT8")
        pixels.set_data_from_numpy(np.ascontiguousarray(chunk))
        wanted = [module.InferRequestedOutput(name) for name in self.outputs]
        timeout = {"client_timeout": self.timeout_s} if self.ref.protocol == "grpc" else {}
        result = self._client().infer(self.ref.model, [pixels], outputs=wanted, **timeout)
        values = {name: np.asarray(result.as_numpy(name), dtype=np.float32) for name in self.outputs}
        for name in OUTPUT_NAMES:
            values[name] = values[name].reshape(len(chunk))
        return Scores.from_dict(values)

    def score_impl(self, batch: np.ndarray) -> Scores:
        step = self.max_batch or len(batch)
        parts = [self._with_retries(lambda part=batch[i:i + step]: self._request(part),
                                    f"a request of {len(batch[i:i + step])} images")
                 for i in range(0, len(batch), step)]
        return parts[0] if len(parts) == 1 else Scores.concat(parts)

    def enqueue(self, slot: int, batch: np.ndarray) -> None:
        self._futures[slot] = self._executor.submit(self.score, batch)

    def collect(self, slot: int) -> Scores:
        return self._futures.pop(slot).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._futures.clear()


def open_artifact(reference: str, options: OpenOptions) -> TritonBackend:
    """The registry's opener: a client of the model ``reference`` names (its facts come from the server)."""
    return TritonBackend(reference, slots=options.slots, with_amap=options.with_amap)

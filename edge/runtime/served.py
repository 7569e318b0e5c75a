"""A model on a server, named by a URL, and the count of requests sent to it (no client library here).

``gedge inspect --server http://host:8000`` scores on a Triton server: the model is then the reference
``http://host:8000/v2/models/scorer`` (Triton's own REST path of the model; ``grpc://host:8001/v2/models/scorer``
for gRPC). :func:`is_served` is how the runtime registry tells such a reference from a model file, and
:data:`LEDGER` keeps, per reference, the requests a client process sent, retried and lost, so that the command
that ran a whole pipeline can report them and fail when any request failed. :func:`notice` passes a line the user
should see while a client waits (a model still loading) to whoever listens (the CLI prints it); the library never
prints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gedge.core.errors import ConfigError

SCHEMES = ("http://", "https://", "grpc://")


DEFAULT_MODEL = "scorer"


MODEL_PATH = "/v2/models/"


@dataclass(frozen=True)
class ServedRef:
    protocol: str  # http or grpc
    address: str  # host:port
    model: str
    tls: bool = False

    @property
    def server(self) -> str:
        return f"{'https' if self.tls else self.protocol}://{self.address}"

    @property
    def reference(self) -> str:
        return f"{self.server}{MODEL_PATH}{self.model}"


def is_served(model: Any) -> bool:
    """Whether ``model`` names a model on a server (a URL string), not a file."""
    return isinstance(model, str) and model.lower().startswith(SCHEMES)


def served_reference(server: str, model: str | None = None) -> str:
    """The reference of ``model`` (default ``scorer``) on ``server`` (``http://host:port``, ``grpc://host:port``
    or ``host:port`` for HTTP)."""
    text = server.strip().rstrip("/")
    if not text.lower().startswith(SCHEMES):
        if "://" in text:
            raise ConfigError(f"--server must be http://, https:// or grpc://host:port, got {server!r}")
        text = "http://" + text
    if MODEL_PATH in text:
        text, named = text.split(MODEL_PATH, 1)
        model = model or named
    return parse_reference(f"{text}{MODEL_PATH}{model or DEFAULT_MODEL}").reference


def parse_reference(reference: str) -> ServedRef:
    scheme, rest = reference.split("://", 1)
    address, _, model = rest.partition(MODEL_PATH)
    if not address or "/" in address or not model or "/" in model:
        raise ConfigError(f"not a served model reference (expected {scheme}://host:port{MODEL_PATH}NAME): "
                          f"{reference!r}")
    if ":" not in address:
        address += ":443" if scheme == "https" else ":8000" if scheme == "http" else ":8001"
    return ServedRef("grpc" if scheme == "grpc" else "http", address, model, tls=scheme == "https")


def reference_name(reference: str) -> str:
    return Path(reference).name


@dataclass
class RequestCounts:
    """Requests to one served model from this process."""

    requests: int = 0
    failed: int = 0
    retries: int = 0
    first_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, ok: bool, retries: int, error: str = "") -> None:
        with self.lock:
            self.requests += 1
            self.retries += retries
            if not ok:
                self.failed += 1
                if len(self.first_errors) < 3:
                    self.first_errors.append(error)

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": self.requests, "failed_requests": self.failed, "retries": self.retries,
                    "first_errors": list(self.first_errors)}


LEDGER: dict[str, RequestCounts] = {}


def counts_for(reference: str) -> RequestCounts:
    return LEDGER.setdefault(reference, RequestCounts())


_LISTENERS: list[Callable[[str], None]] = []


def listen(callback: Callable[[str], None] | None) -> None:
    """Give :func:`notice`'s lines to ``callback`` (None: to nobody)."""
    _LISTENERS[:] = [callback] if callback is not None else []


def notice(line: str) -> None:
    for callback in list(_LISTENERS):
        callback(line)

"""Which installed CPU backend is fastest for one graph on this machine: measured once, then remembered.

A static ranking (:data:`gedge.runtime.registry.CPU_RANKING`) is right for the graph it was measured on and
can be wrong for another (the order flips with the graph's size: docs/openvino.md). So where two or more
backends can run a graph, :func:`choose_by_measuring` times each on random inputs of the graph's shape at the
batch size of the run (interleaved rounds of
:mod:`gedge.core.timing`, median per backend) and keeps the fastest. The result is cached in
``backend-choice.json`` under ``$GEDGE_CACHE_DIR`` (default ``~/.cache/gedge``), keyed by the graph's sha256,
precision, batch size, threads, the CPU and the backends' versions, so the next run on the same machine
starts without measuring. A cache that cannot be read or written only costs the measurement.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from gedge.core.atomic import write_json
from gedge.core.backend import Backend
from gedge.core.machine import cpu_model, package_version
from gedge.core.timing import Rounds, interleaved, percentile

CACHE_NAME = "backend-choice.json"
ROUNDS = 3


@dataclass
class MeasuredChoice:
    kind: str
    images_per_second: dict[str, float]  # per candidate backend
    cached: bool

    def describe(self) -> str:
        rates = ", ".join(f"{k} {v:.0f} img/s" for k, v in sorted(self.images_per_second.items(),
                                                                 key=lambda kv: -kv[1]))
        return f"measured here: {rates}" + ("; remembered from an earlier run" if self.cached else "")


def cache_file() -> Path:
    root = os.environ.get("GEDGE_CACHE_DIR") or Path.home() / ".cache" / "gedge"
    return Path(root) / CACHE_NAME


def cache_key(sha256: str, precision: str, batch: int, threads: int, candidates: list[str]) -> str:
    versions = [f"{kind}={package_version(kind) or '?'}" for kind in candidates]
    return "|".join([sha256, precision, f"b{batch}", f"t{threads}", cpu_model(), str(os.cpu_count()),
                     *versions])


def _read_cache() -> dict:
    try:
        payload = json.loads(cache_file().read_text())
        return payload if isinstance(payload, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, choice: MeasuredChoice) -> None:
    entries = _read_cache()
    entries[key] = {"kind": choice.kind, "images_per_second": choice.images_per_second,
                    "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        write_json(cache_file(), entries)
    except OSError:
        pass


def time_backends(backends: Mapping[str, Backend], batch: np.ndarray, rounds: int = ROUNDS) -> dict[str, float]:
    """Images/s of each opened backend on ``batch``: one warm-up call each, then ``rounds`` interleaved calls
    (the order rotates every round), median per backend (nearest rank)."""
    calls = {name: partial(backend.score, batch) for name, backend in backends.items()}
    samples = interleaved(calls, Rounds(rounds=rounds, warmup=1, calls=1))
    return {name: round(len(batch) / (percentile(ms, 50) / 1e3), 1) for name, ms in samples.items()}


def choose_by_measuring(sha256: str, openers: Mapping[str, Callable[[], Backend]], precision: str, batch_size: int,
                        threads: int = 0, use_cache: bool = True) -> MeasuredChoice:
    """The fastest of the backends ``openers`` open (installed kinds that can run the graph whose sha256 is
    ``sha256``) at ``batch_size``."""
    candidates = list(openers)
    key = cache_key(sha256, precision, batch_size, threads, candidates)
    if use_cache:
        hit = _read_cache().get(key)
        if isinstance(hit, dict) and hit.get("kind") in candidates:
            return MeasuredChoice(hit["kind"], dict(hit.get("images_per_second") or {}), cached=True)
    opened: dict[str, Backend] = {}
    try:
        for kind, opener in openers.items():
            opened[kind] = opener()
        spec = next(iter(opened.values())).input_spec
        rng = np.random.default_rng(0)
        batch = rng.integers(0, 256, (batch_size, spec.size, spec.size, spec.channels), dtype=np.uint8)
        rates = time_backends(opened, batch)
    finally:
        for backend in opened.values():
            backend.close()
    choice = MeasuredChoice(max(rates, key=rates.get), rates, cached=False)
    if use_cache:
        _write_cache(key, choice)
    return choice

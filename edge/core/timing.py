"""TODO: docstring (split from gedge.bench.runner)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from gedge.core.errors import ConfigError

PERCENTILES = (50, 90, 99)


def timed_calls(fn: Callable[[], Any], warmup: int = 3, iters: int | None = None, seconds: float | None = None,
                min_iters: int = 3) -> list[float]:
    """Milliseconds of each timed call of ``fn``: ``warmup`` untimed calls, then ``iters`` calls, or calls until
    ``seconds`` have passed (at least ``min_iters``)."""
    if iters is not None and iters < 1:
        raise ConfigError(f"iterations must be at least 1, got {iters}")
    if seconds is not None and seconds <= 0:
        raise ConfigError(f"duration must be positive, got {seconds}")
    if warmup < 0:
        raise ConfigError(f"warm-up must be 0 or more, got {warmup}")
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    deadline = None if seconds is None else time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
        if deadline is None:
            if len(samples) >= (iters or 10):
                return samples
        elif time.perf_counter() >= deadline and len(samples) >= min_iters:
            return samples


def percentile(samples: list[float] | np.ndarray, q: float) -> float:
    """Nearest-rank percentile (a value that was measured, never an interpolation)."""
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    if not len(ordered):
        return float("nan")
    rank = int(np.ceil(q / 100.0 * len(ordered))) - 1
    return float(ordered[min(max(rank, 0), len(ordered) - 1)])


def latency_summary(samples_ms: list[float]) -> dict[str, float]:
    """p50/p90/p99, mean, min and max of per-call milliseconds, and the number of calls."""
    values = np.asarray(samples_ms, dtype=np.float64)
    summary = {f"p{q}": percentile(values, q) for q in PERCENTILES}
    summary.update(mean=float(values.mean()) if len(values) else float("nan"),
                   min=float(values.min()) if len(values) else float("nan"),
                   max=float(values.max()) if len(values) else float("nan"), n=int(len(values)))
    return summary

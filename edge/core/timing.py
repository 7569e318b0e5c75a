"""The one way gedge measures time: warm-up, timed calls, interleaved rounds, one percentile rule.

Every speed figure gedge prints comes from here: ``gedge bench`` (latency rows, and the batch-by-batch
against pipelined pairs), ``gedge bench-cpu`` (interleaved rounds of every CPU backend) and the measured
automatic CPU backend choice (:mod:`gedge.runtime.choice`).

* :func:`interleaved`: several callables, each called ``warmup`` times untimed, then ``rounds`` rounds in
  which every callable gets one *turn* (a number of timed calls, or calls for a duration). The order of the
  turns rotates by one every round, so a neighbour's load spike on a shared machine hits all of them alike
  instead of whichever always runs third.
* :func:`timed_calls`: one callable, one round: warm-up, then a count of calls or a duration.
* :class:`Stopwatch`: how long a stage of a command took (training, a build, an export, a gate), for its report.
* :func:`percentile`: nearest rank, so every reported figure is a time that was measured, never an
  interpolation between two; :func:`summarize` gives p50/p90/p99, mean, min, max and the count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
from gedge.core.errors import ConfigError

PERCENTILES = (50, 90, 99)
DEFAULT_CALLS = 10  # timed calls of one callable when neither a count nor a duration is given

Key = TypeVar("Key", bound=Hashable)
Progress = Callable[[int, int], None]  # (turns done, turns in all)


@dataclass(frozen=True)
class Rounds:
    """How an interleaved measurement runs: ``warmup`` untimed calls of each callable, then ``rounds`` rounds;
    in a round each callable's turn is ``calls`` timed calls, or calls for ``seconds`` (at least ``min_calls``)."""

    rounds: int = 1
    warmup: int = 1
    calls: int | None = None  # None with seconds None: DEFAULT_CALLS
    seconds: float | None = None
    min_calls: int = 1

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ConfigError(f"rounds must be at least 1, got {self.rounds}")
        if self.warmup < 0:
            raise ConfigError(f"warm-up must be 0 or more, got {self.warmup}")
        if self.calls is not None and self.calls < 1:
            raise ConfigError(f"iterations must be at least 1, got {self.calls}")
        if self.seconds is not None and self.seconds <= 0:
            raise ConfigError(f"duration must be positive, got {self.seconds}")
        if self.calls is not None and self.seconds is not None:
            raise ConfigError("give iterations or a duration, not both")
        if self.min_calls < 1:
            raise ConfigError(f"a turn needs at least one call, got {self.min_calls}")


class Stopwatch:
    """Seconds since it was made: the one timer of a command's stages (``Stopwatch().seconds(1)``)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def seconds(self, digits: int | None = None) -> float:
        elapsed = time.perf_counter() - self.started
        return elapsed if digits is None else round(elapsed, digits)


def rotated(keys: Sequence[Key], round_index: int) -> list[Key]:
    """``keys`` starting at position ``round_index`` (modulo their number): the order of round ``round_index``."""
    if not keys:
        return []
    start = round_index % len(keys)
    return [*keys[start:], *keys[:start]]


def _turn(fn: Callable[[], Any], plan: Rounds) -> list[float]:
    """Milliseconds of each call of one turn."""
    samples: list[float] = []
    deadline = None if plan.seconds is None else time.perf_counter() + plan.seconds
    wanted = plan.calls or DEFAULT_CALLS
    while True:
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e3)
        if deadline is None:
            if len(samples) >= wanted:
                return samples
        elif time.perf_counter() >= deadline and len(samples) >= plan.min_calls:
            return samples


def interleaved(calls: Mapping[Key, Callable[[], Any]], plan: Rounds, groups: Sequence[Sequence[Key]] | None = None,
                progress: Progress | None = None) -> dict[Key, list[float]]:
    """Milliseconds of every timed call of each callable in ``calls``, measured in interleaved rounds.

    ``groups`` splits a round into parts run one after the other, each rotated on its own (``gedge bench-cpu``:
    one group of backends per batch size); default one group of all callables in their given order."""
    groups = [list(calls)] if groups is None else [list(group) for group in groups]
    unknown = [key for group in groups for key in group if key not in calls]
    if unknown:
        raise ConfigError(f"no callable for {unknown[0]!r}")
    for key in calls:  # first calls allocate, plan kernels and (torch) re-lay out weights
        for _ in range(plan.warmup):
            calls[key]()
    samples: dict[Key, list[float]] = {key: [] for key in calls}
    total, done = plan.rounds * sum(len(group) for group in groups), 0
    for round_index in range(plan.rounds):
        for group in groups:
            for key in rotated(group, round_index):
                samples[key] += _turn(calls[key], plan)
                done += 1
                if progress:
                    progress(done, total)
    return samples


def timed_calls(fn: Callable[[], Any], warmup: int = 3, iters: int | None = None, seconds: float | None = None,
                min_iters: int = 3) -> list[float]:
    """Milliseconds of each timed call of ``fn``: ``warmup`` untimed calls, then ``iters`` calls, or calls until
    ``seconds`` have passed (at least ``min_iters``)."""
    return interleaved({0: fn}, Rounds(1, warmup, iters, seconds, min_iters))[0]


def percentile(samples: Sequence[float] | np.ndarray, q: float) -> float:
    """Nearest-rank percentile (a value that was measured, never an interpolation); NaN for no samples."""
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    if not len(ordered):
        return float("nan")
    rank = int(np.ceil(q / 100.0 * len(ordered))) - 1
    return float(ordered[min(max(rank, 0), len(ordered) - 1)])


@dataclass(frozen=True)
class LatencySummary:
    """Per-call milliseconds summarised: nearest-rank p50/p90/p99, mean, min, max, and the number of calls."""

    p50: float
    p90: float
    p99: float
    mean: float
    min: float
    max: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(samples_ms: Sequence[float] | np.ndarray) -> LatencySummary:
    values = np.asarray(samples_ms, dtype=np.float64)
    empty = not len(values)
    nan = float("nan")
    return LatencySummary(*(percentile(values, q) for q in PERCENTILES),
                          mean=nan if empty else float(values.mean()), min=nan if empty else float(values.min()),
                          max=nan if empty else float(values.max()), n=int(len(values)))


def latency_summary(samples_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """:func:`summarize` as the dict the reports keep (``p50``, ``p90``, ``p99``, ``mean``, ``min``, ``max``, ``n``)."""
    return summarize(samples_ms).to_dict()

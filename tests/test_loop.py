"""The pipelined loop: order, batching across items, per-item errors, native slots, CPU backends."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from gedge.core import artifacts
from gedge.core.backend import AsyncBackend, BackendInfo
from gedge.core.errors import ConfigError, DataError
from gedge.core.inputs import InputSpec
from gedge.core.scores import OUTPUT_NAMES, Scores
from gedge.data.tiles import score_inputs
from gedge.runtime.loop import Pipeline, batch_by_batch

SPEC = InputSpec(size=4, channels=1)


def fake_scores(batch: np.ndarray) -> Scores:
    mean = batch.reshape(len(batch), -1).mean(axis=1).astype(np.float32)
    return Scores.from_dict({name: mean + i for i, name in enumerate(OUTPUT_NAMES)})


class FakeBackend:
    """score = mean pixel value; fails on a batch holding an input of value ``fail_on``."""

    name = "fake"
    input_spec = SPEC
    info = BackendInfo(kind="fake", label="fake", precision="fp32")

    def __init__(self, delay: float = 0.0, fail_on: int | None = None) -> None:
        self.delay, self.fail_on = delay, fail_on
        self.batches: list[int] = []
        self.threads: set[str] = set()

    def score(self, batch: np.ndarray) -> Scores:
        self.input_spec.check(batch)
        self.threads.add(threading.current_thread().name)
        self.batches.append(len(batch))
        time.sleep(self.delay)
        if self.fail_on is not None and (batch == self.fail_on).all(axis=(1, 2, 3)).any():
            raise RuntimeError("device lost")
        return fake_scores(batch)

    def close(self) -> None:
        pass


class SlotBackend(FakeBackend):
    """A backend with its own slots (like TensorRT): enqueue starts, collect returns."""

    def __init__(self, slots: int = 3) -> None:
        super().__init__()
        self.info = BackendInfo(kind="fake", label="fake", precision="fp32", slots=slots)
        self.held: dict[int, np.ndarray] = {}
        self.order: list[int] = []

    def enqueue(self, slot: int, batch: np.ndarray) -> None:
        assert slot not in self.held, "slot reused before it was collected"
        self.held[slot] = batch.copy()
        self.order.append(slot)

    def collect(self, slot: int) -> Scores:
        return self.score(self.held.pop(slot))


def item(value: int, n: int) -> np.ndarray:
    return np.full((n, 4, 4, 1), value, dtype=np.uint8)


def test_results_in_order_across_batches_with_slow_random_decoding():
    sizes = [3, 1, 7, 2, 9, 4, 1, 5, 6, 2]
    rng = np.random.default_rng(0)

    def prepare(k: int) -> tuple[np.ndarray, int]:
        time.sleep(float(rng.uniform(0, 0.01)))
        return item(k * 10, sizes[k]), k

    backend = FakeBackend(delay=0.002)
    pipeline = Pipeline(backend, batch_size=4, slots=2, workers=3)
    results = pipeline.score_all(range(len(sizes)), prepare)
    assert [r.index for r in results] == list(range(len(sizes))) and [r.meta for r in results] == list(range(10))
    for k, r in enumerate(results):
        assert r.ok and len(r.scores) == sizes[k]
        assert np.all(r.scores.score == k * 10 + OUTPUT_NAMES.index("score"))
    assert all(b <= 4 for b in backend.batches) and sum(backend.batches) == sum(sizes)
    assert backend.batches.count(4) == sum(sizes) // 4  # full batches across item boundaries
    assert backend.threads == {"gedge-compute_0"}  # CPU backends: one compute thread, the slots queue on it
    stats = pipeline.stats
    assert stats.items == 10 and stats.inputs == sum(sizes) and stats.errors == 0
    assert stats.batches == len(backend.batches) and stats.inputs_per_second > 0


def test_prepare_errors_are_per_item_and_the_run_goes_on():
    def prepare(k: int) -> np.ndarray:
        if k in (1, 4):
            raise DataError("unreadable or corrupt image", f"img{k}.png")
        if k == 5:
            return np.zeros((0, 4, 4, 1), dtype=np.uint8)
        return item(k, 2)

    results = Pipeline(FakeBackend(), batch_size=3, workers=2).score_all(range(7), prepare)
    assert [r.index for r in results] == list(range(7))
    assert [r.ok for r in results] == [True, False, True, True, False, False, True]
    assert results[1].error == "img1.png: unreadable or corrupt image"
    assert "non-empty" in results[5].error
    assert np.all(results[6].scores.d1 == 6)


def test_a_failing_batch_fails_only_its_items():
    # batch size 2: items 0+1 | 2(marker)+3 | 4+5
    items = [item(k if k != 2 else 99, 1) for k in range(6)]
    results = Pipeline(FakeBackend(fail_on=99), batch_size=2, workers=0).score_all(items)
    assert [r.ok for r in results] == [True, True, False, False, True, True]
    assert "device lost" in results[3].error and "backend failed" in results[2].error
    with pytest.raises(RuntimeError, match="device lost"):
        Pipeline(FakeBackend(fail_on=99), batch_size=2, on_backend_error="raise").score_all(items)


def test_an_item_of_the_wrong_shape_fails_alone():
    bad = np.zeros((2, 5, 5, 1), dtype=np.uint8)
    results = Pipeline(FakeBackend(), batch_size=8).score_all([item(1, 2), bad, item(3, 1)])
    assert [r.ok for r in results] == [True, False, True] and "expected (N, 4, 4, 1)" in results[1].error


def test_stopping_early_leaves_no_work_behind():
    backend = FakeBackend(delay=0.005)
    pipeline = Pipeline(backend, batch_size=1, slots=2, workers=2)
    run = pipeline.run(item(k, 1) for k in range(100))
    first = [next(run) for _ in range(3)]
    run.close()
    assert [r.index for r in first] == [0, 1, 2] and len(backend.batches) < 20


def test_native_slots_are_used_round_robin_in_order():
    backend = SlotBackend(slots=3)
    assert isinstance(backend, AsyncBackend) and not isinstance(FakeBackend(), AsyncBackend)
    items = [item(k, k % 3 + 1) for k in range(8)]
    results = Pipeline(backend, batch_size=2, slots=4).score_all(items)
    assert all(r.ok for r in results) and [float(r.scores.d1[0]) for r in results] == list(range(8))
    assert backend.order[:4] == [0, 1, 2, 0] and not backend.held  # min(4, backend.info.slots) = 3 slots


def test_a_failed_enqueue_leaves_its_slot_free_and_the_loop_goes_on():
    """Round robin after a failed enqueue: the next slot may still hold a batch (the failed one's slot is free
    out of turn), so the loop collects until the slot it uses is free instead of assuming the oldest holds it."""

    class FailingCopy(SlotBackend):
        def enqueue(self, slot: int, batch: np.ndarray) -> None:
            if (batch == 99).all(axis=(1, 2, 3)).any():
                raise RuntimeError("copy failed")
            super().enqueue(slot, batch)

    backend = FailingCopy(slots=2)
    items = [item(k if k != 2 else 99, 1) for k in range(8)]
    results = Pipeline(backend, batch_size=1, slots=2, workers=0).score_all(items)
    assert [r.ok for r in results] == [k != 2 for k in range(8)], [r.error for r in results]
    assert "copy failed" in results[2].error and not backend.held
    assert [float(r.scores.d1[0]) for r in results if r.ok] == [0, 1, 3, 4, 5, 6, 7]


def test_loop_matches_batch_by_batch_on_onnxruntime(scorer_graphs):
    from gedge.runtime.onnxruntime_backend import OrtBackend

    backend = OrtBackend(artifacts.open(scorer_graphs["fp32"]), threads=1)
    rng = np.random.default_rng(1)
    tiles = rng.integers(0, 256, (13, 16, 16, 3), dtype=np.uint8)
    reference = score_inputs(backend, tiles, batch_size=5)
    items = [tiles[0:4], tiles[4:5], tiles[5:13]]
    results = Pipeline(backend, batch_size=5, slots=2).score_all(items)
    got = Scores.concat([r.scores for r in results])
    for name in (*OUTPUT_NAMES, "amap"):
        np.testing.assert_allclose(got.as_dict(with_amap=True)[name], reference.as_dict(with_amap=True)[name],
                                   rtol=1e-5, atol=1e-6)
    stats = batch_by_batch(backend, items, batch_size=5)
    assert stats.inputs == 13 and stats.batches == 3


def test_bad_settings():
    with pytest.raises(ConfigError):
        Pipeline(FakeBackend(), batch_size=0)
    with pytest.raises(ConfigError):
        Pipeline(FakeBackend(), slots=0)
    with pytest.raises(ConfigError):
        Pipeline(FakeBackend(), on_backend_error="ignore")
    with pytest.raises(ConfigError, match="unexpected keyword"):
        Pipeline(FakeBackend(), batchsize=4)


@pytest.mark.skipif(not hasattr(threading, "get_native_id") or not hasattr(__import__("os"), "setpriority"),
                    reason="threads have no priority of their own on this platform")
def test_decoding_threads_run_at_lower_priority():
    import os

    seen: list[int] = []

    def prepare(value: int) -> np.ndarray:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return np.full((1, 4, 4, 1), value, dtype=np.uint8)

    base = os.getpriority(os.PRIO_PROCESS, 0)
    with Pipeline(FakeBackend(), batch_size=2, workers=2, decode_nice=5) as pipeline:
        results = pipeline.score_all(range(6), prepare)
    assert [r.index for r in results] == list(range(6)) and all(r.ok for r in results)
    assert seen and set(seen) == {min(19, base + 5)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller keeps its own


def test_batch_size_capped_at_the_backends_max_batch():
    """An engine's profile takes at most max_batch per call: the loop batches to that, not to what was asked."""

    class Capped(FakeBackend):
        info = BackendInfo(kind="fake", label="capped", precision="fp32", max_batch=3)

        def score(self, batch: np.ndarray) -> Scores:
            assert len(batch) <= self.info.max_batch
            return super().score(batch)

    backend = Capped()
    items = [np.full((2, 4, 4, 1), i, dtype=np.uint8) for i in range(5)]
    with Pipeline(backend, batch_size=64, workers=0) as pipeline:
        results = pipeline.score_all(items)
    assert pipeline.batch_size == 3 and pipeline.requested_batch_size == 64
    assert all(r.ok for r in results) and [len(r.scores) for r in results] == [2] * 5
    assert backend.batches == [3, 3, 3, 1]

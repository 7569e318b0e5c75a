"""`gedge bench`: timing and percentiles, the pipelined-vs-serial comparison, the suite, the report, the CLI."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from gedge.bench.report import REFERENCE_LABEL
from gedge.bench.runner import (
    BenchConfig,
    bench_latency,
    bench_pipeline,
    encoded_frames,
    frame_decoder,
    plan_runs,
    run_benchmarks,
)
from gedge.cli.render import console
from gedge.cli.render_bench import bench_table
from gedge.core.errors import ConfigError
from gedge.core.inputs import InputSpec
from gedge.core.machine import CPU_FLAGS, machine_facts, peak_rss_bytes
from gedge.core.timing import Rounds, interleaved, latency_summary, percentile, rotated, summarize, timed_calls
from test_loop import FakeBackend


class RecordingBackend(FakeBackend):
    """FakeBackend that records which thread made each call, in order."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay)
        self.calls: list[str] = []

    def score(self, batch: np.ndarray):
        self.calls.append(threading.current_thread().name)
        return super().score(batch)

GEDGE = [sys.executable, "-m", "gedge.cli"]


def test_percentiles_are_nearest_rank_and_timing_counts_calls():
    samples = list(range(1, 101))
    assert percentile(samples, 50) == 50 and percentile(samples, 90) == 90 and percentile(samples, 99) == 99
    assert percentile([7.0], 99) == 7.0
    summary = latency_summary([3.0, 1.0, 2.0])
    assert summary["p50"] == 2.0 and summary["max"] == 3.0 and summary["n"] == 3 and summary["mean"] == 2.0
    calls = []
    assert len(timed_calls(lambda: calls.append(1), warmup=2, iters=5)) == 5 and len(calls) == 7
    assert len(timed_calls(lambda: None, warmup=0, seconds=0.01, min_iters=4)) >= 4
    with pytest.raises(ConfigError):
        timed_calls(lambda: None, iters=0)
    with pytest.raises(ConfigError):
        BenchConfig(iters=5, seconds=1.0)
    with pytest.raises(ConfigError):
        BenchConfig(backends=["tpu"])


def test_interleaved_rounds_rotate_the_order_and_warm_every_callable():
    calls: list[str] = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    samples = interleaved(fns, Rounds(rounds=3, warmup=1, calls=2))
    assert calls[:3] == ["a", "b", "c"]  # warm-up, once each
    turns = [calls[i] for i in range(3, len(calls), 2)]  # two calls per turn
    assert turns == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(len(ms) == 6 for ms in samples.values())
    groups = [[(n, 1) for n in "ab"], [(n, 2) for n in "ab"]]
    seen: list[tuple[str, int]] = []
    progress: list[tuple[int, int]] = []
    interleaved({key: (lambda key=key: seen.append(key)) for g in groups for key in g},
                Rounds(rounds=2, warmup=0, calls=1), groups, lambda done, total: progress.append((done, total)))
    assert seen == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("b", 1), ("a", 1), ("b", 2), ("a", 2)]
    assert progress[-1] == (8, 8) and rotated([1, 2, 3], 4) == [2, 3, 1]
    assert summarize([4.0, 1.0, 3.0, 2.0]).p50 == 2.0  # nearest rank: a measured value, not 2.5
    with pytest.raises(ConfigError, match="not both"):
        Rounds(calls=3, seconds=1.0)


def test_frames_decode_to_tiles_and_the_pipeline_is_compared_with_batch_by_batch():
    spec = InputSpec(size=4, channels=1)
    frames = encoded_frames(spec, batch=6, count=2)
    tiles = frame_decoder(spec)(frames[0])
    assert tiles.shape == (6, 4, 4, 1) and tiles.dtype == np.uint8
    backend = RecordingBackend(delay=0.002)
    summary, ips = bench_latency(backend, batch=6, warmup=1, iters=4)
    assert backend.batches == [6] * 5 and summary["n"] == 4  # one warm-up call, then the timed ones
    assert summary["min"] >= 2.0 and ips == pytest.approx(6 / (summary["mean"] / 1e3))  # the 2 ms of each call
    backend.calls.clear()
    result = bench_pipeline(backend, batch=6, batches=3, rounds=2)
    # warm-up: the loop (on its compute thread) and batch by batch (here), 2 frames each; then 2 rounds of 3
    # batches each way, in alternating order
    loop, here = "gedge-compute_0", "MainThread"
    assert backend.calls == [loop] * 2 + [here] * 2 + [here] * 3 + [loop] * 3 + [loop] * 3 + [here] * 3
    assert (result["rounds"], result["batches"], result["slots"]) == (2, 3, 2)
    # both sides are bound by the 2 ms per batch of 6; the ratio of their images/s lies between the two pairs'
    # ratios, which are the quartiles of two; the pairs counted faster are those above 1
    assert result["batch_by_batch"] <= 3000 and result["pipelined"] <= 3000
    low, high = result["ratio_iqr"]
    assert low <= result["ratio"] <= high and result["ratio"] == low  # nearest rank: the lower of two
    assert low * (1 - 1e-9) <= result["pipelined"] / result["batch_by_batch"] <= high * (1 + 1e-9)
    assert result["pairs_faster"] == (low > 1.0) + (high > 1.0)


def test_plan_runs_and_skips_with_reasons(tmp_path):
    runs, skipped = plan_runs(["m.pt", "s.onnx"], ["torch", "onnxruntime"])
    assert runs == [("m.pt", "torch"), ("s.onnx", "onnxruntime")] and skipped == []
    runs, skipped = plan_runs(["s.onnx"], ["onnxruntime", "tensorrt"])
    assert runs == [("s.onnx", "onnxruntime")] and skipped[0]["backend"] == "tensorrt"
    assert "needs an .engine" in skipped[0]["reason"]


def test_suite_on_torch_and_onnxruntime_with_ratio(scorer_graphs):
    config = BenchConfig(batches=[4], warmup=1, iters=3, threads=1, pipeline=True, pipeline_batches=2,
                         pipeline_rounds=2, backends=["torch", "onnxruntime"])
    report = run_benchmarks([scorer_graphs["checkpoint"], scorer_graphs["fp32"]], config)
    kinds = {r.kind: r for r in report.results}
    assert set(kinds) == {"torch", "onnxruntime"}
    torch, onnx = kinds["torch"], kinds["onnxruntime"]
    assert torch.label == REFERENCE_LABEL and torch.vs_torch_eager == 1.0  # the reference row, against itself
    assert onnx.vs_torch_eager == pytest.approx(onnx.images_per_second / torch.images_per_second)
    assert onnx.label == "onnxruntime FP32" and onnx.latency_ms["n"] == 3
    assert onnx.images_per_second == pytest.approx(4 / (onnx.latency_ms["mean"] / 1e3))
    # the peak RSS since onnxruntime was opened: the interpreter with its libraries, at most the process's peak
    assert onnx.memory in ("RSS", "RSS (process)") and 20 < onnx.peak_memory_mb <= peak_rss_bytes() / 1e6
    pipeline = onnx.pipeline
    assert (pipeline["rounds"], pipeline["batches"], pipeline["slots"]) == (2, config.pipeline_batches_for(4), 2)
    low, high = pipeline["ratio_iqr"]
    assert low <= pipeline["ratio"] <= high and pipeline["pairs_faster"] == (low > 1.0) + (high > 1.0)
    assert low * (1 - 1e-9) <= pipeline["pipelined"] / pipeline["batch_by_batch"] <= high * (1 + 1e-9)
    assert report.machine["cores"] and report.machine["cpu"] and report.settings["input_size"] == "16x16x3"
    with console.capture() as captured:
        console.print(bench_table(report))
    text = captured.get()
    assert "torch eager (cpu)" in text and "1.00x" in text and "pipelined" in text
    assert "cores" in text and ("avx" in text or "none of" in text)  # the CPU flags are printed with the numbers
    payload = report.to_dict()
    assert payload["suite"] == "bench" and {"machine", "settings", "results", "skipped", "notes"} <= set(payload)
    json.dumps(payload)


def test_bench_cli_json_and_a_missing_backend(scorer_graphs):
    result = subprocess.run([*GEDGE, "bench", scorer_graphs["fp32"], "--backend", "onnxruntime", "--backend",
                             "tensorrt", "--batch", "2", "--iters", "2", "--warmup", "1", "--no-pipeline",
                             "--threads", "1", "--json"], capture_output=True, text=True, timeout=300,
                            env={k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["kind"] for r in report["results"]] == ["onnxruntime"]
    assert report["skipped"][0]["backend"] == "tensorrt"
    assert report["machine"]["omp_wait_policy"] == "PASSIVE" and "python" in report["machine"]


def test_machine_facts_without_gpu_probe():
    facts = machine_facts(probe_gpu=False)
    assert facts["cores"] >= 1 and facts["onnxruntime"] and facts["gpu"] is None
    assert set(facts["cpu_flags"]) <= set(CPU_FLAGS) and facts["omp_wait_policy"]


def test_gpu_check_skips_cuda_steps_without_a_gpu(tmp_path):
    """On a machine without an NVIDIA GPU the CUDA steps are skipped with the reason and nothing fails."""
    from gedge.bench.gpu_check import GpuCheckOptions, run_gpu_check
    from gedge.core.machine import cuda_device

    if cuda_device()[0] is not None:
        pytest.skip("this machine has a GPU; the no-GPU path does not apply")
    seen = []
    result = run_gpu_check(GpuCheckOptions(out=tmp_path, budget_s=28), on_step=seen.append)  # no time to bench
    status = {step.name: step for step in result.steps}
    assert status["machine"].status == "ok" and "CPU" in status["machine"].detail
    assert status["CUDA buffers/streams/graphs"].status == "skipped"
    assert "no NVIDIA GPU" in status["CUDA buffers/streams/graphs"].detail
    assert status["pipelined loop on the GPU"].status == "skipped" and not result.failed
    assert "not enough time" in status["bench"].detail and [s.name for s in seen] == [s.name for s in result.steps]
    skipped = result.to_dict()["skipped"]  # listed, each with its reason
    assert any(line.startswith("bench: not enough time") for line in skipped)
    assert len(skipped) == sum(step.status == "skipped" for step in result.steps)
    result.strict = True  # --strict: the same steps skipped fail the check
    assert result.failed and result.to_dict()["failed"]


def test_a_tensorrt_row_is_labelled_by_the_graphs_it_used(tmp_path):
    """Rows asked to use CUDA graphs are labelled by what the backend declares after the run: a capture that
    failed is "no graphs (graphs failed)" with the reason in the row's notes, never "+graphs"."""
    from gedge.bench.runner import _row
    from test_tensorrt_backend import open_fake

    backend, api = open_fake(tmp_path)
    api.fail("end_capture", "cudaErrorStreamCaptureInvalidated")
    config = BenchConfig(batches=[2], warmup=1, iters=2, pipeline=False)
    rows = [_row(backend, ("scorer.fp16.engine", "tensorrt", 2, graphs), config, exact=False)
            for graphs in (False, True, True)]  # the failure is spent on the first capture: the second works
    assert [r.label for r in rows] == ["tensorrt FP16 no graphs", "tensorrt FP16 no graphs (graphs failed)",
                                       "tensorrt FP16 +graphs"]
    assert [r.cuda_graphs for r in rows] == [False, False, True]
    assert rows[0].notes == [] and rows[2].notes == []
    assert "asked for but not used" in rows[1].notes[0] and "cudaErrorStreamCaptureInvalidated" in rows[1].notes[0]
    assert rows[2].stages_ms["compute"] in (2.0, 4.0)  # stand-in device time: replays, or the capture's first run
    backend.close()


def test_the_suite_asks_for_graphs_at_every_batch_and_notes_a_failure(tmp_path, monkeypatch):
    """Through run_benchmarks: a capture that fails at the first batch does not drop the graph rows of the next
    batch (graphs are asked for again, and work there), and the failure is in the report's notes."""
    import gedge.bench.runner as runner
    from test_tensorrt_backend import open_fake

    backend, api = open_fake(tmp_path)
    api.fail("end_capture", "cudaErrorStreamCaptureInvalidated")
    monkeypatch.setattr(runner, "open_backend", lambda model, kind, **options: backend)
    config = BenchConfig(batches=[2, 5], warmup=1, iters=2, pipeline=False, backends=["tensorrt"])
    report = run_benchmarks([tmp_path / "scorer.fp16.engine"], config)
    assert [(r.batch, r.label) for r in report.results] == [
        (2, "tensorrt FP16 no graphs"), (2, "tensorrt FP16 no graphs (graphs failed)"),
        (5, "tensorrt FP16 no graphs"), (5, "tensorrt FP16 +graphs")]
    assert any("no graphs (graphs failed) batch 2: CUDA graphs were asked for but not used" in n for n in report.notes)


def test_gpu_check_loop_step_compares_the_bytes_on_the_standin_cuda(monkeypatch):
    """gpu-check's loop step on the stand-in CUDA: ok, and it FAILs when a copy permutes bytes within a tile
    (means unchanged, so only a byte comparison sees it) or when collect does not synchronise."""
    from cuda_standin import CudaStandIn
    from gedge.bench.gpu_check import Steps, step_loop_on_gpu
    from gedge.runtime.cuda import Stream

    class SwappingCuda(CudaStandIn):
        def d2d(self, dst, src, nbytes, stream):  # the first two bytes of each device copy change places
            super().d2d(dst, src, nbytes, stream)
            queue = stream.capture if stream.capture is not None else stream.queue
            copy = queue[-1].run

            def swapped() -> None:
                copy()
                first = ctypes.string_at(dst, 2)
                ctypes.memmove(dst, first[::-1], 2)

            queue[-1].run = swapped

    steps = Steps(60, None)
    steps.data["cuda"] = CudaStandIn()
    detail = step_loop_on_gpu(steps)
    assert "in order and byte-exact" in detail and "graphs captured" in detail
    steps.data["cuda"] = SwappingCuda()
    with pytest.raises(AssertionError, match="bytes that came back differ from those sent, from byte 0"):
        step_loop_on_gpu(steps)
    steps.data["cuda"] = CudaStandIn()
    monkeypatch.setattr(Stream, "synchronize", lambda self: None)
    with pytest.raises(AssertionError, match="item 0: its rows came back wrong"):
        step_loop_on_gpu(steps)


def test_gpu_check_engines_pass_only_on_measured_passed_parity():
    from gedge.bench.gpu_check import Skip, judge_parity
    from gedge.bench.gpu_models import BuiltEngine
    from gedge.core.artifacts.manifest import ParityRecord as Parity

    passed = BuiltEngine({"engine": Parity("passed", details={"agreement": 1.0}), "graph": Parity("not measured")}, 3)
    pending = BuiltEngine({"engine": Parity("pending", "no GPU"), "graph": Parity("passed")})
    assert "fp32: 3 s build, parity passed (agreement 100.0%)" in judge_parity({"fp32": passed}, gpu=True)
    with pytest.raises(AssertionError, match="engine parity failed: fp16"):
        judge_parity({"fp32": passed, "fp16": BuiltEngine({"engine": Parity("failed", failures=("d1",))})}, gpu=True)
    with pytest.raises(AssertionError, match="engine parity failed: int8"):
        judge_parity({"int8": BuiltEngine({"engine": Parity("pending"), "graph": Parity("error", "x")})}, gpu=False)
    with pytest.raises(AssertionError, match="not measured for fp16 on a machine with a GPU"):
        judge_parity({"fp32": passed, "fp16": pending}, gpu=True)
    with pytest.raises(Skip, match="parity is not measured without a GPU"):
        judge_parity({"fp16": pending}, gpu=False)


def test_gpu_check_bench_fails_on_missing_engine_rows_and_failed_graphs():
    from gedge.bench.gpu_check import judge_bench
    from gedge.bench.report import BENCH, BenchReport, BenchRow

    def row(label: str, model: str) -> BenchRow:
        return BenchRow(label, "b", "tensorrt", model, "fp16", 1, {"mean": 1.0}, 100.0)

    good = BenchReport(BENCH, {}, {}, results=[row("torch eager (cpu)", "m.pt"),
                                               row("tensorrt FP16 +graphs", "e.engine")])
    assert judge_bench(good, ["e.engine"]).startswith("2 rows; fastest")
    skipped = BenchReport(BENCH, {}, {}, results=[row("torch eager (cpu)", "m.pt")],
                          skipped=[{"backend": "tensorrt", "model": "e.engine", "reason": "no usable CUDA"}])
    with pytest.raises(AssertionError, match="TensorRT rows missing: e.engine: no usable CUDA"):
        judge_bench(skipped, ["e.engine"])
    with pytest.raises(AssertionError, match="f.engine: no rows"):
        judge_bench(good, ["e.engine", "f.engine"])
    failed = BenchReport(BENCH, {}, {}, results=[row("tensorrt FP16 no graphs (graphs failed)", "e.engine")])
    failed.results[0].notes.append("capture failed")
    with pytest.raises(AssertionError, match="CUDA graphs asked for but not used: e.engine batch 1: capture failed"):
        judge_bench(failed, ["e.engine"])

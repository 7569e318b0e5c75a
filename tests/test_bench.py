"""`gedge bench`: timing and percentiles, the pipelined-vs-serial comparison, the suite, the report, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
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
from gedge.core.machine import CPU_FLAGS, machine_facts
from gedge.core.timing import Rounds, interleaved, latency_summary, percentile, rotated, summarize, timed_calls
from test_loop import FakeBackend

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
    backend = FakeBackend(delay=0.002)
    summary, ips = bench_latency(backend, batch=6, warmup=1, iters=4)
    assert summary["n"] == 4 and ips > 0
    result = bench_pipeline(backend, batch=6, batches=3, rounds=2)
    assert result["batch_by_batch"] > 0 and result["pipelined"] > 0 and result["ratio"] > 0


def test_plan_runs_and_skips_with_reasons(tmp_path):
    runs, skipped = plan_runs(["m.pt", "s.onnx"], ["torch", "onnxruntime"])
    assert runs == [("m.pt", "torch"), ("s.onnx", "onnxruntime")] and skipped == []
    runs, skipped = plan_runs(["s.onnx"], ["onnxruntime", "tensorrt"])
    assert runs == [("s.onnx", "onnxruntime")] and skipped[0]["backend"] == "tensorrt"
    assert "no .engine" in skipped[0]["reason"]


def test_suite_on_torch_and_onnxruntime_with_ratio(scorer_graphs):
    config = BenchConfig(batches=[4], warmup=1, iters=3, threads=1, pipeline=True, pipeline_batches=2,
                         pipeline_rounds=2, backends=["torch", "onnxruntime"])
    report = run_benchmarks([scorer_graphs["checkpoint"], scorer_graphs["fp32"]], config)
    kinds = {r.kind: r for r in report.results}
    assert set(kinds) == {"torch", "onnxruntime"}
    assert kinds["torch"].vs_torch_eager == pytest.approx(1.0) and kinds["onnxruntime"].vs_torch_eager > 0
    onnx = kinds["onnxruntime"]
    assert onnx.label == "onnxruntime FP32" and onnx.latency_ms["n"] == 3 and onnx.peak_memory_mb > 0
    assert onnx.pipeline["batch_by_batch"] > 0 and onnx.pipeline["pipelined"] > 0
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
    json.dumps(result.to_dict())

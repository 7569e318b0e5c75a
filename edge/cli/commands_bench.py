"""What `gedge bench` does: run the benchmark suite, render its table or JSON."""

from __future__ import annotations

import os
from pathlib import Path

from gedge.cli.render import console, err_console, print_json


def quiet_openmp() -> None:
    """OpenMP worker threads that sleep instead of spinning (torch eager is 1.5-1.8x slower on a busy machine
    with spinning). Only takes effect before torch is imported; the report records the setting."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def run_bench(models: list[Path], backends: list[str], batches: list[int], warmup: int, iters: int | None,
              seconds: float | None, threads: int, pipeline: bool, rounds: int, cuda_graphs: str,
              json_out: bool, performance: str = "latency", streams: int = 0) -> None:
    quiet_openmp()
    from gedge.bench.report import bench_table
    from gedge.bench.runner import BenchConfig, run_benchmarks

    config = BenchConfig(batches=batches or [1, 16], warmup=warmup, iters=iters, seconds=seconds, threads=threads,
                         backends=backends or None, pipeline=pipeline, pipeline_rounds=rounds, cuda_graphs=cuda_graphs,
                         openvino_performance=performance, openvino_streams=streams)
    if json_out:
        report = run_benchmarks(models, config)
        print_json(report.to_dict())
        return
    with err_console.status("benchmarking") as status:
        report = run_benchmarks(models, config, progress=lambda what: status.update(f"benchmarking {what}"))
    console.print(bench_table(report))

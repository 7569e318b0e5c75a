"""`gedge bench`: latency, throughput and memory of every backend (no torch needed: a device benches its engines).

`gedge bench-cpu` (:mod:`gedge.cli.bench_cpu`) and `gedge gpu-check` (:mod:`gedge.cli.gpu_check`) build their models
with torch and live in their own modules."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.bench.runner import BenchConfig, run_benchmarks
from gedge.cli.options import Batches, Force, Json, ModelName, Performance, Streams, Threads
from gedge.cli.render import console, err_console, print_json, warning_line
from gedge.cli.render_bench import bench_table
from gedge.cli.served import need_inputs, report_requests, served_model
from gedge.core.artifacts import Artifact
from gedge.runtime.registry import open_model

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Speed: latency, throughput and memory of every backend.")


@app.command()
def bench(
    models: list[Path] | None = typer.Argument(None, help="Models: .pt (torch eager; torch CUDA where there is a "
                                                         "GPU), "
                                                  ".onnx (onnxruntime or OpenVINO, FP32/FP16/INT8), .xml "
                                                  "(OpenVINO IR), .engine (TensorRT)."),
    backend: list[str] = typer.Option([], "--backend", help="Only these backends: torch, torch-cuda, "
                                                            "onnxruntime, openvino, tensorrt (repeatable; "
                                                            "default: an .onnx graph runs on the fastest "
                                                            "installed CPU backend)."),
    batch: Batches = None,
    warmup: int = typer.Option(3, help="Untimed calls before timing."),
    iters: int | None = typer.Option(None, help="Timed calls per row (default 10)."),
    seconds: float | None = typer.Option(None, help="Time each row for this long instead of --iters."),
    threads: Threads = 0,
    pipeline: bool = typer.Option(True, "--pipeline/--no-pipeline", help="Also measure batch-by-batch against "
                                                                         "the pipelined loop from PNG frames."),
    rounds: int = typer.Option(6, help="Pipeline comparison: alternating pairs of runs (4-16 batches, up to "
                                           "1024 and at least 32 inputs each)."),
    cuda_graphs: str = typer.Option("both", help="TensorRT rows: both, on or off."),
    performance: Performance = "latency",
    streams: Streams = 0,
    json_out: Json = False,
    server: str | None = typer.Option(None, help="Also bench a model served by Triton (http://host:8000 or "
                                                 "grpc://host:8001, `gedge serve`)."),
    model_name: ModelName = None,
    force: Force = False,
) -> None:
    """Latency p50/p90/p99, throughput and peak memory of every backend, with ratios against torch eager.

    TensorRT rows add the H2D, compute and D2H times and run with and without CUDA graphs. The machine's CPU,
    GPU and versions are in the report. Each model's recorded hashes and verdicts are checked first (its line
    opens the output; --json: the report's notes): one whose INT8 gate or engine parity failed is refused unless
    --force.

    Example: [bold]gedge bench model.pt scorer.onnx scorer.int8.cpu.onnx --batch 1 --batch 16 --iters 50[/]
    """
    config = BenchConfig(batches=batch or [1, 16], warmup=warmup, iters=iters, seconds=seconds, threads=threads,
                         backends=backend or None, pipeline=pipeline, pipeline_rounds=rounds, cuda_graphs=cuda_graphs,
                         openvino_performance=performance, openvino_streams=streams, force=force)
    opened: list = [open_model(model) for model in models or []]  # each file read, hashed and verified once
    verification_header(opened, force, json_out)
    if server is not None:  # the served model is one more row, next to the local ones
        reference, _ = served_model(server, model_name, None, None)
        opened = [*opened, reference]
    run_bench(need_inputs(opened, "models"), config, json_out)
    if server is not None:
        report_requests(reference, json_out)


def verification_header(models: list[Artifact], force: bool, json_out: bool) -> None:
    """Each local model's verification, one line each, before anything runs: a refused one stops here."""
    for model in models:
        verified = model.verified(force)
        if verified is None:
            continue
        for warning in verified.warnings:
            warning_line(f"{model.path}: {warning}")
        if not json_out:
            console.print(f"{model.path}: {verified.line()}", markup=False)


def run_bench(models: list, config: BenchConfig, json_out: bool) -> None:
    if json_out:
        print_json(run_benchmarks(models, config).to_dict())
        return
    with err_console.status("benchmarking") as status:
        report = run_benchmarks(models, config, progress=lambda what: status.update(f"benchmarking {what}"))
    console.print(bench_table(report))

"""`gedge` commands: speed: latency, throughput and memory of every backend (`bench`), the CPU backends side by
side (`bench-cpu`), and what a GPU machine proves in five minutes (`gpu-check`)."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.bench.cpu_speed import CpuBenchConfig
from gedge.bench.gpu_check import GpuCheckOptions
from gedge.bench.runner import BenchConfig
from gedge.cli.commands_bench import run_bench, run_bench_cpu, run_gpu_check_command
from gedge.cli.render import console, warning_line
from gedge.cli.served import need_inputs, report_requests, served_model
from gedge.runtime.registry import model_info

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
    batch: list[int] = typer.Option([], "--batch", help="Batch size (repeatable; default 1 and 16)."),
    warmup: int = typer.Option(3, help="Untimed calls before timing."),
    iters: int | None = typer.Option(None, help="Timed calls per row (default 10)."),
    seconds: float | None = typer.Option(None, help="Time each row for this long instead of --iters."),
    threads: int = typer.Option(0, help="torch / ONNX Runtime threads (0: their default)."),
    pipeline: bool = typer.Option(True, "--pipeline/--no-pipeline", help="Also measure batch-by-batch against "
                                                                         "the pipelined loop from PNG frames."),
    rounds: int = typer.Option(6, help="Pipeline comparison: alternating pairs of runs (4-16 batches, up to "
                                           "1024 and at least 32 inputs each)."),
    cuda_graphs: str = typer.Option("both", help="TensorRT rows: both, on or off."),
    performance: str = typer.Option("latency", help="OpenVINO performance hint: latency (one stream, all "
                                                    "threads) or throughput (a batch split across streams)."),
    streams: int = typer.Option(0, help="OpenVINO streams with --performance throughput (0: OpenVINO's "
                                        "choice)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable report."),
    server: str | None = typer.Option(None, help="Also bench a model served by Triton (http://host:8000 or "
                                                 "grpc://host:8001, `gedge serve`)."),
    model_name: str | None = typer.Option(None, help="With --server: the served model (default: scorer)."),
    force: bool = typer.Option(False, "--force", help="Run models whose recorded verdict (INT8 gate, engine parity) "
                                                      "failed."),
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
    verification_header(models or [], force, json_out)
    if server is not None:  # the served model is one more row, next to the local ones
        reference, models = served_model(server, model_name, None, models)
        models = [*models, reference]
    run_bench(need_inputs(models, "models"), config, json_out)
    if server is not None:
        report_requests(reference, json_out)


def verification_header(models: list[Path], force: bool, json_out: bool) -> None:
    """Each local model file's verification, one line each, before anything runs: a refused one stops here."""
    for model in models:
        verified = model_info(model).verified(force)
        if verified is None:
            continue
        for warning in verified.warnings:
            warning_line(f"{model}: {warning}")
        if not json_out:
            console.print(f"{model}: {verified.line()}", markup=False)


@app.command("bench-cpu")
def bench_cpu(
    checkpoint: Path | None = typer.Argument(None, help="gedge checkpoint (default: ModelConfig(isize) with "
                                                        "random weights; speed does not depend on them)."),
    isize: int = typer.Option(64, help="Input side of the random model."),
    batch: list[int] = typer.Option([], "--batch", "-b", help="Batch size (repeatable; default 1 and 16)."),
    threads: int = typer.Option(2, help="Threads for torch and ONNX Runtime."),
    rounds: int = typer.Option(5, help="Interleaved rounds (each times every backend at every batch size)."),
    graph: list[Path] = typer.Option([], "--graph", help="Also time this ONNX graph or OpenVINO IR (repeatable), "
                                                         "e.g. `gedge calibrate`'s gated INT8 graphs."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable report."),
) -> None:
    """CPU speed: torch eager against ONNX Runtime FP32 and both INT8 graphs, images/s and median latency.

    torch runs with OMP_WAIT_POLICY=PASSIVE unless set otherwise; measure on a quiet machine.

    Example: [bold]gedge bench-cpu --isize 64 -b 1 -b 16 --threads 2[/]
    """
    run_bench_cpu(CpuBenchConfig(checkpoint=checkpoint, isize=isize, batches=tuple(batch or (1, 16)), threads=threads,
                                 rounds=rounds, graphs=tuple(graph)), json_out)


@app.command("gpu-check")
def gpu_check(
    model: Path | None = typer.Option(None, "--model", help="A trained gedge checkpoint (default: a small random "
                                                            "one; speed and parity do not depend on the weights)."),
    budget: float = typer.Option(280.0, help="Seconds for everything; a step that needs more than is left is "
                                             "skipped."),
    out: Path | None = typer.Option(None, help="Working folder (default: a temporary one)."),
    build_without_gpu: bool = typer.Option(False, "--build-without-gpu", help="Build the engines even with no GPU "
                                                                              "(TensorRT-RTX builds ahead of time)."),
    strict: bool = typer.Option(False, "--strict", help="A skipped step (for time, or for what this machine lacks) "
                                                        "fails the check too."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable result."),
) -> None:
    """On a machine with a GPU: torch CUDA vs CPU parity, CUDA buffers/streams/graphs, the pipelined loop on the
    GPU, TensorRT engines with parity and a benchmark, in under five minutes. Each step is ok, FAIL or skipped
    (with the reason), and the skipped steps are listed at the end; exit code 1 when a step failed, or with
    --strict when a step was skipped.

    Example: [bold]gedge gpu-check --model model.pt[/]
    """
    run_gpu_check_command(GpuCheckOptions(model=model, budget_s=budget, out=out, build_without_gpu=build_without_gpu,
                                          strict=strict), json_out)

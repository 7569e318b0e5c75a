"""`gedge bench-cpu`: the CPU backends side by side against torch eager (it builds its graphs with torch).

The command table (:data:`gedge.cli.app.COMMANDS`) sets ``OMP_WAIT_POLICY=PASSIVE`` (unless set) before this module
is imported, so that torch's OpenMP threads sleep instead of spinning: the variable only takes effect if set before
torch is first imported, and this module imports it (through the models it builds)."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.bench.cpu_speed import CpuBenchConfig, run_cpu_benchmark
from gedge.cli.options import Batches, Json, Threads
from gedge.cli.render import console, print_json, progress_bar
from gedge.cli.render_bench import speed_table

app = typer.Typer(add_completion=False, no_args_is_help=False, rich_markup_mode="rich",
                  help="CPU speed: torch eager against ONNX Runtime and OpenVINO.")


@app.command("bench-cpu")
def bench_cpu(
    checkpoint: Path | None = typer.Argument(None, help="gedge checkpoint (default: ModelConfig(isize) with "
                                                        "random weights; speed does not depend on them)."),
    isize: int = typer.Option(64, help="Input side of the random model."),
    batch: Batches = None,
    threads: Threads = 2,
    rounds: int = typer.Option(5, help="Interleaved rounds (each times every backend at every batch size)."),
    graph: list[Path] = typer.Option([], "--graph", help="Also time this ONNX graph or OpenVINO IR (repeatable), "
                                                         "e.g. `gedge calibrate`'s gated INT8 graphs."),
    json_out: Json = False,
) -> None:
    """CPU speed: torch eager against ONNX Runtime FP32 and both INT8 graphs, images/s and median latency.

    torch runs with OMP_WAIT_POLICY=PASSIVE unless set otherwise; measure on a quiet machine.

    Example: [bold]gedge bench-cpu --isize 64 -b 1 -b 16 --threads 2[/]
    """
    config = CpuBenchConfig(checkpoint=checkpoint, isize=isize, batches=tuple(batch or (1, 16)), threads=threads,
                            rounds=rounds, graphs=tuple(graph))
    with progress_bar("benchmark") as update:
        report = run_cpu_benchmark(config, progress=update)
    if json_out:
        print_json(report.to_dict())
        return
    console.print(speed_table(report))

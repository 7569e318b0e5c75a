"""`gedge gpu-check`: what a machine with a GPU proves in five minutes (it makes its model with torch).

The command table sets ``OMP_WAIT_POLICY=PASSIVE`` (unless set) before this module is imported, as for
`gedge bench-cpu`."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.bench.gpu_check import FAIL, OK, SKIPPED, GpuCheckOptions, GpuCheckResult, StepResult, run_gpu_check
from gedge.cli.options import Json
from gedge.cli.render import console, err_console, print_json
from gedge.cli.render_bench import bench_table
from rich.markup import escape
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=False, rich_markup_mode="rich",
                  help="On a GPU machine: CUDA, the loop, TensorRT engines, parity and speed.")


@app.command("gpu-check")
def gpu_check(
    model: Path | None = typer.Option(None, "--model", help="A trained gedge checkpoint (default: a small random "
                                                            "one; speed and parity do not depend on the weights)."),
    budget: float = typer.Option(280.0, help="Seconds for everything; a step that needs more than is left is "
                                             "skipped."),
    out: Path | None = typer.Option(None, help="Working folder (default: a temporary one)."),
    build_without_gpu: bool = typer.Option(False, "--build-without-gpu", metavar="",
                                           help="Build the engines even with no GPU (TensorRT-RTX builds ahead of "
                                                "time)."),
    strict: bool = typer.Option(False, "--strict", metavar="",
                                help="A skipped step (for time, or for what this machine lacks) fails the check too."),
    json_out: Json = False,
) -> None:
    """On a machine with a GPU: torch CUDA vs CPU parity, CUDA buffers/streams/graphs, the pipelined loop on the
    GPU, TensorRT engines with parity and a benchmark, in under five minutes. Each step is ok, FAIL or skipped
    (with the reason), and the skipped steps are listed at the end; exit code 1 when a step failed, or with
    --strict when a step was skipped.

    Example: [bold]gedge gpu-check --model model.pt[/]
    """
    options = GpuCheckOptions(model=model, budget_s=budget, out=out, build_without_gpu=build_without_gpu,
                              strict=strict)
    result = run_gpu_check(options, on_step=_step_line)
    if json_out:
        print_json(result.to_dict())
    else:
        if result.bench is not None:
            console.print(bench_table(result.bench, title="gpu-check benchmark"))
        console.print(gpu_check_table(result))
        if not result.gpu and not result.cuda:
            console.print("no GPU here: the GPU steps were skipped; run `make gpu-check` on the GPU machine")
    if result.skipped:
        verdict = "fail the check (--strict)" if result.strict else "did not run (--strict makes that a failure)"
        err_console.print(f"{len(result.skipped)} steps {verdict}: "
                          + "; ".join(f"{s.name} ({s.detail})" for s in result.skipped), markup=False)
    if result.failed:
        raise typer.Exit(1)


def _step_line(step: StepResult) -> None:
    err_console.print(f"[{step.status}] {step.name}: {step.detail}", markup=False, highlight=False, soft_wrap=True)
    if step.status == FAIL and step.trace:
        err_console.print(step.trace.rstrip(), markup=False, highlight=False)


def gpu_check_table(result: GpuCheckResult) -> Table:
    """One row per step: status (ok / FAIL / skipped), seconds, and what it found or why it did not run."""
    table = Table(title=f"gpu-check ({result.seconds:.0f} s)", title_justify="left")
    for column in ("step", "status", "s", "detail"):
        table.add_column(column, justify="right" if column == "s" else "left", overflow="fold")
    colour = {OK: "green", FAIL: "red", SKIPPED: "yellow"}
    for step in result.steps:
        table.add_row(step.name, f"[{colour[step.status]}]{step.status}[/]", f"{step.seconds:.1f}",
                      escape(step.detail))
    return table

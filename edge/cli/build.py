"""`gedge` commands: graph checks and TensorRT engines (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.commands_build import run_build
from gedge.cli.commands_export import run_check

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Graph checks and TensorRT engines (no torch needed).")


@app.command()
def check(
    graph: Path = typer.Argument(..., help="ONNX graph."),
    tensorrt: bool = typer.Option(True, "--tensorrt/--no-tensorrt", help="Run TensorRT's ONNX parser too."),
    module: str | None = typer.Option(None, help="TensorRT module: tensorrt or tensorrt_rtx (default: the "
                                                    "first installed of the two)."),
    build: bool = typer.Option(False, "--build", help="Also build an engine in memory (TensorRT-RTX builds "
                                                      "ahead of time with no GPU)."),
    compute_capability: list[str] = typer.Option([], "--compute-capability", "-c",
                                                 help="TensorRT-RTX build target, e.g. SM86 (repeatable; "
                                                      "default: its portable set, Ampere and later)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable result."),
) -> None:
    """Check a graph with the ONNX checker and TensorRT's own parser; name the nodes TensorRT rejects.

    Exit code 1 when the graph fails a check.

    Example: [bold]gedge check scorer.fp16.onnx --build -c SM89[/]
    """
    run_check(graph, tensorrt, module, build, compute_capability, json_out)


@app.command()
def build(
    graph: Path = typer.Argument(..., help="ONNX graph from `gedge export` (FP32 or FP16) or `gedge calibrate` "
                                           "(INT8 Q/DQ)."),
    precision: str = typer.Option(..., help="fp32, fp16 or int8."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Engine to write (default: scorer.<precision>.engine "
                                                               "next to the graph); its manifest is <engine>.json."),
    min_batch: int = typer.Option(1, help="Optimisation profile: smallest batch."),
    opt_batch: int = typer.Option(0, help="Optimisation profile: the batch TensorRT tunes for (0: 8, or the "
                                          "largest batch if smaller)."),
    max_batch: int = typer.Option(32, help="Optimisation profile: largest batch."),
    profiles: int = typer.Option(2, help="Identical optimisation profiles, one per batch in flight at run time "
                                         "(execution contexts in concurrent use each need their own)."),
    workspace_mb: int | None = typer.Option(None, help="Builder workspace limit in MiB (default: TensorRT's)."),
    opt_level: int | None = typer.Option(None, help="Builder optimisation level 0-5 (TensorRT 8.6+; default 3)."),
    timing_cache: Path | None = typer.Option(None, help="Timing cache file, read if present and updated, so "
                                                        "later builds on this GPU are faster (not TensorRT-RTX)."),
    compute_capability: list[str] = typer.Option([], "--compute-capability", "-c",
                                                 help="TensorRT-RTX ahead-of-time target, e.g. SM86 (repeatable; "
                                                      "default: SM80, SM86, SM89, SM120 and later)."),
    calibration_cache: Path | None = typer.Option(None, help="INT8 from a TensorRT calibration cache and the FP32 "
                                                             "graph (TensorRT 8.5-10.x, weakly typed)."),
    typing: str = typer.Option("auto", help="Network typing: auto, strong (types from the graph) or weak "
                                            "(FP16/INT8 builder flags; TensorRT 8.5-10.x)."),
    module: str | None = typer.Option(None, help="TensorRT module: tensorrt or tensorrt_rtx (default: the first "
                                                    "installed of the two)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the build plan and stop."),
    assume: str | None = typer.Option(None, help="With --dry-run: plan for a TensorRT that is not installed: "
                                                    "trt-8.5, trt-8.6, trt-10.3, trt-11 or rtx."),
    ref: Path | None = typer.Option(None, "--ref", help="Parity at build time: the reference checkpoint (.pt)."),
    data: Path | None = typer.Option(None, "--data", help="Parity at build time: the data folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the builder's progress."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable result."),
) -> None:
    """Build a TensorRT engine (classic TensorRT 8.5-11.x or TensorRT-RTX) and its manifest from a graph.

    The plan follows the installed TensorRT: strongly typed networks from the FP16-typed or Q/DQ graph
    (TensorRT 10.x, 11.x, TensorRT-RTX; an FP16 engine from the FP32 graph derives scorer.fp16.onnx next to
    it), or builder flags with residual layers pinned to FP32 (TensorRT 8.5/8.6). With --ref and --data,
    parity is measured and recorded in the manifest. Exit code 1 when measured parity fails.

    Example: [bold]gedge build scorer.onnx --precision fp16 -c SM86 --ref model.pt --data wood[/]
    Example: [bold]gedge build scorer.int8.qdq.onnx --precision int8 --dry-run --assume trt-8.5[/]
    """
    run_build(graph, precision, out, min_batch, opt_batch, max_batch, workspace_mb, opt_level, timing_cache,
              compute_capability, calibration_cache, typing, module, dry_run, assume, ref, data, progress, json_out,
              profiles)

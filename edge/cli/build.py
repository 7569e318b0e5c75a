"""`gedge` commands: graph checks and TensorRT engines (no torch needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer
from gedge.cli.options import ComputeCapability, Force, Json, Module
from gedge.cli.render import console, key_value_table, print_json, warning_line
from gedge.cli.render_build import build_progress, check_table, parity_line, plan_table
from gedge.core import artifacts
from gedge.core.artifacts import Artifact
from gedge.core.errors import CheckFailed, ConfigError
from gedge.export.build_parity import BuildParityRequest
from gedge.export.build_plan import BuildRequest
from gedge.export.check import check_graph
from gedge.export.engine_build import EngineResult, build_engine, dry_run, open_tensorrt

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Graph checks and TensorRT engines (no torch needed).")


@app.command()
def check(
    graph: Path = typer.Argument(..., help="ONNX graph."),
    tensorrt: bool = typer.Option(True, "--tensorrt/--no-tensorrt", help="Run TensorRT's ONNX parser too."),
    module: Module = None,
    build: bool = typer.Option(False, "--build", metavar="", help="Also build an engine in memory (TensorRT-RTX "
                                                                  "builds ahead of time with no GPU)."),
    compute_capability: ComputeCapability = None,
    json_out: Json = False,
) -> None:
    """Check a graph with the ONNX checker and TensorRT's own parser; name the nodes TensorRT rejects.

    Exit code 1 when the graph fails a check.

    Example: [bold]gedge check scorer.fp16.onnx --build -c SM89[/]
    """
    if module not in (None, "tensorrt", "tensorrt_rtx"):
        raise ConfigError(f"--module must be tensorrt or tensorrt_rtx, got {module!r}")
    result = check_graph(graph, tensorrt=tensorrt, module=module, build=build,
                         compute_capabilities=compute_capability or None)
    if json_out:
        print_json(result.to_dict())
    else:
        console.print(check_table(result))
        if result.tensorrt is None and tensorrt:
            warning_line(result.tensorrt_skipped)
        if result.tensorrt and result.tensorrt.unsupported_nodes:
            console.print(f"TensorRT rejects: {', '.join(result.tensorrt.unsupported_nodes)}")
    if not result.ok:
        raise CheckFailed("the graph failed a check (see above)", graph)


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
    compute_capability: ComputeCapability = None,
    calibration_cache: Path | None = typer.Option(None, help="INT8 from a TensorRT calibration cache and the FP32 "
                                                             "graph (TensorRT 8.5-10.x, weakly typed)."),
    typing: str = typer.Option("auto", help="Network typing: auto, strong (types from the graph) or weak "
                                            "(FP16/INT8 builder flags; TensorRT 8.5-10.x)."),
    module: Module = None,
    dry_run: bool = typer.Option(False, "--dry-run", metavar="", help="Print the build plan and stop."),
    assume: str | None = typer.Option(None, help="With --dry-run: plan for a TensorRT that is not installed: "
                                                    "trt-8.5, trt-8.6, trt-10.3, trt-11 or rtx."),
    ref: Path | None = typer.Option(None, "--ref", help="Parity at build time: the reference checkpoint (.pt)."),
    data: Path | None = typer.Option(None, "--data", help="Parity at build time: the data folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the builder's progress."),
    force: Force = False,
    json_out: Json = False,
) -> None:
    """Build a TensorRT engine (classic TensorRT 8.5-11.x or TensorRT-RTX) and its manifest from a graph.

    The plan follows the installed TensorRT: strongly typed networks from the FP16-typed or Q/DQ graph
    (TensorRT 10.x, 11.x, TensorRT-RTX; an FP16 engine from the FP32 graph derives scorer.fp16.onnx next to
    it), or builder flags with residual layers pinned to FP32 (TensorRT 8.5/8.6). With --ref and --data,
    parity is measured and recorded in the manifest. The graph's sidecar (and a calibration cache's) is verified
    first: a graph whose INT8 accuracy gate failed is refused unless --force. Exit code 1 when measured parity
    fails or a recorded verdict refuses the graph; 3 when parity cannot run (the manifest records "error").

    Example: [bold]gedge build scorer.onnx --precision fp16 -c SM86 --ref model.pt --data wood[/]
    Example: [bold]gedge build scorer.int8.qdq.onnx --precision int8 --dry-run --assume trt-8.5[/]
    """
    if assume and not dry_run:
        raise ConfigError("--assume describes a TensorRT that is not installed; use it with --dry-run")
    request = BuildRequest(
        precision=precision, typing=typing, out=str(out) if out else "", min_batch=min_batch, opt_batch=opt_batch,
        max_batch=max_batch, workspace_mb=workspace_mb, opt_level=opt_level,
        timing_cache=str(timing_cache) if timing_cache else "", compute_capabilities=tuple(compute_capability or ()),
        progress=progress, calibration_cache=str(calibration_cache) if calibration_cache else "", profiles=profiles,
        force=force)
    opened = artifacts.open(graph, ("graph",))  # read, hashed and verified once; every stage takes this object
    if dry_run:
        render_dry_run(opened, request, assume, module, json_out)
        return
    render_build(opened, request, BuildSources(module, ref, data), json_out)


@dataclass(frozen=True)
class BuildSources:
    """Where the build comes from besides the graph: the TensorRT module, and the reference for parity."""

    module: str | None
    ref: Path | None
    data: Path | None


def render_dry_run(graph: Artifact, request: BuildRequest, assume: str | None, module: str | None,
                   json_out: bool) -> None:
    prepared = dry_run(graph, request, assume, module)
    if json_out:
        print_json({"dry_run": True, "plan": prepared.plan.to_dict(), "capabilities": prepared.caps.to_dict()})
        return
    console.print(plan_table(prepared.plan, f"Build plan for {graph.path} on {prepared.caps.label} (dry run)"))
    for note in prepared.plan.notes:
        console.print(f"note: {note}")


def render_build(graph: Artifact, request: BuildRequest, sources: BuildSources, json_out: bool) -> None:
    """Build (with the builder's progress), then the plan, the engine and its parity; exit 1 when parity failed."""
    toolkit = open_tensorrt(sources.module)  # probed once
    parity = BuildParityRequest(artifacts.open(sources.ref) if sources.ref else None, sources.data,
                                request.parity_batch, force=request.force)
    with build_progress(request.progress and toolkit.caps.progress_monitor, toolkit.caps.label) as monitor:
        result = build_engine(graph, request, toolkit, parity, monitor)
    manifest = result.manifest
    if json_out:
        print_json({"plan": result.plan.to_dict(), "engine": str(result.engine), "manifest": str(result.manifest_path),
                    "engine_bytes": result.engine_bytes, "build_seconds": result.build_seconds,
                    "fp16_graph_written": result.fp16_graph_written,
                    "parity": {kind: record.to_dict() for kind, record in result.parity.items()},
                    "source_verification": manifest.source_graph.verification if manifest.source_graph else None,
                    "forced": result.forced})
    else:
        console.print(plan_table(result.plan, f"Build plan for {graph.path} on {toolkit.caps.label}"))
        for note in [*result.plan.notes, *result.notes]:
            console.print(f"note: {note}")
        console.print(key_value_table(f"Built {result.plan.precision.upper()} engine", build_summary(result)))
        for kind, record in result.parity.items():
            for failure in record.failures:
                console.print(f"[red]fail ({kind}):[/] {failure}")
    for why in result.forced:
        warning_line(f"built with --force over: {why} (the manifest records it)")
    if result.parity_failed:
        raise CheckFailed("parity measured at build time failed; the manifest records it", result.engine)


def build_summary(result: EngineResult) -> dict[str, str]:
    manifest = result.manifest
    summary = {"engine": f"{result.engine} ({result.engine_bytes / 1e6:.2f} MB)", "manifest": str(result.manifest_path),
               "sha256": manifest.engine_sha256, "built in": f"{result.build_seconds:.1f} s",
               "target": manifest.target.description,
               "graph verification": manifest.source_graph.verification if manifest.source_graph else ""}
    if result.forced:
        summary["forced"] = "; ".join(result.forced)
    if result.pinned_layers:
        summary["pinned to FP32"] = f"{result.pinned_layers} layers"
    for kind in ("engine", "graph"):
        if kind in result.parity:
            summary[f"{kind} parity"] = parity_line(result.parity[kind])
    return summary

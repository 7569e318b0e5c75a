"""What `gedge export` and `gedge check` do: call the library, render the result.

Exit codes: 2 for bad input (a GedgeError, handled by the CLI), 1 when a check fails, so
scripts and CI can gate on them.
"""

from __future__ import annotations

from pathlib import Path

from gedge.cli.render import console, err_console, key_value_table, print_json, warning_line
from gedge.core.errors import ConfigError
from rich.table import Table


def default_graph_name(precision: str) -> Path:
    return Path("scorer.onnx" if precision == "fp32" else f"scorer.{precision}.onnx")


def run_export(checkpoint: Path, out: Path | None, input_kind: str, precision: str, amap: bool, opset: int,
               json_out: bool) -> None:
    from gedge.export.onnx_export import ExportOptions, export_checkpoint

    options = ExportOptions(input=input_kind, with_amap=amap, opset=opset)
    out = out or default_graph_name(precision)
    with err_console.status(f"exporting {checkpoint} to {precision.upper()} ONNX"):
        result = export_checkpoint(checkpoint, out, options, precision)
    facts = result.facts
    summary = {"graph": str(result.path), "sidecar": str(result.sidecar), "precision": facts.precision,
               "input": f"{facts.input_name} ({facts.input})", "outputs": ", ".join(facts.outputs),
               "nodes": result.nodes, "primary": facts.primary, "threshold": facts.threshold,
               "source_sha256": facts.source_sha256, "seconds": round(result.seconds, 1)}
    if json_out:
        print_json({**summary, "outputs": facts.outputs})
        return
    console.print(key_value_table(f"Exported {checkpoint} to {result.path}", summary))


def check_table(result) -> Table:
    table = Table(title=f"Graph check: {result.path}", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("details")
    onnx_details = "; ".join(result.onnx_errors) or f"{result.nodes} nodes, opset {result.opset}, full shape inference"
    table.add_row("onnx.checker", "[green]ok[/]" if result.onnx_ok else "[red]FAIL[/]", onnx_details)
    trt = result.tensorrt
    if trt is None:
        table.add_row("TensorRT parser", "[yellow]skipped[/]", result.tensorrt_skipped)
    else:
        label = f"{trt.module} {trt.version} parser"
        if trt.parsed:
            table.add_row(label, "[green]ok[/]", "every node parsed")
        for issue in trt.issues:
            table.add_row(label, "[red]REJECTED[/]", issue.line())
        if trt.built is not None:
            caps = (f" for {', '.join(trt.compute_capabilities)}" if trt.compute_capabilities
                    else " for TensorRT-RTX's default targets (Ampere and later)" if trt.module == "tensorrt_rtx"
                    else " for this GPU")
            detail = (f"engine of {trt.engine_bytes / 1e6:.2f} MB{caps} in {trt.build_seconds:.1f} s" if trt.built
                      else trt.build_error)
            table.add_row(f"{trt.module} builder", "[green]ok[/]" if trt.built else "[red]FAIL[/]", detail)
    return table


def run_check(graph: Path, tensorrt: bool, module: str | None, build: bool, compute_capabilities: list[str],
              json_out: bool) -> None:
    from gedge.export.check import check_graph

    if module not in (None, "tensorrt", "tensorrt_rtx"):
        raise ConfigError(f"--module must be tensorrt or tensorrt_rtx, got {module!r}")
    result = check_graph(graph, tensorrt=tensorrt, module=module, build=build,
                         compute_capabilities=compute_capabilities or None)
    if json_out:
        print_json(result.to_dict())
    else:
        console.print(check_table(result))
        if result.tensorrt is None and tensorrt:
            warning_line(result.tensorrt_skipped)
        if result.tensorrt and result.tensorrt.unsupported_nodes:
            console.print(f"TensorRT rejects: {', '.join(result.tensorrt.unsupported_nodes)}")
    if not result.ok:
        raise SystemExit(1)

"""`gedge` commands: export a checkpoint to an ONNX graph."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.options import Json
from gedge.cli.render import console, err_console, key_value_table, print_json
from gedge.core import artifacts
from gedge.export.onnx_export import ExportOptions, export_checkpoint

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Export a checkpoint to an ONNX graph.")


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="gedge checkpoint (.pt)."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Graph to write (default scorer.onnx, or "
                                                               "scorer.fp16.onnx with --precision fp16)."),
    input_kind: str = typer.Option("uint8-nhwc", "--input", help="Graph input: uint8-nhwc (camera bytes, "
                                                                  "normalised in the graph) or float-nchw "
                                                                  "(float32 already in [-1, 1])."),
    precision: str = typer.Option("fp32", help="fp32, or fp16 (FP16 convolutions, FP32 residuals and outputs, "
                                               "for strongly typed TensorRT)."),
    amap: bool = typer.Option(False, "--amap", metavar="", help="Also output the anomaly map |x - G(x)| (N, H, W)."),
    opset: int = typer.Option(18, help="ONNX opset (17-21)."),
    json_out: Json = False,
) -> None:
    """Export the fused scorer (G, D on \\[x; G(x)], residual scores) to one ONNX graph with a sidecar JSON.

    Example: [bold]gedge export model.pt -o scorer.onnx && gedge export model.pt --precision fp16[/]
    """
    options = ExportOptions(input=input_kind, with_amap=amap, opset=opset)
    out = out or Path("scorer.onnx" if precision == "fp32" else f"scorer.{precision}.onnx")
    with err_console.status(f"exporting {checkpoint} to {precision.upper()} ONNX"):
        result = export_checkpoint(artifacts.open(checkpoint, ("checkpoint",)), out, options, precision)
    facts = result.facts
    summary = {"graph": str(result.path), "sidecar": str(result.sidecar), "precision": facts.precision,
               "input": f"{facts.input_name} ({facts.input_kind})", "outputs": ", ".join(facts.outputs),
               "nodes": result.nodes, "primary": facts.primary, "threshold": facts.threshold,
               "source_sha256": facts.lineage.checkpoint_sha256, "seconds": round(result.seconds, 1)}
    if json_out:
        print_json({**summary, "outputs": list(facts.outputs)})
        return
    console.print(key_value_table(f"Exported {checkpoint} to {result.path}", summary))

"""`gedge` commands: export a checkpoint to an ONNX graph."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.commands_export import run_export

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
    amap: bool = typer.Option(False, "--amap", help="Also output the anomaly map |x - G(x)| (N, H, W)."),
    opset: int = typer.Option(18, help="ONNX opset (17-21)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary."),
) -> None:
    """Export the fused scorer (G, D on [x; G(x)], residual scores) to one ONNX graph with a sidecar JSON.

    Example: [bold]gedge export model.pt -o scorer.onnx && gedge export model.pt --precision fp16[/]
    """
    run_export(checkpoint, out, input_kind, precision, amap, opset, json_out)

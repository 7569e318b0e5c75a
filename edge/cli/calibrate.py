"""`gedge` commands: iNT8 calibration with an accuracy gate."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.commands_calibrate import run_calibrate

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="INT8 calibration with an accuracy gate.")


@app.command()
def calibrate(
    checkpoint: Path = typer.Argument(..., help="gedge checkpoint (.pt): the reference and the source of the "
                                                "preprocessing and validation images."),
    onnx: Path = typer.Option(Path("scorer.onnx"), "--onnx", help="The FP32 graph from `gedge export`."),
    data: Path | None = typer.Option(None, "--data", help="Normal images to calibrate on: a data set (its normal "
                                                          "training images) or a folder (default: the "
                                                          "checkpoint's training images). Never test images."),
    target: str = typer.Option("all", help="tensorrt (scorer.int8.qdq.onnx + calibration cache), cpu "
                                           "(scorer.int8.cpu.onnx), all (both), or openvino (NNCF INT8 IR "
                                           "scorer.int8.ov.xml; needs gedge\\[openvino])."),
    method: str = typer.Option("minmax", help="Activation ranges: minmax, entropy (TensorRT's KL method) or "
                                              "percentile."),
    percentile: float = typer.Option(99.99, help="Percentile of |x| for --method percentile."),
    patches: int = typer.Option(512, help="Calibration patches (a warning under 300)."),
    seed: int = typer.Option(0, help="Seed for drawing the patches."),
    strict: bool = typer.Option(False, "--strict", help="Do not write a graph that fails the accuracy gate."),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Where to write (default: next to --onnx)."),
    trt_version: str = typer.Option("8.6.1", help="TensorRT version named in the calibration cache header "
                                                  "(8.5 to 10.x)."),
    quantize_image_convs: bool = typer.Option(False, "--quantize-image-convs",
                                              help="Also quantize the convolutions that read an image (first "
                                                   "layer of each network; float by default)."),
    max_auroc_drop: float | None = typer.Option(None, help="Gate: largest primary-score AUROC drop (default 0.01)."),
    min_agreement: float | None = typer.Option(None, help="Gate: smallest decision agreement (default 0.98)."),
    threads: int = typer.Option(0, help="ONNX Runtime threads (0: its default)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary."),
) -> None:
    """INT8 graphs for TensorRT (Q/DQ) and for the CPU, a TensorRT calibration cache, and an accuracy gate.

    Draws calibration patches from normal images, chooses activation ranges on the FP32 graph, writes the
    Q/DQ graphs and the cache, then compares each INT8 graph with the torch reference on the checkpoint's
    held-out validation images plus proxy anomalies (AUROC drop of the primary score <= 0.01, decision
    agreement >= 98 %). Exit code 1 when a graph fails the gate (it is still written unless --strict).

    Example: [bold]gedge export model.pt -o scorer.onnx && gedge calibrate model.pt --onnx scorer.onnx[/]
    Example: [bold]gedge calibrate model.pt --onnx scorer.onnx --target openvino[/]
    """
    run_calibrate(locals())

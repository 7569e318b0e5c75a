"""`gedge` commands: inspect images and line-scan strips with any deployed model."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.commands_inspect import check_backend, run_inspect
from gedge.cli.served import need_inputs, report_requests, served_model

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Inspect images and line-scan strips with any deployed model.")


@app.command()
def inspect(
    model: Path = typer.Argument(..., help="Model: gedge checkpoint (.pt), ONNX graph (.onnx), OpenVINO IR (.xml) "
                                           "or TensorRT engine (.engine); preprocessing and threshold come from "
                                           "it."),
    inputs: list[Path] | None = typer.Argument(None, help="Image files or folders (boards, line-scan strips)."),
    backend: str | None = typer.Option(None, help="torch, torch-cuda, onnxruntime, openvino or tensorrt "
                                                     "(default: the model file's own; for an .onnx graph the "
                                                     "fastest installed CPU backend, printed)."),
    device: str = typer.Option("cpu", help="torch device for a .pt model: cpu or cuda."),
    overlap: float = typer.Option(0.5, help="Tile overlap, 0 to 0.9 (0.5: stride of half a tile)."),
    batch_size: int = typer.Option(64, help="Tiles per batch."),
    threshold: float | None = typer.Option(None, help="Decision threshold on the normalised score "
                                                         "(default: the model's)."),
    overlays: Path | None = typer.Option(None, help="Write an overlay PNG per image (heat map and defect boxes) "
                                                       "to this folder."),
    truth: Path | None = typer.Option(None, help="Ground truth (strips.json from `gedge data synth-strips`): "
                                                    "recall and false alarms per strip."),
    all_tiles: bool = typer.Option(False, "--all-tiles", help="JSON: every tile's score, not only those over "
                                                              "the threshold."),
    threads: int = typer.Option(0, help="torch / ONNX Runtime threads (0: their default)."),
    workers: int | None = typer.Option(None, help="Decoding threads (default: up to 4)."),
    slots: int = typer.Option(2, help="Batches in flight."),
    performance: str = typer.Option("latency", help="OpenVINO performance hint: latency (one stream, all "
                                                    "threads) or throughput (a batch split across streams)."),
    streams: int = typer.Option(0, help="OpenVINO streams with --performance throughput (0: OpenVINO's "
                                        "choice)."),
    convert: bool = typer.Option(False, "--convert", help="Convert images to the model's channel count."),
    json_out: bool = typer.Option(False, "--json", help="JSON lines: one per image, then the summary."),
    server: str | None = typer.Option(None, help="Score on a Triton server (http://host:8000 or grpc://host:8001, "
                                                 "`gedge serve`); MODEL is then the first image."),
    model_name: str | None = typer.Option(None, help="With --server: the served model (default: scorer)."),
) -> None:
    """Inspect images, folders or line-scan strips: tiles, decisions per tile and image, defect boxes.

    Corrupt or unreadable images are reported and skipped; the run goes on (exit code 0).

    Example: [bold]gedge inspect scorer.onnx strips/ --overlap 0.5 --overlays overlays --json[/]
    """
    if server is not None:  # only the scoring moves: tiling, decisions, boxes and reports stay here
        model, inputs = served_model(server, model_name, model, inputs)
    run_inspect(model, need_inputs(inputs, "images or folders"), check_backend(backend), device, overlap,
                batch_size, threshold, overlays, truth,
                all_tiles, threads, workers, slots, convert, json_out, performance, streams)
    if server is not None:
        report_requests(model, json_out)

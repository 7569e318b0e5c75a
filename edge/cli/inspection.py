"""`gedge` commands: inspect images and line-scan strips with any deployed model."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.options import BatchSize, Force, Json, ModelName, Performance, Streams, Threads
from gedge.cli.render import console, err_console, fmt, key_value_table, print_json, progress_bar, warning_line
from gedge.cli.served import need_inputs, report_requests, served_model
from gedge.inspection.inspector import ImageReport, InspectOptions
from gedge.inspection.session import (
    BackendRequest,
    InspectionResult,
    InspectionSession,
    InspectRequest,
    TruthSummary,
)
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Inspect images and line-scan strips with any deployed model.")
MAX_ROWS = 40  # image rows in the table; the summary covers all


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
    overlap: float | None = typer.Option(None, help="Tile overlap, 0 to 0.9 (0.5: a stride of half a tile; default: "
                                                    "the model's own stride, the tiles it was evaluated and gated "
                                                    "on)."),
    batch_size: BatchSize = 64,
    threshold: float | None = typer.Option(None, help="Decision threshold on the normalised score "
                                                         "(default: the model's)."),
    overlays: Path | None = typer.Option(None, help="Write an overlay PNG per image (heat map and defect boxes) "
                                                       "to this folder."),
    truth: Path | None = typer.Option(None, help="Ground truth (strips.json from `gedge data synth-strips`): "
                                                    "recall and false alarms per strip."),
    all_tiles: bool = typer.Option(False, "--all-tiles", metavar="",
                                   help="JSON: every tile's score, not only those over the threshold."),
    threads: Threads = 0,
    workers: int | None = typer.Option(None, help="Decoding threads (default: up to 4)."),
    slots: int = typer.Option(2, help="Batches in flight."),
    performance: Performance = "latency",
    streams: Streams = 0,
    convert: bool = typer.Option(False, "--convert", metavar="", help="Convert images to the model's channel count."),
    json_out: Json = False,
    server: str | None = typer.Option(None, help="Score on a Triton server (http://host:8000 or grpc://host:8001, "
                                                 "`gedge serve`); MODEL is then the first image."),
    model_name: ModelName = None,
    force: Force = False,
) -> None:
    """Inspect images, folders or line-scan strips: tiles, decisions per tile and image, defect boxes.

    Corrupt or unreadable images are reported and skipped; the run goes on, and exits with code 2 when any image
    could not be inspected (3 when the backend failed on a batch). The model's recorded hashes and verdicts are
    checked first: one whose INT8 gate or engine parity failed is refused unless --force.

    Example: [bold]gedge inspect scorer.onnx strips/ --overlays overlays --json[/]
    """
    if server is not None:  # only the scoring moves: tiling, decisions, boxes and reports stay here
        model, inputs = served_model(server, model_name, model, inputs)
    request = InspectRequest(
        model, tuple(need_inputs(inputs, "images or folders")),
        InspectOptions(overlap=overlap, batch_size=batch_size, threshold=threshold, overlays=overlays,
                       convert=convert, all_tiles=all_tiles, workers=workers, slots=slots),
        BackendRequest(backend, device, threads, performance, streams, force), truth)
    result = render_inspection(request, json_out)
    if server is not None:
        report_requests(model, json_out)
    failure = result.failure()  # after the summary: failed images give the run's exit code (2, or 3)
    if failure is not None:
        raise failure


def render_inspection(request: InspectRequest, json_out: bool) -> InspectionResult:
    """Run the request; JSON lines as images finish (then the summary), or the tables at the end."""
    reports = []
    session = InspectionSession(request)  # the model file read once, its hashes checked
    verification = session.verified()  # a refused model stops here, before it is opened
    if verification is not None:
        for warning in verification.warnings:
            warning_line(f"{request.model}: {warning}")
        if not json_out:
            console.print(f"model {request.model}: {verification.line()}", markup=False)
    with session:
        if session.backend_note and not json_out:
            err_console.print(f"backend: {session.backend_note}")
        with progress_bar("inspecting", total=len(session.files), transient=json_out) as update:
            for report in session.reports(update):
                reports.append(report)
                if json_out:
                    print_json(report.to_record())
    result = session.result()
    if json_out:
        print_json({"summary": {**result.to_dict(),
                                "verification": None if verification is None else verification.to_dict()}})
        return result
    for report in result.failed:
        warning_line(f"skipped {report.error}")
    console.print(image_table(reports, result.summary.threshold))
    if result.truth is not None:
        console.print(truth_table(result.truth))
    console.print(key_value_table("Inspection summary", summary_rows(result, request)))
    return result


def summary_rows(result: InspectionResult, request: InspectRequest) -> dict[str, object]:
    summary, artifact = result.summary, result.artifact
    verified = artifact.verified(request.backend.force)
    rows: dict[str, object] = {
        "model": f"{summary.model} ({artifact.precision})", "backend": summary.backend,
        "verification": "-" if verified is None else verified.line(),
        "threshold": f"{summary.threshold:.3f} ({artifact.primary})",
        "tiles": f"{summary.tiles} (stride {summary.stride}, overlap {summary.overlap:g}, batch "
                 f"{summary.batch_size})",
        "images": summary.images, "rejected": summary.rejected, "accepted": summary.accepted,
        "errors (skipped)": f"{summary.errors} ({summary.input_errors} unreadable, {summary.runtime_errors} failed "
                            "on the backend)", "defect boxes": summary.boxes,
        "time": f"{summary.seconds:.2f} s ({summary.tiles_per_second:.0f} tiles/s)"}
    if result.truth is not None:
        truth = result.truth.to_dict()
        rows["planted defects found"] = f"{truth['found']} of {truth['planted']} (recall {fmt(truth['recall'])})"
        rows["false alarms"] = f"{truth['false_alarms']} boxes on {truth['strips']} strips"
    if request.options.overlays is not None:
        rows["overlays"] = str(request.options.overlays)
    return rows


def image_table(reports: list[ImageReport], threshold: float) -> Table:
    table = Table(title=f"Inspection (threshold {threshold:.3f})", title_justify="left")
    for column in ("image", "size", "tiles", "score", "decision", "tiles over", "boxes (x0,y0-x1,y1)"):
        table.add_column(column, justify="left" if column in ("image", "boxes (x0,y0-x1,y1)") else "right")
    shown = reports if len(reports) <= MAX_ROWS else [r for r in reports if not r.ok or r.anomalous][:MAX_ROWS]
    for r in shown:
        if not r.ok:
            table.add_row(Path(r.path).name, "-", "-", "-", "[yellow]ERROR[/]", "-", r.error or "")
            continue
        decision = "[red]REJECT[/]" if r.anomalous else "[green]accept[/]"
        boxes = "; ".join(f"{b.x0},{b.y0}-{b.x1},{b.y1} ({b.score:.1f})" for b in r.boxes[:3])
        if len(r.boxes) > 3:
            boxes += f"; +{len(r.boxes) - 3}"
        table.add_row(Path(r.path).name, f"{r.width}x{r.height}", str(r.tiles), fmt(r.score, 2), decision,
                      str(len(r.tiles_over)), boxes)
    if len(shown) < len(reports):
        table.caption = f"{len(reports) - len(shown)} accepted images not shown (--json lists every image)"
    return table


def truth_table(truth: TruthSummary) -> Table:
    table = Table(title="Against the ground truth (strips.json)", title_justify="left")
    for column in ("strip", "planted", "found", "recall", "false alarms", "decision"):
        table.add_column(column, justify="left" if column == "strip" else "right")
    for s in truth.strips:
        table.add_row(s.file, str(s.planted), str(s.found), fmt(s.recall, 2), str(s.false_alarms),
                      "REJECT" if s.rejected else "accept")
    return table

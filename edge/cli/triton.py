"""`gedge triton export`: Triton Inference Server model repositories from engines, graphs and IRs."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.bench.load import LoadOptions, run_load
from gedge.cli.options import Force, Json, ModelName
from gedge.cli.render import console, fmt, key_value_table, print_json, warning_line
from gedge.core.errors import CheckFailed
from gedge.export.triton import TritonExportOptions, export_repository
from gedge.runtime.registry import open_backend
from gedge.runtime.served import listen, served_reference
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Triton Inference Server model repositories.")


@app.callback()
def triton() -> None:
    """Triton Inference Server model repositories from gedge's artifacts (serve them with NVIDIA's container)."""


@app.command("export")
def export(
    models: list[Path] = typer.Argument(..., help="Artifacts: TensorRT engines (.engine), ONNX graphs (.onnx), "
                                                  "OpenVINO IRs (.xml); each becomes one model."),
    out: Path = typer.Option(..., "-o", "--out", help="The model repository (created or added to)."),
    name: str | None = typer.Option(None, help="Model name (one artifact; default: its file name without "
                                               "suffix, dots as _)."),
    version: int | None = typer.Option(None, help="Version folder (default: the next free one)."),
    max_batch: int | None = typer.Option(None, help="max_batch_size (default: an engine's profile max, else 64)."),
    preferred: list[int] = typer.Option([], "--preferred", help="Preferred batch size (repeatable; default: an "
                                                                "engine's profile opt and max)."),
    queue_delay_us: int = typer.Option(500, help="Dynamic batcher queue delay (us)."),
    instances: int = typer.Option(1, help="Instances per device (instance_group count)."),
    device: str = typer.Option("auto", help="auto (engine: gpu; graph, IR: cpu), cpu or gpu."),
    tensorrt_accelerator: bool = typer.Option(False, "--tensorrt-accelerator", metavar="", help="ONNX graph on a GPU: "
                                              "TensorRT as onnxruntime's execution accelerator."),
    warmup: bool = typer.Option(True, "--warmup/--no-warmup", help="Warm each instance with a zero batch."),
    force: Force = False,
    json_out: Json = False,
) -> None:
    """Write a Triton model repository: config.pbtxt from each artifact's facts, the artifact under a version
    folder, its sidecar or manifest next to it. Serve it with NVIDIA's Triton container (docs/serving.md).

    Example: [bold]gedge triton export scorer.fp16.engine scorer.onnx -o models --instances 2[/]
    """
    options = TritonExportOptions(name=name, version=version, max_batch=max_batch,
                                  preferred=tuple(preferred) if preferred else None, queue_delay_us=queue_delay_us,
                                  instances=instances, device=device, tensorrt_accelerator=tensorrt_accelerator,
                                  warmup=warmup, force=force)
    written = export_repository(models, out, options)
    for m in written:
        for why in m.forced:
            warning_line(f"{m.artifact}: written with --force over: {why}")
    if json_out:
        print_json({"repository": str(out), "models": [m.to_dict() for m in written]})
        return
    table = Table(title=f"Triton model repository {out}", title_justify="left")
    for column in ("model", "version", "platform", "artifact", "max batch", "preferred", "instances",
                   "checked"):
        table.add_column(column)
    for m in written:
        table.add_row(m.name, str(m.version), m.platform, m.artifact, str(m.max_batch_size),
                      ", ".join(map(str, m.preferred_batch_sizes)) or "-", f"{m.instances} x {m.device}",
                      "Triton's ModelConfig" if m.validated else "not checked (pip install tritonclient)")
    console.print(table)


@app.command("load")
def load(
    server: str = typer.Argument(..., help="The server: http://host:8000 (or grpc://host:8001 with --metrics-url)."),
    model_name: ModelName = None,
    clients: int = typer.Option(16, help="Concurrent clients (threads, one connection each)."),
    requests: int = typer.Option(2000, help="Requests in total."),
    seconds: float = typer.Option(60.0, help="Stop sending after this long, whatever the count."),
    images: int = typer.Option(1, help="Tiles per request."),
    timeout: float = typer.Option(30.0, help="Seconds per request before it counts as an error."),
    metrics_url: str | None = typer.Option(None, help="Prometheus endpoint (default: the server's host, :8002)."),
    json_out: Json = False,
) -> None:
    """A bounded load test: throughput, p50/p99 latency, the batch sizes Triton formed; every request is
    answered or gets an error, and the requests the server accepted (its own counts) that never reached their
    client as an answer are "lost" (exit 1 if any request was lost, wrong or failed). Loopback or a test network
    only.

    Example: [bold]gedge triton load http://127.0.0.1:8000 --clients 16 --requests 2000[/]
    """
    reference = served_reference(server, model_name)
    listen(lambda line: warning_line(line))  # e.g. the model still loading
    backend = open_backend(reference, "triton", slots=1)  # the served model's facts: its input
    spec = backend.input_spec
    backend.close()
    options = LoadOptions(clients=clients, requests=requests, seconds=seconds, images=images, timeout_s=timeout,
                          metrics_url=metrics_url)
    report = run_load(reference, options, (spec.size, spec.size, spec.channels))
    if json_out:
        print_json(report.to_dict())
    else:
        sizes = ", ".join(f"{size}: {count}" for size, count in report.batch_sizes.items()) or "-"
        console.print(key_value_table(f"Load on {reference}", {
            "clients": report.clients, "requests sent": report.sent, "answered": report.answered,
            "errors": f"{report.errors} ({report.refused} refused explicitly by the server)",
            "lost (accepted by the server, never answered here)":
                "unknown (the server's counts could not be read)" if report.lost is None else report.lost,
            "server's counts": f"{report.server} ({report.server_source})" if report.server else "-",
            "wrong answers": report.wrong,
            "throughput": f"{report.requests_per_second:.0f} requests/s ({report.images_per_request} image each)",
            "latency p50 / p99": f"{fmt(report.latency_ms.get('p50'), 1)} / {fmt(report.latency_ms.get('p99'), 1)} ms",
            "mean batch formed (metrics)": fmt(report.mean_batch, 2),
            "batch sizes formed (images: executions)": sizes, "errors by kind": report.error_kinds or "-"}))
    if report.lost or report.wrong or report.errors:
        raise CheckFailed(f"{report.errors} errors, {report.lost} lost, {report.wrong} wrong answers of "
                          f"{report.sent} requests")

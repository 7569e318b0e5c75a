"""`gedge serve`: a Triton Inference Server (PyTriton) serving one artifact over HTTP and gRPC."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import typer
from gedge.cli.render import console, err_console, key_value_table, print_json
from gedge.core.errors import RuntimeFailure
from gedge.core.optional import require

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Serve a scorer with Triton Inference Server.")


@app.command()
def serve(
    model: Path = typer.Argument(..., help="ONNX graph (.onnx), OpenVINO IR (.xml) or TensorRT engine (.engine)."),
    http: int = typer.Option(8000, help="HTTP port (KServe v2 REST: /v2/health/ready, /v2/models/NAME/infer)."),
    grpc: int = typer.Option(8001, help="gRPC port."),
    metrics: int = typer.Option(8002, help="Prometheus metrics port (/metrics)."),
    address: str = typer.Option("0.0.0.0", help="Address to listen on (127.0.0.1: this machine only)."),
    max_batch: int = typer.Option(64, help="Largest batch Triton's dynamic batcher forms (images)."),
    queue_delay_us: int = typer.Option(500, help="How long a request may wait for others to fill a batch (us)."),
    instances: int = typer.Option(1, help="Model instances (each its own backend; batches run concurrently)."),
    name: str | None = typer.Option(None, help="Model name (default: the file name without suffix, e.g. scorer)."),
    backend: str | None = typer.Option(None, help="onnxruntime, openvino or tensorrt (default: the file's own; "
                                                  "for an .onnx graph the fastest installed CPU backend)."),
    threads: int = typer.Option(0, help="Threads per instance for onnxruntime / OpenVINO (0: their default)."),
    drain: int = typer.Option(30, help="On SIGINT/SIGTERM, seconds to finish accepted requests before exiting."),
    log_file: Path | None = typer.Option(None, help="tritonserver's log (default: a file in the temp folder)."),
    force: bool = typer.Option(False, "--force", help="Serve an artifact whose recorded verdict (INT8 gate, engine "
                                                      "parity) failed."),
    json_out: bool = typer.Option(False, "--json", help="JSON lines: ready, stopping, stopped."),
) -> None:
    """Serve an artifact with a real Triton Inference Server: dynamic batching, instances, metrics, health.

    The artifact is verified and opened as `gedge inspect` opens it before the server starts. Clients send
    uint8 NHWC batches as input [bold]pixels[/] and get every score plus [bold]decision[/]; `gedge inspect
    --server URL` and `gedge bench --server URL` do. Ctrl-C or SIGTERM drains accepted requests and stops.

    Example: [bold]gedge serve scorer.onnx --http 8000 --grpc 8001 --max-batch 64 --instances 2[/]
    """
    server = require("gedge.serve.server", "`gedge serve`")
    log = log_file or Path(tempfile.gettempdir()) / f"gedge-serve-{os.getpid()}.tritonserver.log"
    options = server.ServeOptions(http_port=http, grpc_port=grpc, metrics_port=metrics, address=address,
                                  max_batch=max_batch, queue_delay_us=queue_delay_us, instances=instances,
                                  name=name, backend=backend, threads=threads, drain_seconds=drain, log_file=log,
                                  force=force)
    render = print_json if json_out else _render_event
    summary = server.serve(model, options, render)  # renders ready, stopping and stopped as they happen
    if summary["signal"] == "":
        raise RuntimeFailure(f"tritonserver exited on its own; its log: {log}", model)


def _render_event(event: dict[str, Any]) -> None:
    kind = event["event"]
    if kind == "ready":
        facts, options = event["facts"], event["options"]
        rows = {"model": f"{event['model']} ({facts['artifact']}, {facts['precision']}, sha256 "
                         f"{facts['sha256'][:12]}...)",
                "backend": f"{facts['backend']} x {options['instances']} instance(s)",
                "HTTP": event["http"], "gRPC": event["grpc"], "metrics": event["metrics"], "ready": event["ready"],
                "batching": f"up to {options['max_batch']} images, queue delay {options['queue_delay_us']} us",
                "input": f"pixels uint8 (N, {facts['input']['size']}, {facts['input']['size']}, "
                         f"{facts['input']['channels']})",
                "threshold": f"{facts['threshold']:.4f} on {facts['primary_score']}",
                "verification": (facts.get("verification") or {}).get("line", "-"),
                "tritonserver log": options["log_file"]}
        console.print(key_value_table("Serving (Ctrl-C or SIGTERM stops after the accepted requests)", rows))
    elif kind == "note":
        err_console.print(f"note: {event['line']}", markup=False)
    elif kind == "stopping":
        err_console.print(f"stopping on {event['signal']}: answering accepted requests (up to "
                          f"{event['drain_seconds']} s)")
    else:
        sizes = ", ".join(f"{size}: {count}" for size, count in event["batch_sizes"].items()) or "-"
        console.print(key_value_table("Stopped", {
            "requests answered": event["requests_answered"], "images": event["images"],
            "executions": event["executions"], "failed requests": event["failed_requests"],
            "refused while stopping": event["refused_requests"],
            "batch sizes formed (images: executions)": sizes}))

"""`gedge serve`: a Triton Inference Server (PyTriton) serving one artifact over HTTP and gRPC."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import typer
from gedge.cli.options import Force, Json, Threads
from gedge.cli.render import console, err_console, key_value_table, print_json
from gedge.core.artifacts.served import ServedFacts
from gedge.core.errors import RuntimeFailure
from gedge.serve.server import ServeOptions, run_server

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
    threads: Threads = 0,
    drain: int = typer.Option(30, help="On SIGINT/SIGTERM, seconds to finish accepted requests before exiting."),
    log_file: Path | None = typer.Option(None, help="tritonserver's log (default: a file in the temp folder)."),
    force: Force = False,
    json_out: Json = False,
) -> None:
    """Serve an artifact with a real Triton Inference Server: dynamic batching, instances, metrics, health.

    The artifact is verified and opened as `gedge inspect` opens it before the server starts. Clients send
    uint8 NHWC batches as input [bold]pixels[/] and get every score plus [bold]decision[/]; `gedge inspect
    --server URL` and `gedge bench --server URL` do. Ctrl-C or SIGTERM drains accepted requests and stops.

    Example: [bold]gedge serve scorer.onnx --http 8000 --grpc 8001 --max-batch 64 --instances 2[/]
    """
    log = log_file or Path(tempfile.gettempdir()) / f"gedge-serve-{os.getpid()}.tritonserver.log"
    options = ServeOptions(http_port=http, grpc_port=grpc, metrics_port=metrics, address=address,
                           max_batch=max_batch, queue_delay_us=queue_delay_us, instances=instances,
                           name=name, backend=backend, threads=threads, drain_seconds=drain, log_file=log,
                           force=force)
    render = _print_event if json_out else _render_event
    summary = run_server(model, options, render)  # renders ready, stopping and stopped as they happen
    if summary["signal"] == "":
        raise RuntimeFailure(f"tritonserver exited on its own; its log: {log}", model)


def _print_event(event: dict[str, Any]) -> None:
    """An event as one JSON line (the served facts in their JSON form)."""
    facts = event.get("facts")
    print_json({**event, "facts": facts.to_dict()} if isinstance(facts, ServedFacts) else event)


def _render_event(event: dict[str, Any]) -> None:
    kind = event["event"]
    if kind == "ready":
        served: ServedFacts = event["facts"]
        facts, options, spec = served.facts, event["options"], served.facts.input_spec()
        rows = {"model": f"{event['model']} ({served.artifact}, {facts.precision}, sha256 {served.sha256[:12]}...)",
                "backend": f"{served.backend} x {options['instances']} instance(s)",
                "HTTP": event["http"], "gRPC": event["grpc"], "metrics": event["metrics"], "ready": event["ready"],
                "batching": f"up to {options['max_batch']} images, queue delay {options['queue_delay_us']} us",
                "input": f"pixels uint8 (N, {spec.size}, {spec.size}, {spec.channels})",
                "threshold": f"{facts.threshold:.4f} on {facts.primary}",
                "verification": served.verification_line, "tritonserver log": options["log_file"]}
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

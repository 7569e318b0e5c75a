"""Latency and throughput of any backend, measured one way: the shared timing code of gedge's benchmarks.

* :func:`timed_calls` and :func:`latency_summary`: warm-up, then a fixed number of calls or a duration, and
  p50/p90/p99 of the per-call times (nearest-rank percentiles, milliseconds). Other benchmarks use these two.
* :func:`bench_latency`: one backend, one batch size: ``score(batch)`` repeated; throughput is
  ``batch / mean latency`` in network inputs (images of the model's input size) per second.
* :func:`bench_pipeline`: the same backend end to end from encoded frames (PNG decode and tiling included):
  batch by batch (prepare, then score, no overlap) against the pipelined loop
  (:class:`gedge.runtime.loop.Pipeline`), best of ``rounds`` alternating runs so that a load spike on a shared
  machine does not decide the ratio.
* peak memory: the process's peak RSS since the backend was opened (``/proc/self/clear_refs`` resets the
  peak on Linux; elsewhere it is the process peak so far), torch's ``max_memory_allocated`` on CUDA, and the
  TensorRT backend's device bytes (execution contexts and bindings).
* :func:`machine_facts`: CPU model, cores, load, versions of torch, onnxruntime, TensorRT and cuda-python,
  the GPU; read without importing the heavy packages.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from gedge.core.backend import Backend
from gedge.core.errors import ConfigError
from gedge.core.machine import machine_facts, peak_rss_bytes, reset_peak_rss
from gedge.core.timing import latency_summary, percentile, timed_calls
from gedge.runtime.loop import Pipeline, batch_by_batch


@dataclass
class BenchResult:
    """One backend at one batch size (and, for TensorRT, with or without CUDA graphs)."""

    label: str  # the row's name: e.g. "onnxruntime INT8 (cpu)"
    backend: str  # the backend's own name
    kind: str  # torch, torch-cuda, onnxruntime, tensorrt
    model: str
    precision: str
    batch: int
    latency_ms: dict[str, float]
    images_per_second: float
    peak_memory_mb: float | None = None
    memory: str = ""  # what peak_memory_mb measures
    cuda_graphs: bool | None = None
    stages_ms: dict[str, float] | None = None  # TensorRT: p50 of H2D, compute, D2H per batch
    pipeline: dict[str, Any] | None = None  # batch_by_batch and pipelined images/s, their paired ratio
    vs_torch_eager: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def synthetic_batch(spec, batch: int, seed: int = 0) -> np.ndarray:
    """A uint8 NHWC batch of wood-like tiles (what the line sends), for timing."""
    from gedge.data.synth import render_board

    rng = np.random.default_rng(seed)
    side = max(64, spec.size * 2)
    board = render_board(rng, side)
    if spec.channels == 1:
        board = board.mean(axis=2, keepdims=True).astype(np.uint8)
    ys = rng.integers(0, side - spec.size + 1, batch)
    xs = rng.integers(0, side - spec.size + 1, batch)
    return np.ascontiguousarray(np.stack([board[y:y + spec.size, x:x + spec.size] for y, x in zip(ys, xs)]))


def bench_latency(backend: Backend, batch: int, warmup: int = 3, iters: int | None = None,
                  seconds: float | None = None) -> tuple[dict[str, float], float]:
    """Latency summary of ``score(batch)`` and throughput in network inputs per second."""
    inputs = synthetic_batch(backend.input_spec, batch)
    samples = timed_calls(lambda: backend.score(inputs), warmup, iters, seconds)
    summary = latency_summary(samples)
    return summary, batch / (summary["mean"] / 1e3)


def encoded_frames(spec, batch: int, count: int, seed: int = 1) -> list[bytes]:
    """``count`` PNG frames, each one row of ``batch`` tiles (what a line-scan camera hands over)."""
    from PIL import Image

    frames = []
    for i in range(count):
        tiles = synthetic_batch(spec, batch, seed + i)
        frame = np.concatenate(list(tiles), axis=1)
        buffer = io.BytesIO()
        Image.fromarray(frame[..., 0] if spec.channels == 1 else frame).save(buffer, format="PNG")
        frames.append(buffer.getvalue())
    return frames


def frame_decoder(spec) -> Callable[[bytes], np.ndarray]:
    """Decode a frame of :func:`encoded_frames` and cut it into its tiles (uint8 NHWC)."""
    from PIL import Image

    def decode(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            array = np.array(im.convert("L" if spec.channels == 1 else "RGB"), dtype=np.uint8)  # writable
        if array.ndim == 2:
            array = array[..., None]
        n = array.shape[1] // spec.size
        return np.ascontiguousarray(array.reshape(spec.size, n, spec.size, spec.channels).transpose(1, 0, 2, 3))

    return decode


def bench_pipeline(backend: Backend, batch: int, batches: int = 4, rounds: int = 6, slots: int = 2,
                   workers: int | None = None) -> dict[str, Any]:
    """Images/s from encoded frames: batch by batch versus the pipelined loop.

    The two alternate in ``rounds`` pairs of short runs of ``batches`` batches each (which goes first
    alternates too), so that load changes on a shared machine hit both alike. Each side's images/s is its
    inputs over its summed time; ``ratio`` is the median of the per-pair ratios (``ratio_iqr``: their
    quartiles), which a load spike in one pair cannot move. The loop's threads are started before timing, as
    on a running line."""
    spec = backend.input_spec
    frames = encoded_frames(spec, batch, batches)
    decode = frame_decoder(spec)
    serial_s = piped_s = 0.0
    inputs = 0
    pairs: list[float] = []
    with Pipeline(backend, batch_size=batch, slots=slots, workers=workers) as pipeline:
        pipeline.score_all(frames[:2], decode)  # warm: threads, the backend on the compute thread
        batch_by_batch(backend, frames[:2], decode, batch)

        def serial() -> float:
            nonlocal inputs
            stats = batch_by_batch(backend, frames, decode, batch)
            inputs += stats.inputs
            return stats.seconds

        def piped() -> float:
            results = pipeline.score_all(frames, decode)
            failed = [r.error for r in results if not r.ok]
            if failed:
                raise RuntimeError(f"pipelined run failed: {failed[0]}")
            return pipeline.stats.seconds

        for round_index in range(rounds):
            if round_index % 2 == 0:
                ts = serial()
                tp = piped()
            else:
                tp = piped()
                ts = serial()
            serial_s += ts
            piped_s += tp
            pairs.append(ts / tp)
    return {"batch_by_batch": inputs / serial_s, "pipelined": inputs / piped_s,
            "ratio": percentile(pairs, 50), "ratio_iqr": [percentile(pairs, 25), percentile(pairs, 75)],
            "pairs_faster": sum(r > 1.0 for r in pairs), "rounds": rounds, "batches": batches, "slots": slots}


@dataclass
class BenchConfig:
    batches: list[int] = field(default_factory=lambda: [1, 16])
    warmup: int = 3
    iters: int | None = None  # None with seconds None: 10
    seconds: float | None = None
    threads: int = 0  # torch and onnxruntime intra-op threads (0: their default)
    backends: list[str] | None = None  # torch, torch-cuda, onnxruntime, tensorrt; None: each model's own
    pipeline: bool = True  # also batch-by-batch vs pipelined throughput from encoded frames
    pipeline_batches: int = 16  # per run (long enough that filling and draining the loop is not most of it)
    pipeline_rounds: int = 6
    cuda_graphs: str = "both"  # TensorRT rows: both, on, off
    slots: int = 2
    openvino_performance: str = "latency"  # OpenVINO rows: latency or throughput hint
    openvino_streams: int = 0  # with throughput (0: OpenVINO's choice)

    def __post_init__(self) -> None:
        if not self.batches or any(b < 1 for b in self.batches):
            raise ConfigError(f"batch sizes must be at least 1, got {self.batches}")
        if self.cuda_graphs not in ("both", "on", "off"):
            raise ConfigError(f"cuda graphs must be both, on or off, got {self.cuda_graphs!r}")
        if self.pipeline_rounds < 1 or self.pipeline_batches < 1:
            raise ConfigError("the pipeline comparison needs at least one round of one batch")
        if self.iters is not None and self.seconds is not None:
            raise ConfigError("give iterations or a duration, not both")
        unknown = [b for b in self.backends or [] if b not in BACKEND_KINDS]
        if unknown:
            raise ConfigError(f"unknown backend {', '.join(unknown)}; expected {', '.join(BACKEND_KINDS)}")


BACKEND_KINDS = ("torch", "torch-cuda", "onnxruntime", "openvino", "tensorrt")


def _torch_cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def plan_runs(models: list[Any], backends: list[str] | None, measure_batch: int | None = None, threads: int = 0,
              choices: dict[str, str] | None = None) -> tuple[list[tuple[Any, str]], list[dict[str, str]]]:
    """(model, backend kind) pairs to run and the pairs left out, with the reason. Without ``backends`` a graph
    runs on the fastest installed CPU backend (measured at ``measure_batch`` where given); ``choices`` collects
    why, per model file name."""
    from pathlib import Path

    from gedge.runtime.registry import CAN_RUN, auto_backend, kind_of, model_info, refusal

    runs, skipped = [], []
    for model in models:
        natural = kind_of(model)
        kinds = [natural]
        if natural == "torch":
            kinds = ["torch", "torch-cuda"]
        elif natural in CAN_RUN["onnxruntime"]:  # a graph or IR: the CPU backends that can run it
            if backends:
                kinds = [k for k in CAN_RUN[natural] if k in backends]
            else:
                choice = auto_backend(model, measure_batch=measure_batch, threads=threads)
                kinds = [choice.kind]
                if choices is not None:
                    choices[Path(model).name] = f"{choice.kind} ({choice.reason}; --backend to choose)"
        for kind in kinds:
            wanted = kind in backends if backends else (kind != "torch-cuda" or _torch_cuda_available())
            if not wanted:
                continue
            refused = refusal(kind, natural, model_info(model).precision) if kind == "openvino" else None
            if refused:
                skipped.append({"backend": kind, "model": Path(model).name, "reason": refused})
                continue
            if kind == "torch-cuda" and not _torch_cuda_available():
                skipped.append({"backend": kind, "model": Path(model).name, "reason": "torch sees no CUDA GPU"})
                continue
            runs.append((model, kind))
    for kind in backends or []:
        if not any(k == kind for _, k in runs) and not any(s["backend"] == kind for s in skipped):
            need = {"torch": ".pt", "torch-cuda": ".pt", "onnxruntime": ".onnx", "tensorrt": ".engine",
                    "openvino": ".onnx or .xml"}[kind]
            skipped.append({"backend": kind, "model": "", "reason": f"no {need} model given"})
    return runs, skipped


def _label(kind: str, backend: Any, info: Any) -> str:
    if kind == "torch":
        return "torch eager (cpu)"
    if kind == "torch-cuda":
        return "torch eager (cuda)"
    flavour = info.details.get("flavour")
    if kind == "openvino" and flavour == "openvino":
        flavour = "nncf"
    extra = f" ({flavour})" if flavour else ""
    if kind == "onnxruntime" and getattr(backend, "fp16_emulated", False):
        extra += " (fp16 emulated)"
    return f"{kind} {info.precision.upper()}{extra}"


def _stage_p50(stages: list[Any]) -> dict[str, float] | None:
    if not stages:
        return None
    return {name: percentile([getattr(s, name) for s in stages], 50) for name in ("h2d", "compute", "d2h")}


def run_benchmarks(models: list[Any], config: BenchConfig,
                   progress: Callable[[str], None] | None = None) -> Any:
    """Every (model, backend) pair at every batch size; a :class:`gedge.bench.report.BenchReport`."""
    from pathlib import Path

    from gedge.bench.report import BenchReport
    from gedge.core.errors import GedgeError
    from gedge.runtime.registry import model_info, open_backend

    choices: dict[str, str] = {}
    runs, skipped = plan_runs(models, config.backends, max(config.batches), config.threads, choices)
    report = BenchReport(machine=machine_facts(), settings={**asdict(config), "input_size": None}, skipped=skipped)
    report.notes.extend(f"{name}: {why}" for name, why in choices.items())
    for model, kind in runs:
        name = Path(model).name
        try:
            info = model_info(model)
            exact = reset_peak_rss()
            if kind == "torch-cuda":
                import torch

                torch.cuda.reset_peak_memory_stats()
            backend = open_backend(model, kind, threads=config.threads, slots=config.slots, info=info,
                                   performance=config.openvino_performance, streams=config.openvino_streams)
        except GedgeError as exc:
            skipped.append({"backend": kind, "model": name, "reason": exc.problem})
            continue
        spec = backend.input_spec
        report.settings["input_size"] = f"{spec.size}x{spec.size}x{spec.channels}"
        variants: list[bool | None] = [None]
        if kind == "tensorrt":
            if getattr(backend, "slot_note", ""):
                report.notes.append(f"{name}: {backend.slot_note}")
            can = bool(getattr(backend, "cuda_graphs", False))
            variants = {"both": [False, True], "on": [True], "off": [False]}[config.cuda_graphs]
            if not can and True in variants:
                variants = [False]
                report.notes.append(f"{name}: no CUDA graphs ({getattr(backend, 'graph_note', '')})")
        try:
            for batch in config.batches:
                for graphs in variants:
                    if progress:
                        progress(f"{kind} {name} batch {batch}" + ("" if graphs is None else
                                                                   f" graphs {'on' if graphs else 'off'}"))
                    if graphs is not None:
                        backend.set_cuda_graphs(graphs)
                        backend.reset_stats()
                    latency, ips = bench_latency(backend, batch, config.warmup, config.iters, config.seconds)
                    result = BenchResult(
                        label=_label(kind, backend, info) + ("" if graphs is None else
                                                             (" +graphs" if graphs else " no graphs")),
                        backend=backend.name, kind=kind, model=name, precision=info.precision, batch=batch,
                        latency_ms=latency, images_per_second=ips, cuda_graphs=graphs)
                    if graphs is not None:
                        result.stages_ms = _stage_p50(backend.stats.stages)
                    if config.pipeline and graphs is not False:
                        # at least 32 inputs per run: a run of a few tiny batches is mostly start and drain
                        # up to pipeline_batches (at least 4) per run, 1024 inputs at most unless 4 batches hold more
                        per_run = max(-(-32 // batch), min(config.pipeline_batches, max(4, -(-1024 // batch))))
                        result.pipeline = bench_pipeline(backend, batch, per_run, config.pipeline_rounds,
                                                         config.slots)
                    if kind == "tensorrt":
                        result.peak_memory_mb, result.memory = backend.device_bytes / 1e6, "GPU"
                    elif kind == "torch-cuda":
                        import torch

                        result.peak_memory_mb, result.memory = torch.cuda.max_memory_allocated() / 1e6, "GPU"
                    else:
                        result.peak_memory_mb = peak_rss_bytes() / 1e6
                        result.memory = "RSS" if exact else "RSS (process)"
                    report.results.append(result)
        finally:
            backend.close()
    report.add_ratios()
    return report

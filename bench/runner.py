"""``gedge bench``: latency, throughput and memory of any backend, timed by :mod:`gedge.core.timing`.

* :func:`bench_latency`: one backend, one batch size: warm-up, then ``score(batch)`` a number of times or for a
  duration; p50/p90/p99 (nearest rank) of the per-call times; throughput is ``batch / mean latency`` in network
  inputs (images of the model's input size) per second.
* :func:`bench_pipeline`: the same backend end to end from encoded frames (PNG decode and tiling included):
  batch by batch (prepare, then score, no overlap) against the pipelined loop
  (:class:`gedge.runtime.loop.Pipeline`), in interleaved pairs of runs whose order alternates, so that a load
  spike on a shared machine does not decide the ratio.
* peak memory: the process's peak RSS since the backend was opened (``/proc/self/clear_refs`` resets the
  peak on Linux; elsewhere it is the process peak so far), torch's ``max_memory_allocated`` on CUDA, and the
  device memory a GPU backend declares, named for what it counts (TensorRT: the engine, its plan's size, which
  holds the weights, plus the execution contexts and the bindings).

What each backend is (its row label, precision, CUDA graphs, notes) comes from its declared
:class:`~gedge.core.backend.BackendInfo`; the report is a :class:`gedge.bench.report.BenchReport` with the
machine's facts (:func:`gedge.core.machine.machine_facts`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gedge.bench.report import BENCH, BenchReport, BenchRow
from gedge.core.artifacts import Artifact
from gedge.core.backend import Backend, BackendInfo, CudaGraphBackend
from gedge.core.errors import ConfigError, GedgeError, RuntimeFailure
from gedge.core.inputs import InputSpec
from gedge.core.machine import machine_facts, peak_rss_bytes, reset_peak_rss
from gedge.core.optional import available, require
from gedge.core.timing import Rounds, interleaved, latency_summary, percentile, timed_calls
from gedge.data.synth import render_board
from gedge.runtime.loop import Pipeline, batch_by_batch
from gedge.runtime.registry import (
    BACKENDS,
    CAN_RUN,
    KINDS,
    Model,
    artifact_kind,
    auto_backend,
    kind_of,
    open_backend,
    open_model,
    refusal,
)
from gedge.runtime.served import is_served
from PIL import Image

BACKEND_KINDS = (KINDS[0], "torch-cuda", *KINDS[1:])  # torch-cuda: the torch backend on CUDA, rows of its own
Progress = Callable[[str], None]


def synthetic_batch(spec: InputSpec, batch: int, seed: int = 0) -> np.ndarray:
    """A uint8 NHWC batch of wood-like tiles (what the line sends), for timing."""
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
    """Latency summary of ``score(batch)`` and throughput in network inputs per second (at the mean latency)."""
    inputs = synthetic_batch(backend.input_spec, batch)
    summary = latency_summary(timed_calls(lambda: backend.score(inputs), warmup, iters, seconds))
    return summary, batch / (summary["mean"] / 1e3)


def encoded_frames(spec: InputSpec, batch: int, count: int, seed: int = 1) -> list[bytes]:
    """``count`` PNG frames, each one row of ``batch`` tiles (what a line-scan camera hands over)."""
    frames = []
    for i in range(count):
        tiles = synthetic_batch(spec, batch, seed + i)
        frame = np.concatenate(list(tiles), axis=1)
        buffer = io.BytesIO()
        Image.fromarray(frame[..., 0] if spec.channels == 1 else frame).save(buffer, format="PNG")
        frames.append(buffer.getvalue())
    return frames


def frame_decoder(spec: InputSpec) -> Callable[[bytes], np.ndarray]:
    """Decode a frame of :func:`encoded_frames` and cut it into its tiles (uint8 NHWC)."""

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

    The two run in ``rounds`` interleaved pairs of short runs of ``batches`` batches each (which goes first
    alternates), so that load changes on a shared machine hit both alike. Each side's images/s is its inputs
    over its summed time; ``ratio`` is the median of the per-pair ratios (``ratio_iqr``: their quartiles), which
    a load spike in one pair cannot move. The loop's threads are started before timing, as on a running line."""
    spec = backend.input_spec
    frames = encoded_frames(spec, batch, batches)
    decode = frame_decoder(spec)
    with Pipeline(backend, batch_size=batch, slots=slots, workers=workers) as pipeline:
        pipeline.score_all(frames[:2], decode)  # warm: threads, the backend on the compute thread
        batch_by_batch(backend, frames[:2], decode, batch)

        def piped() -> None:
            failed = [r.error for r in pipeline.score_all(frames, decode) if not r.ok]
            if failed:
                raise RuntimeFailure(f"pipelined run failed: {failed[0]}")

        calls = {"batch_by_batch": lambda: batch_by_batch(backend, frames, decode, batch), "pipelined": piped}
        samples = interleaved(calls, Rounds(rounds=rounds, warmup=0, calls=1))
    inputs = len(frames) * batch * rounds
    serial, piped_ms = samples["batch_by_batch"], samples["pipelined"]
    pairs = [s / p for s, p in zip(serial, piped_ms)]
    return {"batch_by_batch": inputs / (sum(serial) / 1e3), "pipelined": inputs / (sum(piped_ms) / 1e3),
            "ratio": percentile(pairs, 50), "ratio_iqr": [percentile(pairs, 25), percentile(pairs, 75)],
            "pairs_faster": sum(r > 1.0 for r in pairs), "rounds": rounds, "batches": batches, "slots": slots}


@dataclass
class BenchConfig:
    batches: list[int] = field(default_factory=lambda: [1, 16])
    warmup: int = 3
    iters: int | None = None  # None with seconds None: 10
    seconds: float | None = None
    threads: int = 0  # torch and onnxruntime intra-op threads (0: their default)
    backends: list[str] | None = None  # torch, torch-cuda, onnxruntime, openvino, tensorrt; None: each model's own
    pipeline: bool = True  # also batch-by-batch vs pipelined throughput from encoded frames
    pipeline_batches: int = 16  # per run (long enough that filling and draining the loop is not most of it)
    pipeline_rounds: int = 6
    cuda_graphs: str = "both"  # TensorRT rows: both, on, off
    slots: int = 2
    openvino_performance: str = "latency"  # OpenVINO rows: latency or throughput hint
    openvino_streams: int = 0  # with throughput (0: OpenVINO's choice)
    force: bool = False  # run artifacts whose recorded verdict (INT8 gate, engine parity) failed

    def __post_init__(self) -> None:
        if not self.batches or any(b < 1 for b in self.batches):
            raise ConfigError(f"batch sizes must be at least 1, got {self.batches}")
        if self.cuda_graphs not in ("both", "on", "off"):
            raise ConfigError(f"cuda graphs must be both, on or off, got {self.cuda_graphs!r}")
        if self.pipeline_rounds < 1 or self.pipeline_batches < 1:
            raise ConfigError("the pipeline comparison needs at least one round of one batch")
        Rounds(warmup=self.warmup, calls=self.iters, seconds=self.seconds)  # the timing core's checks
        unknown = [b for b in self.backends or [] if b not in BACKEND_KINDS]
        if unknown:
            raise ConfigError(f"unknown backend {', '.join(unknown)}; expected {', '.join(BACKEND_KINDS)}")

    def pipeline_batches_for(self, batch: int) -> int:
        """Batches per pipeline run: at least 32 inputs (a run of a few tiny batches is mostly start and drain),
        up to ``pipeline_batches`` (at least 4), 1024 inputs at most unless 4 batches hold more."""
        return max(-(-32 // batch), min(self.pipeline_batches, max(4, -(-1024 // batch))))


def _torch_cuda_available() -> bool:
    return available("torch") and bool(require("torch").cuda.is_available())


def _base_kind(kind: str) -> str:
    return "torch" if kind == "torch-cuda" else kind


def model_name(model: Model) -> str:
    """A model's name in rows and notes: its file name, or a served model's URL."""
    if isinstance(model, Artifact):
        return model.name
    return str(model) if is_served(model) else Path(model).name


def _kinds_for(model: Model, backends: list[str] | None, plan: dict[str, Any]) -> list[str]:
    """The backend kinds a model runs on: the ones asked for that can run it, else its own (torch on the CPU and,
    where there is a GPU, on CUDA; a graph on the fastest installed CPU backend)."""
    natural, artifact = kind_of(model), artifact_kind(model)
    kinds = [natural]
    if natural == "torch":
        kinds = ["torch", "torch-cuda"]
    elif artifact in ("graph", "ir"):  # the CPU backends that can run it
        if backends:
            kinds = [k for k in CAN_RUN[artifact] if k in backends]
        else:
            choice = auto_backend(model, measure_batch=plan["measure_batch"], threads=plan["threads"])
            kinds = [choice.kind]
            if plan["choices"] is not None:
                plan["choices"][model_name(model)] = f"{choice.kind} ({choice.reason}; --backend to choose)"
    if backends:
        return [k for k in kinds if k in backends]
    return [k for k in kinds if k != "torch-cuda" or _torch_cuda_available()]


def plan_runs(models: list[Model], backends: list[str] | None, measure_batch: int | None = None, threads: int = 0,
              choices: dict[str, str] | None = None) -> tuple[list[tuple[Model, str]], list[dict[str, str]]]:
    """(model, backend kind) pairs to run and the pairs left out, with the reason. A model file is read only where
    its facts decide (a backend other than its own, the automatic choice); :func:`run_benchmarks` gives them read
    once. Without ``backends`` a graph runs on the fastest installed CPU backend (measured at ``measure_batch``
    where given); ``choices`` collects why, per model file name."""
    plan = {"measure_batch": measure_batch, "threads": threads, "choices": choices}
    runs, skipped = [], []
    for model in models:
        natural, name = kind_of(model), model_name(model)
        for kind in _kinds_for(model, backends, plan):
            refused = None
            if _base_kind(kind) != natural:
                opened = open_model(model)
                refused = refusal(kind, opened.kind, opened.precision) if isinstance(opened, Artifact) else None
            if refused:
                skipped.append({"backend": kind, "model": name, "reason": refused})
            elif kind == "torch-cuda" and not _torch_cuda_available():
                skipped.append({"backend": kind, "model": name, "reason": "torch sees no CUDA GPU"})
            else:
                runs.append((model, kind))
    for kind in backends or []:
        if not any(k == kind for _, k in runs) and not any(s["backend"] == kind for s in skipped):
            skipped.append({"backend": kind, "model": "", "reason": "given no model it runs (it needs "
                                                                  f"{BACKENDS[_base_kind(kind)].needs})"})
    return runs, skipped


def _open(model: Artifact | str, kind: str, config: BenchConfig, report: BenchReport) -> tuple[Backend, bool] | None:
    """The backend (and whether its peak RSS could be reset), or None with the reason in ``report.skipped``."""
    name = model_name(model)
    try:
        exact = reset_peak_rss()
        if kind == "torch-cuda":
            require("torch", "torch on CUDA").cuda.reset_peak_memory_stats()
        backend = open_backend(model, kind, threads=config.threads, slots=config.slots,
                               performance=config.openvino_performance, streams=config.openvino_streams,
                               force=config.force)
    except GedgeError as exc:
        report.skipped.append({"backend": kind, "model": name, "reason": exc.problem})
        return None
    spec = backend.input_spec
    report.settings["input_size"] = f"{spec.size}x{spec.size}x{spec.channels}"
    report.notes.extend(f"{name}: {note}" for note in backend.info.notes)
    checked = backend.info.artifact.verification_line if backend.info.artifact is not None else ""
    if checked:
        report.notes.append(f"{name}: {checked}")
    return backend, exact


def _graph_variants(backend: Backend, config: BenchConfig) -> list[bool | None]:
    """CUDA graphs off and/or on for a backend that can switch them; [None] for every other."""
    if backend.info.cuda_graphs is None or not isinstance(backend, CudaGraphBackend):
        return [None]
    variants = {"both": [False, True], "on": [True], "off": [False]}[config.cuda_graphs]
    return variants if backend.info.cuda_graphs else [False]  # graphs impossible here: the notes say why


def _memory(backend: Backend, kind: str, exact: bool) -> tuple[float, str]:
    """Peak memory in MB and what it measures."""
    if backend.info.device_memory_bytes is not None:
        return backend.info.device_memory_bytes / 1e6, backend.info.device_memory or "GPU"
    if kind == "torch-cuda":
        return require("torch").cuda.max_memory_allocated() / 1e6, "GPU"
    return peak_rss_bytes() / 1e6, "RSS" if exact else "RSS (process)"


def _graphs_used(row: BenchRow, asked: bool | None, info: BackendInfo) -> None:
    """Label the row by the CUDA graphs the backend declares it used, after the run (a capture that fails
    switches them off): asked for and not used is its own label, and a note says why."""
    if asked is None:
        return
    used = bool(info.cuda_graphs)
    row.cuda_graphs = used
    row.label += " +graphs" if used else " no graphs (graphs failed)" if asked else " no graphs"
    if asked and not used:
        row.notes.append("CUDA graphs were asked for but not used: " + ("; ".join(info.notes) or "no reason given"))


def _row(backend: Backend, run: tuple[Any, str, int, bool | None], config: BenchConfig, exact: bool) -> BenchRow:
    """One row: ``run`` is (model, kind, batch, CUDA graphs on/off or None)."""
    model, kind, batch, graphs = run
    if graphs is not None and isinstance(backend, CudaGraphBackend):
        backend.set_cuda_graphs(graphs)
        backend.reset_stats()
    latency, ips = bench_latency(backend, batch, config.warmup, config.iters, config.seconds)
    row = BenchRow(label=backend.info.label, backend=backend.name, kind=kind, model=model_name(model),
                   precision=backend.info.precision, batch=batch, latency_ms=latency, images_per_second=ips)
    if graphs is not None and isinstance(backend, CudaGraphBackend):
        stages = backend.stage_times_ms()
        row.stages_ms = {k: percentile(v, 50) for k, v in stages.items()} if any(stages.values()) else None
    if config.pipeline and graphs is not False:
        row.pipeline = bench_pipeline(backend, batch, config.pipeline_batches_for(batch), config.pipeline_rounds,
                                      config.slots)
    _graphs_used(row, graphs, backend.info)
    row.peak_memory_mb, row.memory = _memory(backend, kind, exact)
    return row


def run_benchmarks(models: list[Any], config: BenchConfig, progress: Progress | None = None) -> BenchReport:
    """Every (model, backend) pair at every batch size."""
    choices: dict[str, str] = {}
    models = [open_model(model) for model in models]  # each file read, hashed and verified once
    runs, skipped = plan_runs(models, config.backends, max(config.batches), config.threads, choices)
    report = BenchReport(BENCH, machine_facts(), {**asdict(config), "input_size": None}, skipped=skipped)
    report.notes.extend(f"{name}: {why}" for name, why in choices.items())
    for model, kind in runs:
        opened = _open(model, kind, config, report)
        if opened is None:
            continue
        backend, exact = opened
        variants = _graph_variants(backend, config)  # asked for at every batch, even after a failed capture
        try:
            for batch in config.batches:
                for graphs in variants:
                    if progress:
                        progress(f"{kind} {model_name(model)} batch {batch}"
                                 + ("" if graphs is None else f" graphs {'on' if graphs else 'off'}"))
                    row = _row(backend, (model, kind, batch, graphs), config, exact)
                    report.results.append(row)
                    report.notes.extend(f"{row.model} {row.label} batch {batch}: {note}" for note in row.notes)
        finally:
            backend.close()
    report.add_ratios()
    return report

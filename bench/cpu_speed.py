"""``gedge bench-cpu``: CPU speed of the fused scorer: torch eager against ONNX Runtime FP32 and both INT8 graphs,
and OpenVINO FP32, BF16 and NNCF INT8 where OpenVINO is installed (``gedge[openvino]``).

Every backend scores the same uint8 NHWC batch through its ``score`` call (what an inspection loop calls:
input check, conversion, run, outputs copied into :class:`~gedge.core.scores.Scores`). Runs are interleaved
(:func:`gedge.core.timing.interleaved`): each round times every backend at every batch size in turn, for a
short duration each, the order rotating per round, so a neighbour's load spike hits all of them alike; a
backend's latency is the median (nearest rank) over all its timed calls, its throughput ``batch / median
latency``. Ratios are against torch eager at the same batch size.

Fairness on a shared CPU: ONNX Runtime's worker threads do not spin (the backend's default), and torch eager
should run with ``OMP_WAIT_POLICY=PASSIVE``: OpenMP's default spin-wait makes torch 1.5-1.8x slower on a busy
machine. The variable only takes effect if set before torch is first imported; ``gedge bench-cpu`` sets it
(unless already set) and the report says what was in effect. Both get the same thread count. The report has
both settings: ``torch eager`` runs in this process with passive waiting, ``torch eager (OpenMP spin)`` in a
child process with OpenMP's default (spin-wait), timed in the same interleaved rounds; ratios are against the
passive one, the fair setting.

FLOPs per image are counted from the ONNX graph (:mod:`gedge.bench.flops`: 2 x the convolutions'
multiply-accumulates, 1.04 GFLOP at 64x64 with the default widths) and each row gives the GFLOP/s it achieved.
The models are built by :mod:`gedge.bench.cpu_models` (with torch: `gedge bench-cpu` needs it).
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from gedge.bench.cpu_models import build_models
from gedge.bench.flops import flops_per_image
from gedge.bench.report import BENCH_CPU, BenchReport, BenchRow
from gedge.core import artifacts
from gedge.core.artifacts import Artifact
from gedge.core.backend import Backend, BackendInfo
from gedge.core.errors import ConfigError
from gedge.core.inputs import InputSpec
from gedge.core.machine import load_average, machine_facts
from gedge.core.timing import Rounds, interleaved, percentile, summarize
from gedge.runtime.registry import installed, open_backend

Progress = Callable[[int, int], None]

TORCH = "torch eager"
TORCH_SPIN = "torch eager (OpenMP spin)"
OPENVINO_ROWS = ("openvino fp32", "openvino bf16", "openvino int8 (nncf)")
REFERENCE_ORDER = (TORCH, "onnxruntime fp32", "onnxruntime int8 (tensorrt q/dq)", "onnxruntime int8 (cpu)")
ROUNDS = Rounds(rounds=5, warmup=2, seconds=0.4, min_calls=2)  # each turn: 0.4 s of calls, at least 2


@dataclass(frozen=True)
class CpuBenchConfig:
    """What ``gedge bench-cpu`` measures: a checkpoint (None: random ``ModelConfig(isize)``), batch sizes,
    threads for every backend, interleaved rounds of ``budget_s`` per backend and batch size."""

    checkpoint: Path | None = None
    isize: int = 64
    batches: tuple[int, ...] = (1, 16)
    threads: int = 2
    rounds: int = 5
    budget_s: float = 0.4
    workdir: Path | None = None  # where the graphs are built (a temporary folder inside it)
    openvino: bool | None = None  # OpenVINO rows (None: where it is installed)
    spin_torch: bool = True  # also torch eager with OpenMP's spin-wait, in a child process
    graphs: tuple[Path, ...] = ()  # further ONNX graphs or OpenVINO IRs (e.g. gated INT8 ones), timed alike

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")
        if not self.batches or min(self.batches) < 1:
            raise ConfigError(f"batch sizes must be positive, got {list(self.batches)}")
        if self.rounds < 1:
            raise ConfigError(f"rounds must be at least 1, got {self.rounds}")

    def plan(self) -> Rounds:
        return Rounds(rounds=self.rounds, warmup=ROUNDS.warmup, seconds=self.budget_s, min_calls=ROUNDS.min_calls)


def _spin_torch_worker(checkpoint_path: str, threads: int, conn: Any) -> None:  # pragma: no cover - child process
    backend = open_backend(checkpoint_path, "torch", threads=threads)
    conn.send("ready")
    while True:
        batch = conn.recv()
        if batch is None:
            break
        backend.score(batch)
        conn.send(True)


class SpinTorch:
    """torch eager in a child process whose OpenMP threads spin-wait (OMP_WAIT_POLICY unset); ``score`` sends the
    batch and waits for the child to finish (a pipe round trip of a few hundred kB: well under a millisecond)."""

    name = TORCH_SPIN
    info = BackendInfo(kind="torch", label=TORCH_SPIN, precision="fp32",
                       notes=("OpenMP spin-wait (OMP_WAIT_POLICY unset), in a child process",))

    def __init__(self, checkpoint_path: str | Path, threads: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        saved = os.environ.pop("OMP_WAIT_POLICY", None)
        try:  # a spawned child takes the environment as it is now
            self.process = context.Process(target=_spin_torch_worker, args=(str(checkpoint_path), threads, child),
                                           daemon=True)
            self.process.start()
        finally:
            if saved is not None:
                os.environ["OMP_WAIT_POLICY"] = saved
        if not self.conn.poll(120) or self.conn.recv() != "ready":
            self.close()
            raise RuntimeError("the torch child process did not start")

    def score(self, batch: np.ndarray) -> bool:
        self.conn.send(batch)
        return self.conn.recv()

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


def measure(backends: dict[str, Backend], batches: list[int], spec: InputSpec, plan: Rounds = ROUNDS,
            progress: Progress | None = None, seed: int = 0) -> list[BenchRow]:
    """Interleaved timing of every backend's ``score`` at every batch size (one rotating group of backends per
    batch size and round); rows in backend order, labelled by the keys of ``backends``."""
    rng = np.random.default_rng(seed)
    inputs = {b: rng.integers(0, 256, (b, spec.size, spec.size, spec.channels), dtype=np.uint8) for b in batches}
    calls = {(name, b): partial(backend.score, inputs[b]) for name, backend in backends.items() for b in batches}
    groups = [[(name, b) for name in backends] for b in batches]
    samples = interleaved(calls, plan, groups, progress)
    rows = []
    for name, backend in backends.items():
        for b in batches:
            ms = samples[(name, b)]
            latency = {k: round(v, 3) if isinstance(v, float) else v for k, v in summarize(ms).to_dict().items()}
            latency["p10"] = round(percentile(ms, 10), 3)
            info = backend.info
            rows.append(BenchRow(name, backend.name, info.kind, "", info.precision, b, latency,
                                 round(b / (percentile(ms, 50) / 1e3), 2)))
    return rows


def _graph_label(path: Path) -> str:
    """The row of a given artifact: the backend that runs it (OpenVINO for an IR, onnxruntime for a graph) and
    its file name."""
    return f"{'openvino' if path.suffix == '.xml' else 'onnxruntime'} {path.name}"


def _open_backends(graphs: dict[str, Artifact], checkpoint: Artifact, config: CpuBenchConfig,
                   opened: dict[str, Backend]) -> None:
    """Open every row's backend into ``opened`` (label -> backend), in the table's order."""
    threads = config.threads
    opened[TORCH] = open_backend(checkpoint, "torch", threads=threads)
    if config.spin_torch:
        opened[TORCH_SPIN] = SpinTorch(checkpoint.path, threads)  # type: ignore[assignment]  # times score only
    # The INT8 models are made for timing, without `gedge calibrate`'s accuracy gate: opened with force.
    for label in REFERENCE_ORDER[1:]:
        opened[label] = open_backend(graphs[label], "onnxruntime", threads=threads, force=True)
    if OPENVINO_ROWS[2] in graphs:
        fp32 = graphs[REFERENCE_ORDER[1]]
        opened[OPENVINO_ROWS[0]] = open_backend(fp32, "openvino", precision="fp32", threads=threads)
        opened[OPENVINO_ROWS[1]] = open_backend(fp32, "openvino", precision="bf16", threads=threads)
        opened[OPENVINO_ROWS[2]] = open_backend(graphs[OPENVINO_ROWS[2]], "openvino", precision="int8",
                                                threads=threads, force=True)
    for path in config.graphs:  # the user's own artifacts: their recorded verdicts are enforced
        opened[_graph_label(path)] = open_backend(artifacts.open(path), _graph_label(path).split()[0],
                                                  threads=threads)


def run_cpu_benchmark(config: CpuBenchConfig = CpuBenchConfig(), progress: Progress | None = None) -> BenchReport:
    """Build the graphs (from a checkpoint, or a random ``ModelConfig(isize)``) and time the backends: torch eager
    (passive and, with ``spin_torch``, spinning OpenMP), ONNX Runtime FP32/INT8, OpenVINO FP32/BF16/INT8
    (``openvino``: default where it is installed)."""
    openvino = installed("openvino") if config.openvino is None else config.openvino
    machine = machine_facts(probe_gpu=False)
    notes = [] if openvino else ["OpenVINO is not installed (pip install 'gedge[openvino]'): no OpenVINO rows"]
    opened: dict[str, Backend] = {}
    with tempfile.TemporaryDirectory(prefix="gedge-bench-", dir=config.workdir) as tmp:
        models = build_models(config.checkpoint, config.isize, Path(tmp), openvino)
        flops = flops_per_image(models.graphs[REFERENCE_ORDER[1]].onnx_model)
        spec = InputSpec(size=int(models.model["isize"]), channels=int(models.model["nc"]))
        try:
            _open_backends(models.graphs, models.checkpoint, config, opened)
            for path in config.graphs:
                given = opened[_graph_label(path)].input_spec
                if (given.size, given.channels) != (spec.size, spec.channels):
                    raise ConfigError(f"takes {given.size}x{given.size}x{given.channels} inputs, the benchmark's "
                                      f"model {spec.size}x{spec.size}x{spec.channels}: pass its checkpoint", path)
            rows = measure(opened, list(config.batches), spec, config.plan(), progress)
        finally:
            for backend in opened.values():
                backend.close()
    notes = models.notes + notes
    notes += [f"{label}: {note}" for label, b in opened.items() if label != TORCH_SPIN for note in b.info.notes]
    if os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        notes.append("torch eager ran without OMP_WAIT_POLICY=PASSIVE (OpenMP spin-wait): on a shared machine "
                     "that makes it slower than it needs to be")
    settings = {"model": models.model, "threads": config.threads, "batches": list(config.batches),
                "rounds": config.rounds, "budget_s": config.budget_s, "load_after": load_average(),
                "input_size": f"{spec.size}x{spec.size}x{spec.channels}", "throughput": "batch / median latency"}
    report = BenchReport(BENCH_CPU, machine, settings, rows, notes=notes, reference=TORCH)
    report.add_ratios(digits=3)
    report.add_gflops(flops)
    return report

"""``gedge gpu-check`` (``make gpu-check``): what a machine with a GPU proves in under five minutes, on one screen.

1. the machine: GPU, CPU flags, torch CUDA, TensorRT flavour and version, cuda-python or pycuda;
2. torch CUDA against the CPU reference (TF32 off), every output;
3. cuda-python (or pycuda) buffers, streams, events and a captured CUDA graph, with no TensorRT;
4. the pipelined loop on the GPU through its native-slot interface (a copy "engine" made of pinned buffers,
   H2D, a captured device copy, D2H): the bytes that come back are compared with those sent, and each item's
   rows must come back to it, in order;
5. where TensorRT is installed: FP32, FP16 and INT8 (Q/DQ) engines built from a small model, engine parity
   against torch (measured by ``gedge build`` and recorded in each manifest: ok only when every engine's parity
   was measured and passed), and ``gedge bench`` of every backend with the H2D/compute/D2H split and with and
   without CUDA graphs (a TensorRT row that could not run, or graphs that failed, FAIL the step);
6. the C++ firmware runtime (edge/firmware) linked against this TensorRT: its gedge-score on the engines against
   ``gedge score --json`` on the same frames (gedge.bench.firmware_check).

Each step ends ok / FAIL / skipped (with the reason); a failing step does not stop the others, and a step that
needs what this machine lacks (an NVIDIA GPU, TensorRT) or more time than the budget has left is skipped with the
reason. gpu-check makes its model and its reference with torch, so it needs torch (`make gpu-check` installs it);
`gedge inspect`, `build` and `bench` run on a device without. The result is a :class:`GpuCheckResult`; the CLI
renders it, lists the skipped steps, and exits 1 when a step failed or, with ``strict``, when a step was skipped.
``model`` uses a trained checkpoint instead of a small random one (the speed does not depend on the weights;
parity does not either).
"""

from __future__ import annotations

import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gedge.bench import firmware_check, gpu_models
from gedge.bench.gpu_models import BuiltEngine
from gedge.bench.report import BenchReport
from gedge.bench.runner import BenchConfig, run_benchmarks
from gedge.core.artifacts.manifest import ParityRecord
from gedge.core.backend import BackendInfo
from gedge.core.errors import ConfigError, first_line
from gedge.core.inputs import InputSpec
from gedge.core.machine import cpu_line, cuda_device, machine_facts
from gedge.core.scores import OUTPUT_NAMES, Scores
from gedge.core.tensorrt import import_tensorrt
from gedge.runtime.cuda import CudaApi, CudaGraph, DeviceBuffer, HostBuffer, Stream, load_cuda, self_test
from gedge.runtime.loop import Pipeline
from gedge.runtime.registry import open_backend

OK, FAIL, SKIPPED = "ok", "FAIL", "skipped"


@dataclass(frozen=True)
class GpuCheckOptions:
    model: Path | None = None  # a trained gedge checkpoint (default: a small random one)
    budget_s: float = 280.0  # seconds for everything; a step that needs more than is left is skipped
    out: Path | None = None  # working folder (default: a temporary one)
    build_without_gpu: bool = False  # build the engines even with no GPU (TensorRT-RTX builds ahead of time)
    strict: bool = False  # a skipped step fails the check too


@dataclass
class StepResult:
    name: str
    status: str  # ok, FAIL or skipped
    detail: str
    seconds: float
    trace: str = ""  # the traceback of a failure


@dataclass
class GpuCheckResult:
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    gpu: str | None = None
    cuda: bool = False  # the CUDA bindings loaded
    bench: BenchReport | None = None
    strict: bool = False  # a skipped step fails the check

    @property
    def skipped(self) -> list[StepResult]:
        return [step for step in self.steps if step.status == SKIPPED]

    @property
    def failed(self) -> bool:
        return any(step.status == FAIL for step in self.steps) or (self.strict and bool(self.skipped))

    def to_dict(self) -> dict[str, Any]:
        return {"steps": [asdict(s) for s in self.steps], "seconds": self.seconds, "gpu": self.gpu,
                "cuda": self.cuda, "failed": self.failed, "strict": self.strict,
                "skipped": [f"{s.name}: {s.detail}" for s in self.skipped],
                "bench": self.bench.to_dict() if self.bench else None}


class Skip(Exception):
    """A step that cannot run on this machine, and why."""


class Steps:
    """Runs the steps within the time budget, each on its own: a failure or a skip is recorded and the next runs."""

    def __init__(self, budget_s: float, on_step: Callable[[StepResult], None] | None) -> None:
        self.result = GpuCheckResult()
        self.started = time.perf_counter()
        self.budget_s = budget_s
        self.on_step = on_step
        self.data: dict[str, Any] = {}

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.started)

    def run(self, name: str, fn: Callable[[], str], need: float = 0.0, needs_model: bool = False) -> None:
        if needs_model and "model" not in self.data:
            self._record(StepResult(name, SKIPPED, "no model: the model step did not finish", 0.0))
            return
        if self.left() < need:
            self._record(StepResult(name, SKIPPED, f"not enough time left ({self.left():.0f} s)", 0.0))
            return
        t0 = time.perf_counter()
        trace = ""
        try:
            status, detail = OK, fn()
        except Skip as exc:
            status, detail = SKIPPED, str(exc)
        except Exception as exc:
            status, detail = FAIL, first_line(exc, named=True)
            trace = traceback.format_exc()
        self._record(StepResult(name, status, detail, time.perf_counter() - t0, trace))

    def _record(self, step: StepResult) -> None:
        self.result.steps.append(step)
        if self.on_step:
            self.on_step(step)


def step_machine(steps: Steps) -> str:
    facts = machine_facts()
    steps.result.gpu = facts.get("gpu")
    trt, why = import_tensorrt()
    steps.data["trt"], steps.data["trt_reason"] = trt, why
    cuda = f"torch {torch.__version__} CUDA {torch.version.cuda} available={torch.cuda.is_available()}"
    return (f"GPU {facts.get('gpu') or 'none'}; CPU {cpu_line(facts)}; {cuda}; "
            f"TensorRT {trt.name + ' ' + trt.version if trt else 'none'}; "
            f"cuda-python {facts.get('cuda_python') or '-'}, pycuda {facts.get('pycuda') or '-'}")


def step_model(steps: Steps, folder: Path, given: Path | None) -> str:
    steps.data["model"], steps.data["data"] = gpu_models.small_model(folder, given)
    return f"{steps.data['model']} ({'given' if given else 'random, demo-sized'})"


def step_torch_parity(steps: Steps) -> str:
    if not torch.cuda.is_available():
        raise Skip("torch sees no CUDA GPU")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    cpu = open_backend(steps.data["model"], "torch", with_amap=True)
    gpu = open_backend(steps.data["model"], "torch-cuda", with_amap=True)
    spec = cpu.input_spec
    batch = np.random.default_rng(0).integers(0, 256, (64, spec.size, spec.size, spec.channels), dtype=np.uint8)
    on_cpu, on_gpu = cpu.score(batch).as_dict(True), gpu.score(batch).as_dict(True)
    errors = {name: float(np.linalg.norm(on_cpu[name] - on_gpu[name]) / max(np.linalg.norm(on_cpu[name]), 1e-12))
              for name in (*OUTPUT_NAMES, "amap")}
    worst = max(errors, key=errors.get)
    if errors[worst] > 1e-4:
        raise AssertionError(f"rel L2 of {worst} is {errors[worst]:.1e} (limit 1e-4, TF32 off)")
    return f"64 inputs, worst rel L2 {errors[worst]:.1e} ({worst}); all outputs <= 1e-4"


def step_cuda_buffers(steps: Steps) -> str:
    if not steps.result.gpu and not Path("/dev/nvidia0").exists():
        raise Skip("no NVIDIA GPU on this machine (nvidia-smi finds none)")
    api = load_cuda()
    steps.data["cuda"] = api
    steps.result.cuda = True
    facts = self_test(api, nbytes=8 << 20, replays=20)
    if not facts["copy_ok"] or facts["graph_ok"] is False:
        raise AssertionError(f"bytes differ after the round trip: {facts}")
    graph = (f"graph replayed {facts['graph_replays']}x ok, {facts['graph_loop_ms']:.2f} ms per loop"
             if facts["graph_ok"] else facts.get("graph_note", ""))
    return f"{api.name} {api.version}: 8 MiB H2D {facts['h2d_gbps']:.1f} GB/s; {graph}"


class CopyEngine:
    """A stand-in engine for the loop on the GPU: pinned input -> H2D -> captured device copy -> D2H.

    Its 'score' of an input is the mean of the bytes that came back (which item each row belongs to); the bytes
    themselves are kept in ``returned``, so that the round trip can be compared byte for byte."""

    name = "cuda-copy"

    def __init__(self, api: CudaApi, size: int, max_batch: int = 16, slots: int = 2) -> None:
        self.api, self.input_spec = api, InputSpec(size=size, channels=3)
        shape = (max_batch, size, size, 3)
        self._slots = [{"in": HostBuffer(api, shape, np.uint8), "out": HostBuffer(api, shape, np.uint8),
                        "a": DeviceBuffer(api, shape, np.uint8), "b": DeviceBuffer(api, shape, np.uint8),
                        "stream": Stream(api), "graphs": {}, "n": 0} for _ in range(slots)]
        self.captures = 0
        self.returned: list[bytes] = []  # the bytes each collected batch brought back, in collection order
        self.info = BackendInfo(kind="cuda-copy", label="CUDA copy (gpu-check)", precision="uint8", device="cuda",
                                slots=slots, max_batch=max_batch, cuda_graphs=api.supports_graphs)

    def enqueue(self, index: int, batch: np.ndarray) -> None:
        s = self._slots[index]
        n, row = len(batch), s["a"].row_bytes
        s["in"].view(n)[:] = batch
        stream = s["stream"]
        stream.mark(0)
        self.api.h2d(s["a"].ptr, s["in"].ptr, n * row, stream.handle)
        stream.mark(1)
        if self.api.supports_graphs:
            graph = s["graphs"].get(n)
            if graph is None:
                graph = CudaGraph.capture(self.api, stream,
                                          lambda: self.api.d2d(s["b"].ptr, s["a"].ptr, n * row, stream.handle))
                s["graphs"][n] = graph
                self.captures += 1
            graph.launch(stream)
        else:
            self.api.d2d(s["b"].ptr, s["a"].ptr, n * row, stream.handle)
        stream.mark(2)
        self.api.d2h(s["out"].ptr, s["b"].ptr, n * row, stream.handle)
        stream.mark(3)
        s["n"] = n

    def collect(self, index: int) -> Scores:
        s = self._slots[index]
        s["stream"].synchronize()
        back = s["out"].view(s["n"])
        self.returned.append(back.tobytes())
        means = back.reshape(s["n"], -1).astype(np.float32).mean(axis=1)
        return Scores.from_dict({name: means for name in OUTPUT_NAMES})

    def score(self, batch: np.ndarray) -> Scores:
        self.enqueue(0, batch)
        return self.collect(0)

    def close(self) -> None:
        for s in self._slots:
            for graph in s["graphs"].values():
                graph.destroy()
            s["stream"].destroy()
            for key in ("in", "out", "a", "b"):
                s[key].free()


def step_loop_on_gpu(steps: Steps) -> str:
    api = steps.data.get("cuda")
    if api is None:
        raise Skip("no usable CUDA (see the buffers step)")
    engine = CopyEngine(api, size=32, max_batch=16, slots=2)
    try:
        rng = np.random.default_rng(1)
        items = [rng.integers(0, 256, (int(rng.integers(1, 40)), 32, 32, 3), dtype=np.uint8) for _ in range(60)]
        with Pipeline(engine, batch_size=16, slots=2, workers=2) as pipeline:
            results = pipeline.score_all(items, lambda a: a)
        for r, a in zip(results, items):  # each item's rows came back to it, in order
            if not r.ok or not np.array_equal(r.scores.d1, a.reshape(len(a), -1).astype(np.float32).mean(axis=1)):
                raise AssertionError(f"item {r.index}: {r.error or 'its rows came back wrong or to another item'}")
        sent, back = b"".join(a.tobytes() for a in items), b"".join(engine.returned)
        if back != sent:
            first = next((i for i, (x, y) in enumerate(zip(sent, back)) if x != y), min(len(sent), len(back)))
            raise AssertionError(f"the bytes that came back differ from those sent, from byte {first} of {len(sent)} "
                                 f"({len(back)} came back)")
        stats = pipeline.stats
        return (f"{stats.items} items, {stats.inputs} inputs in {stats.batches} batches over 2 streams, in order and "
                f"byte-exact; {engine.captures} graphs captured; {stats.inputs_per_second:.0f} inputs/s")
    finally:
        engine.close()


def step_engines(steps: Steps, folder: Path, build_without_gpu: bool) -> str:
    trt = steps.data.get("trt")
    if trt is None:
        raise Skip(f"no TensorRT ({steps.data.get('trt_reason')})")
    if cuda_device()[0] is None and not build_without_gpu:
        raise Skip(f"{trt.name} is installed but there is no CUDA GPU to run its engines on")
    steps.data["engines"], built = gpu_models.build_engines(steps.data["model"], steps.data["data"], folder)
    return judge_parity(built, gpu=cuda_device()[0] is not None)


def judge_parity(built: dict[str, BuiltEngine], gpu: bool) -> str:
    """The engines step's verdict from each engine's recorded build-time parity: ok only when every engine's
    parity was measured and passed. A failed or errored parity FAILs; parity left pending (or not measured)
    FAILs where there is a GPU to run the engines on and is a skip, with the reason, where there is none."""
    lines, failed, unmeasured = [], [], []
    missing = ParityRecord("not recorded")
    for precision, engine_built in built.items():
        engine, graph = (engine_built.parity.get(kind, missing) for kind in ("engine", "graph"))
        status = engine.status
        why = (f"agreement {engine.agreement:.1%}" if engine.agreement is not None else
               (engine.reason or graph.reason)[:120])
        lines.append(f"{precision}: {engine_built.build_seconds:.0f} s build, parity {status} ({why})")
        if status in ("failed", "error") or graph.status in ("failed", "error"):
            failed.append(f"{precision}: {list(engine.failures) or why}")
        elif status != "passed":
            unmeasured.append(precision)
    if failed:
        raise AssertionError("engine parity failed: " + "; ".join(failed))
    if unmeasured and gpu:
        raise AssertionError(f"engine parity not measured for {', '.join(unmeasured)} on a machine with a GPU: "
                             + "; ".join(lines))
    if unmeasured:
        raise Skip(f"engines built, but their parity is not measured without a GPU: {'; '.join(lines)}")
    return "; ".join(lines)


def step_bench(steps: Steps) -> str:
    engines = list(steps.data.get("engines", {}).values())
    if engines and cuda_device()[0] is None:  # built ahead of time (--build-without-gpu): nothing to run them on
        steps.data["unbenched"], engines = len(engines), []
    models = [steps.data["model"], *engines]
    config = BenchConfig(batches=[1, 16], warmup=10, iters=50, pipeline=True, pipeline_batches=8,
                         pipeline_rounds=4)
    report = run_benchmarks(models, config)
    steps.result.bench = report
    unbenched = steps.data.get("unbenched")
    return (judge_bench(report, [Path(e).name for e in engines])
            + (f"; the {unbenched} engines are not benched: no CUDA GPU here" if unbenched else ""))


def judge_bench(report: BenchReport, engines: list[str]) -> str:
    """The bench step's verdict: every engine ran (a skipped engine row FAILs, with the reason), and rows that
    asked for CUDA graphs used them (the report says with and without graphs)."""
    best = max(report.results, key=lambda r: r.images_per_second, default=None)
    if best is None:
        raise AssertionError("no backend ran: " + "; ".join(s["reason"] for s in report.skipped))
    missing = [f"{s['model'] or s['backend']}: {s['reason']}" for s in report.skipped
               if s["model"] in engines or s["backend"] == "tensorrt"]
    missing += [f"{name}: no rows" for name in engines if not any(r.model == name for r in report.results)]
    if missing:
        raise AssertionError("TensorRT rows missing: " + "; ".join(missing))
    failed_graphs = [f"{r.model} batch {r.batch}: {'; '.join(r.notes)}" for r in report.results
                     if r.label.endswith("(graphs failed)")]
    if failed_graphs:
        raise AssertionError("CUDA graphs asked for but not used: " + "; ".join(failed_graphs))
    return f"{len(report.results)} rows; fastest {best.label} batch {best.batch}: {best.images_per_second:.0f} img/s"


def step_firmware(steps: Steps, folder: Path) -> str:
    try:
        return firmware_check.step_firmware(steps.data, folder)
    except firmware_check.FirmwareSkip as exc:
        raise Skip(str(exc)) from None


def run_gpu_check(options: GpuCheckOptions = GpuCheckOptions(),
                  on_step: Callable[[StepResult], None] | None = None) -> GpuCheckResult:
    """Every step in order within ``options.budget_s``; ``on_step`` hears of each step as it ends."""
    if options.budget_s <= 0:
        raise ConfigError(f"the budget must be positive, got {options.budget_s}")
    steps = Steps(options.budget_s, on_step)
    steps.result.strict = options.strict
    with tempfile.TemporaryDirectory(prefix="gedge-gpu-check-") as tmp:
        folder = options.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        steps.run("machine", lambda: step_machine(steps))
        steps.run("model", lambda: step_model(steps, folder, options.model))
        steps.run("torch CUDA vs CPU", lambda: step_torch_parity(steps), need=10, needs_model=True)
        steps.run("CUDA buffers/streams/graphs", lambda: step_cuda_buffers(steps), need=5)
        steps.run("pipelined loop on the GPU", lambda: step_loop_on_gpu(steps), need=5)
        steps.run("TensorRT engines + parity", lambda: step_engines(steps, folder, options.build_without_gpu),
                  need=90, needs_model=True)
        steps.run("bench", lambda: step_bench(steps), need=30, needs_model=True)
        steps.run("firmware gedge-score vs gedge score", lambda: step_firmware(steps, folder), need=20,
                  needs_model=True)
    steps.result.seconds = time.perf_counter() - steps.started
    return steps.result

"""``make gpu-check``: what a machine with a GPU proves in under five minutes, on one screen.

1. the machine: GPU, driver, torch CUDA, TensorRT flavour and version, cuda-python or pycuda;
2. torch CUDA against the CPU reference (TF32 off), every output;
3. cuda-python (or pycuda) buffers, streams, events and a captured CUDA graph, with no TensorRT;
4. the pipelined loop on the GPU through its native-slot interface (a copy "engine" made of pinned buffers,
   H2D, a captured device copy, D2H), results checked byte for byte and in order;
5. where TensorRT is installed: FP32, FP16 and INT8 (Q/DQ) engines built from a small model, engine parity
   against torch (measured by ``gedge build`` and recorded in each manifest), and ``gedge bench`` of every
   backend with the H2D/compute/D2H split and with and without CUDA graphs;
6. the C++ firmware runtime (edge/firmware) linked against this TensorRT: its gedge-score on the engines against
   ``gedge score --json`` on the same frames (gedge.bench.firmware_check).

Each step reports ok / FAIL / skipped (with the reason); a failing step does not stop the others. Exit code 1
when any step failed. ``--model`` uses a trained checkpoint instead of a small random one (the speed does not
depend on the weights; parity does not either).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class Steps:
    def __init__(self, budget_s: float) -> None:
        self.rows: list[tuple[str, str, str, float]] = []
        self.started = time.perf_counter()
        self.budget_s = budget_s
        self.data: dict[str, Any] = {}

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.started)

    def run(self, name: str, fn: Callable[[], str], need: float = 0.0) -> None:
        if self.left() < need:
            self.rows.append((name, "skipped", f"not enough time left ({self.left():.0f} s)", 0.0))
            return
        t0 = time.perf_counter()
        try:
            detail = fn()
            status = "ok"
        except Skip as exc:
            status, detail = "skipped", str(exc)
        except Exception as exc:
            status = "FAIL"
            detail = f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
            traceback.print_exc(file=sys.stderr)
        self.rows.append((name, status, detail, time.perf_counter() - t0))
        print(f"[{status}] {name}: {detail}", file=sys.stderr, flush=True)

    @property
    def failed(self) -> bool:
        return any(status == "FAIL" for _, status, _, _ in self.rows)


class Skip(Exception):
    pass


# --- steps ------------------------------------------------------------------------------------------------


def small_model(folder: Path, given: Path | None) -> tuple[Path, Path]:
    """A checkpoint (given, or a random demo-sized one with defaults calibrated) and a tiny wood data set."""
    from gedge.core.decision import DecisionRule
    from gedge.core.preprocess import Preprocess
    from gedge.data.synth import SynthWoodConfig, write_synthetic_wood
    from gedge.reference.checkpoint import Checkpoint, save_checkpoint
    from gedge.reference.model import ModelConfig, build_networks

    data = folder / "wood"
    write_synthetic_wood(data, SynthWoodConfig(size=128, n_train=12, n_test_good=6, n_test_per_defect=2, seed=0))
    if given is not None:
        return given, data
    config = ModelConfig(isize=32, nz=100, ngf=32, ndf=32)
    netg, netd = build_networks(config, seed=0)
    checkpoint = Checkpoint(config, Preprocess(mode="patch", isize=32, scale=0.5), DecisionRule(),
                            netg.state_dict(), netd.state_dict(), facts={"data": str(data), "note": "gpu-check"})
    path = folder / "model.pt"
    save_checkpoint(checkpoint, path)
    return path, data


def step_machine(steps: Steps) -> str:
    from gedge.core.machine import machine_facts
    from gedge.core.tensorrt import import_tensorrt

    facts = machine_facts()
    steps.data["gpu"] = facts.get("gpu")
    trt, why = import_tensorrt()
    steps.data["trt"] = trt
    steps.data["trt_reason"] = why
    try:
        import torch

        cuda = f"torch {torch.__version__} CUDA {torch.version.cuda} available={torch.cuda.is_available()}"
    except ImportError:
        cuda = "no torch"
    return (f"GPU {facts.get('gpu') or 'none'}; {cuda}; TensorRT {trt.name + ' ' + trt.version if trt else 'none'}; "
            f"cuda-python {facts.get('cuda_python') or '-'}, pycuda {facts.get('pycuda') or '-'}")


def step_torch_parity(steps: Steps) -> str:
    import torch
    from gedge.core.scores import OUTPUT_NAMES
    from gedge.reference.checkpoint import load_checkpoint
    from gedge.runtime.torch_backend import TorchBackend

    if not torch.cuda.is_available():
        raise Skip("torch sees no CUDA GPU")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    checkpoint = load_checkpoint(steps.data["model"])
    batch = np.random.default_rng(0).integers(0, 256, (64, checkpoint.model.isize, checkpoint.model.isize,
                                                       checkpoint.model.nc), dtype=np.uint8)
    cpu = TorchBackend(checkpoint, with_amap=True).score(batch)
    gpu = TorchBackend(checkpoint, device="cuda", with_amap=True).score(batch)
    errors = {}
    for name in (*OUTPUT_NAMES, "amap"):
        a, b = cpu.as_dict(True)[name], gpu.as_dict(True)[name]
        errors[name] = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-12))
    worst = max(errors, key=errors.get)
    if errors[worst] > 1e-4:
        raise AssertionError(f"rel L2 of {worst} is {errors[worst]:.1e} (limit 1e-4, TF32 off)")
    return f"64 inputs, worst rel L2 {errors[worst]:.1e} ({worst}); all outputs <= 1e-4"


def step_cuda_buffers(steps: Steps) -> str:
    from gedge.runtime.cuda import load_cuda, self_test

    if not steps.data.get("gpu") and not Path("/dev/nvidia0").exists():
        raise Skip("no NVIDIA GPU on this machine (nvidia-smi finds none)")
    api = load_cuda()
    steps.data["cuda"] = api
    facts = self_test(api, nbytes=8 << 20, replays=20)
    if not facts["copy_ok"] or facts["graph_ok"] is False:
        raise AssertionError(f"bytes differ after the round trip: {facts}")
    graph = (f"graph replayed {facts['graph_replays']}x ok, {facts['graph_loop_ms']:.2f} ms per loop"
             if facts["graph_ok"] else facts.get("graph_note", ""))
    return f"{api.name} {api.version}: 8 MiB H2D {facts['h2d_gbps']:.1f} GB/s; {graph}"


class CopyEngine:
    """A stand-in engine for the loop on the GPU: pinned input -> H2D -> captured device copy -> D2H.

    Its 'score' of an input is the mean of the bytes that came back, so order and content are checkable."""

    name = "cuda-copy"

    def __init__(self, api: Any, size: int, max_batch: int = 16, slots: int = 2) -> None:
        from gedge.core.inputs import InputSpec
        from gedge.runtime.cuda import CudaGraph, DeviceBuffer, HostBuffer, Stream

        self.api, self.input_spec, self.max_batch = api, InputSpec(size=size, channels=3), max_batch
        shape = (max_batch, size, size, 3)
        self._slots = []
        for _ in range(slots):
            slot = {"in": HostBuffer(api, shape, np.uint8), "out": HostBuffer(api, shape, np.uint8),
                    "a": DeviceBuffer(api, shape, np.uint8), "b": DeviceBuffer(api, shape, np.uint8),
                    "stream": Stream(api), "graphs": {}, "n": 0}
            self._slots.append(slot)
        self.graph_cls = CudaGraph
        self.captures = 0

    @property
    def slots(self) -> int:
        return len(self._slots)

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
                graph = self.graph_cls.capture(self.api, stream,
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

    def collect(self, index: int):
        from gedge.core.scores import OUTPUT_NAMES, Scores

        s = self._slots[index]
        s["stream"].synchronize()
        back = s["out"].view(s["n"]).reshape(s["n"], -1).astype(np.float32).mean(axis=1)
        return Scores.from_dict({name: back for name in OUTPUT_NAMES})

    def score(self, batch: np.ndarray):
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
    from gedge.runtime.loop import Pipeline

    api = steps.data.get("cuda")
    if api is None:
        raise Skip("no usable CUDA (see the buffers step)")
    engine = CopyEngine(api, size=32, max_batch=16, slots=2)
    try:
        rng = np.random.default_rng(1)
        items = [rng.integers(0, 256, (int(rng.integers(1, 40)), 32, 32, 3), dtype=np.uint8) for _ in range(60)]
        with Pipeline(engine, batch_size=16, slots=2, workers=2) as pipeline:
            results = pipeline.score_all(items, lambda a: a)
        for r, a in zip(results, items):
            want = a.reshape(len(a), -1).astype(np.float32).mean(axis=1)
            if not r.ok or not np.allclose(r.scores.d1, want):
                raise AssertionError(f"item {r.index}: {r.error or 'bytes differ'}")
        stats = pipeline.stats
        return (f"{stats.items} items, {stats.inputs} inputs in {stats.batches} batches over 2 streams, in order and "
                f"byte-exact; {engine.captures} graphs captured; {stats.inputs_per_second:.0f} inputs/s")
    finally:
        engine.close()


def step_engines(steps: Steps, folder: Path) -> str:
    from gedge.core.machine import cuda_device

    trt = steps.data.get("trt")
    if trt is None:
        raise Skip(f"no TensorRT ({steps.data.get('trt_reason')})")
    if cuda_device()[0] is None and not steps.data.get("build_without_gpu"):
        raise Skip(f"{trt.name} is installed but there is no CUDA GPU to run its engines on")
    from gedge.calibrate.quantize import quantize_graph
    from gedge.calibrate.ranges import PatchReader, collect_ranges
    from gedge.core.artifacts.graph import load_graph, read_facts
    from gedge.data.images import list_images
    from gedge.data.sampling import grid_patches
    from gedge.data.tiles import load_prepared
    from gedge.export.build_plan import BuildRequest
    from gedge.export.engine_build import build_engine
    from gedge.export.fp16 import write_fp16_graph
    from gedge.export.onnx_export import ExportOptions, export_checkpoint, serialize
    from gedge.reference.checkpoint import load_checkpoint

    model, data = steps.data["model"], steps.data["data"]
    checkpoint = load_checkpoint(model)
    fp32 = export_checkpoint(model, folder / "scorer.onnx", ExportOptions()).path
    graphs = {"fp32": fp32, "fp16": write_fp16_graph(fp32, folder / "scorer.fp16.onnx")}
    fp32_model = load_graph(fp32)
    images = load_prepared(list_images(data / "train" / "good")[:8], checkpoint.preprocess)
    patches = grid_patches(images, checkpoint.model.isize, 32, seed=0)
    facts = read_facts(fp32_model)
    ranges = collect_ranges(fp32_model, PatchReader(patches, facts.input_name, facts.input), "entropy")
    qdq = folder / "scorer.int8.qdq.onnx"
    qdq.write_bytes(serialize(quantize_graph(fp32_model, ranges, "tensorrt")))
    graphs["int8"] = qdq
    engines, lines = {}, []
    for precision, graph in graphs.items():
        result = build_engine(graph, BuildRequest(precision, max_batch=32, progress=False), ref=model, data=data)
        engines[precision] = result.engine
        parity = result.parity.get("engine", {})
        lines.append(f"{precision}: {result.build_seconds:.0f} s build, parity {parity.get('status')}"
                     + (f" (agreement {parity['agreement']:.1%})" if "agreement" in parity else
                        f" ({parity.get('reason', '')[:80]})"))
        if parity.get("status") == "failed":
            raise AssertionError(f"{precision} engine parity failed: {parity.get('failures')}")
    steps.data["engines"] = engines
    return "; ".join(lines)


def step_bench(steps: Steps) -> str:
    from gedge.bench.report import bench_table
    from gedge.bench.runner import BenchConfig, run_benchmarks
    from gedge.cli.render import console

    models = [steps.data["model"], *steps.data.get("engines", {}).values()]
    config = BenchConfig(batches=[1, 16], warmup=10, iters=50, pipeline=True, pipeline_batches=8,
                         pipeline_rounds=4)
    report = run_benchmarks(models, config)
    steps.data["bench"] = report
    console.print(bench_table(report, title="gpu-check benchmark"))
    best = max(report.results, key=lambda r: r.images_per_second, default=None)
    if best is None:
        raise AssertionError("no backend ran: " + "; ".join(s["reason"] for s in report.skipped))
    return f"{len(report.results)} rows; fastest {best.label} batch {best.batch}: {best.images_per_second:.0f} img/s"


def step_firmware(steps: Steps, folder: Path) -> str:
    from gedge.bench.firmware_check import FirmwareSkip
    from gedge.bench.firmware_check import step_firmware as compare_firmware

    try:
        return compare_firmware(steps.data, folder)
    except FirmwareSkip as exc:
        raise Skip(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="A trained gedge checkpoint (default: random).")
    parser.add_argument("--budget", type=float, default=280.0, help="Seconds for everything (default 280).")
    parser.add_argument("--out", type=Path, default=None, help="Working folder (default: a temporary one).")
    parser.add_argument("--build-without-gpu", action="store_true",
                        help="Build the engines even with no GPU (TensorRT-RTX builds ahead of time).")
    args = parser.parse_args(argv)
    steps = Steps(args.budget)
    steps.data["build_without_gpu"] = args.build_without_gpu
    with tempfile.TemporaryDirectory(prefix="gedge-gpu-check-") as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        steps.run("machine", lambda: step_machine(steps))

        def model() -> str:
            steps.data["model"], steps.data["data"] = small_model(folder, args.model)
            return f"{steps.data['model']} ({'given' if args.model else 'random, demo-sized'})"

        steps.run("model", model)
        if "model" in steps.data:
            steps.run("torch CUDA vs CPU", lambda: step_torch_parity(steps), need=10)
        steps.run("CUDA buffers/streams/graphs", lambda: step_cuda_buffers(steps), need=5)
        steps.run("pipelined loop on the GPU", lambda: step_loop_on_gpu(steps), need=5)
        if "model" in steps.data:
            steps.run("TensorRT engines + parity", lambda: step_engines(steps, folder), need=90)
            steps.run("bench", lambda: step_bench(steps), need=30)
            steps.run("firmware gedge-score vs gedge score", lambda: step_firmware(steps, folder), need=20)
    from gedge.cli.render import console
    from rich.table import Table

    table = Table(title=f"gpu-check ({time.perf_counter() - steps.started:.0f} s)", title_justify="left")
    for column in ("step", "status", "s", "detail"):
        table.add_column(column, justify="right" if column == "s" else "left", overflow="fold")
    colour = {"ok": "green", "FAIL": "red", "skipped": "yellow"}
    for name, status, detail, seconds in steps.rows:
        table.add_row(name, f"[{colour[status]}]{status}[/]", f"{seconds:.1f}", detail)
    console.print(table)
    if not steps.data.get("gpu") and "cuda" not in steps.data:
        console.print("no GPU here: the GPU steps were skipped; run `make gpu-check` on the GPU machine")
    return 1 if steps.failed else 0


if __name__ == "__main__":
    sys.exit(main())

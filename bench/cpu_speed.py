"""CPU speed of the fused scorer: torch eager against ONNX Runtime FP32 and both INT8 graphs, and OpenVINO
FP32, BF16 and NNCF INT8 where OpenVINO is installed (``gedge[openvino]``).

Every backend scores the same uint8 NHWC batch through its ``score`` call (what an inspection loop calls:
input check, conversion, run, outputs copied into :class:`~gedge.scores.Scores`). Runs are interleaved:
each round times every backend at every batch size in turn (the order rotates per round), so a neighbour's
load spike hits all of them alike; a backend's latency is the median over all its timed calls, its
throughput ``batch / median latency``. Ratios are against torch eager at the same batch size.

Fairness on a shared CPU: ONNX Runtime's worker threads do not spin (the backend's default), and torch
eager should run with ``OMP_WAIT_POLICY=PASSIVE``: OpenMP's default spin-wait makes torch 1.5-1.8x slower
on a busy machine. The variable only takes effect if set before torch is first imported; ``python -m
gedge.bench.cpu_speed`` and ``gedge bench-cpu`` set it (unless already set) and the report says what was
in effect. Both get the same thread count. The report has both settings: ``torch eager`` runs in this process
with passive waiting, ``torch eager (OpenMP spin)`` in a child process with OpenMP's default (spin-wait), timed
in the same interleaved rounds; ratios are against the passive one, the fair setting.

FLOPs per image are counted from the ONNX graph (:mod:`gedge.bench.flops`: 2 x the convolutions'
multiply-accumulates, 1.04 GFLOP at 64x64 with the default widths) and each row gives the GFLOP/s it achieved.

Without a checkpoint the model is ``ModelConfig(isize)`` with its default widths (ngf = ndf = 64, nz = 100)
and random DCGAN initialisation: speed does not depend on the weights. It is calibrated (min/max) on random
patches, which is enough for timing but says nothing about accuracy (that is `gedge calibrate`'s gate).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from gedge.core.machine import load_average

Progress = Callable[[int, int], None]


TORCH = "torch eager"


TORCH_SPIN = "torch eager (OpenMP spin)"


OPENVINO_ROWS = ("openvino fp32", "openvino bf16", "openvino int8 (nncf)")


REFERENCE_ORDER = (TORCH, "onnxruntime fp32", "onnxruntime int8 (tensorrt q/dq)", "onnxruntime int8 (cpu)")


@dataclass
class SpeedRow:
    backend: str
    batch: int
    calls: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    images_per_s: float
    ratio_vs_torch: float | None = None  # images/s against torch eager at this batch size
    gflop_per_s: float | None = None  # achieved: images/s x FLOPs per image


@dataclass
class SpeedReport:
    rows: list[SpeedRow]
    model: dict
    threads: int
    batches: list[int]
    rounds: int
    load_before: list[float]
    load_after: list[float]
    environment: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    flops_per_image: float | None = None
    backend_names: dict = field(default_factory=dict)  # row label -> the backend's own name

    def row(self, backend: str, batch: int) -> SpeedRow:
        return next(r for r in self.rows if r.backend == backend and r.batch == batch)

    def to_dict(self) -> dict:
        return asdict(self)


def environment(threads: int) -> dict:
    import onnxruntime

    env = {"python": platform.python_version(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
           "onnxruntime": onnxruntime.__version__, "threads": threads,
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset: OpenMP default, spinning)")}
    try:
        from importlib import metadata

        env["openvino"] = metadata.version("openvino")
    except Exception:  # not installed
        pass
    if "torch" in sys.modules:
        env["torch"] = str(sys.modules["torch"].__version__)
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0].split()
        env["cpu_features"] = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
                               if f in flags]
        name = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                     if ln.startswith("model name")), "")
        env["cpu"] = name
    except (OSError, IndexError):
        pass
    return env


def random_checkpoint(isize: int = 64, seed: int = 0):
    """A randomly initialised checkpoint of ``ModelConfig(isize)`` (default widths) with non-trivial BatchNorm
    statistics, for timing only."""
    import torch
    from gedge.core.decision import DecisionRule
    from gedge.core.preprocess import Preprocess
    from gedge.reference.checkpoint import Checkpoint
    from gedge.reference.model import ModelConfig, build_networks

    config = ModelConfig(isize=isize)
    netg, netd = build_networks(config, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    for module in [*netg.modules(), *netd.modules()]:
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) * 0.2 - 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return Checkpoint(config, Preprocess(mode="patch", isize=isize), DecisionRule(), netg.state_dict(),
                      netd.state_dict(), facts={"note": "random initialisation, for timing"})


def bench_graphs(checkpoint, folder: Path, patches: np.ndarray | None = None, seed: int = 0,
                 openvino: bool = False) -> dict[str, Path]:
    """FP32, TensorRT-flavoured and CPU-flavoured INT8 graphs of a checkpoint (min/max on ``patches``), and with
    ``openvino`` the NNCF INT8 IR (``openvino int8 (nncf)``, calibrated on the same patches)."""
    from gedge.calibrate.quantize import quantize_graph
    from gedge.calibrate.ranges import PatchReader, collect_ranges
    from gedge.core.artifacts.graph import read_facts, write_sidecar
    from gedge.export.onnx_export import ExportOptions, export_model, facts_from_checkpoint, serialize

    folder.mkdir(parents=True, exist_ok=True)
    options = ExportOptions()
    fp32 = export_model(checkpoint, options, facts_from_checkpoint(checkpoint, "bench", "", options))
    cfg = checkpoint.model
    if patches is None:
        patches = np.random.default_rng(seed).integers(0, 256, (64, cfg.isize, cfg.isize, cfg.nc), dtype=np.uint8)
    ranges = collect_ranges(fp32, PatchReader(patches, options.input_name), "minmax")
    graphs = {"onnxruntime fp32": (fp32, folder / "scorer.onnx"),
              "onnxruntime int8 (tensorrt q/dq)": (quantize_graph(fp32, ranges, "tensorrt"),
                                                   folder / "scorer.int8.qdq.onnx"),
              "onnxruntime int8 (cpu)": (quantize_graph(fp32, ranges, "cpu"), folder / "scorer.int8.cpu.onnx")}
    paths = {}
    for name, (model, path) in graphs.items():
        path.write_bytes(serialize(model))
        write_sidecar(path, read_facts(model))
        paths[name] = path
    if openvino:
        from gedge.calibrate.nncf_int8 import write_openvino_int8

        ir, _, _ = write_openvino_int8(paths["onnxruntime fp32"], patches, folder / "scorer.int8.ov.xml",
                                       {"sha256": "random patches, for timing", "patches": len(patches)})
        paths[OPENVINO_ROWS[2]] = ir
    return paths


def _spin_torch_worker(checkpoint_path: str, threads: int, conn) -> None:  # pragma: no cover - child process
    import torch
    from gedge.reference.checkpoint import load_checkpoint
    from gedge.runtime.torch_backend import TorchBackend

    torch.set_num_threads(threads)
    backend = TorchBackend(load_checkpoint(checkpoint_path))
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

    def __init__(self, checkpoint_path: str | Path, threads: int) -> None:
        import multiprocessing

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
        self.name = TORCH_SPIN

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


def _time_calls(score: Callable[[np.ndarray], object], batch: np.ndarray, budget_s: float,
                min_calls: int) -> list[float]:
    """Seconds per call for ``budget_s`` (at least ``min_calls``): the shared timing of gedge.bench.runner."""
    from gedge.core.timing import timed_calls

    return [ms / 1e3 for ms in timed_calls(lambda: score(batch), warmup=0, seconds=budget_s, min_iters=min_calls)]


def measure(backends: dict[str, object], batches: list[int], isize: int, channels: int, rounds: int = 5,
            budget_s: float = 0.4, warmup: int = 2, seed: int = 0, progress: Progress | None = None,
            reference: str = TORCH) -> list[SpeedRow]:
    """Interleaved timing of every backend's ``score`` at every batch size; rows in backend order."""
    rng = np.random.default_rng(seed)
    inputs = {b: rng.integers(0, 256, (b, isize, isize, channels), dtype=np.uint8) for b in batches}
    names = list(backends)
    for name in names:  # warm up: first calls allocate, plan and (torch) re-lay out weights
        for b in batches:
            for _ in range(warmup):
                backends[name].score(inputs[b])
    samples: dict[tuple[str, int], list[float]] = {(n, b): [] for n in names for b in batches}
    total, done = rounds * len(names) * len(batches), 0
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for b in batches:
            for name in order:
                samples[(name, b)] += _time_calls(backends[name].score, inputs[b], budget_s, min_calls=2)
                done += 1
                if progress:
                    progress(done, total)
    rows = []
    for name in names:
        for b in batches:
            t = np.array(samples[(name, b)])
            median = float(np.median(t))
            p10, p90 = (round(float(np.percentile(t, q)) * 1e3, 3) for q in (10, 90))
            rows.append(SpeedRow(name, b, int(t.size), round(median * 1e3, 3), p10, p90, round(b / median, 2)))
    for row in rows:
        ref = next((r for r in rows if r.backend == reference and r.batch == row.batch), None)
        if ref is not None:
            row.ratio_vs_torch = round(row.images_per_s / ref.images_per_s, 3)
    return rows


def run_cpu_benchmark(checkpoint_path: str | Path | None = None, isize: int = 64, batches: tuple[int, ...] = (1, 16),
                      threads: int = 2, rounds: int = 5, budget_s: float = 0.4, workdir: str | Path | None = None,
                      progress: Progress | None = None, openvino: bool | None = None,
                      spin_torch: bool = True) -> SpeedReport:
    """Build the graphs (from a checkpoint, or a random ``ModelConfig(isize)``) and time the backends: torch eager
    (passive and, with ``spin_torch``, spinning OpenMP), ONNX Runtime FP32/INT8, OpenVINO FP32/BF16/INT8
    (``openvino``: default where it is installed)."""
    import torch
    from gedge.core.errors import ConfigError
    from gedge.reference.checkpoint import load_checkpoint
    from gedge.runtime.onnxruntime_backend import OrtBackend
    from gedge.runtime.torch_backend import TorchBackend

    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    if not batches or min(batches) < 1:
        raise ConfigError(f"batch sizes must be positive, got {list(batches)}")
    if rounds < 1:
        raise ConfigError(f"rounds must be at least 1, got {rounds}")
    notes = []
    if checkpoint_path is not None:
        checkpoint = load_checkpoint(checkpoint_path)
        notes.append(f"model from {checkpoint_path}")
    else:
        checkpoint = random_checkpoint(isize)
        notes.append(f"ModelConfig(isize={isize}) with default widths, random initialisation (speed does not "
                     "depend on the weights); INT8 ranges by min/max on random patches")
    from gedge.bench.flops import flops_per_image
    from gedge.runtime.registry import installed

    if openvino is None:
        openvino = installed("openvino")
        if not openvino:
            notes.append("OpenVINO is not installed (pip install 'gedge[openvino]'): no OpenVINO rows")
    torch.set_num_threads(threads)
    load_before = load_average()
    spin = None
    with tempfile.TemporaryDirectory(prefix="gedge-bench-", dir=workdir) as tmp:
        graphs = bench_graphs(checkpoint, Path(tmp), openvino=openvino)
        flops = flops_per_image(graphs["onnxruntime fp32"])
        backends: dict[str, object] = {TORCH: TorchBackend(checkpoint)}
        try:
            if spin_torch:
                from gedge.reference.checkpoint import save_checkpoint

                path = checkpoint_path or save_checkpoint(checkpoint, Path(tmp) / "bench.pt")
                spin = SpinTorch(path, threads)
                backends[TORCH_SPIN] = spin
            backends.update({name: OrtBackend(path, threads=threads) for name, path in graphs.items()
                             if name.startswith("onnxruntime")})
            if openvino:
                from gedge.runtime.openvino_backend import OpenVINOBackend

                fp32 = graphs["onnxruntime fp32"]
                backends[OPENVINO_ROWS[0]] = OpenVINOBackend(fp32, "fp32", threads=threads)
                backends[OPENVINO_ROWS[1]] = OpenVINOBackend(fp32, "bf16", threads=threads)
                backends[OPENVINO_ROWS[2]] = OpenVINOBackend(graphs[OPENVINO_ROWS[2]], "int8", threads=threads)
            rows = measure(backends, list(batches), checkpoint.model.isize, checkpoint.model.nc, rounds, budget_s,
                           progress=progress)
            names = {label: getattr(b, "name", label) for label, b in backends.items()}
        finally:
            if spin is not None:
                spin.close()
    for row in rows:
        row.gflop_per_s = round(row.images_per_s * flops / 1e9, 2)
    bf16 = names.get(OPENVINO_ROWS[1], "")
    if "no BF16" in bf16:
        notes.append(f"this CPU has no BF16 instructions: OpenVINO's bf16 row ran {bf16.split('(runs ')[1][:4]}")
    if os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        notes.append("torch eager ran without OMP_WAIT_POLICY=PASSIVE (OpenMP spin-wait): on a shared machine "
                     "that makes it slower than it needs to be")
    return SpeedReport(rows, checkpoint.model.to_dict(), threads, list(batches), rounds, load_before, load_average(),
                       environment(threads), notes, flops, names)


def speed_table(report: SpeedReport):
    """Rich table: one row per backend, images/s, median latency and ratio against torch eager per batch."""
    from rich import box
    from rich.table import Table

    table = Table(title=f"CPU speed, fused scorer {report.model['isize']}x{report.model['isize']}, "
                        f"{report.threads} threads", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("backend")
    for b in report.batches:
        table.add_column(f"b{b} img/s", justify="right")
        table.add_column(f"b{b} median ms", justify="right")
        table.add_column(f"b{b} vs torch", justify="right")
        if report.flops_per_image:
            table.add_column(f"b{b} GFLOP/s", justify="right")
    for name in dict.fromkeys(r.backend for r in report.rows):
        cells = [name]
        for b in report.batches:
            row = report.row(name, b)
            cells += [f"{row.images_per_s:.1f}", f"{row.median_ms:.2f}",
                      "-" if row.ratio_vs_torch is None else f"{row.ratio_vs_torch:.2f}x"]
            if report.flops_per_image:
                cells.append("-" if row.gflop_per_s is None else f"{row.gflop_per_s:.1f}")
        table.add_row(*cells)
    env = report.environment
    flops = f"{report.flops_per_image / 1e9:.3f} GFLOP per image; " if report.flops_per_image else ""
    table.caption = (f"{flops}load average {report.load_before} before, {report.load_after} after; "
                     f"OMP_WAIT_POLICY={env.get('OMP_WAIT_POLICY')}; onnxruntime {env.get('onnxruntime')}, "
                     f"torch {env.get('torch', '?')}, openvino {env.get('openvino', '-')}; "
                     f"CPU {env.get('cpu', '?')} {env.get('cpu_features', '')}")
    return table


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gedge.bench.cpu_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", nargs="?", help="gedge checkpoint (default: random ModelConfig(isize))")
    parser.add_argument("--isize", type=int, default=64)
    parser.add_argument("--batch", type=int, action="append", help="batch size (repeatable; default 1 and 16)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from gedge.cli.render import console, print_json

    report = run_cpu_benchmark(args.checkpoint, args.isize, tuple(args.batch or (1, 16)), args.threads, args.rounds)
    if args.json:
        print_json(report.to_dict())
    else:
        console.print(speed_table(report))
        for note in report.notes:
            console.print(f"note: {note}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported (see the module docstring)
    raise SystemExit(main())

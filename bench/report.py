"""The one report of gedge's speed measurements (``gedge bench``, ``gedge bench-cpu``, ``gedge gpu-check``'s bench).

A :class:`BenchReport` holds rows (:class:`BenchRow`: one backend at one batch size, with its latency summary,
images/s, the ratio against torch eager on the CPU at the same batch size, and what else was measured: GFLOP/s,
peak memory, the TensorRT stage split, the pipelined-loop comparison), the machine's facts
(:func:`gedge.core.machine.machine_facts`, CPU flags included), the settings, notes and the backends that
could not run here with the reason. ``to_dict()`` is the ``--json`` output; the tables are
:mod:`gedge.cli.render_bench`'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

BENCH = "bench"
BENCH_CPU = "bench-cpu"
REFERENCE_LABEL = "torch eager (cpu)"  # `gedge bench`: torch eager on the CPU, what every other row is compared with


@dataclass
class BenchRow:
    """One backend at one batch size (and, for TensorRT, with or without CUDA graphs)."""

    label: str  # the row's name: e.g. "onnxruntime INT8 (cpu)"
    backend: str  # the backend's own name
    kind: str  # torch, torch-cuda, onnxruntime, openvino, tensorrt
    model: str
    precision: str
    batch: int
    latency_ms: dict[str, float]  # gedge.core.timing summary: p50, p90, p99, mean, min, max, n (bench-cpu: + p10)
    images_per_second: float
    peak_memory_mb: float | None = None
    memory: str = ""  # what peak_memory_mb measures
    cuda_graphs: bool | None = None
    stages_ms: dict[str, float] | None = None  # TensorRT: p50 of H2D, compute, D2H per batch
    pipeline: dict[str, Any] | None = None  # batch_by_batch and pipelined images/s, their paired ratio
    vs_torch_eager: float | None = None
    gflop_per_s: float | None = None  # achieved: images/s x FLOPs per image
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BenchReport:
    suite: str  # bench or bench-cpu
    machine: dict[str, Any]
    settings: dict[str, Any]
    results: list[BenchRow] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # backends that could not run here, and why
    notes: list[str] = field(default_factory=list)
    reference: str = REFERENCE_LABEL  # the label of the rows the ratios are against
    flops_per_image: float | None = None

    def add_ratios(self, digits: int | None = None) -> None:
        """``vs_torch_eager``: each row's throughput over the reference row's at the same batch size (rounded to
        ``digits`` where given)."""
        reference = {r.batch: r.images_per_second for r in self.results if r.label == self.reference}
        for r in self.results:
            base = reference.get(r.batch)
            ratio = r.images_per_second / base if base else None
            r.vs_torch_eager = round(ratio, digits) if ratio is not None and digits is not None else ratio

    def add_gflops(self, flops_per_image: float) -> None:
        """GFLOP/s each row achieved (images/s x FLOPs per image)."""
        self.flops_per_image = flops_per_image
        for r in self.results:
            r.gflop_per_s = round(r.images_per_second * flops_per_image / 1e9, 2)

    def rows(self, kind: str | None = None, batch: int | None = None) -> list[BenchRow]:
        return [r for r in self.results if (kind is None or r.kind == kind) and (batch is None or r.batch == batch)]

    def row(self, label: str, batch: int) -> BenchRow:
        return next(r for r in self.results if r.label == label and r.batch == batch)

    def labels(self) -> list[str]:
        """Row labels in first-seen order."""
        return list(dict.fromkeys(r.label for r in self.results))

    def to_dict(self) -> dict[str, Any]:
        payload = {"suite": self.suite, "machine": self.machine, "settings": self.settings,
                   "results": [r.to_dict() for r in self.results], "skipped": self.skipped, "notes": self.notes,
                   "reference": self.reference, "flops_per_image": self.flops_per_image}
        if self.suite == BENCH_CPU:
            payload.update(self._cpu_keys())
        return payload

    def _cpu_keys(self) -> dict[str, Any]:
        """The keys `gedge bench-cpu --json` has always had, derived from the rows, machine and settings."""
        s, m = self.settings, self.machine
        rows = [{"backend": r.label, "batch": r.batch, "calls": int(r.latency_ms.get("n", 0)),
                 "median_ms": r.latency_ms.get("p50"), "p10_ms": r.latency_ms.get("p10"),
                 "p90_ms": r.latency_ms.get("p90"), "images_per_s": r.images_per_second,
                 "ratio_vs_torch": r.vs_torch_eager, "gflop_per_s": r.gflop_per_s} for r in self.results]
        environment = {"python": m.get("python"), "machine": m.get("machine"), "cpu_count": m.get("cores"),
                       "onnxruntime": m.get("onnxruntime"), "threads": s.get("threads"),
                       "OMP_WAIT_POLICY": m.get("omp_wait_policy"), "openvino": m.get("openvino"),
                       "torch": m.get("torch"), "cpu_features": m.get("cpu_flags"), "cpu": m.get("cpu")}
        return {"rows": rows, "model": s.get("model"), "threads": s.get("threads"), "batches": s.get("batches"),
                "rounds": s.get("rounds"), "load_before": m.get("load_average"), "load_after": s.get("load_after"),
                "environment": environment, "backend_names": {r.label: r.backend for r in self.results}}

"""The benchmark report: rows per backend and batch, ratios against torch eager, the machine; JSON and a table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gedge.bench.runner import BenchResult
from gedge.cli.render import fmt
from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

REFERENCE_KIND = "torch"  # torch eager on the CPU: the row every other is compared with


@dataclass
class BenchReport:
    machine: dict[str, Any]
    settings: dict[str, Any]
    results: list[BenchResult] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # backends that could not run here, and why
    notes: list[str] = field(default_factory=list)

    def add_ratios(self) -> None:
        """``vs_torch_eager``: each row's throughput over torch eager's (CPU) at the same batch size."""
        reference = {r.batch: r.images_per_second for r in self.results if r.kind == REFERENCE_KIND}
        for r in self.results:
            base = reference.get(r.batch)
            r.vs_torch_eager = r.images_per_second / base if base else None

    def rows(self, kind: str | None = None, batch: int | None = None) -> list[BenchResult]:
        return [r for r in self.results if (kind is None or r.kind == kind) and (batch is None or r.batch == batch)]

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "settings": self.settings, "results": [r.to_dict() for r in self.results],
                "skipped": self.skipped, "notes": self.notes}


def _ms(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2f}x"


def bench_table(report: BenchReport, title: str = "Benchmark") -> Group:
    """One row per backend and batch size; a caption with the machine and what was measured."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    has_stages = any(r.stages_ms for r in report.results)
    has_pipeline = any(r.pipeline for r in report.results)
    columns = ["backend", "model", "batch", "p50", "p90", "p99", "img/s", "vs eager"]
    if has_pipeline:
        columns += ["serial img/s", "piped img/s", "piped/serial"]
    if has_stages:
        columns += ["H2D", "compute", "D2H"]
    columns += ["peak MB"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("backend", "model") else "right",
                         no_wrap=column != "model", overflow="fold")
    for r in report.results:
        lat = r.latency_ms
        cells = [escape(r.label), escape(r.model), str(r.batch), _ms(lat.get("p50")), _ms(lat.get("p90")),
                 _ms(lat.get("p99")), fmt(r.images_per_second, 1), _ratio(r.vs_torch_eager)]
        if has_pipeline:
            p = r.pipeline or {}
            iqr = p.get("ratio_iqr")
            spread = f" ({iqr[0]:.2f}-{iqr[1]:.2f})" if iqr and not has_stages else ""
            cells += [fmt(p.get("batch_by_batch"), 1), fmt(p.get("pipelined"), 1),
                      (_ratio(p.get("ratio")) + spread) if p else "-"]
        if has_stages:
            s = r.stages_ms or {}
            cells += [_ms(s.get("h2d")), _ms(s.get("compute")), _ms(s.get("d2h"))]
        cells.append("-" if r.peak_memory_mb is None else f"{r.peak_memory_mb:.0f} {r.memory.split()[0]}".strip())
        table.add_row(*cells)
    m = report.machine
    load = m.get("load_average")
    versions = ", ".join(f"{k} {m[k]}" for k in ("torch", "onnxruntime", "openvino", "tensorrt", "tensorrt_rtx",
                                                           "cuda_python")
                         if m.get(k))
    s = report.settings
    amount = f"{s.get('seconds')} s" if s.get("seconds") else f"{s.get('iters') or 10} iterations"
    caption = ("Latency p50/p90/p99 and H2D/compute/D2H in ms per batch. "
               f"{m.get('cpu')}, {m.get('usable_cores')} cores (load {load}); GPU: {m.get('gpu') or 'none'}; "
               f"{versions}; OMP_WAIT_POLICY={m.get('omp_wait_policy')}. Warm-up {s.get('warmup')}, {amount} per "
               f"row; img/s = network inputs ({s.get('input_size') or '-'}) per second at the mean latency; vs eager: "
               "against torch eager on the CPU at the same batch; peak MB: process peak RSS since the backend was "
               "opened (CPU) or GPU memory (CUDA). Serial vs piped: batch by batch vs the pipelined loop from PNG "
               "frames (decode and tiling included), alternating pairs of runs; piped/serial is the median of the "
               "pairs' ratios (quartiles).")
    parts: list[Any] = [table, Text(caption)]
    for item in report.skipped:
        parts.append(Text(f"not run: {item['backend']} {item.get('model', '')}: {item['reason']}"))
    for note in report.notes:
        parts.append(Text(f"note: {note}"))
    return Group(*parts)

"""Rich tables for the speed reports (``gedge bench``, ``gedge bench-cpu``, ``gedge gpu-check``). Rendering only:
the numbers come from :mod:`gedge.bench` (:class:`gedge.bench.report.BenchReport`, the gpu-check result)."""

from __future__ import annotations

from typing import Any

from gedge.bench.report import BenchReport
from gedge.cli.render import fmt
from gedge.core.machine import cpu_line
from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

VERSIONS = ("torch", "onnxruntime", "openvino", "tensorrt", "tensorrt_rtx", "cuda_python")


def _ms(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2f}x"


def _versions(machine: dict[str, Any]) -> str:
    return ", ".join(f"{k} {machine[k]}" for k in VERSIONS if machine.get(k))


def _bench_columns(report: BenchReport) -> tuple[list[str], bool, bool]:
    has_stages = any(r.stages_ms for r in report.results)
    has_pipeline = any(r.pipeline for r in report.results)
    columns = ["backend", "model", "batch", "p50", "p90", "p99", "img/s", "vs eager"]
    if has_pipeline:
        columns += ["serial img/s", "piped img/s", "piped/serial"]
    if has_stages:
        columns += ["H2D", "compute", "D2H"]
    return [*columns, "peak MB"], has_pipeline, has_stages


def _notes(report: BenchReport) -> list[Text]:
    lines = [Text(f"not run: {item['backend']} {item.get('model', '')}: {item['reason']}") for item in report.skipped]
    return lines + [Text(f"note: {note}") for note in report.notes]


def bench_table(report: BenchReport, title: str = "Benchmark") -> Group:
    """One row per backend and batch size; a caption with the machine (CPU flags included) and what was
    measured; then the backends that did not run and the notes."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    columns, has_pipeline, has_stages = _bench_columns(report)
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
        memory = f"{r.peak_memory_mb:.0f} {r.memory.split()[0].rstrip(':')}".strip() if r.peak_memory_mb else "-"
        cells.append(memory)
        table.add_row(*cells)
    m, s = report.machine, report.settings
    amount = f"{s.get('seconds')} s" if s.get("seconds") else f"{s.get('iters') or 10} iterations"
    caption = ("Latency p50/p90/p99 and H2D/compute/D2H in ms per batch. "
               f"CPU {cpu_line(m)}; GPU: {m.get('gpu') or 'none'}; "
               f"{_versions(m)}; OMP_WAIT_POLICY={m.get('omp_wait_policy')}. Warm-up {s.get('warmup')}, {amount} per "
               f"row; img/s = network inputs ({s.get('input_size') or '-'}) per second at the mean latency; vs eager: "
               "against torch eager on the CPU at the same batch; peak MB: process peak RSS since the backend was "
               "opened (CPU), torch's peak allocation (CUDA) or, for TensorRT, the engine (its plan: weights and "
               "kernels) + execution contexts + buffers. Serial vs piped: batch by batch vs the pipelined loop from "
               "PNG frames (decode and tiling included), alternating pairs of runs; piped/serial is the median of the "
               "pairs' ratios (quartiles).")
    return Group(table, Text(caption), *_notes(report))


def speed_table(report: BenchReport) -> Group:
    """``gedge bench-cpu``: one row per backend; images/s, median latency, ratio against torch eager and GFLOP/s
    per batch size; a caption with the CPU (flags included), load, versions and the OpenMP wait policy."""
    s, m = report.settings, report.machine
    model = s.get("model") or {}
    batches = s.get("batches") or sorted({r.batch for r in report.results})
    table = Table(title=f"CPU speed, fused scorer {model.get('isize')}x{model.get('isize')}, {s.get('threads')} "
                        "threads", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("backend")
    for b in batches:
        table.add_column(f"b{b} img/s", justify="right")
        table.add_column(f"b{b} median ms", justify="right")
        table.add_column(f"b{b} vs torch", justify="right")
        if report.flops_per_image:
            table.add_column(f"b{b} GFLOP/s", justify="right")
    for label in report.labels():
        cells = [escape(label)]
        for b in batches:
            row = report.row(label, b)
            cells += [fmt(row.images_per_second, 1), fmt(row.latency_ms.get("p50"), 2), _ratio(row.vs_torch_eager)]
            if report.flops_per_image:
                cells.append(fmt(row.gflop_per_s, 1))
        table.add_row(*cells)
    flops = f"{report.flops_per_image / 1e9:.3f} GFLOP per image; " if report.flops_per_image else ""
    table.caption = (f"{flops}median = nearest-rank p50 of all timed calls, img/s = batch / median; load average "
                     f"{s.get('load_after')} after the run; "
                     f"OMP_WAIT_POLICY={m.get('omp_wait_policy')}; {_versions(m)}; CPU {cpu_line(m)}")
    return Group(table, *_notes(report))

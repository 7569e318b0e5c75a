"""What `gedge bench`, `gedge bench-cpu` and `gedge gpu-check` do: run the library, render its report or JSON."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from gedge.bench.cpu_speed import CpuBenchConfig, run_cpu_benchmark
from gedge.bench.gpu_check import FAIL, GpuCheckOptions, StepResult, run_gpu_check
from gedge.bench.runner import BenchConfig, run_benchmarks
from gedge.cli.render import console, err_console, print_json, progress_bar
from gedge.cli.render_bench import bench_table, gpu_check_table, speed_table


def quiet_openmp() -> str:
    """OpenMP worker threads that sleep instead of spinning (torch eager is 1.5-1.8x slower on a busy machine
    with spinning). Only takes effect before torch is imported: returns a note when it came too late; the
    report records the setting in effect."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        return ""
    if os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        return "torch was loaded before OMP_WAIT_POLICY could be set"
    return ""


def run_bench(models: list[Path], config: BenchConfig, json_out: bool) -> None:
    quiet_openmp()
    if json_out:
        print_json(run_benchmarks(models, config).to_dict())
        return
    with err_console.status("benchmarking") as status:
        report = run_benchmarks(models, config, progress=lambda what: status.update(f"benchmarking {what}"))
    console.print(bench_table(report))


def run_bench_cpu(config: CpuBenchConfig, json_out: bool) -> None:
    note = quiet_openmp()
    with progress_bar("benchmark") as update:
        report = run_cpu_benchmark(config, progress=update)
    if note:
        report.notes.append(note)
    if json_out:
        print_json(report.to_dict())
        return
    console.print(speed_table(report))


def _step_line(step: StepResult) -> None:
    err_console.print(f"[{step.status}] {step.name}: {step.detail}", markup=False, highlight=False, soft_wrap=True)
    if step.status == FAIL and step.trace:
        err_console.print(step.trace.rstrip(), markup=False, highlight=False)


def run_gpu_check_command(options: GpuCheckOptions, json_out: bool) -> None:
    """Each step's line on stderr as it ends; then the benchmark table and the steps table (or the JSON), and the
    skipped steps. Exit code 1 when a step failed (or, with --strict, was skipped)."""
    quiet_openmp()
    result = run_gpu_check(options, on_step=_step_line)
    if json_out:
        print_json(result.to_dict())
    else:
        if result.bench is not None:
            console.print(bench_table(result.bench, title="gpu-check benchmark"))
        console.print(gpu_check_table(result))
        if not result.gpu and not result.cuda:
            console.print("no GPU here: the GPU steps were skipped; run `make gpu-check` on the GPU machine")
    if result.skipped:
        verdict = "fail the check (--strict)" if result.strict else "did not run (--strict makes that a failure)"
        err_console.print(f"{len(result.skipped)} steps {verdict}: "
                          + "; ".join(f"{s.name} ({s.detail})" for s in result.skipped), markup=False)
    if result.failed:
        raise typer.Exit(1)

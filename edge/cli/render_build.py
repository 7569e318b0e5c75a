"""Rich rendering of `gedge check` and `gedge build`: the graph-check table, the build plan, the builder's progress
and the parity line of a manifest."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from gedge.cli.render import err_console
from gedge.core.artifacts.manifest import ParityRecord
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table


class RichBuildProgress:
    """TensorRT's builder phases as rich progress bars on stderr (nested phases indented, removed when done)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, tuple[TaskID, int]] = {}
        self.lock = threading.Lock()

    def start(self, phase: str, parent: str | None, steps: int) -> None:
        with self.lock:
            depth = self.tasks[parent][1] + 1 if parent in self.tasks else 0
            if depth > 2:  # the innermost phases come and go too fast to read
                return
            task = self.progress.add_task("  " * depth + phase, total=max(steps, 1))
            self.tasks[phase] = (task, depth)

    def step(self, phase: str, step: int) -> None:
        with self.lock:
            if phase in self.tasks:
                self.progress.update(self.tasks[phase][0], completed=step + 1)

    def finish(self, phase: str) -> None:
        with self.lock:
            if phase not in self.tasks:
                return
            task, depth = self.tasks.pop(phase)
            if depth:
                self.progress.remove_task(task)
            else:
                self.progress.update(task, completed=self.progress.tasks[task].total)


@contextlib.contextmanager
def build_progress(enabled: bool, label: str) -> Iterator[RichBuildProgress | None]:
    if not enabled:
        with err_console.status(f"building with {label} (no progress monitor in this version)"):
            yield None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err_console, transient=True) as progress:
        yield RichBuildProgress(progress)


def plan_table(plan, title: str) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("setting", style="bold")
    table.add_column("value")
    for key, value in plan.rows():
        table.add_row(key, value)
    return table


def parity_line(record: ParityRecord) -> str:
    """One parity verdict of a manifest, coloured."""
    status = record.status
    if status in ("passed", "failed"):
        score = record.rel_l2.get("score")
        detail = f"agreement {record.agreement or 0:.2%}" + (f", score rel L2 {score:.2e}" if score is not None
                                                              else "")
        colour = "green" if status == "passed" else "red"
        return f"[{colour}]{status}[/] ({detail}; {record.candidate})"
    return f"[yellow]{status}[/]: {record.reason}"


def check_table(result) -> Table:
    table = Table(title=f"Graph check: {result.path}", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("details")
    onnx_details = "; ".join(result.onnx_errors) or f"{result.nodes} nodes, opset {result.opset}, full shape inference"
    table.add_row("onnx.checker", "[green]ok[/]" if result.onnx_ok else "[red]FAIL[/]", onnx_details)
    trt = result.tensorrt
    if trt is None:
        table.add_row("TensorRT parser", "[yellow]skipped[/]", result.tensorrt_skipped)
    else:
        label = f"{trt.module} {trt.version} parser"
        if trt.parsed:
            table.add_row(label, "[green]ok[/]", "every node parsed")
        for issue in trt.issues:
            table.add_row(label, "[red]REJECTED[/]", issue.line())
        if trt.built is not None:
            caps = (f" for {', '.join(trt.compute_capabilities)}" if trt.compute_capabilities
                    else " for TensorRT-RTX's default targets (Ampere and later)" if trt.module == "tensorrt_rtx"
                    else " for this GPU")
            detail = (f"engine of {trt.engine_bytes / 1e6:.2f} MB{caps} in {trt.build_seconds:.1f} s" if trt.built
                      else trt.build_error)
            table.add_row(f"{trt.module} builder", "[green]ok[/]" if trt.built else "[red]FAIL[/]", detail)
    return table

"""What `gedge build` does: plan (and with --dry-run stop there), build, render the engine, manifest and parity.

Exit codes: 2 for bad input (a GedgeError, handled by the CLI), 1 when parity was measured at build time and
failed (the engine and its manifest are written all the same, and the manifest says so).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from gedge.cli.render import console, err_console, key_value_table, print_json
from gedge.core.errors import ConfigError
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


def _parity_line(entry: dict) -> str:
    status = entry.get("status", "?")
    if status in ("passed", "failed"):
        score = entry.get("rel_l2", {}).get("score")
        detail = f"agreement {entry.get('agreement', 0):.2%}" + (f", score rel L2 {score:.2e}" if score is not None
                                                                 else "")
        colour = "green" if status == "passed" else "red"
        return f"[{colour}]{status}[/] ({detail}; {entry.get('candidate', '')})"
    return f"[yellow]{status}[/]: {entry.get('reason', '')}"


def run_build(graph: Path, precision: str, out: Path | None, min_batch: int, opt_batch: int, max_batch: int,
              workspace_mb: int | None, opt_level: int | None, timing_cache: Path | None,
              compute_capabilities: list[str], calibration_cache: Path | None, typing: str, module: str | None,
              dry_run: bool, assume: str | None, ref: Path | None, data: Path | None, progress: bool,
              json_out: bool, profiles: int = 2) -> None:
    from gedge.export.build_plan import BuildRequest
    from gedge.export.engine_build import build_engine
    from gedge.export.engine_build import dry_run as plan_only

    if assume and not dry_run:
        raise ConfigError("--assume describes a TensorRT that is not installed; use it with --dry-run")
    request = BuildRequest(
        precision=precision, typing=typing, out=str(out) if out else "", min_batch=min_batch, opt_batch=opt_batch,
        max_batch=max_batch, workspace_mb=workspace_mb, opt_level=opt_level,
        timing_cache=str(timing_cache) if timing_cache else "",
        compute_capabilities=tuple(compute_capabilities), progress=progress,
        calibration_cache=str(calibration_cache) if calibration_cache else "", profiles=profiles)
    if dry_run:
        prepared = plan_only(graph, request, assume, module)
        if json_out:
            print_json({"dry_run": True, "plan": prepared.plan.to_dict(), "capabilities": prepared.caps.to_dict()})
            return
        console.print(plan_table(prepared.plan, f"Build plan for {graph} on {prepared.caps.label} (dry run)"))
        for note in prepared.plan.notes:
            console.print(f"note: {note}")
        return

    from gedge.export.engine_build import open_tensorrt

    _, caps = open_tensorrt(module)
    with build_progress(progress and caps.progress_monitor, caps.label) as monitor:
        result = build_engine(graph, request, module, ref, data, monitor)
    plan = result.plan
    if json_out:
        print_json({"plan": plan.to_dict(), "engine": str(result.engine), "manifest": str(result.manifest_path),
                    "engine_bytes": result.engine_bytes, "build_seconds": result.build_seconds,
                    "fp16_graph_written": result.fp16_graph_written, "parity": result.parity})
    else:
        console.print(plan_table(plan, f"Build plan for {graph} on {caps.label}"))
        for note in [*plan.notes, *result.notes]:
            console.print(f"note: {note}")
        summary = {"engine": f"{result.engine} ({result.engine_bytes / 1e6:.2f} MB)",
                   "manifest": str(result.manifest_path),
                   "sha256": result.manifest["engine_sha256"],
                   "built in": f"{result.build_seconds:.1f} s",
                   "target": result.manifest["target"].get("description", "")}
        if result.pinned_layers:
            summary["pinned to FP32"] = f"{result.pinned_layers} layers"
        for kind in ("engine", "graph"):
            if kind in result.parity:
                summary[f"{kind} parity"] = _parity_line(result.parity[kind])
        console.print(key_value_table(f"Built {plan.precision.upper()} engine", summary))
        for kind, entry in result.parity.items():
            for failure in entry.get("failures", []):
                console.print(f"[red]fail ({kind}):[/] {failure}")
    if result.parity_failed:
        raise SystemExit(1)

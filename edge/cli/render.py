"""Rich rendering for the CLI: tables, progress bars and one-line errors. No computation here."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from typing import Any

from gedge.core.scores import OUTPUT_NAMES
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console(stderr=False, highlight=False, width=None if sys.stdout.isatty() else 160)


err_console = Console(stderr=True, highlight=False)


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(payload)) + "\n")
    sys.stdout.flush()


def error_line(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)


def warning_line(message: str) -> None:
    err_console.print(f"[bold yellow]warning:[/] {escape(message)}", markup=True, soft_wrap=True)


@contextmanager
def progress_bar(description: str, total: int | None = None, transient: bool = False) -> Iterator:
    """A rich progress bar on stderr; yields ``update(done, total=None, **fields)``."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*columns, console=err_console, transient=transient) as progress:
        task = progress.add_task(description, total=total, info="")

        def update(done: int, total_now: int | None = None, info: str = "") -> None:
            if total_now is not None:
                progress.update(task, total=total_now)
            progress.update(task, completed=done, info=info)

        yield update


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}f}"


def evaluation_table(report, title: str = "Image AUROC per score") -> Table:
    """The seed paper's Table II shape: one row per data set or defect class, one column per score."""
    table = Table(title=f"{title} - {report.data}", title_justify="left")
    table.add_column("rows")
    table.add_column("normal", justify="right")
    table.add_column("anomalous", justify="right")
    for name in OUTPUT_NAMES:
        label = f"{name} (primary: {report.primary})" if name == "score" else name
        table.add_column(label, justify="right")
    located = report.localisation
    if located:
        table.add_column("pixel AUROC", justify="right")
        table.add_column("PRO (30% FPR)", justify="right")
    for row in report.rows:
        best = max((n for n in OUTPUT_NAMES if n != "score"), key=lambda n: row.auroc[n])
        cells = [f"[bold]{fmt(row.auroc[n])}[/]" if n == best else fmt(row.auroc[n]) for n in OUTPUT_NAMES]
        if located:
            where = located.get(row.name)
            cells += [fmt(where.pixel_auroc), fmt(where.pro)] if where else ["-", "-"]
        table.add_row(row.name, str(row.n_normal), str(row.n_anomalous), *cells)
    table.caption = (f"best score: {report.best_score}; at the stored threshold {report.threshold:.3f}: "
                     f"TPR {fmt(report.at_threshold['tpr'])}, FPR {fmt(report.at_threshold['fpr'])}; "
                     f"TPR at 5% FPR {fmt(report.tpr_at_5pct_fpr)}; best F1 {fmt(report.best_f1['f1'])}")
    if report.excluded:
        table.caption += f"; {len(report.excluded)} training contaminants excluded"
    return table


def key_value_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in rows.items():
        table.add_row(str(key), fmt(value) if isinstance(value, float) else str(value))
    return table

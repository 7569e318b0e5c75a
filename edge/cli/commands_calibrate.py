"""What `gedge bench-cpu` does: call the library, render the result (`gedge calibrate` lives in
:mod:`gedge.cli.calibrate`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gedge.cli.render import console, print_json, progress_bar


def run_bench_cpu(checkpoint: Path | None, isize: int, batches: list[int], threads: int, rounds: int,
                  json_out: bool) -> None:
    note = ""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede torch's first import
    elif os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        note = "torch was loaded before OMP_WAIT_POLICY could be set"
    from gedge.bench.cpu_speed import run_cpu_benchmark, speed_table

    with progress_bar("benchmark") as update:
        report = run_cpu_benchmark(checkpoint, isize, tuple(batches or (1, 16)), threads, rounds, progress=update)
    if note:
        report.notes.append(note)
    if json_out:
        print_json(report.to_dict())
        return
    console.print(speed_table(report))
    for line in report.notes:
        console.print(f"note: {line}")

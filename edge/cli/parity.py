"""`gedge parity`: accuracy parity of a deployed model against the PyTorch reference.

The command builds a :class:`~gedge.compare.parity.ParityRequest`, lets the library open and check both sides
(bad input fails as one line before any progress is drawn), runs the comparison and renders the report: a rich
table, or its ``to_dict()`` with ``--json``. Exit code 1 when the candidate fails its limits.
"""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.options import BatchSize, Force, Json, Threads
from gedge.cli.render import console, print_json, progress_bar, warning_line
from gedge.cli.render_parity import parity_table
from gedge.compare.comparator import ParityReport
from gedge.compare.parity import ParityRequest, open_parity, run_parity
from gedge.core import artifacts
from gedge.core.errors import CheckFailed

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Accuracy parity of a deployed model against the PyTorch reference.")


def render_parity(report: ParityReport, json_out: bool) -> None:
    """The report as a table with its notes and failures (after the candidate's verification), or as JSON."""
    if json_out:
        print_json(report.to_dict())
        return
    if report.verification is not None:
        console.print(f"candidate {report.verification.path}: {report.verification.line()}", markup=False)
    console.print(parity_table(report))
    for note in report.notes:
        console.print(f"note: {note}")
    for failure in report.failures:
        console.print(f"[red]fail:[/] {failure}")


@app.command()
def parity(
    ref: Path = typer.Option(..., "--ref", help="Reference: the gedge checkpoint (.pt), run on torch."),
    candidate: Path = typer.Option(..., "--candidate",
                                   help="Candidate: an ONNX graph (`gedge export`, `gedge calibrate`), an "
                                        "OpenVINO IR .xml or a TensorRT .engine."),
    data: Path = typer.Option(..., "--data", help="Data folder: its test split if it has one (for AUROC), "
                                                  "else all its images."),
    batch_size: BatchSize = 64,
    threads: Threads = 0,
    precision: str | None = typer.Option(None, help="Limits of this precision (default: the graph's)."),
    max_rel_l2: float | None = typer.Option(None, help="Limit: relative L2 error of every score."),
    min_spearman: float | None = typer.Option(None, help="Limit: Spearman rank correlation of every score."),
    max_auroc_delta: float | None = typer.Option(None, help="Limit: |AUROC delta| of every score."),
    min_agreement: float | None = typer.Option(None, help="Limit: accept/reject agreement (0-1)."),
    max_score_shift: float | None = typer.Option(None, help="Limit: largest primary-score shift near the "
                                                               "threshold, share of the decision margin."),
    max_score_bias: float | None = typer.Option(None, help="Limit: largest mean shift there."),
    force: Force = False,
    json_out: Json = False,
) -> None:
    """Accuracy parity of a deployed graph against the PyTorch reference, per output, with pass/fail.

    Defaults: FP32 rel L2 <= 1e-5 and identical decisions; FP16 rel L2 <= 1e-2 and >= 99.5 % agreement;
    INT8 rel L2 <= 0.25, Spearman >= 0.9, primary-score AUROC drop <= 0.01 and >= 98 % agreement. Every
    precision also bounds the primary score's shift near the threshold, down or up, as a share of the decision
    margin. NaN or infinite candidate values always fail, and so does every limit on fewer than 10 images
    ("too few images to judge"). A candidate whose recorded verdict failed is refused unless --force.
    Exit code 1 when the candidate fails (or is refused).

    Example: [bold]gedge parity --ref model.pt --candidate scorer.fp16.onnx --data wood --json[/]
    """
    overrides = {"max_rel_l2": max_rel_l2, "min_spearman": min_spearman, "max_auroc_delta": max_auroc_delta,
                 "min_agreement": min_agreement, "max_score_shift": max_score_shift,
                 "max_score_bias": max_score_bias}
    reference = artifacts.open(ref)  # each file read, hashed and verified once
    model = artifacts.open(candidate)
    request = ParityRequest(reference, model, data, precision, overrides, batch_size, threads, force)
    setup = open_parity(request)
    for warning in setup.verification.warnings if setup.verification is not None else ():
        warning_line(f"{candidate}: {warning}")
    try:
        with progress_bar("parity") as update:
            report = run_parity(setup, update)
    finally:
        setup.close()
    render_parity(report, json_out)
    if not report.passed:
        raise CheckFailed(f"parity failed: {len(report.failures)} limits missed (see above)", candidate)

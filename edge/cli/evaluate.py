"""`gedge evaluate` and `gedge threshold`: a model (checkpoint or deployed artifact) on a labelled test set, its
report, and refitting its decision threshold."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.options import BatchSize, Force, Json
from gedge.cli.render import console, evaluation_table, fmt, print_json, progress_bar, warning_line
from gedge.core.thresholds import Rates, rates_at
from gedge.report.evaluation import Evaluation, EvaluationRequest, prepare_evaluation
from gedge.report.html import ReportOptions, check_report_packages, write_report
from gedge.report.refit import ThresholdRequest, fit_threshold
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Evaluation of a model on a labelled test set, its report, and its threshold.")


def rates_line(rates: Rates) -> str:
    return (f"{rates.escapes} of {rates.defective} defective images escape ({rates.escape_rate:.1%}), "
            f"{rates.false_rejects} of {rates.normals} normal images rejected ({rates.false_reject_rate:.1%})")


def _print_evaluation(evaluation: Evaluation, rates: Rates) -> None:
    model = evaluation.model
    if model.verification is not None:
        console.print(f"{model.path.name}: {model.verification.line()}")
    console.print(evaluation_table(evaluation.report))
    decision = model.decision
    console.print(f"at the threshold {decision.threshold:.4g} ({decision.threshold_rule}): {rates_line(rates)}")
    for note in evaluation.notes:
        console.print(f"note: {note}")


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="gedge checkpoint (.pt), ONNX graph, OpenVINO IR (.xml) or engine."),
    data: Path = typer.Argument(..., help="Data folder with a labelled test set."),
    report: Path | None = typer.Option(None, "--report", help="Write the evaluation report to this HTML file: "
                                       "histograms, ROC curves, thresholds, worst cases, the model's facts."),
    gallery: int = typer.Option(12, help="With --report: worst cases shown in pictures per gallery (all listed)."),
    ref: Path | None = typer.Option(None, "--ref", help="A deployed artifact's checkpoint, for heat maps where "
                                    "the artifact has no amap output (default: the one it records, if beside it)."),
    batch_size: BatchSize = 64,
    force: Force = False,
    json_out: Json = False,
) -> None:
    """Image AUROC per score and per defect class (the paper's Table II), decisions at the threshold; with
    --report, one self-contained HTML page to look at.

    Example: [bold]gedge evaluate model.pt wood --report report.html[/]
    """
    options = ReportOptions(gallery, batch_size)
    if report is not None:
        check_report_packages()
    job = prepare_evaluation(EvaluationRequest(model, data, batch_size, ref, force))
    with progress_bar("scoring") as update:
        evaluation = job.run(update)
    rates = rates_at(evaluation.labels, evaluation.scores, evaluation.model.decision.threshold)
    written = None
    if report is not None:
        with console.status("writing the report"):
            written = write_report(evaluation, report, options)
    if json_out:
        print_json({**evaluation.to_dict(), "at_threshold_counts": rates.to_dict(),
                    "report": written.to_dict() if written else None})
        return
    _print_evaluation(evaluation, rates)
    if written is not None:
        console.print(f"report: {written.path} ({written.bytes / 1e6:.2f} MB, {written.seconds:.1f} s; "
                      f"{written.missed} missed defects, {written.rejected} rejected normals; {written.heat_maps})")


@app.command()
def threshold(
    model: Path = typer.Argument(..., help="gedge checkpoint (.pt), ONNX graph, OpenVINO IR (.xml) or engine."),
    data: Path = typer.Argument(..., help="Data folder with a labelled test set to fit the threshold on."),
    escape_rate: float | None = typer.Option(None, "--escape-rate", help="At most this share of the defective "
                                             "images accepted (0: none)."),
    false_reject_rate: float | None = typer.Option(None, "--false-reject-rate", help="At most this share of the "
                                                   "normal images rejected."),
    out: Path | None = typer.Option(None, "-o", "--out", help="A checkpoint: write the refitted one here (default: "
                                    "over MODEL). A graph or IR gets MODEL.threshold.json, an engine its manifest."),
    batch_size: BatchSize = 64,
    force: Force = False,
    json_out: Json = False,
) -> None:
    """Refit the decision threshold on labelled images, to an escape rate or a false-reject rate; the new
    threshold and its source are recorded with the model, and artifacts made from it afterwards carry them.

    Example: [bold]gedge threshold model.pt wood --escape-rate 0[/]
    """
    request = ThresholdRequest(model, data, escape_rate, false_reject_rate, out, batch_size, force)
    with progress_bar("scoring") as update:
        result = fit_threshold(request, update)
    warning_line(result.warning)
    if json_out:
        print_json(result.to_dict())
        return
    table = Table(title=f"Threshold of {result.model.name} ({result.primary}, normalised) on {data}",
                  title_justify="left")
    for column in ("threshold", "value", "escapes", "false rejects"):
        table.add_column(column, justify="left" if column == "threshold" else "right")
    for name, rates in (("before", result.before), (f"after: {request.target}", result.after)):
        table.add_row(name, fmt(rates.threshold, 4), f"{rates.escapes} / {rates.defective}",
                      f"{rates.false_rejects} / {rates.normals}")
    console.print(table)
    console.print(f"wrote {result.written}: threshold {result.before.threshold:.4g} -> {result.after.threshold:.4g}")

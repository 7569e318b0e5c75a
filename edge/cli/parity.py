"""`gedge` commands: accuracy parity of a deployed model against the PyTorch reference."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.commands_export import run_parity

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Accuracy parity of a deployed model against the PyTorch reference.")


@app.command()
def parity(
    ref: Path = typer.Option(..., "--ref", help="Reference: the gedge checkpoint (.pt), run on torch."),
    candidate: Path = typer.Option(..., "--candidate",
                                   help="Candidate: an ONNX graph (`gedge export`, `gedge calibrate`), an "
                                        "OpenVINO IR .xml or a TensorRT .engine."),
    data: Path = typer.Option(..., "--data", help="Data folder: its test split if it has one (for AUROC), "
                                                  "else all its images."),
    batch_size: int = typer.Option(64, help="Inference batch size."),
    threads: int = typer.Option(0, help="ONNX Runtime threads (0: its default)."),
    precision: str | None = typer.Option(None, help="Limits of this precision (default: the graph's)."),
    max_rel_l2: float | None = typer.Option(None, help="Limit: relative L2 error of every score."),
    min_spearman: float | None = typer.Option(None, help="Limit: Spearman rank correlation of every score."),
    max_auroc_delta: float | None = typer.Option(None, help="Limit: |AUROC delta| of every score."),
    min_agreement: float | None = typer.Option(None, help="Limit: accept/reject agreement (0-1)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable report."),
) -> None:
    """Accuracy parity of a deployed graph against the PyTorch reference, per output, with pass/fail.

    Defaults: FP32 rel L2 <= 1e-5 and identical decisions; FP16 rel L2 <= 1e-2 and >= 99.5 % agreement;
    INT8 primary-score AUROC drop <= 0.01 and >= 98 % agreement.
    Exit code 1 when the candidate fails.

    Example: [bold]gedge parity --ref model.pt --candidate scorer.fp16.onnx --data wood --json[/]
    """
    overrides = {"max_rel_l2": max_rel_l2, "min_spearman": min_spearman, "max_auroc_delta": max_auroc_delta,
                 "min_agreement": min_agreement}
    run_parity(ref, candidate, data, batch_size, threads, precision, overrides, json_out)

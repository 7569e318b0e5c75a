"""`gedge study`: experiments over many training runs (the seed paper's contamination study)."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.options import Json
from gedge.cli.render import console, print_json, progress_bar
from gedge.cli.train import parse_steps
from gedge.core.errors import ConfigError
from gedge.core.scores import OUTPUT_NAMES
from gedge.reference.study import PAPER_WOOD, StudyRequest, StudyResult, contamination_study
from gedge.reference.train import TrainConfig
from gedge.reference.training_job import TrainRequest
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Experiments over many training runs.")


@app.callback()
def study() -> None:
    """Experiments over many training runs (a group: more studies can join it)."""


def parse_fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--fractions must be numbers separated by commas, got {text!r}") from None


@app.command("contamination")
def contamination(
    data: Path = typer.Argument(..., help="Data folder with defective test images (MVTec AD layout)."),
    fractions: str = typer.Option("0,0.03,0.06,0.09", help="Fractions of defective images mixed into training."),
    seeds: int = typer.Option(3, help="Runs per fraction (seeds 0 to N-1)."),
    out: Path = typer.Option(Path("study-contamination"), "-o", "--out", help="Folder for the runs' checkpoints "
                                                                              "(runs already there are reused)."),
    steps: str = typer.Option("auto", help="Training steps per run: auto or a number."),
    max_steps: int = typer.Option(6000, help="With --steps auto: the most steps per run."),
    json_out: Json = False,
) -> None:
    """Train with 0-9 % defective images mixed into the normal training data (Tang et al., Table I) and report
    image AUROC per score as mean +- std over seeds, beside the paper's figures for MVTec AD wood.

    Example: [bold]gedge study contamination ../shared/data/wood_vsb256 --fractions 0,0.03,0.06,0.09 --seeds 3[/]
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    config = TrainConfig(steps=parse_steps(steps), max_steps=max_steps)
    request = StudyRequest(data, out, parse_fractions(fractions), tuple(range(seeds)),
                           TrainRequest(data, out / "unused.pt", config))
    with progress_bar("study") as update:
        result = contamination_study(request, lambda what, step, total: update(step, total, info=what))
    if json_out:
        print_json(result.to_dict())
    else:
        console.print(study_table(result))


def study_table(result: StudyResult) -> Table:
    table = Table(title=f"Image AUROC with defective images in training (mean +- std over seeds) - {result.data}",
                  title_justify="left")
    table.add_column("fraction", justify="right")
    table.add_column("runs", justify="right")
    for name in OUTPUT_NAMES:
        table.add_column(name, justify="right")
    table.add_column("paper, MVTec wood", justify="right")
    for fraction, row in result.summary().items():
        runs = sum(1 for r in result.runs if r.fraction == fraction)
        paper = PAPER_WOOD.get(fraction)
        table.add_row(f"{fraction:g}", str(runs), *(f"{m:.3f} +- {s:.3f}" for m, s in (row[n] for n in OUTPUT_NAMES)),
                      f"{paper:.3f}" if paper is not None else "-")
    table.caption = "score: the primary score each run chose on validation; paper: Tang et al., Table I (GANomaly)"
    return table

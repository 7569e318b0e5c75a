"""`gedge study`: experiments over many training runs (the seed paper's contamination study)."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.options import Json
from gedge.cli.render import console, print_json, progress_bar
from gedge.cli.train import parse_steps
from gedge.core.atomic import write_bytes
from gedge.core.errors import ConfigError
from gedge.core.scores import CANDIDATE_SCORES, OUTPUT_NAMES
from gedge.reference.quality_study import QualityRequest, QualityResult, markdown, quality_study
from gedge.reference.study import PAPER_WOOD, StudyRequest, StudyResult, contamination_study
from gedge.reference.train import TrainConfig
from gedge.reference.training_job import TrainRequest
from gedge.reference.validation import DEFAULT_SCORE
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Experiments over many training runs: contamination, quality across materials.")


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


@app.command("quality")
def quality(
    data: list[Path] = typer.Argument(..., help="Data folders (MVTec AD layout or class folders), one per material."),
    seeds: int = typer.Option(3, help="Runs per data set (seeds 0 to N-1)."),
    out: Path = typer.Option(Path("study-quality"), "-o", "--out", help="Folder for the runs' checkpoints and "
                                                                        "evaluations (runs already there are reused)."),
    steps: str = typer.Option("auto", help="Training steps per run: auto or a number."),
    max_steps: int = typer.Option(6000, help="With --steps auto: the most steps per run."),
    primary: str = typer.Option(DEFAULT_SCORE, help="The primary score of every run (as gedge train --primary)."),
    markdown_out: Path | None = typer.Option(None, "--markdown", help="Also write the tables as Markdown here."),
    json_out: Json = False,
) -> None:
    """Train every data set with the default settings over several seeds and report image AUROC per material: of
    the score each run chose, and of every candidate score (mean +- std over seeds), with the spread, how often the
    choice was the test-best score, pixel AUROC and PRO where there are masks, and the training time.

    Example: [bold]gedge study quality ../shared/data/wood_vsb256 metal/ cells/ --seeds 3 --markdown results.md[/]
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    config = TrainConfig(steps=parse_steps(steps), max_steps=max_steps, primary=primary)
    request = QualityRequest(tuple(data), out, tuple(range(seeds)), TrainRequest(data[0], out / "unused.pt", config))
    with progress_bar("study") as update:
        result = quality_study(request, lambda what, step, total: update(step, total, info=what))
    if markdown_out is not None:
        command = "gedge study quality " + " ".join(str(d) for d in data) + f" --seeds {seeds}"
        command += "" if primary == DEFAULT_SCORE else f" --primary {primary}"
        write_bytes(markdown_out, markdown(result, command).encode())
    if json_out:
        print_json(result.to_dict())
        return
    console.print(quality_table(result))
    console.print(candidates_table(result))


def quality_table(result: QualityResult) -> Table:
    table = Table(title="Image AUROC per material (the score each run chose; mean +- std over seeds)",
                  title_justify="left")
    for column in ("material", "runs", "primary", "spread", "chosen", "choice = test best", "pixel AUROC", "PRO",
                   "settings", "train s"):
        table.add_column(column, justify="left" if column in ("material", "chosen", "settings") else "right")
    for s in result.summary():
        pre = s.settings.get("preprocess", {})
        table.add_row(s.material, str(s.runs), f"{s.primary[0]:.3f} +- {s.primary[1]:.3f}", f"{s.primary[2]:.3f}",
                      ", ".join(s.chosen), f"{s.choice_is_best} of {s.runs}", fmt_optional(s.pixel_auroc),
                      fmt_optional(s.pro), f"{pre.get('mode')} {pre.get('isize')} px x{pre.get('scale')}",
                      f"{s.train_seconds:.0f}")
    return table


def candidates_table(result: QualityResult) -> Table:
    rows = result.summary()
    names = [n for n in CANDIDATE_SCORES if all(n in s.candidates for s in rows)]
    table = Table(title="Image AUROC of every candidate score (mean +- std over seeds)", title_justify="left")
    table.add_column("material")
    for name in names:
        table.add_column(name.replace("+", "+\n"), justify="right")
    for s in rows:
        table.add_row(s.material, *(f"{s.candidates[n][0]:.3f} +- {s.candidates[n][1]:.3f}" for n in names))
    return table


def fmt_optional(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"

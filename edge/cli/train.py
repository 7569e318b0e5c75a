"""`gedge` commands: the reference: training, scoring and importing checkpoints (evaluation: `gedge.cli.evaluate`)."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.options import BatchSize, Json, Seed
from gedge.cli.render import console, fmt, key_value_table, print_json, progress_bar, warning_line
from gedge.core.errors import ConfigError
from gedge.core.scores import SCORE_NAMES
from gedge.reference.inputs import InputRequest
from gedge.reference.train import TrainCallbacks, TrainConfig, TrainResult
from gedge.reference.training_job import NetworkWidths, TrainRequest, prepare_training, train_summary
from gedge.reference.validation import DEFAULT_SCORE
from gedge.reference.workflows import ImportRequest, import_checkpoint, score_files
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="The reference: training, scoring and importing checkpoints.")


@app.command()
def train(
    data: Path = typer.Argument(..., help="Data folder: MVTec AD layout or class folders (good/, <defect>/)."),
    out: Path = typer.Option(Path("model.pt"), "-o", "--out", help="Checkpoint to write (and OUT.curve.json/.png)."),
    preset: str = typer.Option("gedge", help="Loss weights and optimiser: gedge (20/1/1, lr 2e-4), paper "
                                             "(20/1/1, lr 1e-3) or akcay (1/50/1, lr 2e-4, beta1 0.5)."),
    steps: str = typer.Option("auto", help="Training steps: auto (stop when validation stops improving) or a "
                                           "number."),
    max_steps: int = typer.Option(6000, help="With --steps auto: the most steps."),
    time_limit: float = typer.Option(3600.0, help="The longest the run may take, in seconds (0: no limit)."),
    patience: int = typer.Option(5, help="With --steps auto: validations without improvement before stopping."),
    batch_size: BatchSize = 32,
    val_every: int = typer.Option(150, help="Validate (and keep the best checkpoint) every N steps."),
    isize: int | None = typer.Option(None, help="Network input side, a power of two 16-512 (default: 32)."),
    mode: str | None = typer.Option(None, help="patch: tiles of isize (image score = max over tiles); resize: the "
                                               "whole image resized to isize (default: from the image sizes)."),
    scale: float | None = typer.Option(None, help="Patch mode: scale images by this factor before tiling "
                                                  "(default: from the image sizes)."),
    stride: int = typer.Option(0, help="Patch mode: tile stride (0 = isize / 2)."),
    channels: int | None = typer.Option(None, help="Image channels: 3 (RGB) or 1 (grayscale) (default: from "
                                                   "the images)."),
    nz: int = typer.Option(100, help="Latent size."),
    ngf: int = typer.Option(32, help="Generator width."),
    ndf: int = typer.Option(32, help="Discriminator width."),
    extralayers: int = typer.Option(0, help="Extra 3x3 layers per network."),
    contamination: float = typer.Option(0.0, help="Fraction of abnormal test images mixed into training "
                                                   "(the paper's Table I study); they are excluded from evaluation."),
    val_fraction: float = typer.Option(0.15, help="Fraction of normal training images held out for validation."),
    seed: Seed = 0,
    lr: float | None = typer.Option(None, help="Learning rate (overrides the preset)."),
    anomalies: float = typer.Option(0.5, help="Share of each training batch with a synthetic anomaly that G learns "
                                              "to remove (0: plain GANomaly reconstruction)."),
    primary: str = typer.Option(DEFAULT_SCORE, help="The primary score the decision is made on: a residual score, a "
                                                 "fusion such as d1_local+d3_local, or auto (chosen on the proxy "
                                                 "anomalies; docs/training.md)."),
    device: str = typer.Option("auto", help="torch device: auto (the GPU when there is one), cpu or cuda."),
    resume: bool = typer.Option(False, "--resume", metavar="", help="Continue from OUT.state left by an earlier run."),
    json_out: Json = False,
) -> None:
    """Train GANomaly on the normal images of a data set; keeps the best checkpoint by validation.

    With no options it chooses everything from the data: channels, tiling and scale from the images (printed,
    and kept in the checkpoint), and the number of steps by stopping when validation stops improving.

    Example: [bold]gedge train ../shared/data/wood_vsb256 -o wood.pt --seed 0[/]
    """
    config = TrainConfig(preset=preset, steps=parse_steps(steps), max_steps=max_steps,
                         time_limit_s=time_limit or None, patience=patience, batch_size=batch_size,
                         val_every=val_every, val_fraction=val_fraction, seed=seed, contamination=contamination,
                         device=device, lr=lr, resume=resume, anomalies=anomalies, primary=primary)
    job = prepare_training(TrainRequest(data, out, config, InputRequest(mode, isize, scale, stride, channels),
                                        NetworkWidths(nz, ngf, ndf, extralayers)))
    if not json_out:
        console.print(key_value_table("Input settings", {"settings": job.choice.preprocess,
                                                         **{f"{i + 1}": r for i, r in enumerate(job.choice.reasons)}}))
        for note in job.survey.notes:
            console.print(f"note: {note}")
    cap = config.stop_rule.cap
    with progress_bar("training", total=cap) as update:
        def on_step(step: int, losses: dict[str, float]) -> None:
            if step % 5 == 0 or step == cap:
                update(step, info=" ".join(f"{k} {v:.3f}" for k, v in losses.items()))

        result = job.run(TrainCallbacks(on_step=on_step))
    summary = train_summary(job, result)
    for note in result.notes:
        warning_line(note)
    if json_out:
        print_json(summary)
        return
    console.print(validation_table(result))
    curve = next((p for p in (Path(f"{out}.curve.png"), Path(f"{out}.curve.json")) if p.is_file()), None)
    console.print(f"wrote {out}: best step {result.best_step} (stopped by {result.stop_reason}), primary score "
                  f"{summary['primary']}, threshold {summary['threshold']:.3f} ({summary['threshold_rule']}), "
                  f"{result.seconds:.0f} s; training curve {curve}")


def parse_steps(text: str) -> int | None:
    """``auto`` (None) or a positive number of steps."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--steps must be auto or a number, got {text!r}") from None
    if value < 1:
        raise ConfigError(f"--steps must be positive, got {value}")
    return value


def validation_table(result: TrainResult) -> Table:
    table = Table(title="Validation (held-out normals vs proxy anomalies; the test set is not used)",
                  title_justify="left")
    names = list(result.history[0].proxy_auroc) if result.history else []
    for column in ("step", *(n.replace("+", "+\n") for n in names), "recon L1"):
        table.add_column(column, justify="right")
    for h in result.history:
        marker = " *" if h.step == result.best_step else ""
        table.add_row(f"{h.step}{marker}", *(fmt(h.proxy_auroc[s]) for s in names), fmt(h.recon_l1, 4))
    return table


@app.command()
def score(
    checkpoint: Path = typer.Argument(..., help="gedge checkpoint (.pt)."),
    inputs: list[Path] = typer.Argument(..., help="Image files or folders."),
    batch_size: BatchSize = 64,
    json_out: Json = False,
) -> None:
    """Per-image scores and the accept/reject decision.

    Example: [bold]gedge score model.pt board_017.png boards/ --json[/]
    """
    scored = score_files(checkpoint, inputs, batch_size)
    records = scored.records()
    if json_out:
        for record in records:
            print_json(record)
        return
    table = Table(title=f"Scores (primary {scored.primary}, threshold {scored.threshold:.3f})", title_justify="left")
    for column in ("image", *SCORE_NAMES, "score", "decision"):
        table.add_column(column, justify="left" if column == "image" else "right")
    for r in records:
        decision = "[red]REJECT[/]" if r["anomalous"] else "[green]accept[/]"
        table.add_row(r["path"], *(fmt(r[k], 4) for k in SCORE_NAMES), fmt(r["score"], 2), decision)
    console.print(table)
    console.print(f"{sum(r['anomalous'] for r in records)} of {len(records)} images rejected")


@app.command("import")
def import_command(
    sources: list[Path] = typer.Argument(..., help="netG.pth [netD.pth] (original GANomaly) or an anomalib .ckpt."),
    out: Path = typer.Option(Path("imported.pt"), "-o", "--out", help="gedge checkpoint to write."),
    data: Path | None = typer.Option(None, help="Calibrate the score statistics and threshold on the "
                                                    "normal training images of this data folder."),
    primary: str = typer.Option("d1", help="Primary score when calibrating: d1, d2, d3 or latent."),
    json_out: Json = False,
) -> None:
    """Convert an original GANomaly (netG.pth + netD.pth) or anomalib (.ckpt) checkpoint.

    Example: [bold]gedge import output/ganomaly/wood/train/weights/netG.pth netD.pth -o wood.pt --data wood[/]
    """
    result = import_checkpoint(ImportRequest(tuple(sources), out, data, primary))
    if json_out:
        print_json(result.to_dict())
    else:
        console.print(key_value_table(f"Imported into {out}", result.to_dict()))

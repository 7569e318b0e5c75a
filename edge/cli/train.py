"""`gedge` commands: the reference: training, evaluation, scoring and importing checkpoints."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.commands import run_evaluate, run_import, run_score, run_train

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="The reference: training, evaluation, scoring and importing checkpoints.")


@app.command()
def train(
    data: Path = typer.Argument(..., help="Data folder: MVTec AD layout or class folders (good/, <defect>/)."),
    out: Path = typer.Option(Path("model.pt"), "-o", "--out", help="Checkpoint to write."),
    preset: str = typer.Option("gedge", help="Loss weights and optimiser: gedge (20/1/1, lr 2e-4), paper "
                                             "(20/1/1, lr 1e-3) or akcay (1/50/1, lr 2e-4, beta1 0.5)."),
    steps: int = typer.Option(1500, help="Training steps (batches)."),
    batch_size: int = typer.Option(32, help="Batch size."),
    val_every: int = typer.Option(150, help="Validate (and keep the best checkpoint) every N steps."),
    isize: int = typer.Option(32, help="Network input side (power of two, 16-512)."),
    mode: str = typer.Option("patch", help="patch: tiles of isize (image score = max over tiles); "
                                           "resize: whole image resized to isize."),
    scale: float = typer.Option(0.5, help="Patch mode: scale images by this factor before tiling."),
    stride: int = typer.Option(0, help="Patch mode: tile stride (0 = isize / 2)."),
    channels: int = typer.Option(3, help="Image channels: 3 (RGB) or 1 (grayscale)."),
    nz: int = typer.Option(100, help="Latent size."),
    ngf: int = typer.Option(32, help="Generator width."),
    ndf: int = typer.Option(32, help="Discriminator width."),
    extralayers: int = typer.Option(0, help="Extra 3x3 layers per network."),
    contamination: float = typer.Option(0.0, help="Fraction of abnormal test images mixed into training "
                                                   "(the paper's Table I study); they are excluded from evaluation."),
    val_fraction: float = typer.Option(0.15, help="Fraction of normal training images held out for validation."),
    seed: int = typer.Option(0, help="Seed for splits, initialisation and sampling."),
    lr: float | None = typer.Option(None, help="Learning rate (overrides the preset)."),
    device: str = typer.Option("cpu", help="torch device: cpu or cuda."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT.state left by an earlier run."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary."),
) -> None:
    """Train GANomaly on the normal images of a data set; keeps the best checkpoint by validation.

    Example: [bold]gedge train ../shared/data/wood_vsb256 -o wood.pt --steps 1500 --seed 0[/]
    """
    run_train(locals())


@app.command()
def evaluate(
    checkpoint: Path = typer.Argument(..., help="gedge checkpoint (.pt)."),
    data: Path = typer.Argument(..., help="Data folder with a labelled test set."),
    batch_size: int = typer.Option(64, help="Inference batch size."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable report."),
) -> None:
    """Image AUROC per score and per defect class (the paper's Table II), decisions at the threshold.

    Example: [bold]gedge evaluate model.pt wood --json[/]
    """
    run_evaluate(checkpoint, data, batch_size, json_out)


@app.command()
def score(
    checkpoint: Path = typer.Argument(..., help="gedge checkpoint (.pt)."),
    inputs: list[Path] = typer.Argument(..., help="Image files or folders."),
    batch_size: int = typer.Option(64, help="Inference batch size."),
    json_out: bool = typer.Option(False, "--json", help="JSON lines, one per image."),
) -> None:
    """Per-image scores and the accept/reject decision.

    Example: [bold]gedge score model.pt board_017.png boards/ --json[/]
    """
    run_score(checkpoint, inputs, batch_size, json_out)


@app.command("import")
def import_checkpoint(
    sources: list[Path] = typer.Argument(..., help="netG.pth [netD.pth] (original GANomaly) or an anomalib .ckpt."),
    out: Path = typer.Option(Path("imported.pt"), "-o", "--out", help="gedge checkpoint to write."),
    data: Path | None = typer.Option(None, help="Calibrate the score statistics and threshold on the "
                                                    "normal training images of this data folder."),
    primary: str = typer.Option("d1", help="Primary score when calibrating: d1, d2, d3 or latent."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary."),
) -> None:
    """Convert an original GANomaly (netG.pth + netD.pth) or anomalib (.ckpt) checkpoint.

    Example: [bold]gedge import output/ganomaly/wood/train/weights/netG.pth netD.pth -o wood.pt --data wood[/]
    """
    run_import(sources, out, data, primary, json_out)

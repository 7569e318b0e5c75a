"""The `gedge` command line: parses, calls the library, renders. Bad input: one line, exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from . import __version__
from .errors import GedgeError
from .render import console, error_line

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="GANomaly from training to TensorRT on the inspection line, with accuracy parity at every step.\n\n"
         "Example: [bold]gedge data synth-wood wood && gedge train wood -o model.pt && "
         "gedge evaluate model.pt wood[/]",
)
data_app = typer.Typer(no_args_is_help=True, help="Data sets: the built-in synthetic wood generator.")
app.add_typer(data_app, name="data")


def _version(value: bool) -> None:
    if value:
        console.print(f"gedge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    pass


# --- data -------------------------------------------------------------------------------------------------


@data_app.command("synth-wood")
def synth_wood(
    out: Path = typer.Argument(..., help="Output folder (MVTec AD layout)."),
    paper_size: bool = typer.Option(False, "--paper-size", help="The paper's 3,075 training and 740 test images."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same images."),
    size: int = typer.Option(256, help="Image side in pixels."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary."),
) -> None:
    """Write the procedural wood data set (normal boards and five defect classes with masks).

    Example: [bold]gedge data synth-wood wood --seed 1[/]
    """
    from .commands import run_synth_wood

    run_synth_wood(out, paper_size, seed, size, json_out)


# --- train / evaluate / score ------------------------------------------------------------------------------


@app.command()
def train(
    data: Path = typer.Argument(..., help="Data folder: MVTec AD layout or class folders (good/, <defect>/)."),
    out: Path = typer.Option(Path("model.pt"), "-o", "--out", help="Checkpoint to write."),
    preset: str = typer.Option("paper", help="Loss weights: paper (20/1/1, lr 1e-3) or akcay (1/50/1, lr 2e-4)."),
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
    from .commands import run_train

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
    from .commands import run_evaluate

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
    from .commands import run_score

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
    from .commands import run_import

    run_import(sources, out, data, primary, json_out)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), help="Working folder for the demo's data and artifacts."),
    steps: int = typer.Option(600, help="Training steps."),
    seed: int = typer.Option(0, help="Seed."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary at the end."),
) -> None:
    """Synthetic wood, a short training run and its evaluation table (later stages extend it).

    Example: [bold]gedge demo --out demo-out[/]
    """
    from .demo import run_demo

    run_demo(out, steps, seed, json_out)


def main() -> None:
    try:
        app()
    except GedgeError as exc:
        error_line(str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()

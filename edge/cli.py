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


# --- export / check / parity -------------------------------------------------------------------------------


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="gedge checkpoint (.pt)."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Graph to write (default scorer.onnx, or "
                                                               "scorer.fp16.onnx with --precision fp16)."),
    input_kind: str = typer.Option("uint8-nhwc", "--input", help="Graph input: uint8-nhwc (camera bytes, "
                                                                  "normalised in the graph) or float-nchw "
                                                                  "(float32 already in [-1, 1])."),
    precision: str = typer.Option("fp32", help="fp32, or fp16 (FP16 convolutions, FP32 residuals and outputs, "
                                               "for strongly typed TensorRT)."),
    amap: bool = typer.Option(False, "--amap", help="Also output the anomaly map |x - G(x)| (N, H, W)."),
    opset: int = typer.Option(18, help="ONNX opset (17-21)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary."),
) -> None:
    """Export the fused scorer (G, D on [x; G(x)], residual scores) to one ONNX graph with a sidecar JSON.

    Example: [bold]gedge export model.pt -o scorer.onnx && gedge export model.pt --precision fp16[/]
    """
    from .commands_export import run_export

    run_export(checkpoint, out, input_kind, precision, amap, opset, json_out)


@app.command()
def check(
    graph: Path = typer.Argument(..., help="ONNX graph."),
    tensorrt: bool = typer.Option(True, "--tensorrt/--no-tensorrt", help="Run TensorRT's ONNX parser too."),
    module: str | None = typer.Option(None, help="TensorRT module: tensorrt or tensorrt_rtx (default: the "
                                                    "first installed of the two)."),
    build: bool = typer.Option(False, "--build", help="Also build an engine in memory (TensorRT-RTX builds "
                                                      "ahead of time with no GPU)."),
    compute_capability: list[str] = typer.Option([], "--compute-capability", "-c",
                                                 help="TensorRT-RTX build target, e.g. SM86 (repeatable; "
                                                      "default: its portable set, Ampere and later)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable result."),
) -> None:
    """Check a graph with the ONNX checker and TensorRT's own parser; name the nodes TensorRT rejects.

    Exit code 1 when the graph fails a check.

    Example: [bold]gedge check scorer.fp16.onnx --build -c SM89[/]
    """
    from .commands_export import run_check

    run_check(graph, tensorrt, module, build, compute_capability, json_out)


@app.command()
def parity(
    ref: Path = typer.Option(..., "--ref", help="Reference: the gedge checkpoint (.pt), run on torch."),
    candidate: Path = typer.Option(..., "--candidate", help="Candidate: an ONNX graph from `gedge export`."),
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

    Defaults: FP32 rel L2 <= 1e-5 and identical decisions; FP16 rel L2 <= 1e-2 and >= 99.5 % agreement.
    Exit code 1 when the candidate fails.

    Example: [bold]gedge parity --ref model.pt --candidate scorer.fp16.onnx --data wood --json[/]
    """
    from .commands_export import run_parity

    overrides = {"max_rel_l2": max_rel_l2, "min_spearman": min_spearman, "max_auroc_delta": max_auroc_delta,
                 "min_agreement": min_agreement}
    run_parity(ref, candidate, data, batch_size, threads, precision, overrides, json_out)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), help="Working folder for the demo's data and artifacts."),
    steps: int = typer.Option(600, help="Training steps."),
    seed: int = typer.Option(0, help="Seed."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary at the end."),
) -> None:
    """Synthetic wood, a short training run, its evaluation, FP32 and FP16 export and their parity tables.

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

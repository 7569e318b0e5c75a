"""The `gedge` command line: parses, calls the library, renders. Bad input: one line, exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from gedge import __version__
from gedge.cli.render import console, error_line
from gedge.core.errors import GedgeError

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
    from gedge.cli.commands import run_synth_wood

    run_synth_wood(out, paper_size, seed, size, json_out)


@data_app.command("synth-strips")
def synth_strips(
    out: Path = typer.Argument(..., help="Output folder: strip PNGs and strips.json (the planted defect boxes)."),
    count: int = typer.Option(8, help="Number of strips (every 4th has no defects, for false alarms)."),
    height: int = typer.Option(256, help="Strip height in pixels (one board section is height x height)."),
    length: int = typer.Option(2048, help="Strip length in pixels."),
    max_defects: int = typer.Option(3, help="Defects per strip: 1 to this many."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same strips."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary."),
) -> None:
    """Write synthetic line-scan strips (seamless wood, planted defects) with their ground truth.

    Example: [bold]gedge data synth-strips strips --count 8 --length 2048 && gedge inspect model.pt strips
    --truth strips/strips.json[/]
    """
    from gedge.cli.commands_inspect import run_synth_strips

    run_synth_strips(out, count, height, length, seed, max_defects, json_out)


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
    from gedge.cli.commands import run_train

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
    from gedge.cli.commands import run_evaluate

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
    from gedge.cli.commands import run_score

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
    from gedge.cli.commands import run_import

    run_import(sources, out, data, primary, json_out)


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
    from gedge.cli.commands_export import run_export

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
    from gedge.cli.commands_export import run_check

    run_check(graph, tensorrt, module, build, compute_capability, json_out)


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
    from gedge.cli.commands_export import run_parity

    overrides = {"max_rel_l2": max_rel_l2, "min_spearman": min_spearman, "max_auroc_delta": max_auroc_delta,
                 "min_agreement": min_agreement}
    run_parity(ref, candidate, data, batch_size, threads, precision, overrides, json_out)


@app.command()
def build(
    graph: Path = typer.Argument(..., help="ONNX graph from `gedge export` (FP32 or FP16) or `gedge calibrate` "
                                           "(INT8 Q/DQ)."),
    precision: str = typer.Option(..., help="fp32, fp16 or int8."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Engine to write (default: scorer.<precision>.engine "
                                                               "next to the graph); its manifest is <engine>.json."),
    min_batch: int = typer.Option(1, help="Optimisation profile: smallest batch."),
    opt_batch: int = typer.Option(0, help="Optimisation profile: the batch TensorRT tunes for (0: 8, or the "
                                          "largest batch if smaller)."),
    max_batch: int = typer.Option(32, help="Optimisation profile: largest batch."),
    profiles: int = typer.Option(2, help="Identical optimisation profiles, one per batch in flight at run time "
                                         "(execution contexts in concurrent use each need their own)."),
    workspace_mb: int | None = typer.Option(None, help="Builder workspace limit in MiB (default: TensorRT's)."),
    opt_level: int | None = typer.Option(None, help="Builder optimisation level 0-5 (TensorRT 8.6+; default 3)."),
    timing_cache: Path | None = typer.Option(None, help="Timing cache file, read if present and updated, so "
                                                        "later builds on this GPU are faster (not TensorRT-RTX)."),
    compute_capability: list[str] = typer.Option([], "--compute-capability", "-c",
                                                 help="TensorRT-RTX ahead-of-time target, e.g. SM86 (repeatable; "
                                                      "default: SM80, SM86, SM89, SM120 and later)."),
    calibration_cache: Path | None = typer.Option(None, help="INT8 from a TensorRT calibration cache and the FP32 "
                                                             "graph (TensorRT 8.5-10.x, weakly typed)."),
    typing: str = typer.Option("auto", help="Network typing: auto, strong (types from the graph) or weak "
                                            "(FP16/INT8 builder flags; TensorRT 8.5-10.x)."),
    module: str | None = typer.Option(None, help="TensorRT module: tensorrt or tensorrt_rtx (default: the first "
                                                    "installed of the two)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the build plan and stop."),
    assume: str | None = typer.Option(None, help="With --dry-run: plan for a TensorRT that is not installed: "
                                                    "trt-8.5, trt-8.6, trt-10.3, trt-11 or rtx."),
    ref: Path | None = typer.Option(None, "--ref", help="Parity at build time: the reference checkpoint (.pt)."),
    data: Path | None = typer.Option(None, "--data", help="Parity at build time: the data folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the builder's progress."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable result."),
) -> None:
    """Build a TensorRT engine (classic TensorRT 8.5-11.x or TensorRT-RTX) and its manifest from a graph.

    The plan follows the installed TensorRT: strongly typed networks from the FP16-typed or Q/DQ graph
    (TensorRT 10.x, 11.x, TensorRT-RTX; an FP16 engine from the FP32 graph derives scorer.fp16.onnx next to
    it), or builder flags with residual layers pinned to FP32 (TensorRT 8.5/8.6). With --ref and --data,
    parity is measured and recorded in the manifest. Exit code 1 when measured parity fails.

    Example: [bold]gedge build scorer.onnx --precision fp16 -c SM86 --ref model.pt --data wood[/]
    Example: [bold]gedge build scorer.int8.qdq.onnx --precision int8 --dry-run --assume trt-8.5[/]
    """
    from gedge.cli.commands_build import run_build

    run_build(graph, precision, out, min_batch, opt_batch, max_batch, workspace_mb, opt_level, timing_cache,
              compute_capability, calibration_cache, typing, module, dry_run, assume, ref, data, progress, json_out,
              profiles)


@app.command()
def inspect(
    model: Path = typer.Argument(..., help="Model: gedge checkpoint (.pt), ONNX graph (.onnx), OpenVINO IR (.xml) "
                                           "or TensorRT engine (.engine); preprocessing and threshold come from "
                                           "it."),
    inputs: list[Path] = typer.Argument(..., help="Image files or folders (boards, line-scan strips)."),
    backend: str | None = typer.Option(None, help="torch, torch-cuda, onnxruntime, openvino or tensorrt "
                                                     "(default: the model file's own; for an .onnx graph the "
                                                     "fastest installed CPU backend, printed)."),
    device: str = typer.Option("cpu", help="torch device for a .pt model: cpu or cuda."),
    overlap: float = typer.Option(0.5, help="Tile overlap, 0 to 0.9 (0.5: stride of half a tile)."),
    batch_size: int = typer.Option(64, help="Tiles per batch."),
    threshold: float | None = typer.Option(None, help="Decision threshold on the normalised score "
                                                         "(default: the model's)."),
    overlays: Path | None = typer.Option(None, help="Write an overlay PNG per image (heat map and defect boxes) "
                                                       "to this folder."),
    truth: Path | None = typer.Option(None, help="Ground truth (strips.json from `gedge data synth-strips`): "
                                                    "recall and false alarms per strip."),
    all_tiles: bool = typer.Option(False, "--all-tiles", help="JSON: every tile's score, not only those over "
                                                              "the threshold."),
    threads: int = typer.Option(0, help="torch / ONNX Runtime threads (0: their default)."),
    workers: int | None = typer.Option(None, help="Decoding threads (default: up to 4)."),
    slots: int = typer.Option(2, help="Batches in flight."),
    performance: str = typer.Option("latency", help="OpenVINO performance hint: latency (one stream, all "
                                                    "threads) or throughput (a batch split across streams)."),
    streams: int = typer.Option(0, help="OpenVINO streams with --performance throughput (0: OpenVINO's "
                                        "choice)."),
    convert: bool = typer.Option(False, "--convert", help="Convert images to the model's channel count."),
    json_out: bool = typer.Option(False, "--json", help="JSON lines: one per image, then the summary."),
) -> None:
    """Inspect images, folders or line-scan strips: tiles, decisions per tile and image, defect boxes.

    Corrupt or unreadable images are reported and skipped; the run goes on (exit code 0).

    Example: [bold]gedge inspect scorer.onnx strips/ --overlap 0.5 --overlays overlays --json[/]
    """
    from gedge.cli.commands_inspect import check_backend, run_inspect

    run_inspect(model, inputs, check_backend(backend), device, overlap, batch_size, threshold, overlays, truth,
                all_tiles, threads, workers, slots, convert, json_out, performance, streams)


@app.command()
def bench(
    models: list[Path] = typer.Argument(..., help="Models: .pt (torch eager; torch CUDA where there is a GPU), "
                                                  ".onnx (onnxruntime or OpenVINO, FP32/FP16/INT8), .xml "
                                                  "(OpenVINO IR), .engine (TensorRT)."),
    backend: list[str] = typer.Option([], "--backend", help="Only these backends: torch, torch-cuda, "
                                                            "onnxruntime, openvino, tensorrt (repeatable; "
                                                            "default: an .onnx graph runs on the fastest "
                                                            "installed CPU backend)."),
    batch: list[int] = typer.Option([], "--batch", help="Batch size (repeatable; default 1 and 16)."),
    warmup: int = typer.Option(3, help="Untimed calls before timing."),
    iters: int | None = typer.Option(None, help="Timed calls per row (default 10)."),
    seconds: float | None = typer.Option(None, help="Time each row for this long instead of --iters."),
    threads: int = typer.Option(0, help="torch / ONNX Runtime threads (0: their default)."),
    pipeline: bool = typer.Option(True, "--pipeline/--no-pipeline", help="Also measure batch-by-batch against "
                                                                         "the pipelined loop from PNG frames."),
    rounds: int = typer.Option(6, help="Pipeline comparison: alternating pairs of runs (4-16 batches, up to "
                                           "1024 and at least 32 inputs each)."),
    cuda_graphs: str = typer.Option("both", help="TensorRT rows: both, on or off."),
    performance: str = typer.Option("latency", help="OpenVINO performance hint: latency (one stream, all "
                                                    "threads) or throughput (a batch split across streams)."),
    streams: int = typer.Option(0, help="OpenVINO streams with --performance throughput (0: OpenVINO's "
                                        "choice)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable report."),
) -> None:
    """Latency p50/p90/p99, throughput and peak memory of every backend, with ratios against torch eager.

    TensorRT rows add the H2D, compute and D2H times and run with and without CUDA graphs. The machine's CPU,
    GPU and versions are in the report.

    Example: [bold]gedge bench model.pt scorer.onnx scorer.int8.cpu.onnx --batch 1 --batch 16 --iters 50[/]
    """
    from gedge.cli.commands_bench import run_bench

    run_bench(models, backend, batch, warmup, iters, seconds, threads, pipeline, rounds, cuda_graphs, json_out,
              performance, streams)


@app.command()
def calibrate(
    checkpoint: Path = typer.Argument(..., help="gedge checkpoint (.pt): the reference and the source of the "
                                                "preprocessing and validation images."),
    onnx: Path = typer.Option(Path("scorer.onnx"), "--onnx", help="The FP32 graph from `gedge export`."),
    data: Path | None = typer.Option(None, "--data", help="Normal images to calibrate on: a data set (its normal "
                                                          "training images) or a folder (default: the "
                                                          "checkpoint's training images). Never test images."),
    target: str = typer.Option("all", help="tensorrt (scorer.int8.qdq.onnx + calibration cache), cpu "
                                           "(scorer.int8.cpu.onnx), all (both), or openvino (NNCF INT8 IR "
                                           "scorer.int8.ov.xml; needs gedge\\[openvino])."),
    method: str = typer.Option("minmax", help="Activation ranges: minmax, entropy (TensorRT's KL method) or "
                                              "percentile."),
    percentile: float = typer.Option(99.99, help="Percentile of |x| for --method percentile."),
    patches: int = typer.Option(512, help="Calibration patches (a warning under 300)."),
    seed: int = typer.Option(0, help="Seed for drawing the patches."),
    strict: bool = typer.Option(False, "--strict", help="Do not write a graph that fails the accuracy gate."),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Where to write (default: next to --onnx)."),
    trt_version: str = typer.Option("8.6.1", help="TensorRT version named in the calibration cache header "
                                                  "(8.5 to 10.x)."),
    quantize_image_convs: bool = typer.Option(False, "--quantize-image-convs",
                                              help="Also quantize the convolutions that read an image (first "
                                                   "layer of each network; float by default)."),
    max_auroc_drop: float | None = typer.Option(None, help="Gate: largest primary-score AUROC drop (default 0.01)."),
    min_agreement: float | None = typer.Option(None, help="Gate: smallest decision agreement (default 0.98)."),
    threads: int = typer.Option(0, help="ONNX Runtime threads (0: its default)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary."),
) -> None:
    """INT8 graphs for TensorRT (Q/DQ) and for the CPU, a TensorRT calibration cache, and an accuracy gate.

    Draws calibration patches from normal images, chooses activation ranges on the FP32 graph, writes the
    Q/DQ graphs and the cache, then compares each INT8 graph with the torch reference on the checkpoint's
    held-out validation images plus proxy anomalies (AUROC drop of the primary score <= 0.01, decision
    agreement >= 98 %). Exit code 1 when a graph fails the gate (it is still written unless --strict).

    Example: [bold]gedge export model.pt -o scorer.onnx && gedge calibrate model.pt --onnx scorer.onnx[/]
    Example: [bold]gedge calibrate model.pt --onnx scorer.onnx --target openvino[/]
    """
    from gedge.cli.commands_calibrate import run_calibrate

    run_calibrate(locals())


@app.command("bench-cpu")
def bench_cpu(
    checkpoint: Path | None = typer.Argument(None, help="gedge checkpoint (default: ModelConfig(isize) with "
                                                        "random weights; speed does not depend on them)."),
    isize: int = typer.Option(64, help="Input side of the random model."),
    batch: list[int] = typer.Option([], "--batch", "-b", help="Batch size (repeatable; default 1 and 16)."),
    threads: int = typer.Option(2, help="Threads for torch and ONNX Runtime."),
    rounds: int = typer.Option(5, help="Interleaved rounds (each times every backend at every batch size)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable report."),
) -> None:
    """CPU speed: torch eager against ONNX Runtime FP32 and both INT8 graphs, images/s and median latency.

    torch runs with OMP_WAIT_POLICY=PASSIVE unless set otherwise; measure on a quiet machine.

    Example: [bold]gedge bench-cpu --isize 64 -b 1 -b 16 --threads 2[/]
    """
    from gedge.cli.commands_calibrate import run_bench_cpu

    run_bench_cpu(checkpoint, isize, batch, threads, rounds, json_out)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), help="Working folder for the demo's data and artifacts."),
    steps: int = typer.Option(600, help="Training steps."),
    seed: int = typer.Option(0, help="Seed."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary at the end."),
) -> None:
    """Synthetic wood, a short training run, its evaluation, FP32/FP16 export, INT8 calibration, parity tables.

    Example: [bold]gedge demo --out demo-out[/]
    """
    from gedge.cli.demo import run_demo

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

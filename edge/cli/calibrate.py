"""`gedge calibrate`: INT8 artifacts with an accuracy gate.

The command builds :class:`~gedge.calibrate.pipeline.CalibrateOptions`, lets the library check its inputs (bad
input fails as one line before any progress is drawn), runs :func:`~gedge.calibrate.pipeline.calibrate` and
renders the result: a summary table and one gate table per artifact, or the result's ``to_dict()`` with
``--json``. Exit code 1 when an artifact fails the gate.
"""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.calibrate.pipeline import CalibrateOptions, CalibrateResult, FlavourResult, calibrate, open_inputs
from gedge.cli.options import Json, Seed, Threads
from gedge.cli.render import console, key_value_table, print_json, progress_bar, warning_line
from gedge.cli.render_calibrate import fallback_line, sensitivity_table
from gedge.cli.render_parity import parity_table
from gedge.core.errors import CheckFailed

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="INT8 calibration with an accuracy gate.")

FLAVOUR_TITLES = {"tensorrt": "TensorRT flavour (int8 Q/DQ)", "cpu": "CPU flavour (uint8 activations, Conv only)",
                  "openvino": "OpenVINO NNCF IR"}


def artifact_line(flavour: FlavourResult) -> str:
    """One artifact in a line: where, whether written, what was quantized, and its checks."""
    checks = flavour.checks
    state = "written" if flavour.written else "NOT written: --strict"
    line = f"{flavour.path} ({state}): " + (f"{checks.nodes} nodes, " if checks.nodes is not None else "")
    line += f"quantized {checks.quantized}"
    if checks.tensorrt_parse:
        line += f"; {checks.tensorrt_parse}"
    if checks.float_residuals is not None:
        line += "; residuals in float (checked on the IR): " + (
            "yes" if not checks.float_residuals else "NO: " + ", ".join(checks.float_residuals))
    return line


def render_calibration(result: CalibrateResult, checkpoint: Path) -> None:
    """The summary table, one gate table per artifact, and the notes."""
    cal = result.calibration
    ranges = result.ranges
    rows = {"calibration set": f"{result.set_path} ({len(cal)} patches {cal.shape[1]}x{cal.shape[2]}, sha256 "
                               f"{cal.sha256[:16]}...)",
            "sources": f"{len(cal.sources)} normal images: {cal.origin}",
            "left out": ", ".join(f"{n} {why}" for why, n in cal.excluded.items()) or "-",
            "ranges": f"{ranges.method}, {len(ranges.tensors)} tensors" if ranges else "- (NNCF chooses its own)",
            "cache": str(result.cache_path) if result.cache_path else "-",
            "gate data": result.gate_description}
    rows.update({f.target: artifact_line(f) for f in result.flavours})
    rows.update({f"{f.target} INT8 MACs": f"{f.precision.int8_mac_share:.1%}" + (
        f" (kept in float: {', '.join(f.precision.kept_float)})" if f.precision.kept_float else "")
        for f in result.flavours})
    console.print(key_value_table(f"INT8 calibration of {checkpoint}", rows))
    for f in result.flavours:
        console.print(parity_table(f.report, title=f"INT8 gate, {FLAVOUR_TITLES[f.target]}: {f.path.name}"))
        if f.precision.sensitivity:
            console.print(sensitivity_table(f))
        if f.precision.fallback:
            console.print(f"fallback ({f.target}): {fallback_line(f.precision.fallback)}", markup=False)
    for note in result.notes:
        console.print(f"note: {note}")


@app.command("calibrate")
def calibrate_command(
    checkpoint: Path = typer.Argument(..., help="gedge checkpoint (.pt): the reference and the source of the "
                                                "preprocessing and validation images."),
    onnx: Path = typer.Option(Path("scorer.onnx"), "--onnx", help="The FP32 graph from `gedge export`."),
    data: Path | None = typer.Option(None, "--data", help="Normal images to calibrate on: a data set (its normal "
                                                          "training images) or a folder (default: the "
                                                          "checkpoint's training images). Never test images."),
    target: str = typer.Option("all", help="tensorrt (scorer.int8.qdq.onnx + calibration cache), cpu "
                                           "(scorer.int8.cpu.onnx), onnx (both), openvino (NNCF INT8 IR "
                                           "scorer.int8.ov.xml; needs gedge\\[openvino]), all (every one whose "
                                           "tools are installed) or all+openvino."),
    method: str = typer.Option("minmax", help="Activation ranges: minmax, entropy (TensorRT's KL method) or "
                                              "percentile."),
    percentile: float = typer.Option(99.99, help="Percentile of |x| for --method percentile."),
    patches: int = typer.Option(512, help="Calibration patches (a warning under 300)."),
    seed: Seed = 0,
    strict: bool = typer.Option(False, "--strict", metavar="",
                                help="Do not write an artifact that fails the accuracy gate."),
    fallback: bool = typer.Option(True, "--fallback/--no-fallback",
                                  help="When an artifact fails the gate, keep its most harmful layers in float, one "
                                       "at a time, until it passes (at least half the MACs stay INT8)."),
    report: bool = typer.Option(False, "--report", metavar="", help="Measure every quantized layer on the gate "
                                "images (alone in INT8, alone in float); print them by harm (--json, sidecar too)."),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Where to write (default: next to --onnx)."),
    trt_version: str = typer.Option("8.6.1", help="TensorRT version named in the calibration cache header "
                                                  "(8.5 to 10.x)."),
    quantize_image_convs: bool = typer.Option(False, "--quantize-image-convs", metavar="",
                                              help="Also quantize the convolutions that read an image (first "
                                                   "layer of each network; float by default)."),
    max_auroc_drop: float | None = typer.Option(None, help="Gate: largest primary-score AUROC drop (default 0.01)."),
    min_agreement: float | None = typer.Option(None, help="Gate: smallest decision agreement on the proxy anomalies "
                                                             "(default 0.98)."),
    max_false_rejects: float | None = typer.Option(None, help="Gate: largest share of the held-out normals INT8 "
                                                                 "rejects where the reference accepts them "
                                                                 "(default 0.02: none of fewer than 50)."),
    max_score_shift: float | None = typer.Option(None, help="Gate: largest primary-score shift near the threshold, "
                                                               "share of the decision margin (default 0.5)."),
    max_score_bias: float | None = typer.Option(None, help="Gate: largest mean shift there (default 0.1)."),
    threads: Threads = 0,
    json_out: Json = False,
) -> None:
    """INT8 graphs for TensorRT (Q/DQ) and for the CPU, a TensorRT calibration cache, and an accuracy gate.

    Draws calibration patches from normal images, chooses activation ranges on the FP32 graph, writes the
    Q/DQ graphs and the cache, then compares each INT8 graph with the torch reference on the checkpoint's
    held-out validation images plus proxy anomalies: rel L2 and Spearman floors of every score, AUROC drop of
    the primary score <= 0.01, the primary score's shift near the threshold (down or up) within its share of the
    decision margin, no false rejects added on the held-out normals (at most 2 %), agreement >= 98 % on the
    proxies; at least 5 held-out normals. An artifact that fails is given the accuracy-aware fallback
    (--no-fallback: off): its most harmful layers stay in float, one at a time, until the gate passes with at
    least half of its INT8 multiply-adds left; --report measures every layer first and prints them by harm.
    Exit code 1 when an artifact still fails the gate or TensorRT's parser rejects it; it is still written, with
    the verdict in its sidecar, unless --strict, and every later command refuses it unless --force.

    Example: [bold]gedge export model.pt -o scorer.onnx && gedge calibrate model.pt --onnx scorer.onnx[/]
    Example: [bold]gedge calibrate model.pt --onnx scorer.onnx --target openvino[/]
    Example: [bold]gedge calibrate model.pt --onnx scorer.onnx --report --json[/]
    """
    options = CalibrateOptions(
        checkpoint=checkpoint, graph=onnx, data=data, target=target, method=method, percentile=percentile,
        n_patches=patches, seed=seed, strict=strict, fallback=fallback, report=report, out_dir=out_dir,
        trt_version=trt_version, quantize_image_convs=quantize_image_convs, max_auroc_drop=max_auroc_drop,
        min_agreement=min_agreement, max_false_rejects=max_false_rejects, max_score_shift=max_score_shift,
        max_score_bias=max_score_bias, threads=threads)
    inputs = open_inputs(options)  # bad input fails here, as one line, before any progress is drawn
    with progress_bar("calibrate") as update:
        result = calibrate(options, lambda stage, done, total: update(done, total, info=stage), inputs)
    for warning in result.warnings:
        warning_line(warning)
    if json_out:
        print_json(result.to_dict())
    else:
        render_calibration(result, checkpoint)
    failed = [f for f in result.flavours if not f.passed]
    for f in failed:
        what = ("written for diagnosis; later commands refuse it unless --force" if f.written
                else "not written (--strict)")
        warning_line(f"the {f.target} INT8 artifact FAILED ({'; '.join(f.failures)}); {what}")
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(result.flavours)} INT8 artifacts failed (see above)", checkpoint)

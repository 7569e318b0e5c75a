"""`gedge demo`: the whole pipeline on the built-in synthetic wood, as a sequence of stages.

Each stage takes the shared :class:`DemoContext`, does one job and prints its table; later stages
(export, calibration, engines, benchmarks) append themselves to :data:`STAGES`. A verdict that fails on the way
(parity, an INT8 gate) is recorded in the summary's ``failures``, the artifacts it refuses are left out of the
later stages (no engine is built from a graph whose gate failed), and the demo ends with exit code 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import typer
from gedge.bench.runner import BenchConfig, run_benchmarks
from gedge.calibrate.pipeline import CalibrateOptions, calibrate
from gedge.cli.calibrate import FLAVOUR_TITLES
from gedge.cli.options import Json, Seed
from gedge.cli.render import console, evaluation_table, print_json, progress_bar
from gedge.cli.render_bench import bench_table
from gedge.cli.render_parity import parity_table
from gedge.compare.parity import ParityRequest, parity_check
from gedge.core import artifacts
from gedge.core.artifacts import Artifact
from gedge.core.errors import CheckFailed
from gedge.core.tensorrt import import_tensorrt
from gedge.core.timing import Stopwatch
from gedge.data.synth import SynthConfig, write_synthetic
from gedge.export.build_plan import BuildRequest
from gedge.export.check import check_graph
from gedge.export.engine_build import build_engine
from gedge.export.fp16 import write_fp16_graph
from gedge.export.onnx_export import ExportOptions, export_checkpoint
from gedge.reference.inputs import InputRequest
from gedge.reference.train import TrainCallbacks, TrainConfig
from gedge.reference.training_job import TrainRequest, prepare_training
from gedge.report.evaluation import EvaluationRequest, prepare_evaluation
from gedge.report.html import write_report
from gedge.runtime.registry import installed
from rich.rule import Rule
from rich.table import Table


@dataclass
class DemoContext:
    out: Path
    steps: int
    seed: int
    data: Path = Path()
    checkpoint_path: Path = Path()
    checkpoint: Artifact | None = None  # the trained checkpoint, read once after training
    graphs: dict[str, Artifact] = field(default_factory=dict)  # precision -> exported ONNX graph, as written
    report: Path | None = None  # the evaluation report (HTML)
    summary: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # failed verdicts, one line each (the demo exits 1)


DEMO_SCALE = 0.5
# The demo's generated defects are painted like the validation proxies, so the proxies are evidence for the score
# here (docs/training.md); on real materials the default d3_local measured better.
DEMO_PRIMARY = "auto"


def stage_data(ctx: DemoContext) -> None:
    ctx.data = ctx.out / "synthetic-wood"
    config = SynthConfig(seed=ctx.seed)
    with progress_bar("synthetic wood") as update:
        summary = write_synthetic(ctx.data, config, progress=update)
    console.print(f"synthetic wood in {ctx.data}: {summary.counts}")
    ctx.summary["data"] = {"path": str(ctx.data), "counts": summary.counts}


def stage_train(ctx: DemoContext) -> None:
    ctx.checkpoint_path = ctx.out / "model.pt"
    config = TrainConfig(steps=ctx.steps, val_every=max(1, ctx.steps // 4), seed=ctx.seed, primary=DEMO_PRIMARY)
    # inputs chosen from the images, but at half scale: a quarter of the tiles keeps the whole demo within minutes
    job = prepare_training(TrainRequest(ctx.data, ctx.checkpoint_path, config, InputRequest(scale=DEMO_SCALE)))
    with progress_bar("training", total=config.steps) as update:
        result = job.run(TrainCallbacks(on_step=lambda step, losses: update(step, info=f"g {losses['g']:.3f}")))
    cal = result.checkpoint.decision
    console.print(f"checkpoint {ctx.checkpoint_path}: best step {result.best_step}, primary {cal.primary}, "
                  f"{result.seconds:.0f} s")
    ctx.checkpoint = artifacts.open(ctx.checkpoint_path, ("checkpoint",))
    ctx.summary["train"] = {"checkpoint": str(ctx.checkpoint_path), "best_step": result.best_step,
                            "primary": cal.primary, "seconds": round(result.seconds, 1)}


def stage_evaluate(ctx: DemoContext) -> None:
    """The evaluation tables, and the report a person looks at (`gedge evaluate --report`)."""
    job = prepare_evaluation(EvaluationRequest(ctx.checkpoint, ctx.data))
    with progress_bar("evaluating") as update:
        evaluation = job.run(update)
    report = evaluation.report
    console.print(evaluation_table(report))
    with console.status("writing the report"):
        written = write_report(evaluation, ctx.out / "report.html")
    ctx.report = written.path
    console.print(f"report {written.path}: {written.bytes / 1e6:.2f} MB, {written.missed} missed defects and "
                  f"{written.rejected} rejected normals at the threshold")
    ctx.summary["evaluate"] = {"auroc": report.rows[0].auroc, "best_score": report.best_score,
                               "report": str(written.path)}


def stage_export(ctx: DemoContext) -> None:
    ctx.summary["export"] = {}
    fp32 = export_checkpoint(ctx.checkpoint, ctx.out / "scorer.onnx", ExportOptions()).graph
    ctx.graphs = {"fp32": fp32, "fp16": write_fp16_graph(fp32, ctx.out / "scorer.fp16.onnx")}
    for precision, graph in ctx.graphs.items():
        path, nodes = graph.path, len(graph.onnx_model.graph.node)
        check = check_graph(graph, build=True)
        trt = check.tensorrt
        verdict = (f"{trt.module} {trt.version}: parsed, engine {trt.engine_bytes / 1e6:.2f} MB for "
                   f"{', '.join(trt.compute_capabilities) or 'its default targets'}" if trt and trt.parsed and trt.built
                   else f"TensorRT: {check.tensorrt_skipped or [i.line() for i in trt.issues] or trt.build_error}")
        console.print(f"{precision.upper()} graph {path}: {nodes} nodes, onnx.checker "
                      f"{'ok' if check.onnx_ok else 'FAILED'}; {verdict}")
        ctx.summary["export"][precision] = {"graph": str(path), "nodes": nodes, "check_ok": check.ok,
                                            "engine_bytes": trt.engine_bytes if trt else None}


def stage_parity(ctx: DemoContext) -> None:
    ctx.summary["parity"] = {}
    for precision, graph in ctx.graphs.items():
        with progress_bar(f"parity {precision}") as update:
            report = parity_check(ParityRequest(ctx.checkpoint, graph, ctx.data), update)
        console.print(parity_table(report))
        for note in report.notes:
            console.print(f"note: {note}")
        if not report.passed:
            ctx.failures.append(f"{precision.upper()} parity of {graph.name}: " + "; ".join(report.failures))
        ctx.summary["parity"][precision] = {
            "passed": report.passed, "agreement": report.decisions.agreement,
            "rel_l2": {row.name: row.rel_l2 for row in report.outputs}, "candidate": report.candidate}


def refused_here(artifact: Artifact) -> bool:
    """Whether a recorded verdict of the artifact failed (every command refuses it without --force)."""
    return artifact.verification is not None and bool(artifact.verification.refusals)


def stage_engines(ctx: DemoContext) -> None:
    """TensorRT engines and manifests for every graph there is, where a TensorRT is installed."""
    trt, reason = import_tensorrt()
    if trt is None:
        console.print(f"[yellow]no TensorRT is installed here[/] ({reason}): no engines built. Install "
                      "tensorrt-rtx-cu13 (builds ahead of time, no GPU needed) or run on a Jetson with JetPack; "
                      "`gedge build scorer.onnx --precision fp16 --dry-run --assume trt-10.3` prints the plan.")
        ctx.summary["engines"] = {"skipped": reason}
        return
    qdq = ctx.out / "scorer.int8.qdq.onnx"
    int8 = ctx.graphs.get("int8") or (artifacts.open(qdq) if qdq.is_file() else None)
    graphs = {"fp32": ctx.graphs.get("fp32"), "fp16": ctx.graphs.get("fp16"), "int8": int8}
    table = Table(title=f"TensorRT engines ({trt.name} {trt.version})", title_justify="left")
    for column in ("precision", "graph", "engine", "MB", "build s", "network", "target"):
        table.add_column(column, justify="right" if column in ("MB", "build s") else "left")
    ctx.summary["engines"] = {}
    for precision, graph in graphs.items():
        if graph is None:
            why = "no Q/DQ graph (scorer.int8.qdq.onnx; `gedge calibrate`)" if precision == "int8" else "no graph"
            table.add_row(precision, "-", f"not built: {why}", "", "", "", "")
            continue
        if refused_here(graph):  # `gedge build` refuses it too (without --force)
            table.add_row(precision, graph.name, f"not built: {graph.verification.refusals[0]}", "", "", "", "")
            continue
        # Graph parity was measured by the parity stage; `gedge build --ref --data` records it in the manifest.
        result = build_engine(graph, BuildRequest(precision, progress=False))
        table.add_row(precision, Path(result.plan.graph).name, result.engine.name, f"{result.engine_bytes / 1e6:.2f}",
                      f"{result.build_seconds:.1f}", result.plan.network, result.manifest.target.description)
        source = result.manifest.source_graph
        ctx.summary["engines"][precision] = {"engine": str(result.engine), "bytes": result.engine_bytes,
                                             "weight_bytes": source.weight_bytes if source else None,
                                             "manifest": str(result.manifest_path)}
    console.print(table)
    built = ctx.summary["engines"]
    if "fp32" in built and "int8" in built:
        ratio = built["int8"]["bytes"] / built["fp32"]["bytes"]
        weights = built["int8"]["weight_bytes"] / built["fp32"]["weight_bytes"]
        console.print(f"INT8 engine: {ratio:.0%} of the FP32 engine's size (its weights: {weights:.0%})"
                      + ("; TensorRT-RTX engines also carry their kernels' CUDA source, which a model this small "
                         "does not outweigh" if trt.is_rtx and ratio > 0.4 else ""))
    console.print("each engine has its manifest (<engine>.json); engine parity is measured where the engine runs "
                  "(a GPU with TensorRT): `gedge build ... --ref model.pt --data DIR` records it in the manifest")


def stage_bench(ctx: DemoContext) -> None:
    """Every backend this machine has, side by side: torch eager (and CUDA), onnxruntime FP32 and INT8, TensorRT."""
    models: list[Artifact] = [ctx.checkpoint]
    left_out = []
    for name in ("scorer.onnx", "scorer.int8.cpu.onnx", "scorer.fp16.onnx", "scorer.int8.qdq.onnx"):
        path = ctx.out / name
        if not path.is_file():
            continue
        if name in ("scorer.fp16.onnx", "scorer.int8.qdq.onnx"):  # TensorRT's graphs: emulated/slow on the CPU
            left_out.append(name)
            continue
        models.append(ctx.graphs["fp32"] if name == "scorer.onnx" else artifacts.open(path))
    models.extend(artifacts.open(ir) for ir in sorted(ctx.out.glob("scorer*.xml")))  # where calibrate wrote one
    refused = [m for m in models[1:] if refused_here(m)]  # the checkpoint records no verdicts
    models = [m for m in models if m not in refused]
    for entry in (ctx.summary.get("engines") or {}).values():
        if isinstance(entry, dict) and entry.get("engine"):
            models.append(artifacts.open(entry["engine"]))
    backends = ["torch", "torch-cuda", "onnxruntime", *(["openvino"] if installed("openvino") else []), "tensorrt"]
    config = BenchConfig(batches=[16], warmup=2, iters=5, backends=backends, pipeline=True, pipeline_batches=16,
                         pipeline_rounds=8)
    with console.status("benchmarking every backend") as status:
        report = run_benchmarks(models, config, progress=lambda what: status.update(f"benchmarking {what}"))
    if left_out:
        report.notes.append(f"not benchmarked on the CPU: {', '.join(left_out)} (TensorRT's graphs; their engines "
                            "are benchmarked where a GPU runs them)")
    if refused:
        report.notes.append(f"not benchmarked: {', '.join(m.name for m in refused)} (a recorded verdict failed)")
    console.print(bench_table(report, title="Every backend on this machine (batch 16)"))
    ctx.summary["bench"] = {r.label: {"images_per_second": round(r.images_per_second, 1),
                                      "p50_ms": round(r.latency_ms["p50"], 2), "vs_torch_eager": r.vs_torch_eager}
                            for r in report.results}


def split_parity_summary(report) -> dict:
    """An INT8 graph's parity on the test split, for the demo's JSON summary."""
    return {"passed": report.passed, "agreement": report.decisions.agreement,
            "auroc_reference": report.output("score").auroc_reference,
            "auroc_int8": report.output("score").auroc_candidate}


def stage_calibrate(ctx: DemoContext) -> None:
    """INT8: calibration on the demo's normal training images, both flavours (and the OpenVINO IR where OpenVINO
    is installed), the gate's tables, and parity of every INT8 artifact against the reference on the synthetic
    test split."""
    options = CalibrateOptions(checkpoint=ctx.checkpoint_path, graph=Path(ctx.graphs["fp32"].path), seed=ctx.seed,
                               target="all")
    with progress_bar("calibrate") as update:
        result = calibrate(options, lambda stage, done, total: update(done, total, info=stage))
    cal = result.calibration
    console.print(f"calibration set {result.set_path}: {len(cal)} patches from {len(cal.sources)} normal images, "
                  f"sha256 {cal.sha256[:16]}; {result.ranges.method} ranges of {len(result.ranges.tensors)} tensors; "
                  f"TensorRT cache {result.cache_path}")
    for f in result.flavours:
        console.print(parity_table(f.report, title=f"INT8 gate, {FLAVOUR_TITLES[f.target]}: {f.path.name}"))
        if f.checks.tensorrt_parse:
            console.print(f"{f.path.name}: {f.checks.tensorrt_parse}")
        if not f.passed:
            ctx.failures.append(f"INT8 {f.target} artifact {f.path.name} failed: " + "; ".join(f.failures))
    for note in result.notes:
        console.print(f"note: {note}")
    ctx.summary["calibrate"] = result.to_dict()
    ctx.summary["calibrate"]["test_parity"] = {}
    for f in result.flavours:
        if not f.passed:  # refused by every later command; kept on disk for diagnosis only
            continue
        written = artifacts.open(f.path)  # read once: the test-split parity and the engine stage take it
        if f.target == "tensorrt":
            ctx.graphs["int8"] = written  # the graph TensorRT engines are built from
        with progress_bar(f"parity int8 {f.target}") as update:
            report = parity_check(ParityRequest(ctx.checkpoint, written, ctx.data), update)
        console.print(parity_table(report, title=f"Parity INT8 {FLAVOUR_TITLES[f.target]} on the test split"))
        ctx.summary["calibrate"]["test_parity"][f.target] = split_parity_summary(report)


STAGES: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("data", stage_data),
    ("train", stage_train),
    ("evaluate", stage_evaluate),
    ("export", stage_export),
    ("parity", stage_parity),
    ("calibrate", stage_calibrate),  # before engines: they build the INT8 engine from its Q/DQ graph
    ("engines", stage_engines),
    ("bench", stage_bench),  # last: every backend available here
]


def run_demo(out: Path, steps: int, seed: int, json_out: bool) -> dict:
    ctx = DemoContext(out=Path(out), steps=steps, seed=seed)
    ctx.out.mkdir(parents=True, exist_ok=True)
    watch = Stopwatch()
    for name, stage in STAGES:
        console.print(Rule(f"[bold]{name}"))
        stage(ctx)
    ctx.summary["seconds"] = watch.seconds(1)
    ctx.summary["failures"] = ctx.failures
    console.print(f"demo finished in {ctx.summary['seconds']:.0f} s; artifacts in {ctx.out}")
    if ctx.report is not None:
        console.print(f"evaluation report: {ctx.report} (open it in a browser)")
    if json_out:
        print_json(ctx.summary)
    if ctx.failures:
        for failure in ctx.failures:
            console.print(f"[red]fail:[/] {failure}")
        raise CheckFailed(f"{len(ctx.failures)} verdicts failed in the demo (see above)", ctx.out)
    return ctx.summary


app = typer.Typer(add_completion=False, rich_markup_mode="rich", help="The whole pipeline on synthetic wood.")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), help="Working folder for the demo's data and artifacts."),
    steps: int = typer.Option(600, help="Training steps."),
    seed: Seed = 0,
    json_out: Json = False,
) -> None:
    """Synthetic wood, a short training run, its evaluation, FP32/FP16 export, INT8 calibration, parity tables.

    Example: [bold]gedge demo --out demo-out[/]
    """
    run_demo(out, steps, seed, json_out)

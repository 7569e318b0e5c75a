"""`gedge demo`: the whole pipeline on the built-in synthetic wood, as a sequence of stages.

Each stage takes the shared :class:`DemoContext`, does one job and prints its table; later stages
(export, calibration, engines, benchmarks) append themselves to :data:`STAGES`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.rule import Rule

from .render import console, evaluation_table, print_json, progress_bar


@dataclass
class DemoContext:
    out: Path
    steps: int
    seed: int
    data: Path = Path()
    checkpoint_path: Path = Path()
    graphs: dict[str, Path] = field(default_factory=dict)  # precision -> exported ONNX graph
    summary: dict = field(default_factory=dict)


# Small and fast enough for 2 CPU cores; the real-wood defaults of `gedge train` are in the README.
DEMO_MODEL = {"isize": 32, "ngf": 32, "ndf": 32, "nz": 100}
DEMO_PREPROCESS = {"mode": "patch", "isize": 32, "scale": 0.25}


def stage_data(ctx: DemoContext) -> None:
    from .synth import SynthWoodConfig, write_synthetic_wood

    ctx.data = ctx.out / "synthetic-wood"
    config = SynthWoodConfig(seed=ctx.seed)
    with progress_bar("synthetic wood") as update:
        summary = write_synthetic_wood(ctx.data, config, progress=update)
    console.print(f"synthetic wood in {ctx.data}: {summary.counts}")
    ctx.summary["data"] = {"path": str(ctx.data), "counts": summary.counts}


def stage_train(ctx: DemoContext) -> None:
    from .checkpoint import save_checkpoint
    from .data import Preprocess, open_dataset
    from .model import ModelConfig
    from .train import TrainCallbacks, TrainConfig, train

    ctx.checkpoint_path = ctx.out / "model.pt"
    config = TrainConfig(steps=ctx.steps, val_every=max(1, ctx.steps // 4), seed=ctx.seed)
    with progress_bar("training", total=config.steps) as update:
        callbacks = TrainCallbacks(on_step=lambda step, losses: update(step, info=f"g {losses['g']:.3f}"))
        result = train(open_dataset(ctx.data), ModelConfig(**DEMO_MODEL), Preprocess(**DEMO_PREPROCESS), config,
                       ctx.checkpoint_path, callbacks)
    save_checkpoint(result.checkpoint, ctx.checkpoint_path)
    cal = result.checkpoint.calibration
    console.print(f"checkpoint {ctx.checkpoint_path}: best step {result.best_step}, primary {cal.primary}, "
                  f"{result.seconds:.0f} s")
    ctx.summary["train"] = {"checkpoint": str(ctx.checkpoint_path), "best_step": result.best_step,
                            "primary": cal.primary, "seconds": round(result.seconds, 1)}


def stage_evaluate(ctx: DemoContext) -> None:
    from .checkpoint import load_checkpoint
    from .data import open_dataset
    from .evaluate import evaluate_backend
    from .runtime.torch_backend import TorchBackend

    checkpoint = load_checkpoint(ctx.checkpoint_path)
    dataset = open_dataset(ctx.data)
    with progress_bar("evaluating") as update:
        report, _ = evaluate_backend(TorchBackend(checkpoint), dataset.test, checkpoint.preprocess,
                                     checkpoint.calibration.primary, checkpoint.calibration.threshold,
                                     "synthetic wood (test)", progress=update)
    console.print(evaluation_table(report))
    ctx.summary["evaluate"] = {"auroc": report.rows[0].auroc, "best_score": report.best_score}


def stage_export(ctx: DemoContext) -> None:
    from .export.check import check_graph
    from .export.fp16 import write_fp16_graph
    from .export.metadata import load_graph
    from .export.onnx_export import ExportOptions, export_checkpoint

    ctx.summary["export"] = {}
    fp32 = export_checkpoint(ctx.checkpoint_path, ctx.out / "scorer.onnx", ExportOptions())
    ctx.graphs = {"fp32": fp32.path, "fp16": write_fp16_graph(fp32.path, ctx.out / "scorer.fp16.onnx")}
    for precision, path in ctx.graphs.items():
        nodes = len(load_graph(path).graph.node)
        check = check_graph(path, build=True)
        trt = check.tensorrt
        verdict = (f"{trt.module} {trt.version}: parsed, engine {trt.engine_bytes / 1e6:.2f} MB for "
                   f"{', '.join(trt.compute_capabilities) or 'its default targets'}" if trt and trt.parsed and trt.built
                   else f"TensorRT: {check.tensorrt_skipped or [i.line() for i in trt.issues] or trt.build_error}")
        console.print(f"{precision.upper()} graph {path}: {nodes} nodes, onnx.checker "
                      f"{'ok' if check.onnx_ok else 'FAILED'}; {verdict}")
        ctx.summary["export"][precision] = {"graph": str(path), "nodes": nodes, "check_ok": check.ok,
                                            "engine_bytes": trt.engine_bytes if trt else None}


def stage_parity(ctx: DemoContext) -> None:
    from .bench.parity import parity_check
    from .bench.tables import parity_table

    ctx.summary["parity"] = {}
    for precision, graph in ctx.graphs.items():
        with progress_bar(f"parity {precision}") as update:
            report = parity_check(ctx.checkpoint_path, graph, ctx.data, progress=update)
        console.print(parity_table(report))
        for note in report.notes:
            console.print(f"note: {note}")
        ctx.summary["parity"][precision] = {
            "passed": report.passed, "agreement": report.decisions.agreement,
            "rel_l2": {row.name: row.rel_l2 for row in report.outputs}, "candidate": report.candidate}


STAGES: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("data", stage_data),
    ("train", stage_train),
    ("evaluate", stage_evaluate),
    ("export", stage_export),
    ("parity", stage_parity),
]


def run_demo(out: Path, steps: int, seed: int, json_out: bool) -> dict:
    ctx = DemoContext(out=Path(out), steps=steps, seed=seed)
    ctx.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    for name, stage in STAGES:
        console.print(Rule(f"[bold]{name}"))
        stage(ctx)
    ctx.summary["seconds"] = round(time.time() - started, 1)
    console.print(f"demo finished in {ctx.summary['seconds']:.0f} s; artifacts in {ctx.out}")
    if json_out:
        print_json(ctx.summary)
    return ctx.summary

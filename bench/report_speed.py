"""How long the evaluation report of a 1,000-image test set takes, and how large it is (a benchmark, not a test).

    python -m gedge.bench.report_speed --out /tmp/report-speed [--images 1000] [--model model.pt] [--gallery 12]

Writes synthetic wood boards (256 x 256, half of the test images normal, the rest spread over the five defect
classes, with masks) under ``OUT``, and a model shaped like the demo's (32 x 32 tiles at scale 0.5, the default
widths) with random weights and its threshold fitted on the training normals, unless ``--model`` names one. Then
it times, separately, the evaluation (scoring every test image with anomaly maps, the AUROC tables, pixel AUROC
and PRO) and the report (charts, thumbnails of the galleries, the HTML), and prints them with the report's size,
the peak memory and the machine as JSON. Results go to docs/benchmarks.md with their date and machine.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from gedge.core.decision import DecisionRule
from gedge.core.machine import cpu_line, machine_facts, peak_rss_bytes
from gedge.core.preprocess import Preprocess
from gedge.data.datasets import open_dataset
from gedge.data.synth import DEFECT_CLASSES, SynthConfig, write_synthetic
from gedge.data.tiles import load_prepared, network_counts, score_images
from gedge.reference.checkpoint import Checkpoint, save_checkpoint
from gedge.reference.decision_fit import fit_decision_rule
from gedge.reference.model import ModelConfig, build_networks
from gedge.reference.scoring import ReferenceScorer
from gedge.report.evaluation import EvaluationRequest, prepare_evaluation
from gedge.report.html import ReportOptions, write_report


def make_data(out: Path, images: int, seed: int) -> Path:
    """Synthetic wood with ``images`` test images (half normal), written once and reused."""
    data = out / f"wood-{images}"
    if not (data / "test").is_dir():
        per_defect = max(1, (images - images // 2) // len(DEFECT_CLASSES))
        write_synthetic(data, SynthConfig(n_train=24, n_test_good=images - per_defect * len(DEFECT_CLASSES),
                                          n_test_per_defect=per_defect, seed=seed))
    return data


def make_model(data: Path, out: Path, seed: int) -> Path:
    """A demo-shaped model with random weights, its decision rule fitted on the training normals."""
    config = ModelConfig(isize=32, nz=100, ngf=32, ndf=32)
    pre = Preprocess(mode="patch", isize=32, scale=0.5)
    netg, netd = build_networks(config, seed=seed)
    checkpoint = Checkpoint(config, pre, DecisionRule(), netg.state_dict(), netd.state_dict(),
                            facts={"note": "random initialisation, for timing the report"})
    normals = load_prepared(open_dataset(data).train, pre)
    _, tiles = score_images(ReferenceScorer(checkpoint), normals, pre)
    decision, stats = fit_decision_rule(tiles, network_counts(normals, pre), "d1_local+d3_local", 0.99,
                                        "normal training images")
    return save_checkpoint(replace(checkpoint, decision=decision, score_stats=stats), out / "random-demo-shaped.pt")


def measure(model: Path, data: Path, report: Path, gallery: int) -> dict:
    started = time.perf_counter()
    evaluation = prepare_evaluation(EvaluationRequest(model, data)).run()
    scored = time.perf_counter()
    result = write_report(evaluation, report, ReportOptions(gallery=gallery))
    done = time.perf_counter()
    return {"images": len(evaluation.labels), "evaluation_s": round(scored - started, 1),
            "report_s": round(done - scored, 1), "total_s": round(done - started, 1),
            "report_mb": round(result.bytes / 1e6, 2), "missed": result.missed, "rejected": result.rejected,
            "shown": result.shown, "peak_rss_mb": round(peak_rss_bytes() / 1e6), "report": str(report)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Working folder (data, model, report).")
    parser.add_argument("--images", type=int, default=1000, help="Test images.")
    parser.add_argument("--model", type=Path, help="A checkpoint or deployed artifact (default: a random one).")
    parser.add_argument("--gallery", type=int, default=12, help="Cases in pictures per gallery.")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    data = make_data(args.out, args.images, args.seed)
    model = args.model or make_model(data, args.out, args.seed)
    result = {**measure(model, data, args.out / "report.html", args.gallery), "model": str(model),
              "threads": args.threads, "machine": cpu_line(machine_facts(probe_gpu=False)),
              "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

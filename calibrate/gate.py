"""The accuracy gate of `gedge calibrate`: parity of an INT8 graph against the torch reference on held-out
normal images and proxy anomalies painted on them.

The images are the checkpoint's validation normals (``facts["validation_images"]``: held out from training,
never used for calibration) or, for a checkpoint without them (an import), a seeded share of the calibration
sources held out before the patches are drawn. Proxy anomalies (:mod:`gedge.proxy`, as training's model
selection uses them) make the set labelled, so AUROC is defined. Test images are never used: the test split's
numbers come from ``gedge parity --data`` afterwards.

With few validation images more proxies are painted per image, so the gate has at least 100 images: decision
agreement over 40 images moves in steps of 2.5 %, and one image near the threshold would fail a 98 % limit.

Scoring and comparison are :mod:`gedge.bench.parity`'s; the limits are its ``int8`` limits (primary-score
AUROC drop <= 0.01, decision agreement >= 98 %) unless overridden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gedge.compare.comparator import ParityReport, compare_scores
from gedge.compare.limits import ParityLimits, limits_for
from gedge.core.errors import DataError
from gedge.core.scores import Scores
from gedge.data.proxy import KINDS, proxy_set
from gedge.data.tiles import load_prepared, score_images

MIN_GATE_IMAGES = 100


@dataclass
class GateSet:
    images: list[np.ndarray]  # prepared (the checkpoint's preprocessing), normals first, then proxies
    labels: np.ndarray
    names: list[str]
    description: str
    n_normal: int
    n_proxy: int
    paths: list[str]


def recorded_validation(checkpoint) -> list[Path]:
    """The checkpoint's validation images that exist on this machine (all or nothing)."""
    recorded = [Path(p) for p in (checkpoint.facts or {}).get("validation_images", [])]
    if recorded and all(p.is_file() for p in recorded):
        return recorded
    return []


def gate_set(checkpoint, paths: list[Path], origin: str, proxies_per_image: int | None = None,
             seed: int | None = None, convert: bool = False) -> GateSet:
    """Held-out normal images and ``proxies_per_image`` proxy-anomalous copies of each (training's defaults)."""
    if not paths:
        raise DataError("no held-out normal images for the accuracy gate")
    train_config = (checkpoint.facts or {}).get("train_config", {})
    # At least MIN_GATE_IMAGES images, so that the 98 % agreement limit tolerates a flip or two near the threshold
    # instead of none (10 validation images and 3 proxies each would fail on one image in 40).
    per_image = proxies_per_image or max(int(train_config.get("proxies_per_image", 3)),
                                         -(-MIN_GATE_IMAGES // len(paths)) - 1)
    seed = int(train_config.get("seed", 0)) + 1 if seed is None else seed
    normals = load_prepared(paths, checkpoint.preprocess, convert)
    proxies = proxy_set(normals, per_image, seed)
    names = [p.name for p in paths]
    names += [f"{paths[i].stem}+{KINDS[(i * per_image + j) % len(KINDS)]}"
              for i in range(len(paths)) for j in range(per_image)]
    labels = np.r_[np.zeros(len(normals), dtype=np.int64), np.ones(len(proxies), dtype=np.int64)]
    description = (f"{len(normals)} held-out normal images ({origin}) and {len(proxies)} proxy anomalies painted "
                   "on them")
    return GateSet(normals + proxies, labels, names, description, len(normals), len(proxies), [str(p) for p in paths])


@dataclass
class Reference:
    images: Scores
    inputs: Scores
    name: str


def reference_scores(checkpoint, gate: GateSet, batch_size: int = 64, progress=None) -> Reference:
    """The torch reference's scores of the gate images (computed once for every flavour)."""
    from gedge.runtime.torch_backend import TorchBackend

    backend = TorchBackend(checkpoint)
    images, inputs = score_images(backend, gate.images, checkpoint.preprocess, batch_size, progress)
    return Reference(images, inputs, backend.name)


def gate_backend(checkpoint, candidate, gate: GateSet, reference: Reference, limits: ParityLimits | None = None,
                 batch_size: int = 64, progress=None) -> ParityReport:
    """Score the gate images with an opened candidate backend (closed afterwards) and compare with the reference."""
    try:
        images, inputs = score_images(candidate, gate.images, checkpoint.preprocess, batch_size, progress)
    finally:
        candidate.close()
    return compare_scores(reference.inputs, inputs, reference.images, images, checkpoint.decision.threshold,
                          limits or limits_for("int8"), gate.labels, gate.names, reference.name, candidate.name,
                          gate.description)


def run_gate(checkpoint, graph: str | Path, gate: GateSet, reference: Reference, limits: ParityLimits | None = None,
             threads: int = 0, batch_size: int = 64, progress=None) -> ParityReport:
    """Score the gate images with the graph on ONNX Runtime and compare with the reference."""
    from gedge.runtime.onnxruntime_backend import OrtBackend

    candidate = OrtBackend(graph, threads=threads)
    report = gate_backend(checkpoint, candidate, gate, reference, limits, batch_size, progress)
    flavour = candidate.facts.quantization.get("flavour", "")
    report.notes.append(f"{flavour or 'INT8'} graph run on ONNX Runtime CPU" +
                        (" (its Q/DQ arithmetic: what TensorRT computes, up to accumulation order)"
                         if flavour == "tensorrt" else ""))
    return report


def gate_summary(report: ParityReport) -> dict:
    """The numbers a sidecar records: per-score AUROC, primary drop, Spearman, agreement, verdict."""
    score = report.output("score")
    return {"passed": report.passed, "data": report.data, "n_images": report.n_images,
            "auroc_reference": score.auroc_reference, "auroc_int8": score.auroc_candidate,
            "auroc_drop": None if score.auroc_delta is None else -score.auroc_delta,
            "spearman": score.spearman, "agreement": report.decisions.agreement,
            "limits": report.limits.to_dict(), "failures": report.failures,
            "auroc": {row.name: {"reference": row.auroc_reference, "int8": row.auroc_candidate,
                                 "delta": row.auroc_delta, "spearman": row.spearman} for row in report.outputs}}

"""Accuracy parity: does a deployed graph or engine give the reference's numbers?

Running and comparing are kept apart. :func:`run_parity` scores the same images with two backends (the same
tiles, cut by the checkpoint's preprocessing) into :class:`~gedge.scores.Scores`; :func:`compare_scores` is a
pure function of those scores, the labels and the threshold, and returns a :class:`ParityReport`.

What is compared, per output (d1, d2, d3, latent, score, and amap where both have it):

* error of every network output (each tile): max absolute error, max relative error, relative L2 error
  ``||cand - ref|| / ||ref||``;
* per image (max over its tiles, the image score a line acts on): Spearman rank correlation, and where the
  data has both normal and anomalous images, the AUROC of each backend and the delta;
* accept/reject agreement of the normalised score at the stored threshold.

Pass/fail comes from :class:`ParityLimits` for the candidate's precision: relative L2 error of every score,
Spearman, |AUROC delta| (never stricter than one swapped normal/anomalous pair) and decision agreement.
The max relative error is reported but not gated: the normalised score crosses zero, where relative
error means nothing.

INT8 is gated on what a line acts on, not on closeness of values: the AUROC drop of the primary score
(the normalised ``score``) and decision agreement. Its relative L2 error and Spearman are reported; 8-bit
activations move every residual score by a few percent, which says nothing about detection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gedge.compare.comparator import ParityReport, compare_scores
from gedge.compare.limits import ParityLimits, limits_for
from gedge.core.backend import Backend
from gedge.core.errors import ConfigError, DataError
from gedge.core.preprocess import Preprocess
from gedge.core.scores import Scores
from gedge.data.datasets import open_dataset
from gedge.data.images import list_images
from gedge.data.tiles import load_prepared, score_images

Progress = Callable[[int, int], None]


@dataclass
class ParityData:
    paths: list[Path]
    labels: np.ndarray | None
    description: str


def parity_data(data: str | Path) -> ParityData:
    """The images parity runs on: the data set's test split (with labels) if it has one, else all its images."""
    data = Path(data)
    if not data.exists():
        raise DataError("data folder does not exist", data)
    if data.is_dir():
        try:
            dataset = open_dataset(data)
        except DataError:
            dataset = None
        if dataset is not None and dataset.test is not None:
            return ParityData(list(dataset.test.paths), dataset.test.labels, f"{data} (test split)")
        if dataset is not None:
            return ParityData(list(dataset.train), None, f"{data} (training images; no test split)")
        return ParityData(list_images(data), None, f"{data} (all images)")
    raise DataError("give a data folder (MVTec AD layout, class folders or a folder of images)", data)


@dataclass
class ParityRun:
    ref_images: Scores
    ref_inputs: Scores
    cand_images: Scores
    cand_inputs: Scores
    seconds: dict[str, float]


def run_parity(reference: Backend, candidate: Backend, images: list[np.ndarray], pre: Preprocess,
               batch_size: int = 64, progress: Progress | None = None) -> ParityRun:
    """Score the same images (and so the same tiles) with both backends."""
    if reference.input_spec != candidate.input_spec:
        raise ConfigError(f"reference takes {reference.input_spec} but candidate takes {candidate.input_spec}")
    seconds = {}
    started = time.time()
    ref_images, ref_inputs = score_images(reference, images, pre, batch_size, progress)
    seconds["reference"] = round(time.time() - started, 3)
    started = time.time()
    cand_images, cand_inputs = score_images(candidate, images, pre, batch_size, progress)
    seconds["candidate"] = round(time.time() - started, 3)
    return ParityRun(ref_images, ref_inputs, cand_images, cand_inputs, seconds)


@dataclass
class ParitySetup:
    """Everything a parity run needs, opened and validated (so bad input fails before any scoring)."""

    checkpoint: object  # gedge.checkpoint.Checkpoint
    reference: Backend
    candidate: Backend
    source: ParityData
    images: list[np.ndarray]
    notes: list[str]
    precision: str = "fp32"  # the candidate's


def open_parity(checkpoint_path: str | Path, graph_path: str | Path, data: str | Path,
                threads: int = 0) -> ParitySetup:
    """The torch reference from a checkpoint, the deployed model on its own backend (an ONNX graph on ONNX
    Runtime, an OpenVINO IR on OpenVINO, an engine on TensorRT) and the images to score."""
    from gedge.core.hashing import sha256_file
    from gedge.reference.checkpoint import load_checkpoint
    from gedge.runtime.onnxruntime_backend import OrtBackend
    from gedge.runtime.registry import kind_of, model_info, open_backend
    from gedge.runtime.torch_backend import TorchBackend

    checkpoint = load_checkpoint(checkpoint_path)
    kind = kind_of(graph_path)
    if kind == "torch":
        raise ConfigError(f"{Path(graph_path).name}: the candidate is a deployed model (.onnx, OpenVINO .xml or "
                          ".engine), not a checkpoint")
    info = None
    if kind == "onnxruntime":
        candidate = OrtBackend(graph_path, threads=threads)
    else:
        info = model_info(graph_path)
        candidate = open_backend(graph_path, threads=threads, info=info, with_amap=info.has_amap)
    facts = getattr(candidate, "facts", None)
    model = getattr(facts, "model", None)
    if model is not None and model != checkpoint.model.to_dict():
        raise ConfigError(f"the graph's model config differs from the checkpoint's: {model} "
                          f"vs {checkpoint.model.to_dict()}")
    notes = []
    source_sha = getattr(facts, "source_sha256", None)
    if source_sha and source_sha != sha256_file(checkpoint_path):
        notes.append(f"the graph was exported from {facts.source_checkpoint} "
                     f"(sha256 {source_sha[:12]}), not from this checkpoint")
    if getattr(candidate, "fp16_emulated", False):
        notes.append("FP16 graph run on ONNX Runtime CPU with FP16 rounding emulated (FP16 storage, FP32 math): "
                     "the CPU provider has no FP16 convolutions")
    reference = TorchBackend(checkpoint, with_amap=getattr(candidate, "with_amap", False))
    source = parity_data(data)
    images = load_prepared(source.paths, checkpoint.preprocess)
    precision = getattr(facts, "precision", None) or (info or model_info(graph_path)).precision
    return ParitySetup(checkpoint, reference, candidate, source, images, notes, precision)


def run_setup(setup: ParitySetup, limits: ParityLimits | None = None, batch_size: int = 64,
              progress: Progress | None = None, **overrides: float | None) -> ParityReport:
    """Score with both backends and compare; limits default to the candidate graph's precision."""
    checkpoint = setup.checkpoint
    precision = setup.precision
    limits = limits or limits_for(precision, **overrides)
    run = run_parity(setup.reference, setup.candidate, setup.images, checkpoint.preprocess, batch_size, progress)
    report = compare_scores(run.ref_inputs, run.cand_inputs, run.ref_images, run.cand_images,
                            checkpoint.decision.threshold, limits, setup.source.labels,
                            [p.name for p in setup.source.paths], setup.reference.name, setup.candidate.name,
                            setup.source.description)
    report.seconds = run.seconds
    report.notes = list(setup.notes)
    return report


def parity_check(checkpoint_path: str | Path, graph_path: str | Path, data: str | Path,
                 limits: ParityLimits | None = None, batch_size: int = 64, threads: int = 0,
                 progress: Progress | None = None, **overrides: float | None) -> ParityReport:
    """``gedge parity``: torch reference from the checkpoint against an ONNX graph on ONNX Runtime."""
    setup = open_parity(checkpoint_path, graph_path, data, threads)
    return run_setup(setup, limits, batch_size, progress, **overrides)

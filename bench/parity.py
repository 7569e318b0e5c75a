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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from gedge.data import Preprocess, list_images, load_prepared, open_dataset
from gedge.errors import ConfigError, DataError
from gedge.evaluate import score_images
from gedge.metrics import auroc, has_both_classes
from gedge.runtime.base import Backend
from gedge.scores import OUTPUT_NAMES, Scores

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ParityLimits:
    """What a candidate of a precision must meet against the reference."""

    precision: str
    max_rel_l2: float | None  # every score's relative L2 error (amap too, where compared); None: not gated
    min_spearman: float | None  # every score's rank correlation over images; None: not gated
    max_auroc_delta: float  # |AUROC(candidate) - AUROC(reference)| of every score, where labels exist
    min_agreement: float  # fraction of images with the same accept/reject decision
    # "all": |AUROC delta| of every score is gated; "primary": only the drop (reference - candidate) of the
    # primary score, i.e. of the normalised ``score`` output (a gain never fails)
    auroc_scores: str = "all"

    def __post_init__(self) -> None:
        if self.auroc_scores not in ("all", "primary"):
            raise ConfigError(f"auroc_scores must be all or primary, got {self.auroc_scores!r}")

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_LIMITS: dict[str, ParityLimits] = {
    "fp32": ParityLimits("fp32", max_rel_l2=1e-5, min_spearman=0.9999, max_auroc_delta=1e-3, min_agreement=1.0),
    "fp16": ParityLimits("fp16", max_rel_l2=1e-2, min_spearman=0.99, max_auroc_delta=0.01, min_agreement=0.995),
    # `gedge calibrate`'s accuracy gate: primary-score AUROC drop <= 0.01, >= 98 % identical decisions.
    "int8": ParityLimits("int8", max_rel_l2=None, min_spearman=None, max_auroc_delta=0.01, min_agreement=0.98,
                         auroc_scores="primary"),
}


def limits_for(precision: str, **overrides: float | None) -> ParityLimits:
    if precision not in DEFAULT_LIMITS:
        raise ConfigError(f"precision must be one of {', '.join(DEFAULT_LIMITS)}, got {precision!r}")
    return replace(DEFAULT_LIMITS[precision], **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class OutputParity:
    """One output's agreement. Image-level fields are None for amap (and AUROC without labels)."""

    name: str
    n: int
    max_abs: float
    max_rel: float
    rel_l2: float
    spearman: float | None = None
    auroc_reference: float | None = None
    auroc_candidate: float | None = None
    auroc_delta: float | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class DecisionParity:
    threshold: float
    agreement: float
    n_images: int
    n_disagree: int
    rejected_reference: int
    rejected_candidate: int
    disagreeing: list[str] = field(default_factory=list)  # first few image names (or indices)
    failures: list[str] = field(default_factory=list)


@dataclass
class ParityReport:
    reference: str
    candidate: str
    precision: str
    limits: ParityLimits
    outputs: list[OutputParity]
    decisions: DecisionParity
    n_images: int
    n_inputs: int
    labelled: bool
    data: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return [f for row in self.outputs for f in row.failures] + self.decisions.failures

    @property
    def passed(self) -> bool:
        return not self.failures

    def output(self, name: str) -> OutputParity:
        return next(row for row in self.outputs if row.name == name)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["passed"] = self.passed
        values["failures"] = self.failures
        for row, out in zip(self.outputs, values["outputs"]):
            out["passed"] = row.passed
        return values


# --- pure comparison --------------------------------------------------------------------------------------


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < values.size:
        end = start
        while end + 1 < values.size and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = 0.5 * (start + end)
        start = end + 1
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (Pearson on mid-ranks); 1.0 when both are constant and equal."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size != b.size:
        raise ValueError(f"{a.size} values against {b.size}")
    if a.size < 2:
        return 1.0 if np.array_equal(a, b) else float("nan")
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    if denominator == 0:
        return 1.0 if np.array_equal(ra, rb) else float("nan")
    return float((ra * rb).sum() / denominator)


def error_stats(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float, float]:
    """(max abs error, max relative error, relative L2 error) of a candidate against a reference."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    cand = np.asarray(candidate, dtype=np.float64).ravel()
    if ref.shape != cand.shape:
        raise ValueError(f"reference has {ref.size} values, candidate {cand.size}")
    if not (np.isfinite(ref).all() and np.isfinite(cand).all()):
        return float("inf"), float("inf"), float("inf")
    diff = np.abs(cand - ref)
    scale = np.abs(ref).max() if ref.size else 0.0
    floor = max(scale * 1e-3, np.finfo(np.float32).tiny)  # relative error of values near zero is meaningless
    max_rel = float((diff / np.maximum(np.abs(ref), floor)).max()) if ref.size else 0.0
    norm = float(np.linalg.norm(ref))
    rel_l2 = float(np.linalg.norm(cand - ref) / norm) if norm > 0 else float(np.linalg.norm(cand - ref))
    return float(diff.max()) if ref.size else 0.0, max_rel, rel_l2


def compare_scores(ref_inputs: Scores, cand_inputs: Scores, ref_images: Scores, cand_images: Scores,
                   threshold: float, limits: ParityLimits, labels: np.ndarray | None = None,
                   image_names: list[str] | None = None, reference: str = "reference",
                   candidate: str = "candidate", data: str = "") -> ParityReport:
    """Compare two backends' scores of the same inputs (tiles) and images; pure, no running."""
    if len(ref_inputs) != len(cand_inputs) or len(ref_images) != len(cand_images):
        raise ValueError("reference and candidate scored different numbers of inputs")
    labelled = labels is not None and has_both_classes(labels)
    # One swapped (normal, anomalous) pair moves the AUROC by 1 / (n_pos * n_neg); a limit below that step
    # would fail a small set for a single near-tie, so the step is always allowed.
    auroc_allowed = limits.max_auroc_delta
    if labelled:
        n_pos = int((np.asarray(labels) == 1).sum())
        auroc_allowed = max(auroc_allowed, 1.0 / (n_pos * (len(labels) - n_pos)) + 1e-12)
    rows: list[OutputParity] = []
    for name in OUTPUT_NAMES:
        max_abs, max_rel, rel_l2 = error_stats(ref_inputs.named(name), cand_inputs.named(name))
        row = OutputParity(name, len(ref_inputs), max_abs, max_rel, rel_l2,
                           spearman=spearman(ref_images.named(name), cand_images.named(name)))
        if labelled:
            row.auroc_reference = auroc(labels, ref_images.named(name))
            row.auroc_candidate = auroc(labels, cand_images.named(name))
            row.auroc_delta = row.auroc_candidate - row.auroc_reference
        if limits.max_rel_l2 is not None and not rel_l2 <= limits.max_rel_l2:
            row.failures.append(f"{name}: relative L2 error {rel_l2:.3g} > {limits.max_rel_l2:g}")
        if limits.min_spearman is not None and not (row.spearman is not None and row.spearman >= limits.min_spearman):
            row.failures.append(f"{name}: Spearman {row.spearman:.6f} < {limits.min_spearman:g}")
        if row.auroc_delta is not None:
            if limits.auroc_scores == "all" and not abs(row.auroc_delta) <= auroc_allowed:
                row.failures.append(f"{name}: |AUROC delta| {abs(row.auroc_delta):.4f} > {auroc_allowed:.4g}")
            if limits.auroc_scores == "primary" and name == "score" and not -row.auroc_delta <= auroc_allowed:
                row.failures.append(f"{name} (primary): AUROC drop {-row.auroc_delta:.4f} > {auroc_allowed:.4g}")
        rows.append(row)
    if ref_inputs.amap is not None and cand_inputs.amap is not None:
        max_abs, max_rel, rel_l2 = error_stats(ref_inputs.amap, cand_inputs.amap)
        row = OutputParity("amap", int(ref_inputs.amap.size), max_abs, max_rel, rel_l2)
        if limits.max_rel_l2 is not None and not rel_l2 <= limits.max_rel_l2:
            row.failures.append(f"amap: relative L2 error {rel_l2:.3g} > {limits.max_rel_l2:g}")
        rows.append(row)

    ref_reject = ref_images.score >= threshold
    cand_reject = cand_images.score >= threshold
    differ = np.flatnonzero(ref_reject != cand_reject)
    n = len(ref_images)
    names = image_names or [str(i) for i in range(n)]
    agreement = 1.0 - differ.size / n if n else 1.0
    decisions = DecisionParity(threshold, agreement, n, int(differ.size), int(ref_reject.sum()),
                               int(cand_reject.sum()), [names[i] for i in differ[:10]])
    if not agreement >= limits.min_agreement:
        decisions.failures.append(f"decisions: agreement {agreement:.2%} < {limits.min_agreement:.2%} "
                                  f"({differ.size} of {n} images differ)")
    return ParityReport(reference, candidate, limits.precision, limits, rows, decisions, n, len(ref_inputs),
                        labelled, data)


# --- running ----------------------------------------------------------------------------------------------


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
    from gedge.atomic import sha256_file
    from gedge.checkpoint import load_checkpoint
    from gedge.runtime.factory import kind_of, model_info, open_backend
    from gedge.runtime.onnxruntime_backend import OrtBackend
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
                            checkpoint.calibration.threshold, limits, setup.source.labels,
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

"""The comparator: two backends' scores of the same images in, a :class:`ParityReport` out (pure, no running).

What is compared, per output (d1, d2, d3, latent, score, and amap where both have it):

* error of every network output (each tile): max absolute error, max relative error, relative L2 error
  ``||cand - ref|| / ||ref||``;
* per image (max over its tiles, the image score a line acts on): Spearman rank correlation, and where the
  images have both normal and anomalous labels, the AUROC of each backend and the delta;
* accept/reject agreement of the normalised score at the reference's threshold.

Pass/fail comes from :class:`~gedge.compare.limits.ParityLimits` for the candidate's precision: relative L2
error of every score, Spearman, |AUROC delta| (never stricter than one swapped normal/anomalous pair) and
decision agreement. The max relative error is reported but not gated: the normalised score crosses zero, where
relative error means nothing.

INT8 is gated on what a line acts on, not on closeness of values: the AUROC drop of the primary score (the
normalised ``score``) and decision agreement. Its relative L2 error and Spearman are reported; 8-bit
activations move every residual score by a few percent, which says nothing about detection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from gedge.compare.limits import ParityLimits
from gedge.core.metrics import auroc, has_both_classes
from gedge.core.scores import OUTPUT_NAMES, Scores


@dataclass
class BackendScores:
    """One backend's scores of the compared images: per network input (tile) and per image (max over tiles)."""

    inputs: Scores
    images: Scores
    name: str = "backend"
    seconds: float = 0.0  # how long the scoring took


@dataclass(frozen=True)
class ImageSetFacts:
    """What a comparison knows about the images besides their scores."""

    threshold: float  # the reference's decision threshold on the normalised score
    labels: np.ndarray | None = None  # 0 normal, 1 anomalous; AUROC is compared where both occur
    names: list[str] | None = None  # image names, for the decisions that differ (default: indices)
    description: str = ""  # where the images came from


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


def _auroc_allowed(limits: ParityLimits, labels: np.ndarray | None) -> float:
    """The AUROC limit, never below one swapped (normal, anomalous) pair: that pair moves the AUROC by
    1 / (n_pos * n_neg), and a limit below that step would fail a small set for a single near-tie."""
    if labels is None:
        return limits.max_auroc_delta
    n_pos = int((np.asarray(labels) == 1).sum())
    return max(limits.max_auroc_delta, 1.0 / (n_pos * (len(labels) - n_pos)) + 1e-12)


def _score_row(name: str, reference: BackendScores, candidate: BackendScores, facts: ImageSetFacts,
               limits: ParityLimits) -> OutputParity:
    """One named score: its errors over every network input, its ranks and AUROC over images, its failures."""
    max_abs, max_rel, rel_l2 = error_stats(reference.inputs.named(name), candidate.inputs.named(name))
    row = OutputParity(name, len(reference.inputs), max_abs, max_rel, rel_l2,
                       spearman=spearman(reference.images.named(name), candidate.images.named(name)))
    labelled = facts.labels is not None and has_both_classes(facts.labels)
    if labelled:
        row.auroc_reference = auroc(facts.labels, reference.images.named(name))
        row.auroc_candidate = auroc(facts.labels, candidate.images.named(name))
        row.auroc_delta = row.auroc_candidate - row.auroc_reference
    if limits.max_rel_l2 is not None and not rel_l2 <= limits.max_rel_l2:
        row.failures.append(f"{name}: relative L2 error {rel_l2:.3g} > {limits.max_rel_l2:g}")
    if limits.min_spearman is not None and not (row.spearman is not None and row.spearman >= limits.min_spearman):
        row.failures.append(f"{name}: Spearman {row.spearman:.6f} < {limits.min_spearman:g}")
    if row.auroc_delta is not None:
        allowed = _auroc_allowed(limits, facts.labels)
        if limits.auroc_scores == "all" and not abs(row.auroc_delta) <= allowed:
            row.failures.append(f"{name}: |AUROC delta| {abs(row.auroc_delta):.4f} > {allowed:.4g}")
        if limits.auroc_scores == "primary" and name == "score" and not -row.auroc_delta <= allowed:
            row.failures.append(f"{name} (primary): AUROC drop {-row.auroc_delta:.4f} > {allowed:.4g}")
    return row


def _amap_row(reference: Scores, candidate: Scores, limits: ParityLimits) -> OutputParity:
    max_abs, max_rel, rel_l2 = error_stats(reference.amap, candidate.amap)
    row = OutputParity("amap", int(reference.amap.size), max_abs, max_rel, rel_l2)
    if limits.max_rel_l2 is not None and not rel_l2 <= limits.max_rel_l2:
        row.failures.append(f"amap: relative L2 error {rel_l2:.3g} > {limits.max_rel_l2:g}")
    return row


def _decisions(reference: Scores, candidate: Scores, facts: ImageSetFacts, limits: ParityLimits) -> DecisionParity:
    """Accept/reject agreement of the normalised score at the threshold, with the first images that differ."""
    ref_reject = reference.score >= facts.threshold
    cand_reject = candidate.score >= facts.threshold
    differ = np.flatnonzero(ref_reject != cand_reject)
    n = len(reference)
    names = facts.names or [str(i) for i in range(n)]
    agreement = 1.0 - differ.size / n if n else 1.0
    decisions = DecisionParity(facts.threshold, agreement, n, int(differ.size), int(ref_reject.sum()),
                               int(cand_reject.sum()), [names[i] for i in differ[:10]])
    if not agreement >= limits.min_agreement:
        decisions.failures.append(f"decisions: agreement {agreement:.2%} < {limits.min_agreement:.2%} "
                                  f"({differ.size} of {n} images differ)")
    return decisions


def compare_scores(reference: BackendScores, candidate: BackendScores, facts: ImageSetFacts,
                   limits: ParityLimits) -> ParityReport:
    """Compare two backends' scores of the same network inputs (tiles) and images; pure, no running."""
    if len(reference.inputs) != len(candidate.inputs) or len(reference.images) != len(candidate.images):
        raise ValueError("reference and candidate scored different numbers of inputs")
    rows = [_score_row(name, reference, candidate, facts, limits) for name in OUTPUT_NAMES]
    if reference.inputs.amap is not None and candidate.inputs.amap is not None:
        rows.append(_amap_row(reference.inputs, candidate.inputs, limits))
    decisions = _decisions(reference.images, candidate.images, facts, limits)
    labelled = facts.labels is not None and has_both_classes(facts.labels)
    return ParityReport(reference.name, candidate.name, limits.precision, limits, rows, decisions,
                        len(reference.images), len(reference.inputs), labelled, facts.description,
                        {"reference": reference.seconds, "candidate": candidate.seconds})

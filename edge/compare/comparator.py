"""The comparator: two backends' scores of the same images in, a :class:`ParityReport` out (pure, no running).

What is compared, per output (d1, d2, d3, latent, score, and amap where both have it):

* values that are not finite (NaN, infinity): any in a candidate's output fails it, under every limits set,
  with the count; its other measures are not computed from such values;
* error of every network output (each tile): max absolute error, max relative error, relative L2 error
  ``||cand - ref|| / ||ref||``;
* per image (max over its tiles, the image score a line acts on): Spearman rank correlation, and where the
  images have both normal and anomalous labels, the AUROC of each backend and the delta;
* accept/reject agreement of the normalised score at the reference's threshold, over all images and, where
  labelled, over the normal images (false rejects the candidate adds) and the anomalous ones. An image whose
  candidate score is not a number counts as rejected: a line must not accept what it cannot score.

Pass/fail comes from :class:`~gedge.compare.limits.ParityLimits` for the candidate's precision: relative L2
error and Spearman of every score (every precision: a constant, shuffled or sign-flipped candidate fails them
with or without labels), |AUROC delta| (INT8: the drop of the primary score), the decision limits, and the primary
score's shift near the threshold against the decision margin, down or up (:mod:`gedge.compare.shift`: a candidate
that scores every image lower or higher fails it even where AUROC and every decision agree). The limits mean what
they say: a set too small for a limit fails it rather than being let off, and every limit fails on fewer images
than it can judge (:mod:`gedge.compare.sample_size`). The max relative error is
reported but not gated: the normalised score crosses zero, where relative error means nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from gedge.compare.limits import ParityLimits
from gedge.compare.sample_size import ImageCounts, too_few
from gedge.compare.shift import ScoreShift, ShiftLimits, score_shift
from gedge.core.artifacts.verdicts import Verification
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
    non_finite: int = 0  # candidate values that are NaN or infinite (over every network input)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class ClassDecisions:
    """Decisions over the images of one label: how many each side rejects, how many differ, and how many the
    candidate rejects that the reference accepts (for normal images: the false rejects it adds)."""

    n: int
    rejected_reference: int
    rejected_candidate: int
    n_disagree: int
    new_rejects: int

    @property
    def agreement(self) -> float:
        return 1.0 - self.n_disagree / self.n if self.n else 1.0

    @property
    def new_reject_rate(self) -> float:
        return self.new_rejects / self.n if self.n else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "agreement": self.agreement, "new_reject_rate": self.new_reject_rate}


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
    normal: ClassDecisions | None = None  # the normal images' decisions, where labelled
    anomalous: ClassDecisions | None = None  # the anomalous images' decisions, where labelled


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
    verification: Verification | None = None  # the candidate artifact's: hashes checked, verdicts, forced ones
    shift: ScoreShift | None = None  # the primary score's shift near the threshold against the decision margin
    too_few: list[str] = field(default_factory=list)  # limits the images are too few to judge (each fails)

    @property
    def failures(self) -> list[str]:
        shift = self.shift.failures if self.shift is not None else []
        return [*self.too_few, *(f for row in self.outputs for f in row.failures), *self.decisions.failures, *shift]

    @property
    def passed(self) -> bool:
        return not self.failures

    def output(self, name: str) -> OutputParity:
        return next(row for row in self.outputs if row.name == name)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["passed"] = self.passed
        values["failures"] = self.failures
        values["verification"] = None if self.verification is None else self.verification.to_dict()
        for row, out in zip(self.outputs, values["outputs"]):
            out["passed"] = row.passed
        for side in ("normal", "anomalous"):
            split = getattr(self.decisions, side)
            values["decisions"][side] = None if split is None else split.to_dict()
        values["shift"] = None if self.shift is None else self.shift.to_dict()
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


def _non_finite(name: str, reference: np.ndarray, candidate: np.ndarray) -> tuple[int, list[str]]:
    """The candidate's count of NaN/infinite values, and a failure line for each side that has any."""
    n = int(np.asarray(candidate).size)
    bad_cand = int((~np.isfinite(candidate)).sum())
    bad_ref = int((~np.isfinite(reference)).sum())
    failures = []
    if bad_cand:
        failures.append(f"{name}: {bad_cand} of {n} candidate values are not finite (NaN or infinity)")
    if bad_ref:
        failures.append(f"{name}: {bad_ref} of {n} reference values are not finite (NaN or infinity)")
    return bad_cand, failures


def _closeness_failures(row: OutputParity, limits: ParityLimits) -> list[str]:
    """Relative L2 error and (for scores, not amap) Spearman against the limits; NaN fails every comparison."""
    failures = []
    if not row.rel_l2 <= limits.max_rel_l2:
        failures.append(f"{row.name}: relative L2 error {row.rel_l2:.3g} > {limits.max_rel_l2:g}")
    if row.name != "amap":
        rho = float("nan") if row.spearman is None else row.spearman
        if not rho >= limits.min_spearman:
            why = " (no ranks: constant or not finite)" if rho != rho else ""
            failures.append(f"{row.name}: Spearman {rho:.6f} < {limits.min_spearman:g}{why}")
    return failures


def _auroc_failures(row: OutputParity, limits: ParityLimits) -> list[str]:
    if row.auroc_delta is None:
        return []
    if limits.auroc_scores == "all" and not abs(row.auroc_delta) <= limits.max_auroc_delta:
        return [f"{row.name}: |AUROC delta| {abs(row.auroc_delta):.4f} > {limits.max_auroc_delta:g}"]
    if limits.auroc_scores == "primary" and row.name == "score" and not -row.auroc_delta <= limits.max_auroc_delta:
        return [f"{row.name} (primary): AUROC drop {-row.auroc_delta:.4f} > {limits.max_auroc_delta:g}"]
    return []


def _score_row(name: str, reference: BackendScores, candidate: BackendScores, facts: ImageSetFacts,
               limits: ParityLimits) -> OutputParity:
    """One named score: its errors over every network input, its ranks and AUROC over images, its failures."""
    ref_inputs, cand_inputs = reference.inputs.named(name), candidate.inputs.named(name)
    non_finite, failures = _non_finite(name, ref_inputs, cand_inputs)
    ref_images, cand_images = reference.images.named(name), candidate.images.named(name)
    finite = not failures and bool(np.isfinite(ref_images).all() and np.isfinite(cand_images).all())
    max_abs, max_rel, rel_l2 = error_stats(ref_inputs, cand_inputs)
    row = OutputParity(name, len(reference.inputs), max_abs, max_rel, rel_l2,
                       spearman=spearman(ref_images, cand_images) if finite else None, non_finite=non_finite)
    if finite and facts.labels is not None and has_both_classes(facts.labels):
        row.auroc_reference = auroc(facts.labels, ref_images)
        row.auroc_candidate = auroc(facts.labels, cand_images)
        row.auroc_delta = row.auroc_candidate - row.auroc_reference
    row.failures = failures + _closeness_failures(row, limits) + _auroc_failures(row, limits)
    return row


def _amap_row(reference: Scores, candidate: Scores, limits: ParityLimits) -> OutputParity:
    non_finite, failures = _non_finite("amap", reference.amap, candidate.amap)
    max_abs, max_rel, rel_l2 = error_stats(reference.amap, candidate.amap)
    row = OutputParity("amap", int(reference.amap.size), max_abs, max_rel, rel_l2, non_finite=non_finite)
    row.failures = failures + _closeness_failures(row, limits)
    return row


def _class_decisions(ref_reject: np.ndarray, cand_reject: np.ndarray, which: np.ndarray) -> ClassDecisions:
    ref, cand = ref_reject[which], cand_reject[which]
    return ClassDecisions(int(which.sum()), int(ref.sum()), int(cand.sum()), int((ref != cand).sum()),
                          int((cand & ~ref).sum()))


def _decision_failures(decisions: DecisionParity, limits: ParityLimits) -> list[str]:
    failures = []
    if limits.min_agreement is not None and not decisions.agreement >= limits.min_agreement:
        failures.append(f"decisions: agreement {decisions.agreement:.2%} < {limits.min_agreement:.2%} "
                        f"({decisions.n_disagree} of {decisions.n_images} images differ)")
    normal, anomalous = decisions.normal, decisions.anomalous
    if limits.max_new_false_rejects is not None and normal is not None and normal.n \
            and not normal.new_reject_rate <= limits.max_new_false_rejects:
        failures.append(f"normal images: the candidate adds {normal.new_rejects} false rejects of {normal.n} "
                        f"({normal.new_reject_rate:.1%} > {limits.max_new_false_rejects:.1%}; the reference "
                        f"rejects {normal.rejected_reference})")
    if limits.min_anomalous_agreement is not None and anomalous is not None and anomalous.n \
            and not anomalous.agreement >= limits.min_anomalous_agreement:
        failures.append(f"anomalous images: agreement {anomalous.agreement:.2%} < "
                        f"{limits.min_anomalous_agreement:.2%} ({anomalous.n_disagree} of {anomalous.n} differ)")
    return failures


def _decisions(reference: Scores, candidate: Scores, facts: ImageSetFacts, limits: ParityLimits) -> DecisionParity:
    """Accept/reject agreement of the normalised score at the threshold, over all images and per label, with the
    first images that differ. A candidate score that is not a number rejects its image."""
    ref_reject = ~(reference.score < facts.threshold)
    cand_reject = ~(candidate.score < facts.threshold)
    differ = np.flatnonzero(ref_reject != cand_reject)
    n = len(reference)
    names = facts.names or [str(i) for i in range(n)]
    agreement = 1.0 - differ.size / n if n else 1.0
    decisions = DecisionParity(facts.threshold, agreement, n, int(differ.size), int(ref_reject.sum()),
                               int(cand_reject.sum()), [names[i] for i in differ[:10]])
    if facts.labels is not None and len(facts.labels) == n:
        labels = np.asarray(facts.labels)
        decisions.normal = _class_decisions(ref_reject, cand_reject, labels == 0)
        decisions.anomalous = _class_decisions(ref_reject, cand_reject, labels == 1)
    decisions.failures = _decision_failures(decisions, limits)
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
    shift = score_shift(reference.images.score, candidate.images.score, facts.threshold, facts.labels,
                        ShiftLimits(limits.max_score_shift, limits.max_score_bias))
    anomalous = decisions.anomalous.n if decisions.anomalous is not None else 0
    lacking = too_few(limits, ImageCounts(len(reference.images), shift.n_normal, anomalous, labelled))
    if any(line.startswith("score shift:") for line in lacking):
        shift.failures = []  # a margin from too few normal images judges nothing; the line above fails it
    return ParityReport(reference.name, candidate.name, limits.precision, limits, rows, decisions,
                        len(reference.images), len(reference.inputs), labelled, facts.description,
                        {"reference": reference.seconds, "candidate": candidate.seconds}, shift=shift,
                        too_few=lacking)

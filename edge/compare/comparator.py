"""TODO: docstring (split from gedge.bench.parity)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from gedge.compare.limits import ParityLimits
from gedge.core.metrics import auroc, has_both_classes
from gedge.core.scores import OUTPUT_NAMES, Scores


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

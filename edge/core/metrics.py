"""Detection metrics: exact AUROC with ties, the best-F1 threshold, TPR at a fixed FPR."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(np.int64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    return labels, scores


def has_both_classes(labels: np.ndarray) -> bool:
    labels = np.asarray(labels)
    return bool((labels == 1).any() and (labels == 0).any())


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, exact: the Mann-Whitney U statistic with mid-ranks for ties."""
    labels, scores = _check(labels, scores)
    n_pos = int((labels == 1).sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both normal and anomalous samples")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]  # first position of each run of equal scores
    ends = np.r_[starts[1:], scores.size]  # one past its last
    ranks = np.empty(scores.size, dtype=np.float64)
    ranks[order] = np.repeat(0.5 * (starts + ends - 1) + 1.0, ends - starts)  # a tie's members share its mid-rank
    rank_sum = ranks[labels == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclass(frozen=True)
class ThresholdResult:
    threshold: float
    f1: float
    precision: float
    recall: float


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> ThresholdResult:
    """The threshold (``score >= t`` is anomalous) that maximises F1 over all distinct scores."""
    labels, scores = _check(labels, scores)
    best = ThresholdResult(float("inf"), 0.0, 0.0, 0.0)
    n_pos = int(labels.sum())
    for t in np.unique(scores):
        predicted = scores >= t
        tp = int((predicted & (labels == 1)).sum())
        if tp == 0:
            continue
        precision = tp / int(predicted.sum())
        recall = tp / n_pos
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best.f1:
            best = ThresholdResult(float(t), f1, precision, recall)
    return best


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float = 0.05) -> float:
    """Highest true-positive rate over thresholds whose false-positive rate is at most ``max_fpr``."""
    labels, scores = _check(labels, scores)
    neg = np.sort(scores[labels == 0])[::-1]
    pos = scores[labels == 1]
    if neg.size == 0 or pos.size == 0:
        raise ValueError("TPR at FPR needs both normal and anomalous samples")
    allowed_fp = int(np.floor(max_fpr * neg.size))
    # Threshold just above the (allowed_fp + 1)-th highest normal score.
    bar = neg[allowed_fp] if allowed_fp < neg.size else -np.inf
    return float((pos > bar).mean())


def decision_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    labels, scores = _check(labels, scores)
    predicted = scores >= threshold
    tp = int((predicted & (labels == 1)).sum())
    fp = int((predicted & (labels == 0)).sum())
    n_pos, n_neg = int((labels == 1).sum()), int((labels == 0).sum())
    return {"tpr": tp / n_pos if n_pos else float("nan"), "fpr": fp / n_neg if n_neg else float("nan"),
            "accuracy": float((predicted == (labels == 1)).mean())}

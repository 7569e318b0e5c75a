"""The report's charts, as PNG bytes: score histograms of normal and defective images with the threshold, and
ROC curves per defect class. The style is gedge's (:mod:`gedge.core.plots`), shared with the training curve."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gedge.core.metrics import auroc
from gedge.core.optional import require
from gedge.core.plots import DEFECTIVE, NORMAL, THRESHOLD, png_bytes, pyplot

BINS = 40


@dataclass(frozen=True)
class Marker:
    """A vertical line on a histogram: a threshold, or where a threshold fitted like it would sit."""

    value: float
    label: str
    dashed: bool = False


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) of every threshold ``score >= t``, from (0, 0) to (1, 1)."""
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(-scores, kind="mergesort")
    ranked, positive = scores[order], labels[order] == 1
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked) != 0), ranked.size - 1]
    tp = np.cumsum(positive)[last_of_tie]
    fp = np.cumsum(~positive)[last_of_tie]
    return (np.r_[0.0, fp / max(1, int((~positive).sum()))], np.r_[0.0, tp / max(1, int(positive.sum()))])


def histogram(title: str, normal: np.ndarray, defective: np.ndarray, markers: list[Marker],
              size: tuple[float, float] = (4.6, 2.6)) -> bytes:
    """Normal and defective images' scores on shared bins, with ``markers``."""
    plt = pyplot("the evaluation report")
    ticker = require("matplotlib.ticker")
    figure, axes = plt.subplots(figsize=size)
    values = np.concatenate([normal, defective])
    low, high = float(values.min()), float(values.max())
    for marker in markers:
        low, high = min(low, marker.value), max(high, marker.value)
    bins = np.linspace(low, high if high > low else low + 1.0, BINS + 1)
    for group, colour, name in ((normal, NORMAL, "normal"), (defective, DEFECTIVE, "defective")):
        axes.hist(group, bins=bins, color=colour, alpha=0.45, histtype="stepfilled", label=f"{name} ({group.size})")
        axes.hist(group, bins=bins, color=colour, histtype="step", linewidth=1.2)
    for marker in markers:
        axes.axvline(marker.value, color=THRESHOLD, linestyle="--" if marker.dashed else "-", linewidth=1.3,
                     label=f"{marker.label} {marker.value:.3g}")
    axes.xaxis.set_major_locator(ticker.MaxNLocator(6))
    axes.set_title(title)
    axes.set_xlabel("image score")
    axes.set_ylabel("images")
    axes.legend(loc="best")
    return png_bytes(figure)


def roc_chart(labels: np.ndarray, scores: np.ndarray, classes: list[str], score_name: str) -> bytes:
    """ROC curves of ``scores``: all defects, and each defect class against all the normal images."""
    plt = pyplot("the evaluation report")
    figure, axes = plt.subplots(figsize=(5.2, 4.4))
    normal = labels == 0
    groups = [("all defects", labels == 1)] + [(c, np.array([k == c for k in classes]) & (labels == 1))
                                                for c in sorted({c for c, y in zip(classes, labels) if y == 1})]
    for i, (name, positive) in enumerate(groups):
        keep = normal | positive
        fpr, tpr = roc_points(labels[keep], scores[keep])
        axes.plot(fpr, tpr, linewidth=2.2 if i == 0 else 1.3, color=THRESHOLD if i == 0 else None,
                  label=f"{name}: AUROC {auroc(labels[keep], scores[keep]):.3f} ({int(positive.sum())})")
    axes.plot([0, 1], [0, 1], color="#aaaaaa", linewidth=0.8, linestyle=":")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel("false-positive rate (normal images rejected)")
    axes.set_ylabel("true-positive rate (defects caught)")
    axes.set_title(f"ROC per defect class ({score_name})")
    axes.legend(loc="lower right")
    return png_bytes(figure)

"""Scoring image sets through any backend, and the evaluation report (the seed paper's Table II shape)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from gedge.core.backend import Backend
from gedge.core.metrics import auroc, best_f1_threshold, decision_metrics, has_both_classes, tpr_at_fpr
from gedge.core.preprocess import Preprocess
from gedge.core.scores import OUTPUT_NAMES, SCORE_NAMES, Scores
from gedge.data.datasets import LabeledImages
from gedge.data.tiles import Progress, load_prepared, score_images


@dataclass
class ReportRow:
    """One row of the evaluation table: a defect class (against all normals) or ``all``."""

    name: str
    n_normal: int
    n_anomalous: int
    auroc: dict[str, float]


@dataclass
class EvaluationReport:
    data: str
    primary: str
    threshold: float
    rows: list[ReportRow]
    best_score: str
    tpr_at_5pct_fpr: float
    best_f1: dict[str, float]
    at_threshold: dict[str, float]
    excluded: list[str] = field(default_factory=list)
    n_images: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_scores(image_scores: Scores, test: LabeledImages, primary: str, threshold: float,
                    data: str, excluded: list[str] | None = None) -> EvaluationReport:
    """AUROC of every score overall and per defect class; decisions at the stored threshold."""
    labels = test.labels
    if not has_both_classes(labels):
        raise ValueError("the test set needs both normal and anomalous images")
    classes = sorted({c for c, y in zip(test.classes, labels) if y == 1})
    rows = []
    groups = [("all", labels == 1)] + [(c, np.array([k == c for k in test.classes])) for c in classes]
    for name, positive in groups:
        keep = positive | (labels == 0)
        row_auroc = {s: auroc(labels[keep], image_scores.named(s)[keep]) for s in OUTPUT_NAMES}
        rows.append(ReportRow(name, int((labels == 0).sum()), int(positive.sum()), row_auroc))
    overall = rows[0].auroc
    best_score = max(SCORE_NAMES, key=lambda s: overall[s])
    f1 = best_f1_threshold(labels, image_scores.score)
    return EvaluationReport(
        data=data, primary=primary, threshold=threshold, rows=rows, best_score=best_score,
        tpr_at_5pct_fpr=tpr_at_fpr(labels, image_scores.score, 0.05),
        best_f1={"threshold": f1.threshold, "f1": f1.f1, "precision": f1.precision, "recall": f1.recall},
        at_threshold=decision_metrics(labels, image_scores.score, threshold),
        excluded=excluded or [], n_images=int(labels.size))


def evaluate_backend(backend: Backend, test: LabeledImages, pre: Preprocess, primary: str, threshold: float,
                     data: str, batch_size: int = 64, progress: Progress | None = None,
                     exclude: list[str] | None = None) -> tuple[EvaluationReport, Scores]:
    """Score a labelled set with a backend and build the report; ``exclude`` drops images by path."""
    excluded: list[str] = []
    if exclude:
        drop = {str(Path(p).resolve()) for p in exclude}
        keep = np.array([str(Path(p).resolve()) not in drop for p in test.paths])
        excluded = [str(p) for p, k in zip(test.paths, keep) if not k]
        test = test.subset(keep)
    images = load_prepared(test.paths, pre)
    image_scores, _ = score_images(backend, images, pre, batch_size, progress)
    return evaluate_scores(image_scores, test, primary, threshold, data, excluded), image_scores

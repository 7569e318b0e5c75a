"""`gedge evaluate` as a library call, for a checkpoint or any deployed artifact: the test set scored once, the
evaluation tables, and what the report draws from the same scores (every candidate score's image scores).

The candidate scores are :data:`gedge.core.scores.CANDIDATE_SCORES`, by name: a residual score is the maximum of
its tiles' values, a fusion the maximum of its tiles' mean z-score (with the model's score statistics), as training
ranks them on validation (:mod:`gedge.reference.validation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gedge.core.errors import DataError
from gedge.core.scores import CANDIDATE_SCORES
from gedge.data.datasets import LabeledImages, open_dataset
from gedge.data.tiles import Progress
from gedge.reference.evaluate import (
    EvaluationOptions,
    EvaluationReport,
    ScoredTestSet,
    candidate_image_scores,
    check_both_classes,
    report_of,
    score_test_set,
)
from gedge.reference.workflows import training_contaminants
from gedge.report.model import EvaluatedModel, open_scorer, read_model
from gedge.runtime.registry import Model


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate: a model file (checkpoint or deployed artifact) on a data set's labelled test split."""

    model: Model  # a model file, or an artifact opened already
    data: Path
    batch_size: int = 64
    reference: Model | None = None  # the torch reference of a deployed artifact (default: its recorded checkpoint)
    force: bool = False  # evaluate an artifact whose recorded verdict failed


@dataclass
class Evaluation:
    """A model's evaluation: its facts, the scored test set, the tables, every candidate's image scores."""

    model: EvaluatedModel
    data: Path
    scored: ScoredTestSet
    report: EvaluationReport
    candidates: dict[str, np.ndarray] = field(default_factory=dict)  # candidate -> image scores (raw units)
    notes: list[str] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return self.scored.test.labels

    @property
    def scores(self) -> np.ndarray:
        """The normalised primary score of every image (what the threshold applies to)."""
        return np.asarray(self.scored.images.score, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {**self.report.to_dict(), "model": self.model.summary(), "notes": self.notes}


def candidate_scores(scored: ScoredTestSet, stats: dict[str, dict[str, float]]) -> tuple[dict[str, np.ndarray],
                                                                                           list[str]]:
    """Image scores of every candidate primary score, and a note for each one the statistics cannot make."""
    out = candidate_image_scores(scored.tiles, scored.counts, stats)
    notes = [f"candidate {name} left out: the model records no score statistics for its components"
             for name in CANDIDATE_SCORES if name not in out]
    return out, notes


@dataclass
class EvaluationJob:
    """A model and a data set's test split, opened and checked (bad input fails before any progress is drawn)."""

    request: EvaluationRequest
    model: EvaluatedModel
    test: LabeledImages
    exclude: tuple[str, ...]  # training contaminants, when the model was trained on this data set

    def run(self, progress: Progress | None = None) -> Evaluation:
        r, model = self.request, self.model
        with_amap = any(self.test.mask_paths)  # localisation: pixel AUROC and PRO where the data has masks
        backend = open_scorer(model, with_amap, r.force)
        try:
            options = EvaluationOptions(r.batch_size, progress, self.exclude, str(model.path))
            scored = score_test_set(backend, self.test, model.preprocess, options)
        finally:
            backend.close()
        report = report_of(scored, model.decision, str(r.data), model.score_stats)
        candidates, notes = candidate_scores(scored, model.score_stats)
        if with_amap and scored.maps is None:
            notes.append(f"no pixel AUROC or PRO: {model.path.name} has no amap output (export with --amap)")
        return Evaluation(model, Path(r.data), scored, report, candidates, notes)


def prepare_evaluation(request: EvaluationRequest) -> EvaluationJob:
    """The model's facts and the data set's test split, checked before any scoring."""
    EvaluationOptions(request.batch_size)
    # a failed recorded verdict stops here, before the data is read; forced, the report says what was forced
    model = read_model(request.model, request.reference, request.force)
    dataset = open_dataset(request.data)
    if dataset.test is None:
        raise DataError("data set has no test/ folder to evaluate on", request.data)
    check_both_classes(dataset.test, Path(request.data) / "test" if dataset.layout == "mvtec" else request.data)
    return EvaluationJob(request, model, dataset.test, training_contaminants(model.training, request.data))

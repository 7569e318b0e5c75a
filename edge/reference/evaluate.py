"""The evaluation report of a labelled test set scored through any backend (the seed paper's Table II shape).

AUROC of every score, overall and per defect class, and the decisions the checkpoint's decision rule makes at
its threshold. Scoring goes through :func:`gedge.data.tiles.score_images`, like every other scoring of images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from gedge.core.backend import Backend
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, ConfigError, DataError
from gedge.core.localisation import Localisation
from gedge.core.metrics import auroc, best_f1_threshold, decision_metrics, has_both_classes, tpr_at_fpr
from gedge.core.preprocess import Preprocess
from gedge.core.scores import CANDIDATE_SCORES, OUTPUT_NAMES, SCORE_NAMES, Scores, components
from gedge.data.datasets import LabeledImages
from gedge.data.survey import survey_images
from gedge.data.tiles import Progress, load_prepared, network_counts, score_images
from gedge.reference.localise import image_maps, localisation_by_class


@dataclass
class ReportRow:
    """One row of the evaluation table: a defect class (against all normals) or ``all``."""

    name: str
    n_normal: int
    n_anomalous: int
    auroc: dict[str, float]


@dataclass
class EvaluationReport:
    """Per-class AUROC rows, the best score, and the decisions at the primary score's threshold."""

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
    # pixel AUROC and PRO from the anomaly maps, overall ("all") and per class, where the data has masks
    localisation: dict[str, Localisation] = field(default_factory=dict)
    # image AUROC of every candidate primary score (fusions z-scored with the model's normal-tile statistics),
    # overall: which score training could have chosen, measured on the test set
    candidates: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EvaluationOptions:
    """How to run an evaluation: inputs per batch, a progress callback, image paths to leave out."""

    batch_size: int = 64
    progress: Progress | None = None
    exclude: tuple[str, ...] = ()
    model: str = ""  # the model file, named in errors (default: the backend's artifact, or its name)
    score_stats: dict[str, dict[str, float]] | None = None  # normal-tile statistics: fused candidates' AUROC

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")


def check_both_classes(test: LabeledImages, folder: str | Path) -> None:
    """A one-line DataError naming ``folder`` unless the test set has normal and anomalous images (AUROC needs
    both)."""
    if has_both_classes(test.labels):
        return
    normal = int((test.labels == 0).sum())
    have = f"only {normal} normal images" if normal else f"only {len(test.labels)} anomalous images"
    raise DataError(f"the test set has {have}; evaluation needs normal (good/) and anomalous (<defect>/) images",
                    folder)


def check_finite(image_scores: Scores, model: str | Path) -> None:
    """A one-line ArtifactError naming ``model`` when any image score is NaN or infinite: a NaN is never over
    the threshold, so it would pass as a normal image, and AUROC is undefined."""
    broken = int((~np.isfinite(image_scores.score)).sum())
    if broken:
        raise ArtifactError(f"the model gives non-finite scores (NaN or infinity) for {broken} of "
                            f"{len(image_scores)} images: its weights are corrupt or its training diverged", model)


def evaluate_scores(image_scores: Scores, test: LabeledImages, decision: DecisionRule, data: str,
                    excluded: list[str] | None = None) -> EvaluationReport:
    """AUROC of every score overall and per defect class; decisions at the decision rule's threshold."""
    labels = test.labels
    check_both_classes(test, data)
    check_finite(image_scores, "the model")
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
        data=data, primary=decision.primary, threshold=decision.threshold, rows=rows, best_score=best_score,
        tpr_at_5pct_fpr=tpr_at_fpr(labels, image_scores.score, 0.05),
        best_f1={"threshold": f1.threshold, "f1": f1.f1, "precision": f1.precision, "recall": f1.recall},
        at_threshold=decision_metrics(labels, image_scores.score, decision.threshold),
        excluded=excluded or [], n_images=int(labels.size))


def candidate_aurocs(tiles: Scores, counts: list[int], labels: np.ndarray,
                     stats: dict[str, dict[str, float]] | None) -> dict[str, float]:
    """Image AUROC (the maximum over each image's tiles) of every candidate primary score; fusions need ``stats``
    (the normal tiles' mean and std per score) and are left out without them."""
    bounds = np.cumsum([0, *counts])
    out = {}
    for name in CANDIDATE_SCORES:
        if len(components(name)) > 1 and not stats:
            continue
        raw = DecisionRule.candidate(name, stats or {}).raw(tiles)
        out[name] = auroc(labels, np.array([raw[a:b].max() for a, b in zip(bounds[:-1], bounds[1:])]))
    return out


def evaluate_backend(backend: Backend, test: LabeledImages, pre: Preprocess, decision: DecisionRule, data: str,
                     options: EvaluationOptions | None = None) -> tuple[EvaluationReport, Scores]:
    """Score a labelled set with a backend and build the report; ``options.exclude`` drops images by path."""
    options = options or EvaluationOptions()
    excluded: list[str] = []
    if options.exclude:
        drop = {str(Path(p).resolve()) for p in options.exclude}
        keep = np.array([str(Path(p).resolve()) not in drop for p in test.paths])
        excluded = [str(p) for p, k in zip(test.paths, keep) if not k]
        test = test.subset(keep)
    images = load_prepared(test.paths, pre)
    image_scores, tiles = score_images(backend, images, pre, options.batch_size, options.progress)
    artifact = backend.info.artifact
    check_finite(image_scores, artifact.path if artifact is not None else options.model or backend.name)
    report = evaluate_scores(image_scores, test, decision, data, excluded)
    counts = network_counts(images, pre)
    report.candidates = candidate_aurocs(tiles, counts, test.labels, options.score_stats)
    if tiles.amap is not None:
        shapes = [(h, w) for h, w in survey_images(test.paths).sizes]
        report.localisation = localisation_by_class(image_maps(tiles, counts, images, shapes, pre),
                                                    test)
    return report, image_scores

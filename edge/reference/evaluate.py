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


def candidate_image_scores(tiles: Scores, counts: list[int],
                           stats: dict[str, dict[str, float]] | None) -> dict[str, np.ndarray]:
    """Image scores (the maximum over each image's tiles) of every candidate primary score; a fusion needs its
    components' normal-tile ``stats`` (mean and std per score) and is left out without them."""
    starts = np.cumsum([0, *counts])[:-1]
    out = {}
    for name in CANDIDATE_SCORES:
        if len(components(name)) > 1 and not all(p in (stats or {}) for p in components(name)):
            continue
        out[name] = np.maximum.reduceat(DecisionRule.candidate(name, stats or {}).raw(tiles), starts)
    return out


def candidate_aurocs(tiles: Scores, counts: list[int], labels: np.ndarray,
                     stats: dict[str, dict[str, float]] | None) -> dict[str, float]:
    """Image AUROC of every candidate primary score (:func:`candidate_image_scores`)."""
    return {name: auroc(labels, values) for name, values in candidate_image_scores(tiles, counts, stats).items()}


@dataclass
class ScoredTestSet:
    """A labelled test set scored through a backend: image scores, tile scores (for scores computed from tiles, such
    as the candidate fusions) and, where the backend gave anomaly maps, every image's map at its own resolution."""

    test: LabeledImages
    images: Scores
    tiles: Scores  # without ``amap`` (the maps are in ``maps``)
    counts: list[int]  # network inputs (tiles) of each image, in order
    maps: list[np.ndarray] | None = None
    excluded: list[str] = field(default_factory=list)


def _leave_out(test: LabeledImages, exclude: tuple[str, ...]) -> tuple[LabeledImages, list[str]]:
    if not exclude:
        return test, []
    drop = {str(Path(p).resolve()) for p in exclude}
    keep = np.array([str(Path(p).resolve()) not in drop for p in test.paths])
    return test.subset(keep), [str(p) for p, k in zip(test.paths, keep) if not k]


def score_test_set(backend: Backend, test: LabeledImages, pre: Preprocess,
                   options: EvaluationOptions | None = None) -> ScoredTestSet:
    """Score a labelled set with a backend (``options.exclude`` drops images by path); NaN scores are an error
    naming the model. Anomaly maps are made where the backend returns ``amap``."""
    options = options or EvaluationOptions()
    test, excluded = _leave_out(test, options.exclude)
    images = load_prepared(test.paths, pre)
    image_scores, tiles = score_images(backend, images, pre, options.batch_size, options.progress)
    artifact = backend.info.artifact
    check_finite(image_scores, artifact.path if artifact is not None else options.model or backend.name)
    counts = network_counts(images, pre)
    maps = None
    if tiles.amap is not None:
        shapes = [(h, w) for h, w in survey_images(test.paths).sizes]
        maps = image_maps(tiles, counts, images, shapes, pre)
        tiles.amap = None
    return ScoredTestSet(test, image_scores, tiles, counts, maps, excluded)


def report_of(scored: ScoredTestSet, decision: DecisionRule, data: str,
              score_stats: dict[str, dict[str, float]] | None = None) -> EvaluationReport:
    """The evaluation report of a scored test set: AUROC tables, decisions, every candidate score's AUROC (fusions
    with ``score_stats``), and localisation where there are maps."""
    report = evaluate_scores(scored.images, scored.test, decision, data, scored.excluded)
    report.candidates = candidate_aurocs(scored.tiles, scored.counts, scored.test.labels, score_stats)
    if scored.maps is not None:
        report.localisation = localisation_by_class(scored.maps, scored.test)
    return report


def evaluate_backend(backend: Backend, test: LabeledImages, pre: Preprocess, decision: DecisionRule, data: str,
                     options: EvaluationOptions | None = None) -> tuple[EvaluationReport, Scores]:
    """Score a labelled set with a backend and build the report; ``options.exclude`` drops images by path."""
    scored = score_test_set(backend, test, pre, options)
    return report_of(scored, decision, data, (options or EvaluationOptions()).score_stats), scored.images

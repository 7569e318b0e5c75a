"""Everything the report shows, assembled from one evaluation: the summary, the charts, the tables, the threshold
choices, the galleries and the model's facts. :mod:`gedge.report.html` renders it."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import numpy as np
from gedge.core.metrics import auroc
from gedge.core.plots import png_bytes
from gedge.core.scores import OUTPUT_NAMES
from gedge.core.thresholds import (
    Rates,
    normal_quantile,
    rates_at,
    threshold_for_escape_rate,
    threshold_for_false_reject_rate,
)
from gedge.reference.curves import curve_figure
from gedge.report.evaluation import Evaluation
from gedge.report.facts import Section, fact_sections, fitted_on, library_versions
from gedge.report.gallery import Gallery, Picture, build_galleries, png_picture
from gedge.report.plots import Marker, histogram, roc_chart

DEFAULT_GALLERY = 12


@dataclass
class Figure:
    title: str
    picture: Picture
    caption: str = ""


@dataclass
class ThresholdRow:
    name: str
    how: str
    rates: Rates
    current: bool = False
    fitted_here: bool = True  # placed on this test set: its rates here are optimistic
    command: str = ""  # the `gedge threshold` options that set it


@dataclass
class ReportContent:
    title: str
    created: str
    summary: list[tuple[str, str]]
    warnings: list[str]
    primary_histogram: Figure
    candidate_histograms: list[Figure]
    roc: Figure
    auroc_columns: list[str]
    auroc_rows: list[tuple[str, int, int, list[float]]]
    localisation_rows: list[tuple[str, float, float, int, int]]
    candidate_rows: list[tuple[str, float | None, float, bool]]  # name, validation AUROC, AUROC here, primary
    thresholds: list[ThresholdRow]
    galleries: list[Gallery]
    sections: list[Section]
    training_curve: Figure | None
    versions: dict[str, str]
    notes: list[str] = field(default_factory=list)


def figure(title: str, png: bytes, caption: str = "") -> Figure:
    return Figure(title, png_picture(png), caption)


def _rate(count: int, total: int) -> str:
    return f"{count} of {total} ({count / total:.1%})" if total else "none"


def threshold_rows(evaluation: Evaluation) -> list[ThresholdRow]:
    """The current threshold and the alternatives a user may choose from, with their rates on this test set."""
    labels, scores, decision = evaluation.labels, evaluation.scores, evaluation.model.decision
    rows = [ThresholdRow("current", decision.threshold_rule or "recorded in the model",
                         rates_at(labels, scores, decision.threshold), True, fitted_on(evaluation))]
    for q in (0.99, 0.999):
        rows.append(ThresholdRow(f"normals' {q:g} quantile", f"the {q:g} quantile of this test set's normal scores",
                                 rates_at(labels, scores, normal_quantile(labels, scores, q))))
    rows.append(ThresholdRow("zero escapes", "the highest threshold that rejects every defective test image",
                             rates_at(labels, scores, threshold_for_escape_rate(labels, scores, 0.0)),
                             command="--escape-rate 0"))
    rows.append(ThresholdRow("1 % false rejects", "the lowest threshold that rejects at most 1 % of the normal images",
                             rates_at(labels, scores, threshold_for_false_reject_rate(labels, scores, 0.01)),
                             command="--false-reject-rate 0.01"))
    best = evaluation.report.best_f1.get("threshold", float("inf"))
    if np.isfinite(best):
        rows.append(ThresholdRow("best F1", "the threshold of the highest F1 on this test set",
                                 rates_at(labels, scores, best)))
    return rows


def histograms(evaluation: Evaluation) -> tuple[Figure, list[Figure]]:
    """The primary score's histogram with the threshold, and one per candidate score."""
    labels, decision = evaluation.labels, evaluation.model.decision
    normal, defective = labels == 0, labels == 1
    scores = evaluation.scores
    primary = figure(f"primary score: {decision.primary} (normalised)",
                     histogram(f"{decision.primary}, normalised: the decision score", scores[normal],
                               scores[defective], [Marker(decision.threshold, "threshold")], size=(7.2, 3.2)))
    candidates = []
    for name, values in evaluation.candidates.items():
        if name == decision.primary:
            marker = Marker(decision.mean + decision.threshold * decision.std, "threshold")
        else:
            marker = Marker(normal_quantile(labels, values, 0.99), "normals' 0.99 quantile", dashed=True)
        png = histogram(f"{name}{' (primary)' if name == decision.primary else ''}: AUROC "
                        f"{auroc(labels, values):.3f}", values[normal], values[defective], [marker])
        candidates.append(figure(name, png))
    return primary, candidates


def summary_of(evaluation: Evaluation) -> list[tuple[str, str]]:
    report, labels, scores = evaluation.report, evaluation.labels, evaluation.scores
    at = rates_at(labels, scores, evaluation.model.decision.threshold)
    rows = [("image AUROC", f"{report.rows[0].auroc['score']:.3f}")]
    where = report.localisation.get("all")
    if where is not None:
        rows += [("pixel AUROC", f"{where.pixel_auroc:.3f}"), ("PRO", f"{where.pro:.3f}")]
    rows += [("threshold", f"{at.threshold:.3g}"), ("false rejects", _rate(at.false_rejects, at.normals)),
             ("escapes", _rate(at.escapes, at.defective)), ("test images", str(len(labels)))]
    return rows


def warnings_of(evaluation: Evaluation, galleries: list[Gallery]) -> list[str]:
    found = []
    if fitted_on(evaluation):
        found.append("The threshold was fitted on this same data: the false-reject and escape rates shown at it are "
                     "optimistic. Measure them on images it was not fitted on.")
    verification = evaluation.model.verification
    if verification is not None:
        found += [*verification.warnings, *(f"forced over a failed verdict: {f}" for f in verification.forced)]
    if galleries and galleries[0].heat_note.startswith("no heat maps"):
        found.append(galleries[0].heat_note)
    return found + evaluation.notes


def candidate_rows(evaluation: Evaluation) -> list[tuple[str, float | None, float, bool]]:
    proxy = evaluation.model.training.get("proxy_auroc") or {}
    labels, primary = evaluation.labels, evaluation.model.decision.primary
    return [(name, proxy.get(name), auroc(labels, values), name == primary)
            for name, values in evaluation.candidates.items()]


def build_content(evaluation: Evaluation, gallery_limit: int = DEFAULT_GALLERY, batch_size: int = 64) -> ReportContent:
    """Everything the report shows (its charts drawn, its thumbnails made)."""
    model, report = evaluation.model, evaluation.report
    primary, candidates = histograms(evaluation)
    test = evaluation.scored.test
    roc = figure("ROC per defect class", roc_chart(evaluation.labels, evaluation.scores, test.classes,
                                                   f"{model.decision.primary}, normalised"))
    galleries = build_galleries(evaluation, gallery_limit, batch_size)
    history = model.training.get("history") or []
    curve = (figure("training curve", png_bytes(curve_figure(history, int(model.training.get("best_step", -1)))))
             if history else None)
    return ReportContent(
        title=f"{model.path.name} on {evaluation.data.name}",
        created=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        summary=summary_of(evaluation), warnings=warnings_of(evaluation, galleries),
        primary_histogram=primary, candidate_histograms=candidates, roc=roc, auroc_columns=list(OUTPUT_NAMES),
        auroc_rows=[(r.name, r.n_normal, r.n_anomalous, [r.auroc[s] for s in OUTPUT_NAMES]) for r in report.rows],
        localisation_rows=[(name, loc.pixel_auroc, loc.pro, loc.regions, loc.images)
                           for name, loc in report.localisation.items()],
        candidate_rows=candidate_rows(evaluation), thresholds=threshold_rows(evaluation), galleries=galleries,
        sections=fact_sections(evaluation), training_curve=curve, versions=library_versions())

"""`gedge threshold`: refit a model's decision threshold on labelled images, to a target escape rate or
false-reject rate, and record it with its source so that it travels with the model.

Training places the threshold on validation normals (their 0.99 quantile), since it must not look at the test
set. A user who signs off a line may want it elsewhere, for example at zero escapes on a set of labelled boards.
The refit scores the data set's labelled test split with the model itself (a deployed artifact on its own
backend), places the threshold with :mod:`gedge.core.thresholds`, and writes it where the model's decision rule
lives:

* a checkpoint: a new checkpoint (in place unless ``out``), whose graphs, INT8 artifacts and engines exported
  afterwards carry the threshold like every other fact of the decision rule;
* an ONNX graph or an OpenVINO IR: ``<artifact>.threshold.json`` beside it (:mod:`gedge.core.artifacts.threshold`),
  applied wherever the artifact is read, also by the engines built from the graph;
* an engine: its manifest.

The source records the data, how many images of each label, the target, the threshold replaced and when. Rates
measured on the images a threshold was fitted on are optimistic; the result says so, and a report on the same
data shows it.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from gedge import __version__
from gedge.core.artifacts.refit import refit_engine_manifest, write_threshold_file
from gedge.core.decision import DecisionRule, ThresholdSource
from gedge.core.errors import ConfigError
from gedge.core.thresholds import Rates, rates_at, threshold_for_escape_rate, threshold_for_false_reject_rate
from gedge.data.tiles import Progress
from gedge.reference.checkpoint import checkpoint_of, save_checkpoint
from gedge.reference.evaluate import EvaluationOptions, score_test_set
from gedge.report.evaluation import EvaluationRequest, prepare_evaluation
from gedge.report.model import EvaluatedModel, open_scorer


@dataclass(frozen=True)
class ThresholdRequest:
    """Refit ``model``'s threshold on ``data``'s labelled test split to one target rate."""

    model: Path
    data: Path
    escape_rate: float | None = None  # at most this share of the defective images accepted
    false_reject_rate: float | None = None  # at most this share of the normal images rejected
    out: Path | None = None  # a checkpoint: where the refitted checkpoint goes (default: over the model)
    batch_size: int = 64
    force: bool = False  # refit an artifact whose recorded verdict failed

    def __post_init__(self) -> None:
        if (self.escape_rate is None) == (self.false_reject_rate is None):
            raise ConfigError("give one target: --escape-rate or --false-reject-rate")
        rate = self.escape_rate if self.escape_rate is not None else self.false_reject_rate
        if not 0.0 <= rate < 1.0:
            raise ConfigError(f"the target rate must be at least 0 and below 1, got {rate}")
        if self.out is not None and Path(self.model).suffix.lower() != ".pt":
            raise ConfigError(f"{Path(self.model).name}: a deployed artifact's threshold is written beside it (or into "
                              "an engine's manifest); --out is for checkpoints")

    @property
    def target(self) -> str:
        if self.escape_rate is not None:
            return "zero escapes" if self.escape_rate == 0 else f"escape rate <= {self.escape_rate:g}"
        return "no false rejects" if self.false_reject_rate == 0 else \
            f"false-reject rate <= {self.false_reject_rate:g}"


@dataclass
class ThresholdResult:
    model: Path
    written: Path
    kind: str
    primary: str
    before: Rates
    after: Rates
    rule: str
    source: dict[str, Any]
    warning: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model": str(self.model), "written": str(self.written),
                "before": self.before.to_dict(), "after": self.after.to_dict()}


def _source(request: ThresholdRequest, model: EvaluatedModel, after: Rates, images: int) -> ThresholdSource:
    return ThresholdSource(
        method=request.target, data=str(Path(request.data).resolve()), n_images=images, n_normal=after.normals,
        n_defective=after.defective, escape_rate=request.escape_rate, false_reject_rate=request.false_reject_rate,
        fitted_with=model.path.name, previous_threshold=model.decision.threshold,
        previous_rule=model.decision.threshold_rule,
        fitted_at=datetime.datetime.now().astimezone().isoformat(timespec="seconds"), gedge_version=__version__)


def _write(model: EvaluatedModel, decision: DecisionRule, out: Path | None) -> Path:
    """The refitted rule written where the model keeps its decision rule (each as gedge read it: no file is read
    again)."""
    if model.kind == "checkpoint":
        return save_checkpoint(replace(checkpoint_of(model.artifact), decision=decision), out or model.path)
    if model.kind == "engine":
        return refit_engine_manifest(model.artifact, decision)
    return write_threshold_file(model.artifact, decision)


def fit_threshold(request: ThresholdRequest, progress: Progress | None = None) -> ThresholdResult:
    """Score the labelled test split with the model, place the threshold, and write it where the model keeps it."""
    job = prepare_evaluation(EvaluationRequest(request.model, request.data, request.batch_size, force=request.force))
    model = job.model
    backend = open_scorer(model, force=request.force)
    try:
        options = EvaluationOptions(request.batch_size, progress, job.exclude, str(model.path))
        scored = score_test_set(backend, job.test, model.preprocess, options)
    finally:
        backend.close()
    labels, scores = scored.test.labels, scored.images.score
    if request.escape_rate is not None:
        threshold = threshold_for_escape_rate(labels, scores, request.escape_rate)
    else:
        threshold = threshold_for_false_reject_rate(labels, scores, request.false_reject_rate)
    before, after = rates_at(labels, scores, model.decision.threshold), rates_at(labels, scores, threshold)
    images = len(labels)
    rule = (f"{request.target} on {images} labelled images of {Path(request.data).name} ({after.normals} normal, "
            f"{after.defective} defective); rates measured on them are optimistic")
    source = _source(request, model, after, images)
    written = _write(model, model.decision.refitted(threshold, rule, source), request.out)
    warning = (f"the threshold was fitted on these {images} images of {request.data}: false-reject and escape rates "
               "measured on the same images are optimistic; measure them on images it was not fitted on")
    return ThresholdResult(model.path, written, model.kind, model.decision.primary, before, after, rule,
                           source.to_dict(), warning)

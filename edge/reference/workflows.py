"""The reference commands as library calls: evaluate a checkpoint on a data set, score image files, import a
foreign checkpoint (training: :mod:`gedge.reference.training_job`). Each takes a request dataclass and returns a
result with ``to_dict()``; the CLI only parses and renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gedge.core.errors import ConfigError, DataError
from gedge.core.scores import Scores
from gedge.data.datasets import LabeledImages, open_dataset
from gedge.data.images import expand_inputs
from gedge.data.tiles import Progress, load_prepared, score_images
from gedge.reference.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from gedge.reference.decision_fit import refit_on_normals
from gedge.reference.evaluate import (
    EvaluationOptions,
    EvaluationReport,
    check_both_classes,
    check_finite,
    evaluate_backend,
)
from gedge.reference.importers import detect_format, import_anomalib, import_ganomaly
from gedge.reference.scoring import ReferenceScorer


@dataclass
class EvaluationJob:
    """A checkpoint and a data set's test split, opened and checked (bad input fails before any progress)."""

    checkpoint: Checkpoint
    test: LabeledImages
    data: Path
    exclude: tuple[str, ...]  # training contaminants, when the checkpoint was trained on this data set
    path: Path | None = None  # the checkpoint file, named in errors

    def run(self, batch_size: int = 64, progress: Progress | None = None) -> EvaluationReport:
        """The seed paper's Table II: AUROC per score and per defect class, decisions at the threshold."""
        c = self.checkpoint
        with_amap = any(self.test.mask_paths)  # localisation: pixel AUROC and PRO from the anomaly maps
        report, _ = evaluate_backend(ReferenceScorer(c, with_amap=with_amap), self.test, c.preprocess, c.decision,
                                     str(self.data),
                                     EvaluationOptions(batch_size, progress, self.exclude, str(self.path or ""),
                                                       c.score_stats or None))
        return report


def prepare_evaluation(checkpoint_path: Path, data: Path, batch_size: int = 64) -> EvaluationJob:
    """The checkpoint and the data set's test split, checked (with the batch size the job will use) before any
    progress is drawn."""
    EvaluationOptions(batch_size)
    checkpoint = load_checkpoint(checkpoint_path)
    dataset = open_dataset(data)
    if dataset.test is None:
        raise DataError("data set has no test/ folder to evaluate on", data)
    check_both_classes(dataset.test, Path(data) / "test" if dataset.layout == "mvtec" else data)
    return EvaluationJob(checkpoint, dataset.test, Path(data), training_contaminants(checkpoint.facts, data),
                         Path(checkpoint_path))


def training_contaminants(facts: dict[str, Any], data: Path) -> tuple[str, ...]:
    """The test images a model was trained on (``--contamination``), when it is evaluated on the data set it was
    trained on: evaluation leaves them out."""
    same_data = bool(facts.get("data")) and Path(facts["data"]).resolve() == Path(data).resolve()
    return tuple(facts.get("contaminated_with", [])) if same_data else ()


@dataclass
class ScoredFiles:
    """Image scores of files, and the decision at the checkpoint's threshold."""

    paths: list[Path]
    scores: Scores
    primary: str
    threshold: float

    def records(self) -> list[dict[str, Any]]:
        out = []
        for i, path in enumerate(self.paths):
            record: dict[str, Any] = {"path": str(path), **{k: float(v[i]) for k, v in self.scores.as_dict().items()}}
            record["anomalous"] = bool(self.scores.score[i] >= self.threshold)
            out.append(record)
        return out

    def to_dict(self) -> dict[str, Any]:
        records = self.records()
        return {"primary": self.primary, "threshold": self.threshold, "images": records,
                "rejected": sum(r["anomalous"] for r in records)}


def score_files(checkpoint_path: Path, inputs: list[Path], batch_size: int = 64) -> ScoredFiles:
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    checkpoint = load_checkpoint(checkpoint_path)
    files = expand_inputs(inputs)
    images = load_prepared(files, checkpoint.preprocess)
    image_scores, _ = score_images(ReferenceScorer(checkpoint), images, checkpoint.preprocess, batch_size)
    check_finite(image_scores, checkpoint_path)
    return ScoredFiles(files, image_scores, checkpoint.decision.primary, checkpoint.decision.threshold)


@dataclass(frozen=True)
class ImportRequest:
    sources: tuple[Path, ...]  # netG.pth and netD.pth (original GANomaly), or one anomalib .ckpt
    out: Path
    data: Path | None = None  # fit the decision rule on this data set's normal training images
    primary: str = "d1"


@dataclass
class ImportResult:
    checkpoint: Checkpoint
    out: Path
    refitted: bool
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        rule = self.checkpoint.decision
        return {"checkpoint": str(self.out), "imported_from": self.checkpoint.facts.get("imported_from"),
                **self.checkpoint.model.to_dict(), "primary": rule.primary, "threshold": rule.threshold,
                "decision_fitted": self.refitted}


def import_checkpoint(request: ImportRequest) -> ImportResult:
    """Convert original GANomaly or anomalib weights into a gedge checkpoint written to ``request.out``."""
    sources = list(request.sources)
    if not 1 <= len(sources) <= 2:
        raise ConfigError("give netG.pth and netD.pth (original GANomaly) or one anomalib .ckpt")
    kinds = [detect_format(s) for s in sources]
    if kinds == ["anomalib-ckpt"]:
        checkpoint = import_anomalib(sources[0])
    elif sorted(kinds) == ["ganomaly-netd", "ganomaly-netg"]:
        checkpoint = import_ganomaly(sources[kinds.index("ganomaly-netg")], sources[kinds.index("ganomaly-netd")])
    else:
        raise ConfigError(f"unsupported combination of inputs: {', '.join(kinds)} "
                          "(expected netG.pth + netD.pth, or one anomalib .ckpt)")
    if request.data is not None:
        dataset = open_dataset(request.data)
        checkpoint = refit_on_normals(checkpoint, load_prepared(dataset.train, checkpoint.preprocess),
                                      request.primary)
    save_checkpoint(checkpoint, request.out)
    return ImportResult(checkpoint, request.out, request.data is not None)

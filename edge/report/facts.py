"""The model's facts as the report shows them: the model and its data, the settings chosen and why, the score
chosen, where the threshold comes from, what the artifact's recorded checks say, and the versions involved.

Each section is a list of (label, text) rows, made from the facts the model records (its
:class:`~gedge.core.artifacts.Artifact`, through :class:`~gedge.report.model.EvaluatedModel`); a fact the model does
not record is left out rather than guessed.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from gedge import __version__
from gedge.report.evaluation import Evaluation

# The libraries whose versions change scores or the report: read from their installed metadata (none is imported).
LIBRARIES = ("numpy", "torch", "onnx", "onnxruntime", "openvino", "nncf", "tensorrt", "tensorrt-rtx-cu13", "pillow",
             "matplotlib", "jinja2")


@dataclass
class Section:
    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            self.rows.append((label, value if isinstance(value, str) else compact(value)))


def compact(value: Any) -> str:
    """A fact as short text: numbers to four significant digits, mappings as 'key value' pairs."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {compact(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(compact(v) for v in value)
    return json.dumps(value) if not isinstance(value, (str, int)) else str(value)


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "gedge": __version__}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def model_section(evaluation: Evaluation) -> Section:
    model = evaluation.model
    section = Section("Model")
    section.add("file", str(model.path))
    section.add("kind", f"{model.kind}, {model.precision}")
    section.add("network", model.artifact.model)
    training = model.training
    section.add("trained with", ", ".join(f"{name} {training[key]}" for name, key in (
        ("gedge", "gedge_version"), ("torch", "torch_version")) if training.get(key)) or None)
    section.add("trained at", training.get("created"))
    if model.deployed:
        lineage = model.artifact.lineage
        section.add("made from", f"{lineage.checkpoint} (sha256 {lineage.checkpoint_sha256[:12]})"
                    if lineage.checkpoint else None)
        section.add("torch reference", str(model.reference_path) if model.reference_path else model.reference_note)
    return section


def data_section(evaluation: Evaluation) -> Section:
    training, test = evaluation.model.training, evaluation.scored.test
    section = Section("Data")
    section.add("trained on", f"{training['data']} ({training.get('layout', '?')} layout)" if "data" in training
                else None)
    section.add("training images", training.get("n_train_images"))
    section.add("validation images (normals, and proxy anomalies painted on them)",
                training.get("n_validation_images"))
    section.add("defective images mixed into training", len(training.get("contaminated_with") or []) or None)
    counts: dict[str, int] = {}
    for name, label in zip(test.classes, test.labels):
        counts["good" if label == 0 else name] = counts.get("good" if label == 0 else name, 0) + 1
    section.add("evaluated on", f"{evaluation.data}: {len(test.paths)} test images ({compact(counts)})")
    section.add("left out of the evaluation (trained on)", len(evaluation.scored.excluded) or None)
    return section


def settings_section(evaluation: Evaluation) -> Section:
    training = evaluation.model.training
    section = Section("Settings chosen and why")
    choice = training.get("input_choice") or {}
    section.add("input", choice.get("preprocess") or evaluation.model.preprocess.to_dict())
    for i, reason in enumerate(choice.get("reasons") or []):
        section.add(f"why ({i + 1})", reason)
    config = training.get("train_config") or {}
    section.add("preset", training.get("preset"))
    section.add("training", {k: config[k] for k in ("steps", "max_steps", "batch_size", "lr", "val_every", "seed")
                             if config.get(k) is not None})
    section.add("stopped", f"{training['stop_reason']} after {training.get('steps_run', '?')} steps"
                if training.get("stop_reason") else None)
    section.add("checkpoint kept", f"step {training['best_step']}: the best validation (never the test set)"
                if "best_step" in training else None)
    section.notes = [str(n) for n in training.get("convergence_notes") or []]
    return section


def score_section(evaluation: Evaluation) -> Section:
    """The primary score and why: each candidate's validation AUROC (which chose it) beside its AUROC here."""
    model, training = evaluation.model, evaluation.model.training
    section = Section("Score chosen")
    section.add("primary score", model.decision.primary)
    proxy = training.get("proxy_auroc") or {}
    if proxy:
        section.add("why", "the candidate with the highest validation AUROC (normals against proxy anomalies) at the "
                           "kept step")
    return section


def threshold_section(evaluation: Evaluation, fitted_here: bool) -> Section:
    decision = evaluation.model.decision
    section = Section("Threshold")
    section.add("threshold", f"{decision.threshold:.4g} (normalised {decision.primary}; score >= threshold rejects)")
    section.add("rule", decision.threshold_rule)
    section.add("source", decision.threshold_source.to_dict())
    if fitted_here:
        section.notes.append("the threshold was fitted on this same data: the false-reject and escape rates "
                             "measured here at it are optimistic")
    return section


def checks_section(evaluation: Evaluation) -> Section | None:
    """A deployed artifact's verification and its recorded checks (INT8 gate, engine parity, forced verdicts)."""
    model = evaluation.model
    if not model.deployed:
        return None
    section = Section("Recorded checks of the deployed artifact")
    verification = model.verification
    if verification is not None:
        section.add("status", verification.status)
        section.add("verified", verification.line())
        for name, state in verification.verdicts.items():
            section.add(name, state)
        section.notes = [*verification.refusals, *verification.warnings]
    for name, record in model.records.items():
        section.add(f"recorded {name}", record)
    return section


def fitted_on(evaluation: Evaluation) -> bool:
    """Whether the model's threshold was fitted on the data evaluated here."""
    data = evaluation.model.decision.threshold_source.data
    return bool(data) and Path(data).resolve() == Path(evaluation.data).resolve()


def fact_sections(evaluation: Evaluation) -> list[Section]:
    checks = checks_section(evaluation)
    sections = [model_section(evaluation), data_section(evaluation), settings_section(evaluation),
                score_section(evaluation), threshold_section(evaluation, fitted_on(evaluation))]
    return sections + ([checks] if checks is not None else [])

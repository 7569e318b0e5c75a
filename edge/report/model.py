"""The model a report or a threshold fit is about: a gedge checkpoint, or a deployed artifact (ONNX graph, OpenVINO
IR, TensorRT engine), opened once through the runtime registry (:func:`gedge.runtime.registry.open_model`, which
reads it with :func:`gedge.core.artifacts.open`), with what it records about itself.

:func:`read_model` makes an :class:`EvaluatedModel`: the :class:`~gedge.core.artifacts.Artifact` (its decision rule,
with a refitted threshold where one was recorded; its score statistics, which the candidate fusions need; its hashes
verified and recorded checks: an INT8 gate, engine parity), the training facts (a checkpoint's own, the copy an
exported graph carries, or an engine's checkpoint's), and the torch reference checkpoint where it can be found, for
heat maps of an artifact without an ``amap`` output. Everything is read from those objects; no file is read twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gedge.core import artifacts
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.verdicts import Verification
from gedge.core.backend import Backend
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.preprocess import Preprocess
from gedge.runtime.registry import Model, open_backend, open_model


@dataclass(frozen=True)
class EvaluatedModel:
    """A model file as the report reads it (see the module docstring)."""

    artifact: Artifact  # its recorded verdicts enforced (a forced one says so)
    training: dict[str, Any] = field(default_factory=dict)  # data, settings and why, history, versions
    reference: Artifact | None = None  # the torch reference checkpoint (a checkpoint is its own), where it is here
    reference_note: str = ""  # why there is no reference, or what to know about the one found

    @property
    def path(self) -> Path:
        return Path(self.artifact.path)

    @property
    def kind(self) -> str:
        return self.artifact.kind

    @property
    def decision(self) -> DecisionRule:
        return self.artifact.decision

    @property
    def score_stats(self) -> dict[str, dict[str, float]]:
        return dict(self.artifact.model_facts().score_stats)

    @property
    def preprocess(self) -> Preprocess:
        return self.artifact.preprocess

    @property
    def precision(self) -> str:
        return self.artifact.label

    @property
    def has_amap(self) -> bool:
        return self.artifact.with_amap

    @property
    def verification(self) -> Verification | None:
        return self.artifact.verification

    @property
    def deployed(self) -> bool:
        return self.kind != "checkpoint"

    @property
    def reference_path(self) -> Path | None:
        return None if self.reference is None else Path(self.reference.path)

    @property
    def records(self) -> dict[str, Any]:
        """The checks the artifact records (INT8 gate, engine parity, forced verdicts, calibration)."""
        return self.artifact.recorded_checks()

    def summary(self) -> dict[str, Any]:
        decision = self.decision
        return {"path": str(self.path), "kind": self.kind, "precision": self.precision, "primary": decision.primary,
                "threshold": decision.threshold, "threshold_rule": decision.threshold_rule,
                "threshold_source": decision.threshold_source.to_dict(),
                "verification": self.verification.to_dict() if self.verification else None,
                "reference": str(self.reference_path) if self.reference_path else None,
                "reference_note": self.reference_note}


def find_reference(artifact: Artifact, given: Model | None) -> tuple[Artifact | None, str]:
    """The artifact's torch reference: ``given`` (``--ref``), else the checkpoint its lineage names, where a file of
    that name beside it has the recorded sha256; (None, why) where there is none."""
    lineage = artifact.lineage
    if given is not None:
        reference = given if isinstance(given, Artifact) else artifacts.open(given, ("checkpoint",))
        if reference.kind != "checkpoint":
            raise ArtifactError("the reference must be a gedge checkpoint (.pt)", reference.path)
        if lineage.checkpoint_sha256 and reference.sha256 != lineage.checkpoint_sha256:
            return reference, (f"{reference.name} is not the checkpoint {artifact.name} was made from "
                               "(sha256 differs)")
        return reference, ""
    if not lineage.checkpoint:
        return None, f"{artifact.name} records no source checkpoint"
    candidate = Path(artifact.path).parent / Path(lineage.checkpoint).name
    if not candidate.is_file():
        return None, f"its checkpoint {candidate.name} is not beside it (give it with --ref)"
    reference = artifacts.open(candidate, ("checkpoint",))
    if lineage.checkpoint_sha256 and reference.sha256 != lineage.checkpoint_sha256:
        return None, f"{candidate.name} beside it is not the checkpoint it was made from (sha256 differs)"
    return reference, ""


def read_model(model: Model, reference: Model | None = None, force: bool = False) -> EvaluatedModel:
    """A checkpoint or a deployed artifact as the report reads it: opened once (hashes verified), its recorded
    verdicts enforced (RefusedArtifact on a failed one unless ``force``; forced, the verification says so)."""
    artifact = open_model(model)
    if not isinstance(artifact, Artifact):
        raise ConfigError(f"{artifact}: evaluate a model file (a served model is scored by `gedge parity`)")
    artifact = replace(artifact, verification=artifact.verified(force))
    training = dict(artifact.model_facts().training)
    if artifact.kind == "checkpoint":
        return EvaluatedModel(artifact, training, artifact)
    found, note = find_reference(artifact, reference)
    if found is not None and not training:
        training = dict(found.model_facts().training)  # an engine carries no training facts; its checkpoint does
    return EvaluatedModel(artifact, training, found, note)


def open_scorer(model: EvaluatedModel, with_amap: bool = False, force: bool = False) -> Backend:
    """The model on its own backend (an artifact whose recorded verdict failed is refused unless ``force``)."""
    return open_backend(model.artifact, with_amap=with_amap and model.has_amap, force=force)


def open_reference(model: EvaluatedModel) -> Backend | None:
    """The torch reference with anomaly maps, where the model has one (a checkpoint is its own)."""
    if model.reference is None:
        return None
    return open_backend(model.reference, "torch", with_amap=True)

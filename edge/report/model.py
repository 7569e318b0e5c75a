"""The model a report or a threshold fit is about: a gedge checkpoint, or a deployed artifact (ONNX graph, OpenVINO
IR, TensorRT engine) read through the runtime registry, with what it records about itself.

:func:`read_model` reads the facts once into a :class:`ModelFacts`: the decision rule (with a refitted threshold
where one was recorded), the score statistics the candidate fusions need, the training facts (a checkpoint's own,
or the copy an exported graph carries), the hashes verified and verdicts recorded (an INT8 gate, engine parity),
and the torch reference checkpoint where it can be found, for heat maps of an artifact without an ``amap`` output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gedge.core.artifacts.engine import read_manifest
from gedge.core.artifacts.graph import read_sidecar, sidecar_path
from gedge.core.artifacts.ir import read_ir_sidecar, read_model_facts
from gedge.core.artifacts.verdicts import Verification
from gedge.core.backend import Backend
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError
from gedge.core.hashing import sha256_file
from gedge.core.preprocess import Preprocess
from gedge.reference.checkpoint import Checkpoint, load_checkpoint
from gedge.runtime.artifacts import ModelInfo
from gedge.runtime.registry import kind_of, model_info, open_backend

ARTIFACT_KINDS = {"torch": "checkpoint", "onnxruntime": "graph", "openvino": "ir", "tensorrt": "engine"}


@dataclass
class ModelFacts:
    """What a model file says about itself, read once."""

    path: Path
    kind: str  # checkpoint, graph, ir, engine
    info: ModelInfo  # the registry's reading: preprocessing, precision, verification
    decision: DecisionRule
    score_stats: dict[str, dict[str, float]]
    training: dict[str, Any]  # the checkpoint's facts (data, settings and why, history, versions)
    records: dict[str, Any] = field(default_factory=dict)  # recorded checks: INT8 gate, parity, forced verdicts
    reference: Checkpoint | None = None  # the torch reference, where it is here
    reference_path: Path | None = None
    reference_note: str = ""  # why there is no reference, or what to know about the one found

    @property
    def preprocess(self) -> Preprocess:
        return self.info.preprocess

    @property
    def precision(self) -> str:
        return self.info.label

    @property
    def has_amap(self) -> bool:
        return self.info.has_amap

    @property
    def verification(self) -> Verification | None:
        return self.info.verification

    @property
    def deployed(self) -> bool:
        return self.kind != "checkpoint"

    def summary(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "precision": self.precision,
                "primary": self.decision.primary, "threshold": self.decision.threshold,
                "threshold_rule": self.decision.threshold_rule, "threshold_source": self.decision.threshold_source,
                "verification": self.verification.to_dict() if self.verification else None,
                "reference": str(self.reference_path) if self.reference_path else None,
                "reference_note": self.reference_note}


def _artifact_facts(path: Path, kind: str) -> tuple[dict, dict, dict, dict, tuple[str, str]]:
    """(decision, score statistics, training facts, recorded checks, (source checkpoint, its sha256)) of a
    deployed artifact, from where it keeps them."""
    if kind == "engine":
        manifest = read_manifest(path)
        source = manifest.get("source_checkpoint") or {}
        records = {k: manifest[k] for k in ("parity", "forced", "calibration_set", "tensorrt", "target")
                   if manifest.get(k)}
        return (manifest.get("decision") or {}, manifest.get("score_stats") or {}, {}, records,
                (str(source.get("path", "")), str(source.get("sha256", ""))))
    facts = read_model_facts(path)
    if kind == "ir":
        payload = read_ir_sidecar(path)
    else:
        payload = read_sidecar(path, verify=False) if sidecar_path(path).is_file() else {}
    records = {k: payload[k] for k in ("gate", "fallback", "quantization") if payload.get(k)}
    return (facts.decision, facts.score_stats, dict(facts.training), records,
            (facts.source_checkpoint, facts.source_sha256))


def find_reference(artifact: Path, source: tuple[str, str], given: Path | None) -> tuple[Path | None, str]:
    """The artifact's torch reference: ``given`` (``--ref``), else the checkpoint it records, where a file of that
    name beside it has the recorded sha256; (None, why) where there is none."""
    name, sha = source
    if given is not None:
        if kind_of(given) != "torch":
            raise ArtifactError("the reference must be a gedge checkpoint (.pt)", given)
        if sha and sha256_file(given) != sha:
            return Path(given), (f"{Path(given).name} is not the checkpoint {artifact.name} was made from "
                                 "(sha256 differs)")
        return Path(given), ""
    if not name:
        return None, f"{artifact.name} records no source checkpoint"
    candidate = artifact.parent / Path(name).name
    if not candidate.is_file():
        return None, f"its checkpoint {Path(name).name} is not beside it (give it with --ref)"
    if sha and sha256_file(candidate) != sha:
        return None, f"{candidate.name} beside it is not the checkpoint it was made from (sha256 differs)"
    return candidate, ""


def read_model(path: str | Path, reference: Path | None = None) -> ModelFacts:
    """The facts of a checkpoint or a deployed artifact (hashes verified; verdicts read, not enforced here)."""
    path = Path(path)
    info = model_info(path)
    kind = ARTIFACT_KINDS.get(info.kind, info.kind)
    if kind == "checkpoint":
        checkpoint = info.details["checkpoint"]
        return ModelFacts(path, kind, info, checkpoint.decision, dict(checkpoint.score_stats), dict(checkpoint.facts),
                          reference=checkpoint, reference_path=path)
    decision, stats, training, records, source = _artifact_facts(path, kind)
    ref_path, note = find_reference(path, source, reference)
    checkpoint = load_checkpoint(ref_path) if ref_path is not None else None
    if checkpoint is not None and not training:
        training = dict(checkpoint.facts)  # an engine carries no training facts; its checkpoint does
    return ModelFacts(path, kind, info, DecisionRule.from_dict(decision), dict(stats), training, records,
                      checkpoint, ref_path, note)


def open_scorer(model: ModelFacts, with_amap: bool = False, force: bool = False) -> Backend:
    """The model on its own backend (an artifact whose recorded verdict failed is refused unless ``force``)."""
    return open_backend(model.path, with_amap=with_amap and model.has_amap, info=model.info, force=force)


def open_reference(model: ModelFacts) -> Backend | None:
    """The torch reference with anomaly maps, where the model has one (a checkpoint is its own)."""
    if model.reference_path is None:
        return None
    return open_backend(model.reference_path, "torch", with_amap=True)

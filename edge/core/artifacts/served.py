"""What a server tells its clients about the scorer it serves (:class:`ServedFacts`), and the served model as an
:class:`~gedge.core.artifacts.artifact.Artifact` on the client's side.

A Triton model repository (``gedge triton export``) and a gedge server (``gedge serve``) both serve an artifact
gedge wrote and read with :func:`gedge.core.artifacts.open` (its hashes checked, its verdicts enforced before it is
served). :func:`served_facts` is the JSON a server hands to its clients: the input contract, the preprocessing, the
decision rule and the score statistics, enough to tile, decide and report exactly as local inspection does;
:meth:`ServedFacts.parse` is the client's side, with one-line errors naming the server, and :func:`served_artifact`
makes the served model an Artifact of kind ``served``. No heavy imports here: both sides run without torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gedge.core.artifacts.artifact import Artifact
from gedge.core.artifacts.facts import ModelFacts, Quantization
from gedge.core.artifacts.opening import SUFFIXES
from gedge.core.artifacts.opening import open as open_artifact
from gedge.core.artifacts.records import check_format, strings
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, ConfigError, GedgeError
from gedge.core.preprocess import Preprocess

SERVED_FORMAT = "gedge-served"


SERVED_FORMAT_VERSION = 1


DEPLOYABLE_KINDS = ("graph", "ir", "engine")


REQUIRED_SERVED_KEYS = ("input", "outputs", "preprocess", "threshold", "primary_score", "precision", "max_batch_size")


@dataclass(frozen=True)
class ServedFacts:
    """The facts a server gives for the model it serves (see the module docstring)."""

    model: str  # the served model's name
    artifact: str  # the file it serves
    artifact_kind: str  # graph, ir or engine
    sha256: str
    facts: ModelFacts
    max_batch: int
    backend: str = ""  # what runs it on the server
    verification: dict[str, Any] | None = field(default=None)  # status, line and forced verdicts, when it was read

    @property
    def verification_line(self) -> str:
        return str((self.verification or {}).get("line") or "-")

    def to_dict(self) -> dict[str, Any]:
        facts, spec = self.facts, self.facts.input_spec()
        return {"format": SERVED_FORMAT, "format_version": SERVED_FORMAT_VERSION, "model": self.model,
                "artifact": self.artifact, "artifact_kind": self.artifact_kind, "sha256": self.sha256,
                "precision": facts.precision, "flavour": facts.flavour, "backend": self.backend,
                "input": {"name": facts.input_name, "size": spec.size, "channels": spec.channels, "dtype": "uint8",
                          "layout": "NHWC"},
                "outputs": list(facts.outputs), "max_batch_size": self.max_batch,
                "preprocess": facts.preprocess.to_dict(), "decision": facts.decision.to_dict(),
                "threshold": facts.threshold, "primary_score": facts.primary, "score_stats": facts.score_stats,
                "verification": self.verification}

    @classmethod
    def parse(cls, text: str, where: str) -> ServedFacts:
        """A server's facts (the JSON of :meth:`to_dict`); ArtifactError naming ``where`` when they are not."""
        try:
            payload = json.loads(text)
        except ValueError as exc:
            raise ArtifactError(f"the served model's gedge facts do not parse: {exc}", where) from None
        check_format(payload, (SERVED_FORMAT, SERVED_FORMAT_VERSION), "not a gedge scorer (its facts are not "
                     "gedge's; serve one with `gedge serve` or `gedge triton export`)", "served facts", where)
        missing = [key for key in REQUIRED_SERVED_KEYS if key not in payload]
        if missing:
            raise ArtifactError(f"the served model's gedge facts lack {', '.join(missing)}", where)
        try:
            return _served(payload)
        except (GedgeError, KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"the served model's gedge facts do not parse: {getattr(exc, 'problem', exc)}",
                                where) from None


def _served(payload: dict[str, Any]) -> ServedFacts:
    spec = payload["input"]
    decision = payload.get("decision") or {"primary": payload["primary_score"], "threshold": payload["threshold"]}
    flavour = str(payload.get("flavour") or "")
    facts = ModelFacts(str(payload["precision"]), "uint8-nhwc", str(spec["name"]), strings(payload["outputs"]),
                       {"isize": int(spec["size"]), "nc": int(spec["channels"])},
                       Preprocess.from_dict(payload["preprocess"]), DecisionRule.from_dict(decision),
                       dict(payload.get("score_stats") or {}), quantization=Quantization(flavour) if flavour else None)
    verification = payload.get("verification")
    return ServedFacts(str(payload.get("model") or ""), str(payload.get("artifact") or ""),
                       str(payload.get("artifact_kind") or ""), str(payload.get("sha256") or ""), facts,
                       int(payload["max_batch_size"] or 0), str(payload.get("backend") or ""),
                       verification if isinstance(verification, dict) else None)


def open_deployable(path: str | Path, force: bool = False) -> Artifact:
    """An artifact to serve or to write into a model repository: read once (hashes checked: an error on a mismatch)
    and its recorded verdicts enforced (RefusedArtifact on a failed one unless ``force``; forced, the artifact's
    verification carries the forced verdicts)."""
    if SUFFIXES.get(Path(path).suffix.lower()) not in DEPLOYABLE_KINDS:
        raise ConfigError(f"{Path(path).name}: not a deployable artifact (expected an .onnx graph, an OpenVINO IR "
                          ".xml or a TensorRT .engine)")
    artifact = open_artifact(path, DEPLOYABLE_KINDS)
    return replace(artifact, verification=artifact.verified(force))


def served_facts(artifact: Artifact, model_name: str, max_batch: int, backend: str = "") -> ServedFacts:
    """What a server says about the artifact it serves (verified and enforced when it was opened)."""
    verification = artifact.verification
    summary = None if verification is None else {"status": verification.status, "line": verification.line(),
                                                 "forced": list(verification.forced)}
    return ServedFacts(model_name, artifact.name, artifact.kind, artifact.sha256, artifact.model_facts(), max_batch,
                       backend, summary)


def served_artifact(served: ServedFacts, reference: str, server: str) -> Artifact:
    """The model a client scores on a server, as an Artifact of kind ``served``. The client verifies nothing itself
    (no verification); ``details`` say what the server checked of the file it serves."""
    checked = f"served; sha256 {served.sha256 or '?'}; on the server: {served.verification_line}"
    return Artifact(reference, "served", served.sha256, served.facts,
                    details={"server": server, "served_model": served.model, "served_by": served.backend,
                             "artifact": served.artifact, "artifact_kind": served.artifact_kind,
                             "max_batch": served.max_batch or None, "verification": checked})

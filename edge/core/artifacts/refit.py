"""A refitted threshold applied and written (`gedge threshold`): the graph and IR readers apply the threshold file
beside the artifact (:func:`with_threshold_file`), :func:`write_threshold_file` keeps one beside a graph or IR, and
:func:`refit_engine_manifest` writes an engine's refitted rule into its manifest. The file itself is
:class:`~gedge.core.artifacts.threshold.ThresholdFile`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gedge.core.artifacts.artifact import Artifact
from gedge.core.artifacts.engine import write_manifest
from gedge.core.artifacts.records import read_json, write_record
from gedge.core.artifacts.threshold import ThresholdFile, threshold_path
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, ConfigError


def with_threshold_file(artifact: Artifact) -> Artifact:
    """A graph or IR as read, with the threshold refitted for it applied where it has a threshold file (bound to
    the sha256 the reader computed; an error for a file fitted for another version or another primary score)."""
    side = threshold_path(artifact.path)
    if not side.is_file():
        return artifact
    record = ThresholdFile.from_dict(read_json(side, "threshold file"), side)
    facts = artifact.model_facts()
    if record.artifact_sha256 != artifact.sha256:
        raise ArtifactError(f"the threshold file was fitted for another version of {artifact.name} (sha256 differs); "
                            "fit it again with `gedge threshold` or delete it", side)
    if record.primary != facts.primary:
        raise ArtifactError(f"the threshold file is for primary score {record.primary}, but {artifact.name} decides "
                            f"on {facts.primary}", side)
    return replace(artifact, facts=replace(facts, decision=record.apply(facts.decision)), threshold_file=record)


def write_threshold_file(artifact: Artifact, decision: DecisionRule) -> Path:
    """Keep the refitted ``decision``'s threshold beside ``artifact`` (an ONNX graph or an OpenVINO IR), bound to
    the sha256 it was read with."""
    if artifact.kind not in ("graph", "ir"):
        raise ConfigError(f"{artifact.name}: a threshold file is kept beside a graph or an IR, not a {artifact.kind}")
    record = ThresholdFile(artifact.name, artifact.sha256, decision.primary, float(decision.threshold),
                           decision.threshold_rule, decision.threshold_source)
    return write_record(threshold_path(artifact.path), "threshold", record.to_dict())


def refit_engine_manifest(engine: Artifact, decision: DecisionRule) -> Path:
    """Write a refitted decision rule into an engine's manifest (its ``decision`` and the flat ``threshold``)."""
    if engine.manifest is None:
        raise ConfigError(f"{engine.name}: only an engine has a manifest to refit")
    if decision.primary != engine.manifest.decision.primary:
        raise ArtifactError(f"the refitted rule is for primary score {decision.primary}, not the engine's "
                            f"{engine.manifest.decision.primary}", engine.path)
    return write_manifest(engine.path, replace(engine.manifest, decision=decision))

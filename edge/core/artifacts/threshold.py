"""A decision threshold refitted for a deployed artifact (`gedge threshold scorer.onnx DATA`): where it is kept and
how the readers apply it.

An ONNX graph carries its decision rule in its own metadata, and its sha256 binds it to its sidecar, to the INT8
graphs and calibration caches made from it and to the engines built from it; an OpenVINO IR's sidecar holds its
accuracy gate and the hashes of its files. Rewriting either would break those bindings, so a refitted threshold is
kept beside the artifact, in ``<artifact>.threshold.json``: the threshold, its rule and its source, the primary
score it is in the units of, and the sha256 of the artifact it was fitted for. The graph and IR readers
(:func:`gedge.core.artifacts.graph.read_facts` given the graph's path, :mod:`gedge.core.artifacts.ir`) apply it, so
every command that opens the artifact decides with it and an engine built from the graph carries it. A threshold
file of another version of the artifact (its sha256 differs) is an error, like any other mismatched sidecar.

An engine's manifest is its sidecar already and the only file the C++ runtime reads, so an engine's refit rewrites
the manifest's ``decision`` and ``threshold`` (:func:`refit_engine_manifest`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gedge.core.artifacts.engine import read_manifest, write_manifest
from gedge.core.atomic import write_json
from gedge.core.errors import ArtifactError
from gedge.core.hashing import sha256_file

FORMAT = "gedge-threshold"
FORMAT_VERSION = 1
REFIT_KEYS = ("threshold", "threshold_rule", "threshold_source")  # what a refit changes in a decision rule


def threshold_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".threshold.json")


def refit(decision: dict[str, Any], threshold: float, rule: str, source: dict[str, Any]) -> dict[str, Any]:
    """``decision`` (a decision rule as a dict) with the threshold moved and its rule and source recorded."""
    return {**decision, "threshold": float(threshold), "threshold_rule": rule, "threshold_source": dict(source)}


def write_threshold_file(artifact: str | Path, decision: dict[str, Any]) -> Path:
    """Keep the refitted ``decision``'s threshold beside ``artifact`` (an ONNX graph or an OpenVINO IR's .xml)."""
    artifact = Path(artifact)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "artifact": artifact.name,
               "artifact_sha256": sha256_file(artifact), "primary": decision.get("primary"),
               **{key: decision.get(key) for key in REFIT_KEYS}}
    return write_json(threshold_path(artifact), payload)


def _read(side: Path) -> dict[str, Any]:
    try:
        payload = json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"threshold file does not parse: {exc}", side) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArtifactError("not a gedge threshold file", side)
    if payload.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"threshold file format version {payload.get('format_version')}; this gedge reads "
                            f"{FORMAT_VERSION}", side)
    return payload


def refitted_decision(artifact: str | Path, decision: dict[str, Any]) -> dict[str, Any]:
    """The decision rule to decide with: ``decision`` with the threshold of the artifact's threshold file where it
    has one (its sha256 and primary score checked), else ``decision`` unchanged."""
    artifact = Path(artifact)
    side = threshold_path(artifact)
    if not side.is_file():
        return decision
    payload = _read(side)
    if payload.get("artifact_sha256") != sha256_file(artifact):
        raise ArtifactError(f"the threshold file was fitted for another version of {artifact.name} (sha256 differs); "
                            "fit it again with `gedge threshold` or delete it", side)
    if payload.get("primary") != decision.get("primary"):
        raise ArtifactError(f"the threshold file is for primary score {payload.get('primary')}, but "
                            f"{artifact.name} decides on {decision.get('primary')}", side)
    try:
        threshold = float(payload["threshold"])
    except (KeyError, TypeError, ValueError):
        raise ArtifactError("threshold file has no numeric threshold", side) from None
    return refit(decision, threshold, str(payload.get("threshold_rule") or ""),
                 dict(payload.get("threshold_source") or {}))


def refit_engine_manifest(engine: str | Path, decision: dict[str, Any]) -> Path:
    """Write a refitted decision rule into an engine's manifest (``decision`` and the flat ``threshold``)."""
    manifest = read_manifest(engine)
    if decision.get("primary") != (manifest.get("decision") or {}).get("primary"):
        raise ArtifactError(f"the refitted rule is for primary score {decision.get('primary')}, not the engine's",
                            engine)
    manifest = {k: v for k, v in manifest.items() if k not in ("format", "format_version")}
    manifest["decision"] = refit(manifest["decision"], decision["threshold"], str(decision.get("threshold_rule", "")),
                                 dict(decision.get("threshold_source") or {}))
    manifest["threshold"] = float(decision["threshold"])
    return write_manifest(engine, manifest)

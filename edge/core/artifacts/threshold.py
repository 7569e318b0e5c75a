"""A decision threshold refitted for a deployed artifact (`gedge threshold scorer.onnx DATA`): the threshold file
(:class:`ThresholdFile`, ``<artifact>.threshold.json``, ``docs/schemas/threshold.schema.json``). Applying it, writing
it and an engine's refit are :mod:`gedge.core.artifacts.refit`'s.

An ONNX graph carries its decision rule in its own metadata, and its sha256 binds it to its sidecar, to the INT8
graphs and calibration caches made from it and to the engines built from it; an OpenVINO IR's sidecar holds its
accuracy gate and the hashes of its files. Rewriting either would break those bindings, so a refitted threshold is
kept beside the artifact: the threshold, its rule and its source (:class:`~gedge.core.decision.ThresholdSource`), the
primary score it is in the units of, and the sha256 of the artifact it was fitted for. The graph and IR readers of
:func:`gedge.core.artifacts.open` apply it (:func:`gedge.core.artifacts.refit.with_threshold_file`), so every
command that opens the artifact decides with it and an engine built from the graph carries it. A threshold file of
another version of the artifact (its sha256 differs) is an error, like any other mismatched sidecar.

An engine's manifest is its sidecar already and the only file the C++ runtime reads, so an engine's refit rewrites
the manifest's decision rule (:func:`gedge.core.artifacts.refit.refit_engine_manifest`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gedge.core.artifacts.records import check_format
from gedge.core.decision import DecisionRule, ThresholdSource
from gedge.core.errors import ArtifactError, ConfigError

FORMAT = "gedge-threshold"
FORMAT_VERSION = 1


def threshold_path(artifact: str | Path) -> Path:
    """``scorer.onnx`` -> ``scorer.onnx.threshold.json`` (an IR's ``.xml`` likewise)."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".threshold.json")


@dataclass(frozen=True)
class ThresholdFile:
    """A threshold refitted for one version of a graph or IR (see the module docstring)."""

    artifact: str  # the file name it was fitted for
    artifact_sha256: str
    primary: str  # the primary score whose normalised units the threshold is in
    threshold: float
    threshold_rule: str
    threshold_source: ThresholdSource

    def apply(self, decision: DecisionRule) -> DecisionRule:
        return decision.refitted(self.threshold, self.threshold_rule, self.threshold_source)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "artifact": self.artifact,
                "artifact_sha256": self.artifact_sha256, "primary": self.primary, "threshold": self.threshold,
                "threshold_rule": self.threshold_rule, "threshold_source": self.threshold_source.to_dict()}

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str | Path | None = None) -> ThresholdFile:
        check_format(values, (FORMAT, FORMAT_VERSION), "not a gedge threshold file", "threshold file", where)
        try:
            return cls(str(values.get("artifact") or ""), str(values["artifact_sha256"]), str(values["primary"]),
                       float(values["threshold"]), str(values.get("threshold_rule") or ""),
                       ThresholdSource.from_dict(values.get("threshold_source") or {}))
        except KeyError as exc:
            raise ArtifactError(f"threshold file lacks {exc}", where) from None
        except (ConfigError, TypeError, ValueError):
            raise ArtifactError("threshold file has no numeric threshold or no readable source", where) from None

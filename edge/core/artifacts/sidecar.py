"""The sidecar next to a graph or an OpenVINO IR (``scorer.onnx.json``, ``scorer.int8.ov.xml.json``):
:class:`GraphSidecar`, whose JSON form is ``docs/schemas/graph-sidecar.schema.json`` (an IR's:
``ir-sidecar.schema.json``).

It holds the model's facts (:class:`~gedge.core.artifacts.facts.ModelFacts`), the sha256 of the file (and of an
IR's weights) and, for an INT8 artifact, the accuracy gate's verdict and the calibration set it was made from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gedge.core.artifacts.facts import FACT_KEYS, ModelFacts
from gedge.core.artifacts.records import CalibrationSetRef, GateRecord, read_json, strings
from gedge.core.errors import ArtifactError

_OWN_KEYS = ("graph", "graph_sha256", "weights", "weights_sha256", "gate", "calibration_set", "forced")


def sidecar_path(artifact: str | Path) -> Path:
    """``scorer.onnx`` -> ``scorer.onnx.json`` (an IR's ``.xml`` likewise)."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


@dataclass(frozen=True)
class GraphSidecar:
    """A graph's (or an IR's) sidecar: the file it describes, that file's sha256, its facts, and what an INT8
    artifact adds."""

    graph: str  # the file name it describes (an IR's .xml)
    graph_sha256: str
    facts: ModelFacts
    gate: GateRecord | None = None  # an INT8 artifact's accuracy gate (`gedge calibrate`)
    calibration_set: CalibrationSetRef | None = None
    forced: tuple[str, ...] = ()
    weights: str = ""  # an IR's .bin
    weights_sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # further facts a writer added (kept as written)

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"graph": self.graph, "graph_sha256": self.graph_sha256}
        if self.weights:
            values.update(weights=self.weights, weights_sha256=self.weights_sha256)
        values.update(self.facts.to_dict())
        if self.calibration_set is not None:
            values["calibration_set"] = self.calibration_set.to_dict()
        if self.gate is not None:
            values["gate"] = self.gate.to_dict()
        if self.forced:
            values["forced"] = list(self.forced)
        return {**values, **self.extra}

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str | Path | None = None) -> GraphSidecar:
        facts = ModelFacts.from_dict(values, where)
        if not values.get("graph_sha256"):
            raise ArtifactError("sidecar records no graph_sha256", where)
        known = set(_OWN_KEYS) | set(FACT_KEYS) | {"primary_score", "threshold"}
        return cls(str(values.get("graph") or ""), str(values["graph_sha256"]), facts,
                   GateRecord.from_dict(values["gate"]) if "gate" in values else None,
                   CalibrationSetRef.from_dict(values.get("calibration_set")), strings(values.get("forced")),
                   str(values.get("weights") or ""), str(values.get("weights_sha256") or ""),
                   {k: v for k, v in values.items() if k not in known})


def read_sidecar(path: str | Path, what: str = "sidecar") -> GraphSidecar:
    """A graph's or IR's sidecar file; ArtifactError naming it when it does not parse."""
    return GraphSidecar.from_dict(read_json(path, what), path)

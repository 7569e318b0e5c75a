"""One model file (or calibration cache), read once: :class:`Artifact`.

:func:`gedge.core.artifacts.open` reads a file with the reader of its kind (the suffix table of
:mod:`gedge.core.artifacts.opening`): the bytes once, their sha256 from those bytes, the facts file next to it
(sidecar or manifest) checked against that sha256, the recorded verdicts read into a
:class:`~gedge.core.artifacts.verdicts.Verification`. What was read stays in the Artifact, so that no later stage
reads the file again: a graph's parsed ONNX model, an engine's bytes, a checkpoint's payload, a cache's scales.

Every kind answers the same questions through its :class:`~gedge.core.artifacts.facts.ModelFacts` (``facts``):
the input, the preprocessing, the scores, the decision rule, the lineage. What only one kind has is in its own
typed record: a graph's or IR's ``sidecar``, an engine's ``manifest``, a cache's ``calibration`` facts. A graph's or
IR's decision rule is the one a threshold file beside it refits (``threshold_file``,
:mod:`gedge.core.artifacts.threshold`), where it has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from gedge.core.artifacts.calibration import CalibrationCache, CalibrationFacts
from gedge.core.artifacts.facts import Lineage, ModelFacts
from gedge.core.artifacts.layout import GraphLayout
from gedge.core.artifacts.manifest import EngineManifest
from gedge.core.artifacts.sidecar import GraphSidecar
from gedge.core.artifacts.threshold import ThresholdFile
from gedge.core.artifacts.verdicts import Verification, enforce
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError
from gedge.core.inputs import InputSpec
from gedge.core.preprocess import Preprocess

KINDS = ("checkpoint", "graph", "ir", "engine", "calibration cache", "served")


@dataclass(frozen=True, eq=False)
class Artifact:
    """A model file as gedge read it (see the module docstring)."""

    path: Path | str  # the file; a served model's URL
    kind: str  # one of KINDS
    sha256: str  # of the bytes read (an IR: of its .xml)
    facts: ModelFacts | None  # None for a calibration cache
    verification: Verification | None = None  # hashes checked and verdicts recorded (None: nothing recorded)
    sidecar: GraphSidecar | None = None  # a graph's or IR's
    manifest: EngineManifest | None = None  # an engine's
    calibration: CalibrationFacts | None = None  # a calibration cache's
    facts_file: Path | None = None  # the sidecar or manifest next to it
    extra_files: tuple[Path, ...] = ()  # an IR's weights (.bin)
    onnx_model: onnx.ModelProto | None = field(default=None, repr=False)  # a graph, parsed
    layout: GraphLayout | None = None  # a graph's input, Q/DQ nodes and convolutions
    data: bytes | None = field(default=None, repr=False)  # the bytes checked: an engine's, a calibration cache's
    payload: dict[str, Any] | None = field(default=None, repr=False)  # a checkpoint's contents (weights, facts)
    cache: CalibrationCache | None = field(default=None, repr=False)  # a calibration cache's scales
    details: dict[str, Any] = field(default_factory=dict)  # a served model's server, name and backend
    threshold_file: ThresholdFile | None = None  # a graph's or IR's refitted threshold, applied to its facts

    @property
    def name(self) -> str:
        return self.path if isinstance(self.path, str) else self.path.name

    def model_facts(self) -> ModelFacts:
        if self.facts is None:
            raise ArtifactError(f"a {self.kind} is not a scorer", self.path)
        return self.facts

    @property
    def precision(self) -> str:
        return self.facts.precision if self.facts is not None else ""

    @property
    def flavour(self) -> str:
        """An INT8 artifact's flavour (tensorrt, cpu, openvino); "" otherwise."""
        return self.facts.flavour if self.facts is not None else ""

    @property
    def label(self) -> str:
        return self.precision + (f" ({self.flavour})" if self.flavour else "")

    @property
    def preprocess(self) -> Preprocess:
        return self.model_facts().preprocess

    @property
    def decision(self) -> DecisionRule:
        return self.model_facts().decision

    @property
    def threshold(self) -> float:
        return self.model_facts().threshold

    @property
    def primary(self) -> str:
        return self.model_facts().primary

    @property
    def with_amap(self) -> bool:
        """The artifact can give the anomaly map (a checkpoint always can)."""
        return self.facts is not None and self.facts.with_amap

    @property
    def input_spec(self) -> InputSpec:
        return self.manifest.input_spec if self.manifest is not None else self.model_facts().input_spec()

    @property
    def model(self) -> dict[str, Any]:
        """The ModelConfig the networks were built with."""
        return self.model_facts().model

    @property
    def lineage(self) -> Lineage:
        return self.model_facts().lineage

    @property
    def max_batch(self) -> int | None:
        """The largest batch the artifact takes (an engine's profile, a server's), None where any batch runs."""
        if self.manifest is not None:
            return self.manifest.max_batch
        return self.details.get("max_batch")

    @property
    def opt_batch(self) -> int | None:
        return self.manifest.opt_batch if self.manifest is not None else None

    def verified(self, force: bool = False) -> Verification | None:
        """The verification with its verdicts enforced: RefusedArtifact on a failed one unless ``force``."""
        return None if self.verification is None else enforce(self.verification, force)

    @property
    def verification_line(self) -> str:
        """What was checked and the recorded verdicts, in one line (a served model: what its server checked)."""
        if self.verification is not None:
            return self.verification.line()
        return str(self.details.get("verification", ""))

    def recorded_checks(self) -> dict[str, Any]:
        """What the artifact records of the checks made when it was made, as it records them: an INT8 graph's or
        IR's accuracy gate, calibration set, quantization and forced verdicts; an engine's parity, forced verdicts,
        calibration, TensorRT and target."""
        if self.manifest is not None:
            m = self.manifest
            found = {"parity": {kind: record.to_dict() for kind, record in m.parity.items()}, "forced": list(m.forced),
                     "calibration_set": m.calibration.to_dict() if m.calibration else None,
                     "tensorrt": {"flavour": m.tensorrt_flavour, "version": m.tensorrt_version},
                     "target": m.target.to_dict()}
        elif self.sidecar is not None:
            side, facts = self.sidecar, self.model_facts()
            found = {"gate": side.gate.to_dict() if side.gate else None, "forced": list(side.forced),
                     "calibration_set": side.calibration_set.to_dict() if side.calibration_set else None,
                     "quantization": facts.quantization.to_dict() if facts.quantization else None}
        else:
            found = {}
        return {name: value for name, value in found.items() if value}

    def summary(self) -> dict[str, Any]:
        """What a report says of the artifact a backend ran (``--json``)."""
        facts = self.facts
        return {"path": str(self.path), "kind": self.kind, "precision": self.precision, "sha256": self.sha256,
                "model": {} if facts is None else dict(facts.model),
                "source_checkpoint": "" if facts is None else facts.lineage.checkpoint,
                "source_sha256": "" if facts is None else facts.lineage.checkpoint_sha256,
                "verification": self.verification_line}

"""What every model file says about scoring, whatever its kind: :class:`ModelFacts`.

A checkpoint, an ONNX graph, an OpenVINO IR, a TensorRT engine and a served model each carry the same facts: the
input a scorer takes, how images become network inputs (:class:`~gedge.core.preprocess.Preprocess`), which scores
it returns, the decision rule (:class:`~gedge.core.decision.DecisionRule`), the normal tiles' score statistics, and
where it comes from (:class:`Lineage`). An INT8 model adds how it was quantized (:class:`Quantization`).

:meth:`ModelFacts.to_dict` is the JSON form a graph keeps in its ONNX metadata and its sidecar (the graph sidecar
schema, ``docs/schemas/graph-sidecar.schema.json``); :meth:`ModelFacts.from_dict` reads it back with one-line
errors. An engine's manifest (:mod:`gedge.core.artifacts.manifest`) and a checkpoint
(:mod:`gedge.core.artifacts.checkpoint`) give their ModelFacts from their own forms.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gedge.core.artifacts.records import CalibrationSetRef, check_format, strings
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, GedgeError
from gedge.core.inputs import INPUT_KINDS, InputSpec
from gedge.core.preprocess import Preprocess

FORMAT = "gedge-scorer"


FORMAT_VERSION = 2  # 2: the decision rule is "decision" (was "calibration" / "score_calibration")


PRECISIONS = ("fp32", "fp16", "int8")


# The keys of the JSON form (:meth:`ModelFacts.to_dict`); readers ignore others (a graph's flat copies of the
# primary score and threshold, facts a later version adds).
FACT_KEYS = ("gedge_version", "precision", "input", "input_name", "outputs", "model", "preprocess", "decision",
             "score_stats", "source_checkpoint", "source_sha256", "training", "derived_from_sha256", "quantization",
             "format", "format_version")


@dataclass(frozen=True)
class Lineage:
    """Where a model file comes from: the checkpoint it was exported from and, for a graph made from another graph
    (FP16, INT8), the sha256 of that FP32 graph."""

    checkpoint: str = ""  # the checkpoint's file name
    checkpoint_sha256: str = ""
    derived_from_sha256: str = ""


_SET_PREFIX = "calibration_set_"  # how a quantizer records the calibration set among its facts


@dataclass(frozen=True)
class Quantization:
    """How an INT8 model was quantized: the flavour (``tensorrt``, ``cpu``, ``openvino``), the range method, the
    layers the accuracy-aware fallback kept in float, the calibration set, and the tool's own facts (``details``)."""

    flavour: str
    method: str = ""
    kept_float: tuple[str, ...] = ()
    calibration_set: CalibrationSetRef | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Quantization | None:
        if not values:
            return None
        known = ("flavour", "method", "kept_float")
        details = {k: v for k, v in values.items() if k not in known and not k.startswith(_SET_PREFIX)}
        calibration = {k[len(_SET_PREFIX):]: v for k, v in values.items() if k.startswith(_SET_PREFIX)}
        return cls(str(values.get("flavour") or ""), str(values.get("method") or ""), strings(values.get("kept_float")),
                   CalibrationSetRef.from_dict(calibration), details)

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"flavour": self.flavour, "method": self.method, **self.details}
        if self.kept_float:
            values["kept_float"] = list(self.kept_float)
        if self.calibration_set is not None:
            values.update({f"{_SET_PREFIX}{k}": v for k, v in self.calibration_set.to_dict().items()})
        return values


@dataclass(frozen=True)
class ModelFacts:
    """What a model file is and how its scores are read (see the module docstring)."""

    precision: str
    input_kind: str  # uint8-nhwc or float-nchw
    input_name: str
    outputs: tuple[str, ...]
    model: dict[str, Any]  # the ModelConfig the networks were built with
    preprocess: Preprocess
    decision: DecisionRule
    score_stats: dict[str, Any] = field(default_factory=dict)
    lineage: Lineage = Lineage()
    quantization: Quantization | None = None  # an INT8 model's
    training: dict[str, Any] = field(default_factory=dict)  # what training (or the import) recorded
    gedge_version: str = ""

    @property
    def primary(self) -> str:
        return self.decision.primary

    @property
    def threshold(self) -> float:
        return float(self.decision.threshold)

    @property
    def with_amap(self) -> bool:
        return "amap" in self.outputs

    @property
    def flavour(self) -> str:
        """An INT8 model's flavour (tensorrt, cpu, openvino); "" otherwise."""
        return self.quantization.flavour if self.quantization is not None and self.precision == "int8" else ""

    @property
    def kept_float(self) -> tuple[str, ...]:
        return self.quantization.kept_float if self.quantization is not None else ()

    def input_spec(self) -> InputSpec:
        return InputSpec(size=int(self.model["isize"]), channels=int(self.model["nc"]))

    def derived(self, precision: str, derived_from_sha256: str,
                quantization: Quantization | None = None) -> ModelFacts:
        """The facts of a graph made from this one at ``precision`` (FP16, INT8)."""
        if precision not in PRECISIONS:
            raise ValueError(precision)
        lineage = replace(self.lineage, derived_from_sha256=derived_from_sha256)
        return replace(self, precision=precision, lineage=lineage,
                       quantization=quantization if quantization is not None else self.quantization)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: a graph's metadata and sidecar (``docs/schemas/graph-sidecar.schema.json``)."""
        return {
            "gedge_version": self.gedge_version, "precision": self.precision, "input": self.input_kind,
            "input_name": self.input_name, "outputs": list(self.outputs), "model": dict(self.model),
            "preprocess": self.preprocess.to_dict(), "decision": self.decision.to_dict(),
            "score_stats": self.score_stats, "source_checkpoint": self.lineage.checkpoint,
            "source_sha256": self.lineage.checkpoint_sha256, "training": self.training,
            "derived_from_sha256": self.lineage.derived_from_sha256,
            "quantization": {} if self.quantization is None else self.quantization.to_dict(),
            "format": FORMAT, "format_version": FORMAT_VERSION,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str | Path | None = None) -> ModelFacts:
        """The facts of a graph's metadata or sidecar; ArtifactError naming ``where`` when they do not parse."""
        check_format(values, (FORMAT, FORMAT_VERSION), "not gedge scorer facts (export the graph with `gedge export`)",
                     "graph", where)
        try:
            facts = cls(
                precision=str(values["precision"]), input_kind=str(values["input"]),
                input_name=str(values["input_name"]), outputs=strings(values["outputs"]), model=dict(values["model"]),
                preprocess=Preprocess.from_dict(values["preprocess"]),
                decision=DecisionRule.from_dict(values["decision"]), score_stats=dict(values.get("score_stats") or {}),
                lineage=Lineage(str(values.get("source_checkpoint") or ""), str(values.get("source_sha256") or ""),
                                str(values.get("derived_from_sha256") or "")),
                quantization=Quantization.from_dict(values.get("quantization") or {}),
                training=dict(values.get("training") or {}), gedge_version=str(values.get("gedge_version") or ""))
        except KeyError as exc:
            raise ArtifactError(f"gedge facts lack {exc}", where) from None
        except (GedgeError, TypeError, ValueError) as exc:
            raise ArtifactError(f"gedge facts do not parse: {getattr(exc, 'problem', exc)}", where) from None
        facts.check(where)
        return facts

    def check(self, where: str | Path | None = None) -> None:
        """The facts a scorer needs are there and of the known kinds."""
        if self.precision not in PRECISIONS:
            raise ArtifactError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}", where)
        if self.input_kind not in INPUT_KINDS:
            raise ArtifactError(f"input must be one of {', '.join(INPUT_KINDS)}, got {self.input_kind!r}", where)
        if "isize" not in self.model or "nc" not in self.model:
            raise ArtifactError("the model facts lack isize or nc", where)

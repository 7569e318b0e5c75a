"""The manifest next to every engine (``scorer.fp16.engine`` -> ``scorer.fp16.engine.json``): :class:`EngineManifest`,
whose JSON form is ``docs/schemas/engine-manifest.schema.json``.

An engine file says nothing about itself that a deployment can check without deserialising it on the right GPU.
The manifest does: the engine's sha256, the graph it was built from (and the graph the user gave, where the FP16
graph was derived from it), the checkpoint behind both, the TensorRT flavour and version, the target (the GPU name
and compute capability, or the ahead-of-time targets of TensorRT-RTX), the precision, the optimisation profile,
the input and outputs, the score facts, the INT8 calibration facts, the gedge version, the parity measured at
build time and the verdicts overridden with ``--force``. The C++ firmware reads the same file
(``edge/firmware/src/manifest.cpp``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gedge.core.artifacts.facts import Lineage, ModelFacts, Quantization
from gedge.core.artifacts.records import CalibrationSetRef, check_format, strings
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, GedgeError
from gedge.core.inputs import InputSpec
from gedge.core.preprocess import Preprocess

FORMAT = "gedge-engine"


FORMAT_VERSION = 2  # 2: the decision rule is "decision" (was "calibration" / "score_calibration")


@dataclass(frozen=True)
class FileRef:
    """A file an engine comes from: its name, its sha256, and for the graph it was built from, its precision, the
    bytes of its weights and what was verified of it when the engine was built."""

    path: str
    sha256: str
    precision: str = ""
    weight_bytes: int | None = None
    verification: str = ""

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"path": self.path, "sha256": self.sha256}
        if self.precision:
            values["precision"] = self.precision
        if self.weight_bytes is not None:
            values["weight_bytes"] = self.weight_bytes
        if self.verification:
            values["verification"] = self.verification
        return values

    @classmethod
    def from_dict(cls, value: Any) -> FileRef | None:
        if not isinstance(value, dict):
            return None
        weights = value.get("weight_bytes")
        return cls(str(value.get("path") or ""), str(value.get("sha256") or ""), str(value.get("precision") or ""),
                   None if weights is None else int(weights), str(value.get("verification") or ""))


@dataclass(frozen=True)
class EngineTarget:
    """What an engine runs on: the GPU that built it (``gpu``) or compute capabilities ahead of time (``aot``)."""

    kind: str
    gpu_name: str = ""
    compute_capability: str = ""
    compute_capabilities: tuple[str, ...] = ()
    default_targets: tuple[str, ...] = ()
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "aot":
            return {"kind": "aot", "compute_capabilities": list(self.compute_capabilities),
                    "default_targets": list(self.default_targets), "description": self.description}
        return {"kind": self.kind, "gpu_name": self.gpu_name, "compute_capability": self.compute_capability,
                "description": self.description}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> EngineTarget:
        return cls(str(value["kind"]), str(value.get("gpu_name") or ""), str(value.get("compute_capability") or ""),
                   strings(value.get("compute_capabilities")), strings(value.get("default_targets")),
                   str(value.get("description") or ""))


@dataclass(frozen=True)
class EngineInput:
    """The engine's input tensor (``shape``: -1 for the dynamic batch)."""

    name: str
    kind: str  # uint8-nhwc or float-nchw
    shape: tuple[int, ...]

    @property
    def dtype(self) -> str:
        return "uint8" if self.kind == "uint8-nhwc" else "float32"

    @property
    def layout(self) -> str:
        return "NHWC" if self.kind == "uint8-nhwc" else "NCHW"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "dtype": self.dtype, "layout": self.layout,
                "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> EngineInput:
        kind = value.get("kind") or ("uint8-nhwc" if value.get("dtype", "uint8") == "uint8" else "float-nchw")
        return cls(str(value["name"]), str(kind), tuple(int(d) for d in value.get("shape") or ()))


@dataclass(frozen=True)
class ParityRecord:
    """One parity verdict of a manifest (``parity.engine``, ``parity.graph``): its status, why (where it was not
    measured), the failed limits, and the measures as the comparison reported them (``details``)."""

    status: str  # passed, failed, pending, not measured, error
    reason: str = ""
    failures: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def agreement(self) -> float | None:
        value = self.details.get("agreement")
        return None if value is None else float(value)

    @property
    def rel_l2(self) -> dict[str, float]:
        """The relative L2 error of each output, where measured."""
        return dict(self.details.get("rel_l2") or {})

    @property
    def candidate(self) -> str:
        """What was measured (the backend that ran the engine or the graph)."""
        return str(self.details.get("candidate") or "")

    @property
    def why(self) -> str:
        """The reason, or the failed limits."""
        return self.reason or "; ".join(self.failures)

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"status": self.status, **self.details}
        if self.reason:
            values["reason"] = self.reason
        if self.failures or self.status in ("passed", "failed"):
            values["failures"] = list(self.failures)
        return values

    @classmethod
    def from_dict(cls, value: Any) -> ParityRecord:
        if not isinstance(value, dict):
            return cls("not recorded")
        details = {k: v for k, v in value.items() if k not in ("status", "reason", "failures")}
        return cls(str(value.get("status", "not recorded")), str(value.get("reason") or ""),
                   strings(value.get("failures")), details)


@dataclass(frozen=True)
class EngineCalibration:
    """Where an INT8 engine's scales come from: the Q/DQ graph (explicit) or a calibration cache (implicit), the
    calibration set, the range method and the flavour, and the cache's facts for an implicit build."""

    quantization: str  # the plan's: "explicit (Q/DQ graph)" or "implicit (calibration cache)"
    set_sha256: str = ""
    method: str = ""
    flavour: str = ""
    cache: str = ""
    cache_sha256: str = ""
    cache_tensorrt: str = ""

    def to_dict(self) -> dict[str, Any]:
        values = {"quantization": self.quantization, "set_sha256": self.set_sha256, "method": self.method,
                  "flavour": self.flavour}
        if self.cache:
            values.update(cache=self.cache, cache_sha256=self.cache_sha256, cache_tensorrt=self.cache_tensorrt)
        return values

    @classmethod
    def from_dict(cls, value: Any) -> EngineCalibration | None:
        if not isinstance(value, dict):
            return None
        return cls(*(str(value.get(k) or "") for k in ("quantization", "set_sha256", "method", "flavour", "cache",
                                                       "cache_sha256", "cache_tensorrt")))


@dataclass(frozen=True)
class EngineManifest:
    """An engine's manifest (see the module docstring)."""

    engine: str
    engine_sha256: str
    engine_bytes: int
    tensorrt_flavour: str  # tensorrt or tensorrt_rtx
    tensorrt_version: str
    target: EngineTarget
    precision: str
    profile: dict[str, Any]  # input, min, opt, max shapes
    input: EngineInput
    input_spec: InputSpec
    outputs: tuple[str, ...]
    decision: DecisionRule
    preprocess: Preprocess
    parity: dict[str, ParityRecord]
    network: str = ""
    profiles: int = 1
    score_stats: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    source_graph: FileRef | None = None
    given_graph: FileRef | None = None  # the graph the user gave, where the built one was derived from it
    source_checkpoint: FileRef | None = None
    calibration: EngineCalibration | None = None  # an INT8 engine's
    build: dict[str, Any] = field(default_factory=dict)  # the plan, the build time, pinned layers, timing cache
    gedge_version: str = ""
    forced: tuple[str, ...] = ()  # recorded verdicts the build overrode with --force

    @property
    def engine_parity(self) -> ParityRecord:
        return self.parity.get("engine", ParityRecord("not recorded"))

    @property
    def max_batch(self) -> int | None:
        shape = self.profile.get("max")
        return int(shape[0]) if shape else None

    @property
    def opt_batch(self) -> int | None:
        shape = self.profile.get("opt")
        return int(shape[0]) if shape else None

    def model_facts(self) -> ModelFacts:
        """What the engine scores, as every model file says it (its INT8 flavour from the calibration facts)."""
        calibration = self.calibration
        quantization = None if calibration is None else Quantization(
            calibration.flavour, calibration.method,
            calibration_set=CalibrationSetRef(calibration.set_sha256) if calibration.set_sha256 else None)
        source = self.source_checkpoint or FileRef("", "")
        graph = self.source_graph or FileRef("", "")
        model = self.model or {"isize": self.input_spec.size, "nc": self.input_spec.channels}
        return ModelFacts(self.precision, self.input.kind, self.input.name, self.outputs, model, self.preprocess,
                          self.decision, self.score_stats, Lineage(source.path, source.sha256, graph.sha256),
                          quantization, gedge_version=self.gedge_version)

    def with_parity(self, parity: dict[str, ParityRecord]) -> EngineManifest:
        return replace(self, parity=parity)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``docs/schemas/engine-manifest.schema.json``)."""
        values = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "engine": self.engine,
            "engine_sha256": self.engine_sha256, "engine_bytes": self.engine_bytes,
            "source_graph": _or_none(self.source_graph) or {}, "given_graph": _or_none(self.given_graph),
            "source_checkpoint": _or_none(self.source_checkpoint) or {},
            "tensorrt": {"flavour": self.tensorrt_flavour, "version": self.tensorrt_version},
            "target": self.target.to_dict(), "precision": self.precision, "network": self.network,
            "profile": self.profile, "profiles": self.profiles, "input": self.input.to_dict(),
            "input_spec": self.input_spec.to_dict(), "outputs": list(self.outputs), "score_stats": self.score_stats,
            "primary_score": self.decision.primary, "threshold": float(self.decision.threshold),
            "decision": self.decision.to_dict(), "calibration_set": _or_none(self.calibration), "model": self.model,
            "preprocess": self.preprocess.to_dict(), "build": self.build, "gedge_version": self.gedge_version,
            "parity": {kind: record.to_dict() for kind, record in self.parity.items()},
        }
        if self.forced:
            values["forced"] = list(self.forced)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str | Path | None = None) -> EngineManifest:
        """A manifest read back; ArtifactError naming ``where`` when it is not one this gedge reads."""
        check_format(values, (FORMAT, FORMAT_VERSION), "not a gedge engine manifest", "manifest", where)
        try:
            return _manifest(values)
        except KeyError as exc:
            raise ArtifactError(f"manifest lacks {exc}", where) from None
        except (GedgeError, TypeError, ValueError) as exc:
            raise ArtifactError(f"manifest does not parse: {getattr(exc, 'problem', exc)}", where) from None


def _or_none(record: Any) -> dict[str, Any] | None:
    return None if record is None else record.to_dict()


def _input_spec(values: dict[str, Any], engine_input: EngineInput) -> InputSpec:
    spec = values.get("input_spec") or {}
    if spec:
        return InputSpec(size=int(spec["size"]), channels=int(spec["channels"]))
    shape = engine_input.shape[1:]
    size, channels = (shape[0], shape[2]) if engine_input.layout == "NHWC" else (shape[1], shape[0])
    return InputSpec(size=int(size), channels=int(channels))


def _manifest(values: dict[str, Any]) -> EngineManifest:
    trt = values["tensorrt"]
    engine_input = EngineInput.from_dict(values["input"])
    parity = values["parity"]
    return EngineManifest(
        engine=str(values.get("engine") or ""), engine_sha256=str(values["engine_sha256"]),
        engine_bytes=int(values.get("engine_bytes") or 0), tensorrt_flavour=str(trt["flavour"]),
        tensorrt_version=str(trt["version"]), target=EngineTarget.from_dict(values["target"]),
        precision=str(values["precision"]), profile=dict(values["profile"]), input=engine_input,
        input_spec=_input_spec(values, engine_input), outputs=strings(values["outputs"]),
        decision=DecisionRule.from_dict(values["decision"]), preprocess=Preprocess.from_dict(values["preprocess"]),
        parity={str(kind): ParityRecord.from_dict(entry) for kind, entry in dict(parity).items()},
        network=str(values.get("network") or ""), profiles=int(values.get("profiles") or 1),
        score_stats=dict(values.get("score_stats") or {}), model=dict(values.get("model") or {}),
        source_graph=FileRef.from_dict(values.get("source_graph")),
        given_graph=FileRef.from_dict(values.get("given_graph")),
        source_checkpoint=FileRef.from_dict(values.get("source_checkpoint")),
        calibration=EngineCalibration.from_dict(values.get("calibration_set")), build=dict(values.get("build") or {}),
        gedge_version=str(values.get("gedge_version") or ""), forced=strings(values.get("forced")))

"""What `gedge calibrate` makes per target, and how each artifact is written, checked and published.

Every target follows the same steps, driven by :func:`gedge.calibrate.pipeline.calibrate`: ``write`` the
artifact to a temporary name (with its facts), let the gate compare it with the reference, ``inspect`` it,
``publish`` it (rename into place, sidecar with the gate's verdict) unless ``--strict`` refuses it, and
``discard`` whatever temporary files are left. :class:`QdqTarget` makes the two ONNX Q/DQ flavours
(``tensorrt``, ``cpu``); the OpenVINO target lives with its quantizer (:mod:`gedge.calibrate.nncf_int8`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import onnx
from gedge.calibrate.patches import CalibrationSet
from gedge.calibrate.quantize import QuantizeSettings, flavour, inspect_qdq, quantize_graph
from gedge.calibrate.ranges import CalibrationRanges
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.graph import graph_artifact, graph_facts, serialize, write_graph
from gedge.core.artifacts.records import CalibrationSetRef, GateRecord, sha256_bytes
from gedge.core.atomic import write_bytes
from gedge.core.errors import ConfigError, RuntimeFailure, first_line
from gedge.export.check import tensorrt_check


@dataclass(frozen=True)
class TargetInputs:
    """What every target's artifact is made from: the FP32 graph (as gedge read it), the calibration set and (for the
    ONNX flavours) the activation ranges chosen on it."""

    fp32: Artifact
    calibration: CalibrationSet
    calibration_set: CalibrationSetRef  # the calibration set's sha256, size, file and seed, as artifacts record it
    ranges: CalibrationRanges | None = None
    quantize_image_convs: bool = False


@dataclass
class ArtifactChecks:
    """What was found on a written artifact."""

    quantized: dict[str, int]  # quantized nodes by op type
    float_convolutions: list[str]  # convolutions left in float
    nodes: int | None = None  # ONNX graph nodes
    tensorrt_parse: str = ""  # TensorRT's parser verdict on the Q/DQ graph, where a TensorRT module is installed
    tensorrt_parsed: bool | None = None  # whether TensorRT's parser took it (None: not parsed here)
    float_residuals: list[str] | None = None  # OpenVINO IR: non-convolutions reading quantized activations
    quantization: dict[str, Any] = field(default_factory=dict)  # the quantization facts the artifact records


class TargetWriter(Protocol):
    target: str
    out: Path
    gate_note: str  # how the gate ran the artifact, for the report's notes

    def write(self, tmp: Path, keep_float: tuple[str, ...] = ()) -> Artifact: ...

    def inspect(self, tmp: Path) -> ArtifactChecks: ...

    def publish(self, tmp: Path, gate: dict[str, Any]) -> None: ...

    def discard(self, tmp: Path) -> None: ...


def temporary_path(out: Path) -> Path:
    """Where an artifact is written before the gate: hidden, next to ``out``, with ``out``'s suffix (so the
    runtime registry opens it on the same backend)."""
    return out.with_name(f".{out.stem}.gate{out.suffix}")


def tensorrt_parse(model: onnx.ModelProto, path: Path) -> tuple[str, bool | None]:
    """TensorRT's parser verdict on a graph in one line, and whether it parsed (None: no TensorRT installed).
    TensorRT failing to run at all is a RuntimeFailure, not a verdict."""
    try:
        check, skipped = tensorrt_check(model)
    except RuntimeError as exc:  # pybind11 maps TensorRT's C++ errors to RuntimeError (a broken install)
        raise RuntimeFailure(f"TensorRT's parser failed to run on the INT8 graph: {first_line(exc)}", path) from None
    if check is None:
        return skipped, None
    if check.parsed:
        return f"parsed by {check.module} {check.version}", True
    return (f"REJECTED by {check.module} {check.version}: " + "; ".join(i.line() for i in check.issues[:3])), False


class QdqTarget:
    """An ONNX Q/DQ graph of the ``tensorrt`` or ``cpu`` flavour (:mod:`gedge.calibrate.quantize`), gated on ONNX
    Runtime."""

    def __init__(self, target: str, out: Path, inputs: TargetInputs) -> None:
        if inputs.ranges is None:
            raise ConfigError(f"the {target} INT8 graph needs activation ranges")
        self.target = target
        self.out = out
        self.inputs = inputs
        self.spec = flavour(target)
        self.model: onnx.ModelProto | None = None
        self.data = b""  # the bytes written
        self.gate_note = f"{target} graph run on ONNX Runtime CPU" + (
            " (its Q/DQ arithmetic: what TensorRT computes, up to accumulation order)" if target == "tensorrt" else "")

    def write(self, tmp: Path, keep_float: tuple[str, ...] = ()) -> Artifact:
        """The Q/DQ graph at ``tmp`` (no sidecar yet: the gate has not judged it); ``keep_float``: further
        convolutions to leave in float (the fallback's)."""
        inputs = self.inputs
        settings = QuantizeSettings(inputs.fp32.sha256, inputs.calibration_set, inputs.quantize_image_convs,
                                    tuple(keep_float))
        self.model = quantize_graph(inputs.fp32.onnx_model, inputs.ranges, self.spec, settings)
        self.data = serialize(self.model)
        write_bytes(tmp, self.data)
        return graph_artifact(tmp, self.model, sha256_bytes(self.data), None)

    def inspect(self, tmp: Path) -> ArtifactChecks:
        summary = inspect_qdq(self.model)
        parse, parsed = tensorrt_parse(self.model, tmp) if self.target == "tensorrt" else ("", None)
        quantization = graph_facts(self.model, tmp).quantization
        return ArtifactChecks(summary.quantized_counts(), summary.float_convolutions, len(self.model.graph.node),
                              parse, parsed, quantization={} if quantization is None else quantization.to_dict())

    def publish(self, tmp: Path, gate: dict[str, Any]) -> None:
        """The judged graph, written with the gate's verdict inside it (so hashed with it) and in its sidecar."""
        write_graph(self.out, self.model, GateRecord.from_dict(gate), self.inputs.calibration_set)

    def discard(self, tmp: Path) -> None:
        tmp.unlink(missing_ok=True)

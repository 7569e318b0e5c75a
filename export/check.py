"""Checking a graph before it goes anywhere: the ONNX checker, then TensorRT's own ONNX parser.

``onnx.checker`` with full shape inference catches malformed graphs; TensorRT's parser catches graphs that
are valid ONNX but that TensorRT will not take (an op, a type or an attribute it does not support), and
names the node. With ``build`` the parsed network is also built into an engine in memory (TensorRT-RTX builds
ahead of time for the requested compute capabilities, with no GPU), which is the last word on acceptance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.graph import graph_facts, load_graph
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.tensorrt import import_tensorrt
from gedge.core.timing import Stopwatch
from gedge.export.tensorrt_parse import ParsedNetwork, ParserIssue


@dataclass
class TensorRTCheck:
    """TensorRT's verdict on a graph."""

    module: str
    version: str
    parsed: bool
    issues: list[ParserIssue] = field(default_factory=list)
    unsupported_nodes: list[str] = field(default_factory=list)
    built: bool | None = None  # None: no build was asked for
    engine_bytes: int = 0
    build_seconds: float = 0.0
    build_error: str = ""
    compute_capabilities: list[str] = field(default_factory=list)


@dataclass
class GraphCheck:
    """The result of ``gedge check``: ONNX checker errors and TensorRT's parse (and build) result."""

    path: str
    nodes: int
    opset: int
    precision: str
    onnx_ok: bool
    onnx_errors: list[str] = field(default_factory=list)
    tensorrt: TensorRTCheck | None = None
    tensorrt_skipped: str = ""  # why TensorRT was not run (not installed, not asked for)

    @property
    def ok(self) -> bool:
        trt_ok = self.tensorrt is None or (self.tensorrt.parsed and self.tensorrt.built is not False)
        return self.onnx_ok and trt_ok

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def onnx_errors(model: onnx.ModelProto) -> list[str]:
    """The ONNX checker's complaint (it stops at the first), with full strict shape inference; [] if none."""
    try:
        onnx.checker.check_model(model, full_check=True)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        return [line for line in str(exc).strip().splitlines() if line.strip()][:3]
    return []


def tensorrt_check(model: onnx.ModelProto, module: str | None = None, build: bool = False,
                   compute_capabilities: list[str] | None = None,
                   max_batch: int = 64) -> tuple[TensorRTCheck | None, str]:
    """Parse (and optionally build) with TensorRT; (None, reason) when no TensorRT module can be imported."""
    trt, reason = import_tensorrt(module)
    if trt is None:
        if module:
            raise ConfigError(f"TensorRT module {module} is not usable here ({reason})")
        return None, f"TensorRT not available ({reason})"
    names = [n.name for n in model.graph.node]
    parsed = ParsedNetwork(trt, model.SerializeToString())
    result = parsed.result(names)
    check = TensorRTCheck(trt.name, trt.version, result.ok, result.issues, result.unsupported_nodes)
    caps = [c.upper() for c in compute_capabilities or []]
    if caps:
        enum = getattr(trt.module, "ComputeCapability", None)
        known = [k for k in enum.__members__ if k.startswith("SM")] if enum is not None else []
        unknown = [c for c in caps if c not in known]
        if unknown:
            raise ConfigError(f"{trt.name} {trt.version} cannot target {', '.join(unknown)}"
                              + (f" (it knows {', '.join(known)})" if known else " (no compute capability API)"))
    if build and result.ok:
        # No capabilities: TensorRT-RTX's portable default (Ampere and later); classic TensorRT: this GPU.
        check.compute_capabilities = caps
        watch = Stopwatch()
        try:
            fp16 = any(p.key == "gedge.precision" and p.value == "fp16" for p in model.metadata_props)
            engine = parsed.build(opt_batch=min(16, max_batch), max_batch=max_batch, compute_capabilities=caps,
                                  fp16_flag=fp16)
        except RuntimeError as exc:
            check.built, check.build_error = False, str(exc)
        else:
            check.built, check.engine_bytes = True, len(engine)
        check.build_seconds = watch.seconds(2)
    return check, ""


def _graph(graph: Artifact | str | Path) -> tuple[onnx.ModelProto, Path, str]:
    """The model, its path and its gedge precision ("" for a graph gedge did not write: any graph can be checked)."""
    if isinstance(graph, Artifact):
        if graph.onnx_model is None:
            raise ArtifactError("not an ONNX graph", graph.path)
        return graph.onnx_model, Path(graph.path), graph.precision
    model = load_graph(graph)
    try:
        precision = graph_facts(model, graph).precision
    except ArtifactError:
        precision = ""
    return model, Path(graph), precision


def check_graph(graph: Artifact | str | Path, tensorrt: bool = True, module: str | None = None, build: bool = False,
                compute_capabilities: list[str] | None = None) -> GraphCheck:
    """Run the ONNX checker and, where installed and asked for, TensorRT's parser (and builder), on a gedge graph
    as gedge read it, or on any ONNX file."""
    model, path, precision = _graph(graph)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    result = GraphCheck(str(path), len(model.graph.node), opset, precision, onnx_ok=True)
    result.onnx_errors = onnx_errors(model)
    result.onnx_ok = not result.onnx_errors
    if not tensorrt:
        result.tensorrt_skipped = "not asked for (--no-tensorrt)"
        return result
    try:
        result.tensorrt, result.tensorrt_skipped = tensorrt_check(model, module, build, compute_capabilities)
    except RuntimeError as exc:  # TensorRT failing to start at all (a broken install), not a graph problem
        raise ArtifactError(f"TensorRT could not check the graph: {exc}", path) from None
    return result

"""Which graph, network and builder settings an engine build uses: a pure function of what TensorRT can do.

Three kinds of TensorRT meet gedge's graphs:

* TensorRT 11.x and TensorRT-RTX: strongly typed networks only. The graph says each layer's type: FP16 comes
  from the FP16-typed graph (:mod:`gedge.export.fp16`), INT8 from a Q/DQ graph. No precision builder flags,
  no calibrators.
* TensorRT 10.x (JetPack 6.1+, x86): strongly typed as above by default; weak typing with the FP16/INT8
  builder flags when asked for (``--typing weak``), or when an INT8 calibration cache is given.
* TensorRT 8.5/8.6 (JetPack 5/6.0): weakly typed networks with the FP16/INT8 builder flags; INT8 from the
  Q/DQ graph or from a calibration cache, and the residual layers pinned to FP32 with precision constraints.

What a TensorRT can do comes from :mod:`gedge.export.capabilities`. :func:`plan_build` is pure: capabilities,
the request and the graph (the :class:`~gedge.core.artifacts.Artifact` gedge read: its facts and its layout) in, a
:class:`BuildPlan` (or a one-line :class:`~gedge.core.errors.ConfigError`) out.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gedge.core.artifacts import Artifact
from gedge.core.artifacts.graph import layer_group
from gedge.core.artifacts.layout import GraphLayout
from gedge.core.errors import ConfigError
from gedge.export.capabilities import RTX_DEFAULT_TARGETS, TensorRTCapabilities

PRECISIONS = ("fp32", "fp16", "int8")
TYPINGS = ("auto", "strong", "weak")


# --- the request, the graph, the plan ----------------------------------------------------------------------


def layout_of(graph: Artifact) -> GraphLayout:
    """The graph's layout (read with the graph); ConfigError when it is not a graph or its input is not fixed."""
    if graph.layout is None:
        raise ConfigError(f"{graph.name}: TensorRT builds from an ONNX graph (.onnx)")
    layout = graph.layout
    if not layout.input_name:
        raise ConfigError(f"{graph.path}: the graph has no input")
    if not layout.input_shape or any(d <= 0 for d in layout.input_shape):
        raise ConfigError(f"{graph.path}: only the batch dimension of input {layout.input_name!r} may be dynamic")
    return layout


def graph_precision(graph: Artifact) -> str:
    """The precision a graph computes in: its facts' (a Q/DQ graph is INT8 whatever its facts say)."""
    qdq = graph.layout is not None and graph.layout.qdq
    return "int8" if qdq and graph.precision == "fp32" else graph.precision


@dataclass(frozen=True)
class BuildRequest:
    """What the user asked for (``gedge build`` options)."""

    precision: str
    typing: str = "auto"
    out: str = ""  # engine path; "" = <graph folder>/<base>.<precision>.engine
    min_batch: int = 1
    opt_batch: int = 0  # 0: 8, or max_batch if smaller (or min_batch if larger)
    max_batch: int = 32
    workspace_mb: int | None = None
    opt_level: int | None = None
    timing_cache: str = ""
    compute_capabilities: tuple[str, ...] = ()
    calibration_cache: str = ""
    progress: bool = True
    profiles: int = 2  # identical optimisation profiles: one per execution context running concurrently
    parity_batch: int = 64  # inference batch of build-time parity (--ref/--data)
    force: bool = False  # build from a graph or cache whose recorded verdict failed (the manifest records it)


@dataclass
class BuildPlan:
    """Everything an engine build will do, decided before TensorRT is touched (printed by --dry-run)."""

    tensorrt: str  # label, e.g. "TensorRT 10.3.0.30"
    flavour: str
    version: str
    assumed: bool
    precision: str
    network: str  # "strongly typed" or "weakly typed"
    graph: str  # the graph that is parsed
    graph_given: str  # the graph the user passed
    derive_fp16: bool  # graph is written from graph_given by export/fp16.py before the build
    quantization: str  # "none", "explicit (Q/DQ graph)" or "implicit (calibration cache)"
    engine: str
    explicit_batch_flag: bool = False
    builder_flags: list[str] = field(default_factory=list)
    cleared_flags: list[str] = field(default_factory=list)
    fp32_pinned: str = ""  # which layers precision constraints pin to FP32 ("" = none)
    calibration_cache: str = ""
    calibrator: str = ""
    profile: dict[str, Any] = field(default_factory=dict)  # input, min, opt, max shapes
    profiles: int = 1  # copies of that profile in the engine (one per in-flight slot of the runtime)
    workspace_mb: int | None = None
    workspace_api: str = ""
    opt_level: int | None = None
    timing_cache: str = ""
    compute_capabilities: list[str] = field(default_factory=list)
    target: str = ""
    progress_monitor: bool = False
    layer_precision: list[dict[str, Any]] = field(default_factory=list)  # per sub-network (see layer_groups)
    kept_float: list[str] = field(default_factory=list)  # layers the INT8 fallback kept in float
    notes: list[str] = field(default_factory=list)

    @property
    def strongly_typed(self) -> bool:
        return self.network == "strongly typed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rows(self) -> list[tuple[str, str]]:
        """(setting, value) pairs for a table."""
        profile = self.profile
        rows = [
            ("TensorRT", self.tensorrt),
            ("precision", self.precision),
            ("network", self.network + (" (EXPLICIT_BATCH flag)" if self.explicit_batch_flag else "")),
            ("graph", self.graph + (f" (derived from {self.graph_given} by export/fp16.py)" if self.derive_fp16
                                    else "")),
            ("quantization", self.quantization + (f": {self.calibration_cache} via {self.calibrator}"
                                                  if self.calibration_cache else "")),
            ("builder flags", ", ".join(self.builder_flags) or "none"),
            ("cleared flags", ", ".join(self.cleared_flags) or "none"),
            ("FP32 pinned", self.fp32_pinned or ("none: the graph's types decide" if self.strongly_typed else "none")),
            ("profile", f"{profile.get('input')}: min {profile.get('min')}, opt {profile.get('opt')}, "
                        f"max {profile.get('max')}" + (f"; {self.profiles} identical profiles (one per in-flight "
                                                       "slot)" if self.profiles > 1 else "")),
            ("workspace", f"{self.workspace_mb} MiB ({self.workspace_api})" if self.workspace_mb
             else "TensorRT's default"),
            ("optimisation level", "TensorRT's default" if self.opt_level is None else str(self.opt_level)),
            ("timing cache", f"{self.timing_cache} (read if present, updated after the build)" if self.timing_cache
             else "none"),
            ("target", self.target),
            ("progress", "IProgressMonitor" if self.progress_monitor else "elapsed time only"),
            ("engine", f"{self.engine} (+ {Path(self.engine).name}.json manifest)"),
        ]
        if self.layer_precision:
            rows.insert(5, ("layer precision", "; ".join(
                f"{g['group']}: " + ", ".join(f"{g[p]} {p.upper()}" for p in ("int8", "fp16", "fp32") if g[p])
                for g in self.layer_precision)))
        if self.kept_float:
            rows.insert(6, ("kept in float", ", ".join(self.kept_float) + " (INT8 fallback of `gedge calibrate`)"))
        return rows


def graph_base(path: str | Path) -> str:
    """``scorer`` for scorer.onnx, scorer.fp16.onnx, scorer.int8.qdq.onnx."""
    name = Path(path).name
    for suffix in (".onnx", ".qdq", ".int8", ".fp16", ".fp32"):
        name = name.removesuffix(suffix)
    return name or "scorer"


def default_engine_path(graph: str | Path, precision: str) -> Path:
    return Path(graph).with_name(f"{graph_base(graph)}.{precision}.engine")


def fp16_graph_path(graph: str | Path) -> Path:
    return Path(graph).with_name(f"{graph_base(graph)}.fp16.onnx")


def normalise_compute_capability(value: str) -> str:
    """``SM86`` from ``SM86``, ``sm86``, ``sm_86``, ``8.6`` or ``86``."""
    text = value.strip().upper().replace("_", "").replace("SM", "")
    if re.fullmatch(r"\d+\.\d", text):
        text = text.replace(".", "")
    if not re.fullmatch(r"\d{2,3}", text):
        raise ConfigError(f"compute capability {value!r} is not of the form SM86 (or 8.6)")
    return f"SM{text}"


def _opt_batch(request: BuildRequest) -> int:
    return request.opt_batch or max(request.min_batch, min(8, request.max_batch))


def _check_request(request: BuildRequest) -> None:
    if request.precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {request.precision!r}")
    if request.typing not in TYPINGS:
        raise ConfigError(f"--typing must be one of {', '.join(TYPINGS)}, got {request.typing!r}")
    if not 1 <= request.min_batch <= _opt_batch(request) <= request.max_batch:
        raise ConfigError(f"batch sizes must satisfy 1 <= min <= opt <= max, got {request.min_batch}/"
                          f"{_opt_batch(request)}/{request.max_batch}")
    if request.workspace_mb is not None and request.workspace_mb <= 0:
        raise ConfigError(f"--workspace-mb must be positive, got {request.workspace_mb}")
    if request.opt_level is not None and not 0 <= request.opt_level <= 5:
        raise ConfigError(f"--opt-level must be 0 to 5, got {request.opt_level}")


def _choose_typing(caps: TensorRTCapabilities, request: BuildRequest, graph: GraphLayout) -> bool:
    """True for a strongly typed network."""
    if request.typing == "strong":
        if not caps.strongly_typed:
            raise ConfigError(f"{caps.label} has no strongly typed networks (STRONGLY_TYPED arrived in 9.x); "
                              "use --typing auto")
        if request.calibration_cache:
            raise ConfigError("a calibration cache needs a weakly typed network (INT8 builder flag and a "
                              "calibrator); drop --typing strong or pass the Q/DQ graph instead")
        return True
    if request.typing == "weak":
        if caps.strongly_typed_only:
            raise ConfigError(f"{caps.label} builds strongly typed networks only (no FP16/INT8 builder flags); "
                              "drop --typing weak")
        return False
    if caps.strongly_typed_only:
        return True
    if not caps.strongly_typed:
        return False
    # TensorRT 10.x: strongly typed, unless INT8 is to come from a calibration cache (a calibrator).
    return not (request.precision == "int8" and request.calibration_cache and not graph.qdq)


def layer_groups(plan: BuildPlan, graph: Artifact) -> list[dict[str, Any]]:
    """The precision of each sub-network's convolutions in the engine: INT8 where the Q/DQ graph quantizes them
    (or where an implicit build's calibrator may choose it), otherwise the plan's float precision. Layers the
    accuracy-aware fallback kept in float run in FP32, as the gate measured them."""
    groups: dict[str, dict[str, Any]] = {}
    implicit = plan.quantization.startswith("implicit")
    kept_float = graph.model_facts().kept_float
    for name, _op_type, int8 in layout_of(graph).layers:
        group = groups.setdefault(layer_group(name), {"int8": 0, "fp16": 0, "fp32": 0, "kept_float": []})
        precision = ("int8" if int8 or implicit else "fp16" if plan.precision == "fp16" else "fp32")
        group[precision] += 1
        if name in kept_float:
            group["kept_float"].append(name)
    return [{"group": name, **counts} for name, counts in groups.items()]


PIN_RESIDUALS = ("residual layers (camera front end, residual subtractions, Abs/Pow/Sqrt, reductions, "
                 "score normalisation, outputs): everything outside G and D's Conv/ConvTranspose, "
                 "activations and Concat")


def _check_graph(request: BuildRequest, graph: Artifact) -> None:
    """The graph and the requested precision fit together (or a one-line ConfigError)."""
    precision, layout = request.precision, layout_of(graph)
    if layout.qdq_uint8:
        raise ConfigError(f"{graph.path} is a CPU-flavoured Q/DQ graph (uint8 activations); TensorRT takes the "
                          "TensorRT-flavoured one (int8, symmetric): scorer.int8.qdq.onnx")
    if layout.qdq and precision != "int8":
        raise ConfigError(f"{graph.path} is an INT8 Q/DQ graph; build it with --precision int8")
    if graph_precision(graph) == "fp16" and precision != "fp16":
        raise ConfigError(f"{graph.path} is an FP16 graph; build it with --precision fp16, or pass the FP32 "
                          "graph (scorer.onnx)")
    if request.calibration_cache and precision != "int8":
        raise ConfigError("--calibration-cache is for --precision int8")
    if request.calibration_cache and layout.qdq:
        raise ConfigError("a Q/DQ graph carries its own scales; pass either the Q/DQ graph or the FP32 graph "
                          "with --calibration-cache, not both")
    if request.profiles < 1:
        raise ConfigError(f"--profiles must be at least 1, got {request.profiles}")


def _pin_with_constraints(plan: BuildPlan, caps: TensorRTCapabilities) -> bool:
    """Pin the residual layers to FP32 where precision constraints exist; whether they do."""
    if caps.precision_constraints:
        plan.builder_flags.append("OBEY_PRECISION_CONSTRAINTS")
        plan.fp32_pinned = PIN_RESIDUALS
    return caps.precision_constraints


def _plan_fp16(plan: BuildPlan, caps: TensorRTCapabilities, graph: Artifact, fp16_graph_exists: bool) -> None:
    """FP16 from the FP16-typed graph (strongly typed) or from the builder flag (weakly typed)."""
    if plan.strongly_typed and graph_precision(graph) == "fp32":
        plan.graph = str(fp16_graph_path(graph.path))
        plan.derive_fp16 = not fp16_graph_exists
        plan.notes.append(
            f"{caps.label} takes FP16 from the graph's types: "
            + (f"the FP16 graph {plan.graph} next to the FP32 graph (derived from it) is used"
               if fp16_graph_exists else
               f"the FP16 graph is derived from {graph.path} and written to {plan.graph} "
               "(the same graph `gedge export --precision fp16` writes)"))
    elif not plan.strongly_typed:
        plan.builder_flags.append("FP16")
        if not _pin_with_constraints(plan, caps):
            plan.notes.append(f"{caps.label} has no precision constraints: TensorRT may run residual layers in FP16")


def _plan_int8(plan: BuildPlan, caps: TensorRTCapabilities, request: BuildRequest, graph: Artifact) -> None:
    """INT8 from the Q/DQ graph (explicit) or from a calibration cache through a calibrator (implicit)."""
    if layout_of(graph).qdq:
        plan.quantization = "explicit (Q/DQ graph)"
        if not plan.strongly_typed:
            plan.builder_flags.append("INT8")  # weakly typed networks need it for Q/DQ layers
        return
    if not request.calibration_cache:
        wants = ("the Q/DQ graph scorer.int8.qdq.onnx" if not caps.calibrators else
                 "the Q/DQ graph scorer.int8.qdq.onnx, or this FP32 graph with --calibration-cache "
                 "scorer.int8.calib.cache")
        raise ConfigError(f"INT8 needs {wants} (from `gedge calibrate`); {graph.path} is an "
                          f"{graph_precision(graph).upper()} graph")
    if not caps.calibrators:
        raise ConfigError(f"{caps.label} has no INT8 calibrators (removed in 11.x); pass the Q/DQ graph "
                          "scorer.int8.qdq.onnx instead of --calibration-cache")
    plan.quantization = "implicit (calibration cache)"
    plan.calibration_cache = request.calibration_cache
    plan.calibrator = caps.calibrators[0]
    plan.builder_flags.append("INT8")
    _pin_with_constraints(plan, caps)
    plan.notes.append("the calibrator reads the scales from the cache (no calibration images at build "
                      "time); the cache must come from this FP32 graph's tensor names")


def _plan_builder(plan: BuildPlan, caps: TensorRTCapabilities, request: BuildRequest, graph: GraphLayout) -> None:
    """Optimisation profiles, workspace, optimisation level and timing cache."""
    plan.profiles = request.profiles
    plan.profile = {"input": graph.input_name,
                    "min": [request.min_batch, *graph.input_shape],
                    "opt": [_opt_batch(request), *graph.input_shape],
                    "max": [request.max_batch, *graph.input_shape]}
    if request.workspace_mb is not None:
        plan.workspace_mb = request.workspace_mb
        plan.workspace_api = ("set_memory_pool_limit(MemoryPoolType.WORKSPACE)" if caps.memory_pool_limit
                              else "max_workspace_size")
    if request.opt_level is not None:
        if not caps.optimization_level:
            raise ConfigError(f"--opt-level needs TensorRT 8.6 or later (builder_optimization_level); "
                              f"{caps.label} has none")
        plan.opt_level = request.opt_level
    if request.timing_cache:
        if caps.timing_cache:
            plan.timing_cache = request.timing_cache
        else:
            plan.notes.append(f"--timing-cache ignored: {caps.label} does not use a timing cache"
                              + (" (a no-op there, and it would need a GPU)" if caps.is_rtx else ""))


def _plan_target(plan: BuildPlan, caps: TensorRTCapabilities, request: BuildRequest) -> None:
    """What the engine is built for: this machine's GPU, or ahead of time for compute capabilities (RTX)."""
    ccs = [normalise_compute_capability(c) for c in request.compute_capabilities]
    if ccs:
        if not caps.compute_capabilities:
            raise ConfigError(f"-c/--compute-capability is for TensorRT-RTX ahead-of-time builds; {caps.label} "
                              "builds for the GPU it runs on")
        unknown = [c for c in ccs if c not in caps.compute_capabilities]
        if unknown:
            raise ConfigError(f"{caps.label} cannot target {', '.join(unknown)} (it knows "
                              f"{', '.join(caps.compute_capabilities)})")
        plan.compute_capabilities = list(dict.fromkeys(ccs))
    if caps.compute_capabilities:
        plan.target = ("ahead of time for " + ", ".join(plan.compute_capabilities) if plan.compute_capabilities
                       else f"ahead of time for TensorRT-RTX's default targets ({', '.join(RTX_DEFAULT_TARGETS)} "
                            "and later); no GPU needed")
    else:
        plan.target = "this machine's GPU (an engine runs on the GPU model and TensorRT version it was built with)"


def plan_build(caps: TensorRTCapabilities, request: BuildRequest, graph: Artifact,
               fp16_graph_exists: bool = False) -> BuildPlan:
    """The build plan for ``graph`` on a TensorRT with ``caps``; ConfigError (one line) when it cannot be built.

    ``fp16_graph_exists``: an FP16 graph derived from this FP32 graph already lies next to it (it is reused
    rather than written again).
    """
    _check_request(request)
    _check_graph(request, graph)
    layout = layout_of(graph)
    strongly_typed = _choose_typing(caps, request, layout)
    plan = BuildPlan(
        tensorrt=caps.label, flavour=caps.flavour, version=caps.version, assumed=caps.assumed,
        precision=request.precision, network="strongly typed" if strongly_typed else "weakly typed",
        graph=str(graph.path), graph_given=str(graph.path), derive_fp16=False, quantization="none",
        engine=request.out or str(default_engine_path(graph.path, request.precision)),
        explicit_batch_flag=caps.explicit_batch_required)
    if request.precision == "fp16":
        _plan_fp16(plan, caps, graph, fp16_graph_exists)
    elif request.precision == "int8":
        _plan_int8(plan, caps, request, graph)
    if caps.tf32_flag:
        plan.cleared_flags.append("TF32")  # FP32 layers compute in FP32: FP32 parity limits are 1e-5
    if plan.explicit_batch_flag:
        plan.notes.append(f"{caps.label} needs the EXPLICIT_BATCH network flag (implicit batch exists until 10.0)")
    _plan_builder(plan, caps, request, layout)
    _plan_target(plan, caps, request)
    plan.progress_monitor = request.progress and caps.progress_monitor
    plan.layer_precision, plan.kept_float = layer_groups(plan, graph), list(graph.model_facts().kept_float)
    return plan

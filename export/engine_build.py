"""Building a TensorRT engine from a :class:`~gedge.export.build_plan.BuildPlan`, with its manifest.

The plan has decided everything (network typing, graph, flags); this module only carries it out with the
installed ``tensorrt`` or ``tensorrt_rtx``: network creation flags, the optimisation profile, the workspace
limit, the builder optimisation level, a timing cache reused across builds, the TensorRT-RTX ahead-of-time
compute capabilities, INT8 from a calibration cache (a calibrator that only reads the cache), residual layers
pinned to FP32 on weakly typed networks, and a progress monitor (``IProgressMonitor``, TensorRT 10+). Every
enum member is looked up by name.

Then the engine and its manifest are written (atomically), and parity is measured where it can be: with a
GPU and a TensorRT runtime backend, the engine against the torch reference; otherwise the manifest records
that engine parity is pending, with the ONNX Runtime parity of the graph the engine was built from.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import onnx
from gedge.core.artifacts.engine import read_manifest, write_manifest
from gedge.core.artifacts.graph import GraphFacts, load_graph, read_facts
from gedge.core.atomic import write_bytes
from gedge.core.errors import ArtifactError, ConfigError, GedgeError
from gedge.core.hashing import sha256_file
from gedge.core.machine import cuda_device
from gedge.core.tensorrt import TensorRT, creation_flags, import_tensorrt, member
from gedge.export.build_plan import (
    RTX_DEFAULT_TARGETS,
    BuildPlan,
    BuildRequest,
    GraphInfo,
    TensorRTCapabilities,
    assumed_capabilities,
    graph_info,
    plan_build,
)
from gedge.export.fp16 import FP16_OPS, write_fp16_graph
from gedge.export.tensorrt_parse import ParsedNetwork


class BuildProgress(Protocol):
    """What the builder reports while it works (TensorRT's IProgressMonitor phases)."""

    def start(self, phase: str, parent: str | None, steps: int) -> None: ...

    def step(self, phase: str, step: int) -> None: ...

    def finish(self, phase: str) -> None: ...


# --- TensorRT and the plan ---------------------------------------------------------------------------------


def open_tensorrt(module: str | None = None) -> tuple[TensorRT, TensorRTCapabilities]:
    """The installed TensorRT (``module`` if given) and what it can do; ConfigError when there is none."""
    if module not in (None, "tensorrt", "tensorrt_rtx"):
        raise ConfigError(f"--module must be tensorrt or tensorrt_rtx, got {module!r}")
    trt, reason = import_tensorrt(module)
    if trt is None:
        raise ConfigError(f"no TensorRT is installed here ({reason}); install tensorrt (Jetson: JetPack) or "
                          "tensorrt-rtx-cu13, or print the plan with --dry-run --assume trt-10.3")
    return trt, TensorRTCapabilities.probe(trt.module, trt.name, trt.version)


@dataclass
class Prepared:
    """A plan and what it was made from."""

    plan: BuildPlan
    caps: TensorRTCapabilities
    info: GraphInfo
    facts: GraphFacts
    model: onnx.ModelProto


def prepare(graph: str | Path, request: BuildRequest, caps: TensorRTCapabilities) -> Prepared:
    """Read the graph and make the plan (no file is written)."""
    graph = Path(graph)
    model = load_graph(graph)
    info = graph_info(model, graph)
    facts = read_facts(model, graph)
    if request.calibration_cache and not Path(request.calibration_cache).is_file():
        raise ArtifactError("calibration cache does not exist", request.calibration_cache)
    fp16_exists = False
    candidate = Path(plan_build(caps, replace(request, out=request.out or "x.engine"), info).graph)
    if candidate != graph and candidate.is_file():
        derived = read_facts(load_graph(candidate, load_weights=False), candidate)
        if derived.precision != "fp16" or derived.derived_from_sha256 != sha256_file(graph):
            raise ConfigError(f"{candidate} exists but was not derived from {graph}; pass it instead "
                              f"(gedge build {candidate} --precision fp16) or remove it")
        fp16_exists = True
    plan = plan_build(caps, request, info, fp16_graph_exists=fp16_exists)
    return Prepared(plan, caps, info, facts, model)


def dry_run(graph: str | Path, request: BuildRequest, assume: str | None = None,
            module: str | None = None) -> Prepared:
    """The plan for the installed TensorRT, or for the one ``assume`` names (trt-8.5, trt-10.3, trt-11, rtx)."""
    caps = assumed_capabilities(assume) if assume else open_tensorrt(module)[1]
    return prepare(graph, request, caps)


# --- pieces of the build -----------------------------------------------------------------------------------


def residual_layers(layers: list[tuple[str, bool]], node_ops: dict[str, str],
                    network_ops: frozenset[str] = FP16_OPS) -> list[int]:
    """Indices of the layers to pin to FP32 on a weakly typed network: every layer with a float output that
    does not belong to an ONNX node of G or D's convolutional networks (``FP16_OPS``, as in the FP16 graph).

    ``layers``: (name, has a float output) per network layer; ``node_ops``: ONNX node name -> op type. The
    ONNX parser names a node's layer after the node (extra layers get a suffix); layers it adds on its own
    (``ONNXTRT_*``, constants) belong to no node and are pinned when they carry floats.
    """
    names = sorted(node_ops, key=len, reverse=True)
    pinned = []
    for index, (name, is_float) in enumerate(layers):
        if not is_float:
            continue
        op = node_ops.get(name)
        if op is None:
            owner = next((n for n in names if name.startswith(n + "_") or name.startswith(n + ":")), None)
            op = node_ops.get(owner, "") if owner else ""
        if op not in network_ops:
            pinned.append(index)
    return pinned


def _pin_residuals(parsed: ParsedNetwork, model: onnx.ModelProto) -> int:
    module = parsed.trt.module
    network = parsed.network
    floating = {member(module.DataType, n) for n in ("FLOAT", "HALF", "BF16")} - {None}
    skip = {member(module.LayerType, n) for n in ("CONSTANT", "SHAPE")} - {None}
    layers = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        is_float = layer.type not in skip and any(layer.get_output(j).dtype in floating
                                                  for j in range(layer.num_outputs))
        layers.append((layer.name, is_float))
    fp32 = module.DataType.FLOAT
    indices = residual_layers(layers, {n.name: n.op_type for n in model.graph.node})
    for i in indices:
        layer = network.get_layer(i)
        layer.precision = fp32
        for j in range(layer.num_outputs):
            if layer.get_output(j).dtype in floating:
                layer.set_output_type(j, fp32)
    return len(indices)


_CALIBRATOR_OF = {"EntropyCalibration2": "IInt8EntropyCalibrator2", "MinMaxCalibration": "IInt8MinMaxCalibrator",
                  "EntropyCalibration": "IInt8EntropyCalibrator", "LegacyCalibration": "IInt8LegacyCalibrator"}


def cache_header(data: bytes) -> tuple[str, str]:
    """(TensorRT version tag, algorithm) from a calibration cache's first line, e.g. TRT-8502-EntropyCalibration2."""
    first = data.split(b"\n", 1)[0].decode("ascii", errors="replace").strip()
    parts = first.split("-")
    if len(parts) < 3 or parts[0] != "TRT":
        raise ArtifactError(f"not a TensorRT calibration cache (first line {first[:40]!r})")
    return parts[1], "-".join(parts[2:])


def _cache_calibrator(module: Any, class_name: str, cache: bytes) -> Any:
    """A calibrator that never calibrates: it hands TensorRT the scales of an existing cache."""
    base = getattr(module, class_name)

    class CacheCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names, p_str=None):  # noqa: ANN001 - TensorRT's signature
            return None

        def read_calibration_cache(self) -> bytes:
            return cache

        def write_calibration_cache(self, data) -> None:  # noqa: ANN001
            return None

    return CacheCalibrator()


def _progress_monitor(module: Any, progress: BuildProgress, cancelled: threading.Event) -> Any:
    base = module.IProgressMonitor

    class Monitor(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):  # noqa: ANN001
            with contextlib.suppress(Exception):
                progress.start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name, step):  # noqa: ANN001
            with contextlib.suppress(Exception):
                progress.step(phase_name, step)
            return not cancelled.is_set()  # False asks TensorRT to stop the build

        def phase_finish(self, phase_name):  # noqa: ANN001
            with contextlib.suppress(Exception):
                progress.finish(phase_name)

    return Monitor()


@contextlib.contextmanager
def _cancel_on_interrupt(cancelled: threading.Event) -> Iterator[None]:
    """Ctrl-C during a build sets ``cancelled`` (the progress monitor then stops TensorRT) instead of waiting."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: cancelled.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def int8_facts(model: onnx.ModelProto, plan: BuildPlan, cache: bytes | None) -> dict[str, Any] | None:
    """The calibration set's hash and method, from the graph's metadata (``gedge.*`` keys about calibration or
    quantisation) and, for an implicit build, from the calibration cache."""
    if plan.precision != "int8":
        return None
    ignore = {"decision", "primary_score", "threshold"}  # the score calibration, not INT8's
    found: dict[str, Any] = {}
    for prop in model.metadata_props:
        name = prop.key.removeprefix("gedge.")
        if name == prop.key or name in ignore or not any(k in name for k in ("calib", "quant", "int8")):
            continue
        try:
            found[name] = json.loads(prop.value)
        except ValueError:
            found[name] = prop.value

    def first(key_words: tuple[str, ...], value: Any) -> str:
        if isinstance(value, dict):
            for key, inner in value.items():
                if isinstance(inner, (str, int, float)) and all(w in key.lower() for w in key_words):
                    return str(inner)
            for inner in value.values():
                hit = first(key_words, inner)
                if hit:
                    return hit
        return ""

    facts: dict[str, Any] = {
        "quantization": plan.quantization,
        "set_sha256": (first(("calibration_set_sha256",), found) or first(("set", "sha256"), found)
                       or first(("sha256",), found) or first(("hash",), found)),
        "method": first(("method",), found),
        "flavour": first(("flavour",), found),
        "graph_facts": found,
    }
    if cache is not None:
        version_tag, algorithm = cache_header(cache)
        facts.update(cache=Path(plan.calibration_cache).name, cache_sha256=hashlib.sha256(cache).hexdigest(),
                     cache_tensorrt=version_tag, method=facts["method"] or algorithm)
    return facts


def graph_weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the graph's initializers as stored (int8 weights of a Q/DQ graph count one byte each)."""
    from onnx import numpy_helper

    return int(sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer))


# --- parity at build time ----------------------------------------------------------------------------------


def parity_summary(report: Any) -> dict[str, Any]:
    """The facts of a :class:`~gedge.bench.parity.ParityReport` a manifest keeps."""
    spearman = [row.spearman for row in report.outputs if row.spearman is not None]
    deltas = [abs(row.auroc_delta) for row in report.outputs if row.auroc_delta is not None]
    return {
        "status": "passed" if report.passed else "failed",
        "reference": report.reference, "candidate": report.candidate, "precision": report.precision,
        "data": report.data, "images": report.n_images, "inputs": report.n_inputs,
        "agreement": report.decisions.agreement,
        "rel_l2": {row.name: row.rel_l2 for row in report.outputs},
        "min_spearman": min(spearman) if spearman else None,
        "max_auroc_delta": max(deltas) if deltas else None,
        "limits": report.limits.to_dict(), "failures": report.failures, "notes": list(report.notes),
    }


def _engine_backend(engine: Path) -> tuple[Any | None, str]:
    """The TensorRT runtime backend for an engine (which verifies it against its manifest), or None and why not."""
    try:
        from gedge.runtime.tensorrt_backend import TensorRTBackend
    except ImportError:
        return None, "this gedge has no TensorRT runtime backend"
    try:
        return TensorRTBackend(engine), ""
    except GedgeError as exc:  # no CUDA bindings, a runtime that cannot load this engine...
        return None, f"the engine cannot run here ({exc.problem})"


def build_time_parity(engine: Path, graph: Path, ref: Path | None, data: Path | None, precision: str,
                      graph_precision: str, device: Any | None, device_reason: str, batch_size: int = 64,
                      threads: int = 0) -> dict[str, Any]:
    """``{"engine": ..., "graph": ...}``: the engine against the torch reference where a GPU and a TensorRT runtime
    backend are present; otherwise engine parity pending and the graph's ONNX Runtime parity."""
    if ref is None or data is None:
        reason = "not measured: give --ref CHECKPOINT --data DIR to measure parity at build time"
        return {"engine": {"status": "not measured", "reason": reason},
                "graph": {"status": "not measured", "reason": reason}}
    from gedge.compare.driver import ParitySetup, open_parity, parity_data, run_setup
    from gedge.compare.limits import limits_for

    result: dict[str, Any] = {}
    backend, why = (None, device_reason) if device is None else _engine_backend(engine)
    if backend is not None:
        from gedge.data.tiles import load_prepared
        from gedge.reference.checkpoint import load_checkpoint
        from gedge.runtime.torch_backend import TorchBackend

        checkpoint = load_checkpoint(ref)
        source = parity_data(data)
        setup = ParitySetup(checkpoint, TorchBackend(checkpoint, with_amap=getattr(backend, "with_amap", False)),
                            backend, source, load_prepared(source.paths, checkpoint.preprocess), [])
        try:
            report = run_setup(setup, limits_for(precision), batch_size)
        finally:
            backend.close()
        result["engine"] = parity_summary(report)
        result["graph"] = {"status": "not measured", "reason": "the engine itself was measured"}
        return result
    result["engine"] = {"status": "pending", "reason": f"{why}; run `gedge parity` with the engine on the device"}
    setup = open_parity(ref, graph, data, threads)
    report = run_setup(setup, limits_for(graph_precision), batch_size)
    result["graph"] = {"graph": graph.name, **parity_summary(report)}
    return result


# --- the build ---------------------------------------------------------------------------------------------


@dataclass
class EngineResult:
    plan: BuildPlan
    engine: Path
    manifest_path: Path
    manifest: dict[str, Any]
    engine_bytes: int
    build_seconds: float
    fp16_graph_written: bool = False
    pinned_layers: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def parity(self) -> dict[str, Any]:
        return self.manifest.get("parity", {})

    @property
    def parity_failed(self) -> bool:
        return any(v.get("status") == "failed" for v in self.parity.values())


def _serialize(trt: TensorRT, prepared: Prepared, graph_model: onnx.ModelProto, cache: bytes | None,
               progress: BuildProgress | None) -> tuple[bytes, list[str], int, str]:
    """Build the engine; returns (engine bytes, output names, layers pinned to FP32, timing cache note)."""
    plan = prepared.plan
    module = trt.module
    flags = creation_flags(module, plan.strongly_typed, plan.explicit_batch_flag)
    parsed = ParsedNetwork(trt, graph_model.SerializeToString(), strongly_typed=plan.strongly_typed, flags=flags)
    if not parsed.ok:
        issues = parsed.result([n.name for n in graph_model.graph.node]).issues
        raise ArtifactError("TensorRT's parser rejects the graph: " + "; ".join(i.line() for i in issues[:3]),
                            plan.graph)
    network, builder = parsed.network, parsed.builder
    config = builder.create_builder_config()
    for name in plan.builder_flags:
        config.set_flag(getattr(module.BuilderFlag, name))
    for name in plan.cleared_flags:
        flag = member(module.BuilderFlag, name)
        if flag is not None:
            config.clear_flag(flag)
    pinned = _pin_residuals(parsed, graph_model) if plan.fp32_pinned else 0

    shapes = plan.profile
    profiles = []
    for _ in range(max(1, plan.profiles)):  # identical: execution contexts in concurrent use need one each
        profile = builder.create_optimization_profile()
        profile.set_shape(shapes["input"], tuple(shapes["min"]), tuple(shapes["opt"]), tuple(shapes["max"]))
        config.add_optimization_profile(profile)
        profiles.append(profile)
    profile = profiles[0]
    if plan.workspace_mb:
        if prepared.caps.memory_pool_limit:
            config.set_memory_pool_limit(module.MemoryPoolType.WORKSPACE, plan.workspace_mb << 20)
        else:
            config.max_workspace_size = plan.workspace_mb << 20
    if plan.opt_level is not None:
        config.builder_optimization_level = plan.opt_level
    if plan.compute_capabilities:
        config.num_compute_capabilities = len(plan.compute_capabilities)
        for slot, cc in enumerate(plan.compute_capabilities):
            config.set_compute_capability(getattr(module.ComputeCapability, cc), slot)
    if cache is not None:
        _, algorithm = cache_header(cache)
        class_name = _CALIBRATOR_OF.get(algorithm, plan.calibrator)
        if not hasattr(module, class_name):
            raise ArtifactError(f"calibration cache of {algorithm}, which {trt.name} {trt.version} has no "
                                "calibrator for", plan.calibration_cache)
        calibrator = _cache_calibrator(module, class_name, cache)
        config.int8_calibrator = calibrator
        if hasattr(config, "set_calibration_profile"):
            config.set_calibration_profile(profile)
    timing_path = Path(plan.timing_cache) if plan.timing_cache else None
    timing_note = ""
    if timing_path is not None:
        old = timing_path.read_bytes() if timing_path.is_file() else b""
        timing = config.create_timing_cache(old)
        config.set_timing_cache(timing, False)
        timing_note = f"timing cache {timing_path} " + ("reused" if old else "created")
    cancelled = threading.Event()
    monitored = plan.progress_monitor and progress is not None
    if monitored:
        monitor = _progress_monitor(module, progress, cancelled)
        config.progress_monitor = monitor
    before = len(parsed.logger.messages)
    # Only a progress monitor can stop TensorRT mid-build; without one Ctrl-C keeps its usual meaning.
    with _cancel_on_interrupt(cancelled) if monitored else contextlib.nullcontext():
        serialized = builder.build_serialized_network(network, config)
    if cancelled.is_set():
        raise KeyboardInterrupt
    if serialized is None:
        errors = [m for s, m in parsed.logger.messages[before:] if s in ("ERROR", "INTERNAL_ERROR")]
        raise ArtifactError("TensorRT could not build an engine: " + ("; ".join(errors)[:400] or "no reason given"),
                            plan.graph)
    if timing_path is not None:
        write_bytes(timing_path, bytes(config.get_timing_cache().serialize()))
    outputs = [network.get_output(i).name for i in range(network.num_outputs)]
    return bytes(serialized), outputs, pinned, timing_note


def build_engine(graph: str | Path, request: BuildRequest, module: str | None = None, ref: str | Path | None = None,
                 data: str | Path | None = None, progress: BuildProgress | None = None,
                 parity_batch: int = 64) -> EngineResult:
    """``gedge build``: plan, (derive the FP16 graph,) build, write the engine and its manifest, measure parity."""
    from gedge import __version__

    trt, caps = open_tensorrt(module)
    prepared = prepare(graph, request, caps)
    plan = prepared.plan
    if (ref is None) != (data is None):
        raise ConfigError("parity at build time needs both --ref CHECKPOINT and --data DIR")
    if ref is not None and not Path(ref).is_file():
        raise ArtifactError("reference checkpoint does not exist", ref)
    if data is not None and not Path(data).exists():
        raise ArtifactError("parity data folder does not exist", data)
    given = Path(graph)
    if plan.derive_fp16:
        write_fp16_graph(given, plan.graph)
    graph_path = Path(plan.graph)
    graph_model = prepared.model if graph_path == given else load_graph(graph_path)
    graph_facts = read_facts(graph_model, graph_path)
    cache = Path(plan.calibration_cache).read_bytes() if plan.calibration_cache else None
    if cache is not None:
        cache_header(cache)  # a readable cache before a long build

    engine = Path(plan.engine)
    if engine.is_dir():
        raise ArtifactError("output is a folder; give a file name such as scorer.fp16.engine", engine)
    device, why = cuda_device()
    aot = " (an ahead-of-time build)" if caps.is_rtx else ""
    device_reason = "" if device else f"no CUDA GPU on this machine{aot}"
    started = time.time()
    try:
        engine_data, outputs, pinned, timing_note = _serialize(trt, prepared, graph_model, cache, progress)
    except RuntimeError as exc:  # TensorRT's own exceptions (pybind11 maps its C++ errors to RuntimeError)
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else exc.__class__.__name__
        raise ArtifactError(f"TensorRT failed while building: {first}", plan.graph) from None
    seconds = round(time.time() - started, 2)
    write_bytes(engine, engine_data)
    if caps.is_rtx:
        target = {"kind": "aot", "compute_capabilities": plan.compute_capabilities,
                  "default_targets": [] if plan.compute_capabilities else list(RTX_DEFAULT_TARGETS),
                  "description": plan.target}
    else:
        target = {"kind": "gpu", "gpu_name": device.name if device else "",
                  "compute_capability": device.compute_capability if device else "",
                  "description": plan.target if device else f"unknown GPU ({why})"}
    facts = graph_facts
    input_kind = facts.input
    manifest: dict[str, Any] = {
        "engine": engine.name,
        "engine_sha256": hashlib.sha256(engine_data).hexdigest(),
        "engine_bytes": len(engine_data),
        "source_graph": {"path": graph_path.name, "sha256": sha256_file(graph_path), "precision": facts.precision,
                         "weight_bytes": graph_weight_bytes(graph_model)},
        "given_graph": {"path": given.name, "sha256": sha256_file(given)} if graph_path != given else None,
        "source_checkpoint": {"path": facts.source_checkpoint, "sha256": facts.source_sha256},
        "tensorrt": {"flavour": caps.flavour, "version": caps.version},
        "target": target,
        "precision": plan.precision,
        "network": plan.network,
        "profile": plan.profile,
        "profiles": plan.profiles,
        "input": {"name": prepared.info.input_name, "kind": input_kind,
                  "dtype": "uint8" if input_kind == "uint8-nhwc" else "float32",
                  "layout": "NHWC" if input_kind == "uint8-nhwc" else "NCHW",
                  "shape": [-1, *prepared.info.input_shape]},
        "input_spec": facts.input_spec().to_dict(),
        "outputs": outputs,
        "score_stats": facts.score_stats,
        "primary_score": facts.primary,
        "threshold": facts.threshold,
        "decision": facts.decision,
        "calibration_set": int8_facts(graph_model, plan, cache),
        "model": facts.model,
        "preprocess": facts.preprocess,
        "build": {"plan": plan.to_dict(), "seconds": seconds, "pinned_fp32_layers": pinned,
                  "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "timing_cache": timing_note},
        "gedge_version": __version__,
        "parity": {"engine": {"status": "pending", "reason": "measured after the engine is written"}},
    }
    write_manifest(engine, manifest)  # the engine is never without a manifest, even if parity fails to run
    try:
        manifest["parity"] = build_time_parity(engine, graph_path, Path(ref) if ref else None,
                                               Path(data) if data else None, plan.precision,
                                               graph_info(graph_model, graph_path).precision, device, device_reason,
                                               parity_batch)
    except GedgeError as exc:
        manifest["parity"] = {"engine": {"status": "pending", "reason": "parity could not run"},
                              "graph": {"status": "error", "reason": str(exc)}}
        write_manifest(engine, manifest)
        raise
    manifest_file = write_manifest(engine, manifest)
    return EngineResult(plan, engine, manifest_file, read_manifest(engine), len(engine_data), seconds,
                        plan.derive_fp16, pinned, [timing_note] if timing_note else [])

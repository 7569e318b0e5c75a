"""Carrying out a :class:`~gedge.export.build_plan.BuildPlan` with the installed ``tensorrt`` or ``tensorrt_rtx``.

The plan has decided everything (network typing, graph, flags); this module only applies it: network creation
flags, the optimisation profiles, the workspace limit, the builder optimisation level, a timing cache reused
across builds, the TensorRT-RTX ahead-of-time compute capabilities, INT8 from a calibration cache (a calibrator
that only reads the cache), residual layers pinned to FP32 on weakly typed networks, and a progress monitor
(``IProgressMonitor``, TensorRT 10+) through which Ctrl-C stops a long build. Every enum member is looked up by
name. :func:`serialize` returns the engine's bytes; writing them and the manifest is
:mod:`gedge.export.engine_build`'s job.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import onnx
from gedge.core.artifacts.calibration import CalibrationCache
from gedge.core.atomic import write_bytes
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.tensorrt import TensorRT, creation_flags, member
from gedge.export.build_plan import BuildPlan
from gedge.export.capabilities import TensorRTCapabilities
from gedge.export.fp16 import FP16_OPS
from gedge.export.tensorrt_parse import ParsedNetwork


class BuildProgress(Protocol):
    """What the builder reports while it works (TensorRT's IProgressMonitor phases)."""

    def start(self, phase: str, parent: str | None, steps: int) -> None: ...

    def step(self, phase: str, step: int) -> None: ...

    def finish(self, phase: str) -> None: ...


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


@dataclass
class Serialized:
    """What a build produced."""

    engine: bytes
    outputs: list[str]  # the network's output names
    pinned_layers: int  # layers pinned to FP32 (weakly typed networks)
    timing_note: str  # whether a timing cache was created or reused ("" without one)


def _parse(trt: TensorRT, plan: BuildPlan, graph_model: onnx.ModelProto) -> ParsedNetwork:
    flags = creation_flags(trt.module, plan.strongly_typed, plan.explicit_batch_flag)
    parsed = ParsedNetwork(trt, graph_model.SerializeToString(), strongly_typed=plan.strongly_typed, flags=flags)
    if not parsed.ok:
        issues = parsed.result([n.name for n in graph_model.graph.node]).issues
        raise ArtifactError("TensorRT's parser rejects the graph: " + "; ".join(i.line() for i in issues[:3]),
                            plan.graph)
    return parsed


def _configure(module: Any, config: Any, plan: BuildPlan, caps: TensorRTCapabilities, logger: Any) -> None:
    """Builder flags, workspace, optimisation level and ahead-of-time targets, as the plan says
    (``set_compute_capability`` answers False, and logs why, for a target it does not take)."""
    for name in plan.builder_flags:
        config.set_flag(getattr(module.BuilderFlag, name))
    for name in plan.cleared_flags:
        flag = member(module.BuilderFlag, name)
        if flag is not None:
            config.clear_flag(flag)
    if plan.workspace_mb:
        if caps.memory_pool_limit:
            config.set_memory_pool_limit(module.MemoryPoolType.WORKSPACE, plan.workspace_mb << 20)
        else:
            config.max_workspace_size = plan.workspace_mb << 20
    if plan.opt_level is not None:
        config.builder_optimization_level = plan.opt_level
    if plan.compute_capabilities:
        config.num_compute_capabilities = len(plan.compute_capabilities)
        for slot, cc in enumerate(plan.compute_capabilities):
            before = len(logger.messages)
            if not config.set_compute_capability(getattr(module.ComputeCapability, cc), slot):
                said = next((m for _, m in logger.messages[before:]), "no reason logged")[:240]
                raise ConfigError(f"TensorRT refused set_compute_capability({cc}, {slot}): {said}", plan.graph)


def _add_profiles(builder: Any, config: Any, plan: BuildPlan) -> Any:
    """The plan's identical optimisation profiles (execution contexts in concurrent use need one each); the first."""
    shapes = plan.profile
    profiles = []
    for _ in range(max(1, plan.profiles)):
        profile = builder.create_optimization_profile()
        profile.set_shape(shapes["input"], tuple(shapes["min"]), tuple(shapes["opt"]), tuple(shapes["max"]))
        if config.add_optimization_profile(profile) < 0:  # -1: TensorRT found the profile invalid
            raise ArtifactError(f"TensorRT refused the optimisation profile {shapes} (add_optimization_profile)",
                                plan.graph)
        profiles.append(profile)
    return profiles[0]


def _set_calibrator(trt: TensorRT, config: Any, plan: BuildPlan, inputs: BuildInputs, profile: Any) -> Any:
    """The calibrator that hands TensorRT the cache's bytes (kept alive by the caller during the build)."""
    algorithm = inputs.scales.algorithm if inputs.scales is not None else ""
    class_name = _CALIBRATOR_OF.get(algorithm, plan.calibrator)
    if not hasattr(trt.module, class_name):
        raise ArtifactError(f"calibration cache of {algorithm}, which {trt.name} {trt.version} has no "
                            "calibrator for", plan.calibration_cache)
    calibrator = _cache_calibrator(trt.module, class_name, inputs.cache)
    config.int8_calibrator = calibrator
    if hasattr(config, "set_calibration_profile") and config.set_calibration_profile(profile) is False:
        raise ArtifactError("TensorRT refused the calibration profile (set_calibration_profile)", plan.graph)
    return calibrator


def _attach_cache(config: Any, data: bytes, logger: Any) -> tuple[Any, str]:
    """A timing cache made from ``data`` and attached to the config, or None; and why not, or what TensorRT
    said about it (it logs a cache it cannot read, and hands back an empty one)."""
    before = len(logger.messages)
    cache = config.create_timing_cache(data)
    if cache is None:
        return None, "create_timing_cache returned None"
    if not config.set_timing_cache(cache, False):
        return None, "set_timing_cache returned False (a cache of another GPU or TensorRT version?)"
    said = [m for _, m in logger.messages[before:] if "timing cache" in m.lower()]
    return cache, "; ".join(said)[:200]


def _timing_cache(config: Any, plan: BuildPlan, logger: Any) -> tuple[str, Any]:
    """Attach the plan's timing cache (reused if TensorRT takes it, otherwise a new one): what happened, for the
    notes ("" without one; starting "timing cache not used" when TensorRT takes none), and the cache, which
    must outlive the build."""
    if not plan.timing_cache:
        return "", None
    path = Path(plan.timing_cache)
    old = path.read_bytes() if path.is_file() else b""
    cache, why = _attach_cache(config, old, logger)
    if cache is not None and not why:
        return f"timing cache {path} " + ("reused" if old else "created"), cache
    if cache is None and old:
        cache, _ = _attach_cache(config, b"", logger)
    if cache is None:
        return f"timing cache not used: {why}", None
    return (f"timing cache {path} not reused ({why}); a new one is written" if old else
            f"timing cache {path} created"), cache


def _save_timing_cache(config: Any, path: Path) -> str:
    """Write the config's timing cache; "" when written, else why not (the finished engine is kept either way)."""
    cache = config.get_timing_cache()  # None when no cache is attached
    data = None if cache is None else cache.serialize()
    if data is None:
        return f"timing cache {path} not saved: TensorRT returned none"
    try:
        write_bytes(path, bytes(data))
    except OSError as exc:
        return f"timing cache {path} not saved: {exc.strerror or exc}"
    return ""


def _run_builder(parsed: ParsedNetwork, config: Any, plan: BuildPlan, progress: BuildProgress | None) -> bytes:
    """Build the serialized network; with a progress monitor, Ctrl-C stops TensorRT instead of being ignored."""
    cancelled = threading.Event()
    monitored = plan.progress_monitor and progress is not None
    # TensorRT does not own the Python monitor either: the local keeps it alive during the build.
    _monitor = _progress_monitor(parsed.trt.module, progress, cancelled) if monitored else None
    if monitored:
        config.progress_monitor = _monitor
    before = len(parsed.logger.messages)
    # Only a progress monitor can stop TensorRT mid-build; without one Ctrl-C keeps its usual meaning.
    with _cancel_on_interrupt(cancelled) if monitored else contextlib.nullcontext():
        serialized = parsed.builder.build_serialized_network(parsed.network, config)
    if cancelled.is_set():
        raise KeyboardInterrupt
    if serialized is None:
        errors = parsed.logger.errors(before)
        raise ArtifactError("TensorRT could not build an engine: " + ("; ".join(errors)[:400] or "no reason given"),
                            plan.graph)
    return bytes(serialized)


@dataclass(frozen=True)
class BuildInputs:
    """What one build reads: the plan, the TensorRT it runs on, the graph to parse and the calibration cache (its
    bytes as read, and its parsed header and scales)."""

    trt: TensorRT
    caps: TensorRTCapabilities
    plan: BuildPlan
    graph_model: onnx.ModelProto
    cache: bytes | None = None
    scales: CalibrationCache | None = None


def serialize(inputs: BuildInputs, progress: BuildProgress | None = None) -> Serialized:
    """Parse the graph, configure the builder as the plan says and build the engine (nothing is written but the
    timing cache)."""
    plan = inputs.plan
    parsed = _parse(inputs.trt, plan, inputs.graph_model)
    config = parsed.builder.create_builder_config()
    _configure(inputs.trt.module, config, plan, inputs.caps, parsed.logger)
    pinned = _pin_residuals(parsed, inputs.graph_model) if plan.fp32_pinned else 0
    profile = _add_profiles(parsed.builder, config, plan)
    # TensorRT does not own the Python calibrator: this local keeps it alive until the build is done.
    _calibrator = None if inputs.cache is None else _set_calibrator(inputs.trt, config, plan, inputs, profile)
    timing_note, _timing = _timing_cache(config, plan, parsed.logger)  # the local keeps the cache alive
    engine = _run_builder(parsed, config, plan, progress)
    if plan.timing_cache and not timing_note.startswith("timing cache not used"):
        timing_note = "; ".join(n for n in (timing_note, _save_timing_cache(config, Path(plan.timing_cache))) if n)
    outputs = [parsed.network.get_output(i).name for i in range(parsed.network.num_outputs)]
    return Serialized(engine, outputs, pinned, timing_note)

"""The manifest an engine is written with (:class:`~gedge.core.artifacts.manifest.EngineManifest`): what it was built
from, for what, how, and the scoring facts a runtime needs, so that the engine is checked against it wherever it
is loaded (:mod:`gedge.core.artifacts.engine`).

Every fact comes from the objects the build read once: the graph it parsed and the graph the user gave (their
:class:`~gedge.core.artifacts.Artifact`, with their sha256 from their one read), the checkpoint behind them (the
graph's lineage), and for INT8 the calibration set and method the Q/DQ graph records, or the calibration cache's
own facts.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gedge import __version__
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.manifest import (
    EngineCalibration,
    EngineInput,
    EngineManifest,
    EngineTarget,
    FileRef,
    ParityRecord,
)
from gedge.core.artifacts.records import sha256_bytes
from gedge.export.build_plan import BuildPlan, layout_of
from gedge.export.capabilities import RTX_DEFAULT_TARGETS, TensorRTCapabilities
from gedge.export.tensorrt_build import Serialized
from onnx import numpy_helper

PENDING = ParityRecord("pending", "measured after the engine is written")


def calibration_facts(plan: BuildPlan, graph: Artifact, cache: Artifact | None) -> EngineCalibration | None:
    """Where an INT8 engine's scales come from: the Q/DQ graph's quantization facts (calibration set, method,
    flavour) or, for an implicit build, the calibration cache's sidecar and header."""
    if plan.precision != "int8":
        return None
    quantization = graph.model_facts().quantization
    if cache is not None:
        facts, scales = cache.calibration, cache.cache
        set_ref = facts.calibration_set if facts is not None else None
        return EngineCalibration(plan.quantization, set_ref.sha256 if set_ref else "", facts.method if facts else
                                 (scales.algorithm if scales else ""), "tensorrt", cache.name, cache.sha256,
                                 scales.version if scales else "")
    if quantization is None:
        return EngineCalibration(plan.quantization)
    set_ref = quantization.calibration_set
    return EngineCalibration(plan.quantization, set_ref.sha256 if set_ref else "", quantization.method,
                             quantization.flavour)


def graph_weight_bytes(graph: Artifact) -> int:
    """Bytes of the graph's initializers as stored (int8 weights of a Q/DQ graph count one byte each)."""
    model = graph.onnx_model
    return int(sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)) if model is not None else 0


def engine_target(caps: TensorRTCapabilities, plan: BuildPlan, device: Any | None, no_device: str) -> EngineTarget:
    """What the engine runs on: ahead-of-time compute capabilities (TensorRT-RTX) or the GPU it was built on."""
    if caps.is_rtx:
        return EngineTarget("aot", compute_capabilities=tuple(plan.compute_capabilities),
                            default_targets=() if plan.compute_capabilities else tuple(RTX_DEFAULT_TARGETS),
                            description=plan.target)
    return EngineTarget("gpu", device.name if device else "", device.compute_capability if device else "",
                        description=plan.target if device else f"unknown GPU ({no_device})")


@dataclass(frozen=True)
class SourceGraph:
    """The graph an engine is built from (perhaps derived from the one the user gave), the given one, and the
    calibration cache of an implicit INT8 build: each as gedge read it (or, the derived graph, wrote it)."""

    graph: Artifact
    given: Artifact
    cache: Artifact | None = None  # the INT8 calibration cache of an implicit build
    verification: str = ""  # the given graph's verification as the build enforced it
    forced: tuple[str, ...] = ()  # the recorded verdicts (graph's, cache's) the build overrode with --force


def _build_entry(plan: BuildPlan, built: Serialized, seconds: float) -> dict[str, Any]:
    return {"plan": plan.to_dict(), "seconds": seconds, "pinned_fp32_layers": built.pinned_layers,
            "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "timing_cache": built.timing_note}


def engine_manifest(plan: BuildPlan, caps: TensorRTCapabilities, source: SourceGraph, built: Serialized,
                    target: EngineTarget, seconds: float) -> EngineManifest:
    """The manifest of a freshly built engine; parity is pending until it is measured."""
    graph, given = source.graph, source.given
    facts = graph.model_facts()
    source_graph = FileRef(graph.name, graph.sha256, facts.precision, graph_weight_bytes(graph), source.verification)
    layout = layout_of(graph)
    return EngineManifest(
        engine=Path(plan.engine).name, engine_sha256=sha256_bytes(built.engine), engine_bytes=len(built.engine),
        tensorrt_flavour=caps.flavour, tensorrt_version=caps.version, target=target, precision=plan.precision,
        profile=plan.profile, input=EngineInput(layout.input_name, facts.input_kind, (-1, *layout.input_shape)),
        input_spec=facts.input_spec(), outputs=tuple(built.outputs), decision=facts.decision,
        preprocess=facts.preprocess, parity={"engine": PENDING}, network=plan.network, profiles=plan.profiles,
        score_stats=facts.score_stats, model=facts.model, source_graph=source_graph,
        given_graph=None if graph is given else FileRef(given.name, given.sha256),
        source_checkpoint=FileRef(facts.lineage.checkpoint, facts.lineage.checkpoint_sha256),
        calibration=calibration_facts(plan, graph, source.cache), build=_build_entry(plan, built, seconds),
        gedge_version=__version__, forced=source.forced)

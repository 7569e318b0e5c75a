"""``gedge build``: a TensorRT engine from a gedge graph, written with its manifest, and parity where it can be
measured.

The steps, each in its own module: the plan (:mod:`gedge.export.build_plan`, from what the installed TensorRT can
do, :mod:`gedge.export.capabilities`), the FP16 graph where a strongly typed FP16 build needs it
(:mod:`gedge.export.fp16`), the build itself (:mod:`gedge.export.tensorrt_build`), the manifest
(:mod:`gedge.export.engine_manifest`) and build-time parity (:mod:`gedge.export.build_parity`). The engine is
written (atomically) with its manifest before parity runs, so it is never without one.

The graph (and a calibration cache) are verified before anything is built (:mod:`gedge.core.artifacts.verdicts`):
their recorded hashes must match, and a graph whose INT8 accuracy gate failed, or a cache whose Q/DQ graph failed
it or that was made for another graph, is refused unless ``force``; the manifest of an engine built with
``force`` records the overridden verdicts as ``forced``. Parity that cannot run (CUDA or TensorRT failing at run
time) is recorded as "error" with the reason before the failure is raised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import onnx
from gedge.core.artifacts.engine import read_manifest, write_manifest
from gedge.core.artifacts.graph import GraphFacts, load_graph, read_facts
from gedge.core.artifacts.verdicts import Verification, cache_verification, enforce, graph_verification
from gedge.core.atomic import write_bytes
from gedge.core.errors import ArtifactError, ConfigError, GedgeError, RuntimeFailure
from gedge.core.hashing import sha256_file
from gedge.core.machine import cuda_device
from gedge.core.tensorrt import TensorRT, import_tensorrt
from gedge.export.build_parity import BuildParityRequest, ModelFile, build_time_parity
from gedge.export.build_plan import BuildPlan, BuildRequest, GraphInfo, graph_info, plan_build
from gedge.export.capabilities import TensorRTCapabilities, assumed_capabilities
from gedge.export.engine_manifest import SourceGraph, engine_manifest, engine_target
from gedge.export.fp16 import write_fp16_graph
from gedge.export.tensorrt_build import BuildInputs, BuildProgress, Serialized, cache_header, serialize


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
    verified: list[Verification] = field(default_factory=list)  # the graph's (and the cache's), enforced

    @property
    def forced(self) -> list[str]:
        """The recorded verdicts overridden with ``force`` (the manifest records them)."""
        return [why for v in self.verified for why in v.forced]


def _verify_sources(graph: Path, facts: GraphFacts, request: BuildRequest, force: bool) -> list[Verification]:
    """The graph's and the calibration cache's recorded hashes and verdicts, enforced."""
    verified = [enforce(graph_verification(graph, facts.precision), force)]
    if request.calibration_cache:
        if not Path(request.calibration_cache).is_file():
            raise ArtifactError("calibration cache does not exist", request.calibration_cache)
        verified.append(enforce(cache_verification(request.calibration_cache, graph), force))
    return verified


def prepare(graph: str | Path, request: BuildRequest, caps: TensorRTCapabilities) -> Prepared:
    """Read and verify the graph (and the calibration cache; ``request.force`` overrides a failed recorded verdict),
    and make the plan (no file is written)."""
    graph = Path(graph)
    model = load_graph(graph)
    info = graph_info(model, graph)
    facts = read_facts(model, graph)
    verified = _verify_sources(graph, facts, request, request.force)
    fp16_exists = False
    candidate = Path(plan_build(caps, replace(request, out=request.out or "x.engine"), info).graph)
    if candidate != graph and candidate.is_file():
        derived = read_facts(load_graph(candidate, load_weights=False), candidate)
        if derived.precision != "fp16" or derived.derived_from_sha256 != sha256_file(graph):
            raise ConfigError(f"{candidate} exists but was not derived from {graph}; pass it instead "
                              f"(gedge build {candidate} --precision fp16) or remove it")
        fp16_exists = True
    plan = plan_build(caps, request, info, fp16_graph_exists=fp16_exists)
    return Prepared(plan, caps, info, facts, model, verified)


def dry_run(graph: str | Path, request: BuildRequest, assume: str | None = None,
            module: str | None = None) -> Prepared:
    """The plan for the installed TensorRT, or for the one ``assume`` names (trt-8.5, trt-10.3, trt-11, rtx)."""
    caps = assumed_capabilities(assume) if assume else open_tensorrt(module)[1]
    return prepare(graph, request, caps)


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

    @property
    def forced(self) -> list[str]:
        return list(self.manifest.get("forced") or [])


def _source_graph(prepared: Prepared, given: Path) -> SourceGraph:
    """The graph the plan parses (the FP16 graph is derived first where the plan says so) and the cache."""
    plan = prepared.plan
    if plan.derive_fp16:
        write_fp16_graph(given, plan.graph)
    path = Path(plan.graph)
    model = prepared.model if path == given else load_graph(path)
    info = prepared.info if path == given else graph_info(model, path)
    cache = Path(plan.calibration_cache).read_bytes() if plan.calibration_cache else None
    if cache is not None:
        cache_header(cache)  # a readable cache before a long build
    facts = read_facts(model, path)
    if path != given:  # a graph derived from the given one decides like it (with a threshold refitted for it)
        facts = replace(facts, decision=prepared.facts.decision)
    return SourceGraph(path, given, model, facts, info, cache)


def _build(trt: TensorRT, prepared: Prepared, source: SourceGraph,
           progress: BuildProgress | None) -> tuple[Serialized, float]:
    """The engine's bytes and the build time; TensorRT's own exceptions become one-line ArtifactErrors."""
    started = time.time()
    try:
        built = serialize(BuildInputs(trt, prepared.caps, prepared.plan, source.model, source.cache), progress)
    except RuntimeError as exc:  # pybind11 maps TensorRT's C++ errors to RuntimeError
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else exc.__class__.__name__
        raise ArtifactError(f"TensorRT failed while building: {first}", prepared.plan.graph) from None
    return built, round(time.time() - started, 2)


def _record_parity(manifest: dict[str, Any], engine: ModelFile, source: SourceGraph, parity: BuildParityRequest,
                   no_gpu: str) -> Path:
    """Measure parity into the manifest and write it. Where parity cannot run, the manifest records "error" with the
    reason before the failure is raised: bad input as it is (exit 2); a run-time failure of CUDA, TensorRT or a
    backend (a pybind11 RuntimeError) as a RuntimeFailure (exit 3). Never "pending" after an attempt that failed."""
    try:
        manifest["parity"] = build_time_parity(parity, engine, ModelFile(source.path, source.info.precision), no_gpu)
    except (GedgeError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else exc.__class__.__name__
        manifest["parity"] = {"engine": {"status": "error", "reason": f"parity could not run: {reason}"}}
        write_manifest(engine.path, manifest)
        if isinstance(exc, (GedgeError, RuntimeFailure)):
            raise
        raise RuntimeFailure(f"parity at build time could not run: {reason}", engine.path) from None
    return write_manifest(engine.path, manifest)


def build_engine(graph: str | Path, request: BuildRequest, module: str | None = None, ref: str | Path | None = None,
                 data: str | Path | None = None, progress: BuildProgress | None = None) -> EngineResult:
    """``gedge build``: verify the graph, plan, (derive the FP16 graph,) build, write the engine and its manifest,
    measure parity against the checkpoint ``ref`` on ``data`` where both are given. ``request.force``: build from a
    graph (or cache) whose recorded verdict failed; the manifest records it."""
    trt, caps = open_tensorrt(module)
    prepared = prepare(graph, request, caps)
    plan = prepared.plan
    parity = BuildParityRequest(Path(ref) if ref else None, Path(data) if data else None, request.parity_batch,
                                force=request.force)
    parity.check()
    source = _source_graph(prepared, Path(graph))
    engine = Path(plan.engine)
    if engine.is_dir():
        raise ArtifactError("output is a folder; give a file name such as scorer.fp16.engine", engine)
    device, why = cuda_device()
    no_gpu = "" if device else "no CUDA GPU on this machine" + (" (an ahead-of-time build)" if caps.is_rtx else "")
    built, seconds = _build(trt, prepared, source, progress)
    write_bytes(engine, built.engine)
    manifest = engine_manifest(plan, caps, source, built, engine_target(caps, plan, device, why), seconds)
    manifest["source_graph"]["verification"] = prepared.verified[0].line()
    if prepared.forced:
        manifest["forced"] = prepared.forced
    write_manifest(engine, manifest)  # the engine is never without a manifest, even if parity fails to run
    manifest_file = _record_parity(manifest, ModelFile(engine, plan.precision), source, parity, no_gpu)
    return EngineResult(plan, engine, manifest_file, read_manifest(engine),
                        len(built.engine), seconds, plan.derive_fp16, built.pinned_layers,
                        [built.timing_note] if built.timing_note else [])

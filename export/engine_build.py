"""``gedge build``: a TensorRT engine from a gedge graph, written with its manifest, and parity where it can be
measured.

The steps, each in its own module: the plan (:mod:`gedge.export.build_plan`, from what the installed TensorRT can
do, :mod:`gedge.export.capabilities`), the FP16 graph where a strongly typed FP16 build needs it
(:mod:`gedge.export.fp16`), the build itself (:mod:`gedge.export.tensorrt_build`), the manifest
(:mod:`gedge.export.engine_manifest`) and build-time parity (:mod:`gedge.export.build_parity`).

The graph comes as the :class:`~gedge.core.artifacts.Artifact` gedge read (read, hashed and verified once), and so
does a calibration cache; every stage takes those objects, never the path again: the plan is made once, the FP16
graph is derived from the graph in memory and comes back as the artifact that was written, parity runs on the
engine's bytes in memory (its backend opened from the fresh engine's artifact) or on the graph's artifact. Their
recorded hashes must match, and a graph whose INT8 accuracy gate failed, or a cache whose Q/DQ graph failed it or
that was made for another graph, is refused unless ``force``; the manifest of an engine built with ``force``
records the overridden verdicts as ``forced``. The engine and its manifest are written once, at the end, with the
parity measured (or, where it cannot run, "error" with the reason, before the failure is raised).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from gedge.core import artifacts
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.calib_cache import check_cache_graph
from gedge.core.artifacts.engine import engine_artifact, manifest_path, write_manifest
from gedge.core.artifacts.manifest import EngineManifest, ParityRecord
from gedge.core.artifacts.verdicts import Verification, enforce
from gedge.core.atomic import write_bytes
from gedge.core.errors import ArtifactError, ConfigError, GedgeError, RuntimeFailure, first_line
from gedge.core.machine import cuda_device
from gedge.core.tensorrt import TensorRT, import_tensorrt
from gedge.core.timing import Stopwatch
from gedge.export.build_parity import BuildParityRequest, build_time_parity
from gedge.export.build_plan import BuildPlan, BuildRequest, fp16_graph_path, plan_build
from gedge.export.capabilities import TensorRTCapabilities, assumed_capabilities
from gedge.export.engine_manifest import SourceGraph, engine_manifest, engine_target
from gedge.export.fp16 import write_fp16_graph
from gedge.export.tensorrt_build import BuildInputs, BuildProgress, Serialized, serialize


@dataclass(frozen=True)
class Toolkit:
    """The installed TensorRT a build uses and what it can do (probed once per command)."""

    trt: TensorRT
    caps: TensorRTCapabilities


def open_tensorrt(module: str | None = None) -> Toolkit:
    """The installed TensorRT (``module`` if given) and what it can do; ConfigError when there is none."""
    if module not in (None, "tensorrt", "tensorrt_rtx"):
        raise ConfigError(f"--module must be tensorrt or tensorrt_rtx, got {module!r}")
    trt, reason = import_tensorrt(module)
    if trt is None:
        raise ConfigError(f"no TensorRT is installed here ({reason}); install tensorrt (Jetson: JetPack) or "
                          "tensorrt-rtx-cu13, or print the plan with --dry-run --assume trt-10.3")
    return Toolkit(trt, TensorRTCapabilities.probe(trt.module, trt.name, trt.version))


@dataclass
class Prepared:
    """A plan and what it was made from, each read once."""

    plan: BuildPlan
    caps: TensorRTCapabilities
    graph: Artifact  # the graph the user gave
    derived: Artifact | None = None  # the FP16 graph next to it, derived from it earlier, which the plan parses
    cache: Artifact | None = None  # the calibration cache of an implicit INT8 build
    verified: list[Verification] = field(default_factory=list)  # the graph's (and the cache's), enforced

    @property
    def forced(self) -> tuple[str, ...]:
        """The recorded verdicts overridden with ``force`` (the manifest records them)."""
        return tuple(why for v in self.verified for why in v.forced)


def _open_cache(request: BuildRequest, graph: Artifact) -> tuple[Artifact | None, list[Verification]]:
    """The calibration cache (if asked for), its hashes and verdicts checked, and that it is this graph's."""
    if not request.calibration_cache:
        return None, []
    cache = artifacts.open(request.calibration_cache, ("calibration cache",))
    return cache, [enforce(check_cache_graph(cache, graph), request.force)]


def _derived_graph(plan: BuildPlan, graph: Artifact) -> Artifact | None:
    """The FP16 graph the plan parses where it lies next to the given one already: it must have been derived from
    it (its recorded lineage names the given graph's sha256)."""
    if plan.derive_fp16 or Path(plan.graph) == Path(graph.path):
        return None
    derived = artifacts.open(plan.graph, ("graph",))
    if derived.precision != "fp16" or derived.lineage.derived_from_sha256 != graph.sha256:
        raise ConfigError(f"{plan.graph} exists but was not derived from {graph.path}; pass it instead "
                          f"(gedge build {plan.graph} --precision fp16) or remove it")
    return derived


def prepare(graph: Artifact, request: BuildRequest, caps: TensorRTCapabilities) -> Prepared:
    """Enforce the graph's (and the calibration cache's) recorded verdicts (``request.force`` overrides a failed
    one), and make the plan, once (no file is written)."""
    if graph.kind != "graph":
        raise ConfigError(f"{graph.name}: TensorRT builds from an ONNX graph (.onnx)")
    verified = [enforce(graph.verification, request.force)] if graph.verification is not None else []
    cache, cache_verified = _open_cache(request, graph)
    plan = plan_build(caps, request, graph, fp16_graph_exists=fp16_graph_path(graph.path).is_file())
    return Prepared(plan, caps, graph, _derived_graph(plan, graph), cache, verified + cache_verified)


def dry_run(graph: Artifact, request: BuildRequest, assume: str | None = None,
            module: str | None = None) -> Prepared:
    """The plan for the installed TensorRT, or for the one ``assume`` names (trt-8.5, trt-10.3, trt-11, rtx)."""
    caps = assumed_capabilities(assume) if assume else open_tensorrt(module).caps
    return prepare(graph, request, caps)


@dataclass
class EngineResult:
    plan: BuildPlan
    engine: Path
    manifest_path: Path
    manifest: EngineManifest
    build_seconds: float
    fp16_graph_written: bool = False
    pinned_layers: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def engine_bytes(self) -> int:
        return self.manifest.engine_bytes

    @property
    def parity(self) -> dict[str, ParityRecord]:
        return self.manifest.parity

    @property
    def parity_failed(self) -> bool:
        return any(record.status == "failed" for record in self.parity.values())

    @property
    def forced(self) -> list[str]:
        return list(self.manifest.forced)


def _source_graph(prepared: Prepared) -> SourceGraph:
    """The graph the plan parses (the FP16 graph is derived first where the plan says so) and the cache."""
    plan, given = prepared.plan, prepared.graph
    graph = write_fp16_graph(given, plan.graph) if plan.derive_fp16 else (prepared.derived or given)
    if graph is not given:  # a graph derived from the given one decides like it (with a threshold refitted for it)
        graph = replace(graph, facts=replace(graph.model_facts(), decision=given.decision))
    line = prepared.verified[0].line() if prepared.verified else ""
    return SourceGraph(graph, given, prepared.cache, line, prepared.forced)


def _build(toolkit: Toolkit, plan: BuildPlan, source: SourceGraph,
           progress: BuildProgress | None) -> tuple[Serialized, float]:
    """The engine's bytes and the build time; TensorRT's own exceptions become one-line ArtifactErrors."""
    watch = Stopwatch()
    cache = source.cache.data if source.cache is not None else None
    scales = source.cache.cache if source.cache is not None else None
    inputs = BuildInputs(toolkit.trt, toolkit.caps, plan, source.graph.onnx_model, cache, scales)
    try:
        built = serialize(inputs, progress)
    except RuntimeError as exc:  # pybind11 maps TensorRT's C++ errors to RuntimeError
        raise ArtifactError(f"TensorRT failed while building: {first_line(exc)}", plan.graph) from None
    return built, watch.seconds(2)


def _measured(manifest: EngineManifest, engine: Artifact, source: SourceGraph, parity: BuildParityRequest,
              no_gpu: str) -> tuple[EngineManifest, BaseException | None]:
    """The manifest with the parity measured on the fresh engine (or its graph), and the failure to raise once it
    is written. Where parity cannot run, the manifest records "error" with the reason: bad input is raised as it is
    (exit 2); a run-time failure of CUDA, TensorRT or a backend (a pybind11 RuntimeError) as a RuntimeFailure
    (exit 3). Never "pending" after an attempt that failed."""
    try:
        return manifest.with_parity(build_time_parity(parity, engine, source.graph, no_gpu)), None
    except (GedgeError, RuntimeError) as exc:
        reason = first_line(exc)
        failed = manifest.with_parity({"engine": ParityRecord("error", f"parity could not run: {reason}")})
        if isinstance(exc, (GedgeError, RuntimeFailure)):
            return failed, exc
        return failed, RuntimeFailure(f"parity at build time could not run: {reason}", engine.path)


def build_engine(graph: Artifact, request: BuildRequest, toolkit: Toolkit | None = None,
                 parity: BuildParityRequest | None = None, progress: BuildProgress | None = None) -> EngineResult:
    """``gedge build``: enforce the graph's verdicts, plan, (derive the FP16 graph,) build, measure parity against
    ``parity.reference`` on ``parity.data`` where both are given, write the engine and its manifest. ``toolkit``:
    the TensorRT to build with (default: the first installed). ``request.force``: build from a graph (or cache)
    whose recorded verdict failed; the manifest records it."""
    toolkit = toolkit or open_tensorrt()
    parity = parity or BuildParityRequest(batch_size=request.parity_batch)
    parity = replace(parity, force=parity.force or request.force)
    parity.check()
    prepared = prepare(graph, request, toolkit.caps)
    plan = prepared.plan
    engine = Path(plan.engine)
    if engine.is_dir():
        raise ArtifactError("output is a folder; give a file name such as scorer.fp16.engine", engine)
    source = _source_graph(prepared)
    device, why = cuda_device()
    no_gpu = "" if device else "no CUDA GPU on this machine" + (" (an ahead-of-time build)" if toolkit.caps.is_rtx
                                                                 else "")
    built, seconds = _build(toolkit, plan, source, progress)
    manifest = engine_manifest(plan, toolkit.caps, source, built, engine_target(toolkit.caps, plan, device, why),
                               seconds)
    manifest, failure = _measured(manifest, engine_artifact(engine, built.engine, manifest), source, parity, no_gpu)
    write_bytes(engine, built.engine)
    write_manifest(engine, manifest)  # once: the engine is never without it, even when parity could not run
    if failure is not None:
        raise failure
    return EngineResult(plan, engine, manifest_path(engine), manifest, seconds, plan.derive_fp16, built.pinned_layers,
                        [built.timing_note] if built.timing_note else [])

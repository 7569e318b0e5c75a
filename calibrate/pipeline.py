"""`gedge calibrate`: calibration set, ranges, INT8 graphs (TensorRT and CPU flavours), TensorRT calibration
cache, and the accuracy gate, as one library call.

Artifacts, next to the FP32 graph (or in ``out_dir``), each written atomically with a sidecar JSON:

* ``calibration.npz``: the patches (uint8 NHWC), sidecar with their sha256, sources, seed and drawing method;
* ``<stem>.int8.qdq.onnx``: TensorRT flavour; ``<stem>.int8.cpu.onnx``: ONNX Runtime CPU flavour;
* ``<stem>.int8.calib.cache``: TensorRT's calibration cache of the same ranges (TensorRT 8.5 to 10.x).

A flavour that fails the gate is still written (with ``passed: false`` in its sidecar) unless ``strict``;
with ``strict`` it is not written, nor, for the TensorRT flavour, the cache of its ranges.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gedge.calibrate.cache import DEFAULT_TRT_VERSION, cache_from_ranges
from gedge.calibrate.gate import gate_set, gate_summary, recorded_validation, reference_scores, run_gate
from gedge.calibrate.patches import (
    DEFAULT_PATCHES,
    CalibrationSet,
    calibration_set_from,
    calibration_sources,
    save_calibration_set,
)
from gedge.calibrate.quantize import FLAVOURS, flavour, inspect_qdq, quantize_graph
from gedge.calibrate.ranges import DEFAULT_PERCENTILE, METHODS, CalibrationRanges, PatchReader, collect_ranges
from gedge.compare.comparator import ParityReport
from gedge.compare.limits import ParityLimits, limits_for
from gedge.core.artifacts.calib_cache import write_cache
from gedge.core.artifacts.graph import load_graph, read_facts
from gedge.core.atomic import write_bytes, write_json
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.hashing import sha256_file
from gedge.data.datasets import split_validation
from gedge.reference.checkpoint import load_checkpoint

TARGETS = ("tensorrt", "cpu", "all", "openvino")  # openvino: NNCF INT8 IR (gedge.calibrate.nncf_int8)
DEFAULT_METHOD = "minmax"  # measured: entropy and percentile clip the tails the local scores live on
GATE_FRACTION = 0.15  # share of the sources held out for the gate when the checkpoint records no validation set

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class CalibrateOptions:
    checkpoint: Path
    graph: Path  # the FP32 graph from `gedge export`
    data: Path | None = None  # normal images to calibrate on (default: the checkpoint's training images)
    target: str = "all"
    method: str = DEFAULT_METHOD
    percentile: float = DEFAULT_PERCENTILE
    n_patches: int = DEFAULT_PATCHES
    seed: int = 0
    strict: bool = False
    out_dir: Path | None = None
    trt_version: str = DEFAULT_TRT_VERSION
    quantize_image_convs: bool = False
    max_auroc_drop: float | None = None
    min_agreement: float | None = None
    threads: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ConfigError(f"target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.n_patches < 1:
            raise ConfigError(f"the number of calibration patches must be positive, got {self.n_patches}")
        if self.batch_size < 1 or self.threads < 0:
            raise ConfigError("batch size must be positive and threads 0 (default) or more")

    @property
    def targets(self) -> list[str]:
        return list(FLAVOURS) if self.target == "all" else [self.target]

    def limits(self) -> ParityLimits:
        return limits_for("int8", max_auroc_delta=self.max_auroc_drop, min_agreement=self.min_agreement)


@dataclass
class FlavourResult:
    target: str
    path: Path
    written: bool
    report: ParityReport
    nodes: int
    quantized: dict[str, int]
    float_convolutions: list[str]
    tensorrt_parse: str = ""  # TensorRT's parser verdict on the Q/DQ graph, where a TensorRT module is installed

    @property
    def passed(self) -> bool:
        return self.report.passed


@dataclass
class CalibrateResult:
    calibration: CalibrationSet
    set_path: Path
    ranges: CalibrationRanges
    flavours: list[FlavourResult]
    cache_path: Path | None
    gate_description: str
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(f.passed for f in self.flavours)

    def flavour(self, target: str) -> FlavourResult:
        return next(f for f in self.flavours if f.target == target)


def output_paths(graph: Path, out_dir: Path | None = None) -> dict[str, Path]:
    folder = out_dir or graph.parent
    stem = graph.name[:-5] if graph.name.endswith(".onnx") else graph.name
    return {"set": folder / "calibration.npz", "cache": folder / f"{stem}.int8.calib.cache",
            **{name: folder / f"{stem}{spec.suffix}" for name, spec in FLAVOURS.items()}}


def _open_graph(options: CalibrateOptions, checkpoint) -> tuple[object, list[str]]:
    graph = load_graph(options.graph)
    facts = read_facts(graph, options.graph)
    if facts.precision != "fp32":
        raise ConfigError(f"calibrate needs the FP32 graph from `gedge export`; {options.graph} is {facts.precision}")
    if facts.model != checkpoint.model.to_dict():
        raise ConfigError(f"the graph's model config differs from the checkpoint's: {facts.model} vs "
                          f"{checkpoint.model.to_dict()}")
    notes = []
    if facts.source_sha256 and facts.source_sha256 != sha256_file(options.checkpoint):
        notes.append(f"the graph was exported from {facts.source_checkpoint} (sha256 {facts.source_sha256[:12]}), "
                     "not from this checkpoint")
    return graph, notes


def _tensorrt_parse(path: Path) -> str:
    from gedge.export.check import tensorrt_check

    try:
        check, skipped = tensorrt_check(load_graph(path))
    except Exception as exc:  # a broken TensorRT install must not fail calibration
        return f"TensorRT could not run: {exc}"
    if check is None:
        return skipped
    if check.parsed:
        return f"parsed by {check.module} {check.version}"
    return f"REJECTED by {check.module} {check.version}: " + "; ".join(i.line() for i in check.issues[:3])


def _sidecar(path: Path, model, report: ParityReport, extra: dict) -> Path:
    facts = read_facts(model)
    payload = {"graph": path.name, "graph_sha256": sha256_file(path), **facts.to_dict(),
               "gate": gate_summary(report), **extra}
    return write_json(path.with_name(path.name + ".json"), payload)


def open_inputs(options: CalibrateOptions):
    """The checkpoint and the FP32 graph, checked against each other and the output paths (fails fast)."""
    checkpoint = load_checkpoint(options.checkpoint)
    fp32, notes = _open_graph(options, checkpoint)
    paths = output_paths(options.graph, options.out_dir)
    for name in ("set", "cache", *options.targets):
        if paths[name].is_dir():
            raise ArtifactError("output path is a folder", paths[name])
    return checkpoint, fp32, notes, paths


def split_sources(checkpoint, options: CalibrateOptions, notes: list[str]):
    """Calibration sources and the gate's held-out normals, which never enter the calibration set.

    Returns (sources, calibration image paths, held-out paths, where the gate images came from).
    """
    sources = calibration_sources(checkpoint, options.data)
    held_out = recorded_validation(checkpoint)
    gate_origin = "the checkpoint's validation images"
    source_paths = sources.paths
    if not held_out:
        if len(source_paths) < 4:
            raise ConfigError("the checkpoint records no validation images and there are fewer than 4 source images "
                              "to hold some out for the accuracy gate")
        source_paths, held_out = split_validation(source_paths, GATE_FRACTION, options.seed)
        gate_origin = f"{len(held_out)} source images held out from calibration"
        notes.append(f"the checkpoint's validation images are not available here: {gate_origin} for the gate")
    return sources, source_paths, held_out, gate_origin


def calibrate(options: CalibrateOptions, progress: Progress | None = None) -> CalibrateResult:
    """The whole `gedge calibrate` run; see the module docstring."""
    started = time.time()
    checkpoint, fp32, notes, paths = open_inputs(options)
    fp32_sha = sha256_file(options.graph)

    def stage(name: str):
        return (lambda done, total: progress(name, done, total)) if progress else None

    sources, source_paths, held_out, gate_origin = split_sources(checkpoint, options, notes)
    cal = calibration_set_from(source_paths, checkpoint.preprocess, options.n_patches, options.seed, sources.origin,
                               sources.excluded)
    warnings = list(cal.warnings)
    set_path = save_calibration_set(cal, paths["set"])
    set_facts = {"sha256": cal.sha256, "patches": len(cal), "file": set_path.name, "seed": options.seed}

    facts = read_facts(fp32)
    reader = PatchReader(cal.patches, facts.input_name, facts.input)
    ranges = collect_ranges(fp32, reader, options.method, options.percentile, options.threads, stage("ranges"))
    ranges.set_sha256 = cal.sha256

    gate = gate_set(checkpoint, held_out, gate_origin)
    reference = reference_scores(checkpoint, gate, options.batch_size, stage("reference"))
    limits = options.limits()
    results: list[FlavourResult] = []
    for target in options.targets:
        spec = flavour(target)
        model = quantize_graph(fp32, ranges, spec, fp32_sha, set_facts, options.quantize_image_convs)
        out = paths[target]
        tmp = out.with_name(f".{out.name}.gate.tmp")
        write_bytes(tmp, model.SerializeToString(deterministic=True))
        try:
            report = run_gate(checkpoint, tmp, gate, reference, limits, options.threads, options.batch_size,
                              stage(f"gate {target}"))
            report.data = gate.description
            parse = _tensorrt_parse(tmp) if target == "tensorrt" else ""
            written = report.passed or not options.strict
            if written:
                os.replace(tmp, out)
                _sidecar(out, model, report, {"calibration_set": set_facts})
        finally:
            tmp.unlink(missing_ok=True)
        summary = inspect_qdq(model)
        results.append(FlavourResult(target, out, written, report, len(model.graph.node), summary.quantized_counts(),
                                     summary.float_convolutions, parse))

    cache_path = None
    trt = next((r for r in results if r.target == "tensorrt"), None)
    if trt is not None and trt.written:
        tensor_names = {name for node in fp32.graph.node for name in node.output}
        leave_out = set() if options.quantize_image_convs else set(ranges.image_valued)
        cache = cache_from_ranges(ranges, tensor_names, options.trt_version, leave_out=leave_out)
        cache_path = write_cache(cache, paths["cache"])
        write_json(cache_path.with_name(cache_path.name + ".json"), {
            "cache": cache_path.name, "sha256": sha256_file(cache_path), "header": cache.header(),
            "tensorrt_version": options.trt_version, "method": ranges.method,
            "tensors": len(cache.scales), "graph": Path(options.graph).name, "graph_sha256": fp32_sha,
            "calibration_set": set_facts,
            "use": f"trtexec --onnx={Path(options.graph).name} --int8 --calib={cache_path.name} (TensorRT 8.5-10.x)"})
    notes += ranges.notes
    return CalibrateResult(cal, set_path, ranges, results, cache_path, gate.description, warnings, notes,
                           round(time.time() - started, 1))

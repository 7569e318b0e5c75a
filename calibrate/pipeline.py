"""`gedge calibrate`: calibration set, INT8 artifacts for every target, their accuracy gate and the TensorRT
calibration cache, as one library call.

One pipeline for every target: the calibration set is drawn once, the activation ranges are chosen once on the
FP32 graph (for the ONNX flavours and the cache), the gate images and the reference's scores of them are made
once; then each target's artifact is written to a temporary name, gated, and published. Artifacts, next to
the FP32 graph (or in ``out_dir``), each written atomically with a sidecar JSON:

* ``calibration.npz``: the patches (uint8 NHWC), sidecar with their sha256, sources, seed and drawing method;
* ``tensorrt``: ``<stem>.int8.qdq.onnx``; ``cpu``: ``<stem>.int8.cpu.onnx`` (ONNX Runtime CPU flavour);
  ``openvino``: ``<stem>.int8.ov.xml`` + ``.bin`` (NNCF; needs ``gedge[openvino]``);
* ``<stem>.int8.calib.cache``: TensorRT's calibration cache of the same ranges (TensorRT 8.5 to 10.x), with
  the ``tensorrt`` target.

An artifact that fails the gate is first given the accuracy-aware fallback (:mod:`gedge.calibrate.fallback`,
on unless ``fallback=False``): its most harmful layers are kept in float, one at a time, until the gate passes
with at least half of the target's INT8 multiply-adds left; ``report`` measures every layer's sensitivity
first. An artifact that still fails the gate (or, for the TensorRT flavour, that TensorRT's parser rejects) is still
written under its name, with ``gate.passed: false`` in its sidecar, unless ``strict``; with ``strict`` it is not
written, nor, for the TensorRT flavour, the cache of its ranges. A written failure is kept for diagnosis only:
every later command reads the sidecar's verdict and refuses the artifact unless forced
(:mod:`gedge.core.artifacts.verdicts`). The calibration cache's sidecar records the TensorRT flavour's verdict
too, so a build from the cache is refused alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import onnx
from gedge.calibrate.cache import DEFAULT_TRT_VERSION, cache_from_ranges
from gedge.calibrate.fallback import FallbackResult, LayerHarm, Measure, fall_back, sensitivity
from gedge.calibrate.gate import Gate, gate_set, gate_summary, recorded_validation
from gedge.calibrate.layers import conv_layers, int8_share, quantized_layers
from gedge.calibrate.nncf_int8 import IR_SUFFIX, OpenVINOTarget, openvino_installed, require_nncf
from gedge.calibrate.patches import (
    DEFAULT_PATCHES,
    CalibrationSet,
    Sources,
    calibration_set_from,
    calibration_sources,
    save_calibration_set,
)
from gedge.calibrate.quantize import FLAVOURS
from gedge.calibrate.ranges import DEFAULT_PERCENTILE, METHODS, CalibrationRanges, PatchReader, collect_ranges
from gedge.calibrate.targets import ArtifactChecks, QdqTarget, TargetInputs, TargetWriter, temporary_path
from gedge.compare.comparator import ParityReport
from gedge.compare.driver import RunSettings
from gedge.compare.limits import ParityLimits, gate_limits
from gedge.core import artifacts
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.calib_cache import write_cache
from gedge.core.artifacts.calibration import CalibrationFacts
from gedge.core.artifacts.records import CalibrationSetRef, GateRecord
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.timing import Stopwatch
from gedge.data.datasets import split_validation
from gedge.reference.checkpoint import Checkpoint, checkpoint_of

TARGET_SETS = {"tensorrt": ("tensorrt",), "cpu": ("cpu",), "onnx": ("tensorrt", "cpu"), "openvino": ("openvino",),
               "all": ("tensorrt", "cpu", "openvino"), "all+openvino": ("tensorrt", "cpu", "openvino")}
# `all` is every target whose tools are installed (OpenVINO's IR needs gedge[openvino]); `all+openvino` insists.
TARGETS = tuple(TARGET_SETS)
ONNX_TARGETS = tuple(FLAVOURS)  # the Q/DQ flavours, which need the activation ranges
DEFAULT_METHOD = "minmax"  # entropy and percentile clip the tails the local scores live on (docs/int8-calibration.md)
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
    fallback: bool = True  # keep the most harmful layers in float when an artifact fails its gate
    report: bool = False  # measure every quantized layer's sensitivity on the gate images
    out_dir: Path | None = None
    trt_version: str = DEFAULT_TRT_VERSION
    quantize_image_convs: bool = False
    max_auroc_drop: float | None = None
    min_agreement: float | None = None  # the proxies' decision agreement
    max_false_rejects: float | None = None  # share of the held-out normals the artifact may newly reject
    max_score_shift: float | None = None  # the primary score's largest shift near the threshold (share of margin)
    max_score_bias: float | None = None  # its mean shift there
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
        self.limits()  # limits out of range are bad input, said before any work

    @property
    def targets(self) -> list[str]:
        chosen = list(TARGET_SETS[self.target])
        if self.target == "all" and not openvino_installed():
            chosen.remove("openvino")
        return chosen

    def limits(self) -> ParityLimits:
        return gate_limits(max_auroc_delta=self.max_auroc_drop, min_anomalous_agreement=self.min_agreement,
                           max_new_false_rejects=self.max_false_rejects, max_score_shift=self.max_score_shift,
                           max_score_bias=self.max_score_bias)


@dataclass
class Precision:
    """Which layers of an artifact run in INT8: the share of the multiply-adds, the sensitivity rows (``--report``)
    and what the accuracy-aware fallback kept in float."""

    int8_mac_share: float
    sensitivity: list[LayerHarm] | None = None
    fallback: FallbackResult | None = None

    @property
    def kept_float(self) -> list[str]:
        return list(self.fallback.kept) if self.fallback else []

    def to_dict(self) -> dict[str, Any]:
        return {"int8_mac_share": self.int8_mac_share, "kept_float": self.kept_float,
                "fallback": None if self.fallback is None else self.fallback.to_dict(),
                "sensitivity": None if self.sensitivity is None else [row.to_dict() for row in self.sensitivity]}


@dataclass
class FlavourResult:
    """One target's artifact: where it is, whether it was written, its gate report and what was found on it."""

    target: str
    path: Path
    written: bool
    report: ParityReport
    checks: ArtifactChecks
    precision: Precision = field(default_factory=lambda: Precision(0.0))

    @property
    def passed(self) -> bool:
        """It passed the accuracy gate, and TensorRT's parser took it (where a TensorRT parsed it here)."""
        return self.report.passed and self.checks.tensorrt_parsed is not False

    @property
    def failures(self) -> list[str]:
        rejected = [self.checks.tensorrt_parse] if self.checks.tensorrt_parsed is False else []
        return [*self.report.failures, *rejected]

    def to_dict(self) -> dict[str, Any]:
        checks = self.checks
        entry = {"path": str(self.path), "written": self.written, "passed": self.passed, "nodes": checks.nodes,
                 "quantized": checks.quantized, "float_convolutions": checks.float_convolutions,
                 "tensorrt_parse": checks.tensorrt_parse, "tensorrt_parsed": checks.tensorrt_parsed,
                 "gate": gate_summary(self.report), "failures": self.failures, **self.precision.to_dict()}
        if checks.float_residuals is not None:  # the OpenVINO IR
            entry.update(float_residuals=checks.float_residuals or "ok", quantization=checks.quantization)
        return entry


@dataclass
class CalibrateResult:
    calibration: CalibrationSet
    set_path: Path
    ranges: CalibrationRanges | None  # None when no ONNX flavour was asked for
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

    def to_dict(self) -> dict[str, Any]:
        cal = self.calibration
        ranges = self.ranges
        return {
            "passed": self.passed,
            "calibration_set": {"path": str(self.set_path), "sha256": cal.sha256, "patches": len(cal),
                                "shape": list(cal.shape), "sources": len(cal.sources), "origin": cal.origin,
                                "excluded": cal.excluded, "seed": cal.seed, "method": cal.method},
            "ranges": None if ranges is None else {"method": ranges.method, "tensors": len(ranges.tensors),
                                                   "seconds": ranges.seconds},
            "gate_data": self.gate_description,
            "cache": str(self.cache_path) if self.cache_path else None,
            "graphs": {f.target: f.to_dict() for f in self.flavours},
            "warnings": self.warnings,
            "notes": self.notes,
            "seconds": self.seconds,
        }


def output_paths(graph: Path, out_dir: Path | None = None) -> dict[str, Path]:
    folder = out_dir or graph.parent
    stem = graph.name[:-5] if graph.name.endswith(".onnx") else graph.name
    return {"set": folder / "calibration.npz", "cache": folder / f"{stem}.int8.calib.cache",
            **{name: folder / f"{stem}{spec.suffix}" for name, spec in FLAVOURS.items()},
            "openvino": folder / f"{stem}{IR_SUFFIX}"}


@dataclass
class CalibrationInputs:
    """Everything checked before any work: the checkpoint, the FP32 graph, the output paths, the sources."""

    reference: Artifact  # the checkpoint, as gedge read it
    checkpoint: Checkpoint
    fp32: Artifact  # the FP32 graph, as gedge read it
    paths: dict[str, Path]
    sources: Sources  # the images the calibration set is drawn from (the gate's held-out images left out)
    held_out: list[Path]  # the gate's normal images
    gate_origin: str
    notes: list[str] = field(default_factory=list)


def _open_graph(options: CalibrateOptions, reference: Artifact) -> tuple[Artifact, list[str]]:
    """The FP32 graph, read once, and a note where its lineage names another checkpoint than ``reference``."""
    graph = artifacts.open(options.graph, ("graph",))
    if graph.precision != "fp32":
        raise ConfigError(f"calibrate needs the FP32 graph from `gedge export`; {options.graph} is {graph.precision}")
    if graph.model != reference.model:
        raise ConfigError(f"the graph's model config differs from the checkpoint's: {graph.model} vs "
                          f"{reference.model}")
    notes, lineage = [], graph.lineage
    if lineage.checkpoint_sha256 and lineage.checkpoint_sha256 != reference.sha256:
        notes.append(f"the graph was exported from {lineage.checkpoint} (sha256 {lineage.checkpoint_sha256[:12]}), "
                     "not from this checkpoint")
    return graph, notes


def _split_sources(checkpoint: Checkpoint, options: CalibrateOptions,
                   notes: list[str]) -> tuple[Sources, list[Path], str]:
    """Calibration sources and the gate's held-out normals (which never enter the calibration set), and where
    the held-out images came from."""
    sources = calibration_sources(checkpoint, options.data)
    held_out = recorded_validation(checkpoint)
    if held_out:
        return sources, held_out, "the checkpoint's validation images"
    if len(sources.paths) < 4:
        raise ConfigError("the checkpoint records no validation images and there are fewer than 4 source images "
                          "to hold some out for the accuracy gate")
    # at least as many normals as the gate's limits can judge, where the sources leave some to calibrate on
    n = len(sources.paths)
    fraction = min(max(GATE_FRACTION, options.limits().min_normals / n), (n - 1) / n, 0.85)
    source_paths, held_out = split_validation(sources.paths, fraction, options.seed)
    gate_origin = f"{len(held_out)} source images held out from calibration"
    notes.append(f"the checkpoint's validation images are not available here: {gate_origin} for the gate")
    return replace(sources, paths=source_paths), held_out, gate_origin


def open_inputs(options: CalibrateOptions) -> CalibrationInputs:
    """The checkpoint, the FP32 graph, the output paths and the sources, checked against each other (so bad
    input fails as one line before any work)."""
    reference = artifacts.open(options.checkpoint, ("checkpoint",))
    checkpoint = checkpoint_of(reference)
    fp32, notes = _open_graph(options, reference)
    if "openvino" in options.targets:
        require_nncf()
    paths = output_paths(options.graph, options.out_dir)
    for name in ("set", "cache", *options.targets):
        if paths[name].is_dir():
            raise ArtifactError("output path is a folder", paths[name])
    if options.target == "all" and "openvino" not in options.targets:
        notes.append("OpenVINO or NNCF is not installed (pip install 'gedge[openvino]'): no NNCF INT8 IR")
    sources, held_out, gate_origin = _split_sources(checkpoint, options, notes)
    return CalibrationInputs(reference, checkpoint, fp32, paths, sources, held_out, gate_origin, notes)


def _writer(target: str, out: Path, inputs: TargetInputs) -> TargetWriter:
    return OpenVINOTarget(out, inputs) if target == "openvino" else QdqTarget(target, out, inputs)


def _measure(writer: TargetWriter, gate: Gate, tmp: Path) -> Measure:
    """The gate's report on the artifact written with some layers kept in float (for the fallback's search)."""
    def measure(keep_float: tuple[str, ...]) -> ParityReport:
        return gate.check(writer.write(tmp, keep_float))
    return measure


def _search(writer: TargetWriter, gate: Gate, options: CalibrateOptions, fp32: onnx.ModelProto,
            progress: Progress | None) -> tuple[ParityReport, Precision]:
    """The artifact at its temporary name and its gate report: all INT8 layers quantized, or, when that fails the
    gate (and the fallback is on), the fewest most harmful layers kept in float that pass it. With
    ``options.report`` every layer's sensitivity is measured first."""
    tmp = temporary_path(writer.out)
    layers = quantized_layers(fp32, writer.target, options.quantize_image_convs)
    total = sum(layer.macs for layer in conv_layers(fp32))
    measure = _measure(writer, gate, tmp)
    precision = Precision(int8_share(layers, total))
    if options.report and layers:
        precision.sensitivity = sensitivity(layers, measure, True, _stage(progress, f"sensitivity {writer.target}"))
    report = gate.check(writer.write(tmp), _stage(progress, f"gate {writer.target}"))
    if report.passed or not options.fallback or not layers:
        return report, precision
    harm = precision.sensitivity or sensitivity(layers, measure, False, _stage(progress, f"harm {writer.target}"))
    precision.fallback = fall_back(layers, total, report, measure, harm)
    precision.int8_mac_share = precision.fallback.int8_share
    if precision.fallback.report is not None:  # the passing trial's artifact is the one at tmp, already gated
        return precision.fallback.report, precision
    plain = writer.write(tmp)  # none passed: the plain INT8 artifact again, gated again as written
    return gate.check(plain, _stage(progress, f"gate {writer.target}")), precision


def _gate_target(writer: TargetWriter, gate: Gate, options: CalibrateOptions, fp32: onnx.ModelProto,
                 progress: Progress | None) -> FlavourResult:
    """Write the artifact to a temporary name, gate it (falling back to float layers where it fails), publish it
    (its sidecar with the gate's verdict, the precision per layer and TensorRT's parse) unless ``strict``
    refuses it."""
    tmp = temporary_path(writer.out)
    try:
        report, precision = _search(writer, gate, options, fp32, progress)
        report.notes.append(writer.gate_note)
        checks = writer.inspect(tmp)
        result = FlavourResult(writer.target, writer.out, False, report, checks, precision)
        result.written = result.passed or not options.strict
        if result.written:
            summary = {**gate_summary(report), **precision.to_dict()}
            if checks.tensorrt_parsed is not None:
                summary["tensorrt_parse"] = {"parsed": checks.tensorrt_parsed, "verdict": checks.tensorrt_parse}
            writer.publish(tmp, summary)
    finally:
        writer.discard(tmp)
    return result


def _write_cache(options: CalibrateOptions, inputs: CalibrationInputs, ranges: CalibrationRanges,
                 calibration_set: CalibrationSetRef, trt: FlavourResult) -> Path:
    """TensorRT's calibration cache of the ranges (the tensors the Q/DQ graph quantizes), with its sidecar: the
    FP32 graph's sha256 (a build checks it) and the verdict of the TensorRT flavour's gate (a build enforces it)."""
    tensor_names = {name for node in inputs.fp32.onnx_model.graph.node for name in node.output}
    leave_out = set() if options.quantize_image_convs else set(ranges.image_valued)
    cache = cache_from_ranges(ranges, tensor_names, options.trt_version, leave_out=leave_out)
    out, graph = inputs.paths["cache"], inputs.fp32
    facts = CalibrationFacts(
        out.name, "", cache.header(), options.trt_version, ranges.method, len(cache.scales), graph.name, graph.sha256,
        GateRecord(trt.passed, tuple(trt.failures), {"graph": trt.path.name}), calibration_set,
        f"trtexec --onnx={graph.name} --int8 --calib={out.name} (TensorRT 8.5-10.x)")
    return write_cache(cache, out, facts)


def _stage(progress: Progress | None, name: str) -> Callable[[int, int], None] | None:
    return (lambda done, total: progress(name, done, total)) if progress else None


def calibrate(options: CalibrateOptions, progress: Progress | None = None,
              inputs: CalibrationInputs | None = None) -> CalibrateResult:
    """The whole `gedge calibrate` run (see the module docstring); ``inputs`` from :func:`open_inputs` when the
    caller checked them already."""
    watch = Stopwatch()
    inputs = inputs or open_inputs(options)
    checkpoint = inputs.checkpoint
    cal = calibration_set_from(inputs.sources, checkpoint.preprocess, options.n_patches, options.seed)
    set_path = save_calibration_set(cal, inputs.paths["set"])
    calibration_set = CalibrationSetRef(cal.sha256, len(cal), set_path.name, options.seed)
    ranges = None
    fp32 = inputs.fp32.onnx_model
    if any(t in ONNX_TARGETS for t in options.targets):
        facts = inputs.fp32.model_facts()
        reader = PatchReader(cal.patches, facts.input_name, facts.input_kind)
        ranges = collect_ranges(fp32, reader, options.method, options.percentile, options.threads,
                                _stage(progress, "ranges"))
        ranges.set_sha256 = cal.sha256
    held_out = gate_set(checkpoint, inputs.held_out, inputs.gate_origin)
    gate = Gate.open(inputs.reference, held_out, options.limits(),
                     RunSettings(options.batch_size, _stage(progress, "reference")), options.threads)
    made_from = TargetInputs(inputs.fp32, cal, calibration_set, ranges, options.quantize_image_convs)
    results = [_gate_target(_writer(target, inputs.paths[target], made_from), gate, options, fp32, progress)
               for target in options.targets]
    trt = next((r for r in results if r.target == "tensorrt"), None)
    cache_path = (_write_cache(options, inputs, ranges, calibration_set, trt) if trt is not None and trt.written
                  else None)
    notes = inputs.notes + (ranges.notes if ranges else [])
    return CalibrateResult(cal, set_path, ranges, results, cache_path, held_out.description, list(cal.warnings), notes,
                           watch.seconds(1))

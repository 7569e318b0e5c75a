"""INT8 for OpenVINO: NNCF post-training quantization of the fused FP32 graph (`gedge calibrate --target openvino`).

The calibration set is the one every INT8 graph uses (:mod:`gedge.calibrate.patches`, same seed, same sha256
in the sidecar). NNCF reads gedge's ONNX graph through OpenVINO and inserts FakeQuantize nodes on the inputs of
the convolutions (Convolution, ConvolutionBackpropData; int8 per-channel symmetric weights). Everything else
stays in float through NNCF's ignored scope, by the graph's own node names (OpenVINO keeps ONNX node names
as friendly names):

* ``camera/*``: the uint8 to float conversion;
* ``scores/*``: the concatenation [x; G(x)], the residuals ``x - G(x)`` and ``f(x) - f(G(x))``, Abs, Pow,
  Sqrt, the reductions, the local-window pooling and the score normalisation;
* the two convolutions that read an image (G's first layer, D's first layer on [x; G(x)]), like the ONNX INT8
  flavours (``quantize_image_convs`` quantizes them too);
* the latent convolutions (the last layer of each encoder, a k x k kernel over a k x k map giving a 1 x 1
  output): OpenVINO 2026.4's CPU plugin runs that shape wrongly in int8 on an AVX2 CPU without VNNI (its output
  comes back about 2e4 times too small, relative error 1.0 against the same IR run with FakeQuantize simulated
  in float, which is right within 1e-2); NNCF's ranges are fine, the int8 kernel is not. They are 0.2 % of the
  scorer's multiply-adds at 32x32 (100 x 128 x 4 x 4 per encoder), so float costs nothing measurable.

:func:`float_residuals` checks that on the saved IR: every FakeQuantize feeds only convolutions. The IR
(``<stem>.int8.ov.xml`` + ``.bin``, weights kept FP32, no FP16 compression) is written to temporary names
and renamed (bin first, then xml); the sidecar ``<ir>.xml.json`` holds the graph facts with ``precision:
int8``, the quantization facts (flavour ``openvino``, NNCF and OpenVINO versions, ignored scope, the
calibration set's sha256) and the accuracy gate's verdict.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from gedge.core.artifacts.ir import write_ir_sidecar
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.hashing import sha256_file
from gedge.core.inputs import graph_input

IR_SUFFIX = ".int8.ov.xml"


FLOAT_PREFIXES = ("camera/", "scores/")


FLOAT_TYPES = ("Abs", "Power", "Sqrt", "ReduceMean", "ReduceMax", "ReduceSum", "AvgPool", "Divide")


CONVOLUTION_TYPES = ("Convolution", "ConvolutionBackpropData", "GroupConvolution", "GroupConvolutionBackpropData")


def import_nncf():
    try:
        import nncf
        import openvino
    except ImportError as exc:
        raise ConfigError(f"NNCF/OpenVINO is not installed ({exc}); pip install 'gedge[openvino]'") from None
    return nncf, openvino


def ir_path(graph: str | Path, out_dir: str | Path | None = None) -> Path:
    graph = Path(graph)
    stem = graph.name[:-5] if graph.name.endswith(".onnx") else graph.name
    return Path(out_dir or graph.parent) / f"{stem}{IR_SUFFIX}"


def float_scope(fp32_onnx, quantize_image_convs: bool = False) -> dict:
    """What stays in float: regex patterns of friendly names (NNCF ``IgnoredScope(patterns=...)``)."""
    from gedge.calibrate.quantize import image_convolutions
    from gedge.core.scores import OUTPUT_NAMES

    patterns = [f"^{re.escape(p)}.*" for p in FLOAT_PREFIXES]
    patterns.append("^(" + "|".join(re.escape(n) for n in (*OUTPUT_NAMES, "amap")) + ")$")
    convs = [] if quantize_image_convs else image_convolutions(fp32_onnx)
    latent = latent_convolutions(fp32_onnx)
    # A Conv with bias becomes Convolution "<name>/WithoutBiases" + Add "<name>" in OpenVINO.
    patterns += [f"^{re.escape(name)}(/.*)?$" for name in (*convs, *latent)]
    return {"patterns": patterns, "types": list(FLOAT_TYPES), "image_convolutions": convs,
            "latent_convolutions": latent}


def latent_convolutions(fp32_onnx) -> list[str]:
    """Conv nodes whose output map is 1 x 1 (the encoders' latent layers), by ONNX shape inference."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(fp32_onnx)
    shapes = {}
    for value in (*inferred.graph.value_info, *inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    latent = []
    for node in inferred.graph.node:
        if node.op_type != "Conv":
            continue
        spatial = shapes.get(node.output[0], [])[2:]
        if spatial and all(d == 1 for d in spatial):
            latent.append(node.name)
    return latent


@dataclass
class NncfResult:
    path: Path
    model: object  # openvino.Model (quantized)
    quantization: dict
    seconds: float


def quantize_nncf(fp32_path: str | Path, patches: np.ndarray, batch_size: int = 16,
                  quantize_image_convs: bool = False, fast_bias_correction: bool = True,
                  preset: str = "mixed", ranges: str = "minmax", overflow_fix: str = "disable"):
    """The NNCF-quantized ``openvino.Model`` of an FP32 graph and the quantization facts (not saved).

    Defaults, measured on the synthetic demo checkpoint's gate (144 images; relative L2 of the score against
    torch): NNCF's own range estimator with its first-layer overflow fix 0.023 (agreement 96.5 %, fails);
    min/max ranges 0.014; min/max without the overflow fix 0.0099 (agreement 99.3 %, passes). The overflow fix
    narrows weights to 7 bits against int16 saturation on CPUs without VNNI; on this AVX2 CPU the unfixed IR
    runs exactly as its FakeQuantize graph simulated in float, and the accuracy gate checks every IR anyway.
    """
    from gedge.core.artifacts.graph import load_graph, read_facts

    nncf, ov = import_nncf()
    fp32_path = Path(fp32_path)
    onnx_model = load_graph(fp32_path)
    facts = read_facts(onnx_model, fp32_path)
    if facts.precision != "fp32":
        raise ConfigError(f"NNCF quantization needs the FP32 graph from `gedge export`; {fp32_path.name} is "
                          f"{facts.precision}")
    if len(patches) == 0:
        raise ConfigError("the calibration set is empty")
    scope = float_scope(onnx_model, quantize_image_convs)
    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    if preset not in presets:
        raise ConfigError(f"NNCF preset must be performance or mixed, got {preset!r}")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    estimators = {"nncf": None, "minmax": RangeEstimatorParametersSet.MINMAX,
                  "mean_minmax": RangeEstimatorParametersSet.MEAN_MINMAX}
    fixes = {"enable": OverflowFix.ENABLE, "first_layer": OverflowFix.FIRST_LAYER, "disable": OverflowFix.DISABLE}
    if ranges not in estimators or overflow_fix not in fixes:
        raise ConfigError(f"ranges must be nncf, minmax or mean_minmax and overflow_fix enable, first_layer or "
                          f"disable; got "
                          f"{ranges!r}, {overflow_fix!r}")
    extra = {} if estimators[ranges] is None else {"activations_range_estimator_params": estimators[ranges]}
    advanced = AdvancedQuantizationParameters(overflow_fix=fixes[overflow_fix], **extra)
    model = ov.Core().read_model(str(fp32_path))
    items = [graph_input(patches[i:i + batch_size], facts.input) for i in range(0, len(patches), batch_size)]
    dataset = nncf.Dataset(items)
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.ERROR)
    started = time.time()
    quiet = contextlib.ExitStack()
    quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))  # NNCF's progress bars
    quiet.enter_context(contextlib.redirect_stderr(io.StringIO()))
    try:
        quantized = nncf.quantize(
            model, dataset, preset=presets[preset], target_device=nncf.TargetDevice.CPU,
            subset_size=len(patches), fast_bias_correction=fast_bias_correction, advanced_parameters=advanced,
            ignored_scope=nncf.IgnoredScope(patterns=scope["patterns"], types=scope["types"], validate=False))
    finally:
        quiet.close()
        nncf_log.setLevel(level)
    counts = fake_quantize_summary(quantized)
    quantization = {
        "flavour": "openvino", "tool": f"nncf {nncf.__version__}", "openvino_version": ov.get_version(),
        "method": f"NNCF post-training quantization (preset {preset}: "
                  + ("symmetric" if preset == "performance" else "asymmetric") + " 8-bit activations, "
                  "per-channel symmetric int8 weights; " + ("fast " if fast_bias_correction else "") +
                  "bias correction)",
        "preset": preset, "fast_bias_correction": fast_bias_correction, "activation_ranges": ranges,
        "overflow_fix": overflow_fix,
        "description": "OpenVINO IR: FakeQuantize on the inputs of the convolutions only; the camera conversion, "
                       "the residuals, the reductions, the image convolutions and the latent convolutions stay "
                       "in float (ignored scope)",
        "ignored_scope": {"patterns": scope["patterns"], "types": scope["types"]},
        "float_convolutions": scope["image_convolutions"] + scope["latent_convolutions"],
        "quantized_nodes": counts["quantized"], "fake_quantize": counts["fake_quantize"],
        "calibration_inputs": int(len(patches)),
        "seconds": round(time.time() - started, 1),
    }
    return quantized, facts, quantization


def fake_quantize_summary(model) -> dict:
    """FakeQuantize nodes on activations (not on constant weights) and the op types they feed."""
    fake, quantized = 0, {}
    for op in model.get_ordered_ops():
        if op.get_type_name() != "FakeQuantize":
            continue
        source = op.input_value(0).get_node()
        if source.get_type_name() == "Constant":
            continue
        fake += 1
        for target in op.output(0).get_target_inputs():
            kind = target.get_node().get_type_name()
            quantized[kind] = quantized.get(kind, 0) + 1
    return {"fake_quantize": fake, "quantized": quantized}


def _weight_path(op) -> bool:
    """A FakeQuantize (or decompression chain) on a constant: a weight, not an activation."""
    node = op.input_value(0).get_node()
    while node.get_type_name() in ("Convert", "Subtract", "Multiply", "Reshape"):
        node = node.input_value(0).get_node()
    return node.get_type_name() == "Constant"


def float_residuals(model) -> list[str]:
    """Nodes outside the convolutions that read a quantized activation: empty when the residual arithmetic and
    the reductions stay in float. Takes an ``openvino.Model`` (e.g. ``Core().read_model(ir)``)."""
    offenders = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "FakeQuantize" or _weight_path(op):
            continue
        for target in op.output(0).get_target_inputs():
            node = target.get_node()
            if node.get_type_name() not in CONVOLUTION_TYPES:
                offenders.append(f"{node.get_friendly_name()} ({node.get_type_name()})")
    return offenders


def save_ir(model, out: str | Path) -> Path:
    """``out`` (.xml) and its .bin, written to temporary names and renamed (bin first); FP32 weights."""
    _, ov = import_nncf()
    out = Path(out)
    if out.suffix != ".xml":
        raise ConfigError(f"an OpenVINO IR is an .xml file, got {out.name}")
    if out.is_dir():
        raise ArtifactError("output path is a folder", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.xml")
    try:
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".bin").unlink(missing_ok=True)
    return out


def write_openvino_int8(fp32_path: str | Path, patches: np.ndarray, out: str | Path, set_facts: dict,
                        batch_size: int = 16, quantize_image_convs: bool = False,
                        **nncf_options) -> tuple[Path, object, dict]:
    """Quantize, save the IR atomically and its sidecar (without a gate); returns (path, facts, quantization).
    ``nncf_options``: :func:`quantize_nncf`'s preset, ranges, overflow_fix, fast_bias_correction."""
    quantized, facts, quantization = quantize_nncf(fp32_path, patches, batch_size, quantize_image_convs,
                                                   **nncf_options)
    quantization.update({f"calibration_set_{k}": v for k, v in set_facts.items()})
    int8_facts = replace(facts, precision="int8", derived_from_sha256=sha256_file(fp32_path),
                         quantization=quantization)
    path = save_ir(quantized, out)
    write_ir_sidecar(path, int8_facts, {"calibration_set": set_facts})
    return path, int8_facts, quantization


def run_openvino_gate(checkpoint, ir: str | Path, gate, reference, limits=None, threads: int = 0,
                      batch_size: int = 64, progress=None):
    """:func:`gedge.calibrate.gate.run_gate` for the OpenVINO IR: the same images, reference and limits."""
    from gedge.calibrate.gate import gate_backend
    from gedge.runtime.openvino_backend import OpenVINOBackend

    report = gate_backend(checkpoint, OpenVINOBackend(ir, threads=threads), gate, reference, limits, batch_size,
                          progress)
    report.notes.append("NNCF INT8 IR run on OpenVINO CPU (float parts in f32)")
    return report


@dataclass
class OpenVINOCalibration:
    path: Path
    written: bool
    report: object  # ParityReport
    quantization: dict
    set_path: Path
    set_sha256: str
    gate_description: str
    float_residuals: list[str]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.report.passed)


def calibrate_openvino(options, progress=None) -> OpenVINOCalibration:
    """`gedge calibrate --target openvino`: calibration set (the same one, same hash), NNCF INT8 IR, its gate.

    ``options`` is a :class:`gedge.calibrate.pipeline.CalibrateOptions` (checkpoint, graph, data, n_patches,
    seed, strict, out_dir, limits, threads, batch size).
    """
    from gedge.calibrate.gate import gate_set, gate_summary, reference_scores
    from gedge.calibrate.patches import calibration_set_from, save_calibration_set
    from gedge.calibrate.pipeline import _open_graph, output_paths, split_sources
    from gedge.reference.checkpoint import load_checkpoint

    import_nncf()
    started = time.time()
    checkpoint = load_checkpoint(options.checkpoint)
    _, notes = _open_graph(options, checkpoint)
    paths = output_paths(options.graph, options.out_dir)
    out = ir_path(options.graph, options.out_dir)

    def stage(name: str):
        return (lambda done, total: progress(name, done, total)) if progress else None

    sources, source_paths, held_out, gate_origin = split_sources(checkpoint, options, notes)
    cal = calibration_set_from(source_paths, checkpoint.preprocess, options.n_patches, options.seed, sources.origin,
                               sources.excluded)
    notes += cal.warnings
    set_path = save_calibration_set(cal, paths["set"])
    set_facts = {"sha256": cal.sha256, "patches": len(cal), "file": set_path.name, "seed": options.seed}

    tmp = out.with_name(f".{out.stem}.gate.xml")
    try:
        write_openvino_int8(options.graph, cal.patches, tmp, set_facts,
                            quantize_image_convs=options.quantize_image_convs)
        gate = gate_set(checkpoint, held_out, gate_origin)
        reference = reference_scores(checkpoint, gate, options.batch_size, stage("reference"))
        report = run_openvino_gate(checkpoint, tmp, gate, reference, options.limits(), options.threads,
                                   options.batch_size, stage("gate openvino"))
        report.data = gate.description
        _, ov = import_nncf()
        residuals = float_residuals(ov.Core().read_model(str(tmp)))
        written = report.passed or not options.strict
        from gedge.core.artifacts.ir import ir_sidecar_path, read_ir_facts

        facts = read_ir_facts(tmp)
        if written:
            os.replace(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
            os.replace(tmp, out)
            write_ir_sidecar(out, facts, {"calibration_set": set_facts, "gate": gate_summary(report),
                                          "float_residuals_check": residuals or "ok"})
    finally:
        for leftover in (tmp, tmp.with_suffix(".bin")):
            leftover.unlink(missing_ok=True)
        from gedge.core.artifacts.ir import ir_sidecar_path

        ir_sidecar_path(tmp).unlink(missing_ok=True)
    return OpenVINOCalibration(out, written, report, facts.quantization, set_path, cal.sha256, gate.description,
                               residuals, notes, round(time.time() - started, 1))

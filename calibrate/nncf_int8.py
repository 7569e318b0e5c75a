"""INT8 for OpenVINO: NNCF post-training quantization of the fused FP32 graph (`gedge calibrate --target openvino`).

`gedge calibrate` makes it as one of its targets (:class:`OpenVINOTarget`): the calibration set is the one every
INT8 graph uses (:mod:`gedge.calibrate.patches`, same seed, same sha256 in the sidecar), and the accuracy gate is
the same (the IR runs on OpenVINO's CPU plugin). NNCF reads gedge's ONNX graph through OpenVINO and inserts
FakeQuantize nodes on the inputs of the convolutions (Convolution, ConvolutionBackpropData; int8 per-channel
symmetric weights). Everything else stays in float through NNCF's ignored scope, by the graph's own node names
(OpenVINO keeps ONNX node names as friendly names):

* ``camera/*``: the uint8 to float conversion;
* ``scores/*``: the concatenation [x; G(x)], the residuals ``x - G(x)`` and ``f(x) - f(G(x))``, Abs, Pow,
  Sqrt, the reductions, the local-window pooling and the score normalisation;
* the two convolutions that read an image (G's first layer, D's first layer on [x; G(x)]), like the ONNX INT8
  flavours (``quantize_image_convs`` quantizes them too);
* the latent convolutions (the last layer of each encoder, a k x k kernel over a k x k map giving a 1 x 1
  output): OpenVINO's CPU plugin has been seen to compute that shape wrongly in int8 on CPUs without VNNI (the
  measurement is in docs/openvino.md); they are a fraction of a percent of the scorer's multiply-adds, so float
  costs nothing measurable.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gedge.calibrate.layers import latent_convolutions
from gedge.calibrate.quantize import image_convolutions
from gedge.calibrate.targets import ArtifactChecks, TargetInputs
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.facts import ModelFacts, Quantization
from gedge.core.artifacts.ir import IR_GATE_PATH, write_ir_sidecar
from gedge.core.artifacts.records import CalibrationSetRef, GateRecord
from gedge.core.artifacts.sidecar import sidecar_path
from gedge.core.artifacts.verdicts import canonical_gate
from gedge.core.atomic import write_errors
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.inputs import graph_input
from gedge.core.optional import available, require
from gedge.core.scores import OUTPUT_NAMES
from gedge.core.timing import Stopwatch

IR_SUFFIX = ".int8.ov.xml"


FLOAT_PREFIXES = ("camera/", "scores/")


FLOAT_TYPES = ("Abs", "Power", "Sqrt", "ReduceMean", "ReduceMax", "ReduceSum", "AvgPool", "Divide")


CONVOLUTION_TYPES = ("Convolution", "ConvolutionBackpropData", "GroupConvolution", "GroupConvolutionBackpropData")


PRESETS = ("performance", "mixed")
RANGE_ESTIMATORS = ("nncf", "minmax", "mean_minmax")
OVERFLOW_FIXES = ("enable", "first_layer", "disable")


def require_nncf() -> tuple[Any, Any]:
    """The nncf and openvino modules; ConfigError with the install command when either is missing."""
    return require("nncf", "NNCF INT8 (--target openvino)"), require("openvino", "NNCF INT8 (--target openvino)")


def openvino_installed() -> bool:
    """Whether NNCF and OpenVINO import here (the OpenVINO INT8 target can run)."""
    return available("nncf") and available("openvino")


def ir_path(graph: str | Path, out_dir: str | Path | None = None) -> Path:
    graph = Path(graph)
    stem = graph.name[:-5] if graph.name.endswith(".onnx") else graph.name
    return Path(out_dir or graph.parent) / f"{stem}{IR_SUFFIX}"


def float_scope(fp32_onnx, quantize_image_convs: bool = False, keep_float: tuple[str, ...] = ()) -> dict:
    """What stays in float: regex patterns of friendly names (NNCF ``IgnoredScope(patterns=...)``);
    ``keep_float``: further convolutions, by ONNX node name (the accuracy-aware fallback's)."""
    patterns = [f"^{re.escape(p)}.*" for p in FLOAT_PREFIXES]
    patterns.append("^(" + "|".join(re.escape(n) for n in (*OUTPUT_NAMES, "amap")) + ")$")
    convs = [] if quantize_image_convs else image_convolutions(fp32_onnx)
    latent = latent_convolutions(fp32_onnx)
    # A Conv with bias becomes Convolution "<name>/WithoutBiases" + Add "<name>" in OpenVINO.
    patterns += [f"^{re.escape(name)}(/.*)?$" for name in (*convs, *latent, *keep_float)]
    return {"patterns": patterns, "types": list(FLOAT_TYPES), "image_convolutions": convs,
            "latent_convolutions": latent, "kept_float": list(keep_float)}


@dataclass(frozen=True)
class NncfSettings:
    """How NNCF quantizes (see :func:`quantize_nncf` for why these defaults)."""

    batch_size: int = 16  # calibration batches fed to NNCF
    quantize_image_convs: bool = False
    fast_bias_correction: bool = True
    preset: str = "mixed"  # performance (symmetric activations) or mixed (asymmetric)
    ranges: str = "minmax"  # activation range estimator: nncf (its own), minmax or mean_minmax
    overflow_fix: str = "disable"  # enable, first_layer or disable
    keep_float: tuple[str, ...] = ()  # further convolutions left in float (the accuracy-aware fallback's)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"NNCF preset must be performance or mixed, got {self.preset!r}")
        if self.ranges not in RANGE_ESTIMATORS or self.overflow_fix not in OVERFLOW_FIXES:
            raise ConfigError(f"ranges must be nncf, minmax or mean_minmax and overflow_fix enable, first_layer or "
                              f"disable; got {self.ranges!r}, {self.overflow_fix!r}")


def _advanced_parameters(settings: NncfSettings) -> Any:
    """NNCF's advanced parameters: the overflow fix and the activation range estimator."""
    advanced = require("nncf.quantization.advanced_parameters", "NNCF INT8 (--target openvino)")
    estimators = require("nncf.quantization.range_estimator", "NNCF INT8 (--target openvino)")
    sets = estimators.RangeEstimatorParametersSet
    chosen = {"nncf": None, "minmax": sets.MINMAX, "mean_minmax": sets.MEAN_MINMAX}[settings.ranges]
    fixes = advanced.OverflowFix
    fix = {"enable": fixes.ENABLE, "first_layer": fixes.FIRST_LAYER, "disable": fixes.DISABLE}[settings.overflow_fix]
    extra = {} if chosen is None else {"activations_range_estimator_params": chosen}
    return advanced.AdvancedQuantizationParameters(overflow_fix=fix, **extra)


def _run_nncf(nncf: Any, model: Any, dataset: Any, n_patches: int, settings: NncfSettings, scope: dict) -> Any:
    """nncf.quantize with its logging and progress bars silenced."""
    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return nncf.quantize(
                model, dataset, preset=presets[settings.preset], target_device=nncf.TargetDevice.CPU,
                subset_size=n_patches, fast_bias_correction=settings.fast_bias_correction,
                advanced_parameters=_advanced_parameters(settings),
                ignored_scope=nncf.IgnoredScope(patterns=scope["patterns"], types=scope["types"], validate=False))
        finally:
            nncf_log.setLevel(level)


def _quantization_facts(settings: NncfSettings, scope: dict, counts: dict, versions: tuple[str, str]) -> dict:
    preset = settings.preset
    return {
        "flavour": "openvino", "tool": f"nncf {versions[0]}", "openvino_version": versions[1],
        "method": f"NNCF post-training quantization (preset {preset}: "
                  + ("symmetric" if preset == "performance" else "asymmetric") + " 8-bit activations, "
                  "per-channel symmetric int8 weights; " + ("fast " if settings.fast_bias_correction else "") +
                  "bias correction)",
        "preset": preset, "fast_bias_correction": settings.fast_bias_correction,
        "activation_ranges": settings.ranges, "overflow_fix": settings.overflow_fix,
        "description": "OpenVINO IR: FakeQuantize on the inputs of the convolutions only; the camera conversion, "
                       "the residuals, the reductions, the image convolutions and the latent convolutions stay "
                       "in float (ignored scope)",
        "ignored_scope": {"patterns": scope["patterns"], "types": scope["types"]},
        "float_convolutions": scope["image_convolutions"] + scope["latent_convolutions"] + scope["kept_float"],
        **({"kept_float": scope["kept_float"]} if scope["kept_float"] else {}),
        "quantized_nodes": counts["quantized"], "fake_quantize": counts["fake_quantize"],
    }


def quantize_nncf(fp32: Artifact, patches: np.ndarray,
                  settings: NncfSettings = NncfSettings()) -> tuple[Any, ModelFacts, dict]:
    """The NNCF-quantized ``openvino.Model`` of an FP32 graph (as gedge read it), its facts and the quantization
    facts (not saved).

    The defaults (min/max ranges, no overflow fix) are the ones that pass the accuracy gate on the synthetic demo
    checkpoint; NNCF's own range estimator and its overflow fix (7-bit weights against int16 saturation on CPUs
    without VNNI) did not. The measurements are in docs/openvino.md; the gate checks every IR anyway.
    """
    nncf, ov = require_nncf()
    onnx_model, facts = fp32.onnx_model, fp32.model_facts()
    if onnx_model is None or facts.precision != "fp32":
        raise ConfigError(f"NNCF quantization needs the FP32 graph from `gedge export`; {fp32.name} is "
                          f"{facts.precision}")
    if len(patches) == 0:
        raise ConfigError("the calibration set is empty")
    scope = float_scope(onnx_model, settings.quantize_image_convs, settings.keep_float)
    model = ov.Core().read_model(str(fp32.path))
    step = settings.batch_size
    dataset = nncf.Dataset([graph_input(patches[i:i + step], facts.input_kind)
                            for i in range(0, len(patches), step)])
    watch = Stopwatch()
    quantized = _run_nncf(nncf, model, dataset, len(patches), settings, scope)
    quantization = _quantization_facts(settings, scope, fake_quantize_summary(quantized),
                                       (nncf.__version__, ov.get_version()))
    quantization.update(calibration_inputs=int(len(patches)), seconds=watch.seconds(1))
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
    ov = require("openvino", "OpenVINO IRs")
    out = Path(out)
    if out.suffix != ".xml":
        raise ConfigError(f"an OpenVINO IR is an .xml file, got {out.name}")
    if out.is_dir():
        raise ArtifactError("output path is a folder", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.xml")
    try:
        with write_errors(out):  # a full disk is a one-line error, not OpenVINO's iostream exception
            ov.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".bin").unlink(missing_ok=True)
    return out


def write_openvino_int8(fp32: Artifact, patches: np.ndarray, out: str | Path, calibration_set: CalibrationSetRef,
                        settings: NncfSettings = NncfSettings()) -> tuple[Artifact, dict]:
    """Quantize, save the IR atomically and its sidecar (without a gate); returns the IR written and the
    quantization facts as NNCF's run reported them."""
    quantized, facts, quantization = quantize_nncf(fp32, patches, settings)
    recorded = Quantization.from_dict(quantization)
    int8_facts = facts.derived("int8", fp32.sha256, Quantization(recorded.flavour, recorded.method, recorded.kept_float,
                                                                 calibration_set, recorded.details))
    path = save_ir(quantized, out)
    return write_ir_sidecar(path, int8_facts, calibration_set), quantization


class OpenVINOTarget:
    """`gedge calibrate --target openvino`: the NNCF INT8 IR (``<stem>.int8.ov.xml`` + ``.bin``), gated on
    OpenVINO's CPU plugin, with the residuals-in-float check on the saved IR."""

    target = "openvino"
    gate_note = "NNCF INT8 IR run on OpenVINO CPU (float parts in f32)"

    def __init__(self, out: Path, inputs: TargetInputs) -> None:
        require_nncf()
        self.out = out
        self.inputs = inputs
        self.written: Artifact | None = None
        self.quantization: dict = {}  # what NNCF's run reported
        self.residuals: list[str] = []

    def write(self, tmp: Path, keep_float: tuple[str, ...] = ()) -> Artifact:
        """The IR at ``tmp``; ``keep_float``: further convolutions to leave in float (the fallback's)."""
        inputs = self.inputs
        settings = NncfSettings(quantize_image_convs=inputs.quantize_image_convs, keep_float=tuple(keep_float))
        self.written, self.quantization = write_openvino_int8(inputs.fp32, inputs.calibration.patches, tmp,
                                                              inputs.calibration_set, settings)
        return self.written

    def inspect(self, tmp: Path) -> ArtifactChecks:
        _, ov = require_nncf()
        self.residuals = float_residuals(ov.Core().read_model(str(tmp)))
        done = self.quantization
        return ArtifactChecks(dict(done["quantized_nodes"]), list(done["float_convolutions"]),
                              float_residuals=self.residuals, quantization=done)

    def publish(self, tmp: Path, gate: dict[str, Any]) -> None:
        """The judged IR saved again with the gate's verdict in its rt_info (so hashed with it), and its sidecar."""
        _, ov = require_nncf()
        model = ov.Core().read_model(str(tmp))
        model.set_rt_info(canonical_gate(GateRecord.from_dict(gate)), list(IR_GATE_PATH))
        save_ir(model, self.out)
        write_ir_sidecar(self.out, self.written.model_facts(), self.inputs.calibration_set, GateRecord.from_dict(gate),
                         {"float_residuals_check": self.residuals or "ok"})

    def discard(self, tmp: Path) -> None:
        for leftover in (tmp, tmp.with_suffix(".bin"), sidecar_path(tmp)):
            leftover.unlink(missing_ok=True)

"""INT8 Q/DQ graphs from the fused FP32 graph, in two flavours, with ONNX Runtime's QDQ quantizer.

* ``tensorrt`` (``scorer.int8.qdq.onnx``): what TensorRT's Q/DQ rules ask for. int8 activations and weights,
  symmetric (zero point 0), weights per output channel (axis 0 for Conv, axis 1 for ConvTranspose, whose
  weight is ``(in, out, kh, kw)``), bias left in float (with an int32 bias TensorRT's parser rejects the
  graph). Q/DQ sits on the inputs of every Conv and ConvTranspose only, NVIDIA's recommended placement:
  TensorRT fuses the following bias, activation and the next layer's quantisation itself.
* ``cpu`` (``scorer.int8.cpu.onnx``): the layout ONNX Runtime runs fastest on x86: uint8 activations with a
  zero point, int8 per-channel weights, Conv only (ONNX Runtime's CPU provider runs ConvTranspose in float
  inside a Q/DQ graph anyway), Q/DQ on Conv inputs and outputs so that each ``DQ -> Conv -> Q`` becomes a
  ``QLinearConv`` and each ``DQ -> LeakyRelu -> Q`` a ``QLinearLeakyRelu``.

In both, everything else stays in float: the camera input conversion, Tanh, the residuals
``x - G(x)`` and ``f(x) - f(G(x))``, Abs/Pow/Sqrt, the reductions and the score normalisation. ONNX Runtime's
quantizer routes *every* consumer of a quantized tensor through its DequantizeLinear; :func:`float_side_branches`
reconnects the float consumers (the residual arithmetic, Concat, Slice) to the float tensor, so quantisation
error enters only through the convolutions.

The ranges come from :mod:`gedge.calibrate.ranges` (one calibration for both flavours and the TensorRT
cache). Outputs, their names and the input are those of the FP32 graph; the facts say ``int8`` with the
flavour, the calibration method and the calibration set's sha256.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime
from gedge.calibrate.ranges import QUANTIZED_OPS, CalibrationRanges, known_bounds
from gedge.core.artifacts.facts import Quantization
from gedge.core.artifacts.graph import graph_facts, serialize, write_facts
from gedge.core.artifacts.records import CalibrationSetRef
from gedge.core.errors import ConfigError
from onnx import TensorProto, numpy_helper
from onnxruntime.quantization import QuantType
from onnxruntime.quantization.calibrate import CalibrationMethod, TensorsData
from onnxruntime.quantization.qdq_quantizer import QDQQuantizer


@dataclass(frozen=True)
class Flavour:
    name: str
    activations: str  # "int8" (symmetric) or "uint8" (with zero point)
    op_types: tuple[str, ...]
    quantize_outputs: bool  # Q/DQ on the quantized nodes' outputs too
    suffix: str  # file name after the FP32 graph's stem
    description: str
    weights: str = "int8"  # "int8" (symmetric) or "uint8"
    reduce_range: bool = False  # 7-bit weights


FLAVOURS: dict[str, Flavour] = {
    "tensorrt": Flavour("tensorrt", "int8", ("Conv", "ConvTranspose"), False, ".int8.qdq.onnx",
                        "TensorRT: int8 symmetric activations and weights (zero point 0), per-channel weights "
                        "(ConvTranspose on axis 1), float bias; Q/DQ on the inputs of every Conv and ConvTranspose"),
    "cpu": Flavour("cpu", "uint8", ("Conv",), True, ".int8.cpu.onnx",
                   "ONNX Runtime CPU: uint8 activations, int8 per-channel weights, Conv only (ConvTranspose in "
                   "float); Q/DQ on Conv inputs and outputs (QLinearConv)"),
}
# Element-wise activations that may stay between a quantized Conv output and the next Q (CPU flavour).
PASS_THROUGH = frozenset({"LeakyRelu", "Relu"})


def flavour(name: str) -> Flavour:
    if name not in FLAVOURS:
        raise ConfigError(f"target must be one of {', '.join(FLAVOURS)}, got {name!r}")
    return FLAVOURS[name]


# --- graph surgery ----------------------------------------------------------------------------------------


def float_side_branches(model: onnx.ModelProto, spec: Flavour) -> int:
    """Reconnect consumers of a DequantizeLinear that are not quantized nodes to the float tensor; returns how
    many inputs were reconnected. Kept on the DQ: the flavour's quantized ops, and (with quantized outputs)
    element-wise activations right after a quantized node, which ONNX Runtime runs in the integer domain."""
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    float_of: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "DequantizeLinear":
            q = producers.get(node.input[0])
            if q is not None and q.op_type == "QuantizeLinear" and q.input[0] not in initializers:
                float_of[node.output[0]] = q.input[0]
    moved = 0
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") or node.op_type in spec.op_types:
            continue
        for i, name in enumerate(node.input):
            source = float_of.get(name)
            if source is None:
                continue
            producer = producers.get(source)
            if (spec.quantize_outputs and node.op_type in PASS_THROUGH and producer is not None
                    and producer.op_type in spec.op_types):
                continue
            node.input[i] = source
            moved += 1
    return moved


def topological_sort(model: onnx.ModelProto) -> None:
    """Order nodes so each comes after the producers of its inputs (the quantizer appends Q/DQ at the end);
    otherwise stable: a node is placed as soon as its inputs exist, in the original order."""
    graph = model.graph
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        progress = False
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
                progress = True
            else:
                rest.append(node)
        if not progress:
            raise ValueError(f"graph has a cycle or a missing input at {rest[0].name!r}")
        pending = rest
    copies = [onnx.NodeProto() for _ in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def drop_dead_nodes(model: onnx.ModelProto) -> int:
    """Remove nodes none of whose outputs is used, and unused initializers; returns the number of nodes removed."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    removed = 0
    while True:
        used = outputs | {name for node in graph.node for name in node.input}
        dead = [node for node in graph.node if not any(o in used for o in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
        removed += len(dead)
    used = {name for node in graph.node for name in node.input}
    for init in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(init)
    return removed


# --- quantization -----------------------------------------------------------------------------------------


def tensors_data(ranges: CalibrationRanges, spec: Flavour):
    """ONNX Runtime's TensorsData: symmetric ``[-amax, amax]`` for int8, clipped ``[min, max]`` for uint8."""
    data = {}
    for name, r in ranges.tensors.items():
        lo, hi = (-r.amax, r.amax) if spec.activations == "int8" else r.asymmetric()
        data[name] = (np.array(lo, dtype=np.float32), np.array(hi, dtype=np.float32))
    return TensorsData(CalibrationMethod.MinMax, data)


def image_convolutions(model: onnx.ModelProto) -> list[str]:
    """Convolutions that read an image (the camera input, G's Tanh output or their concatenation): the first
    layer of each network, cheap (3 input channels) and the most sensitive to 8-bit inputs."""
    bounded = known_bounds(model)
    return [n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS and n.input[0] in bounded]


@dataclass(frozen=True)
class QuantizeSettings:
    """What a Q/DQ graph records about its origin, and which convolutions stay in float."""

    source_sha256: str | None = None  # of the FP32 graph file (default: of the model's deterministic serialisation)
    calibration_set: CalibrationSetRef | None = None  # the calibration set the ranges were chosen on
    quantize_image_convs: bool = False  # also quantize the convolutions that read an image
    exclude: tuple[str, ...] = ()  # further nodes to keep in float (the accuracy-aware fallback's)


def quantize_graph(fp32: onnx.ModelProto, ranges: CalibrationRanges, target: str | Flavour,
                   settings: QuantizeSettings = QuantizeSettings()) -> onnx.ModelProto:
    """The INT8 Q/DQ graph of an FP32 scorer graph for ``target`` (``tensorrt`` or ``cpu``), checked, with facts."""
    spec = target if isinstance(target, Flavour) else flavour(target)
    facts = graph_facts(fp32)
    if facts.precision != "fp32":
        raise ConfigError(f"INT8 quantization needs the FP32 graph; this one is {facts.precision}")
    exclude = list(settings.exclude) + ([] if settings.quantize_image_convs else image_convolutions(fp32))
    model = onnx.ModelProto()
    model.CopyFrom(fp32)
    extra = {
        "ActivationSymmetric": spec.activations == "int8",
        "WeightSymmetric": True,
        "QuantizeBias": False,
        "OpTypesToExcludeOutputQuantization": [] if spec.quantize_outputs else list(spec.op_types),
    }
    activation = QuantType.QInt8 if spec.activations == "int8" else QuantType.QUInt8
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs advice about pre-processing
    try:
        weights = QuantType.QInt8 if spec.weights == "int8" else QuantType.QUInt8
        quantizer = QDQQuantizer(model, True, spec.reduce_range, weights, activation, tensors_data(ranges, spec),
                                 None, exclude, list(spec.op_types), extra)
        quantizer.quantize_model()
    finally:
        logging.getLogger().setLevel(quiet)
    out = quantizer.model.model
    float_side_branches(out, spec)
    drop_dead_nodes(out)
    topological_sort(out)
    del out.graph.value_info[:]  # re-derived below: the quantizer renames tensors
    out = onnx.shape_inference.infer_shapes(out, check_type=True, strict_mode=True, data_prop=True)
    onnx.checker.check_model(out, full_check=True)
    source_sha = settings.source_sha256 or hashlib.sha256(serialize(fp32)).hexdigest()
    summary = inspect_qdq(out)
    details = {
        "description": spec.description,
        "activations": "int8 symmetric" if spec.activations == "int8" else "uint8 asymmetric",
        "weights": "int8 symmetric, per output channel", "bias": "float",
        "quantized_nodes": summary.quantized_counts(), "float_convolutions": summary.float_convolutions,
        "calibrated_tensors": len(ranges.tensors), "calibration_inputs": ranges.n_inputs,
        **({"percentile": ranges.percentile} if ranges.method == "percentile" else {}),
        "onnxruntime_version": onnxruntime.__version__,
    }
    quantization = Quantization(spec.name, ranges.method, tuple(settings.exclude), settings.calibration_set, details)
    write_facts(out, facts.derived("int8", source_sha, quantization))
    return out


# --- inspection -------------------------------------------------------------------------------------------


@dataclass
class QuantizedNode:
    name: str
    op_type: str
    input_quantized: bool
    input_type: str  # element type of the quantized input ("int8"/"uint8"), "" when float
    input_zero_point: int | None
    weight_type: str
    weight_axis: int | None  # None: per-tensor
    weight_channels: int  # scales in the weight's DequantizeLinear
    weight_zero_points_zero: bool
    bias_float: bool
    output_quantized: bool


@dataclass
class QdqSummary:
    nodes: list[QuantizedNode]
    float_convolutions: list[str]  # Conv/ConvTranspose without Q/DQ

    def quantized_counts(self) -> dict[str, int]:
        return dict(Counter(n.op_type for n in self.nodes))


_ELEM = {TensorProto.INT8: "int8", TensorProto.UINT8: "uint8", TensorProto.INT32: "int32", TensorProto.FLOAT: "float"}


def inspect_qdq(model: onnx.ModelProto) -> QdqSummary:
    """How each Conv/ConvTranspose of a Q/DQ graph is quantized (types, zero points, weight axis, bias)."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def dq_of(name: str) -> onnx.NodeProto | None:
        node = producers.get(name)
        return node if node is not None and node.op_type == "DequantizeLinear" else None

    def zero_point(dq: onnx.NodeProto) -> np.ndarray | None:
        return numpy_helper.to_array(inits[dq.input[2]]) if len(dq.input) > 2 and dq.input[2] in inits else None

    nodes, floats = [], []
    for node in graph.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        act, weight = dq_of(node.input[0]), dq_of(node.input[1])
        if act is None and weight is None:
            floats.append(node.name)
            continue
        act_type, act_zp = "", None
        if act is not None:
            zp = zero_point(act)
            act_type = _ELEM.get(inits[act.input[2]].data_type, "?") if zp is not None else "int8"
            act_zp = int(zp.ravel()[0]) if zp is not None else 0
        w_type, axis, channels, zp_zero = "float", None, 0, True
        if weight is not None:
            stored = inits.get(weight.input[0])
            w_type = _ELEM.get(stored.data_type, "?") if stored is not None else "?"
            scales = numpy_helper.to_array(inits[weight.input[1]])
            channels = int(scales.size)
            axis = next((a.i for a in weight.attribute if a.name == "axis"), 1) if scales.size > 1 else None
            zp = zero_point(weight)
            zp_zero = zp is None or not zp.any()
        bias = inits.get(node.input[2]) if len(node.input) > 2 else None
        bias_float = len(node.input) < 3 or (bias is not None and bias.data_type == TensorProto.FLOAT)
        output_q = any(c.op_type == "QuantizeLinear" for c in consumers.get(node.output[0], []))
        nodes.append(QuantizedNode(node.name, node.op_type, act is not None, act_type, act_zp, w_type, axis, channels,
                                   zp_zero, bias_float, output_q))
    return QdqSummary(nodes, floats)

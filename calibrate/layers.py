"""The convolutions of a scorer graph, their multiply-adds, and which of them a target quantizes.

A *layer* here is one Conv or ConvTranspose node of the fused FP32 graph, named as the graph names it
(``netg.decoder.main.3/ConvTranspose``): the quantizers (ONNX Runtime's for the Q/DQ flavours, NNCF for the
OpenVINO IR) take these names to keep a layer in float, and the sensitivity analysis and the accuracy-aware
fallback (:mod:`gedge.calibrate.fallback`) report by them. Multiply-adds are per network input (batch 1), from
ONNX shape inference: ``H_out * W_out * |weight|`` for a Conv, ``H_in * W_in * |weight|`` for a ConvTranspose
(each input pixel meets every weight once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from gedge.calibrate.quantize import FLAVOURS, image_convolutions
from gedge.core.artifacts.graph import layer_group

CONV_TYPES = ("Conv", "ConvTranspose")


@dataclass(frozen=True)
class Layer:
    name: str  # the ONNX node name
    op_type: str  # Conv or ConvTranspose
    macs: int  # multiply-adds per network input

    @property
    def network(self) -> str:
        """The sub-network the layer belongs to (``netg.encoder1``, ``netg.decoder``, ``netd``, ...)."""
        return layer_group(self.name)


def _spatial_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for value in (*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else 0 for d in dims]
    return shapes


def conv_layers(model: onnx.ModelProto) -> list[Layer]:
    """Every Conv/ConvTranspose of the graph, in graph order, with its multiply-adds per network input."""
    shapes = _spatial_shapes(model)
    weights = {t.name: tuple(t.dims) for t in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        if node.op_type not in CONV_TYPES:
            continue
        weight = weights.get(node.input[1], ())
        feature = node.output[0] if node.op_type == "Conv" else node.input[0]
        spatial = shapes.get(feature, [])[2:]
        macs = int(np.prod(spatial, dtype=np.int64) * np.prod(weight, dtype=np.int64)) if spatial and weight else 0
        layers.append(Layer(node.name, node.op_type, macs))
    return layers


def latent_convolutions(model: onnx.ModelProto) -> list[str]:
    """Conv nodes whose output map is 1 x 1 (the encoders' latent layers)."""
    shapes = _spatial_shapes(model)
    return [node.name for node in model.graph.node if node.op_type == "Conv"
            and (spatial := shapes.get(node.output[0], [])[2:]) and all(d == 1 for d in spatial)]


def default_float(model: onnx.ModelProto, target: str, quantize_image_convs: bool = False) -> list[str]:
    """The convolutions a target leaves in float by design (before any fallback): the image convolutions
    (unless ``quantize_image_convs``), and for OpenVINO the latent convolutions its CPU plugin runs wrongly in
    int8 (see :mod:`gedge.calibrate.nncf_int8`)."""
    names = [] if quantize_image_convs else image_convolutions(model)
    if target == "openvino":
        names += [n for n in latent_convolutions(model) if n not in names]
    return names


def quantized_layers(model: onnx.ModelProto, target: str, quantize_image_convs: bool = False) -> list[Layer]:
    """The layers ``target`` quantizes by default: its op types, less the ones it leaves in float by design."""
    op_types = CONV_TYPES if target == "openvino" else FLAVOURS[target].op_types
    left = set(default_float(model, target, quantize_image_convs))
    return [layer for layer in conv_layers(model) if layer.op_type in op_types and layer.name not in left]


def int8_share(layers: list[Layer], total_macs: int, kept_float: list[str] | tuple[str, ...] = ()) -> float:
    """The share of ``total_macs`` that runs in INT8 when ``layers`` are quantized, less those in ``kept_float``."""
    int8 = sum(layer.macs for layer in layers if layer.name not in kept_float)
    return int8 / total_macs if total_macs else 0.0


def int8_mac_share(model: onnx.ModelProto, int8_layers: list[Layer] | list[str]) -> float:
    """The share of all convolution multiply-adds that run in INT8 when ``int8_layers`` are quantized."""
    names = {layer if isinstance(layer, str) else layer.name for layer in int8_layers}
    layers = conv_layers(model)
    return int8_share([layer for layer in layers if layer.name in names], sum(layer.macs for layer in layers))

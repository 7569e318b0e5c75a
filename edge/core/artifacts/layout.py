"""What a build plan needs to know of an ONNX graph's structure (:class:`GraphLayout`), read once with the graph."""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import TensorProto


@dataclass(frozen=True)
class GraphLayout:
    """What a build plan needs of a graph's structure: its input, its Q/DQ nodes, its convolutions."""

    input_name: str
    input_shape: tuple[int, ...]  # without the batch dimension; 0 where a dimension is not fixed
    qdq: bool = False  # has QuantizeLinear/DequantizeLinear nodes
    qdq_uint8: bool = False  # some of them are uint8 (the CPU flavour, which TensorRT does not take)
    layers: tuple[tuple[str, str, bool], ...] = ()  # each Conv/ConvTranspose: (name, op type, Q/DQ-fed)


def _uint8_quantize(node: onnx.NodeProto, inits: dict[str, int]) -> bool:
    """A QuantizeLinear to uint8 (no zero point: uint8 by the ONNX default)."""
    for attribute in node.attribute:
        if attribute.name == "output_dtype" and attribute.i:
            return attribute.i == TensorProto.UINT8
    return len(node.input) < 3 or not node.input[2] or inits.get(node.input[2]) == TensorProto.UINT8


def graph_layout(model: onnx.ModelProto) -> GraphLayout:
    """The layout of a graph (its first non-initializer input, Q/DQ nodes and convolutions)."""
    graph = model.graph
    inits = {t.name: t.data_type for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    name = inputs[0].name if inputs else ""
    dims = inputs[0].type.tensor_type.shape.dim[1:] if inputs else []
    quantize = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    dequantized = {out for n in graph.node if n.op_type == "DequantizeLinear" for out in n.output}
    layers = tuple((n.name, n.op_type, any(i in dequantized for i in n.input[:2])) for n in graph.node
                   if n.op_type in ("Conv", "ConvTranspose"))
    return GraphLayout(name, tuple(int(d.dim_value) for d in dims), bool(quantize or dequantized),
                       any(_uint8_quantize(n, inits) for n in quantize), layers)

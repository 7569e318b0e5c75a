"""FP16 graphs on FP32 runtimes: FP16 storage with FP32 arithmetic, as TensorRT's FP16 kernels compute."""

from __future__ import annotations

import numpy as np
import onnx
from gedge.core.artifacts.graph import tensor_types
from onnx import TensorProto, helper, numpy_helper

FLOAT = TensorProto.FLOAT
HALF = TensorProto.FLOAT16


def rounding_emulation(model: onnx.ModelProto) -> onnx.ModelProto:
    """FP32 math with FP16 storage: a graph that computes what an FP16 engine computes, on any FP32 runtime.

    ONNX Runtime's CPU provider has no FP16 Conv/ConvTranspose kernels on x86. Given an FP16 graph it runs
    those nodes in FP32 and removes the FP16 round trips between them as "precision free", so activations
    are never rounded to FP16 and only the weight rounding is seen. This copy makes every FP16 node an FP32
    node whose FP16 inputs are cast up and whose outputs are cast back down to FP16 (and up again for the
    next node), which is FP16 storage with FP32 accumulation, the way TensorRT's FP16 kernels work.
    """
    types = tensor_types(model)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    for init in graph.initializer:
        if init.data_type == HALF:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name))
    inits = {t.name for t in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type == "Cast" or not any(types.get(n) == HALF for n in node.output):
            nodes.append(node)
            continue
        for i, name in enumerate(node.input):
            if types.get(name) == HALF and name not in inits:
                up = f"{node.name}/emul_in{i}:0"
                nodes.append(helper.make_node("Cast", [name], [up], name=f"{node.name}/emul_in{i}", to=FLOAT))
                node.input[i] = up
        finals = list(node.output)
        node.output[:] = [f"{o}:math32" for o in finals]
        nodes.append(node)
        nodes += [helper.make_node("Cast", [f"{o}:math32"], [o], name=f"{node.name}/emul_out{i}", to=HALF)
                  for i, o in enumerate(finals)]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    return onnx.shape_inference.infer_shapes(out, strict_mode=True)

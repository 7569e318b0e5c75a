"""The FP16 graph for strongly typed TensorRT (11.x, TensorRT-RTX): FP16 convolutions, FP32 islands.

Strongly typed TensorRT runs each layer in the type the graph gives it, so the graph itself says what is
FP16. Here the generator and discriminator (Conv, ConvTranspose, their activations, Tanh, and the Concat
that batches x and G(x) into one discriminator pass) are FP16; the camera front end (uint8 -> float,
normalisation), every residual subtraction, Abs/Pow/Sqrt, the reductions, the score normalisation and all
outputs stay FP32. Explicit Cast nodes sit on each edge where the type changes, one per tensor.

Why a small pass of our own: onnxconverter-common's ``convert_float_to_float16`` with a node block list
(1.16) does not keep islands. It wraps every blocked node in its own Cast pair, so values travel in FP16
*between* blocked nodes (the feature residual ``f(x) - f(G(x))`` was stored in FP16 before its Abs and
ReduceMean), and with the score normalisation blocked it wrote a Sub of float16 and float32 that fails
``onnx.checker``. The pass below changes types only at island borders.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.graph import graph_facts, serialize, tensor_types, write_facts, write_graph
from gedge.core.errors import ConfigError
from onnx import TensorProto, helper, numpy_helper

FP16_OPS = frozenset({"Conv", "ConvTranspose", "LeakyRelu", "Relu", "Tanh", "Concat"})


FLOAT = TensorProto.FLOAT
HALF = TensorProto.FLOAT16


def _retype_value_info(source: onnx.ModelProto, graph: onnx.GraphProto, produced_half: set[str],
                       to_half: dict[str, str], to_float: dict[str, str]) -> None:
    """Keep the FP32 graph's (symbolic) shapes: same shapes, FP16 where the tensor now is, and the Casts'."""
    known = {v.name: v for v in [*source.graph.input, *source.graph.value_info]}

    def typed(name: str, like: str, elem: int) -> onnx.ValueInfoProto | None:
        if like not in known:
            return None
        info = onnx.ValueInfoProto()
        info.CopyFrom(known[like])
        info.name = name
        info.type.tensor_type.elem_type = elem
        return info

    infos = [typed(v.name, v.name, HALF if v.name in produced_half else v.type.tensor_type.elem_type)
             for v in source.graph.value_info]
    infos += [typed(dst, src, HALF) for src, dst in to_half.items()]
    infos += [typed(dst, src, FLOAT) for src, dst in to_float.items()]
    del graph.value_info[:]
    graph.value_info.extend(i for i in infos if i is not None)


def convert_to_fp16(model: onnx.ModelProto, fp16_ops: frozenset[str] = FP16_OPS,
                    source_sha256: str | None = None) -> onnx.ModelProto:
    """An FP16 copy of an FP32 scorer graph, islands as described above; metadata says ``fp16``.

    ``source_sha256``: of the FP32 graph file (default: of the model's deterministic serialisation, which is
    what `gedge export` writes).
    """
    facts = graph_facts(model)
    if facts.precision != "fp32":
        raise ConfigError(f"FP16 conversion needs an FP32 graph; this one is {facts.precision}")
    source_sha = source_sha256 or hashlib.sha256(serialize(model)).hexdigest()
    types = tensor_types(model)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    half_nodes = [n for n in graph.node if n.op_type in fp16_ops]
    half_names = {id(n) for n in half_nodes}
    inits = {t.name: t for t in graph.initializer}

    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    produced_half = {o: None for n in half_nodes for o in n.output}  # a dict keeps node order: stable output

    # Initializers read only by FP16 nodes become FP16 (weights, biases); shared ones would need a copy.
    half_inits: set[str] = set()
    for name, init in inits.items():
        users = consumers.get(name, [])
        if init.data_type == FLOAT and users and all(id(u) in half_names for u in users):
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), name))
            half_inits.add(name)

    def is_float(name: str) -> bool:
        return types.get(name) == FLOAT

    to_half: dict[str, str] = {}  # FP32 tensor -> its FP16 copy, for FP16 consumers
    to_float: dict[str, str] = {}  # FP16 tensor -> its FP32 copy, for FP32 consumers and graph outputs
    graph_outputs = {o.name for o in graph.output}
    for node in half_nodes:
        for name in node.input:
            if name and name not in produced_half and is_float(name) and name not in inits:
                to_half.setdefault(name, f"{name}:fp16")
    for name in produced_half:
        if not is_float(name):
            continue
        if name in graph_outputs:
            raise ValueError(f"graph output {name!r} is computed by an FP16 op; outputs must stay FP32")
        if name in graph_outputs or any(id(c) not in half_names for c in consumers.get(name, [])):
            to_float[name] = f"{name}:fp32"

    def cast(source: str, target: str, to: int) -> onnx.NodeProto:
        label = "fp16" if to == HALF else "fp32"
        return helper.make_node("Cast", [source], [target], name=f"{source.split(':')[0]}/Cast_{label}", to=to)

    nodes: list[onnx.NodeProto] = []
    graph_inputs = [i.name for i in graph.input]
    nodes += [cast(name, to_half[name], HALF) for name in graph_inputs if name in to_half]
    for node in graph.node:
        if id(node) in half_names:
            node.input[:] = [to_half.get(n, n) for n in node.input]
        else:
            node.input[:] = [to_float.get(n, n) for n in node.input]
        nodes.append(node)
        for name in node.output:
            if name in to_half:
                nodes.append(cast(name, to_half[name], HALF))
            if name in to_float:
                nodes.append(cast(name, to_float[name], FLOAT))
    del graph.node[:]
    graph.node.extend(nodes)
    _retype_value_info(model, graph, set(produced_half) | half_inits, to_half, to_float)
    out = onnx.shape_inference.infer_shapes(out, check_type=True, strict_mode=True, data_prop=True)
    onnx.checker.check_model(out, full_check=True)
    write_facts(out, facts.derived("fp16", source_sha))
    return out


def write_fp16_graph(fp32: Artifact, out: str | Path) -> Artifact:
    """The FP16 graph of an FP32 scorer graph written by `gedge export` (as gedge read it), written with its sidecar;
    its lineage records the FP32 graph's sha256. Returns the written graph."""
    if fp32.onnx_model is None:
        raise ConfigError(f"{fp32.name}: FP16 conversion needs an ONNX graph")
    return write_graph(out, convert_to_fp16(fp32.onnx_model, source_sha256=fp32.sha256))


def node_precisions(model: onnx.ModelProto) -> dict[str, str]:
    """The float type each node computes in (``float16``/``float32``), from its first float input or output."""
    types = tensor_types(model)
    names = {FLOAT: "float32", HALF: "float16"}
    result = {}
    for node in model.graph.node:
        if node.op_type == "Cast":
            continue
        for name in [*node.input, *node.output]:
            if types.get(name) in names:
                result[node.name] = names[types[name]]
                break
    return result

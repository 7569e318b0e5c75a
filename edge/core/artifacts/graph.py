"""An ONNX scorer graph: its facts in the ONNX ``metadata_props``, its layout, and reading and writing the file.

Keys are ``gedge.<field>`` of :meth:`ModelFacts.to_dict`; string fields are stored as they are, everything else
as JSON. The sidecar (``scorer.onnx.json``, :mod:`gedge.core.artifacts.sidecar`) holds the same facts plus the
graph file's sha256, so a deployment can tell a graph from its neighbour without opening either.

:func:`read_graph` is the graph kind's reader of :func:`gedge.core.artifacts.open`: the file is read once, hashed
from the bytes read, parsed from the same bytes, checked against its sidecar and its recorded gate read; a threshold
refitted for it (:mod:`gedge.core.artifacts.threshold`) replaces the recorded one. Its precision is read from its
nodes too (:func:`graph_contents`: quantizing nodes make it INT8), and an INT8 graph's gate from its own metadata
(``gedge.gate``, written by :func:`write_graph` before the bytes are hashed): the sidecar's copy must equal it.
:func:`write_graph` is every writer's: the bytes are serialised once, hashed, written atomically with the sidecar,
and the written graph comes back as an :class:`~gedge.core.artifacts.artifact.Artifact`. No torch here: devices
read these facts too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
from gedge.core.artifacts.artifact import Artifact
from gedge.core.artifacts.facts import FACT_KEYS, FORMAT, ModelFacts
from gedge.core.artifacts.layout import graph_layout
from gedge.core.artifacts.records import CalibrationSetRef, GateRecord, read_file, sha256_bytes, write_record
from gedge.core.artifacts.refit import with_threshold_file
from gedge.core.artifacts.sidecar import GraphSidecar, read_sidecar, sidecar_path
from gedge.core.artifacts.verdicts import Contents, canonical_gate, graph_verification, sha_mismatch
from gedge.core.atomic import write_bytes
from gedge.core.errors import ArtifactError, first_line

PREFIX = "gedge."
GATE_KEY = f"{PREFIX}gate"  # the accuracy gate's verdict and limits, written into an INT8 graph before it is hashed
# Nodes that make a graph INT8 whatever its metadata says (QDQ and QOperator formats, dynamic quantization).
QUANTIZER_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv",
                           "QLinearMatMul", "ConvInteger", "MatMulInteger"})


_STRING_FIELDS = {"gedge_version", "precision", "input", "input_name", "source_checkpoint", "source_sha256",
                  "derived_from_sha256", "format"}


def write_facts(model: onnx.ModelProto, facts: ModelFacts) -> None:
    """Replace the model's gedge metadata with ``facts`` (other metadata is kept)."""
    kept = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    values = {f"{PREFIX}{k}": v if k in _STRING_FIELDS else json.dumps(v, sort_keys=True, default=str)
              for k, v in facts.to_dict().items()}
    # Flat copies of the two facts people look for first (read back from `decision`, not from these).
    values[f"{PREFIX}primary_score"] = facts.primary
    values[f"{PREFIX}threshold"] = repr(facts.threshold)
    del model.metadata_props[:]
    for key, value in [*kept, *sorted(values.items())]:
        model.metadata_props.add(key=key, value=value)


def graph_facts(model: onnx.ModelProto, path: str | Path | None = None) -> ModelFacts:
    """The gedge facts in a graph's metadata; ArtifactError when it has none or they do not parse."""
    props = {p.key[len(PREFIX):]: p.value for p in model.metadata_props if p.key.startswith(PREFIX)}
    if props.get("format") != FORMAT:
        raise ArtifactError("not a gedge scorer graph (no gedge metadata; export one with `gedge export`)", path)
    values: dict[str, Any] = {}
    try:
        for key, value in props.items():
            if key in FACT_KEYS:
                values[key] = value if key in _STRING_FIELDS else json.loads(value)
    except ValueError as exc:
        raise ArtifactError(f"gedge metadata does not parse: {exc}", path) from None
    return ModelFacts.from_dict(values, path)


def parse_graph(data: bytes, path: str | Path | None = None) -> onnx.ModelProto:
    """An ONNX graph from its bytes, with one-line errors for truncated or foreign files."""
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ArtifactError(f"not a readable ONNX file (truncated or corrupt?): {first_line(exc)}", path) from None
    if not model.graph.node or not model.graph.output:
        raise ArtifactError("not a readable ONNX file (no nodes or outputs; truncated?)", path)
    return model


def load_graph(path: str | Path) -> onnx.ModelProto:
    """An ONNX file as a ModelProto, for a tool working on a graph it wrote itself (the graphs a command is given are
    read by :func:`gedge.core.artifacts.open`)."""
    return parse_graph(read_file(path, "ONNX file"), path)


def serialize(model: onnx.ModelProto) -> bytes:
    """A graph's bytes as gedge writes them (deterministic, so the same graph always has the same sha256)."""
    return model.SerializeToString(deterministic=True)


def graph_contents(model: onnx.ModelProto, path: str | Path | None = None) -> Contents:
    """What a graph says about itself: INT8 when any node quantizes, and the gate written into its metadata."""
    int8 = any(node.op_type in QUANTIZER_OPS for node in model.graph.node)
    embedded = next((p.value for p in model.metadata_props if p.key == GATE_KEY), None)
    if embedded is None:
        return Contents(int8)
    try:
        gate = json.loads(embedded)
    except ValueError as exc:
        raise ArtifactError(f"{GATE_KEY} metadata does not parse: {exc}", path) from None
    return Contents(int8, GateRecord.from_dict(gate))


def with_gate(model: onnx.ModelProto, gate: GateRecord) -> onnx.ModelProto:
    """A copy of ``model`` carrying the gate's verdict and limits in its own metadata (replacing any earlier one)."""
    gated = onnx.ModelProto()
    gated.CopyFrom(model)
    kept = [(p.key, p.value) for p in gated.metadata_props if p.key != GATE_KEY]
    del gated.metadata_props[:]
    for key, value in [*kept, (GATE_KEY, canonical_gate(gate))]:
        gated.metadata_props.add(key=key, value=value)
    return gated


def graph_artifact(path: Path, model: onnx.ModelProto, sha256: str, sidecar: GraphSidecar | None,
                   facts: ModelFacts | None = None) -> Artifact:
    """The Artifact of a graph whose bytes were read (or written) and hashed, with its sidecar (if any) matched;
    ``facts``: its metadata's facts where the caller decoded them already."""
    facts = facts or graph_facts(model, path)
    gate = sidecar.gate if sidecar is not None else None
    verification = graph_verification(path, facts.precision, gate, sidecar is not None, graph_contents(model, path))
    return Artifact(path, "graph", sha256, facts, verification, sidecar=sidecar,
                    facts_file=sidecar_path(path) if sidecar is not None else None, onnx_model=model,
                    layout=graph_layout(model))


def read_graph(path: str | Path) -> Artifact:
    """An ONNX scorer graph, read once: its facts from its metadata, its sha256 checked against its sidecar (where it
    has one; an error on a mismatch), its recorded gate read (not enforced here), a threshold refitted for it
    (``<graph>.threshold.json``) applied."""
    path = Path(path)
    data = read_file(path, "ONNX file")
    sha256 = sha256_bytes(data)
    side = sidecar_path(path)
    sidecar = read_sidecar(side, "sidecar") if side.is_file() else None
    if sidecar is not None and sidecar.graph_sha256 != sha256:
        raise sha_mismatch("graph does not match its sidecar", path, "export or calibrate it again")
    return with_threshold_file(graph_artifact(path, parse_graph(data, path), sha256, sidecar))


def write_graph(out: str | Path, model: onnx.ModelProto, gate: GateRecord | None = None,
                calibration_set: CalibrationSetRef | None = None) -> Artifact:
    """Write a graph (atomically) and its sidecar: the facts of its metadata, the sha256 of the bytes written, and
    an INT8 graph's gate and calibration set; the written graph as an Artifact. The gate is written into the graph's
    own metadata too, before it is hashed, so that editing the sidecar cannot change the verdict."""
    out = Path(out)
    if out.is_dir():
        raise ArtifactError("output is a folder; give a file name such as scorer.onnx", out)
    if gate is not None:
        model = with_gate(model, gate)
    data = serialize(model)
    sha256 = sha256_bytes(data)
    record = GraphSidecar(out.name, sha256, graph_facts(model, out), gate, calibration_set)
    write_bytes(out, data)
    write_record(sidecar_path(out), "graph", record.to_dict())
    return graph_artifact(out, model, sha256, record, record.facts)


def tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every typed tensor in the (shape-inferred) graph."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    types = {}
    for info in [*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info]:
        types[info.name] = info.type.tensor_type.elem_type
    for init in inferred.graph.initializer:
        types[init.name] = init.data_type
    return types


def layer_group(node_name: str) -> str:
    """The sub-network a node of a scorer graph belongs to, from its name (``netg.decoder.main.3/ConvTranspose``
    -> ``netg.decoder``, ``netd.features.2/Conv`` -> ``netd``): how build plans and the INT8 layer reports group
    layers."""
    head = node_name.split("/")[0].split(".")
    return ".".join(head[:2]) if head[0] == "netg" else head[0]

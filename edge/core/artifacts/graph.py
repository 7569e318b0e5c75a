"""The facts every exported graph carries: in its ONNX ``metadata_props`` and in a sidecar JSON next to it.

Keys are ``gedge.<field>``; string fields are stored as they are, everything else as JSON. The sidecar
(``scorer.onnx.json``) holds the same facts plus the graph file's sha256, so a deployment can tell a graph
from its neighbour without opening either. No torch here: devices read these facts too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import onnx
from gedge.core.artifacts.threshold import refitted_decision
from gedge.core.atomic import write_json
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError
from gedge.core.hashing import sha256_file
from gedge.core.inputs import InputSpec
from gedge.core.preprocess import Preprocess

FORMAT = "gedge-scorer"


FORMAT_VERSION = 2  # 2: the decision rule is "decision" (was "calibration" / "score_calibration")


PREFIX = "gedge."


PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class GraphFacts:
    """What a scorer graph is: where it came from, what it takes and how its scores are read."""

    gedge_version: str
    precision: str
    input: str  # "uint8-nhwc" or "float-nchw"
    input_name: str
    outputs: list[str]
    model: dict[str, Any]
    preprocess: dict[str, Any]
    decision: dict[str, Any]
    score_stats: dict[str, Any]
    source_checkpoint: str
    source_sha256: str
    training: dict[str, Any] = field(default_factory=dict)
    derived_from_sha256: str = ""  # an FP16/INT8 graph: sha256 of the FP32 graph it was made from
    # An INT8 graph: flavour (tensorrt/cpu), decision method, decision set sha256 and size (`gedge calibrate`)
    quantization: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def primary(self) -> str:
        return str(self.decision.get("primary", ""))

    @property
    def threshold(self) -> float:
        return float(self.decision.get("threshold", float("nan")))

    @property
    def with_amap(self) -> bool:
        return "amap" in self.outputs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def preprocess_config(self) -> Preprocess:
        return Preprocess.from_dict(self.preprocess)

    def decision_rule(self) -> DecisionRule:
        return DecisionRule.from_dict(self.decision)

    def input_spec(self) -> InputSpec:
        return InputSpec(size=int(self.model["isize"]), channels=int(self.model["nc"]))


_STRING_FIELDS = {f.name for f in fields(GraphFacts) if f.type == "str"}


def write_facts(model: onnx.ModelProto, facts: GraphFacts) -> None:
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


def read_facts(model: onnx.ModelProto, path: str | Path | None = None) -> GraphFacts:
    """The gedge facts of a graph; ArtifactError when it has none or they do not parse. Given the graph's ``path``,
    a threshold refitted for it (``<graph>.threshold.json``, :mod:`gedge.core.artifacts.threshold`) replaces the
    recorded one."""
    props = {p.key[len(PREFIX):]: p.value for p in model.metadata_props if p.key.startswith(PREFIX)}
    if props.get("format") != FORMAT:
        raise ArtifactError("not a gedge scorer graph (no gedge metadata; export one with `gedge export`)", path)
    values: dict[str, Any] = {}
    try:
        for f in fields(GraphFacts):
            if f.name not in props:
                continue
            values[f.name] = props[f.name] if f.name in _STRING_FIELDS else json.loads(props[f.name])
        facts = GraphFacts(**values)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"gedge metadata does not parse: {exc}", path) from None
    if facts.format_version != FORMAT_VERSION:
        raise ArtifactError(f"graph format version {facts.format_version}; this gedge reads {FORMAT_VERSION}", path)
    if path is not None and Path(path).is_file():
        facts.decision = refitted_decision(path, facts.decision)
    return facts


def with_precision(facts: GraphFacts, precision: str, derived_from_sha256: str) -> GraphFacts:
    if precision not in PRECISIONS:
        raise ValueError(precision)
    return replace(facts, precision=precision, derived_from_sha256=derived_from_sha256)


def load_graph(path: str | Path, load_weights: bool = True) -> onnx.ModelProto:
    """Read an ONNX file with one-line errors for missing, empty, truncated or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError("ONNX file does not exist", path)
    if path.stat().st_size == 0:
        raise ArtifactError("ONNX file is empty", path)
    try:
        model = onnx.load(str(path), load_external_data=load_weights)
    except Exception as exc:  # protobuf DecodeError and friends
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else exc.__class__.__name__
        raise ArtifactError(f"not a readable ONNX file (truncated or corrupt?): {reason}", path) from None
    if not model.graph.node or not model.graph.output:
        raise ArtifactError("not a readable ONNX file (no nodes or outputs; truncated?)", path)
    return model


def sidecar_path(graph: str | Path) -> Path:
    graph = Path(graph)
    return graph.with_name(graph.name + ".json")


def write_sidecar(graph: str | Path, facts: GraphFacts) -> Path:
    graph = Path(graph)
    payload = {"graph": graph.name, "graph_sha256": sha256_file(graph), **facts.to_dict()}
    return write_json(sidecar_path(graph), payload)


def read_sidecar(graph: str | Path, verify: bool = True) -> dict[str, Any]:
    """The sidecar of a graph; with ``verify`` the graph's sha256 must match the one recorded."""
    path = sidecar_path(graph)
    if not path.is_file():
        raise ArtifactError("sidecar does not exist (the graph was not written by `gedge export`?)", path)
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"sidecar does not parse: {exc}", path) from None
    if not isinstance(payload, dict):
        raise ArtifactError("sidecar is not a JSON object", path)
    if verify and payload.get("graph_sha256") != sha256_file(graph):
        raise ArtifactError("graph does not match its sidecar (sha256 differs: replaced, modified or only partly "
                            "published?); export or calibrate it again", graph)
    return payload


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

"""The OpenVINO IR sidecar (``<ir>.xml.json``): the graph facts of the IR plus the sha256 of its .xml and .bin.

``gedge calibrate --target openvino`` writes it; the OpenVINO backend reads it (an IR has no metadata of its own
that gedge writes).
"""

from __future__ import annotations

import json
from pathlib import Path

from gedge.core.artifacts.graph import GraphFacts, load_graph, read_facts
from gedge.core.atomic import write_json
from gedge.core.errors import ArtifactError
from gedge.core.hashing import sha256_file

IR_SUFFIX = ".xml"


def ir_sidecar_path(xml: str | Path) -> Path:
    xml = Path(xml)
    return xml.with_name(xml.name + ".json")


def read_ir_facts(xml: str | Path):
    """The gedge facts of a saved IR, from its sidecar (``<ir>.xml.json``)."""
    side = ir_sidecar_path(xml)
    if not side.is_file():
        raise ArtifactError("OpenVINO IR has no sidecar (written by `gedge calibrate --target openvino`?)", side)
    try:
        payload = json.loads(side.read_text())
        names = set(GraphFacts.__dataclass_fields__)
        facts = GraphFacts(**{k: v for k, v in payload.items() if k in names})
    except (OSError, ValueError, TypeError) as exc:
        raise ArtifactError(f"IR sidecar does not parse: {exc}", side) from None
    return facts


def read_model_facts(path: str | Path):
    """Facts of an ONNX graph (its metadata) or an IR (its sidecar)."""
    path = Path(path)
    if path.suffix.lower() == IR_SUFFIX:
        if not path.is_file() or not path.with_suffix(".bin").is_file():
            raise ArtifactError("OpenVINO IR (.xml and its .bin) does not exist", path)
        return read_ir_facts(path)
    return read_facts(load_graph(path, load_weights=False), path)


def write_ir_sidecar(out: Path, facts, extra: dict) -> Path:
    payload = {"graph": out.name, "graph_sha256": sha256_file(out), "weights": out.with_suffix(".bin").name,
               "weights_sha256": sha256_file(out.with_suffix(".bin")), **facts.to_dict(), **extra}
    return write_json(ir_sidecar_path(out), payload)

"""TODO: docstring (split from gedge.runtime.openvino_backend, gedge.calibrate.nncf_int8)."""

from __future__ import annotations

import json
from pathlib import Path

from gedge.core.atomic import write_json
from gedge.core.errors import ArtifactError
from gedge.core.hashing import sha256_file

IR_SUFFIX = ".xml"


def ir_sidecar_path(xml: str | Path) -> Path:
    xml = Path(xml)
    return xml.with_name(xml.name + ".json")


def read_ir_facts(xml: str | Path):
    """The gedge facts of a saved IR, from its sidecar (``<ir>.xml.json``)."""
    from gedge.core.artifacts.graph import GraphFacts

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
    from gedge.core.artifacts.graph import load_graph, read_facts

    return read_facts(load_graph(path, load_weights=False), path)


def write_ir_sidecar(out: Path, facts, extra: dict) -> Path:
    from gedge.core.artifacts.ir import ir_sidecar_path

    payload = {"graph": out.name, "graph_sha256": sha256_file(out), "weights": out.with_suffix(".bin").name,
               "weights_sha256": sha256_file(out.with_suffix(".bin")), **facts.to_dict(), **extra}
    return write_json(ir_sidecar_path(out), payload)

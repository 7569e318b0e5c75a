"""The OpenVINO IR sidecar (``<ir>.xml.json``): the graph facts of the IR plus the sha256 of its .xml and .bin, and
the accuracy gate's verdict.

``gedge calibrate --target openvino`` writes it; the OpenVINO backend reads it (an IR has no metadata of its own
that gedge writes). Reading verifies both hashes: the .bin, the .xml and the sidecar are published one after
another, so a set mixed by an interrupted publish (a new IR with an old threshold) is refused, with the advice to
calibrate again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gedge.core.artifacts.graph import GraphFacts, load_graph, read_facts
from gedge.core.artifacts.threshold import refitted_decision
from gedge.core.artifacts.verdicts import Verification, ir_verification, read_json, verify_ir_files
from gedge.core.atomic import write_json
from gedge.core.errors import ArtifactError
from gedge.core.hashing import sha256_file

IR_SUFFIX = ".xml"


def ir_sidecar_path(xml: str | Path) -> Path:
    xml = Path(xml)
    return xml.with_name(xml.name + ".json")


def read_ir_sidecar(xml: str | Path) -> dict[str, Any]:
    """The sidecar of a saved IR, with the sha256 of the .xml and the .bin checked against it."""
    xml = Path(xml)
    side = ir_sidecar_path(xml)
    if not side.is_file():
        raise ArtifactError("OpenVINO IR has no sidecar (written by `gedge calibrate --target openvino`?)", side)
    if not xml.is_file() or not xml.with_suffix(".bin").is_file():
        raise ArtifactError("OpenVINO IR (.xml and its .bin) does not exist", xml)
    payload = read_json(side, "IR sidecar")
    verify_ir_files(xml, payload)
    return payload


def _facts(payload: dict[str, Any], xml: str | Path) -> GraphFacts:
    """The IR's facts from its sidecar, with a threshold refitted for it where there is one."""
    try:
        names = set(GraphFacts.__dataclass_fields__)
        facts = GraphFacts(**{k: v for k, v in payload.items() if k in names})
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"IR sidecar does not parse: {exc}", ir_sidecar_path(xml)) from None
    facts.decision = refitted_decision(xml, facts.decision)
    return facts


def read_ir_facts(xml: str | Path) -> GraphFacts:
    """The gedge facts of a saved IR, from its sidecar (``<ir>.xml.json``), its hashes verified."""
    return _facts(read_ir_sidecar(xml), xml)


def read_ir(xml: str | Path) -> tuple[GraphFacts, Verification]:
    """The IR's facts and its verification (hashes checked, the recorded gate read; not enforced here)."""
    payload = read_ir_sidecar(xml)
    return _facts(payload, xml), ir_verification(xml, payload)


def read_model_facts(path: str | Path):
    """Facts of an ONNX graph (its metadata) or an IR (its sidecar)."""
    path = Path(path)
    if path.suffix.lower() == IR_SUFFIX:
        return read_ir_facts(path)
    return read_facts(load_graph(path, load_weights=False), path)


def write_ir_sidecar(out: Path, facts, extra: dict) -> Path:
    payload = {"graph": out.name, "graph_sha256": sha256_file(out), "weights": out.with_suffix(".bin").name,
               "weights_sha256": sha256_file(out.with_suffix(".bin")), **facts.to_dict(), **extra}
    return write_json(ir_sidecar_path(out), payload)

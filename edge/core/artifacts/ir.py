"""An OpenVINO IR (``scorer.int8.ov.xml`` and its ``.bin``) and its sidecar (``<ir>.xml.json``): the IR kind's reader
of :func:`gedge.core.artifacts.open`, and the sidecar's writer.

``gedge calibrate --target openvino`` writes it; its facts are the sidecar's, with the sha256 of its .xml and .bin and
the accuracy gate's verdict. What the sidecar cannot change is read from the .xml itself: FakeQuantize layers make it
INT8, and the gate's verdict and limits are written into its ``rt_info`` (``<gedge><gate value=...>``, set with
:data:`IR_GATE_PATH`) before it is hashed, so a sidecar whose gate differs is refused. Reading verifies both hashes:
the .bin, the .xml and the sidecar are published one after another, so a set mixed by an interrupted publish (a new
IR with an old threshold) is refused, with the advice to calibrate again.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from gedge.core.artifacts.artifact import Artifact
from gedge.core.artifacts.facts import ModelFacts
from gedge.core.artifacts.records import CalibrationSetRef, GateRecord, read_file, sha256_bytes, write_record
from gedge.core.artifacts.refit import with_threshold_file
from gedge.core.artifacts.sidecar import GraphSidecar, read_sidecar, sidecar_path
from gedge.core.artifacts.verdicts import Contents, ir_verification, sha_mismatch
from gedge.core.errors import ArtifactError

IR_SUFFIX = ".xml"
IR_GATE_PATH = ("gedge", "gate")  # where in the IR's rt_info the gate's verdict is written (OpenVINO's set_rt_info)


def ir_contents(data: bytes, xml: str | Path) -> Contents:
    """What an IR's .xml says about itself: INT8 when it has FakeQuantize layers, and the gate in its rt_info."""
    try:
        net = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise ArtifactError(f"OpenVINO IR does not parse as XML: {exc}", xml) from None
    int8 = any(layer.get("type") == "FakeQuantize" for layer in net.iter("layer"))
    node = net.find("rt_info/" + "/".join(IR_GATE_PATH))
    if node is None or node.get("value") is None:
        return Contents(int8, marks="FakeQuantize layers")
    try:
        gate = json.loads(node.get("value", ""))
    except ValueError as exc:
        raise ArtifactError(f"the gate in the IR's rt_info does not parse: {exc}", xml) from None
    return Contents(int8, GateRecord.from_dict(gate), "FakeQuantize layers")


def read_ir(xml: str | Path) -> Artifact:
    """An OpenVINO IR, its .xml and .bin checked against the sha256s its sidecar records (an error on a mismatch),
    its recorded gate read (not enforced here), a threshold refitted for it (``<ir>.xml.threshold.json``) applied."""
    xml = Path(xml)
    side = sidecar_path(xml)
    weights = xml.with_suffix(".bin")
    if not side.is_file():
        raise ArtifactError("OpenVINO IR has no sidecar (written by `gedge calibrate --target openvino`?)", side)
    if not xml.is_file() or not weights.is_file():
        raise ArtifactError("OpenVINO IR (.xml and its .bin) does not exist", xml)
    sidecar = read_sidecar(side, "IR sidecar")
    data = read_file(xml, "OpenVINO IR")
    sha256 = sha256_bytes(data)
    if sidecar.graph_sha256 != sha256 or sidecar.weights_sha256 != sha256_bytes(read_file(weights, "IR weights")):
        raise sha_mismatch("OpenVINO IR (.xml and .bin) does not match its sidecar", xml,
                           "calibrate it again (`gedge calibrate --target openvino`)")
    verification = ir_verification(xml, sidecar.facts.precision, sidecar.gate, ir_contents(data, xml))
    return with_threshold_file(Artifact(xml, "ir", sha256, sidecar.facts, verification, sidecar=sidecar,
                                        facts_file=side, extra_files=(weights,)))


def write_ir_sidecar(xml: Path, facts: ModelFacts, calibration_set: CalibrationSetRef | None = None,
                     gate: GateRecord | None = None, extra: dict | None = None) -> Artifact:
    """The sidecar of an IR whose .xml and .bin OpenVINO wrote: their sha256s, the facts, the calibration set and the
    gate's verdict (and further facts, ``extra``); the IR comes back as the Artifact a reader would make of it."""
    weights = xml.with_suffix(".bin")
    data = read_file(xml, "OpenVINO IR")
    record = GraphSidecar(xml.name, sha256_bytes(data), facts, gate, calibration_set,
                          weights=weights.name, weights_sha256=sha256_bytes(read_file(weights, "IR weights")),
                          extra=extra or {})
    side = write_record(sidecar_path(xml), "ir", record.to_dict())
    verification = ir_verification(xml, facts.precision, gate, ir_contents(data, xml))
    return Artifact(xml, "ir", record.graph_sha256, facts, verification, sidecar=record, facts_file=side,
                    extra_files=(weights,))

"""An OpenVINO IR (``scorer.int8.ov.xml`` and its ``.bin``) and its sidecar (``<ir>.xml.json``): the IR kind's reader
of :func:`gedge.core.artifacts.open`, and the sidecar's writer.

``gedge calibrate --target openvino`` writes it; an IR has no metadata of its own that gedge writes, so its facts are
the sidecar's, with the sha256 of its .xml and .bin and the accuracy gate's verdict. Reading verifies both hashes:
the .bin, the .xml and the sidecar are published one after another, so a set mixed by an interrupted publish (a new
IR with an old threshold) is refused, with the advice to calibrate again.
"""

from __future__ import annotations

from pathlib import Path

from gedge.core.artifacts.artifact import Artifact
from gedge.core.artifacts.facts import ModelFacts
from gedge.core.artifacts.records import CalibrationSetRef, GateRecord, read_file, sha256_bytes, write_record
from gedge.core.artifacts.refit import with_threshold_file
from gedge.core.artifacts.sidecar import GraphSidecar, read_sidecar, sidecar_path
from gedge.core.artifacts.verdicts import ir_verification, sha_mismatch
from gedge.core.errors import ArtifactError

IR_SUFFIX = ".xml"


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
    sha256 = sha256_bytes(read_file(xml, "OpenVINO IR"))
    if sidecar.graph_sha256 != sha256 or sidecar.weights_sha256 != sha256_bytes(read_file(weights, "IR weights")):
        raise sha_mismatch("OpenVINO IR (.xml and .bin) does not match its sidecar", xml,
                           "calibrate it again (`gedge calibrate --target openvino`)")
    verification = ir_verification(xml, sidecar.facts.precision, sidecar.gate)
    return with_threshold_file(Artifact(xml, "ir", sha256, sidecar.facts, verification, sidecar=sidecar,
                                        facts_file=side, extra_files=(weights,)))


def write_ir_sidecar(xml: Path, facts: ModelFacts, calibration_set: CalibrationSetRef | None = None,
                     gate: GateRecord | None = None, extra: dict | None = None) -> Artifact:
    """The sidecar of an IR whose .xml and .bin OpenVINO wrote: their sha256s, the facts, the calibration set and the
    gate's verdict (and further facts, ``extra``); the IR comes back as the Artifact a reader would make of it."""
    weights = xml.with_suffix(".bin")
    record = GraphSidecar(xml.name, sha256_bytes(read_file(xml, "OpenVINO IR")), facts, gate, calibration_set,
                          weights=weights.name, weights_sha256=sha256_bytes(read_file(weights, "IR weights")),
                          extra=extra or {})
    side = write_record(sidecar_path(xml), "ir", record.to_dict())
    return Artifact(xml, "ir", record.graph_sha256, facts, ir_verification(xml, facts.precision, gate),
                    sidecar=record, facts_file=side, extra_files=(weights,))

"""Small records several artifacts share, and the one way their JSON files are read.

* :func:`read_json`: a JSON object from a sidecar or manifest, with one-line errors naming the file;
* :func:`write_record`: every sidecar and manifest gedge writes, atomically, checked against its schema
  (``docs/schemas``) where ``GEDGE_VALIDATE_ARTIFACTS`` is set (the test suite sets it);
* :func:`read_file`: an artifact's bytes, with one-line errors for a missing or empty file;
* :class:`GateRecord`: the verdict of the INT8 accuracy gate an artifact records (``gate`` in its sidecar);
* :class:`CalibrationSetRef`: which calibration set an INT8 artifact was made from (its sha256, size, file, seed).

No heavy imports: a device reads these before it loads any library.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gedge.core.atomic import write_json
from gedge.core.errors import ArtifactError
from gedge.core.schemas import validate_artifact_json

VALIDATE_ENV = "GEDGE_VALIDATE_ARTIFACTS"  # set: every record written is checked against its schema (needs jsonschema)


def check_format(values: Any, form: tuple[str, int], not_one: str, kind: str, where: str | Path | None) -> None:
    """``values`` is a record of format ``form`` (name, version) that this gedge reads: an ArtifactError naming
    ``where`` says ``not_one`` when it is some other JSON, and which version it is when only the version differs."""
    if not isinstance(values, dict) or values.get("format") != form[0]:
        raise ArtifactError(not_one, where)
    if values.get("format_version") != form[1]:
        raise ArtifactError(f"{kind} format version {values.get('format_version')}; this gedge reads {form[1]}", where)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_file(path: str | Path, what: str) -> bytes:
    """The bytes of an artifact file: ArtifactError when it does not exist, is a folder, is empty or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{what} does not exist", path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{what} is unreadable ({exc.__class__.__name__})", path) from None
    if not data:
        raise ArtifactError(f"{what} is empty", path)
    return data


def read_json(path: str | Path, what: str) -> dict[str, Any]:
    """A JSON object (a sidecar or a manifest); ArtifactError naming ``path`` when it is missing or does not parse."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{what} does not exist", path) from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{what} does not parse: {exc}", path) from None
    if not isinstance(payload, dict):
        raise ArtifactError(f"{what} is not a JSON object", path)
    return payload


def write_record(path: str | Path, kind: str, payload: dict[str, Any]) -> Path:
    """Write a sidecar or manifest (``kind``: a schema of :data:`gedge.core.schemas.SCHEMA_FILES`) atomically; with
    ``GEDGE_VALIDATE_ARTIFACTS`` set, an ArtifactError naming the field instead when it does not match its schema."""
    if os.environ.get(VALIDATE_ENV):  # the JSON as it is written (tuples become lists)
        validate_artifact_json(kind, json.loads(json.dumps(payload, default=str)), path)
    return write_json(path, payload)


def strings(values: Any) -> tuple[str, ...]:
    """A recorded list of strings (absent or null: none)."""
    return tuple(str(v) for v in values or ())


@dataclass(frozen=True)
class GateRecord:
    """The accuracy gate's verdict an INT8 artifact records: passed or not, the failures, and the rest of what the
    gate wrote (its measures, the precision per layer, TensorRT's parse), kept as it was written."""

    passed: bool | None  # None: no verdict recorded (or not a boolean)
    failures: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, value: Any) -> GateRecord:
        if not isinstance(value, dict):
            return cls(None)
        passed = value.get("passed")
        details = {k: v for k, v in value.items() if k not in ("passed", "failures")}
        return cls(passed if isinstance(passed, bool) else None, strings(value.get("failures")), details)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, **self.details, "failures": list(self.failures)}


@dataclass(frozen=True)
class CalibrationSetRef:
    """The calibration set an INT8 artifact was made from, as the artifact records it."""

    sha256: str
    patches: int = 0
    file: str = ""
    seed: int = 0

    @classmethod
    def from_dict(cls, value: Any) -> CalibrationSetRef | None:
        if not isinstance(value, dict) or not value.get("sha256"):
            return None
        return cls(str(value["sha256"]), int(value.get("patches") or 0), str(value.get("file") or ""),
                   int(value.get("seed") or 0))

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "patches": self.patches, "file": self.file, "seed": self.seed}

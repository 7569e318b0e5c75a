"""The published contract of gedge's artifact JSON: ``docs/schemas/*.schema.json`` (JSON Schema, draft-07).

The schemas live in the repository's ``docs/schemas`` (the C++ firmware runtime compiles the engine schema in
and validates against it too), found from this file as ``parents[2] / "docs" / "schemas"``: that works in a
source checkout and an editable install. A wheel does not carry ``docs/``; shipping the schemas in one would
need them as package data. ``jsonschema`` is a dev dependency, imported when a document is validated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.optional import require

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"
SCHEMA_FILES = {
    "engine": "engine-manifest.schema.json",  # scorer.<precision>.engine.json
    "graph": "graph-sidecar.schema.json",  # <graph>.onnx.json
    "ir": "ir-sidecar.schema.json",  # <ir>.xml.json
    "calibration": "calibration-cache.schema.json",  # <cache>.json
    "calibration-set": "calibration-set.schema.json",  # calibration.npz.json
    "threshold": "threshold.schema.json",  # <graph or IR>.threshold.json
}


def load_schema(kind: str) -> dict[str, Any]:
    if kind not in SCHEMA_FILES:
        raise ConfigError(f"artifact kind must be one of {', '.join(SCHEMA_FILES)}, got {kind!r}")
    path = SCHEMA_DIR / SCHEMA_FILES[kind]
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"schema cannot be read ({exc.__class__.__name__}: {exc})", path) from None


def validate_artifact_json(kind: str, payload: dict[str, Any], path: str | Path | None = None) -> None:
    """Check an engine manifest (``kind="engine"``), a graph, IR or calibration cache sidecar (``"graph"``, ``"ir"``,
    ``"calibration"``), a calibration set's facts (``"calibration-set"``) or a refitted threshold (``"threshold"``)
    against its schema; ArtifactError naming the first offending field otherwise."""
    jsonschema = require("jsonschema", "validating artifacts against their schemas")
    schema = load_schema(kind)
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        shown = "; ".join(f"{'/'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}"
                          for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ArtifactError(f"does not match {SCHEMA_FILES[kind]}: {shown}{more}", path)

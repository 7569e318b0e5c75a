"""One rule for an engine's manifest, the same in Python and in the C++ firmware: the manifests in
tests/fixtures/manifests, with the outcome each must have (expected.json), read by gedge.core.artifacts here and by
the firmware's unit tests (edge/firmware/tests/test_manifest.cpp, `bash edge/firmware/check.sh`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gedge.core.artifacts.engine import manifest_verification
from gedge.core.artifacts.manifest import EngineManifest
from gedge.core.artifacts.verdicts import RefusedArtifact, enforce
from gedge.core.schemas import validate_artifact_json

FIXTURES = Path(__file__).parent / "fixtures" / "manifests"
CASES = json.loads((FIXTURES / "expected.json").read_text())["cases"]


def test_every_fixture_is_in_the_table():
    assert sorted(p.name for p in FIXTURES.glob("*.json") if p.name != "expected.json") == sorted(CASES)
    assert {case["outcome"] for case in CASES.values()} == {"accept", "warn", "refuse"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_python_reader_follows_the_table(name):
    values = json.loads((FIXTURES / name).read_text())
    validate_artifact_json("engine", values, FIXTURES / name)  # each fixture is a manifest the schema accepts
    expected = CASES[name]
    verification = manifest_verification(EngineManifest.from_dict(values, FIXTURES / name), "a.engine", "fixture")
    if expected["outcome"] == "refuse":
        with pytest.raises(RefusedArtifact, match=expected["reason"]):
            enforce(verification)
        return
    enforce(verification)
    if expected["outcome"] == "accept":
        assert verification.status == "verified" and not verification.warnings, verification.line()
    else:
        assert verification.status == "warning", verification.line()
        assert any(expected["reason"] in why for why in verification.warnings), verification.warnings

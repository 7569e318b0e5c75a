"""The JSON Schemas of gedge's artifacts (docs/schemas): valid schemas, and they accept and refuse what they should."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")

from gedge.core.errors import ArtifactError, ConfigError  # noqa: E402
from gedge.core.schemas import SCHEMA_DIR, SCHEMA_FILES, load_schema, validate_artifact_json  # noqa: E402

EXAMPLES = SCHEMA_DIR / "examples"
EXAMPLE_FILES = {"engine": "engine-manifest.example.json", "graph": "graph-sidecar.example.json",
                 "ir": "ir-sidecar.example.json", "calibration": "calibration-cache.example.json",
                 "calibration-set": "calibration-set.example.json", "threshold": "threshold.example.json"}


def example(kind: str) -> dict:
    return json.loads((EXAMPLES / EXAMPLE_FILES[kind]).read_text())


def minimal_manifest() -> dict:
    """The smallest engine manifest a runtime can work with."""
    return {
        "format": "gedge-engine",
        "format_version": 2,
        "engine_sha256": "0" * 64,
        "tensorrt": {"flavour": "tensorrt", "version": "10.3.0"},
        "target": {"kind": "gpu", "gpu_name": "Orin", "compute_capability": "SM87"},
        "precision": "fp16",
        "profile": {"input": "pixels", "min": [1, 32, 32, 3], "opt": [8, 32, 32, 3], "max": [32, 32, 32, 3]},
        "input": {"name": "pixels", "dtype": "uint8", "layout": "NHWC", "shape": [-1, 32, 32, 3]},
        "outputs": ["d1", "score"],
        "decision": {"primary": "d1", "mean": 0.0, "std": 1.0, "threshold": 3.0},
        "threshold": 3.0,
        "parity": {"engine": {"status": "pending", "reason": "no GPU at build time"}},
    }


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_schemas_are_valid_schemas(kind):
    schema = load_schema(kind)
    # Written for draft-07 (what the C++ runtime's validator, valijson, reads) with keywords whose meaning is
    # the same in draft 2020-12, so both meta-schemas accept it.
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_examples_are_valid(kind):
    validate_artifact_json(kind, example(kind))


def test_minimal_manifest_is_valid_and_new_facts_are_allowed():
    manifest = minimal_manifest()
    validate_artifact_json("engine", manifest)
    manifest["a_fact_added_later"] = {"anything": [1, 2]}
    manifest["forced"] = ["gate failed: agreement 97.0 % < 98 %"]
    validate_artifact_json("engine", manifest)


@pytest.mark.parametrize("change, where", [
    (lambda m: m.pop("engine_sha256"), "engine_sha256"),
    (lambda m: m.update(precision="fp64"), "precision"),
    (lambda m: m.update(engine_sha256="ABC"), "engine_sha256"),
    (lambda m: m.update(format_version=1), "format_version"),
    (lambda m: m.pop("decision"), "decision"),
    (lambda m: m["decision"].pop("threshold"), "decision"),
    (lambda m: m.update(threshold="3.0"), "threshold"),
    (lambda m: m["parity"]["engine"].update(status="ok"), "parity/engine/status"),
    (lambda m: m["tensorrt"].update(flavour="onnxruntime"), "tensorrt/flavour"),
    (lambda m: m["target"].pop("compute_capability"), "target"),
    (lambda m: m["target"].update(compute_capability="8.7"), "target/compute_capability"),
    (lambda m: m.update(outputs=["d1"]), "outputs"),
    (lambda m: m["input"].update(dtype="int8"), "input/dtype"),
    (lambda m: m["profile"].update(max=[0, 32, 32, 3]), "profile/max/0"),
    (lambda m: m.update(forced="gate failed"), "forced"),
])
def test_invalid_manifests_name_the_field(change, where, tmp_path):
    manifest = minimal_manifest()
    change(manifest)
    with pytest.raises(ArtifactError) as info:
        validate_artifact_json("engine", manifest, tmp_path / "scorer.fp16.engine.json")
    message = str(info.value)
    assert message.startswith(str(tmp_path / "scorer.fp16.engine.json"))
    missing = f"'{where}' is a required property"
    assert f" {where}: " in message or (where in {"engine_sha256", "decision"} and missing in message)


def test_old_manifest_form_is_refused():
    manifest = minimal_manifest()
    manifest["format_version"] = 1
    manifest["score_calibration"] = manifest.pop("decision")
    with pytest.raises(ArtifactError, match="format_version"):
        validate_artifact_json("engine", manifest)


def test_graph_and_ir_sidecars_refuse_what_readers_cannot_use():
    graph = example("graph")
    validate_artifact_json("graph", graph)
    for change in (lambda g: g.pop("graph_sha256"), lambda g: g.update(calibration=g.pop("decision")),
                   lambda g: g["gate"].update(passed="yes"), lambda g: g.update(input="uint8-nchw"),
                   lambda g: g["model"].pop("isize")):
        broken = copy.deepcopy(graph)
        change(broken)
        with pytest.raises(ArtifactError):
            validate_artifact_json("graph", broken)
    ir = example("ir")
    del ir["weights_sha256"]
    with pytest.raises(ArtifactError, match="weights_sha256"):
        validate_artifact_json("ir", ir)
    with pytest.raises(ArtifactError, match="'weights' is a required property"):  # an ONNX sidecar is no IR's
        validate_artifact_json("ir", graph)


def test_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="engine, graph, ir, calibration, calibration-set"):
        validate_artifact_json("checkpoint", {})


def test_schemas_are_found_from_the_package():
    assert SCHEMA_DIR == Path(__file__).resolve().parents[1] / "docs" / "schemas"
    assert all((SCHEMA_DIR / name).is_file() for name in SCHEMA_FILES.values())


def test_every_record_gedge_writes_matches_its_schema(scorer_graphs, int8_graphs, tmp_path):
    """Each kind written by gedge's own writers (export, the FP16 pass, calibrate, an engine's manifest) read back
    and checked against its schema; the test suite also checks every record as it is written
    (GEDGE_VALIDATE_ARTIFACTS, tests/conftest.py), and a record that does not match is refused there."""
    from gedge.core.artifacts.engine import write_manifest
    from gedge.core.artifacts.records import write_record
    from test_tensorrt_backend import fake_manifest

    written = {"graph": [scorer_graphs["fp32"], scorer_graphs["fp16"], int8_graphs["tensorrt"], int8_graphs["cpu"]],
               "calibration": [int8_graphs["cache"]], "calibration-set": [int8_graphs["set"]]}
    for kind, paths in written.items():
        for path in paths:
            validate_artifact_json(kind, json.loads(path.with_name(path.name + ".json").read_text()), path)
    engine = tmp_path / "scorer.fp16.engine"
    manifest = write_manifest(engine, fake_manifest(b"FAKE engine"))
    validate_artifact_json("engine", json.loads(manifest.read_text()), manifest)
    broken = {**json.loads(manifest.read_text()), "precision": "fp64"}
    with pytest.raises(ArtifactError, match="precision"):  # what the suite's write-time check refuses
        write_record(tmp_path / "broken.engine.json", "engine", broken)
    assert not (tmp_path / "broken.engine.json").exists()


@pytest.mark.parametrize("kind", ["engine", "graph", "ir"])
def test_schemas_name_every_score(kind):
    """The schemas list the score names (the C++ runtime validates a manifest's primary score with them): a score
    added to gedge.core.scores.SCORE_NAMES goes into the schemas too, or every artifact naming it is refused."""
    from gedge.core.scores import SCORE_NAMES

    definitions = load_schema(kind)["definitions"]
    assert set(definitions["score_name"]["enum"]) == set(SCORE_NAMES)
    pattern = definitions["primary_name"]["pattern"]
    assert all(re.fullmatch(pattern, name) for name in SCORE_NAMES)
    assert re.fullmatch(pattern, "+".join(SCORE_NAMES)) and not re.fullmatch(pattern, "d9")

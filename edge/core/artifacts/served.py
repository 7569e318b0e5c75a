"""What a served scorer is, read from the artifact it serves, and the facts a client reads back from a server.

A Triton model repository (``gedge triton export``) and a gedge server (``gedge serve``) both serve an artifact
gedge wrote: an ONNX graph (facts in its metadata, hash in its sidecar), an OpenVINO IR (facts and hashes in
``<ir>.xml.json``) or a TensorRT engine (its manifest ``<engine>.json``). :func:`read_artifact_facts` reads
any of them into one :class:`ArtifactFacts`, verifying the recorded sha256 on the way, so that a tampered
artifact is never written into a repository nor served, and enforcing its recorded verdicts
(:mod:`gedge.core.artifacts.verdicts`): an artifact whose gate or parity failed is refused unless forced.

:func:`served_facts` is the JSON a server hands to its clients (the input contract, preprocessing, decision
rule and score statistics); :func:`parse_served_facts` is the client's side, with one-line errors naming the
server. No heavy imports here: both sides run without torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gedge.core.artifacts.engine import manifest_path, verify_engine
from gedge.core.artifacts.graph import load_graph, read_facts, read_sidecar, sidecar_path
from gedge.core.artifacts.ir import ir_sidecar_path, read_ir
from gedge.core.artifacts.verdicts import Verification, enforce, engine_verification, graph_verification
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.hashing import sha256_file

SERVED_FORMAT = "gedge-served"


SERVED_FORMAT_VERSION = 1


ARTIFACT_KINDS = {".onnx": "graph", ".xml": "ir", ".engine": "engine"}


@dataclass(frozen=True)
class ArtifactFacts:
    """One deployable artifact, as its metadata, sidecar or manifest describes it."""

    path: Path
    kind: str  # graph, ir or engine
    precision: str
    input_kind: str  # uint8-nhwc or float-nchw
    input_name: str
    size: int
    channels: int
    outputs: tuple[str, ...]
    preprocess: dict[str, Any]
    decision: dict[str, Any]
    score_stats: dict[str, Any]
    sha256: str
    facts_file: Path | None = None  # the sidecar or manifest that goes next to the model
    profile: dict[str, Any] = field(default_factory=dict)  # an engine's optimisation profile (min, opt, max)
    flavour: str = ""  # an INT8 artifact's flavour (tensorrt, cpu, openvino)
    extra_files: tuple[Path, ...] = ()  # an IR's weights (.bin)
    verification: Verification | None = None  # the hashes checked and the verdicts enforced when it was read

    @property
    def threshold(self) -> float:
        return float(self.decision.get("threshold", float("nan")))

    @property
    def primary(self) -> str:
        return str(self.decision.get("primary", ""))

    @property
    def with_amap(self) -> bool:
        return "amap" in self.outputs

    @property
    def max_batch(self) -> int | None:
        """The largest batch the artifact takes (an engine's profile), None where any batch runs."""
        shape = self.profile.get("max")
        return int(shape[0]) if shape else None

    @property
    def opt_batch(self) -> int | None:
        shape = self.profile.get("opt")
        return int(shape[0]) if shape else None


def artifact_kind(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in ARTIFACT_KINDS:
        raise ConfigError(f"{Path(path).name}: not a deployable artifact (expected an .onnx graph, an OpenVINO IR "
                          ".xml or a TensorRT .engine)")
    return ARTIFACT_KINDS[suffix]


def read_artifact_facts(path: str | Path, force: bool = False) -> ArtifactFacts:
    """The facts of a graph, IR or engine, with its recorded sha256 checked (ArtifactError on any mismatch) and its
    recorded verdicts enforced (RefusedArtifact on a failed one, unless ``force``)."""
    path = Path(path)
    kind = artifact_kind(path)
    if not path.is_file():
        raise ArtifactError("model file does not exist", path)
    if kind == "engine":
        return _engine_facts(path, force)
    if kind == "ir":
        return _ir_facts(path, force)
    return _graph_facts(path, force)


def _graph_facts(path: Path, force: bool) -> ArtifactFacts:
    facts = read_facts(load_graph(path, load_weights=False), path)
    verification = enforce(graph_verification(path, facts.precision), force)
    side = sidecar_path(path)
    sha = read_sidecar(path, verify=False)["graph_sha256"] if side.is_file() else sha256_file(path)
    return ArtifactFacts(path, "graph", facts.precision, facts.input, facts.input_name, int(facts.model["isize"]),
                         int(facts.model["nc"]), tuple(facts.outputs), facts.preprocess, facts.decision,
                         facts.score_stats, sha, side if side.is_file() else None,
                         flavour=str(facts.quantization.get("flavour", "")), verification=verification)


def _ir_facts(path: Path, force: bool) -> ArtifactFacts:
    facts, verification = read_ir(path)  # the .xml and .bin checked against the sidecar's sha256
    verification = enforce(verification, force)
    return ArtifactFacts(path, "ir", facts.precision, facts.input, facts.input_name, int(facts.model["isize"]),
                         int(facts.model["nc"]), tuple(facts.outputs), facts.preprocess, facts.decision,
                         facts.score_stats, sha256_file(path), ir_sidecar_path(path),
                         flavour=str(facts.quantization.get("flavour", "")), extra_files=(path.with_suffix(".bin"),),
                         verification=verification)


def _engine_facts(path: Path, force: bool) -> ArtifactFacts:
    manifest = verify_engine(path)  # the bytes must be the ones the manifest records
    verification = enforce(engine_verification(path, manifest, "sha256 matches the manifest"), force)
    try:
        spec = manifest["input_spec"]
        entry = manifest["input"]
        return ArtifactFacts(path, "engine", str(manifest["precision"]), str(entry["kind"]), str(entry["name"]),
                             int(spec["size"]), int(spec["channels"]), tuple(manifest["outputs"]),
                             manifest["preprocess"], manifest["decision"], manifest.get("score_stats") or {},
                             str(manifest["engine_sha256"]), manifest_path(path), manifest.get("profile") or {},
                             str((manifest.get("calibration_set") or {}).get("flavour", "")),
                             verification=verification)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"manifest lacks a fact a server needs ({exc})", manifest_path(path)) from None


def served_facts(facts: ArtifactFacts, model_name: str, max_batch: int, backend: str = "") -> dict[str, Any]:
    """The facts a server gives its clients: enough to tile, decide and report exactly as local inspection."""
    return {"format": SERVED_FORMAT, "format_version": SERVED_FORMAT_VERSION, "model": model_name,
            "artifact": facts.path.name, "artifact_kind": facts.kind, "sha256": facts.sha256,
            "precision": facts.precision, "flavour": facts.flavour, "backend": backend,
            "input": {"name": "pixels", "size": facts.size, "channels": facts.channels, "dtype": "uint8",
                      "layout": "NHWC"},
            "outputs": list(facts.outputs), "max_batch_size": max_batch, "preprocess": facts.preprocess,
            "decision": facts.decision, "threshold": facts.threshold, "primary_score": facts.primary,
            "score_stats": facts.score_stats, "verification": _verification_facts(facts.verification)}


def _verification_facts(verification: Verification | None) -> dict[str, Any] | None:
    """What a client learns of the served artifact's verification: its status, the line, the forced verdicts."""
    if verification is None:
        return None
    return {"status": verification.status, "line": verification.line(), "forced": list(verification.forced)}


REQUIRED_SERVED_KEYS = ("input", "outputs", "preprocess", "threshold", "primary_score", "precision", "max_batch_size")


def parse_served_facts(text: str, where: str) -> dict[str, Any]:
    """A server's facts (the JSON of :func:`served_facts`); ArtifactError naming ``where`` when they are not."""
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise ArtifactError(f"the served model's gedge facts do not parse: {exc}", where) from None
    if not isinstance(payload, dict) or payload.get("format") != SERVED_FORMAT:
        raise ArtifactError("not a gedge scorer (its facts are not gedge's; serve one with `gedge serve` or "
                            "`gedge triton export`)", where)
    if payload.get("format_version") != SERVED_FORMAT_VERSION:
        raise ArtifactError(f"served facts format version {payload.get('format_version')}; this gedge reads "
                            f"{SERVED_FORMAT_VERSION}", where)
    missing = [key for key in REQUIRED_SERVED_KEYS if key not in payload]
    if missing:
        raise ArtifactError(f"the served model's gedge facts lack {', '.join(missing)}", where)
    return payload


def to_dict(facts: ArtifactFacts) -> dict[str, Any]:
    values = asdict(facts)
    values["path"] = str(facts.path)
    return values

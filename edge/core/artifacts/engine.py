"""The manifest next to every engine: ``scorer.fp16.engine`` -> ``scorer.fp16.engine.json``.

An engine file says nothing about itself that a deployment can check without deserialising it on the right
GPU. The manifest does: the engine's sha256, the graph it was built from, the TensorRT flavour and version,
the target (the GPU name and compute capability, or the ahead-of-time targets of TensorRT-RTX), the
precision, the optimisation profile, the input and outputs, the score facts (statistics, primary score,
threshold), the INT8 calibration facts, the gedge version and the parity measured at build time.

:func:`verify_engine` is what loading an engine calls first: the bytes must match the recorded hash, and
the runtime's TensorRT (flavour and version) and GPU must be the ones the engine was built for; each
mismatch is an :class:`~gedge.errors.ArtifactError` of one line that says what differs and what to do.
No TensorRT import here: the check runs before any library is loaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gedge.core.atomic import write_json
from gedge.core.errors import ArtifactError

FORMAT = "gedge-engine"


FORMAT_VERSION = 2  # 2: the decision rule is "decision" (was "calibration" / "score_calibration")


def manifest_path(engine: str | Path) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def write_manifest(engine: str | Path, manifest: dict[str, Any]) -> Path:
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
    return write_json(manifest_path(engine), payload)


def read_manifest(engine: str | Path) -> dict[str, Any]:
    path = manifest_path(engine)
    if not path.is_file():
        raise ArtifactError(f"engine has no manifest ({path.name}); build engines with `gedge build`", engine)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"manifest does not parse: {exc}", path) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError("not a gedge engine manifest", path)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"manifest format version {manifest.get('format_version')}; this gedge reads "
                            f"{FORMAT_VERSION}", path)
    return manifest


@dataclass(frozen=True)
class RuntimeInfo:
    """The TensorRT and GPU an engine is about to be loaded with (what the runtime backend knows)."""

    flavour: str  # "tensorrt" or "tensorrt_rtx"
    version: str
    gpu_name: str = ""  # "" when not known (no check of the GPU name)
    compute_capability: str = ""  # e.g. "SM87"; "" when not known

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _sm(value: str) -> int:
    digits = "".join(ch for ch in value if ch.isdigit())
    return int(digits) if digits else -1


def _target_allows(target: dict[str, Any], runtime: RuntimeInfo) -> str:
    """"" when the engine's target covers the runtime's GPU, else what differs."""
    cc = runtime.compute_capability.upper()
    if target.get("kind") == "aot":  # TensorRT-RTX: built ahead of time for a set of compute capabilities
        listed = [c.upper() for c in target.get("compute_capabilities") or []]
        if listed:
            return "" if not cc or cc in listed else (f"the engine was built for {', '.join(listed)} but this GPU "
                                                      f"is {cc}")
        defaults = [c.upper() for c in target.get("default_targets") or []]
        newest = max((_sm(c) for c in defaults), default=-1)
        if not cc or cc in defaults or _sm(cc) >= newest:
            return ""
        return (f"the engine was built for TensorRT-RTX's default targets ({', '.join(defaults)} and later) but "
                f"this GPU is {cc}; rebuild with -c {cc}")
    built_cc = str(target.get("compute_capability", "")).upper()
    built_name = str(target.get("gpu_name", ""))
    if cc and built_cc and cc != built_cc:
        return f"the engine was built on {built_name or 'a GPU'} ({built_cc}) but this GPU is {runtime.gpu_name} ({cc})"
    if runtime.gpu_name and built_name and runtime.gpu_name != built_name:
        return f"the engine was built on {built_name} but this GPU is {runtime.gpu_name}"
    return ""


def verify_manifest(manifest: dict[str, Any], engine_bytes: bytes, runtime: RuntimeInfo | None,
                    engine: str | Path = "") -> None:
    """The checks of :func:`verify_engine` on bytes already read (so the bytes checked are the bytes loaded)."""
    if hashlib.sha256(engine_bytes).hexdigest() != manifest.get("engine_sha256"):
        raise ArtifactError("engine does not match its manifest (sha256 differs: replaced, modified or truncated?)",
                            engine)
    if runtime is None:
        return
    trt = manifest.get("tensorrt") or {}
    flavour, version = trt.get("flavour", ""), trt.get("version", "")
    rebuild = "rebuild it with `gedge build` on this machine"
    if flavour != runtime.flavour:
        raise ArtifactError(f"engine was built with {flavour} {version} but this runtime is {runtime.flavour} "
                            f"{runtime.version}; {rebuild}", engine)
    if version != runtime.version:
        raise ArtifactError(f"engine was built with {flavour} {version} but this runtime is {runtime.version} "
                            f"(engines load only on the TensorRT version that built them); {rebuild}", engine)
    problem = _target_allows(manifest.get("target") or {}, runtime)
    if problem:
        raise ArtifactError(f"{problem}; {rebuild}", engine)


def verify_engine(engine: str | Path, runtime: RuntimeInfo | None = None) -> dict[str, Any]:
    """Check an engine against its manifest (and, given ``runtime``, against the TensorRT and GPU that will
    load it); returns the manifest. ArtifactError, one line, on any mismatch."""
    engine = Path(engine)
    if not engine.is_file():
        raise ArtifactError("engine file does not exist", engine)
    manifest = read_manifest(engine)
    verify_manifest(manifest, engine.read_bytes(), runtime, engine)
    return manifest


def read_verified_engine(engine: str | Path, runtime: RuntimeInfo | None = None) -> tuple[bytes, dict[str, Any]]:
    """The engine's bytes and manifest, verified: what a runtime backend deserialises."""
    engine = Path(engine)
    if not engine.is_file():
        raise ArtifactError("engine file does not exist", engine)
    manifest = read_manifest(engine)
    data = engine.read_bytes()
    verify_manifest(manifest, data, runtime, engine)
    return data, manifest

"""A TensorRT engine and its manifest (``scorer.fp16.engine`` -> ``scorer.fp16.engine.json``,
:class:`~gedge.core.artifacts.manifest.EngineManifest`): the engine kind's reader of
:func:`gedge.core.artifacts.open`, the manifest's writer, and the check of the TensorRT and GPU an engine is loaded
with.

:func:`read_engine` reads the manifest and the engine's bytes once: the bytes must match the recorded sha256, and the
bytes that were checked are the bytes a runtime deserialises (they stay in the Artifact). :func:`check_runtime` is
what loading an engine calls first: the runtime's TensorRT (flavour and version) and GPU must be the ones the engine
was built for; each mismatch is an :class:`~gedge.core.errors.ArtifactError` of one line that says what differs and
what to do. No TensorRT import here: the checks run before any library is loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from gedge.core.artifacts.artifact import Artifact
from gedge.core.artifacts.manifest import EngineManifest, EngineTarget
from gedge.core.artifacts.records import read_file, read_json, sha256_bytes, write_record
from gedge.core.artifacts.verdicts import Verification, parity_verdicts
from gedge.core.errors import ArtifactError


def manifest_path(engine: str | Path) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def write_manifest(engine: str | Path, manifest: EngineManifest) -> Path:
    return write_record(manifest_path(engine), "engine", manifest.to_dict())


def manifest_verification(manifest: EngineManifest, engine: str | Path, checked: str) -> Verification:
    """What an engine's manifest means for using it: failed parity (of the engine, or of the graph it was built
    from) refuses it; parity not measured and verdicts forced at build time are warnings. The C++ firmware applies
    the same rule (``check_parity``); ``tests/fixtures/manifests`` holds the table both are tested on."""
    parity = {kind: (record.status, record.why) for kind, record in manifest.parity.items()}
    return parity_verdicts(parity, manifest.forced, engine, checked)


def engine_artifact(engine: str | Path, data: bytes, manifest: EngineManifest) -> Artifact:
    """The Artifact of an engine's bytes and manifest: the bytes must match the manifest's sha256; the recorded parity
    and forced verdicts are read (not enforced here). A fresh build makes one before anything is written."""
    engine = Path(engine)
    if sha256_bytes(data) != manifest.engine_sha256:
        raise ArtifactError("engine does not match its manifest (sha256 differs: replaced, modified or truncated?)",
                            engine)
    verification = manifest_verification(manifest, engine, "sha256 matches the manifest")
    return Artifact(engine, "engine", manifest.engine_sha256, manifest.model_facts(), verification,
                    manifest=manifest, facts_file=manifest_path(engine), data=data)


def read_engine(engine: str | Path) -> Artifact:
    """An engine and its manifest, read once: the bytes checked against the manifest's sha256 (an error on any
    mismatch); the TensorRT and GPU are checked where it is loaded (:func:`check_runtime`)."""
    engine = Path(engine)
    if not engine.is_file():
        raise ArtifactError("engine file does not exist", engine)
    path = manifest_path(engine)
    if not path.is_file():
        raise ArtifactError(f"engine has no manifest ({path.name}); build engines with `gedge build`", engine)
    manifest = EngineManifest.from_dict(read_json(path, "manifest"), path)
    return engine_artifact(engine, read_file(engine, "engine file"), manifest)


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


def _target_allows(target: EngineTarget, runtime: RuntimeInfo) -> str:
    """"" when the engine's target covers the runtime's GPU, else what differs."""
    cc = runtime.compute_capability.upper()
    if target.kind == "aot":  # TensorRT-RTX: built ahead of time for a set of compute capabilities
        listed = [c.upper() for c in target.compute_capabilities]
        if listed:
            return "" if not cc or cc in listed else (f"the engine was built for {', '.join(listed)} but this GPU "
                                                      f"is {cc}")
        defaults = [c.upper() for c in target.default_targets]
        newest = max((_sm(c) for c in defaults), default=-1)
        if not cc or cc in defaults or _sm(cc) >= newest:
            return ""
        return (f"the engine was built for TensorRT-RTX's default targets ({', '.join(defaults)} and later) but "
                f"this GPU is {cc}; rebuild with -c {cc}")
    built_cc, built_name = target.compute_capability.upper(), target.gpu_name
    if cc and built_cc and cc != built_cc:
        return f"the engine was built on {built_name or 'a GPU'} ({built_cc}) but this GPU is {runtime.gpu_name} ({cc})"
    if runtime.gpu_name and built_name and runtime.gpu_name != built_name:
        return f"the engine was built on {built_name} but this GPU is {runtime.gpu_name}"
    return ""


def check_runtime(manifest: EngineManifest, runtime: RuntimeInfo, engine: str | Path = "") -> None:
    """The TensorRT flavour and version and the GPU that are to load the engine are the ones it was built for;
    ArtifactError, one line, on any mismatch."""
    flavour, version = manifest.tensorrt_flavour, manifest.tensorrt_version
    rebuild = "rebuild it with `gedge build` on this machine"
    if flavour != runtime.flavour:
        raise ArtifactError(f"engine was built with {flavour} {version} but this runtime is {runtime.flavour} "
                            f"{runtime.version}; {rebuild}", engine)
    if version != runtime.version:
        raise ArtifactError(f"engine was built with {flavour} {version} but this runtime is {runtime.version} "
                            f"(engines load only on the TensorRT version that built them); {rebuild}", engine)
    problem = _target_allows(manifest.target, runtime)
    if problem:
        raise ArtifactError(f"{problem}; {rebuild}", engine)

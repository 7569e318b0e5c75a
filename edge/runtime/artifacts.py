"""What a model file says about scoring (:class:`ModelInfo`), read without opening a backend, and how a backend
is to be opened (:class:`OpenOptions`).

The facts come from where each artifact keeps them: a checkpoint's own fields (read by the torch backend's
module, :func:`gedge.runtime.torch_backend.checkpoint_info`, since reading one needs torch), a graph's ONNX
metadata, an OpenVINO IR's sidecar, an engine's manifest. The readers here need neither torch nor any
runtime, so ``gedge inspect scorer.onnx`` and ``gedge bench model.engine`` start without them.

Each reader also verifies what the artifact records (:mod:`gedge.core.artifacts.verdicts`): its hashes against
its sidecar or manifest (a mismatch is an error here), and its verdicts (the gate of an INT8 graph or IR, an
engine's parity), which it keeps in :attr:`ModelInfo.verification`. The registry enforces them before it opens any
backend (:func:`gedge.runtime.registry.open_backend`), so no command can run an artifact whose verdict failed
unless the user forces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gedge.core.artifacts.engine import read_manifest, verify_manifest
from gedge.core.artifacts.graph import GraphFacts, load_graph, read_facts
from gedge.core.artifacts.ir import read_ir
from gedge.core.artifacts.verdicts import Verification, enforce, engine_verification, graph_verification
from gedge.core.backend import ArtifactSummary
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.preprocess import Preprocess

OPENVINO_PERFORMANCE = ("latency", "throughput")
FP16_MODES = ("auto", "emulate", "native")


@dataclass
class ModelInfo:
    """What a model file says about scoring, whatever its kind."""

    path: Path
    kind: str  # the backend it runs on by default: torch, onnxruntime, openvino or tensorrt
    precision: str
    preprocess: Preprocess
    threshold: float
    primary: str
    has_amap: bool = False  # the artifact can give the anomaly map (a checkpoint always can)
    details: dict[str, Any] = field(default_factory=dict)  # INT8 flavour, TensorRT version, the checkpoint, ...
    artifact: ArtifactSummary | None = None  # the file's facts, as every backend that opens it declares them
    verification: Verification | None = None  # hashes checked and verdicts recorded (None: a checkpoint, a server)

    def verified(self, force: bool = False) -> Verification | None:
        """The verification with its verdicts enforced: RefusedArtifact on a failed one unless ``force``."""
        return None if self.verification is None else enforce(self.verification, force)

    @property
    def flavour(self) -> str:
        """An INT8 artifact's flavour (tensorrt, cpu, openvino); "" otherwise."""
        return str(self.details.get("flavour") or "")

    @property
    def label(self) -> str:
        return f"{self.precision}" + (f" ({self.flavour})" if self.flavour else "")


@dataclass(frozen=True)
class OpenOptions:
    """How :func:`gedge.runtime.registry.open_backend` opens a model file; each backend reads what applies to it."""

    precision: str | None = None  # must be the file's, except on OpenVINO (bf16 runs the FP32 graph)
    threads: int = 0  # intra-op threads of torch, onnxruntime and OpenVINO (0: the runtime's default)
    device: str = "cpu"  # torch: cpu or cuda
    with_amap: bool = False  # also return the anomaly map (the artifact must have it)
    slots: int = 2  # TensorRT: batches in flight
    cuda_graphs: bool = True  # TensorRT: replay CUDA graphs where the CUDA bindings allow
    performance: str = "latency"  # OpenVINO: latency (one stream) or throughput (several)
    streams: int = 0  # OpenVINO streams with throughput (0: OpenVINO's choice)
    fp16: str = "auto"  # onnxruntime and an FP16 graph: auto (emulate on the CPU), emulate or native
    force: bool = False  # open an artifact whose recorded verdict failed (--force); the default refuses it

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise ConfigError(f"threads must be 0 (the runtime's default) or more, got {self.threads}")
        if self.slots < 1:
            raise ConfigError(f"slots must be at least 1, got {self.slots}")
        if self.performance not in OPENVINO_PERFORMANCE:
            raise ConfigError(f"performance must be latency or throughput, got {self.performance!r}")
        if self.streams < 0:
            raise ConfigError("threads and streams must be 0 (OpenVINO's choice) or more")
        if self.fp16 not in FP16_MODES:
            raise ConfigError(f"fp16 must be auto, emulate or native, got {self.fp16!r}")


def summary_of_graph(path: Path, facts: GraphFacts, kind: str = "graph", verification: str = "") -> ArtifactSummary:
    """The :class:`ArtifactSummary` of an ONNX graph or an OpenVINO IR, from its gedge facts."""
    return ArtifactSummary(str(path), kind, facts.precision, dict(facts.model), facts.source_checkpoint,
                           facts.source_sha256, verification)


def summary_of_manifest(path: Path, manifest: dict[str, Any], verification: str = "") -> ArtifactSummary:
    """The :class:`ArtifactSummary` of a TensorRT engine, from its manifest."""
    source = manifest.get("source_checkpoint") or {}
    return ArtifactSummary(str(path), "engine", str(manifest.get("precision", "?")), dict(manifest.get("model") or {}),
                           str(source.get("path", "")), str(source.get("sha256", "")), verification)


def _from_graph_facts(path: Path, kind: str, facts: GraphFacts, artifact: str,
                      verification: Verification) -> ModelInfo:
    details = {"flavour": facts.quantization.get("flavour")} if facts.quantization else {}
    return ModelInfo(path, kind, facts.precision, facts.preprocess_config(), facts.threshold, facts.primary,
                     facts.with_amap, details, summary_of_graph(path, facts, artifact, verification.line()),
                     verification)


def graph_info(path: Path) -> ModelInfo:
    """An ONNX scorer graph's facts, from its metadata (the weights are not read), its sidecar verified."""
    facts = read_facts(load_graph(path, load_weights=False), path)
    return _from_graph_facts(path, "onnxruntime", facts, "graph", graph_verification(path, facts.precision))


def ir_info(path: Path) -> ModelInfo:
    """An OpenVINO IR's facts, from its sidecar (the .xml and .bin checked against it)."""
    if not path.with_suffix(".bin").is_file():
        raise ArtifactError("OpenVINO IR (.xml and its .bin) does not exist", path)
    facts, verification = read_ir(path)
    return _from_graph_facts(path, "openvino", facts, "ir", verification)


def engine_info(path: Path) -> ModelInfo:
    """A TensorRT engine's facts, from its manifest, the engine's bytes checked against it (the runtime checks the
    TensorRT version and the GPU when it opens the engine)."""
    manifest = read_manifest(path)
    verify_manifest(manifest, path.read_bytes(), None, path)
    verification = engine_verification(path, manifest, "sha256 matches the manifest")
    try:
        pre = Preprocess.from_dict(manifest["preprocess"])
        decision = manifest.get("decision") or {}
        threshold = float(manifest.get("threshold", decision.get("threshold")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"manifest lacks the scoring facts ({exc})", path) from None
    trt = manifest.get("tensorrt") or {}
    return ModelInfo(path, "tensorrt", str(manifest.get("precision", "?")), pre, threshold,
                     str(manifest.get("primary_score", decision.get("primary", ""))),
                     "amap" in (manifest.get("outputs") or []),
                     {"tensorrt": f"{trt.get('flavour', '?')} {trt.get('version', '?')}"},
                     summary_of_manifest(path, manifest, verification.line()), verification)

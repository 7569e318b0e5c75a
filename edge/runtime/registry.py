"""One way to open any model file as a backend, and what the file says about scoring.

* ``.pt`` (gedge checkpoint): torch, on the CPU or CUDA (the reference);
* ``.onnx`` (``gedge export`` / ``gedge calibrate``): onnxruntime, FP32, FP16 or INT8;
* ``.engine`` (``gedge build``): TensorRT or TensorRT-RTX, verified against its manifest;
* ``.xml`` (``gedge calibrate --target openvino``): OpenVINO IR (NNCF INT8), facts in ``<ir>.xml.json``.

An ``.onnx`` graph runs on onnxruntime or OpenVINO. Where the user names no backend, :func:`auto_backend`
picks the fastest installed CPU backend for the graph's precision and says why: measured on the graph
(:mod:`gedge.runtime.choice`) where the caller gives a batch size and two backends can run it, else by the
static :data:`CPU_RANKING`. OpenVINO is an optional extra (``gedge[openvino]``) and everything falls back
to onnxruntime without it.

:func:`model_info` reads the preprocessing, the threshold and the precision without opening a backend
(from the checkpoint, the graph's metadata or the engine's manifest), so ``gedge inspect`` and ``gedge bench``
treat the three alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gedge.core.backend import Backend
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.optional import require
from gedge.core.preprocess import Preprocess
from gedge.runtime.served import is_served

KINDS = ("torch", "onnxruntime", "openvino", "tensorrt")


SUFFIX_KIND = {".pt": "torch", ".onnx": "onnxruntime", ".engine": "tensorrt", ".xml": "openvino"}


CAN_RUN = {"torch": ("torch",), "onnxruntime": ("onnxruntime", "openvino"), "openvino": ("openvino",),
           "tensorrt": ("tensorrt",)}


CPU_RANKING: dict[str, tuple[str, ...]] = {
    "int8": ("onnxruntime",),
    "bf16": ("openvino",),
    "fp32": ("openvino", "onnxruntime"),
    "fp16": ("onnxruntime",),
}


_MODULES = {"openvino": "openvino", "onnxruntime": "onnxruntime", "torch": "torch"}


@dataclass
class ModelInfo:
    """What a model file says about scoring, whatever its kind."""

    path: Path
    kind: str  # the backend it runs on: torch, onnxruntime or tensorrt
    precision: str
    preprocess: Preprocess
    threshold: float
    primary: str
    has_amap: bool = False  # the artifact can give the anomaly map (a checkpoint always can)
    details: dict[str, Any] = field(default_factory=dict)  # INT8 flavour, TensorRT version, ...

    @property
    def label(self) -> str:
        flavour = self.details.get("flavour")
        return f"{self.precision}" + (f" ({flavour})" if flavour else "")


def kind_of(path: str | Path) -> str:
    if is_served(path):  # a model on a Triton server (gedge.runtime.triton_backend)
        return "triton"
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_KIND:
        raise ConfigError(f"{Path(path).name}: not a model file (expected .pt checkpoint, .onnx graph, .engine or "
                          "OpenVINO .xml)")
    return SUFFIX_KIND[suffix]


def refusal(kind: str, natural: str, precision: str) -> str | None:
    """Why backend ``kind`` must not run a model file of kind ``natural`` at ``precision`` (None: it may). Every
    INT8 artifact runs on the backend its accuracy gate ran on."""
    if kind == "openvino" and natural == "onnxruntime" and precision == "int8":
        return ("an INT8 Q/DQ graph is gated on onnxruntime, and OpenVINO computes these wrongly on some CPUs "
                "(its int8 kernel for the latent convolutions); OpenVINO INT8 runs the NNCF IR from "
                "`gedge calibrate --target openvino`")
    return None


def installed(kind: str) -> bool:
    """Whether a backend's Python package imports here."""
    import importlib

    try:
        importlib.import_module(_MODULES.get(kind, kind))
    except ImportError:
        return False
    return True


def fastest_cpu_backend(precision: str, candidates: tuple[str, ...] | None = None) -> str:
    """The fastest installed CPU backend for ``precision`` (among ``candidates``, default all); ConfigError
    when none is installed."""
    if precision not in CPU_RANKING:
        raise ConfigError(f"no CPU backend runs {precision!r} (expected {', '.join(CPU_RANKING)})")
    ranked = [k for k in CPU_RANKING[precision] if candidates is None or k in candidates]
    for kind in ranked:
        if installed(kind):
            return kind
    hint = {"openvino": "pip install 'gedge[openvino]'", "onnxruntime": "pip install 'gedge[cpu]'"}
    raise ConfigError(f"no CPU backend for {precision} is installed (tried {', '.join(ranked) or 'none'}; "
                      + "; ".join(hint[k] for k in ranked if k in hint) + ")")


@dataclass
class BackendChoice:
    kind: str
    precision: str
    reason: str


def auto_backend(path: str | Path, precision: str | None = None, info: ModelInfo | None = None,
                 measure_batch: int | None = None, threads: int = 0) -> BackendChoice:
    """The backend for a model file when the user names none: the file's own for a checkpoint, an engine or an
    OpenVINO IR; for an ONNX graph the fastest installed CPU backend that can run it at ``precision`` (default:
    the file's). ``measure_batch``: where two or more installed backends can run the graph, time them here at
    this batch size (:mod:`gedge.runtime.choice`, remembered per graph and machine) instead of trusting the
    static ranking."""
    natural = kind_of(path)
    if natural in ("torch", "tensorrt", "openvino", "triton"):  # a checkpoint, engine, IR, server: one backend each
        return BackendChoice(natural, precision or (info.precision if info else "fp32"), "the file's own backend")
    info = info or model_info(path)
    want = precision or info.precision
    if want == "bf16" and info.precision != "fp32":
        raise ConfigError(f"bf16 runs the FP32 graph (OpenVINO's BF16 precision hint); {Path(path).name} is "
                          f"{info.precision}")
    if want not in ("bf16", info.precision):
        raise ConfigError(f"{Path(path).name} is {info.precision}, not {want}")
    kind = fastest_cpu_backend(want, CAN_RUN[natural])
    ranked = [k for k in CPU_RANKING[want] if k in CAN_RUN[natural]]
    missing = ranked[:ranked.index(kind)]
    reason = f"fastest installed CPU backend for {want}"
    if missing:
        reason += f" ({', '.join(missing)} not installed)"
    runnable = [k for k in ranked if installed(k)]
    if measure_batch and len(runnable) > 1 and want != "bf16":
        from gedge.runtime.choice import measured_choice

        measured = measured_choice(path, runnable, want, measure_batch, threads)
        return BackendChoice(measured.kind, want, f"{reason}, {measured.describe()}")
    return BackendChoice(kind, want, reason)


def model_info(path: str | Path) -> ModelInfo:
    if is_served(path):
        return require("gedge.runtime.triton_backend", "scoring on a Triton server").served_model_info(path)
    path = Path(path)
    kind = kind_of(path)
    if not path.is_file():
        raise ArtifactError("model file does not exist", path)
    if kind == "torch":
        from gedge.reference.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(path)
        cal = checkpoint.decision
        return ModelInfo(path, kind, "fp32", checkpoint.preprocess, float(cal.threshold), cal.primary, True,
                         {"checkpoint": checkpoint})
    if kind == "openvino":
        from gedge.core.artifacts.ir import read_model_facts

        facts = read_model_facts(path)
        details = {"flavour": facts.quantization.get("flavour")} if facts.quantization else {}
        return ModelInfo(path, kind, facts.precision, facts.preprocess_config(), facts.threshold, facts.primary,
                         facts.with_amap, details)
    if kind == "onnxruntime":
        from gedge.core.artifacts.graph import load_graph, read_facts

        facts = read_facts(load_graph(path, load_weights=False), path)
        details = {"flavour": facts.quantization.get("flavour")} if facts.quantization else {}
        return ModelInfo(path, kind, facts.precision, facts.preprocess_config(), facts.threshold, facts.primary,
                         facts.with_amap, details)
    from gedge.core.artifacts.engine import read_manifest

    manifest = read_manifest(path)
    try:
        pre = Preprocess.from_dict(manifest["preprocess"])
        decision = manifest.get("decision") or {}
        threshold = float(manifest.get("threshold", decision.get("threshold")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"manifest lacks the scoring facts ({exc})", path) from None
    trt = manifest.get("tensorrt") or {}
    return ModelInfo(path, kind, str(manifest.get("precision", "?")), pre, threshold,
                     str(manifest.get("primary_score", decision.get("primary", ""))),
                     "amap" in (manifest.get("outputs") or []),
                     {"tensorrt": f"{trt.get('flavour', '?')} {trt.get('version', '?')}"})


def open_backend(path: str | Path, kind: str | None = None, precision: str | None = None, threads: int = 0,
                 device: str = "cpu", with_amap: bool = False, slots: int = 2, cuda_graphs: bool = True,
                 info: ModelInfo | None = None, performance: str = "latency", streams: int = 0) -> Backend:
    """The backend for a model file (its kind from the suffix unless given); clear errors when the backend is
    not installed or cannot run the file. ``precision``, when given, must be the file's."""
    if is_served(path):
        return require("gedge.runtime.triton_backend", "scoring on a Triton server").open_served(
            path, slots=slots, with_amap=with_amap)
    path = Path(path)
    natural = kind_of(path)
    if kind == "torch-cuda":
        kind, device = "torch", "cuda"
    kind = kind or natural
    if kind not in KINDS:
        raise ConfigError(f"backend must be one of {', '.join(KINDS)} (or torch-cuda), got {kind!r}")
    if kind not in CAN_RUN[natural]:
        need = {"torch": "a .pt checkpoint", "onnxruntime": "an .onnx graph (`gedge export`)",
                "tensorrt": "an .engine (`gedge build`)",
                "openvino": "an .onnx graph or an OpenVINO IR .xml (`gedge calibrate --target openvino`)"}[kind]
        raise ConfigError(f"{path.name}: the {kind} backend needs {need}")
    if threads < 0:
        raise ConfigError(f"threads must be 0 (the runtime's default) or more, got {threads}")
    info = info or model_info(path)
    refused = refusal(kind, natural, info.precision)
    if refused:
        raise ConfigError(f"{path.name}: {refused}")
    if kind == "openvino":
        from gedge.runtime.openvino_backend import OpenVINOBackend

        if with_amap and not info.has_amap:
            raise ConfigError(f"{path.name} has no amap output; export with --amap for heat maps from the graph")
        return OpenVINOBackend(path, precision=precision, performance=performance, threads=threads, streams=streams)
    if precision and precision != info.precision:
        raise ConfigError(f"{path.name} is {info.precision}, not {precision}")
    if kind == "torch":
        try:
            import torch
        except ImportError as exc:
            raise ConfigError(f"torch is not installed ({exc}); pip install torch (Makefile: TORCH_SPEC)") from None
        from gedge.runtime.torch_backend import TorchBackend

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("torch CUDA was asked for but torch sees no CUDA GPU "
                              f"(torch {torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA)")
        if threads:
            torch.set_num_threads(threads)
        return TorchBackend(info.details["checkpoint"], device=device, with_amap=with_amap)
    if kind == "onnxruntime":
        from gedge.runtime.onnxruntime_backend import OrtBackend

        if with_amap and not info.has_amap:
            raise ConfigError(f"{path.name} has no amap output; export with --amap for heat maps from the graph")
        return OrtBackend(path, threads=threads)
    from gedge.runtime.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(path, with_amap=with_amap, slots=slots, cuda_graphs=cuda_graphs)

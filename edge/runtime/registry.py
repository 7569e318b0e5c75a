"""Every backend, declared once: which files it opens, the module that implements it, what it can run.

* ``.pt`` (gedge checkpoint): torch, on the CPU or CUDA (the reference);
* ``.onnx`` (``gedge export`` / ``gedge calibrate``): onnxruntime, FP32, FP16 or INT8; OpenVINO, FP32 (or BF16
  by its precision hint);
* ``.xml`` (``gedge calibrate --target openvino``): OpenVINO IR (NNCF INT8), facts in ``<ir>.xml.json``;
* ``.engine`` (``gedge build``): TensorRT or TensorRT-RTX, verified against its manifest.

:data:`BACKENDS` holds one :class:`BackendSpec` per backend. A backend's module is imported by name, through
:func:`gedge.core.optional.require`, only when a file is opened on it, so that ``gedge inspect scorer.onnx``
never imports torch; a missing package is a one-line error with the install command. Adding a backend means
one module (a class with ``info``, ``input_spec``, ``score``, ``close`` and an ``open_artifact`` function) and
one entry here. An opened backend declares what it is in its :class:`~gedge.core.backend.BackendInfo`.

:func:`model_info` reads the preprocessing, the threshold and the precision without opening a backend, so
``gedge inspect`` and ``gedge bench`` treat every kind of file alike. Where the user names no backend for an
``.onnx`` graph, :func:`auto_backend` picks the fastest installed CPU backend for the graph's precision and
says why: measured on the graph (:mod:`gedge.runtime.choice`) where the caller gives a batch size and two
backends can run it, else by the static :data:`CPU_RANKING`. OpenVINO is an optional extra
(``gedge[openvino]``) and everything falls back to onnxruntime without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from gedge.core.artifacts.verdicts import Verification
from gedge.core.backend import Backend
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.optional import available, install_hint, require
from gedge.runtime.artifacts import ModelInfo, OpenOptions
from gedge.runtime.choice import MeasuredChoice, choose_by_measuring
from gedge.runtime.served import is_served


@dataclass(frozen=True)
class BackendSpec:
    """One backend: the files it opens natively, the module that implements it, what it can run."""

    kind: str
    label: str  # the runtime's name in messages and tables
    suffixes: tuple[str, ...]  # model files it is the natural backend for
    module: str  # implements it; has the opener
    runs: dict[str, tuple[str, ...]]  # file suffix -> the file precisions it runs (empty: any)
    needs: str  # what it needs, said when it is given another kind of file
    packages: tuple[str, ...]  # its Python package (any one of them: TensorRT's flavour comes from the engine)
    opener: str = "open_artifact"  # the module's function (path, OpenOptions, ModelInfo) -> Backend
    reader: str = ""  # "module:function" that reads a natural file's ModelInfo
    picks_precision: bool = False  # it is told a precision to compute in (OpenVINO's hint) besides the file's
    cpu: bool = True
    refusals: dict[tuple[str, str], str] = field(default_factory=dict)  # (suffix, precision) -> why it must not
    served: bool = False  # its "file" is a URL of a model on a server (gedge.runtime.served), not a local file

    @property
    def install_hint(self) -> str:
        return install_hint(self.packages[0])


_QDQ_ON_OPENVINO = ("an INT8 Q/DQ graph is gated on onnxruntime, and OpenVINO computes these wrongly on some CPUs "
                    "(its int8 kernel for the latent convolutions); OpenVINO INT8 runs the NNCF IR from "
                    "`gedge calibrate --target openvino`")

BACKENDS: dict[str, BackendSpec] = {spec.kind: spec for spec in (
    BackendSpec("torch", "torch eager", (".pt",), "gedge.runtime.torch_backend", {".pt": ("fp32",)},
                "a .pt checkpoint", ("torch",), reader="gedge.runtime.torch_backend:checkpoint_info"),
    BackendSpec("onnxruntime", "onnxruntime", (".onnx",), "gedge.runtime.onnxruntime_backend",
                {".onnx": ("fp32", "fp16", "int8")}, "an .onnx graph (`gedge export`)", ("onnxruntime",),
                reader="gedge.runtime.artifacts:graph_info"),
    BackendSpec("openvino", "OpenVINO", (".xml",), "gedge.runtime.openvino_backend",
                {".onnx": ("fp32",), ".xml": ("fp32", "int8")},
                "an .onnx graph or an OpenVINO IR .xml (`gedge calibrate --target openvino`)", ("openvino",),
                reader="gedge.runtime.artifacts:ir_info", picks_precision=True,
                refusals={(".onnx", "int8"): _QDQ_ON_OPENVINO}),
    BackendSpec("tensorrt", "TensorRT", (".engine",), "gedge.runtime.tensorrt_backend", {".engine": ()},
                "an .engine (`gedge build`)", ("tensorrt", "tensorrt_rtx"),
                reader="gedge.runtime.artifacts:engine_info", cpu=False),
    BackendSpec("triton", "Triton", (), "gedge.runtime.triton_backend", {}, "a served model (http://host:8000)",
                ("tritonclient",), reader="gedge.runtime.triton_backend:served_model_info", cpu=False, served=True),
)}

KINDS = tuple(BACKENDS)
SUFFIX_KIND = {suffix: spec.kind for spec in BACKENDS.values() for suffix in spec.suffixes}
# natural kind (of a file) -> the kinds that can run such files
CAN_RUN = {natural: tuple(k for k, spec in BACKENDS.items() if any(s in spec.runs for s in BACKENDS[natural].suffixes))
           for natural in BACKENDS}

CPU_RANKING: dict[str, tuple[str, ...]] = {
    "int8": ("onnxruntime",),
    "bf16": ("openvino",),
    "fp32": ("openvino", "onnxruntime"),
    "fp16": ("onnxruntime",),
}


def kind_of(path: str | Path) -> str:
    """The natural backend of a model file, from its suffix (a served model's URL: ``triton``)."""
    if is_served(path):
        return "triton"
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_KIND:
        raise ConfigError(f"{Path(path).name}: not a model file (expected .pt checkpoint, .onnx graph, .engine or "
                          "OpenVINO .xml)")
    return SUFFIX_KIND[suffix]


def spec_of(kind: str) -> BackendSpec:
    if kind not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(KINDS)} (or torch-cuda), got {kind!r}")
    return BACKENDS[kind]


def refusal(kind: str, natural: str, precision: str) -> str | None:
    """Why backend ``kind`` must not run a model file of kind ``natural`` at ``precision`` (None: it may). Every
    INT8 artifact runs on the backend its accuracy gate ran on."""
    spec = spec_of(kind)
    for suffix in BACKENDS[natural].suffixes:
        if (suffix, precision) in spec.refusals:
            return spec.refusals[(suffix, precision)]
        allowed = spec.runs.get(suffix)
        if allowed and precision not in allowed:
            return f"{spec.label} runs {suffix} files in {', '.join(allowed)}, not {precision}"
    return None


def installed(kind: str) -> bool:
    """Whether a backend's Python package imports here."""
    return any(available(package) for package in spec_of(kind).packages)


def fastest_cpu_backend(precision: str, candidates: tuple[str, ...] | None = None) -> str:
    """The fastest installed CPU backend for ``precision`` (among ``candidates``, default all); ConfigError
    when none is installed."""
    if precision not in CPU_RANKING:
        raise ConfigError(f"no CPU backend runs {precision!r} (expected {', '.join(CPU_RANKING)})")
    ranked = [k for k in CPU_RANKING[precision] if candidates is None or k in candidates]
    for kind in ranked:
        if installed(kind):
            return kind
    raise ConfigError(f"no CPU backend for {precision} is installed (tried {', '.join(ranked) or 'none'}; "
                      + "; ".join(BACKENDS[k].install_hint for k in ranked) + ")")


@dataclass
class BackendChoice:
    kind: str
    precision: str
    reason: str


def measured_choice(path: str | Path, candidates: list[str], precision: str, batch_size: int, threads: int = 0,
                    use_cache: bool = True) -> MeasuredChoice:
    """The fastest of ``candidates`` (installed backend kinds that can run ``path``) at ``batch_size``, timed
    here (:func:`gedge.runtime.choice.choose_by_measuring`: interleaved rounds, remembered per graph and machine)."""
    openers = {kind: partial(open_backend, path, kind, threads=threads) for kind in candidates}
    return choose_by_measuring(Path(path), openers, precision, batch_size, threads, use_cache)


def auto_backend(path: str | Path, precision: str | None = None, info: ModelInfo | None = None,
                 measure_batch: int | None = None, threads: int = 0) -> BackendChoice:
    """The backend for a model file when the user names none: the file's own for a checkpoint, an engine or an
    OpenVINO IR; for an ONNX graph the fastest installed CPU backend that can run it at ``precision`` (default:
    the file's). ``measure_batch``: where two or more installed backends can run the graph, time them here at
    this batch size instead of trusting the static ranking."""
    natural = kind_of(path)
    if natural != "onnxruntime":  # a checkpoint, an engine, an IR: one backend runs each
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
        measured = measured_choice(path, runnable, want, measure_batch, threads)
        return BackendChoice(measured.kind, want, f"{reason}, {measured.describe()}")
    return BackendChoice(kind, want, reason)


def _function(reference: str, purpose: str) -> Any:
    """The function ``module:name``, its module loaded by name (a backend module may need a heavy package)."""
    module_name, name = reference.split(":")
    return getattr(require(module_name, purpose), name)


def model_info(path: str | Path) -> ModelInfo:
    """What the model file says about scoring (preprocessing, threshold, precision, amap), without opening it; its
    recorded hashes verified (an error on a mismatch) and its recorded verdicts read into ``verification``
    (enforced where a backend is opened, :func:`open_backend`)."""
    spec = BACKENDS[kind_of(path)]
    if spec.served:
        return _function(spec.reader, f"asking {path} for its facts")(path)
    path = Path(path)
    if not path.is_file():
        raise ArtifactError("model file does not exist", path)
    return _function(spec.reader, f"reading {path.name}")(path)


def open_backend(path: str | Path, kind: str | None = None, options: OpenOptions | None = None,
                 info: ModelInfo | None = None, **settings: Any) -> Backend:
    """The backend for a model file (its kind from the suffix unless given; ``torch-cuda`` is torch on CUDA);
    clear errors when the backend is not installed or cannot run the file. ``options`` (or ``settings``, the
    fields of :class:`OpenOptions` by name) say how; ``precision``, when given, must be the file's except on a
    backend that takes a precision of its own (OpenVINO: bf16 runs the FP32 graph). An artifact whose recorded
    verdict failed (the gate of an INT8 graph or IR, an engine's parity) is refused (RefusedArtifact) unless
    ``force``."""
    natural = kind_of(path)
    path = path if BACKENDS[natural].served else Path(path)
    try:
        options = replace(options or OpenOptions(), **settings)
    except TypeError as exc:
        raise ConfigError(f"open_backend: {exc}") from None
    if kind == "torch-cuda":
        kind, options = "torch", replace(options, device="cuda")
    spec = spec_of(kind or natural)
    if spec.served != BACKENDS[natural].served:
        raise ConfigError(f"{path}: the {spec.kind} backend needs {spec.needs}")
    name = str(path) if spec.served else path.name
    if not spec.served and path.suffix.lower() not in spec.runs:
        raise ConfigError(f"{name}: the {spec.kind} backend needs {spec.needs}")
    info = info or model_info(path)
    verified = info.verified(options.force)  # every backend is opened here: a failed recorded verdict stops it
    refused = refusal(spec.kind, natural, info.precision)
    if refused:
        raise ConfigError(f"{name}: {refused}")
    if options.with_amap and not info.has_amap:
        raise ConfigError(f"{name} has no amap output; export with --amap for heat maps from the graph")
    if options.precision and options.precision != info.precision and not spec.picks_precision:
        raise ConfigError(f"{name} is {info.precision}, not {options.precision}")
    purpose = f"the {spec.kind} backend"
    if len(spec.packages) == 1:  # TensorRT: the engine's manifest names the flavour, the backend imports it
        require(spec.packages[0], purpose)
    backend = _function(f"{spec.module}:{spec.opener}", purpose)(path, options, info)
    _declare_verification(backend, verified)
    return backend


def _declare_verification(backend: Backend, verified: Verification | None) -> None:
    """The opened backend's declared artifact carries what the registry verified and enforced (a backend whose
    ``info`` is computed, like TensorRT's, declares its own verification from the manifest it loaded)."""
    declared = backend.info
    if verified is None or declared.artifact is None:
        return
    try:
        backend.info = replace(declared, artifact=replace(declared.artifact, verification=verified.line()))
    except AttributeError:  # a read-only property
        pass

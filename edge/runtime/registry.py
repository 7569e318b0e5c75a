"""Every backend, declared once: which artifacts it opens, the module that implements it, what it can run.

* a checkpoint (``.pt``): torch, on the CPU or CUDA (the reference);
* a graph (``.onnx``, from ``gedge export`` / ``gedge calibrate``): onnxruntime, FP32, FP16 or INT8; OpenVINO,
  FP32 (or BF16 by its precision hint);
* an OpenVINO IR (``.xml``, from ``gedge calibrate --target openvino``): OpenVINO (NNCF INT8);
* an engine (``.engine``, from ``gedge build``): TensorRT or TensorRT-RTX;
* a served model (a URL, ``http://host:8000/v2/models/scorer``): Triton's client.

:data:`BACKENDS` holds one :class:`BackendSpec` per backend: what it is, nothing about reading files (the
artifact's facts come from :func:`gedge.core.artifacts.open`, read once, and every backend is opened from that
:class:`~gedge.core.artifacts.Artifact`). A backend's module is imported by name, through
:func:`gedge.core.optional.require`, only when an artifact is opened on it, so that ``gedge inspect scorer.onnx``
never imports torch; a missing package is a one-line error with the install command. Adding a backend means one
module (a class with ``info``, ``input_spec``, ``score``, ``close`` and an ``open_artifact(artifact, options)``
function) and one entry here. An opened backend declares what it is in its :class:`~gedge.core.backend.BackendInfo`.

:func:`open_backend` enforces the artifact's recorded verdicts before any backend is opened. Where the user names
no backend for a graph, :func:`auto_backend` picks the fastest installed CPU backend for the graph's precision and
says why: measured on the graph (:mod:`gedge.runtime.choice`) where the caller gives a batch size and two backends
can run it, else by the static :data:`CPU_RANKING`. OpenVINO is an optional extra (``gedge[openvino]``) and
everything falls back to onnxruntime without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from gedge.core import artifacts
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.opening import MODEL_KINDS
from gedge.core.backend import Backend
from gedge.core.errors import ConfigError
from gedge.core.optional import available, install_hint, require
from gedge.runtime.choice import MeasuredChoice, choose_by_measuring
from gedge.runtime.options import OpenOptions
from gedge.runtime.served import is_served

OPENER = "open_artifact"  # each backend module's (artifact or served reference, OpenOptions) -> Backend


@dataclass(frozen=True)
class BackendSpec:
    """One backend: the artifacts it is the natural backend for, the module that implements it, what it can run."""

    kind: str
    label: str  # the runtime's name in messages and tables
    natural: tuple[str, ...]  # artifact kinds it opens by default
    module: str  # implements it; has the opener (OPENER)
    runs: dict[str, tuple[str, ...]]  # artifact kind -> the precisions it runs (empty: any)
    needs: str  # what it needs, said when it is given another kind of artifact
    packages: tuple[str, ...]  # its Python package (any one of them: TensorRT's flavour comes from the engine)
    picks_precision: bool = False  # it is told a precision to compute in (OpenVINO's hint) besides the file's
    cpu: bool = True
    refusals: dict[tuple[str, str], str] = field(default_factory=dict)  # (artifact kind, precision) -> why not
    served: bool = False  # it runs a model on a server (gedge.runtime.served), not a local file

    @property
    def install_hint(self) -> str:
        return install_hint(self.packages[0])


_QDQ_ON_OPENVINO = ("an INT8 Q/DQ graph is gated on onnxruntime, and OpenVINO computes these wrongly on some CPUs "
                    "(its int8 kernel for the latent convolutions); OpenVINO INT8 runs the NNCF IR from "
                    "`gedge calibrate --target openvino`")

BACKENDS: dict[str, BackendSpec] = {spec.kind: spec for spec in (
    BackendSpec("torch", "torch eager", ("checkpoint",), "gedge.runtime.torch_backend", {"checkpoint": ("fp32",)},
                "a .pt checkpoint", ("torch",)),
    BackendSpec("onnxruntime", "onnxruntime", ("graph",), "gedge.runtime.onnxruntime_backend",
                {"graph": ("fp32", "fp16", "int8")}, "an .onnx graph (`gedge export`)", ("onnxruntime",)),
    BackendSpec("openvino", "OpenVINO", ("ir",), "gedge.runtime.openvino_backend",
                {"graph": ("fp32",), "ir": ("fp32", "int8")},
                "an .onnx graph or an OpenVINO IR .xml (`gedge calibrate --target openvino`)", ("openvino",),
                picks_precision=True, refusals={("graph", "int8"): _QDQ_ON_OPENVINO}),
    BackendSpec("tensorrt", "TensorRT", ("engine",), "gedge.runtime.tensorrt_backend", {"engine": ()},
                "an .engine (`gedge build`)", ("tensorrt", "tensorrt_rtx"), cpu=False),
    BackendSpec("triton", "Triton", ("served",), "gedge.runtime.triton_backend", {"served": ()},
                "a served model (http://host:8000)", ("tritonclient",), cpu=False, served=True),
)}

KINDS = tuple(BACKENDS)
NATURAL = {kind: spec.kind for spec in BACKENDS.values() for kind in spec.natural}  # artifact kind -> backend
# artifact kind -> the backends that can run it
CAN_RUN = {kind: tuple(k for k, spec in BACKENDS.items() if kind in spec.runs) for kind in NATURAL}

CPU_RANKING: dict[str, tuple[str, ...]] = {
    "int8": ("onnxruntime",),
    "bf16": ("openvino",),
    "fp32": ("openvino", "onnxruntime"),
    "fp16": ("onnxruntime",),
}

Model = Artifact | str | Path  # an opened artifact, a model file, or a served model's URL


def artifact_kind(model: Model) -> str:
    """The kind of a model: an artifact's own, a file's from its suffix, ``served`` for a served model's URL."""
    if isinstance(model, Artifact):
        return model.kind
    if is_served(model):
        return "served"
    kind = artifacts.kind_of(model)
    if kind not in MODEL_KINDS:
        raise ConfigError(f"{Path(model).name}: not a model file (expected .pt checkpoint, .onnx graph, .engine or "
                          "OpenVINO .xml)")
    return kind


def kind_of(model: Model) -> str:
    """The natural backend of a model (``triton`` for a served model's URL)."""
    kind = artifact_kind(model)
    if kind not in NATURAL:
        raise ConfigError(f"{model if isinstance(model, str) else Path(str(getattr(model, 'path', model))).name}: "
                          f"a {kind} is not a model to score with")
    return NATURAL[kind]


def open_model(model: Model) -> Artifact | str:
    """A model file read once (:func:`gedge.core.artifacts.open`: hashes checked, verdicts read); an Artifact as it
    is; a served model's URL as it is (its facts come from the server when its backend is opened)."""
    if isinstance(model, Artifact) or is_served(model):
        return model
    artifact_kind(model)
    return artifacts.open(model, MODEL_KINDS)


def spec_of(kind: str) -> BackendSpec:
    if kind not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(KINDS)} (or torch-cuda), got {kind!r}")
    return BACKENDS[kind]


def refusal(kind: str, artifact: str, precision: str) -> str | None:
    """Why backend ``kind`` must not run an artifact of kind ``artifact`` at ``precision`` (None: it may). Every
    INT8 artifact runs on the backend its accuracy gate ran on."""
    spec = spec_of(kind)
    if (artifact, precision) in spec.refusals:
        return spec.refusals[(artifact, precision)]
    allowed = spec.runs.get(artifact)
    if allowed and precision not in allowed:
        return f"{spec.label} runs {artifact}s in {', '.join(allowed)}, not {precision}"
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


def measured_choice(graph: Artifact | str | Path, candidates: list[str], precision: str, batch_size: int,
                    threads: int = 0, use_cache: bool = True) -> MeasuredChoice:
    """The fastest of ``candidates`` (installed backend kinds that can run the graph) at ``batch_size``, timed here
    (:func:`gedge.runtime.choice.choose_by_measuring`: interleaved rounds, remembered per graph and machine)."""
    artifact = open_model(graph)
    openers = {kind: partial(open_backend, artifact, kind, threads=threads) for kind in candidates}
    return choose_by_measuring(artifact.sha256, openers, precision, batch_size, threads, use_cache)


def auto_backend(model: Model, precision: str | None = None, measure_batch: int | None = None,
                 threads: int = 0) -> BackendChoice:
    """The backend for a model when the user names none: its own for a checkpoint, an engine, an OpenVINO IR or a
    served model; for an ONNX graph the fastest installed CPU backend that can run it at ``precision`` (default:
    the graph's). ``measure_batch``: where two or more installed backends can run the graph, time them here at this
    batch size instead of trusting the static ranking."""
    natural, model = kind_of(model), open_model(model)
    if not isinstance(model, Artifact) or natural != "onnxruntime":  # one backend runs each of the others
        own = model.precision if isinstance(model, Artifact) else "fp32"
        return BackendChoice(natural, precision or own, "the file's own backend")
    want = precision or model.precision
    if want == "bf16" and model.precision != "fp32":
        raise ConfigError(f"bf16 runs the FP32 graph (OpenVINO's BF16 precision hint); {model.name} is "
                          f"{model.precision}")
    if want not in ("bf16", model.precision):
        raise ConfigError(f"{model.name} is {model.precision}, not {want}")
    kind = fastest_cpu_backend(want, CAN_RUN["graph"])
    ranked = [k for k in CPU_RANKING[want] if k in CAN_RUN["graph"]]
    missing = ranked[:ranked.index(kind)]
    reason = f"fastest installed CPU backend for {want}"
    if missing:
        reason += f" ({', '.join(missing)} not installed)"
    runnable = [k for k in ranked if installed(k)]
    if measure_batch and len(runnable) > 1 and want != "bf16":
        measured = measured_choice(model, runnable, want, measure_batch, threads)
        return BackendChoice(measured.kind, want, f"{reason}, {measured.describe()}")
    return BackendChoice(kind, want, reason)


def _check_runs(spec: BackendSpec, artifact: Artifact, options: OpenOptions) -> None:
    """ConfigError when ``spec``'s backend must not run ``artifact`` as ``options`` ask."""
    refused = refusal(spec.kind, artifact.kind, artifact.precision)
    if refused:
        raise ConfigError(f"{artifact.name}: {refused}")
    if options.with_amap and not artifact.with_amap:
        raise ConfigError(f"{artifact.name} has no amap output; export with --amap for heat maps from the graph")
    if options.precision and options.precision != artifact.precision and not spec.picks_precision:
        raise ConfigError(f"{artifact.name} is {artifact.precision}, not {options.precision}")


def open_backend(model: Model, kind: str | None = None, options: OpenOptions | None = None,
                 **settings: Any) -> Backend:
    """The backend for a model (its kind from the artifact unless given; ``torch-cuda`` is torch on CUDA); clear
    errors when the backend is not installed or cannot run it. ``options`` (or ``settings``, the fields of
    :class:`OpenOptions` by name) say how; ``precision``, when given, must be the artifact's except on a backend
    that takes a precision of its own (OpenVINO: bf16 runs the FP32 graph). An artifact whose recorded verdict
    failed (the gate of an INT8 graph or IR, an engine's parity) is refused (RefusedArtifact) unless ``force``;
    forced, the backend's artifact carries the forced verdicts."""
    try:
        options = replace(options or OpenOptions(), **settings)
    except TypeError as exc:
        raise ConfigError(f"open_backend: {exc}") from None
    if kind == "torch-cuda":
        kind, options = "torch", replace(options, device="cuda")
    spec = spec_of(kind or kind_of(model))
    if artifact_kind(model) not in spec.runs:  # from the suffix: said before the file is read
        name = model if is_served(model) else getattr(model, "name", None) or Path(model).name
        raise ConfigError(f"{name}: the {spec.kind} backend needs {spec.needs}")
    model = open_model(model)
    if isinstance(model, str):  # a served model: its facts come from the server
        return _opener(spec)(model, options)
    verified = model.verified(options.force)  # every backend is opened here: a failed recorded verdict stops it
    _check_runs(spec, model, options)
    return _opener(spec)(replace(model, verification=verified), options)


def _opener(spec: BackendSpec) -> Any:
    """The backend module's opener, its module loaded by name (a backend module may need a heavy package)."""
    purpose = f"the {spec.kind} backend"
    if len(spec.packages) == 1:  # TensorRT: the engine's manifest names the flavour, the backend imports it
        require(spec.packages[0], purpose)
    return getattr(require(spec.module, purpose), OPENER)

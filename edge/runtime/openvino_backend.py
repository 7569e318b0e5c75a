"""OpenVINO backend: the fused scorer on x86 CPUs in FP32, BF16 or INT8 (an NNCF-quantized IR).

It reads gedge's fused ONNX graph directly (``scorer.onnx``) or a saved OpenVINO IR (``scorer.int8.ov.xml``
from ``gedge calibrate --target openvino``, facts in ``<ir>.json``), given as the
:class:`~gedge.core.artifacts.Artifact` gedge read (its facts and hashes checked once). Like every backend it takes
a uint8 NHWC batch; a ``float-nchw`` graph gets the conversion ``x / 127.5 - 1`` here, exactly as the uint8 graph
does it inside.

Precision is set explicitly with the inference precision hint (``ov.properties.hint.inference_precision``):
OpenVINO runs BF16 by default on CPUs that have it (AVX-512 BF16, AMX), so ``fp32`` says ``f32``; ``bf16``
says ``bf16`` (on a CPU without BF16 OpenVINO runs f32, and the backend's name says so); ``int8`` needs an
INT8 model (NNCF IR or a Q/DQ graph), whose float parts (the residual arithmetic and the reductions the
ignored scope kept in float) run in f32.

Performance: ``latency`` (one stream using all threads: one batch as fast as possible) or ``throughput``
(several streams; a batch is split across them and run concurrently). Threads and streams are configurable
(0: OpenVINO's choice). The model keeps its dynamic batch dimension.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gedge.core.artifacts import Artifact
from gedge.core.backend import BackendBase, BackendInfo
from gedge.core.errors import ArtifactError, ConfigError, RuntimeFailure
from gedge.core.inputs import graph_input
from gedge.core.optional import require
from gedge.core.scores import OUTPUT_NAMES, Scores
from gedge.runtime.options import OPENVINO_PERFORMANCE, OpenOptions

PRECISIONS = ("fp32", "bf16", "int8")


PERFORMANCE_MODES = OPENVINO_PERFORMANCE


def openvino_reason(exc: BaseException) -> str:
    """The informative line of an OpenVINO exception (its text starts with 'Exception from <source file>' and
    'Check ... failed at ...' lines; the reason is the last line)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Exception from", "Check "))]
    return (useful or lines or [exc.__class__.__name__])[-1][:200]


def _run_precision(name: str, native: str, asked: str | None) -> str:
    """What OpenVINO computes a model file of precision ``native`` in when ``asked`` (default: the file's)."""
    if native not in ("fp32", "int8"):
        raise ConfigError(f"{name} is {native}; OpenVINO runs the FP32 graph (fp32, bf16) or an INT8 model")
    precision = asked or native
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if (precision == "int8") != (native == "int8"):
        raise ConfigError(f"{name} is {native}: "
                          + ("INT8 on OpenVINO needs the NNCF IR (`gedge calibrate --target openvino`)"
                             if precision == "int8" else f"it runs as int8, not {precision}"))
    return precision


class OpenVINOBackend(BackendBase):
    """Scores uint8 NHWC batches with a scorer graph (ONNX) or IR on OpenVINO's CPU plugin."""

    def __init__(self, model: Artifact, precision: str | None = None, performance: str = "latency",
                 threads: int = 0, streams: int = 0, device: str = "CPU") -> None:
        ov = require("openvino", "the OpenVINO backend")
        if performance not in PERFORMANCE_MODES:
            raise ConfigError(f"performance must be latency or throughput, got {performance!r}")
        if threads < 0 or streams < 0:
            raise ConfigError("threads and streams must be 0 (OpenVINO's choice) or more")
        if model.kind not in ("graph", "ir"):
            raise ConfigError(f"{model.name}: OpenVINO runs an .onnx graph or an OpenVINO IR .xml")
        self.artifact = model
        self.path = model.path
        self.facts = model.model_facts()
        self.precision = _run_precision(self.path.name, self.facts.precision, precision)
        self.performance = performance
        self.core = ov.Core()
        self.compiled = self._compile(ov, threads, streams, device)
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]
        missing = [n for n in OUTPUT_NAMES if n not in self.output_names]
        if missing:
            raise ArtifactError(f"model lacks the outputs {', '.join(missing)}", self.path)
        self.with_amap = "amap" in self.output_names
        self.input_layout = "NHWC" if self.facts.input_kind == "uint8-nhwc" else "NCHW"
        self.input_spec = self.facts.input_spec()
        props = ov.properties
        self.streams = int(self.compiled.get_property(props.num_streams))
        self.threads = int(self.compiled.get_property(props.inference_num_threads))
        ran = self.compiled.get_property(props.hint.inference_precision)
        self.runs_in = {ov.Type.bf16: "bf16", ov.Type.f32: "fp32", ov.Type.f16: "fp16"}.get(ran, str(ran))
        self.requests = [self.compiled.create_infer_request() for _ in range(max(1, self.streams))]
        note = ""
        if self.precision == "bf16" and self.runs_in != "bf16":
            note = f" (runs {self.runs_in}: no BF16 on this CPU)"
        self.name = f"openvino-cpu-{self.precision}{note}"
        self.version = ov.get_version()
        self.info = self._info(bool(note))

    def _compile(self, ov: Any, threads: int, streams: int, device: str) -> Any:
        """The model compiled for ``device`` with the precision hint, the performance mode, threads and streams."""
        props = ov.properties
        try:
            model = self.core.read_model(str(self.path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long texts
            raise ArtifactError(f"OpenVINO cannot read the model (truncated or corrupt?): {openvino_reason(exc)}",
                                self.path) from None
        hint = ov.Type.bf16 if self.precision == "bf16" else ov.Type.f32
        mode = props.hint.PerformanceMode.LATENCY if self.performance == "latency" else \
            props.hint.PerformanceMode.THROUGHPUT
        config = {props.hint.inference_precision: hint, props.hint.performance_mode: mode}
        if threads:
            config[props.inference_num_threads] = threads
        if streams:
            config[props.num_streams] = streams
        try:
            return self.core.compile_model(model, device, config)
        except Exception as exc:
            raise ArtifactError(f"OpenVINO cannot compile the model: {openvino_reason(exc)}", self.path) from None

    def _info(self, no_bf16: bool) -> BackendInfo:
        flavour = self.facts.flavour if self.precision == "int8" else ""
        shown = "nncf" if flavour == "openvino" else flavour
        no_bf16_note = f"asked for bf16, computes in {self.runs_in}: this CPU has no BF16 instructions"
        notes = (no_bf16_note,) if no_bf16 else ()
        runtime = (f"OpenVINO {self.version}: {self.performance}, {self.streams} stream(s), {self.threads} threads, "
                   f"computes in {self.runs_in}")
        label = f"openvino {self.precision.upper()}" + (f" ({shown})" if shown else "")
        return BackendInfo(kind="openvino", label=label, precision=self.precision, flavour=flavour,
                           with_amap=self.with_amap, artifact=self.artifact,
                           notes=notes, runtime=runtime)

    def feed(self, batch: np.ndarray) -> np.ndarray:
        return graph_input(batch, "uint8-nhwc" if self.input_layout == "NHWC" else "float-nchw")

    def _collect(self, request) -> dict[str, np.ndarray]:
        return {name: np.array(request.get_tensor(name).data, dtype=np.float32) for name in self.output_names}

    def run(self, graph_input: np.ndarray) -> Scores:
        """Score the model's own input as it is; OpenVINO's failures are a :class:`RuntimeFailure`."""
        try:
            return self._infer(graph_input)
        except RuntimeError as error:  # OpenVINO raises RuntimeError (or its subclasses) from its plugins
            if isinstance(error, RuntimeFailure):
                raise
            raise RuntimeFailure(f"OpenVINO failed to run the model: {error}", self.path) from error

    def _infer(self, graph_input: np.ndarray) -> Scores:
        """With several streams the batch is split across them."""
        n = graph_input.shape[0]
        parts = min(len(self.requests), n)
        if parts <= 1:
            request = self.requests[0]
            request.infer({0: graph_input})
            return Scores.from_dict(self._collect(request))
        chunks = np.array_split(graph_input, parts)
        for request, chunk in zip(self.requests, chunks):
            request.start_async({0: np.ascontiguousarray(chunk)})
        outputs = []
        for request in self.requests[:parts]:
            request.wait()
            outputs.append(self._collect(request))
        return Scores.from_dict({k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]})

    def score_impl(self, batch: np.ndarray) -> Scores:
        return self.run(self.feed(batch))

    def close(self) -> None:
        self.requests = []
        self.compiled = None


def open_artifact(model: Artifact, options: OpenOptions) -> OpenVINOBackend:
    """The registry's opener: the graph or IR on OpenVINO's CPU plugin, in ``options.precision`` (default: the
    file's)."""
    return OpenVINOBackend(model, precision=options.precision, performance=options.performance,
                           threads=options.threads, streams=options.streams)

"""ONNX Runtime backend: any scorer graph gedge writes (FP32, FP16, INT8 Q/DQ), on the CPU by default.

The graph says what it takes and returns: the input's name, element type and layout and the output names
are read from the session, the score facts from the graph's :class:`~gedge.core.artifacts.Artifact` (its metadata,
read once when the file was opened; the session is made from the same parsed graph). Like every backend it takes a uint8
NHWC batch; for a ``float-nchw`` graph the conversion ``x / 127.5 - 1`` (NCHW) happens here, in float32,
exactly as the uint8 graph does it inside.

FP16 graphs on the CPU: ONNX Runtime's CPU provider has no FP16 convolution kernels on x86. It runs such
nodes in FP32 and drops the FP16 round trips between them, so activations are never rounded to FP16. With
``fp16="emulate"`` (the default for FP16 graphs on the CPU) the backend instead runs
:func:`gedge.runtime.fp16_emulation.rounding_emulation` of the graph: FP32 math with every FP16 tensor rounded to
FP16, which is how TensorRT's FP16 kernels store activations. ``fp16="native"`` runs the graph as it is.
"""

from __future__ import annotations

import numpy as np
from gedge.core.artifacts import Artifact
from gedge.core.backend import BackendBase, BackendInfo
from gedge.core.errors import ArtifactError, ConfigError, RuntimeFailure, first_line
from gedge.core.inputs import graph_input
from gedge.core.optional import require
from gedge.core.scores import OUTPUT_NAMES, Scores
from gedge.runtime.fp16_emulation import rounding_emulation
from gedge.runtime.options import FP16_MODES, OpenOptions

_ORT_TYPES = {"tensor(uint8)": "uint8", "tensor(float)": "float32", "tensor(float16)": "float16"}
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
FP16_NOTE = ("FP16 graph run on ONNX Runtime CPU with FP16 rounding emulated (FP16 storage, FP32 math): "
             "the CPU provider has no FP16 convolutions")


def _session_options(ort, threads: int, optimization: str, spin: bool):
    """Sequential execution on ``threads`` intra-op threads (0: ONNX Runtime's default), at ``optimization``."""
    if optimization not in OPTIMIZATION_LEVELS:
        raise ConfigError(f"optimization must be one of {', '.join(OPTIMIZATION_LEVELS)}, got {optimization!r}")
    levels = dict(zip(OPTIMIZATION_LEVELS, (ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                                            ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                            ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                            ort.GraphOptimizationLevel.ORT_ENABLE_ALL)))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = levels[optimization]
    if not spin:  # spinning worker threads cost more than they save on a shared CPU
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


class OrtBackend(BackendBase):
    """Scores uint8 NHWC batches with an ONNX scorer graph on ONNX Runtime."""

    def __init__(self, graph: Artifact, threads: int = 0, providers: list[str] | None = None,
                 fp16: str = "auto", spin: bool = False, optimization: str = "all") -> None:
        if fp16 not in FP16_MODES:
            raise ConfigError(f"fp16 must be auto, emulate or native, got {fp16!r}")
        if threads < 0:
            raise ConfigError(f"threads must be 0 (ONNX Runtime's default) or more, got {threads}")
        ort = require("onnxruntime", "the onnxruntime backend")
        if graph.kind != "graph" or graph.onnx_model is None:
            raise ConfigError(f"{graph.name}: the onnxruntime backend needs an .onnx graph")
        self.path = graph.path
        model = graph.onnx_model
        self.facts = graph.model_facts()
        self.providers = providers or ["CPUExecutionProvider"]
        cpu_only = self.providers == ["CPUExecutionProvider"]
        self.fp16_emulated = self.facts.precision == "fp16" and (fp16 == "emulate" or (fp16 == "auto" and cpu_only))
        if self.fp16_emulated:
            model = rounding_emulation(model)
            optimization = "basic" if optimization == "all" else optimization
        options = _session_options(ort, threads, optimization, spin)
        try:
            self.session = ort.InferenceSession(model.SerializeToString(), options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ArtifactError(f"ONNX Runtime cannot load the graph: {first_line(exc)}", self.path) from None
        graph_input = self.session.get_inputs()[0]
        self.input_name = graph_input.name
        self.input_dtype = _ORT_TYPES.get(graph_input.type, graph_input.type)
        self.input_layout = "NHWC" if self.facts.input_kind == "uint8-nhwc" else "NCHW"
        self.output_names = [o.name for o in self.session.get_outputs()]
        missing = [n for n in OUTPUT_NAMES if n not in self.output_names]
        if missing:
            raise ArtifactError(f"graph lacks the outputs {', '.join(missing)}", self.path)
        self.with_amap = "amap" in self.output_names
        self.input_spec = self.facts.input_spec()
        self.threads = threads
        device = "cpu" if cpu_only else self.providers[0].removesuffix("ExecutionProvider").lower()
        suffix = " (fp16 emulated: fp16 storage, fp32 math)" if self.fp16_emulated else ""
        flavour = self.facts.flavour or None
        self.name = f"onnxruntime-{device}-{self.facts.precision}{f'-{flavour}' if flavour else ''}{suffix}"
        self.info = BackendInfo(
            kind="onnxruntime", precision=self.facts.precision, device=device, flavour=flavour or "",
            label=f"onnxruntime {self.facts.precision.upper()}" + (f" ({flavour})" if flavour else "")
            + (" (fp16 emulated)" if self.fp16_emulated else ""),
            with_amap=self.with_amap, artifact=graph,
            notes=(FP16_NOTE,) if self.fp16_emulated else (),
            runtime=f"onnxruntime {ort.__version__}, {threads or 'default'} threads, {self.providers[0]}")

    def feed(self, batch: np.ndarray) -> np.ndarray:
        """The graph's input for a uint8 NHWC batch."""
        return graph_input(batch, "uint8-nhwc" if self.input_layout == "NHWC" else "float-nchw")

    def run(self, graph_input: np.ndarray) -> Scores:
        """Score the graph's own input (uint8 NHWC or float NCHW in [-1, 1]) as it is."""
        try:
            outputs = self.session.run(self.output_names, {self.input_name: graph_input})
        except Exception as error:  # onnxruntime's own exception types (Fail, RuntimeException, ...)
            raise RuntimeFailure(f"onnxruntime failed to run the graph: {error}", self.path) from error
        values = {name: np.asarray(v, dtype=np.float32) for name, v in zip(self.output_names, outputs)}
        return Scores.from_dict(values)

    def score_impl(self, batch: np.ndarray) -> Scores:
        return self.run(self.feed(batch))

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]


def open_artifact(graph: Artifact, options: OpenOptions) -> OrtBackend:
    """The registry's opener: the graph on ONNX Runtime's CPU provider."""
    return OrtBackend(graph, threads=options.threads, fp16=options.fp16)

"""How the runtime registry opens a backend (:class:`OpenOptions`): each backend reads the settings that apply to it."""

from __future__ import annotations

from dataclasses import dataclass

from gedge.core.errors import ConfigError

OPENVINO_PERFORMANCE = ("latency", "throughput")
FP16_MODES = ("auto", "emulate", "native")


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

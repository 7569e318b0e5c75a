"""The TensorRT module an engine needs (classic ``tensorrt`` or ``tensorrt_rtx``): importing it, its data types in
numpy terms, and a logger that keeps its messages for gedge's one-line errors instead of printing them."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
from gedge.core.errors import ArtifactError, ConfigError

_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "UINT8": np.uint8, "INT32": np.int32,
           "INT64": np.int64, "BOOL": np.bool_}


def numpy_dtype(module: Any, trt_dtype: Any) -> np.dtype:
    for name, dtype in _DTYPES.items():
        if getattr(module.DataType, name, None) == trt_dtype:
            return np.dtype(dtype)
    raise ArtifactError(f"engine tensor of type {trt_dtype} has no numpy equivalent")


def import_runtime(flavour: str) -> Any:
    """The TensorRT module of an engine's flavour, with its runtime (Runtime, execute_async_v3)."""
    if flavour not in ("tensorrt", "tensorrt_rtx"):
        raise ArtifactError(f"manifest names an unknown TensorRT flavour {flavour!r}")
    try:
        module = importlib.import_module(flavour)
    except Exception as exc:  # ImportError, or OSError from a missing libnvinfer
        pip = "tensorrt-rtx-cu13" if flavour == "tensorrt_rtx" else "tensorrt (Jetson: JetPack)"
        raise ConfigError(f"the engine needs {flavour}, which does not import here "
                          f"({exc.__class__.__name__}: {str(exc).strip()[:120]}); install {pip}") from None
    if not hasattr(module, "Runtime"):
        raise ConfigError(f"{flavour} imports but has no Runtime (the PyPI placeholder package?)")
    return module


class TensorRTLogger:
    """Keeps TensorRT's warnings and errors for the error messages instead of printing them."""

    def __init__(self, module: Any) -> None:
        severities = module.ILogger.Severity
        keep = {getattr(severities, s) for s in ("INTERNAL_ERROR", "ERROR", "WARNING") if hasattr(severities, s)}
        self.messages: list[str] = []
        outer = self

        class Impl(module.ILogger):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                module.ILogger.__init__(self)

            def log(self, severity, msg):  # noqa: ANN001 - TensorRT's signature
                if severity in keep:
                    outer.messages.append(str(msg))

        self.impl = Impl()

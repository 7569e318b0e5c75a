"""The one TensorRT import of gedge: which flavour is installed (classic ``tensorrt`` or ``tensorrt_rtx``), the
module an engine needs, TensorRT's enums looked up by name, its data types in numpy terms, and the one logger
that keeps TensorRT's messages for gedge's one-line errors instead of printing them.

Building (:mod:`gedge.export`) needs a flavour with a builder and an ONNX parser (:func:`import_tensorrt`); running
an engine (:mod:`gedge.runtime.tensorrt_backend`) needs the flavour its manifest names, with a runtime
(:func:`import_runtime`). Both import through :func:`gedge.core.optional.load`, so nothing here imports TensorRT
before it is asked for: a device checks an engine's manifest before any library is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.optional import load

MODULE_NAMES: tuple[str, ...] = ("tensorrt", "tensorrt_rtx")


SEVERITIES = ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE")  # most severe first


_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "UINT8": np.uint8, "INT32": np.int32,
           "INT64": np.int64, "BOOL": np.bool_}


@dataclass
class TensorRT:
    """An imported TensorRT flavour."""

    name: str
    module: ModuleType
    version: str

    @property
    def is_rtx(self) -> bool:
        return self.name == "tensorrt_rtx"


def _usable(module: ModuleType) -> bool:
    # The PyPI `tensorrt` placeholder imports but has no builder; a half-installed wheel may lack bindings.
    return all(hasattr(module, attr) for attr in ("Builder", "OnnxParser", "Logger"))


def import_tensorrt(prefer: str | None = None) -> tuple[TensorRT | None, str]:
    """The first TensorRT flavour with a builder and a parser (``prefer`` only, if given) and, when none is, the
    reason why."""
    reasons = []
    for name in [prefer] if prefer else list(MODULE_NAMES):
        module, why = load(name)
        if module is None:
            reasons.append(f"{name}: {why}")
            continue
        if not _usable(module):
            reasons.append(f"{name}: imported but has no Builder/OnnxParser (placeholder package?)")
            continue
        return TensorRT(name, module, str(getattr(module, "__version__", "unknown"))), ""
    return None, "; ".join(reasons)


def import_runtime(flavour: str) -> Any:
    """The TensorRT module of an engine's flavour, with its runtime (Runtime, execute_async_v3)."""
    if flavour not in MODULE_NAMES:
        raise ArtifactError(f"manifest names an unknown TensorRT flavour {flavour!r}")
    module, why = load(flavour)
    if module is None:
        pip = "tensorrt-rtx-cu13" if flavour == "tensorrt_rtx" else "tensorrt (Jetson: JetPack)"
        raise ConfigError(f"the engine needs {flavour}, which does not import here ({why}); install {pip}")
    if not hasattr(module, "Runtime"):
        raise ConfigError(f"{flavour} imports but has no Runtime (the PyPI placeholder package?)")
    return module


def member(enum: Any, name: str) -> Any | None:
    """An enum member by name, or None when this TensorRT version does not have it."""
    return getattr(enum, name, None)


def numpy_dtype(module: Any, trt_dtype: Any) -> np.dtype:
    """The numpy type of a TensorRT tensor type (looked up by the member's name: the values changed between
    versions)."""
    for name, dtype in _DTYPES.items():
        if getattr(module.DataType, name, None) == trt_dtype:
            return np.dtype(dtype)
    raise ArtifactError(f"engine tensor of type {trt_dtype} has no numpy equivalent")


class TensorRTLogger:
    """A TensorRT logger that keeps the messages of ``min_severity`` and above, as (severity name, text), for the
    error messages instead of printing them. ``impl`` is what TensorRT's Builder, OnnxParser and Runtime take."""

    def __init__(self, module: Any, min_severity: str = "WARNING") -> None:
        severities = module.ILogger.Severity
        kept = SEVERITIES[: SEVERITIES.index(min_severity) + 1]
        names = {getattr(severities, s): s for s in SEVERITIES if hasattr(severities, s)}
        keep = {value for value, name in names.items() if name in kept}
        self.messages: list[tuple[str, str]] = []
        outer = self

        class Impl(module.ILogger):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                module.ILogger.__init__(self)

            def log(self, severity, msg):  # noqa: ANN001 - TensorRT's signature
                if severity in keep:
                    outer.messages.append((names.get(severity, str(severity)), str(msg)))

        self.impl = Impl()

    def errors(self, since: int = 0) -> list[str]:
        """The error messages logged (since message number ``since``)."""
        return [text for severity, text in self.messages[since:] if severity in ("INTERNAL_ERROR", "ERROR")]

    def last(self, count: int) -> list[str]:
        """The texts of the last ``count`` messages."""
        return [text for _, text in self.messages[-count:]] if count else []


def creation_flags(module: ModuleType, strongly_typed: bool, explicit_batch: bool) -> int:
    """``create_network`` flags, each looked up by name (absent members are skipped)."""
    flags = 0
    creation = module.NetworkDefinitionCreationFlag
    explicit = member(creation, "EXPLICIT_BATCH")
    if explicit_batch and explicit is not None:
        flags |= 1 << int(explicit)
    typed = member(creation, "STRONGLY_TYPED")
    if strongly_typed and typed is not None:
        flags |= 1 << int(typed)
    return flags

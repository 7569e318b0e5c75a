"""TODO: docstring (split from gedge.export.tensorrt_compat)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

MODULE_NAMES: tuple[str, ...] = ("tensorrt", "tensorrt_rtx")


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
    """The first usable TensorRT module (``prefer`` first, if given) and, when none is, the reason why."""
    names = [prefer] if prefer else list(MODULE_NAMES)
    reasons = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # ImportError, or an OSError from a missing shared library
            reasons.append(f"{name}: {exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")
            continue
        if not _usable(module):
            reasons.append(f"{name}: imported but has no Builder/OnnxParser (placeholder package?)")
            continue
        return TensorRT(name, module, str(getattr(module, "__version__", "unknown"))), ""
    return None, "; ".join(reasons)


def member(enum: Any, name: str) -> Any | None:
    """An enum member by name, or None when this TensorRT version does not have it."""
    return getattr(enum, name, None)


class _Logger:
    """A TensorRT logger that keeps the messages (so errors can be reported) instead of printing them."""

    def __init__(self, trt: TensorRT, min_severity: str = "WARNING") -> None:
        base = trt.module.ILogger
        severities = trt.module.ILogger.Severity
        order = ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"]
        self._keep = {getattr(severities, s) for s in order[: order.index(min_severity) + 1] if hasattr(severities, s)}
        self._names = {getattr(severities, s): s for s in order if hasattr(severities, s)}
        self.messages: list[tuple[str, str]] = []
        logger = self

        class Impl(base):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                base.__init__(self)

            def log(self, severity, msg):  # noqa: ANN001 - TensorRT's signature
                if severity in logger._keep:
                    logger.messages.append((logger._names.get(severity, str(severity)), str(msg)))

        self.impl = Impl()

    def errors(self) -> list[str]:
        return [m for s, m in self.messages if s in ("INTERNAL_ERROR", "ERROR")]


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

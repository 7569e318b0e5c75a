"""What a TensorRT can do, as far as gedge's engine builds are concerned: probed from its module (enum members and
attributes present), never read from its version string alone (:meth:`TensorRTCapabilities.probe`).

:data:`ASSUMED` describes the modules of releases that are not installed (``gedge build --dry-run --assume
trt-8.5``) as the attributes those modules have, and goes through the same probe.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Any

from gedge.core.errors import ConfigError

# TensorRT-RTX's default AOT targets when no compute capability is given (its documentation: Ampere and later).
RTX_DEFAULT_TARGETS = ("SM80", "SM86", "SM89", "SM120")
CALIBRATORS = ("IInt8EntropyCalibrator2", "IInt8MinMaxCalibrator", "IInt8EntropyCalibrator", "IInt8LegacyCalibrator")


# --- capabilities ------------------------------------------------------------------------------------------


def _members(enum: Any) -> list[str]:
    members = getattr(enum, "__members__", None)
    return list(members) if members is not None else []


@dataclass(frozen=True)
class TensorRTCapabilities:
    """What one TensorRT module can do, as far as gedge's builds are concerned."""

    flavour: str  # "tensorrt" or "tensorrt_rtx"
    version: str
    strongly_typed: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED exists (9.x and later)
    weak_typing: bool  # precision builder flags exist, so a weakly typed network can use FP16/INT8
    explicit_batch_required: bool  # EXPLICIT_BATCH exists and implicit batch too (8.x): the flag must be set
    fp16_flag: bool
    int8_flag: bool
    tf32_flag: bool
    precision_constraints: bool  # OBEY_PRECISION_CONSTRAINTS and per-layer precision
    calibrators: tuple[str, ...]  # IInt8*Calibrator classes (implicit INT8 from a calibration cache)
    memory_pool_limit: bool  # IBuilderConfig.set_memory_pool_limit (8.4+); else max_workspace_size
    optimization_level: bool  # IBuilderConfig.builder_optimization_level (8.6+)
    timing_cache: bool  # a timing cache that affects the build (not TensorRT-RTX, where it is a no-op)
    progress_monitor: bool  # IProgressMonitor (10.0+)
    compute_capabilities: tuple[str, ...]  # ahead-of-time targets (TensorRT-RTX), e.g. ("SM75", "SM86")
    assumed: bool = False  # described by --assume, not imported

    @property
    def is_rtx(self) -> bool:
        return self.flavour == "tensorrt_rtx"

    @property
    def label(self) -> str:
        name = "TensorRT-RTX" if self.is_rtx else "TensorRT"
        return f"{name} {self.version}" + (" (assumed)" if self.assumed else "")

    @property
    def strongly_typed_only(self) -> bool:
        """TensorRT 11.x and TensorRT-RTX: no precision flags, so every network is strongly typed."""
        return not self.weak_typing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def probe(cls, module: Any, flavour: str | None = None, version: str | None = None,
              assumed: bool = False) -> TensorRTCapabilities:
        """Capabilities of an imported ``tensorrt`` or ``tensorrt_rtx`` module (or a stand-in with its attributes)."""
        flavour = flavour or str(getattr(module, "__name__", "tensorrt")).split(".")[0]
        version = version or str(getattr(module, "__version__", "unknown"))
        creation = _members(getattr(module, "NetworkDefinitionCreationFlag", None))
        flags = _members(getattr(module, "BuilderFlag", None))
        config = getattr(module, "IBuilderConfig", None)
        builder = getattr(module, "Builder", None)
        layer = getattr(module, "ILayer", None)
        is_rtx = flavour == "tensorrt_rtx"
        fp16, int8 = "FP16" in flags, "INT8" in flags
        calibrators = tuple(c for c in CALIBRATORS if hasattr(module, c))
        if not hasattr(config, "int8_calibrator"):
            calibrators = ()
        ccs = tuple(m for m in _members(getattr(module, "ComputeCapability", None)) if re.fullmatch(r"SM\d+", m))
        return cls(
            flavour=flavour, version=version,
            strongly_typed="STRONGLY_TYPED" in creation or is_rtx,
            weak_typing=fp16 or int8,
            # Implicit batch (and with it IBuilder.max_batch_size) went away in 10.0; from then on the
            # EXPLICIT_BATCH flag is deprecated and ignored.
            explicit_batch_required="EXPLICIT_BATCH" in creation and hasattr(builder, "max_batch_size"),
            fp16_flag=fp16, int8_flag=int8, tf32_flag="TF32" in flags,
            precision_constraints="OBEY_PRECISION_CONSTRAINTS" in flags and hasattr(layer, "precision"),
            calibrators=calibrators,
            memory_pool_limit=hasattr(config, "set_memory_pool_limit"),
            optimization_level=hasattr(config, "builder_optimization_level"),
            # TensorRT-RTX keeps the timing cache API but it does nothing (and it would need a GPU).
            timing_cache=hasattr(config, "create_timing_cache") and not is_rtx,
            progress_monitor=hasattr(module, "IProgressMonitor") and hasattr(config, "progress_monitor"),
            compute_capabilities=ccs if hasattr(config, "set_compute_capability") else (),
            assumed=assumed,
        )


# --- modules of versions that are not installed (for --dry-run --assume) ------------------------------------


@dataclass(frozen=True)
class ModuleSpec:
    """The attributes of one TensorRT release's Python module that :meth:`TensorRTCapabilities.probe` reads."""

    flavour: str
    version: str
    creation_flags: tuple[str, ...]
    builder_flags: tuple[str, ...]
    config_attrs: tuple[str, ...]
    builder_attrs: tuple[str, ...] = ("build_serialized_network", "create_network", "create_builder_config")
    layer_attrs: tuple[str, ...] = ("name", "type")
    module_attrs: tuple[str, ...] = ()
    compute_capabilities: tuple[str, ...] = ()
    description: str = ""

    def module(self) -> SimpleNamespace:
        """A stand-in module with exactly these attributes."""

        def enum(names: tuple[str, ...]) -> SimpleNamespace:
            values = {n: i for i, n in enumerate(names)}
            return SimpleNamespace(__members__=values, **values)

        def cls(attrs: tuple[str, ...]) -> type:
            return type("Stub", (), dict.fromkeys(attrs))

        values: dict[str, Any] = {
            "__name__": self.flavour, "__version__": self.version,
            "NetworkDefinitionCreationFlag": enum(self.creation_flags), "BuilderFlag": enum(self.builder_flags),
            "IBuilderConfig": cls(self.config_attrs), "Builder": cls(self.builder_attrs),
            "ILayer": cls(self.layer_attrs), "OnnxParser": cls(()), "Logger": cls(()),
        }
        values.update({name: cls(()) for name in self.module_attrs})
        if self.compute_capabilities:
            values["ComputeCapability"] = enum(("NONE", "CURRENT", *self.compute_capabilities))
        return SimpleNamespace(**values)

    def capabilities(self) -> TensorRTCapabilities:
        return TensorRTCapabilities.probe(self.module(), self.flavour, self.version, assumed=True)


_CONFIG_8 = ("set_flag", "clear_flag", "get_flag", "add_optimization_profile", "set_memory_pool_limit",
             "create_timing_cache", "set_timing_cache", "get_timing_cache", "int8_calibrator")
_FLAGS_8 = ("FP16", "INT8", "DEBUG", "GPU_FALLBACK", "STRICT_TYPES", "REFIT", "DISABLE_TIMING_CACHE", "TF32",
            "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
            "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS")
_FLAGS_10 = ("FP16", "INT8", "BF16", "FP8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32",
             "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
             "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME",
             "ERROR_ON_TIMING_CACHE_MISS", "DISABLE_COMPILATION_CACHE", "WEIGHTLESS", "STRIP_PLAN",
             "REFIT_IDENTICAL", "WEIGHT_STREAMING")
_FLAGS_11 = tuple(f for f in _FLAGS_10 if f not in ("FP16", "INT8", "BF16", "FP8", "OBEY_PRECISION_CONSTRAINTS",
                                                   "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO", "WEIGHTLESS"))
_LAYER_WEAK = ("name", "type", "precision", "set_output_type", "reset_precision")

ASSUMED: dict[str, ModuleSpec] = {
    "trt-8.5": ModuleSpec(
        "tensorrt", "8.5.2.2", ("EXPLICIT_BATCH", "EXPLICIT_PRECISION"), _FLAGS_8, _CONFIG_8,
        builder_attrs=("build_serialized_network", "create_network", "create_builder_config", "max_batch_size"),
        layer_attrs=_LAYER_WEAK, module_attrs=CALIBRATORS, description="JetPack 5.1 (L4T r35)"),
    "trt-8.6": ModuleSpec(
        "tensorrt", "8.6.2.3", ("EXPLICIT_BATCH", "EXPLICIT_PRECISION"),
        (*_FLAGS_8, "FP8", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME"),
        (*_CONFIG_8, "builder_optimization_level", "hardware_compatibility_level"),
        builder_attrs=("build_serialized_network", "create_network", "create_builder_config", "max_batch_size"),
        layer_attrs=_LAYER_WEAK, module_attrs=CALIBRATORS, description="JetPack 6.0 (L4T r36.2/36.3)"),
    "trt-10.3": ModuleSpec(
        "tensorrt", "10.3.0.30", ("EXPLICIT_BATCH", "STRONGLY_TYPED"), _FLAGS_10,
        (*_CONFIG_8, "builder_optimization_level", "hardware_compatibility_level", "progress_monitor"),
        layer_attrs=_LAYER_WEAK, module_attrs=(*CALIBRATORS, "IProgressMonitor"),
        description="JetPack 6.1/6.2 (L4T r36.4)"),
    "trt-11": ModuleSpec(
        "tensorrt", "11.4.0", ("STRONGLY_TYPED",), _FLAGS_11,
        tuple(a for a in (*_CONFIG_8, "builder_optimization_level", "hardware_compatibility_level",
                          "progress_monitor") if a != "int8_calibrator"),
        module_attrs=("IProgressMonitor",), description="x86 servers, strongly typed only"),
    "rtx": ModuleSpec(
        "tensorrt_rtx", "1.7.1.116", ("STRONGLY_TYPED",),
        ("DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "EDITABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
         "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "STRIP_PLAN", "REFIT_IDENTICAL", "WEIGHT_STREAMING"),
        ("set_flag", "clear_flag", "get_flag", "add_optimization_profile", "set_memory_pool_limit",
         "create_timing_cache", "set_timing_cache", "builder_optimization_level", "progress_monitor",
         "set_compute_capability", "num_compute_capabilities"),
        module_attrs=("IProgressMonitor",), compute_capabilities=("SM75", "SM80", "SM86", "SM89", "SM120", "SM121"),
        description="TensorRT for RTX, ahead-of-time builds without a GPU"),
}


def assumed_capabilities(name: str) -> TensorRTCapabilities:
    if name not in ASSUMED:
        raise ConfigError(f"--assume must be one of {', '.join(ASSUMED)}, got {name!r}")
    return ASSUMED[name].capabilities()

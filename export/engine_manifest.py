"""The manifest an engine is written with (``<engine>.json``): what it was built from, for what, how, and the
scoring facts a runtime needs, so that the engine is checked against it wherever it is loaded
(:mod:`gedge.core.artifacts.engine`)."""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from gedge import __version__
from gedge.core.artifacts.graph import GraphFacts
from gedge.core.hashing import sha256_file
from gedge.export.build_plan import BuildPlan, GraphInfo
from gedge.export.capabilities import RTX_DEFAULT_TARGETS, TensorRTCapabilities
from gedge.export.tensorrt_build import Serialized, cache_header
from onnx import numpy_helper


def int8_facts(model: onnx.ModelProto, plan: BuildPlan, cache: bytes | None) -> dict[str, Any] | None:
    """The calibration set's hash and method, from the graph's metadata (``gedge.*`` keys about calibration or
    quantisation) and, for an implicit build, from the calibration cache."""
    if plan.precision != "int8":
        return None
    ignore = {"decision", "primary_score", "threshold"}  # the score calibration, not INT8's
    found: dict[str, Any] = {}
    for prop in model.metadata_props:
        name = prop.key.removeprefix("gedge.")
        if name == prop.key or name in ignore or not any(k in name for k in ("calib", "quant", "int8")):
            continue
        try:
            found[name] = json.loads(prop.value)
        except ValueError:
            found[name] = prop.value

    def first(key_words: tuple[str, ...], value: Any) -> str:
        if isinstance(value, dict):
            for key, inner in value.items():
                if isinstance(inner, (str, int, float)) and all(w in key.lower() for w in key_words):
                    return str(inner)
            for inner in value.values():
                hit = first(key_words, inner)
                if hit:
                    return hit
        return ""

    facts: dict[str, Any] = {
        "quantization": plan.quantization,
        "set_sha256": (first(("calibration_set_sha256",), found) or first(("set", "sha256"), found)
                       or first(("sha256",), found) or first(("hash",), found)),
        "method": first(("method",), found),
        "flavour": first(("flavour",), found),
        "graph_facts": found,
    }
    if cache is not None:
        version_tag, algorithm = cache_header(cache)
        facts.update(cache=Path(plan.calibration_cache).name, cache_sha256=hashlib.sha256(cache).hexdigest(),
                     cache_tensorrt=version_tag, method=facts["method"] or algorithm)
    return facts


def graph_weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the graph's initializers as stored (int8 weights of a Q/DQ graph count one byte each)."""
    return int(sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer))


def engine_target(caps: TensorRTCapabilities, plan: BuildPlan, device: Any | None, no_device: str) -> dict[str, Any]:
    """What the engine runs on: ahead-of-time compute capabilities (TensorRT-RTX) or the GPU it was built on."""
    if caps.is_rtx:
        return {"kind": "aot", "compute_capabilities": plan.compute_capabilities,
                "default_targets": [] if plan.compute_capabilities else list(RTX_DEFAULT_TARGETS),
                "description": plan.target}
    return {"kind": "gpu", "gpu_name": device.name if device else "",
            "compute_capability": device.compute_capability if device else "",
            "description": plan.target if device else f"unknown GPU ({no_device})"}


@dataclass(frozen=True)
class SourceGraph:
    """The graph an engine is built from (perhaps derived from the one the user gave) and its facts."""

    path: Path
    given: Path
    model: onnx.ModelProto
    facts: GraphFacts
    info: GraphInfo
    cache: bytes | None = None  # the INT8 calibration cache of an implicit build


def _input_entry(source: SourceGraph) -> dict[str, Any]:
    kind = source.facts.input
    return {"name": source.info.input_name, "kind": kind, "dtype": "uint8" if kind == "uint8-nhwc" else "float32",
            "layout": "NHWC" if kind == "uint8-nhwc" else "NCHW", "shape": [-1, *source.info.input_shape]}


def _build_entry(plan: BuildPlan, built: Serialized, seconds: float) -> dict[str, Any]:
    return {"plan": plan.to_dict(), "seconds": seconds, "pinned_fp32_layers": built.pinned_layers,
            "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "timing_cache": built.timing_note}


def engine_manifest(plan: BuildPlan, caps: TensorRTCapabilities, source: SourceGraph, built: Serialized,
                    target: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The manifest of a freshly built engine; parity is pending until it is measured."""
    facts = source.facts
    derived = source.path != source.given
    return {
        "engine": Path(plan.engine).name,
        "engine_sha256": hashlib.sha256(built.engine).hexdigest(),
        "engine_bytes": len(built.engine),
        "source_graph": {"path": source.path.name, "sha256": sha256_file(source.path), "precision": facts.precision,
                         "weight_bytes": graph_weight_bytes(source.model)},
        "given_graph": {"path": source.given.name, "sha256": sha256_file(source.given)} if derived else None,
        "source_checkpoint": {"path": facts.source_checkpoint, "sha256": facts.source_sha256},
        "tensorrt": {"flavour": caps.flavour, "version": caps.version},
        "target": target,
        "precision": plan.precision,
        "network": plan.network,
        "profile": plan.profile,
        "profiles": plan.profiles,
        "input": _input_entry(source),
        "input_spec": facts.input_spec().to_dict(),
        "outputs": built.outputs,
        "score_stats": facts.score_stats,
        "primary_score": facts.primary,
        "threshold": facts.threshold,
        "decision": facts.decision,
        "calibration_set": int8_facts(source.model, plan, source.cache),
        "model": facts.model,
        "preprocess": facts.preprocess,
        "build": _build_entry(plan, built, seconds),
        "gedge_version": __version__,
        "parity": {"engine": {"status": "pending", "reason": "measured after the engine is written"}},
    }

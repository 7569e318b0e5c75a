"""The TensorRT builder calls that report failure only through their return value (gedge.export.tensorrt_build):
a refused compute capability or optimisation profile is a one-line error naming the call; a timing cache that
TensorRT does not take is never reported as reused; a timing cache that cannot be saved never loses the engine.

They run on the installed TensorRT (TensorRT-RTX's builder runs on a CPU) with a one-node graph that builds in
a fraction of a second; a failure TensorRT cannot be made to produce here is made by replacing that one call.
Without a TensorRT module they skip with the import error.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

import pytest
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.tensorrt import import_tensorrt
from gedge.export.build_plan import BuildPlan
from gedge.export.capabilities import TensorRTCapabilities
from gedge.export.tensorrt_build import BuildInputs, serialize
from onnx import TensorProto, helper

TRT, WHY_NOT = import_tensorrt()
pytestmark = pytest.mark.skipif(TRT is None, reason=f"no TensorRT module importable: {WHY_NOT}")


def relu_graph():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def build(tmp_path: Path, **plan_fields):
    plan = BuildPlan(tensorrt=f"{TRT.name} {TRT.version}", flavour=TRT.name, version=TRT.version, assumed=False,
                     precision="fp32", network="strongly typed", graph=str(tmp_path / "relu.onnx"),
                     graph_given=str(tmp_path / "relu.onnx"), derive_fp16=False, quantization="none",
                     engine=str(tmp_path / "relu.engine"),
                     profile={"input": "x", "min": [1, 3], "opt": [2, 3], "max": [4, 3]})
    caps = TensorRTCapabilities.probe(TRT.module, TRT.name, TRT.version)
    return serialize(BuildInputs(TRT, caps, replace(plan, **plan_fields), relu_graph()))


def test_a_refused_compute_capability_is_one_line_naming_the_call(tmp_path):
    if not hasattr(TRT.module.IBuilderConfig, "set_compute_capability"):
        pytest.skip(f"{TRT.name} {TRT.version} has no ahead-of-time compute capabilities")
    assert len(build(tmp_path, compute_capabilities=["SM86"]).engine) > 0
    with pytest.raises(ConfigError) as error:  # NONE is a member TensorRT refuses (set_compute_capability: False)
        build(tmp_path, compute_capabilities=["NONE"])
    text = str(error.value)
    assert "refused set_compute_capability(NONE, 0)" in text and "relu.onnx" in text and "\n" not in text


def test_a_refused_optimisation_profile_is_one_line_naming_the_call(tmp_path, monkeypatch):
    monkeypatch.setattr(TRT.module.IBuilderConfig, "add_optimization_profile", lambda self, profile: -1)
    with pytest.raises(ArtifactError, match=r"refused the optimisation profile .*\(add_optimization_profile\)"):
        build(tmp_path)


def test_timing_cache_created_then_an_unreadable_one_is_not_reported_as_reused(tmp_path):
    cache = tmp_path / "t.cache"
    built = build(tmp_path, timing_cache=str(cache))
    assert built.timing_note == f"timing cache {cache} created" and cache.stat().st_size > 0
    cache.write_bytes(b"not a timing cache")
    built = build(tmp_path, timing_cache=str(cache))
    assert built.engine and "reused" not in built.timing_note.replace("not reused", "")
    assert built.timing_note.startswith(f"timing cache {cache} not reused (") and "a new one is written" in \
        built.timing_note
    assert cache.read_bytes() != b"not a timing cache"  # replaced by the build's own


def test_a_rejected_timing_cache_is_replaced_by_a_new_one(tmp_path, monkeypatch):
    cache = tmp_path / "t.cache"
    cache.write_bytes(b"a cache of another GPU")
    original = TRT.module.IBuilderConfig.set_timing_cache
    seen: list[bool] = []

    def rejects_the_first(self, timing_cache, ignore_mismatch):  # TensorRT's answer to a mismatched cache
        seen.append(bool(seen))
        return original(self, timing_cache, ignore_mismatch) if len(seen) > 1 else False

    monkeypatch.setattr(TRT.module.IBuilderConfig, "set_timing_cache", rejects_the_first)
    built = build(tmp_path, timing_cache=str(cache))
    assert seen == [False, True] and built.engine
    assert built.timing_note.startswith(f"timing cache {cache} not reused (set_timing_cache returned False")
    monkeypatch.setattr(TRT.module.IBuilderConfig, "set_timing_cache", lambda *args: False)
    built = build(tmp_path, timing_cache=str(cache))
    assert built.engine and built.timing_note.startswith("timing cache not used: set_timing_cache returned False")


def test_a_timing_cache_that_cannot_be_saved_keeps_the_engine(tmp_path, monkeypatch):
    cache = tmp_path / "t.cache"
    monkeypatch.setattr(TRT.module.IBuilderConfig, "get_timing_cache", lambda self: None)
    built = build(tmp_path, timing_cache=str(cache))
    assert len(built.engine) > 0
    assert built.timing_note.endswith(f"timing cache {cache} not saved: TensorRT returned none")
    assert not cache.exists()
    monkeypatch.undo()
    (tmp_path / "a file").write_text("")
    built = build(tmp_path, timing_cache=str(tmp_path / "a file" / "t.cache"))  # a folder that cannot exist
    assert len(built.engine) > 0 and "not saved: " in built.timing_note


def test_the_cycle_collector_is_paused_while_tensorrt_builds(tmp_path, monkeypatch):
    """TensorRT calls the Python logger under a lock of its own; an automatic collection there can run an old
    builder's destructor, which waits for that lock for ever (seen as a hung CI run; docs/backend-quirks.md)."""
    seen: list[bool] = []
    original = TRT.module.Builder.build_serialized_network

    def recording(self, network, config):
        seen.append(gc.isenabled())
        return original(self, network, config)

    monkeypatch.setattr(TRT.module.Builder, "build_serialized_network", recording)
    assert gc.isenabled()
    built = build(tmp_path)
    assert seen == [False] and len(built.engine) > 0
    assert gc.isenabled()  # turned back on after the build
    gc.disable()
    try:
        build(tmp_path)
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()

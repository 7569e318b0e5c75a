"""Build plans for every TensorRT row of the design (8.5/8.6, 10.x, 11.x, TensorRT-RTX): pure, no TensorRT needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.facts import ModelFacts
from gedge.core.artifacts.layout import GraphLayout
from gedge.core.decision import DecisionRule
from gedge.core.errors import ConfigError
from gedge.core.preprocess import Preprocess
from gedge.core.scores import OUTPUT_NAMES
from gedge.core.tensorrt import import_tensorrt
from gedge.export.build_plan import (
    BuildRequest,
    default_engine_path,
    normalise_compute_capability,
    plan_build,
)
from gedge.export.capabilities import ASSUMED, TensorRTCapabilities, assumed_capabilities
from gedge.export.tensorrt_build import residual_layers

SHAPE = (16, 16, 3)


def graph_of(path: str, precision: str, qdq: bool = False, qdq_uint8: bool = False) -> Artifact:
    """A graph as the plan sees it: its facts (precision) and its layout (input, Q/DQ nodes), no file needed."""
    facts = ModelFacts(precision, "uint8-nhwc", "pixels", OUTPUT_NAMES, {"isize": 16, "nc": 3}, Preprocess(isize=16),
                       DecisionRule())
    return Artifact(Path(path), "graph", "0" * 64, facts, layout=GraphLayout("pixels", SHAPE, qdq, qdq_uint8))


FP32 = graph_of("out/scorer.onnx", "fp32")
FP16 = graph_of("out/scorer.fp16.onnx", "fp16")
QDQ = graph_of("out/scorer.int8.qdq.onnx", "int8", qdq=True)


def plan(version: str, precision: str, graph: Artifact = FP32, **options):
    return plan_build(assumed_capabilities(version), BuildRequest(precision, **options), graph)


def refused(version: str, precision: str, graph: Artifact = FP32, **options) -> str:
    with pytest.raises(ConfigError) as info:
        plan(version, precision, graph, **options)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_probed_capabilities_of_each_row():
    caps = {name: spec.capabilities() for name, spec in ASSUMED.items()}
    assert not caps["trt-8.5"].strongly_typed and caps["trt-8.5"].explicit_batch_required
    assert caps["trt-8.5"].calibrators[0] == "IInt8EntropyCalibrator2" and not caps["trt-8.5"].optimization_level
    assert not caps["trt-8.5"].progress_monitor and caps["trt-8.6"].optimization_level
    assert caps["trt-10.3"].strongly_typed and caps["trt-10.3"].weak_typing
    assert not caps["trt-10.3"].explicit_batch_required and caps["trt-10.3"].progress_monitor
    assert caps["trt-11"].strongly_typed_only and not caps["trt-11"].calibrators
    assert caps["rtx"].strongly_typed_only and caps["rtx"].is_rtx and not caps["rtx"].timing_cache
    assert "SM86" in caps["rtx"].compute_capabilities and not caps["trt-10.3"].compute_capabilities
    assert all(c.assumed for c in caps.values())


@pytest.mark.skipif(import_tensorrt("tensorrt_rtx")[0] is None, reason="tensorrt_rtx is not installed")
def test_probe_of_the_installed_tensorrt_rtx_matches_its_description():
    trt, _ = import_tensorrt("tensorrt_rtx")
    real = TensorRTCapabilities.probe(trt.module, trt.name, trt.version)
    described = ASSUMED["rtx"].capabilities()
    ignore = {"version", "assumed"}
    assert {k: v for k, v in real.to_dict().items() if k not in ignore} == \
           {k: v for k, v in described.to_dict().items() if k not in ignore}


# --- TensorRT 8.5 / 8.6 (JetPack 5 / 6.0): weakly typed, builder flags --------------------------------------


def test_trt85_fp32_fp16_int8():
    fp32 = plan("trt-8.5", "fp32")
    assert fp32.network == "weakly typed" and fp32.explicit_batch_flag and fp32.builder_flags == []
    assert fp32.cleared_flags == ["TF32"] and fp32.graph == str(FP32.path) and not fp32.progress_monitor
    fp16 = plan("trt-8.5", "fp16")
    assert fp16.builder_flags == ["FP16", "OBEY_PRECISION_CONSTRAINTS"] and "residual" in fp16.fp32_pinned
    assert fp16.graph == str(FP32.path) and not fp16.derive_fp16
    int8 = plan("trt-8.5", "int8", QDQ)
    assert int8.builder_flags == ["INT8"] and int8.quantization.startswith("explicit") and not int8.fp32_pinned
    cached = plan("trt-8.5", "int8", calibration_cache="out/scorer.int8.calib.cache")
    assert cached.quantization.startswith("implicit") and cached.calibrator == "IInt8EntropyCalibrator2"
    assert cached.builder_flags == ["INT8", "OBEY_PRECISION_CONSTRAINTS"] and cached.fp32_pinned
    assert cached.profile == {"input": "pixels", "min": [1, *SHAPE], "opt": [8, *SHAPE], "max": [32, *SHAPE]}


def test_trt85_refusals():
    assert "--calibration-cache" in refused("trt-8.5", "int8") and "Q/DQ" in refused("trt-8.5", "int8")
    assert "STRONGLY_TYPED" in refused("trt-8.5", "fp16", typing="strong")
    assert "8.6" in refused("trt-8.5", "fp32", opt_level=3)
    assert "TensorRT-RTX" in refused("trt-8.5", "fp16", compute_capabilities=("SM87",))
    assert plan("trt-8.6", "fp16", opt_level=5).opt_level == 5


# --- TensorRT 10.x (JetPack 6.1+): strongly typed, or flags when asked ---------------------------------------


def test_trt103_strongly_typed_by_default_flags_when_asked():
    fp16 = plan("trt-10.3", "fp16")
    assert fp16.network == "strongly typed" and fp16.builder_flags == [] and not fp16.explicit_batch_flag
    assert fp16.graph == "out/scorer.fp16.onnx" and fp16.derive_fp16 and "derived" in fp16.notes[0]
    reuse = plan_build(assumed_capabilities("trt-10.3"), BuildRequest("fp16"), FP32, fp16_graph_exists=True)
    assert reuse.graph == "out/scorer.fp16.onnx" and not reuse.derive_fp16
    assert plan("trt-10.3", "fp16", FP16).graph == str(FP16.path)
    weak = plan("trt-10.3", "fp16", typing="weak")
    assert weak.network == "weakly typed" and weak.builder_flags == ["FP16", "OBEY_PRECISION_CONSTRAINTS"]
    assert weak.graph == str(FP32.path)
    int8 = plan("trt-10.3", "int8", QDQ)
    assert int8.network == "strongly typed" and int8.builder_flags == [] and int8.progress_monitor
    cached = plan("trt-10.3", "int8", calibration_cache="c.cache")
    assert cached.network == "weakly typed" and cached.builder_flags[0] == "INT8"
    assert plan("trt-10.3", "fp32", workspace_mb=512, timing_cache="t.cache").timing_cache == "t.cache"


# --- TensorRT 11.x and TensorRT-RTX: strongly typed only ---------------------------------------------------


@pytest.mark.parametrize("version", ["trt-11", "rtx"])
def test_strongly_typed_only(version):
    for precision, graph, used in [("fp32", FP32, str(FP32.path)), ("fp16", FP32, "out/scorer.fp16.onnx"),
                                   ("fp16", FP16, str(FP16.path)), ("int8", QDQ, str(QDQ.path))]:
        result = plan(version, precision, graph)
        assert result.network == "strongly typed" and result.builder_flags == [] and result.graph == used
        assert not result.explicit_batch_flag and not result.fp32_pinned and result.progress_monitor
    assert "weak" in refused(version, "fp16", typing="weak")
    assert "calibrators" in refused(version, "int8", calibration_cache="c.cache")
    assert "Q/DQ" in refused(version, "int8") and "--calibration-cache" not in refused(version, "int8")


def test_rtx_targets_and_ignored_timing_cache():
    result = plan("rtx", "fp16", FP16, compute_capabilities=("sm86", "8.9", "SM86"), timing_cache="t.cache")
    assert result.compute_capabilities == ["SM86", "SM89"] and result.target == "ahead of time for SM86, SM89"
    assert result.timing_cache == "" and any("timing-cache ignored" in n for n in result.notes)
    assert "SM80" in plan("rtx", "fp32").target
    assert "SM99" in refused("rtx", "fp32", compute_capabilities=("SM99",))
    assert normalise_compute_capability("sm_120") == "SM120"
    with pytest.raises(ConfigError):
        normalise_compute_capability("ampere")


def test_requests_that_do_not_fit_the_graph():
    assert "--precision int8" in refused("rtx", "fp16", QDQ)
    assert "--precision fp16" in refused("rtx", "fp32", FP16)
    assert "CPU-flavoured" in refused("rtx", "int8", graph_of("q.onnx", "int8", qdq=True, qdq_uint8=True))
    assert "not both" in refused("trt-10.3", "int8", QDQ, calibration_cache="c.cache")
    assert "min <= opt <= max" in refused("rtx", "fp32", min_batch=4, opt_batch=2)
    assert "fp32, fp16, int8" in refused("rtx", "bf16")
    assert "--assume" in str(pytest.raises(ConfigError, assumed_capabilities, "trt-7").value)


def test_engine_names_and_plan_rows():
    assert default_engine_path("a/scorer.int8.qdq.onnx", "int8") == Path("a/scorer.int8.engine")
    assert default_engine_path("wood.fp16.onnx", "fp16") == Path("wood.fp16.engine")
    rows = dict(plan("trt-8.5", "fp16").rows())
    assert rows["builder flags"] == "FP16, OBEY_PRECISION_CONSTRAINTS" and "EXPLICIT_BATCH" in rows["network"]
    assert re.search(r"scorer\.fp16\.engine \(\+ scorer\.fp16\.engine\.json", rows["engine"])


def test_residual_layers_are_everything_outside_the_networks():
    nodes = {"camera/Sub": "Sub", "netg.encoder1.main.0/Conv": "Conv", "netg.encoder1.main.1/LeakyRelu": "LeakyRelu",
             "scores/Concat": "Concat", "scores/Sub": "Sub", "scores/ReduceMean": "ReduceMean"}
    layers = [("camera/Sub", True), ("netg.encoder1.main.0/Conv", True), ("netg.encoder1.main.1/LeakyRelu", True),
              ("scores/Concat", True), ("scores/Sub", True), ("scores/ReduceMean_1", True),
              ("ONNXTRT_Broadcast", True), ("scores/Shape", False)]
    pinned = [layers[i][0] for i in residual_layers(layers, nodes)]
    assert pinned == ["camera/Sub", "scores/Sub", "scores/ReduceMean_1", "ONNXTRT_Broadcast"]

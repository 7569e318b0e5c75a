"""TensorRT's own ONNX parser on every graph gedge writes, an ahead-of-time engine build, and rejections.

CI installs ``tensorrt-rtx-cu13``, whose parser and builder run without a GPU. Without a TensorRT module
these tests skip with the import error as the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys

import onnx
import pytest
from gedge.core.tensorrt import import_tensorrt
from gedge.export.check import check_graph
from gedge.export.tensorrt_parse import ParsedNetwork
from onnx import TensorProto, helper

TRT, WHY_NOT = import_tensorrt()
pytestmark = pytest.mark.skipif(TRT is None, reason=f"no TensorRT module importable: {WHY_NOT}")
GEDGE = [sys.executable, "-m", "gedge.cli"]


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*GEDGE, *map(str, args)], capture_output=True, text=True, timeout=300)


def rejected_graph(path):
    """Valid ONNX that TensorRT refuses: a Transpose of the uint8 input (TensorRT takes uint8 only into Cast)."""
    pixels = helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["batch", 16, 16, 3])
    out = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 16, 16])
    nodes = [helper.make_node("Transpose", ["pixels"], ["t"], name="camera/Transpose", perm=[0, 3, 1, 2]),
             helper.make_node("Cast", ["t"], ["images"], name="camera/Cast", to=TensorProto.FLOAT)]
    model = helper.make_model(helper.make_graph(nodes, "rejected", [pixels], [out]),
                              opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("graph", ["fp32", "fp32_float", "fp16"])
def test_every_graph_parses(scorer_graphs, graph):
    result = check_graph(scorer_graphs[graph])
    assert result.onnx_ok and result.tensorrt is not None, result.tensorrt_skipped
    assert result.tensorrt.parsed and not result.tensorrt.issues, result.tensorrt.issues
    assert result.ok


def test_fp16_and_fp32_engines_build_ahead_of_time(scorer_graphs):
    for graph in ("fp16", "fp32"):
        result = check_graph(scorer_graphs[graph], build=True)
        trt = result.tensorrt
        assert trt.built, trt.build_error
        assert trt.engine_bytes > 10_000
        print(f"{graph}: {trt.module} {trt.version} engine {trt.engine_bytes} bytes for "
              f"{trt.compute_capabilities or 'the default targets'} in {trt.build_seconds} s")


def test_fp16_network_is_strongly_typed_half(scorer_graphs):
    parsed = ParsedNetwork(TRT, scorer_graphs["fp16"].read_bytes())
    assert parsed.ok
    network = parsed.network
    types = {network.get_layer(i).name: network.get_layer(i).get_output(0).dtype
             for i in range(network.num_layers)}
    half = TRT.module.DataType.HALF
    assert types["netg.encoder1.main.0/Conv"] == half and types["netd.features.0/Conv"] == half
    outputs = [network.get_output(i) for i in range(network.num_outputs)]
    assert {o.name for o in outputs} >= {"d1", "d2", "d3", "latent", "score"}
    assert all(o.dtype == TRT.module.DataType.FLOAT for o in outputs)
    assert parsed.input_names() == ["pixels"] and network.get_input(0).dtype == TRT.module.DataType.UINT8


def test_rejected_graph_is_reported_with_the_node_name(tmp_path):
    path = rejected_graph(tmp_path / "rejected.onnx")
    result = check_graph(path)
    assert result.onnx_ok and not result.ok
    assert result.tensorrt.unsupported_nodes == ["camera/Transpose"]
    issue = result.tensorrt.issues[0]
    assert issue.node_name == "camera/Transpose" and issue.operator == "Transpose" and "UInt8" in issue.description
    cli = run("check", path)
    assert cli.returncode == 1 and "camera/Transpose" in cli.stdout
    report = json.loads(run("check", path, "--json").stdout)
    assert report["ok"] is False and report["tensorrt"]["unsupported_nodes"] == ["camera/Transpose"]


def test_unknown_op_is_reported_with_the_node_name(tmp_path):
    pixels = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 4])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    node = helper.make_node("Frobnicate", ["pixels"], ["y"], name="scores/Frobnicate", domain="com.example")
    model = helper.make_model(helper.make_graph([node], "custom", [pixels], [out]),
                              opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)])
    onnx.save(model, tmp_path / "custom.onnx")
    result = check_graph(tmp_path / "custom.onnx")
    assert result.tensorrt.unsupported_nodes == ["scores/Frobnicate"] and not result.ok


def test_check_cli_builds_and_bad_files_are_one_line_errors(scorer_graphs, tmp_path):
    built = run("check", scorer_graphs["fp16"], "--build", "-c", "SM89", "--json")
    assert built.returncode == 0, built.stderr
    report = json.loads(built.stdout)
    assert report["ok"] and report["tensorrt"]["built"] and report["precision"] == "fp16"
    if TRT.is_rtx:
        assert report["tensorrt"]["compute_capabilities"] == ["SM89"]
    unknown = run("check", scorer_graphs["fp16"], "--build", "-c", "SM99")
    assert unknown.returncode == 2 and "SM99" in unknown.stderr, unknown.stderr
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(scorer_graphs["fp32"].read_bytes()[:1500])
    for path in (cut, tmp_path / "missing.onnx"):
        result = run("check", path)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert path.name in result.stderr

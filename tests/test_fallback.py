"""Layer sensitivity (`gedge calibrate --report`) and the accuracy-aware fallback, on the fixture's untrained
model: all in INT8, its TensorRT-flavoured graph fails the gate (the latent score's rank correlation falls
below the INT8 floor), so the fallback has work to do; every verdict here is the real gate's, on real graphs."""

from __future__ import annotations

import json

import onnx
import pytest
from clirun import run_main
from gedge.calibrate.fallback import MIN_INT8_SHARE, GateOutcome, LayerHarm, fall_back
from gedge.calibrate.layers import Layer, conv_layers, default_float, int8_mac_share, quantized_layers
from gedge.calibrate.pipeline import CalibrateOptions, calibrate
from gedge.calibrate.quantize import inspect_qdq
from gedge.core import artifacts


@pytest.fixture(scope="module")
def reported(scorer_graphs, tmp_path_factory):
    """The TensorRT flavour with --report (every layer measured) and the fallback on."""
    root = tmp_path_factory.mktemp("fallback")
    result = calibrate(CalibrateOptions(checkpoint=scorer_graphs["checkpoint"], graph=scorer_graphs["fp32"],
                                        target="tensorrt", n_patches=32, out_dir=root, threads=1, report=True))
    return result.flavour("tensorrt")


# The fixture's convolutions (16 x 16 x 3 input, ngf = ndf = 8, nz = 16; kernels 4 x 4) and their multiply-adds per
# network input, by hand: a Conv costs H_out * W_out * C_out * C_in * 16, a ConvTranspose
# H_in * W_in * C_in * C_out * 16.
HAND_MACS = {
    "netg.encoder1.main.0/Conv": 8 * 8 * 8 * 3 * 16,  # 16 -> 8, 3 -> 8 channels: 24576
    "netg.encoder1.main.2/Conv": 4 * 4 * 16 * 8 * 16,  # 8 -> 4, 8 -> 16: 32768
    "netg.encoder1.main.5/Conv": 1 * 1 * 16 * 16 * 16,  # 4 -> 1 (the latent), 16 -> 16: 4096
    "netg.decoder.main.0/ConvTranspose": 1 * 1 * 16 * 16 * 16,  # 1 -> 4: 4096
    "netg.decoder.main.3/ConvTranspose": 4 * 4 * 16 * 8 * 16,  # 4 -> 8: 32768
    "netg.decoder.main.6/ConvTranspose": 8 * 8 * 8 * 3 * 16,  # 8 -> 16, to the image: 24576
    "netg.encoder2.main.0/Conv": 8 * 8 * 8 * 3 * 16,
    "netg.encoder2.main.2/Conv": 4 * 4 * 16 * 8 * 16,
    "netg.encoder2.main.5/Conv": 1 * 1 * 16 * 16 * 16,
    "netd.features.0/Conv": 8 * 8 * 8 * 3 * 16,
    "netd.features.2/Conv": 4 * 4 * 16 * 8 * 16,
}
HAND_TOTAL = 241664  # 4 * 24576 + 4 * 32768 + 3 * 4096
IMAGE_CONVS = ("netg.encoder1.main.0/Conv", "netg.encoder2.main.0/Conv", "netd.features.0/Conv")  # read an image


def test_layers_their_macs_and_what_each_target_quantizes(scorer_graphs):
    model = onnx.load(scorer_graphs["fp32"])
    layers = conv_layers(model)
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert [layer.name for layer in layers] == [n.name for n in convs] and all(layer.macs > 0 for layer in layers)
    first = next(layer for layer in layers if layer.name.startswith("netg.encoder1.main.0"))
    weight = next(t for t in model.graph.initializer if t.name == "scorer.netg.encoder1.main.0.weight")
    assert first.macs == 8 * 8 * weight.dims[0] * weight.dims[1] * weight.dims[2] * weight.dims[3]  # 16 px, stride 2
    image_convs = default_float(model, "tensorrt")
    assert len(image_convs) == 3 and first.name in image_convs  # G's, G's second encoder's and D's first layer
    trt, cpu, ov = (quantized_layers(model, t) for t in ("tensorrt", "cpu", "openvino"))
    assert {layer.op_type for layer in trt} == {"Conv", "ConvTranspose"} and len(trt) == len(convs) - 3
    assert {layer.op_type for layer in cpu} == {"Conv"}
    assert len(cpu) == sum(n.op_type == "Conv" for n in convs) - 3
    assert len(ov) == len(trt) - 2  # the encoders' latent convolutions stay in float on OpenVINO
    assert {layer.name: layer.macs for layer in layers} == HAND_MACS and sum(HAND_MACS.values()) == HAND_TOTAL
    # TensorRT quantizes every convolution but the three that read an image: (241664 - 3 * 24576) / 241664 = 41/59
    assert {layer.name for layer in trt} == set(HAND_MACS) - set(IMAGE_CONVS)
    assert int8_mac_share(model, trt) == pytest.approx(41 / 59) and int8_mac_share(model, []) == 0.0


def test_sensitivity_rows_every_quantized_layer_by_harm(reported, scorer_graphs):
    rows = reported.precision.sensitivity
    expected = quantized_layers(onnx.load(scorer_graphs["fp32"]), "tensorrt")
    assert sorted(row.layer.name for row in rows) == sorted(layer.name for layer in expected)
    ratios = [row.alone.limit_ratio for row in rows]
    assert ratios == sorted(ratios, reverse=True)
    worst = rows[0]
    # the layer that breaks the gate alone is the one whose float version passes it: the two halves agree
    assert worst.alone.limit_ratio > 1 and not worst.alone.passed
    assert worst.left_float is not None and worst.left_float.passed
    assert all(row.left_float is not None and not row.left_float.passed for row in rows[1:3])


def test_fallback_keeps_the_harmful_layer_in_float_and_the_graph_records_it(reported, scorer_graphs):
    fallback = reported.precision.fallback
    assert fallback is not None and not fallback.before.passed and fallback.passed and reported.passed
    assert fallback.kept == [reported.precision.sensitivity[0].layer.name]
    quantized = set(HAND_MACS) - set(IMAGE_CONVS)  # the MACs left in INT8, by hand: the quantized less the kept
    expected = sum(HAND_MACS[name] for name in quantized - set(fallback.kept)) / HAND_TOTAL
    assert fallback.int8_share_before == pytest.approx(41 / 59)
    assert fallback.int8_share == pytest.approx(expected) and fallback.int8_share >= MIN_INT8_SHARE
    assert fallback.int8_share < fallback.int8_share_before
    graph = onnx.load(reported.path)
    summary = inspect_qdq(graph)
    assert set(fallback.kept) <= set(summary.float_convolutions)
    assert len(summary.nodes) == len(reported.precision.sensitivity) - len(fallback.kept)
    sidecar = artifacts.open(reported.path).sidecar
    assert sidecar.gate.passed and sidecar.gate.details["kept_float"] == fallback.kept
    assert sidecar.gate.details["fallback"]["gate_before"]["passed"] is False
    assert len(sidecar.gate.details["sensitivity"]) == len(reported.precision.sensitivity)
    assert list(sidecar.facts.kept_float) == fallback.kept


def test_the_fallback_graph_parses_and_builds_with_tensorrt(reported):
    from gedge.core.tensorrt import import_tensorrt
    from gedge.export.check import check_graph

    trt, why = import_tensorrt()
    if trt is None:
        pytest.skip(f"no TensorRT module importable: {why}")
    assert reported.checks.tensorrt_parsed, reported.checks.tensorrt_parse
    checked = check_graph(reported.path, build=True)
    assert checked.tensorrt.parsed and checked.tensorrt.built, checked.tensorrt.build_error


def test_no_fallback_leaves_the_failed_graph_failed(failed_int8):
    flavour = failed_int8["result"].flavour("tensorrt")
    assert flavour.precision.fallback is None and not flavour.passed and flavour.precision.kept_float == []


def _outcome(passed: bool, ratio: float) -> GateOutcome:
    return GateOutcome(passed, 0.01, 0, 10, ratio)


def test_the_fallback_never_leaves_less_than_half_the_macs_in_int8():
    """The search logic alone (the gate here is a table of verdicts): a layer that would take the INT8 share
    under half is skipped, smaller ones are still tried, and with none left the artifact fails as before."""
    layers = [Layer("big", "Conv", 60), Layer("small", "Conv", 10), Layer("tiny", "Conv", 5)]
    harm = [LayerHarm(layer, _outcome(False, 2.0)) for layer in layers]
    tried = []

    def measure(kept):
        tried.append(kept)
        return _Report(kept == ("small", "tiny"))

    result = fall_back(layers, 150, _Report(False), measure, harm)  # 75 MACs quantized of 150 in all convolutions
    assert tried == [("small",), ("small", "tiny")] and result.passed and result.kept == ["small", "tiny"]
    assert result.int8_share == pytest.approx(60 / 150) and result.int8_share_before == pytest.approx(75 / 150)
    never = fall_back(layers, 150, _Report(False), lambda kept: _Report(False), harm)
    assert not never.passed and never.kept == [] and "big" in never.reason and "50%" in never.reason


class _Report:
    """The few fields of a ParityReport the fallback reads."""

    def __init__(self, passed: bool) -> None:
        from gedge.compare.limits import gate_limits

        self.passed, self.n_images, self.failures, self.limits, self.outputs = passed, 10, [], gate_limits(), []
        self.decisions = type("Decisions", (), {"n_disagree": 0, "agreement": 1.0, "normal": None,
                                                "anomalous": None})()

    def output(self, name):
        return type("Row", (), {"rel_l2": 0.0})()


def test_calibrate_report_cli_prints_the_table_and_json(scorer_graphs, tmp_path, capsys, monkeypatch):
    args = ["calibrate", scorer_graphs["checkpoint"], "--onnx", scorer_graphs["fp32"], "--patches", "32", "--threads",
            "1", "--out-dir", tmp_path, "--target", "cpu", "--report"]
    shown = run_main(capsys, monkeypatch, *args)
    assert "Layer sensitivity, cpu" in shown.stdout and "INT8 MACs" in shown.stdout, shown.stderr[-2000:]
    as_json = run_main(capsys, monkeypatch, *args, "--json", "--no-fallback")
    summary = json.loads(as_json.stdout)
    cpu = summary["graphs"]["cpu"]
    assert len(cpu["sensitivity"]) == 5 and cpu["fallback"] is None and cpu["kept_float"] == []
    assert {"layer", "alone_rel_l2", "alone_flips", "float_rel_l2", "float_flips"} <= set(cpu["sensitivity"][0])
    assert as_json.code == (0 if cpu["passed"] else 1)


def test_build_dry_run_shows_the_precision_per_layer_group(reported, capsys, monkeypatch):
    shown = run_main(capsys, monkeypatch, "build", reported.path, "--precision", "int8", "--dry-run", "--assume",
                     "trt-10.3", "--json")
    assert shown.code == 0, shown.stderr
    plan = json.loads(shown.stdout)["plan"]
    kept = reported.precision.kept_float
    assert plan["kept_float"] == kept
    groups = {g["group"]: g for g in plan["layer_precision"]}
    assert set(groups) == {"netg.encoder1", "netg.decoder", "netg.encoder2", "netd"}
    assert sum(g["int8"] for g in groups.values()) == len(reported.precision.sensitivity) - len(kept)
    assert sum(g["fp32"] for g in groups.values()) == 3 + len(kept)  # the image convolutions, and the kept ones
    assert [name for g in groups.values() for name in g["kept_float"]] == kept
    table = run_main(capsys, monkeypatch, "build", reported.path, "--precision", "int8", "--dry-run", "--assume",
                     "trt-10.3")
    assert "layer precision" in table.stdout and "kept in float" in table.stdout


def test_the_engine_manifest_records_the_kept_layers(reported, tmp_path, capsys, monkeypatch):
    from gedge.core.tensorrt import import_tensorrt

    trt, why = import_tensorrt()
    if trt is None:
        pytest.skip(f"no TensorRT module importable: {why}")
    out = tmp_path / "scorer.int8.engine"
    built = run_main(capsys, monkeypatch, "build", reported.path, "--precision", "int8", "-o", out, "--max-batch",
                     "4", "--json")
    assert built.code == 0, built.stderr
    manifest = json.loads((tmp_path / "scorer.int8.engine.json").read_text())
    assert manifest["build"]["plan"]["kept_float"] == reported.precision.kept_float

"""INT8: calibration sets, ranges, the two Q/DQ flavours, the TensorRT calibration cache, the gate, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from gedge.calibrate.cache import cache_from_ranges
from gedge.calibrate.patches import (
    CalibrationSet,
    calibration_sources,
    draw_patches,
    load_calibration_set,
    save_calibration_set,
)
from gedge.calibrate.quantize import inspect_qdq
from gedge.calibrate.ranges import _Histogram, choose_amax
from gedge.compare.comparator import BackendScores, ImageSetFacts, compare_scores
from gedge.compare.limits import limits_for
from gedge.core import artifacts
from gedge.core.artifacts.calibration import hex_scale, parse_cache, scale_hex, version_code
from gedge.core.artifacts.graph import graph_facts, load_graph
from gedge.core.errors import ArtifactError, ConfigError, DataError
from gedge.core.hashing import sha256_file
from gedge.core.preprocess import Preprocess
from gedge.core.scores import OUTPUT_NAMES, Scores
from onnx import numpy_helper

GEDGE = [sys.executable, "-m", "gedge.cli"]
RESIDUAL_OPS = {"Sub", "Abs", "Pow", "Sqrt", "ReduceMean", "ReduceMax", "Slice", "Concat", "AveragePool", "Div"}


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*GEDGE, *map(str, args)], capture_output=True, text=True, timeout=300)


# --- calibration sets -----------------------------------------------------------------------------------------


def test_patches_are_seeded_stratified_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    strips = [rng.integers(0, 256, (40, 200, 3), dtype=np.uint8), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
              rng.integers(0, 256, (33, 90, 3), dtype=np.uint8)]
    pre = Preprocess(mode="patch", isize=32)
    patches, counts = draw_patches(strips, pre, 100, seed=4)
    assert patches.shape == (100, 32, 32, 3) and patches.dtype == np.uint8
    assert sorted(counts) == [33, 33, 34]  # stratified over the sources, not over their areas
    again, _ = draw_patches(strips, pre, 100, seed=4)
    other, _ = draw_patches(strips, pre, 100, seed=5)
    assert np.array_equal(patches, again) and not np.array_equal(patches, other)
    resized, per_image = draw_patches([s[:32, :32] for s in strips], Preprocess(mode="resize", isize=32), 10, seed=0)
    assert len(resized) == 3 and per_image == [1, 1, 1]  # resize mode: one input per image

    cal = CalibrationSet(patches, ["a.png", "b.png", "c.png"], 4, "test", counts)
    path = save_calibration_set(cal, tmp_path / "calibration.npz")
    loaded = load_calibration_set(path)
    assert loaded.sha256 == cal.sha256 and np.array_equal(loaded.patches, patches) and loaded.sources == cal.sources
    facts = json.loads((tmp_path / "calibration.npz.json").read_text())
    assert facts["sha256"] == cal.sha256 and facts["n_patches"] == 100 and facts["seed"] == 4
    facts["sha256"] = "0" * 64
    (tmp_path / "calibration.npz.json").write_text(json.dumps(facts))
    with pytest.raises(ArtifactError, match="sha256"):
        load_calibration_set(path)


def test_sources_leave_out_validation_and_never_use_test_images(int8_graphs):
    from gedge.reference.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(int8_graphs["checkpoint"])
    sources = calibration_sources(checkpoint)
    held_out = {p.name for p in int8_graphs["validation"]}
    assert sources.excluded == {"validation": 5} and not held_out & {p.name for p in sources.paths}
    assert all("/test/" not in str(p) for p in sources.paths) and len(sources.paths) == 1
    for bad in (int8_graphs["data"] / "test", int8_graphs["data"] / "test" / "good"):
        with pytest.raises(DataError, match="never uses test images"):
            calibration_sources(checkpoint, bad)
    cal = int8_graphs["result"].calibration
    assert len(cal) == 64 and set(cal.sources) == {str(p) for p in sources.paths}
    assert any("fewer than 300" in w for w in int8_graphs["result"].warnings)
    assert load_calibration_set(int8_graphs["set"]).sha256 == cal.sha256


# --- ranges -----------------------------------------------------------------------------------------------------


def test_range_methods_on_a_heavy_tail():
    rng = np.random.default_rng(0)
    hist = _Histogram()
    values = np.r_[rng.normal(0, 1, 200_000), [40.0, -35.0]].astype(np.float32)  # two far outliers
    for part in np.array_split(values, 7):  # several batches: the range grows by merging bins
        hist.add(part)
    assert hist.counts.sum() == values.size and hist.min == pytest.approx(-35) and hist.max == pytest.approx(40)
    minmax, entropy, percentile = (choose_amax(hist, m) for m in ("minmax", "entropy", "percentile"))
    assert minmax == pytest.approx(40.0)
    assert 3.0 < entropy < 20.0 and 3.0 < percentile < 6.0  # the outliers are clipped
    zeros = _Histogram()
    zeros.add(np.zeros(10, dtype=np.float32))
    assert 0 < choose_amax(zeros, "entropy") < 1e-6


# --- the two flavours -------------------------------------------------------------------------------------------


def _consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def test_tensorrt_flavour_follows_tensorrts_qdq_rules(int8_graphs):
    model = load_graph(int8_graphs["tensorrt"])
    fp32 = load_graph(int8_graphs["fp32"])
    assert [o.name for o in model.graph.output] == [o.name for o in fp32.graph.output]  # amap included
    assert [i.name for i in model.graph.input] == ["pixels"]
    inits = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            zero_point = inits[node.input[2]]
            assert zero_point.data_type == onnx.TensorProto.INT8 and not numpy_helper.to_array(zero_point).any()
            assert (numpy_helper.to_array(inits[node.input[1]]) > 0).all()
    summary = inspect_qdq(model)
    kinds = {n.op_type for n in summary.nodes}
    assert kinds == {"Conv", "ConvTranspose"}
    for node in summary.nodes:
        assert node.input_quantized and node.input_type == "int8" and node.input_zero_point == 0
        assert node.weight_type == "int8" and node.weight_zero_points_zero and node.bias_float
        assert node.weight_axis == (1 if node.op_type == "ConvTranspose" else 0) and node.weight_channels > 1
    # The convolutions reading an image (camera input, G(x), [x; G(x)]) stay in float.
    assert sorted(summary.float_convolutions) == ["netd.features.0/Conv", "netg.encoder1.main.0/Conv",
                                                  "netg.encoder2.main.0/Conv"]
    # Quantisation enters only through convolutions: residual arithmetic and reductions read float tensors.
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    for name in dq_outputs:
        assert {c.op_type for c in _consumers(model).get(name, [])} <= {"Conv", "ConvTranspose"}, name
    assert not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node
                   if n.name.startswith(("camera/", "scores/")))
    facts = graph_facts(model)
    assert facts.precision == "int8" and facts.lineage.derived_from_sha256 == sha256_file(int8_graphs["fp32"])
    q = facts.quantization
    assert q.flavour == "tensorrt" and q.method == "minmax" and q.calibration_set.patches == 64
    assert q.calibration_set.sha256 == int8_graphs["result"].calibration.sha256
    written = json.loads(Path(f"{int8_graphs['tensorrt']}.json").read_text())  # the key names the quantizer writes
    assert written["quantization"]["calibration_set_sha256"] == q.calibration_set.sha256
    sidecar = artifacts.open(int8_graphs["tensorrt"]).sidecar
    assert sidecar.facts.precision == "int8" and "auroc_drop" in sidecar.gate.details
    assert sidecar.calibration_set == q.calibration_set  # the sidecar and the graph's metadata agree


def test_cpu_flavour_is_uint8_conv_only(int8_graphs):
    model = load_graph(int8_graphs["cpu"])
    summary = inspect_qdq(model)
    assert {n.op_type for n in summary.nodes} == {"Conv"}
    assert all(n.input_type == "uint8" and n.weight_type == "int8" and n.weight_axis == 0 for n in summary.nodes)
    assert sum(n.output_quantized for n in summary.nodes) >= 3  # Conv -> Q: ONNX Runtime fuses QLinearConv
    assert all(name.endswith("ConvTranspose") or name.endswith("main.0/Conv") or name == "netd.features.0/Conv"
               for name in summary.float_convolutions)
    assert graph_facts(model).quantization.details["activations"] == "uint8 asymmetric"


def test_int8_graphs_score_like_the_reference(int8_graphs):
    """The trained fixture's INT8 graphs pass the accuracy gate (with the closeness and rank floors, the normals'
    false rejects and the proxies' agreement), are written, and record the verdict in their sidecars."""
    result = int8_graphs["result"]
    assert result.passed
    for f in result.flavours:
        report = f.report
        assert report.passed and f.passed and f.written, (f.target, f.failures)
        assert report.labelled and report.n_images == 100  # 5 validation images + 19 proxies each (>= 100 images)
        assert {row.name for row in report.outputs} >= set(OUTPUT_NAMES)
        print(f.target, {row.name: round(row.rel_l2, 4) for row in report.outputs}, report.decisions.agreement)
        assert report.output("score").spearman > 0.9
        assert all(row.rel_l2 < 0.1 for row in report.outputs if row.name in ("d1", "d2", "d3", "d3_local"))
        assert report.decisions.normal.n == 5 and report.decisions.anomalous.n == 95
        gate = artifacts.open(f.path).sidecar.gate
        assert gate.passed and gate.details["normals"]["n"] == 5
        assert gate.details["normals"]["max_new_false_rejects"] == 0.02
        assert gate.details["proxies"]["n"] == 95 and gate.details["proxies"]["min_agreement"] == 0.98
    cache = artifacts.open(int8_graphs["cache"]).calibration
    assert cache.gate.passed and cache.graph_sha256 == sha256_file(int8_graphs["fp32"])


# --- TensorRT calibration cache -----------------------------------------------------------------------------------


def test_calibration_cache_text_and_round_trip(int8_graphs, tmp_path):
    assert version_code("8.6.1") == "8601" and version_code("8.5") == "8500" and version_code("10.3.0") == "100300"
    assert scale_hex(0.0078125) == "3c000000" and hex_scale("3c000000") == 0.0078125
    text = int8_graphs["cache"].read_text()
    lines = text.splitlines()
    assert lines[0] == "TRT-8601-EntropyCalibration2"
    assert all(len(line.rpartition(": ")[2]) == 8 for line in lines[1:])
    cache = artifacts.open(int8_graphs["cache"]).cache
    ranges = int8_graphs["ranges"]
    tensor_names = {o for n in load_graph(int8_graphs["fp32"]).graph.node for o in n.output}
    # Every calibrated tensor but the inputs of the float image convolutions (as in the Q/DQ graph).
    assert set(ranges.image_valued) == {"camera/Sub:0", "netg.decoder.main.7/Tanh:0", "scores/Concat:0"}
    assert set(cache.scales) == set(ranges.tensors) - set(ranges.image_valued)
    assert set(cache.scales) <= tensor_names
    for name in cache.scales:  # reading it back gives the same ranges (float32 exact)
        assert cache.amax(name) == pytest.approx(ranges[name].amax, rel=1e-6)
    # The Q/DQ graph quantises each tensor with the same scale the cache holds.
    model = load_graph(int8_graphs["tensorrt"])
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    checked = 0
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] in cache.scales:
            assert float(inits[node.input[1]]) == pytest.approx(cache.scales[node.input[0]], rel=1e-6)
            checked += 1
    assert checked >= 8
    assert cache_from_ranges(ranges, trt_version="10.3.0").header() == "TRT-100300-EntropyCalibration2"
    with pytest.raises(ConfigError):
        cache_from_ranges(ranges, {"not-a-tensor"})
    with pytest.raises(ArtifactError, match="TRT-"):
        parse_cache("hello\nx: 3c000000\n")
    with pytest.raises(ArtifactError, match="line 2"):
        parse_cache("TRT-8601-EntropyCalibration2\nx: zz\n")


# --- the gate's limits ---------------------------------------------------------------------------------------------


def test_int8_limits_keep_floors_on_closeness_and_ranks():
    """INT8 limits are looser than FP16's but gate every score's relative L2 error and Spearman, and the primary
    score's AUROC drop."""
    labels = np.array([0] * 10 + [1] * 10)
    rng = np.random.default_rng(0)
    base = {name: np.r_[rng.uniform(1, 2, 10), rng.uniform(2.5, 4, 10)] for name in OUTPUT_NAMES}
    ref = Scores.from_dict(base)
    limits = limits_for("int8")
    assert 0 < limits.max_rel_l2 < 1 and 0 < limits.min_spearman < 1 and limits.auroc_scores == "primary"
    assert limits.max_rel_l2 > limits_for("fp16").max_rel_l2 and limits.min_spearman < limits_for("fp16").min_spearman
    close = Scores.from_dict({name: v * rng.uniform(0.98, 1.02, 20) for name, v in base.items()})  # INT8-like noise
    report = compare_scores(BackendScores(ref, ref), BackendScores(close, close), ImageSetFacts(10.0, labels), limits)
    assert report.passed, report.failures
    noisy = Scores.from_dict({**base, "d2": base["d2"] * rng.uniform(0.5, 1.5, 20)})  # d2 badly off
    report = compare_scores(BackendScores(ref, ref), BackendScores(noisy, noisy), ImageSetFacts(10.0, labels), limits)
    assert any(f.startswith("d2:") for f in report.failures) and not any("score" in f for f in report.failures)
    swapped = dict(base)
    swapped["score"] = base["score"].copy()
    swapped["score"][10:13] = 0.0  # three anomalies now score below every normal
    worse = Scores.from_dict(swapped)
    report = compare_scores(BackendScores(ref, ref), BackendScores(worse, worse), ImageSetFacts(10.0, labels), limits)
    assert any("AUROC drop" in f for f in report.failures)


def _gate_scores(n_normal: int = 10, n_proxy: int = 90, seed: int = 0) -> tuple[Scores, np.ndarray, float]:
    """Scores shaped like a gate set: real normals below the threshold, proxies mostly above it."""
    rng = np.random.default_rng(seed)
    normals, proxies = rng.uniform(0.5, 1.5, n_normal), rng.uniform(2.0, 4.0, n_proxy)
    base = {name: np.r_[normals, proxies] * (1 + i) for i, name in enumerate(OUTPUT_NAMES)}
    base["score"] = np.r_[normals, proxies]
    labels = np.r_[np.zeros(n_normal, dtype=np.int64), np.ones(n_proxy, dtype=np.int64)]
    return Scores.from_dict(base), labels, 1.8


def _flip(ref: Scores, which: np.ndarray, threshold: float) -> Scores:
    """The reference with the images ``which`` moved just across the threshold (everything else identical)."""
    score = ref.score.copy()
    score[which] = np.where(score[which] >= threshold, threshold - 1e-3, threshold + 1e-3)
    return Scores.from_dict({**ref.as_dict(), "score": score})


def test_gate_splits_real_normals_from_proxies():
    """Two of ten real normals newly rejected are 98 % agreement over 100 images, which the old pooled limit passed;
    the gate fails it on the normals' own limit, and fails proxies that disagree on theirs."""
    from gedge.calibrate.gate import gate_summary
    from gedge.compare.limits import GATE_LIMITS

    ref, labels, threshold = _gate_scores()
    facts = ImageSetFacts(threshold, labels)
    accepted_normals = np.flatnonzero((labels == 0) & (ref.score < threshold))
    two_normals = _flip(ref, accepted_normals[:2], threshold)
    pooled = compare_scores(BackendScores(ref, ref), BackendScores(two_normals, two_normals), facts,
                            limits_for("int8", min_spearman=0.0, max_score_shift=10.0, max_score_bias=10.0))
    assert pooled.decisions.agreement == pytest.approx(0.98) and pooled.passed  # what the pooled limit allowed
    # (the largest score shift near the threshold, gated too, fails it as well: two normals moved up to it)
    report = compare_scores(BackendScores(ref, ref), BackendScores(two_normals, two_normals), facts, GATE_LIMITS)
    assert not report.passed and report.decisions.normal.new_rejects == 2
    assert any("normal images: the candidate adds 2 false rejects of 10" in f for f in report.failures)
    one_normal = _flip(ref, accepted_normals[:1], threshold)
    report = compare_scores(BackendScores(ref, ref), BackendScores(one_normal, one_normal), facts, GATE_LIMITS)
    assert any("adds 1 false rejects of 10" in f for f in report.failures)  # 10 % > 2 %: none of 10 allowed
    summary = gate_summary(report)
    assert summary["normals"]["new_rejects"] == 1 and summary["normals"]["max_new_false_rejects"] == 0.02
    assert summary["proxies"]["agreement"] == 1.0 and summary["proxies"]["min_agreement"] == 0.98
    proxies = np.flatnonzero(labels == 1)
    three_proxies = _flip(ref, proxies[:3], threshold)  # 96.7 % of the proxies agree
    report = compare_scores(BackendScores(ref, ref), BackendScores(three_proxies, three_proxies), facts, GATE_LIMITS)
    assert [f for f in report.failures if f.startswith(("decisions", "normal images", "anomalous images"))] == [
        "anomalous images: agreement 96.67% < 98.00% (3 of 90 differ)"]
    assert compare_scores(BackendScores(ref, ref), BackendScores(ref, ref), facts, GATE_LIMITS).passed


def test_a_rejected_or_unparsable_tensorrt_graph_fails_calibrate(int8_graphs, tmp_path, monkeypatch):
    """TensorRT's parser rejecting the Q/DQ graph fails the artifact (exit code 1 from the CLI); TensorRT failing to
    run at all is a RuntimeFailure (exit code 3), not a verdict swallowed into the report."""
    from gedge.calibrate import targets
    from gedge.calibrate.pipeline import CalibrateOptions, calibrate
    from gedge.core.errors import RuntimeFailure
    from gedge.export.check import TensorRTCheck
    from gedge.export.tensorrt_parse import ParserIssue

    issue = ParserIssue("netg.encoder.main.1/Conv", "Conv", 1, "UNSUPPORTED_NODE", "test")
    rejected = TensorRTCheck("tensorrt_rtx", "1.7", parsed=False, issues=[issue])
    monkeypatch.setattr(targets, "tensorrt_check", lambda model: (rejected, ""))
    options = CalibrateOptions(checkpoint=int8_graphs["checkpoint"], graph=int8_graphs["fp32"], target="tensorrt",
                               n_patches=32, out_dir=tmp_path / "rejected", threads=1)
    result = calibrate(options)
    flavour = result.flavour("tensorrt")
    assert flavour.report.passed and not flavour.passed and not result.passed
    assert any("REJECTED" in f for f in flavour.failures) and flavour.written  # written for diagnosis
    assert artifacts.open(flavour.path).sidecar.gate.details["tensorrt_parse"]["parsed"] is False

    def broken(model):
        raise RuntimeError("libnvinfer: could not start")

    monkeypatch.setattr(targets, "tensorrt_check", broken)
    with pytest.raises(RuntimeFailure, match="could not start"):
        calibrate(CalibrateOptions(checkpoint=int8_graphs["checkpoint"], graph=int8_graphs["fp32"],
                                   target="tensorrt", n_patches=32, out_dir=tmp_path / "broken", threads=1))
    assert not list((tmp_path / "broken").glob(".*"))  # the temporary graph is gone


# --- TensorRT -----------------------------------------------------------------------------------------------------


def test_tensorrt_parses_and_builds_the_qdq_graph(int8_graphs, scorer_graphs):
    from gedge.core.tensorrt import import_tensorrt
    from gedge.export.check import check_graph

    trt, why = import_tensorrt()
    if trt is None:
        pytest.skip(f"no TensorRT module importable: {why}")
    int8 = check_graph(int8_graphs["tensorrt"], build=True)
    assert int8.onnx_ok and int8.tensorrt.parsed, int8.tensorrt.issues
    assert int8.tensorrt.built, int8.tensorrt.build_error
    fp32 = check_graph(scorer_graphs["fp32"], build=True)
    print(f"{trt.name} {trt.version}: INT8 engine {int8.tensorrt.engine_bytes} bytes in "
          f"{int8.tensorrt.build_seconds} s, FP32 engine {fp32.tensorrt.engine_bytes} bytes")
    assert int8.tensorrt.engine_bytes > 10_000
    assert "parsed by" in int8_graphs["result"].flavour("tensorrt").checks.tensorrt_parse


# --- CLI ----------------------------------------------------------------------------------------------------------


def test_calibrate_cli_strict_gate_and_bad_input(int8_graphs, scorer_graphs, tmp_path):
    out = tmp_path / "out"
    args = ("calibrate", int8_graphs["checkpoint"], "--onnx", int8_graphs["fp32"], "--patches", 32, "--threads", 1,
            "--out-dir", out, "--target", "cpu")
    failing = run(*args, "--strict", "--max-auroc-drop", "-1", "--json")  # an impossible limit
    assert failing.returncode == 1, failing.stderr
    summary = json.loads(failing.stdout)
    assert not summary["passed"] and not summary["graphs"]["cpu"]["written"]
    assert not (out / "scorer.int8.cpu.onnx").exists() and (out / "calibration.npz").exists()
    assert "FAILED" in failing.stderr and not list(out.glob(".*"))  # no temporary left behind
    assert "AUROC drop" in failing.stderr
    beyond = run(*args, "--min-agreement", "1.01")  # a share of images is 0 to 1: bad input, not a failed gate
    assert beyond.returncode == 2 and "0 to 1" in beyond.stderr and len(beyond.stderr.strip().splitlines()) == 1
    bad = run("calibrate", int8_graphs["checkpoint"], "--onnx", tmp_path / "missing.onnx")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "missing.onnx" in bad.stderr
    assert "Example" in run("calibrate", "--help").stdout


def test_calibrate_options_and_inputs_are_checked_first(int8_graphs, scorer_graphs):
    from gedge.calibrate.pipeline import CalibrateOptions, open_inputs

    with pytest.raises(ConfigError, match="method"):
        CalibrateOptions(int8_graphs["checkpoint"], int8_graphs["fp32"], method="kl")
    with pytest.raises(ConfigError, match="target"):
        CalibrateOptions(int8_graphs["checkpoint"], int8_graphs["fp32"], target="gpu")
    with pytest.raises(ConfigError, match="FP32"):
        open_inputs(CalibrateOptions(int8_graphs["checkpoint"], scorer_graphs["fp16"]))


# --- speed (the measuring loop; real numbers come from `gedge bench-cpu`) --------------------------------------------


def test_speed_measure_interleaves_and_ratios():
    import time

    from gedge.bench.cpu_speed import TORCH, measure
    from gedge.bench.report import BENCH_CPU, BenchReport
    from gedge.cli.render import console
    from gedge.cli.render_bench import speed_table
    from gedge.core.backend import BackendInfo
    from gedge.core.inputs import InputSpec
    from gedge.core.timing import Rounds

    class Sleeper:
        def __init__(self, name: str, per_image: float) -> None:
            self.name, self.per_image = name, per_image
            self.info = BackendInfo(kind="sleep", label=name, precision="fp32")

        def score(self, batch):
            time.sleep(self.per_image * len(batch))

    sleepers = {TORCH: Sleeper("slow", 0.002), "fast": Sleeper("fast", 0.001)}
    plan = Rounds(rounds=2, warmup=2, seconds=0.02, min_calls=2)
    rows = measure(sleepers, [1, 4], InputSpec(size=8, channels=3), plan)
    report = BenchReport(BENCH_CPU, {"cpu": "test"}, {"model": {"isize": 8}, "threads": 1, "batches": [1, 4]}, rows,
                         reference=TORCH)
    report.add_ratios(digits=3)
    fast = report.row("fast", 4)
    assert 1.5 < fast.vs_torch_eager < 2.5 and fast.latency_ms["n"] >= 4
    assert fast.latency_ms["p10"] <= fast.latency_ms["p50"] <= fast.latency_ms["p90"]
    legacy = report.to_dict()["rows"]  # the keys `gedge bench-cpu --json` has always had
    assert {"backend", "batch", "calls", "median_ms", "p10_ms", "p90_ms", "images_per_s", "ratio_vs_torch"} <= set(
        legacy[0])
    with console.capture() as captured:
        console.print(speed_table(report))
    assert "fast" in captured.get() and "vs torch" in captured.get()


def test_demo_has_a_calibrate_stage():
    from gedge.cli.demo import STAGES

    names = [name for name, _ in STAGES]
    assert names.index("calibrate") > names.index("export")

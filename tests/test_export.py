"""The fused ONNX export: graph shape and names, parity with torch, dynamic batch, inputs, metadata, FP16."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from gedge.core import artifacts
from gedge.core.artifacts.graph import graph_facts, load_graph
from gedge.core.artifacts.sidecar import read_sidecar, sidecar_path
from gedge.core.backend import Backend
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.hashing import sha256_file
from gedge.core.inputs import InputSpec
from gedge.core.scores import OUTPUT_NAMES
from gedge.export.fp16 import convert_to_fp16, node_precisions
from gedge.export.onnx_export import fold_batchnorm
from gedge.runtime.onnxruntime_backend import OrtBackend
from gedge.runtime.torch_backend import TorchBackend

GEDGE = [sys.executable, "-m", "gedge.cli"]
RESIDUAL_OPS = {"Sub", "Abs", "Pow", "Sqrt", "ReduceMean", "Div", "Slice", "Reshape"}


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*GEDGE, *map(str, args)], capture_output=True, text=True, timeout=300)


def batch(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


def shape_of(value: onnx.ValueInfoProto) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_graph_is_one_checked_fused_graph_with_stable_names(scorer_graphs):
    model = load_graph(scorer_graphs["fp32"])
    onnx.checker.check_model(model, full_check=True)
    graph = model.graph
    (pixels,) = graph.input
    assert pixels.name == "pixels" and pixels.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert shape_of(pixels) == ["batch", 16, 16, 3]
    assert [o.name for o in graph.output] == [*OUTPUT_NAMES, "amap"]
    for output in graph.output:
        assert output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert shape_of(output) == (["batch", 16, 16] if output.name == "amap" else ["batch"])
    ops = [n.op_type for n in graph.node]
    assert "BatchNormalization" not in ops
    names = [n.name for n in graph.node]
    assert len(set(names)) == len(names) and not any(n.startswith(("node_", "/")) for n in names)
    assert "netg.encoder1.main.0/Conv" in names and "netg.decoder.main.0/ConvTranspose" in names
    # One discriminator pass on the batched [x; G(x)]: its first conv appears once and reads the Concat.
    first_d = [n for n in graph.node if n.name.startswith("netd.features.0/")]
    assert len(first_d) == 1 and first_d[0].input[0] == "scores/Concat:0"
    assert_static_but_batch(model)


def assert_static_but_batch(model: onnx.ModelProto) -> None:
    """Every tensor is typed and has a static shape apart from the batch dimension (``batch``, ``2*batch``)."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    typed = {v.name for v in inferred.graph.value_info} | {o.name for o in inferred.graph.output}
    produced = {o for n in inferred.graph.node for o in n.output}
    assert produced <= typed, produced - typed
    for info in inferred.graph.value_info:
        dims = shape_of(info)
        assert all(isinstance(d, int) and d > 0 for d in dims[1:]), (info.name, dims)
        assert dims == [] or isinstance(dims[0], int) or "batch" in dims[0], (info.name, dims)


def test_fold_batchnorm_keeps_the_numbers(scorer_graphs):
    scorer = scorer_graphs["model"].scorer()
    folded = fold_batchnorm(scorer)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        for a, b in zip(scorer(x), folded(x)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_fp32_graph_matches_torch(scorer_graphs):
    x = batch(8)
    reference = TorchBackend(scorer_graphs["model"], with_amap=True).score(x)
    backend = OrtBackend(artifacts.open(scorer_graphs["fp32"]), threads=1)
    assert isinstance(backend, Backend) and backend.name == "onnxruntime-cpu-fp32"
    assert backend.input_spec == InputSpec(size=16, channels=3) and backend.with_amap
    candidate = backend.score(x)
    for name in [*OUTPUT_NAMES, "amap"]:
        assert rel_l2(candidate.named(name), reference.named(name)) <= 1e-5, name


@pytest.mark.parametrize("graph", ["fp32", "fp16"])
def test_dynamic_batch_gives_the_same_per_image_scores(scorer_graphs, graph):
    backend = OrtBackend(artifacts.open(scorer_graphs[graph]), threads=1)
    x = batch(17, seed=5)
    whole = backend.score(x)
    singles = [backend.score(x[i:i + 1]) for i in range(17)]
    threes = [backend.score(x[i:i + 3]) for i in range(0, 15, 3)]
    for name in OUTPUT_NAMES:
        column = whole.named(name)
        np.testing.assert_allclose(np.concatenate([s.named(name) for s in singles]), column, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.concatenate([t.named(name) for t in threes]), column[:15], rtol=1e-5,
                                   atol=1e-6)
    assert whole.amap.shape == (17, 16, 16)


def test_uint8_and_float_inputs_agree(scorer_graphs):
    uint8_backend = OrtBackend(artifacts.open(scorer_graphs["fp32"]), threads=1)
    float_backend = OrtBackend(artifacts.open(scorer_graphs["fp32_float"]), threads=1)
    graph_input = load_graph(scorer_graphs["fp32_float"]).graph.input[0]
    assert graph_input.name == "images" and graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert shape_of(graph_input) == ["batch", 3, 16, 16]
    x = batch(5, seed=2)
    from_bytes = uint8_backend.score(x)
    normalised = (x.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(127.5) - np.float32(1.0))
    from_floats = float_backend.run(np.ascontiguousarray(normalised))
    same_input = float_backend.score(x)  # the backend converts uint8 NHWC on the host
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(from_floats.named(name), from_bytes.named(name), rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(same_input.named(name), from_floats.named(name))
    assert float_backend.input_spec == uint8_backend.input_spec


def test_metadata_round_trip_and_sidecar(scorer_graphs, tmp_path):
    checkpoint = scorer_graphs["model"]
    graph = artifacts.open(scorer_graphs["fp32"])
    facts = graph.model_facts()
    assert facts.precision == "fp32" and facts.input_kind == "uint8-nhwc" and facts.input_name == "pixels"
    assert facts.model == checkpoint.model.to_dict()
    assert facts.preprocess == checkpoint.preprocess
    assert facts.decision == checkpoint.decision
    assert facts.primary == checkpoint.decision.primary and facts.threshold == checkpoint.decision.threshold
    assert facts.score_stats == checkpoint.score_stats
    assert facts.lineage.checkpoint_sha256 == sha256_file(scorer_graphs["checkpoint"])
    assert facts.lineage.checkpoint == "model.pt" and facts.gedge_version
    assert facts.outputs == (*OUTPUT_NAMES, "amap") and facts.training["steps"] == 0
    props = {p.key: p.value for p in load_graph(scorer_graphs["fp32"]).metadata_props}
    assert props["gedge.primary_score"] == "d1" and float(props["gedge.threshold"]) == facts.threshold
    sidecar = read_sidecar(sidecar_path(scorer_graphs["fp32"]))
    assert sidecar.graph_sha256 == graph.sha256 == sha256_file(scorer_graphs["fp32"])
    assert sidecar.facts == facts and sidecar.gate is None  # an FP32 graph: nothing judged it
    # A graph that no longer matches its sidecar is caught.
    copy = tmp_path / "scorer.onnx"
    copy.write_bytes(scorer_graphs["fp32"].read_bytes())
    sidecar_path(copy).write_text(sidecar_path(scorer_graphs["fp32"]).read_text())
    artifacts.open(copy)
    copy.write_bytes(copy.read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match="sha256"):
        artifacts.open(copy)
    # A graph without gedge metadata is refused with a clear message.
    bare = load_graph(scorer_graphs["fp32"])
    del bare.metadata_props[:]
    with pytest.raises(ArtifactError, match="not a gedge scorer graph"):
        graph_facts(bare)


def test_fp16_graph_keeps_fp32_islands(scorer_graphs):
    model = load_graph(scorer_graphs["fp16"])
    onnx.checker.check_model(model, full_check=True)
    precisions = node_precisions(model)
    by_op: dict[str, set[str]] = {}
    for node in model.graph.node:
        if node.name in precisions:
            by_op.setdefault(node.op_type, set()).add(precisions[node.name])
    for op in ("Conv", "ConvTranspose", "LeakyRelu", "Relu", "Tanh", "Concat"):
        assert by_op[op] == {"float16"}, op
    for op in RESIDUAL_OPS & set(by_op):
        assert by_op[op] == {"float32"}, op
    camera = [n for n in model.graph.node if n.name.startswith("camera/") and n.op_type != "Cast"]
    assert camera and all(precisions[n.name] == "float32" for n in camera)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in model.graph.output)
    weights = [t for t in model.graph.initializer if t.name.endswith(".weight")]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    casts = [n for n in model.graph.node if n.op_type == "Cast" and n.name.endswith(("Cast_fp16", "Cast_fp32"))]
    assert len(casts) == len({n.output[0] for n in casts}) >= 4  # one Cast per tensor and border
    assert_static_but_batch(model)
    facts = graph_facts(model)
    assert facts.precision == "fp16" and facts.lineage.derived_from_sha256 == sha256_file(scorer_graphs["fp32"])
    with pytest.raises(ConfigError, match="FP32 graph"):
        convert_to_fp16(model)


def test_fp16_numbers_against_the_reference(scorer_graphs):
    """The FP16 graph's numbers, executed by ONNX Runtime's CPU provider: the only runtime here that runs an
    FP16 ONNX graph (TensorRT-RTX builds engines without a GPU but cannot run them). ORT's CPU provider has no
    FP16 Conv kernels on x86, so by itself it computes those nodes in FP32 and drops the FP16 rounding between
    them; the backend's default for FP16 graphs on the CPU therefore runs the graph's rounding emulation (FP32
    math, every FP16 tensor rounded to FP16, as TensorRT's FP16 kernels store activations)."""
    x = batch(16, seed=7)
    reference = TorchBackend(scorer_graphs["model"], with_amap=True).score(x)
    emulated = OrtBackend(artifacts.open(scorer_graphs["fp16"]), threads=1)
    native = OrtBackend(artifacts.open(scorer_graphs["fp16"]), threads=1, fp16="native")
    assert emulated.fp16_emulated and "emulated" in emulated.name and not native.fp16_emulated
    e, n = emulated.score(x), native.score(x)
    errors = {name: rel_l2(e.named(name), reference.named(name)) for name in [*OUTPUT_NAMES, "amap"]}
    print("FP16 (emulated rounding) relative L2 errors:", errors)
    assert all(err <= 1e-2 for err in errors.values()), errors
    # The emulation really rounds activations: it is further from the reference than ORT's FP32 fallback,
    # which only sees the FP16 weights.
    assert rel_l2(e.d1, reference.d1) > rel_l2(n.d1, reference.d1)
    assert max(rel_l2(n.named(name), reference.named(name)) for name in OUTPUT_NAMES) <= 1e-2


def test_export_cli_json_and_fp16(scorer_graphs, tmp_path):
    out = tmp_path / "cli.fp16.onnx"
    result = run("export", scorer_graphs["checkpoint"], "-o", out, "--precision", "fp16", "--amap", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["precision"] == "fp16" and summary["graph"] == str(out) and out.is_file()
    assert sidecar_path(out).is_file() and summary["outputs"] == [*OUTPUT_NAMES, "amap"]
    # Exports are reproducible: the same bytes as the fixture's FP32 export converted by write_fp16_graph.
    assert out.read_bytes() == scorer_graphs["fp16"].read_bytes()
    for command in ("export", "check", "parity"):
        assert "Example" in run(command, "--help").stdout, command


def test_export_bad_inputs_are_one_line_errors(scorer_graphs, tmp_path):
    def one_line(result, *fragments):
        assert result.returncode == 2, result.stdout + result.stderr
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        for fragment in fragments:
            assert fragment in lines[0], lines[0]

    one_line(run("export", tmp_path / "missing.pt", "-o", tmp_path / "x.onnx"), "missing.pt", "does not exist")
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(b"this is not a checkpoint at all")
    one_line(run("export", foreign, "-o", tmp_path / "x.onnx"), "foreign.pt")
    one_line(run("export", scorer_graphs["checkpoint"], "--input", "rgb-planar"), "input must be one of")
    one_line(run("export", scorer_graphs["checkpoint"], "--precision", "int8"), "calibrate")
    assert not (tmp_path / "x.onnx").exists()


def test_other_architectures_grayscale_extralayers_padding4_float_input(tmp_path):
    """One export covering the variants: 1 channel, extra layers, anomalib's first padding, float input, FP16."""
    from gedge.core.decision import DecisionRule
    from gedge.core.preprocess import Preprocess
    from gedge.export.check import check_graph
    from gedge.export.fp16 import write_fp16_graph
    from gedge.export.onnx_export import ExportOptions, export_checkpoint
    from gedge.reference.checkpoint import Checkpoint, save_checkpoint
    from gedge.reference.model import ModelConfig, build_networks

    config = ModelConfig(isize=32, nc=1, nz=8, ngf=4, ndf=4, extralayers=1, first_padding=4)
    netg, netd = build_networks(config, seed=1)
    checkpoint = Checkpoint(config, Preprocess(mode="resize", isize=32, channels=1),
                            DecisionRule(primary="latent", mean=0.01, std=0.02), netg.state_dict(),
                            netd.state_dict())
    save_checkpoint(checkpoint, tmp_path / "gray.pt")
    exported = export_checkpoint(artifacts.open(tmp_path / "gray.pt"), tmp_path / "gray.onnx",
                                 ExportOptions(input="float-nchw")).graph
    graph, fp16 = exported.path, write_fp16_graph(exported, tmp_path / "gray.fp16.onnx").path
    x = np.random.default_rng(3).integers(0, 256, (6, 32, 32, 1), dtype=np.uint8)
    reference = TorchBackend(checkpoint).score(x)
    fp32_scores = OrtBackend(artifacts.open(graph), threads=1).score(x)
    fp16_scores = OrtBackend(artifacts.open(fp16), threads=1).score(x)
    for name in OUTPUT_NAMES:
        assert rel_l2(fp32_scores.named(name), reference.named(name)) <= 1e-5, name
        assert rel_l2(fp16_scores.named(name), reference.named(name)) <= 2e-2, name
    assert load_graph(fp16).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    result = check_graph(fp16)
    assert result.onnx_ok and (result.tensorrt is None or result.tensorrt.parsed), result.tensorrt

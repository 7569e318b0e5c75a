"""Real engines from gedge's graphs with the installed TensorRT (CI: TensorRT-RTX, ahead of time, no GPU),
their manifests, verification (a tampered engine is refused), `gedge build` on the command line, the demo
stage and the Jetson Dockerfile. Without a TensorRT module the build tests skip with the import error."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from clirun import cli
from gedge.core.artifacts.engine import RuntimeInfo, read_manifest, verify_engine, verify_manifest
from gedge.core.artifacts.graph import load_graph, read_facts, with_precision, write_facts
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.tensorrt import import_tensorrt
from gedge.export.build_plan import BuildRequest
from gedge.export.engine_build import build_engine
from gedge.export.engine_manifest import int8_facts
from gedge.export.tensorrt_build import cache_header

REPO = Path(__file__).resolve().parents[1]
TRT, WHY_NOT = import_tensorrt()
needs_trt = pytest.mark.skipif(TRT is None, reason=f"no TensorRT module importable: {WHY_NOT}")
GEDGE = [sys.executable, "-m", "gedge.cli"]


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*GEDGE, *map(str, args)], capture_output=True, text=True, timeout=300)


def make_qdq_graph(fp32: Path, out: Path, tiles: np.ndarray) -> Path:
    """A TensorRT-flavoured Q/DQ graph (int8, symmetric, per-channel weights, float bias) of an FP32 scorer graph,
    with INT8 facts in its metadata, standing in for `gedge calibrate`'s scorer.int8.qdq.onnx."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"pixels": tiles[i:i + 16]} for i in range(0, len(tiles), 16)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["Conv", "ConvTranspose"],
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False})
    model = load_graph(out)
    facts = with_precision(read_facts(model), "int8", "0" * 64)
    quantization = {"flavour": "tensorrt", "method": "minmax", "calibration_set_sha256": "ab" * 32,
                    "calibration_set_n_patches": len(tiles)}
    if hasattr(facts, "quantization"):  # the graph facts of `gedge calibrate`
        write_facts(model, replace(facts, quantization=quantization))
    else:
        write_facts(model, facts)
        model.metadata_props.add(key="gedge.quantization", value=json.dumps(quantization))
    onnx.save(model, out)
    return out


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """FP32, FP16 (derived from the FP32 graph) and INT8 (Q/DQ) engines of a wide, untrained gedge scorer
    (16x16 input, 192 channels: 5.9 M parameters, so the weights and not the kernels make the engine size)."""
    if TRT is None:
        pytest.skip(f"no TensorRT module importable: {WHY_NOT}")
    from gedge.core.decision import DecisionRule
    from gedge.core.preprocess import Preprocess
    from gedge.export.onnx_export import ExportOptions, export_checkpoint
    from gedge.reference.checkpoint import Checkpoint, save_checkpoint
    from gedge.reference.model import ModelConfig, build_networks

    root = tmp_path_factory.mktemp("engines")
    config = ModelConfig(isize=16, nz=64, ngf=192, ndf=192)
    netg, netd = build_networks(config, seed=0)
    checkpoint = Checkpoint(config, Preprocess(mode="patch", isize=16, stride=16, scale=0.5),
                            DecisionRule(threshold=2.5), netg.state_dict(), netd.state_dict(),
                            score_stats={"d1": {"mean": 0.1, "std": 0.02}})
    fp32 = export_checkpoint(save_checkpoint(checkpoint, root / "wide.pt"), root / "scorer.onnx",
                             ExportOptions(with_amap=True)).path
    tiles = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    qdq = make_qdq_graph(fp32, root / "scorer.int8.qdq.onnx", tiles)
    built = {}
    for precision, graph in (("fp32", fp32), ("fp16", fp32), ("int8", qdq)):
        # one profile: the sizes compare how each precision stores the weights (every profile adds kernels). The
        # Q/DQ graph stands in for `gedge calibrate`'s and has no accuracy gate: only --force builds it.
        built[precision] = build_engine(graph, BuildRequest(precision, max_batch=16, progress=False, profiles=1,
                                                            force=precision == "int8"))
    return {"root": root, "qdq": qdq, "fp32_graph": fp32, **built}


@needs_trt
def test_fp32_fp16_int8_engines_and_manifests(engines):
    sizes = {p: engines[p].engine_bytes for p in ("fp32", "fp16", "int8")}
    weights = {p: engines[p].manifest["source_graph"]["weight_bytes"] for p in sizes}
    print(f"engine bytes {sizes}, graph weight bytes {weights}, int8/fp32 {sizes['int8'] / sizes['fp32']:.2f}, "
          f"fp16/fp32 {sizes['fp16'] / sizes['fp32']:.2f}")
    for precision, result in ((p, engines[p]) for p in sizes):
        assert result.engine == engines["root"] / f"scorer.{precision}.engine" and result.engine.is_file()
        assert sizes[precision] == result.engine.stat().st_size
        manifest = read_manifest(result.engine)
        assert manifest["precision"] == precision and (manifest["network"] == "strongly typed" or not TRT.is_rtx)
        assert manifest["tensorrt"] == {"flavour": TRT.name, "version": TRT.version}
        assert manifest["profile"] == {"input": "pixels", "min": [1, 16, 16, 3], "opt": [8, 16, 16, 3],
                                       "max": [16, 16, 16, 3]}
        assert manifest["input"] == {"name": "pixels", "kind": "uint8-nhwc", "dtype": "uint8", "layout": "NHWC",
                                     "shape": [-1, 16, 16, 3]}
        assert {"d1", "d2", "d3", "latent", "score", "amap"} <= set(manifest["outputs"])
        assert manifest["primary_score"] == "d1" and manifest["threshold"] == 2.5
        assert manifest["score_stats"] == {"d1": {"mean": 0.1, "std": 0.02}} and manifest["gedge_version"]
        assert manifest["parity"]["engine"]["status"] == "not measured"
        assert manifest["build"]["plan"]["precision"] == precision
        verify_engine(result.engine)
    # Real engines holding their weights in the engine's precision.
    assert sizes["fp32"] > weights["fp32"] > 20e6
    assert sizes["int8"] < 0.4 * sizes["fp32"] and sizes["fp16"] < 0.6 * sizes["fp32"]
    assert all(engines[p].manifest["profiles"] == 1 for p in sizes)


@needs_trt
def test_one_profile_per_slot_by_default(engines, tmp_path):
    """`gedge build` makes two identical profiles by default, so two slots can run concurrently."""
    two = build_engine(engines["fp32_graph"], BuildRequest("fp32", out=str(tmp_path / "two.engine"), max_batch=16,
                                                           progress=False))
    assert two.manifest["profiles"] == 2 and two.engine_bytes > engines["fp32"].engine_bytes
    # The FP16 engine came from the FP16 graph derived next to the FP32 one.
    fp16 = engines["fp16"]
    assert fp16.fp16_graph_written and (engines["root"] / "scorer.fp16.onnx").is_file()
    assert fp16.manifest["source_graph"]["path"] == "scorer.fp16.onnx"
    assert fp16.manifest["given_graph"]["path"] == "scorer.onnx"
    int8 = engines["int8"].manifest
    assert int8["forced"] == ["the INT8 graph has no sidecar (scorer.int8.qdq.onnx.json), so no recorded accuracy "
                              "gate"] and "forced" not in engines["fp16"].manifest
    assert int8["calibration_set"]["set_sha256"] == "ab" * 32 and int8["calibration_set"]["method"] == "minmax"
    assert int8["calibration_set"]["flavour"] == "tensorrt"
    assert int8["source_graph"]["precision"] == "int8"


@needs_trt
def test_verification_refuses_tampered_and_foreign_engines(engines, tmp_path):
    engine = engines["fp16"].engine
    manifest = read_manifest(engine)
    runtime = RuntimeInfo(TRT.name, TRT.version, "NVIDIA GeForce RTX 4090", "SM89")
    verify_engine(engine, runtime)  # default TensorRT-RTX targets cover SM89; a classic build records its GPU
    data = bytearray(engine.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / engine.name
    tampered.write_bytes(bytes(data))
    shutil.copy(engine.with_name(engine.name + ".json"), tmp_path)
    with pytest.raises(ArtifactError, match="sha256 differs"):
        verify_engine(tampered)
    with pytest.raises(ArtifactError, match="no manifest"):
        verify_engine(shutil.copy(engine, tmp_path / "other.engine"))
    other_version = RuntimeInfo(TRT.name, "0.0.1", "", "")
    with pytest.raises(ArtifactError, match=r"0\.0\.1.*rebuild"):
        verify_engine(engine, other_version)
    other_flavour = RuntimeInfo("tensorrt_rtx" if TRT.name == "tensorrt" else "tensorrt", TRT.version)
    with pytest.raises(ArtifactError, match="this runtime is"):
        verify_engine(engine, other_flavour)
    bytes_ = engine.read_bytes()
    aot = {**manifest, "target": {"kind": "aot", "compute_capabilities": ["SM86"], "default_targets": []}}
    with pytest.raises(ArtifactError, match="built for SM86 but this GPU is SM89"):
        verify_manifest(aot, bytes_, runtime)
    default = {**manifest, "target": {"kind": "aot", "compute_capabilities": [],
                                      "default_targets": ["SM80", "SM86", "SM89", "SM120"]}}
    verify_manifest(default, bytes_, RuntimeInfo(TRT.name, TRT.version, "RTX 5090", "SM120"))
    with pytest.raises(ArtifactError, match="-c SM75"):
        verify_manifest(default, bytes_, RuntimeInfo(TRT.name, TRT.version, "T4", "SM75"))
    jetson = {**manifest, "target": {"kind": "gpu", "gpu_name": "Orin", "compute_capability": "SM87"}}
    verify_manifest(jetson, bytes_, RuntimeInfo(TRT.name, TRT.version, "Orin", "SM87"))
    with pytest.raises(ArtifactError, match=r"built on Orin \(SM87\) but this GPU is Xavier \(SM72\)"):
        verify_manifest(jetson, bytes_, RuntimeInfo(TRT.name, TRT.version, "Xavier", "SM72"))
    with pytest.raises(ArtifactError, match="built on Orin but this GPU is Orin Nano"):
        verify_manifest(jetson, bytes_, RuntimeInfo(TRT.name, TRT.version, "Orin Nano", "SM87"))


@needs_trt
def test_progress_monitor_and_targets(scorer_graphs, tmp_path):
    events = []

    class Recorder:
        def start(self, phase, parent, steps):
            events.append(("start", phase, parent))

        def step(self, phase, step):
            events.append(("step", phase))

        def finish(self, phase):
            events.append(("finish", phase))

    caps = ("SM86",) if TRT.is_rtx else ()
    result = build_engine(scorer_graphs["fp16"], BuildRequest("fp16", out=str(tmp_path / "a.engine"), max_batch=4,
                                                              compute_capabilities=caps), progress=Recorder())
    if result.plan.progress_monitor:
        top = [e for e in events if e[0] == "start" and e[2] is None]
        assert top and ("finish", top[0][1]) in events
    if TRT.is_rtx:
        assert result.manifest["target"] == {"kind": "aot", "compute_capabilities": ["SM86"], "default_targets": [],
                                             "description": "ahead of time for SM86"}


def test_int8_facts_and_calibration_cache_header(scorer_graphs):
    from gedge.export.build_plan import graph_info, plan_build
    from gedge.export.capabilities import assumed_capabilities

    model = load_graph(scorer_graphs["fp32"])
    plan = plan_build(assumed_capabilities("trt-10.3"), BuildRequest("int8", calibration_cache="x.cache"),
                      graph_info(model, scorer_graphs["fp32"]))
    cache = b"TRT-8601-EntropyCalibration2\npixels: 3c010a14\n"
    facts = int8_facts(model, plan, cache)
    assert facts["method"] == "EntropyCalibration2" and facts["cache_tensorrt"] == "8601"
    assert facts["quantization"] == "implicit (calibration cache)" and len(facts["cache_sha256"]) == 64
    assert cache_header(b"TRT-100300-MinMaxCalibration\n") == ("100300", "MinMaxCalibration")
    with pytest.raises(ArtifactError, match="not a TensorRT calibration cache"):
        cache_header(b"\x00garbage")
    assert int8_facts(model, plan_build(assumed_capabilities("rtx"), BuildRequest("fp32"),
                                        graph_info(model, "g.onnx")), None) is None


# --- the command line --------------------------------------------------------------------------------------


def test_dry_run_plans_for_versions_not_installed(scorer_graphs, capsys):
    for assume, network, flags in (("trt-8.5", "weakly typed", ["FP16", "OBEY_PRECISION_CONSTRAINTS"]),
                                   ("trt-10.3", "strongly typed", []), ("trt-11", "strongly typed", [])):
        code, out, err = cli(capsys, "build", scorer_graphs["fp32"], "--precision", "fp16", "--dry-run",
                             "--assume", assume, "--json")
        assert code == 0, err
        plan = json.loads(out)["plan"]
        assert plan["network"] == network and plan["builder_flags"] == flags and plan["assumed"]
    code, out, _ = cli(capsys, "build", scorer_graphs["fp32"], "--precision", "fp16", "--dry-run",
                       "--assume", "trt-8.5")
    assert code == 0 and "TensorRT 8.5.2.2 (assumed)" in out and "OBEY_PRECISION_CONSTRAINTS" in out
    assert not (scorer_graphs["fp32"].parent / "scorer.fp16.engine").exists()


def test_bad_build_input_is_one_line_exit_2(scorer_graphs, tmp_path, capsys):
    cases = [
        ("build", scorer_graphs["fp32"], "--precision", "int8", "--dry-run", "--assume", "trt-11"),
        ("build", tmp_path / "missing.onnx", "--precision", "fp32", "--dry-run", "--assume", "rtx"),
        ("build", scorer_graphs["fp32"], "--precision", "fp32", "--assume", "trt-8.5"),
        ("build", scorer_graphs["fp32"], "--precision", "fp64", "--dry-run", "--assume", "rtx"),
        ("build", scorer_graphs["fp16"], "--precision", "fp32", "--dry-run", "--assume", "rtx"),
        ("build", scorer_graphs["fp32"], "--precision", "fp32", "--dry-run", "--assume", "trt-10.3", "-c", "SM87"),
    ]
    for args in cases:
        code, _, err = cli(capsys, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error:"), (args, err)
    real = run(*cases[0])  # and once through the installed entry point
    assert real.returncode == 2 and "Q/DQ" in real.stderr and len(real.stderr.strip().splitlines()) == 1


@needs_trt
def test_build_cli_with_parity_at_build_time(scorer_graphs, tmp_path, capsys):
    from gedge.data.synth import SynthConfig, write_synthetic

    # 20 normal and 20 anomalous test images: an AUROC step of 1/400, fine enough for FP16's 0.01 (on the fixture's
    # 6 x 10 images one pair the untrained model nearly ties and FP16 swaps is 0.0167, over the limit)
    data = tmp_path / "wood"
    write_synthetic(data, SynthConfig(size=64, n_train=2, n_test_good=20, n_test_per_defect=4, seed=2))
    out = tmp_path / "scorer.fp16.engine"
    code, stdout, err = cli(capsys, "build", scorer_graphs["fp16"], "--precision", "fp16", "-o", out, "--max-batch",
                            "8", "--ref", scorer_graphs["checkpoint"], "--data", data, "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["engine"] == str(out) and report["engine_bytes"] == out.stat().st_size
    parity = read_manifest(out)["parity"]
    assert parity["engine"]["status"] == "pending" and "GPU" in parity["engine"]["reason"]
    assert parity["graph"]["status"] == "passed" and parity["graph"]["precision"] == "fp16"
    assert parity["graph"]["rel_l2"]["score"] < 1e-2
    code, stdout, err = cli(capsys, "build", scorer_graphs["fp16"], "--precision", "fp16", "-o", out,
                            "--max-batch", "8")
    assert code == 0 and "Built FP16 engine" in stdout and "not measured" in stdout, err


# --- demo stage and the Jetson image -----------------------------------------------------------------------


def test_demo_engine_stage_says_when_no_tensorrt(monkeypatch, capsys, tmp_path):
    import gedge.cli.demo as demo
    from gedge.cli.demo import STAGES, DemoContext, stage_engines

    names = [name for name, _ in STAGES]
    assert names.index("engines") > names.index("export")  # and after calibrate, where there is one
    assert "calibrate" not in names or names.index("engines") > names.index("calibrate")
    monkeypatch.setattr(demo, "import_tensorrt", lambda prefer=None: (None, "tensorrt: ModuleNotFoundError"))
    ctx = DemoContext(out=tmp_path, steps=0, seed=0)
    stage_engines(ctx)
    assert "no TensorRT is installed" in capsys.readouterr().out and "skipped" in ctx.summary["engines"]


@needs_trt
def test_demo_engine_stage_builds(scorer_graphs, tmp_path):
    from gedge.cli.demo import DemoContext, stage_engines

    ctx = DemoContext(out=tmp_path, steps=0, seed=0, graphs={"fp16": scorer_graphs["fp16"]})
    ctx.graphs["fp32"] = Path(shutil.copy(scorer_graphs["fp32_float"], tmp_path / "scorer.onnx"))
    ctx.graphs["fp16"] = Path(shutil.copy(scorer_graphs["fp16"], tmp_path / "scorer.fp16.onnx"))
    stage_engines(ctx)
    assert set(ctx.summary["engines"]) == {"fp32", "fp16"}
    assert (tmp_path / "scorer.fp32.engine.json").is_file() and (tmp_path / "scorer.fp16.engine").is_file()


def test_jetson_dockerfile_copies_existing_files_and_installs_existing_extras():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    text = (REPO / "Dockerfile.jetson").read_text()
    lines = re.sub(r"\\\n", " ", text).splitlines()
    assert lines and any(re.match(r"FROM \$\{L4T_BASE\}", ln) for ln in lines)
    assert re.search(r"ARG L4T_BASE=nvcr\.io/nvidia/l4t-jetpack:r36\.\d\.\d", text)
    copies = [ln.split()[1:-1] for ln in lines if ln.startswith("COPY") and "--from" not in ln]
    sources = [src for srcs in copies for src in srcs]
    assert {"pyproject.toml", "edge", "export"} <= set(sources)
    missing = [src for src in sources if not (REPO / src).exists()]
    assert not missing, f"Dockerfile.jetson copies files that do not exist: {missing}"
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installs = [ln for ln in lines if re.search(r"pip install", ln)]
    named = [e.strip() for ln in installs for group in re.findall(r"\.\[([^\]]+)\]", ln) for e in group.split(",")]
    assert named and all(e in extras for e in named), (named, list(extras))
    assert "torch" not in " ".join(extras[e] and " ".join(extras[e]) for e in named)
    assert re.search(r'ENTRYPOINT \["gedge"\]', text)


def test_open_tensorrt_without_one_is_a_clear_error(monkeypatch):
    import gedge.export.engine_build as engine_build

    monkeypatch.setattr(engine_build, "import_tensorrt", lambda prefer=None: (None, "tensorrt: ModuleNotFoundError"))
    with pytest.raises(ConfigError, match="--dry-run --assume"):
        engine_build.open_tensorrt()

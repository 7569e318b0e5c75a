"""Real engines from gedge's graphs with the installed TensorRT (CI: TensorRT-RTX, ahead of time, no GPU),
their manifests, verification (a tampered engine is refused), `gedge build` on the command line, the demo
stage and the Jetson Dockerfile. Without a TensorRT module the build tests skip with the import error."""

from __future__ import annotations

import builtins
import io
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from clirun import cli
from gedge.core import artifacts
from gedge.core.artifacts.engine import RuntimeInfo, check_runtime
from gedge.core.artifacts.facts import Quantization
from gedge.core.artifacts.graph import graph_facts, load_graph, write_facts
from gedge.core.artifacts.manifest import EngineTarget
from gedge.core.artifacts.records import CalibrationSetRef
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.tensorrt import import_tensorrt
from gedge.export.build_plan import BuildRequest
from gedge.export.engine_build import build_engine
from gedge.export.engine_manifest import calibration_facts

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
    quantization = Quantization("tensorrt", "minmax", calibration_set=CalibrationSetRef("ab" * 32, len(tiles)))
    write_facts(model, graph_facts(model).derived("int8", "0" * 64, quantization))
    onnx.save(model, out)  # no sidecar: no recorded accuracy gate
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
    fp32 = export_checkpoint(artifacts.open(save_checkpoint(checkpoint, root / "wide.pt")), root / "scorer.onnx",
                             ExportOptions(with_amap=True)).graph
    tiles = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    qdq = artifacts.open(make_qdq_graph(fp32.path, root / "scorer.int8.qdq.onnx", tiles))
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
    weights = {p: engines[p].manifest.source_graph.weight_bytes for p in sizes}
    print(f"engine bytes {sizes}, graph weight bytes {weights}, int8/fp32 {sizes['int8'] / sizes['fp32']:.2f}, "
          f"fp16/fp32 {sizes['fp16'] / sizes['fp32']:.2f}")
    for precision, result in ((p, engines[p]) for p in sizes):
        assert result.engine == engines["root"] / f"scorer.{precision}.engine" and result.engine.is_file()
        assert sizes[precision] == result.engine.stat().st_size
        engine = artifacts.open(result.engine)  # the bytes checked against the manifest
        manifest = json.loads(engine.facts_file.read_text())  # the manifest's JSON form, as the firmware reads it
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
        assert engine.manifest == result.manifest and engine.sha256 == result.manifest.engine_sha256
    # Real engines holding their weights in the engine's precision.
    assert sizes["fp32"] > weights["fp32"] > 20e6
    assert sizes["int8"] < 0.4 * sizes["fp32"] and sizes["fp16"] < 0.6 * sizes["fp32"]
    assert all(engines[p].manifest.profiles == 1 for p in sizes)


@needs_trt
def test_one_profile_per_slot_by_default(engines, tmp_path):
    """`gedge build` makes two identical profiles by default, so two slots can run concurrently."""
    two = build_engine(engines["fp32_graph"], BuildRequest("fp32", out=str(tmp_path / "two.engine"), max_batch=16,
                                                           progress=False))
    assert two.manifest.profiles == 2 and two.engine_bytes > engines["fp32"].engine_bytes
    # The FP16 engine came from the FP16 graph derived next to the FP32 one.
    fp16 = engines["fp16"]
    assert fp16.fp16_graph_written and (engines["root"] / "scorer.fp16.onnx").is_file()
    assert fp16.manifest.source_graph.path == "scorer.fp16.onnx" and fp16.manifest.given_graph.path == "scorer.onnx"
    # the lineage, followed through the objects: the engine's graph, that graph's FP32 graph, their checkpoint
    derived = artifacts.open(engines["root"] / "scorer.fp16.onnx")
    assert fp16.manifest.source_graph.sha256 == derived.sha256
    assert derived.lineage.derived_from_sha256 == fp16.manifest.given_graph.sha256 == engines["fp32_graph"].sha256
    assert fp16.manifest.source_checkpoint.sha256 == engines["fp32_graph"].lineage.checkpoint_sha256
    int8 = engines["int8"].manifest
    assert int8.forced == ("the INT8 graph has no sidecar (scorer.int8.qdq.onnx.json), so no recorded accuracy "
                           "gate",) and not engines["fp16"].manifest.forced
    assert int8.calibration.set_sha256 == "ab" * 32 and int8.calibration.method == "minmax"
    assert int8.calibration.flavour == "tensorrt" and int8.source_graph.precision == "int8"


@needs_trt
def test_verification_refuses_tampered_and_foreign_engines(engines, tmp_path):
    engine = engines["fp16"].engine
    manifest = artifacts.open(engine).manifest
    runtime = RuntimeInfo(TRT.name, TRT.version, "NVIDIA GeForce RTX 4090", "SM89")
    check_runtime(manifest, runtime)  # default TensorRT-RTX targets cover SM89; a classic build records its GPU
    data = bytearray(engine.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / engine.name
    tampered.write_bytes(bytes(data))
    shutil.copy(engine.with_name(engine.name + ".json"), tmp_path)
    with pytest.raises(ArtifactError, match="sha256 differs"):
        artifacts.open(tampered)
    with pytest.raises(ArtifactError, match="no manifest"):
        artifacts.open(shutil.copy(engine, tmp_path / "other.engine"))
    other_version = RuntimeInfo(TRT.name, "0.0.1", "", "")
    with pytest.raises(ArtifactError, match=r"0\.0\.1.*rebuild"):
        check_runtime(manifest, other_version)
    other_flavour = RuntimeInfo("tensorrt_rtx" if TRT.name == "tensorrt" else "tensorrt", TRT.version)
    with pytest.raises(ArtifactError, match="this runtime is"):
        check_runtime(manifest, other_flavour)
    aot = replace(manifest, target=EngineTarget("aot", compute_capabilities=("SM86",)))
    with pytest.raises(ArtifactError, match="built for SM86 but this GPU is SM89"):
        check_runtime(aot, runtime)
    default = replace(manifest, target=EngineTarget("aot", default_targets=("SM80", "SM86", "SM89", "SM120")))
    check_runtime(default, RuntimeInfo(TRT.name, TRT.version, "RTX 5090", "SM120"))
    with pytest.raises(ArtifactError, match="-c SM75"):
        check_runtime(default, RuntimeInfo(TRT.name, TRT.version, "T4", "SM75"))
    jetson = replace(manifest, target=EngineTarget("gpu", "Orin", "SM87"))
    check_runtime(jetson, RuntimeInfo(TRT.name, TRT.version, "Orin", "SM87"))
    with pytest.raises(ArtifactError, match=r"built on Orin \(SM87\) but this GPU is Xavier \(SM72\)"):
        check_runtime(jetson, RuntimeInfo(TRT.name, TRT.version, "Xavier", "SM72"))
    with pytest.raises(ArtifactError, match="built on Orin but this GPU is Orin Nano"):
        check_runtime(jetson, RuntimeInfo(TRT.name, TRT.version, "Orin Nano", "SM87"))


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
    result = build_engine(artifacts.open(scorer_graphs["fp16"]), BuildRequest("fp16", out=str(tmp_path / "a.engine"),
                                                                              max_batch=4, compute_capabilities=caps),
                          progress=Recorder())
    if result.plan.progress_monitor:
        top = [e for e in events if e[0] == "start" and e[2] is None]
        assert top and ("finish", top[0][1]) in events
    if TRT.is_rtx:
        assert result.manifest.target.to_dict() == {"kind": "aot", "compute_capabilities": ["SM86"],
                                                    "default_targets": [], "description": "ahead of time for SM86"}


def test_int8_calibration_facts_come_from_the_cache_that_was_read(scorer_graphs, tmp_path):
    """An implicit INT8 build's calibration facts: the cache's own (its header, its sha256 as read), never guessed
    from key names; no facts for a float build."""
    from gedge.export.build_plan import plan_build
    from gedge.export.capabilities import assumed_capabilities

    graph = artifacts.open(scorer_graphs["fp32"])
    plan = plan_build(assumed_capabilities("trt-10.3"), BuildRequest("int8", calibration_cache="x.cache"), graph)
    path = tmp_path / "x.cache"
    path.write_bytes(b"TRT-8601-EntropyCalibration2\npixels: 3c010a14\n")
    cache = artifacts.open(path)
    facts = calibration_facts(plan, graph, cache)
    assert facts.method == "EntropyCalibration2" and facts.cache_tensorrt == "8601" and facts.cache == "x.cache"
    assert facts.quantization == "implicit (calibration cache)" and facts.cache_sha256 == cache.sha256
    assert cache.sha256 == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    path.write_bytes(b"\x00garbage")
    with pytest.raises(ArtifactError, match="not a TensorRT calibration cache"):
        artifacts.open(path)
    assert calibration_facts(plan_build(assumed_capabilities("rtx"), BuildRequest("fp32"), graph), graph,
                             None) is None


@needs_trt
@pytest.mark.parametrize("given, derived", [("scorer.onnx", True), ("scorer.fp16.onnx", False)])
def test_build_reads_and_hashes_the_graph_once_and_writes_the_manifest_once(scorer_graphs, tmp_path, monkeypatch,
                                                                             capsys, given, derived):
    """`gedge build --precision fp16`, from the FP32 graph (the FP16 graph derived in memory and written once) or
    from the FP16 graph: every graph file is read once (a spy on the reader, and on every open of the file by
    anything), its sha256 computed once, and the manifest written once."""
    import gedge.core.artifacts.engine as engine_module
    import gedge.core.artifacts.graph as graph_module

    for name in ("scorer.onnx", "scorer.fp16.onnx"):
        if name == given or not derived:
            for suffix in ("", ".json"):
                shutil.copy(f"{scorer_graphs['fp32' if name == 'scorer.onnx' else 'fp16']}{suffix}",
                            f"{tmp_path / name}{suffix}")
    reads, opens, hashed, manifests = Counter(), Counter(), Counter(), []
    real_read, real_hash, real_write = graph_module.read_file, graph_module.sha256_bytes, engine_module.write_record
    real_open, real_io_open = builtins.open, io.open

    def read_file(path, what):
        reads[Path(path).name] += 1
        return real_read(path, what)

    def sha256_bytes(data):
        digest = real_hash(data)
        hashed[digest] += 1
        return digest

    def opened(opener):
        def spy(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, Path)) and Path(file).name.endswith(".onnx") and "r" in mode:
                opens[Path(file).name] += 1
            return opener(file, mode, *args, **kwargs)
        return spy

    def write_record(path, kind, payload):
        manifests.append((Path(path).name, kind))
        return real_write(path, kind, payload)

    monkeypatch.setattr(graph_module, "read_file", read_file)
    monkeypatch.setattr(graph_module, "sha256_bytes", sha256_bytes)
    monkeypatch.setattr(engine_module, "write_record", write_record)
    monkeypatch.setattr(builtins, "open", opened(real_open))
    monkeypatch.setattr(io, "open", opened(real_io_open))
    code, out, err = cli(capsys, "build", tmp_path / given, "--precision", "fp16", "-o", tmp_path / "s.engine",
                         "--max-batch", "4", "--profiles", "1", "--no-progress", "--json")
    assert code == 0, err
    assert json.loads(out)["fp16_graph_written"] == derived
    monkeypatch.undo()
    assert reads == Counter({given: 1}) and opens == Counter({given: 1}), (reads, opens)
    fp32, fp16 = (artifacts.open(tmp_path / name) for name in ("scorer.onnx", "scorer.fp16.onnx"))
    assert hashed[fp16.sha256] == 1 and (hashed[fp32.sha256] == 1 if derived else fp32.sha256 not in hashed)
    assert manifests == [("s.engine.json", "engine")]
    engine = artifacts.open(tmp_path / "s.engine")
    assert engine.manifest.source_graph.sha256 == fp16.sha256 and engine.lineage.derived_from_sha256 == fp16.sha256


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
    parity = artifacts.open(out).manifest.parity
    assert parity["engine"].status == "pending" and "GPU" in parity["engine"].reason
    assert parity["graph"].status == "passed" and parity["graph"].details["precision"] == "fp16"
    assert parity["graph"].rel_l2["score"] < 1e-2
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

    ctx = DemoContext(out=tmp_path, steps=0, seed=0)
    for precision, name, source in (("fp32", "scorer.onnx", "fp32_float"), ("fp16", "scorer.fp16.onnx", "fp16")):
        for suffix in ("", ".json"):
            shutil.copy(f"{scorer_graphs[source]}{suffix}", f"{tmp_path / name}{suffix}")
        ctx.graphs[precision] = artifacts.open(tmp_path / name)
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

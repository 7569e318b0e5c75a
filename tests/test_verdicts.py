"""Recorded verdicts are verified and enforced where artifacts are read: hashes of sidecars, manifests and caches,
an INT8 artifact's accuracy gate and an engine's parity, refused by every command unless --force (and recorded
then), with a warning for parity that was not measured."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clirun import cli
from gedge.compare.parity import ParityRequest, parity_check
from gedge.core import artifacts
from gedge.core.artifacts.calib_cache import check_cache_graph
from gedge.core.artifacts.served import open_deployable
from gedge.core.artifacts.sidecar import sidecar_path
from gedge.core.artifacts.verdicts import RefusedArtifact, enforce, parity_verdicts
from gedge.core.errors import ArtifactError, CheckFailed
from gedge.core.machine import cuda_device
from gedge.core.tensorrt import import_tensorrt
from gedge.runtime.registry import open_backend

TRT, WHY_NOT = import_tensorrt()
needs_trt = pytest.mark.skipif(TRT is None, reason=f"no TensorRT module importable: {WHY_NOT}")
GATE_WORDS = "FAILED its INT8 accuracy gate"


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- what each kind of artifact records, verified -------------------------------------------------------------


def test_graph_sidecars_are_verified_and_int8_gates_read(scorer_graphs, int8_graphs, failed_int8, tmp_path):
    assert artifacts.open(scorer_graphs["fp32"]).verification.status == "verified"
    passed = artifacts.open(int8_graphs["cpu"]).verification
    assert passed.status == "verified" and passed.verdicts == {"gate": "passed"} and not passed.refusals
    failed = artifacts.open(failed_int8["graph"]).verification
    assert failed.status == "refused" and GATE_WORDS in failed.refusals[0]
    with pytest.raises(RefusedArtifact, match="pass --force"):
        enforce(failed)
    forced = enforce(failed, force=True)
    assert forced.status == "forced" and forced.forced == failed.refusals and "FORCED over" in forced.line()
    bare = artifacts.open(shutil.copy(int8_graphs["cpu"], tmp_path / "bare.int8.onnx")).verification  # no sidecar
    assert bare.refusals and bare.verdicts == {"gate": "not recorded"}
    # A graph published without its new sidecar (an interrupted publish): refused, with the advice to redo it.
    mixed = Path(shutil.copy(failed_int8["graph"], tmp_path / "mixed.int8.qdq.onnx"))
    shutil.copy(sidecar_path(int8_graphs["tensorrt"]), sidecar_path(mixed))
    with pytest.raises(ArtifactError, match="does not match its sidecar.*again"):
        artifacts.open(mixed)
    with pytest.raises(ArtifactError, match="does not match its sidecar"):
        open_backend(mixed)


def test_engine_manifests_refuse_failed_parity_and_warn_otherwise():
    def verdict(parity, forced=()):
        return parity_verdicts(parity, tuple(forced), "x.engine", "sha256 checked")

    passed = verdict({"engine": ("passed", "")})
    assert passed.status == "verified" and passed.verdicts == {"engine parity": "passed"}
    failed = verdict({"engine": ("failed", "d1: relative L2 error 0.3 > 0.01")})
    assert failed.status == "refused" and "engine parity FAILED (d1: relative L2" in failed.refusals[0]
    graph_failed = verdict({"engine": ("pending", "no GPU"), "graph": ("failed", "")})
    assert graph_failed.status == "refused" and "graph parity FAILED" in graph_failed.refusals[0]
    for status in ("pending", "not measured", "error"):
        warned = verdict({"engine": (status, "why")})
        assert warned.status == "warning" and f"engine parity {status}" in warned.warnings[0]
    forced = verdict({"engine": ("passed", "")}, ["the INT8 graph FAILED its INT8 accuracy gate"])
    assert forced.status == "warning" and "built with --force over" in forced.warnings[0]


def test_calibration_caches_are_bound_to_their_graph_and_gate(int8_graphs, failed_int8, scorer_graphs, tmp_path):
    cache, fp32 = artifacts.open(int8_graphs["cache"]), artifacts.open(int8_graphs["fp32"])
    ok = check_cache_graph(cache, fp32)  # followed through the objects: the cache's graph is this graph
    assert ok.status == "verified" and ok.verdicts == {"gate": "passed"} and "FP32 graph's sha256" in ok.line()
    assert cache.calibration.graph_sha256 == fp32.sha256
    with pytest.raises(ArtifactError, match="made for another graph"):
        check_cache_graph(cache, artifacts.open(scorer_graphs["fp32"]))
    failed = check_cache_graph(artifacts.open(failed_int8["cache"]), artifacts.open(scorer_graphs["fp32"]))
    assert failed.status == "refused" and "Q/DQ graph FAILED" in failed.refusals[0]
    tampered = Path(shutil.copy(int8_graphs["cache"], tmp_path / "t.cache"))
    shutil.copy(int8_graphs["cache"].with_name(int8_graphs["cache"].name + ".json"), tmp_path / "t.cache.json")
    tampered.write_text(tampered.read_text() + "extra: 3c000000\n")
    with pytest.raises(ArtifactError, match="does not match its sidecar"):
        artifacts.open(tampered)
    lone = artifacts.open(shutil.copy(int8_graphs["cache"], tmp_path / "lone.cache"))
    assert check_cache_graph(lone, fp32).refusals  # no sidecar: nothing to check it against


# --- every command refuses a gate-failed INT8 graph unless --force --------------------------------------------


def _commands_using(graph, scorer_graphs) -> dict[str, tuple]:
    """The commands that must refuse a failed or tampered INT8 graph without --force, each on ``graph``."""
    return {
        "build": ("build", graph, "--precision", "int8", "--dry-run", "--assume", "trt-10.3"),
        "inspect": ("inspect", graph, scorer_graphs["data"] / "test" / "good", "--threads", 1),
        "bench": ("bench", graph, "--batch", 1, "--iters", 1, "--warmup", 0, "--no-pipeline"),
        "parity": ("parity", "--ref", scorer_graphs["checkpoint"], "--candidate", graph, "--data",
                   scorer_graphs["data"], "--threads", 1),
    }


def test_gate_failed_int8_graph_is_refused_by_every_command(failed_int8, scorer_graphs, capsys):
    graph = failed_int8["graph"]
    commands = _commands_using(graph, scorer_graphs)
    for name, args in commands.items():
        code, _, err = cli(capsys, *args)
        line = one_line(err)
        assert code == 1 and GATE_WORDS in line and "--force" in line and graph.name in line, (name, err)
    code, out, err = cli(capsys, *commands["build"], "--force", "--json")
    assert code == 0, err
    code, out, err = cli(capsys, *commands["inspect"], "--force", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])["summary"]
    assert summary["verification"]["status"] == "forced" and summary["images"] > 0
    code, out, err = cli(capsys, *commands["bench"], "--force", "--json")
    assert code == 0, err
    assert any("FORCED over" in note for note in json.loads(out)["notes"])
    code, out, err = cli(capsys, *commands["parity"], "--force", "--json")
    report = json.loads(out)
    # forced, the graph is judged like any candidate: the test split's 16 images (6 good, 2 of each of 5 defect
    # classes, as the fixture writes them) compared, the verdict the library's own comparison gives, and the exit
    # code that verdict means (the untrained model's INT8 latent score loses its ranks: it fails on this machine)
    assert report["verification"]["status"] == "forced" and report["n_images"] == 16
    library = parity_check(ParityRequest(artifacts.open(scorer_graphs["checkpoint"]), artifacts.open(graph),
                                         scorer_graphs["data"], threads=1, force=True))
    assert (report["passed"], report["failures"]) == (library.passed, library.failures)
    assert code == (0 if library.passed else 1) and "Traceback" not in err
    with pytest.raises(RefusedArtifact, match=GATE_WORDS):
        open_deployable(graph)  # `gedge serve` and `gedge triton export` read artifacts through it
    assert open_deployable(graph, force=True).verification.forced
    with pytest.raises(RefusedArtifact):
        open_backend(graph)
    open_backend(graph, force=True).close()


def test_triton_export_refuses_unless_forced(failed_int8, tmp_path):
    from gedge.export.triton import TritonExportOptions, export_repository

    with pytest.raises(RefusedArtifact, match=GATE_WORDS):
        export_repository([failed_int8["graph"]], tmp_path / "repo", TritonExportOptions())
    assert not (tmp_path / "repo").exists()  # nothing written before every artifact was verified
    written = export_repository([failed_int8["graph"]], tmp_path / "repo", TritonExportOptions(force=True))
    assert written[0].forced and "FORCED" in written[0].verification


def test_headers_show_the_verification(int8_graphs, capsys):
    images = int8_graphs["data"] / "test" / "good"
    code, out, err = cli(capsys, "inspect", int8_graphs["cpu"], images, "--threads", 1)
    assert code == 0 and "verified: sha256 matches the sidecar; gate passed" in out, err
    code, out, err = cli(capsys, "bench", int8_graphs["cpu"], "--batch", 1, "--iters", 1, "--warmup", 0,
                         "--no-pipeline")
    assert code == 0 and "verified: sha256 matches the sidecar; gate passed" in out, err


# --- engines: parity recorded in the manifest ------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_engine(scorer_graphs, tmp_path_factory):
    if TRT is None:
        pytest.skip(f"no TensorRT module importable: {WHY_NOT}")
    from gedge.export.build_plan import BuildRequest
    from gedge.export.engine_build import build_engine

    out = tmp_path_factory.mktemp("engine") / "scorer.fp32.engine"
    return build_engine(artifacts.open(scorer_graphs["fp32"]), BuildRequest("fp32", out=str(out), max_batch=4,
                                                                            profiles=1, progress=False)).engine


def _with_parity(engine: Path, folder: Path, status: str) -> Path:
    from gedge.core.artifacts.engine import write_manifest
    from gedge.core.artifacts.manifest import ParityRecord

    copy = Path(shutil.copy(engine, folder / f"{status.replace(' ', '_')}.engine"))
    manifest = artifacts.open(engine).manifest
    write_manifest(copy, manifest.with_parity({"engine": ParityRecord(status, "test",
                                                                      ("d1: relative L2 error 1 > 1e-05",))}))
    return copy


@needs_trt
def test_parity_failed_engine_is_refused_by_inspect_and_bench(small_engine, scorer_graphs, tmp_path, capsys):
    failed = _with_parity(small_engine, tmp_path, "failed")
    images = scorer_graphs["data"] / "test" / "good"
    missing = ("no usable CUDA", "no CUDA GPU to run the engine on")  # CUDA's bindings, or the GPU itself
    for args in (("inspect", failed, images), ("bench", failed, "--batch", 1, "--iters", 1, "--no-pipeline")):
        code, _, err = cli(capsys, *args)
        line = one_line(err)
        assert code == 1 and "engine parity FAILED" in line and "--force" in line, err
        code, out, err = cli(capsys, *args, "--force")  # past the verdict: then it needs a GPU to run on
        assert "engine parity FAILED" not in err.replace("FORCED over: the engine's recorded engine parity FAILED", "")
        if cuda_device()[0] is not None:
            assert code == 0, err
        elif args[0] == "inspect":  # one line naming what is missing, exit 2
            line = one_line(err)
            assert code == 2 and any(words in line for words in missing), err
        else:  # bench runs what it can and names what it could not run, and why
            assert code == 0 and "Traceback" not in err
            assert f"not run: tensorrt {failed.name}: " in out and any(words in out for words in missing), out
    pending = _with_parity(small_engine, tmp_path, "pending")
    code, _, err = cli(capsys, "inspect", pending, images)
    assert "warning:" in err and "engine parity pending" in err  # loads (where a GPU is), with a visible warning


@needs_trt
def test_build_force_records_the_overridden_gate(failed_int8, tmp_path, capsys):
    out = tmp_path / "forced.int8.engine"
    code, _, err = cli(capsys, "build", failed_int8["graph"], "--precision", "int8", "-o", out, "--max-batch", 4)
    assert code == 1 and GATE_WORDS in one_line(err) and not out.exists()
    code, stdout, err = cli(capsys, "build", failed_int8["graph"], "--precision", "int8", "-o", out, "--max-batch",
                            4, "--force", "--json")
    assert code == 0, err
    manifest = artifacts.open(out).manifest
    assert len(manifest.forced) == 1 and GATE_WORDS in manifest.forced[0]
    assert json.loads(stdout)["forced"] == list(manifest.forced)
    assert manifest.source_graph.verification.startswith("forced: ")  # the graph's status as it was read
    verification = artifacts.open(out).verification
    assert verification.status == "warning" and any("built with --force over" in w for w in verification.warnings)


@needs_trt
def test_build_parity_that_cannot_run_is_an_error_not_pending(scorer_graphs, tmp_path, capsys, monkeypatch):
    import gedge.export.engine_build as engine_build
    from gedge.runtime.cuda_api import CudaError

    def failing(*args, **kwargs):
        raise CudaError("cudaMalloc failed: out of memory")

    monkeypatch.setattr(engine_build, "build_time_parity", failing)
    out = tmp_path / "e.engine"
    code, _, err = cli(capsys, "build", scorer_graphs["fp32"], "--precision", "fp32", "-o", out, "--max-batch", 4,
                       "--ref", scorer_graphs["checkpoint"], "--data", scorer_graphs["data"])
    assert code == 3 and "cudaMalloc failed" in one_line(err)
    entry = artifacts.open(out).manifest.parity["engine"]
    assert entry.status == "error" and "cudaMalloc failed" in entry.reason
    assert artifacts.open(out).verification.status == "warning"

    def bug(*args, **kwargs):
        raise RuntimeError("pybind11: TensorRT failed")

    monkeypatch.setattr(engine_build, "build_time_parity", bug)
    code, _, err = cli(capsys, "build", scorer_graphs["fp32"], "--precision", "fp32", "-o", out, "--max-batch", 4,
                       "--ref", scorer_graphs["checkpoint"], "--data", scorer_graphs["data"])
    assert code == 3 and "TensorRT failed" in one_line(err)
    assert artifacts.open(out).manifest.parity["engine"].status == "error"


# --- the demo ----------------------------------------------------------------------------------------------------


@needs_trt
def test_demo_builds_no_engine_from_a_gate_failed_graph(failed_int8, scorer_graphs, tmp_path):
    from gedge.cli.demo import DemoContext, stage_engines

    ctx = DemoContext(out=tmp_path, steps=0, seed=0, graphs={"int8": artifacts.open(failed_int8["graph"])})
    stage_engines(ctx)
    assert "int8" not in ctx.summary["engines"] and not list(tmp_path.glob("*.engine"))


def test_demo_ends_with_exit_1_when_a_verdict_failed(monkeypatch, tmp_path):
    import gedge.cli.demo as demo

    monkeypatch.setattr(demo, "STAGES", [("fails", lambda ctx: ctx.failures.append("INT8 cpu artifact failed"))])
    with pytest.raises(CheckFailed, match="1 verdicts failed"):
        demo.run_demo(tmp_path, 0, 0, False)


# --- an INT8 graph cannot pass as anything else (issue 21, item 3) ---------------------------------------------


def _tampered_int8(failed_int8, int8_graphs, root: Path) -> dict[str, Path]:
    """Three INT8 graphs a user could make by editing files: a passing one without its sidecar; one whose
    ``gedge.precision`` says fp32 (with no sidecar, and with a sidecar rewritten to match the edited bytes); a failed
    one whose sidecar's ``gate.passed`` was turned from false to true."""
    import onnx

    root.mkdir(parents=True, exist_ok=True)
    made = {"sidecar deleted": Path(shutil.copy(int8_graphs["tensorrt"], root / "nosidecar.int8.qdq.onnx"))}
    model = onnx.load(str(int8_graphs["tensorrt"]))
    for prop in model.metadata_props:
        if prop.key == "gedge.precision":
            prop.value = "fp32"
    data = model.SerializeToString(deterministic=True)
    (root / "relabelled.onnx").write_bytes(data)
    made["precision edited, no sidecar"] = root / "relabelled.onnx"
    (root / "relabelled2.onnx").write_bytes(data)
    side = json.loads(sidecar_path(int8_graphs["tensorrt"]).read_text())
    import hashlib

    side.update(graph="relabelled2.onnx", graph_sha256=hashlib.sha256(data).hexdigest(), precision="fp32")
    sidecar_path(root / "relabelled2.onnx").write_text(json.dumps(side))
    made["precision edited with its sidecar"] = root / "relabelled2.onnx"
    flipped = Path(shutil.copy(failed_int8["graph"], root / "flipped.int8.qdq.onnx"))
    side = json.loads(sidecar_path(failed_int8["graph"]).read_text())
    assert side["gate"]["passed"] is False
    side["gate"].update(passed=True, failures=[])
    side["graph"] = flipped.name
    sidecar_path(flipped).write_text(json.dumps(side))
    made["gate.passed edited"] = flipped
    return made


def test_tampered_int8_graphs_are_refused_by_every_command(failed_int8, int8_graphs, scorer_graphs, tmp_path,
                                                           capsys):
    for what, graph in _tampered_int8(failed_int8, int8_graphs, tmp_path).items():
        verification = artifacts.open(graph).verification
        assert verification.status == "refused", (what, verification.line())
        for name, args in _commands_using(graph, scorer_graphs).items():
            code, _, err = cli(capsys, *args)
            line = one_line(err)
            assert code == 1 and "--force" in line and graph.name in line, (what, name, err)
        if what == "gate.passed edited":
            assert "re-run `gedge calibrate`" in verification.refusals[0], verification.refusals
        if what.startswith("precision edited"):
            assert any("Q/DQ" in why for why in verification.refusals), verification.refusals
    forced = enforce(artifacts.open(tmp_path / "flipped.int8.qdq.onnx").verification, force=True)
    assert forced.status == "forced"
    assert any(GATE_WORDS in why for why in forced.forced)  # the verdict is the one in the graph: FAILED


def test_graphs_without_a_sidecar_are_unverified(scorer_graphs, tmp_path):
    bare = artifacts.open(shutil.copy(scorer_graphs["fp32"], tmp_path / "bare.onnx")).verification
    assert bare.status == "unverified" and not bare.refusals
    assert any("bare.onnx.json" in why and "not checked" in why for why in bare.warnings), bare.warnings
    enforce(bare)  # a warning, not a refusal


def test_calibrated_int8_graphs_carry_their_gate_inside(int8_graphs, failed_int8):
    for graph, passed in ((int8_graphs["tensorrt"], True), (int8_graphs["cpu"], True), (failed_int8["graph"], False)):
        import onnx

        props = {p.key: p.value for p in onnx.load(str(graph)).metadata_props}
        embedded = json.loads(props["gedge.gate"])
        sidecar_gate = json.loads(sidecar_path(graph).read_text())["gate"]
        assert embedded["passed"] is passed and embedded == sidecar_gate
        assert embedded["limits"] == sidecar_gate["limits"] and embedded["limits"]

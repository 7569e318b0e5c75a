"""`gedge triton export`: model repositories for an engine, an ONNX graph and an OpenVINO IR, every config.pbtxt
parsed with Triton's own ModelConfig protobuf; the docs' Kubernetes YAML parses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from gedge.core import artifacts
from gedge.core.artifacts.records import CalibrationSetRef
from gedge.core.artifacts.served import ServedFacts
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.optional import available
from gedge.core.tensorrt import import_tensorrt
from gedge.export.triton import TritonExportOptions, export_repository, model_name, to_pbtxt
from google.protobuf import text_format

GEDGE = [sys.executable, "-m", "gedge.cli"]
REPO = Path(__file__).resolve().parents[1]
TRT, WHY_NOT = import_tensorrt()
pytestmark = pytest.mark.skipif(not available("tritonclient.grpc.model_config_pb2"),
                                reason="tritonclient is not installed (pip install 'gedge[dev]')")


def parse(config: Path):
    """config.pbtxt as Triton reads it (unknown fields and bad enum values fail here)."""
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(config.read_text(), model_config_pb2.ModelConfig())


def parameters(config) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


def test_onnx_graph_repository(scorer_graphs, tmp_path):
    graph = scorer_graphs["fp32"]
    written = export_repository([graph, scorer_graphs["fp16"]], tmp_path / "models",
                                TritonExportOptions(instances=2, queue_delay_us=250))
    assert [m.name for m in written] == ["scorer", "scorer_fp16"] and all(m.validated for m in written)
    config = parse(Path(written[0].config))
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 64
    pixels = config.input[0]
    assert (pixels.name, list(pixels.dims)) == ("pixels", [16, 16, 3])
    assert pixels.data_type == 2  # TYPE_UINT8
    outputs = {o.name: o for o in config.output}
    facts = json.loads(Path(f"{graph}.json").read_text())
    assert list(outputs) == facts["outputs"]
    # a score is [N] in the graph and [1] per image in Triton: the config reshapes it to [] (an empty shape reads
    # the same as no reshape at all, so the field itself must be there); amap is [N, 16, 16] in both
    assert list(outputs["d1"].dims) == [1] and outputs["d1"].HasField("reshape")
    assert list(outputs["d1"].reshape.shape) == []
    assert all(outputs[name].HasField("reshape") for name in outputs if name != "amap")
    assert list(outputs["amap"].dims) == [16, 16] and not outputs["amap"].HasField("reshape")
    assert config.dynamic_batching.max_queue_delay_microseconds == 250
    assert config.instance_group[0].count == 2 and config.instance_group[0].kind == 2  # KIND_CPU
    warm = config.model_warmup[0]
    assert warm.inputs["pixels"].zero_data and list(warm.inputs["pixels"].dims) == [16, 16, 3]
    params = parameters(config)
    assert float(params["gedge.threshold"]) == pytest.approx(facts["decision"]["threshold"])
    assert params["gedge.primary_score"] == "d1" and params["gedge.sha256"] == facts["graph_sha256"]
    assert json.loads(params["gedge.score_stats"]) == facts["score_stats"]
    served = ServedFacts.parse(params["gedge.facts"], "test")
    assert served.facts.preprocess.to_dict() == facts["preprocess"] and served.facts.input_spec().size == 16
    assert served.sha256 == facts["graph_sha256"] and served.artifact_kind == "graph"
    version = Path(written[0].folder) / "1"
    assert (version / "model.onnx").read_bytes() == graph.read_bytes()
    assert json.loads((version / "scorer.onnx.json").read_text()) == facts  # the sidecar, next to the model
    # the same artifact again: version 2, newest first in the config's facts
    again = export_repository([graph], tmp_path / "models", TritonExportOptions())
    assert again[0].version == 2 and (Path(again[0].folder) / "2" / "model.onnx").is_file()


def test_onnx_on_gpu_with_tensorrt_accelerator(scorer_graphs, tmp_path):
    written = export_repository([scorer_graphs["fp16"]], tmp_path / "m",
                                TritonExportOptions(device="gpu", tensorrt_accelerator=True, preferred=(8, 32)))
    config = parse(Path(written[0].config))
    assert config.instance_group[0].kind == 1  # KIND_GPU
    accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    assert config.model_warmup[0].batch_size == 32


def test_bad_exports_are_one_line_errors(scorer_graphs, tmp_path):
    with pytest.raises(ConfigError, match="uint8 NHWC"):
        export_repository([scorer_graphs["fp32_float"]], tmp_path / "m", TritonExportOptions())
    with pytest.raises(ConfigError, match="--tensorrt-accelerator"):
        export_repository([scorer_graphs["fp32"]], tmp_path / "m", TritonExportOptions(tensorrt_accelerator=True))
    with pytest.raises(ConfigError, match="preferred batch size 128"):
        export_repository([scorer_graphs["fp32"]], tmp_path / "m", TritonExportOptions(preferred=(128,)))
    with pytest.raises(ConfigError, match="one model"):
        export_repository([scorer_graphs["fp32"], scorer_graphs["fp16"]], tmp_path / "m",
                          TritonExportOptions(name="x"))
    tampered = tmp_path / "t" / "scorer.onnx"
    tampered.parent.mkdir()
    model = onnx.load(str(scorer_graphs["fp32"]))
    model.doc_string = "changed after export"
    onnx.save(model, str(tampered))
    (tampered.parent / "scorer.onnx.json").write_text(Path(f"{scorer_graphs['fp32']}.json").read_text())
    with pytest.raises(ArtifactError, match="sidecar"):
        export_repository([tampered], tmp_path / "m2", TritonExportOptions())
    assert not (tmp_path / "m2").exists()  # nothing written for a refused artifact
    result = subprocess.run([*GEDGE, "triton", "export", str(tmp_path / "nothing.onnx"), "-o", str(tmp_path / "m3")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "nothing.onnx" in result.stderr and "Traceback" not in result.stderr


def test_text_format_escapes_and_unknown_fields_fail():
    text = to_pbtxt({"name": 'odd "name" \\ ü', "max_batch_size": 4})
    from tritonclient.grpc import model_config_pb2

    assert text_format.Parse(text, model_config_pb2.ModelConfig()).name == 'odd "name" \\ ü'
    with pytest.raises(text_format.ParseError):
        text_format.Parse(to_pbtxt({"name": "x", "max_batch": 4}), model_config_pb2.ModelConfig())
    assert model_name("scorer.int8.cpu.onnx") == "scorer_int8_cpu" and model_name("a b.engine") == "a_b"


@pytest.fixture(scope="module")
def openvino_ir(scorer_graphs, tmp_path_factory):
    if not available("openvino") or not available("nncf"):
        pytest.skip("OpenVINO and NNCF are not installed (pip install 'gedge[openvino]')")
    from gedge.calibrate.nncf_int8 import NncfSettings, write_openvino_int8

    out = tmp_path_factory.mktemp("ov") / "scorer.int8.ov.xml"
    patches = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    ir, _ = write_openvino_int8(artifacts.open(scorer_graphs["fp32"]), patches, out, CalibrationSetRef("abc", 16),
                                NncfSettings(batch_size=8))
    return ir.path


def test_openvino_ir_repository(openvino_ir, tmp_path):
    # The IR is written without `gedge calibrate`'s accuracy gate: refused, unless --force.
    args = [*GEDGE, "triton", "export", str(openvino_ir), "-o", str(tmp_path / "models"), "--json"]
    refused = subprocess.run(args, capture_output=True, text=True)
    assert refused.returncode == 1 and "no accuracy gate" in refused.stderr
    result = subprocess.run([*args, "--force"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)["models"][0]
    assert model["name"] == "scorer_int8_ov" and model["validated"]
    config = parse(Path(model["config"]))
    assert config.backend == "openvino" and not config.platform and config.instance_group[0].kind == 2
    version = Path(model["folder"]) / "1"
    assert (version / "model.xml").is_file() and (version / "model.bin").is_file()
    assert (version / "scorer.int8.ov.xml.json").is_file()
    assert parameters(config)["gedge.precision"] == "int8"
    with pytest.raises(ConfigError, match="CPU"):
        export_repository([openvino_ir], tmp_path / "gpu", TritonExportOptions(device="gpu", force=True))


@pytest.fixture(scope="module")
def engine(scorer_graphs, tmp_path_factory):
    if TRT is None:
        pytest.skip(f"no TensorRT module importable: {WHY_NOT}")
    from gedge.export.build_plan import BuildRequest
    from gedge.export.engine_build import build_engine

    root = tmp_path_factory.mktemp("triton-engine")
    graph = root / "scorer.onnx"
    graph.write_bytes(scorer_graphs["fp32"].read_bytes())
    Path(f"{graph}.json").write_text(Path(f"{scorer_graphs['fp32']}.json").read_text())
    return build_engine(artifacts.open(graph), BuildRequest("fp32", max_batch=16, progress=False,
                                                            profiles=1)).engine


def test_engine_repository(engine, tmp_path):
    written = export_repository([engine], tmp_path / "models", TritonExportOptions(instances=2))
    config = parse(Path(written[0].config))
    manifest = json.loads(Path(f"{engine}.json").read_text())
    assert config.platform == "tensorrt_plan" and config.instance_group[0].kind == 1  # KIND_GPU
    assert config.max_batch_size == manifest["profile"]["max"][0] == 16
    assert list(config.dynamic_batching.preferred_batch_size) == sorted({manifest["profile"]["opt"][0], 16})
    assert parameters(config)["gedge.sha256"] == manifest["engine_sha256"]
    version = Path(written[0].folder) / "1"
    assert (version / "model.plan").read_bytes() == Path(engine).read_bytes()
    assert json.loads((version / f"{Path(engine).name}.json").read_text()) == manifest
    with pytest.raises(ConfigError, match="over the engine profile"):
        export_repository([engine], tmp_path / "m2", TritonExportOptions(max_batch=32))
    with pytest.raises(ConfigError, match="GPU"):
        export_repository([engine], tmp_path / "m3", TritonExportOptions(device="cpu"))


def test_docs_kubernetes_yaml_and_container_command():
    page = (REPO / "docs" / "serving.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", page, re.S)
    documents = [d for block in blocks for d in yaml.safe_load_all(block) if d]
    kinds = {d["kind"]: d for d in documents}
    assert {"Deployment", "Service"} <= set(kinds)
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("nvcr.io/nvidia/tritonserver:") and "--model-repository=/models" in \
        " ".join(container["args"] + container.get("command", []))
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    probes = {container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]}
    assert probes == {"/v2/health/ready", "/v2/health/live"}
    ports = {p["port"] for p in kinds["Service"]["spec"]["ports"]}
    assert ports == {8000, 8001, 8002}
    assert "docker run --gpus all" in page and "tritonserver --model-repository=/models" in page

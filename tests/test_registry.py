"""The runtime registry: every backend declared once, opened by name without importing the others, and what each
opened backend declares about itself (BackendInfo) instead of being probed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from gedge.core.artifacts.graph import load_graph, read_facts
from gedge.core.backend import AsyncBackend, Backend
from gedge.core.errors import ConfigError
from gedge.runtime import registry
from gedge.runtime.onnxruntime_backend import FP16_NOTE


def test_one_declaration_per_backend():
    assert registry.KINDS == ("torch", "onnxruntime", "openvino", "tensorrt", "triton")
    assert registry.kind_of("http://host:8000/v2/models/scorer") == "triton"
    assert registry.SUFFIX_KIND == {".pt": "torch", ".onnx": "onnxruntime", ".xml": "openvino", ".engine": "tensorrt"}
    assert registry.CAN_RUN["onnxruntime"] == ("onnxruntime", "openvino") and registry.CAN_RUN["openvino"] == (
        "openvino",)
    for spec in registry.BACKENDS.values():
        assert spec.module.startswith("gedge.runtime.") and spec.reader and spec.install_hint.startswith(
            ("pip", "JetPack"))
    assert "gated on onnxruntime" in registry.refusal("openvino", "onnxruntime", "int8")
    assert registry.refusal("openvino", "onnxruntime", "fp16")
    assert registry.refusal("openvino", "openvino", "int8") is None
    assert registry.refusal("onnxruntime", "onnxruntime", "int8") is None
    with pytest.raises(ConfigError, match="needs an .onnx graph"):
        registry.open_backend("model.pt", "onnxruntime")
    with pytest.raises(ConfigError, match="backend must be one of"):
        registry.open_backend("scorer.onnx", "tpu")


def test_backends_declare_what_they_are(scorer_graphs):
    graph = scorer_graphs["fp32"]
    facts = read_facts(load_graph(graph, load_weights=False))
    backend = registry.open_backend(graph, "onnxruntime", threads=1)
    info = backend.info
    assert isinstance(backend, Backend) and not isinstance(backend, AsyncBackend)
    assert (info.kind, info.label, info.precision, info.device, info.slots, info.max_batch) == (
        "onnxruntime", "onnxruntime FP32", "fp32", "cpu", 1, None)
    assert info.with_amap == facts.with_amap and info.cuda_graphs is None and not info.notes
    assert info.artifact.kind == "graph" and info.artifact.model == facts.model
    assert info.artifact.source_sha256 == facts.source_sha256 and info.artifact.path == str(graph)
    backend.close()
    fp16 = registry.open_backend(scorer_graphs["fp16"], options=registry.OpenOptions(threads=1))
    assert fp16.info.notes == (FP16_NOTE,) and fp16.info.label == "onnxruntime FP16 (fp16 emulated)"
    fp16.close()
    torch = registry.open_backend(scorer_graphs["checkpoint"], threads=1, with_amap=True)
    assert (torch.info.label, torch.info.artifact.kind, torch.info.with_amap) == ("torch eager (cpu)", "checkpoint",
                                                                                   True)
    assert torch.info.artifact.model == facts.model
    with pytest.raises(ConfigError, match="unexpected keyword"):
        registry.open_backend(graph, "onnxruntime", thread=1)
    with pytest.raises(ConfigError, match="is fp32, not int8"):
        registry.open_backend(graph, "onnxruntime", precision="int8")


def test_a_graph_opens_without_torch(scorer_graphs):
    """`gedge inspect scorer.onnx` on a device: the registry reads the graph and opens onnxruntime, and nothing
    imports torch (the torch backend's module is loaded by name only for a checkpoint)."""
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        import numpy as np
        from gedge.runtime.registry import model_info, open_backend
        info = model_info({str(scorer_graphs["fp32"])!r})
        backend = open_backend(info.path, info=info, threads=1)
        spec = backend.input_spec
        scores = backend.score(np.zeros((2, spec.size, spec.size, spec.channels), dtype=np.uint8))
        assert len(scores) == 2 and "gedge.runtime.torch_backend" not in sys.modules
        try:
            open_backend({str(scorer_graphs["checkpoint"])!r})
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ConfigError torch is not installed") and "pip install torch" in result.stdout

"""The runtime registry: every backend declared once (what it is, nothing about reading files), opened by name from
the artifact gedge read without importing the others, and what each opened backend declares about itself
(BackendInfo) instead of being probed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from gedge.core import artifacts
from gedge.core.backend import AsyncBackend, Backend
from gedge.core.errors import ConfigError
from gedge.runtime import registry
from gedge.runtime.onnxruntime_backend import FP16_NOTE


def test_one_declaration_per_backend():
    assert registry.KINDS == ("torch", "onnxruntime", "openvino", "tensorrt", "triton")
    assert registry.kind_of("http://host:8000/v2/models/scorer") == "triton"
    assert registry.NATURAL == {"checkpoint": "torch", "graph": "onnxruntime", "ir": "openvino", "engine": "tensorrt",
                                "served": "triton"}
    assert [registry.kind_of(name) for name in ("m.pt", "s.onnx", "s.xml", "s.engine")] == [
        "torch", "onnxruntime", "openvino", "tensorrt"]
    assert registry.CAN_RUN["graph"] == ("onnxruntime", "openvino") and registry.CAN_RUN["ir"] == ("openvino",)
    for spec in registry.BACKENDS.values():
        assert spec.module.startswith("gedge.runtime.") and spec.install_hint.startswith(("pip", "JetPack"))
        assert not hasattr(spec, "reader")  # reading a file is gedge.core.artifacts' job, not a backend's
    assert "gated on onnxruntime" in registry.refusal("openvino", "graph", "int8")
    assert registry.refusal("openvino", "graph", "fp16")
    assert registry.refusal("openvino", "ir", "int8") is None
    assert registry.refusal("onnxruntime", "graph", "int8") is None
    with pytest.raises(ConfigError, match="needs an .onnx graph"):
        registry.open_backend("model.pt", "onnxruntime")
    with pytest.raises(ConfigError, match="backend must be one of"):
        registry.open_backend("scorer.onnx", "tpu")


def test_backends_declare_what_they_are(scorer_graphs):
    graph = scorer_graphs["fp32"]
    facts = artifacts.open(graph).model_facts()
    backend = registry.open_backend(graph, "onnxruntime", threads=1)
    info = backend.info
    assert isinstance(backend, Backend) and not isinstance(backend, AsyncBackend)
    assert (info.kind, info.label, info.precision, info.device, info.slots, info.max_batch) == (
        "onnxruntime", "onnxruntime FP32", "fp32", "cpu", 1, None)
    assert info.with_amap == facts.with_amap and info.cuda_graphs is None and not info.notes
    assert info.artifact.kind == "graph" and info.artifact.model == facts.model
    assert info.artifact.lineage == facts.lineage and info.artifact.path == graph
    assert info.to_dict()["artifact"]["source_sha256"] == facts.lineage.checkpoint_sha256
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
        from gedge.core import artifacts
        from gedge.runtime.registry import open_backend
        graph = artifacts.open({str(scorer_graphs["fp32"])!r})
        backend = open_backend(graph, threads=1)
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

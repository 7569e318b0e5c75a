"""The TensorRT backend.

On any machine: its logic (manifest verification, slots, pinned buffers, padding to the profile, splitting,
one CUDA graph per batch size, release on close) against a fake TensorRT module and a fake CUDA that keeps
"device" memory on the host, and its one-line errors where no GPU is present. On a machine with a GPU and
TensorRT: a real engine against the torch reference (skipped elsewhere, with the reason).
"""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from gedge.core.artifacts.engine import RuntimeInfo, write_manifest
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.scores import OUTPUT_NAMES
from gedge.runtime.cuda import CudaApi
from gedge.runtime.loop import Pipeline
from gedge.runtime.registry import model_info
from gedge.runtime.tensorrt_backend import TensorRTBackend, TensorRTParts

SIZE = 4


class FakeCuda(CudaApi):
    """Host memory posing as device memory; operations run at once, or are recorded while capturing."""

    name = "fake-cuda"
    version = "0"
    supports_graphs = True

    def __init__(self) -> None:
        self.memory: dict[int, ctypes.Array] = {}
        self.capturing: list | None = None
        self.counts: Counter = Counter()

    def run(self, op) -> None:
        if self.capturing is not None:
            self.capturing.append(op)
        else:
            op()

    def _alloc(self, nbytes: int) -> int:
        buffer = ctypes.create_string_buffer(nbytes)
        self.memory[ctypes.addressof(buffer)] = buffer
        return ctypes.addressof(buffer)

    def malloc_host(self, nbytes: int) -> int:
        self.counts["host"] += 1
        return self._alloc(nbytes)

    def malloc(self, nbytes: int) -> int:
        self.counts["device"] += 1
        return self._alloc(nbytes)

    def free_host(self, ptr: int) -> None:
        del self.memory[ptr]

    def free(self, ptr: int) -> None:
        del self.memory[ptr]

    def h2d(self, dst, src, nbytes, stream):
        self.counts["h2d"] += 1
        self.run(lambda: ctypes.memmove(dst, src, nbytes))

    def d2h(self, dst, src, nbytes, stream):
        self.counts["d2h"] += 1
        self.run(lambda: ctypes.memmove(dst, src, nbytes))

    d2d = d2h

    def stream_create(self):
        self.counts["streams"] += 1
        return object()

    def stream_handle(self, stream) -> int:
        return id(stream)

    def stream_sync(self, stream) -> None:
        pass

    def stream_destroy(self, stream) -> None:
        self.counts["streams"] -= 1

    def event_create(self):
        return [0.0]

    def event_record(self, event, stream) -> None:
        event[0] = time.perf_counter()

    def event_sync(self, event) -> None:
        pass

    def event_elapsed_ms(self, start, end) -> float:
        return (end[0] - start[0]) * 1e3

    def event_destroy(self, event) -> None:
        pass

    def begin_capture(self, stream) -> None:
        self.capturing = []

    def end_capture(self, stream):
        ops, self.capturing = self.capturing, None
        return ops

    def instantiate(self, graph):
        self.counts["graphs"] += 1
        return list(graph)

    def launch(self, graph_exec, stream) -> None:
        for op in graph_exec:
            op()

    def graph_destroy(self, graph, graph_exec) -> None:
        self.counts["graphs"] -= 1


def fake_tensorrt(api: FakeCuda, min_batch: int = 2, max_batch: int = 8, profiles: int = 2, rtx: bool = False):
    """A module with the TensorRT runtime calls the backend makes; scores are the mean pixel value (+ index).
    ``profiles_selected`` lists the optimisation profiles held by live contexts (never shared); ``rtx`` adds
    TensorRT-RTX's runtime config, whose graph strategy each new context records in ``strategies``."""
    outputs = [*OUTPUT_NAMES, "amap"]
    selected: list[int] = []
    strategies: list[str] = []

    def view(ptr: int, dtype, shape):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr)).view(dtype).reshape(shape)

    class Context:
        def __init__(self) -> None:
            self.n, self.addresses, self.profile = max_batch, {}, None

        def __del__(self) -> None:
            if self.profile in selected:
                selected.remove(self.profile)

        def set_input_shape(self, name, shape):
            assert min_batch <= shape[0] <= max_batch
            self.n = shape[0]
            return True

        def set_optimization_profile_async(self, index, stream):
            assert 0 <= index < profiles and index not in selected and isinstance(stream, int)
            selected.append(index)
            self.profile = index
            return True

        def get_tensor_shape(self, name):
            return {"pixels": (self.n, SIZE, SIZE, 3), "amap": (self.n, SIZE, SIZE)}.get(name, (self.n,))

        def set_tensor_address(self, name, ptr):
            self.addresses[name] = ptr

        def is_stream_capturable(self, stream):
            return True

        def execute_async_v3(self, stream):
            n = self.n  # a captured graph keeps the shape it was captured with

            def compute():
                pixels = view(self.addresses["pixels"], np.uint8, (n, SIZE, SIZE, 3)).astype(np.float32)
                mean = pixels.reshape(n, -1).mean(axis=1)
                for i, name in enumerate(OUTPUT_NAMES):
                    view(self.addresses[name], np.float32, (n,))[:] = mean + i
                view(self.addresses["amap"], np.float32, (n, SIZE, SIZE))[:] = pixels.mean(axis=3)

            api.run(compute)
            return True

    class Engine:
        num_io_tensors = 1 + len(outputs)
        num_optimization_profiles = profiles
        device_memory_size_v2 = 1000

        def get_tensor_name(self, i):
            return ["pixels", *outputs][i]

        def get_tensor_mode(self, name):
            return "in" if name == "pixels" else "out"

        def get_tensor_dtype(self, name):
            return "u8" if name == "pixels" else "f32"

        def get_tensor_shape(self, name):
            return {"pixels": (-1, SIZE, SIZE, 3), "amap": (-1, SIZE, SIZE)}.get(name, (-1,))

        def get_tensor_profile_shape(self, name, profile):
            return [(b, SIZE, SIZE, 3) for b in (min_batch, 4, max_batch)]

        def create_execution_context(self, config=None):
            if config is not None:
                strategies.append(config.cuda_graph_strategy)
            return Context()

    class RuntimeConfig:
        cuda_graph_strategy = "disabled"

    class CudaGraphStrategy:
        DISABLED, WHOLE_GRAPH_CAPTURE = "disabled", "whole"

    if rtx:
        Engine.create_runtime_config = lambda self: RuntimeConfig()

    class Module:
        __name__ = "tensorrt"
        profiles_selected = selected
        context_strategies = strategies
        __version__ = "10.3.0"

        class ILogger:
            class Severity:
                INTERNAL_ERROR, ERROR, WARNING = 0, 1, 2

            def __init__(self) -> None:
                pass

        class TensorIOMode:
            INPUT, OUTPUT = "in", "out"

        class DataType:
            FLOAT, UINT8 = "f32", "u8"

        class Runtime:
            def __init__(self, logger) -> None:
                self.logger = logger

            def deserialize_cuda_engine(self, data):
                return Engine() if data.startswith(b"FAKE") else None

    if rtx:
        Module.CudaGraphStrategy = CudaGraphStrategy
    return Module()


def write_engine(folder: Path, data: bytes = b"FAKE engine", flavour: str = "tensorrt") -> Path:
    engine = folder / "scorer.fp16.engine"
    engine.write_bytes(data)
    write_manifest(engine, {
        "engine": engine.name, "engine_sha256": hashlib.sha256(data).hexdigest(),
        "tensorrt": {"flavour": flavour, "version": "10.3.0"},
        "target": {"kind": "gpu", "gpu_name": "Fake GPU", "compute_capability": "SM87"},
        "precision": "fp16", "input": {"name": "pixels", "kind": "uint8-nhwc"},
        "input_spec": {"size": SIZE, "channels": 3}, "outputs": [*OUTPUT_NAMES, "amap"],
        "preprocess": {"mode": "patch", "isize": SIZE, "scale": 0.5}, "threshold": 2.5, "primary_score": "d1",
        "model": {"isize": SIZE, "nc": 3}})
    return engine


RUNTIME = RuntimeInfo("tensorrt", "10.3.0", "Fake GPU", "SM87")


def open_fake(folder: Path, profiles: int = 2, rtx: bool = False, **kwargs) -> tuple[TensorRTBackend, FakeCuda]:
    api = FakeCuda()
    engine = kwargs.pop("engine", None) or write_engine(folder)
    parts = TensorRTParts(cuda_api=api, trt_module=fake_tensorrt(api, profiles=profiles, rtx=rtx), runtime_info=RUNTIME)
    backend = TensorRTBackend(engine, parts=parts, **kwargs)
    return backend, api


def batch_of(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def expected(batch: np.ndarray) -> np.ndarray:
    return batch.reshape(len(batch), -1).astype(np.float32).mean(axis=1)


def test_scores_padding_splitting_graphs_and_release(tmp_path):
    backend, api = open_fake(tmp_path)
    info = backend.info
    assert (backend.min_batch, info.max_batch, info.slots, backend.name) == (2, 8, 2, "tensorrt-fp16")
    assert (info.kind, info.label, info.precision, info.device, info.cuda_graphs, info.notes) == (
        "tensorrt", "tensorrt FP16", "fp16", "cuda", True, ())
    assert info.artifact.kind == "engine" and info.artifact.model == {"isize": SIZE, "nc": 3}
    assert "sha256" in info.artifact.verification and info.runtime == "tensorrt 10.3.0"
    assert backend.copied == list(OUTPUT_NAMES)  # no amap unless asked
    for n in (1, 5, 8, 13, 5, 1):  # 1: padded to the profile's 2; 13: split 8 + 5 over both slots
        batch = batch_of(n, n)
        scores = backend.score(batch)
        assert len(scores) == n and scores.amap is None
        np.testing.assert_allclose(scores.d1, expected(batch), rtol=1e-6)
        np.testing.assert_allclose(scores.score, expected(batch) + OUTPUT_NAMES.index("score"), rtol=1e-6)
    stats = backend.stats
    # slot, batch: (0, 2) (1, 5) (0, 8) (1, 8) (0, 5) (1, 5) (0, 2): every slot's shape changes each time, and a
    # slot keeps the graph of its current shape only (a context that ran another shape is captured again)
    assert stats.captures == 7 and stats.graph_launches == 7 and stats.plain_launches == 0 and len(stats.stages) == 7
    assert all(s.total >= 0 for s in stats.stages) and backend.info.device_memory_bytes > 2000
    assert all(len(times) == 7 for times in backend.stage_times_ms().values())
    assert api.counts["graphs"] == 2  # one live graph per slot
    for _ in range(2):  # the same shape again on both slots: replays, no capture
        backend.score(batch_of(2, 2))
        backend.score(batch_of(5, 5))
    assert stats.captures == 9 and stats.graph_launches == 11 and api.counts["graphs"] == 2
    backend.close()
    assert api.memory == {} and api.counts["streams"] == 0 and api.counts["graphs"] == 0
    backend.close()  # twice is fine


def test_amap_on_request_and_no_graphs(tmp_path):
    backend, api = open_fake(tmp_path, with_amap=True, cuda_graphs=False)
    batch = batch_of(3)
    scores = backend.score(batch)
    np.testing.assert_allclose(scores.amap, batch.astype(np.float32).mean(axis=3), rtol=1e-6)
    assert backend.stats.captures == 0 and backend.stats.plain_launches == 1
    backend.close()


def test_the_loop_drives_the_engine_slots(tmp_path):
    backend, _ = open_fake(tmp_path, slots=3)
    items = [batch_of(k % 4 + 1, k) for k in range(9)]
    results = Pipeline(backend, batch_size=6, slots=3, workers=0).score_all(items)
    assert all(r.ok for r in results)
    for r, batch in zip(results, items):
        np.testing.assert_allclose(r.scores.d1, expected(batch), rtol=1e-6)
    assert not any(slot.pending for slot in backend._slots)
    with pytest.raises(RuntimeError, match="holds no batch"):
        backend.collect(0)
    backend.close()


def test_manifest_is_verified_before_anything_is_loaded(tmp_path):
    engine = write_engine(tmp_path)
    engine.write_bytes(b"FAKE engine, modified")
    with pytest.raises(ArtifactError, match="sha256 differs"):
        open_fake(tmp_path, engine=engine)
    engine = write_engine(tmp_path)
    api = FakeCuda()
    with pytest.raises(ArtifactError, match="rebuild"):
        TensorRTBackend(engine, parts=TensorRTParts(api, fake_tensorrt(api),
                                                    RuntimeInfo("tensorrt", "10.4.0", "Fake GPU", "SM87")))
    bad = write_engine(tmp_path, data=b"not an engine")
    with pytest.raises(ArtifactError, match="could not deserialise"):
        open_fake(tmp_path, engine=bad)
    (tmp_path / "scorer.fp16.engine.json").unlink()
    with pytest.raises(ArtifactError, match="no manifest"):
        TensorRTBackend(engine)
    info = model_info(write_engine(tmp_path))
    assert (info.kind, info.precision, info.threshold, info.preprocess.isize, info.has_amap) == (
        "tensorrt", "fp16", 2.5, SIZE, True)


def test_without_a_gpu_the_error_is_one_line(tmp_path):
    from gedge.core.machine import cuda_device

    if cuda_device()[0] is not None:
        pytest.skip("this machine has a GPU; the no-GPU error path does not apply")
    engine = write_engine(tmp_path, flavour="tensorrt_rtx")
    with pytest.raises(ConfigError) as error:
        TensorRTBackend(engine)
    assert "\n" not in str(error.value)
    result = subprocess.run([sys.executable, "-m", "gedge.cli", "bench", engine, "--json", "--iters", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert '"backend": "tensorrt"' in result.stdout and '"results": []' in result.stdout


def _gpu_and_tensorrt() -> str:
    from gedge.core.machine import cuda_device
    from gedge.core.tensorrt import import_tensorrt

    device, why = cuda_device()
    if device is None:
        return f"no CUDA GPU ({why})"
    trt, reason = import_tensorrt()
    if trt is None:
        return f"no TensorRT ({reason})"
    try:
        from gedge.runtime.cuda import load_cuda

        load_cuda()
    except ConfigError as exc:
        return str(exc)
    return ""


def test_real_engine_matches_the_reference(request, tmp_path):
    reason = _gpu_and_tensorrt()
    if reason:
        print(f"SKIP reason: {reason}")
        pytest.skip(reason)
    scorer_graphs = request.getfixturevalue("scorer_graphs")  # only where the test runs: it costs an export
    from gedge.export.build_plan import BuildRequest
    from gedge.export.engine_build import build_engine
    from gedge.runtime.torch_backend import TorchBackend

    result = build_engine(scorer_graphs["fp32"], BuildRequest("fp32", out=str(tmp_path / "s.engine"), max_batch=16,
                                                              progress=False))
    reference = TorchBackend(scorer_graphs["model"], with_amap=True)
    batch = np.random.default_rng(0).integers(0, 256, (11, 16, 16, 3), dtype=np.uint8)
    ref = reference.score(batch)
    for graphs in (False, True):
        backend = TensorRTBackend(result.engine, with_amap=True, cuda_graphs=graphs)
        for _ in range(2):  # the second call replays the captured graph
            got = backend.score(batch)
        for name in OUTPUT_NAMES:
            np.testing.assert_allclose(got.named(name), ref.named(name), rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(got.amap, ref.amap, atol=2e-3)
        assert (backend.stats.graph_launches > 0) == (graphs and backend.info.cuda_graphs)
        backend.close()


def test_cuda_buffers_streams_and_graphs_on_the_gpu():
    from gedge.runtime.cuda import load_cuda, self_test

    try:
        api = load_cuda()
    except ConfigError as exc:
        print(f"SKIP reason: {exc}")
        pytest.skip(str(exc))
    facts = self_test(api, nbytes=1 << 16, replays=3)
    assert facts["copy_ok"] and facts["graph_ok"] in (True, None)


def test_one_optimisation_profile_per_slot(tmp_path):
    """Contexts in concurrent use each select their own profile; an engine with fewer profiles than the slots
    asked for gets fewer slots, and says so."""
    backend, _ = open_fake(tmp_path, profiles=3, slots=3)
    assert backend.info.slots == 3 and backend.trt.profiles_selected == [0, 1, 2] and not backend.info.notes
    backend.close()
    single, _ = open_fake(tmp_path, profiles=1, slots=2)
    assert single.info.slots == 1 and single.trt.profiles_selected == [] and "--profiles 2" in single.info.notes[0]
    batch = batch_of(13, 1)  # split 8 + 5 over the one slot
    np.testing.assert_allclose(single.score(batch).d1, expected(batch), rtol=1e-6)
    single.close()


def test_tensorrt_rtx_uses_its_own_graphs(tmp_path):
    """With TensorRT-RTX's runtime config the contexts carry the WHOLE_GRAPH_CAPTURE strategy and the backend
    captures nothing itself; switching graphs off gives the slots new contexts on the same profiles and
    buffers, and the scores stay right either way."""
    backend, api = open_fake(tmp_path, rtx=True)
    assert backend.graph_mode == "runtime" and backend.info.cuda_graphs
    assert backend.trt.context_strategies == ["whole", "whole"] and backend.trt.profiles_selected == [0, 1]
    batch = batch_of(13, 3)
    np.testing.assert_allclose(backend.score(batch).d1, expected(batch), rtol=1e-6)
    assert backend.stats.captures == 0 and api.counts["graphs"] == 0 and backend.stats.graph_launches == 2
    backend.set_cuda_graphs(False)
    assert backend.trt.context_strategies[-2:] == ["disabled", "disabled"] and backend.info.cuda_graphs is False
    assert sorted(backend.trt.profiles_selected) == [0, 1]
    np.testing.assert_allclose(backend.score(batch).d3, expected(batch) + 2, rtol=1e-6)
    assert backend.stats.plain_launches == 2
    backend.set_cuda_graphs(True)
    assert backend.trt.context_strategies[-2:] == ["whole", "whole"]
    backend.close()
    assert api.memory == {} and api.counts["streams"] == 0

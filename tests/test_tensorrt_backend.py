"""The TensorRT backend.

On any machine: its logic (manifest verification, slots, pinned buffers, padding to the profile, splitting,
one CUDA graph per batch size, release on close, checked TensorRT return values, recovery after a failure)
against the stand-ins of tests/cuda_standin.py: a CUDA whose streams are queues that run only when synchronised,
and a TensorRT runtime that answers False where TensorRT does. The stand-ins catch what they stand in for: a
removed synchronize, a wrong stream, a refused shape or address, a failed capture, memory freed under queued
work (tests below break the backend each way and expect the failure). On a machine with a GPU and TensorRT: a
real engine against the torch reference with the project's comparator and FP32 limits (skipped elsewhere, with
the reason).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cuda_standin import COST, CudaStandIn, TrtSettings, scorer_outputs, standin_tensorrt
from gedge.core import artifacts
from gedge.core.artifacts.engine import RuntimeInfo, write_manifest
from gedge.core.artifacts.manifest import EngineInput, EngineManifest, EngineTarget, ParityRecord
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, ConfigError, RuntimeFailure
from gedge.core.inputs import InputSpec
from gedge.core.preprocess import Preprocess
from gedge.core.scores import OUTPUT_NAMES
from gedge.runtime.cuda import CudaError, CudaGraph, StageTimes, Stream
from gedge.runtime.loop import Pipeline
from gedge.runtime.tensorrt_backend import TensorRTBackend, TensorRTParts
from gedge.runtime.tensorrt_slots import LEAKED

SIZE = 4
D2H = COST["d2h"] * len(OUTPUT_NAMES)  # the scores' copies back, in stand-in milliseconds


def fake_manifest(data: bytes, flavour: str = "tensorrt") -> EngineManifest:
    """The manifest of the stand-in engine ``data`` (a GPU engine of TensorRT 10.3 on a "Fake GPU")."""
    return EngineManifest(
        engine="scorer.fp16.engine", engine_sha256=hashlib.sha256(data).hexdigest(), engine_bytes=len(data),
        tensorrt_flavour=flavour, tensorrt_version="10.3.0", target=EngineTarget("gpu", "Fake GPU", "SM87"),
        precision="fp16", profile={"input": "pixels", "min": [2, SIZE, SIZE, 3], "opt": [8, SIZE, SIZE, 3],
                                   "max": [8, SIZE, SIZE, 3]},
        input=EngineInput("pixels", "uint8-nhwc", (-1, SIZE, SIZE, 3)), input_spec=InputSpec(SIZE, 3),
        outputs=(*OUTPUT_NAMES, "amap"), decision=DecisionRule("d1", threshold=2.5),
        preprocess=Preprocess(mode="patch", isize=SIZE, scale=0.5),
        parity={"engine": ParityRecord("pending", "no GPU at build time")}, model={"isize": SIZE, "nc": 3})


def write_engine(folder: Path, data: bytes = b"FAKE engine", flavour: str = "tensorrt") -> artifacts.Artifact:
    engine = folder / "scorer.fp16.engine"
    engine.write_bytes(data)
    write_manifest(engine, fake_manifest(data, flavour))
    return artifacts.open(engine)


RUNTIME = RuntimeInfo("tensorrt", "10.3.0", "Fake GPU", "SM87")


def open_fake(folder: Path, settings: TrtSettings | None = None, **kwargs) -> tuple[TensorRTBackend, CudaStandIn]:
    api = kwargs.pop("api", None) or CudaStandIn()
    engine = kwargs.pop("engine", None) or write_engine(folder)
    parts = TensorRTParts(cuda_api=api, trt_module=standin_tensorrt(api, settings or TrtSettings()),
                          runtime_info=RUNTIME)
    backend = TensorRTBackend(engine, parts=parts, **kwargs)
    return backend, api


def batch_of(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def expected(batch: np.ndarray) -> np.ndarray:
    return scorer_outputs(batch)["d1"]


def assert_scores(scores, batch: np.ndarray, amap: bool = False) -> None:
    """Every output the backend returned is what the stand-in engine computes for ``batch``."""
    want = scorer_outputs(batch)
    assert len(scores) == len(batch)
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(scores.named(name), want[name], rtol=1e-6, err_msg=name)
    if amap:
        np.testing.assert_allclose(scores.amap, want["amap"], rtol=1e-6, err_msg="amap")


def test_scores_padding_splitting_graphs_and_release(tmp_path):
    backend, api = open_fake(tmp_path)
    info = backend.info
    assert (backend.min_batch, info.max_batch, info.slots, backend.name) == (2, 8, 2, "tensorrt-fp16")
    assert (info.kind, info.label, info.precision, info.device, info.cuda_graphs, info.notes) == (
        "tensorrt", "tensorrt FP16", "fp16", "cuda", True, ())
    assert info.artifact.kind == "engine" and info.artifact.model == {"isize": SIZE, "nc": 3}
    assert "sha256" in info.artifact.verification.line() and info.runtime == "tensorrt 10.3.0"
    assert "tensorrt 10.3.0 and the GPU match the manifest" in info.artifact.verification.line()
    assert backend.copied == list(OUTPUT_NAMES)  # no amap unless asked
    for n in (1, 5, 8, 13, 5, 1):  # 1: padded to the profile's 2; 13: split 8 + 5 over both slots
        batch = batch_of(n, n)
        scores = backend.score(batch)
        assert scores.amap is None
        assert_scores(scores, batch)
    stats = backend.stats
    # slot, batch: (0, 2) (1, 5) (0, 8) (1, 8) (0, 5) (1, 5) (0, 2): every slot's shape changes each time, and a
    # slot keeps the graph of its current shape only (a context that ran another shape is captured again)
    assert stats.captures == 7 and stats.graph_launches == 7 and stats.plain_launches == 0
    # stage times are the stand-in device's clock: one H2D, the scores' copies back, and the compute of a batch
    # whose graph is captured (one uncaptured run for TensorRT's lazy setup, then the graph) or replayed
    capture = (COST["h2d"], 2 * COST["kernel"], D2H)
    assert [(s.h2d, s.compute, s.d2h) for s in stats.stages] == [capture] * 7
    assert backend.stage_times_ms() == {"h2d": [1.0] * 7, "compute": [4.0] * 7, "d2h": [D2H] * 7}
    # the engine's plan (its weights; the stand-in's is b"FAKE engine", 11 bytes), two contexts of 1000 bytes, buffers
    assert backend.info.device_memory_bytes == 11 + 2 * 1000 + sum(b.nbytes for s in backend._slots for b in
                                                                  [s.device_input, *s.device_outputs.values()])
    assert backend.info.device_memory == "GPU: engine (plan size) + contexts + buffers"
    assert api.counts["graphs"] == 2  # one live graph per slot
    for round_ in range(2):  # the same shape again on both slots: replays, no capture; scores of the replays
        for n in (2, 5):
            batch = batch_of(n, 100 + 10 * round_ + n)
            assert_scores(backend.score(batch), batch)
    assert stats.captures == 9 and stats.graph_launches == 11 and api.counts["graphs"] == 2
    assert [s.compute for s in stats.stages[7:]] == [4.0, 4.0, 2.0, 2.0]  # (0, 2) (1, 5) captured, then replayed
    backend.close()
    assert api.live() == {} and api.counts["streams"] == 0 and api.counts["graphs"] == 0
    assert api.violations == [] and api.queued() == 0
    backend.close()  # twice is fine
    with pytest.raises(RuntimeFailure, match="closed"):
        backend.score(batch_of(2))


def test_amap_on_request_and_no_graphs(tmp_path):
    backend, api = open_fake(tmp_path, with_amap=True, cuda_graphs=False)
    batch = batch_of(3)
    assert_scores(backend.score(batch), batch, amap=True)
    assert backend.stats.captures == 0 and backend.stats.plain_launches == 1 and api.counts["launches"] == 0
    assert backend.stage_times_ms() == {"h2d": [1.0], "compute": [2.0], "d2h": [D2H + COST["d2h"]]}  # + amap
    backend.close()


def test_the_loop_drives_the_engine_slots(tmp_path):
    backend, api = open_fake(tmp_path, slots=3, settings=TrtSettings(profiles=3))
    items = [batch_of(k % 4 + 1, k) for k in range(9)]
    results = Pipeline(backend, batch_size=6, slots=3, workers=0).score_all(items)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    for r, batch in zip(results, items):
        assert_scores(r.scores, batch)
    assert not any(slot.pending for slot in backend._slots) and api.queued() == 0
    with pytest.raises(RuntimeError, match="holds no batch"):
        backend.collect(0)
    backend.close()


def test_manifest_is_verified_before_anything_is_loaded(tmp_path):
    path = write_engine(tmp_path).path
    path.write_bytes(b"FAKE engine, modified")
    with pytest.raises(ArtifactError, match="sha256 differs"):
        artifacts.open(path)  # the bytes read are checked against the manifest before any backend sees them
    engine = write_engine(tmp_path)
    api = CudaStandIn()
    with pytest.raises(ArtifactError, match="rebuild"):
        TensorRTBackend(engine, parts=TensorRTParts(api, standin_tensorrt(api),
                                                    RuntimeInfo("tensorrt", "10.4.0", "Fake GPU", "SM87")))
    bad = write_engine(tmp_path, data=b"not an engine")
    with pytest.raises(ArtifactError, match="could not deserialise"):
        open_fake(tmp_path, engine=bad)
    (tmp_path / "scorer.fp16.engine.json").unlink()
    with pytest.raises(ArtifactError, match="no manifest"):
        artifacts.open(engine.path)
    info = write_engine(tmp_path)
    assert (info.kind, info.precision, info.threshold, info.preprocess.isize, info.with_amap) == (
        "engine", "fp16", 2.5, SIZE, True)


def test_without_a_gpu_the_error_is_one_line(tmp_path):
    from gedge.core.machine import cuda_device

    if cuda_device()[0] is not None:
        pytest.skip("this machine has a GPU; the no-GPU error path does not apply")
    engine = write_engine(tmp_path, flavour="tensorrt_rtx")
    with pytest.raises(ConfigError) as error:
        TensorRTBackend(engine)
    assert "\n" not in str(error.value)
    result = subprocess.run([sys.executable, "-m", "gedge.cli", "bench", engine.path, "--json", "--iters", "1"],
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
    """A real engine against the torch reference, judged by the project's comparator at the FP32 limits, with
    and without CUDA graphs, on the first run and on the replays."""
    reason = _gpu_and_tensorrt()
    if reason:
        print(f"SKIP reason: {reason}")
        pytest.skip(reason)
    scorer_graphs = request.getfixturevalue("scorer_graphs")  # only where the test runs: it costs an export
    from gedge.compare.comparator import BackendScores, ImageSetFacts, compare_scores
    from gedge.compare.limits import limits_for
    from gedge.export.build_plan import BuildRequest
    from gedge.export.engine_build import build_engine
    from gedge.runtime.torch_backend import TorchBackend

    result = build_engine(artifacts.open(scorer_graphs["fp32"]), BuildRequest("fp32", out=str(tmp_path / "s.engine"),
                                                                              max_batch=16, progress=False))
    reference = TorchBackend(scorer_graphs["model"], with_amap=True)
    batch = np.random.default_rng(0).integers(0, 256, (11, 16, 16, 3), dtype=np.uint8)
    ref = reference.score(batch)
    facts = ImageSetFacts(threshold=result.manifest.decision.threshold, description="11 random tiles")
    for graphs in (False, True):
        backend = TensorRTBackend(artifacts.open(result.engine), with_amap=True, cuda_graphs=graphs)
        assert backend.info.cuda_graphs == (graphs and backend.graphs_possible), backend.info.notes
        for run in ("first", "replay"):  # the second call replays the captured graph
            got = backend.score(batch)
            report = compare_scores(BackendScores(ref, ref, "torch"), BackendScores(got, got, backend.name), facts,
                                    limits_for("fp32"))
            assert report.passed, f"graphs={graphs} {run}: {report.failures}"
        assert (backend.stats.graph_launches > 0) == backend.info.cuda_graphs
        backend.close()


def test_cuda_buffers_streams_and_graphs_on_the_gpu():
    from gedge.runtime.cuda import load_cuda, self_test

    try:
        api = load_cuda()
    except ConfigError as exc:
        print(f"SKIP reason: {exc}")
        pytest.skip(str(exc))
    facts = self_test(api, nbytes=1 << 16, replays=3)
    assert facts["copy_ok"] is True
    if api.supports_graphs:  # cuda-python: the graph must have been captured, replayed and have copied the bytes
        assert facts["graph_ok"] is True and facts["graph_replays"] == 3
    else:  # pycuda: no graphs, and the report says so
        assert facts["graph_ok"] is None and "no CUDA graphs" in facts["graph_note"]


def test_one_optimisation_profile_per_slot(tmp_path):
    """Contexts in concurrent use each select their own profile; an engine with fewer profiles than the slots
    asked for gets fewer slots, and says so."""
    backend, _ = open_fake(tmp_path, TrtSettings(profiles=3), slots=3)
    assert backend.info.slots == 3 and backend.trt.profiles_selected == [0, 1, 2] and not backend.info.notes
    backend.close()
    single, api = open_fake(tmp_path, TrtSettings(profiles=1), slots=2)
    assert single.info.slots == 1 and single.trt.profiles_selected == [] and "--profiles 2" in single.info.notes[0]
    batch = batch_of(13, 1)  # split 8 + 5 over the one slot
    assert_scores(single.score(batch), batch)
    single.close()
    assert api.live() == {} and api.violations == []


def test_tensorrt_rtx_uses_its_own_graphs(tmp_path):
    """With TensorRT-RTX's runtime config the contexts carry the WHOLE_GRAPH_CAPTURE strategy and every inference
    runs on such a context; the backend captures nothing itself. Switching graphs off gives the slots new
    contexts on the same profiles and buffers, whose inferences run without, and the scores stay right."""
    backend, api = open_fake(tmp_path, TrtSettings(rtx=True))
    assert backend.graph_mode == "runtime" and backend.info.cuda_graphs
    assert backend.trt.profiles_selected == [0, 1]
    batch = batch_of(13, 3)
    assert_scores(backend.score(batch), batch)
    assert backend.trt.executions == {"whole": 2}  # both batches ran on contexts with the runtime's graphs
    assert backend.stats.graph_launches == 2 and backend.stats.captures == 0 and api.counts["graphs"] == 0
    backend.set_cuda_graphs(False)
    assert backend.info.cuda_graphs is False and sorted(backend.trt.profiles_selected) == [0, 1]
    batch = batch_of(13, 4)
    assert_scores(backend.score(batch), batch)
    assert backend.trt.executions == {"whole": 2, "disabled": 2} and backend.stats.plain_launches == 2
    backend.set_cuda_graphs(True)
    backend.score(batch)
    assert backend.trt.executions == {"whole": 4, "disabled": 2}
    backend.close()
    assert api.live() == {} and api.counts["streams"] == 0 and api.violations == []


# --- what the stand-ins catch, and how the backend handles TensorRT's and CUDA's failures --------------------

SCORING_TESTS = [test_scores_padding_splitting_graphs_and_release, test_amap_on_request_and_no_graphs,
                 test_the_loop_drives_the_engine_slots, test_one_optimisation_profile_per_slot,
                 test_tensorrt_rtx_uses_its_own_graphs]


@pytest.mark.parametrize("test", SCORING_TESTS, ids=lambda test: test.__name__[5:])
def test_a_removed_synchronize_fails_every_scoring_test(test, tmp_path, monkeypatch):
    """The stand-in CUDA runs queued work only when its stream is synchronised: with Stream.synchronize a no-op,
    every test above that scores fails (its stage events have not completed, or the scores are stale)."""
    monkeypatch.setattr(Stream, "synchronize", lambda self: None)
    with pytest.raises((AssertionError, RuntimeFailure)):
        test(tmp_path)


@pytest.mark.parametrize("test", SCORING_TESTS, ids=lambda test: test.__name__[5:])
def test_work_on_the_default_stream_fails_every_scoring_test(test, tmp_path, monkeypatch):
    """TensorRT given the legacy default stream (0) instead of the slot's: its work is never synchronised."""
    monkeypatch.setattr(Stream, "ptr", property(lambda self: 0))
    with pytest.raises((AssertionError, RuntimeFailure)):
        test(tmp_path)


def test_a_missing_synchronize_reads_stale_scores(tmp_path, monkeypatch):
    backend, api = open_fake(tmp_path)
    first = batch_of(5, 1)
    assert_scores(backend.score(first), first)  # slot 0
    monkeypatch.setattr(Stream, "synchronize", lambda self: None)
    with pytest.raises(CudaError, match="cudaErrorNotReady"):  # slot 1: its stage events have not completed
        backend.score(batch_of(5, 2))
    monkeypatch.setattr(Stream, "stage_times", lambda self: StageTimes())  # without the events to give it away
    got = backend.score(batch_of(5, 3))  # slot 0 again: nothing of this batch ran, its buffers hold the first
    np.testing.assert_array_equal(got.d1, expected(first))
    assert api.queued() > 0


def test_work_on_another_slots_stream_shows_stale_data(tmp_path, monkeypatch):
    backend, api = open_fake(tmp_path, cuda_graphs=False)
    first, second, third = batch_of(13, 1), batch_of(13, 2), batch_of(13, 3)
    assert_scores(backend.score(first), first)
    streams = [slot.stream for slot in backend._slots]
    other = property(lambda self: api.stream_handle(streams[1 - streams.index(self)].handle))
    monkeypatch.setattr(Stream, "ptr", other)  # each slot's inference goes to the other slot's stream
    got = backend.score(second)
    # slot 0 is collected before its inference ran, and slot 1's inference ran before its input was copied in:
    # both read the first batch's data
    np.testing.assert_array_equal(got.d1, expected(first))
    monkeypatch.undo()
    assert_scores(backend.score(third), third)  # every queue was drained: right streams, right scores again
    backend.close()
    assert api.violations == [] and api.live() == {}


def test_after_a_failed_enqueue_the_backend_scores_again(tmp_path):
    """A batch split over both slots whose second enqueue fails: the first slot's batch is waited for and
    dropped, the error is raised, and the next call scores on free slots."""
    backend, api = open_fake(tmp_path)
    api.fail("h2d", "cudaErrorInvalidValue", after=1)
    with pytest.raises(CudaError, match="h2d failed: cudaErrorInvalidValue"):
        backend.score(batch_of(13, 1))
    assert not any(slot.pending for slot in backend._slots) and api.queued() == 0
    for seed in (2, 3):
        batch = batch_of(13, seed)
        assert_scores(backend.score(batch), batch)
    items = [batch_of(3, k) for k in range(4)]  # the pipelined loop on the same slots
    assert all(r.ok for r in Pipeline(backend, batch_size=4, slots=2, workers=0).score_all(items))
    backend.close()
    assert api.violations == [] and api.live() == {}


def test_a_batch_held_outside_score_is_not_mixed_into_it(tmp_path):
    backend, _ = open_fake(tmp_path)
    backend.enqueue(1, batch_of(3, 1))
    with pytest.raises(RuntimeFailure, match=r"slot\(s\) \[1\] hold batches enqueued outside score"):
        backend.score(batch_of(13, 2))
    held = backend.collect(1)
    assert_scores(held, batch_of(3, 1))
    backend.close()


def test_a_stream_that_cannot_be_synchronised_is_refused_and_its_memory_is_kept(tmp_path):
    """A faulted context (a sticky error): the backend refuses further work, saying why, and close() leaves the
    slots' buffers allocated instead of freeing them under the work still queued on them, and says so."""
    backend, api = open_fake(tmp_path)
    api.fail("stream_sync", "cudaErrorIllegalAddress", sticky=True)
    with pytest.raises(CudaError, match="cudaErrorIllegalAddress"):
        backend.score(batch_of(13, 1))
    with pytest.raises(RuntimeFailure, match="cannot be used after slot 0's stream failed to synchronise while "
                                             "collecting a batch"):
        backend.score(batch_of(2, 2))
    live, slots = api.live(), list(backend._slots)
    with pytest.raises(CudaError, match=r"slot\(s\) 0, 1 could not be synchronised .* left allocated") as closing:
        backend.close()
    assert "\n" not in str(closing.value) and str(backend.path) in str(closing.value)
    assert api.violations == [] and api.live() == live and api.queued() > 0  # nothing freed under queued work
    assert LEAKED[-1][-1] == slots and LEAKED[-1][0] is not None  # kept, with their engine
    backend.close()  # reported once


def test_a_refused_tensor_address_is_one_line_naming_the_call(tmp_path):
    api = CudaStandIn()
    with pytest.raises(CudaError) as error:
        open_fake(tmp_path, TrtSettings(refuse_address="d2"), api=api)
    text = str(error.value)
    assert "set_tensor_address('d2') failed for slot 0" in text and "setTensorAddress: Error Code 3" in text
    assert text.startswith(str(tmp_path)) and "\n" not in text
    assert api.live() == {} and api.counts["streams"] == 0  # the half-made slot was released


def test_a_refused_input_shape_is_caught_and_the_slot_sets_it_again(tmp_path):
    settings = TrtSettings()
    backend, api = open_fake(tmp_path, settings)
    settings.accepts = (2, 6)  # what the contexts accept from now on, narrower than the profile the engine reports
    with pytest.raises(CudaError, match=r"refused the input shape \(7, 4, 4, 3\) \(set_input_shape\): "
                                        r"IExecutionContext::setInputShape"):
        backend.score(batch_of(7, 1))  # slot 0
    settings.accepts = None
    for n in (5, 8):  # slot 1, then slot 0, whose context lost its shape with the refusal
        batch = batch_of(n, n)
        assert_scores(backend.score(batch), batch)
    backend.close()


@pytest.mark.parametrize("failure", ["end_capture", "instantiate", "not capturable"])
def test_a_failed_capture_runs_without_graphs_and_says_so(tmp_path, failure):
    backend, api = open_fake(tmp_path, TrtSettings(capturable=failure != "not capturable"))
    if failure != "not capturable":
        api.fail(failure, "cudaErrorStreamCaptureInvalidated")
    for seed in (1, 2):
        batch = batch_of(13, seed)
        assert_scores(backend.score(batch), batch)
    info = backend.info
    assert info.cuda_graphs is False and any("capture failed" in n or "not capturable" in n for n in info.notes)
    stats = backend.stats
    assert stats.captures == 0 and stats.graph_launches == 0 and stats.plain_launches == 4
    assert api.counts["graphs"] == 0 and api.counts["launches"] == 0
    backend.close()
    assert api.violations == [] and api.live() == {}


def test_synchronising_a_capturing_stream_fails_the_capture():
    api = CudaStandIn()
    stream = Stream(api)
    with pytest.raises(CudaError, match="cudaErrorStreamCaptureUnsupported"):
        CudaGraph.capture(api, stream, stream.synchronize)
    graph = CudaGraph.capture(api, stream, lambda: api.event_record(stream.events[0], stream.handle))
    graph.launch(stream)
    stream.synchronize()  # the capture ended: the stream runs work again
    assert stream.events[0].time is not None
    graph.destroy()
    stream.destroy()


def test_a_batch_that_fails_in_the_loop_fails_only_its_items(tmp_path):
    """The pipelined loop over the engine's slots: the batch whose copy in fails gives its items the error, and
    the batches after it, on the same slots, score right."""
    backend, api = open_fake(tmp_path)
    api.fail("h2d", "cudaErrorLaunchFailure", after=2)  # the third batch
    items = [batch_of(2, k) for k in range(8)]  # batches of 4: items 0+1, 2+3, 4+5, 6+7
    results = Pipeline(backend, batch_size=4, slots=2, workers=0).score_all(items)
    assert [r.ok for r in results] == [True, True, True, True, False, False, True, True]
    assert "h2d failed: cudaErrorLaunchFailure" in results[4].error
    for r in results:
        if r.ok:
            assert_scores(r.scores, items[r.index])
    backend.close()
    assert api.violations == [] and api.live() == {}


def test_cuda_self_test_on_the_standin():
    """gpu-check's CUDA step (buffers, streams, events, a captured graph) on the stand-in: the bytes come back
    through the plain copies and through the replayed graph; a graph launch that runs nothing is caught."""
    from gedge.runtime.cuda import self_test

    facts = self_test(CudaStandIn(), nbytes=4096, replays=3)
    assert facts["copy_ok"] is True and facts["graph_ok"] is True and facts["graph_replays"] == 3
    assert (facts["h2d_ms"], facts["d2d_ms"], facts["d2h_ms"]) == (COST["h2d"], COST["d2d"], COST["d2h"])

    class EmptyLaunch(CudaStandIn):
        def launch(self, graph_exec, stream) -> None:
            self.counts["launches"] += 1

    facts = self_test(EmptyLaunch(), nbytes=4096, replays=3)
    assert facts["copy_ok"] is True and facts["graph_ok"] is False

"""The bad-input sweep: images, artifacts, arguments and non-finite values, each refused with a non-zero exit
code and one error line, never a traceback (``gedge.cli.app.main`` runs in this process; see tests/clirun.py).

Decisions the sweep pins down:

* animated images are refused, not read as their first frame: a ``.gif`` is not an image suffix gedge reads,
  and an animated image under an image suffix (a GIF named ``.png``, an APNG) fails with its frame count;
* images with 4 channels (RGBA, CMYK) are a channel mismatch like grayscale for an RGB model: refused unless
  ``--convert`` (which drops alpha, converts CMYK); 16- and 32-bit images are refused (Pillow clips them to 8
  bits instead of scaling);
* a decompression bomb (over twice Pillow's ``MAX_IMAGE_PIXELS``) is refused before it is decoded;
* NaN or infinity cannot come from camera bytes (uint8 in, ``x / 127.5 - 1`` in the graph or on the host). What
  can happen: a float NCHW array handed to a backend where uint8 NHWC is expected (refused by the input spec),
  and a model that computes NaN (corrupt weights, a diverged training, or a float-input graph fed NaN by its own
  caller): a NaN score is never over the threshold, so it must not pass as an accepted image. Inspection fails
  such images as runtime failures (exit 3); scoring and evaluation refuse the checkpoint (exit 2).
"""

from __future__ import annotations

import importlib.util
import io
import os
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from clirun import GEDGE, assert_one_line, run_main
from gedge.calibrate.nncf_int8 import save_ir
from gedge.core import artifacts
from gedge.core.artifacts.graph import graph_facts, load_graph, write_graph
from gedge.core.artifacts.ir import write_ir_sidecar
from gedge.core.backend import BackendInfo
from gedge.core.errors import ArtifactError, DataError
from gedge.core.optional import available
from gedge.core.scores import Scores
from gedge.export.build_plan import BuildRequest
from gedge.export.engine_build import build_engine
from gedge.inspection.inspector import InspectOptions, Inspector
from gedge.reference.checkpoint import load_checkpoint, save_checkpoint
from gedge.runtime.onnxruntime_backend import OrtBackend
from helpers import textured, write_png
from PIL import Image

# Sidecar and IR hashes are verified on load by the trust chain's verdicts module (issue 12, item 5); where it is
# not there yet, a one-byte change in a graph's or IR's weights still loads, and those two cases are expected to
# fail.
VERIFIES_SIDECARS = importlib.util.find_spec("gedge.core.artifacts.verdicts") is not None
needs_verification = pytest.mark.xfail(not VERIFIES_SIDECARS, strict=True,
                                       reason="sidecar hashes are not verified on load in this branch")
WRITE_ONLY_SYSFS = Path("/sys/bus/pci/rescan")  # mode 0200: even root cannot read it


def _good(size: int = 64) -> np.ndarray:
    return textured(np.random.default_rng(0), size)


def _png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _bomb_png(side: int = 30000) -> bytes:
    """A 1-bit PNG of side x side pixels, all zero (112 MB decoded, about 110 kB on disk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)
    body = b"".join(compressor.compress(row * 1000) for _ in range(side // 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _unreadable(path: Path) -> Path | None:
    """A file this process cannot read: chmod 000, or (as root, whom chmod does not stop) a link to a write-only
    sysfs attribute; None where neither works."""
    if os.geteuid() != 0:
        write_png(path, _good())
        path.chmod(0)
        return path
    try:
        WRITE_ONLY_SYSFS.read_bytes()
    except PermissionError:
        path.symlink_to(WRITE_ONLY_SYSFS)
        return path
    except OSError:
        return None
    return None


def _make(case: str, folder: Path) -> Path | None:
    """The bad image of ``case`` in ``folder``."""
    path = folder / {"gif": "anim.gif", "cmyk": "cmyk.jpg"}.get(case, f"{case}.png")
    if case == "zero-byte":
        path.write_bytes(b"")
    elif case == "16-bit":
        Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)).save(path)
    elif case == "cmyk":
        Image.fromarray(_good()).convert("CMYK").save(path, format="JPEG")
    elif case in ("gif", "animated-as-png"):
        frames = [Image.fromarray(_good()).convert("P"), Image.fromarray(255 - _good()).convert("P")]
        frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    elif case == "rgba":
        Image.fromarray(_good()).convert("RGBA").save(path)
    elif case == "smaller-than-a-tile":
        write_png(path, _good(64)[:12, :12])
    elif case == "bomb":
        path.write_bytes(_bomb_png())
    elif case == "directory":
        path.mkdir()
    elif case == "symlink-loop":
        path.symlink_to(path.name)
    elif case == "unreadable":
        return _unreadable(path)
    return path


IMAGE_CASES = {  # case: what the one error line says
    "zero-byte": "image file is empty",
    "16-bit": "unsupported image mode I;16",
    "cmyk": "has 4 channel(s) (CMYK) but the model expects 3",
    "gif": "not an image file",
    "animated-as-png": "has 2 frames (animated or multi-page)",
    "rgba": "has 4 channel(s) (RGBA) but the model expects 3",
    "bomb": "image is too large to decode safely",
    "directory": "image folder contains no images",
    "symlink-loop": "broken or looping symbolic link",
    "unreadable": "cannot be read (permission denied)",
}


@pytest.fixture
def inspect_args(scorer_graphs):
    return ["--backend", "onnxruntime", "--threads", "1", "--workers", "0", "--json"]


@pytest.mark.parametrize("case", list(IMAGE_CASES))
@pytest.mark.parametrize("command", ["inspect", "score"])
def test_a_bad_image_is_one_line_and_a_non_zero_exit(case, command, scorer_graphs, inspect_args, tmp_path, capsys,
                                                      monkeypatch):
    path = _make(case, tmp_path)
    if path is None:
        pytest.skip("no way to make a file unreadable here: running as root (chmod does not stop reads) and "
                    f"{WRITE_ONLY_SYSFS} is not a write-only file")
    if command == "inspect":
        outcome = run_main(capsys, monkeypatch, "inspect", scorer_graphs["fp32"], path, *inspect_args)
    else:
        outcome = run_main(capsys, monkeypatch, "score", scorer_graphs["checkpoint"], path)
    assert_one_line(outcome, 2, path.name, IMAGE_CASES[case])


@pytest.mark.parametrize("command", ["inspect", "score"])
def test_an_image_smaller_than_a_tile_is_padded_and_scored(command, scorer_graphs, inspect_args, tmp_path, capsys,
                                                           monkeypatch):
    """A 12x12 frame for 16x16 tiles is no longer refused: it is mirrored to one tile, as in training."""
    path = _make("smaller-than-a-tile", tmp_path)
    if command == "inspect":
        outcome = run_main(capsys, monkeypatch, "inspect", scorer_graphs["fp32"], path, *inspect_args)
    else:
        outcome = run_main(capsys, monkeypatch, "score", scorer_graphs["checkpoint"], path, "--json")
    assert outcome.code == 0, outcome.stderr
    assert '"score": ' in outcome.stdout and "NaN" not in outcome.stdout, outcome.stdout[-500:]
    if command == "inspect":
        assert '"tiles": 1' in outcome.stdout, outcome.stdout[-500:]


@pytest.mark.parametrize("case", ["cmyk", "rgba"])
def test_four_channel_images_are_converted_when_asked(case, scorer_graphs, inspect_args, tmp_path, capsys,
                                                      monkeypatch):
    path = _make(case, tmp_path)
    outcome = run_main(capsys, monkeypatch, "inspect", scorer_graphs["fp32"], path, *inspect_args, "--convert")
    assert outcome.code == 0 and outcome.stderr.strip() == "", outcome.stderr


def test_a_folder_of_nothing_but_bad_images_does_not_exit_0(scorer_graphs, tmp_path):
    """The process's own exit code (a subprocess): every image failed, the summary counts them, exit 2."""
    folder = tmp_path / "bad"
    folder.mkdir()
    made = [_make(case, folder) for case in ("zero-byte", "16-bit", "rgba", "bomb", "symlink-loop", "unreadable")]
    made = [p for p in made if p is not None]
    result = subprocess.run([*GEDGE, "inspect", str(scorer_graphs["fp32"]), str(folder), "--backend", "onnxruntime",
                             "--threads", "1", "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[0].startswith(f"error: {len(made)} of {len(made)} images could not "
                                                            "be inspected; first: "), result.stderr
    summary = [line for line in result.stdout.splitlines() if '"summary"' in line][0]
    assert f'"errors": {len(made)}, "input_errors": {len(made)}, "runtime_errors": 0' in summary


def test_a_good_image_passes_the_same_harness(scorer_graphs, inspect_args, tmp_path, capsys, monkeypatch):
    """The control: the harness of the sweep accepts a good image (exit 0, nothing on stderr)."""
    good = write_png(tmp_path / "good.png", _good())
    for args in (["inspect", scorer_graphs["fp32"], good, *inspect_args], ["score", scorer_graphs["checkpoint"], good]):
        outcome = run_main(capsys, monkeypatch, *args)
        assert outcome.code == 0 and outcome.stderr.strip() == "", outcome.stderr


# --- artifacts: truncated and one-byte-tampered graph, IR and engine --------------------------------------------


def _flip_weight_byte(graph: Path, out: Path) -> Path:
    """A copy of ``graph`` with one byte of its largest initializer changed: still a valid ONNX file."""
    model = onnx.load(str(graph))
    largest = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    raw = bytearray(largest.raw_data)
    raw[len(raw) // 2] ^= 0x40
    largest.raw_data = bytes(raw)
    out.write_bytes(model.SerializeToString())
    return out


def _copy_with_sidecar(graph: Path, out: Path) -> Path:
    out.write_bytes(graph.read_bytes())
    out.with_name(out.name + ".json").write_bytes(graph.with_name(graph.name + ".json").read_bytes())
    return out


@pytest.fixture(scope="module")
def fp32_ir(scorer_graphs, tmp_path_factory):
    """The FP32 graph as an OpenVINO IR with the sidecar `gedge calibrate --target openvino` writes."""
    if not available("openvino"):
        pytest.skip("openvino is not installed")
    ov = pytest.importorskip("openvino")
    folder = tmp_path_factory.mktemp("ir")
    xml = save_ir(ov.convert_model(str(scorer_graphs["fp32"])), folder / "scorer.xml")
    write_ir_sidecar(xml, graph_facts(load_graph(scorer_graphs["fp32"])))
    return xml


@pytest.fixture(scope="module")
def engine(scorer_graphs, tmp_path_factory):
    if not (available("tensorrt_rtx") or available("tensorrt")):
        pytest.skip("no TensorRT module installed to build an engine")
    out = tmp_path_factory.mktemp("engine") / "scorer.engine"
    result = build_engine(artifacts.open(scorer_graphs["fp32"]), BuildRequest(precision="fp32", out=str(out),
                                                                              max_batch=8, profiles=1, progress=False))
    return result.engine


def _ir_copy(xml: Path, folder: Path) -> Path:
    copy = folder / xml.name
    for suffix in (".xml", ".bin"):
        copy.with_suffix(suffix).write_bytes(xml.with_suffix(suffix).read_bytes())
    copy.with_name(copy.name + ".json").write_bytes(xml.with_name(xml.name + ".json").read_bytes())
    return copy


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


ARTIFACT_CASES = ["graph-truncated", pytest.param("graph-tampered", marks=needs_verification), "ir-truncated",
                  pytest.param("ir-tampered", marks=needs_verification), "engine-truncated", "engine-tampered"]


@pytest.mark.parametrize("case", ARTIFACT_CASES)
def test_a_broken_artifact_is_one_line_and_a_non_zero_exit(case, scorer_graphs, request, inspect_args, tmp_path,
                                                           capsys, monkeypatch):
    kind, damage = case.split("-")
    image = write_png(tmp_path / "good.png", _good())
    if kind == "graph":
        model = _copy_with_sidecar(scorer_graphs["fp32"], tmp_path / "scorer.onnx")
        if damage == "truncated":
            _truncate(model)
        else:
            _flip_weight_byte(scorer_graphs["fp32"], model)
        args = inspect_args
    elif kind == "ir":
        model = _ir_copy(request.getfixturevalue("fp32_ir"), tmp_path)
        (_truncate if damage == "truncated" else _flip)(model.with_suffix(".xml" if damage == "truncated" else ".bin"))
        args = [a if a != "onnxruntime" else "openvino" for a in inspect_args]
    else:
        built = request.getfixturevalue("engine")
        model = _copy_with_sidecar(built, tmp_path / "scorer.engine")
        (_truncate if damage == "truncated" else _flip)(model)
        args = ["--json"]
    outcome = run_main(capsys, monkeypatch, "inspect", model, image, *args)
    if kind == "engine":  # verified against its manifest before TensorRT sees it, on any machine
        with pytest.raises(ArtifactError, match="engine does not match its manifest"):
            artifacts.open(model)
        if "no usable CUDA" in outcome.stderr:  # without a GPU the backend stops before reading the engine
            assert_one_line(outcome, 2, "no usable CUDA")
            return
    assert_one_line(outcome, 2, model.name)


# --- arguments ------------------------------------------------------------------------------------------------


ARGUMENT_CASES = {
    "overlap-1": (["inspect", "{graph}", "{image}", "--overlap", "1"], "overlap must be between 0 and 0.9"),
    "overlap-1.5": (["inspect", "{graph}", "{image}", "--overlap", "1.5"], "overlap must be between 0 and 0.9"),
    "inspect-batch-0": (["inspect", "{graph}", "{image}", "--batch-size", "0"], "batch size must be at least 1"),
    "score-batch-0": (["score", "{checkpoint}", "{image}", "--batch-size", "0"], "batch size must be at least 1"),
    "evaluate-batch-0": (["evaluate", "{checkpoint}", "{data}", "--batch-size", "0"], "batch size must be at least 1"),
    "bench-batch-0": (["bench", "{graph}", "--batch", "0"], "batch sizes must be at least 1"),
    "train-batch-0": (["train", "{data}", "--batch-size", "0"], "batch size >= 2"),
    "train-negative-steps": (["train", "{data}", "--steps", "-5"], "--steps must be positive, got -5"),
    "strips-negative-defects": (["data", "synth-strips", "{tmp}/s", "--max-defects", "-1"], "max defects"),
}


@pytest.mark.parametrize("case", list(ARGUMENT_CASES))
def test_a_bad_argument_is_one_line_and_exit_2(case, scorer_graphs, tmp_path, capsys, monkeypatch):
    argv, expected = ARGUMENT_CASES[case]
    image = write_png(tmp_path / "good.png", _good())
    values = {"graph": scorer_graphs["fp32"], "checkpoint": scorer_graphs["checkpoint"], "image": image,
              "data": scorer_graphs["data"], "tmp": tmp_path}
    outcome = run_main(capsys, monkeypatch, *[a.format(**values) for a in argv])
    assert_one_line(outcome, 2, expected)


# --- NaN and infinity -----------------------------------------------------------------------------------------


def test_a_float_nchw_array_where_uint8_nhwc_goes_is_refused(scorer_graphs):
    batch = np.full((2, 3, 16, 16), np.nan, dtype=np.float32)
    batch[1] = np.inf
    for graph in (scorer_graphs["fp32"], scorer_graphs["fp32_float"]):  # both take camera bytes at score()
        backend = OrtBackend(artifacts.open(graph), threads=1)
        with pytest.raises(DataError, match=r"input batch has shape \(2, 3, 16, 16\), expected \(N, 16, 16, 3\)"):
            backend.score(batch)
        with pytest.raises(DataError, match="input batch has dtype float32, expected uint8"):
            backend.score(np.transpose(batch, (0, 2, 3, 1)).copy())


class FloatFedBackend:
    """The float-input graph fed by a host conversion that lets NaN and infinity through on some tiles."""

    name = "float-fed"
    info = BackendInfo(kind="onnxruntime", label="float fed", precision="fp32")

    def __init__(self, graph: Path) -> None:
        self.inner = OrtBackend(artifacts.open(graph), threads=1)
        self.input_spec = self.inner.input_spec

    def score(self, batch: np.ndarray) -> Scores:
        pixels = self.inner.feed(batch)
        pixels[batch.reshape(len(batch), -1).max(axis=1) == 255] = np.nan  # a saturated tile: NaN
        pixels[batch.reshape(len(batch), -1).min(axis=1) == 0] = np.inf  # a black tile: infinity
        return self.inner.run(pixels)

    def close(self) -> None:
        pass


def test_nan_and_infinity_in_a_float_graph_input_fail_the_image_not_pass_it(scorer_graphs, tmp_path):
    graph = scorer_graphs["fp32_float"]
    scores = FloatFedBackend(graph).inner.run(np.full((1, 3, 16, 16), np.nan, dtype=np.float32))
    assert not np.isfinite(scores.score).any()  # the graph propagates NaN: nothing in it guards
    rng = np.random.default_rng(1)
    plain = write_png(tmp_path / "plain.png", rng.integers(60, 200, (64, 64, 3), dtype=np.uint8))
    saturated = rng.integers(60, 200, (64, 64, 3), dtype=np.uint8)
    saturated[:8, :8] = 255
    black = rng.integers(60, 200, (64, 64, 3), dtype=np.uint8)
    black[40:48, 40:48] = 0
    files = [plain, write_png(tmp_path / "nan.png", saturated), write_png(tmp_path / "inf.png", black)]
    inspector = Inspector(FloatFedBackend(graph), artifacts.open(graph), InspectOptions(batch_size=4, workers=0))
    reports = list(inspector.run(files))
    assert reports[0].ok and not reports[0].anomalous, reports[0]
    for report in reports[1:]:
        assert not report.ok and report.error_kind == "runtime" and "non-finite scores" in report.error, report
    s = inspector.summary
    assert (s.images, s.accepted, s.rejected, s.runtime_errors) == (3, 1, 0, 2)


def _nan_graph(graph: Path, out: Path) -> Path:
    """A copy of ``graph`` whose largest initializer holds a NaN, with a sidecar that matches it: a graph that
    computes NaN (what corrupt weights or a diverged training give)."""
    model = onnx.load(str(graph))
    largest = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    values = onnx.numpy_helper.to_array(largest).copy()
    values.flat[:] = np.nan
    largest.CopyFrom(onnx.numpy_helper.from_array(values, largest.name))
    return write_graph(out, model).path


def test_a_model_that_computes_nan_fails_inspection_with_exit_3(scorer_graphs, inspect_args, tmp_path, capsys,
                                                                monkeypatch):
    graph = _nan_graph(scorer_graphs["fp32"], tmp_path / "nan.onnx")
    image = write_png(tmp_path / "good.png", _good())
    outcome = run_main(capsys, monkeypatch, "inspect", graph, image, *inspect_args)
    assert_one_line(outcome, 3, "1 of 1 images failed on the backend", "non-finite scores (NaN or infinity)")


def test_a_checkpoint_that_computes_nan_is_refused_by_score_and_evaluate(scorer_graphs, tmp_path, capsys,
                                                                          monkeypatch):
    checkpoint = load_checkpoint(scorer_graphs["checkpoint"])
    for state in (checkpoint.netg_state,):
        first = next(k for k, v in state.items() if v.dtype == torch.float32 and v.ndim == 4)
        state[first] = torch.full_like(state[first], float("nan"))
    path = save_checkpoint(checkpoint, tmp_path / "nan.pt")
    image = write_png(tmp_path / "good.png", _good())
    assert_one_line(run_main(capsys, monkeypatch, "score", path, image), 2, "nan.pt", "non-finite scores")
    assert_one_line(run_main(capsys, monkeypatch, "evaluate", path, scorer_graphs["data"]), 2, "nan.pt",
                    "non-finite scores")


def test_a_one_class_test_split_is_one_line_naming_the_folder(scorer_graphs, tmp_path, capsys, monkeypatch):
    data = tmp_path / "one-class"
    for i in range(4):
        write_png(data / "train" / "good" / f"{i}.png", _good())
        write_png(data / "test" / "good" / f"{i}.png", _good())
    outcome = run_main(capsys, monkeypatch, "evaluate", scorer_graphs["checkpoint"], data)
    assert_one_line(outcome, 2, f"{data / 'test'}: the test set has only 4 normal images")

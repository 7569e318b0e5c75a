"""Inspection: tiling of strips (the one tiler evaluation uses), box merging, decisions, corrupt files, overlays,
strips ground truth, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gedge.core.backend import BackendInfo
from gedge.core.errors import ConfigError, DataError, RuntimeFailure
from gedge.core.inputs import InputSpec
from gedge.core.preprocess import Preprocess
from gedge.core.scores import OUTPUT_NAMES, Scores
from gedge.data.datasets import LabeledImages
from gedge.data.strip_truth import read_truth, score_strip
from gedge.data.strips import render_strip, write_strips
from gedge.data.tiles import tile_image
from gedge.inspection.boxes import merge_boxes
from gedge.inspection.inspector import InspectOptions, Inspector
from gedge.inspection.session import InspectionResult
from helpers import scorer_artifact, write_png
from PIL import Image

GEDGE = [sys.executable, "-m", "gedge.cli"]


class DarkSpotBackend:
    """Scores a tile by how dark its darkest pixels are: a black square is a defect, wood is not."""

    name = "dark-spot"
    info = BackendInfo(kind="dark-spot", label="dark spot", precision="fp32")

    def __init__(self, size: int) -> None:
        self.input_spec = InputSpec(size=size, channels=3)

    def score(self, batch: np.ndarray) -> Scores:
        darkness = 255.0 - batch.reshape(len(batch), -1).min(axis=1).astype(np.float32)
        values = {name: darkness / 50.0 for name in OUTPUT_NAMES}
        return Scores.from_dict(values)

    def close(self) -> None:
        pass


def test_strip_tiling_covers_the_strip_and_maps_back_to_pixels():
    strip = np.zeros((256, 2048, 3), dtype=np.uint8)
    pre = Preprocess(mode="patch", isize=32, scale=0.5)  # the model's stride: half a tile
    tiles, tiling = tile_image(strip, pre)  # scaled to 128 x 1024: 7 rows of 63 tiles at stride 16
    assert tiles.shape == (7 * 63, 32, 32, 3) and tiling.window == (64, 64)
    assert tiling.rect(0) == (0, 0, 64, 64) and tiling.rect(len(tiles) - 1) == (1984, 192, 2048, 256)
    tiles0, _ = tile_image(strip, pre, stride=32)  # tiles side by side
    assert len(tiles0) == 4 * 32
    whole = Preprocess(mode="resize", isize=32)  # resize mode: the whole strip, resized, is the one input
    tiles_r, tiling_r = tile_image(strip, whole)
    assert tiles_r.shape == (1, 32, 32, 3) and tiling_r.rect(0) == (0, 0, 2048, 256)
    with pytest.raises(DataError, match="trained on 256x256"):  # as evaluation refuses it
        tile_image(strip, Preprocess(mode="resize", isize=32, source_size=(256, 256)))
    with pytest.raises(ConfigError):
        InspectOptions(overlap=0.95)


class RecordingBackend:
    """Scores a tile by its pixels (a fixed weighting, different per score) and keeps every batch it was given."""

    name = "recording"
    info = BackendInfo(kind="recording", label="recording", precision="fp32")

    def __init__(self, size: int) -> None:
        self.input_spec = InputSpec(size=size, channels=3)
        self.batches: list[np.ndarray] = []

    def score(self, batch: np.ndarray) -> Scores:
        self.batches.append(batch.copy())
        flat = batch.reshape(len(batch), -1).astype(np.float64)
        weights = np.linspace(0.0, 1.0, flat.shape[1])
        return Scores.from_dict({name: (flat * weights ** k).mean(axis=1) / 100.0
                                 for k, name in enumerate(OUTPUT_NAMES, start=1)})

    def inputs(self) -> np.ndarray:
        return np.concatenate(self.batches)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("pre, inputs", [
    # 96 x 160 at scale 0.5 is 48 x 80; tiles of 32 at the model's stride 8: rows 0, 8, 16 and columns 0 to 48
    (Preprocess(mode="patch", isize=32, scale=0.5, stride=8), 2 * 3 * 7),
    # resize mode: the whole 96 x 160 image resized to 32 x 32, one input per image
    (Preprocess(mode="resize", isize=32, source_size=(96, 160)), 2),
])
def test_evaluate_and_inspect_score_the_same_inputs_of_non_square_images(tmp_path, pre, inputs):
    """The production path (`gedge inspect`) scores exactly the network inputs the model was evaluated on (and
    gated on: parity and the INT8 gate go through the same tiler), with the model's own stride, and gets the same
    image scores, for non-square images in patch and in resize mode."""
    from gedge.core.decision import DecisionRule
    from gedge.reference.evaluate import evaluate_backend

    rng = np.random.default_rng(5)
    normal = rng.integers(100, 200, (96, 160, 3), dtype=np.uint8)
    defect = normal.copy()
    defect[20:40, 100:130] = 0
    paths = [write_png(tmp_path / "normal.png", normal), write_png(tmp_path / "defect.png", defect)]
    evaluated = RecordingBackend(32)
    _, image_scores = evaluate_backend(evaluated, LabeledImages(paths, np.array([0, 1]), ["good", "defect"]), pre,
                                       DecisionRule(), "two images")
    inspected = RecordingBackend(32)
    reports = list(Inspector(inspected, scorer_artifact(pre), InspectOptions(batch_size=64, workers=0)).run(paths))
    assert len(evaluated.inputs()) == len(inspected.inputs()) == inputs
    np.testing.assert_array_equal(evaluated.inputs(), inspected.inputs())
    for i, report in enumerate(reports):
        assert report.ok and report.tiles == inputs // 2 and (report.width, report.height) == (160, 96)
        assert report.score == float(image_scores.score[i])
        assert report.scores == {name: float(image_scores.named(name)[i]) for name in OUTPUT_NAMES}


def test_merge_boxes_joins_overlapping_and_touching_tiles_only():
    rects = [(0, 0, 64, 64), (32, 0, 96, 64), (96, 0, 160, 64), (400, 100, 464, 164)]
    boxes = merge_boxes(rects, [3.0, 5.0, 4.0, 9.0])
    assert [(b.x0, b.y0, b.x1, b.y1, b.score, b.tiles) for b in boxes] == [
        (400, 100, 464, 164, 9.0, 1), (0, 0, 160, 64, 5.0, 3)]
    assert merge_boxes([], []) == []


def test_inspector_finds_a_planted_spot_skips_corrupt_files_and_writes_overlays(tmp_path):
    rng = np.random.default_rng(0)
    strip = rng.integers(150, 200, (128, 1024, 3), dtype=np.uint8)
    strip[40:52, 700:716] = 0  # the defect
    good = write_png(tmp_path / "a_strip.png", strip)
    clean = write_png(tmp_path / "b_clean.png", rng.integers(150, 200, (128, 512, 3), dtype=np.uint8))
    corrupt = tmp_path / "c_corrupt.png"
    corrupt.write_bytes(good.read_bytes()[:500])
    info = scorer_artifact(Preprocess(mode="patch", isize=32, scale=0.5), threshold=3.0)
    options = InspectOptions(batch_size=16, overlays=tmp_path / "overlays", all_tiles=True)
    inspector = Inspector(DarkSpotBackend(32), info, options)
    reports = list(inspector.run([good, corrupt, clean]))
    assert [Path(r.path).name for r in reports] == ["a_strip.png", "c_corrupt.png", "b_clean.png"]
    spotted, broken, plain = reports
    assert spotted.anomalous and not plain.anomalous and plain.boxes == []
    assert "corrupt" in broken.error and broken.to_record() == {"path": str(corrupt), "error": broken.error,
                                                                "error_kind": "input"}
    assert len(spotted.boxes) == 1
    box = spotted.boxes[0]
    assert box.x0 <= 700 and box.x1 >= 716 and box.y0 <= 40 and box.y1 >= 52 and box.x1 - box.x0 <= 192
    assert len(spotted.tile_scores) == spotted.tiles == 3 * 31
    record = spotted.to_record()
    assert record["heat"] == "tile-scores" and json.dumps(record)
    overlay = Image.open(record["overlay"])
    assert overlay.size == (1024, 128) and overlay.mode == "RGB"
    s = inspector.summary
    assert (s.images, s.rejected, s.accepted, s.boxes) == (3, 1, 1, 1)
    assert (s.errors, s.input_errors, s.runtime_errors) == (1, 1, 0)
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == ["a_strip.overlay.png", "b_clean.overlay.png"]


def test_strips_have_ground_truth_and_are_scored(tmp_path):
    image, planted = render_strip(np.random.default_rng(3), height=64, length=320, defects=2)
    assert image.shape == (64, 320, 3) and len(planted) == 2
    assert all(0 <= d["box"][0] < d["box"][2] <= 320 for d in planted)
    np.testing.assert_array_equal(image[:, 63], image[:, 64])  # mirrored sections: no seam
    truth = write_strips(tmp_path / "s", count=4, height=64, length=256, seed=1, max_defects=2)
    assert [len(s["defects"]) == 0 for s in truth["strips"]] == [False, False, False, True]
    boxes = read_truth(tmp_path / "s")
    assert set(boxes) == {f"strip_{i:03d}.png" for i in range(4)}
    score = score_strip("x", [[10, 10, 20, 20], [100, 10, 110, 20]], [(0, 0, 32, 32), (200, 0, 232, 32)], True)
    assert (score.found, score.false_alarms, score.recall) == (1, 1, 0.5)


def test_inspect_cli_json_lines_with_a_corrupt_file(scorer_graphs, tmp_path):
    folder = tmp_path / "in"
    write_strips(folder, count=2, height=64, length=256, seed=2, max_defects=1)
    (folder / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = subprocess.run([*GEDGE, "inspect", scorer_graphs["fp32"], folder, "--json", "--batch-size", "16",
                             "--threads", "1", "--truth", folder / "strips.json", "--overlays", tmp_path / "ov"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr  # the run goes on, and ends with the bad input's exit code
    assert result.stderr.strip().splitlines() == [
        f"error: 1 of 3 images could not be inspected; first: {folder / 'zz_broken.png'}: unreadable or corrupt "
        "image (UnidentifiedImageError: cannot identify image file " + repr(str(folder / "zz_broken.png")) + ")"]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["path"]).name for r in lines[:-1]] == ["strip_000.png", "strip_001.png", "zz_broken.png"]
    # a 64 x 256 strip at the model's scale 0.5 is 32 x 128, cut at the model's own stride (16: tiles side by side)
    assert lines[2]["error_kind"] == "input" and "anomalous" in lines[0] and lines[0]["tiles"] == 2 * 8
    assert lines[0]["heat"] == "amap"  # the fixture's graph has the amap output
    summary = lines[-1]["summary"]
    assert (summary["images"], summary["errors"], summary["input_errors"], summary["runtime_errors"]) == (3, 1, 1, 0)
    assert summary["ground_truth"]["strips"] == 2
    missing = subprocess.run([*GEDGE, "inspect", scorer_graphs["fp32"], tmp_path / "nope"], capture_output=True,
                             text=True, timeout=300)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


class FlakyBackend(DarkSpotBackend):
    """Fails the way a lost GPU does on every batch that holds a black tile."""

    def score(self, batch: np.ndarray) -> Scores:
        if (batch.reshape(len(batch), -1).min(axis=1) == 0).any():
            raise RuntimeFailure("CUDA error 700 (injected)")
        return super().score(batch)


def test_exit_code_rule_a_runtime_failure_outranks_bad_input(tmp_path):
    """Failed images give the run's error after the summary: none -> exit 0, unreadable images -> DataError
    (exit 2), a batch failed on the backend -> RuntimeFailure (exit 3), also when both happened."""
    rng = np.random.default_rng(0)
    clean = write_png(tmp_path / "a_clean.png", rng.integers(150, 200, (64, 128, 3), dtype=np.uint8))
    spotted = rng.integers(150, 200, (64, 128, 3), dtype=np.uint8)
    spotted[10:20, 10:20] = 0
    spotted = write_png(tmp_path / "b_spotted.png", spotted)
    corrupt = tmp_path / "c_corrupt.png"
    corrupt.write_bytes(clean.read_bytes()[:300])
    info = scorer_artifact(Preprocess(mode="patch", isize=32, scale=0.5), threshold=3.0)

    def outcome(files):
        inspector = Inspector(FlakyBackend(32), info, InspectOptions(batch_size=1, workers=0))
        reports = list(inspector.run(files))
        return InspectionResult(inspector.summary, info, "", None, [r for r in reports if not r.ok]).failure()

    assert outcome([clean]) is None
    only_bad_input = outcome([clean, corrupt])
    assert isinstance(only_bad_input, DataError) and str(only_bad_input).startswith(
        "1 of 2 images could not be inspected; first: " + str(corrupt))
    both = outcome([clean, spotted, corrupt])
    assert isinstance(both, RuntimeFailure) and str(both).startswith(
        "fake.onnx: 1 of 3 images failed on the backend (1 unreadable); first: backend failed on a batch: "
        "RuntimeFailure: CUDA error 700 (injected)")

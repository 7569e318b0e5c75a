"""Defaults that need no flags: channels and tiling from the images, training that stops when validation stops
improving, the training curve, the second synthetic material."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from gedge.core.errors import ConfigError
from gedge.data.datasets import open_dataset
from gedge.data.survey import survey_images
from gedge.data.synth import SynthConfig, synth_sample, write_synthetic
from gedge.reference.checkpoint import load_checkpoint
from gedge.reference.inputs import InputRequest, choose_inputs
from gedge.reference.stopping import StopRule, counted, plateau, reconstruction_settled, selected_index, stop_notes
from PIL import Image

GEDGE = [sys.executable, "-m", "gedge.cli"]


def _regions(mask: np.ndarray) -> int:
    """Connected regions of a boolean mask, 8-neighbours, by flood fill."""
    seen = np.zeros_like(mask, dtype=bool)
    count = 0
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        count += 1
        stack = [start]
        seen[start] = True
        while stack:
            y, x = stack.pop()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
    return count


def _write(folder, arrays):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, array in enumerate(arrays):
        path = folder / f"{i:03d}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    gray = [rng.integers(0, 255, (40, 60), dtype=np.uint8) for _ in range(3)]
    colour = [rng.integers(0, 255, (50, 50, 3), dtype=np.uint8) for _ in range(2)]
    gray_as_rgb = [np.repeat(g[..., None], 3, axis=2) for g in gray]
    return {"gray": _write(tmp_path / "gray", gray), "colour": _write(tmp_path / "colour", colour),
            "mixed": _write(tmp_path / "mixed", gray + colour), "gray_rgb": _write(tmp_path / "gray_rgb", gray_as_rgb)}


def test_channels_come_from_the_images(images):
    assert survey_images(images["gray"]).channels == 1
    assert survey_images(images["colour"]).channels == 3
    mixed = survey_images(images["mixed"])
    assert mixed.channels == 3 and mixed.converted == 3 and "3 of 5 images are grayscale" in mixed.notes[0]
    gray_rgb = survey_images(images["gray_rgb"])  # a gray camera saved as RGB
    assert gray_rgb.channels == 1 and "equal channels" in gray_rgb.notes[0]
    assert mixed.mixed_sizes and not survey_images(images["gray"]).mixed_sizes


def test_tiling_comes_from_the_image_sizes(images):
    def choose(sizes, request=InputRequest()):
        survey = survey_images(images["gray"])
        survey.sizes = sizes
        return choose_inputs(survey, request)

    wood = choose([(256, 256)] * 4)
    assert (wood.preprocess.mode, wood.preprocess.isize, wood.preprocess.scale) == ("patch", 32, 1.0)
    strip = choose([(500, 1250)] * 4)  # a line-scan image: scaled so its short side is about 256 px
    assert strip.preprocess.scale == 0.5 and any("scale 0.5" in r for r in strip.reasons)
    cells = choose([(300, 300)] * 4)  # 256 / 300 = 0.853, in steps of 0.05
    assert cells.preprocess.scale == 0.85
    tiny = choose([(40, 60)] * 4)
    assert tiny.preprocess.mode == "resize" and tiny.preprocess.channels == 1
    small = choose([(100, 100)] * 4)
    assert small.preprocess.scale == 1.0  # never enlarged
    fixed = choose([(256, 256)] * 4, InputRequest(mode="patch", isize=64, scale=0.25, channels=3))
    assert (fixed.preprocess.isize, fixed.preprocess.scale, fixed.preprocess.channels) == (64, 0.25, 3)
    assert not any(r.startswith("scale") for r in fixed.reasons)  # the user's choice needs no reason


def test_stop_rule_plateau_caps_and_notes():
    rule = StopRule(steps=None, max_steps=1000, time_limit_s=60.0, patience=3, min_delta=0.01, min_steps=300)
    rising = [0.6, 0.7, 0.8, 0.85, 0.9]
    assert rule.reason_to_stop(500, rising, 1.0) is None
    flat = [0.6, 0.8, 0.9, 0.905, 0.9, 0.895]  # three validations without a gain of 0.01 over 0.9
    assert plateau(flat, 3, 0.01) and not plateau(rising, 3, 0.01)
    assert rule.reason_to_stop(200, flat, 1.0) is None  # too early for a plateau
    assert rule.reason_to_stop(600, flat, 1.0).startswith("a validation plateau")
    assert rule.reason_to_stop(1000, rising, 1.0).startswith("the step cap")
    assert rule.reason_to_stop(500, rising, 61.0).startswith("the time limit")
    assert StopRule(steps=40).reason_to_stop(40, flat, 1.0).startswith("the step count")
    assert StopRule(steps=40).reason_to_stop(30, flat, 1.0) is None  # a fixed count ignores plateaus
    notes = stop_notes(rising, [100, 200, 300, 400, 500], 500, "the step cap (500)", rule)
    assert any("last validation" in n for n in notes) and any("still rising" in n for n in notes)
    assert stop_notes(flat, [100, 200, 300, 400, 500, 600], 300, "a validation plateau (...)", rule) == []
    with pytest.raises(ConfigError):
        StopRule(steps=0)


def test_selection_counts_only_validations_after_the_reconstruction_settled():
    """Real wood, seed 2 (reconstruction error and selection AUROC per 150 steps): the proxy AUROC spiked at step 750
    while G's reconstruction error was still falling by half per interval; the validations from step 1200 on count."""
    steps = [600, 750, 900, 1050, 1200, 1350, 1500]
    recon = [0.21, 0.113, 0.062, 0.046, 0.041, 0.040, 0.039]
    selection = [0.838, 0.943, 0.937, 0.908, 0.897, 0.907, 0.89]
    settled = reconstruction_settled(recon, steps)
    assert settled == [False, False, False, False, True, True, True]
    assert counted(selection, settled) == [0.897, 0.907, 0.89]
    assert steps[selected_index(recon, selection, steps)] == 1350  # not the spike at 750
    # a slow start between coarse validations looks settled (step 600 here); it is not kept when the run's
    # reconstruction error ends far lower: the best validation of all is (the test suite's 900-step run)
    coarse = ([300, 600, 900], [0.24, 0.17, 0.06], [0.55, 0.60, 0.87])
    assert reconstruction_settled(coarse[1], coarse[0]) == [False, True, False]
    assert selected_index(coarse[1], coarse[2], coarse[0]) == 2
    # the share is per 150 steps: the same fall over a longer interval is slower
    assert reconstruction_settled([0.1, 0.08], [150, 450]) == [False, True]
    assert reconstruction_settled([0.1], [150]) == [False]  # nothing to compare with yet
    # an early spike no longer ends the run as a plateau before the reconstruction settles (nor do the unsettled
    # validations themselves, however many)
    rule = StopRule(steps=None, patience=3, min_steps=300)
    assert rule.reason_to_stop(1050, counted(selection[:4], settled[:4]), 1.0) is None
    assert rule.reason_to_stop(1050, counted([0.6, 0.5, 0.5, 0.5, 0.5], [True] + [False] * 4), 1.0) is None
    assert rule.reason_to_stop(1050, [0.6, 0.5, 0.5, 0.5, 0.5], 1.0, settled=False) is None  # still reconstructing
    assert rule.reason_to_stop(1050, [0.6, 0.5, 0.5, 0.5, 0.5], 1.0, settled=True).startswith("a validation")
    assert plateau(selection[:5], 3, 0.002) and not plateau(counted(selection[:5], settled[:5]), 3, 0.002)


def test_metal_material_is_grayscale_with_mixed_sizes(tmp_path):
    config = SynthConfig(size=64, n_train=6, n_test_good=2, n_test_per_defect=1, seed=3, material="metal")
    summary = write_synthetic(tmp_path / "metal", config)
    assert summary.counts["test"] == {"good": 2, "pits": 1, "scratch": 1, "crack": 1, "uneven": 1, "smear": 1}
    dataset = open_dataset(tmp_path / "metal")
    survey = survey_images(dataset.train)
    assert survey.channels == 1 and survey.mixed_sizes
    for path, mask in zip(dataset.test.paths, dataset.test.mask_paths):
        if mask is not None:
            assert (np.asarray(Image.open(mask)) > 127).any() and Image.open(path).size == Image.open(mask).size
    again, _ = synth_sample(3, "train", "good", 0, 64, "metal")
    assert np.array_equal(again[..., 0], np.asarray(Image.open(dataset.train[0])))  # the same seed, the same image
    with pytest.raises(ConfigError, match="material"):
        SynthConfig(material="glass")


def test_train_with_no_input_options_on_a_grayscale_folder(tmp_path):
    """`gedge train DIR`: channels, mode and scale from the images (a grayscale metal set of mixed sizes); steps
    bounded here only to keep the test short."""
    data = tmp_path / "metal"
    write_synthetic(data, SynthConfig(size=64, n_train=10, n_test_good=2, n_test_per_defect=1, seed=1,
                                      material="metal"))
    out = tmp_path / "metal.pt"
    result = subprocess.run([*GEDGE, "train", str(data), "-o", str(out), "--max-steps", "30", "--val-every", "10",
                             "--batch-size", "8", "--json"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    pre = summary["input_choice"]["preprocess"]
    assert pre["channels"] == 1 and summary["stop_reason"]
    # the trained model blurs the residual at the local window's side: an eighth of the tile, odd, at least 3
    model = load_checkpoint(out).model
    assert model.residual_blur == max(3, (pre["isize"] // 8) | 1) and model.residual_blur % 2 == 1
    assert (tmp_path / "metal.pt.curve.json").is_file() and (tmp_path / "metal.pt.curve.png").is_file()
    curve = json.loads((tmp_path / "metal.pt.curve.json").read_text())
    assert [v["step"] for v in curve["validations"]] == [10, 20, 30] and curve["best_step"] == summary["best_step"]
    evaluated = subprocess.run([*GEDGE, "evaluate", str(out), str(data), "--json"], capture_output=True, text=True,
                               timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads(evaluated.stdout)
    assert {"all", "pits", "uneven"} <= set(report["localisation"])  # pixel AUROC and PRO where masks exist
    # "all" is every normal test image and every defect image with a mask, its regions their masks' connected
    # defect regions (8-neighbours), counted here from the mask files themselves
    masks = sorted((data / "ground_truth").rglob("*.png"))
    overall = report["localisation"]["all"]
    assert overall["images"] == 2 + len(masks) and overall["max_fpr"] == 0.3
    assert overall["regions"] == sum(_regions(np.asarray(Image.open(m).convert("L")) > 127) for m in masks) > 0
    assert 0.0 <= overall["pro"] <= 1.0 and 0.0 <= overall["pixel_auroc"] <= 1.0  # measured: a 30-step model

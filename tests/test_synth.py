"""Tests of the synthetic wood data set generator."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from gedge.core.errors import ConfigError, DataError
from gedge.data.synth import SynthConfig, SynthSummary, image_rng, synth_sample, write_synthetic
from gedge.data.wood_board import render_board
from gedge.data.wood_defects import DEFECT_CLASSES, add_defect
from PIL import Image

SMALL = SynthConfig(size=64, n_train=3, n_test_good=2, n_test_per_defect=2, seed=7)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary, list[tuple[int, int]]]:
    root = tmp_path_factory.mktemp("synth") / "wood"
    calls: list[tuple[int, int]] = []
    summary = write_synthetic(root, SMALL, progress=lambda done, total: calls.append((done, total)))
    return root, summary, calls


def test_default_and_paper_counts() -> None:
    default = SynthConfig.default()
    assert (default.size, default.n_train, default.n_test_good, default.n_test_per_defect) == (256, 240, 40, 8)
    assert default.n_test == 80 and SynthConfig() == default
    paper = SynthConfig.paper_size()
    assert paper.n_train == 3075 and paper.n_test == 740 and paper.n_test_good == 370


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 100},
        {"size": 32},
        {"size": 0},
        {"size": 256.0},
        {"size": True},
        {"n_train": 0},
        {"n_train": -1},
        {"n_test_good": -1},
        {"n_test_per_defect": 1.5},
        {"seed": -1},
        {"seed": "0"},
        {"n_test_good": 0, "n_test_per_defect": 0},
    ],
)
def test_invalid_config_raises(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SynthConfig(**kwargs)  # type: ignore[arg-type]


def test_invalid_arguments_raise() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError):
        render_board(rng, 96)
    with pytest.raises(ConfigError):
        add_defect(render_board(rng, 64), "scratches", rng)
    with pytest.raises(ConfigError):
        image_rng(0, "val", "good", 0)


def test_board_is_textured_rgb() -> None:
    board = render_board(np.random.default_rng(1), 128)
    assert board.shape == (128, 128, 3) and board.dtype == np.uint8
    assert board.std() > 4.0  # grain and rings, not a flat colour
    r, g, b = board.reshape(-1, 3).mean(axis=0)
    assert r > g > b  # yellow-brown wood tones


def test_same_seed_same_bytes(small_set: tuple[Path, SynthSummary, list[tuple[int, int]]], tmp_path: Path) -> None:
    root, _, _ = small_set
    write_synthetic(tmp_path / "again", SMALL)
    assert _files(root) == _files(tmp_path / "again")


def test_synth_sample_is_deterministic() -> None:
    for split, image_class in [("train", "good"), ("test", "good"), ("test", "knots")]:
        image, mask = synth_sample(3, split, image_class, 4, 64)
        again, again_mask = synth_sample(3, split, image_class, 4, 64)
        assert np.array_equal(image, again)
        assert (mask is None and again_mask is None) or np.array_equal(mask, again_mask)


def test_files_do_not_depend_on_counts(tmp_path: Path) -> None:
    few = SynthConfig(size=64, n_train=2, n_test_good=1, n_test_per_defect=1, seed=7)
    write_synthetic(tmp_path / "few", few)
    write_synthetic(tmp_path / "many", SMALL)
    small, many = _files(tmp_path / "few"), _files(tmp_path / "many")
    shared = [name for name in small if name != "MANIFEST.txt"]
    assert len(shared) == 2 + 1 + 2 * len(DEFECT_CLASSES)
    for name in shared:
        assert small[name] == many[name], name


def test_different_seeds_and_indices_differ() -> None:
    a, _ = synth_sample(0, "train", "good", 0, 64)
    b, _ = synth_sample(1, "train", "good", 0, 64)
    c, _ = synth_sample(0, "train", "good", 1, 64)
    d, _ = synth_sample(0, "test", "good", 0, 64)
    assert not np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, d)


def test_layout_counts_and_manifest(small_set: tuple[Path, SynthSummary, list[tuple[int, int]]]) -> None:
    root, summary, calls = small_set
    assert summary.out_dir == root and summary.seed == 7 and summary.size == 64
    assert summary.counts == {"train": {"good": 3}, "test": {"good": 2, **{c: 2 for c in DEFECT_CLASSES}}}
    assert summary.n_images == 3 + 2 + 2 * len(DEFECT_CLASSES)
    assert sorted(p.name for p in (root / "train" / "good").iterdir()) == ["000.png", "001.png", "002.png"]
    assert sorted(p.name for p in (root / "test").iterdir()) == sorted(("good", *DEFECT_CLASSES))
    assert sorted(p.name for p in (root / "ground_truth").iterdir()) == sorted(DEFECT_CLASSES)
    assert not list(root.rglob("*.tmp"))
    manifest = (root / "MANIFEST.txt").read_text(encoding="utf-8")
    assert "synthetic" in manifest and "seed: 7" in manifest and "status: complete" in manifest
    assert "train/good: 3" in manifest and "test/knots: 2" in manifest
    assert calls[0] == (0, summary.n_images) and calls[-1] == (summary.n_images, summary.n_images)
    assert [done for done, _ in calls] == list(range(summary.n_images + 1))
    with Image.open(root / "train" / "good" / "000.png") as image:
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (64, 64)


def test_masks_binary_nonempty_same_stem(small_set: tuple[Path, SynthSummary, list[tuple[int, int]]]) -> None:
    root, _, _ = small_set
    for defect_class in DEFECT_CLASSES:
        images = sorted((root / "test" / defect_class).glob("*.png"))
        masks = sorted((root / "ground_truth" / defect_class).glob("*.png"))
        assert [p.stem + "_mask.png" for p in images] == [p.name for p in masks]
        for mask_path in masks:
            with Image.open(mask_path) as mask_image:
                assert mask_image.mode == "L" and mask_image.size == (64, 64)
                mask = np.asarray(mask_image)
            assert set(np.unique(mask).tolist()) == {0, 255}
    assert not (root / "ground_truth" / "good").exists()


@pytest.mark.parametrize("defect_class", DEFECT_CLASSES)
def test_defect_changes_only_masked_pixels(defect_class: str) -> None:
    for index in range(6):
        rng = np.random.default_rng([11, index])
        size = 128 if index % 2 else 64
        clean = render_board(rng, size)
        image, mask = add_defect(clean, defect_class, rng)
        inside = mask == 255
        assert image.shape == clean.shape and image.dtype == np.uint8 and mask.shape == (size, size)
        assert set(np.unique(mask).tolist()) == {0, 255}
        assert np.array_equal(image[~inside], clean[~inside])
        diff = np.abs(image.astype(np.int16) - clean.astype(np.int16)).max(axis=-1)[inside]
        assert diff.mean() > 25 and (diff > 0).mean() > 0.9
        # small and fully inside the board: no mask pixel on the border
        ys, xs = np.nonzero(inside)
        assert ys.min() > 0 and xs.min() > 0 and ys.max() < size - 1 and xs.max() < size - 1
        assert max(np.ptp(ys), np.ptp(xs)) + 1 <= 0.2 * size or size == 64


def test_defect_look_per_class() -> None:
    def luma_change(defect_class: str) -> float:
        changes = []
        for index in range(4):
            rng = np.random.default_rng([5, index])
            clean = render_board(rng, 128)
            image, mask = add_defect(clean, defect_class, rng)
            inside = mask == 255
            changes.append(image[inside].mean() - clean[inside].mean())
        return float(np.mean(changes))

    assert luma_change("chalk") > 20  # brighter
    for darker in ("holes", "black", "knots"):
        assert luma_change(darker) < -30


def test_refuses_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(DataError):
        write_synthetic(tmp_path, SMALL)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_rewrite_prunes_stale_files(tmp_path: Path) -> None:
    root = tmp_path / "wood"
    write_synthetic(root, SMALL)
    (root / "train" / "good" / ".000.png.abc.tmp").write_bytes(b"left by an interrupted run")
    fewer = SynthConfig(size=64, n_train=1, n_test_good=1, n_test_per_defect=0, seed=7)
    summary = write_synthetic(root, fewer)
    assert summary.counts == {"train": {"good": 1}, "test": {"good": 1}}
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert names == ["MANIFEST.txt", "test/good/000.png", "train/good/000.png"]


# sha256 of the pixels (not the PNG bytes, which depend on the zlib build) generated by the code before the
# generator was split into board, defect and writer modules (issue 11); a change here changes every data set.
SAMPLES_SHA256 = "1a77bd175137a5b750217bbbe99ef829f38c380c8fbb8d17510a4cb7b3f1a0cc"
SMALL_SET_PIXELS_SHA256 = "7c706b2aa49edfe5646ab8cbc19d279f6b21616c5a83933a83425057823bf957"


def test_generated_pixels_are_unchanged() -> None:
    digest = hashlib.sha256()
    for size in (64, 128):
        for split, image_class in [("train", "good"), ("test", "good"), *[("test", c) for c in DEFECT_CLASSES]]:
            for index in range(3):
                image, mask = synth_sample(5, split, image_class, index, size)
                digest.update(image.tobytes())
                if mask is not None:
                    digest.update(mask.tobytes())
    assert digest.hexdigest() == SAMPLES_SHA256


def test_written_set_pixels_are_unchanged(small_set: tuple[Path, SynthSummary, list[tuple[int, int]]]) -> None:
    root, _, _ = small_set
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.png")):
        digest.update(path.relative_to(root).as_posix().encode())
        with Image.open(path) as image:
            digest.update(np.asarray(image).tobytes())
    assert digest.hexdigest() == SMALL_SET_PIXELS_SHA256

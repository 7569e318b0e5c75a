"""Data sets, images, tiles and sampling; and that gedge.data runs where torch is not installed."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from gedge.core.errors import ConfigError, DataError
from gedge.core.preprocess import Preprocess
from gedge.data.datasets import open_dataset, split_validation
from gedge.data.images import read_image
from gedge.data.sampling import PatchSampler, grid_patches
from gedge.data.tiles import network_inputs, prepare, tile_grid, tile_origins
from helpers import make_mvtec, textured, write_png


def test_mvtec_layout(tmp_path):
    root = make_mvtec(tmp_path / "d")
    (root / "ground_truth" / "knot").mkdir(parents=True)
    write_png(root / "ground_truth" / "knot" / "000_mask.png", np.zeros((64, 64, 1), np.uint8))
    ds = open_dataset(root)
    assert ds.layout == "mvtec" and len(ds.train) == 12
    assert ds.test.labels.tolist() == [0] * 6 + [1] * 6
    assert set(ds.test.classes) == {"good", "knot"}
    assert ds.test.mask_paths[6].name == "000_mask.png" and ds.test.mask_paths[7] is None


def test_class_folder_layout_holds_out_normals(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(10):
        write_png(tmp_path / "good" / f"{i}.png", textured(rng, 32))
    for i in range(3):
        write_png(tmp_path / "holes" / f"{i}.png", textured(rng, 32))
    ds = open_dataset(tmp_path)
    test_good = {p for p, c in zip(ds.test.paths, ds.test.classes) if c == "good"}
    assert ds.layout == "class-folders" and len(test_good) == 3 and not test_good & set(ds.train)
    assert int(ds.test.labels.sum()) == 3


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "train" / "good").mkdir(parents=True)
    with pytest.raises(DataError, match="contains no images") as info:
        open_dataset(tmp_path)
    assert "train/good" in str(info.value)
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError, match="not a data set"):
        open_dataset(tmp_path / "other")


def test_read_image_errors(tmp_path):
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"garbage" * 10)
    with pytest.raises(DataError, match="corrupt"):
        read_image(bad, 3)
    gray = write_png(tmp_path / "gray.png", np.zeros((32, 32, 1), np.uint8))
    with pytest.raises(DataError, match="1 channel"):
        read_image(gray, 3)
    assert read_image(gray, 3, convert=True).shape == (32, 32, 3)
    rgb = write_png(tmp_path / "rgb.png", np.zeros((32, 32, 3), np.uint8))
    assert read_image(rgb, 3).shape == (32, 32, 3)


def test_truncated_jpeg_is_reported(tmp_path):
    from PIL import Image
    path = tmp_path / "full.jpg"
    Image.fromarray(textured(np.random.default_rng(1), 128)).save(path, quality=95)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(path.read_bytes()[:600])
    with pytest.raises(DataError, match="truncated.jpg"):
        read_image(truncated, 3)


def test_prepare_checks_sizes():
    image = np.zeros((64, 48, 3), np.uint8)
    with pytest.raises(DataError, match="trained on 64x64"):
        prepare(image, Preprocess(mode="resize", isize=32, source_size=(64, 64)))
    assert prepare(image, Preprocess(mode="resize", isize=32)).shape == (32, 32, 3)
    padded = prepare(image, Preprocess(mode="patch", isize=64))  # smaller than a tile: mirrored to one tile
    assert padded.shape == (64, 64, 3)
    ramp = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30, 1)
    grown = prepare(ramp, Preprocess(mode="patch", isize=32, channels=1))
    assert grown.shape == (32, 32, 1) and np.array_equal(grown[6:26, 1:31], ramp)  # the image sits in the middle
    assert np.array_equal(grown[5], grown[6]) and np.array_equal(grown[:, 0], grown[:, 1])  # mirrored edges
    assert prepare(image, Preprocess(mode="patch", isize=16, scale=0.5)).shape == (32, 24, 3)
    with pytest.raises(ConfigError):
        Preprocess(mode="warp")


def test_tiles_cover_the_image():
    assert tile_origins(64, 32, 16) == [0, 16, 32]
    assert tile_origins(70, 32, 16) == [0, 16, 32, 38]
    image = np.arange(70 * 50 * 3, dtype=np.uint32).reshape(70, 50, 3).astype(np.uint8)
    tiles, origins = tile_grid(image, 32, 16)
    assert tiles.shape == (len(origins), 32, 32, 3)
    covered = np.zeros((70, 50), bool)
    for y, x in origins:
        covered[y:y + 32, x:x + 32] = True
    assert covered.all()
    inputs, counts = network_inputs([image, image[:40]], Preprocess(mode="patch", isize=32, stride=16))
    assert counts == [len(origins), 2 * 3] and len(inputs) == sum(counts)


def test_patch_sampler_and_grid_patches_are_seeded():
    images = [textured(np.random.default_rng(i), 64) for i in range(3)]
    pre = Preprocess(mode="patch", isize=16)
    a = PatchSampler(images, pre, seed=5).sample(8)
    b = PatchSampler(images, pre, seed=5).sample(8)
    assert a.shape == (8, 16, 16, 3) and np.array_equal(a, b)
    g = grid_patches(images, 16, per_image=4, seed=1)
    assert g.shape == (12, 16, 16, 3) and np.array_equal(g, grid_patches(images, 16, 4, seed=1))


def test_validation_split_is_disjoint_and_seeded(tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(20)]
    train, val = split_validation(paths, 0.2, seed=0)
    assert len(val) == 4 and not set(train) & set(val) and set(train) | set(val) == set(paths)
    assert split_validation(paths, 0.2, seed=0) == (train, val)
    with pytest.raises(DataError):
        split_validation(paths[:3], 0.2, 0)


def test_data_and_core_modules_import_without_torch():
    """Devices prepare, tile and synthesise images without torch: no gedge.data or core module may need it."""
    script = textwrap.dedent("""
        import importlib, pkgutil, sys
        sys.modules["torch"] = None  # an import of torch now fails, as on a device without it
        import gedge.core, gedge.data
        names = [f"{p.__name__}.{m.name}" for p in (gedge.core, gedge.data) for m in pkgutil.iter_modules(p.__path__)]
        for name in names:
            importlib.import_module(name)
        print(len(names))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout) >= 20  # the modules were found and imported, not skipped

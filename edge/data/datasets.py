"""Image folders: reading with clear errors, the MVTec AD and class-folder layouts, preprocessing, patches.

Images are held as uint8 HWC arrays, the same bytes a camera delivers; every backend takes uint8 NHWC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from gedge.core.errors import ConfigError, DataError
from gedge.data.images import list_images

GOOD = "good"


CLASS_FOLDER_TEST_FRACTION = 0.3


@dataclass
class LabeledImages:
    """Paths of a test or validation set with labels (0 normal, 1 anomalous) and defect classes."""

    paths: list[Path]
    labels: np.ndarray
    classes: list[str]
    mask_paths: list[Path | None] = field(default_factory=list)

    def subset(self, keep: np.ndarray) -> LabeledImages:
        idx = np.flatnonzero(keep)
        masks = [self.mask_paths[i] for i in idx] if self.mask_paths else []
        return LabeledImages([self.paths[i] for i in idx], self.labels[idx], [self.classes[i] for i in idx], masks)


@dataclass
class Dataset:
    """A data set on disk: normal training images and a labelled test set."""

    root: Path
    layout: str
    train: list[Path]
    test: LabeledImages | None


def split_validation(paths: list[Path], fraction: float, seed: int) -> tuple[list[Path], list[Path]]:
    """Carve a validation set from the normal training images (the test set is never used for selection)."""
    if not 0.0 < fraction < 0.9:
        raise ConfigError(f"validation fraction must be between 0 and 0.9, got {fraction}")
    if len(paths) < 4:
        raise DataError(f"only {len(paths)} normal training images; at least 4 are needed")
    order = np.random.default_rng(seed).permutation(len(paths))
    n_val = max(2, int(round(fraction * len(paths))))
    val = sorted(paths[i] for i in order[:n_val])
    train = sorted(paths[i] for i in order[n_val:])
    return train, val


def _mask_for(root: Path, cls: str, image: Path) -> Path | None:
    folder = root / "ground_truth" / cls
    for suffix in (".png", ".jpg", ".jpeg", ".bmp", ".tif"):
        candidate = folder / f"{image.stem}_mask{suffix}"
        if candidate.is_file():
            return candidate
    return None


def open_dataset(root: str | Path) -> Dataset:
    """Open an MVTec AD layout (train/good, test/<class>) or a class-folder layout (good/, <defect>/...)."""
    root = Path(root)
    if not root.exists():
        raise DataError("data folder does not exist", root)
    if not root.is_dir():
        raise DataError("data path is not a folder", root)
    if (root / "train").is_dir():
        train = list_images(root / "train" / GOOD, "training folder of normal images")
        test = None
        if (root / "test").is_dir():
            test = _labelled_classes(root / "test", root)
        return Dataset(root, "mvtec", train, test)
    if (root / GOOD).is_dir():
        # No separate test split on disk: a fixed 30 % of good/ is held out for testing.
        good = list_images(root / GOOD, "folder of normal images")
        train_good, test_good = split_validation(good, CLASS_FOLDER_TEST_FRACTION, seed=0)
        test = _labelled_classes(root, None)
        keep = np.array([c != GOOD or p in set(test_good) for p, c in zip(test.paths, test.classes)])
        test = test.subset(keep)
        return Dataset(root, "class-folders", train_good, test)
    raise DataError("not a data set: expected train/good (MVTec AD layout) or good/ (class folders)", root)


def _defect_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and d.name != GOOD and not d.name.startswith("."))


def _labelled_classes(folder: Path, mvtec_root: Path | None) -> LabeledImages:
    paths: list[Path] = []
    labels: list[int] = []
    classes: list[str] = []
    masks: list[Path | None] = []
    class_dirs = ([folder / GOOD] if (folder / GOOD).is_dir() else []) + _defect_dirs(folder)
    if not class_dirs:
        raise DataError("test folder has no class folders (good/, <defect>/)", folder)
    for d in class_dirs:
        for p in list_images(d, "test class folder"):
            paths.append(p)
            labels.append(0 if d.name == GOOD else 1)
            classes.append(d.name)
            masks.append(_mask_for(mvtec_root, d.name, p) if mvtec_root and d.name != GOOD else None)
    return LabeledImages(paths, np.array(labels, dtype=np.int64), classes, masks)

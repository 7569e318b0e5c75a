"""Calibration sets: patches of the model's input size drawn from normal wood images.

INT8 calibration needs the activations the deployed network will see, so the patches are cut the way the
line cuts them: the checkpoint's :class:`~gedge.data.Preprocess` is applied to each source image (scaling in
patch mode, resizing in resize mode), then crops of ``isize`` are drawn, half from the image's tile grid and
half at random positions (:func:`gedge.data.grid_patches`), seeded and stratified over the source images so
that one long line-scan strip cannot dominate the set. In resize mode each image is one network input, so
the set is the resized images themselves.

Sources are normal images only: the checkpoint's training images without its validation images (which the
accuracy gate uses) and without test images mixed in for contamination studies, or a folder given by the
user. Test images are never used.

A set is saved as ``calibration.npz`` (the uint8 NHWC patches) and ``calibration.npz.json`` (its facts: the
sha256 of the patch bytes, the sources, the seed and the way it was drawn), both written atomically.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from gedge.core.artifacts.calibration import CalibrationSetFacts
from gedge.core.artifacts.records import read_json, write_record
from gedge.core.artifacts.sidecar import sidecar_path
from gedge.core.atomic import atomic_path
from gedge.core.errors import ArtifactError, ConfigError, DataError
from gedge.core.preprocess import Preprocess
from gedge.data.datasets import GOOD, open_dataset
from gedge.data.images import list_images
from gedge.data.sampling import grid_patches
from gedge.data.tiles import load_prepared

DEFAULT_PATCHES = 512
MIN_RECOMMENDED = 300


@dataclass
class CalibrationSet:
    """uint8 NHWC patches and where they came from; ``sha256`` is of the C-ordered patch bytes."""

    patches: np.ndarray
    sources: list[str]
    seed: int
    method: str
    per_source: list[int] = field(default_factory=list)
    preprocess: dict = field(default_factory=dict)
    origin: str = ""  # where the sources were found (the checkpoint's data, or --data)
    excluded: dict[str, int] = field(default_factory=dict)  # why images were left out, and how many
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.patches.dtype != np.uint8 or self.patches.ndim != 4:
            raise ValueError(f"patches must be uint8 NHWC, got {self.patches.dtype} {self.patches.shape}")
        self.patches = np.ascontiguousarray(self.patches)

    def __len__(self) -> int:
        return int(self.patches.shape[0])

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.patches.tobytes()).hexdigest()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.patches.shape)

    def facts(self, file: str = "", created: str = "") -> CalibrationSetFacts:
        """What its sidecar records (``docs/schemas/calibration-set.schema.json``)."""
        return CalibrationSetFacts(self.sha256, self.shape, tuple(self.sources), self.seed, self.method,
                                   tuple(self.per_source), dict(self.preprocess), self.origin, dict(self.excluded),
                                   tuple(self.warnings), file, created)

    def batches(self, batch_size: int):
        for start in range(0, len(self), batch_size):
            yield self.patches[start:start + batch_size]


def save_calibration_set(cal: CalibrationSet, path: str | Path) -> Path:
    """``path`` (.npz with the patches) and its sidecar JSON, each written atomically."""
    path = Path(path)
    if path.is_dir():
        raise ArtifactError("calibration set path is a folder; give a file name such as calibration.npz", path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, patches=cal.patches)
    write_record(sidecar_path(path), "calibration-set",
                 cal.facts(path.name, time.strftime("%Y-%m-%dT%H:%M:%S%z")).to_dict())
    return path


def load_calibration_set(path: str | Path) -> CalibrationSet:
    """A saved set; the patches must match the sha256 its sidecar records."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError("calibration set does not exist", path)
    side = sidecar_path(path)
    if not side.is_file():
        raise ArtifactError("calibration set has no sidecar (written by `gedge calibrate`?)", side)
    facts = CalibrationSetFacts.from_dict(read_json(side, "calibration set sidecar"), side)
    try:
        with np.load(path, allow_pickle=False) as data:
            patches = data["patches"]
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"calibration set does not load: {exc.__class__.__name__}: {exc}", path) from None
    cal = CalibrationSet(patches, list(facts.sources), facts.seed, facts.method, list(facts.per_source),
                         dict(facts.preprocess), facts.origin, dict(facts.excluded))
    if cal.sha256 != facts.sha256:
        raise ArtifactError("calibration patches do not match the sha256 in their sidecar (modified?)", path)
    return cal


# --- drawing ----------------------------------------------------------------------------------------------


def _allocate(n_patches: int, n_sources: int, rng: np.random.Generator) -> np.ndarray:
    """Patches per source: as equal as possible, the remainder to randomly chosen sources."""
    counts = np.full(n_sources, n_patches // n_sources, dtype=np.int64)
    counts[rng.permutation(n_sources)[: n_patches % n_sources]] += 1
    return counts


def draw_patches(images: list[np.ndarray], pre: Preprocess, n_patches: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """``n_patches`` network inputs (uint8 NHWC) from prepared images, stratified over them; per-image counts."""
    if not images:
        raise DataError("no images to draw calibration patches from")
    rng = np.random.default_rng(seed)
    if pre.mode == "resize":  # each image is one network input
        order = rng.permutation(len(images))[:n_patches]
        counts = np.zeros(len(images), dtype=np.int64)
        counts[order] = 1
        return np.stack([images[i] for i in sorted(order)]), counts.tolist()
    counts = _allocate(n_patches, len(images), rng)
    seeds = rng.integers(0, 2**31 - 1, len(images))
    parts = [grid_patches([image], pre.isize, int(k), int(s)) for image, k, s in zip(images, counts, seeds) if k]
    return np.concatenate(parts), counts.tolist()


@dataclass
class Sources:
    paths: list[Path]
    origin: str
    excluded: dict[str, int] = field(default_factory=dict)


def _is_test_folder(folder: Path) -> bool:
    """A test split of an MVTec-layout data set (``<root>/test`` or below it)."""
    folder = folder.resolve()
    return any(part.name == "test" and (part.parent / "train").is_dir() for part in [folder, *folder.parents])


def _dataset_train(folder: Path) -> list[Path] | None:
    """The normal training images of a data set at ``folder`` (test split excluded); None if it is not one."""
    try:
        return list(open_dataset(folder).train)
    except DataError:
        return None


def calibration_sources(checkpoint, data: str | Path | None = None) -> Sources:
    """Normal images to calibrate on: the checkpoint's training images (default) or ``data``'s.

    Left out: the checkpoint's validation images (the gate scores them), test images mixed into training
    (contamination studies) and every test split.
    """
    facts = checkpoint.facts or {}
    if data is None:
        root = facts.get("data")
        if not root:
            raise ConfigError("the checkpoint does not record its training data; pass --data with normal images")
        data = Path(root)
        if not data.exists():
            raise DataError("the checkpoint's training data is not on this machine; pass --data with normal "
                            "images", data)
        origin = f"{data} (the checkpoint's training data)"
    else:
        data = Path(data)
        origin = str(data)
    if not data.exists():
        raise DataError("calibration data folder does not exist", data)
    if not data.is_dir():
        raise DataError("calibration data must be a folder of normal images or a data set", data)
    if _is_test_folder(data):
        raise DataError("calibration never uses test images; give the training images (train/good) or the "
                        "data set root", data)
    paths = _dataset_train(data)
    if paths is not None:
        origin += ", normal training images"
    elif (data.name == GOOD and data.parent.name != "train"
          and (class_folders := _dataset_train(data.parent)) is not None):
        # good/ of a class-folder data set: 30 % of it is that data set's test split
        paths, origin = class_folders, f"{data.parent} (normal training images of the class folders)"
    else:
        paths = list_images(data, "calibration image folder")
    held_out = {str(Path(p).resolve()) for p in facts.get("validation_images", [])}
    contaminants = {str(Path(p).resolve()) for p in facts.get("contaminated_with", [])}
    keep, excluded = [], {"validation": 0, "contamination": 0}
    for p in paths:
        resolved = str(p.resolve())
        if resolved in held_out:
            excluded["validation"] += 1
        elif resolved in contaminants:
            excluded["contamination"] += 1
        else:
            keep.append(p)
    if not keep:
        raise DataError("no normal images left to calibrate on after leaving out the validation images", data)
    return Sources(keep, origin, {k: v for k, v in excluded.items() if v})


def method_text(pre: Preprocess, n_patches: int, counts: list[int]) -> str:
    if pre.mode == "resize":
        return f"resize mode: {n_patches} whole images resized to {pre.isize}x{pre.isize}, seeded random subset"
    return (f"patch mode: {pre.isize}x{pre.isize} crops at scale {pre.scale:g}, half on each image's tile grid "
            f"(stride {max(1, pre.isize // 2)}), half at random positions; seeded, stratified over "
            f"{sum(1 for c in counts if c)} source images")


def calibration_set_from(sources: Sources, pre: Preprocess, n_patches: int = DEFAULT_PATCHES, seed: int = 0,
                         convert: bool = False) -> CalibrationSet:
    """Draw a calibration set from these normal images with the model's preprocessing."""
    if n_patches < 1:
        raise ConfigError(f"the number of calibration patches must be positive, got {n_patches}")
    images = load_prepared(sources.paths, pre, convert)
    patches, counts = draw_patches(images, pre, n_patches, seed)
    cal = CalibrationSet(patches, [str(p) for p in sources.paths], seed, method_text(pre, len(patches), counts),
                         counts, pre.to_dict(), sources.origin, dict(sources.excluded))
    if len(cal) < MIN_RECOMMENDED:
        cal.warnings.append(f"only {len(cal)} calibration patches (fewer than {MIN_RECOMMENDED}); INT8 ranges may "
                            "not cover what the line sees")
    return cal

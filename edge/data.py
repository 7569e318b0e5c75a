"""Image folders: reading with clear errors, the MVTec AD and class-folder layouts, preprocessing, patches.

Images are held as uint8 HWC arrays, the same bytes a camera delivers; every backend takes uint8 NHWC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GOOD = "good"
MODES = ("resize", "patch")
CLASS_FOLDER_TEST_FRACTION = 0.3


@dataclass(frozen=True)
class Preprocess:
    """How images become network inputs.

    * ``resize``: the whole image is resized to ``isize`` (one input per image).
    * ``patch``: the image is scaled by ``scale`` and cut into ``isize`` tiles with ``stride``; an image's
      score is the maximum over its tiles. This keeps small defects at their native resolution and is
      how line-scan strips are inspected.
    """

    mode: str = "patch"
    isize: int = 64
    channels: int = 3
    scale: float = 1.0
    stride: int = 0  # 0: isize // 2
    source_size: tuple[int, int] | None = None  # (height, width) of the training images

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.05 <= self.scale <= 4.0:
            raise ConfigError(f"scale must be between 0.05 and 4, got {self.scale}")
        if self.stride < 0 or self.stride > self.isize:
            raise ConfigError(f"stride must be 0 (half a tile) to isize ({self.isize}), got {self.stride}")

    @property
    def tile_stride(self) -> int:
        return self.stride or max(1, self.isize // 2)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["source_size"] = list(self.source_size) if self.source_size else None
        return values

    @classmethod
    def from_dict(cls, values: dict) -> Preprocess:
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        if known.get("source_size"):
            known["source_size"] = tuple(known["source_size"])
        return cls(**known)


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


def list_images(folder: Path, what: str = "image folder") -> list[Path]:
    if not folder.exists():
        raise DataError(f"{what} does not exist", folder)
    if not folder.is_dir():
        raise DataError(f"{what} is not a folder", folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{what} contains no images ({', '.join(IMAGE_SUFFIXES)})", folder)
    return files


def read_image(path: Path, channels: int, convert: bool = False) -> np.ndarray:
    """Read one image as uint8 HxWxC. Channel mismatches are errors unless ``convert`` is set."""
    path = Path(path)
    if not path.is_file():
        raise DataError("image file does not exist", path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("L", "I", "I;16", "F", "1", "LA"):
                have = 1
            elif mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr"):
                have = 3
            else:
                raise DataError(f"unsupported image mode {mode}", path)
            if have != channels and not convert:
                want = "RGB" if channels == 3 else "grayscale"
                raise DataError(f"has {have} channel(s) ({mode}) but the model expects {channels} ({want}); "
                                "pass --convert to convert", path)
            array = np.asarray(im.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"unreadable or corrupt image ({exc.__class__.__name__}: {exc})", path) from None
    return array[..., None] if array.ndim == 2 else array


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[0] == height and image.shape[1] == width:
        return image
    mode = "L" if image.shape[2] == 1 else "RGB"
    im = Image.fromarray(image[..., 0] if mode == "L" else image, mode)
    out = np.asarray(im.resize((width, height), Image.BILINEAR), dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out


def prepare(image: np.ndarray, pre: Preprocess, path: Path | None = None) -> np.ndarray:
    """Apply the model's preprocessing to one image; checks its size against the model's."""
    h, w = image.shape[:2]
    if pre.mode == "resize":
        if pre.source_size and (h, w) != tuple(pre.source_size):
            sh, sw = pre.source_size
            raise DataError(f"image is {w}x{h} but the model was trained on {sw}x{sh} images", path)
        return resize(image, pre.isize, pre.isize)
    if pre.scale != 1.0:
        image = resize(image, max(1, round(h * pre.scale)), max(1, round(w * pre.scale)))
    if image.shape[0] < pre.isize or image.shape[1] < pre.isize:
        raise DataError(f"image is {w}x{h}, smaller than one {pre.isize}x{pre.isize} tile at scale {pre.scale}",
                        path)
    return image


def load_prepared(paths: list[Path], pre: Preprocess, convert: bool = False) -> list[np.ndarray]:
    return [prepare(read_image(p, pre.channels, convert), pre, p) for p in paths]


def tile_origins(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets covering ``length`` with tiles of ``tile``; the last tile is flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def tile_grid(image: np.ndarray, tile: int, stride: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """All tiles of an image as (N, tile, tile, C) and their (y, x) origins."""
    ys = tile_origins(image.shape[0], tile, stride)
    xs = tile_origins(image.shape[1], tile, stride)
    origins = [(y, x) for y in ys for x in xs]
    tiles = np.stack([image[y:y + tile, x:x + tile] for y, x in origins])
    return tiles, origins


def network_inputs(images: list[np.ndarray], pre: Preprocess) -> tuple[np.ndarray, list[int]]:
    """Stack prepared images into network inputs (uint8 NHWC) and the count of inputs per image."""
    if pre.mode == "resize":
        return np.stack(images), [1] * len(images)
    parts, counts = [], []
    for image in images:
        tiles, _ = tile_grid(image, pre.isize, pre.tile_stride)
        parts.append(tiles)
        counts.append(len(tiles))
    return np.concatenate(parts), counts


class PatchSampler:
    """Random training inputs: crops of ``isize`` (patch mode) or whole images, with flips."""

    def __init__(self, images: list[np.ndarray], pre: Preprocess, seed: int, flips: bool = True) -> None:
        if not images:
            raise DataError("no training images")
        self.images = images
        self.pre = pre
        self.flips = flips
        self.rng = np.random.default_rng(seed)

    def sample(self, batch: int) -> np.ndarray:
        size = self.pre.isize
        out = np.empty((batch, size, size, self.pre.channels), dtype=np.uint8)
        for i, k in enumerate(self.rng.integers(0, len(self.images), batch)):
            image = self.images[k]
            y = int(self.rng.integers(0, image.shape[0] - size + 1))
            x = int(self.rng.integers(0, image.shape[1] - size + 1))
            crop = image[y:y + size, x:x + size]
            if self.flips and self.rng.random() < 0.5:
                crop = crop[:, ::-1]
            if self.flips and self.rng.random() < 0.5:
                crop = crop[::-1]
            out[i] = crop
        return out

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state


def grid_patches(images: list[np.ndarray], size: int, per_image: int, seed: int) -> np.ndarray:
    """Seeded crops stratified over source images: ``per_image`` from each, half grid, half random."""
    rng = np.random.default_rng(seed)
    out = []
    for image in images:
        tiles, _ = tile_grid(image, size, max(1, size // 2))
        pick = rng.permutation(len(tiles))[: (per_image + 1) // 2]
        out.extend(tiles[pick])
        for _ in range(per_image - len(pick)):
            y = int(rng.integers(0, image.shape[0] - size + 1))
            x = int(rng.integers(0, image.shape[1] - size + 1))
            out.append(image[y:y + size, x:x + size])
    return np.stack(out)


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

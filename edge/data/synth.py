"""The built-in synthetic data sets, written in the MVTec AD layout: wood boards (the default, RGB) and brushed
metal (grayscale, mixed image sizes), each with five defect classes and pixel masks.

A :class:`Material` says how to draw a normal image and paint a defect: wood boards come from
:mod:`gedge.data.wood_board` and :mod:`gedge.data.wood_defects`, metal from :mod:`gedge.data.metal_surface`. This
module gives every image its own random stream, derived from (seed, split, class, index) only, so image ``i`` is
the same whatever the total count, and writes the images, masks and a manifest into a folder. The second
material exists so that gedge's defaults are measured on more than one kind of surface.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gedge.core.atomic import write_bytes
from gedge.core.errors import ConfigError, DataError
from gedge.data import metal_surface
from gedge.data.wood_board import check_board_size, render_board
from gedge.data.wood_defects import DEFECT_CLASSES, add_defect
from PIL import Image

MANIFEST_NAME = "MANIFEST.txt"


_SPLITS = ("train", "test")


_LAYOUT_DIRS = ("train", "test", "ground_truth")


ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Material:
    """One synthetic material: how a normal image is drawn and a defect painted, and what the manifest says."""

    name: str
    generator: str  # recorded in the manifest (name and version of the generator)
    description: str
    defect_classes: tuple[str, ...]
    sample: Callable[[np.random.Generator, int], np.ndarray]  # (rng, nominal size) -> normal image HWC uint8
    add_defect: Callable[[np.ndarray, str, np.random.Generator], tuple[np.ndarray, np.ndarray]]
    pixels: str  # "RGB" or "grayscale"
    sizes: str  # what the nominal size means for this material

    @property
    def classes(self) -> tuple[str, ...]:
        return ("good", *self.defect_classes)

    @property
    def marker(self) -> str:
        return f"gedge synthetic {self.name} data set"


def _wood_board(rng: np.random.Generator, size: int) -> np.ndarray:
    check_board_size(size)
    return render_board(rng, size)


MATERIALS: dict[str, Material] = {
    "wood": Material("wood", "gedge.synth wood v1", "procedurally generated wood boards, not photographs",
                     DEFECT_CLASSES, _wood_board, add_defect, "RGB", "{size}x{size}"),
    "metal": Material("metal", "gedge.synth metal v1", "procedurally generated brushed metal, not photographs",
                      metal_surface.DEFECT_CLASSES, metal_surface.render_surface, metal_surface.add_metal_defect,
                      "grayscale", "mixed, about {half} to {double} wide and {half} to {size} high"),
}


def material(name: str) -> Material:
    if name not in MATERIALS:
        raise ConfigError(f"material must be one of {', '.join(MATERIALS)}, got {name!r}")
    return MATERIALS[name]


@dataclass(frozen=True)
class SynthConfig:
    """Material, size and counts of a synthetic data set; validated on creation."""

    size: int = 256
    n_train: int = 240
    n_test_good: int = 40
    n_test_per_defect: int = 8
    seed: int = 0
    material: str = "wood"

    def __post_init__(self) -> None:
        spec = material(self.material)
        if spec.name == "wood":
            check_board_size(self.size)
        elif not isinstance(self.size, int) or not 64 <= self.size <= 4096:
            raise ConfigError(f"synthetic image size must be an integer from 64 to 4096, got {self.size!r}")
        _check_count("n_train", self.n_train, minimum=1)
        _check_count("n_test_good", self.n_test_good, minimum=0)
        _check_count("n_test_per_defect", self.n_test_per_defect, minimum=0)
        _check_count("seed", self.seed, minimum=0)
        if self.n_test == 0:
            raise ConfigError("synthetic data set needs at least one test image (n_test_good or n_test_per_defect)")

    @classmethod
    def default(cls, size: int = 256, seed: int = 0, material: str = "wood") -> SynthConfig:
        """Small default set: 240 train, 40 test good, 8 per defect class (40 defective)."""
        return cls(size=size, n_train=240, n_test_good=40, n_test_per_defect=8, seed=seed, material=material)

    @classmethod
    def paper_size(cls, size: int = 256, seed: int = 0, material: str = "wood") -> SynthConfig:
        """The seed paper's counts: 3,075 training normals, 740 test images (370 good + 74 per class)."""
        return cls(size=size, n_train=3075, n_test_good=370, n_test_per_defect=74, seed=seed, material=material)

    @property
    def n_test(self) -> int:
        """Number of test images, good and defective."""
        return self.n_test_good + self.n_test_per_defect * len(material(self.material).defect_classes)

    @property
    def n_images(self) -> int:
        """Number of images (masks not counted)."""
        return self.n_train + self.n_test

    def counts(self) -> dict[str, dict[str, int]]:
        """Image counts per split and class; classes with zero images are left out."""
        test = {"good": self.n_test_good} if self.n_test_good else {}
        if self.n_test_per_defect:
            test.update({name: self.n_test_per_defect for name in material(self.material).defect_classes})
        return {"train": {"good": self.n_train}, "test": test}


@dataclass(frozen=True)
class SynthSummary:
    """What write_synthetic wrote."""

    out_dir: Path
    counts: dict[str, dict[str, int]]
    seed: int
    size: int
    material: str = "wood"

    @property
    def n_images(self) -> int:
        """Number of images written (masks not counted)."""
        return sum(n for per_class in self.counts.values() for n in per_class.values())


def _check_count(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")


def image_rng(seed: int, split: str, image_class: str, index: int, material_name: str = "wood") -> np.random.Generator:
    """Random stream of one image, derived from (seed, split, class, index) only."""
    classes = material(material_name).classes
    if split not in _SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(_SPLITS)}")
    if image_class not in classes:
        raise ConfigError(f"unknown class {image_class!r}; expected one of {', '.join(classes)}")
    _check_count("seed", seed, minimum=0)
    _check_count("index", index, minimum=0)
    key = (_SPLITS.index(split), classes.index(image_class), index)
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=key))


def synth_sample(seed: int, split: str, image_class: str, index: int, size: int = 256,
                 material_name: str = "wood") -> tuple[np.ndarray, np.ndarray | None]:
    """One image (H, W, C uint8) and its mask (H, W uint8 0/255), or None for class 'good'."""
    spec = material(material_name)
    rng = image_rng(seed, split, image_class, index, material_name)
    image = spec.sample(rng, size)
    if image_class == "good":
        return image, None
    return spec.add_defect(image, image_class, rng)


def _image_name(index: int, count: int) -> str:
    """MVTec-style zero-padded stem: 000, 001, ... (wider when count exceeds 1000)."""
    return f"{index:0{max(3, len(str(max(count - 1, 0))))}d}"


@dataclass(frozen=True)
class _Job:
    """One image to write: where its random stream comes from and where it goes (relative to the folder)."""

    split: str
    image_class: str
    index: int
    image_path: Path
    mask_path: Path | None


def _jobs(config: SynthConfig) -> list[_Job]:
    """Every image of the set, in split, class and index order."""
    jobs = []
    for split, per_class in config.counts().items():
        for image_class, count in per_class.items():
            for index in range(count):
                stem = _image_name(index, count)
                image_path = Path(split, image_class, f"{stem}.png")
                mask_path = None if image_class == "good" else Path("ground_truth", image_class, f"{stem}_mask.png")
                jobs.append(_Job(split, image_class, index, image_path, mask_path))
    return jobs


def _png_bytes(array: np.ndarray) -> bytes:
    """Lossless PNG encoding of an RGB or single-channel uint8 array."""
    buffer = io.BytesIO()
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    Image.fromarray(array, mode="L" if array.ndim == 2 else "RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _is_own_manifest(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.readline().strip() in {spec.marker for spec in MATERIALS.values()}
    except (OSError, UnicodeDecodeError):
        return False


def _prepare_out_dir(root: Path) -> None:
    """Create `root`, or accept it if empty or a previous gedge synthetic set; refuse anything else."""
    if root.exists() and not root.is_dir():
        raise DataError("output path exists and is not a folder", path=root)
    if root.is_dir() and any(root.iterdir()) and not _is_own_manifest(root / MANIFEST_NAME):
        raise DataError(
            f"output folder is not empty and has no gedge {MANIFEST_NAME}; choose a new or empty folder", path=root
        )
    root.mkdir(parents=True, exist_ok=True)


def _prune_stale(root: Path, expected: set[Path]) -> None:
    """Remove PNGs and temp files of an earlier run that the current set does not contain (links not followed)."""
    for top in _LAYOUT_DIRS:
        if not (root / top).is_dir() or (root / top).is_symlink():
            continue
        for folder, _, names in os.walk(root / top, topdown=False):
            here = Path(folder)
            for name in names:
                path = here / name
                stale_png = name.endswith(".png") and path.relative_to(root) not in expected
                if (stale_png or name.endswith(".tmp")) and not path.is_symlink():
                    path.unlink()
            if not any(here.iterdir()):
                here.rmdir()


def _manifest_text(config: SynthConfig, complete: bool) -> str:
    spec = material(config.material)
    size = spec.sizes.format(size=config.size, half=config.size // 2, double=config.size * 2)
    lines = [
        spec.marker,
        f"synthetic: yes - {spec.description}",
        f"generator: {spec.generator}",
        f"status: {'complete' if complete else 'incomplete (being written)'}",
        f"seed: {config.seed}",
        f"size: {size} {spec.pixels} PNG",
        "layout: MVTec AD (train/good, test/<class>, ground_truth/<class>/<name>_mask.png, masks 0/255)",
        f"defect classes: {', '.join(spec.defect_classes)}",
        "counts:",
    ]
    for split, per_class in config.counts().items():
        lines += [f"  {split}/{name}: {count}" for name, count in per_class.items()]
    lines.append(f"  total images: {config.n_images}")
    return "\n".join(lines) + "\n"


def write_synthetic(
    out_dir: str | Path, config: SynthConfig | None = None, progress: ProgressFn | None = None
) -> SynthSummary:
    """Write a synthetic data set (``config.material``) in the MVTec AD layout and return what was written.

    `out_dir` must be new, empty or an earlier output of this function (then it is
    brought up to date and stale images removed). `progress(done, total)` is called
    with done=0 first and after each image. MANIFEST.txt says 'status: complete' last.
    """
    config = SynthConfig.default() if config is None else config
    if not isinstance(config, SynthConfig):
        raise ConfigError(f"config must be a SynthConfig, got {type(config).__name__}")
    root = Path(out_dir)
    _prepare_out_dir(root)
    write_bytes(root / MANIFEST_NAME, _manifest_text(config, complete=False).encode("utf-8"))
    jobs = _jobs(config)
    if progress is not None:
        progress(0, len(jobs))
    for done, job in enumerate(jobs, start=1):
        image, mask = synth_sample(config.seed, job.split, job.image_class, job.index, config.size, config.material)
        write_bytes(root / job.image_path, _png_bytes(image))
        if job.mask_path is not None and mask is not None:
            write_bytes(root / job.mask_path, _png_bytes(mask))
        if progress is not None:
            progress(done, len(jobs))
    expected = {p for job in jobs for p in (job.image_path, job.mask_path) if p is not None}
    _prune_stale(root, expected)
    write_bytes(root / MANIFEST_NAME, _manifest_text(config, complete=True).encode("utf-8"))
    return SynthSummary(out_dir=root, counts=config.counts(), seed=config.seed, size=config.size,
                        material=config.material)

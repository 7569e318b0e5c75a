"""What a folder of training images is like, read from their headers: channels and sizes.

``gedge train DIR`` needs no flags: the survey says whether the images are grayscale (every file grayscale, or
colour files whose three channels are equal: a gray camera saved as RGB) or colour, how many files must be
converted to that, and how big the images are (the smallest, median and largest side, whether sizes are mixed).
:mod:`gedge.reference.inputs` chooses the input settings from it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from gedge.core.errors import DataError
from PIL import Image, UnidentifiedImageError

GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
GRAY_CHECK_SAMPLE = 16  # colour files whose pixels are checked for equal channels


@dataclass
class ImageSurvey:
    count: int
    modes: dict[str, int]
    sizes: list[tuple[int, int]]  # (height, width) of every image
    channels: int  # 1 when every image is grayscale (or gray stored as colour), else 3
    converted: int  # files of the other kind, converted when read
    notes: list[str] = field(default_factory=list)

    @property
    def short_sides(self) -> np.ndarray:
        return np.array([min(h, w) for h, w in self.sizes])

    @property
    def mixed_sizes(self) -> bool:
        return len(set(self.sizes)) > 1

    def to_dict(self) -> dict:
        sides = self.short_sides
        values = asdict(self)
        values.pop("sizes")
        values.update(min_side=int(sides.min()), median_side=float(np.median(sides)), max_side=int(sides.max()),
                      mixed_sizes=self.mixed_sizes)
        return values


def _header(path: Path) -> tuple[str, tuple[int, int]]:
    try:
        with Image.open(path) as im:
            return im.mode, (im.height, im.width)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"unreadable or corrupt image ({exc.__class__.__name__}: {exc})", path) from None


def _colour_is_gray(paths: list[Path]) -> bool:
    """Whether every sampled colour file holds a gray picture (its three channels equal)."""
    step = max(1, len(paths) // GRAY_CHECK_SAMPLE)
    for path in paths[::step][:GRAY_CHECK_SAMPLE]:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])):
            return False
    return True


def survey_images(paths: list[Path]) -> ImageSurvey:
    """Channels and sizes of ``paths`` (the training images)."""
    if not paths:
        raise DataError("no training images to survey")
    headers = [_header(p) for p in paths]
    modes = Counter(mode for mode, _ in headers)
    gray = [p for p, (mode, _) in zip(paths, headers) if mode in GRAY_MODES]
    colour = [p for p, (mode, _) in zip(paths, headers) if mode not in GRAY_MODES]
    notes = []
    if colour and _colour_is_gray(colour):
        channels, converted = 1, 0
        notes.append(f"{len(colour)} colour files hold gray pictures (equal channels): read as grayscale")
    elif colour:
        channels, converted = 3, len(gray)
        if gray:
            notes.append(f"{len(gray)} of {len(paths)} images are grayscale: converted to RGB when read")
    else:
        channels, converted = 1, 0
    return ImageSurvey(len(paths), dict(modes), [size for _, size in headers], channels, converted, notes)
